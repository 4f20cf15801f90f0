#include "recycled_mappings.h"

#include <sys/mman.h>

#include <cassert>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ringstore {

namespace {

constexpr size_t kPageBytes = 4096;

// The kept mappings, by length. Leaked on purpose: buffers are freed until
// the process's last moment (a worker's teardown, an exit handler), after
// static destructors could have run.
struct Recycler {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> idle_by_bytes;
  size_t idle_bytes = 0;
  RecycledMappingStats stats;
};

Recycler& TheRecycler() {
  static Recycler* recycler = new Recycler();
  return *recycler;
}

// `bytes` (a multiple of kHugePageBytes) at a kHugePageBytes-aligned address,
// or nullptr. Maps one huge page more than asked and unmaps the unaligned
// head and tail.
void* MapHugePages(size_t bytes) {
  const size_t span_bytes = bytes + kHugePageBytes;
  void* mapped = mmap(nullptr, span_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(mapped);
  const uintptr_t aligned = (start + kHugePageBytes - 1) & ~(uintptr_t{kHugePageBytes} - 1);
  const size_t head_bytes = aligned - start;
  const size_t tail_bytes = span_bytes - head_bytes - bytes;
  if (head_bytes > 0) munmap(mapped, head_bytes);
  if (tail_bytes > 0) munmap(reinterpret_cast<void*>(aligned + bytes), tail_bytes);
  void* memory = reinterpret_cast<void*>(aligned);
  // Advice only: without THP the memory is the same, in small pages.
  (void)madvise(memory, bytes, MADV_HUGEPAGE);
  return memory;
}

}  // namespace

size_t RecycledMappingBytes(size_t size_bytes) {
  assert(size_bytes >= kRecycledBufferBytesMin);
  if (size_bytes >= kHugePageBytes) return (size_bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  size_t power = kRecycledBufferBytesMin;
  while (power * 2 <= size_bytes) power *= 2;
  const size_t quarter = power / 4;
  const size_t rounded = (size_bytes + quarter - 1) / quarter * quarter;
  return (rounded + kPageBytes - 1) / kPageBytes * kPageBytes;
}

void* MapFresh(size_t mapped_bytes) {
  void* memory = nullptr;
  if (mapped_bytes >= kHugePageBytes) {
    memory = MapHugePages(mapped_bytes);
  } else {
    void* mapped = mmap(nullptr, mapped_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memory = mapped == MAP_FAILED ? nullptr : mapped;
  }
  if (memory != nullptr) {
    Recycler& recycler = TheRecycler();
    std::lock_guard<std::mutex> lock(recycler.mutex);
    recycler.stats.mapped++;
  }
  return memory;
}

void* TakeRecycledMapping(size_t mapped_bytes) {
  Recycler& recycler = TheRecycler();
  std::lock_guard<std::mutex> lock(recycler.mutex);
  auto found = recycler.idle_by_bytes.find(mapped_bytes);
  if (found == recycler.idle_by_bytes.end() || found->second.empty()) return nullptr;
  // The most recently kept: the likeliest to be in the CPU's caches.
  void* memory = found->second.back();
  found->second.pop_back();
  assert(recycler.idle_bytes >= mapped_bytes);
  recycler.idle_bytes -= mapped_bytes;
  recycler.stats.reused++;
  return memory;
}

void RecycleMapping(void* memory, size_t mapped_bytes) {
  Recycler& recycler = TheRecycler();
  {
    std::lock_guard<std::mutex> lock(recycler.mutex);
    if (recycler.idle_bytes + mapped_bytes <= kRecycledIdleBytesMax) {
      recycler.idle_by_bytes[mapped_bytes].push_back(memory);
      recycler.idle_bytes += mapped_bytes;
      return;
    }
    recycler.stats.unmapped++;
  }
  munmap(memory, mapped_bytes);
}

RecycledMappingStats GetRecycledMappingStats() {
  Recycler& recycler = TheRecycler();
  std::lock_guard<std::mutex> lock(recycler.mutex);
  RecycledMappingStats stats = recycler.stats;
  stats.idle_bytes = recycler.idle_bytes;
  return stats;
}

}  // namespace ringstore
