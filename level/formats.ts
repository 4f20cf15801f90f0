// The three formats abstract-level hands the private API ('utf8', 'buffer',
// 'view') and the store's side of them. The store is opened with its
// 'binary' value encoding, so values are stored as the bytes abstract-level's
// transcoder produced; keys go in as strings or bytes, both of which the
// store takes as their (UTF-8) bytes.

/** The lower-level formats the adapter declares in its manifest. */
export type LevelFormat = 'utf8' | 'buffer' | 'view';

/** An encoded key or value as abstract-level passes it to the private API. */
export type Encoded = string | Uint8Array;

/**
 * Whether an encoded key is the empty key, which the store cannot hold. An
 * encoded key otherwise goes to the store as it is: it takes a string as
 * its UTF-8 bytes, so a string is empty exactly when its bytes are.
 */
export function isEmptyKey(key: Encoded): boolean {
  return key.length === 0;
}

/** The bytes to store for an encoded value. */
export function valueToStore(value: Encoded): Uint8Array {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

/**
 * A key or value read from the store in the format abstract-level asked for.
 * The store yields Buffers, or a string for a key last written as a string.
 */
export function fromStore(data: unknown, format: string): Encoded {
  if (typeof data === 'string') return format === 'utf8' ? data : Buffer.from(data, 'utf8');
  if (!(data instanceof Uint8Array)) throw new TypeError(`ringstore/level: the store yielded ${typeof data}, not bytes; was it written with another value encoding?`);
  if (format === 'utf8') return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  // 'buffer' and 'view' alike: a Buffer is a Uint8Array.
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Bytewise order of two encoded keys (strings as their UTF-8 bytes), as the store orders them. */
export function compareKeys(a: Encoded, b: Encoded): number {
  return Buffer.compare(toBytes(a), toBytes(b));
}

export function toBytes(key: Encoded): Buffer {
  if (typeof key === 'string') return Buffer.from(key, 'utf8');
  return Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength);
}
