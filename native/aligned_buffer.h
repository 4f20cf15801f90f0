// Aligned buffers for direct IO: memory from posix_memalign owned by a Node
// Buffer (freed by the Buffer's finalizer), and an address check.
#pragma once

#include <napi.h>

#include "command.h"

namespace ringstore {

// Largest buffer allocAligned hands out: one 1 GiB transfer (kTransferSizeMax).
constexpr double kAlignedBufferSizeMax = static_cast<double>(kTransferSizeMax);
// Largest alignment accepted: 1 MiB (huge-page-ish) — more is a caller bug.
constexpr uint32_t kAlignmentMax = 1u << 20;

Napi::Value AllocAligned(const Napi::CallbackInfo& info);         // (sizeBytes, alignment)
Napi::Value BufferAddressModulo(const Napi::CallbackInfo& info);  // (view, alignment)

}  // namespace ringstore
