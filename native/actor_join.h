// Joining an actor: the actorSpec argument of `new NativeRingClient(actorSpec,
// ...)` names the actor a new client joins — one already running, or one
// started for it.
//
//   actorSpec: an actor id (number) to attach to, or
//              { backend: 'io_uring' | 'threads', entries, batchSize, spinUs, threadCount,
//                shortTransferEvery (test only; 0 = off) }
//
// Every option is range-checked here against the bounds in actor.h before an
// actor is built, whatever the TS layer (native/io_uring_actor.ts, createSpec)
// checked already: no value from JS reaches io_uring_setup unchecked.
#pragma once

#include <napi.h>

#include <memory>

#include "actor.h"

namespace ringstore {

// Returns the actor `spec` names: the live actor of that id, or a newly
// started one (its thread running). On a bad spec, an unknown id, or a kernel
// that refuses io_uring, returns nullptr after throwing a coded JS exception:
// ERR_INVALID_ARG, ERR_RING_NOT_FOUND, or ERR_IO_URING_UNAVAILABLE (with
// errno, syscall 'io_uring_setup' and `reason`). JS thread only; may block
// while a new actor's ring is set up.
std::shared_ptr<Actor> JoinActor(Napi::Env env, Napi::Value spec);

}  // namespace ringstore
