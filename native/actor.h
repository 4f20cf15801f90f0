// Actor: the thread(s) that execute commands for every JS thread sharing one
// ring. Two backends share this interface:
//   - UringActor (uring_actor.cc): one native thread owns one io_uring; it
//     drains the command queue in batches, submits each batch with one
//     io_uring_enter and reaps every completion.
//   - ThreadPoolActor (thread_pool_actor.cc): a few native threads doing
//     pread/pwrite/fdatasync/fallocate, for kernels or sandboxes that refuse
//     io_uring (started only with `fallback: 'threads'` or `backend`).
//
// Lifetime: actors are shared by RingClients (one per JS thread that started
// or attached). The last client to detach destroys the actor, which stops
// and joins its thread(s). A client detaches only when none of its commands
// is in flight, so an actor is never destroyed with work inside it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "command.h"
#include "latency_histogram.h"

namespace ringstore {

uint64_t MonotonicNowNs();

// A hint to the CPU inside a busy-wait loop (lets the sibling hyperthread run,
// saves power).
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Collects completions on an actor thread and hands them to their clients,
// one signal per client per flush (not one per completion).
class CompletionBatch {
 public:
  void Add(Command* cmd, int32_t result, Stage stage);
  void Flush();
  bool empty() const { return items_.empty(); }

 private:
  struct Item {
    CompletionSink* client;
    Completion completion;
  };
  std::vector<Item> items_;
};

struct ActorOptions {
  uint32_t entries = 256;      // SQ entries (io_uring) — also the CQ sizing base
  uint32_t batch_size = 256;   // commands per io_uring_enter at most
  uint32_t spin_us = 0;        // busy-poll window before sleeping (io_uring)
  // io_uring: busy-poll (for spin_us) only while SpinPolicy finds it pays
  // (spin_policy.h); false: always, when spin_us > 0.
  bool spin_adaptive = false;
  uint32_t thread_count = 4;   // worker threads (thread pool)
  // Test only: every Nth transfer completion is treated as short (see
  // Actor::InjectShortTransfer). 0, the default, turns it off.
  uint32_t short_transfer_every = 0;
};

// Bounds for ActorOptions, checked by the addon before an actor is built.
// The largest command (write linked to fdatasync) takes 2 SQEs, and one SQ slot
// stays reserved for the actor's eventfd read: a smaller ring could never
// submit that command.
constexpr uint32_t kSqesPerCommandMax = 2;
constexpr uint32_t kRingEntriesMin = 4;
static_assert(kRingEntriesMin >= kSqesPerCommandMax + 1, "ring too small for a linked command");
constexpr uint32_t kRingEntriesMax = 4096;  // CQ of 8192: 128 KiB of ring memory
constexpr uint32_t kSpinUsMax = 10000;      // a 10 ms spin is already a waste of a core
// The busy-poll window of 'auto' mode (actor and JS thread), used while the
// SpinPolicy finds spinning pays. Long enough to cover a 4 KiB read of a
// virtio or NVMe disk (40-80 µs here), so a spin at queue depth 1 usually
// ends in the completion rather than in a sleep; a window that ends before
// the IO does buys nothing. At most this much CPU is burnt per miss, and
// misses make the policy stop spinning.
constexpr uint32_t kAutoSpinWindowUs = 100;
static_assert(kAutoSpinWindowUs <= kSpinUsMax);
constexpr uint32_t kThreadCountMax = 64;
// A period no test reaches: larger values would be the same as off.
constexpr uint32_t kShortTransferEveryMax = uint32_t{1} << 30;

struct ActorStats {
  uint64_t commands_submitted;  // commands handed to the kernel (or a pool thread)
  uint64_t commands_completed;
  uint64_t sqes_submitted;
  uint64_t batches;  // io_uring_enter calls that submitted at least one SQE
  uint64_t waits;    // times the actor slept waiting for IO or work
  uint64_t in_flight;
  uint64_t continuations;  // submissions of the rest of a short transfer
  // The adaptive spin (spin_policy.h); all zero/false when it is off.
  bool spin_adaptive;
  bool spinning;               // the actor busy-polls now (fixed: spin_us > 0 on io_uring)
  uint64_t spin_probe_count;   // probes of the policy so far
  uint64_t spin_win_count;     // probes that spinning won
  LatencyHistogram::Summary queued;  // enqueue -> first submission
  LatencyHistogram::Summary kernel;  // first submission -> completion
};

// Why an actor did not start: the system call that failed and its errno, and,
// when the kernel lacks an io_uring feature, what it lacks.
struct ActorStartFailure {
  int error_errno = 0;
  // "io_uring_setup" (io_uring refused or too old) or "pthread_create" (no
  // thread: RLIMIT_NPROC, a cgroup's pids.max, no memory for its stack).
  const char* syscall = nullptr;
  std::string reason;
};

class Actor {
 public:
  virtual ~Actor();
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;

  // Starts an io_uring actor. On failure returns nullptr and fills `failure`.
  static std::shared_ptr<Actor> StartUring(const ActorOptions& options, ActorStartFailure* failure);
  // Starts a thread-pool actor. On failure (no thread could be created)
  // returns nullptr and fills `failure`.
  static std::shared_ptr<Actor> StartThreadPool(const ActorOptions& options, ActorStartFailure* failure);

  // Finds a live actor by id (for worker threads attaching to a ring).
  static std::shared_ptr<Actor> Find(uint32_t id);

  // Hands a command to the actor. Any thread; never blocks on IO. With
  // `wake` false the actor takes it when it next wakes (a completion, or
  // WakeIfAsleep), not at once: see RingClient's held wakes.
  void Enqueue(Command* cmd, bool wake = true);
  // Wakes the actor's thread(s) if asleep, so they take what is queued. Any thread.
  void WakeIfAsleep() { Wake(); }

  // The bytes a transfer run outside the actor (a client's DirectRing) is
  // to count as moved: `moved`, or fewer under the actor's test-only
  // short-transfer injection (InjectShortTransfer), so that those
  // transfers' continuations are tested the same way. JS thread of the
  // client; the injection's counter is atomic.
  uint64_t MaybeShortenTransfer(const Command& cmd, uint64_t moved) {
    return options_.short_transfer_every != 0 && moved > 0 ? InjectShortTransfer(cmd, moved) : moved;
  }

  uint32_t id() const { return id_; }
  virtual const char* backend_name() const = 0;
  ActorStats Stats() const;

 protected:
  explicit Actor(const ActorOptions& options);
  // Gives a started actor its id and makes it findable by Find().
  static void Publish(const std::shared_ptr<Actor>& actor);

  // Called after a command is enqueued: wake the thread(s) if asleep.
  virtual void Wake() = 0;

  // Takes up to `count_max` queued commands in FIFO order; returns the head
  // of a linked list (via Command::next) or nullptr.
  Command* TakeQueued(uint32_t count_max);

  void RecordSubmitted(Command* cmd, uint64_t now_ns);
  void RecordCompleted(Command* cmd, uint64_t now_ns);

  // Test-only fault injection, called only when
  // options_.short_transfer_every != 0, with the bytes a read or write (or
  // the write half of a write+fdatasync) just moved, `moved` > 0. Every Nth
  // call returns fewer: half, rounded down to the command's direct-IO
  // alignment, at least one alignment unit; a transfer of one unit or less
  // is left whole, so continuing always ends. The kernel really moved all
  // `moved` bytes, so the continuation re-reads or re-writes the same bytes
  // at the same offsets: the result is unchanged, and the short-transfer
  // path — otherwise nearly impossible to provoke — runs.
  uint64_t InjectShortTransfer(const Command& cmd, uint64_t moved);

  const ActorOptions options_;
  uint32_t id_ = 0;

  std::mutex queue_mu_;
  Command* queue_head_ = nullptr;  // guarded by queue_mu_
  Command* queue_tail_ = nullptr;  // guarded by queue_mu_
  // Commands in the queue. Written under queue_mu_; read without it by the
  // actor to decide whether to sleep (seq_cst: see UringActor's wake-up
  // protocol).
  std::atomic<uint32_t> queue_count_{0};

  std::atomic<uint64_t> commands_enqueued_{0};
  std::atomic<uint64_t> commands_submitted_{0};
  std::atomic<uint64_t> commands_completed_{0};
  std::atomic<uint64_t> sqes_submitted_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> waits_{0};
  std::atomic<uint64_t> continuations_{0};
  // The adaptive spin's state, published by the actor thread for Stats.
  std::atomic<bool> spinning_now_{false};
  std::atomic<uint64_t> spin_probe_count_{0};
  std::atomic<uint64_t> spin_win_count_{0};
  // Transfer completions seen by InjectShortTransfer (fault injection only).
  std::atomic<uint64_t> injection_transfer_count_{0};
  LatencyHistogram queued_us_;
  LatencyHistogram kernel_us_;
};

}  // namespace ringstore
