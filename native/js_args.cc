#include "js_args.h"

#include <cassert>
#include <cmath>
#include <string>

#include "aligned_buffer.h"
#include "napi_errors.h"

namespace ringstore {

bool ReadOptionUint(Napi::Env env, Napi::Object options, const char* name, uint32_t min,
                    uint32_t max, uint32_t* out) {
  assert(min <= max);
  Napi::Value value = options.Get(name);
  // A getter that threw: its exception is pending, and is the answer.
  if (env.IsExceptionPending()) return false;
  if (value.IsUndefined()) return true;
  if (!value.IsNumber()) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG",
               std::string("option '") + name + "' must be a number");
    return false;
  }
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= min && number <= max) || std::floor(number) != number) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               std::string("option '") + name + "' must be an integer from " + std::to_string(min) +
                   " to " + std::to_string(max) + ", got " + std::to_string(number));
    return false;
  }
  *out = static_cast<uint32_t>(number);
  return true;
}

namespace {

// A view's bytes and ArrayBuffer through the C API, which reads them for a
// SharedArrayBuffer too. False for a value that is no view.
bool ReadView(napi_env env, napi_value raw, void** data, size_t* length, napi_value* array_buffer) {
  bool is_typed_array = false;
  bool is_data_view = false;
  napi_is_typedarray(env, raw, &is_typed_array);
  if (!is_typed_array) napi_is_dataview(env, raw, &is_data_view);
  *data = nullptr;
  *length = 0;
  if (is_typed_array) {
    napi_typedarray_type type;
    size_t element_count = 0;
    size_t byte_offset = 0;
    // `data` comes adjusted by the view's byte offset.
    if (napi_get_typedarray_info(env, raw, &type, &element_count, data, array_buffer, &byte_offset) != napi_ok) return false;
    size_t element_size = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: element_size = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: element_size = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: element_size = 8; break;
      default: element_size = 1; break;
    }
    *length = element_count * element_size;
    return true;
  }
  if (is_data_view) {
    size_t byte_offset = 0;
    return napi_get_dataview_info(env, raw, length, data, array_buffer, &byte_offset) == napi_ok;
  }
  return false;
}

}  // namespace

bool ViewSpan(Napi::Env env, napi_value value, uint8_t** data, size_t* length) {
  void* bytes = nullptr;
  napi_value array_buffer = nullptr;
  if (!ReadView(env, value, &bytes, length, &array_buffer)) return false;
  *data = static_cast<uint8_t*>(bytes);
  return true;
}

bool ViewMemory(Napi::Env env, Napi::Value value, void** data, size_t* length, napi_value* array_buffer) {
  if (!ReadView(env, value, data, length, array_buffer)) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG",
               "buffer must be a Buffer, TypedArray or DataView");
    return false;
  }
  if (*data == nullptr || *length == 0) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG",
               "buffer is empty or its ArrayBuffer is detached");
    return false;
  }
  if (*length > kTransferSizeMax) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               "buffer is larger than the 1 GiB transfer limit");
    return false;
  }
  return true;
}

bool ReadDirectAlignment(Napi::Env env, Napi::Value value, uint32_t* out) {
  double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  uint32_t alignment = number >= 0 && number <= kAlignmentMax ? static_cast<uint32_t>(number) : 0;
  if (!(number >= 0 && number <= kAlignmentMax) || static_cast<double>(alignment) != number ||
      (alignment & (alignment - 1)) != 0) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               "directAlignment must be 0 or a power of two up to 1 MiB");
    return false;
  }
  *out = alignment;
  return true;
}

}  // namespace ringstore
