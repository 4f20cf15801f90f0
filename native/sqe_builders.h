// SQE builders: one function per opcode, each filling an SQE that Ring::GetSqe
// has already zeroed. Field placement follows include/uapi/linux/io_uring.h
// and the kernel's prep functions (io_uring/rw.c, sync.c, uring_cmd.c).
#pragma once

#include <linux/falloc.h>
#include <sys/uio.h>

#include <cstdint>

#include "io_uring_abi.h"

namespace ringstore {

inline void PrepRead(struct io_uring_sqe* sqe, int fd, void* buffer, uint32_t length,
                     uint64_t offset) {
  sqe->opcode = IORING_OP_READ;
  sqe->fd = fd;
  sqe->addr = reinterpret_cast<uint64_t>(buffer);
  sqe->len = length;
  sqe->off = offset;
}

inline void PrepWrite(struct io_uring_sqe* sqe, int fd, const void* buffer, uint32_t length,
                      uint64_t offset) {
  sqe->opcode = IORING_OP_WRITE;
  sqe->fd = fd;
  sqe->addr = reinterpret_cast<uint64_t>(buffer);
  sqe->len = length;
  sqe->off = offset;
}

// REQUIRES: `iov` stays valid until the CQE arrives (the kernel may read the
// array after submission when the request goes async).
inline void PrepReadv(struct io_uring_sqe* sqe, int fd, const struct iovec* iov,
                      uint32_t iov_count, uint64_t offset) {
  sqe->opcode = IORING_OP_READV;
  sqe->fd = fd;
  sqe->addr = reinterpret_cast<uint64_t>(iov);
  sqe->len = iov_count;
  sqe->off = offset;
}

inline void PrepWritev(struct io_uring_sqe* sqe, int fd, const struct iovec* iov,
                       uint32_t iov_count, uint64_t offset) {
  sqe->opcode = IORING_OP_WRITEV;
  sqe->fd = fd;
  sqe->addr = reinterpret_cast<uint64_t>(iov);
  sqe->len = iov_count;
  sqe->off = offset;
}

// pwritev2(..., RWF_DSYNC): the write completes once its data (and the
// metadata needed to read it) is durable. It makes only its own bytes durable
// — on a device with FUA the kernel may persist just this write — so it is
// no substitute for a flush that must cover earlier writes.
inline void PrepWritevDsync(struct io_uring_sqe* sqe, int fd, const struct iovec* iov,
                            uint32_t iov_count, uint64_t offset) {
  PrepWritev(sqe, fd, iov, iov_count, offset);
  sqe->rw_flags = RWF_DSYNC;
}

// fsync(2) or, with `datasync`, fdatasync(2) of the whole file (off = len = 0).
inline void PrepFsync(struct io_uring_sqe* sqe, int fd, bool datasync) {
  sqe->opcode = IORING_OP_FSYNC;
  sqe->fd = fd;
  sqe->fsync_flags = datasync ? IORING_FSYNC_DATASYNC : 0;
}

// fallocate(fd, mode, offset, length): the mode travels in `len` and the
// length in `addr` (io_uring/sync.c: io_fallocate_prep).
inline void PrepFallocate(struct io_uring_sqe* sqe, int fd, int mode, uint64_t offset,
                          uint64_t length) {
  sqe->opcode = IORING_OP_FALLOCATE;
  sqe->fd = fd;
  sqe->off = offset;
  sqe->addr = length;
  sqe->len = static_cast<uint32_t>(mode);
}

inline void PrepPunchHole(struct io_uring_sqe* sqe, int fd, uint64_t offset, uint64_t length) {
  PrepFallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

// Block-device discard (Linux 6.12+): start in `addr`, length in `addr3`;
// `len`, `rw_flags` and `ioprio` must be zero (block/ioctl.c: blkdev_uring_cmd).
inline void PrepBlockDiscard(struct io_uring_sqe* sqe, int fd, uint64_t offset, uint64_t length) {
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd;
  sqe->cmd_op = BLOCK_URING_CMD_DISCARD;
  sqe->addr = offset;
  sqe->addr3 = length;
}

}  // namespace ringstore
