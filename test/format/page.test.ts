// Tree pages (format 2): any valid leaf or branch round-trips through
// encodeLeafPage/encodeBranchPage and decodePage at every page size; the
// encoders refuse, with RangeError, entries a caller must not give them; and
// decodePage refuses every kind of damage with a FormatError('page') naming
// the page's block and a reason that tells the kinds apart.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';

import { ByteWriter } from '../../format/byte_writer.js';
import {
  BLOCK_SIZE_MAX,
  KEY_SIZE_MAX,
  PAGE_HEADER_SIZE,
  PAGE_KIND_BRANCH,
  PAGE_KIND_LEAF,
  PAGE_MAGIC,
  PAGE_SIZE_MIN,
  RECORD_PUT_INLINE,
  TREE_LEVELS_MAX,
} from '../../format/constants.js';
import { crc32c } from '../../format/crc32c.js';
import { FormatError } from '../../format/format_error.js';
import {
  branchChildBytes,
  decodePage,
  encodeBranchPage,
  encodeBranchPageOfKeyStrings,
  encodeLeafPage,
  encodeLeafPageOfEdits,
  encodeLeafPageOfKeyStrings,
  leafEntryBytes,
  pageCapacityBytes,
  pageSizeFor,
  writeLeafRecordAt,
  type BranchChild,
  type DecodedPage,
  type LeafBasis,
  type LeafEntry,
  type LeafSlot,
  type PageExpectation,
  type PageStamp,
} from '../../format/page.js';
import { writeDelete, writePut, type StoredValue } from '../../format/records.js';
import { hexdumpInDocs, patternBytes, PROPERTY_SEED, throwsFormatError, utf8 } from './helpers.js';
import { keyArbitrary } from './record_entries.js';

// Header layout (docs/format.md § Tree pages), independent of format/page.ts.
const AT = { magic: 0, crc: 4, address: 8, checkpointSequence: 16, storeTag: 24, kind: 28, level: 29, entryCount: 30, usedBytes: 32, reserved: 36 } as const;

const BLOCK_SIZES = [512, 4096, 65536] as const;
const STORE_TAG = 0x0102_0304;
/** The data region of the test store: blocks [DATA_START, BLOCK_COUNT). */
const DATA_START = 100;
const BLOCK_COUNT = 2 ** 40;
/** Where test pages are "written" and "read from". */
const ADDRESS = 1000;

function stamp(address = ADDRESS, checkpointSequence = 5, storeTag = STORE_TAG): PageStamp {
  return { address, checkpointSequence, storeTag };
}

function expectation(crc: number, level: number, blockSize: number, overrides: Partial<PageExpectation> = {}): PageExpectation {
  return { address: ADDRESS, storeTag: STORE_TAG, crc, level, dataStartBlock: DATA_START, blockCount: BLOCK_COUNT, blockSize, ...overrides };
}

function dataOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Page: crc32c of bytes [8, pageSize) stored little-endian at 4. Returns the new crc. */
function resealPage(page: Uint8Array): number {
  const crc = crc32c(page.subarray(8));
  dataOf(page).setUint32(AT.crc, crc, true);
  return crc;
}

function encodeLeaf(entries: readonly LeafEntry[], blockSize = 4096, pageStamp = stamp()): { page: Uint8Array; crc: number } {
  const page = new Uint8Array(pageSizeFor(blockSize));
  return { page, crc: encodeLeafPage(page, pageStamp, entries) };
}

function encodeBranch(children: readonly BranchChild[], level = 1, blockSize = 4096, pageStamp = stamp()): { page: Uint8Array; crc: number } {
  const page = new Uint8Array(pageSizeFor(blockSize));
  return { page, crc: encodeBranchPage(page, pageStamp, level, children) };
}

function inline(text: string): StoredValue {
  return { kind: 'inline', bytes: utf8(text) };
}

function entry(key: string, value: StoredValue = inline(`value of ${key}`)): LeafEntry {
  return { key: utf8(key), keyIsString: true, value };
}

function child(block: number, separator?: string, crc = 0x1234_5678): BranchChild {
  return { block, crc, separator: separator === undefined ? undefined : utf8(separator) };
}

/** Three records: inline, empty inline, and a raw extent value of two blocks (B = 4096). */
function sampleLeaf(): LeafEntry[] {
  return [
    entry('apple', inline('red')),
    { key: Uint8Array.from([0x62, 0x00]), keyIsString: false, value: { kind: 'inline', bytes: new Uint8Array(0) } },
    entry('cherry', { kind: 'extents', length: 5000, crc: 0xdead_beef, extents: [{ startBlock: 300, blockCount: 1 }, { startBlock: 310, blockCount: 1 }], raw: true }),
  ];
}

function sampleBranch(): BranchChild[] {
  return [child(200), child(208, 'g'), child(216, 'gz'), child(224, 'p')];
}

/**
 * A page laid out by hand (header by AT, entries as given) and sealed: for
 * entries the encoders refuse to write. Returns the page and its crc.
 */
function assemble(fields: { kind: number; level: number; entryCount: number; entries: Uint8Array; usedBytes?: number }, blockSize = 4096): { page: Uint8Array; crc: number } {
  const page = new Uint8Array(pageSizeFor(blockSize));
  const data = dataOf(page);
  data.setUint32(AT.magic, PAGE_MAGIC, true);
  data.setBigUint64(AT.address, BigInt(ADDRESS), true);
  data.setBigUint64(AT.checkpointSequence, 5n, true);
  data.setUint32(AT.storeTag, STORE_TAG, true);
  page[AT.kind] = fields.kind;
  page[AT.level] = fields.level;
  data.setUint16(AT.entryCount, fields.entryCount, true);
  data.setUint32(AT.usedBytes, fields.usedBytes ?? fields.entries.length, true);
  page.set(fields.entries, PAGE_HEADER_SIZE);
  return { page, crc: resealPage(page) };
}

/** Branch entries written by hand: u64 block | u32 crc | u16 separator length | separator. */
function branchEntries(children: readonly { block: number | bigint; separator: Uint8Array }[]): Uint8Array {
  const writer = new ByteWriter();
  for (const { block, separator } of children) {
    const bytes = new Uint8Array(8);
    dataOf(bytes).setBigUint64(0, BigInt(block), true);
    writer.raw(bytes);
    writer.u32(0x1234_5678);
    writer.u16(separator.length);
    writer.raw(separator);
  }
  return writer.bytes().slice();
}

/** A copy of `page` edited by `edit` and re-sealed; returns it and its new crc. */
function tampered(page: Uint8Array, edit: (data: DataView, page: Uint8Array) => void): { page: Uint8Array; crc: number } {
  const copy = page.slice();
  edit(dataOf(copy), copy);
  return { page: copy, crc: resealPage(copy) };
}

function refused(page: Uint8Array, expected: PageExpectation, reason: RegExp, what?: string): FormatError {
  return throwsFormatError(() => decodePage(page, expected), { structure: 'page', blockIndex: expected.address, reason }, what);
}

/** Decoded content as plain data (keys and values copied out of the page), for deepEqual. */
function plain(decoded: DecodedPage): unknown {
  if (decoded.kind === 'leaf') {
    return { ...decoded, entries: decoded.entries.map((e) => ({ ...e, key: e.key.slice(), value: e.value.kind === 'inline' ? { kind: 'inline', bytes: e.value.bytes.slice() } : e.value })) };
  }
  return { ...decoded, children: decoded.children.map((c) => ({ ...c, separator: c.separator?.slice() })) };
}

const compare = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);

// --- Arbitraries --------------------------------------------------------------------------------

/** Keys of the records tests, and keys of exactly KEY_SIZE_MAX bytes (which those reach only rarely). */
const pageKeyArbitrary: fc.Arbitrary<{ key: Uint8Array; keyIsString: boolean }> = fc.oneof(
  keyArbitrary,
  fc.uint8Array({ minLength: KEY_SIZE_MAX, maxLength: KEY_SIZE_MAX }).map((key) => ({ key, keyIsString: false })),
);

/** A value valid in a page of a store with `blockSize`-byte blocks: its extents in the data region and holding exactly its bytes. */
function valueArbitrary(blockSize: number): fc.Arbitrary<StoredValue> {
  const extents = fc.array(fc.record({ startBlock: fc.integer({ min: DATA_START, max: BLOCK_COUNT - 2 ** 20 }), blockCount: fc.integer({ min: 1, max: 4 }) }, { noNullPrototype: true }), {
    minLength: 1,
    maxLength: 5,
  });
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((bytes): StoredValue => ({ kind: 'inline', bytes })),
    fc.record({ extents, lastBlockBytes: fc.integer({ min: 0, max: blockSize }), crc: fc.nat({ max: 0xffff_ffff }), raw: fc.boolean() }).map(({ extents, lastBlockBytes, crc, raw }): StoredValue => {
      const blocks = extents.reduce((sum, e) => sum + e.blockCount, 0);
      // max(1, ceil(length / B)) = blocks: a 0-byte value takes one block.
      const length = blocks === 1 ? lastBlockBytes : (blocks - 1) * blockSize + Math.max(1, lastBlockBytes);
      return raw ? { kind: 'extents', length, crc, extents, raw: true } : { kind: 'extents', length, crc, extents };
    }),
  );
}

/** Sorts by key, drops repeated keys, then keeps the longest prefix that fits `capacity` (at least one entry). */
function fitted<T>(items: T[], keyOf: (item: T) => Uint8Array, bytesOf: (item: T) => number, capacity: number, first = 0): T[] {
  const sorted = [...items].sort((a, b) => compare(keyOf(a), keyOf(b))).filter((item, i, all) => i === 0 || compare(keyOf(all[i - 1]), keyOf(item)) !== 0);
  const kept: T[] = [];
  let used = first;
  for (const item of sorted) {
    if (used + bytesOf(item) > capacity) break;
    used += bytesOf(item);
    kept.push(item);
  }
  return kept;
}

function leafArbitrary(blockSize: number): fc.Arbitrary<LeafEntry[]> {
  const capacity = pageCapacityBytes(pageSizeFor(blockSize));
  return fc
    .array(fc.tuple(pageKeyArbitrary, valueArbitrary(blockSize)), { minLength: 1, maxLength: 60 })
    .map((pairs) => fitted(pairs.map(([{ key, keyIsString }, value]): LeafEntry => ({ key, keyIsString, value })), (e) => e.key, (e) => leafEntryBytes(e.key.length, e.value), capacity))
    .filter((entries) => entries.length >= 1);
}

function branchArbitrary(blockSize: number): fc.Arbitrary<{ level: number; children: BranchChild[] }> {
  const pageBlocks = pageSizeFor(blockSize) / blockSize;
  const capacity = pageCapacityBytes(pageSizeFor(blockSize));
  // Pages of their own: whole pages apart, none the branch's (ADDRESS).
  const block = fc.integer({ min: 0, max: Math.floor((BLOCK_COUNT - DATA_START) / pageBlocks) - 1 }).map((slot) => DATA_START + slot * pageBlocks);
  const crc = fc.nat({ max: 0xffff_ffff });
  return fc
    .record({
      level: fc.integer({ min: 1, max: TREE_LEVELS_MAX - 1 }),
      first: fc.record({ block, crc }),
      rest: fc.array(fc.record({ block, crc, key: pageKeyArbitrary }), { minLength: 1, maxLength: 80 }),
    })
    .map(({ level, first, rest }) => {
      const kept = fitted(rest, (c) => c.key.key, (c) => branchChildBytes(c.key.key.length), capacity, branchChildBytes(0));
      const children: BranchChild[] = [{ ...first, separator: undefined }, ...kept.map((c): BranchChild => ({ block: c.block, crc: c.crc, separator: c.key.key }))];
      return { level, children };
    })
    .filter(({ children }) => children.length >= 2 && new Set(children.map((c) => c.block)).size === children.length && children.every((c) => Math.abs(c.block - ADDRESS) >= pageBlocks));
}

// --- Tests --------------------------------------------------------------------------------------

describe('pageSizeFor() / pageCapacityBytes() / leafEntryBytes() / branchChildBytes()', () => {
  it('make a page one block, and at least PAGE_SIZE_MIN (8 blocks of 512 B)', () => {
    assert.deepEqual(
      [512, 1024, 2048, 4096, 8192, 65536].map(pageSizeFor),
      [4096, 4096, 4096, 4096, 8192, 65536],
    );
    assert.equal(pageCapacityBytes(4096), 4096 - 48);
    assert.equal(pageCapacityBytes(65536), 65536 - 48);
    for (const bad of [0, 256, 1000, 131072]) assert.throws(() => pageSizeFor(bad), RangeError, `block size ${bad}`);
    for (const bad of [512, 4095, 131072]) assert.throws(() => pageCapacityBytes(bad), RangeError, `page size ${bad}`);
  });

  it('give the exact encoded size of a record and of a branch child', () => {
    assert.equal(leafEntryBytes(5, inline('red')), 8 + 5 + 3);
    assert.equal(leafEntryBytes(6, sampleLeaf()[2].value), 20 + 6 + 2 * 12);
    assert.equal(branchChildBytes(0), 14);
    assert.equal(branchChildBytes(KEY_SIZE_MAX), 14 + 1024);
  });

  it('keep the header within the smallest page, and the page magic "RPAG"', () => {
    assert.equal(new TextDecoder().decode(Uint8Array.from([PAGE_MAGIC & 0xff, (PAGE_MAGIC >>> 8) & 0xff, (PAGE_MAGIC >>> 16) & 0xff, PAGE_MAGIC >>> 24])), 'RPAG');
    assert.equal(PAGE_HEADER_SIZE, 48);
    assert.equal(PAGE_SIZE_MIN, 4096);
    assert.equal(pageSizeFor(BLOCK_SIZE_MAX), BLOCK_SIZE_MAX);
    assert.deepEqual([PAGE_KIND_LEAF, PAGE_KIND_BRANCH], [1, 2]);
  });
});

describe('encodeLeafPage()', () => {
  it('writes the header fields little-endian, the records after byte 48 and zeros after them', () => {
    const entries = sampleLeaf();
    const page = new Uint8Array(4096).fill(0xee);
    const crc = encodeLeafPage(page, stamp(0x1_0000_0007, 0x2_0000_0005, 0xfeed_beef), entries);
    const data = dataOf(page);
    const used = entries.reduce((sum, e) => sum + leafEntryBytes(e.key.length, e.value), 0);
    assert.deepEqual([...page.subarray(0, 4)], [...utf8('RPAG')]);
    assert.equal(data.getUint32(AT.crc, true), crc);
    assert.equal(crc, crc32c(page.subarray(8)));
    assert.equal(data.getBigUint64(AT.address, true), 0x1_0000_0007n);
    assert.equal(data.getBigUint64(AT.checkpointSequence, true), 0x2_0000_0005n);
    assert.equal(data.getUint32(AT.storeTag, true), 0xfeed_beef);
    assert.deepEqual([page[AT.kind], page[AT.level]], [PAGE_KIND_LEAF, 0]);
    assert.equal(data.getUint16(AT.entryCount, true), 3);
    assert.equal(data.getUint32(AT.usedBytes, true), used);
    const writer = new ByteWriter();
    for (const e of entries) writePut(writer, e.key, e.keyIsString, e.value);
    assert.deepEqual(page.subarray(48, 48 + used), writer.bytes(), 'the entries are writePut records');
    assert.ok(page.subarray(36, 48).every((byte) => byte === 0), 'reserved');
    assert.ok(page.subarray(48 + used).every((byte) => byte === 0), 'tail');
  });

  it('produces the documented test vector: a two-record leaf at block 7, tag 0x01020304, sequence 5', () => {
    const { page, crc } = exampleLeaf();
    assert.equal(crc, EXAMPLE_LEAF_CRC);
    assert.equal(Buffer.from(page.subarray(0, EXAMPLE_LEAF_HEX.length / 2)).toString('hex'), EXAMPLE_LEAF_HEX);
    assert.ok(page.subarray(EXAMPLE_LEAF_HEX.length / 2).every((byte) => byte === 0));
    assert.deepEqual(page, hexdumpInDocs('Example: a leaf page'), 'the hexdump in docs/format.md');
    const decoded = decodePage(page, { address: 7, storeTag: 0x0102_0304, crc, level: 0, dataStartBlock: 4, blockCount: 1024, blockSize: 4096 });
    assert.equal(decoded.kind, 'leaf');
    assert.deepEqual(
      decoded.entries.map((e) => [new TextDecoder().decode(e.key), e.value.kind]),
      [
        ['a', 'inline'],
        ['photo', 'extents'],
      ],
    );
  });

  it('fills a page to exactly its capacity, and refuses one byte more with RangeError', () => {
    for (const blockSize of BLOCK_SIZES) {
      const capacity = pageCapacityBytes(pageSizeFor(blockSize));
      // Two 1 KiB-key records and a third whose inline value takes the rest.
      const big = (first: number): Uint8Array => new Uint8Array(KEY_SIZE_MAX).fill(first);
      const head: LeafEntry[] = [
        { key: big(1), keyIsString: false, value: inline('x') },
        { key: big(2), keyIsString: false, value: inline('y') },
      ];
      const rest = capacity - head.reduce((sum, e) => sum + leafEntryBytes(e.key.length, e.value), 0) - leafEntryBytes(KEY_SIZE_MAX, inline(''));
      const full = [...head, { key: big(3), keyIsString: false, value: { kind: 'inline', bytes: patternBytes(rest, 1) } as StoredValue }];
      const { page, crc } = encodeLeaf(full, blockSize);
      assert.equal(dataOf(page).getUint32(AT.usedBytes, true), capacity, `B = ${blockSize}`);
      assert.deepEqual(plain(decodePage(page, expectation(crc, 0, blockSize))), plain({ kind: 'leaf', checkpointSequence: 5, entries: full }));
      const over = [...head, { key: big(3), keyIsString: false, value: { kind: 'inline', bytes: patternBytes(rest + 1, 1) } as StoredValue }];
      assert.throws(() => encodeLeaf(over, blockSize), RangeError, `B = ${blockSize}, one byte over`);
    }
  });

  it('refuses entries that break the rules with RangeError, leaving the target untouched', () => {
    const cases: [string, () => unknown][] = [
      ['no entries', () => encodeLeafPage(new Uint8Array(4096), stamp(), [])],
      ['keys out of order', () => encodeLeafPage(new Uint8Array(4096), stamp(), [entry('b'), entry('a')])],
      ['a repeated key', () => encodeLeafPage(new Uint8Array(4096), stamp(), [entry('a'), entry('a')])],
      ['a shorter key after its extension', () => encodeLeafPage(new Uint8Array(4096), stamp(), [entry('ab'), entry('a')])],
      ['an empty key', () => encodeLeafPage(new Uint8Array(4096), stamp(), [{ key: new Uint8Array(0), keyIsString: false, value: inline('') }])],
      ['a key over KEY_SIZE_MAX', () => encodeLeafPage(new Uint8Array(4096), stamp(), [{ key: new Uint8Array(KEY_SIZE_MAX + 1), keyIsString: false, value: inline('') }])],
      ['an extent value without extents', () => encodeLeafPage(new Uint8Array(4096), stamp(), [entry('a', { kind: 'extents', length: 1, crc: 0, extents: [] })])],
      ['a target that is not a page', () => encodeLeafPage(new Uint8Array(4095), stamp(), [entry('a')])],
      ['a 512-byte target (smaller than PAGE_SIZE_MIN)', () => encodeLeafPage(new Uint8Array(512), stamp(), [entry('a')])],
      ['a storeTag beyond u32', () => encodeLeafPage(new Uint8Array(4096), stamp(ADDRESS, 5, 2 ** 32), [entry('a')])],
      ['an address beyond 2^53', () => encodeLeafPage(new Uint8Array(4096), stamp(2 ** 53, 5), [entry('a')])],
      ['a negative sequence', () => encodeLeafPage(new Uint8Array(4096), stamp(ADDRESS, -1), [entry('a')])],
    ];
    for (const [what, encode] of cases) assert.throws(encode, RangeError, what);
    const target = new Uint8Array(4096).fill(0xee);
    assert.throws(() => encodeLeafPage(target, stamp(), [entry('a'), entry('b', { kind: 'extents', length: 1, crc: 0, extents: [{ startBlock: 200, blockCount: 0 }] })]), RangeError);
    assert.throws(() => encodeLeafPage(target, stamp(), [entry('a', inline('x'.repeat(5000)))]), RangeError);
    assert.ok(target.every((byte) => byte === 0xee), 'the target is untouched');
  });
});

describe('encodeBranchPage()', () => {
  it('writes the header and u64 block | u32 crc | u16 keyLength | separator per child, child 0 without one', () => {
    const page = new Uint8Array(4096).fill(0xee);
    const crc = encodeBranchPage(page, stamp(), 3, [child(200, undefined, 0xaabb_ccdd), child(0x1_0000_0208, 'gz', 7)]);
    const data = dataOf(page);
    assert.equal(crc, crc32c(page.subarray(8)));
    assert.deepEqual([page[AT.kind], page[AT.level], data.getUint16(AT.entryCount, true), data.getUint32(AT.usedBytes, true)], [PAGE_KIND_BRANCH, 3, 2, 14 + 16]);
    assert.equal(
      Buffer.from(page.subarray(48, 48 + 30)).toString('hex'),
      'c800000000000000' + 'ddccbbaa' + '0000' + '0802000001000000' + '07000000' + '0200' + '677a',
    );
    assert.ok(page.subarray(48 + 30).every((byte) => byte === 0));
  });

  it('produces the documented example: a level-1 root at block 12 over the example leaf and a leaf of "m"', () => {
    const leaf9 = new Uint8Array(4096);
    const leaf9Crc = encodeLeafPage(leaf9, { address: 9, checkpointSequence: 5, storeTag: 0x0102_0304 }, [entry('m', inline('yo'))]);
    assert.equal(leaf9Crc, 0x5091_1381);
    const page = new Uint8Array(4096);
    const crc = encodeBranchPage(page, { address: 12, checkpointSequence: 5, storeTag: 0x0102_0304 }, 1, [
      { block: 7, crc: EXAMPLE_LEAF_CRC, separator: undefined },
      { block: 9, crc: leaf9Crc, separator: utf8('m') },
    ]);
    assert.equal(crc, 0xf1db_3a7e);
    assert.deepEqual(page, hexdumpInDocs('Example: a branch page'), 'the hexdump in docs/format.md');
  });

  it('fills a page to exactly its capacity, and refuses one byte more with RangeError', () => {
    for (const blockSize of BLOCK_SIZES) {
      const capacity = pageCapacityBytes(pageSizeFor(blockSize));
      const pageBlocks = pageSizeFor(blockSize) / blockSize;
      const children: BranchChild[] = [child(200)];
      let used = branchChildBytes(0);
      // 1 KiB separators while more than one is left, then one that takes exactly the rest.
      for (let i = 1; capacity - used > branchChildBytes(KEY_SIZE_MAX); i++) {
        children.push({ block: 200 + i * pageBlocks, crc: i, separator: new Uint8Array(KEY_SIZE_MAX).fill(i) });
        used += branchChildBytes(KEY_SIZE_MAX);
      }
      const lastLength = capacity - used - branchChildBytes(0);
      assert.ok(lastLength >= 1 && lastLength <= KEY_SIZE_MAX);
      const last = (length: number): BranchChild => ({ block: 200 + (children.length + 1) * pageBlocks, crc: 1, separator: new Uint8Array(length).fill(0xff) });
      const { page, crc } = encodeBranch([...children, last(lastLength)], 1, blockSize);
      assert.equal(dataOf(page).getUint32(AT.usedBytes, true), capacity, `B = ${blockSize}`);
      const decoded = decodePage(page, expectation(crc, 1, blockSize));
      assert.equal(decoded.kind === 'branch' && decoded.children.length, children.length + 1);
      const overLength = lastLength + 1;
      if (overLength <= KEY_SIZE_MAX) assert.throws(() => encodeBranch([...children, last(overLength)], 1, blockSize), RangeError, `B = ${blockSize}, one byte over`);
      else assert.throws(() => encodeBranch([...children, last(lastLength), last(1)], 1, blockSize), RangeError, `B = ${blockSize}, one child over`);
    }
  });

  it('refuses children that break the rules with RangeError, leaving the target untouched', () => {
    const target = new Uint8Array(4096).fill(0xee);
    const cases: [string, number, BranchChild[]][] = [
      ['one child', 1, [child(200)]],
      ['child 0 with a separator', 1, [child(200, 'a'), child(201, 'b')]],
      ['child 1 without a separator', 1, [child(200), child(201)]],
      ['an empty separator', 1, [child(200), child(201, '')]],
      ['a separator over KEY_SIZE_MAX', 1, [child(200), { block: 201, crc: 0, separator: new Uint8Array(KEY_SIZE_MAX + 1) }]],
      ['separators out of order', 1, [child(200), child(201, 'b'), child(202, 'a')]],
      ['a repeated separator', 1, [child(200), child(201, 'b'), child(202, 'b')]],
      ['a negative block', 1, [child(-1), child(201, 'b')]],
      ['a block beyond 2^53', 1, [child(200), child(2 ** 53, 'b')]],
      ['a crc beyond u32', 1, [child(200, undefined, 2 ** 32), child(201, 'b')]],
      ['level 0', 0, sampleBranch()],
      [`level ${TREE_LEVELS_MAX}`, TREE_LEVELS_MAX, sampleBranch()],
      ['too many children to fit', 1, [child(200), ...Array.from({ length: 4 }, (_, i) => ({ block: 201 + i, crc: 0, separator: new Uint8Array(KEY_SIZE_MAX).fill(i + 1) }))]],
    ];
    for (const [what, level, children] of cases) assert.throws(() => encodeBranchPage(target, stamp(), level, children), RangeError, what);
    assert.ok(target.every((byte) => byte === 0xee), 'the target is untouched');
  });
});

describe('decodePage()', () => {
  it('round-trips random leaves at block sizes 512, 4096 and 65536: string and byte keys up to 1 KiB, inline, extent and raw values (property)', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        fc.constantFrom(...BLOCK_SIZES).chain((blockSize) => fc.tuple(fc.constant(blockSize), leafArbitrary(blockSize), fc.maxSafeNat())),
        ([blockSize, entries, checkpointSequence]) => {
          for (const e of entries) {
            seen.add(`B=${blockSize}`);
            seen.add(e.keyIsString ? 'string key' : 'byte key');
            if (e.key.length === KEY_SIZE_MAX) seen.add('1 KiB key');
            seen.add(e.value.kind === 'inline' ? 'inline' : e.value.raw === true ? 'raw extents' : 'extents');
          }
          const page = new Uint8Array(pageSizeFor(blockSize)).fill(0xa5);
          const crc = encodeLeafPage(page, stamp(ADDRESS, checkpointSequence), entries);
          const decoded = decodePage(page, expectation(crc, 0, blockSize));
          assert.deepEqual(plain(decoded), plain({ kind: 'leaf', checkpointSequence, entries }));
          const used = entries.reduce((sum, e) => sum + leafEntryBytes(e.key.length, e.value), 0);
          assert.equal(dataOf(page).getUint32(AT.usedBytes, true), used, 'leafEntryBytes is exact');
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 300 },
    );
    assert.deepEqual([...seen].sort(), ['1 KiB key', 'B=4096', 'B=512', 'B=65536', 'byte key', 'extents', 'inline', 'raw extents', 'string key'], 'the runs covered every kind of entry');
  });

  it('round-trips random branches at block sizes 512, 4096 and 65536, at every level (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...BLOCK_SIZES).chain((blockSize) => fc.tuple(fc.constant(blockSize), branchArbitrary(blockSize), fc.maxSafeNat())),
        ([blockSize, { level, children }, checkpointSequence]) => {
          const page = new Uint8Array(pageSizeFor(blockSize)).fill(0xa5);
          const crc = encodeBranchPage(page, stamp(ADDRESS, checkpointSequence), level, children);
          const decoded = decodePage(page, expectation(crc, level, blockSize));
          assert.deepEqual(plain(decoded), plain({ kind: 'branch', level, checkpointSequence, children }));
          const used = children.reduce((sum, c) => sum + branchChildBytes(c.separator?.length ?? 0), 0);
          assert.equal(dataOf(page).getUint32(AT.usedBytes, true), used, 'branchChildBytes is exact');
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 300 },
    );
  });

  it('returns keys, inline values and separators as views into the page', () => {
    const { page, crc } = encodeLeaf(sampleLeaf());
    const leaf = decodePage(page, expectation(crc, 0, 4096));
    assert.ok(leaf.kind === 'leaf');
    assert.equal(leaf.entries[0].key.buffer, page.buffer);
    assert.equal(leaf.entries[0].value.kind === 'inline' && leaf.entries[0].value.bytes.buffer, page.buffer);
    const branch = encodeBranch(sampleBranch());
    const decoded = decodePage(branch.page, expectation(branch.crc, 1, 4096));
    assert.ok(decoded.kind === 'branch');
    assert.equal(decoded.children[0].separator, undefined);
    assert.equal(decoded.children[1].separator?.buffer, branch.page.buffer);
  });

  it('accepts a child page and value extents that end exactly at the end of the store', () => {
    // B = 512: a page is 8 blocks, so the last page starts 8 blocks before the end.
    const blockSize = 512;
    const branch = encodeBranch([child(DATA_START), child(BLOCK_COUNT - 8, 'z')], 1, blockSize);
    assert.equal(decodePage(branch.page, expectation(branch.crc, 1, blockSize)).kind, 'branch');
    const leaf = encodeLeaf([entry('k', { kind: 'extents', length: 1024, crc: 0, extents: [{ startBlock: DATA_START, blockCount: 1 }, { startBlock: BLOCK_COUNT - 1, blockCount: 1 }] })], blockSize);
    assert.equal(decodePage(leaf.page, expectation(leaf.crc, 0, blockSize)).kind, 'leaf');
  });

  describe('tells each kind of damage apart', () => {
    it('bad magic: zeros, random bytes, another structure', () => {
      refused(new Uint8Array(4096), expectation(0, 0, 4096), /^bad magic \(not a tree page\)$/, 'zeros');
      refused(patternBytes(4096, 3), expectation(0, 0, 4096), /^bad magic/, 'random bytes');
      const { page, crc } = encodeLeaf(sampleLeaf());
      refused(tampered(page, (data) => data.setUint32(AT.magic, 0x4c415752, true)).page, expectation(crc, 0, 4096), /^bad magic/, 'a WAL block magic');
    });

    it('rot or a torn write: the stored crc is not the crc of the bytes, and is checked before anything else after the magic', () => {
      const { page, crc } = encodeLeaf(sampleLeaf());
      const older = encodeLeaf([entry('apple', { kind: 'inline', bytes: patternBytes(2000, 5) })]).page;
      const cases: [string, (page: Uint8Array) => void][] = [
        ['a bit in the crc', (p) => (p[AT.crc] ^= 1)],
        ['a bit in the address', (p) => (p[AT.address] ^= 1)],
        ['a bit in the tag', (p) => (p[AT.storeTag] ^= 0x80)],
        ['a bit in the level', (p) => (p[AT.level] ^= 1)],
        ['a bit in a key', (p) => (p[48 + 8] ^= 4)],
        ['a bit in the tail', (p) => (p[4095] ^= 1)],
        ['a torn write: only the first 512-byte sector of the page reached the disk', (p) => p.set(older.subarray(512), 512)],
      ];
      for (const [what, edit] of cases) {
        const damaged = page.slice();
        edit(damaged);
        refused(damaged, expectation(crc, 0, 4096), /^checksum mismatch \(stored 0x[0-9a-f]+, computed 0x[0-9a-f]+\)$/, what);
      }
    });

    it('a lost write: an intact older page whose crc is not the one the parent holds', () => {
      const older = encodeLeaf([entry('a')], 4096, stamp(ADDRESS, 4));
      const newer = encodeLeaf([entry('a'), entry('b')], 4096, stamp(ADDRESS, 5));
      const error = refused(older.page, expectation(newer.crc, 0, 4096), /^crc 0x[0-9a-f]+ is not the 0x[0-9a-f]+ its parent expects \(a lost write/);
      assert.ok(error.reason.includes(newer.crc.toString(16)));
    });

    it('a misdirected write: the page names another block, even when its crc is the expected one', () => {
      const elsewhere = encodeLeaf(sampleLeaf(), 4096, stamp(ADDRESS + 8));
      const here = encodeLeaf(sampleLeaf());
      refused(elsewhere.page, expectation(here.crc, 0, 4096), new RegExp(`^page of block ${ADDRESS + 8} read from block ${ADDRESS} \\(a misdirected write\\)$`), 'with the crc the parent holds');
      refused(elsewhere.page, expectation(elsewhere.crc, 0, 4096), /misdirected write/, 'with its own crc');
      const huge = tampered(here.page, (data) => data.setBigUint64(AT.address, 2n ** 64n - 1n, true));
      refused(huge.page, expectation(huge.crc, 0, 4096), /^page of block 2\^53 or more read from block/, 'an address beyond 2^53');
    });

    it('another store\'s page: the store tag differs', () => {
      const foreign = encodeLeaf(sampleLeaf(), 4096, stamp(ADDRESS, 5, 0xcafe_f00d));
      refused(foreign.page, expectation(foreign.crc, 0, 4096), /^store tag 0xcafef00d is not this store's 0x1020304 \(a page of another store\)$/);
    });

    it('a level other than the parent implies', () => {
      const leaf = encodeLeaf(sampleLeaf());
      refused(leaf.page, expectation(leaf.crc, 1, 4096), /^level 0, expected 1$/, 'a leaf where a level-1 branch belongs');
      const branch = encodeBranch(sampleBranch(), 2);
      refused(branch.page, expectation(branch.crc, 1, 4096), /^level 2, expected 1$/, 'a level-2 branch under a level-2 branch');
      refused(branch.page, expectation(branch.crc, 0, 4096), /^level 2, expected 0$/, 'a branch where a leaf belongs');
    });

    it('a kind inconsistent with the level, or unknown', () => {
      const leaf = encodeLeaf(sampleLeaf());
      const leveled = tampered(leaf.page, (_, p) => (p[AT.level] = 1));
      refused(leveled.page, expectation(leveled.crc, 1, 4096), /^a leaf at level 1 \(kind and level disagree\)$/);
      const branch = encodeBranch(sampleBranch());
      const flat = tampered(branch.page, (_, p) => (p[AT.level] = 0));
      refused(flat.page, expectation(flat.crc, 0, 4096), /^a branch at level 0 \(kind and level disagree\)$/);
      const unknown = tampered(leaf.page, (_, p) => (p[AT.kind] = 3));
      refused(unknown.page, expectation(unknown.crc, 0, 4096), /^unknown kind 3$/);
      const deep = tampered(branch.page, (_, p) => (p[AT.level] = TREE_LEVELS_MAX));
      refused(deep.page, expectation(deep.crc, TREE_LEVELS_MAX - 1, 4096), /^level 32 is deeper than any tree/);
    });

    it('a sequence of 2^53 or more', () => {
      const { page } = encodeLeaf(sampleLeaf());
      const huge = tampered(page, (data) => data.setBigUint64(AT.checkpointSequence, 2n ** 53n, true));
      refused(huge.page, expectation(huge.crc, 0, 4096), /^checkpointSequence exceeds 2\^53$/);
    });

    it('entryCount or usedBytes inconsistent with the entries', () => {
      const leaf = encodeLeaf(sampleLeaf());
      const used = dataOf(leaf.page).getUint32(AT.usedBytes, true);
      const branch = encodeBranch(sampleBranch());
      const branchUsed = dataOf(branch.page).getUint32(AT.usedBytes, true);
      const cases: [string, { page: Uint8Array; crc: number }, number, RegExp][] = [
        ['leaf entryCount one more', tampered(leaf.page, (data) => data.setUint16(AT.entryCount, 4, true)), 0, /^record truncated at byte \d+ of \d+$/],
        ['leaf entryCount one less', tampered(leaf.page, (data) => data.setUint16(AT.entryCount, 2, true)), 0, /^\d+ bytes after the 2 entries \(usedBytes \d+\)$/],
        ['leaf usedBytes one less', tampered(leaf.page, (data) => data.setUint32(AT.usedBytes, used - 1, true)), 0, /^record truncated at byte \d+ of \d+$/],
        ['leaf usedBytes one more', tampered(leaf.page, (data) => data.setUint32(AT.usedBytes, used + 1, true)), 0, /^1 byte after the 3 entries/],
        ['leaf usedBytes beyond the page', tampered(leaf.page, (data) => data.setUint32(AT.usedBytes, 4096 - 47, true)), 0, /^usedBytes 4049 exceeds the page's 4048 bytes of entries$/],
        ['branch entryCount one more', tampered(branch.page, (data) => data.setUint16(AT.entryCount, 5, true)), 1, /^child 4 truncated at byte \d+ of \d+/],
        ['branch entryCount one less', tampered(branch.page, (data) => data.setUint16(AT.entryCount, 3, true)), 1, /^15 bytes after the 3 entries/],
        ['branch usedBytes one less', tampered(branch.page, (data) => data.setUint32(AT.usedBytes, branchUsed - 1, true)), 1, /^child 3 truncated/],
        ['branch usedBytes cuts a child header', tampered(branch.page, (data) => data.setUint32(AT.usedBytes, branchUsed - 10, true)), 1, /^child 3 truncated/],
      ];
      for (const [what, damaged, level, reason] of cases) refused(damaged.page, expectation(damaged.crc, level, 4096), reason, what);
    });

    it('keys or separators not strictly ascending', () => {
      const records = (keys: string[]): Uint8Array => {
        const writer = new ByteWriter();
        for (const key of keys) writePut(writer, utf8(key), true, inline('v'));
        return writer.bytes().slice();
      };
      for (const [what, keys, index] of [
        ['descending', ['b', 'a'], 1],
        ['repeated', ['a', 'b', 'b'], 2],
        ['a key after its extension', ['a', 'ab', 'a'], 2],
      ] as [string, string[], number][]) {
        const leaf = assemble({ kind: PAGE_KIND_LEAF, level: 0, entryCount: keys.length, entries: records(keys) });
        refused(leaf.page, expectation(leaf.crc, 0, 4096), new RegExp(`^keys not strictly ascending at record ${index}$`), what);
      }
      for (const [what, separators, index] of [
        ['descending', ['b', 'a'], 2],
        ['repeated', ['a', 'a'], 2],
        ['shorter after longer', ['ab', 'a'], 2],
      ] as [string, string[], number][]) {
        const entries = branchEntries([{ block: 200, separator: new Uint8Array(0) }, ...separators.map((s, i) => ({ block: 201 + i, separator: utf8(s) }))]);
        const branch = assemble({ kind: PAGE_KIND_BRANCH, level: 1, entryCount: separators.length + 1, entries });
        refused(branch.page, expectation(branch.crc, 1, 4096), new RegExp(`^separators not strictly ascending at child ${index}$`), what);
      }
    });

    it('separators child 0 must not have and the others must have, within KEY_SIZE_MAX', () => {
      const cases: [string, { block: number; separator: Uint8Array }[], RegExp][] = [
        ['child 0 with a separator', [{ block: 200, separator: utf8('a') }, { block: 201, separator: utf8('b') }], /^child 0 has a separator of 1 byte \(it has none\)$/],
        ['child 1 without one', [{ block: 200, separator: new Uint8Array(0) }, { block: 201, separator: new Uint8Array(0) }], /^child 1 has no separator$/],
        ['a separator of KEY_SIZE_MAX + 1 bytes', [{ block: 200, separator: new Uint8Array(0) }, { block: 201, separator: new Uint8Array(KEY_SIZE_MAX + 1) }], /^child 1 has a separator of 1025 bytes \(1 to 1024\)$/],
      ];
      for (const [what, children, reason] of cases) {
        const branch = assemble({ kind: PAGE_KIND_BRANCH, level: 1, entryCount: children.length, entries: branchEntries(children) });
        refused(branch.page, expectation(branch.crc, 1, 4096), reason, what);
      }
    });

    it('children must be pages of their own: none shared, none the branch itself (found by a review)', () => {
      const cases: [string, { block: number; separator: Uint8Array }[], RegExp][] = [
        ['two children at one block', [{ block: 200, separator: new Uint8Array(0) }, { block: 300, separator: utf8('b') }, { block: 200, separator: utf8('c') }], /^two children are at block 200: a page has one parent$/],
        ['a child that is the branch', [{ block: 200, separator: new Uint8Array(0) }, { block: ADDRESS, separator: utf8('b') }], new RegExp(`^child 1 at block ${ADDRESS} is this page$`)],
      ];
      for (const [what, children, reason] of cases) {
        const branch = assemble({ kind: PAGE_KIND_BRANCH, level: 1, entryCount: children.length, entries: branchEntries(children) });
        refused(branch.page, expectation(branch.crc, 1, 4096), reason, what);
      }
    });

    it('records a leaf must not hold: DELETE, unknown types, raw inline values', () => {
      const writer = new ByteWriter();
      writePut(writer, utf8('a'), true, inline('v'));
      writeDelete(writer, utf8('b'), true);
      const withDelete = assemble({ kind: PAGE_KIND_LEAF, level: 0, entryCount: 2, entries: writer.bytes().slice() });
      refused(withDelete.page, expectation(withDelete.crc, 0, 4096), /^record 1 is a DELETE \(a leaf holds only entries\)$/);
      const unknownType = assemble({ kind: PAGE_KIND_LEAF, level: 0, entryCount: 1, entries: Uint8Array.from([9, 0, 1, 0, 0x61]) });
      refused(unknownType.page, expectation(unknownType.crc, 0, 4096), /^record 0 has unknown type 9$/);
      const rawInline = assemble({ kind: PAGE_KIND_LEAF, level: 0, entryCount: 1, entries: Uint8Array.from([RECORD_PUT_INLINE, 3, 1, 0, 0, 0, 0, 0, 0x61]) });
      refused(rawInline.page, expectation(rawInline.crc, 0, 4096), /^record 0 has unknown key flags 3$/);
    });

    it('non-zero reserved header bytes or bytes after the entries', () => {
      for (const { page, level } of [{ ...encodeLeaf(sampleLeaf()), level: 0 }, { ...encodeBranch(sampleBranch()), level: 1 }]) {
        const used = dataOf(page).getUint32(AT.usedBytes, true);
        for (let offset = AT.reserved; offset < PAGE_HEADER_SIZE; offset++) {
          const damaged = tampered(page, (_, p) => (p[offset] = 0x01));
          refused(damaged.page, expectation(damaged.crc, level, 4096), /^reserved header bytes are not zero$/, `byte ${offset}`);
        }
        for (const offset of [48 + used, 48 + used + 1, 2048, 4095]) {
          const damaged = tampered(page, (_, p) => (p[offset] = 0x80));
          refused(damaged.page, expectation(damaged.crc, level, 4096), /^bytes after the entries are not zero$/, `byte ${offset}`);
        }
      }
    });

    it('a child page or a value extent outside the data region', () => {
      // B = 512, so a child page takes 8 blocks.
      const blockSize = 512;
      const branchCases: [string, number | bigint, RegExp][] = [
        ['before the data region', DATA_START - 1, /^child 1 at block 99 \(8 blocks\) lies outside the data region \[100, 1099511627776\)$/],
        ['its page runs past the end of the store', BLOCK_COUNT - 7, /^child 1 at block 1099511627769 \(8 blocks\) lies outside/],
        ['at the end of the store', BLOCK_COUNT, /^child 1 at block \d+ \(8 blocks\) lies outside/],
        ['beyond 2^53', 2n ** 63n, /^child 1 at block 2\^53 or more \(8 blocks\) lies outside/],
      ];
      for (const [what, block, reason] of branchCases) {
        const entries = branchEntries([{ block: 200, separator: new Uint8Array(0) }, { block, separator: utf8('m') }]);
        const branch = assemble({ kind: PAGE_KIND_BRANCH, level: 1, entryCount: 2, entries }, blockSize);
        refused(branch.page, expectation(branch.crc, 1, blockSize), reason, what);
      }
      const extentCases: [string, number, number, RegExp][] = [
        ['before the data region', DATA_START - 1, 1, /^record 0 extent 1 \(99\+1\) lies outside the data region \[100, 1099511627776\)$/],
        ['running past the end of the store', BLOCK_COUNT - 1, 2, /^record 0 extent 1 \(1099511627775\+2\) lies outside/],
      ];
      for (const [what, startBlock, blockCount, reason] of extentCases) {
        const value: StoredValue = { kind: 'extents', length: 512 * (blockCount + 1), crc: 0, extents: [{ startBlock: 500, blockCount: 1 }, { startBlock, blockCount }] };
        const leaf = encodeLeaf([entry('k', value)], blockSize);
        refused(leaf.page, expectation(leaf.crc, 0, blockSize), reason, what);
      }
    });

    it('too few entries: an empty leaf, a branch of one child', () => {
      const empty = assemble({ kind: PAGE_KIND_LEAF, level: 0, entryCount: 0, entries: new Uint8Array(0) });
      refused(empty.page, expectation(empty.crc, 0, 4096), /^too few entries: an empty leaf/);
      const lonely = assemble({ kind: PAGE_KIND_BRANCH, level: 1, entryCount: 1, entries: branchEntries([{ block: 200, separator: new Uint8Array(0) }]) });
      refused(lonely.page, expectation(lonely.crc, 1, 4096), /^too few entries: a branch of 1 child \(at least 2\)$/);
    });
  });

  it('never decodes a page with any one byte changed: it throws a FormatError (property)', () => {
    const pages = BLOCK_SIZES.flatMap((blockSize) => [
      { blockSize, level: 0, ...encodeLeaf(sampleLeaf(), blockSize) },
      { blockSize, level: 1, ...encodeBranch(sampleBranch(), 1, blockSize) },
    ]);
    fc.assert(
      fc.property(fc.nat(pages.length - 1), fc.nat(), fc.integer({ min: 1, max: 255 }), (which, position, xor) => {
        const { blockSize, level, page, crc } = pages[which];
        const damaged = page.slice();
        const offset = position % page.length;
        damaged[offset] ^= xor;
        throwsFormatError(() => decodePage(damaged, expectation(crc, level, blockSize)), { structure: 'page', blockIndex: ADDRESS, reason: offset < 4 ? /^bad magic/ : /^checksum mismatch/ }, `byte ${offset} ^ ${xor}`);
      }),
      { seed: PROPERTY_SEED, numRuns: 3000 },
    );
  });

  it('never throws anything but a FormatError on random damage behind a re-sealed crc, and what it returns re-encodes to the same page (property)', () => {
    const pages = [
      { level: 0, ...encodeLeaf(sampleLeaf()) },
      { level: 1, ...encodeBranch(sampleBranch()) },
    ];
    const outcomes = { refused: 0, decoded: 0 };
    fc.assert(
      fc.property(fc.nat(1), fc.array(fc.tuple(fc.integer({ min: 8, max: 300 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (which, edits) => {
        const { level, page } = pages[which];
        const damaged = page.slice();
        for (const [offset, xor] of edits) damaged[offset] ^= xor;
        const crc = resealPage(damaged);
        let decoded: DecodedPage;
        try {
          decoded = decodePage(damaged, expectation(crc, level, 4096));
        } catch (error) {
          assert.ok(error instanceof FormatError, `expected a FormatError, got ${String(error)}`);
          assert.equal(error.blockIndex, ADDRESS);
          outcomes.refused++;
          return;
        }
        outcomes.decoded++;
        // A valid page after all (a changed key or value byte): it is exactly what it says.
        const again = new Uint8Array(4096);
        const pageStamp = stamp(ADDRESS, decoded.checkpointSequence);
        const againCrc = decoded.kind === 'leaf' ? encodeLeafPage(again, pageStamp, decoded.entries) : encodeBranchPage(again, pageStamp, decoded.level, decoded.children);
        assert.equal(againCrc, crc);
        assert.deepEqual(again, damaged);
      }),
      { seed: PROPERTY_SEED, numRuns: 2000 },
    );
    assert.ok(outcomes.refused > 0 && outcomes.decoded > 0, `both outcomes occurred: ${JSON.stringify(outcomes)}`);
  });
});

// --- The documented example ---------------------------------------------------------------------

const EXAMPLE_LEAF_CRC = 0x5a5c3f7b;
/** Bytes 0x00..0x6b of the example leaf; the rest of its 4096 bytes is zero. */
const EXAMPLE_LEAF_HEX =
  '52504147' + '7b3f5c5a' + '0700000000000000' + '0500000000000000' + '04030201' + '01' + '00' + '0200' + '3c000000' + '000000000000000000000000' +
  '01010100' + '02000000' + '61' + '6869' +
  '02010500' + '8813000000000000' + '22c3df82' + '02000000' + '70686f746f' + '2c01000000000000' + '01000000' + '3601000000000000' + '01000000';

function exampleLeaf(): { page: Uint8Array; crc: number } {
  const page = new Uint8Array(4096);
  const crc = encodeLeafPage(page, { address: 7, checkpointSequence: 5, storeTag: 0x0102_0304 }, [
    entry('a', inline('hi')),
    entry('photo', { kind: 'extents', length: 5000, crc: 0x82df_c322, extents: [{ startBlock: 300, blockCount: 1 }, { startBlock: 310, blockCount: 1 }] }),
  ]);
  return { page, crc };
}


// --- Encoding from key strings (the engine's leaves and branches) ------------------------------

/** A key's bytes as the engine's key string: one latin1 char per byte. */
function keyStringOf(key: Uint8Array): string {
  return Buffer.from(key).toString('latin1');
}

/** The engine's form of a leaf entry: an inline value is its bytes. */
function slotOf(e: LeafEntry): LeafSlot {
  return { isString: e.keyIsString, value: e.value.kind === 'inline' ? e.value.bytes : e.value };
}

/** What encodeLeafPageOfKeyStrings needs of a leaf: its keys as strings and its slots, in one list (so edits keep them paired). */
interface EngineEntry {
  keyString: string;
  slot: LeafSlot;
  entry: LeafEntry;
}

function engineEntries(entries: readonly LeafEntry[]): EngineEntry[] {
  return entries.map((entry) => ({ keyString: keyStringOf(entry.key), slot: slotOf(entry), entry }));
}

/** Encodes `entries` the engine's way (with `basis`), checks the bytes and crc against encodeLeafPage's, and returns the basis they make. */
function encodesLikeTheReference(blockSize: number, entries: readonly EngineEntry[], basis?: LeafBasis): LeafBasis {
  const reference = new Uint8Array(pageSizeFor(blockSize)).fill(0xa5);
  const referenceCrc = encodeLeafPage(reference, stamp(), entries.map((e) => e.entry));
  const page = new Uint8Array(pageSizeFor(blockSize)).fill(0x5a);
  const keyStrings = entries.map((e) => e.keyString);
  const slots = entries.map((e) => e.slot);
  const crc = encodeLeafPageOfKeyStrings(page, stamp(), keyStrings, slots, basis);
  assert.equal(crc, referenceCrc, 'the same crc');
  assert.ok(Buffer.from(page).equals(reference), 'the same page, byte for byte');
  const recordStarts = [0];
  for (const e of entries) recordStarts.push(recordStarts[recordStarts.length - 1]! + leafEntryBytes(e.entry.key.length, e.entry.value));
  const offset = recordStarts[entries.length]!;
  return { keyStrings, slots, records: page.slice(PAGE_HEADER_SIZE, PAGE_HEADER_SIZE + offset), recordStarts };
}

describe('encodeLeafPageOfKeyStrings()', () => {
  it("writes encodeLeafPage's page and crc for random leaves at block sizes 512, 4096 and 65536 (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...BLOCK_SIZES).chain((blockSize) => fc.tuple(fc.constant(blockSize), leafArbitrary(blockSize))),
        ([blockSize, entries]) => {
          encodesLikeTheReference(blockSize, engineEntries(entries));
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 300 },
    );
  });

  it('encodes by difference from a basis to the same page: records kept, given new values, inserted and deleted, and a piece of the basis (property)', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        fc.constantFrom(...BLOCK_SIZES).chain((blockSize) =>
          fc.tuple(
            fc.constant(blockSize),
            leafArbitrary(blockSize),
            leafArbitrary(blockSize),
            fc.array(fc.constantFrom('keep', 'keep', 'keep', 'delete', 'new slot', 'new value'), { minLength: 60, maxLength: 60 }),
            fc.nat(),
            fc.nat(),
          ),
        ),
        ([blockSize, basisEntries, inserted, edits, pieceStart, pieceLength]) => {
          const before = engineEntries(basisEntries);
          const basis = encodesLikeTheReference(blockSize, before);
          // Edit the basis leaf as the tree would: entries kept are the same objects.
          let after: EngineEntry[] = [];
          before.forEach((e, i) => {
            const edit = edits[i]!;
            seen.add(edit);
            if (edit === 'keep') after.push(e);
            // The same bytes in another slot object: encoded afresh, to the same record.
            else if (edit === 'new slot') after.push({ ...e, slot: { ...e.slot } });
            else if (edit === 'new value') {
              const entry: LeafEntry = { ...e.entry, value: { kind: 'inline', bytes: Uint8Array.of(i, 1, 2) } };
              after.push({ keyString: e.keyString, slot: slotOf(entry), entry });
            }
          });
          const keys = new Set(after.map((e) => e.keyString));
          for (const e of engineEntries(inserted)) if (!keys.has(e.keyString) && !before.some((b) => b.keyString === e.keyString)) after.push(e);
          after.sort((a, b) => (a.keyString < b.keyString ? -1 : a.keyString > b.keyString ? 1 : 0));
          // A piece of it, as a split makes.
          if (pieceStart % 3 === 0 && after.length > 1) {
            seen.add('piece');
            const start = pieceStart % after.length;
            after = after.slice(start, start + 1 + (pieceLength % (after.length - start)));
          }
          const capacity = pageCapacityBytes(pageSizeFor(blockSize));
          let used = 0;
          after = after.filter((e) => (used += leafEntryBytes(e.entry.key.length, e.entry.value)) <= capacity);
          fc.pre(after.length >= 1);
          encodesLikeTheReference(blockSize, after, basis);
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 300 },
    );
    assert.deepEqual([...seen].sort(), ['delete', 'keep', 'new slot', 'new value', 'piece'], 'the runs covered every kind of edit');
  });

  it('refuses what encodeLeafPage refuses, and a key string with a char above 0xff, leaving the target untouched', () => {
    const target = new Uint8Array(4096).fill(0xee);
    const slot: LeafSlot = { isString: true, value: utf8('v') };
    const cases: [string, string[], LeafSlot[]][] = [
      ['no records', [], []],
      ['keys and slots differ in count', ['a', 'b'], [slot]],
      ['keys not ascending', ['b', 'a'], [slot, slot]],
      ['a repeated key', ['a', 'a'], [slot, slot]],
      ['an empty key', [''], [slot]],
      ['a key over KEY_SIZE_MAX', ['k'.repeat(KEY_SIZE_MAX + 1)], [slot]],
      ['a char above 0xff', ['a\u0100'], [slot]],
      ['more than a page', ['a', 'b'], [{ isString: false, value: new Uint8Array(2100) }, { isString: false, value: new Uint8Array(2100) }]],
      ['an extent value without extents', ['a'], [{ isString: false, value: { kind: 'extents', length: 0, crc: 0, extents: [] } }]],
      // A reviewer's case: the length was first refused by writeU64, with the page's header already written.
      ['an extent value of length -1 after an inline record', ['a', 'b'], [slot, { isString: true, value: { kind: 'extents', length: -1, crc: 0, extents: [{ startBlock: 1, blockCount: 1 }] } }]],
    ];
    for (const [what, keyStrings, slots] of cases) assert.throws(() => encodeLeafPageOfKeyStrings(target, stamp(), keyStrings, slots), RangeError, what);
    assert.ok(target.every((byte) => byte === 0xee), 'the target is untouched');
  });
});

describe('encodeLeafPageOfEdits()', () => {
  it("writes encodeLeafPage's page and crc for a page's records with random edits on top: kept, deleted, new values, inserted (property)", () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        fc.constantFrom(...BLOCK_SIZES).chain((blockSize) =>
          fc.tuple(
            fc.constant(blockSize),
            leafArbitrary(blockSize),
            leafArbitrary(blockSize),
            fc.array(fc.constantFrom('keep', 'keep', 'keep', 'delete', 'new slot', 'new value'), { minLength: 60, maxLength: 60 }),
          ),
        ),
        ([blockSize, basisEntries, inserted, kinds]) => {
          const before = engineEntries(basisEntries);
          const basis = encodesLikeTheReference(blockSize, before);
          const beforeKeys = new Set(before.map((e) => e.keyString));
          // The leaf after the edits, and the edits themselves (key -> slot, or undefined: deleted).
          let after: EngineEntry[] = [];
          const edited = new Map<string, LeafSlot | undefined>();
          before.forEach((e, i) => {
            const kind = kinds[i]!;
            seen.add(kind);
            if (kind === 'keep') after.push(e);
            else if (kind === 'delete') edited.set(e.keyString, undefined);
            else {
              const entry: LeafEntry = kind === 'new slot' ? e.entry : { ...e.entry, value: { kind: 'inline', bytes: Uint8Array.of(i, 1, 2) } };
              const changed = { keyString: e.keyString, slot: slotOf(entry), entry };
              after.push(changed);
              edited.set(e.keyString, changed.slot);
            }
          });
          for (const e of engineEntries(inserted)) {
            if (beforeKeys.has(e.keyString) || edited.has(e.keyString)) continue;
            seen.add('insert');
            after.push(e);
            edited.set(e.keyString, e.slot);
          }
          after.sort((a, b) => (a.keyString < b.keyString ? -1 : a.keyString > b.keyString ? 1 : 0));
          // What does not fit the page is left out: a basis record so becomes a delete, an insert is dropped.
          const capacity = pageCapacityBytes(pageSizeFor(blockSize));
          let used = 0;
          const fits = after.filter((e) => (used += leafEntryBytes(e.entry.key.length, e.entry.value)) <= capacity);
          for (const e of after.slice(fits.length)) {
            if (beforeKeys.has(e.keyString)) edited.set(e.keyString, undefined);
            else edited.delete(e.keyString);
          }
          after = fits;
          fc.pre(after.length >= 1);
          const editKeys = [...edited.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          const reference = new Uint8Array(pageSizeFor(blockSize)).fill(0xa5);
          const referenceCrc = encodeLeafPage(reference, stamp(), after.map((e) => e.entry));
          const page = new Uint8Array(pageSizeFor(blockSize)).fill(0x5a);
          const crc = encodeLeafPageOfEdits(page, stamp(), basis.records, basis.recordStarts, { keyStrings: editKeys, slots: editKeys.map((key) => edited.get(key)) });
          assert.equal(crc, referenceCrc, 'the same crc');
          assert.ok(Buffer.from(page).equals(reference), 'the same page, byte for byte');
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 400 },
    );
    assert.deepEqual([...seen].sort(), ['delete', 'insert', 'keep', 'new slot', 'new value'], 'the runs covered every kind of edit');
  });

  it('refuses edits that delete a key the records lack, are not ascending, empty the leaf or overfill it, leaving the target untouched', () => {
    const before = engineEntries([entry('b'), entry('d')]);
    const basis = encodesLikeTheReference(4096, before);
    const target = new Uint8Array(4096).fill(0xee);
    const slot: LeafSlot = { isString: true, value: utf8('v') };
    const cases: [string, string[], (LeafSlot | undefined)[]][] = [
      ['a delete of a key the records lack', ['c'], [undefined]],
      ['edits not ascending', ['c', 'a'], [slot, slot]],
      ['a repeated edit', ['c', 'c'], [slot, slot]],
      ['keys and slots differ in count', ['c'], []],
      ['every record deleted', ['b', 'd'], [undefined, undefined]],
      ['a char above 0xff', ['c\u0100'], [slot]],
      ['more than a page', ['a', 'c'], [{ isString: false, value: new Uint8Array(2100) }, { isString: false, value: new Uint8Array(2100) }]],
    ];
    for (const [what, keyStrings, slots] of cases) {
      assert.throws(() => encodeLeafPageOfEdits(target, stamp(), basis.records, basis.recordStarts, { keyStrings, slots }), RangeError, what);
    }
    assert.ok(target.every((byte) => byte === 0xee), 'the target is untouched');
  });
});

describe('writeLeafRecordAt()', () => {
  it("lays records out as encodeLeafPage does: records written one after another are that page's entries (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...BLOCK_SIZES).chain((blockSize) => fc.tuple(fc.constant(blockSize), leafArbitrary(blockSize))),
        ([blockSize, entries]) => {
          const pageSize = pageSizeFor(blockSize);
          const reference = new Uint8Array(pageSize);
          encodeLeafPage(reference, stamp(), entries);
          const records = new Uint8Array(pageSize).fill(0x5a);
          let offset = PAGE_HEADER_SIZE;
          for (const e of engineEntries(entries)) {
            const end = writeLeafRecordAt(records, offset, e.keyString, e.slot);
            assert.equal(end - offset, leafEntryBytes(e.entry.key.length, e.entry.value), 'the bytes leafEntryBytes measures');
            offset = end;
          }
          assert.ok(Buffer.from(records.subarray(PAGE_HEADER_SIZE, offset)).equals(reference.subarray(PAGE_HEADER_SIZE, offset)), 'the same records, byte for byte');
          assert.equal(dataOf(reference).getUint32(AT.usedBytes, true), offset - PAGE_HEADER_SIZE);
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 200 },
    );
  });

  it('refuses a key string that is not one, an invalid extent value, or a record past the end, leaving the target untouched', () => {
    const target = new Uint8Array(64).fill(0xee);
    const slot: LeafSlot = { isString: true, value: utf8('v') };
    const cases: [string, () => number][] = [
      ['an empty key', () => writeLeafRecordAt(target, 0, '', slot)],
      ['a char above 0xff', () => writeLeafRecordAt(target, 0, 'a\u0100', slot)],
      ['a key of KEY_SIZE_MAX + 1 bytes', () => writeLeafRecordAt(new Uint8Array(4096), 0, 'k'.repeat(KEY_SIZE_MAX + 1), slot)],
      ['an extent value of no extents', () => writeLeafRecordAt(target, 0, 'a', { isString: false, value: { kind: 'extents', length: 0, crc: 0, extents: [] } })],
      ['a record ending past the target', () => writeLeafRecordAt(target, 60, 'a', slot)],
      ['a negative offset', () => writeLeafRecordAt(target, -1, 'a', slot)],
    ];
    for (const [what, write] of cases) assert.throws(write, RangeError, what);
    assert.ok(target.every((byte) => byte === 0xee), 'the target is untouched');
  });
});

describe('encodeBranchPageOfKeyStrings()', () => {
  it("writes encodeBranchPage's page and crc for random branches at block sizes 512, 4096 and 65536 (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...BLOCK_SIZES).chain((blockSize) => fc.tuple(fc.constant(blockSize), branchArbitrary(blockSize))),
        ([blockSize, { level, children }]) => {
          const reference = new Uint8Array(pageSizeFor(blockSize)).fill(0xa5);
          const referenceCrc = encodeBranchPage(reference, stamp(), level, children);
          const page = new Uint8Array(pageSizeFor(blockSize)).fill(0x5a);
          const separators = children.slice(1).map((c) => keyStringOf(c.separator!));
          const crc = encodeBranchPageOfKeyStrings(page, stamp(), level, separators, children.map(({ block, crc }) => ({ block, crc })));
          assert.equal(crc, referenceCrc);
          assert.ok(Buffer.from(page).equals(reference), 'the same page, byte for byte');
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 300 },
    );
  });

  it('refuses what encodeBranchPage refuses, and a separator with a char above 0xff, leaving the target untouched', () => {
    const target = new Uint8Array(4096).fill(0xee);
    const two = [
      { block: 200, crc: 1 },
      { block: 208, crc: 2 },
    ];
    const cases: [string, number, string[], { block: number; crc: number }[]][] = [
      ['level 0', 0, ['m'], two],
      ['one child', 1, [], two.slice(0, 1)],
      ['separators and children differ in count', 1, ['m', 'n'], two],
      ['an empty separator', 1, [''], two],
      ['a char above 0xff', 1, ['\u0100'], two],
      ['separators not ascending', 1, ['n', 'm'], [...two, { block: 216, crc: 3 }]],
      ['a crc that is not a u32', 1, ['m'], [two[0]!, { block: 208, crc: 2 ** 32 }]],
      ['a negative block', 1, ['m'], [two[0]!, { block: -1, crc: 2 }]],
    ];
    for (const [what, level, separators, children] of cases) assert.throws(() => encodeBranchPageOfKeyStrings(target, stamp(), level, separators, children), RangeError, what);
    assert.ok(target.every((byte) => byte === 0xee), 'the target is untouched');
  });
});
