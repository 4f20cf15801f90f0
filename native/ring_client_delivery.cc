// RingClient, completion delivery: the actor thread posts completions
// (Post); the JS thread moves them into the Int32Array it shares with
// native/io_uring_actor.ts (TakeReady) and calls onCompletions(count) —
// from the threadsafe function (CallJs), or straight from the completion
// spin (ring_client_spin.cc) when it was polling.
#include <cassert>

#include "napi_errors.h"
#include "ring_client.h"

namespace ringstore {

void RingClient::Post(const Completion* completions, size_t count) {
  Queue(completions, count, /*call_js=*/true);
}

void RingClient::Queue(const Completion* completions, size_t count, bool call_js) {
  std::lock_guard<std::mutex> lock(mu_);
  assert(unposted_ >= count);
  ready_.insert(ready_.end(), completions, completions + count);
  ready_count_.store(static_cast<uint32_t>(ready_.size()), std::memory_order_release);
  unposted_ -= static_cast<uint32_t>(count);
  if (closed_) {
    // Teardown is waiting for in-flight commands, and JS will not run again:
    // drop the results and wake the waiter instead of calling into JS.
    ready_.clear();
    ready_count_.store(0, std::memory_order_relaxed);
    if (unposted_ == 0) drained_cv_.notify_all();
    return;
  }
  // One threadsafe-function call per batch; completions posted while it is
  // pending ride along with it. While JS spins in PollBeforeSleep it takes
  // the completions itself, and the wake-up would only cost an eventfd write
  // here and an epoll return there.
  //
  // The call happens under mu_ on purpose: once unposted_ may read 0, a
  // teardown can release the threadsafe function and free this client, so
  // nothing of ours may be touched after the lock is released.
  // NonBlockingCall never blocks and takes no lock of ours.
  if (call_js && !call_scheduled_ && !js_polling_) {
    call_scheduled_ = true;
    tsfn_.NonBlockingCall();
  }
}

void RingClient::OnDirectFinished(void* arg, Command* cmd, int32_t result) {
  // On the JS thread: OnDirectReadable delivers once the ring is reaped, so
  // no threadsafe-function call is needed.
  Completion completion{cmd->slot, result, Stage::kMain};
  static_cast<RingClient*>(arg)->Queue(&completion, 1, /*call_js=*/false);
}

void RingClient::OnDirectReadable(void* arg) {
  RingClient* client = static_cast<RingClient*>(arg);
  if (!client->direct_ring_) return;
  client->direct_ring_->Reap();
  if (client->closed_) return;
  Napi::Env env(client->env_);
  Napi::HandleScope scope(env);
  size_t count = client->TakeReady(env);
  if (count == 0) return;
  // MakeCallback (not Call): we are in a libuv callback, and the promise
  // reactions this resolves must run before the loop moves on.
  client->DeliverToJs(env, client->on_completions_.Value(), count, client->async_context_);
}

void RingClient::CallJs(Napi::Env env, Napi::Function callback, RingClient* client, void*) {
  if (env == nullptr || client == nullptr) return;  // the function is being torn down
  {
    std::lock_guard<std::mutex> lock(client->mu_);
    client->call_scheduled_ = false;
    // A call queued before close() can run after it (PollBeforeSleep took
    // its completions). The client is still alive — the threadsafe
    // function's finalizer holds the last reference — but has nothing to say.
    if (client->closed_) return;
  }
  size_t count = client->TakeReady(env);
  if (count == 0) return;
  client->DeliverToJs(env, callback, count, nullptr);
}

void RingClient::DeliverToJs(Napi::Env env, napi_value callback, size_t count, napi_async_context async_context) {
  // Raw calls, not Napi::Function::Call: while a worker is terminating the
  // call fails (napi_pending_exception with nothing pending, at this
  // addon's NAPI_VERSION), and node-addon-api would turn that into a fatal
  // error.
  napi_value argument = Napi::Number::New(env, static_cast<double>(count));
  napi_value result;
  napi_status status = async_context == nullptr
                           ? napi_call_function(env, env.Undefined(), callback, 1, &argument, &result)
                           : napi_make_callback(env, async_context, env.Global(), callback, 1, &argument, &result);
  bool pending = false;
  if (status != napi_pending_exception || napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  // A throw: onCompletions' own, on a bug (a completion for a slot it has
  // no command in, thrown after every other completion of the batch is
  // settled), or on the spin path (MakeCallback) one from the nextTicks
  // and microtasks run in its callback scope. Left pending, Node 20 drops
  // it with only a deprecation warning (DEP0168) on the threadsafe
  // function's path, and on the spin's it would be thrown into the next
  // addon call from JS: report it as uncaught, as Node does for its own
  // callbacks, so it is never lost or misplaced.
  napi_value error;
  if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
}

size_t RingClient::TakeReady(Napi::Env env) {
  // The view's memory, read again at each delivery: JS could have detached
  // (transferred) it since the last one, and a pointer kept from the
  // constructor would then write into memory the view no longer owns.
  napi_typedarray_type type;
  size_t element_count = 0;
  void* data = nullptr;
  napi_value array_buffer;
  size_t byte_offset = 0;
  if (napi_get_typedarray_info(env, completions_ref_.Value(), &type, &element_count, &data, &array_buffer,
                               &byte_offset) != napi_ok ||
      data == nullptr || element_count < size_t{kClientSlotCount} * kCompletionWords) {
    // Left in ready_: nothing is lost, and nothing more can be said to JS.
    // Reported as uncaught (a thrown exception would be dropped on the
    // threadsafe function's path).
    napi_fatal_exception(env, MakeCodedError(env, JsErrorKind::kError, "ERR_INVALID_ARG",
                                             "the completion view was detached: completions cannot be delivered")
                                  .Value());
    return 0;
  }
  int32_t* completions_view = static_cast<int32_t*>(data);
  delivering_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    delivering_.swap(ready_);
    ready_count_.store(0, std::memory_order_relaxed);
  }
  size_t count = delivering_.size();
  if (count == 0) return 0;
  assert(count <= kClientSlotCount);
  uint32_t fast_in_flight_before = in_flight_js_ - slow_in_flight_js_;
  uint32_t slow_count = 0;
  uint64_t delivered_ns = 0;
  for (size_t i = 0; i < count; i++) {
    const Completion& completion = delivering_[i];
    Command& cmd = slots_[completion.slot];
    assert(cmd.in_use);
    cmd.in_use = false;
    if (cmd.lone_read) {
      // Its latency, hand-over to delivery, under the route it took.
      if (delivered_ns == 0) delivered_ns = MonotonicNowNs();
      lone_read_route_.Record(1, delivered_ns > cmd.enqueued_ns ? delivered_ns - cmd.enqueued_ns : 0);
      cmd.lone_read = false;
    }
    cmd.iov.clear();
    // A read through bounce copies lands in its buffers here, before JS hears of it.
    ReleaseBuffers(env, &cmd, completion.result);
    if (cmd.IsSlow()) {
      assert(slow_in_flight_js_ > 0);
      slow_in_flight_js_--;
      slow_count++;
    }
    completions_view[i * kCompletionWords + 0] = static_cast<int32_t>(completion.slot);
    completions_view[i * kCompletionWords + 1] = completion.result;
    completions_view[i * kCompletionWords + 2] = static_cast<int32_t>(completion.stage);
  }
  assert(in_flight_js_ >= count);
  in_flight_js_ -= static_cast<uint32_t>(count);
  uint32_t fast_count = static_cast<uint32_t>(count) - slow_count;
  if (completion_spin_adaptive_ && fast_count > 0) {
    assert(fast_in_flight_before >= fast_count);
    (void)fast_in_flight_before;
    RecordSpinObservation(fast_count);
  }
  if (in_flight_js_ == 0 && tsfn_refed_) {
    tsfn_.Unref(env);
    tsfn_refed_ = false;
  }
  return count;
}

}  // namespace ringstore
