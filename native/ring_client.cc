// RingClient's construction and the JS class it backs. See ring_client.h for
// the parts in the other ring_client_*.cc files.
#include "ring_client.h"

#include <cstring>

#include <cassert>

#include "actor_join.h"
#include "js_args.h"
#include "napi_errors.h"

namespace ringstore {

Napi::Function RingClient::CreateClass(Napi::Env env) {
  return Napi::ObjectWrap<RingClient>::DefineClass(env, "NativeRingClient",
                     {
                         InstanceMethod<&RingClient::Submit>("submit"),
                         InstanceMethod<&RingClient::SubmitVector>("submitVector"),
                         InstanceMethod<&RingClient::SubmitRange>("submitRange"),
                         InstanceMethod<&RingClient::HoldWakes>("holdWakes"),
                         InstanceMethod<&RingClient::Stats>("stats"),
                         InstanceMethod<&RingClient::Close>("close"),
                         InstanceAccessor<&RingClient::GetActorId>("actorId"),
                         InstanceAccessor<&RingClient::GetBackend>("backend"),
                     });
}

RingClient::RingClient(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingClient>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  // ObjectWrap's napi_wrap fails once the environment is stopping (a worker
  // being terminated right as it makes a client): the object is then not
  // wrapped, its reference has no env, and the Ref() below made
  // node-addon-api abort the whole process (napi_reference_ref without an
  // env; found by a review: 3 in ~620 terminations during BlockStore.open).
  // Nothing is set up: no JS will run to use this object, and no finalizer
  // will run for it (a small leak at the thread's end).
  if (IsEmpty()) return;
  if (info.Length() < 3 || !info[1].IsFunction() || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG",
               "NativeRingClient(actorSpec, onCompletions, Int32Array)");
    return;
  }
  Napi::Int32Array view = info[2].As<Napi::Int32Array>();
  if (view.ElementLength() < size_t{kClientSlotCount} * kCompletionWords) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "completion view too small");
    return;
  }

  actor_ = JoinActor(env, info[0]);
  if (!actor_) return;  // JoinActor threw

  if (info.Length() >= 4 && info[3].IsObject()) {
    uint32_t adaptive = 0;
    uint32_t direct_dsync = 0;
    uint32_t direct_reads = 0;
    if (!ReadOptionUint(env, info[3].As<Napi::Object>(), "completionSpinUs", 0, kSpinUsMax,
                        &completion_spin_us_) ||
        !ReadOptionUint(env, info[3].As<Napi::Object>(), "completionSpinAdaptive", 0, 1, &adaptive) ||
        !ReadOptionUint(env, info[3].As<Napi::Object>(), "directDsync", 0, 1, &direct_dsync) ||
        !ReadOptionUint(env, info[3].As<Napi::Object>(), "directReads", 0, 1, &direct_reads)) {
      actor_.reset();
      return;
    }
    completion_spin_adaptive_ = adaptive != 0;
    // Only over io_uring: the thread pool's hops are what it measures against.
    bool over_io_uring = strcmp(actor_->backend_name(), "io_uring") == 0;
    direct_dsync_ = direct_dsync != 0 && over_io_uring;
    direct_reads_ = direct_reads != 0 && over_io_uring;
  }

  completions_ref_ = Napi::Persistent(view);
  slots_.reset(new Command[kClientSlotCount]);
  for (uint32_t i = 0; i < kClientSlotCount; i++) {
    slots_[i].client = this;
    slots_[i].slot = i;
  }
  ready_.reserve(kClientSlotCount);
  delivering_.reserve(kClientSlotCount);

  on_completions_ = Napi::Persistent(info[1].As<Napi::Function>());
  napi_async_init(env, Napi::Object::New(env), Napi::String::New(env, "ringstore:completions"),
                  &async_context_);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  prepare_ = new uv_prepare_t;
  uv_prepare_init(loop, prepare_);
  prepare_->data = this;
  uv_prepare_start(prepare_, OnPrepare);
  idle_ = new uv_idle_t;
  uv_idle_init(loop, idle_);
  idle_->data = this;
  // Neither handle may keep the loop alive: the threadsafe function's ref
  // does that while commands are in flight.
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
  uv_unref(reinterpret_cast<uv_handle_t*>(idle_));

  // The threadsafe function may still run a queued call after close(); keep
  // this object alive until its finalizer says no call remains.
  Ref();
  tsfn_ = Tsfn::New(env, info[1].As<Napi::Function>(), "ringstore:completions", 0, 1, this,
                    [](Napi::Env, void*, RingClient* client) { client->Unref(); });
  tsfn_live_ = true;
  // Idle until the first command: an idle ring must not keep the process alive.
  tsfn_.Unref(env);
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
  cleanup_hook_added_ = true;

  // Made now, not at the first command that would use it: the ring and its
  // eventfd take descriptor numbers, and made later they could take the
  // number of a descriptor of this handle's files closed behind their back,
  // whose IO would then go to them (a read of the eventfd waited forever,
  // where EBADF was due: found by ring_file_kernel_errors.test.ts). Files
  // opened before this handle get no such protection: a descriptor closed
  // behind the library's back is reused by whatever opens next, here too
  // (a review showed an attach() after such a close hang a read). Costs two
  // descriptors and a small io_uring per handle. If it cannot be made (a
  // kernel without SINGLE_ISSUER, no descriptors left) every command goes
  // to the actor.
  if (direct_dsync_ || direct_reads_) {
    const char* reason = nullptr;
    direct_ring_ = DirectRing::Start(loop, actor_, this, OnDirectFinished, OnDirectReadable, &reason);
  }
}

Napi::Value RingClient::GetActorId(const Napi::CallbackInfo& info) {
  return actor_ ? Napi::Number::New(info.Env(), actor_->id()) : info.Env().Undefined();
}

Napi::Value RingClient::GetBackend(const Napi::CallbackInfo& info) {
  return actor_ ? Napi::String::New(info.Env(), actor_->backend_name()) : info.Env().Undefined();
}

}  // namespace ringstore
