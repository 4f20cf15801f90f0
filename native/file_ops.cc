// File set-up operations that are not IO: open (with size and exclusivity
// rules), geometry (statx + block-device ioctls), close, and the BLKDISCARD
// fallback. They run on libuv's thread pool (PromiseWork, below) so neither
// the JS thread nor the actor blocks on them.
#include "file_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/stat.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <memory>
#include <string>

#include "file_table.h"
#include "io_uring_abi.h"
#include "napi_errors.h"

namespace ringstore {

namespace {

struct FileGeometry {
  bool is_block_device = false;
  uint64_t size_bytes = 0;
  uint32_t logical_block_size = 0;
  uint32_t physical_block_size = 0;
  uint32_t dio_mem_align = 0;
  uint32_t dio_offset_align = 0;
};

// The kernel's own file systems (<linux/magic.h>): their "regular files"
// are interfaces, some of whose reads block until an event.
struct KernelFileSystem {
  unsigned long magic;
  const char* name;
};
constexpr KernelFileSystem kKernelFileSystems[] = {
    {PROC_SUPER_MAGIC, "proc"},         {SYSFS_MAGIC, "sysfs"},
    {TRACEFS_MAGIC, "tracefs"},         {DEBUGFS_MAGIC, "debugfs"},
    {SECURITYFS_MAGIC, "securityfs"},   {CGROUP_SUPER_MAGIC, "cgroup"},
    {CGROUP2_SUPER_MAGIC, "cgroup2"},   {BPF_FS_MAGIC, "bpf"},
    {PSTOREFS_MAGIC, "pstore"},         {EFIVARFS_MAGIC, "efivarfs"},
};

// The name of the kernel file system holding `fd`, or nullptr (any other,
// or fstatfs failed: the open goes on and its IO answers for itself).
const char* KernelFileSystemName(int fd) {
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return nullptr;
  for (const KernelFileSystem& known : kKernelFileSystems) {
    if (static_cast<unsigned long>(fs.f_type) == known.magic) return known.name;
  }
  return nullptr;
}

// Reads size and alignment facts. Returns 0 or an errno, naming the failed
// system call in `syscall`.
int ReadGeometry(int fd, FileGeometry* out, const char** syscall_name) {
  struct statx stx;
  memset(&stx, 0, sizeof(stx));
  if (syscall(__NR_statx, fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_DIOALIGN, &stx) != 0) {
    *syscall_name = "statx";
    return errno;
  }
  out->is_block_device = S_ISBLK(stx.stx_mode);
  if ((stx.stx_mask & STATX_DIOALIGN) != 0) {
    out->dio_mem_align = stx.stx_dio_mem_align;
    out->dio_offset_align = stx.stx_dio_offset_align;
  }
  if (out->is_block_device) {
    uint64_t size = 0;
    int logical = 0;
    unsigned int physical = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
      *syscall_name = "ioctl:BLKGETSIZE64";
      return errno;
    }
    if (ioctl(fd, BLKSSZGET, &logical) != 0) {
      *syscall_name = "ioctl:BLKSSZGET";
      return errno;
    }
    if (ioctl(fd, BLKPBSZGET, &physical) != 0) {
      *syscall_name = "ioctl:BLKPBSZGET";
      return errno;
    }
    out->size_bytes = size;
    out->logical_block_size = static_cast<uint32_t>(logical);
    out->physical_block_size = physical;
    // Kernels before 6.1 (no STATX_DIOALIGN for block devices): direct IO on
    // a block device needs logical-block alignment of memory and offsets.
    if (out->dio_offset_align == 0) out->dio_offset_align = out->logical_block_size;
    if (out->dio_mem_align == 0) out->dio_mem_align = out->logical_block_size;
  } else {
    out->size_bytes = stx.stx_size;
    // A regular file's smallest addressable unit is its direct-IO offset
    // alignment where the file system reports one, else 512 (a sector).
    out->logical_block_size = out->dio_offset_align != 0 ? out->dio_offset_align : 512;
    out->physical_block_size = stx.stx_blksize;
  }
  return 0;
}

// Bytes of zeros one pwrite of WriteZeros writes.
constexpr size_t kZeroWriteBytes = 1 << 20;

// Writes zeros over [from, to) of `fd`, through the page cache (a
// descriptor opened with O_DIRECT has the flag cleared for the writes and
// set again: direct IO would ask an aligned buffer and range). Returns 0 or
// the errno (ENOSPC when the file system runs out of room on the way).
int WriteZeros(int fd, off_t from, off_t to) {
  // Not const: a const array of zeros lands in .rodata, 1 MiB of the addon
  // file (found by the second reading); this one is .bss, no memory until
  // a write reads its pages.
  alignas(4096) static char zeros[kZeroWriteBytes];
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return errno;
  bool direct = (flags & O_DIRECT) != 0;
  if (direct && fcntl(fd, F_SETFL, flags & ~O_DIRECT) != 0) return errno;
  int result = 0;
  while (from < to) {
    size_t length = static_cast<size_t>(std::min<off_t>(to - from, static_cast<off_t>(kZeroWriteBytes)));
    ssize_t written = pwrite(fd, zeros, length, from);
    if (written < 0) {
      if (errno == EINTR) continue;
      result = errno;
      break;
    }
    // pwrite of a regular file moves at least a byte or fails.
    if (written == 0) {
      result = EIO;
      break;
    }
    // A short write: the next call reports why, or goes on.
    from += written;
  }
  if (direct && fcntl(fd, F_SETFL, flags) != 0 && result == 0) result = errno;
  return result;
}

Napi::Object GeometryToJs(Napi::Env env, const FileGeometry& geometry) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("isBlockDevice", Napi::Boolean::New(env, geometry.is_block_device));
  out.Set("sizeBytes", Napi::Number::New(env, static_cast<double>(geometry.size_bytes)));
  out.Set("logicalBlockSize", Napi::Number::New(env, geometry.logical_block_size));
  out.Set("physicalBlockSize", Napi::Number::New(env, geometry.physical_block_size));
  out.Set("dioMemAlign", Napi::Number::New(env, geometry.dio_mem_align));
  out.Set("dioOffsetAlign", Napi::Number::New(env, geometry.dio_offset_align));
  return out;
}

// Base of the promise-returning operations: Execute() runs on libuv's thread
// pool, then Result() or Failure() on the JS thread settles the promise.
// Built on the raw N-API calls, each checked, rather than Napi::AsyncWorker
// and Napi::Promise::Deferred: while a worker thread is being terminated,
// napi_create_promise and napi_create_async_work fail, and node-addon-api,
// built without C++ exceptions, then leaves its handles uninitialized. The
// garbage, returned to V8 as the call's result, crashed the whole process
// (SIGSEGV in every run of a worker terminated while it called file.stat()
// in a loop; found by a review).
class PromiseWork {
 public:
  virtual ~PromiseWork() = default;

  // Queues `work` and returns its promise. When the environment refuses the
  // promise or the work (it is being torn down: no JS will run to look at
  // the result) returns an empty value, undefined to JS, after Abandon().
  static Napi::Value Start(Napi::Env env, std::unique_ptr<PromiseWork> work) {
    napi_value promise = nullptr;
    if (napi_create_promise(env, &work->deferred_, &promise) != napi_ok) {
      work->Abandon();
      return Napi::Value();
    }
    napi_value name = nullptr;
    if (napi_create_string_latin1(env, "ringstore:file", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_create_async_work(env, nullptr, name, OnExecute, OnComplete, work.get(), &work->work_) != napi_ok) {
      work->work_ = nullptr;
      return Refused(env, std::move(work));
    }
    if (napi_queue_async_work(env, work->work_) != napi_ok) {
      napi_delete_async_work(env, work->work_);
      work->work_ = nullptr;
      return Refused(env, std::move(work));
    }
    // Owned by the work from here: OnComplete deletes it.
    work.release();
    return Napi::Value(env, promise);
  }

 protected:
  // On the pool thread: the operation. On failure it calls Fail.
  virtual void Execute() = 0;
  // On the JS thread, after Execute succeeded: what the promise resolves to.
  virtual Napi::Value Result(Napi::Env env) = 0;
  // On the JS thread, after Execute failed: what the promise rejects with.
  virtual Napi::Value Failure(Napi::Env env) {
    return MakeSystemError(env, error_errno_, syscall_, std::string(strerror(error_errno_)) + ", " + syscall_)
        .Value();
  }
  // Start could not queue the work: Execute will never run.
  virtual void Abandon() {}

  void Fail(int error_errno, const char* syscall_name) {
    assert(error_errno != 0);
    error_errno_ = error_errno;
    syscall_ = syscall_name;
  }

 private:
  // The promise was made but the work could not be: it settles with
  // undefined (a rejection would be reported unhandled), freeing its deferred.
  static Napi::Value Refused(Napi::Env env, std::unique_ptr<PromiseWork> work) {
    napi_value undefined = nullptr;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, work->deferred_, undefined);
    work->Abandon();
    return Napi::Value();
  }

  static void OnExecute(napi_env, void* data) { static_cast<PromiseWork*>(data)->Execute(); }

  static void OnComplete(napi_env env, napi_status status, void* data) {
    std::unique_ptr<PromiseWork> work(static_cast<PromiseWork*>(data));
    napi_delete_async_work(env, work->work_);
    // napi_cancelled: the work never ran (nothing here cancels work; the
    // environment's teardown may).
    if (status == napi_cancelled) {
      work->Abandon();
      work->Fail(ECANCELED, "uv_queue_work");
    }
    Napi::Env js(env);
    bool ok = status == napi_ok && work->error_errno_ == 0;
    napi_value value = ok ? work->Result(js) : work->Failure(js);
    // An environment being torn down may not make the value: settle anyway
    // (there the settling may fail too, and the deferred goes with the
    // isolate).
    if (value == nullptr) napi_get_undefined(env, &value);
    if (ok) {
      napi_resolve_deferred(env, work->deferred_, value);
    } else {
      napi_reject_deferred(env, work->deferred_, value);
    }
  }

  napi_deferred deferred_ = nullptr;
  napi_async_work work_ = nullptr;
  int error_errno_ = 0;
  const char* syscall_ = "";
};

// A promise already rejected with `error`; an empty value (undefined to JS)
// when the environment refuses to make one (see PromiseWork).
Napi::Value RejectedPromise(Napi::Env env, Napi::Value error) {
  napi_deferred deferred = nullptr;
  napi_value promise = nullptr;
  if (napi_create_promise(env, &deferred, &promise) != napi_ok) return Napi::Value();
  napi_value reason = error;
  if (reason == nullptr) napi_get_undefined(env, &reason);
  napi_reject_deferred(env, deferred, reason);
  return Napi::Value(env, promise);
}

class OpenWorker final : public PromiseWork {
 public:
  OpenWorker(std::string path, int flags, uint64_t size_bytes, bool unnamed)
      : path_(std::move(path)), flags_(flags), size_bytes_(size_bytes), unnamed_(unnamed) {}

  void Execute() override {
    int flags = flags_ | O_CLOEXEC;
    struct stat st;
    if (unnamed_) {
      // A new regular file without a name in the directory `path_`
      // (O_TMPFILE): it vanishes when its last descriptor closes, or at the
      // next mount after a crash, unless LinkFile names it. Without O_EXCL,
      // so that it can be linked.
      flags = (flags & ~(O_CREAT | O_EXCL)) | O_TMPFILE;
    } else if (stat(path_.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && (flags & O_ACCMODE) != O_RDONLY) {
      // A file to be made by this open (create + exclusive) exists: a block
      // device is no exception, though O_EXCL without O_CREAT below means
      // something else for one.
      if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) return Fail(EEXIST, "open");
      // A block device opened for writing is opened exclusively (O_EXCL
      // without O_CREAT): the kernel refuses it with EBUSY while the device
      // is mounted or held by another exclusive opener, so two stores never
      // share a disk.
      flags = (flags & ~O_CREAT) | O_EXCL;
    }
    // O_NONBLOCK only for the open itself: opening a FIFO read-only would
    // otherwise block this pool thread until a writer appears. It is cleared
    // below once the file is known to be a regular file or a block device.
    // Mode 0666 less the umask, as Node's fs.open makes files.
    int fd = open(path_.c_str(), flags | O_NONBLOCK, 0666);
    if (fd < 0) return Fail(errno, "open");
    const char* syscall_name = "";
    int rc = ReadGeometry(fd, &geometry_, &syscall_name);
    if (rc != 0) {
      close(fd);
      return Fail(rc, syscall_name);
    }
    struct stat opened;
    if (fstat(fd, &opened) != 0) {
      int saved = errno;
      close(fd);
      return Fail(saved, "fstat");
    }
    if (!S_ISREG(opened.st_mode) && !S_ISBLK(opened.st_mode)) {
      // A FIFO, socket or character device can block a read forever, and a
      // command that never completes would make close() and thread exit
      // wait forever. Only files and block devices have bounded IO.
      close(fd);
      not_storage_ = "is not a regular file or a block device";
      return Fail(EINVAL, "open");
    }
    if (S_ISREG(opened.st_mode)) {
      // Nor does every "regular file": the kernel's own file systems serve
      // files whose reads wait for events (tracefs's trace_pipe waited
      // forever, and so did close(), a worker's exit and process.exit()
      // behind it: found by a review). None of them holds storage.
      const char* kernel_fs = KernelFileSystemName(fd);
      if (kernel_fs != nullptr) {
        close(fd);
        not_storage_ = std::string("is a file of the kernel's ") + kernel_fs +
                       " file system, not storage (its reads may wait forever)";
        return Fail(EINVAL, "open");
      }
    }
    if (fcntl(fd, F_SETFL, flags & ~(O_ACCMODE | O_CREAT | O_EXCL)) != 0) {
      int saved = errno;
      close(fd);
      return Fail(saved, "fcntl");
    }
    if (!geometry_.is_block_device && size_bytes_ > geometry_.size_bytes &&
        (flags & O_ACCMODE) != O_RDONLY) {
      // Reserve the blocks now: writes into preallocated space do not grow
      // the file, so an fdatasync after them has no size metadata to journal.
      // Only the new range: from offset 0 it refilled every hole punched in
      // the file before (a store's trims of freed space), taking that room
      // from the file system again at each growth.
      const off_t old_size = static_cast<off_t>(geometry_.size_bytes);
      if (fallocate(fd, 0, old_size, static_cast<off_t>(size_bytes_) - old_size) != 0) {
        if (errno != EOPNOTSUPP) {
          int saved = errno;
          close(fd);
          return Fail(saved, "fallocate");
        }
        // No fallocate on this file system (ext2, ext3 without extents,
        // some network file systems). Extended by ftruncate alone the file
        // was sparse: the store counted its holes as room of its own that
        // the file system had never given it, and once the file system
        // filled, a write into one failed with ENOSPC and stopped the store
        // for good where a put should have been refused (found by a review,
        // on ext2). Writing the new range allocates it, as glibc's
        // posix_fallocate does where the call is missing; the store's next
        // fdatasync writes it back.
        int rc = WriteZeros(fd, old_size, static_cast<off_t>(size_bytes_));
        if (rc != 0) {
          close(fd);
          return Fail(rc, "pwrite");
        }
      }
      geometry_.size_bytes = size_bytes_;
    }
    fd_ = fd;
  }

  Napi::Value Failure(Napi::Env env) override {
    if (not_storage_.empty()) return PromiseWork::Failure(env);
    return MakeCodedError(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG",
                          "'" + path_ + "' " + not_storage_)
        .Value();
  }

  Napi::Value Result(Napi::Env env) override {
    // First, before anything that can fail: from here the environment owns
    // the descriptor, and its teardown closes it if JS never does.
    FileTable::Of(env)->Add(fd_);
    Napi::Object out = GeometryToJs(env, geometry_);
    out.Set("fd", Napi::Number::New(env, fd_));
    return out;
  }

 private:
  std::string path_;
  int flags_;
  uint64_t size_bytes_;
  bool unnamed_;
  int fd_ = -1;
  /** Why the opened file is no storage (empty: it is, or the open failed otherwise). */
  std::string not_storage_;
  FileGeometry geometry_;
};

class StatWorker final : public PromiseWork {
 public:
  explicit StatWorker(int fd) : fd_(fd) {}
  void Execute() override {
    const char* syscall_name = "";
    int rc = ReadGeometry(fd_, &geometry_, &syscall_name);
    if (rc != 0) Fail(rc, syscall_name);
  }
  Napi::Value Result(Napi::Env env) override { return GeometryToJs(env, geometry_); }

 private:
  int fd_;
  FileGeometry geometry_;
};

class CloseWorker final : public PromiseWork {
 public:
  explicit CloseWorker(int fd) : fd_(fd) {}
  void Execute() override {
    // Never retry close(): on Linux the descriptor is released even when
    // close reports EINTR or EIO, and a retry could close a reused number.
    if (CloseReleasingLock(fd_) != 0) Fail(errno, "close");
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }
  // The descriptor left the file table already: closed here, or nothing would.
  void Abandon() override { (void)CloseReleasingLock(fd_); }

 private:
  int fd_;
};

// fsync(2) of a directory: makes the names made in it durable. Opened and
// closed here, on the pool thread: a descriptor handed to JS between the
// calls (fs.promises) stayed open when its worker was terminated.
class SyncDirectoryWorker final : public PromiseWork {
 public:
  explicit SyncDirectoryWorker(std::string path) : path_(std::move(path)) {}
  void Execute() override {
    int fd = open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Fail(errno, "open");
    if (fsync(fd) != 0) Fail(errno, "fsync");
    // A read-only descriptor's close reports nothing the fsync did not.
    (void)close(fd);
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::string path_;
};

// Where Linux names this process's open descriptors (procfs).
constexpr char kProcSelfFd[] = "/proc/self/fd";

class LinkWorker final : public PromiseWork {
 public:
  LinkWorker(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void Execute() override {
    // linkat of /proc/self/fd/N with AT_SYMLINK_FOLLOW links the open file
    // itself, for any user; AT_EMPTY_PATH (no procfs needed) asks
    // CAP_DAC_READ_SEARCH, so it is only the fallback without procfs.
    char proc_path[sizeof(kProcSelfFd) + 16];
    snprintf(proc_path, sizeof(proc_path), "%s/%d", kProcSelfFd, fd_);
    if (linkat(AT_FDCWD, proc_path, AT_FDCWD, path_.c_str(), AT_SYMLINK_FOLLOW) == 0) return;
    int saved = errno;
    if (saved == ENOENT && access(kProcSelfFd, F_OK) != 0) {
      if (linkat(fd_, "", AT_FDCWD, path_.c_str(), AT_EMPTY_PATH) == 0) return;
      saved = errno;
    }
    Fail(saved, "linkat");
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  int fd_;
  std::string path_;
};

class DiscardWorker final : public PromiseWork {
 public:
  DiscardWorker(int fd, uint64_t offset, uint64_t length) : fd_(fd), range_{offset, length} {}
  void Execute() override {
    if (ioctl(fd_, BLKDISCARD, &range_) != 0) Fail(errno, "ioctl:BLKDISCARD");
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  int fd_;
  uint64_t range_[2];
};

bool ArgFd(const Napi::CallbackInfo& info, size_t index, int* fd) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    ThrowCoded(info.Env(), JsErrorKind::kTypeError, "ERR_INVALID_ARG", "fd must be a number");
    return false;
  }
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (!(value >= 0 && value <= 0x7fffffff) || std::floor(value) != value) {
    ThrowCoded(info.Env(), JsErrorKind::kRangeError, "ERR_INVALID_ARG", "fd out of range");
    return false;
  }
  *fd = static_cast<int>(value);
  return true;
}

bool ArgUint53(const Napi::CallbackInfo& info, size_t index, const char* name, uint64_t* out) {
  double value = info.Length() > index && info[index].IsNumber()
                     ? info[index].As<Napi::Number>().DoubleValue()
                     : -1;
  if (!(value >= 0 && value <= 9007199254740991.0) || std::floor(value) != value) {
    ThrowCoded(info.Env(), JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               std::string(name) + " must be an integer from 0 to 2^53-1");
    return false;
  }
  *out = static_cast<uint64_t>(value);
  return true;
}

bool ArgPath(const Napi::CallbackInfo& info, size_t index, std::string* path) {
  if (info.Length() <= index || !info[index].IsString()) {
    ThrowCoded(info.Env(), JsErrorKind::kTypeError, "ERR_INVALID_ARG", "path must be a string");
    return false;
  }
  *path = info[index].As<Napi::String>().Utf8Value();
  if (path->empty() || path->find('\0') != std::string::npos) {
    ThrowCoded(info.Env(), JsErrorKind::kTypeError, "ERR_INVALID_ARG", "path must be a non-empty string without NUL");
    return false;
  }
  return true;
}

}  // namespace

// openFile(path, flags, sizeBytes, unnamed) -> Promise<{ fd, ...geometry }>
Napi::Value OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[3].IsBoolean()) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG", "openFile(path, flags, sizeBytes, unnamed)");
    return env.Undefined();
  }
  std::string path;
  if (!ArgPath(info, 0, &path)) return env.Undefined();
  uint64_t size_bytes = 0;
  if (!ArgUint53(info, 2, "sizeBytes", &size_bytes)) return env.Undefined();
  return PromiseWork::Start(env, std::make_unique<OpenWorker>(path, info[1].As<Napi::Number>().Int32Value(), size_bytes,
                                                              info[3].As<Napi::Boolean>().Value()));
}

// syncDirectory(path) -> Promise<void>: see SyncDirectoryWorker.
Napi::Value SyncDirectory(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgPath(info, 0, &path)) return info.Env().Undefined();
  return PromiseWork::Start(info.Env(), std::make_unique<SyncDirectoryWorker>(path));
}

// linkFile(fd, path) -> Promise<void>: gives the open file `fd` the new name
// `path` (EEXIST if it is taken; never replaces a file).
Napi::Value LinkFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  std::string path;
  if (!ArgFd(info, 0, &fd) || !ArgPath(info, 1, &path)) return env.Undefined();
  if (!FileTable::Of(env)->Holds(fd)) {
    return RejectedPromise(env, MakeSystemError(env, EBADF, "linkat",
                                                "EBADF, linkat: fd " + std::to_string(fd) + " is not open in this thread")
                                    .Value());
  }
  return PromiseWork::Start(env, std::make_unique<LinkWorker>(fd, path));
}

Napi::Value StatFile(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ArgFd(info, 0, &fd)) return info.Env().Undefined();
  return PromiseWork::Start(info.Env(), std::make_unique<StatWorker>(fd));
}

Napi::Value CloseFile(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ArgFd(info, 0, &fd)) return info.Env().Undefined();
  Napi::Env env = info.Env();
  if (!FileTable::Of(env)->Take(fd)) {
    // Closed already, or never opened by this environment: closing the
    // number could close a file that another thread has since opened under it.
    return RejectedPromise(env, MakeSystemError(env, EBADF, "close",
                                                "EBADF, close: fd " + std::to_string(fd) +
                                                    " is not open in this thread (closed already?)")
                                    .Value());
  }
  return PromiseWork::Start(env, std::make_unique<CloseWorker>(fd));
}

// lockExclusive(fd) -> 0, or the errno (EWOULDBLOCK when another open file
// description holds the lock). Synchronous: LOCK_NB never waits.
Napi::Value LockExclusive(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ArgFd(info, 0, &fd)) return info.Env().Undefined();
  // flock locks belong to the open file description, so a second open of the
  // same file — by another process or by this one — conflicts.
  int rc = flock(fd, LOCK_EX | LOCK_NB);
  return Napi::Number::New(info.Env(), rc == 0 ? 0 : errno);
}

// lockShared(fd) -> 0, or the errno (EWOULDBLOCK when another open file
// description holds the lock exclusively). Synchronous: LOCK_NB never waits.
// Shared locks of separate open file descriptions coexist — in this process
// (main thread and workers alike) or another — and exclude LOCK_EX, as
// LOCK_EX excludes them.
Napi::Value LockShared(const Napi::CallbackInfo& info) {
  int fd = -1;
  if (!ArgFd(info, 0, &fd)) return info.Env().Undefined();
  int rc = flock(fd, LOCK_SH | LOCK_NB);
  return Napi::Number::New(info.Env(), rc == 0 ? 0 : errno);
}

Napi::Value BlkDiscard(const Napi::CallbackInfo& info) {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
  if (!ArgFd(info, 0, &fd) || !ArgUint53(info, 1, "offset", &offset) ||
      !ArgUint53(info, 2, "length", &length)) {
    return info.Env().Undefined();
  }
  return PromiseWork::Start(info.Env(), std::make_unique<DiscardWorker>(fd, offset, length));
}

}  // namespace ringstore
