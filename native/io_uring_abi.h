// The io_uring kernel ABI as ringstore uses it: the kernel's own header, the
// few constants that header lacks on older distributions, layout checks, and
// thin wrappers for the three io_uring system calls.
//
// We deliberately do not depend on liburing: `npm install` must work with
// nothing but the compiler toolchain and the kernel headers a fresh machine
// has. Everything here is a fact of the kernel ABI, checked by static_assert
// where the compiler can check it.
#pragma once

#include <linux/fs.h>
#include <linux/io_uring.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

// ---- Constants newer than the oldest headers we build against (6.1). ----

// io_uring block-device command that issues an asynchronous discard. Added in
// Linux 6.12 (include/uapi/linux/blkdev.h). Before 6.12 the kernel answers
// IORING_OP_URING_CMD on a block device with -EOPNOTSUPP, and ringstore falls
// back to the BLKDISCARD ioctl on a thread-pool thread.
#ifndef BLOCK_URING_CMD_DISCARD
#define BLOCK_URING_CMD_DISCARD _IO(0x12, 0)
#endif

// statx(2) direct-IO alignment fields. Added in Linux 6.1 (uapi/linux/stat.h).
#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

// ---- Layout checks: the kernel and we must agree byte for byte. ----
static_assert(sizeof(struct io_uring_sqe) == 64, "io_uring SQE must be 64 bytes");
static_assert(sizeof(struct io_uring_cqe) == 16, "io_uring CQE must be 16 bytes");
static_assert(offsetof(struct io_uring_sqe, fd) == 4, "sqe.fd offset");
static_assert(offsetof(struct io_uring_sqe, off) == 8, "sqe.off offset");
static_assert(offsetof(struct io_uring_sqe, addr) == 16, "sqe.addr offset");
static_assert(offsetof(struct io_uring_sqe, len) == 24, "sqe.len offset");
static_assert(offsetof(struct io_uring_sqe, rw_flags) == 28, "sqe.rw_flags offset");
static_assert(offsetof(struct io_uring_sqe, user_data) == 32, "sqe.user_data offset");
static_assert(offsetof(struct io_uring_sqe, addr3) == 48, "sqe.addr3 offset");
static_assert(offsetof(struct io_uring_cqe, res) == 8, "cqe.res offset");
static_assert(sizeof(struct io_uring_params) == 120, "io_uring_params must be 120 bytes");

namespace ringstore {

// The raw system calls. glibc has no wrappers for them; each returns the
// kernel's result or -1 with errno set, like any libc call.
inline int SysIoUringSetup(unsigned entries, struct io_uring_params* params) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, params));
}

inline int SysIoUringEnter(int ring_fd, unsigned to_submit, unsigned min_complete,
                           unsigned flags) {
  return static_cast<int>(
      syscall(__NR_io_uring_enter, ring_fd, to_submit, min_complete, flags, nullptr, 0));
}

inline int SysIoUringRegister(int ring_fd, unsigned opcode, void* arg, unsigned nr_args) {
  return static_cast<int>(syscall(__NR_io_uring_register, ring_fd, opcode, arg, nr_args));
}

}  // namespace ringstore
