// RingClient, submission: a marshalled command goes to the actor. From here
// until its completion is delivered the command belongs to the actor; this
// thread only counts it (in_flight_js_), keeps the event loop alive for it
// (the threadsafe function's ref) and keeps its allocAligned memory pinned.
#include <cassert>

#include "aligned_buffer.h"
#include "napi_errors.h"
#include "ring_client.h"

namespace ringstore {

void RingClient::PinBuffer(Napi::Env env, Command* cmd, napi_value array_buffer) {
  AlignedBlock* block = AlignedBlock::Of(env, array_buffer);
  if (block == nullptr) return;
  block->Pin();
  cmd->pinned_blocks.push_back(block);
}

void RingClient::UnpinBuffers(Command* cmd) {
  for (AlignedBlock* block : cmd->pinned_blocks) block->Unpin();
  cmd->pinned_blocks.clear();
}

void RingClient::Enqueue(Napi::Env env, Command* cmd) {
  assert(cmd->client == this && !cmd->in_use);
  cmd->in_use = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    unposted_++;
  }
  cmd->enqueued_ns = MonotonicNowNs();
  // The first fast command in flight starts a busy period of the adaptive
  // completion spin (ring_client_spin.cc).
  if (!cmd->IsSlow() && in_flight_js_ == slow_in_flight_js_) busy_mark_ns_ = cmd->enqueued_ns;
  if (cmd->IsSlow()) slow_in_flight_js_++;
  if (in_flight_js_++ == 0 && !tsfn_refed_) {
    tsfn_.Ref(env);
    tsfn_refed_ = true;
  }
  if (direct_dsync_ && TrySubmitDirect(cmd)) return;
  // Held wakes (ring_client.h): while held, the first fast command wakes the
  // actor and later ones wait for the release; a slow command always wakes
  // it, and with it the held ones queued before it.
  bool hold = wakes_held_ && held_fast_woke_ && !cmd->IsSlow();
  if (wakes_held_ && !cmd->IsSlow()) held_fast_woke_ = true;
  actor_->Enqueue(cmd, /*wake=*/!hold);
  // A wake given now also hands over what was held before.
  wake_owed_ = hold;
  StartSpinWindow();
}

bool RingClient::TrySubmitDirect(Command* cmd) {
  if (cmd->kind != OpKind::kWritevDsync || direct_unavailable_) return false;
  if (!direct_ring_) {
    uv_loop_t* loop = nullptr;
    const char* reason = nullptr;
    if (napi_get_uv_event_loop(env_, &loop) == napi_ok) {
      direct_ring_ = DirectRing::Start(loop, actor_, this, OnDirectFinished, OnDirectReadable, &reason);
    }
    if (!direct_ring_) {
      // Not an error for the caller: its write goes through the actor.
      direct_unavailable_ = true;
      return false;
    }
  }
  if (!direct_ring_->HasRoom()) return false;
  direct_writes_++;
  direct_ring_->Submit(cmd);
  return true;
}

Napi::Value RingClient::HoldWakes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBoolean()) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG", "holdWakes(held) takes a boolean");
    return env.Undefined();
  }
  wakes_held_ = info[0].As<Napi::Boolean>().Value();
  held_fast_woke_ = false;
  if (!wakes_held_) ReleaseWake();
  return env.Undefined();
}

void RingClient::ReleaseWake() {
  if (!wake_owed_) return;
  wake_owed_ = false;
  if (actor_) actor_->WakeIfAsleep();
}

}  // namespace ringstore
