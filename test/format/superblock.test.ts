// Superblock (format 2): one 512-byte sector per copy, four copies — slots 0
// and 1 at the head, 2 and 3 right after the WAL. A valid copy round-trips
// exactly; every kind of damage is refused with a FormatError that names the
// superblock and the block the copy was read from, so open can fall back to
// another copy. An intact superblock of format 1 is refused with a
// FormatVersionError instead: the store is not damaged, only older. Damage
// that a checksum would catch is re-sealed with a fresh checksum where a
// test targets a later check, so that check alone must catch it.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import {
  BLOCK_SIZE_MAX,
  BLOCK_SIZE_MIN,
  FORMAT_VERSION,
  FREE_SET_EXTENTS_MAX,
  SEQUENCE_LIMIT,
  SUPERBLOCK_MAGIC,
  SUPERBLOCK_SIZE,
  VALUE_ENCODING_IDS,
} from '../../format/constants.js';
import { crc32c } from '../../format/crc32c.js';
import type { Extent } from '../../format/extent.js';
import { FormatError, FormatVersionError } from '../../format/format_error.js';
import { frameBlockCount } from '../../format/frame.js';
import {
  decodeSuperblock,
  encodeSuperblock,
  freeSetPayloadBytes,
  hasSuperblockMagic,
  superblockSlotBlock,
  superblockSlotsFor,
  type Superblock,
} from '../../format/superblock.js';
import { patternBytes, PROPERTY_SEED, resealSuperblock, throwsFormatError, withBitFlipped } from './helpers.js';

// The byte layout (docs/format.md § Superblock), stated here independently
// of format/superblock.ts so a change to either side is caught.
const AT = {
  magic: 0,
  version: 8,
  blockSize: 12,
  blockCount: 16,
  walStart: 24,
  walCount: 32,
  dataStart: 40,
  generation: 48,
  storeTag: 56,
  flags: 60,
  checkpointSeq: 64,
  walReplay: 72,
  freeSetLength: 80,
  freeSetBlocks: 88,
  freeSetExtentCount: 92,
  freeSetExtents: 96,
  rootBlock: 224,
  rootCrc: 232,
  rootLevel: 236,
  valueEncoding: 237,
  reservedShort: 238,
  keyCount: 240,
  reserved: 248,
  crc: 508,
} as const;
const EXTENT_ENTRY_SIZE = 16;
const EXTENT_SLOT_COUNT = 8;
const U64_FIELDS = ['blockCount', 'walStart', 'walCount', 'dataStart', 'generation', 'checkpointSeq', 'walReplay', 'freeSetLength', 'rootBlock', 'keyCount'] as const;
/** Tree pages are max(B, 4096) bytes (docs/format.md § Tree pages (format 2)). */
const PAGE_SIZE_MIN = 4096;

/** The block a copy is "read from" in these tests, so errors must name 1. */
const SLOT = 1;

/**
 * B = 512, so that the free set takes several blocks and a page eight: a
 * 64-block WAL (blocks 2..65), the backup pair in 66 and 67, 10 000 data
 * blocks from 68. The free set is 16 + 1250 = 1266 bytes, three frame blocks
 * of 480 payload bytes, in two extents named out of block order.
 */
function sampleSuperblock(): Superblock {
  return {
    formatVersion: FORMAT_VERSION,
    blockSize: 512,
    blockCount: 10_068,
    walStartBlock: 2,
    walBlockCount: 64,
    dataStartBlock: 68,
    generation: 7,
    storeTag: 0xcafef00d,
    checkpointSeq: 41,
    walReplayBlock: 10,
    freeSetByteLength: 1266,
    freeSetBlockCount: 3,
    freeSetExtents: [
      { startBlock: 900, blockCount: 1 },
      { startBlock: 500, blockCount: 2 },
    ],
    treeRoot: { block: 1000, crc: 0xdeadbeef, level: 2 },
    keyCount: 12_345,
    valueEncodingId: VALUE_ENCODING_IDS.json,
    clean: false,
  };
}

/** The sample before its first checkpoint: no free set, no tree. */
function freshSuperblock(): Superblock {
  return {
    ...sampleSuperblock(),
    generation: 1,
    checkpointSeq: 0,
    walReplayBlock: 0,
    freeSetByteLength: 0,
    freeSetBlockCount: 0,
    freeSetExtents: [],
    treeRoot: undefined,
    keyCount: 0,
  };
}

function encoded(superblock: Superblock = sampleSuperblock()): Uint8Array {
  const bytes = new Uint8Array(SUPERBLOCK_SIZE);
  encodeSuperblock(superblock, bytes);
  return bytes;
}

/** `base` (the sample by default), edited through `edit`, with a checksum that matches the edit. */
function tampered(edit: (data: DataView, bytes: Uint8Array) => void, base: Superblock = sampleSuperblock()): Uint8Array {
  const bytes = encoded(base);
  edit(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes);
  return resealSuperblock(bytes);
}

function setU64(data: DataView, offset: number, value: bigint | number): void {
  data.setBigUint64(offset, BigInt(value), true);
}

function setExtent(data: DataView, index: number, startBlock: number | bigint, blockCount: number | bigint): void {
  setU64(data, AT.freeSetExtents + index * EXTENT_ENTRY_SIZE, startBlock);
  setU64(data, AT.freeSetExtents + index * EXTENT_ENTRY_SIZE + 8, blockCount);
}

function refused(bytes: Uint8Array, reason: RegExp, what?: string): FormatError {
  return throwsFormatError(() => decodeSuperblock(bytes, SLOT), { structure: 'superblock', blockIndex: SLOT, reason }, what);
}

/**
 * A valid format-1 superblock, built by hand from the format-1 table (the
 * encoder writes format 2 only): B = 4096, 1000 blocks, a 64-block WAL, the
 * data region right after it at 66, a checkpoint of 4 blocks in 3 extents at
 * offset 96, 16 extent slots to 352, reserved bytes to 508, the CRC32C.
 */
function formatV1Superblock(): Uint8Array {
  const bytes = new Uint8Array(SUPERBLOCK_SIZE);
  const data = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode('RINGSTOR'), 0);
  data.setUint32(8, 1, true);
  data.setUint32(12, 4096, true);
  setU64(data, 16, 1000);
  setU64(data, 24, 2);
  setU64(data, 32, 64);
  setU64(data, 40, 66);
  setU64(data, 48, 7);
  data.setUint32(56, 0xcafef00d, true);
  data.setUint32(60, 0, true);
  setU64(data, 64, 41);
  setU64(data, 72, 10);
  setU64(data, 80, 15_000);
  data.setUint32(88, 4, true);
  data.setUint32(92, 3, true);
  [
    [100, 2],
    [200, 1],
    [999, 1],
  ].forEach(([startBlock, blockCount], i) => {
    setU64(data, 96 + 16 * i, startBlock);
    setU64(data, 96 + 16 * i + 8, blockCount);
  });
  data.setUint32(508, crc32c(bytes.subarray(0, 508)), true);
  return bytes;
}

/** Splits `total` blocks into `parts` positive counts, at cut points chosen by `seeds`. */
function splitBlocks(total: number, parts: number, seeds: readonly number[]): number[] {
  const cuts = new Set<number>();
  for (let i = 0; cuts.size < parts - 1; i++) cuts.add(1 + Math.floor(seeds[i % seeds.length] * (total - 1) + i) % (total - 1));
  const points = [0, ...[...cuts].sort((a, b) => a - b), total];
  return points.slice(1).map((point, i) => point - points[i]);
}

/**
 * Valid superblocks: any legal geometry; with or without a checkpoint; the
 * free-set frame exactly as large as the data region needs, in 1..8 extents
 * named in an order of their own; a root page, when there are keys, in the
 * data region and clear of the free set's blocks.
 */
const validSuperblock: fc.Arbitrary<Superblock> = fc
  .record({
    blockSizeLog2: fc.integer({ min: 9, max: 16 }),
    walBlockCount: fc.oneof(fc.integer({ min: 2, max: 100 }), fc.integer({ min: 2, max: 2 ** 40 })),
    // Small regions, regions whose free set takes several blocks, huge regions.
    dataRegionBlocks: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 4000, max: 200_000 }), fc.integer({ min: 1, max: 2 ** 40 })),
    generation: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: SEQUENCE_LIMIT - 1 })),
    storeTag: fc.nat({ max: 0xffff_ffff }),
    checkpointSeq: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: SEQUENCE_LIMIT - 1 })),
    replayFraction: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    extentCount: fc.integer({ min: 1, max: FREE_SET_EXTENTS_MAX }),
    seeds: fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 12, maxLength: 12 }),
    keyCount: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100 }), fc.maxSafeNat()),
    rootCrc: fc.nat({ max: 0xffff_ffff }),
    rootLevel: fc.integer({ min: 0, max: 31 }),
    valueEncodingId: fc.constantFrom(...Object.values(VALUE_ENCODING_IDS)),
    clean: fc.boolean(),
  })
  .map((r): Superblock => {
    const blockSize = 2 ** r.blockSizeLog2;
    const dataStartBlock = 2 + r.walBlockCount + 2;
    const blockCount = dataStartBlock + r.dataRegionBlocks;
    const base: Superblock = {
      formatVersion: FORMAT_VERSION,
      blockSize,
      blockCount,
      walStartBlock: 2,
      walBlockCount: r.walBlockCount,
      dataStartBlock,
      generation: r.generation,
      storeTag: r.storeTag,
      checkpointSeq: r.checkpointSeq,
      walReplayBlock: Math.floor(r.replayFraction * r.walBlockCount),
      freeSetByteLength: 0,
      freeSetBlockCount: 0,
      freeSetExtents: [],
      treeRoot: undefined,
      keyCount: 0,
      valueEncodingId: r.valueEncodingId,
      clean: r.clean,
    };
    if (r.checkpointSeq === 0) return base;
    const freeSetByteLength = freeSetPayloadBytes(r.dataRegionBlocks);
    const freeSetBlockCount = frameBlockCount(freeSetByteLength, blockSize);
    const pageBlocks = Math.max(blockSize, PAGE_SIZE_MIN) / blockSize;
    const hasRoot = r.keyCount > 0 && freeSetBlockCount + pageBlocks <= r.dataRegionBlocks;
    const counts = splitBlocks(freeSetBlockCount, Math.min(r.extentCount, freeSetBlockCount), r.seeds);
    // Lay the extents (and the root page) out in the data region in an order
    // of their own (shuffled by the seeds; i·5 + 3 mod 12 are distinct for
    // the at most 9 items), with random gaps.
    const items = [...counts.map((count, index) => ({ index, count })), ...(hasRoot ? [{ index: -1, count: pageBlocks }] : [])];
    const placed = items
      .map((item, i) => ({ item, key: r.seeds[(i * 5 + 3) % r.seeds.length] }))
      .sort((a, b) => a.key - b.key)
      .map(({ item }) => item);
    const slack = r.dataRegionBlocks - items.reduce((sum, item) => sum + item.count, 0);
    let position = dataStartBlock;
    const extents: Extent[] = new Array<Extent>(counts.length);
    let rootBlock = 0;
    placed.forEach((item, i) => {
      position += Math.floor((slack * r.seeds[(i + 1) % r.seeds.length]) / (placed.length + 1));
      if (item.index < 0) rootBlock = position;
      else extents[item.index] = { startBlock: position, blockCount: item.count };
      position += item.count;
    });
    return {
      ...base,
      freeSetByteLength,
      freeSetBlockCount,
      freeSetExtents: extents,
      treeRoot: hasRoot ? { block: rootBlock, crc: r.rootCrc, level: r.rootLevel } : undefined,
      keyCount: hasRoot ? r.keyCount : 0,
    };
  });

describe('superblockSlotBlock()', () => {
  it('puts slots 0 and 1 in blocks 0 and 1, and slots 2 and 3 in the two blocks right after the WAL', () => {
    const { walStartBlock, walBlockCount, dataStartBlock } = sampleSuperblock();
    assert.deepEqual(
      [0, 1, 2, 3].map((slot) => superblockSlotBlock(slot, walStartBlock, walBlockCount)),
      [0, 1, 66, 67],
    );
    assert.equal(superblockSlotBlock(3, walStartBlock, walBlockCount) + 1, dataStartBlock, 'the data region starts after slot 3');
    assert.deepEqual([2, 3].map((slot) => superblockSlotBlock(slot, 2, 2)), [4, 5], 'the smallest WAL');
  });

  it('refuses a slot that does not exist', () => {
    for (const slot of [-1, 4, 1.5, Number.NaN]) assert.throws(() => superblockSlotBlock(slot, 2, 64), RangeError, `slot ${slot}`);
  });
});

describe('superblockSlotsFor()', () => {
  it('writes generation g to slots g % 2 and 2 + g % 2: one at the head, one after the WAL', () => {
    assert.deepEqual(superblockSlotsFor(1), [1, 3]);
    assert.deepEqual(superblockSlotsFor(2), [0, 2]);
    assert.deepEqual(superblockSlotsFor(7), [1, 3]);
    assert.deepEqual(superblockSlotsFor(Number.MAX_SAFE_INTEGER - 1), [0, 2]);
  });

  it('never writes two consecutive generations to a common slot', () => {
    for (let generation = 1; generation < 20; generation++) {
      const slots = new Set([...superblockSlotsFor(generation), ...superblockSlotsFor(generation + 1)]);
      assert.equal(slots.size, 4, `generations ${generation} and ${generation + 1}`);
    }
  });

  it('refuses a generation that no superblock has', () => {
    for (const generation of [0, -1, 1.5, 2 ** 53, Number.NaN]) assert.throws(() => superblockSlotsFor(generation), RangeError, `generation ${generation}`);
  });
});

describe('freeSetPayloadBytes()', () => {
  it('is the 16-byte header and one bit a data block, rounded up to bytes', () => {
    const cases: [number, number][] = [
      [1, 17],
      [7, 17],
      [8, 17],
      [9, 18],
      [10_000, 1266],
      [262_144, 16 + 32_768],
    ];
    for (const [dataBlockCount, bytes] of cases) assert.equal(freeSetPayloadBytes(dataBlockCount), bytes, `${dataBlockCount} blocks`);
  });
});

describe('encodeSuperblock()', () => {
  it('lays the fields out at their documented offsets, little-endian', () => {
    const bytes = encoded();
    const data = new DataView(bytes.buffer);
    assert.deepEqual([...bytes.subarray(AT.magic, 8)], [...new TextEncoder().encode('RINGSTOR')]);
    assert.equal(data.getUint32(AT.version, true), 2);
    assert.equal(data.getUint32(AT.blockSize, true), 512);
    assert.equal(data.getBigUint64(AT.blockCount, true), 10_068n);
    assert.equal(data.getBigUint64(AT.walStart, true), 2n);
    assert.equal(data.getBigUint64(AT.walCount, true), 64n);
    assert.equal(data.getBigUint64(AT.dataStart, true), 68n);
    assert.equal(data.getBigUint64(AT.generation, true), 7n);
    assert.equal(data.getUint32(AT.storeTag, true), 0xcafef00d);
    assert.equal(data.getUint32(AT.flags, true), 0);
    assert.equal(data.getBigUint64(AT.checkpointSeq, true), 41n);
    assert.equal(data.getBigUint64(AT.walReplay, true), 10n);
    assert.equal(data.getBigUint64(AT.freeSetLength, true), 1266n);
    assert.equal(data.getUint32(AT.freeSetBlocks, true), 3);
    assert.equal(data.getUint32(AT.freeSetExtentCount, true), 2);
    assert.equal(data.getBigUint64(AT.freeSetExtents, true), 900n, 'extent 0 in frame order, not block order');
    assert.equal(data.getBigUint64(AT.freeSetExtents + 8, true), 1n);
    assert.equal(data.getBigUint64(AT.freeSetExtents + EXTENT_ENTRY_SIZE, true), 500n);
    assert.equal(data.getBigUint64(AT.freeSetExtents + EXTENT_ENTRY_SIZE + 8, true), 2n);
    assert.ok(bytes.subarray(AT.freeSetExtents + 2 * EXTENT_ENTRY_SIZE, AT.rootBlock).every((byte) => byte === 0), 'unused extent slots are zero');
    assert.equal(AT.freeSetExtents + EXTENT_SLOT_COUNT * EXTENT_ENTRY_SIZE, AT.rootBlock, 'the 8 extent slots end where the root begins');
    assert.equal(data.getBigUint64(AT.rootBlock, true), 1000n);
    assert.equal(data.getUint32(AT.rootCrc, true), 0xdeadbeef);
    assert.equal(data.getUint8(AT.rootLevel), 2);
    assert.equal(data.getUint8(AT.valueEncoding), 2, 'json');
    assert.equal(data.getUint16(AT.reservedShort, true), 0);
    assert.equal(data.getBigUint64(AT.keyCount, true), 12_345n);
    assert.ok(bytes.subarray(AT.reserved, AT.crc).every((byte) => byte === 0), 'reserved bytes are zero');
    assert.equal(data.getUint32(AT.crc, true), crc32c(bytes.subarray(0, AT.crc)), 'the checksum covers bytes 0..507');
  });

  it('writes an empty tree as root block, checksum and level all zero', () => {
    const bytes = encoded(freshSuperblock());
    assert.ok(bytes.subarray(AT.checkpointSeq, AT.valueEncoding).every((byte) => byte === 0), 'no checkpoint, free set or root');
    assert.equal(bytes[AT.valueEncoding], VALUE_ENCODING_IDS.json);
    assert.ok(bytes.subarray(AT.reservedShort, AT.crc).every((byte) => byte === 0), 'no keys, reserved zero');
  });

  it('clears stale bytes in the first 512 and leaves bytes past them alone', () => {
    const target = new Uint8Array(1024).fill(0xee);
    encodeSuperblock(sampleSuperblock(), target);
    assert.deepEqual(target.subarray(0, SUPERBLOCK_SIZE), encoded());
    assert.ok(target.subarray(SUPERBLOCK_SIZE).every((byte) => byte === 0xee));
  });

  it('refuses more than 8 free-set extents and a target shorter than 512 bytes', () => {
    const tooMany = sampleSuperblock();
    tooMany.freeSetExtents = Array.from({ length: FREE_SET_EXTENTS_MAX + 1 }, (_, i) => ({ startBlock: 100 + i, blockCount: 1 }));
    assert.throws(() => encodeSuperblock(tooMany, new Uint8Array(SUPERBLOCK_SIZE)), RangeError);
    assert.throws(() => encodeSuperblock(sampleSuperblock(), new Uint8Array(SUPERBLOCK_SIZE - 1)), RangeError);
  });

  it('refuses a u64 field beyond 2^53 instead of rounding it', () => {
    for (const edit of [
      (s: Superblock) => (s.checkpointSeq = 2 ** 53),
      (s: Superblock) => (s.keyCount = 2 ** 53),
      (s: Superblock) => (s.treeRoot = { block: 2 ** 53, crc: 0, level: 0 }),
    ]) {
      const superblock = sampleSuperblock();
      edit(superblock);
      assert.throws(() => encodeSuperblock(superblock, new Uint8Array(SUPERBLOCK_SIZE)), RangeError);
    }
  });

  it('refuses a value that its u8 or u32 field would truncate into another valid superblock', () => {
    const cases: [string, (s: Superblock) => void][] = [
      ['root level 257 (would be 1)', (s) => (s.treeRoot = { block: 1000, crc: 0, level: 257 })],
      ['value encoding 257 (would be 1)', (s) => (s.valueEncodingId = 257)],
      ['value encoding -1', (s) => (s.valueEncodingId = -1)],
      ['free-set block count 2^32 + 3 (would be 3)', (s) => (s.freeSetBlockCount = 2 ** 32 + 3)],
      ['block size 2^32 + 512', (s) => (s.blockSize = 2 ** 32 + 512)],
      ['root block 0 (means no root)', (s) => (s.treeRoot = { block: 0, crc: 0, level: 0 })],
    ];
    for (const [what, edit] of cases) {
      const superblock = sampleSuperblock();
      edit(superblock);
      assert.throws(() => encodeSuperblock(superblock, new Uint8Array(SUPERBLOCK_SIZE)), RangeError, what);
    }
  });
});

describe('decodeSuperblock()', () => {
  it('decodes the sample, and a store before its first checkpoint, to exactly what was encoded', () => {
    assert.deepEqual(decodeSuperblock(encoded(), SLOT), sampleSuperblock());
    assert.deepEqual(decodeSuperblock(encoded(freshSuperblock()), SLOT), freshSuperblock());
  });

  it('round-trips random valid superblocks exactly (property)', () => {
    fc.assert(
      fc.property(validSuperblock, (superblock) => {
        assert.deepEqual(decodeSuperblock(encoded(superblock), 0), superblock);
      }),
      { seed: PROPERTY_SEED, numRuns: 500 },
    );
  });

  it('accepts the boundary geometry: 2-block WAL, 1-block data region, smallest and largest block sizes', () => {
    for (const blockSize of [BLOCK_SIZE_MIN, BLOCK_SIZE_MAX]) {
      // Blocks 0, 1: head slots; 2, 3: WAL; 4, 5: backup slots; 6: the one data block, holding the free set.
      const superblock: Superblock = {
        ...sampleSuperblock(),
        blockSize,
        blockCount: 7,
        walBlockCount: 2,
        dataStartBlock: 6,
        walReplayBlock: 1,
        freeSetByteLength: 17,
        freeSetBlockCount: 1,
        freeSetExtents: [{ startBlock: 6, blockCount: 1 }],
        treeRoot: undefined,
        keyCount: 0,
      };
      assert.deepEqual(decodeSuperblock(encoded(superblock), SLOT), superblock, `B = ${blockSize}`);
    }
  });

  it('accepts every value encoding, eight free-set extents, and root levels 0 to 31', () => {
    for (const valueEncodingId of Object.values(VALUE_ENCODING_IDS)) {
      const superblock = { ...sampleSuperblock(), valueEncodingId };
      assert.deepEqual(decodeSuperblock(encoded(superblock), SLOT), superblock, `encoding ${valueEncodingId}`);
    }
    // 10 000 data blocks at B = 4096 take a 1266-byte free set: one block;
    // at B = 512, three. A larger region takes eight blocks, one per extent.
    const eight: Superblock = {
      ...sampleSuperblock(),
      blockCount: 68 + 30_000,
      freeSetByteLength: freeSetPayloadBytes(30_000),
      freeSetBlockCount: 8,
      freeSetExtents: Array.from({ length: 8 }, (_, i) => ({ startBlock: 5000 - 100 * i, blockCount: 1 })),
    };
    assert.equal(frameBlockCount(freeSetPayloadBytes(30_000), 512), 8);
    assert.deepEqual(decodeSuperblock(encoded(eight), SLOT), eight);
    for (const level of [0, 1, 31]) {
      const superblock = { ...sampleSuperblock(), treeRoot: { block: 1000, crc: 0, level } };
      assert.deepEqual(decodeSuperblock(encoded(superblock), SLOT), superblock, `level ${level}`);
    }
  });

  it('accepts a root page at either end of the data region', () => {
    // A page is max(512, 4096) = 4096 bytes: 8 blocks at B = 512.
    for (const block of [68, 10_068 - 8]) {
      const superblock = { ...sampleSuperblock(), treeRoot: { block, crc: 1, level: 0 } };
      assert.deepEqual(decodeSuperblock(encoded(superblock), SLOT), superblock, `root at ${block}`);
    }
  });

  it('reads only the first 512 bytes of a larger block', () => {
    const block = new Uint8Array(4096);
    encodeSuperblock(sampleSuperblock(), block);
    assert.deepEqual(decodeSuperblock(block, SLOT), sampleSuperblock());
    const backing = new Uint8Array(4096 + 7);
    backing.set(encoded(), 7);
    assert.deepEqual(decodeSuperblock(backing.subarray(7), SLOT), sampleSuperblock(), 'a view at an odd offset');
  });

  it('rejects input shorter than 512 bytes', () => {
    refused(encoded().subarray(0, SUPERBLOCK_SIZE - 1), /shorter/);
    refused(new Uint8Array(0), /shorter/);
  });

  it('rejects a block without the magic: zeros, random bytes, each magic byte changed', () => {
    refused(new Uint8Array(SUPERBLOCK_SIZE), /magic/, 'zeros');
    refused(patternBytes(SUPERBLOCK_SIZE, 5), /magic/, 'random bytes');
    for (let i = 0; i < SUPERBLOCK_MAGIC.length; i++) {
      refused(tampered((_, bytes) => (bytes[i] ^= 0x20)), /magic/, `magic byte ${i}`);
    }
  });

  it('rejects a copy whose checksum does not match, naming the block it was read from', () => {
    const bytes = encoded();
    bytes[AT.generation] ^= 1;
    const error = refused(bytes, /checksum mismatch/);
    assert.match(error.message, /superblock block 1/);
    // A backup copy is named by its absolute block, not its slot.
    const backup = throwsFormatError(() => decodeSuperblock(bytes, 67), { structure: 'superblock', blockIndex: 67 });
    assert.match(backup.message, /superblock block 67/);
  });

  it('detects every single-bit flip anywhere in the 512 bytes', () => {
    const bytes = encoded();
    for (let bit = 0; bit < SUPERBLOCK_SIZE * 8; bit++) {
      const expected = bit < 64 ? /magic/ : /checksum mismatch/;
      refused(withBitFlipped(bytes, bit), expected, `bit ${bit} (byte ${bit >>> 3})`);
    }
  });

  it('refuses an intact format-1 superblock with a FormatVersionError carrying version 1', () => {
    const v1 = formatV1Superblock();
    const error = throwsFormatError(() => decodeSuperblock(v1, SLOT), { structure: 'superblock', blockIndex: SLOT, reason: /format version 1 \(written by ringstore 0\.1\)/ });
    assert.ok(error instanceof FormatVersionError, `a ${error.constructor.name}`);
    assert.equal(error.formatVersion, 1);
    assert.equal(error.name, 'FormatVersionError');
    assert.match(error.reason, /reads format 2/);
    assert.equal(hasSuperblockMagic(v1), true, 'the same magic as format 2');
  });

  it('refuses a damaged format-1 superblock as damaged, not as another version', () => {
    const damaged = formatV1Superblock();
    damaged[AT.generation] ^= 1;
    const error = refused(damaged, /checksum mismatch/);
    assert.ok(!(error instanceof FormatVersionError));
  });

  it('refuses any other format version with a FormatVersionError, before looking at the rest', () => {
    for (const version of [0, 3, 0x100, 0xffff_ffff]) {
      // Flags set too: the version is what is reported.
      const bytes = tampered((data) => {
        data.setUint32(AT.version, version, true);
        data.setUint32(AT.flags, 1, true);
      });
      const error = refused(bytes, new RegExp(`format version ${version}; this version reads format 2`), `version ${version}`);
      assert.ok(error instanceof FormatVersionError);
      assert.equal(error.formatVersion, version);
    }
  });

  it('reads flag bit 0 as a clean close, and round-trips it', () => {
    const clean = decodeSuperblock(tampered((data) => data.setUint32(AT.flags, 1, true)), SLOT);
    assert.equal(clean.clean, true);
    const bytes = new Uint8Array(SUPERBLOCK_SIZE);
    encodeSuperblock(clean, bytes);
    assert.equal(new DataView(bytes.buffer).getUint32(AT.flags, true), 1);
    assert.equal(decodeSuperblock(encoded(), SLOT).clean, false);
  });

  it('rejects unknown flags', () => {
    for (let bit = 1; bit < 32; bit++) {
      refused(tampered((data) => data.setUint32(AT.flags, 2 ** bit, true)), /flags/, `flag bit ${bit}`);
    }
  });

  it('rejects any nonzero reserved byte, even under a matching checksum', () => {
    for (const offset of [AT.reservedShort, AT.reservedShort + 1]) {
      refused(tampered((_, bytes) => (bytes[offset] = 1)), /reserved/, `reserved byte ${offset}`);
    }
    for (let offset = AT.reserved; offset < AT.crc; offset++) {
      refused(tampered((_, bytes) => (bytes[offset] = 1)), /reserved/, `reserved byte ${offset}`);
    }
  });

  it('rejects a block size that is not a power of two from 512 to 65536', () => {
    for (const blockSize of [0, 1, 256, 511, 513, 1000, 4095, 4097, 3 * 1024, 131_072, 0x8000_0000]) {
      refused(tampered((data) => data.setUint32(AT.blockSize, blockSize, true)), /block size/, `block size ${blockSize}`);
    }
  });

  it('rejects a u64 field of 2^53 or more instead of rounding it', () => {
    const names: Record<(typeof U64_FIELDS)[number], RegExp> = {
      blockCount: /blockCount exceeds 2\^53/,
      walStart: /walStartBlock exceeds 2\^53/,
      walCount: /walBlockCount exceeds 2\^53/,
      dataStart: /dataStartBlock exceeds 2\^53/,
      generation: /generation exceeds 2\^53/,
      checkpointSeq: /checkpointSeq exceeds 2\^53/,
      walReplay: /walReplayBlock exceeds 2\^53/,
      freeSetLength: /freeSetByteLength exceeds 2\^53/,
      rootBlock: /root block exceeds 2\^53/,
      keyCount: /keyCount exceeds 2\^53/,
    };
    for (const field of U64_FIELDS) {
      for (const value of [2n ** 53n, 2n ** 64n - 1n]) {
        refused(tampered((data) => setU64(data, AT[field], value)), names[field], `${field} = ${value}`);
      }
    }
    // A generation or sequence that could not advance (found by a review: the first write failed as an internal error).
    for (const field of ['generation', 'checkpointSeq'] as const) {
      for (const value of [2n ** 52n, 2n ** 53n - 1n]) refused(tampered((data) => setU64(data, AT[field], value)), new RegExp(`${field} ${value} is at or above 2\\^52`), `${field} = ${value}`);
      assert.doesNotThrow(() => decodeSuperblock(tampered((data) => setU64(data, AT[field], 2n ** 52n - 1n)), 0), `${field} = 2^52 - 1`);
    }
    refused(tampered((data) => setU64(data, AT.freeSetExtents, 2n ** 60n)), /free-set extent 0 start exceeds 2\^53/);
    refused(tampered((data) => setU64(data, AT.freeSetExtents + EXTENT_ENTRY_SIZE + 8, 2n ** 53n)), /free-set extent 1 length exceeds 2\^53/);
  });

  it('rejects a root checksum or level without a root block', () => {
    const noRoot = freshSuperblock();
    refused(tampered((data) => data.setUint32(AT.rootCrc, 1, true), noRoot), /no root block but a root checksum or level/, 'checksum');
    refused(tampered((data) => data.setUint8(AT.rootLevel, 1), noRoot), /no root block but a root checksum or level/, 'level');
  });

  it('rejects an unknown value encoding', () => {
    for (const id of [0, 5, 0x80, 0xff]) {
      refused(tampered((data) => data.setUint8(AT.valueEncoding, id)), new RegExp(`unknown value encoding ${id}$`), `encoding ${id}`);
    }
  });

  it('rejects more than 8 free-set extents', () => {
    for (const count of [FREE_SET_EXTENTS_MAX + 1, 16, 0xffff_ffff]) {
      refused(tampered((data) => data.setUint32(AT.freeSetExtentCount, count, true)), /free-set extents \(at most 8\)/, `count ${count}`);
    }
  });

  it('rejects an unused extent slot that is not all zero', () => {
    for (let slot = 2; slot < EXTENT_SLOT_COUNT; slot++) {
      for (const byte of [0, 8, 15]) {
        const offset = AT.freeSetExtents + slot * EXTENT_ENTRY_SIZE + byte;
        refused(tampered((_, bytes) => (bytes[offset] = 0x40)), new RegExp(`unused free-set extent ${slot}`), `slot ${slot} byte ${byte}`);
      }
    }
  });

  it('rejects a used extent of 0 blocks', () => {
    refused(tampered((data) => setExtent(data, 0, 900, 0)), /free-set extent 0 is empty/);
  });

  it('rejects bad geometry', () => {
    const cases: [string, (data: DataView) => void, RegExp][] = [
      ['generation 0', (data) => setU64(data, AT.generation, 0), /generation 0/],
      ['WAL at block 0 (over the head superblocks)', (data) => setU64(data, AT.walStart, 0), /WAL starts at block 0, not 2/],
      ['WAL at block 3', (data) => setU64(data, AT.walStart, 3), /WAL starts at block 3, not 2/],
      ['WAL of 1 block', (data) => (setU64(data, AT.walCount, 1), setU64(data, AT.dataStart, 5)), /WAL of 1 blocks/],
      ['WAL of 0 blocks', (data) => (setU64(data, AT.walCount, 0), setU64(data, AT.dataStart, 4)), /WAL of 0 blocks/],
      ['data region right after the WAL (the format-1 rule)', (data) => setU64(data, AT.dataStart, 66), /data region does not start right after the WAL and the backup superblocks/],
      ['data region over the second backup slot', (data) => setU64(data, AT.dataStart, 67), /data region does not start/],
      ['gap after the backup slots', (data) => setU64(data, AT.dataStart, 69), /data region does not start/],
      ['no data block', (data) => setU64(data, AT.blockCount, 68), /no room/],
      ['store smaller than its WAL', (data) => setU64(data, AT.blockCount, 10), /no room/],
      ['replay block at the WAL end', (data) => setU64(data, AT.walReplay, 64), /replay block 64 outside the WAL/],
      ['replay block far past the WAL', (data) => setU64(data, AT.walReplay, 1_000_000), /replay block/],
    ];
    for (const [what, edit, reason] of cases) refused(tampered(edit), reason, what);
  });

  it('rejects a checkpoint sequence and free-set extents that disagree about whether a checkpoint exists', () => {
    refused(tampered((data) => setU64(data, AT.checkpointSeq, 0)), /disagree/, 'extents but checkpointSeq 0');
    const noExtents = tampered((data, bytes) => {
      data.setUint32(AT.freeSetExtentCount, 0, true);
      data.setUint32(AT.freeSetBlocks, 0, true);
      bytes.fill(0, AT.freeSetExtents, AT.rootBlock);
    });
    refused(noExtents, /disagree/, 'checkpointSeq 41 but no extents');
  });

  it('rejects a free-set length or a tree without a checkpoint', () => {
    const fresh = freshSuperblock();
    refused(tampered((data) => setU64(data, AT.freeSetLength, 1266), fresh), /a free-set length without a checkpoint/, 'length');
    refused(tampered((data) => data.setUint32(AT.freeSetBlocks, 3, true), fresh), /a free-set length without a checkpoint/, 'block count');
    refused(tampered((data) => (setU64(data, AT.rootBlock, 1000), data.setUint32(AT.rootCrc, 5, true)), fresh), /a tree without a checkpoint/, 'root');
    refused(tampered((data) => setU64(data, AT.keyCount, 1), fresh), /a tree without a checkpoint/, 'keys');
  });

  it('rejects a free-set length longer than the data region\'s bitmap, or shorter than one block\'s', () => {
    for (const length of [1, 16, 1267, 480 * 3]) {
      refused(tampered((data) => setU64(data, AT.freeSetLength, length)), new RegExp(`a free set of ${length} bytes; 10000 data blocks take 1266`), `length ${length}`);
    }
    // A store that shrank below what its free set describes.
    refused(tampered((data) => setU64(data, AT.blockCount, 10_060)), /a free set of 1266 bytes; 9992 data blocks take 1265/, 'a shrunk store');
  });

  it('takes a free set shorter than the data region\'s bitmap: the store grew after that checkpoint', () => {
    // Grown by 8 blocks (one more bitmap byte) with the same checkpoint.
    const grown = decodeSuperblock(tampered((data) => setU64(data, AT.blockCount, 10_076)), SLOT);
    assert.equal(grown.blockCount, 10_076);
    assert.equal(grown.freeSetByteLength, 1266);
    // Or by much more: the free set still takes its three blocks.
    assert.equal(decodeSuperblock(tampered((data) => setU64(data, AT.blockCount, 1_000_000)), SLOT).blockCount, 1_000_000);
  });

  it('rejects extents whose blocks are not the header\'s free-set block count, or not the frame\'s', () => {
    refused(tampered((data) => data.setUint32(AT.freeSetBlocks, 4, true)), /free-set extents hold 3 blocks, the header says 4/, 'header says 4');
    refused(tampered((data) => data.setUint32(AT.freeSetBlocks, 2, true)), /free-set extents hold 3 blocks, the header says 2/, 'header says 2');
    // Both agree, on a block too many for a 1266-byte frame.
    const tooBig = tampered((data) => {
      setExtent(data, 0, 900, 2);
      data.setUint32(AT.freeSetBlocks, 4, true);
    });
    refused(tooBig, /a free set of 1266 bytes does not take 4 blocks/, 'four blocks for three blocks\' payload');
  });

  it('rejects a free-set extent outside the data region', () => {
    const oneBlock: [string, number][] = [
      ['in the head superblocks', 0],
      ['in the WAL', 2],
      ['on the last WAL block', 65],
      ['on backup slot 2', 66],
      ['on backup slot 3', 67],
      ['past the store end', 10_068],
      ['far past the store end', 2 ** 50],
    ];
    for (const [what, start] of oneBlock) {
      refused(tampered((data) => setExtent(data, 0, start, 1)), /free-set extent \d+\+1 lies outside the data region/, what);
    }
    const twoBlocks: [string, number][] = [
      ['straddling the data region start', 67],
      ['running past the store end', 10_067],
    ];
    for (const [what, start] of twoBlocks) {
      refused(tampered((data) => setExtent(data, 1, start, 2)), /free-set extent \d+\+2 lies outside the data region/, what);
    }
  });

  it('rejects free-set extents that overlap, in either order', () => {
    refused(tampered((data) => setExtent(data, 0, 501, 1)), /free-set extents overlap at block 501/, 'inside the other');
    refused(tampered((data) => setExtent(data, 0, 500, 1)), /free-set extents overlap at block 500/, 'same start');
    refused(tampered((data) => (setExtent(data, 0, 901, 1), setExtent(data, 1, 900, 2))), /free-set extents overlap at block 901/, 'the later extent first in block order');
  });

  it('rejects keys without a root page and a root page without keys', () => {
    refused(
      tampered((data) => (setU64(data, AT.rootBlock, 0), data.setUint32(AT.rootCrc, 0, true), data.setUint8(AT.rootLevel, 0))),
      /12345 keys without a root page/,
    );
    refused(tampered((data) => setU64(data, AT.keyCount, 0)), /0 keys with a root page/);
  });

  it('rejects a root page that is not wholly in the data region', () => {
    const cases: [string, number][] = [
      ['in the head (block 1)', 1],
      ['in the WAL', 2],
      ['on a backup slot', 67],
      ['running past the store end by one block (8 blocks from 10061)', 10_061],
      ['past the store end', 10_068],
    ];
    for (const [what, block] of cases) {
      refused(tampered((data) => setU64(data, AT.rootBlock, block)), new RegExp(`root page at block ${block} lies outside the data region`), what);
    }
    // At B = 4096 a page is one block: the last data block is a legal root.
    const large: Superblock = { ...sampleSuperblock(), blockSize: 4096, freeSetBlockCount: 1, freeSetExtents: [{ startBlock: 900, blockCount: 1 }], treeRoot: { block: 10_067, crc: 0, level: 0 } };
    assert.deepEqual(decodeSuperblock(encoded(large), SLOT), large);
  });

  it('rejects a root level of 32 or more', () => {
    for (const level of [32, 33, 0xff]) {
      refused(tampered((data) => data.setUint8(AT.rootLevel, level)), new RegExp(`root level ${level} \\(at most 31\\)`), `level ${level}`);
    }
  });

  it('never throws anything but a FormatError on random damage to a valid copy (property)', () => {
    const clean = encoded();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(SUPERBLOCK_SIZE - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }), fc.boolean(), (edits, reseal) => {
        const bytes = clean.slice();
        for (const [offset, xor] of edits) bytes[offset] ^= xor;
        if (reseal) resealSuperblock(bytes);
        try {
          const decoded = decodeSuperblock(bytes, SLOT);
          // A re-sealed edit may still be a valid superblock; then it must re-encode to the same bytes.
          assert.deepEqual(encoded(decoded), bytes, 'an accepted copy re-encodes to itself');
        } catch (error) {
          assert.ok(error instanceof FormatError, `expected a FormatError, got ${String(error)}`);
          assert.equal(error.blockIndex, SLOT);
        }
      }),
      { seed: PROPERTY_SEED, numRuns: 2000 },
    );
  });
});

describe('hasSuperblockMagic()', () => {
  it('tells a ringstore block from any other', () => {
    assert.equal(hasSuperblockMagic(encoded()), true);
    const damaged = encoded();
    damaged[AT.crc] ^= 1;
    assert.equal(hasSuperblockMagic(damaged), true, 'a damaged copy still carries the magic');
    assert.equal(hasSuperblockMagic(new Uint8Array(SUPERBLOCK_SIZE)), false);
    assert.equal(hasSuperblockMagic(new TextEncoder().encode('RINGSTOX')), false);
    assert.equal(hasSuperblockMagic(new TextEncoder().encode('RINGST')), false, 'too short');
    assert.equal(hasSuperblockMagic(new Uint8Array(0)), false);
  });
});
