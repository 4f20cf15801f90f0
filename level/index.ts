// ringstore/level: the abstract-level 3 adapter. See docs/level.md.
export { RingLevel, CLEAR_BATCH_KEYS_MAX, CLEAR_BATCH_KEY_BYTES_MAX } from './ring_level.js';
export type { RingLevelOptions, RingLevelStoreOptions } from './ring_level.js';
export { RingLevelIterator, RingLevelKeyIterator, RingLevelValueIterator } from './ring_level_iterator.js';
export { RingLevelError } from './level_error.js';
export type { RingLevelErrorCode } from './level_error.js';
