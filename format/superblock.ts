// Superblock: the root of the store. Two copies, in blocks 0 and 1; a store
// writes generation g into slot g % 2, so the previous generation survives a
// torn write of the next. Open picks the valid copy with the highest
// generation. Layout: docs/format.md § Superblock.
import { crc32c } from './crc32c.js';
import { isAllZero, readU64, view, writeU64 } from './bytes.js';
import {
  BLOCK_SIZE_MAX,
  BLOCK_SIZE_MIN,
  CHECKPOINT_EXTENTS_MAX,
  FORMAT_VERSION,
  FRAME_HEADER_SIZE,
  SUPERBLOCK_MAGIC,
  SUPERBLOCK_SIZE,
} from './constants.js';
import { FormatError } from './format_error.js';
import type { Extent } from './extent.js';

export interface Superblock {
  formatVersion: number;
  blockSize: number;
  /** Blocks in the whole store (device or file size / blockSize). */
  blockCount: number;
  walStartBlock: number;
  walBlockCount: number;
  dataStartBlock: number;
  /** Strictly increasing with every superblock write; >= 1. */
  generation: number;
  /** Random tag of this store, stamped into every framed block. */
  storeTag: number;
  /** Highest commit sequence contained in the checkpoint (0: none yet). */
  checkpointSeq: number;
  /** WAL-relative block where commit checkpointSeq + 1 starts. */
  walReplayBlock: number;
  /** Payload bytes of the checkpoint (0: no checkpoint, the index is empty). */
  checkpointByteLength: number;
  /** Blocks of the checkpoint, the sum of its extents. */
  checkpointBlockCount: number;
  checkpointExtents: Extent[];
}

const OFFSET_MAGIC = 0;
const OFFSET_VERSION = 8;
const OFFSET_BLOCK_SIZE = 12;
const OFFSET_BLOCK_COUNT = 16;
const OFFSET_WAL_START = 24;
const OFFSET_WAL_COUNT = 32;
const OFFSET_DATA_START = 40;
const OFFSET_GENERATION = 48;
const OFFSET_STORE_TAG = 56;
const OFFSET_FLAGS = 60;
const OFFSET_CHECKPOINT_SEQ = 64;
const OFFSET_WAL_REPLAY = 72;
const OFFSET_CHECKPOINT_LENGTH = 80;
const OFFSET_CHECKPOINT_BLOCKS = 88;
const OFFSET_CHECKPOINT_EXTENT_COUNT = 92;
const OFFSET_CHECKPOINT_EXTENTS = 96;
const EXTENT_ENTRY_SIZE = 16;
const OFFSET_RESERVED = OFFSET_CHECKPOINT_EXTENTS + CHECKPOINT_EXTENTS_MAX * EXTENT_ENTRY_SIZE; // 352
const OFFSET_CRC = SUPERBLOCK_SIZE - 4; // 508

/** Encodes into the first SUPERBLOCK_SIZE bytes of `target` (which must be zeroed beyond). */
export function encodeSuperblock(superblock: Superblock, target: Uint8Array): void {
  if (target.length < SUPERBLOCK_SIZE) throw new RangeError('superblock target too small');
  if (superblock.checkpointExtents.length > CHECKPOINT_EXTENTS_MAX) {
    throw new RangeError(`a superblock names at most ${CHECKPOINT_EXTENTS_MAX} checkpoint extents`);
  }
  target.fill(0, 0, SUPERBLOCK_SIZE);
  const data = view(target);
  target.set(SUPERBLOCK_MAGIC, OFFSET_MAGIC);
  data.setUint32(OFFSET_VERSION, superblock.formatVersion, true);
  data.setUint32(OFFSET_BLOCK_SIZE, superblock.blockSize, true);
  writeU64(data, OFFSET_BLOCK_COUNT, superblock.blockCount);
  writeU64(data, OFFSET_WAL_START, superblock.walStartBlock);
  writeU64(data, OFFSET_WAL_COUNT, superblock.walBlockCount);
  writeU64(data, OFFSET_DATA_START, superblock.dataStartBlock);
  writeU64(data, OFFSET_GENERATION, superblock.generation);
  data.setUint32(OFFSET_STORE_TAG, superblock.storeTag >>> 0, true);
  data.setUint32(OFFSET_FLAGS, 0, true);
  writeU64(data, OFFSET_CHECKPOINT_SEQ, superblock.checkpointSeq);
  writeU64(data, OFFSET_WAL_REPLAY, superblock.walReplayBlock);
  writeU64(data, OFFSET_CHECKPOINT_LENGTH, superblock.checkpointByteLength);
  data.setUint32(OFFSET_CHECKPOINT_BLOCKS, superblock.checkpointBlockCount, true);
  data.setUint32(OFFSET_CHECKPOINT_EXTENT_COUNT, superblock.checkpointExtents.length, true);
  superblock.checkpointExtents.forEach((extent, i) => {
    writeU64(data, OFFSET_CHECKPOINT_EXTENTS + i * EXTENT_ENTRY_SIZE, extent.startBlock);
    writeU64(data, OFFSET_CHECKPOINT_EXTENTS + i * EXTENT_ENTRY_SIZE + 8, extent.blockCount);
  });
  data.setUint32(OFFSET_CRC, crc32c(target.subarray(0, OFFSET_CRC)), true);
}

/** True if the bytes start with the superblock magic (a ringstore, maybe damaged). */
export function hasSuperblockMagic(bytes: Uint8Array): boolean {
  for (let i = 0; i < SUPERBLOCK_MAGIC.length; i++) if (bytes[i] !== SUPERBLOCK_MAGIC[i]) return false;
  return true;
}

/**
 * Decodes and validates one superblock copy read from block `blockIndex`.
 * Throws FormatError saying what is wrong; never returns a partly valid value.
 */
export function decodeSuperblock(bytes: Uint8Array, blockIndex: number): Superblock {
  const fail = (reason: string): never => {
    throw new FormatError('superblock', reason, blockIndex);
  };
  if (bytes.length < SUPERBLOCK_SIZE) fail('shorter than a superblock');
  if (!hasSuperblockMagic(bytes)) fail('bad magic (not a ringstore superblock)');
  const data = view(bytes);
  const storedCrc = data.getUint32(OFFSET_CRC, true);
  const computedCrc = crc32c(bytes.subarray(0, OFFSET_CRC));
  if (storedCrc !== computedCrc) {
    fail(`checksum mismatch (stored 0x${storedCrc.toString(16)}, computed 0x${computedCrc.toString(16)})`);
  }
  const formatVersion = data.getUint32(OFFSET_VERSION, true);
  if (formatVersion !== FORMAT_VERSION) fail(`format version ${formatVersion} is not ${FORMAT_VERSION}`);
  if (data.getUint32(OFFSET_FLAGS, true) !== 0) fail('unknown flags set');
  if (!isAllZero(bytes, OFFSET_RESERVED, OFFSET_CRC)) fail('reserved bytes are not zero');
  const blockSize = data.getUint32(OFFSET_BLOCK_SIZE, true);
  if (blockSize < BLOCK_SIZE_MIN || blockSize > BLOCK_SIZE_MAX || (blockSize & (blockSize - 1)) !== 0) {
    fail(`block size ${blockSize} is not a power of two from ${BLOCK_SIZE_MIN} to ${BLOCK_SIZE_MAX}`);
  }
  const u64 = (offset: number, name: string): number => {
    const value = readU64(data, offset);
    if (value < 0) fail(`${name} exceeds 2^53`);
    return value;
  };
  const superblock: Superblock = {
    formatVersion,
    blockSize,
    blockCount: u64(OFFSET_BLOCK_COUNT, 'blockCount'),
    walStartBlock: u64(OFFSET_WAL_START, 'walStartBlock'),
    walBlockCount: u64(OFFSET_WAL_COUNT, 'walBlockCount'),
    dataStartBlock: u64(OFFSET_DATA_START, 'dataStartBlock'),
    generation: u64(OFFSET_GENERATION, 'generation'),
    storeTag: data.getUint32(OFFSET_STORE_TAG, true),
    checkpointSeq: u64(OFFSET_CHECKPOINT_SEQ, 'checkpointSeq'),
    walReplayBlock: u64(OFFSET_WAL_REPLAY, 'walReplayBlock'),
    checkpointByteLength: u64(OFFSET_CHECKPOINT_LENGTH, 'checkpointByteLength'),
    checkpointBlockCount: data.getUint32(OFFSET_CHECKPOINT_BLOCKS, true),
    checkpointExtents: [],
  };
  const extentCount = data.getUint32(OFFSET_CHECKPOINT_EXTENT_COUNT, true);
  if (extentCount > CHECKPOINT_EXTENTS_MAX) fail(`${extentCount} checkpoint extents (at most ${CHECKPOINT_EXTENTS_MAX})`);
  let extentBlocks = 0;
  for (let i = 0; i < CHECKPOINT_EXTENTS_MAX; i++) {
    const offset = OFFSET_CHECKPOINT_EXTENTS + i * EXTENT_ENTRY_SIZE;
    if (i >= extentCount) {
      if (!isAllZero(bytes, offset, offset + EXTENT_ENTRY_SIZE)) fail(`unused checkpoint extent ${i} is not zero`);
      continue;
    }
    const startBlock = u64(offset, `checkpoint extent ${i} start`);
    const blockCount = u64(offset + 8, `checkpoint extent ${i} length`);
    if (blockCount === 0) fail(`checkpoint extent ${i} is empty`);
    superblock.checkpointExtents.push({ startBlock, blockCount });
    extentBlocks += blockCount;
  }
  checkGeometry(superblock, fail);
  if (extentBlocks !== superblock.checkpointBlockCount) {
    fail(`checkpoint extents hold ${extentBlocks} blocks, the header says ${superblock.checkpointBlockCount}`);
  }
  for (const extent of superblock.checkpointExtents) {
    if (extent.startBlock < superblock.dataStartBlock || extent.startBlock + extent.blockCount > superblock.blockCount) {
      fail(`checkpoint extent ${extent.startBlock}+${extent.blockCount} lies outside the data region`);
    }
  }
  if ((superblock.checkpointByteLength === 0) !== (superblock.checkpointExtents.length === 0)) {
    fail('checkpoint length and extents disagree about whether a checkpoint exists');
  }
  if (superblock.checkpointBlockCount > 0) {
    // A frame of n blocks carries more than (n-1) and at most n blocks' payload.
    const perBlock = superblock.blockSize - FRAME_HEADER_SIZE;
    const blocks = superblock.checkpointBlockCount;
    if (superblock.checkpointByteLength > blocks * perBlock || (blocks > 1 && superblock.checkpointByteLength <= (blocks - 1) * perBlock)) {
      fail(`a checkpoint of ${superblock.checkpointByteLength} bytes does not take ${blocks} blocks`);
    }
  }
  const sorted = [...superblock.checkpointExtents].sort((a, b) => a.startBlock - b.startBlock);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].startBlock < sorted[i - 1].startBlock + sorted[i - 1].blockCount) fail(`checkpoint extents overlap at block ${sorted[i].startBlock}`);
  }
  return superblock;
}

function checkGeometry(superblock: Superblock, fail: (reason: string) => never): void {
  if (superblock.generation < 1) fail('generation 0');
  if (superblock.walStartBlock !== 2) fail(`WAL starts at block ${superblock.walStartBlock}, not 2`);
  if (superblock.walBlockCount < 2) fail(`WAL of ${superblock.walBlockCount} blocks`);
  if (superblock.dataStartBlock !== superblock.walStartBlock + superblock.walBlockCount) {
    fail('data region does not start right after the WAL');
  }
  if (superblock.dataStartBlock >= superblock.blockCount) fail('no room for a data region');
  if (superblock.walReplayBlock >= superblock.walBlockCount) fail(`WAL replay block ${superblock.walReplayBlock} outside the WAL`);
}
