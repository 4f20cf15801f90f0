// Format constants: the magics spell what docs/format.md says, and the
// relations between limits that the encoders and decoders rely on hold.
import assert from 'node:assert/strict';

import {
  BLOCK_SIZE_MAX,
  BLOCK_SIZE_MIN,
  CHECKPOINT_BLOCK_MAGIC,
  CHECKPOINT_EXTENTS_MAX,
  CHECKPOINT_HEADER_SIZE,
  COMMIT_HEADER_SIZE,
  FORMAT_VERSION,
  FRAME_HEADER_SIZE,
  KEY_FLAG_STRING,
  KEY_SIZE_MAX,
  RECORD_DELETE,
  RECORD_PUT_EXTENTS,
  RECORD_PUT_INLINE,
  SUPERBLOCK_MAGIC,
  SUPERBLOCK_SIZE,
  VALUE_EXTENTS_MAX,
  VALUE_FLAG_RAW,
  WAL_BLOCK_MAGIC,
} from '../../format/constants.js';

function asciiOfU32LE(value: number): string {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return new TextDecoder().decode(bytes);
}

const isPowerOfTwo = (value: number): boolean => value > 0 && (value & (value - 1)) === 0;

describe('format constants', () => {
  it('spell the documented magics', () => {
    assert.equal(new TextDecoder().decode(SUPERBLOCK_MAGIC), 'RINGSTOR');
    assert.equal(asciiOfU32LE(WAL_BLOCK_MAGIC), 'RWAL');
    assert.equal(asciiOfU32LE(CHECKPOINT_BLOCK_MAGIC), 'RCKP');
    assert.equal(FORMAT_VERSION, 1);
  });

  it('fit the superblock, with its extent slots, into the smallest block', () => {
    assert.ok(SUPERBLOCK_SIZE <= BLOCK_SIZE_MIN);
    // 96 bytes of fields, the extent slots, reserved bytes, the CRC.
    assert.ok(96 + CHECKPOINT_EXTENTS_MAX * 16 + 4 <= SUPERBLOCK_SIZE);
  });

  it('bound block sizes by powers of two', () => {
    assert.ok(isPowerOfTwo(BLOCK_SIZE_MIN) && isPowerOfTwo(BLOCK_SIZE_MAX));
    assert.ok(BLOCK_SIZE_MIN <= BLOCK_SIZE_MAX);
  });

  it('leave room in the first frame block for a whole commit or checkpoint header', () => {
    // The WAL scan reads a commit's durableSequence from its first block alone.
    assert.ok(FRAME_HEADER_SIZE < BLOCK_SIZE_MIN);
    assert.ok(COMMIT_HEADER_SIZE <= BLOCK_SIZE_MIN - FRAME_HEADER_SIZE);
    assert.ok(CHECKPOINT_HEADER_SIZE <= BLOCK_SIZE_MIN - FRAME_HEADER_SIZE);
  });

  it('keep record limits within their on-disk field widths', () => {
    assert.ok(KEY_SIZE_MAX >= 1 && KEY_SIZE_MAX <= 0xffff, 'keyLength is a u16');
    assert.ok(VALUE_EXTENTS_MAX >= 1 && VALUE_EXTENTS_MAX <= 0xffff_ffff, 'extentCount is a u32');
    assert.equal(new Set([RECORD_PUT_INLINE, RECORD_PUT_EXTENTS, RECORD_DELETE]).size, 3);
    assert.ok([RECORD_PUT_INLINE, RECORD_PUT_EXTENTS, RECORD_DELETE].every((type) => type > 0 && type <= 0xff));
    assert.ok(isPowerOfTwo(KEY_FLAG_STRING) && KEY_FLAG_STRING <= 0x80, 'one bit of the u8 key flags');
    assert.ok(isPowerOfTwo(VALUE_FLAG_RAW) && VALUE_FLAG_RAW <= 0x80 && (VALUE_FLAG_RAW & KEY_FLAG_STRING) === 0, 'another bit of the same byte');
  });
});
