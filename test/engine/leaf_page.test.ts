// LeafPage searches a leaf in its bytes: every search must agree with the
// tree's string search over the same key strings (one char per byte), for
// keys of any bytes (0x00, 0x7f, 0x80, 0xff), keys that are prefixes of
// others, and probes between, before and after them. An owned page edited
// in place must hold, after any puts and deletes, exactly the page the
// encoder makes of the same records, and never change a value it handed
// out.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { checkPageHeader, encodeLeafPageOfEdits, encodeLeafPageOfKeyStrings, leafEntryBytes, pageCapacityBytes, scanLeafRecords, type PageExpectation } from '../../format/page.js';
import type { StoredValue } from '../../format/records.js';
import { keyStringToKey } from '../../engine/key_codec.js';
import { LeafPage } from '../../engine/leaf_page.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { lowerBound, upperBound } from '../../engine/tree_node.js';

const PAGE_SIZE = 4096;
const ADDRESS = 20;
const STORE_TAG = 0x1eaf_9a6e;
/** Fixed so a failure reproduces; fast-check prints it on failure. */
const SEED = 0x1eaf_0001;
const RUNS = Number(process.env.RINGSTORE_LEAF_PAGE_RUNS ?? 300);

/** Bytes where order bugs hide: the ends, the ASCII/latin1 boundary, and a few letters. */
const byteArb = fc.constantFrom(0x00, 0x01, 0x41, 0x61, 0x62, 0x7f, 0x80, 0xfe, 0xff);
const keyArb = fc.array(byteArb, { minLength: 1, maxLength: 12 }).map((bytes) => String.fromCharCode(...bytes));

function entryFor(index: number): IndexEntry {
  if (index % 5 === 4) return { isString: false, value: { kind: 'extents', length: 4096 * 2, crc: index, extents: [{ startBlock: 100 + index * 2, blockCount: 2 }] } };
  return { isString: index % 2 === 0, value: Uint8Array.from({ length: index % 7 }, (_, j) => (index + j) & 0xff) };
}

function leafPageOf(keys: string[], entries: IndexEntry[]): LeafPage {
  const page = new Uint8Array(PAGE_SIZE);
  const crc = encodeLeafPageOfKeyStrings(page, { address: ADDRESS, checkpointSequence: 1, storeTag: STORE_TAG }, keys, entries);
  const expected: PageExpectation = { address: ADDRESS, storeTag: STORE_TAG, crc, level: 0, dataStartBlock: 8, blockCount: 1 << 20, blockSize: PAGE_SIZE };
  const header = checkPageHeader(page, expected);
  return new LeafPage(page.subarray(0, header.end), scanLeafRecords(page, header, expected));
}

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

describe('LeafPage (fast-check against string search)', () => {
  it('finds, bounds and compares keys as the tree\'s string search does', () => {
    fc.assert(
      fc.property(fc.uniqueArray(keyArb, { minLength: 1, maxLength: 60 }), fc.array(keyArb, { maxLength: 30 }), (unsorted, probes) => {
        const keys = [...unsorted].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const entries = keys.map((_, i) => entryFor(i));
        const page = leafPageOf(keys, entries);
        assert.equal(page.count, keys.length);
        const { keys: materialized, entries: materializedEntries } = page.materialize();
        assert.deepEqual(materialized, keys);
        materializedEntries.forEach((entry, i) => {
          assert.equal(entry.isString, entries[i]!.isString);
          const value = entry.value;
          const expected = entries[i]!.value;
          if (expected instanceof Uint8Array) assert.deepEqual(value instanceof Uint8Array ? [...value] : value, [...expected]);
          else assert.deepEqual(value, expected);
        });
        // Probes: every key, each with a byte more and a byte less, and random keys.
        const all = [...probes, ...keys, ...keys.map((key) => `${key}\x00`), ...keys.map((key) => `${key}\xff`), ...keys.filter((key) => key.length > 1).map((key) => key.slice(0, -1))];
        for (const probe of all) {
          const lower = lowerBound(keys, probe);
          assert.equal(page.lowerBound(probe), lower, `lowerBound(${JSON.stringify(probe)})`);
          assert.equal(page.upperBound(probe), upperBound(keys, probe), `upperBound(${JSON.stringify(probe)})`);
          const found = page.find(probe);
          assert.equal(found !== undefined, keys[lower] === probe, `find(${JSON.stringify(probe)})`);
          if (found !== undefined) assert.equal(found.isString, entries[lower]!.isString);
          for (let i = 0; i < keys.length; i++) {
            const key = keys[i]!;
            assert.equal(sign(page.compareKeyAt(i, probe)), key < probe ? -1 : key > probe ? 1 : 0);
          }
        }
        assert.equal(page.recordBytes, page.starts[page.count]! - page.starts[0]!);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});

const CAPACITY_BYTES = pageCapacityBytes(PAGE_SIZE);
const STAMP = { address: ADDRESS, checkpointSequence: 7, storeTag: STORE_TAG };
const recordBytesOf = (key: string, entry: IndexEntry): number => {
  const stored: StoredValue = entry.value instanceof Uint8Array ? { kind: 'inline', bytes: entry.value } : entry.value;
  return leafEntryBytes(key.length, stored);
};
const valueOf = (entry: IndexEntry): unknown => (entry.value instanceof Uint8Array ? [...entry.value] : entry.value);
const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** A put (entry index) or a delete (undefined) of a key. */
const editArb = fc.record({ key: keyArb, entry: fc.option(fc.nat({ max: 40 }), { nil: undefined }) });

describe('LeafPage owned and edited in place (fast-check against a model)', () => {
  it('gives each key as its caller gave it and each inline value where it lies, as the entries made from it do (a scan\'s path)', () => {
    // Keys of any bytes and keys of UTF-8 strings (non-ASCII included), each marked a string or not.
    const utf8KeyArb = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }).map((text) => Buffer.from(text, 'utf8').toString('latin1'));
    fc.assert(
      fc.property(fc.uniqueArray(fc.oneof(keyArb, utf8KeyArb), { minLength: 1, maxLength: 60 }), fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }), (unsorted, stringFlags) => {
        const keys = [...unsorted].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const entries = keys.map((_, i) => ({ ...entryFor(i), isString: stringFlags[i]! }));
        const page = leafPageOf(keys, entries);
        for (let index = 0; index < page.count; index++) {
          const entry = page.entryAt(index);
          assert.deepEqual(page.givenKeyAt(index), keyStringToKey(page.keyAt(index), entry.isString));
          const start = page.inlineValueStartAt(index);
          if (entry.value instanceof Uint8Array) assert.deepEqual([...page.bytes.subarray(start, page.starts[index + 1])], [...entry.value]);
          else assert.equal(start, -1);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('holds, after any puts and deletes, the page the encoder makes of the same records, byte for byte', () => {
    fc.assert(
      fc.property(fc.uniqueArray(keyArb, { minLength: 1, maxLength: 30 }), fc.array(editArb, { maxLength: 80 }), fc.boolean(), (unsorted, edits, fromDisk) => {
        const model = new Map<string, IndexEntry>();
        const initial = [...unsorted].sort(byKey);
        initial.forEach((key, i) => model.set(key, entryFor(i)));
        const initialEntries = initial.map((key) => model.get(key)!);
        const bytesOf = (): number => [...model].reduce((sum, [key, entry]) => sum + recordBytesOf(key, entry), 0);
        // Owned by a write's copy of a page read from disk, or made from records (a split's piece).
        const page = fromDisk
          ? leafPageOf(initial, initialEntries).ownedCopy(CAPACITY_BYTES)
          : LeafPage.ofRecords(initial, initialEntries, bytesOf(), CAPACITY_BYTES);
        assert.ok(page.owned);
        // Values handed out along the way, with what they held then.
        const handedOut: { value: IndexEntry['value']; expected: unknown }[] = [];
        for (const { key, entry } of edits) {
          const index = page.lowerBound(key);
          const present = index < page.count && page.compareKeyAt(index, key) === 0;
          assert.equal(present, model.has(key));
          if (entry === undefined) {
            if (!present) continue;
            const before = page.detachedEntryAt(index);
            assert.deepEqual(valueOf(before), valueOf(model.get(key)!));
            page.removeAt(index);
            model.delete(key);
          } else {
            const next = entryFor(entry);
            const bytes = recordBytesOf(key, next);
            const previousBytes = present ? recordBytesOf(key, model.get(key)!) : 0;
            if (page.recordBytes + bytes - previousBytes > CAPACITY_BYTES) continue;
            if (present) page.replaceAt(index, key, next, bytes);
            else page.insertAt(index, key, next, bytes);
            model.set(key, next);
          }
          // A view (entryAt) and a copy (find) of some record, kept past the next writes.
          if (page.count > 0) {
            const at = page.entryAt(page.count >> 1);
            handedOut.push({ value: at.value, expected: valueOf(at) });
            const found = page.find(page.keyAt(0))!;
            handedOut.push({ value: found.value, expected: valueOf(found) });
          }
          assert.equal(page.recordBytes, bytesOf());
        }
        const keys = [...model.keys()].sort(byKey);
        const entries = keys.map((key) => model.get(key)!);
        const { keys: held, entries: heldEntries } = page.materialize();
        assert.deepEqual(held, keys);
        heldEntries.forEach((entry, i) => {
          assert.equal(entry.isString, entries[i]!.isString);
          assert.deepEqual(valueOf(entry), valueOf(entries[i]!));
        });
        for (const { value, expected } of handedOut) assert.deepEqual(value instanceof Uint8Array ? [...value] : value, expected, 'a value handed out changed under a later write');
        if (keys.length === 0) return;
        // Sealed as a checkpoint seals it: the encoder's page of the same records.
        const sealed = new Uint8Array(PAGE_SIZE);
        const encoded = new Uint8Array(PAGE_SIZE);
        const sealedCrc = encodeLeafPageOfEdits(sealed, STAMP, page.bytes, page.starts, { keyStrings: [], slots: [] });
        const encodedCrc = encodeLeafPageOfKeyStrings(encoded, STAMP, keys, entries);
        assert.equal(sealedCrc, encodedCrc);
        assert.deepEqual(sealed, encoded);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  it('refuses writes to a page as read from disk, and records that would not fit its bytes', () => {
    const keys = ['a', 'b'];
    const entries = [entryFor(0), entryFor(1)];
    const read = leafPageOf(keys, entries);
    assert.equal(read.owned, false);
    assert.throws(() => read.insertAt(2, 'c', entryFor(2), recordBytesOf('c', entryFor(2))), /a write to a leaf page as read from disk/);
    assert.throws(() => read.removeAt(0), /a write to a leaf page as read from disk/);
    const owned = read.ownedCopy(CAPACITY_BYTES);
    const big: IndexEntry = { isString: false, value: new Uint8Array(CAPACITY_BYTES) };
    assert.throws(() => owned.insertAt(2, 'c', big, recordBytesOf('c', big)), /fit its bytes/);
    assert.deepEqual(owned.materialize().keys, keys, 'unchanged by the refused write');
  });
});
