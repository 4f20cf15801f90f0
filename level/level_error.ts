// Errors of the abstract-level adapter. abstract-level names its failures
// with LEVEL_* codes; the store with ERR_STORE_* codes. Where a LEVEL_ code
// means the same thing the adapter rethrows the store's error under it (the
// store's error kept as `cause`, its code as `storeCode`), so code written
// against any abstract-level database recognises it; every other store error
// passes through unchanged, with its documented ERR_ code.
import { StoreError, type StoreErrorCode } from '../engine/store_error.js';

/** Codes of a {@link RingLevelError}: abstract-level's, for store errors that have one, and the adapter's own. */
export type RingLevelErrorCode =
  | 'LEVEL_INVALID_KEY'
  | 'LEVEL_INVALID_VALUE'
  | 'LEVEL_LOCKED'
  | 'LEVEL_CORRUPTION'
  | 'LEVEL_IO_ERROR'
  /** close() was called while a clear() ran: the clear stopped before its next batch. */
  | 'LEVEL_DATABASE_NOT_OPEN'
  /** errorIfExists: true and something already exists at the location. */
  | 'ERR_LEVEL_EXISTS';

/**
 * A store error restated with abstract-level's code (LEVEL_LOCKED,
 * LEVEL_CORRUPTION, …): the store's error is its `cause`, the store's code its
 * `storeCode`. See the table in docs/level.md.
 */
export class RingLevelError extends Error {
  /** abstract-level's code (or ERR_LEVEL_EXISTS, the adapter's own). */
  readonly code: RingLevelErrorCode;
  /** The store's code when this error restates a StoreError. */
  readonly storeCode: StoreErrorCode | undefined;
  constructor(code: RingLevelErrorCode, message: string, options?: { cause?: unknown; storeCode?: StoreErrorCode }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RingLevelError';
    this.code = code;
    this.storeCode = options?.storeCode;
  }
}

/** Store codes that abstract-level has a code for. */
const LEVEL_CODE_OF_STORE_CODE: Partial<Record<StoreErrorCode, RingLevelErrorCode>> = {
  ERR_KEY_TOO_LARGE: 'LEVEL_INVALID_KEY',
  ERR_VALUE_TOO_LARGE: 'LEVEL_INVALID_VALUE',
  ERR_STORE_LOCKED: 'LEVEL_LOCKED',
  ERR_STORE_CORRUPT: 'LEVEL_CORRUPTION',
  ERR_STORE_FAILED: 'LEVEL_IO_ERROR',
};

/** `error` as abstract-level callers expect it (see the table in docs/level.md). */
export function toLevelError(error: unknown): unknown {
  if (!(error instanceof StoreError)) return error;
  const levelCode = LEVEL_CODE_OF_STORE_CODE[error.code];
  if (levelCode === undefined) return error;
  return new RingLevelError(levelCode, error.message, { cause: error, storeCode: error.code });
}

/**
 * The store refuses empty keys (a key is 1 to 1024 bytes), so the adapter
 * cannot write one; see docs/level.md for why keys are not prefixed instead.
 */
export function emptyKeyError(): RingLevelError {
  return new RingLevelError('LEVEL_INVALID_KEY', 'key must not be empty: ringstore keys are 1 to 1024 bytes (a sublevel\'s prefix makes its empty key non-empty)');
}
