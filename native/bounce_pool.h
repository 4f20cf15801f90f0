// BouncePool: the memory of bounce copies (Command::bounces), kept for reuse.
// A bounce copy is taken at a submission and given back at its delivery;
// malloc'ing each afresh cost a 1 MiB blob read its share of page faults
// (session 37). Sizes are rounded up to powers of two from a page; the pool
// keeps at most kRetainedBytesMax of them, and frees the rest when given
// back. One thread (a RingClient's JS thread) uses it: no locks.
#pragma once

#include <cstddef>
#include <vector>

namespace ringstore {

class BouncePool {
 public:
  BouncePool() = default;
  BouncePool(const BouncePool&) = delete;
  BouncePool& operator=(const BouncePool&) = delete;
  ~BouncePool();

  // Memory for `length` bytes at a multiple of `alignment` (a power of two),
  // its capacity in *capacity (0: not pooled, free() it through Give all the
  // same); nullptr when out of memory.
  void* Take(size_t length, size_t alignment, size_t* capacity);
  // Memory Take returned, with the capacity it said.
  void Give(void* memory, size_t capacity);

 private:
  // Size classes 4 KiB << i, up to 4 KiB << (kClassCount - 1) = 4 MiB.
  static constexpr size_t kClassCount = 11;
  static constexpr size_t kPageBytes = 4096;
  static constexpr size_t kRetainedBytesMax = size_t{16} << 20;

  std::vector<void*> free_[kClassCount];
  size_t retained_bytes_ = 0;
};

}  // namespace ringstore
