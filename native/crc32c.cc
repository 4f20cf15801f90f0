#include "crc32c.h"

#include <cmath>
#include <cstring>

#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include "js_args.h"
#include "napi_errors.h"

namespace ringstore {

namespace {

constexpr uint32_t kPolynomialReflected = 0x82F63B78u;

struct Table {
  uint32_t entries[8][256];
  Table() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (kPolynomialReflected & (0u - (crc & 1)));
      entries[0][i] = crc;
    }
    for (uint32_t i = 0; i < 256; i++) {
      for (int slice = 1; slice < 8; slice++) {
        entries[slice][i] = (entries[slice - 1][i] >> 8) ^ entries[0][entries[slice - 1][i] & 0xff];
      }
    }
  }
};

const Table& GetTable() {
  static const Table table;
  return table;
}

// Slicing-by-8 over the raw (un-inverted) register.
uint32_t ExtendPortable(uint32_t crc, const uint8_t* data, size_t length) {
  const Table& table = GetTable();
  while (length >= 8) {
    uint32_t low;
    uint32_t high;
    memcpy(&low, data, 4);
    memcpy(&high, data + 4, 4);
    low ^= crc;  // little-endian hosts only (x86-64, arm64)
    crc = table.entries[7][low & 0xff] ^ table.entries[6][(low >> 8) & 0xff] ^
          table.entries[5][(low >> 16) & 0xff] ^ table.entries[4][low >> 24] ^
          table.entries[3][high & 0xff] ^ table.entries[2][(high >> 8) & 0xff] ^
          table.entries[1][(high >> 16) & 0xff] ^ table.entries[0][high >> 24];
    data += 8;
    length -= 8;
  }
  while (length-- > 0) crc = (crc >> 8) ^ table.entries[0][(crc ^ *data++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendHardware(uint32_t crc, const uint8_t* data,
                                                          size_t length) {
  uint64_t crc64 = crc;
  while (length >= 8) {
    uint64_t word;
    memcpy(&word, data, 8);
    crc64 = __builtin_ia32_crc32di(crc64, word);
    data += 8;
    length -= 8;
  }
  uint32_t crc32 = static_cast<uint32_t>(crc64);
  while (length-- > 0) crc32 = __builtin_ia32_crc32qi(crc32, *data++);
  return crc32;
}
bool HardwareAvailable() { return __builtin_cpu_supports("sse4.2"); }
#elif defined(__aarch64__)
__attribute__((target("+crc"))) uint32_t ExtendHardware(uint32_t crc, const uint8_t* data,
                                                        size_t length) {
  while (length >= 8) {
    uint64_t word;
    memcpy(&word, data, 8);
    crc = __builtin_aarch64_crc32cx(crc, word);
    data += 8;
    length -= 8;
  }
  while (length-- > 0) crc = __builtin_aarch64_crc32cb(crc, *data++);
  return crc;
}
bool HardwareAvailable() {
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)  // arch/arm64/include/uapi/asm/hwcap.h
#endif
  return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
}
#else
uint32_t ExtendHardware(uint32_t crc, const uint8_t* data, size_t length) {
  return ExtendPortable(crc, data, length);
}
bool HardwareAvailable() { return false; }
#endif

}  // namespace

uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t length) {
  static const bool hardware = HardwareAvailable();
  uint32_t state = ~crc;
  state = hardware ? ExtendHardware(state, data, length) : ExtendPortable(state, data, length);
  return ~state;
}

// crc32c(view, seed) -> uint32. The view is read in place, synchronously.
Napi::Value Crc32cJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG", "crc32c(view, seed): view must be a TypedArray");
    return env.Undefined();
  }
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  double seed = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  if (!(seed >= 0 && seed <= 4294967295.0) || std::floor(seed) != seed) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "crc32c seed must be a uint32");
    return env.Undefined();
  }
  // Read through the C API: view.ArrayBuffer() fails for a SharedArrayBuffer
  // (leaving an exception pending, which the throw below would make fatal).
  uint8_t* data = nullptr;
  size_t length = 0;
  if (!ViewSpan(env, view, &data, &length)) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG", "crc32c(view, seed): view must be a TypedArray");
    return env.Undefined();
  }
  // A detached view is empty: the checksum of no bytes.
  uint32_t crc = Crc32c(static_cast<uint32_t>(seed), data, data == nullptr ? 0 : length);
  return Napi::Number::New(env, crc);
}

}  // namespace ringstore
