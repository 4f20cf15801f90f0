// Reading the values JS hands to the addon's ring entry points: option
// numbers, buffers (any ArrayBufferView) and a file's direct-IO alignment.
//
// This is the boundary where nothing from JS is trusted: the TS layer
// (native/ring_file.ts, native/io_uring_actor.ts) checks the same things
// first and reports them with better messages, but a value that reaches the
// addon some other way (a buffer detached between the two checks, a caller
// that bypasses the wrapper) must still be refused here, before any of it
// reaches an actor or the kernel.
//
// Every reader has the same contract: it returns true and sets `*out`
// (`*data`, ...), or returns false after throwing a coded JS exception
// (napi_errors.h: TypeError / RangeError with code ERR_INVALID_ARG) and
// leaves the outputs unspecified. The caller must return to JS at once after
// a false. JS thread only; none of them allocates or touches an actor.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

#include "command.h"

namespace ringstore {

// File offsets and lengths must be exact in a JS number (2^53) and valid for
// the kernel (loff_t is signed 64-bit, so 2^53 - 1 is far inside it).
constexpr double kOffsetMax = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

// The bit of `kind` in an entry point's set of accepted OpKinds.
constexpr uint32_t KindBit(OpKind kind) { return uint32_t{1} << static_cast<uint32_t>(kind); }
static_assert(kOpKindCount <= 32, "the accepted-kinds set is a uint32_t bit set");

// options[name]: left unchanged when undefined; otherwise an integer in
// [min, max].
bool ReadOptionUint(Napi::Env env, Napi::Object options, const char* name, uint32_t min,
                    uint32_t max, uint32_t* out);

// The bytes a Buffer, TypedArray or DataView views now, whatever its
// ArrayBuffer (a SharedArrayBuffer's too: Napi::TypedArray::ArrayBuffer()
// fails for those, leaving an exception pending). False, throwing nothing,
// for any other value. A detached or empty view is `*length` 0 and `*data`
// possibly null. Unlike the readers below, it throws nothing itself.
bool ViewSpan(Napi::Env env, napi_value value, uint8_t** data, size_t* length);

// A Buffer, TypedArray or DataView: its first byte, its length in bytes and
// its ArrayBuffer (for AlignedBlock::Of). Refused when the value is no view,
// is empty or detached (data == nullptr), or is longer than kTransferSizeMax.
// ENSURES on true: *data != nullptr, 0 < *length <= kTransferSizeMax.
bool ViewMemory(Napi::Env env, Napi::Value value, void** data, size_t* length,
                napi_value* array_buffer);

// The direct-IO alignment a transfer must keep when it is continued: 0 for
// buffered files, else a power of two up to kAlignmentMax.
bool ReadDirectAlignment(Napi::Env env, Napi::Value value, uint32_t* out);

}  // namespace ringstore
