// Aligned buffers for direct IO: memory from posix_memalign (or, from 2 MiB up,
// a mapping of its own in huge pages) owned by a Node Buffer and by the commands
// in flight on it (AlignedBlock), and an address check.
#pragma once

#include <napi.h>

#include <cstdint>

#include "command.h"

namespace ringstore {

// The memory of one allocAligned Buffer, and who holds it.
//
// Why commands pin it: Node frees an external buffer's memory (memory an
// addon supplied, as here) through the Buffer's finalizer when the Buffer is
// collected — and also when its environment is torn down (a worker returns,
// throws, calls process.exit() or is terminated), whether or not JS still
// references it, in a teardown step of its own that runs before any addon
// can wait for its IO: in Node 20 an env cleanup hook registered when the
// Buffer was made, so after a RingClient's and run before it; in Node 22 a
// step ahead of every cleanup hook. A command in flight may be using the
// memory at that moment — the kernel (io_uring) or a pool thread reads or
// writes it — and freeing it there corrupted the heap. So each command pins
// the blocks of its buffers until its completion is delivered (or, at
// teardown, until the actor has posted it), and the memory is freed once the
// Buffer was finalized and no pin remains.
//
// Single-threaded: Pin, Unpin and the finalizer all run on the JS thread of
// the environment that allocated the block (Node calls external-buffer
// finalizers on that thread, also when V8 frees the backing store
// elsewhere), so the counts need no atomics.
class AlignedBlock {
 public:
  // `mapped_bytes`: the length of the mapping the memory is (unmapped when
  // freed), or 0 for memory from posix_memalign (freed with free()).
  AlignedBlock(void* memory, size_t size_bytes, size_t mapped_bytes)
      : memory_(memory), size_bytes_(size_bytes), mapped_bytes_(mapped_bytes) {}
  AlignedBlock(const AlignedBlock&) = delete;
  AlignedBlock& operator=(const AlignedBlock&) = delete;

  // Makes `array_buffer` (the new Buffer's) findable by Of(). Returns false
  // if napi refused (then Of() never finds it, and it is never pinned).
  bool Attach(napi_env env, napi_value array_buffer);
  // The block behind `array_buffer`, or nullptr when that ArrayBuffer is not
  // an allocAligned allocation (Buffer.alloc, another addon's memory, ...).
  static AlignedBlock* Of(napi_env env, napi_value array_buffer);

  void Pin();
  // Drops one pin; frees the block (and deletes `this`) when it was the last
  // and the Buffer is already finalized.
  void Unpin();
  // The Buffer's finalizer: JS no longer holds the memory. Frees the block
  // (and deletes `this`) unless a command still pins it.
  void Release();

  size_t size_bytes() const { return size_bytes_; }
  // What the memory takes: the mapping's length, or the buffer's size.
  size_t footprint_bytes() const { return mapped_bytes_ > 0 ? mapped_bytes_ : size_bytes_; }

 private:
  ~AlignedBlock();

  void* const memory_;
  const size_t size_bytes_;
  const size_t mapped_bytes_;
  uint32_t pin_count_ = 0;  // commands in flight on this memory
  bool released_ = false;   // the Buffer was finalized
};

// Largest buffer allocAligned hands out: one 1 GiB transfer (kTransferSizeMax).
constexpr double kAlignedBufferSizeMax = static_cast<double>(kTransferSizeMax);
// Largest alignment accepted: 1 MiB (huge-page-ish) — more is a caller bug.
constexpr uint32_t kAlignmentMax = 1u << 20;

Napi::Value AllocAligned(const Napi::CallbackInfo& info);         // (sizeBytes, alignment)
Napi::Value BufferAddressModulo(const Napi::CallbackInfo& info);  // (view, alignment)

}  // namespace ringstore
