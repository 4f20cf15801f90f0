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

// Feeds `count` zero bytes to the raw register: crc · x^(8·count) mod P.
uint32_t FeedZeros(uint32_t crc, size_t count) {
  const Table& table = GetTable();
  while (count-- > 0) crc = (crc >> 8) ^ table.entries[0][crc & 0xff];
  return crc;
}

// Shifts a raw register over a fixed number of zero bytes in four lookups.
// Feeding zeros is linear over GF(2), so the shift of a register is the XOR
// of the shifts of its set bits; entries[k][b] is the shift of byte b at
// bits 8k..8k+7.
struct ShiftTable {
  uint32_t entries[4][256];

  // Over `bytes` zero bytes, fed one at a time (the shortest stripe only:
  // ~8 k steps; longer shifts repeat it, so building the tables costs tens
  // of microseconds at the first checksum, not a millisecond).
  static ShiftTable OfZeros(size_t bytes) {
    uint32_t of_bit[32];
    for (int bit = 0; bit < 32; bit++) of_bit[bit] = FeedZeros(1u << bit, bytes);
    return ShiftTable(of_bit);
  }

  // `times` shifts of `by` in a row.
  static ShiftTable Repeated(const ShiftTable& by, int times) {
    uint32_t of_bit[32];
    for (int bit = 0; bit < 32; bit++) {
      uint32_t shifted = 1u << bit;
      for (int i = 0; i < times; i++) shifted = by.Shift(shifted);
      of_bit[bit] = shifted;
    }
    return ShiftTable(of_bit);
  }

  uint32_t Shift(uint32_t crc) const {
    return entries[0][crc & 0xff] ^ entries[1][(crc >> 8) & 0xff] ^ entries[2][(crc >> 16) & 0xff] ^
           entries[3][crc >> 24];
  }

 private:
  explicit ShiftTable(const uint32_t (&of_bit)[32]) {
    for (int k = 0; k < 4; k++) {
      for (uint32_t b = 0; b < 256; b++) {
        uint32_t shifted = 0;
        for (int bit = 0; bit < 8; bit++) {
          if ((b >> bit) & 1) shifted ^= of_bit[8 * k + bit];
        }
        entries[k][b] = shifted;
      }
    }
  }
};

// The CRC instruction takes ~3 cycles to give its result and can start one
// a cycle, so a single chain of them uses a third of it. Three chains run
// over three adjacent stripes of a block, the second and third from a zero
// register, and are joined by shifting: over stripes A|B|C from register r,
// crc = shift(2s, crc(r, A)) ^ shift(s, crc(0, B)) ^ crc(0, C). On a
// 2 × AMD EPYC VM, a call from JS: 4 KiB 0.48 µs with one chain, 0.23 µs
// with three; 1 MiB 88 µs and 30 µs (docs/benchmarks.md, "Session 30").
constexpr size_t kLongStripeBytes = 4096;  // blocks of 12 KiB: large values, WAL frames
constexpr size_t kShortStripeBytes = 256;  // blocks of 768 B: the rest of a 4 KiB page
static_assert(kShortStripeBytes % 8 == 0 && kLongStripeBytes % kShortStripeBytes == 0, "stripes are whole words, the long ones whole short ones");

// Declared in the order they are built: each from the one before.
struct StripeShifts {
  ShiftTable short_one = ShiftTable::OfZeros(kShortStripeBytes);
  ShiftTable short_two = ShiftTable::Repeated(short_one, 2);
  ShiftTable long_one = ShiftTable::Repeated(short_one, kLongStripeBytes / kShortStripeBytes);
  ShiftTable long_two = ShiftTable::Repeated(long_one, 2);
};

const StripeShifts& GetStripeShifts() {
  static const StripeShifts shifts;
  return shifts;
}

inline uint64_t LoadWord(const uint8_t* data) {
  uint64_t word;
  memcpy(&word, data, 8);
  return word;
}

#if defined(__x86_64__) || defined(__aarch64__)
#if defined(__x86_64__)
#define RINGSTORE_CRC_TARGET __attribute__((target("sse4.2")))
RINGSTORE_CRC_TARGET inline uint32_t StepWord(uint32_t crc, uint64_t word) {
  return static_cast<uint32_t>(__builtin_ia32_crc32di(crc, word));
}
RINGSTORE_CRC_TARGET inline uint32_t StepByte(uint32_t crc, uint8_t byte) { return __builtin_ia32_crc32qi(crc, byte); }
bool HardwareAvailable() { return __builtin_cpu_supports("sse4.2"); }
#else
#define RINGSTORE_CRC_TARGET __attribute__((target("+crc")))
RINGSTORE_CRC_TARGET inline uint32_t StepWord(uint32_t crc, uint64_t word) { return __builtin_aarch64_crc32cx(crc, word); }
RINGSTORE_CRC_TARGET inline uint32_t StepByte(uint32_t crc, uint8_t byte) { return __builtin_aarch64_crc32cb(crc, byte); }
bool HardwareAvailable() {
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)  // arch/arm64/include/uapi/asm/hwcap.h
#endif
  return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
}
#endif

// One block of three stripes of `stripe` bytes each.
RINGSTORE_CRC_TARGET uint32_t ExtendStripes(uint32_t crc, const uint8_t* data, size_t stripe, const ShiftTable& one,
                                            const ShiftTable& two) {
  uint32_t first = crc;
  uint32_t second = 0;
  uint32_t third = 0;
  for (size_t at = 0; at < stripe; at += 8) {
    first = StepWord(first, LoadWord(data + at));
    second = StepWord(second, LoadWord(data + stripe + at));
    third = StepWord(third, LoadWord(data + 2 * stripe + at));
  }
  return two.Shift(first) ^ one.Shift(second) ^ third;
}

RINGSTORE_CRC_TARGET uint32_t ExtendHardware(uint32_t crc, const uint8_t* data, size_t length) {
  const StripeShifts& shifts = GetStripeShifts();
  while (length >= 3 * kLongStripeBytes) {
    crc = ExtendStripes(crc, data, kLongStripeBytes, shifts.long_one, shifts.long_two);
    data += 3 * kLongStripeBytes;
    length -= 3 * kLongStripeBytes;
  }
  while (length >= 3 * kShortStripeBytes) {
    crc = ExtendStripes(crc, data, kShortStripeBytes, shifts.short_one, shifts.short_two);
    data += 3 * kShortStripeBytes;
    length -= 3 * kShortStripeBytes;
  }
  while (length >= 8) {
    crc = StepWord(crc, LoadWord(data));
    data += 8;
    length -= 8;
  }
  while (length-- > 0) crc = StepByte(crc, *data++);
  return crc;
}
#undef RINGSTORE_CRC_TARGET
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
