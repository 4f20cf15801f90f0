// Frames: a payload split over self-describing, checksummed blocks. Any
// payload round-trips through encodeFrame/decodeFrameBlock; a block that is
// damaged, of the other kind, or whose header contradicts itself is refused
// with a FormatError naming the absolute block it was read from.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { FRAME_HEADER_SIZE, FREE_SET_BLOCK_MAGIC, SEQUENCE_LIMIT, WAL_BLOCK_MAGIC } from '../../format/constants.js';
import { crc32c } from '../../format/crc32c.js';
import { FormatError } from '../../format/format_error.js';
import {
  decodeFrameBlock,
  encodeFrame,
  frameBlockCount,
  frameBlockPayload,
  frameMagic,
  framePayloadPerBlock,
  type FrameBlockHeader,
  type FrameKind,
} from '../../format/frame.js';
import { concatBytes, patternBytes, PROPERTY_SEED, resealFrameBlock, throwsFormatError, withBitFlipped } from './helpers.js';

const BLOCK_SIZE = 512;
const PER_BLOCK = BLOCK_SIZE - FRAME_HEADER_SIZE; // 480
const KINDS: readonly FrameKind[] = ['wal', 'free set'];

// Header layout (docs/format.md § Frames), independent of format/frame.ts.
const AT = { magic: 0, crc: 4, sequence: 8, storeTag: 16, blockIndex: 20, blockCount: 24, payloadBytes: 28 } as const;

/** Absolute index the first block of a test frame is "read from". */
const FIRST_BLOCK = 40;

function encode(kind: FrameKind, payload: Uint8Array, sequence = 77, storeTag = 0x1234_5678, blockSize = BLOCK_SIZE): Uint8Array {
  const target = new Uint8Array(frameBlockCount(payload.length, blockSize) * blockSize);
  encodeFrame(kind, sequence, storeTag, payload, target, blockSize);
  return target;
}

function blockOf(frame: Uint8Array, index: number, blockSize = BLOCK_SIZE): Uint8Array {
  return frame.subarray(index * blockSize, (index + 1) * blockSize);
}

/** Decodes every block of `frame` and joins their payloads. */
function decodeAll(kind: FrameKind, frame: Uint8Array, blockSize = BLOCK_SIZE): { headers: FrameBlockHeader[]; payload: Uint8Array } {
  const headers: FrameBlockHeader[] = [];
  const parts: Uint8Array[] = [];
  for (let index = 0; index < frame.length / blockSize; index++) {
    const block = blockOf(frame, index, blockSize);
    const header = decodeFrameBlock(kind, block, FIRST_BLOCK + index);
    headers.push(header);
    parts.push(frameBlockPayload(block, header));
  }
  return { headers, payload: concatBytes(parts) };
}

/** A copy of block `index` of a 2-block WAL frame (the last one half full), edited and re-sealed. */
function tamperedBlock(index: number, edit: (data: DataView, block: Uint8Array) => void): Uint8Array {
  const block = blockOf(encode('wal', patternBytes(PER_BLOCK + 200, 9)), index).slice();
  edit(new DataView(block.buffer), block);
  return resealFrameBlock(block);
}

function refused(kind: FrameKind, block: Uint8Array, reason: RegExp, what?: string): FormatError {
  return throwsFormatError(() => decodeFrameBlock(kind, block, FIRST_BLOCK), { structure: kind, blockIndex: FIRST_BLOCK, reason }, what);
}

describe('frameBlockCount()', () => {
  it('takes at least one block, then one per started block of payload', () => {
    const cases: [number, number][] = [
      [0, 1],
      [1, 1],
      [PER_BLOCK - 1, 1],
      [PER_BLOCK, 1],
      [PER_BLOCK + 1, 2],
      [2 * PER_BLOCK, 2],
      [2 * PER_BLOCK + 1, 3],
      [3 * PER_BLOCK, 3],
    ];
    for (const [length, blocks] of cases) assert.equal(frameBlockCount(length, BLOCK_SIZE), blocks, `${length} bytes`);
    assert.equal(framePayloadPerBlock(4096), 4096 - 32);
  });
});

describe('encodeFrame()', () => {
  it('writes the magic, a checksum over bytes 8.., and the header fields little-endian', () => {
    const frame = encode('wal', patternBytes(PER_BLOCK + 3, 1), 0x1_0000_0005, 0xfeed_beef);
    for (let index = 0; index < 2; index++) {
      const block = blockOf(frame, index);
      const data = new DataView(block.buffer, block.byteOffset, block.byteLength);
      assert.deepEqual([...block.subarray(0, 4)], [...new TextEncoder().encode('RWAL')]);
      assert.equal(data.getUint32(AT.crc, true), crc32c(block.subarray(8)));
      assert.equal(data.getBigUint64(AT.sequence, true), 0x1_0000_0005n);
      assert.equal(data.getUint32(AT.storeTag, true), 0xfeed_beef);
      assert.equal(data.getUint32(AT.blockIndex, true), index);
      assert.equal(data.getUint32(AT.blockCount, true), 2);
      assert.equal(data.getUint32(AT.payloadBytes, true), index === 0 ? PER_BLOCK : 3);
    }
    assert.deepEqual([...encode('free set', new Uint8Array(1)).subarray(0, 4)], [...new TextEncoder().encode('RFRE')]);
    assert.equal(frameMagic('wal'), WAL_BLOCK_MAGIC);
    assert.equal(frameMagic('free set'), FREE_SET_BLOCK_MAGIC);
  });

  it('zeroes stale bytes of the target after the payload', () => {
    const target = new Uint8Array(2 * BLOCK_SIZE).fill(0xee);
    encodeFrame('wal', 1, 2, patternBytes(PER_BLOCK + 1, 3), target, BLOCK_SIZE);
    assert.ok(target.subarray(BLOCK_SIZE + FRAME_HEADER_SIZE + 1).every((byte) => byte === 0));
    assert.equal(decodeFrameBlock('wal', target.subarray(BLOCK_SIZE), 1).payloadBytes, 1);
  });

  it('refuses a target that is not exactly the frame\'s blocks', () => {
    const payload = new Uint8Array(PER_BLOCK + 1);
    for (const size of [0, BLOCK_SIZE, 2 * BLOCK_SIZE - 1, 3 * BLOCK_SIZE]) {
      assert.throws(() => encodeFrame('wal', 1, 2, payload, new Uint8Array(size), BLOCK_SIZE), RangeError, `target of ${size} bytes`);
    }
  });

  it('refuses a sequence beyond 2^53', () => {
    assert.throws(() => encodeFrame('wal', 2 ** 53, 2, new Uint8Array(1), new Uint8Array(BLOCK_SIZE), BLOCK_SIZE), RangeError);
  });
});

describe('decodeFrameBlock()', () => {
  it('round-trips payloads of 0 to 3 blocks, full and odd lengths, of both kinds', () => {
    const lengths = [0, 1, 2, 31, 479, 480, 481, 777, 959, 960, 961, 1201, 1439, 1440];
    for (const kind of KINDS) {
      for (const length of lengths) {
        const payload = patternBytes(length, length);
        const { headers, payload: decoded } = decodeAll(kind, encode(kind, payload, 1234, 0xabcdef01));
        assert.deepEqual(decoded, payload, `${kind}, ${length} bytes`);
        const blockCount = frameBlockCount(length, BLOCK_SIZE);
        assert.deepEqual(
          headers,
          headers.map((_, index) => ({
            sequence: 1234,
            storeTag: 0xabcdef01,
            blockIndex: index,
            blockCount,
            payloadBytes: index < blockCount - 1 ? PER_BLOCK : length - (blockCount - 1) * PER_BLOCK,
          })),
          `${kind}, ${length} bytes`,
        );
      }
    }
  });

  it('round-trips random payloads, sequences, tags and block sizes (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<FrameKind>('wal', 'free set'),
        fc.constantFrom(512, 1024, 4096),
        fc.uint8Array({ maxLength: 3 * 4064 + 100, size: 'max' }),
        fc.nat({ max: SEQUENCE_LIMIT - 1 }),
        fc.nat({ max: 0xffff_ffff }),
        (kind, blockSize, payload, sequence, storeTag) => {
          const { headers, payload: decoded } = decodeAll(kind, encode(kind, payload, sequence, storeTag, blockSize), blockSize);
          assert.deepEqual(decoded, payload);
          for (const header of headers) {
            assert.equal(header.sequence, sequence);
            assert.equal(header.storeTag, storeTag);
            assert.equal(header.blockCount, headers.length);
          }
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 200 },
    );
  });

  it('detects every single-bit flip in every block of a frame, naming the block', () => {
    const frame = encode('wal', patternBytes(PER_BLOCK + 200, 4));
    for (let index = 0; index < 2; index++) {
      const block = blockOf(frame, index);
      for (let bit = 0; bit < BLOCK_SIZE * 8; bit++) {
        throwsFormatError(
          () => decodeFrameBlock('wal', withBitFlipped(block, bit), FIRST_BLOCK + index),
          { structure: 'wal', blockIndex: FIRST_BLOCK + index, reason: bit < 32 ? /bad magic/ : /checksum mismatch/ },
          `block ${index}, bit ${bit}`,
        );
      }
    }
  });

  it('rejects a block of the other kind: a WAL block read as a free-set block and back', () => {
    const wal = blockOf(encode('wal', patternBytes(10, 1)), 0);
    const freeSet = blockOf(encode('free set', patternBytes(10, 1)), 0);
    refused('free set', wal, /bad magic \(not a free set block\)/);
    refused('wal', freeSet, /bad magic \(not a wal block\)/);
  });

  it('rejects blocks that are not frames at all: zeros, random bytes, a superblock-like block', () => {
    refused('wal', new Uint8Array(BLOCK_SIZE), /bad magic/, 'zeros');
    refused('wal', patternBytes(BLOCK_SIZE, 11), /bad magic/, 'random bytes');
    const magicOnly = new Uint8Array(BLOCK_SIZE);
    new DataView(magicOnly.buffer).setUint32(0, WAL_BLOCK_MAGIC, true);
    refused('wal', magicOnly, /checksum mismatch/, 'the magic and nothing else');
  });

  it('rejects a block whose index and count contradict each other', () => {
    const cases: [string, number, (data: DataView) => void][] = [
      ['a 0-block frame', 0, (data) => data.setUint32(AT.blockCount, 0, true)],
      ['index equal to the count', 1, (data) => data.setUint32(AT.blockIndex, 2, true)],
      ['index past the count', 0, (data) => data.setUint32(AT.blockIndex, 0xffff_ffff, true)],
      ['last block of a 1-block frame claiming index 1', 1, (data) => data.setUint32(AT.blockCount, 1, true)],
    ];
    for (const [what, index, edit] of cases) refused('wal', tamperedBlock(index, edit), /block \d+ of a \d+-block frame/, what);
  });

  it('rejects payload byte counts that do not fit the block\'s place in the frame', () => {
    const cases: [string, number, number][] = [
      ['a first block that is not full', 0, PER_BLOCK - 1],
      ['a first block that is empty', 0, 0],
      ['a last block claiming more than a block holds', 1, PER_BLOCK + 1],
      ['a last block claiming 2^32-1 bytes', 1, 0xffff_ffff],
    ];
    for (const [what, index, payloadBytes] of cases) {
      refused('wal', tamperedBlock(index, (data) => data.setUint32(AT.payloadBytes, payloadBytes, true)), /payload bytes in block/, what);
    }
  });

  it('rejects an empty last block in a multi-block frame (the encoder never writes one)', () => {
    const emptyLast = tamperedBlock(1, (data, block) => {
      data.setUint32(AT.payloadBytes, 0, true);
      block.fill(0, FRAME_HEADER_SIZE);
    });
    refused('wal', emptyLast, /0 payload bytes in block 1 of 2/);
    // A 1-block frame of an empty payload is the one frame with 0 payload bytes.
    assert.equal(decodeFrameBlock('wal', encode('wal', new Uint8Array(0)), FIRST_BLOCK).payloadBytes, 0);
  });

  it('rejects a sequence of 2^53 or more', () => {
    refused('wal', tamperedBlock(0, (data) => data.setBigUint64(AT.sequence, 2n ** 53n, true)), /sequence exceeds 2\^53/);
    refused('wal', tamperedBlock(0, (data) => data.setBigUint64(AT.sequence, 2n ** 64n - 1n, true)), /sequence exceeds 2\^53/);
    // One that could not advance.
    refused('wal', tamperedBlock(0, (data) => data.setBigUint64(AT.sequence, 2n ** 52n, true)), /sequence 4503599627370496 is at or above 2\^52/);
  });

  it('rejects any nonzero byte after the payload, even under a matching checksum', () => {
    // The last block holds 200 payload bytes: every byte after them must be zero.
    for (let offset = FRAME_HEADER_SIZE + 200; offset < BLOCK_SIZE; offset++) {
      refused('wal', tamperedBlock(1, (_, block) => (block[offset] = 0x01)), /after the payload are not zero/, `byte ${offset}`);
    }
    // A shortened payload count leaves real payload bytes behind it.
    refused('wal', tamperedBlock(1, (data) => data.setUint32(AT.payloadBytes, 199, true)), /after the payload are not zero/, 'count one short');
  });

  it('never throws anything but a FormatError on random damage to a valid block (property)', () => {
    const block = blockOf(encode('wal', patternBytes(PER_BLOCK + 200, 4)), 1).slice();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(BLOCK_SIZE - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }), fc.boolean(), (edits, reseal) => {
        const damaged = block.slice();
        for (const [offset, xor] of edits) damaged[offset] ^= xor;
        if (reseal) resealFrameBlock(damaged);
        try {
          const header = decodeFrameBlock('wal', damaged, FIRST_BLOCK);
          // A re-sealed edit of the payload can be a valid block; then it is what it says.
          assert.equal(header.blockIndex < header.blockCount, true);
          assert.ok(header.payloadBytes <= PER_BLOCK);
        } catch (error) {
          assert.ok(error instanceof FormatError, `expected a FormatError, got ${String(error)}`);
          assert.equal(error.blockIndex, FIRST_BLOCK);
        }
      }),
      { seed: PROPERTY_SEED, numRuns: 2000 },
    );
  });
});

describe('frameBlockPayload()', () => {
  it('returns a view of exactly the block\'s payload bytes', () => {
    const payload = patternBytes(123, 8);
    const block = encode('free set', payload);
    const header = decodeFrameBlock('free set', block, 0);
    const view = frameBlockPayload(block, header);
    assert.deepEqual(view, payload);
    assert.equal(view.buffer, block.buffer, 'a view, not a copy');
  });
});
