// RingClient, stats(): the actor's counters and latency summaries (all
// clients of the actor together) as the JS object native/addon.ts types as
// NativeActorStats.
#include "napi_errors.h"
#include "ring_client.h"

namespace ringstore {

Napi::Value RingClient::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!actor_) {
    ThrowCoded(env, JsErrorKind::kError, "ERR_RING_CLOSED", "the ring is closed");
    return env.Undefined();
  }
  ActorStats stats = actor_->Stats();
  auto summary = [&](const LatencyHistogram::Summary& s) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("count", Napi::Number::New(env, static_cast<double>(s.count)));
    out.Set("p50", Napi::Number::New(env, s.p50_us));
    out.Set("p99", Napi::Number::New(env, s.p99_us));
    out.Set("max", Napi::Number::New(env, s.max_us));
    out.Set("mean", Napi::Number::New(env, s.mean_us));
    return out;
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("submitted", Napi::Number::New(env, static_cast<double>(stats.commands_submitted)));
  out.Set("completed", Napi::Number::New(env, static_cast<double>(stats.commands_completed)));
  out.Set("sqesSubmitted", Napi::Number::New(env, static_cast<double>(stats.sqes_submitted)));
  out.Set("batches", Napi::Number::New(env, static_cast<double>(stats.batches)));
  out.Set("waits", Napi::Number::New(env, static_cast<double>(stats.waits)));
  out.Set("inFlight", Napi::Number::New(env, static_cast<double>(stats.in_flight)));
  out.Set("continuations", Napi::Number::New(env, static_cast<double>(stats.continuations)));
  // This client's own (a JS thread's), unlike the actor's counters above.
  out.Set("directWrites", Napi::Number::New(env, static_cast<double>(direct_writes_)));
  out.Set("directReads", Napi::Number::New(env, static_cast<double>(direct_reads_taken_)));
  uint64_t direct_continuations = direct_continuations_ + (direct_ring_ ? direct_ring_->continuations() : 0);
  out.Set("directContinuations", Napi::Number::New(env, static_cast<double>(direct_continuations)));
  out.Set("queuedUs", summary(stats.queued));
  out.Set("kernelUs", summary(stats.kernel));
  auto spin = [&](bool adaptive, bool spinning, uint64_t probes, uint64_t wins) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("adaptive", Napi::Boolean::New(env, adaptive));
    out.Set("spinning", Napi::Boolean::New(env, spinning));
    out.Set("probeCount", Napi::Number::New(env, static_cast<double>(probes)));
    out.Set("spinWinCount", Napi::Number::New(env, static_cast<double>(wins)));
    return out;
  };
  out.Set("actorSpin", spin(stats.spin_adaptive, stats.spinning,
                            stats.spin_probe_count, stats.spin_win_count));
  out.Set("completionSpin", spin(completion_spin_adaptive_, SpinWindowUs() > 0, completion_spin_policy_.probe_count(),
                                 completion_spin_policy_.spin_win_count()));
  Napi::Object route = Napi::Object::New(env);
  route.Set("direct", Napi::Boolean::New(env, direct_reads_ && direct_ring_ && !lone_read_route_.spinning()));
  route.Set("probeCount", Napi::Number::New(env, static_cast<double>(lone_read_route_.probe_count())));
  route.Set("actorWinCount", Napi::Number::New(env, static_cast<double>(lone_read_route_.spin_win_count())));
  out.Set("loneReadRoute", route);
  return out;
}

}  // namespace ringstore
