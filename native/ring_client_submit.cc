// RingClient, submission: a marshalled command goes to the actor. From here
// until its completion is delivered the command belongs to the actor; this
// thread only counts it (in_flight_js_), keeps the event loop alive for it
// (the threadsafe function's ref), keeps its allocAligned memory pinned and
// holds the bounce copies that stand for any other memory (AddBuffer).
#include <stdlib.h>
#include <string.h>

#include <cassert>

#include "aligned_buffer.h"
#include "napi_errors.h"
#include "ring_client.h"

namespace ringstore {

namespace {

bool IsRead(OpKind kind) { return kind == OpKind::kRead || kind == OpKind::kReadv; }

// Alignment of a bounce copy at least: a page.
constexpr size_t kBounceAlignment = 4096;

}  // namespace

bool RingClient::AddBuffer(Napi::Env env, Command* cmd, void* data, size_t length, napi_value array_buffer) {
  AlignedBlock* block = AlignedBlock::Of(env, array_buffer);
  if (block != nullptr) {
    block->Pin();
    cmd->pinned_blocks.push_back(block);
    cmd->iov.push_back({data, length});
    return true;
  }
  // A SharedArrayBuffer cannot be detached, and JS holds the view until the
  // completion (io_uring_actor.ts, its slots): its memory stays.
  bool is_array_buffer = false;
  if (napi_is_arraybuffer(env, array_buffer, &is_array_buffer) != napi_ok || !is_array_buffer) {
    cmd->iov.push_back({data, length});
    return true;
  }
  // As aligned as a direct file asks (and a page: the kernel copies whole pages faster).
  size_t alignment = cmd->direct_alignment > kBounceAlignment ? cmd->direct_alignment : kBounceAlignment;
  size_t capacity = 0;
  void* memory = bounce_pool_.Take(length, alignment, &capacity);
  if (memory == nullptr) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_OUT_OF_MEMORY", "no memory for a copy of the buffer under IO");
    return false;
  }
  BounceBuffer bounce;
  bounce.memory = memory;
  bounce.capacity = capacity;
  bounce.length = length;
  if (IsRead(cmd->kind)) {
    // Where the view starts in its ArrayBuffer: delivery finds the buffer again by it.
    void* base = nullptr;
    size_t base_length = 0;
    napi_get_arraybuffer_info(env, array_buffer, &base, &base_length);
    bounce.byte_offset = static_cast<size_t>(static_cast<uint8_t*>(data) - static_cast<uint8_t*>(base));
    if (napi_create_reference(env, array_buffer, 1, &bounce.array_buffer) != napi_ok) {
      bounce_pool_.Give(memory, capacity);
      ThrowCoded(env, JsErrorKind::kRangeError, "ERR_OUT_OF_MEMORY", "could not hold the buffer under IO");
      return false;
    }
  } else {
    memcpy(memory, data, length);
  }
  cmd->bounces.push_back(bounce);
  cmd->iov.push_back({memory, length});
  return true;
}

void RingClient::ReleaseBuffers(napi_env env, Command* cmd, int32_t result) {
  for (AlignedBlock* block : cmd->pinned_blocks) block->Unpin();
  cmd->pinned_blocks.clear();
  if (cmd->bounces.empty()) return;
  // The bytes a read moved fill its buffers in order; iov was advanced in
  // place by short transfers, the bounces keep their own lengths.
  size_t left = result > 0 && IsRead(cmd->kind) ? static_cast<size_t>(result) : 0;
  for (BounceBuffer& bounce : cmd->bounces) {
    if (bounce.array_buffer != nullptr) {
      napi_value array_buffer = nullptr;
      bool detached = true;
      void* base = nullptr;
      size_t base_length = 0;
      size_t copied = left < bounce.length ? left : bounce.length;
      // Only into the ArrayBuffer as it is now: detached (transferred away)
      // or shrunk since, it gets what still fits, or nothing.
      if (copied > 0 && napi_get_reference_value(env, bounce.array_buffer, &array_buffer) == napi_ok && array_buffer != nullptr &&
          napi_is_detached_arraybuffer(env, array_buffer, &detached) == napi_ok && !detached &&
          napi_get_arraybuffer_info(env, array_buffer, &base, &base_length) == napi_ok && base != nullptr &&
          bounce.byte_offset < base_length) {
        size_t room = base_length - bounce.byte_offset;
        memcpy(static_cast<uint8_t*>(base) + bounce.byte_offset, bounce.memory, copied < room ? copied : room);
      }
      napi_delete_reference(env, bounce.array_buffer);
    }
    left -= left < bounce.length ? left : bounce.length;
    bounce_pool_.Give(bounce.memory, bounce.capacity);
  }
  cmd->bounces.clear();
}

void RingClient::Enqueue(Napi::Env env, Command* cmd) {
  assert(cmd->client == this && !cmd->in_use);
  cmd->in_use = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    unposted_++;
  }
  cmd->enqueued_ns = MonotonicNowNs();
  // A read with nothing else of this client in flight (not counted in yet),
  // right after a read that had nothing in flight either: what directReads
  // routes, and what TakeReady measures for the route. The second condition
  // keeps the route to QD1 runs. Concurrent readers leave a moment with
  // nothing in flight now and then (~2 % of reads at QD32); a read sent
  // through the JS thread's ring then cost that thread a blocking
  // io_uring_enter and a wake-up of its own, and QD32 lost 20-28 % against
  // directReads off (docs/benchmarks.md, session 53).
  bool nothing_in_flight = in_flight_js_ == 0;
  cmd->lone_read = direct_ring_ != nullptr && direct_reads_ && IsRead(cmd->kind) && nothing_in_flight && last_read_alone_;
  if (IsRead(cmd->kind)) last_read_alone_ = nothing_in_flight;
  // The first fast command in flight starts a busy period of the adaptive
  // completion spin (ring_client_spin.cc).
  if (!cmd->IsSlow() && in_flight_js_ == slow_in_flight_js_) busy_mark_ns_ = cmd->enqueued_ns;
  if (cmd->IsSlow()) slow_in_flight_js_++;
  if (in_flight_js_++ == 0 && !tsfn_refed_) {
    tsfn_.Ref(env);
    tsfn_refed_ = true;
  }
  if (TrySubmitDirect(cmd)) {
    // A fast command (a 4 KiB read) is worth the completion spin here too:
    // PollBeforeSleep reaps the direct ring.
    if (!cmd->IsSlow()) StartSpinWindow();
    return;
  }
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
  bool read = IsRead(cmd->kind);
  // A lone read (Enqueue set it only with directReads and a ring), while
  // the route policy finds this ring the faster path.
  bool taken = read ? cmd->lone_read && !lone_read_route_.spinning()
                    : direct_dsync_ && cmd->kind == OpKind::kWritevDsync;
  // No ring (it could not be made): not an error for the caller, whose
  // command goes through the actor.
  if (!taken || !direct_ring_ || !direct_ring_->HasRoom()) return false;
  if (read) {
    direct_reads_taken_++;
  } else {
    direct_writes_++;
  }
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
