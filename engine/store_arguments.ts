// Argument checks at the store's boundary: options, range bounds, and how an
// argument is described in the TypeError or RangeError that refuses it.
// API misuse is refused here, before anything reaches the kernel.
import { WAL_SIZE_BYTES_MAX } from '../format/constants.js';
import { describeValue } from '../native/errors.js';
import { isUint8Array, ownBytes, toKeyString, type Key } from './key_codec.js';
import { DEFAULT_BLOCK_SIZE } from './store_layout.js';
import { invalidArgument } from './store_error.js';

/**
 * An options or operation object whose getter or Proxy trap threw while its
 * fields were read: the caller's argument is unreadable, ERR_INVALID_ARG with
 * that error as cause.
 */
export function unreadableArgument(what: string, error: unknown): TypeError | RangeError {
  return Object.assign(invalidArgument(`${what} could not be read: ${error instanceof Error ? error.message : describeArgument(error)}`), { cause: error });
}

/**
 * The fields `names` of a caller's options object, each read once into a
 * plain object of our own: a getter cannot hand validation one value and
 * the store another, and an object whose getter or Proxy trap throws (a
 * revoked Proxy too) is ERR_INVALID_ARG with that error as cause.
 * REQUIRES: `options` is an object (the caller checked).
 */
export function optionFields<T extends object>(options: T, names: readonly (keyof T & string)[], what: string): Partial<T> {
  const fields: Partial<T> = {};
  try {
    for (const name of names) {
      const value = options[name];
      if (value !== undefined) fields[name] = value;
    }
  } catch (error) {
    throw unreadableArgument(what, error);
  }
  return fields;
}

/**
 * `take` of each element of a caller's array, in order, each element read
 * once. Array.isArray, the length and every index are read under a guard:
 * a Proxy (revoked, or whose trap throws) is ERR_INVALID_ARG with its error
 * as cause, as is a length no array can have (a Proxy's lie); anything that
 * is not an array is ERR_INVALID_ARG `notArray`. `take` runs as each
 * element is read, so a bad element stops the walk there: a sparse array
 * of length 2^32 − 1 is refused at its first hole, not copied whole.
 */
export function mapElements<T>(value: unknown, what: string, notArray: string, take: (element: unknown, index: number) => T): T[] {
  let isArray: boolean;
  try {
    isArray = Array.isArray(value);
  } catch (error) {
    throw unreadableArgument(what, error);
  }
  if (!isArray) throw invalidArgument(notArray);
  const array = value as readonly unknown[];
  let length: number;
  try {
    length = array.length;
  } catch (error) {
    throw unreadableArgument(what, error);
  }
  if (!Number.isInteger(length) || length < 0 || length > ARRAY_LENGTH_MAX) throw invalidArgument(`${what}: a length of ${describeArgument(length)}, which no array has`, 'range');
  const taken: T[] = [];
  for (let index = 0; index < length; index++) {
    let element: unknown;
    try {
      element = array[index];
    } catch (error) {
      throw unreadableArgument(what, error);
    }
    taken.push(take(element, index));
  }
  return taken;
}

/**
 * Runs a check of a caller's object whose reads may throw (a getter, a
 * Proxy trap, `instanceof` on a revoked Proxy): such an error is
 * ERR_INVALID_ARG naming `what`, with it as cause; the check's own
 * ERR_INVALID_ARG passes as it is.
 */
export function guardedCheck<T>(what: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof Error && (error as { code?: unknown }).code === 'ERR_INVALID_ARG') throw error;
    throw unreadableArgument(what, error);
  }
}

/** The longest a JavaScript array can be (2^32 − 1 elements). */
const ARRAY_LENGTH_MAX = 2 ** 32 - 1;

/** A range bound, validated like a key; undefined if absent. */
export function rangeBound(bound: unknown, name: string): string | undefined {
  if (bound === undefined) return undefined;
  try {
    return toKeyString(bound);
  } catch (error) {
    if (error instanceof Error) error.message = `range option '${name}': ${error.message}`;
    throw error;
  }
}

/** A key for messages, short. */
export function describeKey(key: Key): string {
  return typeof key === 'string' ? JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key) : `0x${Buffer.from(key.subarray(0, 32)).toString('hex')}${key.length > 32 ? '…' : ''}`;
}

/** An argument for messages: never throws, whatever it is. */
export const describeArgument = describeValue;

export function checkBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidArgument(`option '${name}' must be a boolean`);
  return value;
}

export function checkBlockSize(value: unknown): number {
  const blockSize = checkSize(value, 'blockSize', DEFAULT_BLOCK_SIZE, 512);
  if ((blockSize & (blockSize - 1)) !== 0 || blockSize > 65536) throw invalidArgument(`blockSize must be a power of two from 512 to 65536, got ${blockSize}`, 'range');
  return blockSize;
}

/**
 * Refuses a walSizeBytes given to open() or format() that is not an
 * integer of at most WAL_SIZE_BYTES_MAX (a larger one was once cut to it
 * without a word; found by a review). Undefined passes.
 */
export function checkWalSize(walSizeBytes: unknown): void {
  const checked = checkSize(walSizeBytes, 'walSizeBytes', 0, 0);
  if (checked > WAL_SIZE_BYTES_MAX) {
    throw invalidArgument(`option 'walSizeBytes' (${checked}) is more than the largest WAL a store can have, ${WAL_SIZE_BYTES_MAX} bytes (1 GiB)`, 'range');
  }
}

export function checkSize(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw invalidArgument(`option '${name}' must be a number`);
  if (!Number.isSafeInteger(value) || value < min) throw invalidArgument(`option '${name}' must be an integer >= ${min}, got ${value}`, 'range');
  return value;
}

/**
 * The keys a range call covers, in the index's terms: key strings (see
 * key_codec.ts), each bound inclusive or not; an undefined bound is open.
 */
export interface KeyRange {
  readonly low: string | undefined;
  readonly lowInclusive: boolean;
  readonly high: string | undefined;
  readonly highInclusive: boolean;
}

/** Range options read and validated: the keys, the direction and how many. */
export interface CheckedRange extends KeyRange {
  readonly reverse: boolean;
  /** An integer >= 0, or Infinity. */
  readonly limit: number;
  /** The `values` option as given (only range() takes it, and checks it). */
  readonly values: unknown;
}

/**
 * Reads the options every range call takes — `gt`, `gte`, `lt`, `lte`,
 * `prefix`, `reverse`, `limit` (and `values`, for range()) — each once, and
 * validates them: bounds and prefix as keys (the prefix may be empty),
 * `limit` an integer >= 0 or Infinity, `reverse` a boolean. `gte` takes
 * precedence over `gt` and `lte` over `lt`, as in abstract-level. A prefix
 * combines with the bounds: a key is in the range if it starts with the
 * prefix (bytewise: its bytes begin with the prefix's bytes) and meets every
 * bound.
 */
export function checkRangeOptions(options: unknown): CheckedRange {
  if (options === null || typeof options !== 'object') throw invalidArgument('range options must be an object');
  // Each option read once: a getter cannot hand validation one bound and the iteration another.
  let gt: unknown, gte: unknown, lt: unknown, lte: unknown, prefix: unknown, reverse: unknown, limit: unknown, values: unknown;
  try {
    ({ gt, gte, lt, lte, prefix, reverse, limit = Infinity, values } = options as Record<string, unknown>);
  } catch (error) {
    throw unreadableArgument('range options', error);
  }
  const bounds = { gt: rangeBound(gt, 'gt'), gte: rangeBound(gte, 'gte'), lt: rangeBound(lt, 'lt'), lte: rangeBound(lte, 'lte') };
  const prefixString = prefixBound(prefix);
  if (typeof limit !== 'number' || !(limit >= 0) || !(Number.isInteger(limit) || limit === Infinity)) {
    throw invalidArgument(`range option 'limit' must be an integer >= 0 or Infinity, got ${describeArgument(limit)}`, 'range');
  }
  if (reverse !== undefined && typeof reverse !== 'boolean') throw invalidArgument(`range option 'reverse' must be a boolean, got ${describeArgument(reverse)}`);
  let low = bounds.gte ?? bounds.gt;
  let lowInclusive = bounds.gte !== undefined;
  let high = bounds.lte ?? bounds.lt;
  let highInclusive = bounds.lte !== undefined;
  if (prefixString !== undefined && prefixString.length > 0) {
    // The keys starting with the prefix are [prefix, prefixEnd(prefix)).
    if (low === undefined || prefixString > low) {
      low = prefixString;
      lowInclusive = true;
    }
    // prefixString === low: the bound's own inclusiveness already decides.
    const end = prefixEnd(prefixString);
    if (end !== undefined) {
      if (high === undefined || end < high) {
        high = end;
        highInclusive = false;
      } else if (end === high) {
        highInclusive = false;
      }
    }
  }
  return { low, lowInclusive, high, highInclusive, reverse: reverse === true, limit: limit as number, values };
}

/**
 * The range option `prefix` as a key string; undefined if absent. Validated
 * like a key, except that it may be empty (every key starts with nothing).
 */
export function prefixBound(prefix: unknown): string | undefined {
  if (prefix === undefined) return undefined;
  if ((typeof prefix === 'string' && prefix.length === 0) || (isUint8Array(prefix) && ownBytes(prefix).length === 0)) return '';
  return rangeBound(prefix, 'prefix');
}

/**
 * The least key string above every key string that starts with `prefix`
 * (non-empty): the prefix with its last byte below 0xff incremented and the
 * bytes after it dropped. Undefined when every byte is 0xff: then no key
 * string above the prefix's keys exists, the range is open above.
 */
export function prefixEnd(prefix: string): string | undefined {
  for (let index = prefix.length - 1; index >= 0; index--) {
    const byte = prefix.charCodeAt(index);
    // Key strings hold one byte per char (latin1): a bug otherwise.
    if (byte > 0xff) throw new Error(`ringstore: key string char ${byte} at ${index} is not a byte`);
    if (byte < 0xff) return prefix.slice(0, index) + String.fromCharCode(byte + 1);
  }
  return undefined;
}

/**
 * Refuses arguments after a stream method's key: the method takes none, and
 * an options object the caller believes is used (fs.createReadStream's
 * { start, end }) must not be dropped without a word. Trailing `undefined`s
 * are accepted, as any omitted argument is.
 */
export function refuseStreamOptions(method: string, extra: readonly unknown[], why: string): void {
  const given = extra.findIndex((argument) => argument !== undefined);
  if (given === -1) return;
  throw invalidArgument(`${method} takes only a key, not ${describeArgument(extra[given])} as argument ${given + 2}: ${why}`);
}
