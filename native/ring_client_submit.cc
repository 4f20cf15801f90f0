// RingClient, submission: a marshalled command goes to the actor. From here
// until its completion is delivered the command belongs to the actor; this
// thread only counts it (in_flight_js_), keeps the event loop alive for it
// (the threadsafe function's ref) and keeps its allocAligned memory pinned.
#include <cassert>

#include "aligned_buffer.h"
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
  actor_->Enqueue(cmd);
  StartSpinWindow();
}

}  // namespace ringstore
