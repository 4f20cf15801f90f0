// Keys: a key is its bytes. String keys are stored as UTF-8 and remember
// that they were strings, so iteration gives them back as strings. In memory
// the index orders keys by a "key string": the key's bytes as a latin1
// string (one char per byte), so JavaScript's string comparison is the
// bytewise order of the keys, for string and binary keys alike. An ASCII
// string is its own key string, the common and cheap case.
import { KEY_SIZE_MAX } from '../format/constants.js';
import { bufferOf, byteLengthOf, byteOffsetOf, isDetached } from '../native/view_bytes.js';
import { StoreError, invalidArgument } from './store_error.js';

/**
 * A key: a string (stored as its UTF-8 bytes) or bytes, 1 to 1024 bytes long.
 * A key is its bytes: `'a'` and `Uint8Array.of(0x61)` are the same key.
 */
export type Key = string | Uint8Array;

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

/** The index's key string for `key`; validates type and size. */
export function toKeyString(key: unknown): string {
  if (typeof key === 'string') {
    if (key.length === 0) throw invalidArgument('key must not be empty', 'range');
    if (key.length <= KEY_SIZE_MAX && ASCII.test(key)) return key;
    // UTF-8 has no bytes for a lone surrogate: Buffer.from would write
    // U+FFFD, making '\uD800' and '\uFFFD' the same key.
    if (!isWellFormed(key)) throw invalidArgument('a string key must not contain lone surrogates (it has no UTF-8 bytes)');
    const bytes = Buffer.from(key, 'utf8');
    checkSize(bytes.length);
    return bytes.toString('latin1');
  }
  if (isUint8Array(key)) {
    const bytes = ownBytes(key);
    if (bytes.length === 0) throw invalidArgument('key must not be empty', 'range');
    checkSize(bytes.length);
    return latin1Of(bytes, 0, bytes.length);
  }
  throw invalidArgument(`key must be a string or a Uint8Array, got ${key === null ? 'null' : typeof key}`);
}

/**
 * A genuine Uint8Array (or Buffer). `instanceof` alone also accepts a Proxy
 * of one, whose `length` getter then throws "incompatible receiver";
 * ArrayBuffer.isView looks at the object itself, not through the proxy.
 */
export function isUint8Array(value: unknown): value is Uint8Array {
  return ArrayBuffer.isView(value) && value instanceof Uint8Array;
}

/**
 * The bytes of a genuine Uint8Array (isUint8Array) as a Uint8Array of our
 * own: its buffer, offset and length read through %TypedArray%'s getters,
 * never through the caller's object, where an own `length` property or a
 * subclass getter may say anything (found by a review: a view of 10 bytes
 * claiming 100 000 was stored under a checksum of the bytes it claimed, and
 * the store then reported itself corrupt). A view of the same memory, or a
 * copy when that memory is a SharedArrayBuffer: another thread could change
 * it between the copy the store writes and the bytes it checksums (a
 * review: 1 put in 200 of a 1 MiB value that a Worker kept writing read
 * back as ERR_STORE_CORRUPT). A view of a detached buffer is empty.
 */
export function ownBytes(value: Uint8Array): Uint8Array {
  const length = byteLengthOf(value);
  // A detached buffer cannot be viewed again; its views are empty.
  if (length === 0) return new Uint8Array(0);
  const buffer = bufferOf(value);
  const view = new Uint8Array(buffer, byteOffsetOf(value), length);
  return typeof SharedArrayBuffer === 'function' && buffer instanceof SharedArrayBuffer ? view.slice() : view;
}

/**
 * Whether a genuine Uint8Array views a detached ArrayBuffer (read through
 * the built-in getters, as ownBytes).
 */
export function isDetachedView(value: Uint8Array): boolean {
  return byteLengthOf(value) === 0 && isDetached(value);
}

/** String.prototype.isWellFormed (Node 20+; not in the ES2022 lib the project compiles against). */
export function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

function checkSize(bytes: number): void {
  if (bytes > KEY_SIZE_MAX) throw new StoreError('ERR_KEY_TOO_LARGE', `key of ${bytes} bytes; the limit is ${KEY_SIZE_MAX}`);
}

/** The key's bytes, for records. */
export function keyStringToBytes(keyString: string): Buffer {
  return Buffer.from(keyString, 'latin1');
}

/** The key as the caller gave it: a string (from its UTF-8 bytes) or a Buffer. */
export function keyStringToKey(keyString: string, isString: boolean): Key {
  if (!isString) return Buffer.from(keyString, 'latin1');
  return ASCII.test(keyString) ? keyString : Buffer.from(keyString, 'latin1').toString('utf8');
}

/**
 * Node's latin1 decoder applied to a view, without a Buffer object per key.
 * It is the method behind Buffer#toString('latin1') (Node 20 to 24) but not
 * a documented API: where a Node lacks it, the documented path (a Buffer
 * over the same bytes).
 */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;
export const latin1Of: (bytes: Uint8Array, start: number, end: number) => string =
  typeof latin1Slice === 'function'
    ? (bytes, start, end) => latin1Slice.call(bytes, start, end)
    : (bytes, start, end) => Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');

/**
 * Node's UTF-8 decoder applied to a view (as latin1Of): a string key as its
 * caller gave it, made from its stored bytes in one step.
 */
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (this: Uint8Array, start: number, end: number) => string }).utf8Slice;
const utf8Of: (bytes: Uint8Array, start: number, end: number) => string =
  typeof utf8Slice === 'function'
    ? (bytes, start, end) => utf8Slice.call(bytes, start, end)
    : (bytes, start, end) => Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8');

/**
 * The key whose bytes are `bytes[start, end)`, as the caller gave it:
 * keyStringToKey of their key string, without making the key string.
 */
export function bytesToKey(bytes: Uint8Array, start: number, end: number, isString: boolean): Key {
  return isString ? utf8Of(bytes, start, end) : Buffer.from(bytes.subarray(start, end));
}

/** Key string of bytes read from disk. */
export function bytesToKeyString(bytes: Uint8Array): string {
  return latin1Of(bytes, 0, bytes.length);
}
