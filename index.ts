// ringstore: an embedded key/block store for Node.js over a native io_uring actor.
export { IoUringActor, DEFAULT_SPIN_US, DEFAULT_COMPLETION_SPIN_US, AUTO_SPIN_WINDOW_US, DEFAULT_ENTRIES, DEFAULT_BATCH_SIZE, PENDING_OPS_MAX } from './native/io_uring_actor.js';
export type { IoUringActorOptions, IoUringFaultInjection, RingBackend, RingStats, LatencySummaryUs, SpinSetting, SpinState, LoneReadRoute } from './native/io_uring_actor.js';
export { RingFile, DEFAULT_BLOCK_SIZE, BLOCK_SIZE_MAX } from './native/ring_file.js';
export type { RingFileOptions, FileStat } from './native/ring_file.js';
export type { IoObserver, IoMutation, IoMutationKind, IoMark, ObservedFile } from './native/io_observer.js';
export { allocAligned, isAligned, DEFAULT_ALIGNMENT } from './native/aligned_buffer.js';
export { RingError, RingSystemError } from './native/errors.js';
export type { RingErrorCode } from './native/errors.js';
export { BlockStore, DEFAULT_WAL_SIZE_BYTES, SYNC_DEFER_MS } from './engine/block_store.js';
export { DEFAULT_IDLE_CHECKPOINT_MS, IDLE_CHECKPOINT_MS_MAX } from './engine/idle_checkpoint.js';
export type { IntegrityReport, StoredEntry } from './engine/block_store.js';
export { STORE_RING_OPTIONS, DEFAULT_STORE_SIZE_BYTES, DEFAULT_NEW_FILE_WAL_SIZE_BYTES, DEFAULT_CACHE_SIZE_BYTES, VALUE_SIZE_MAX } from './engine/store_options.js';
export { CLEAR_BATCH_KEYS_MAX, GET_MANY_READS_IN_FLIGHT_MAX } from './engine/store_options.js';
export type { BackupReport } from './engine/store_backup.js';
export type { BlockStoreOptions, BatchOperation, RangeOptions, KeyRangeOptions, BlockStoreStats } from './engine/store_options.js';
export type { Key } from './engine/key_codec.js';
export type { ValueEncoding } from './engine/value_codec.js';
export { StoreError, StoreCorruptError } from './engine/store_error.js';
export type { StoreErrorCode } from './engine/store_error.js';
export type { BlockDevice, IoPhase } from './engine/block_device.js';
export { SimulatedDevice, SimulatedDeviceCrash, SECTOR_SIZE } from './engine/simulated_device.js';
export type { SimulatedDeviceOptions, CrashOptions } from './engine/simulated_device.js';
// The crash lab (write traces, crash and corruption explorers, fsck) is the
// 'ringstore/lab' entry point (lab.ts): an application that only stores data
// does not load it.
