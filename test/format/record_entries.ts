// Records as plain data for the format tests: what a writer wrote and a
// visitor saw, fast-check arbitraries for them, and a collecting visitor.
// Shared by the records, commit and WAL-scan tests.
import fc from 'fast-check';

import type { ByteWriter } from '../../format/byte_writer.js';
import { KEY_SIZE_MAX } from '../../format/constants.js';
import type { Extent } from '../../format/extent.js';
import { writeDelete, writePut, type RecordVisitor, type StoredValue } from '../../format/records.js';
import { utf8 } from './helpers.js';

/** What a writer wrote, and what a visitor saw: plain data, copied out of the payload. */
export type Entry =
  | { op: 'put'; key: Uint8Array; keyIsString: boolean; value: StoredValue }
  | { op: 'delete'; key: Uint8Array; keyIsString: boolean };

export function writeEntries(writer: ByteWriter, entries: readonly Entry[]): void {
  for (const entry of entries) {
    if (entry.op === 'put') writePut(writer, entry.key, entry.keyIsString, entry.value);
    else writeDelete(writer, entry.key, entry.keyIsString);
  }
}

/** A visitor that copies what it sees into `into` (keys and inline bytes are views it must not keep). */
export function collector(into: Entry[]): RecordVisitor {
  return {
    put(key, keyIsString, value) {
      const copied: StoredValue = value.kind === 'inline' ? { kind: 'inline', bytes: value.bytes.slice() } : { ...value, extents: value.extents.map((e) => ({ ...e })) };
      into.push({ op: 'put', key: key.slice(), keyIsString, value: copied });
    },
    delete(key, keyIsString) {
      into.push({ op: 'delete', key: key.slice(), keyIsString });
    },
  };
}

export const keyArbitrary: fc.Arbitrary<{ key: Uint8Array; keyIsString: boolean }> = fc.oneof(
  fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
    .map((text) => ({ key: utf8(text), keyIsString: true }))
    .filter(({ key }) => key.length <= KEY_SIZE_MAX),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((key) => ({ key, keyIsString: false })),
  fc.uint8Array({ minLength: 1, maxLength: KEY_SIZE_MAX, size: 'max' }).map((key) => ({ key, keyIsString: false })),
);

const extentArbitrary: fc.Arbitrary<Extent> = fc.record(
  { startBlock: fc.maxSafeNat(), blockCount: fc.integer({ min: 1, max: 0xffff_ffff }) },
  { noNullPrototype: true },
);

export const valueArbitrary: fc.Arbitrary<StoredValue> = fc.oneof(
  fc.uint8Array({ maxLength: 3000, size: 'max' }).map((bytes): StoredValue => ({ kind: 'inline', bytes })),
  fc
    .record({ length: fc.maxSafeNat(), crc: fc.nat({ max: 0xffff_ffff }), extents: fc.array(extentArbitrary, { minLength: 1, maxLength: 40 }), raw: fc.boolean() })
    .map(({ raw, ...value }): StoredValue => (raw ? { kind: 'extents', ...value, raw: true } : { kind: 'extents', ...value })),
);

export const entryArbitrary: fc.Arbitrary<Entry> = fc.oneof(
  fc.tuple(keyArbitrary, valueArbitrary).map(([{ key, keyIsString }, value]): Entry => ({ op: 'put', key, keyIsString, value })),
  keyArbitrary.map(({ key, keyIsString }): Entry => ({ op: 'delete', key, keyIsString })),
);
