// Coded JS exceptions thrown from native code. The TS layer owns the error
// classes; native code only sets the stable `code` (and errno/syscall for the
// kernel's errors), and native/errors.ts turns those into its classes.
#pragma once

#include <napi.h>

#include <string>

namespace ringstore {

enum class JsErrorKind { kError, kTypeError, kRangeError };

inline Napi::Error MakeCodedError(Napi::Env env, JsErrorKind kind, const char* code,
                                  const std::string& message) {
  Napi::Error error = kind == JsErrorKind::kTypeError    ? Napi::TypeError::New(env, message)
                      : kind == JsErrorKind::kRangeError ? Napi::RangeError::New(env, message)
                                                         : Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

inline void ThrowCoded(Napi::Env env, JsErrorKind kind, const char* code,
                       const std::string& message) {
  MakeCodedError(env, kind, code, message).ThrowAsJavaScriptException();
}

// An error from a system call, shaped like Node's own: errno, syscall, and a
// code the TS layer fills from errno (util.getSystemErrorName).
inline Napi::Error MakeSystemError(Napi::Env env, int error_errno, const char* syscall,
                                   const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, -error_errno));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

}  // namespace ringstore
