// DirectRing (see direct_ring.h): a JS thread's own ring for its durable
// writes, its completions signalled through an eventfd that libuv watches.
#include "direct_ring.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cassert>

#include "sqe_builders.h"

namespace ringstore {

namespace {

// As in the actor: EBADF, EFAULT, EINVAL or EEXIST from io_uring_enter
// itself can only be a bug (IO errors arrive in CQEs). EINTR, EAGAIN, EBUSY
// and ENOMEM (the kernel short of memory for a request just now) are
// transient: the caller calls again. ENOMEM aborted the process here while
// the actor retried it (found by a review).
void AbortUnlessTransient(int rc) {
  if (rc >= 0 || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY || rc == -ENOMEM) return;
  fprintf(stderr, "ringstore: io_uring_enter of a direct ring failed: %s\n", strerror(-rc));
  abort();
}

}  // namespace

DirectRing::DirectRing(std::shared_ptr<Actor> actor, void* owner, FinishFn finish)
    : actor_(std::move(actor)), owner_(owner), finish_(finish) {}

std::unique_ptr<DirectRing> DirectRing::Start(uv_loop_t* loop, std::shared_ptr<Actor> actor, void* owner,
                                              FinishFn finish, ReadableFn readable, const char** reason) {
  std::unique_ptr<DirectRing> ring(new DirectRing(std::move(actor), owner, finish));
  const char* unavailable = nullptr;
  if (ring->ring_.Setup(kDirectRingEntries, &unavailable) != 0) {
    *reason = unavailable != nullptr ? unavailable : "io_uring_setup failed";
    return nullptr;
  }
  // SQ room is what bounds the commands in flight (HasRoom); the CQ is
  // twice as large, so it cannot overflow.
  assert(ring->ring_.sq_entries() >= kDirectRingEntries);
  int event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd < 0) {
    *reason = "eventfd failed";
    return nullptr;
  }
  if (ring->ring_.RegisterEventFd(event_fd) != 0) {
    close(event_fd);
    *reason = "io_uring_register(IORING_REGISTER_EVENTFD) failed";
    return nullptr;
  }
  Watch* watch = new Watch{};
  watch->event_fd = event_fd;
  watch->ring = ring.get();
  watch->readable = readable;
  watch->owner = owner;
  if (uv_poll_init(loop, &watch->poll, event_fd) != 0) {
    close(event_fd);
    delete watch;
    *reason = "uv_poll_init failed";
    return nullptr;
  }
  watch->poll.data = watch;
  uv_poll_start(&watch->poll, UV_READABLE, [](uv_poll_t* handle, int, int) {
    Watch* w = static_cast<Watch*>(handle->data);
    uint64_t signals;
    // Nonblocking: EAGAIN after a spurious wake-up; the CQ is looked at anyway.
    (void)!read(w->event_fd, &signals, sizeof signals);
    if (w->ring != nullptr) w->readable(w->owner);
  });
  // The client's threadsafe function holds the loop open while it has
  // commands in flight; this handle alone must not.
  uv_unref(reinterpret_cast<uv_handle_t*>(&watch->poll));
  ring->watch_ = watch;
  return ring;
}

DirectRing::~DirectRing() {
  assert(in_flight_ == 0);
  if (watch_ != nullptr) {
    watch_->ring = nullptr;
    uv_poll_stop(&watch_->poll);
    // The descriptor is closed only once libuv is done with the handle.
    uv_close(reinterpret_cast<uv_handle_t*>(&watch_->poll), [](uv_handle_t* handle) {
      Watch* w = static_cast<Watch*>(handle->data);
      close(w->event_fd);
      delete w;
    });
    watch_ = nullptr;
  }
  // ring_'s destructor unmaps and closes the ring (and with it the kernel's
  // reference to the eventfd).
}

void DirectRing::Submit(Command* cmd) {
  assert(HasRoom());
  assert((cmd->kind == OpKind::kWritevDsync || cmd->IsRead()) && cmd->IovRemaining() > 0);
  in_flight_++;
  SubmitSqe(cmd);
}

void DirectRing::SubmitSqe(Command* cmd) {
  struct io_uring_sqe* sqe = ring_.GetSqe();
  // One SQE per command in flight, and at most kDirectRingEntries of them.
  assert(sqe != nullptr);
  switch (cmd->kind) {
    case OpKind::kWritevDsync:
      PrepWritevDsync(sqe, cmd->fd, cmd->IovCursor(), cmd->IovRemaining(), cmd->offset);
      break;
    case OpKind::kRead:
      assert(cmd->IovRemaining() == 1);
      PrepRead(sqe, cmd->fd, cmd->IovCursor()->iov_base, static_cast<uint32_t>(cmd->IovCursor()->iov_len), cmd->offset);
      break;
    case OpKind::kReadv:
      PrepReadv(sqe, cmd->fd, cmd->IovCursor(), cmd->IovRemaining(), cmd->offset);
      break;
    default:
      assert(false && "a direct ring takes RWF_DSYNC writes and reads only");
  }
  sqe->user_data = reinterpret_cast<uint64_t>(cmd);
  for (;;) {
    int rc = ring_.Submit(0);
    if (rc >= 0 && ring_.UnsubmittedCount() == 0) return;
    AbortUnlessTransient(rc);
    // Transient (a signal, no memory for the request just now): the SQE
    // stays published in the SQ and goes with the next call.
    if (rc == -EAGAIN || rc == -ENOMEM) sched_yield();
  }
}

void DirectRing::Reap() {
  struct io_uring_cqe* cqe;
  while ((cqe = ring_.PeekCqe()) != nullptr) {
    Command* cmd = reinterpret_cast<Command*>(cqe->user_data);
    int32_t result = cqe->res;
    ring_.AdvanceCq(1);
    assert(in_flight_ > 0);
    if (result < 0) {
      in_flight_--;
      finish_(owner_, cmd, result);
      continue;
    }
    uint64_t moved = actor_->MaybeShortenTransfer(*cmd, static_cast<uint64_t>(result));
    TransferOutcome outcome = AfterTransfer(cmd, moved);
    if (outcome.finished) {
      in_flight_--;
      finish_(owner_, cmd, outcome.result);
      continue;
    }
    // A short transfer: the rest (a write with RWF_DSYNC again, so the
    // command is durable when its last part is).
    continuations_++;
    cmd->offset += moved;
    cmd->AdvanceIov(moved);
    SubmitSqe(cmd);
  }
}

void DirectRing::Drain() {
  while (in_flight_ > 0) {
    // Waits for at least one CQE; bounded, since every write completes.
    AbortUnlessTransient(ring_.Submit(1));
    Reap();
  }
}

}  // namespace ringstore
