// spinPolicyRun: the SpinPolicy (spin_policy.h) driven by a JS model of a
// machine, for the tests: the model answers each decision with a synthetic
// observation, so the schedule is checked without clocks or IO.
#include "spin_policy.h"

#include <cmath>
#include <string>

#include "napi_errors.h"

namespace ringstore {

namespace {

// A run longer than any test needs would only be a mistake (or a way to
// make the addon allocate without bound).
constexpr double kTraceStepCountMax = 1 << 20;

}  // namespace

// spinPolicyRun(kind: 'actor' | 'client' | 'lone-reads', stepCount, observe)
//   observe(spinning: boolean, stepIndex: number) returns the observation
//   [completions, busyNs] (non-negative integers) made under the decision
//   `spinning`; it is fed to the policy, and the decision after it is
//   recorded. Returns the stepCount decisions (the one each step ran under).
Napi::Value SpinPolicyRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsFunction()) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG", "spinPolicyRun(kind, stepCount, observe)");
    return env.Undefined();
  }
  std::string kind = info[0].As<Napi::String>().Utf8Value();
  if (kind != "actor" && kind != "client" && kind != "lone-reads") {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "kind must be 'actor', 'client' or 'lone-reads'");
    return env.Undefined();
  }
  double step_count = info[1].As<Napi::Number>().DoubleValue();
  if (!(step_count >= 0 && step_count <= kTraceStepCountMax) || std::floor(step_count) != step_count) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "stepCount must be an integer from 0 to 2^20");
    return env.Undefined();
  }
  Napi::Function observe = info[2].As<Napi::Function>();
  SpinPolicy policy(kind == "actor" ? kActorSpinPolicy : kind == "client" ? kClientSpinPolicy : kLoneReadRoutePolicy);
  uint32_t steps = static_cast<uint32_t>(step_count);
  Napi::Array decisions = Napi::Array::New(env, steps);
  for (uint32_t i = 0; i < steps; i++) {
    bool spinning = policy.spinning();
    decisions.Set(i, Napi::Boolean::New(env, spinning));
    napi_value args[2] = {Napi::Boolean::New(env, spinning), Napi::Number::New(env, i)};
    napi_value returned;
    if (napi_call_function(env, env.Undefined(), observe, 2, args, &returned) != napi_ok) {
      return env.Undefined();  // observe threw: its exception is pending
    }
    Napi::Value pair(env, returned);
    double values[2] = {-1, -1};
    if (pair.IsArray() && pair.As<Napi::Array>().Length() == 2) {
      for (uint32_t j = 0; j < 2; j++) {
        Napi::Value value = pair.As<Napi::Array>().Get(j);
        if (env.IsExceptionPending()) return env.Undefined();  // a getter threw
        if (value.IsNumber()) values[j] = value.As<Napi::Number>().DoubleValue();
      }
    }
    for (double value : values) {
      if (!(value >= 0 && value <= 9007199254740991.0) || std::floor(value) != value) {
        ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
                   "observe must return [completions, busyNs], non-negative integers");
        return env.Undefined();
      }
    }
    policy.Record(static_cast<uint64_t>(values[0]), static_cast<uint64_t>(values[1]));
  }
  return decisions;
}

}  // namespace ringstore
