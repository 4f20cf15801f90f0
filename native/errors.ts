// Error types of the IO layer. Native code throws or rejects with plain
// errors carrying `code` (and `errno`/`syscall` for the kernel's); this module
// owns the classes callers can test with instanceof and the codes they can
// switch on.
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';

/** Stable codes of ringstore's own IO-layer errors. */
export type RingErrorCode =
  | 'ERR_RING_CLOSED'
  | 'ERR_RING_NOT_FOUND'
  | 'ERR_RING_OVERLOADED'
  | 'ERR_FILE_CLOSED'
  | 'ERR_FILE_READ_ONLY'
  | 'ERR_IO_URING_UNAVAILABLE'
  | 'ERR_UNALIGNED_DIRECT_IO'
  | 'ERR_INVALID_ARG';

/** An operating error of the IO layer with a stable `code`. */
export class RingError extends Error {
  /** Which error it is; stable across versions. */
  readonly code: RingErrorCode;
  constructor(code: RingErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RingError';
    this.code = code;
  }
}

/**
 * An error the kernel returned for an operation, shaped like Node's own
 * system errors: `code` ('EIO', 'ENOSPC', …), negative `errno`, `syscall`
 * ('io_uring:write', 'pwrite', …) and the `path` of the file.
 */
export class RingSystemError extends Error {
  /** The errno's name ('EIO', 'ENOSPC', …), or `E` and its number if Node knows no name. */
  readonly code: string;
  /** The negative errno, as the kernel returned it. */
  readonly errno: number;
  /** The call that failed: 'io_uring:write', 'io_uring:fdatasync', 'pwritev', 'open', … */
  readonly syscall: string;
  /** The file's path, when the operation had one. */
  readonly path: string | undefined;
  constructor(errno: number, syscall: string, path?: string) {
    const negative = errno < 0 ? errno : -errno;
    const code = errnoName(-negative);
    super(`${code}: ${syscall} failed${path === undefined ? '' : ` on '${path}'`} (errno ${-negative})`);
    this.name = 'RingSystemError';
    this.code = code;
    this.errno = negative;
    this.syscall = syscall;
    this.path = path;
  }
}

/**
 * Linux errno names that neither libuv nor os.constants.errno knows
 * (include/uapi/asm-generic/errno.h): errors a failing device or file
 * system gives.
 */
const LINUX_ONLY_ERRNO_NAMES: ReadonlyArray<readonly [number, string]> = [
  [117, 'EUCLEAN'],
  [121, 'EREMOTEIO'],
  [123, 'ENOMEDIUM'],
  [124, 'EMEDIUMTYPE'],
];

/** errno → name from os.constants.errno (the first name of an errno that has two: EAGAIN, not EWOULDBLOCK), then LINUX_ONLY_ERRNO_NAMES. */
const ERRNO_NAMES: ReadonlyMap<number, string> = (() => {
  const names = new Map<number, string>();
  for (const [name, errno] of [...Object.entries(osConstants.errno), ...LINUX_ONLY_ERRNO_NAMES.map(([errno, name]) => [name, errno] as const)]) {
    if (!names.has(errno)) names.set(errno, name);
  }
  return names;
})();

/**
 * The name of a (positive) errno: libuv's, else os.constants.errno's, else
 * Linux's, else `E<n>`. libuv names only what it maps: for ESTALE, EDQUOT,
 * EUCLEAN or EBADMSG Node 20's getSystemErrorName answers "Unknown system
 * error -116" (found by a review: an EDQUOT at growth was no "no room", and
 * an ESTALE no failing file system, as their codes were never matched).
 */
export function errnoName(errno: number): string {
  try {
    const name = getSystemErrorName(-errno);
    if (/^E[A-Z0-9]+$/.test(name)) return name;
  } catch {
    // Not an errno libuv knows at all (a positive or zero value): named below.
  }
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

/**
 * The `code` of a system error, as the errno's name where the error has
 * none: Node's fs names an errno libuv has no name for 'UNKNOWN' or
 * 'Unknown system error -122' (EDQUOT, ESTALE, EUCLEAN, EBADMSG), by the
 * path the call took, and its errno says which (found by a review: an
 * EDQUOT making a store was no ERR_STORE_NO_SPACE). Any other code (or an
 * error without an errno) as it is.
 */
export function systemErrorCode(error: unknown): unknown {
  if (error === null || typeof error !== 'object') return undefined;
  const { code, errno } = error as { code?: unknown; errno?: unknown };
  const named = typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
  if (!named && typeof errno === 'number' && Number.isInteger(errno) && errno !== 0) return errnoName(Math.abs(errno));
  return code;
}

/** A value for a message: never throws, whatever it is (a Symbol, a detached view, a Proxy). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === undefined) return String(value);
  if (value === null) return 'null';
  const type = typeof value;
  return `${type === 'object' || type === 'undefined' ? 'an' : 'a'} ${type}`;
}

/** Argument checks: TypeError/RangeError with code ERR_INVALID_ARG. */
export function invalidType(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG' as const });
}

export function invalidRange(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'ERR_INVALID_ARG' as const });
}

/**
 * The fields `names` of a caller's options object, each read once into a
 * plain object of our own: a getter cannot hand the check one value and the
 * open or the start another (a review: a `direct` getter answering true,
 * then false, opened a file O_DIRECT that then skipped the alignment checks,
 * and the kernel refused an unaligned read with EINVAL), and an object whose
 * getter or Proxy trap throws (a revoked Proxy too) is ERR_INVALID_ARG with
 * that error as `cause`, not the caller's error as it was.
 */
export function readOptions<T extends object>(options: unknown, names: readonly (keyof T & string)[], what: string): Partial<T> {
  if (options === null || typeof options !== 'object') throw invalidType(`${what} must be an object, got ${describeValue(options)}`);
  const fields: Partial<T> = {};
  try {
    for (const name of names) {
      const value = (options as T)[name];
      if (value !== undefined) fields[name] = value;
    }
  } catch (error) {
    throw unreadable(what, error);
  }
  return fields;
}

/** ERR_INVALID_ARG for an argument that could not be read (a getter or Proxy trap threw): its error is the cause. */
export function unreadable(what: string, error: unknown): TypeError {
  return Object.assign(invalidType(`${what} could not be read: ${error instanceof Error ? error.message : describeValue(error)}`), { cause: error });
}

export function unalignedDirectIo(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'ERR_UNALIGNED_DIRECT_IO' as const });
}

/**
 * Turns an error thrown or rejected by the addon into this module's types:
 * system errors get their `code` from errno; coded errors keep their code.
 */
export function fromNative(error: unknown, path?: string): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  const raw = error as Error & { code?: string; errno?: number; syscall?: string };
  if (raw.code === undefined && typeof raw.errno === 'number' && typeof raw.syscall === 'string') {
    return new RingSystemError(raw.errno, raw.syscall, path);
  }
  // Operating errors the addon raises with one of our codes become RingErrors;
  // argument errors stay the TypeError/RangeError they are.
  if (raw.code !== undefined && RING_OPERATING_CODES.has(raw.code) && !(error instanceof TypeError) && !(error instanceof RangeError)) {
    return new RingError(raw.code as RingErrorCode, raw.message, { cause: error });
  }
  return error;
}

const RING_OPERATING_CODES: ReadonlySet<string> = new Set<RingErrorCode>([
  'ERR_RING_CLOSED',
  'ERR_RING_NOT_FOUND',
  'ERR_RING_OVERLOADED',
  'ERR_FILE_CLOSED',
  'ERR_FILE_READ_ONLY',
]);
