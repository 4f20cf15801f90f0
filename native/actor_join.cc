#include "actor_join.h"

#include <string.h>

#include <cassert>
#include <cmath>
#include <string>

#include "js_args.h"
#include "napi_errors.h"

namespace ringstore {

std::shared_ptr<Actor> JoinActor(Napi::Env env, Napi::Value spec_value) {
  if (spec_value.IsNumber()) {
    double id = spec_value.As<Napi::Number>().DoubleValue();
    if (!(id >= 1 && id <= 0xffffffff) || std::floor(id) != id) {
      ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "ring id must be a positive integer");
      return nullptr;
    }
    std::shared_ptr<Actor> actor = Actor::Find(static_cast<uint32_t>(id));
    if (!actor) {
      ThrowCoded(env, JsErrorKind::kError, "ERR_RING_NOT_FOUND",
                 "no open ring has id " + std::to_string(static_cast<uint32_t>(id)) +
                     " in this process (it was closed, or the id is from another process)");
      return nullptr;
    }
    return actor;
  }
  if (!spec_value.IsObject()) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG",
               "actorSpec must be a ring id or an options object");
    return nullptr;
  }
  Napi::Object spec = spec_value.As<Napi::Object>();
  ActorOptions options;
  uint32_t spin_adaptive = 0;
  if (!ReadOptionUint(env, spec, "entries", kRingEntriesMin, kRingEntriesMax, &options.entries) ||
      !ReadOptionUint(env, spec, "batchSize", 1, kRingEntriesMax, &options.batch_size) ||
      !ReadOptionUint(env, spec, "spinUs", 0, kSpinUsMax, &options.spin_us) ||
      !ReadOptionUint(env, spec, "spinAdaptive", 0, 1, &spin_adaptive) ||
      !ReadOptionUint(env, spec, "threadCount", 1, kThreadCountMax, &options.thread_count) ||
      !ReadOptionUint(env, spec, "shortTransferEvery", 0, kShortTransferEveryMax,
                      &options.short_transfer_every)) {
    return nullptr;
  }
  options.spin_adaptive = spin_adaptive != 0;
  Napi::Value backend_value = spec.Get("backend");
  if (env.IsExceptionPending()) return nullptr;  // its getter threw
  std::string backend = backend_value.IsString() ? backend_value.As<Napi::String>().Utf8Value() : std::string("io_uring");
  if (backend != "io_uring" && backend != "threads") {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               "backend must be 'io_uring' or 'threads'");
    return nullptr;
  }
  ActorStartFailure failure;
  std::shared_ptr<Actor> actor = backend == "threads" ? Actor::StartThreadPool(options, &failure)
                                                      : Actor::StartUring(options, &failure);
  if (actor) return actor;
  assert(failure.syscall != nullptr);
  std::string why = failure.reason.empty() ? strerror(failure.error_errno) : failure.reason;
  if (strcmp(failure.syscall, "io_uring_setup") == 0) {
    Napi::Error error = MakeSystemError(env, failure.error_errno, "io_uring_setup", why);
    error.Set("code", Napi::String::New(env, "ERR_IO_URING_UNAVAILABLE"));
    error.Set("reason", Napi::String::New(env, why));
    error.ThrowAsJavaScriptException();
    return nullptr;
  }
  // No thread or no eventfd: the process is out of a resource, which says
  // nothing about io_uring (a fallback to threads would fail the same way).
  MakeSystemError(env, failure.error_errno, failure.syscall,
                  "could not start the ring's " + backend + " backend: " + failure.syscall + ": " + why)
      .ThrowAsJavaScriptException();
  return nullptr;
}

}  // namespace ringstore
