// File set-up operations exported to JS (see file_ops.cc): each returns a
// Promise and runs on libuv's thread pool.
#pragma once

#include <napi.h>

namespace ringstore {

Napi::Value OpenFile(const Napi::CallbackInfo& info);    // (path, flags, sizeBytes, unnamed)
Napi::Value LinkFile(const Napi::CallbackInfo& info);    // (fd, path)
Napi::Value SyncDirectory(const Napi::CallbackInfo& info);  // (path): open, fsync, close
Napi::Value StatFile(const Napi::CallbackInfo& info);    // (fd)
Napi::Value CloseFile(const Napi::CallbackInfo& info);   // (fd)
Napi::Value BlkDiscard(const Napi::CallbackInfo& info);  // (fd, offset, length)
Napi::Value LockExclusive(const Napi::CallbackInfo& info);  // (fd) -> 0 or errno, synchronous
Napi::Value LockShared(const Napi::CallbackInfo& info);     // (fd) -> 0 or errno, synchronous

}  // namespace ringstore
