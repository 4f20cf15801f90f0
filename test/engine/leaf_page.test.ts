// LeafPage searches a leaf in its bytes: every search must agree with the
// tree's string search over the same key strings (one char per byte), for
// keys of any bytes (0x00, 0x7f, 0x80, 0xff), keys that are prefixes of
// others, and probes between, before and after them.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { checkPageHeader, encodeLeafPageOfKeyStrings, scanLeafRecords, type PageExpectation } from '../../format/page.js';
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
