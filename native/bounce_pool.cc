#include "bounce_pool.h"

#include <stdlib.h>

namespace ringstore {

BouncePool::~BouncePool() {
  for (std::vector<void*>& memories : free_) {
    for (void* memory : memories) free(memory);
  }
}

void* BouncePool::Take(size_t length, size_t alignment, size_t* capacity) {
  size_t size_class = 0;
  while (size_class < kClassCount && (kPageBytes << size_class) < length) size_class++;
  // Larger than the largest class, or aligned past a page: not pooled.
  if (size_class == kClassCount || alignment > kPageBytes) {
    *capacity = 0;
    void* memory = nullptr;
    return posix_memalign(&memory, alignment, length == 0 ? alignment : length) == 0 ? memory : nullptr;
  }
  *capacity = kPageBytes << size_class;
  std::vector<void*>& memories = free_[size_class];
  if (!memories.empty()) {
    void* memory = memories.back();
    memories.pop_back();
    retained_bytes_ -= *capacity;
    return memory;
  }
  void* memory = nullptr;
  return posix_memalign(&memory, kPageBytes, *capacity) == 0 ? memory : nullptr;
}

void BouncePool::Give(void* memory, size_t capacity) {
  if (capacity == 0 || retained_bytes_ + capacity > kRetainedBytesMax) {
    free(memory);
    return;
  }
  size_t size_class = 0;
  while ((kPageBytes << size_class) < capacity) size_class++;
  free_[size_class].push_back(memory);
  retained_bytes_ += capacity;
}

}  // namespace ringstore
