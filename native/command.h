// Command: one IO operation from JS on its way through an actor, and the
// limits that bound how many exist.
//
// A command lives in a slot of its RingClient's fixed slot table, so
// submitting allocates nothing. JS picks a free slot, the actor fills SQEs
// from it, continues short transfers, and posts a Completion naming the slot.
// Once the completion is posted the actor never touches the command again.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include <node_api.h>

namespace ringstore {

class AlignedBlock;

// Operation kinds. These numbers are the protocol between the TS wrapper and
// the addon; they are defined here only and exported to JS as
// `constants.OP_*` (the TS side reads them from the addon, never copies them).
enum class OpKind : uint8_t {
  kRead = 0,          // read into iov[0]
  kWrite = 1,         // write iov[0]
  kReadv = 2,         // read into iov[0..n)
  kWritev = 3,        // write iov[0..n)
  kFsync = 4,         // fsync(fd)
  kFdatasync = 5,     // fdatasync(fd)
  kWriteAndSync = 6,  // writev iov[0..n), linked (IOSQE_IO_LINK) to fdatasync
  kPunchHole = 7,     // fallocate(PUNCH_HOLE | KEEP_SIZE) on a regular file
  kDiscard = 8,       // discard a range of a block device
  kWritevDsync = 9,   // writev iov[0..n) with RWF_DSYNC: durable on completion
};
constexpr uint8_t kOpKindCount = 10;

// Which system call of a command produced its result; only kWriteAndSync has
// two. Exported as `constants.STAGE_*`.
enum class Stage : uint8_t {
  kMain = 0,
  kSync = 1,
};

// Slots per RingClient: the most operations one JS thread can have inside the
// addon at once. Further operations wait in the TS wrapper's FIFO (that is the
// backpressure). 4096 slots cost ~600 KiB per thread that uses a ring and
// exceed any queue depth a single device profits from.
constexpr uint32_t kClientSlotCount = 4096;

// The largest transfer one command may move. Linux caps a single read/write at
// MAX_RW_COUNT (2 GiB - 4 KiB) and a CQE result is an int32; 1 GiB keeps both
// comfortably true. Exported as `constants.TRANSFER_SIZE_MAX`.
constexpr uint64_t kTransferSizeMax = uint64_t{1} << 30;
static_assert(kTransferSizeMax <= 0x7ffff000, "a transfer must fit one CQE result");

// Buffers in one readv/writev/writeAndSync: Linux's IOV_MAX (UIO_MAXIOV).
constexpr uint32_t kIovCountMax = 1024;

// A completion as handed to JS: three int32 words per completion in the
// client's shared Int32Array. Exported as `constants.COMPLETION_WORDS`.
constexpr uint32_t kCompletionWords = 3;

struct Completion {
  uint32_t slot;
  int32_t result;  // bytes transferred (>= 0) or -errno
  Stage stage;     // which system call the result belongs to
};

// Where an actor posts the completions of a command: the RingClient (one JS
// thread's handle) that owns the command's slot. An interface so that the
// actor, below the client, does not depend on it.
class CompletionSink {
 public:
  // Actor thread: hands `count` completions to the owner of their slots.
  // Thread-safe. REQUIRES: each completion names a slot of this sink whose
  // command was enqueued and not yet posted; the actor never touches that
  // command again.
  virtual void Post(const Completion* completions, size_t count) = 0;

 protected:
  ~CompletionSink() = default;  // a sink is never deleted through this interface
};

// A transfer of at least this many bytes counts as slow (Command::IsSlow):
// 64 KiB takes ~30 µs or more at the ~2 GB/s of the disks measured, over the
// 5-20 µs a thread wake-up costs; the 4 KiB reads and small writes that
// spinning and held wakes are for stay well under it.
constexpr uint64_t kSlowTransferBytes = 64 * 1024;

// One buffer of a command moved through memory of the native layer's own
// (Command::bounces).
struct BounceBuffer {
  void* memory = nullptr;  // what iov points at, from the client's BouncePool
  size_t capacity = 0;     // its capacity there (BouncePool::Take)
  size_t length = 0;
  napi_ref array_buffer = nullptr;  // a read's destination, held until delivery
  size_t byte_offset = 0;           // where the caller's view starts in it
};

struct Command {
  CompletionSink* client = nullptr;  // the RingClient whose slot this is
  uint32_t slot = 0;
  OpKind kind = OpKind::kRead;
  bool in_use = false;  // set by JS-thread Submit, cleared by JS-thread delivery

  int fd = -1;
  // Direct-IO alignment of the file, or 0 for buffered IO. A short direct read
  // that ends off this alignment is end-of-file, not a transfer to continue.
  uint32_t direct_alignment = 0;

  uint64_t offset = 0;        // current file offset; advances on short transfers
  uint64_t range_length = 0;  // bytes to punch or discard (trim kinds only)
  uint64_t total_bytes = 0;   // bytes the whole transfer moves
  uint64_t done_bytes = 0;    // bytes moved so far

  // Buffers of the transfer. iov_first indexes the first unfinished one; its
  // base/len are advanced in place after a short transfer. The vector keeps
  // its capacity across uses of the slot, so steady state allocates nothing.
  std::vector<struct iovec> iov;
  uint32_t iov_first = 0;

  // The allocAligned blocks under iov, pinned by the JS thread at submission
  // and unpinned by it once the actor is done with the command (see
  // AlignedBlock). The actor never touches this.
  std::vector<AlignedBlock*> pinned_blocks;

  // Memory under iov that is not an allocAligned block, which nothing here
  // could pin: JS can detach (transfer) such an ArrayBuffer while the IO is
  // in flight, and its memory is then freed with the new owner — the kernel
  // would read or write freed memory (found by a review). The IO goes to a
  // bounce copy of our own instead: filled at submission for a write, copied
  // back into the ArrayBuffer at delivery for a read if it still holds the
  // bytes. JS thread only; the actor sees only iov.
  std::vector<BounceBuffer> bounces;

  // CQEs still expected for the current submission (2 for write+fdatasync).
  uint8_t cqes_pending = 0;
  int32_t write_result = 0;  // kWriteAndSync: the write's CQE result
  int32_t sync_result = 0;   // kWriteAndSync: the fdatasync's CQE result

  uint64_t enqueued_ns = 0;   // when JS handed it over
  bool lone_read = false;     // a read its client handed over with nothing else in flight (JS thread only)
  uint64_t submitted_ns = 0;  // when its first SQE went to the kernel

  Command* next = nullptr;  // intrusive link in the actor's queues

  bool IsTransfer() const {
    return kind == OpKind::kRead || kind == OpKind::kWrite || kind == OpKind::kReadv ||
           kind == OpKind::kWritev || kind == OpKind::kWriteAndSync || kind == OpKind::kWritevDsync;
  }
  bool IsRead() const { return kind == OpKind::kRead || kind == OpKind::kReadv; }

  // Flushes, space management and large transfers: their latency (~100 µs
  // to ms) dwarfs a thread wake-up, so busy-polling for them only takes a
  // core from the kernel work that completes them. The actor and the JS
  // thread spin only while a fast command (a small read or plain write) is
  // in flight. A slow command also wakes the actor at once, even while the
  // JS thread holds wakes (ring_client.h): a large value's chunk writes
  // waited for the end of the put that submitted them (queued p50 164 µs).
  // Stable for the command's life: total_bytes is set before it is enqueued.
  bool IsSlow() const {
    return kind == OpKind::kFsync || kind == OpKind::kFdatasync || kind == OpKind::kWriteAndSync ||
           kind == OpKind::kPunchHole || kind == OpKind::kDiscard || kind == OpKind::kWritevDsync ||
           (IsTransfer() && total_bytes >= kSlowTransferBytes);
  }

  // Moves the iovec cursor past `bytes` just transferred.
  void AdvanceIov(uint64_t bytes);
  uint32_t IovRemaining() const { return static_cast<uint32_t>(iov.size()) - iov_first; }
  struct iovec* IovCursor() { return iov.data() + iov_first; }
};

// What a read or write does once the kernel moved `moved` more bytes of it
// (a CQE's result, >= 0): it is finished, with `result` for its client, or
// it continues with the rest (a short transfer: a signal, a file-system
// boundary, a device end). Counts `moved` in cmd->done_bytes. Shared by
// every ring that runs transfers (uring_actor.cc, direct_ring.cc).
struct TransferOutcome {
  bool finished;
  int32_t result;  // when finished: bytes transferred or -errno
};
TransferOutcome AfterTransfer(Command* cmd, uint64_t moved);

}  // namespace ringstore
