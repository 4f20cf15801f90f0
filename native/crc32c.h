// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
// every ringstore on-disk structure. Hardware instructions where the CPU has
// them (SSE4.2 on x86-64, the CRC extension on ARMv8), a table otherwise.
// format/crc32c.ts holds the portable TypeScript twin; a test keeps them equal.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace ringstore {

// Continues `crc` (0 for a fresh checksum) over `length` bytes. Standard
// conventions: pre- and post-inverted, so Crc32c(0, "123456789") = 0xE3069283.
uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t length);

Napi::Value Crc32cJs(const Napi::CallbackInfo& info);  // (view, seed) -> uint32

}  // namespace ringstore
