// Errors of the store. Operating errors carry a stable `code`; corruption
// names the structure, the block and why; a failed store keeps the IO error
// that failed it as `cause`.
import { FormatError, type StructureName } from '../format/format_error.js';
import { systemErrorCode } from '../native/errors.js';

/**
 * Every code a public method's rejection carries: the errors table of
 * docs/store.md lists exactly these (a test holds the two together).
 */
export const STORE_ERROR_CODES = [
  'ERR_INVALID_ARG',
  'ERR_KEY_TOO_LARGE',
  'ERR_VALUE_TOO_LARGE',
  'ERR_KEY_NOT_FOUND',
  'ERR_STORE_NOT_FOUND',
  'ERR_STORE_PATH',
  'ERR_STORE_NO_SPACE',
  'ERR_STORE_UNSUPPORTED',
  'ERR_STORE_LOCKED',
  'ERR_STORE_READ_ONLY',
  'ERR_STORE_FULL',
  'ERR_STORE_CORRUPT',
  'ERR_STORE_VERSION',
  'ERR_STORE_FAILED',
  'ERR_STORE_CLOSED',
] as const;

/** A code a store method's rejection carries (the errors table of docs/store.md). */
export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

/**
 * An operating error of the store, with a stable `code`. Argument errors
 * (ERR_INVALID_ARG) are TypeErrors or RangeErrors instead; corruption is the
 * subclass {@link StoreCorruptError}.
 */
export class StoreError extends Error {
  /** Which error it is; stable across versions. */
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

/** ERR_STORE_CORRUPT: which structure, which block, and why. */
export class StoreCorruptError extends StoreError {
  /** The damaged structure: 'superblock', 'wal', 'free set', 'page', 'record' or 'data'. */
  readonly structure: StructureName;
  /** Absolute index of the damaged block, when one block is to blame. */
  readonly blockIndex: number | undefined;
  /** Why the structure was refused, e.g. a checksum mismatch. */
  readonly reason: string;
  constructor(structure: StructureName, reason: string, blockIndex?: number, options?: { cause?: unknown }) {
    super(
      'ERR_STORE_CORRUPT',
      `store is corrupt: ${structure}${blockIndex === undefined ? '' : ` block ${blockIndex}`}: ${reason}`,
      options,
    );
    this.name = 'StoreCorruptError';
    this.structure = structure;
    this.blockIndex = blockIndex;
    this.reason = reason;
  }

  /**
   * The store's error for a decoder's FormatError, which becomes its `cause`.
   * @internal
   */
  static from(error: FormatError): StoreCorruptError {
    return new StoreCorruptError(error.structure, error.reason, error.blockIndex, { cause: error });
  }
}

export function invalidArgument(message: string, kind: 'type' | 'range' = 'type'): TypeError | RangeError {
  const error = kind === 'type' ? new TypeError(message) : new RangeError(message);
  return Object.assign(error, { code: 'ERR_INVALID_ARG' as const });
}

/**
 * Advice that ends refusals of a file that holds no store, as the API says
 * it (in parentheses, last); the CLI says it in its own words (tools/cli.ts).
 */
export const STORE_ADVICE = {
  formatOverIt: 'BlockStore.format() makes a store over it',
  formatOverAnything: 'create: true makes a store only in a new or empty file; BlockStore.format() formats over anything',
  createOne: 'open with create: true to make one',
  createStore: 'open with create: true to make a store',
  createStoreInIt: 'open with create: true to make a store in it',
} as const;

/**
 * A system error of opening or creating `path` as a StoreError with a
 * documented code. `existingStore`: the error came from opening a file
 * that is there (a read-only open of it may still work).
 */
export function pathError(path: string, error: unknown, doing: string, existingStore = false): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  // By the errno where Node's fs gave no name (EDQUOT: 'Unknown system error -122').
  const code = systemErrorCode(error);
  switch (code) {
    case 'ENOENT':
      return new StoreError('ERR_STORE_PATH', `'${path}': ${doing}: its directory does not exist`, { cause: error });
    case 'ENOTDIR':
    case 'EISDIR':
    case 'ELOOP':
    case 'ENAMETOOLONG':
      return new StoreError('ERR_STORE_PATH', `'${path}': ${doing}: ${code} (the path cannot name a store file)`, { cause: error });
    case 'EACCES':
    case 'EPERM':
      // Not "to write": a read-only open is refused so too (found by a review).
      return new StoreError('ERR_STORE_PATH', `'${path}': ${doing}: ${code} (permission denied: the mode, owner or attributes of the file or of a directory on its path refuse this process)`, { cause: error });
    case 'EROFS':
      // Not permissions (a review found the message saying so): a file
      // system mounted read-only, or remounted so after an error (ext4's
      // errors=remount-ro). The readOnly hint only where a store is there
      // to read: a create refused so was sent to a read-only open, which
      // then found no store.
      return new StoreError('ERR_STORE_PATH', `'${path}': ${doing}: EROFS (the file system is read-only${existingStore ? '; open with readOnly: true to read the store' : ''})`, { cause: error });
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return new StoreError('ERR_STORE_NO_SPACE', `'${path}': ${doing}: ${code} (the file system cannot hold a store of that size)`, { cause: error });
    default:
      return error;
  }
}
