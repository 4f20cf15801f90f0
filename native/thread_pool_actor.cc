// ThreadPoolActor: the same commands served by a few native threads with
// ordinary blocking system calls, for kernels or sandboxes that refuse
// io_uring (a container's default seccomp profile, kernel.io_uring_disabled).
//
// It is the fallback, not the fast path: each command costs a thread wake-up
// and its system calls run one at a time per thread. Its semantics match the
// io_uring actor's: full transfers or an error, writeAndSync = write then
// fdatasync, punch hole on files, discard on block devices.
#include <errno.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <unistd.h>

#include <cassert>
#include <condition_variable>
#include <system_error>
#include <thread>
#include <vector>

#include "actor.h"
#include "blocked_signals.h"

namespace ringstore {

class ThreadPoolActor final : public Actor {
 public:
  explicit ThreadPoolActor(const ActorOptions& options) : Actor(options) {}

  ~ThreadPoolActor() override {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stop_requested_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& thread : threads_) thread.join();
  }

  // Starts the threads. On failure fills `failure` and returns false; the
  // threads already started stop when the actor is destroyed.
  bool Start(ActorStartFailure* failure) {
    assert(options_.thread_count >= 1);
    ScopedBlockedSignals blocked_while_starting;
    for (uint32_t i = 0; i < options_.thread_count; i++) {
      try {
        threads_.emplace_back([this] {
          pthread_setname_np(pthread_self(), "ringstore-pool");
          Run();
        });
      } catch (const std::system_error& error) {
        // pthread_create's error, thrown by std::thread (see UringActor::Start).
        failure->error_errno = error.code().value();
        failure->syscall = "pthread_create";
        return false;
      }
    }
    return true;
  }

  const char* backend_name() const override { return "threads"; }

 protected:
  void Wake() override { work_cv_.notify_one(); }

 private:
  void Run() {
    CompletionBatch finished;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(queue_mu_);
        if (queue_head_ == nullptr) waits_.fetch_add(1, std::memory_order_relaxed);
        work_cv_.wait(lock, [this] { return queue_head_ != nullptr || stop_requested_; });
        if (queue_head_ == nullptr) return;  // stopping, and the queue is empty
      }
      Command* cmd = TakeQueued(1);
      if (cmd == nullptr) continue;  // another thread took it
      RecordSubmitted(cmd, MonotonicNowNs());
      sqes_submitted_.fetch_add(1, std::memory_order_relaxed);
      batches_.fetch_add(1, std::memory_order_relaxed);
      Stage stage = Stage::kMain;
      int32_t result = Execute(cmd, &stage);
      RecordCompleted(cmd, MonotonicNowNs());
      finished.Add(cmd, result, stage);
      finished.Flush();
    }
  }

  // Runs one command to completion; returns bytes or -errno.
  int32_t Execute(Command* cmd, Stage* stage) {
    switch (cmd->kind) {
      case OpKind::kRead:
      case OpKind::kReadv:
      case OpKind::kWrite:
      case OpKind::kWritev:
      case OpKind::kWritevDsync:
        return Transfer(cmd);
      case OpKind::kWriteAndSync: {
        int32_t written = Transfer(cmd);
        if (written < 0) return written;
        if (fdatasync(cmd->fd) != 0) {
          *stage = Stage::kSync;
          return -errno;
        }
        return written;
      }
      case OpKind::kFsync:
        return fsync(cmd->fd) == 0 ? 0 : -errno;
      case OpKind::kFdatasync:
        return fdatasync(cmd->fd) == 0 ? 0 : -errno;
      case OpKind::kPunchHole:
        return fallocate(cmd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                         static_cast<off_t>(cmd->offset), static_cast<off_t>(cmd->range_length)) == 0
                   ? 0
                   : -errno;
      case OpKind::kDiscard: {
        uint64_t range[2] = {cmd->offset, cmd->range_length};
        return ioctl(cmd->fd, BLKDISCARD, &range) == 0 ? 0 : -errno;
      }
    }
    return -EINVAL;
  }

  // preadv/pwritev until the whole transfer is done, end-of-file, or an error.
  int32_t Transfer(Command* cmd) {
    bool is_read = cmd->IsRead();
    while (cmd->done_bytes < cmd->total_bytes) {
      int write_flags = cmd->kind == OpKind::kWritevDsync ? RWF_DSYNC : 0;
      ssize_t moved = is_read ? preadv(cmd->fd, cmd->IovCursor(), static_cast<int>(cmd->IovRemaining()),
                                       static_cast<off_t>(cmd->offset))
                              : pwritev2(cmd->fd, cmd->IovCursor(), static_cast<int>(cmd->IovRemaining()),
                                         static_cast<off_t>(cmd->offset), write_flags);
      if (moved < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      if (moved == 0) return is_read ? static_cast<int32_t>(cmd->done_bytes) : -ENOSPC;
      uint64_t moved_bytes = static_cast<uint64_t>(moved);
      // Off in production: one branch on a constant option.
      if (options_.short_transfer_every != 0) moved_bytes = InjectShortTransfer(*cmd, moved_bytes);
      cmd->done_bytes += moved_bytes;
      if (cmd->direct_alignment != 0 && moved_bytes % cmd->direct_alignment != 0) {
        // Same rule as the io_uring actor: end-of-file for a direct read; a
        // direct write cannot continue off the alignment.
        if (is_read) break;
        return -EIO;
      }
      if (cmd->done_bytes < cmd->total_bytes) continuations_.fetch_add(1, std::memory_order_relaxed);
      cmd->offset += moved_bytes;
      cmd->AdvanceIov(moved_bytes);
    }
    return static_cast<int32_t>(cmd->done_bytes);
  }

  std::vector<std::thread> threads_;
  std::condition_variable work_cv_;
  bool stop_requested_ = false;  // guarded by queue_mu_
};

std::shared_ptr<Actor> Actor::StartThreadPool(const ActorOptions& options, ActorStartFailure* failure) {
  auto actor = std::make_shared<ThreadPoolActor>(options);
  if (!actor->Start(failure)) return nullptr;
  Publish(actor);
  return actor;
}

}  // namespace ringstore
