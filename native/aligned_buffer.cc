#include "aligned_buffer.h"
#include "js_args.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cassert>
#include <cmath>
#include <cstdint>

#include "napi_errors.h"

namespace ringstore {

namespace {

// Marks ArrayBuffers whose napi wrap is an AlignedBlock, so a wrap another
// addon put on an ArrayBuffer is never taken for one. A random 128-bit value.
constexpr napi_type_tag kAlignedBlockTag = {0x8f3c1d27a4b65e90ull, 0x2d7e9b41c05f63a8ull};

// Buffers at least this large get memory of their own from mmap, at an
// address aligned to it, in whole multiples of it, marked for transparent
// huge pages (madvise MADV_HUGEPAGE; a no-op where THP is off). Fresh memory
// is faulted in a page at a time, and faults are dear in a VM: 32 MiB took
// 83-111 ms in 4 KiB pages on a 2-core PVM guest, 3-67 ms in 2 MiB ones.
// Their own mapping, not malloc's: freed, it goes back to the kernel (malloc
// would keep it, still marked, for its other allocations), and it comes
// zeroed. The buffers this large are few and long-lived (WAL reads at open
// and the tail kept from them, large values' chunks), so the rounding to
// whole huge pages wastes little.
constexpr size_t kHugePageBytes = size_t{2} << 20;

// `bytes` (a multiple of kHugePageBytes) of zeroed memory at a
// kHugePageBytes-aligned address, or nullptr. Maps one huge page more than
// asked and unmaps the unaligned head and tail.
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

bool IsPowerOfTwo(uint32_t value) { return value != 0 && (value & (value - 1)) == 0; }

bool ReadAlignment(const Napi::CallbackInfo& info, size_t index, uint32_t* alignment) {
  double value = info.Length() > index && info[index].IsNumber()
                     ? info[index].As<Napi::Number>().DoubleValue()
                     : -1;
  if (!(value >= 1 && value <= kAlignmentMax) || std::floor(value) != value ||
      !IsPowerOfTwo(static_cast<uint32_t>(value))) {
    ThrowCoded(info.Env(), JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               "alignment must be a power of two from 1 to 1 MiB");
    return false;
  }
  *alignment = static_cast<uint32_t>(value);
  return true;
}

}  // namespace

// allocAligned(sizeBytes, alignment) -> zeroed Buffer whose memory address is
// a multiple of `alignment`.
Napi::Value AllocAligned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double size = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(size >= 0 && size <= kAlignedBufferSizeMax) || std::floor(size) != size) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               "sizeBytes must be an integer from 0 to 1 GiB");
    return env.Undefined();
  }
  uint32_t alignment = 0;
  if (!ReadAlignment(info, 1, &alignment)) return env.Undefined();
  size_t size_bytes = static_cast<size_t>(size);
  void* memory = nullptr;
  size_t mapped_bytes = 0;
  if (size_bytes >= kHugePageBytes) {
    // Every alignment accepted (at most 1 MiB) divides kHugePageBytes.
    mapped_bytes = (size_bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    memory = MapHugePages(mapped_bytes);
  } else {
    // posix_memalign needs a multiple of sizeof(void*); a zero-size request
    // still gets a real (aligned) allocation so the Buffer owns something.
    size_t alloc_alignment = alignment < sizeof(void*) ? sizeof(void*) : alignment;
    if (posix_memalign(&memory, alloc_alignment, size_bytes == 0 ? alloc_alignment : size_bytes) != 0) memory = nullptr;
    if (memory != nullptr) memset(memory, 0, size_bytes);
  }
  if (memory == nullptr) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_OUT_OF_MEMORY", "allocAligned: out of memory");
    return env.Undefined();
  }
  // V8 is told what the buffer really takes (a mapping is rounded up).
  const int64_t footprint_bytes = static_cast<int64_t>(mapped_bytes > 0 ? mapped_bytes : size_bytes);
  int64_t adjusted = 0;
  napi_adjust_external_memory(env, footprint_bytes, &adjusted);
  auto* block = new AlignedBlock(memory, size_bytes, mapped_bytes);
  Napi::Buffer<uint8_t> buffer = Napi::Buffer<uint8_t>::New(
      env, static_cast<uint8_t*>(memory), size_bytes,
      [](Napi::Env finalize_env, uint8_t*, AlignedBlock* finalized) {
        // JS lets go of the memory here (GC, or the environment's teardown);
        // the bytes stay until no command in flight uses them.
        int64_t unused = 0;
        napi_adjust_external_memory(finalize_env, -static_cast<int64_t>(finalized->footprint_bytes()), &unused);
        finalized->Release();
      },
      block);
  if (buffer.IsEmpty()) {
    // napi threw (its finalizer will never run): nothing holds the block.
    napi_adjust_external_memory(env, -footprint_bytes, &adjusted);
    block->Release();
    return env.Undefined();
  }
  // Unattached, the block could never be pinned, and IO in flight on it at a
  // thread's teardown would write into freed memory again: refuse the buffer
  // instead (its finalizer frees the block when it is collected).
  if (!block->Attach(env, buffer.ArrayBuffer())) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_OUT_OF_MEMORY", "allocAligned: could not tag the buffer's memory for pinning");
    return env.Undefined();
  }
  return buffer;
}

bool AlignedBlock::Attach(napi_env env, napi_value array_buffer) {
  return napi_type_tag_object(env, array_buffer, &kAlignedBlockTag) == napi_ok &&
         napi_wrap(env, array_buffer, this, nullptr, nullptr, nullptr) == napi_ok;
}

AlignedBlock* AlignedBlock::Of(napi_env env, napi_value array_buffer) {
  bool tagged = false;
  if (napi_check_object_type_tag(env, array_buffer, &kAlignedBlockTag, &tagged) != napi_ok || !tagged) {
    return nullptr;
  }
  void* native = nullptr;
  if (napi_unwrap(env, array_buffer, &native) != napi_ok) return nullptr;
  return static_cast<AlignedBlock*>(native);
}

void AlignedBlock::Pin() {
  assert(!released_);  // a finalized Buffer can no longer be passed to an operation
  pin_count_++;
}

void AlignedBlock::Unpin() {
  assert(pin_count_ > 0);
  pin_count_--;
  if (pin_count_ == 0 && released_) delete this;
}

void AlignedBlock::Release() {
  assert(!released_);
  released_ = true;
  if (pin_count_ == 0) delete this;
}

AlignedBlock::~AlignedBlock() {
  assert(released_ && pin_count_ == 0);
  if (mapped_bytes_ > 0) {
    munmap(memory_, mapped_bytes_);
  } else {
    free(memory_);
  }
}

// bufferAddressModulo(view, alignment) -> address of the view's first byte
// modulo `alignment` (0 when aligned).
Napi::Value BufferAddressModulo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t alignment = 0;
  if (info.Length() < 1 || !(info[0].IsTypedArray() || info[0].IsDataView())) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG", "buffer must be a Buffer, TypedArray or DataView");
    return env.Undefined();
  }
  if (!ReadAlignment(info, 1, &alignment)) return env.Undefined();
  // Through the C API, which reads a SharedArrayBuffer-backed view too.
  uint8_t* data = nullptr;
  size_t length = 0;
  if (!ViewSpan(env, info[0], &data, &length)) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG", "buffer must be a Buffer, TypedArray or DataView");
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(data) % alignment));
}

}  // namespace ringstore
