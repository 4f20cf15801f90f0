// Superblock: one 512-byte sector per copy. A valid copy round-trips
// exactly; every kind of damage is refused with a FormatError that names the
// superblock and the block the copy was read from, so open can fall back to
// the other copy. Damage that a checksum would catch is re-sealed with a
// fresh checksum where a test targets a later check, so that check alone
// must catch it.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import {
  BLOCK_SIZE_MAX,
  BLOCK_SIZE_MIN,
  CHECKPOINT_EXTENTS_MAX,
  FORMAT_VERSION,
  SUPERBLOCK_MAGIC,
  SUPERBLOCK_SIZE,
} from '../../format/constants.js';
import { crc32c } from '../../format/crc32c.js';
import { FormatError } from '../../format/format_error.js';
import { decodeSuperblock, encodeSuperblock, hasSuperblockMagic, type Superblock } from '../../format/superblock.js';
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
  checkpointLength: 80,
  checkpointBlocks: 88,
  extentCount: 92,
  extents: 96,
  reserved: 352,
  crc: 508,
} as const;
const EXTENT_ENTRY_SIZE = 16;
const U64_FIELDS = ['blockCount', 'walStart', 'walCount', 'dataStart', 'generation', 'checkpointSeq', 'walReplay', 'checkpointLength'] as const;

/** The block a copy is "read from" in these tests, so errors must name 1. */
const SLOT = 1;

function sampleSuperblock(): Superblock {
  return {
    formatVersion: FORMAT_VERSION,
    blockSize: 4096,
    blockCount: 1000,
    walStartBlock: 2,
    walBlockCount: 64,
    dataStartBlock: 66,
    generation: 7,
    storeTag: 0xcafef00d,
    checkpointSeq: 41,
    walReplayBlock: 10,
    checkpointByteLength: 15_000,
    checkpointBlockCount: 4,
    checkpointExtents: [
      { startBlock: 100, blockCount: 2 },
      { startBlock: 200, blockCount: 1 },
      { startBlock: 999, blockCount: 1 },
    ],
  };
}

function encoded(superblock: Superblock = sampleSuperblock()): Uint8Array {
  const bytes = new Uint8Array(SUPERBLOCK_SIZE);
  encodeSuperblock(superblock, bytes);
  return bytes;
}

/** The sample, edited through `edit`, with a checksum that matches the edit. */
function tampered(edit: (data: DataView, bytes: Uint8Array) => void): Uint8Array {
  const bytes = encoded();
  edit(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes);
  return resealSuperblock(bytes);
}

function setU64(data: DataView, offset: number, value: bigint | number): void {
  data.setBigUint64(offset, BigInt(value), true);
}

function refused(bytes: Uint8Array, reason: RegExp, what?: string): FormatError {
  return throwsFormatError(() => decodeSuperblock(bytes, SLOT), { structure: 'superblock', blockIndex: SLOT, reason }, what);
}

/** Valid superblocks: any legal geometry, 0..16 extents inside the data region. */
const validSuperblock: fc.Arbitrary<Superblock> = fc
  .record({
    blockSizeLog2: fc.integer({ min: 9, max: 16 }),
    walBlockCount: fc.oneof(fc.integer({ min: 2, max: 100 }), fc.integer({ min: 2, max: 2 ** 40 })),
    dataRegionBlocks: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 2 ** 45 })),
    generation: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
    storeTag: fc.nat({ max: 0xffff_ffff }),
    checkpointSeq: fc.maxSafeNat(),
    replayFraction: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    extentSeeds: fc.array(fc.tuple(fc.maxSafeNat(), fc.maxSafeNat()), { maxLength: CHECKPOINT_EXTENTS_MAX, size: 'max' }),
    lengthSeed: fc.maxSafeNat(),
  })
  .map((r): Superblock => {
    const blockSize = 2 ** r.blockSizeLog2;
    const dataStartBlock = 2 + r.walBlockCount;
    const blockCount = dataStartBlock + r.dataRegionBlocks;
    // Extents in disjoint slices of the data region, in a shuffled order; each
    // at most 2^27 blocks, so 16 of them fit the u32 block count.
    const sliceBlocks = Math.floor(r.dataRegionBlocks / CHECKPOINT_EXTENTS_MAX);
    const checkpointExtents =
      sliceBlocks === 0
        ? []
        : r.extentSeeds.map(([startSeed, countSeed], i) => {
            // 7 is coprime with 16: extent i gets a slice of its own.
            const slice = (i * 7 + (r.lengthSeed % CHECKPOINT_EXTENTS_MAX)) % CHECKPOINT_EXTENTS_MAX;
            const room = Math.min(sliceBlocks, 2 ** 27);
            const blockCount = 1 + (countSeed % room);
            const offsetInSlice = startSeed % (sliceBlocks - blockCount + 1);
            return { startBlock: dataStartBlock + slice * sliceBlocks + offsetInSlice, blockCount };
          });
    const checkpointBlockCount = checkpointExtents.reduce((sum, extent) => sum + extent.blockCount, 0);
    // The checkpoint frame's payload: more than n - 1 blocks' worth, at most n blocks'.
    const perBlock = blockSize - 32;
    const checkpointByteLength =
      checkpointBlockCount === 0 ? 0 : (checkpointBlockCount - 1) * perBlock + 1 + (r.lengthSeed % perBlock);
    return {
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
      checkpointByteLength,
      checkpointBlockCount,
      checkpointExtents,
    };
  });

describe('encodeSuperblock()', () => {
  it('lays the fields out at their documented offsets, little-endian', () => {
    const bytes = encoded();
    const data = new DataView(bytes.buffer);
    assert.deepEqual([...bytes.subarray(0, 8)], [...new TextEncoder().encode('RINGSTOR')]);
    assert.equal(data.getUint32(AT.version, true), FORMAT_VERSION);
    assert.equal(data.getUint32(AT.blockSize, true), 4096);
    assert.equal(data.getBigUint64(AT.blockCount, true), 1000n);
    assert.equal(data.getBigUint64(AT.walStart, true), 2n);
    assert.equal(data.getBigUint64(AT.walCount, true), 64n);
    assert.equal(data.getBigUint64(AT.dataStart, true), 66n);
    assert.equal(data.getBigUint64(AT.generation, true), 7n);
    assert.equal(data.getUint32(AT.storeTag, true), 0xcafef00d);
    assert.equal(data.getUint32(AT.flags, true), 0);
    assert.equal(data.getBigUint64(AT.checkpointSeq, true), 41n);
    assert.equal(data.getBigUint64(AT.walReplay, true), 10n);
    assert.equal(data.getBigUint64(AT.checkpointLength, true), 15_000n);
    assert.equal(data.getUint32(AT.checkpointBlocks, true), 4);
    assert.equal(data.getUint32(AT.extentCount, true), 3);
    assert.equal(data.getBigUint64(AT.extents + 16, true), 200n);
    assert.equal(data.getBigUint64(AT.extents + 16 + 8, true), 1n);
    assert.ok(bytes.subarray(AT.extents + 3 * EXTENT_ENTRY_SIZE, AT.crc).every((byte) => byte === 0), 'unused slots and reserved bytes are zero');
    assert.equal(data.getUint32(AT.crc, true), crc32c(bytes.subarray(0, AT.crc)), 'the checksum covers bytes 0..507');
  });

  it('clears stale bytes in the first 512 and leaves bytes past them alone', () => {
    const target = new Uint8Array(1024).fill(0xee);
    encodeSuperblock(sampleSuperblock(), target);
    assert.deepEqual(target.subarray(0, SUPERBLOCK_SIZE), encoded());
    assert.ok(target.subarray(SUPERBLOCK_SIZE).every((byte) => byte === 0xee));
  });

  it('refuses more than 16 checkpoint extents and a target shorter than 512 bytes', () => {
    const tooMany = sampleSuperblock();
    tooMany.checkpointExtents = Array.from({ length: CHECKPOINT_EXTENTS_MAX + 1 }, (_, i) => ({ startBlock: 100 + i, blockCount: 1 }));
    assert.throws(() => encodeSuperblock(tooMany, new Uint8Array(SUPERBLOCK_SIZE)), RangeError);
    assert.throws(() => encodeSuperblock(sampleSuperblock(), new Uint8Array(SUPERBLOCK_SIZE - 1)), RangeError);
  });

  it('refuses a u64 field beyond 2^53 instead of rounding it', () => {
    const superblock = sampleSuperblock();
    superblock.checkpointSeq = 2 ** 53;
    assert.throws(() => encodeSuperblock(superblock, new Uint8Array(SUPERBLOCK_SIZE)), RangeError);
  });
});

describe('decodeSuperblock()', () => {
  it('decodes the sample to exactly what was encoded', () => {
    assert.deepEqual(decodeSuperblock(encoded(), SLOT), sampleSuperblock());
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
      const superblock: Superblock = {
        ...sampleSuperblock(),
        blockSize,
        blockCount: 5,
        walBlockCount: 2,
        dataStartBlock: 4,
        walReplayBlock: 1,
        checkpointExtents: [{ startBlock: 4, blockCount: 1 }],
        checkpointBlockCount: 1,
        checkpointByteLength: 1,
      };
      assert.deepEqual(decodeSuperblock(encoded(superblock), SLOT), superblock);
    }
  });

  it('accepts a store with no checkpoint yet (no extents, length 0)', () => {
    const superblock: Superblock = { ...sampleSuperblock(), checkpointSeq: 0, checkpointByteLength: 0, checkpointBlockCount: 0, checkpointExtents: [] };
    assert.deepEqual(decodeSuperblock(encoded(superblock), SLOT), superblock);
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

  it('rejects a copy whose checksum does not match, naming the block', () => {
    const bytes = encoded();
    bytes[AT.generation] ^= 1;
    const error = refused(bytes, /checksum mismatch/);
    assert.match(error.message, /superblock block 1/);
    const error0 = throwsFormatError(() => decodeSuperblock(bytes, 0), { structure: 'superblock', blockIndex: 0 });
    assert.match(error0.message, /superblock block 0/);
  });

  it('detects every single-bit flip anywhere in the 512 bytes', () => {
    const bytes = encoded();
    for (let bit = 0; bit < SUPERBLOCK_SIZE * 8; bit++) {
      const expected = bit < 64 ? /magic/ : /checksum mismatch/;
      refused(withBitFlipped(bytes, bit), expected, `bit ${bit} (byte ${bit >>> 3})`);
    }
  });

  it('rejects a format version other than 1', () => {
    for (const version of [0, 2, 0x100, 0xffff_ffff]) {
      refused(tampered((data) => data.setUint32(AT.version, version, true)), /format version/, `version ${version}`);
    }
  });

  it('rejects unknown flags', () => {
    for (let bit = 0; bit < 32; bit++) {
      refused(tampered((data) => data.setUint32(AT.flags, 2 ** bit, true)), /flags/, `flag bit ${bit}`);
    }
  });

  it('rejects any nonzero reserved byte, even under a matching checksum', () => {
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
    for (const field of U64_FIELDS) {
      for (const value of [2n ** 53n, 2n ** 64n - 1n]) {
        refused(tampered((data) => setU64(data, AT[field], value)), /exceeds 2\^53/, `${field} = ${value}`);
      }
    }
    refused(tampered((data) => setU64(data, AT.extents, 2n ** 60n)), /extent 0 start exceeds 2\^53/);
    refused(tampered((data) => setU64(data, AT.extents + EXTENT_ENTRY_SIZE + 8, 2n ** 53n)), /extent 1 length exceeds 2\^53/);
  });

  it('rejects bad geometry', () => {
    const cases: [string, (data: DataView) => void, RegExp][] = [
      ['generation 0', (data) => setU64(data, AT.generation, 0), /generation 0/],
      ['WAL at block 0 (over the superblocks)', (data) => setU64(data, AT.walStart, 0), /WAL starts/],
      ['WAL at block 3', (data) => setU64(data, AT.walStart, 3), /WAL starts/],
      ['WAL of 1 block', (data) => (setU64(data, AT.walCount, 1), setU64(data, AT.dataStart, 3)), /WAL of 1 blocks/],
      ['WAL of 0 blocks', (data) => (setU64(data, AT.walCount, 0), setU64(data, AT.dataStart, 2)), /WAL of 0 blocks/],
      ['data region overlapping the WAL', (data) => setU64(data, AT.dataStart, 65), /data region/],
      ['gap between WAL and data region', (data) => setU64(data, AT.dataStart, 67), /data region/],
      ['no data block', (data) => setU64(data, AT.blockCount, 66), /no room/],
      ['store smaller than its WAL', (data) => setU64(data, AT.blockCount, 10), /no room/],
      ['replay block at the WAL end', (data) => setU64(data, AT.walReplay, 64), /replay block/],
      ['replay block far past the WAL', (data) => setU64(data, AT.walReplay, 1_000_000), /replay block/],
    ];
    for (const [what, edit, reason] of cases) refused(tampered(edit), reason, what);
  });

  it('rejects more than 16 checkpoint extents', () => {
    for (const count of [CHECKPOINT_EXTENTS_MAX + 1, 1000, 0xffff_ffff]) {
      refused(tampered((data) => data.setUint32(AT.extentCount, count, true)), /checkpoint extents \(at most 16\)/, `count ${count}`);
    }
  });

  it('rejects a checkpoint extent outside the data region', () => {
    const cases: [string, number, number][] = [
      ['in the superblocks', 0, 1],
      ['in the WAL', 2, 1],
      ['on the last WAL block', 65, 1],
      ['straddling the WAL end', 65, 2],
      ['past the store end', 1000, 1],
      ['running past the store end', 999, 2],
      ['far past the store end', 2 ** 50, 1],
    ];
    for (const [what, startBlock, blockCount] of cases) {
      const bytes = tampered((data) => {
        setU64(data, AT.extents + 2 * EXTENT_ENTRY_SIZE, startBlock);
        setU64(data, AT.extents + 2 * EXTENT_ENTRY_SIZE + 8, blockCount);
        data.setUint32(AT.checkpointBlocks, 3 + blockCount, true);
      });
      refused(bytes, /outside the data region/, what);
    }
  });

  it('rejects extents whose blocks do not add up to the checkpoint block count', () => {
    for (const count of [0, 3, 5, 0xffff_ffff]) {
      refused(tampered((data) => data.setUint32(AT.checkpointBlocks, count, true)), /extents hold 4 blocks, the header says/, `count ${count}`);
    }
    // One extent forgotten by the count: its slot is then "unused but not zero".
    refused(tampered((data) => data.setUint32(AT.extentCount, 2, true)), /unused checkpoint extent 2 is not zero/);
  });

  it('rejects overlapping checkpoint extents, in any order, and accepts adjacent ones', () => {
    const withExtents = (extents: [number, number][]): Uint8Array =>
      tampered((data, bytes) => {
        bytes.fill(0, AT.extents, AT.reserved);
        extents.forEach(([startBlock, blockCount], i) => {
          setU64(data, AT.extents + i * EXTENT_ENTRY_SIZE, startBlock);
          setU64(data, AT.extents + i * EXTENT_ENTRY_SIZE + 8, blockCount);
        });
        data.setUint32(AT.extentCount, extents.length, true);
        const blocks = extents.reduce((sum, [, count]) => sum + count, 0);
        data.setUint32(AT.checkpointBlocks, blocks, true);
        setU64(data, AT.checkpointLength, (blocks - 1) * 4064 + 1);
      });
    const overlapping: [number, number][][] = [
      [[100, 2], [101, 2]],
      [[101, 2], [100, 2]],
      [[100, 2], [100, 2]],
      [[100, 1], [200, 1], [150, 60]],
      [[100, 10], [300, 1], [105, 1]],
    ];
    for (const extents of overlapping) refused(withExtents(extents), /overlap/, JSON.stringify(extents));
    assert.equal(decodeSuperblock(withExtents([[102, 1], [100, 2]]), SLOT).checkpointExtents.length, 2, 'adjacent extents');
  });

  it('rejects a checkpoint length that does not take checkpointBlockCount frame blocks', () => {
    // 4 blocks of 4096 carry 4 × 4064 payload bytes at most, and more than 3 × 4064.
    for (const length of [1, 3 * 4064, 4 * 4064 + 1, 2 ** 40]) {
      refused(tampered((data) => setU64(data, AT.checkpointLength, length)), /does not take 4 blocks/, `length ${length}`);
    }
    for (const length of [3 * 4064 + 1, 4 * 4064]) {
      assert.equal(decodeSuperblock(tampered((data) => setU64(data, AT.checkpointLength, length)), SLOT).checkpointByteLength, length);
    }
  });

  it('rejects an empty checkpoint extent', () => {
    const bytes = tampered((data) => {
      setU64(data, AT.extents + EXTENT_ENTRY_SIZE + 8, 0);
      data.setUint32(AT.checkpointBlocks, 3, true);
    });
    refused(bytes, /extent 1 is empty/);
  });

  it('rejects anything in an unused extent slot', () => {
    for (let slot = 3; slot < CHECKPOINT_EXTENTS_MAX; slot++) {
      for (const byte of [0, 8, 15]) {
        const offset = AT.extents + slot * EXTENT_ENTRY_SIZE + byte;
        refused(tampered((_, bytes) => (bytes[offset] = 0x40)), new RegExp(`unused checkpoint extent ${slot}`), `slot ${slot} byte ${byte}`);
      }
    }
  });

  it('rejects a checkpoint length and extents that disagree about whether a checkpoint exists', () => {
    refused(tampered((data) => setU64(data, AT.checkpointLength, 0)), /disagree/, 'extents but length 0');
    const noExtents = tampered((data, bytes) => {
      data.setUint32(AT.extentCount, 0, true);
      data.setUint32(AT.checkpointBlocks, 0, true);
      bytes.fill(0, AT.extents, AT.reserved);
    });
    refused(noExtents, /disagree/, 'length but no extents');
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
