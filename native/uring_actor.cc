// UringActor: one native thread that owns one io_uring and executes every
// command queued by the JS threads sharing it.
//
// The loop, per iteration:
//   1. take up to `batch_size` queued commands and prepare their SQEs;
//   2. one io_uring_enter submits them all — and, when there is nothing to
//      reap and the spin window is over, waits in the same call for at least
//      one completion;
//   3. reap every CQE available, continue short transfers, and post finished
//      commands to their clients (one threadsafe-function call per client).
//
// Sleeping and waking: an eventfd read stays armed in the ring, so a single
// io_uring_enter waits for IO completions and new work alike. Submitters
// write the eventfd only when the actor has announced it is going to sleep
// (see Wake), so a busy actor costs them no system call.
//
// Spinning: with spin_us > 0 the actor busy-polls the queue and the CQ for
// that long after its last activity before it sleeps. This trades CPU while
// busy for latency: a sleeping thread takes 5-20 µs to wake on these VMs,
// which is most of a 4 KiB read. An idle actor always sleeps, so idle CPU is 0.
// With spin_adaptive (spinUs 'auto', the default) the actor spins only while
// its SpinPolicy (spin_policy.h) measures that spinning completes more fast
// commands per busy second than sleeping does: on a host whose spinning
// vCPU starves the hypervisor's IO thread it stops spinning by itself.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>

#include <cassert>
#include <future>
#include <system_error>
#include <thread>

#include "actor.h"
#include "blocked_signals.h"
#include "ring.h"
#include "spin_policy.h"
#include "sqe_builders.h"

namespace ringstore {

namespace {

// user_data of the armed eventfd read. Command pointers are 8-byte aligned
// and never this value.
constexpr uint64_t kWakeUserData = 1;
// user_data of the ASYNC_CANCEL that retires the eventfd read at shutdown.
constexpr uint64_t kCancelUserData = 2;
// The low bits of a command's user_data say which of its SQEs completed.
constexpr uint64_t kUserDataPartMask = 7;
constexpr uint64_t kPartWrite = 0;
constexpr uint64_t kPartSync = 1;
static_assert(alignof(Command) >= 8, "user_data packs the SQE part into pointer low bits");

}  // namespace

class UringActor final : public Actor {
 public:
  explicit UringActor(const ActorOptions& options) : Actor(options) {
    // A fixed window spins whenever it is not 0; the adaptive policy starts
    // by measuring sleeping (spin_policy.h).
    spinning_now_.store(!options.spin_adaptive && options.spin_us > 0, std::memory_order_relaxed);
  }

  ~UringActor() override {
    if (thread_.joinable()) {
      stop_requested_.store(true, std::memory_order_seq_cst);
      WakeAlways();
      thread_.join();
    }
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  // Creates the eventfd, starts the thread, and waits for the thread to set up
  // its ring (it must be created on the thread that submits to it). On
  // failure fills `failure` and returns false; nothing is left running.
  bool Start(ActorStartFailure* failure) {
    wake_fd_ = eventfd(0, EFD_CLOEXEC);
    if (wake_fd_ < 0) {
      failure->error_errno = errno;
      failure->syscall = "eventfd";
      return false;
    }
    std::promise<int> setup_result;
    std::future<int> setup_future = setup_result.get_future();
    std::string* unavailable_reason = &failure->reason;
    try {
      ScopedBlockedSignals blocked_while_starting;
      thread_ = std::thread([this, &setup_result, unavailable_reason] {
        pthread_setname_np(pthread_self(), "ringstore-uring");
        const char* unavailable = nullptr;
        int rc = ring_.Setup(options_.entries, &unavailable);
        if (rc == 0 && !ring_.SupportsOp(IORING_OP_URING_CMD)) discard_supported_ = false;
        if (unavailable != nullptr) *unavailable_reason = unavailable;
        setup_result.set_value(rc);
        if (rc == 0) Run();
      });
    } catch (const std::system_error& error) {
      // std::thread reports pthread_create's error by throwing; uncaught it
      // would abort the process (the addon is built with C++ exceptions).
      failure->error_errno = error.code().value();
      failure->syscall = "pthread_create";
      return false;
    }
    int rc = setup_future.get();
    if (rc != 0) {
      thread_.join();
      failure->error_errno = rc;
      failure->syscall = "io_uring_setup";
      return false;
    }
    return true;
  }

  const char* backend_name() const override { return "io_uring"; }

 protected:
  // Any thread. The seq_cst pair (queue_count_ increment in Enqueue, then this
  // load of sleeping_; the actor's store of sleeping_, then its load of
  // queue_count_) guarantees that either the actor sees the new command
  // before it sleeps or we see that it sleeps and write the eventfd.
  void Wake() override {
    if (sleeping_.load(std::memory_order_seq_cst) &&
        sleeping_.exchange(false, std::memory_order_seq_cst)) {
      WakeAlways();
    }
  }

 private:
  void WakeAlways() {
    uint64_t one = 1;
    ssize_t written = write(wake_fd_, &one, sizeof(one));
    // An eventfd write fails only if the counter would overflow, and then a
    // wake-up is already pending: nothing is lost.
    (void)written;
  }

  void ArmWakeRead() {
    assert(!wake_armed_);
    struct io_uring_sqe* sqe = ring_.GetSqe();
    // Run() keeps one SQ slot for this read (see PreparePending).
    assert(sqe != nullptr);
    PrepRead(sqe, wake_fd_, &wake_buffer_, sizeof(wake_buffer_), 0);
    sqe->user_data = kWakeUserData;
    wake_armed_ = true;
  }

  void Run() {
    ArmWakeRead();
    const uint64_t spin_window_ns = uint64_t{options_.spin_us} * 1000;
    uint64_t last_activity_ns = MonotonicNowNs();
    for (;;) {
      const uint64_t spin_ns = options_.spin_adaptive && !spin_policy_.spinning() ? 0 : spin_window_ns;
      TakeIntoPending();
      unsigned prepared = PreparePending();
      bool stopping = stop_requested_.load(std::memory_order_seq_cst);
      if (stopping && kernel_in_flight_ == 0 && pending_head_ == nullptr &&
          queue_count_.load(std::memory_order_seq_cst) == 0) {
        break;
      }

      // Sleep (wait in io_uring_enter for a CQE) when nothing is ready to
      // reap and nothing can be submitted: the pending list is empty, or its
      // head is blocked on SQ/CQ room that only a completion can free.
      bool pending_blocked = pending_head_ != nullptr && prepared == 0 && kernel_in_flight_ > 0;
      // Spinning pays only for fast commands (see Command::IsSlow): while
      // one is in flight, or — when nothing is — if the last command was
      // fast, since a caller doing fast IO in a loop submits again within
      // microseconds. After a slow command the next one rarely follows that
      // soon, and a spinning actor only takes a core from the kernel work
      // and the JS thread (measured: 64 durable writers ran 40% slower).
      bool spin_useful = fast_in_flight_ > 0 || (kernel_in_flight_ == 0 && last_finished_fast_);
      bool may_sleep = !ring_.CqReady() && (pending_head_ == nullptr || pending_blocked) &&
                       (spin_ns == 0 || pending_blocked || !spin_useful ||
                        MonotonicNowNs() - last_activity_ns >= spin_ns);
      if (may_sleep && stopping && kernel_in_flight_ == 0) may_sleep = false;
      if (may_sleep) {
        sleeping_.store(true, std::memory_order_seq_cst);
        if (queue_count_.load(std::memory_order_seq_cst) > 0 && !pending_blocked) {
          sleeping_.store(false, std::memory_order_relaxed);
          may_sleep = false;
        }
      }

      if (ring_.UnsubmittedCount() > 0 || may_sleep) {
        unsigned sqes = ring_.UnsubmittedCount();
        if (may_sleep) waits_.fetch_add(1, std::memory_order_relaxed);
        int rc = ring_.Submit(may_sleep ? 1 : 0);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ENOMEM) {
          // io_uring_enter itself failed with an error that only a bug can
          // cause (EBADF, EFAULT, EINVAL, EEXIST): IO errors arrive in CQEs,
          // and the transient ones (EINTR, EAGAIN, EBUSY, ENOMEM) are retried
          // by looping, SQEs the kernel did not take staying in the SQ.
          fprintf(stderr, "ringstore: io_uring_enter failed: %s\n", strerror(-rc));
          abort();
        }
        if (rc > 0) {
          sqes_submitted_.fetch_add(static_cast<uint64_t>(rc), std::memory_order_relaxed);
          batches_.fetch_add(1, std::memory_order_relaxed);
        }
        (void)sqes;
      }
      if (may_sleep) sleeping_.store(false, std::memory_order_relaxed);

      unsigned reaped = Reap();
      if (prepared > 0 || reaped > 0) last_activity_ns = MonotonicNowNs();
      if (!may_sleep && prepared == 0 && reaped == 0) CpuRelax();
    }
    CancelWakeRead();
  }

  // Takes the armed eventfd read out of the kernel before the thread exits,
  // so the kernel never completes it into wake_buffer_ after the actor is
  // freed (on kernels that punt eventfd reads to io-wq workers).
  void CancelWakeRead() {
    stopping_wake_ = true;
    if (!wake_armed_) return;
    struct io_uring_sqe* sqe = ring_.GetSqe();
    if (sqe != nullptr) {
      sqe->opcode = IORING_OP_ASYNC_CANCEL;
      sqe->addr = kWakeUserData;
      sqe->user_data = kCancelUserData;
    }
    // Bounded: the read completes (the destructor wrote the eventfd) or is
    // cancelled; either way its CQE arrives.
    while (wake_armed_) {
      int rc = ring_.Submit(1);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ENOMEM) break;
      Reap();
    }
  }

  void TakeIntoPending() {
    if (queue_count_.load(std::memory_order_relaxed) == 0) return;
    Command* head = TakeQueued(options_.batch_size);
    if (head == nullptr) return;
    Command* tail = head;
    while (tail->next != nullptr) tail = tail->next;
    AppendPending(head, tail);
  }

  void AppendPending(Command* head, Command* tail) {
    if (pending_tail_ == nullptr) {
      pending_head_ = head;
    } else {
      pending_tail_->next = head;
    }
    pending_tail_ = tail;
  }

  // Turns pending commands into SQEs while the SQ has room, at most
  // batch_size commands, and never more outstanding CQEs than the CQ holds.
  unsigned PreparePending() {
    unsigned prepared = 0;
    uint64_t now_ns = 0;
    while (pending_head_ != nullptr && prepared < options_.batch_size) {
      Command* cmd = pending_head_;
      unsigned sqes_needed = cmd->kind == OpKind::kWriteAndSync ? 2 : 1;
      // One SQ slot and one CQ slot stay reserved for the eventfd read.
      if (ring_.SqSpace() < sqes_needed + 1) break;
      if (kernel_in_flight_ + sqes_needed + 1 > ring_.cq_entries()) break;
      pending_head_ = cmd->next;
      if (pending_head_ == nullptr) pending_tail_ = nullptr;
      cmd->next = nullptr;
      if (now_ns == 0) now_ns = MonotonicNowNs();
      PrepareSqes(cmd, now_ns);
      prepared++;
    }
    return prepared;
  }

  void PrepareSqes(Command* cmd, uint64_t now_ns) {
    uint64_t user_data = reinterpret_cast<uint64_t>(cmd);
    // Counted once per command (a continuation is already counted).
    if (cmd->submitted_ns == 0 && !cmd->IsSlow()) {
      // A busy period starts when the first fast command of it was handed
      // over — its wait for a sleeping actor is part of what spinning saves
      // — but not before the previous busy period ended (no time counts twice).
      if (fast_in_flight_ == 0) busy_mark_ns_ = cmd->enqueued_ns > busy_end_ns_ ? cmd->enqueued_ns : busy_end_ns_;
      fast_in_flight_++;
    }
    struct io_uring_sqe* sqe = ring_.GetSqe();
    assert(sqe != nullptr);
    switch (cmd->kind) {
      case OpKind::kRead:
      case OpKind::kWrite:
        assert(cmd->IovRemaining() == 1);
        if (cmd->kind == OpKind::kRead) {
          PrepRead(sqe, cmd->fd, cmd->IovCursor()->iov_base,
                   static_cast<uint32_t>(cmd->IovCursor()->iov_len), cmd->offset);
        } else {
          PrepWrite(sqe, cmd->fd, cmd->IovCursor()->iov_base,
                    static_cast<uint32_t>(cmd->IovCursor()->iov_len), cmd->offset);
        }
        break;
      case OpKind::kReadv:
        PrepReadv(sqe, cmd->fd, cmd->IovCursor(), cmd->IovRemaining(), cmd->offset);
        break;
      case OpKind::kWritev:
        PrepWritev(sqe, cmd->fd, cmd->IovCursor(), cmd->IovRemaining(), cmd->offset);
        break;
      case OpKind::kWritevDsync:
        PrepWritevDsync(sqe, cmd->fd, cmd->IovCursor(), cmd->IovRemaining(), cmd->offset);
        break;
      case OpKind::kWriteAndSync: {
        // write -> fdatasync as one link: the kernel starts the fdatasync only
        // after the write completed in full. A failed or short write cancels
        // the fdatasync (-ECANCELED), and HandleWriteAndSync continues it.
        PrepWritev(sqe, cmd->fd, cmd->IovCursor(), cmd->IovRemaining(), cmd->offset);
        sqe->flags |= IOSQE_IO_LINK;
        sqe->user_data = user_data | kPartWrite;
        struct io_uring_sqe* sync_sqe = ring_.GetSqe();
        assert(sync_sqe != nullptr);
        PrepFsync(sync_sqe, cmd->fd, /*datasync=*/true);
        sync_sqe->user_data = user_data | kPartSync;
        cmd->cqes_pending = 2;
        kernel_in_flight_ += 2;
        RecordSubmitted(cmd, now_ns);
        return;
      }
      case OpKind::kFsync:
      case OpKind::kFdatasync:
        PrepFsync(sqe, cmd->fd, cmd->kind == OpKind::kFdatasync);
        break;
      case OpKind::kPunchHole:
        PrepPunchHole(sqe, cmd->fd, cmd->offset, cmd->range_length);
        break;
      case OpKind::kDiscard:
        if (discard_supported_) {
          PrepBlockDiscard(sqe, cmd->fd, cmd->offset, cmd->range_length);
        } else {
          // The kernel has no IORING_OP_URING_CMD: answer as a pre-6.12
          // kernel would, so the TS layer falls back to BLKDISCARD.
          sqe->opcode = IORING_OP_NOP;
        }
        break;
    }
    sqe->user_data = user_data;
    cmd->cqes_pending = 1;
    kernel_in_flight_ += 1;
    RecordSubmitted(cmd, now_ns);
  }

  unsigned Reap() {
    unsigned reaped = 0;
    struct io_uring_cqe* cqe;
    while ((cqe = ring_.PeekCqe()) != nullptr) {
      uint64_t user_data = cqe->user_data;
      int32_t result = cqe->res;
      ring_.AdvanceCq(1);
      reaped++;
      HandleCqe(user_data, result);
    }
    if (!finished_.empty()) finished_.Flush();
    if (fast_finished_unrecorded_ > 0) RecordSpinObservation();
    return reaped;
  }

  // Feeds the fast completions since the last call, and the busy time they
  // took, to the spin policy. REQUIRES: options_.spin_adaptive.
  void RecordSpinObservation() {
    uint64_t now_ns = MonotonicNowNs();
    uint64_t busy_ns = now_ns > busy_mark_ns_ ? now_ns - busy_mark_ns_ : 0;
    busy_mark_ns_ = now_ns;
    if (fast_in_flight_ == 0) busy_end_ns_ = now_ns;
    uint32_t completions = fast_finished_unrecorded_;
    fast_finished_unrecorded_ = 0;
    spin_policy_.Record(completions, busy_ns);
    spinning_now_.store(spin_policy_.spinning(), std::memory_order_relaxed);
    spin_probe_count_.store(spin_policy_.probe_count(), std::memory_order_relaxed);
    spin_win_count_.store(spin_policy_.spin_win_count(), std::memory_order_relaxed);
  }

  void HandleCqe(uint64_t user_data, int32_t result) {
    if (user_data == kWakeUserData) {
      wake_armed_ = false;
      if (!stopping_wake_) ArmWakeRead();
      return;
    }
    if (user_data == kCancelUserData) return;
    Command* cmd = reinterpret_cast<Command*>(user_data & ~kUserDataPartMask);
    uint64_t part = user_data & kUserDataPartMask;
    assert(kernel_in_flight_ > 0);
    kernel_in_flight_--;
    assert(cmd->cqes_pending > 0);
    cmd->cqes_pending--;

    switch (cmd->kind) {
      case OpKind::kRead:
      case OpKind::kWrite:
      case OpKind::kReadv:
      case OpKind::kWritev:
      case OpKind::kWritevDsync:
        HandleTransfer(cmd, result);
        return;
      case OpKind::kWriteAndSync:
        if (part == kPartWrite) {
          cmd->write_result = result;
        } else {
          cmd->sync_result = result;
        }
        if (cmd->cqes_pending == 0) HandleWriteAndSync(cmd);
        return;
      case OpKind::kDiscard:
        if (!discard_supported_) result = -EOPNOTSUPP;
        Finish(cmd, result, Stage::kMain);
        return;
      case OpKind::kFsync:
      case OpKind::kFdatasync:
      case OpKind::kPunchHole:
        Finish(cmd, result, Stage::kMain);
        return;
    }
  }

  void HandleTransfer(Command* cmd, int32_t result) {
    if (result < 0) {
      Finish(cmd, result, Stage::kMain);
      return;
    }
    uint64_t moved = static_cast<uint64_t>(result);
    // Off in production: one branch on a constant option.
    if (options_.short_transfer_every != 0 && moved > 0) moved = InjectShortTransfer(*cmd, moved);
    TransferOutcome outcome = AfterTransfer(cmd, moved);
    if (outcome.finished) {
      Finish(cmd, outcome.result, Stage::kMain);
      return;
    }
    // A short transfer: continue with the rest, ahead of newer commands.
    Continue(cmd, moved);
  }

  void HandleWriteAndSync(Command* cmd) {
    int32_t write_result = cmd->write_result;
    int32_t sync_result = cmd->sync_result;
    if (write_result < 0) {
      Finish(cmd, write_result, Stage::kMain);
      return;
    }
    uint64_t moved = static_cast<uint64_t>(write_result);
    // A write injected as short is continued like a real one, and the
    // fdatasync the kernel did run behind it is ignored like a cancelled one.
    if (options_.short_transfer_every != 0 && moved > 0) moved = InjectShortTransfer(*cmd, moved);
    cmd->done_bytes += moved;
    assert(cmd->done_bytes <= cmd->total_bytes);
    if (cmd->done_bytes < cmd->total_bytes) {
      // Short write: the kernel cancelled the linked fdatasync. Write the
      // rest and link a new fdatasync to it.
      if (moved == 0) {
        Finish(cmd, -ENOSPC, Stage::kMain);
        return;
      }
      if (cmd->direct_alignment != 0 && moved % cmd->direct_alignment != 0) {
        Finish(cmd, -EIO, Stage::kMain);  // see HandleTransfer
        return;
      }
      Continue(cmd, moved);
      return;
    }
    if (sync_result < 0) {
      Finish(cmd, sync_result, Stage::kSync);
      return;
    }
    Finish(cmd, static_cast<int32_t>(cmd->done_bytes), Stage::kMain);
  }

  void Continue(Command* cmd, uint64_t moved) {
    continuations_.fetch_add(1, std::memory_order_relaxed);
    cmd->offset += moved;
    cmd->AdvanceIov(moved);
    assert(cmd->IovRemaining() > 0);
    if (cmd->kind == OpKind::kRead || cmd->kind == OpKind::kWrite) {
      assert(cmd->IovRemaining() == 1);
    }
    cmd->next = pending_head_;
    pending_head_ = cmd;
    if (pending_tail_ == nullptr) pending_tail_ = cmd;
  }

  void Finish(Command* cmd, int32_t result, Stage stage) {
    assert(cmd->cqes_pending == 0);
    last_finished_fast_ = !cmd->IsSlow();
    if (last_finished_fast_) {
      assert(fast_in_flight_ > 0);
      fast_in_flight_--;
      if (options_.spin_adaptive) fast_finished_unrecorded_++;
    }
    RecordCompleted(cmd, MonotonicNowNs());
    // After Add the command belongs to its client again (once flushed).
    finished_.Add(cmd, result, stage);
  }

  Ring ring_;
  std::thread thread_;
  int wake_fd_ = -1;
  uint64_t wake_buffer_ = 0;
  bool wake_armed_ = false;
  bool stopping_wake_ = false;  // shutting down: do not re-arm the eventfd read
  bool discard_supported_ = true;
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_requested_{false};

  // Actor-thread state.
  Command* pending_head_ = nullptr;  // taken from the queue, not yet in SQEs
  Command* pending_tail_ = nullptr;
  uint32_t kernel_in_flight_ = 0;  // CQEs expected, not counting the wake read
  uint32_t fast_in_flight_ = 0;    // submitted commands that are not IsSlow()
  bool last_finished_fast_ = true; // the most recently finished command was not IsSlow()
  // The adaptive spin (spin_policy.h): busy time is time with a fast
  // command in flight, counted from busy_mark_ns_ at each observation.
  SpinPolicy spin_policy_{kActorSpinPolicy};
  uint64_t busy_mark_ns_ = 0;
  uint64_t busy_end_ns_ = 0;           // when the last busy period ended
  uint32_t fast_finished_unrecorded_ = 0;
  CompletionBatch finished_;
};

std::shared_ptr<Actor> Actor::StartUring(const ActorOptions& options, ActorStartFailure* failure) {
  // A test hook standing in for a kernel or sandbox that refuses io_uring
  // (seccomp's EPERM, io_uring_disabled, ENOSYS): the error path must be
  // testable on a machine where io_uring works.
  const char* simulated = getenv("RINGSTORE_SIMULATE_IO_URING_ERRNO");
  if (simulated != nullptr && simulated[0] != '\0') {
    failure->error_errno = atoi(simulated);
    failure->syscall = "io_uring_setup";
    failure->reason = "io_uring_setup refused (simulated by RINGSTORE_SIMULATE_IO_URING_ERRNO)";
    return nullptr;
  }
  auto actor = std::make_shared<UringActor>(options);
  if (!actor->Start(failure)) return nullptr;
  Publish(actor);
  return actor;
}

}  // namespace ringstore
