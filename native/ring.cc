#include "ring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <cassert>
#include <cstdlib>

namespace ringstore {

// The shared indices are plain u32 in the kernel ABI; we view them as
// std::atomic<unsigned> to get acquire/release semantics. That is sound only
// if the atomic is lock-free and has the same size and representation.
static_assert(sizeof(std::atomic<unsigned>) == sizeof(unsigned), "atomic<unsigned> layout");
static_assert(std::atomic<unsigned>::is_always_lock_free, "atomic<unsigned> must be lock-free");

// Opcodes ringstore submits. Start-up refuses a kernel that lacks any of them,
// with a message, rather than failing later on the first such operation.
static const unsigned kRequiredOps[] = {
    IORING_OP_NOP,       IORING_OP_READV,     IORING_OP_WRITEV, IORING_OP_FSYNC,
    IORING_OP_READ,      IORING_OP_WRITE,     IORING_OP_FALLOCATE,
};

Ring::~Ring() {
  if (sqes_ptr_ != nullptr) munmap(sqes_ptr_, sqes_size_);
  if (sq_ring_ptr_ != nullptr) munmap(sq_ring_ptr_, sq_ring_size_);
  if (ring_fd_ >= 0) close(ring_fd_);
}

int Ring::Setup(unsigned entries, const char** unavailable_reason) {
  assert(ring_fd_ < 0);
  *unavailable_reason = nullptr;

  struct io_uring_params params;
  memset(&params, 0, sizeof(params));
  // A CQ twice the SQ lets a full SQ of linked pairs complete without the
  // actor having to throttle on CQ space.
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER;
  params.cq_entries = entries * 2;
  int fd = SysIoUringSetup(entries, &params);
  if (fd < 0 && errno == EINVAL) {
    // SINGLE_ISSUER is Linux 6.0+. It only lets the kernel skip locking, so
    // older kernels run without it.
    memset(&params, 0, sizeof(params));
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 2;
    fd = SysIoUringSetup(entries, &params);
  }
  if (fd < 0) return errno;
  ring_fd_ = fd;
  features_ = params.features;

  if ((features_ & IORING_FEAT_SINGLE_MMAP) == 0 || (features_ & IORING_FEAT_NODROP) == 0) {
    *unavailable_reason = "the kernel's io_uring is too old (needs IORING_FEAT_SINGLE_MMAP and "
                          "IORING_FEAT_NODROP, Linux 5.5+)";
    return ENOSYS;
  }

  sq_entries_ = params.sq_entries;
  cq_entries_ = params.cq_entries;

  // With FEAT_SINGLE_MMAP the SQ and CQ rings share one mapping whose size is
  // the larger of the two.
  size_t sq_size = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  size_t cq_size = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
  sq_ring_size_ = sq_size > cq_size ? sq_size : cq_size;
  void* ring_ptr = mmap(nullptr, sq_ring_size_, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_POPULATE, ring_fd_, IORING_OFF_SQ_RING);
  if (ring_ptr == MAP_FAILED) return errno;
  sq_ring_ptr_ = ring_ptr;

  sqes_size_ = params.sq_entries * sizeof(struct io_uring_sqe);
  void* sqes_ptr = mmap(nullptr, sqes_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                        ring_fd_, IORING_OFF_SQES);
  if (sqes_ptr == MAP_FAILED) return errno;
  sqes_ptr_ = sqes_ptr;

  char* base = static_cast<char*>(ring_ptr);
  sq_head_ = reinterpret_cast<std::atomic<unsigned>*>(base + params.sq_off.head);
  sq_tail_ = reinterpret_cast<std::atomic<unsigned>*>(base + params.sq_off.tail);
  sq_mask_ = *reinterpret_cast<unsigned*>(base + params.sq_off.ring_mask);
  sq_array_ = reinterpret_cast<unsigned*>(base + params.sq_off.array);
  sqes_ = static_cast<struct io_uring_sqe*>(sqes_ptr);
  cq_head_ = reinterpret_cast<std::atomic<unsigned>*>(base + params.cq_off.head);
  cq_tail_ = reinterpret_cast<std::atomic<unsigned>*>(base + params.cq_off.tail);
  cq_mask_ = *reinterpret_cast<unsigned*>(base + params.cq_off.ring_mask);
  cqes_ = reinterpret_cast<struct io_uring_cqe*>(base + params.cq_off.cqes);

  // The SQ array is an indirection the kernel reads through; we keep it the
  // identity map once, so publishing an SQE is only a tail store.
  for (unsigned i = 0; i < sq_entries_; i++) sq_array_[i] = i;
  sqe_head_ = sqe_tail_ = sq_tail_->load(std::memory_order_relaxed);

  // Probe the opcodes (IORING_REGISTER_PROBE, Linux 5.6).
  const unsigned probe_ops = 256;
  size_t probe_size = sizeof(struct io_uring_probe) + probe_ops * sizeof(struct io_uring_probe_op);
  struct io_uring_probe* probe = static_cast<struct io_uring_probe*>(calloc(1, probe_size));
  if (probe == nullptr) return ENOMEM;
  int rc = SysIoUringRegister(ring_fd_, IORING_REGISTER_PROBE, probe, probe_ops);
  if (rc < 0) {
    free(probe);
    *unavailable_reason = "the kernel's io_uring cannot report its opcodes (IORING_REGISTER_PROBE, "
                          "Linux 5.6+)";
    return ENOSYS;
  }
  for (unsigned i = 0; i < probe->ops_len && i < probe_ops; i++) {
    if (probe->ops[i].flags & IO_URING_OP_SUPPORTED) {
      unsigned op = probe->ops[i].op;
      supported_ops_[op / 64] |= (uint64_t{1} << (op % 64));
    }
  }
  free(probe);
  for (unsigned op : kRequiredOps) {
    if (!SupportsOp(op)) {
      *unavailable_reason = "the kernel's io_uring lacks an opcode ringstore needs (READ, WRITE, "
                            "FSYNC or FALLOCATE; Linux 5.6+)";
      return ENOSYS;
    }
  }
  return 0;
}

bool Ring::SupportsOp(unsigned op) const {
  if (op >= 256) return false;
  return (supported_ops_[op / 64] >> (op % 64)) & 1;
}

unsigned Ring::UnsubmittedCount() const {
  return sqe_tail_ - sq_head_->load(std::memory_order_acquire);
}

unsigned Ring::SqSpace() const {
  // The kernel advances sq_head as it consumes SQEs; acquire pairs with the
  // kernel's smp_store_release of sq.head in io_commit_sqring(), so the
  // slots we then reuse are no longer read by the kernel.
  unsigned head = sq_head_->load(std::memory_order_acquire);
  unsigned used = sqe_tail_ - head;
  assert(used <= sq_entries_);
  return sq_entries_ - used;
}

struct io_uring_sqe* Ring::GetSqe() {
  if (SqSpace() == 0) return nullptr;
  struct io_uring_sqe* sqe = &sqes_[sqe_tail_ & sq_mask_];
  sqe_tail_++;
  // Every SQE starts zeroed: fields an opcode does not use must be zero, and
  // a stale field from the slot's last use would be read by the kernel.
  memset(sqe, 0, sizeof(*sqe));
  return sqe;
}

int Ring::RegisterEventFd(int event_fd) {
  assert(ring_fd_ >= 0);
  if (SysIoUringRegister(ring_fd_, IORING_REGISTER_EVENTFD, &event_fd, 1) != 0) return errno;
  return 0;
}

int Ring::Submit(unsigned wait_for) {
  if (sqe_tail_ != sqe_head_) {
    // Release pairs with the kernel's smp_load_acquire of sq.tail in
    // io_sqring_entries(): the SQE contents written above are visible to the
    // kernel before it sees the new tail.
    sq_tail_->store(sqe_tail_, std::memory_order_release);
    sqe_head_ = sqe_tail_;
  }
  // Count from the kernel's head, not from what we published just now: SQEs
  // an earlier io_uring_enter left unconsumed (EAGAIN/EBUSY, or a submission
  // cut short) are still in the SQ and go with this call.
  unsigned to_submit = sqe_tail_ - sq_head_->load(std::memory_order_acquire);
  if (to_submit == 0 && wait_for == 0) return 0;
  unsigned flags = wait_for > 0 ? IORING_ENTER_GETEVENTS : 0;
  int rc = SysIoUringEnter(ring_fd_, to_submit, wait_for, flags);
  if (rc < 0) return -errno;
  return rc;
}

struct io_uring_cqe* Ring::PeekCqe() {
  unsigned head = cq_head_->load(std::memory_order_relaxed);
  // Acquire pairs with the kernel's smp_store_release of cq.tail in
  // io_commit_cqring(): the CQE contents are visible before we read them.
  unsigned tail = cq_tail_->load(std::memory_order_acquire);
  if (head == tail) return nullptr;
  return &cqes_[head & cq_mask_];
}

bool Ring::CqReady() const {
  unsigned head = cq_head_->load(std::memory_order_relaxed);
  return cq_tail_->load(std::memory_order_acquire) != head;
}

void Ring::AdvanceCq(unsigned count) {
  unsigned head = cq_head_->load(std::memory_order_relaxed);
  // Release pairs with the kernel's READ_ONCE/acquire of cq.head when it
  // checks for CQ space: our reads of the consumed CQEs finish before the
  // kernel may overwrite those slots.
  cq_head_->store(head + count, std::memory_order_release);
}

}  // namespace ringstore
