// FileTable: the descriptors one JS environment (the main thread, or one
// worker) opened through openFile and has not closed. It is the owner of
// record of each of them: closeFile takes a descriptor out of it before the
// close, and when the environment is torn down — a worker returns, throws,
// calls process.exit() or is terminated — the table closes whatever is left,
// so the descriptor and the flock on it do not outlive the thread that opened
// them.
//
// REQUIRES: the table's teardown hook runs after every RingClient of the
// environment has drained its commands (no IO is in flight on a descriptor
// when it is closed). Env cleanup hooks run newest first, and the table's is
// added when the addon is loaded into the environment, before any RingClient
// can add its own (FileTable::Install, called from the addon's Init).
//
// Why a descriptor is closed exactly once: it leaves the table (under the JS
// thread, the only thread that touches the table) at the moment one of the
// two paths claims it — closeFile before it queues the close(2), teardown
// before it closes — so the other path no longer sees it. Closing a number
// twice is the hazard this prevents: after the first close the kernel may
// give the number to another thread's open, and a second close would close
// that thread's file.
#pragma once

#include <napi.h>

#include <unordered_set>

namespace ringstore {

// Closes `fd` after releasing any flock it holds. A flock belongs to the open
// file description, which close(2) frees only with its last reference — and
// a child forked while the file was open (child_process.spawn, from any
// thread) holds one until its exec, as may an io_uring request the kernel
// has completed but not yet freed. Unlocking first releases the lock for all
// of them at once, so the next opener does not find the file locked by a
// store that has closed. Returns close(2)'s result; never retried.
int CloseReleasingLock(int fd);

class FileTable {
 public:
  // Creates the table of `env` (the addon's instance data) and its teardown
  // hook. Called once per environment, from Init.
  static bool Install(napi_env env);
  // The table of `env`; never nullptr after Install.
  static FileTable* Of(napi_env env);

  // A descriptor openFile just opened. After teardown (an open that finished
  // while the environment was going away) it is closed at once instead.
  void Add(int fd);
  // Claims `fd` for closing: true if the table held it (the caller now owns
  // the close), false if it is not a descriptor this environment has open.
  bool Take(int fd);
  // True if `fd` is a descriptor this environment has open.
  bool Holds(int fd) const { return fds_.count(fd) == 1; }

 private:
  static void OnEnvTeardown(void* arg);
  void CloseAll();

  std::unordered_set<int> fds_;
  bool torn_down_ = false;
};

}  // namespace ringstore
