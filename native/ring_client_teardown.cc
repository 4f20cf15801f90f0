// RingClient, teardown (see ring_client.h): close() from JS, the env cleanup
// hook when the thread ends with the client open, and the destructor. All
// three end in DetachBlocking, which waits until the actor has posted every
// command of this client and then undoes what the constructor set up.
#include "napi_errors.h"
#include "ring_client.h"

namespace ringstore {

Napi::Value RingClient::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (in_flight_js_ != 0) {
    ThrowCoded(env, JsErrorKind::kError, "ERR_RING_BUSY", "close() with operations in flight");
    return env.Undefined();
  }
  DetachBlocking();
  if (cleanup_hook_added_) {
    napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    cleanup_hook_added_ = false;
  }
  completions_ref_.Reset();
  return env.Undefined();
}

RingClient::~RingClient() {
  // Normally close() ran first. If not (the env is being torn down), make sure
  // the actor holds nothing of ours before the slots are freed.
  DetachBlocking();
  if (cleanup_hook_added_) {
    napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    cleanup_hook_added_ = false;
  }
}

void RingClient::OnEnvCleanup(void* arg) {
  RingClient* client = static_cast<RingClient*>(arg);
  client->cleanup_hook_added_ = false;
  client->DetachBlocking();
}

void RingClient::DetachBlocking() {
  // A held wake would leave commands queued that the wait below needs done.
  wakes_held_ = false;
  ReleaseWake();
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  // This thread's own ring first: its commands finish only when this thread
  // reaps them, so waiting below for them would never end. Its completions
  // are dropped (closed_), as the actor's are in Post.
  if (direct_ring_) {
    direct_ring_->Drain();
    direct_continuations_ += direct_ring_->continuations();
    direct_ring_.reset();
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Bounded: every in-flight command is a kernel IO or a pool-thread system
    // call that completes on its own.
    drained_cv_.wait(lock, [this] { return unposted_ == 0; });
    // Posted but never delivered: JS will not run again for them.
    ready_.clear();
    ready_count_.store(0, std::memory_order_relaxed);
  }
  // The actor is done with every command; those JS never heard of still
  // pin their buffers' memory (a teardown frees it only now, see
  // AlignedBlock). A slot table that was never built has nothing in use.
  for (uint32_t i = 0; slots_ && i < kClientSlotCount; i++) {
    Command& cmd = slots_[i];
    if (!cmd.in_use) continue;
    cmd.in_use = false;
    cmd.iov.clear();
    // Nothing is delivered now: no read's bytes are copied anywhere.
    ReleaseBuffers(env_, &cmd, -1);
  }
  in_flight_js_ = 0;
  slow_in_flight_js_ = 0;
  if (tsfn_live_) {
    tsfn_.Release();
    tsfn_live_ = false;
  }
  if (prepare_ != nullptr) {
    uv_prepare_stop(prepare_);
    uv_close(reinterpret_cast<uv_handle_t*>(prepare_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_prepare_t*>(handle); });
    prepare_ = nullptr;
  }
  if (idle_ != nullptr) {
    uv_idle_stop(idle_);
    idle_active_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(idle_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_idle_t*>(handle); });
    idle_ = nullptr;
  }
  if (async_context_ != nullptr) {
    napi_async_destroy(env_, async_context_);
    async_context_ = nullptr;
  }
  on_completions_.Reset();
  // Dropping the last reference joins the actor's thread(s).
  actor_.reset();
}

}  // namespace ringstore
