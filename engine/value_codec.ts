// Value encodings, as in lmdb-js: 'msgpack' (msgpackr; any structured value,
// the default), 'json', 'string' (UTF-8) and 'binary' (Uint8Array as is).
//
// An encoding stores a value only if it gives it back: what it would drop or
// change silently is refused with ERR_INVALID_ARG before anything is written
// (a function stored as nothing, a lone surrogate stored as U+FFFD, NaN
// stored by JSON as null). What it changes in ways its users know — a class
// instance comes back as a plain object, -0 as 0, JSON's Dates as strings —
// is documented in docs/store.md (§ What each encoding stores), not refused.
// An encoder's own failure (a circular structure, a detached buffer) is the
// caller's argument error too: ERR_INVALID_ARG with the encoder's error as
// `cause`.
import { constants } from 'node:buffer';

import { Packr } from 'msgpackr';

import { isDetachedView, isUint8Array, isWellFormed, ownBytes } from './key_codec.js';
import { invalidArgument, StoreError } from './store_error.js';

/**
 * How a store turns values into bytes: `'msgpack'` (structured values,
 * msgpackr), `'json'`, `'string'` (strings only) or `'binary'` (Uint8Arrays as
 * they are). docs/store.md lists what each refuses and what it changes.
 */
export type ValueEncoding = 'msgpack' | 'json' | 'string' | 'binary';

export interface ValueCodec {
  readonly name: ValueEncoding;
  /** The value's bytes; throws ERR_INVALID_ARG for a value this encoding cannot store as it is. */
  encode(value: unknown): Uint8Array;
  /**
   * `fresh`: the bytes belong to nobody else (read just now), so the result
   * may share their memory. Otherwise (inline bytes held by the index) the
   * result must not, or a caller modifying it would change the store.
   * Throws whatever the decoder throws for bytes that are not this encoding.
   */
  decode(bytes: Uint8Array, fresh?: boolean): unknown;
}

/** U+FFFD in UTF-8: where an encoder wrote it, the value may have held a lone surrogate. */
const REPLACEMENT_CHARACTER_UTF8 = Buffer.from([0xef, 0xbf, 0xbd]);
/** Lead byte of a surrogate encoded as if it were a character (ED A0..BF xx), as msgpackr's own encoder writes one. */
const ENCODED_SURROGATE_LEAD = 0xed;

/** %TypedArray%, the constructor every typed array inherits from. */
const TypedArray = Object.getPrototypeOf(Uint8Array) as abstract new () => object;

/**
 * Thrown from inside an encoder's traversal (msgpackr's writeFunction hook,
 * JSON.stringify's replacer) to refuse a part of the value; turned into
 * ERR_INVALID_ARG by encode().
 */
class UnstorableValue extends Error {}

export function valueCodec(encoding: ValueEncoding): ValueCodec {
  switch (encoding) {
    case 'msgpack': {
      // Records with inline structure definitions (maxSharedStructures: 0):
      // every value is self-contained — no shared structures to store beside
      // the data — and maps stay Maps (with useRecords: false msgpackr turns
      // every map into a plain object, losing non-string keys).
      // copyBuffers: a decoded Buffer must not share memory with the stored
      // value, or a caller modifying it would change the store.
      // writeFunction: msgpackr otherwise stores a function, wherever it is
      // in the value, as undefined; refusing it here costs nothing for values
      // without functions.
      const packr = new Packr({
        useRecords: true,
        maxSharedStructures: 0,
        mapsAsObjects: false,
        moreTypes: true,
        copyBuffers: true,
        writeFunction: refuseFunction,
      } as ConstructorParameters<typeof Packr>[0]);
      return {
        name: encoding,
        encode: (value) => {
          if (value === undefined) throw invalidArgument('value must not be undefined (use delete)');
          encodeWith(encoding, () => checkElementCounts(value, { left: ENCODED_ELEMENTS_MAX }));
          const bytes = encodeWith(encoding, () => packr.pack(value));
          // msgpack strings are UTF-8, which has no bytes for a lone
          // surrogate: msgpackr writes U+FFFD (long strings) or the
          // surrogate's own 3 bytes, which decode as U+FFFD ×3 (short ones).
          // A byte scan of the encoded value rules both out for almost every
          // value; only one holding those bytes (in a string, or by chance
          // in binary data) is walked.
          if (mayHoldLoneSurrogate(asBuffer(bytes))) encodeWith(encoding, () => refuseLoneSurrogates(value));
          return bytes;
        },
        // Through a Buffer view: msgpackr copies binary data with the
        // source's species, so bytes held as a plain Uint8Array (inline
        // values of this process) gave Uint8Arrays where bytes read from
        // the device gave Buffers. Binary data is always a Buffer now.
        decode: (bytes) => packr.unpack(asBuffer(bytes)),
      };
    }
    case 'json':
      return {
        name: encoding,
        encode: (value) => {
          // The replacer sees every value JSON.stringify is about to write
          // (after toJSON), so it can refuse what JSON would drop or change.
          // It costs V8's replacer-free fast path: measured 0.8 → 1.7 µs for
          // a 6-field object, small beside a commit.
          const text = encodeWith(encoding, () => JSON.stringify(value, checkJsonValue));
          if (text === undefined) throw invalidArgument('value is not representable as JSON');
          return checkDecodableString(Buffer.from(text, 'utf8'), 'its JSON text');
        },
        decode: (bytes) => JSON.parse(asBuffer(bytes).toString('utf8')),
      };
    case 'string':
      return {
        name: encoding,
        encode: (value) => {
          if (typeof value !== 'string') throw invalidArgument(`encoding 'string' stores strings, got ${typeName(value)}`);
          if (!isWellFormed(value)) throw invalidArgument("encoding 'string' cannot store a lone surrogate (UTF-8 has no bytes for it)");
          return checkDecodableString(Buffer.from(value, 'utf8'), 'the string');
        },
        decode: (bytes) => asBuffer(bytes).toString('utf8'),
      };
    case 'binary':
      return {
        name: encoding,
        encode: (value) => {
          if (!isUint8Array(value)) throw invalidArgument(`encoding 'binary' stores Uint8Arrays, got ${typeName(value)}`);
          if (isDetachedView(value)) throw invalidArgument('the value is a view of a detached ArrayBuffer');
          // Its own view (or copy): the length is the bytes', whatever the caller's object says.
          return ownBytes(value);
        },
        decode: (bytes, fresh) => (fresh ? asBuffer(bytes) : Buffer.from(bytes)),
      };
    default:
      throw invalidArgument(`encoding must be 'msgpack', 'json', 'string' or 'binary', got ${typeof encoding === 'string' ? JSON.stringify(encoding) : typeName(encoding)}`, 'range');
  }
}

/** Runs an encoder; its failure is the caller's argument error (ERR_INVALID_ARG), with the encoder's error as cause. */
function encodeWith<T>(encoding: ValueEncoding, encode: () => T): T {
  try {
    return encode();
  } catch (error) {
    if (error instanceof StoreError) throw error;
    if (error instanceof UnstorableValue) throw Object.assign(invalidArgument(`encoding '${encoding}' cannot store this value: ${error.message}`), { cause: error });
    const reason = error instanceof RangeError && /call stack/.test(error.message) ? 'it is circular or nested too deeply' : error instanceof Error ? error.message : String(error);
    throw Object.assign(invalidArgument(`encoding '${encoding}' cannot store this value: ${reason}`), { cause: error });
  }
}

/**
 * The most elements (array items, map entries, set members, object
 * properties) a msgpack value may hold: each takes at least one byte, and
 * a value holds at most VALUE_SIZE_MAX (store_options.ts, 1 GiB) bytes.
 */
export const ENCODED_ELEMENTS_MAX = 1 << 30;

/**
 * Refuses, before msgpackr walks it, a value whose arrays, maps and sets
 * claim more elements than any storable value holds (ENCODED_ELEMENTS_MAX
 * in all). msgpackr iterates an array up to its length whatever it holds:
 * a sparse array of length 2^32 − 1 (one `array[4294967294] = x` makes
 * one) or a Proxy claiming a length of 2^53 held the thread and grew the
 * process by GBs for as long as it ran, with no error (found by a review:
 * 5.7 GB in 30 s). Each length is read before its elements are, so the
 * refusal is at once. It walks what msgpackr walks and reads each part once
 * more: a getter that answers differently the second time is not guarded
 * against. Throws ERR_VALUE_TOO_LARGE; circular or too deep values
 * overflow the stack here as in msgpackr (encodeWith's refusal).
 */
function checkElementCounts(value: unknown, budget: { left: number }): void {
  if (typeof value === 'string') {
    checkStringLength(value);
    return;
  }
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date) return;
  if (Array.isArray(value)) {
    const length = value.length;
    claimElements(length, budget, 'an array');
    for (let index = 0; index < length; index++) {
      const item: unknown = value[index];
      if ((item !== null && typeof item === 'object') || typeof item === 'string') checkElementCounts(item, budget);
    }
  } else if (value instanceof Map) {
    claimElements(value.size, budget, 'a Map');
    for (const [key, entry] of value) {
      checkElementCounts(key, budget);
      checkElementCounts(entry, budget);
    }
  } else if (value instanceof Set) {
    claimElements(value.size, budget, 'a Set');
    for (const member of value) checkElementCounts(member, budget);
  } else {
    for (const key in value) {
      if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
      claimElements(1, budget, 'an object');
      checkStringLength(key);
      const field: unknown = (value as Record<string, unknown>)[key];
      if ((field !== null && typeof field === 'object') || typeof field === 'string') checkElementCounts(field, budget);
    }
  }
}

/**
 * The most UTF-8 bytes Node decodes into one string (Buffer#toString and
 * msgpackr's decoder refuse more, ERR_STRING_TOO_LONG): a string value, a
 * JSON text or a string inside a msgpack value longer than this in UTF-8
 * would be stored and never read back (found by a review: 'é' repeated
 * 268 435 445 times, 536 870 890 bytes, was put and then every get said
 * ERR_STORE_CORRUPT).
 */
export const DECODABLE_STRING_BYTES_MAX = constants.MAX_STRING_LENGTH;

/** `bytes` (a string's UTF-8), if a get can decode it into a string again; ERR_VALUE_TOO_LARGE otherwise. */
function checkDecodableString(bytes: Buffer, what: string): Buffer {
  if (bytes.length > DECODABLE_STRING_BYTES_MAX) throw stringTooLong(what, bytes.length);
  return bytes;
}

/** checkDecodableString for a string inside a msgpack value: measured only when it could be too long (3 bytes a UTF-16 unit at most). */
function checkStringLength(text: string): void {
  if (text.length * 3 <= DECODABLE_STRING_BYTES_MAX) return;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > DECODABLE_STRING_BYTES_MAX) throw stringTooLong('a string in it', bytes);
}

function stringTooLong(what: string, bytes: number): StoreError {
  return new StoreError('ERR_VALUE_TOO_LARGE', `${what} takes ${bytes} bytes of UTF-8, and Node reads at most ${DECODABLE_STRING_BYTES_MAX} into one string: it could never be read back`);
}

/** Takes `count` elements of `what` from the budget; a count no collection can have (a Proxy's lie) is refused as unstorable. */
function claimElements(count: number, budget: { left: number }, what: string): void {
  if (!Number.isInteger(count) || count < 0) throw new UnstorableValue(`it holds ${what} claiming ${String(count)} elements`);
  if (count <= budget.left) {
    budget.left -= count;
    return;
  }
  throw new StoreError(
    'ERR_VALUE_TOO_LARGE',
    `the value's arrays, Maps, Sets and objects claim more than ${ENCODED_ELEMENTS_MAX} elements, at least a byte each, where a value holds at most ${ENCODED_ELEMENTS_MAX} bytes (the last counted: ${what} of ${count}; a sparse array's length counts)`,
  );
}

function refuseFunction(): never {
  throw new UnstorableValue('it holds a function (msgpack would store it as undefined)');
}

/** Whether msgpack bytes may encode a lone surrogate: U+FFFD, or ED followed by A0..BF. */
function mayHoldLoneSurrogate(bytes: Buffer): boolean {
  if (bytes.indexOf(REPLACEMENT_CHARACTER_UTF8) !== -1) return true;
  for (let at = bytes.indexOf(ENCODED_SURROGATE_LEAD); at !== -1 && at + 1 < bytes.length; at = bytes.indexOf(ENCODED_SURROGATE_LEAD, at + 1)) {
    if (bytes[at + 1] >= 0xa0 && bytes[at + 1] <= 0xbf) return true;
  }
  return false;
}

/**
 * Throws UnstorableValue at the first string (or object key) holding a lone
 * surrogate, looking where msgpackr writes strings. Only called when the
 * encoded bytes held U+FFFD; the value encoded, so it has no cycles.
 */
function refuseLoneSurrogates(value: unknown): void {
  if (typeof value === 'string') {
    if (!isWellFormed(value)) throw new UnstorableValue('it holds a string with a lone surrogate (msgpack would store U+FFFD)');
    return;
  }
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date) return;
  if (value instanceof Map) {
    for (const [key, entry] of value) {
      refuseLoneSurrogates(key);
      refuseLoneSurrogates(entry);
    }
  } else if (value instanceof Set || Array.isArray(value)) {
    for (const item of value) refuseLoneSurrogates(item);
  } else if (value instanceof Error) {
    refuseLoneSurrogates(value.message);
  } else {
    for (const key in value) {
      if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
      refuseLoneSurrogates(key);
      refuseLoneSurrogates((value as Record<string, unknown>)[key]);
    }
  }
}

/**
 * JSON.stringify's replacer: refuses what JSON would drop or turn into
 * something else. An `undefined` property is allowed (it is omitted, and
 * reads back as undefined); an `undefined` array element would become null.
 */
function checkJsonValue(this: unknown, key: string, value: unknown): unknown {
  // `value` is after toJSON: an invalid Date has already become null.
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Date && Number.isNaN(original.getTime())) throw new UnstorableValue(`an invalid Date at ${describeKey(key)} (JSON would store null)`);
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new UnstorableValue(`${value} at ${describeKey(key)} (JSON would store null)`);
      return value;
    case 'object':
      if (value !== null && !Array.isArray(value)) {
        const prototype = Object.getPrototypeOf(value) as unknown;
        if (prototype !== Object.prototype && prototype !== null && isJsonOpaque(value)) {
          throw new UnstorableValue(`a ${typeName(value)} at ${describeKey(key)} (JSON would store {} or its indexes)`);
        }
      }
      return value;
    case 'undefined':
      if (Array.isArray(this)) throw new UnstorableValue(`undefined at ${describeKey(key)} (JSON would store null)`);
      return value;
    default:
      // function, symbol (JSON would drop them), bigint (JSON cannot store one).
      throw new UnstorableValue(`a ${typeof value} at ${describeKey(key)}`);
  }
}

/** Built-ins whose contents JSON does not store (they become {} or a map of indexes). */
function isJsonOpaque(value: object): boolean {
  return (
    value instanceof Map ||
    value instanceof Set ||
    value instanceof WeakMap ||
    value instanceof WeakSet ||
    value instanceof ArrayBuffer ||
    value instanceof SharedArrayBuffer ||
    ArrayBuffer.isView(value) ||
    value instanceof TypedArray ||
    value instanceof DataView ||
    value instanceof RegExp ||
    value instanceof Error ||
    value instanceof Promise
  );
}

function describeKey(key: string): string {
  return key === '' ? 'the top level' : `key ${JSON.stringify(key)}`;
}

/** For messages: never throws, even for a Proxy whose traps do. */
function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  try {
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    return typeof name === 'string' && name !== '' ? name : 'object';
  } catch {
    return 'object';
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
