// Value encodings, as in lmdb-js: 'msgpack' (msgpackr; any structured value,
// the default), 'json', 'string' (UTF-8) and 'binary' (Uint8Array as is).
import { Packr } from 'msgpackr';

import { invalidArgument } from './store_error.js';

export type ValueEncoding = 'msgpack' | 'json' | 'string' | 'binary';

export interface ValueCodec {
  readonly name: ValueEncoding;
  encode(value: unknown): Uint8Array;
  /**
   * `fresh`: the bytes belong to nobody else (read just now), so the result
   * may share their memory. Otherwise (inline bytes held by the index) the
   * result must not, or a caller modifying it would change the store.
   */
  decode(bytes: Uint8Array, fresh?: boolean): unknown;
}

export function valueCodec(encoding: ValueEncoding): ValueCodec {
  switch (encoding) {
    case 'msgpack': {
      // Records with inline structure definitions (maxSharedStructures: 0):
      // every value is self-contained — no shared structures to store beside
      // the data — and maps stay Maps (with useRecords: false msgpackr turns
      // every map into a plain object, losing non-string keys).
      // copyBuffers: a decoded Buffer must not share memory with the stored
      // value, or a caller modifying it would change the store.
      const packr = new Packr({ useRecords: true, maxSharedStructures: 0, mapsAsObjects: false, moreTypes: true, copyBuffers: true });
      return {
        name: encoding,
        encode: (value) => {
          if (value === undefined) throw invalidArgument('value must not be undefined (use delete)');
          return packr.pack(value);
        },
        decode: (bytes) => packr.unpack(bytes),
      };
    }
    case 'json':
      return {
        name: encoding,
        encode: (value) => {
          const text = JSON.stringify(value);
          if (text === undefined) throw invalidArgument('value is not representable as JSON');
          return Buffer.from(text, 'utf8');
        },
        decode: (bytes) => JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')),
      };
    case 'string':
      return {
        name: encoding,
        encode: (value) => {
          if (typeof value !== 'string') throw invalidArgument(`encoding 'string' stores strings, got ${typeof value}`);
          return Buffer.from(value, 'utf8');
        },
        decode: (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
      };
    case 'binary':
      return {
        name: encoding,
        encode: (value) => {
          if (!(value instanceof Uint8Array)) throw invalidArgument(`encoding 'binary' stores Uint8Arrays, got ${typeof value}`);
          return value;
        },
        decode: (bytes, fresh) => (fresh ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.from(bytes)),
      };
    default:
      throw invalidArgument(`encoding must be 'msgpack', 'json', 'string' or 'binary', got ${String(encoding)}`, 'range');
  }
}
