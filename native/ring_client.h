// RingClient: one JS thread's connection to an actor (the JS class
// `NativeRingClient`, wrapped by native/io_uring_actor.ts).
//
// It owns the thread's command slots and its completion channel: the actor
// posts completions here from its own thread, and one threadsafe-function call
// per batch delivers all of them to JS, which reads them from a shared
// Int32Array (kCompletionWords int32 per completion).
//
// The JS event loop is kept alive (threadsafe function ref'd) only while
// commands are in flight, so an idle ring never holds the process open.
//
// Completion spin: waking a sleeping event loop costs 15-25 µs on these VMs,
// as much as the 4 KiB read it reports. So while commands are in flight, a
// uv_prepare handle (run just before the loop would block in epoll) busy-waits
// for completions and delivers them directly, and the actor skips the
// threadsafe-function wake-up while it knows JS is polling. An active uv_idle
// handle makes the loop poll without blocking meanwhile, so timers and other
// IO of the thread still run between deliveries. The spin lasts at most
// `completionSpinUs` after the last submission or delivery; then the idle
// handle stops and the loop sleeps until the threadsafe function wakes it.
// With nothing in flight neither handle costs anything.
//
// Teardown: close() from JS (after the TS wrapper drained in-flight work), or
// the env cleanup hook when a worker or the process exits with the client
// still open. The hook blocks until in-flight commands complete: the kernel
// may still be writing into this thread's buffers, and they must not be freed
// before it is done. Blocking is not enough for memory Node frees in a
// teardown step of its own that runs before this hook (allocAligned's
// external buffers): commands pin that memory (AlignedBlock), and the hook
// unpins it once the actor has posted them. The hook also runs before the
// addon's file table closes this environment's descriptors (file_table.h),
// so no command is in flight on a descriptor when it is closed.
#pragma once

#include <napi.h>
#include <uv.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "actor.h"
#include "command.h"

namespace ringstore {

class RingClient : public Napi::ObjectWrap<RingClient> {
 public:
  static Napi::Function CreateClass(Napi::Env env);

  // new NativeRingClient(actorSpec, onCompletions, completionsView)
  //   actorSpec: an actor id (number) to attach to, or
  //              { backend: 'io_uring' | 'threads', entries, batchSize, spinUs, threadCount,
  //                shortTransferEvery (test only; 0 = off) }
  explicit RingClient(const Napi::CallbackInfo& info);
  ~RingClient() override;

  // Actor thread: hands completions to this client. Thread-safe.
  void Post(const Completion* completions, size_t count);

 private:
  static void CallJs(Napi::Env env, Napi::Function callback, RingClient* client, void* data);
  using Tsfn = Napi::TypedThreadSafeFunction<RingClient, void, CallJs>;

  // JS methods.
  Napi::Value Submit(const Napi::CallbackInfo& info);       // one buffer
  Napi::Value SubmitVector(const Napi::CallbackInfo& info); // array of buffers
  Napi::Value SubmitRange(const Napi::CallbackInfo& info);  // sync / trim
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetActorId(const Napi::CallbackInfo& info);
  Napi::Value GetBackend(const Napi::CallbackInfo& info);

  // Validates the common arguments (slot, kind, fd, offset) and returns the
  // reserved command, or nullptr after throwing a JS exception.
  // `allowed_kinds` is a bit set of the OpKinds this entry point accepts.
  Command* BeginCommand(const Napi::CallbackInfo& info, uint32_t allowed_kinds);
  // Pins the allocAligned memory behind a buffer of `cmd` (if it is such
  // memory) until UnpinBuffers: see AlignedBlock. JS thread only.
  void PinBuffer(Napi::Env env, Command* cmd, napi_value array_buffer);
  void UnpinBuffers(Command* cmd);
  void Enqueue(Napi::Env env, Command* cmd);

  // Moves ready completions into the shared view; returns how many.
  size_t TakeReady(Napi::Env env);
  static void OnPrepare(uv_prepare_t* handle);
  void PollBeforeSleep();
  void StartSpinWindow();
  static void OnEnvCleanup(void* arg);
  // Waits (blocking) for in-flight commands, then drops the actor.
  void DetachBlocking();

  std::shared_ptr<Actor> actor_;
  uint32_t completion_spin_us_ = 0;
  uv_prepare_t* prepare_ = nullptr;  // freed by its close callback
  uv_idle_t* idle_ = nullptr;        // freed by its close callback
  bool idle_active_ = false;
  uint64_t spin_deadline_ns_ = 0;    // JS thread: end of the current spin window
  Napi::FunctionReference on_completions_;
  napi_async_context async_context_ = nullptr;
  Tsfn tsfn_;
  bool tsfn_live_ = false;
  bool tsfn_refed_ = false;
  bool cleanup_hook_added_ = false;
  napi_env env_ = nullptr;

  std::unique_ptr<Command[]> slots_;
  uint32_t in_flight_js_ = 0;       // JS thread only
  uint32_t slow_in_flight_js_ = 0;  // JS thread only: in_flight_js_ that are Command::IsSlow()

  Napi::Reference<Napi::Int32Array> completions_ref_;
  int32_t* completions_view_ = nullptr;  // kClientSlotCount * kCompletionWords

  std::mutex mu_;
  std::condition_variable drained_cv_;
  std::vector<Completion> ready_;       // guarded by mu_
  bool call_scheduled_ = false;         // guarded by mu_
  bool js_polling_ = false;             // guarded by mu_: JS spins in PollBeforeSleep
  std::atomic<uint32_t> ready_count_{0};  // ready_.size(), for the lock-free spin check
  bool closed_ = false;                 // guarded by mu_ (writes); JS-thread reads
  uint32_t unposted_ = 0;               // commands submitted and not yet posted; mu_

  std::vector<Completion> delivering_;  // JS thread only
};

}  // namespace ringstore
