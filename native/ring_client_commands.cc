// RingClient, marshalling: the three submit entry points turn their JS
// arguments into a slot's Command, checking every one of them (js_args.h),
// and hand it to Enqueue (ring_client_submit.cc). A call refused here has
// reserved no slot and pins nothing.
#include <cassert>
#include <cmath>

#include "js_args.h"
#include "napi_errors.h"
#include "ring_client.h"

namespace ringstore {

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
  assert(cmd->pinned_blocks.empty() && cmd->bounces.empty());
  return cmd;
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
  if (!AddBuffer(env, cmd, data, length, array_buffer)) {
    ReleaseBuffers(env, cmd, -1);
    return env.Undefined();
  }
  cmd->total_bytes = length;
  Enqueue(env, cmd);
  return env.Undefined();
}

// submitVector(slot, kind, fd, offset, buffers[], directAlignment):
// kReadv / kWritev / kWriteAndSync / kWritevDsync.
Napi::Value RingClient::SubmitVector(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
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
  // The elements first, before the command is touched: reading one may run
  // a getter, which may throw (its exception pending) or submit on this
  // very slot; nothing after this runs JS.
  napi_value elements[kIovCountMax];  // 8 KiB of stack, no allocation a submit
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value element = buffers.Get(i);
    if (env.IsExceptionPending()) return env.Undefined();
    elements[i] = element;
  }
  Command* cmd = BeginCommand(info, KindBit(OpKind::kReadv) | KindBit(OpKind::kWritev) |
                                         KindBit(OpKind::kWriteAndSync) | KindBit(OpKind::kWritevDsync));
  if (cmd == nullptr) return env.Undefined();
  if (!ReadDirectAlignment(env, info[5], &cmd->direct_alignment)) return env.Undefined();
  uint64_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    void* data = nullptr;
    size_t length = 0;
    napi_value array_buffer = nullptr;
    if (!ViewMemory(env, Napi::Value(env, elements[i]), &data, &length, &array_buffer) ||
        !AddBuffer(env, cmd, data, length, array_buffer)) {
      ReleaseBuffers(env, cmd, -1);
      return env.Undefined();
    }
    total += length;
  }
  if (total > kTransferSizeMax) {
    ReleaseBuffers(env, cmd, -1);
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

}  // namespace ringstore
