// Addon entry point: exports the NativeRingClient class, the file set-up
// functions, aligned buffers, and the protocol constants that the TS layer
// reads from here rather than copying (native/addon.ts is the only importer).
#include <fcntl.h>
#include <napi.h>

#include "actor.h"
#include "aligned_buffer.h"
#include "command.h"
#include "crc32c.h"
#include "file_ops.h"
#include "file_table.h"
#include "ring_client.h"

namespace ringstore {

// Tests only: the adaptive spin's decision logic as a pure function (spin_policy.cc).
Napi::Value SpinPolicyRun(const Napi::CallbackInfo& info);

namespace {

Napi::Object Constants(Napi::Env env) {
  Napi::Object constants = Napi::Object::New(env);
  auto set = [&](const char* name, double value) { constants.Set(name, Napi::Number::New(env, value)); };
  set("OP_READ", static_cast<double>(OpKind::kRead));
  set("OP_WRITE", static_cast<double>(OpKind::kWrite));
  set("OP_READV", static_cast<double>(OpKind::kReadv));
  set("OP_WRITEV", static_cast<double>(OpKind::kWritev));
  set("OP_FSYNC", static_cast<double>(OpKind::kFsync));
  set("OP_FDATASYNC", static_cast<double>(OpKind::kFdatasync));
  set("OP_WRITE_AND_SYNC", static_cast<double>(OpKind::kWriteAndSync));
  set("OP_PUNCH_HOLE", static_cast<double>(OpKind::kPunchHole));
  set("OP_DISCARD", static_cast<double>(OpKind::kDiscard));
  set("OP_WRITEV_DSYNC", static_cast<double>(OpKind::kWritevDsync));
  set("STAGE_MAIN", static_cast<double>(Stage::kMain));
  set("STAGE_SYNC", static_cast<double>(Stage::kSync));
  set("COMPLETION_WORDS", kCompletionWords);
  set("CLIENT_SLOT_COUNT", kClientSlotCount);
  set("IOV_COUNT_MAX", kIovCountMax);
  set("TRANSFER_SIZE_MAX", static_cast<double>(kTransferSizeMax));
  set("RING_ENTRIES_MIN", kRingEntriesMin);
  set("RING_ENTRIES_MAX", kRingEntriesMax);
  set("SPIN_US_MAX", kSpinUsMax);
  set("AUTO_SPIN_WINDOW_US", kAutoSpinWindowUs);
  set("THREAD_COUNT_MAX", kThreadCountMax);
  set("SHORT_TRANSFER_EVERY_MAX", kShortTransferEveryMax);
  set("ALIGNMENT_MAX", kAlignmentMax);
  set("O_RDONLY", O_RDONLY);
  set("O_RDWR", O_RDWR);
  set("O_CREAT", O_CREAT);
  set("O_EXCL", O_EXCL);
  set("O_DIRECT", O_DIRECT);
  set("O_DSYNC", O_DSYNC);
  return constants;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // First: the file table's teardown hook must be older than every
  // RingClient's (see file_table.h).
  if (!FileTable::Install(env)) {
    Napi::Error::New(env, "ringstore: could not set up the per-thread file table").ThrowAsJavaScriptException();
    return exports;
  }
  exports.Set("NativeRingClient", RingClient::CreateClass(env));
  exports.Set("openFile", Napi::Function::New<OpenFile>(env, "openFile"));
  exports.Set("syncDirectory", Napi::Function::New<SyncDirectory>(env, "syncDirectory"));
  exports.Set("linkFile", Napi::Function::New<LinkFile>(env, "linkFile"));
  exports.Set("statFile", Napi::Function::New<StatFile>(env, "statFile"));
  exports.Set("closeFile", Napi::Function::New<CloseFile>(env, "closeFile"));
  exports.Set("blkDiscard", Napi::Function::New<BlkDiscard>(env, "blkDiscard"));
  exports.Set("lockExclusive", Napi::Function::New<LockExclusive>(env, "lockExclusive"));
  exports.Set("lockShared", Napi::Function::New<LockShared>(env, "lockShared"));
  exports.Set("allocAligned", Napi::Function::New<AllocAligned>(env, "allocAligned"));
  exports.Set("bufferAddressModulo", Napi::Function::New<BufferAddressModulo>(env, "bufferAddressModulo"));
  exports.Set("crc32c", Napi::Function::New<Crc32cJs>(env, "crc32c"));
  exports.Set("spinPolicyRun", Napi::Function::New<SpinPolicyRun>(env, "spinPolicyRun"));
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace ringstore

static Napi::Object InitRingstore(Napi::Env env, Napi::Object exports) {
  return ringstore::Init(env, exports);
}

NODE_API_MODULE(ringstore, InitRingstore)
