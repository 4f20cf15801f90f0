// Format constants: the magics spell what docs/format.md says, and the
// relations between limits that the encoders and decoders rely on hold.
import assert from 'node:assert/strict';

import {
  BLOCK_SIZE_MAX,
  BLOCK_SIZE_MIN,
  COMMIT_HEADER_SIZE,
  FORMAT_VERSION,
  FORMAT_VERSION_V1,
  FRAME_HEADER_SIZE,
  FREE_SET_BLOCK_MAGIC,
  FREE_SET_EXTENTS_MAX,
  FREE_SET_HEADER_SIZE,
  KEY_FLAG_STRING,
  KEY_SIZE_MAX,
  RECORD_DELETE,
  RECORD_PUT_EXTENTS,
  RECORD_PUT_INLINE,
  PAGE_SIZE_MIN,
  SUPERBLOCK_HEAD_SLOT_COUNT,
  SUPERBLOCK_MAGIC,
  SUPERBLOCK_SIZE,
  SUPERBLOCK_SLOT_COUNT,
  TREE_LEVELS_MAX,
  VALUE_ENCODING_IDS,
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
    assert.equal(asciiOfU32LE(FREE_SET_BLOCK_MAGIC), 'RFRE');
    assert.notEqual(FREE_SET_BLOCK_MAGIC, WAL_BLOCK_MAGIC);
  });

  it('are format 2, and know format 1 only to refuse it', () => {
    assert.equal(FORMAT_VERSION, 2);
    assert.equal(FORMAT_VERSION_V1, 1);
  });

  it('fit the superblock, with its free-set extent slots before the root fields, into the smallest block', () => {
    assert.ok(SUPERBLOCK_SIZE <= BLOCK_SIZE_MIN);
    // 96 bytes of fields, then the extent slots, which must end where the
    // root fields begin (rootBlock at 224), then 24 bytes of root, value
    // encoding and key count, reserved bytes, the CRC at 508.
    assert.equal(96 + FREE_SET_EXTENTS_MAX * 16, 224);
    assert.ok(224 + 24 + 4 <= SUPERBLOCK_SIZE);
  });

  it('place two of the four superblock slots at the head, in blocks 0 and 1, and the rest after the WAL', () => {
    assert.equal(SUPERBLOCK_SLOT_COUNT, 4);
    assert.equal(SUPERBLOCK_HEAD_SLOT_COUNT, 2);
    // Generation g goes to slots g % 2 and 2 + g % 2: one of each pair.
    assert.equal(SUPERBLOCK_SLOT_COUNT, 2 * SUPERBLOCK_HEAD_SLOT_COUNT);
  });

  it('number the value encodings with distinct non-zero ids that fit the u8 field', () => {
    const ids = Object.values(VALUE_ENCODING_IDS);
    assert.deepEqual(Object.keys(VALUE_ENCODING_IDS), ['msgpack', 'json', 'string', 'binary']);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(ids.every((id) => id >= 1 && id <= 0xff), '0 stays invalid: a zeroed field is never an encoding');
  });

  it('make a page of the smallest block size whole blocks, and bound the tree depth by the u8 level field', () => {
    assert.ok(isPowerOfTwo(PAGE_SIZE_MIN) && PAGE_SIZE_MIN >= BLOCK_SIZE_MIN && PAGE_SIZE_MIN <= BLOCK_SIZE_MAX);
    // Pages are max(B, PAGE_SIZE_MIN) bytes: a whole number of blocks for every legal B.
    for (let blockSize = BLOCK_SIZE_MIN; blockSize <= BLOCK_SIZE_MAX; blockSize *= 2) {
      assert.equal(Math.max(blockSize, PAGE_SIZE_MIN) % blockSize, 0);
    }
    assert.ok(TREE_LEVELS_MAX >= 1 && TREE_LEVELS_MAX - 1 <= 0xff, 'rootLevel is a u8');
  });

  it('bound block sizes by powers of two', () => {
    assert.ok(isPowerOfTwo(BLOCK_SIZE_MIN) && isPowerOfTwo(BLOCK_SIZE_MAX));
    assert.ok(BLOCK_SIZE_MIN <= BLOCK_SIZE_MAX);
  });

  it('leave room in the first frame block for a whole commit or free-set header', () => {
    // The WAL scan reads a commit's durableSequence from its first block alone.
    assert.ok(FRAME_HEADER_SIZE < BLOCK_SIZE_MIN);
    assert.ok(COMMIT_HEADER_SIZE <= BLOCK_SIZE_MIN - FRAME_HEADER_SIZE);
    assert.ok(FREE_SET_HEADER_SIZE <= BLOCK_SIZE_MIN - FRAME_HEADER_SIZE);
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
