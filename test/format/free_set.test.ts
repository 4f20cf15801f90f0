// Free-set payloads: u32 format (1) | u32 reserved (0) | u64 dataBlockCount |
// ceil(dataBlockCount / 8) bytes of bitmap, bit i (byte i >> 3, bit i & 7)
// set when data block dataStartBlock + i is in use. Any free set round-trips
// to its maximal free runs; a header or bitmap that does not fit the
// superblock's geometry is refused with a FormatError naming the free set
// and its first block.
//
// The payload has no checksum of its own: the frame blocks that carry it
// have theirs (docs/format.md § Frames), which catch a flipped bit on the
// device. A flipped bit inside the bitmap that got past them (a writer bug,
// damage in memory) decodes to a different free set — the decoder cannot
// tell — and recovery's replay checks are what can still catch it
// (docs/format.md § Free set). The tests below pin that down.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { FREE_SET_HEADER_SIZE } from '../../format/constants.js';
import type { Extent } from '../../format/extent.js';
import { FormatError } from '../../format/format_error.js';
import { decodeFreeSetBitmap, decodeFreeSetPayload, encodeFreeSetPayload, markFreeInBitmap, newFreeSetPayload } from '../../format/free_set.js';
import { freeSetPayloadBytes } from '../../format/superblock.js';
import { PROPERTY_SEED, throwsFormatError, withBitFlipped } from './helpers.js';

/** Absolute block of the data region's first block in these tests. */
const DATA_START = 70;
/** The block the free-set frame's first block is "read from": errors must name it. */
const FIRST_BLOCK = 300;

// Header layout (docs/format.md § Free set), independent of format/free_set.ts.
const AT = { format: 0, reserved: 4, dataBlockCount: 8, bitmap: 16 } as const;

function encode(dataBlockCount: number, free: readonly Extent[], dataStart = DATA_START): Uint8Array {
  return encodeFreeSetPayload(dataStart, dataBlockCount, free);
}

function decode(payload: Uint8Array, dataBlockCount: number, dataStart = DATA_START): Extent[] {
  return decodeFreeSetPayload(payload, dataStart, dataBlockCount, FIRST_BLOCK);
}

function refused(payload: Uint8Array, dataBlockCount: number, reason: RegExp, what?: string): FormatError {
  return throwsFormatError(() => decode(payload, dataBlockCount), { structure: 'free set', blockIndex: FIRST_BLOCK, reason }, what);
}

/** The maximal free runs of a used/free map, computed bit by bit: the model the decoder must match. */
function freeRunsOf(used: readonly boolean[], dataStart = DATA_START): Extent[] {
  const runs: Extent[] = [];
  for (let i = 0; i < used.length; i++) {
    if (used[i]) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.startBlock + last.blockCount === dataStart + i) last.blockCount++;
    else runs.push({ startBlock: dataStart + i, blockCount: 1 });
  }
  return runs;
}

/** The used/free map a list of free extents describes. */
function usedMapOf(dataBlockCount: number, free: readonly Extent[], dataStart = DATA_START): boolean[] {
  const used = new Array<boolean>(dataBlockCount).fill(true);
  for (const extent of free) for (let b = extent.startBlock; b < extent.startBlock + extent.blockCount; b++) used[b - dataStart] = false;
  return used;
}

/** The bitmap bytes a used/free map encodes to, built bit by bit. */
function bitmapOf(used: readonly boolean[]): number[] {
  const bytes = new Array<number>(Math.ceil(used.length / 8)).fill(0);
  used.forEach((inUse, i) => {
    if (inUse) bytes[i >> 3] |= 1 << (i & 7);
  });
  return bytes;
}

/** A free set as sorted, disjoint extents that may touch (the encoder takes any such list): from a random map, cut at random. */
const freeSetCase: fc.Arbitrary<{ dataBlockCount: number; free: Extent[]; used: boolean[] }> = fc
  .oneof(
    // Small regions, every length mod 8, 1 block included.
    fc.integer({ min: 1, max: 40 }),
    // Regions of whole and partial bytes, big enough for long runs of 0x00 and 0xff.
    fc.integer({ min: 41, max: 3000 }),
  )
  .chain((dataBlockCount) =>
    fc.record({
      dataBlockCount: fc.constant(dataBlockCount),
      // A density per case: mostly free, mostly used, and mixed maps.
      density: fc.constantFrom(0, 0.05, 0.5, 0.95, 1),
      seeds: fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: dataBlockCount, maxLength: dataBlockCount }),
      cuts: fc.array(fc.boolean(), { minLength: dataBlockCount, maxLength: dataBlockCount }),
    }),
  )
  .map(({ dataBlockCount, density, seeds, cuts }) => {
    // Runs of equal bits, so that whole bytes of 0x00 and 0xff occur.
    const used: boolean[] = [];
    let current = seeds[0] < density;
    for (let i = 0; i < dataBlockCount; i++) {
      if (seeds[i] < 0.1) current = !current;
      used.push(density === 0 ? true : density === 1 ? false : current);
    }
    // Free extents that touch are cut at random places: the decoder merges them back.
    const free: Extent[] = [];
    for (let i = 0; i < dataBlockCount; i++) {
      if (used[i]) continue;
      const last = free[free.length - 1];
      if (last !== undefined && last.startBlock + last.blockCount === DATA_START + i && !cuts[i]) last.blockCount++;
      else free.push({ startBlock: DATA_START + i, blockCount: 1 });
    }
    return { dataBlockCount, free, used };
  });

describe('encodeFreeSetPayload()', () => {
  it('writes format 1, a zero reserved word, the u64 data block count and one bit a block, least significant first', () => {
    // 11 blocks (absolute 70..80): free 71..73 and 79, used 70, 74..78 and 80.
    const payload = encode(11, [
      { startBlock: 71, blockCount: 3 },
      { startBlock: 79, blockCount: 1 },
    ]);
    const data = new DataView(payload.buffer);
    assert.equal(payload.length, AT.bitmap + 2);
    assert.equal(data.getUint32(AT.format, true), 1);
    assert.equal(data.getUint32(AT.reserved, true), 0);
    assert.equal(data.getBigUint64(AT.dataBlockCount, true), 11n);
    // Byte 0: blocks 0..7 = used, free, free, free, used, used, used, used → 0b1111_0001.
    // Byte 1: blocks 8..10 = used, free, used, then 5 bits past the region (zero) → 0b0000_0101.
    assert.deepEqual([...payload.subarray(AT.bitmap)], [0xf1, 0x05]);
    assert.equal(FREE_SET_HEADER_SIZE, 16);
  });

  it('takes exactly freeSetPayloadBytes(dataBlockCount) bytes', () => {
    for (const dataBlockCount of [1, 7, 8, 9, 15, 16, 17, 4096, 4097, 100_003]) {
      assert.equal(encode(dataBlockCount, []).length, freeSetPayloadBytes(dataBlockCount), `${dataBlockCount} blocks`);
      assert.equal(freeSetPayloadBytes(dataBlockCount), 16 + Math.ceil(dataBlockCount / 8));
    }
  });

  it('marks every block in use when nothing is free, and none when everything is', () => {
    for (const dataBlockCount of [1, 5, 8, 13, 64, 65]) {
      const allUsed = encode(dataBlockCount, []);
      assert.deepEqual([...allUsed.subarray(AT.bitmap)], bitmapOf(new Array<boolean>(dataBlockCount).fill(true)), `${dataBlockCount} blocks, all used`);
      const allFree = encode(dataBlockCount, [{ startBlock: DATA_START, blockCount: dataBlockCount }]);
      assert.ok(allFree.subarray(AT.bitmap).every((byte) => byte === 0), `${dataBlockCount} blocks, all free`);
    }
  });

  it('refuses extents out of order, overlapping, empty or outside the data region', () => {
    const cases: [string, Extent[]][] = [
      ['before the data region', [{ startBlock: DATA_START - 1, blockCount: 2 }]],
      ['past the data region', [{ startBlock: DATA_START + 9, blockCount: 2 }]],
      ['far past the data region', [{ startBlock: DATA_START + 1000, blockCount: 1 }]],
      ['empty', [{ startBlock: DATA_START, blockCount: 0 }]],
      ['out of order', [{ startBlock: DATA_START + 5, blockCount: 1 }, { startBlock: DATA_START + 1, blockCount: 1 }]],
      ['overlapping', [{ startBlock: DATA_START + 1, blockCount: 3 }, { startBlock: DATA_START + 3, blockCount: 1 }]],
    ];
    for (const [what, free] of cases) assert.throws(() => encode(10, free), RangeError, what);
  });
});

describe('newFreeSetPayload() and markFreeInBitmap()', () => {
  it('build, from a bitmap of in-use bits, the bytes encodeFreeSetPayload writes (property)', () => {
    fc.assert(
      fc.property(freeSetCase, ({ dataBlockCount, free, used }) => {
        const { payload, bitmap } = newFreeSetPayload(dataBlockCount);
        assert.equal(bitmap.length, Math.ceil(dataBlockCount / 8));
        assert.ok(bitmap.every((byte) => byte === 0), 'the bitmap starts all zero');
        // All in use (bits past the region zero), then the free extents cleared.
        bitmap.set(bitmapOf(new Array<boolean>(dataBlockCount).fill(true)));
        for (const extent of free) markFreeInBitmap(bitmap, DATA_START, dataBlockCount, extent);
        assert.deepEqual([...payload], [...encode(dataBlockCount, free)]);
        assert.deepEqual([...bitmap], bitmapOf(used));
      }),
      { seed: PROPERTY_SEED, numRuns: 200 },
    );
  });

  it('refuses to mark free an extent with a block free already, empty or outside the data region, changing nothing', () => {
    const { bitmap } = newFreeSetPayload(20);
    bitmap.set([0xff, 0xff, 0x0f]);
    markFreeInBitmap(bitmap, DATA_START, 20, { startBlock: DATA_START + 4, blockCount: 3 });
    const cases: [string, Extent][] = [
      ['overlapping a free extent', { startBlock: DATA_START + 6, blockCount: 2 }],
      ['inside a free extent', { startBlock: DATA_START + 5, blockCount: 1 }],
      ['empty', { startBlock: DATA_START + 10, blockCount: 0 }],
      ['before the data region', { startBlock: DATA_START - 1, blockCount: 2 }],
      ['past the data region', { startBlock: DATA_START + 19, blockCount: 2 }],
    ];
    for (const [what, extent] of cases) {
      const before = [...bitmap];
      assert.throws(() => markFreeInBitmap(bitmap, DATA_START, 20, extent), RangeError, what);
      assert.deepEqual([...bitmap], before, what);
    }
  });
});

describe('decodeFreeSetBitmap()', () => {
  it('returns a view of the bitmap and the blocks it describes, fewer than the region after a growth', () => {
    const payload = encode(20, [{ startBlock: DATA_START + 2, blockCount: 3 }]);
    const { bitmap, describedBlockCount } = decodeFreeSetBitmap(payload, 100, FIRST_BLOCK);
    assert.equal(describedBlockCount, 20);
    assert.equal(bitmap.buffer, payload.buffer, 'a view, not a copy');
    assert.deepEqual([...bitmap], [0xe3, 0xff, 0x0f]);
    assert.throws(() => decodeFreeSetBitmap(payload, 19, FIRST_BLOCK), (error: unknown) => error instanceof FormatError && error.blockIndex === FIRST_BLOCK);
  });
});

describe('decodeFreeSetPayload()', () => {
  it('decodes the documented example to its free runs', () => {
    const payload = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0xf1, 0x05]);
    assert.deepEqual(decode(payload, 11), [
      { startBlock: 71, blockCount: 3 },
      { startBlock: 79, blockCount: 1 },
    ]);
  });

  it('round-trips a 1-block data region, used and free', () => {
    assert.deepEqual(decode(encode(1, []), 1), []);
    assert.deepEqual(decode(encode(1, [{ startBlock: DATA_START, blockCount: 1 }]), 1), [{ startBlock: DATA_START, blockCount: 1 }]);
    assert.equal(encode(1, []).length, 17);
  });

  it('round-trips an empty free set and an all-free region, for sizes that are and are not multiples of 8', () => {
    for (const dataBlockCount of [1, 2, 7, 8, 9, 16, 23, 24, 1000, 1001]) {
      assert.deepEqual(decode(encode(dataBlockCount, []), dataBlockCount), [], `${dataBlockCount} blocks, none free`);
      const all = [{ startBlock: DATA_START, blockCount: dataBlockCount }];
      assert.deepEqual(decode(encode(dataBlockCount, all), dataBlockCount), all, `${dataBlockCount} blocks, all free`);
    }
  });

  it('merges free extents that touch into maximal runs', () => {
    const touching = [
      { startBlock: 70, blockCount: 2 },
      { startBlock: 72, blockCount: 6 },
      { startBlock: 78, blockCount: 1 },
      { startBlock: 80, blockCount: 1 },
    ];
    assert.deepEqual(decode(encode(20, touching), 20), [
      { startBlock: 70, blockCount: 9 },
      { startBlock: 80, blockCount: 1 },
    ]);
  });

  it('round-trips random free sets to their maximal free runs, bit for bit (property)', () => {
    fc.assert(
      fc.property(freeSetCase, ({ dataBlockCount, free, used }) => {
        const payload = encode(dataBlockCount, free);
        assert.deepEqual([...payload.subarray(AT.bitmap)], bitmapOf(used), 'the bitmap, bit by bit');
        assert.deepEqual(decode(payload, dataBlockCount), freeRunsOf(used));
      }),
      { seed: PROPERTY_SEED, numRuns: 500 },
    );
  });

  it('returns absolute block indexes, whatever the data region\'s start', () => {
    for (const dataStart of [6, 70, 2 ** 40]) {
      const free = [{ startBlock: dataStart + 3, blockCount: 10 }];
      assert.deepEqual(decode(encode(17, free, dataStart), 17, dataStart), free, `data region at ${dataStart}`);
    }
  });

  it('reads a payload that is a view at an odd offset of a larger buffer', () => {
    const payload = encode(19, [{ startBlock: 75, blockCount: 9 }]);
    const backing = new Uint8Array(payload.length + 7);
    backing.set(payload, 7);
    assert.deepEqual(decode(backing.subarray(7), 19), [{ startBlock: 75, blockCount: 9 }]);
  });

  it('rejects a payload shorter than its header', () => {
    for (let length = 0; length < FREE_SET_HEADER_SIZE; length++) {
      refused(encode(8, []).subarray(0, length), 8, /shorter than its header/, `${length} bytes`);
    }
  });

  it('rejects a payload format other than 1', () => {
    for (const format of [0, 2, 0x100, 0xffff_ffff]) {
      const payload = encode(8, []);
      new DataView(payload.buffer).setUint32(AT.format, format, true);
      refused(payload, 8, new RegExp(`payload format ${format}$`), `format ${format}`);
    }
  });

  it('rejects nonzero reserved header bytes', () => {
    for (let offset = AT.reserved; offset < AT.dataBlockCount; offset++) {
      const payload = encode(8, []);
      payload[offset] = 0x10;
      refused(payload, 8, /reserved bytes are not zero/, `byte ${offset}`);
    }
  });

  it('rejects a data block count larger than the superblock\'s', () => {
    const payload = encode(20, []);
    for (const expected of [0, 1, 19]) refused(payload, expected, new RegExp(`describes 20 data blocks, the superblock ${expected}$`), `expected ${expected}`);
    const huge = encode(20, []);
    new DataView(huge.buffer).setBigUint64(AT.dataBlockCount, 2n ** 64n - 1n, true);
    refused(huge, 20, /describes 2\^53 or more data blocks, the superblock 20$/, 'a count of 2^64 - 1');
    // The u64 is read whole: a high word that makes 20 into 2^32 + 20 is a different count.
    const highWord = encode(20, []);
    new DataView(highWord.buffer).setUint32(AT.dataBlockCount + 4, 1, true);
    refused(highWord, 20, /describes 4294967316 data blocks, the superblock 20$/, 'high word 1');
  });

  it('takes the blocks past a smaller described count as free (the store grew after that checkpoint)', () => {
    // Used: 2..4 and the last described block (19): the growth starts a new run.
    const payload = encode(20, [{ startBlock: DATA_START, blockCount: 2 }, { startBlock: DATA_START + 5, blockCount: 14 }]);
    assert.deepEqual(decode(payload, 20), [{ startBlock: DATA_START, blockCount: 2 }, { startBlock: DATA_START + 5, blockCount: 14 }]);
    assert.deepEqual(decode(payload, 160), [
      { startBlock: DATA_START, blockCount: 2 },
      { startBlock: DATA_START + 5, blockCount: 14 },
      { startBlock: DATA_START + 20, blockCount: 140 },
    ]);
    // A free run at the end of the described blocks continues into the growth.
    const tailFree = encode(20, [{ startBlock: DATA_START + 10, blockCount: 10 }]);
    assert.deepEqual(decode(tailFree, 21), [{ startBlock: DATA_START + 10, blockCount: 11 }]);
    // A count of zero describes nothing a checkpoint could have written.
    const none = encode(20, []);
    new DataView(none.buffer).setUint32(AT.dataBlockCount, 0, true);
    refused(none, 20, /describes no data blocks$/, 'a count of 0');
  });

  it('rejects a bitmap of the wrong length for its data block count', () => {
    const payload = encode(20, []); // 3 bitmap bytes
    refused(payload.subarray(0, payload.length - 1), 20, /a bitmap of 2 bytes for 20 blocks/, 'one byte short');
    refused(payload.subarray(0, AT.bitmap), 20, /a bitmap of 0 bytes for 20 blocks/, 'no bitmap');
    refused(Uint8Array.from([...payload, 0]), 20, /a bitmap of 4 bytes for 20 blocks/, 'one zero byte too many');
    refused(Uint8Array.from([...payload, 0xff]), 20, /a bitmap of 4 bytes for 20 blocks/, 'one full byte too many');
  });

  it('rejects any bit set past the end of the data region', () => {
    for (const dataBlockCount of [1, 5, 7, 9, 15, 1001]) {
      const tailBits = dataBlockCount % 8;
      for (let bit = tailBits; bit < 8; bit++) {
        for (const free of [[], [{ startBlock: DATA_START, blockCount: dataBlockCount }]]) {
          const payload = encode(dataBlockCount, free);
          payload[payload.length - 1] |= 1 << bit;
          refused(payload, dataBlockCount, /bits past the data region are set/, `${dataBlockCount} blocks, bit ${bit}, ${free.length === 0 ? 'all used' : 'all free'}`);
        }
      }
    }
  });

  it('decodes a single flipped bitmap bit to a different free set: it has no checksum of its own (the frame has)', () => {
    // 37 blocks, a mixed map: every bit of the region flips exactly that block.
    const free = [
      { startBlock: 71, blockCount: 4 },
      { startBlock: 80, blockCount: 9 },
      { startBlock: 100, blockCount: 7 },
    ];
    const payload = encode(37, free);
    const used = usedMapOf(37, free);
    for (let block = 0; block < 37; block++) {
      const flipped = used.slice();
      flipped[block] = !flipped[block];
      assert.deepEqual(decode(withBitFlipped(payload, AT.bitmap * 8 + block), 37), freeRunsOf(flipped), `block ${block}`);
      assert.notDeepEqual(freeRunsOf(flipped), free, `block ${block}`);
    }
  });

  it('never decodes a single flipped bit anywhere in the payload to the same free set', () => {
    // Header bits and bits past the region are refused; bitmap bits change the set.
    const free = [{ startBlock: 73, blockCount: 30 }];
    const payload = encode(45, free);
    for (let bit = 0; bit < payload.length * 8; bit++) {
      const damaged = withBitFlipped(payload, bit);
      let outcome: Extent[] | undefined;
      try {
        outcome = decode(damaged, 45);
      } catch (error) {
        assert.ok(error instanceof FormatError, `bit ${bit}: expected a FormatError, got ${String(error)}`);
        assert.equal(error.blockIndex, FIRST_BLOCK);
        continue;
      }
      assert.ok(bit >= AT.bitmap * 8 && bit < AT.bitmap * 8 + 45, `bit ${bit} (outside the region's bits) was accepted`);
      assert.notDeepEqual(outcome, free, `bit ${bit}`);
    }
  });

  it('never throws anything but a FormatError on random damage, and decodes what it accepts to sorted, disjoint, maximal runs (property)', () => {
    const clean = encode(61, [
      { startBlock: 72, blockCount: 5 },
      { startBlock: 90, blockCount: 20 },
    ]);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(clean.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(clean.length),
        (edits, cut) => {
          const payload = clean.slice(0, cut === clean.length ? undefined : cut);
          for (const [offset, xor] of edits) if (offset < payload.length) payload[offset] ^= xor;
          let runs: Extent[];
          try {
            runs = decode(payload, 61);
          } catch (error) {
            assert.ok(error instanceof FormatError, `expected a FormatError, got ${String(error)}`);
            assert.equal(error.blockIndex, FIRST_BLOCK);
            return;
          }
          for (let i = 0; i < runs.length; i++) {
            assert.ok(runs[i].blockCount >= 1 && runs[i].startBlock >= DATA_START && runs[i].startBlock + runs[i].blockCount <= DATA_START + 61);
            if (i > 0) assert.ok(runs[i].startBlock > runs[i - 1].startBlock + runs[i - 1].blockCount, 'maximal: a used block between runs');
          }
          // What was accepted re-encodes to the same bytes: one encoding per free set.
          assert.deepEqual(encode(61, runs), payload);
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 1000 },
    );
  });
});
