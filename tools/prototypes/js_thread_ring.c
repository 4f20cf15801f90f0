// js_thread_ring: a measurement prototype, not part of ringstore.
//
// It answers one design question of the write path (issue 10): what does a
// durable write cost when the JS thread owns its ring, instead of handing
// the command to the actor thread and getting the completion back through a
// threadsafe function? Here the JS thread submits with its own
// io_uring_enter (no thread to wake), and the kernel signals an eventfd
// registered with the ring (IORING_REGISTER_EVENTFD) that libuv watches
// (uv_poll), so the completion wakes the event loop directly: one wake-up
// per operation, as fio and a single-threaded C loop have, where the actor
// has three (JS -> actor, kernel -> actor, actor -> event loop).
//
// Deliberately minimal: one ring per process, one operation in flight at a
// time (queue depth 1), 4 KiB-aligned buffers from the caller, no short
// transfer continuation (a short transfer shows in the byte count the
// callback gets, and the runner stops on it). Build and
// run: see js_thread_ring.mjs.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <node_api.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

enum { RING_ENTRIES = 8 };
enum { MODE_WRITE_THEN_FDATASYNC = 0, MODE_WRITE_DSYNC = 1, MODE_READ = 2 };

static struct {
  int ring_fd, event_fd, file_fd;
  struct io_uring_sqe* sqes;
  _Atomic unsigned *sq_tail, *cq_head, *cq_tail;
  unsigned *sq_mask, *sq_array, *cq_mask;
  struct io_uring_cqe* cqes;
  unsigned sq_tail_local;
  uv_poll_t poll;
  napi_env env;
  napi_async_context async_context;
  napi_ref callback;      // the in-flight operation's callback, or NULL
  unsigned cqes_pending;  // CQEs the in-flight operation still waits for
  int32_t result;         // its first error, else the transfer's byte count
} ring;

static napi_value throw_errno(napi_env env, const char* syscall_name) {
  char message[128];
  snprintf(message, sizeof message, "%s failed: %s", syscall_name, strerror(errno));
  napi_throw_error(env, NULL, message);
  return NULL;
}

static struct io_uring_sqe* next_sqe(void) {
  unsigned index = ring.sq_tail_local++ & *ring.sq_mask;
  struct io_uring_sqe* sqe = &ring.sqes[index];
  memset(sqe, 0, sizeof *sqe);
  ring.sq_array[index] = index;
  return sqe;
}

// libuv: the eventfd is readable, so the kernel posted at least one CQE.
static void on_event_fd_readable(uv_poll_t* handle, int status, int events) {
  (void)handle; (void)events;
  uint64_t count;
  // Nonblocking: a spurious wake-up reads EAGAIN, and the CQ is checked anyway.
  (void)!read(ring.event_fd, &count, sizeof count);
  // Acquire pairs with the kernel's store-release of the CQ tail.
  unsigned head = atomic_load_explicit(ring.cq_head, memory_order_relaxed);
  unsigned tail = atomic_load_explicit(ring.cq_tail, memory_order_acquire);
  for (; head != tail; head++) {
    const struct io_uring_cqe* cqe = &ring.cqes[head & *ring.cq_mask];
    if (cqe->res < 0 && ring.result >= 0) ring.result = cqe->res;
    if (cqe->user_data == 0 && cqe->res >= 0 && ring.result >= 0) ring.result = cqe->res;
    ring.cqes_pending--;
  }
  // Release: our reads of the CQEs finish before the kernel may reuse them.
  atomic_store_explicit(ring.cq_head, head, memory_order_release);
  if (status < 0 && ring.result >= 0) ring.result = status;
  if (ring.cqes_pending != 0 || ring.callback == NULL) return;
  uv_poll_stop(&ring.poll);  // nothing in flight: the loop may exit
  napi_handle_scope scope;
  napi_open_handle_scope(ring.env, &scope);
  napi_value callback, receiver, argument, ignored;
  napi_get_reference_value(ring.env, ring.callback, &callback);
  napi_delete_reference(ring.env, ring.callback);
  ring.callback = NULL;
  napi_get_global(ring.env, &receiver);
  napi_create_int32(ring.env, ring.result, &argument);
  // MakeCallback: the promise reactions it starts run before libuv moves on.
  napi_make_callback(ring.env, ring.async_context, receiver, callback, 1, &argument, &ignored);
  napi_close_handle_scope(ring.env, scope);
}

// open(path): opens `path` with O_DIRECT and sets up the ring on this thread.
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char path[4096];
  size_t length;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "open(path: string)");
    return NULL;
  }
  if (ring.ring_fd > 0) {
    napi_throw_error(env, NULL, "open() was called already");
    return NULL;
  }
  ring.file_fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
  if (ring.file_fd < 0) return throw_errno(env, "open");
  struct io_uring_params params;
  memset(&params, 0, sizeof params);
  // The JS thread is the only submitter, as the actor is for its ring.
  params.flags = IORING_SETUP_SINGLE_ISSUER;
  ring.ring_fd = (int)syscall(__NR_io_uring_setup, RING_ENTRIES, &params);
  if (ring.ring_fd < 0) return throw_errno(env, "io_uring_setup");
  if ((params.features & IORING_FEAT_SINGLE_MMAP) == 0) {
    napi_throw_error(env, NULL, "needs IORING_FEAT_SINGLE_MMAP");
    return NULL;
  }
  size_t sq_bytes = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  size_t cq_bytes = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
  size_t rings_bytes = sq_bytes > cq_bytes ? sq_bytes : cq_bytes;
  char* rings = mmap(NULL, rings_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.ring_fd, IORING_OFF_SQ_RING);
  if (rings == MAP_FAILED) return throw_errno(env, "mmap");
  ring.sqes = mmap(NULL, params.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   ring.ring_fd, IORING_OFF_SQES);
  if (ring.sqes == MAP_FAILED) return throw_errno(env, "mmap");
  ring.sq_tail = (_Atomic unsigned*)(rings + params.sq_off.tail);
  ring.sq_mask = (unsigned*)(rings + params.sq_off.ring_mask);
  ring.sq_array = (unsigned*)(rings + params.sq_off.array);
  ring.cq_head = (_Atomic unsigned*)(rings + params.cq_off.head);
  ring.cq_tail = (_Atomic unsigned*)(rings + params.cq_off.tail);
  ring.cq_mask = (unsigned*)(rings + params.cq_off.ring_mask);
  ring.cqes = (struct io_uring_cqe*)(rings + params.cq_off.cqes);
  ring.sq_tail_local = atomic_load_explicit(ring.sq_tail, memory_order_relaxed);
  ring.event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ring.event_fd < 0) return throw_errno(env, "eventfd");
  if (syscall(__NR_io_uring_register, ring.ring_fd, IORING_REGISTER_EVENTFD, &ring.event_fd, 1) != 0) {
    return throw_errno(env, "io_uring_register(IORING_REGISTER_EVENTFD)");
  }
  uv_loop_t* loop;
  napi_get_uv_event_loop(env, &loop);
  if (uv_poll_init(loop, &ring.poll, ring.event_fd) != 0) {
    napi_throw_error(env, NULL, "uv_poll_init failed");
    return NULL;
  }
  ring.env = env;
  napi_value name;
  napi_create_string_utf8(env, "js_thread_ring", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &ring.async_context);
  return NULL;
}

// submit(buffer, offset, mode, callback): one operation; callback(result)
// gets the byte count or -errno. The buffer must stay alive until then.
static napi_value js_submit(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void* data;
  size_t length;
  int64_t offset;
  int32_t mode;
  napi_valuetype callback_type;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 4 || napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok || napi_get_value_int32(env, argv[2], &mode) != napi_ok ||
      napi_typeof(env, argv[3], &callback_type) != napi_ok || callback_type != napi_function || mode < 0 || mode > 2 ||
      offset < 0 || length == 0 || length > UINT32_MAX) {
    napi_throw_type_error(env, NULL, "submit(buffer: Buffer, offset: number, mode: 0 | 1 | 2, callback: function)");
    return NULL;
  }
  if (ring.ring_fd <= 0 || ring.callback != NULL) {
    napi_throw_error(env, NULL, "submit() needs open() and no operation in flight");
    return NULL;
  }
  struct io_uring_sqe* sqe = next_sqe();
  sqe->opcode = mode == MODE_READ ? IORING_OP_READ : IORING_OP_WRITE;
  sqe->fd = ring.file_fd;
  sqe->addr = (uint64_t)(uintptr_t)data;
  sqe->len = (uint32_t)length;
  sqe->off = (uint64_t)offset;
  sqe->user_data = 0;
  unsigned sqe_count = 1;
  if (mode == MODE_WRITE_DSYNC) sqe->rw_flags = RWF_DSYNC;
  if (mode == MODE_WRITE_THEN_FDATASYNC) {
    // The link starts the fdatasync once the write completed in full.
    sqe->flags |= IOSQE_IO_LINK;
    struct io_uring_sqe* sync_sqe = next_sqe();
    sync_sqe->opcode = IORING_OP_FSYNC;
    sync_sqe->fd = ring.file_fd;
    sync_sqe->fsync_flags = IORING_FSYNC_DATASYNC;
    sync_sqe->user_data = 1;
    sqe_count = 2;
  }
  // Release pairs with the kernel's load-acquire of the SQ tail.
  atomic_store_explicit(ring.sq_tail, ring.sq_tail_local, memory_order_release);
  long submitted = syscall(__NR_io_uring_enter, ring.ring_fd, sqe_count, 0, 0, NULL, 0);
  if (submitted != (long)sqe_count) return throw_errno(env, "io_uring_enter");
  napi_create_reference(env, argv[3], 1, &ring.callback);
  ring.cqes_pending = sqe_count;
  ring.result = 0;
  if (uv_poll_start(&ring.poll, UV_READABLE, on_event_fd_readable) != 0) {
    napi_throw_error(env, NULL, "uv_poll_start failed");
    return NULL;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value function;
  napi_create_function(env, "open", NAPI_AUTO_LENGTH, js_open, NULL, &function);
  napi_set_named_property(env, exports, "open", function);
  napi_create_function(env, "submit", NAPI_AUTO_LENGTH, js_submit, NULL, &function);
  napi_set_named_property(env, exports, "submit", function);
  return exports;
}
