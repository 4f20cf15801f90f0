// ringstore: an embedded key/block store for Node.js over a native io_uring actor.
export { IoUringActor, DEFAULT_SPIN_US, DEFAULT_COMPLETION_SPIN_US, DEFAULT_ENTRIES, PENDING_OPS_MAX } from './native/io_uring_actor.js';
export type { IoUringActorOptions, RingBackend, RingStats, LatencySummaryUs } from './native/io_uring_actor.js';
export { RingFile, DEFAULT_BLOCK_SIZE, BLOCK_SIZE_MAX } from './native/ring_file.js';
export type { RingFileOptions, FileStat } from './native/ring_file.js';
export type { IoObserver, IoMutation, IoMutationKind } from './native/io_observer.js';
export { allocAligned, isAligned, DEFAULT_ALIGNMENT } from './native/aligned_buffer.js';
export { RingError, RingSystemError } from './native/errors.js';
export type { RingErrorCode } from './native/errors.js';
