#include "ring_client.h"

#include <errno.h>
#include <string.h>

#include <cassert>
#include <cmath>
#include <string>

#include "aligned_buffer.h"
#include "napi_errors.h"

namespace ringstore {

// File offsets must be exact in a JS number (2^53) and valid for the kernel.
constexpr double kOffsetMax = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

namespace {

constexpr uint32_t KindBit(OpKind kind) { return uint32_t{1} << static_cast<uint32_t>(kind); }

bool ReadOptionUint(Napi::Env env, Napi::Object options, const char* name, uint32_t min,
                    uint32_t max, uint32_t* out) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return true;
  if (!value.IsNumber()) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG",
               std::string("option '") + name + "' must be a number");
    return false;
  }
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= min && number <= max) || std::floor(number) != number) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               std::string("option '") + name + "' must be an integer from " + std::to_string(min) +
                   " to " + std::to_string(max) + ", got " + std::to_string(number));
    return false;
  }
  *out = static_cast<uint32_t>(number);
  return true;
}

// Reads an ArrayBufferView's memory and its ArrayBuffer. Returns false (after
// throwing) if the value is not a view, is detached, or is empty.
bool ViewMemory(Napi::Env env, Napi::Value value, void** data, size_t* length, napi_value* array_buffer) {
  napi_value raw = value;
  bool is_typed_array = false;
  bool is_data_view = false;
  napi_is_typedarray(env, raw, &is_typed_array);
  if (!is_typed_array) napi_is_dataview(env, raw, &is_data_view);
  if (is_typed_array) {
    napi_typedarray_type type;
    size_t element_count = 0;
    size_t byte_offset = 0;
    napi_get_typedarray_info(env, raw, &type, &element_count, data, array_buffer, &byte_offset);
    size_t element_size = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: element_size = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: element_size = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: element_size = 8; break;
      default: element_size = 1; break;
    }
    *length = element_count * element_size;
  } else if (is_data_view) {
    size_t byte_offset = 0;
    napi_get_dataview_info(env, raw, length, data, array_buffer, &byte_offset);
  } else {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG",
               "buffer must be a Buffer, TypedArray or DataView");
    return false;
  }
  if (*data == nullptr || *length == 0) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG",
               "buffer is empty or its ArrayBuffer is detached");
    return false;
  }
  if (*length > kTransferSizeMax) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               "buffer is larger than the 1 GiB transfer limit");
    return false;
  }
  return true;
}

// The direct-IO alignment a transfer must keep when it is continued: 0 for
// buffered files, else a power of two up to kAlignmentMax.
bool ReadDirectAlignment(Napi::Env env, Napi::Value value, uint32_t* out) {
  double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  uint32_t alignment = number >= 0 && number <= kAlignmentMax ? static_cast<uint32_t>(number) : 0;
  if (!(number >= 0 && number <= kAlignmentMax) || static_cast<double>(alignment) != number ||
      (alignment & (alignment - 1)) != 0) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               "directAlignment must be 0 or a power of two up to 1 MiB");
    return false;
  }
  *out = alignment;
  return true;
}

}  // namespace

Napi::Function RingClient::CreateClass(Napi::Env env) {
  return Napi::ObjectWrap<RingClient>::DefineClass(env, "NativeRingClient",
                     {
                         InstanceMethod<&RingClient::Submit>("submit"),
                         InstanceMethod<&RingClient::SubmitVector>("submitVector"),
                         InstanceMethod<&RingClient::SubmitRange>("submitRange"),
                         InstanceMethod<&RingClient::Stats>("stats"),
                         InstanceMethod<&RingClient::Close>("close"),
                         InstanceAccessor<&RingClient::GetActorId>("actorId"),
                         InstanceAccessor<&RingClient::GetBackend>("backend"),
                     });
}

RingClient::RingClient(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingClient>(info) {
  Napi::Env env = info.Env();
  env_ = env;
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

  if (info[0].IsNumber()) {
    double id = info[0].As<Napi::Number>().DoubleValue();
    if (!(id >= 1 && id <= 0xffffffff) || std::floor(id) != id) {
      ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "ring id must be a positive integer");
      return;
    }
    actor_ = Actor::Find(static_cast<uint32_t>(id));
    if (!actor_) {
      ThrowCoded(env, JsErrorKind::kError, "ERR_RING_NOT_FOUND",
                 "no open ring has id " + std::to_string(static_cast<uint32_t>(id)) +
                     " in this process (it was closed, or the id is from another process)");
      return;
    }
  } else if (info[0].IsObject()) {
    Napi::Object spec = info[0].As<Napi::Object>();
    ActorOptions options;
    if (!ReadOptionUint(env, spec, "entries", kRingEntriesMin, kRingEntriesMax, &options.entries) ||
        !ReadOptionUint(env, spec, "batchSize", 1, kRingEntriesMax, &options.batch_size) ||
        !ReadOptionUint(env, spec, "spinUs", 0, kSpinUsMax, &options.spin_us) ||
        !ReadOptionUint(env, spec, "threadCount", 1, kThreadCountMax, &options.thread_count) ||
        !ReadOptionUint(env, spec, "shortTransferEvery", 0, kShortTransferEveryMax,
                        &options.short_transfer_every)) {
      return;
    }
    std::string backend = spec.Get("backend").IsString()
                              ? spec.Get("backend").As<Napi::String>().Utf8Value()
                              : std::string("io_uring");
    if (backend == "threads") {
      actor_ = Actor::StartThreadPool(options);
    } else if (backend == "io_uring") {
      int error_errno = 0;
      std::string reason;
      actor_ = Actor::StartUring(options, &error_errno, &reason);
      if (!actor_) {
        Napi::Error error = MakeSystemError(env, error_errno, "io_uring_setup",
                                            reason.empty() ? strerror(error_errno) : reason);
        error.Set("code", Napi::String::New(env, "ERR_IO_URING_UNAVAILABLE"));
        error.Set("reason", Napi::String::New(env, reason.empty() ? strerror(error_errno) : reason));
        error.ThrowAsJavaScriptException();
        return;
      }
    } else {
      ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
                 "backend must be 'io_uring' or 'threads'");
      return;
    }
  } else {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG",
               "actorSpec must be a ring id or an options object");
    return;
  }

  if (info.Length() >= 4 && info[3].IsObject()) {
    if (!ReadOptionUint(env, info[3].As<Napi::Object>(), "completionSpinUs", 0, kSpinUsMax,
                        &completion_spin_us_)) {
      actor_.reset();
      return;
    }
  }

  completions_ref_ = Napi::Persistent(view);
  completions_view_ = view.Data();
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
}

RingClient::~RingClient() {
  // Normally close() ran first. If not (the env is being torn down), make sure
  // the actor holds nothing of ours before the slots are freed.
  DetachBlocking();
  if (cleanup_hook_added_) {
    napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    cleanup_hook_added_ = false;
  }
}

void RingClient::OnEnvCleanup(void* arg) {
  RingClient* client = static_cast<RingClient*>(arg);
  client->cleanup_hook_added_ = false;
  client->DetachBlocking();
}

void RingClient::DetachBlocking() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    closed_ = true;
    // Bounded: every in-flight command is a kernel IO or a pool-thread system
    // call that completes on its own.
    drained_cv_.wait(lock, [this] { return unposted_ == 0; });
    // Posted but never delivered: JS will not run again for them.
    ready_.clear();
    ready_count_.store(0, std::memory_order_relaxed);
  }
  // The actor is done with every command; those JS never heard of still
  // pin their buffers' memory (a teardown frees it only now, see
  // AlignedBlock). A slot table that was never built has nothing in use.
  for (uint32_t i = 0; slots_ && i < kClientSlotCount; i++) {
    Command& cmd = slots_[i];
    if (!cmd.in_use) continue;
    cmd.in_use = false;
    cmd.iov.clear();
    UnpinBuffers(&cmd);
  }
  in_flight_js_ = 0;
  slow_in_flight_js_ = 0;
  if (tsfn_live_) {
    tsfn_.Release();
    tsfn_live_ = false;
  }
  if (prepare_ != nullptr) {
    uv_prepare_stop(prepare_);
    uv_close(reinterpret_cast<uv_handle_t*>(prepare_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_prepare_t*>(handle); });
    prepare_ = nullptr;
  }
  if (idle_ != nullptr) {
    uv_idle_stop(idle_);
    idle_active_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(idle_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_idle_t*>(handle); });
    idle_ = nullptr;
  }
  if (async_context_ != nullptr) {
    napi_async_destroy(env_, async_context_);
    async_context_ = nullptr;
  }
  on_completions_.Reset();
  // Dropping the last reference joins the actor's thread(s).
  actor_.reset();
}

Command* RingClient::BeginCommand(const Napi::CallbackInfo& info, uint32_t allowed_kinds) {
  Napi::Env env = info.Env();
  if (closed_ || !actor_) {
    ThrowCoded(env, JsErrorKind::kError, "ERR_RING_CLOSED", "the ring is closed");
    return nullptr;
  }
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsNumber()) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG", "(slot, kind, fd, offset) must be numbers");
    return nullptr;
  }
  uint32_t slot = info[0].As<Napi::Number>().Uint32Value();
  uint32_t kind = info[1].As<Napi::Number>().Uint32Value();
  double fd_number = info[2].As<Napi::Number>().DoubleValue();
  double offset = info[3].As<Napi::Number>().DoubleValue();
  if (slot >= kClientSlotCount || slots_[slot].in_use) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "command slot out of range or in use");
    return nullptr;
  }
  if (kind >= kOpKindCount || (allowed_kinds & KindBit(static_cast<OpKind>(kind))) == 0) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "operation kind does not fit this call");
    return nullptr;
  }
  if (!(fd_number >= 0 && fd_number <= 0x7fffffff) || std::floor(fd_number) != fd_number) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "fd must be an integer from 0 to 2^31-1");
    return nullptr;
  }
  int32_t fd = static_cast<int32_t>(fd_number);
  if (!(offset >= 0 && offset <= kOffsetMax) || std::floor(offset) != offset) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG",
               "position must be an integer from 0 to 2^53-1");
    return nullptr;
  }
  Command* cmd = &slots_[slot];
  assert(cmd->client == this && cmd->slot == slot);
  cmd->kind = static_cast<OpKind>(kind);
  cmd->fd = fd;
  cmd->offset = static_cast<uint64_t>(offset);
  cmd->direct_alignment = 0;
  cmd->range_length = 0;
  cmd->total_bytes = 0;
  cmd->done_bytes = 0;
  cmd->iov.clear();
  cmd->iov_first = 0;
  cmd->cqes_pending = 0;
  cmd->write_result = 0;
  cmd->sync_result = 0;
  cmd->submitted_ns = 0;
  cmd->next = nullptr;
  assert(cmd->pinned_blocks.empty());
  return cmd;
}

void RingClient::PinBuffer(Napi::Env env, Command* cmd, napi_value array_buffer) {
  AlignedBlock* block = AlignedBlock::Of(env, array_buffer);
  if (block == nullptr) return;
  block->Pin();
  cmd->pinned_blocks.push_back(block);
}

void RingClient::UnpinBuffers(Command* cmd) {
  for (AlignedBlock* block : cmd->pinned_blocks) block->Unpin();
  cmd->pinned_blocks.clear();
}

void RingClient::Enqueue(Napi::Env env, Command* cmd) {
  cmd->in_use = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    unposted_++;
  }
  if (cmd->IsSlow()) slow_in_flight_js_++;
  if (in_flight_js_++ == 0 && !tsfn_refed_) {
    tsfn_.Ref(env);
    tsfn_refed_ = true;
  }
  cmd->enqueued_ns = MonotonicNowNs();
  actor_->Enqueue(cmd);
  StartSpinWindow();
}

// submit(slot, kind, fd, offset, buffer, directAlignment): kRead / kWrite.
Napi::Value RingClient::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Command* cmd = BeginCommand(info, KindBit(OpKind::kRead) | KindBit(OpKind::kWrite));
  if (cmd == nullptr) return env.Undefined();
  void* data = nullptr;
  size_t length = 0;
  napi_value array_buffer = nullptr;
  if (info.Length() < 6 || !ViewMemory(env, info[4], &data, &length, &array_buffer) ||
      !ReadDirectAlignment(env, info[5], &cmd->direct_alignment)) {
    return env.Undefined();
  }
  PinBuffer(env, cmd, array_buffer);
  cmd->iov.push_back({data, length});
  cmd->total_bytes = length;
  Enqueue(env, cmd);
  return env.Undefined();
}

// submitVector(slot, kind, fd, offset, buffers[], directAlignment):
// kReadv / kWritev / kWriteAndSync / kWritevDsync.
Napi::Value RingClient::SubmitVector(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Command* cmd = BeginCommand(info, KindBit(OpKind::kReadv) | KindBit(OpKind::kWritev) |
                                         KindBit(OpKind::kWriteAndSync) | KindBit(OpKind::kWritevDsync));
  if (cmd == nullptr) return env.Undefined();
  if (info.Length() < 6 || !info[4].IsArray()) {
    ThrowCoded(env, JsErrorKind::kTypeError, "ERR_INVALID_ARG", "buffers must be an array");
    return env.Undefined();
  }
  Napi::Array buffers = info[4].As<Napi::Array>();
  uint32_t count = buffers.Length();
  if (count == 0 || count > kIovCountMax) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "buffers must hold 1 to 1024 buffers");
    return env.Undefined();
  }
  if (!ReadDirectAlignment(env, info[5], &cmd->direct_alignment)) return env.Undefined();
  uint64_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    void* data = nullptr;
    size_t length = 0;
    napi_value array_buffer = nullptr;
    if (!ViewMemory(env, buffers.Get(i), &data, &length, &array_buffer)) {
      UnpinBuffers(cmd);
      return env.Undefined();
    }
    PinBuffer(env, cmd, array_buffer);
    cmd->iov.push_back({data, length});
    total += length;
  }
  if (total > kTransferSizeMax) {
    UnpinBuffers(cmd);
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "buffers exceed the 1 GiB transfer limit");
    return env.Undefined();
  }
  cmd->total_bytes = total;
  Enqueue(env, cmd);
  return env.Undefined();
}

// submitRange(slot, kind, fd, offset, length): kFsync / kFdatasync (offset and
// length 0) and kPunchHole / kDiscard.
Napi::Value RingClient::SubmitRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Command* cmd = BeginCommand(info, KindBit(OpKind::kFsync) | KindBit(OpKind::kFdatasync) |
                                         KindBit(OpKind::kPunchHole) | KindBit(OpKind::kDiscard));
  if (cmd == nullptr) return env.Undefined();
  double length = info.Length() >= 5 && info[4].IsNumber() ? info[4].As<Napi::Number>().DoubleValue() : -1;
  if (!(length >= 0 && length <= kOffsetMax) || std::floor(length) != length) {
    ThrowCoded(env, JsErrorKind::kRangeError, "ERR_INVALID_ARG", "length must be an integer >= 0");
    return env.Undefined();
  }
  cmd->range_length = static_cast<uint64_t>(length);
  Enqueue(env, cmd);
  return env.Undefined();
}

void RingClient::Post(const Completion* completions, size_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  assert(unposted_ >= count);
  ready_.insert(ready_.end(), completions, completions + count);
  ready_count_.store(static_cast<uint32_t>(ready_.size()), std::memory_order_release);
  unposted_ -= static_cast<uint32_t>(count);
  if (closed_) {
    // Teardown is waiting for in-flight commands, and JS will not run again:
    // drop the results and wake the waiter instead of calling into JS.
    ready_.clear();
    ready_count_.store(0, std::memory_order_relaxed);
    if (unposted_ == 0) drained_cv_.notify_all();
    return;
  }
  // One threadsafe-function call per batch; completions posted while it is
  // pending ride along with it. While JS spins in PollBeforeSleep it takes
  // the completions itself, and the wake-up would only cost an eventfd write
  // here and an epoll return there.
  //
  // The call happens under mu_ on purpose: once unposted_ may read 0, a
  // teardown can release the threadsafe function and free this client, so
  // nothing of ours may be touched after the lock is released.
  // NonBlockingCall never blocks and takes no lock of ours.
  if (!call_scheduled_ && !js_polling_) {
    call_scheduled_ = true;
    tsfn_.NonBlockingCall();
  }
}

void RingClient::CallJs(Napi::Env env, Napi::Function callback, RingClient* client, void*) {
  if (env == nullptr || client == nullptr) return;  // the function is being torn down
  {
    std::lock_guard<std::mutex> lock(client->mu_);
    client->call_scheduled_ = false;
    // A call queued before close() can run after it (PollBeforeSleep took
    // its completions). The client is still alive — the threadsafe
    // function's finalizer holds the last reference — but has nothing to say.
    if (client->closed_) return;
  }
  size_t count = client->TakeReady(env);
  if (count == 0) return;
  // The raw call, not Napi::Function::Call: while a worker is terminating
  // the call fails with napi_cannot_run_js, and node-addon-api would turn
  // that into a fatal error. A callback that throws leaves its exception
  // pending, and Node reports it as uncaught when this returns.
  napi_value argument = Napi::Number::New(env, static_cast<double>(count));
  napi_value result;
  napi_call_function(env, env.Undefined(), callback, 1, &argument, &result);
}

size_t RingClient::TakeReady(Napi::Env env) {
  delivering_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    delivering_.swap(ready_);
    ready_count_.store(0, std::memory_order_relaxed);
  }
  size_t count = delivering_.size();
  if (count == 0) return 0;
  assert(count <= kClientSlotCount);
  for (size_t i = 0; i < count; i++) {
    const Completion& completion = delivering_[i];
    Command& cmd = slots_[completion.slot];
    assert(cmd.in_use);
    cmd.in_use = false;
    cmd.iov.clear();
    UnpinBuffers(&cmd);
    if (cmd.IsSlow()) {
      assert(slow_in_flight_js_ > 0);
      slow_in_flight_js_--;
    }
    completions_view_[i * kCompletionWords + 0] = static_cast<int32_t>(completion.slot);
    completions_view_[i * kCompletionWords + 1] = completion.result;
    completions_view_[i * kCompletionWords + 2] = static_cast<int32_t>(completion.stage);
  }
  assert(in_flight_js_ >= count);
  in_flight_js_ -= static_cast<uint32_t>(count);
  if (in_flight_js_ == 0 && tsfn_refed_) {
    tsfn_.Unref(env);
    tsfn_refed_ = false;
  }
  return count;
}

void RingClient::OnPrepare(uv_prepare_t* handle) {
  static_cast<RingClient*>(handle->data)->PollBeforeSleep();
}

void RingClient::StartSpinWindow() {
  if (completion_spin_us_ == 0 || idle_ == nullptr) return;
  // Only fast commands are worth a busy-wait (Command::IsSlow).
  if (in_flight_js_ == slow_in_flight_js_) return;
  spin_deadline_ns_ = MonotonicNowNs() + uint64_t{completion_spin_us_} * 1000;
  if (!idle_active_) {
    // The callback does nothing: an active idle handle only tells the loop
    // to poll with a zero timeout, so it comes back to PollBeforeSleep.
    uv_idle_start(idle_, [](uv_idle_t*) {});
    idle_active_ = true;
  }
}

void RingClient::PollBeforeSleep() {
  if (!idle_active_) return;
  if (in_flight_js_ == slow_in_flight_js_ || !tsfn_live_) {
    uv_idle_stop(idle_);
    idle_active_ = false;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    js_polling_ = true;
  }
  // Acquire pairs with the release store in Post: the count is only a cheap
  // signal; TakeReady re-reads the completions under the lock.
  uint64_t now_ns = MonotonicNowNs();
  while (ready_count_.load(std::memory_order_acquire) == 0 && now_ns < spin_deadline_ns_) {
    CpuRelax();
    now_ns = MonotonicNowNs();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    js_polling_ = false;
  }
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  size_t count = TakeReady(env);
  if (count == 0) {
    // The window passed with nothing done: sleep in epoll, and let the
    // threadsafe function wake the loop when the completions come.
    uv_idle_stop(idle_);
    idle_active_ = false;
    return;
  }
  spin_deadline_ns_ = now_ns + uint64_t{completion_spin_us_} * 1000;
  // MakeCallback (not Call): we are in a libuv callback, and the promise
  // reactions this resolves must run before the loop moves on. Raw, for the
  // same reason as in CallJs.
  napi_value argument = Napi::Number::New(env, static_cast<double>(count));
  napi_value result;
  napi_make_callback(env, async_context_, env.Global(), on_completions_.Value(), 1, &argument, &result);
}

Napi::Value RingClient::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (in_flight_js_ != 0) {
    ThrowCoded(env, JsErrorKind::kError, "ERR_RING_BUSY", "close() with operations in flight");
    return env.Undefined();
  }
  DetachBlocking();
  if (cleanup_hook_added_) {
    napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    cleanup_hook_added_ = false;
  }
  completions_ref_.Reset();
  return env.Undefined();
}

Napi::Value RingClient::GetActorId(const Napi::CallbackInfo& info) {
  return actor_ ? Napi::Number::New(info.Env(), actor_->id()) : info.Env().Undefined();
}

Napi::Value RingClient::GetBackend(const Napi::CallbackInfo& info) {
  return actor_ ? Napi::String::New(info.Env(), actor_->backend_name()) : info.Env().Undefined();
}

Napi::Value RingClient::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!actor_) {
    ThrowCoded(env, JsErrorKind::kError, "ERR_RING_CLOSED", "the ring is closed");
    return env.Undefined();
  }
  ActorStats stats = actor_->Stats();
  auto summary = [&](const LatencyHistogram::Summary& s) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("count", Napi::Number::New(env, static_cast<double>(s.count)));
    out.Set("p50", Napi::Number::New(env, s.p50_us));
    out.Set("p99", Napi::Number::New(env, s.p99_us));
    out.Set("max", Napi::Number::New(env, s.max_us));
    out.Set("mean", Napi::Number::New(env, s.mean_us));
    return out;
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("submitted", Napi::Number::New(env, static_cast<double>(stats.commands_submitted)));
  out.Set("completed", Napi::Number::New(env, static_cast<double>(stats.commands_completed)));
  out.Set("sqesSubmitted", Napi::Number::New(env, static_cast<double>(stats.sqes_submitted)));
  out.Set("batches", Napi::Number::New(env, static_cast<double>(stats.batches)));
  out.Set("waits", Napi::Number::New(env, static_cast<double>(stats.waits)));
  out.Set("inFlight", Napi::Number::New(env, static_cast<double>(stats.in_flight)));
  out.Set("continuations", Napi::Number::New(env, static_cast<double>(stats.continuations)));
  out.Set("queuedUs", summary(stats.queued));
  out.Set("kernelUs", summary(stats.kernel));
  return out;
}

}  // namespace ringstore
