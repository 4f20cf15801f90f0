// RingClient, the uv-side completion spin (see ring_client.h): while fast
// commands are in flight, the loop's prepare hook busy-waits up to
// completionSpinUs for completions and delivers them itself, and an active
// idle handle keeps the loop polling instead of sleeping in epoll.
#include "ring_client.h"

namespace ringstore {

void RingClient::OnPrepare(uv_prepare_t* handle) {
  static_cast<RingClient*>(handle->data)->PollBeforeSleep();
}

void RingClient::StartSpinWindow() {
  uint32_t window_us = SpinWindowUs();
  if (window_us == 0 || idle_ == nullptr) return;
  // Only fast commands are worth a busy-wait (Command::IsSlow).
  if (in_flight_js_ == slow_in_flight_js_) return;
  spin_deadline_ns_ = MonotonicNowNs() + uint64_t{window_us} * 1000;
  if (!idle_active_) {
    // The callback does nothing: an active idle handle only tells the loop
    // to poll with a zero timeout, so it comes back to PollBeforeSleep.
    uv_idle_start(idle_, [](uv_idle_t*) {});
    idle_active_ = true;
  }
}

void RingClient::PollBeforeSleep() {
  if (!idle_active_) return;
  if (in_flight_js_ == slow_in_flight_js_ || !tsfn_live_) {
    uv_idle_stop(idle_);
    idle_active_ = false;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    js_polling_ = true;
  }
  // Acquire pairs with the release store in Post: the count is only a cheap
  // signal; TakeReady re-reads the completions under the lock.
  uint64_t now_ns = MonotonicNowNs();
  while (ready_count_.load(std::memory_order_acquire) == 0 && now_ns < spin_deadline_ns_) {
    // A CQE of the direct ring (a lone read) becomes ready here; its eventfd
    // signal then finds nothing left (OnDirectReadable).
    if (direct_ring_ && direct_ring_->in_flight() > 0) direct_ring_->Reap();
    CpuRelax();
    now_ns = MonotonicNowNs();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    js_polling_ = false;
  }
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  size_t count = TakeReady(env);
  if (count == 0) {
    // The window passed with nothing done: sleep in epoll, and let the
    // threadsafe function wake the loop when the completions come.
    uv_idle_stop(idle_);
    idle_active_ = false;
    return;
  }
  // The delivery may have ended the policy's spinning epoch: the window
  // is re-read, and a 0 lets the next PollBeforeSleep sleep at once.
  spin_deadline_ns_ = now_ns + uint64_t{SpinWindowUs()} * 1000;
  // MakeCallback (not Call): we are in a libuv callback, and the promise
  // reactions this resolves must run before the loop moves on.
  DeliverToJs(env, on_completions_.Value(), count, async_context_);
}

void RingClient::RecordSpinObservation(uint32_t fast_completions) {
  uint64_t now_ns = MonotonicNowNs();
  uint64_t busy_ns = now_ns > busy_mark_ns_ ? now_ns - busy_mark_ns_ : 0;
  busy_mark_ns_ = now_ns;
  completion_spin_policy_.Record(fast_completions, busy_ns);
}

}  // namespace ringstore
