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
// One class, one concept per file. Each part below names its file; the
// members each part owns are grouped with it, and a member another part
// touches says so.
//
//   ring_client.cc           the JS class and a client's construction: the
//                            actor it joins (actor_join.h), its slots, its
//                            completion view, its uv handles and threadsafe
//                            function, its env cleanup hook; the accessors.
//   ring_client_commands.cc  marshalling: the JS entry points submit,
//                            submitVector and submitRange check every argument
//                            (js_args.h) and fill a slot's Command.
//   ring_client_submit.cc    submission: pinning a command's buffers and
//                            handing it to the actor (in-flight counts, the
//                            keep-alive ref, the spin window).
//   ring_client_delivery.cc  completion delivery: the actor's Post, the
//                            threadsafe-function call, and moving completions
//                            into the shared view (freeing their slots).
//   ring_client_spin.cc      the uv-side completion spin (below).
//   ring_client_teardown.cc  close(), the env cleanup hook and the destructor:
//                            waiting for in-flight commands, then releasing
//                            everything the constructor set up.
//   ring_client_stats.cc     stats(): the actor's counters as a JS object.
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
// With nothing in flight neither handle costs anything. With
// completionSpinAdaptive (completionSpinUs 'auto', the default) the window
// is kAutoSpinWindowUs and is used only while this client's SpinPolicy
// (spin_policy.h) measures that it pays; TakeReady feeds the policy.
//
// Held wakes: a JS thread that submits to a sleeping actor pays for its
// wake-up (an eventfd write, ~10 µs on these VMs, and the actor's own
// return from io_uring_enter), so a delivery of k completions whose
// reactions submit k reads used to pay k of them. While the JS wrapper holds
// wakes — from the first command (other than one that is always slow) that
// a delivery's reactions submit, until the microtasks it started have run —
// the first fast command still wakes the actor at once (its IO starts as
// soon as before), and later fast commands only join the actor's queue: one wake
// at the release hands them over together (in as few io_uring_enter calls
// as batch_size allows; the actor also takes them whenever anything else
// wakes it). Slow commands (Command::IsSlow: a commit's write + flush, a
// transfer of 64 KiB or more) always wake at once. Measured with 32 concurrent cold gets
// (docs/benchmarks.md, session 16): CPU per get -22-37 %, gets/s
// +18-38 %; holding every command instead (the first too) saved as much
// CPU but added ~300 µs of queueing and no throughput. Teardown releases a
// held wake before it waits for in-flight commands, which would otherwise
// wait for a command the actor never saw.
//
// Direct durable writes (directDsync, off by default): writes with
// RWF_DSYNC (OpKind::kWritevDsync, a store's commit writes) go to a ring this
// JS thread owns (direct_ring.h) instead of to the actor: the thread submits
// with its own io_uring_enter and the kernel wakes its event loop through an
// eventfd, one wake-up instead of the actor's three. Made with the client
// (its descriptors taken before those of the files it opens; see the
// constructor); if it cannot be made (a
// kernel without SINGLE_ISSUER) or is full (kDirectRingEntries in
// flight), the write goes to the actor as before.
// Its completions take the same path into the shared view (ready_, then
// TakeReady and DeliverToJs); teardown drains it before waiting for the
// actor. The completion spin reaps it too (PollBeforeSleep).
//
// Lone reads (directReads, on by default): a read submitted while this
// client has nothing else in flight, as the read before it had not, goes
// to the same ring. The actor has
// nothing to batch it with then, and its hand-offs (JS to actor, kernel to
// actor, actor to JS) were a third of a QD1 4 KiB read's latency (docs/io.md,
// *Lone reads*). A read with company goes to the actor, which batches it
// with the others into one io_uring_enter (at QD32 that is what keeps it
// ahead of fio). Which path is faster for a lone read depends on the host
// (on one the actor spinning for it won by 5 us), so lone_read_route_ (a
// SpinPolicy with kLoneReadRoutePolicy) measures each lone read's latency
// under the route it took and keeps the faster one, the JS thread's ring
// unless the actor wins by 5 %.
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
//
// Threads: every member function runs on the client's JS thread except Post,
// which runs on an actor thread. What the two share is guarded by mu_ (or is
// the atomic ready_count_); everything marked "JS thread only" is not.
#pragma once

#include <napi.h>
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "actor.h"
#include "bounce_pool.h"
#include "command.h"
#include "direct_ring.h"
#include "spin_policy.h"

namespace ringstore {

class RingClient final : public Napi::ObjectWrap<RingClient>, public CompletionSink {
 public:
  static Napi::Function CreateClass(Napi::Env env);

  // new NativeRingClient(actorSpec, onCompletions, completionsView, clientOptions?)
  //   actorSpec: see actor_join.h.
  //   onCompletions(count): called with the number of completions just
  //     written to completionsView.
  //   completionsView: an Int32Array of at least kClientSlotCount *
  //     kCompletionWords elements, (slot, result, stage) per completion.
  //   clientOptions: { completionSpinUs (0 to kSpinUsMax),
  //     completionSpinAdaptive (0 or 1), directDsync (0 or 1) }.
  // Throws (coded, see actor_join.h and js_args.h) on any bad argument.
  explicit RingClient(const Napi::CallbackInfo& info);
  ~RingClient() override;

  // CompletionSink (ring_client_delivery.cc). Actor thread: hands
  // completions to this client. Thread-safe.
  void Post(const Completion* completions, size_t count) override;

 private:
  // The threadsafe function's call on the JS thread (ring_client_delivery.cc):
  // delivers what Post made ready, unless the client was closed meanwhile.
  static void CallJs(Napi::Env env, Napi::Function callback, RingClient* client, void* data);
  using Tsfn = Napi::TypedThreadSafeFunction<RingClient, void, CallJs>;

  // ---- ring_client.cc: accessors. ----
  Napi::Value GetActorId(const Napi::CallbackInfo& info);
  Napi::Value GetBackend(const Napi::CallbackInfo& info);

  // ---- ring_client_commands.cc: marshalling JS arguments into a Command. ----
  // Each validates all of its arguments, then hands the command to Enqueue;
  // on a bad argument it throws (ERR_INVALID_ARG, or ERR_RING_CLOSED) and
  // leaves the slot free and nothing pinned.
  Napi::Value Submit(const Napi::CallbackInfo& info);       // one buffer
  Napi::Value SubmitVector(const Napi::CallbackInfo& info); // array of buffers
  Napi::Value SubmitRange(const Napi::CallbackInfo& info);  // sync / trim
  // Validates the common arguments (slot, kind, fd, offset) and returns the
  // reserved command, or nullptr after throwing a JS exception.
  // `allowed_kinds` is a bit set (KindBit) of the OpKinds this entry point accepts.
  Command* BeginCommand(const Napi::CallbackInfo& info, uint32_t allowed_kinds);

  // ---- ring_client_submit.cc: handing a command to the actor. ----
  // Adds the buffer `data`/`length` (a view of `array_buffer`) to `cmd`'s
  // iov: its own memory pinned when it is an allocAligned block (see
  // AlignedBlock), else a bounce copy (Command::bounces), filled now for a
  // write. Returns false after throwing (out of memory). JS thread only.
  bool AddBuffer(Napi::Env env, Command* cmd, void* data, size_t length, napi_value array_buffer);
  // Unpins `cmd`'s blocks and frees its bounce copies; `result` >= 0 (the
  // bytes a read moved) copies a read's bounces back into their
  // ArrayBuffers first, those still holding the bytes. JS thread only.
  void ReleaseBuffers(napi_env env, Command* cmd, int32_t result);
  // REQUIRES: `cmd` is a fully marshalled command of a free slot.
  void Enqueue(Napi::Env env, Command* cmd);
  // holdWakes(held): see "Held wakes" above. Releasing wakes the actor once
  // if a command was held meanwhile.
  Napi::Value HoldWakes(const Napi::CallbackInfo& info);
  // Wakes the actor if a held Enqueue owes it a wake. JS thread only.
  void ReleaseWake();
  // Hands `cmd` to this thread's direct ring if the ring takes it (a
  // RWF_DSYNC write with directDsync, a read alone in flight with
  // directReads), exists and has room; returns
  // false to leave it to the actor. JS thread only.
  bool TrySubmitDirect(Command* cmd);

  // ---- ring_client_delivery.cc: direct ring completions. ----
  // Post's work, from any thread: makes `completions` ready for TakeReady
  // (or drops them once closed, waking teardown's wait), and with `call_js`
  // schedules the threadsafe-function call that delivers them.
  void Queue(const Completion* completions, size_t count, bool call_js);
  // DirectRing::FinishFn: `cmd` ended with `result`; queues its completion
  // without the threadsafe-function call. JS thread.
  static void OnDirectFinished(void* client, Command* cmd, int32_t result);
  // DirectRing::ReadableFn: reaps the direct ring and delivers what it
  // finished (and anything the actor posted meanwhile). JS thread.
  static void OnDirectReadable(void* client);

  // ---- ring_client_delivery.cc: completions to JS. ----
  // Moves ready completions into the shared view and frees their slots;
  // returns how many. JS thread only.
  size_t TakeReady(Napi::Env env);
  // Calls onCompletions(count) (CallJs: a plain call; the spin: through
  // MakeCallback, `async_context` non-null) and reports a throw from it as
  // uncaught.
  void DeliverToJs(Napi::Env env, napi_value callback, size_t count, napi_async_context async_context);

  // ---- ring_client_spin.cc: the uv-side completion spin. ----
  static void OnPrepare(uv_prepare_t* handle);
  void PollBeforeSleep();
  // Opens (or extends) the spin window after a submission. JS thread only.
  void StartSpinWindow();
  // The window in force now: completion_spin_us_, or 0 while the adaptive
  // policy finds spinning does not pay. JS thread only.
  uint32_t SpinWindowUs() const {
    return completion_spin_adaptive_ && !completion_spin_policy_.spinning() ? 0 : completion_spin_us_;
  }
  // Feeds `fast_completions` just delivered to the adaptive policy. JS thread only.
  void RecordSpinObservation(uint32_t fast_completions);

  // ---- ring_client_teardown.cc ----
  // close(): throws ERR_RING_BUSY while commands are in flight (the TS
  // wrapper drains them first); otherwise detaches. Idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info);
  static void OnEnvCleanup(void* arg);
  // Waits (blocking) for in-flight commands, then drops the actor.
  // Idempotent; afterwards no other thread refers to this client.
  void DetachBlocking();

  // ---- ring_client_stats.cc ----
  Napi::Value Stats(const Napi::CallbackInfo& info);

  // ---- State. ----
  std::shared_ptr<Actor> actor_;     // null once detached (teardown)

  // Direct durable writes and lone reads (ring_client_submit.cc, ring_client_delivery.cc).
  bool direct_dsync_ = false;               // the client option
  bool direct_reads_ = false;               // the client option
  std::unique_ptr<DirectRing> direct_ring_;  // JS thread only; made by the constructor (null: could not be), reset by teardown
  uint64_t direct_writes_ = 0;              // JS thread only: writes the direct ring took (stats)
  uint64_t direct_reads_taken_ = 0;         // JS thread only: reads the direct ring took (stats)
  bool last_read_alone_ = true;             // JS thread only: the last read enqueued had nothing in flight (Enqueue)
  SpinPolicy lone_read_route_{kLoneReadRoutePolicy};  // JS thread only: "spinning" = lone reads through the actor
  uint64_t direct_continuations_ = 0;       // JS thread only: of rings reset by teardown (stats)

  // The spin (ring_client_spin.cc); the handles are made by the constructor
  // and closed by teardown.
  uint32_t completion_spin_us_ = 0;
  bool completion_spin_adaptive_ = false;
  SpinPolicy completion_spin_policy_{kClientSpinPolicy};  // JS thread only
  // Start of the not yet recorded busy time (fast commands in flight). JS thread only.
  uint64_t busy_mark_ns_ = 0;
  uv_prepare_t* prepare_ = nullptr;  // freed by its close callback
  uv_idle_t* idle_ = nullptr;        // freed by its close callback
  bool idle_active_ = false;
  uint64_t spin_deadline_ns_ = 0;    // JS thread: end of the current spin window

  // Delivery to JS (ring_client_delivery.cc, ring_client_spin.cc).
  Napi::FunctionReference on_completions_;
  napi_async_context async_context_ = nullptr;
  Tsfn tsfn_;
  bool tsfn_live_ = false;   // until teardown releases it
  bool tsfn_refed_ = false;  // JS thread only: ref'd while in_flight_js_ > 0 (submission, delivery)
  bool cleanup_hook_added_ = false;  // construction, teardown
  napi_env env_ = nullptr;

  // Slots (marshalling fills them, submission hands them over, delivery and
  // teardown free them).
  std::unique_ptr<Command[]> slots_;
  BouncePool bounce_pool_;  // JS thread only: bounce copies' memory (Command::bounces)
  uint32_t in_flight_js_ = 0;       // JS thread only
  uint32_t slow_in_flight_js_ = 0;  // JS thread only: in_flight_js_ that are Command::IsSlow()
  bool wakes_held_ = false;         // JS thread only: holdWakes(true) in force
  bool wake_owed_ = false;          // JS thread only: a held Enqueue did not wake the actor
  bool held_fast_woke_ = false;     // JS thread only: a fast command woke the actor since holdWakes(true)

  Napi::Reference<Napi::Int32Array> completions_ref_;

  // Shared with the actor thread (Post).
  std::mutex mu_;
  std::condition_variable drained_cv_;  // teardown waits on it for unposted_ == 0
  std::vector<Completion> ready_;       // guarded by mu_
  bool call_scheduled_ = false;         // guarded by mu_
  bool js_polling_ = false;             // guarded by mu_: JS spins in PollBeforeSleep
  // ready_.size(), for the lock-free spin check: Post's release store pairs
  // with PollBeforeSleep's acquire load.
  std::atomic<uint32_t> ready_count_{0};
  bool closed_ = false;                 // guarded by mu_ (writes); JS-thread reads
  uint32_t unposted_ = 0;               // commands submitted and not yet posted; mu_

  std::vector<Completion> delivering_;  // JS thread only
};

}  // namespace ringstore
