// Mappings of large aligned buffers kept after their Buffer is collected, so
// the next buffer of the same size class reuses memory whose pages are
// already faulted in.
//
// Why: on some VMs a fresh page costs far more than its IO. On the 2-core
// guest of session 45, a get of a 1 MiB value read into fresh memory took
// 3.4-4.5 ms, against 0.6-0.9 ms into memory reused from an earlier get (the
// device's 1 MiB read is ~0.4 ms there): fresh pages fault in one at a time,
// ~3.5 ms a MiB. malloc reuses what the GC frees only by luck (it unmaps or
// trims large chunks), so the get's time swung 5x from one round to the
// next. A mapping kept here is reused as it is; a bounded amount is kept.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringstore {

// Buffers from this size up get a mapping of their own, kept for reuse when
// freed. Below it malloc serves them (it reuses small chunks well).
constexpr size_t kRecycledBufferBytesMin = size_t{64} << 10;
// Most memory kept idle for reuse, over all size classes, in the whole
// process; what a freed mapping would add beyond it is unmapped. Collected
// buffers are freed in bursts, at a GC, which V8 starts once external
// memory has grown by about this much since the last: with 32 MiB a round
// of 32 gets of 1 MiB values freed more than it could keep, and each round
// mapped 8-10 fresh buffers; with 64 MiB, none after the first round
// (session 45). Memory kept here is memory the GC let those buffers hold
// anyway, until it ran.
constexpr size_t kRecycledIdleBytesMax = size_t{64} << 20;
// Huge-page size: from here up a mapping is a whole number of these,
// 2 MiB-aligned and marked for transparent huge pages.
constexpr size_t kHugePageBytes = size_t{2} << 20;

// The length of the mapping a buffer of `size_bytes` (at least
// kRecycledBufferBytesMin) gets: its size class. Under kHugePageBytes, the
// size rounded up to a quarter of its power of two (at most 25 % more, and
// few classes, so that buffers of close sizes share mappings), then to
// whole pages; from kHugePageBytes up, whole huge pages.
size_t RecycledMappingBytes(size_t size_bytes);

// A mapping of `mapped_bytes` (a RecycledMappingBytes value) kept idle, or
// nullptr if none is. Its bytes are what its last user left: the caller
// clears what it hands out. Thread-safe.
void* TakeRecycledMapping(size_t mapped_bytes);

// Keeps `memory` (a mapping of `mapped_bytes` no one uses any more) for
// reuse if the idle total stays within kRecycledIdleBytesMax; otherwise
// unmaps it. Thread-safe.
void RecycleMapping(void* memory, size_t mapped_bytes);

// A new mapping of `mapped_bytes`, zeroed, page-aligned (2 MiB-aligned and
// marked for huge pages from kHugePageBytes up), or nullptr.
void* MapFresh(size_t mapped_bytes);

struct RecycledMappingStats {
  uint64_t reused = 0;        // buffers served from a kept mapping
  uint64_t mapped = 0;        // fresh mappings made
  uint64_t unmapped = 0;      // mappings given back to the kernel (over the bound)
  uint64_t idle_bytes = 0;    // kept now
};
RecycledMappingStats GetRecycledMappingStats();

}  // namespace ringstore
