// Actor threads start with every signal blocked, so that a signal sent to
// the process (SIGINT, SIGTERM, SIGCHLD, a profiler's SIGPROF...) is handled
// by a thread of Node's and never lands on an IO thread: there it would cut
// an io_uring_enter or a pool thread's syscall short with EINTR (retried,
// so harmless, but a wasted round trip), and a handler Node installed would
// run on a thread that is not Node's. Signals a thread raises itself
// (SIGSEGV, SIGBUS...) are not affected: the kernel delivers those anyway.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace ringstore {

// For its lifetime, blocks every signal in the calling thread; a thread
// created meanwhile inherits the mask, so it runs with signals blocked from
// its first instruction (blocking them there would leave a window).
class ScopedBlockedSignals {
 public:
  ScopedBlockedSignals() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous_);
  }
  ~ScopedBlockedSignals() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  ScopedBlockedSignals(const ScopedBlockedSignals&) = delete;
  ScopedBlockedSignals& operator=(const ScopedBlockedSignals&) = delete;

 private:
  sigset_t previous_;
};

}  // namespace ringstore
