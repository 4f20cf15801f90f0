#include "file_table.h"

#include <sys/file.h>
#include <unistd.h>

#include <cassert>

namespace ringstore {

bool FileTable::Install(napi_env env) {
  auto* table = new FileTable();
  if (napi_set_instance_data(
          env, table, [](napi_env, void* data, void*) { delete static_cast<FileTable*>(data); },
          nullptr) != napi_ok) {
    delete table;
    return false;
  }
  // Added before any RingClient of this environment exists, so it runs after
  // all of their hooks (newest first): their IO has drained by then.
  return napi_add_env_cleanup_hook(env, OnEnvTeardown, table) == napi_ok;
}

FileTable* FileTable::Of(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  assert(data != nullptr);
  return static_cast<FileTable*>(data);
}

int CloseReleasingLock(int fd) {
  // LOCK_UN on a descriptor without a lock is a no-op that succeeds; its
  // failure (EBADF, EINTR) leaves close(2) to report or to release the lock.
  (void)flock(fd, LOCK_UN);
  return close(fd);
}

void FileTable::Add(int fd) {
  assert(fd >= 0);
  if (torn_down_) {
    // An open that the environment's teardown waited for (libuv's pool work
    // finishes before the cleanup hooks) cannot get here after CloseAll; if
    // some Node version ordered it otherwise, no one could ever close it.
    CloseReleasingLock(fd);
    return;
  }
  // The kernel never hands out a number that is still open; one already in
  // the table was closed behind its RingFile's back (fs.closeSync(file.fd))
  // and given to this open: the entry now stands for the new descriptor. It
  // used to be an assert, which aborted the process (found by a review).
  fds_.insert(fd);
}

bool FileTable::Take(int fd) { return fds_.erase(fd) == 1; }

void FileTable::OnEnvTeardown(void* arg) { static_cast<FileTable*>(arg)->CloseAll(); }

void FileTable::CloseAll() {
  torn_down_ = true;
  for (int fd : fds_) {
    // Never retried (see CloseWorker): the descriptor is gone even when
    // close reports EINTR or EIO, and there is no one left to tell.
    CloseReleasingLock(fd);
  }
  fds_.clear();
}

}  // namespace ringstore
