// DirectRing: an io_uring owned by one JS thread, for the durable writes
// (OpKind::kWritevDsync) of that thread's RingClient when the client was
// made with `directDsync`, and for its lone reads (a read with nothing else
// in flight) with `directReads` (ring_client.h).
//
// Why: a durable write through the actor crosses three thread wake-ups —
// the JS thread wakes the actor, the kernel wakes the actor for the CQE, the
// actor wakes the event loop — and on some hosts they cost more than the
// write itself waits for the device (docs/io.md, *Durable writes: where the
// time goes*). Here the JS thread submits with its own io_uring_enter, and
// the kernel signals an eventfd registered with the ring
// (IORING_REGISTER_EVENTFD), which libuv watches: the completion wakes the
// event loop directly, one wake-up an operation.
//
// Only writes with RWF_DSYNC and lone reads come here: latency-bound
// commands, each complete in one SQE, that the actor would have nothing to
// batch with. Reads with company and everything else stay with the actor,
// which batches and spins for them.
//
// Threads: everything runs on the owning JS thread; the ring is
// IORING_SETUP_SINGLE_ISSUER for it (Ring::Setup on that thread). A command
// given to Submit belongs to the ring until `finish` is called for it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>

#include "actor.h"
#include "command.h"
#include "ring.h"

namespace ringstore {

// SQEs of a client's DirectRing, and so the most commands it has in flight
// at once (durable writes, and at most one read); more go through the
// actor. A store has one commit's WAL write in flight, a few with
// pipelining; 64 leaves room for several stores on one thread at ~4 KiB of
// SQ and CQ memory.
constexpr unsigned kDirectRingEntries = 64;

class DirectRing {
 public:
  // Called for each finished command, on the JS thread: `result` is the
  // bytes written or -errno.
  using FinishFn = void (*)(void* owner, Command* cmd, int32_t result);
  // Called by libuv when completions may be waiting: the owner calls Reap.
  using ReadableFn = void (*)(void* owner);

  // Sets up the ring and its eventfd on the calling thread and starts
  // watching the eventfd on `loop`, with an unref'd handle (the client keeps
  // the loop alive while it has commands in flight). `actor` is only asked
  // for its test-only short-transfer injection. On failure returns nullptr
  // and sets `*reason` to a static message.
  static std::unique_ptr<DirectRing> Start(uv_loop_t* loop, std::shared_ptr<Actor> actor, void* owner,
                                           FinishFn finish, ReadableFn readable, const char** reason);

  DirectRing(const DirectRing&) = delete;
  DirectRing& operator=(const DirectRing&) = delete;
  // Stops watching the eventfd and closes the ring. REQUIRES: nothing in
  // flight (Drain first).
  ~DirectRing();

  // Whether Submit can take one more command now.
  bool HasRoom() const { return in_flight_ < kDirectRingEntries; }
  uint32_t in_flight() const { return in_flight_; }
  // Short transfers continued, reads' and writes' (each resubmission of a rest counts once).
  uint64_t continuations() const { return continuations_; }

  // Submits `cmd`, a kWritevDsync, kRead or kReadv with its iovecs set, at
  // once (one io_uring_enter). REQUIRES: HasRoom().
  void Submit(Command* cmd);

  // Takes every CQE the kernel posted: continues short transfers (AfterTransfer's
  // rule, the actor's), and calls `finish` for each command that ended.
  void Reap();

  // Blocks until nothing is in flight, reaping as Reap does. For teardown:
  // the kernel may still be reading the commands' buffers.
  void Drain();

 private:
  DirectRing(std::shared_ptr<Actor> actor, void* owner, FinishFn finish);
  // Prepares `cmd`'s SQE (from its iovec cursor and offset) and submits it.
  void SubmitSqe(Command* cmd);

  // The uv_poll handle and the eventfd it watches: freed together in the
  // handle's close callback, after libuv has stopped using the descriptor.
  struct Watch {
    uv_poll_t poll;
    int event_fd;
    DirectRing* ring;  // nullptr once the ring is gone
    ReadableFn readable;
    void* owner;
  };

  Ring ring_;
  Watch* watch_ = nullptr;
  std::shared_ptr<Actor> actor_;
  void* owner_;
  FinishFn finish_;
  uint32_t in_flight_ = 0;  // commands submitted and not yet finished
  uint64_t continuations_ = 0;
};

}  // namespace ringstore
