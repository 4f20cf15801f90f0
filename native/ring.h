// Ring: one io_uring instance mapped into this process — the submission queue
// (SQ), the completion queue (CQ) and the SQE array — and the index protocol
// shared with the kernel. This is the only file that touches the ring's
// shared indices; everything above it works with SQE pointers and CQEs.
//
// Thread-safety: none. A Ring is used by exactly one thread, the actor that
// owns it (and it is created on that thread, so IORING_SETUP_SINGLE_ISSUER
// names the right task).
#pragma once

#include <atomic>
#include <cstdint>

#include "io_uring_abi.h"

namespace ringstore {

class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring();

  // Creates the ring with `entries` SQEs (rounded up to a power of two by the
  // kernel) and a CQ twice that size. Returns 0 or a positive errno.
  // `unavailable_reason` is set to a static message when the kernel lacks a
  // feature ringstore relies on (the errno is then ENOSYS).
  int Setup(unsigned entries, const char** unavailable_reason);

  // Returns a zeroed SQE to fill, or nullptr when the SQ is full.
  // The SQE becomes visible to the kernel only at the next Submit().
  struct io_uring_sqe* GetSqe();

  // Number of SQEs prepared with GetSqe() that the kernel has not consumed.
  unsigned UnsubmittedCount() const;

  // Free slots in the SQ for GetSqe().
  unsigned SqSpace() const;

  // Publishes prepared SQEs and calls io_uring_enter once: it submits them
  // and, when `wait_for` > 0, waits until at least that many CQEs are ready.
  // Returns the number submitted, or -errno. EINTR and EBUSY/EAGAIN are left
  // to the caller (the actor simply loops).
  int Submit(unsigned wait_for);

  // Completion access. PeekCqe returns the oldest unconsumed CQE or nullptr;
  // AdvanceCq(n) hands n consumed CQEs back to the kernel.
  struct io_uring_cqe* PeekCqe();
  void AdvanceCq(unsigned count);

  // True when completions are waiting in the CQ: a cheap check for a spinning
  // actor (one acquire load, no system call).
  bool CqReady() const;

  // Registers `event_fd` (an eventfd) for the kernel to signal whenever it
  // posts a CQE (IORING_REGISTER_EVENTFD), so another waiter — libuv's
  // epoll — learns of completions. Returns 0 or a positive errno.
  int RegisterEventFd(int event_fd);

  unsigned sq_entries() const { return sq_entries_; }
  unsigned cq_entries() const { return cq_entries_; }
  int fd() const { return ring_fd_; }

  // Whether the kernel knows opcode `op` (from IORING_REGISTER_PROBE).
  bool SupportsOp(unsigned op) const;

 private:
  int ring_fd_ = -1;
  unsigned sq_entries_ = 0;
  unsigned cq_entries_ = 0;
  unsigned features_ = 0;

  // Whole mappings, kept for munmap.
  void* sq_ring_ptr_ = nullptr;
  size_t sq_ring_size_ = 0;
  void* sqes_ptr_ = nullptr;
  size_t sqes_size_ = 0;

  // Pointers into the SQ ring mapping.
  std::atomic<unsigned>* sq_head_ = nullptr;  // written by the kernel
  std::atomic<unsigned>* sq_tail_ = nullptr;  // written by us
  unsigned sq_mask_ = 0;
  unsigned* sq_array_ = nullptr;
  struct io_uring_sqe* sqes_ = nullptr;

  // Pointers into the CQ ring mapping (the same mapping: FEAT_SINGLE_MMAP).
  std::atomic<unsigned>* cq_head_ = nullptr;  // written by us
  std::atomic<unsigned>* cq_tail_ = nullptr;  // written by the kernel
  unsigned cq_mask_ = 0;
  struct io_uring_cqe* cqes_ = nullptr;

  // Local SQE cursor: [sqe_head_, sqe_tail_) are prepared but not published.
  unsigned sqe_head_ = 0;
  unsigned sqe_tail_ = 0;

  // Opcodes the kernel reported as supported, one bit each.
  uint64_t supported_ops_[4] = {0, 0, 0, 0};
};

}  // namespace ringstore
