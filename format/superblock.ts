// Superblock: the root of the store. Four copies (SUPERBLOCK_SLOT_COUNT):
// slots 0 and 1 in blocks 0 and 1, slots 2 and 3 in the two blocks right
// after the WAL. Generation g is written to slots g % 2 and 2 + g % 2, so a
// torn write of g + 1 leaves both copies of g, and a head destroyed by a
// wipe or a misdirected write leaves the backup pair. Open picks the valid
// copy with the highest generation. Layout: docs/format.md § Superblock.
import { crc32c } from './crc32c.js';
import { isAllZero, readU64, view, writeU64 } from './bytes.js';
import {
  BLOCK_SIZE_MAX,
  BLOCK_SIZE_MIN,
  FORMAT_VERSION,
  FORMAT_VERSION_V1,
  FREE_SET_EXTENTS_MAX,
  FREE_SET_HEADER_SIZE,
  SEQUENCE_LIMIT,
  SUPERBLOCK_HEAD_SLOT_COUNT,
  SUPERBLOCK_MAGIC,
  SUPERBLOCK_SIZE,
  SUPERBLOCK_SLOT_COUNT,
  TREE_LEVELS_MAX,
  VALUE_ENCODING_IDS,
} from './constants.js';
import { FormatError, FormatVersionError } from './format_error.js';
import type { Extent } from './extent.js';
import { frameBlockCount } from './frame.js';
import { pageSizeFor } from './page.js';

/** Where the page tree's root is: the parent-less child reference. */
export interface TreeRoot {
  /** Absolute block of the root page's first block. */
  block: number;
  /** The root page's CRC32C (its header's crc field). */
  crc: number;
  /** 0 when the root is a leaf. */
  level: number;
}

export interface Superblock {
  formatVersion: number;
  blockSize: number;
  /** Blocks in the whole store (device or file size / blockSize). */
  blockCount: number;
  walStartBlock: number;
  walBlockCount: number;
  /** walStartBlock + walBlockCount + the backup superblock pair. */
  dataStartBlock: number;
  /** Strictly increasing with every superblock write; >= 1. */
  generation: number;
  /** Random tag of this store, stamped into every framed block and page. */
  storeTag: number;
  /** Highest commit sequence the checkpoint contains (0: none yet). */
  checkpointSeq: number;
  /** WAL-relative block where commit checkpointSeq + 1 starts. */
  walReplayBlock: number;
  /** Payload bytes of the free-set frame (0: no checkpoint yet, every data block is free). */
  freeSetByteLength: number;
  /** Blocks of the free-set frame, the sum of its extents. */
  freeSetBlockCount: number;
  freeSetExtents: Extent[];
  /** The page tree of the checkpoint; undefined when it holds no key. */
  treeRoot: TreeRoot | undefined;
  /** Keys in the checkpoint's tree. */
  keyCount: number;
  /** VALUE_ENCODING_IDS of the encoding the store was created with. */
  valueEncodingId: number;
  /**
   * The store was closed cleanly at this superblock: no commit after
   * checkpointSeq was written, so recovery need not read the WAL. Cleared
   * (durably) before the first commit after open.
   */
  clean: boolean;
}

/** Superblock flag bit 0: see Superblock.clean. */
export const SUPERBLOCK_FLAG_CLEAN = 1;
const SUPERBLOCK_FLAGS_KNOWN = SUPERBLOCK_FLAG_CLEAN;

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
const OFFSET_FREE_SET_LENGTH = 80;
const OFFSET_FREE_SET_BLOCKS = 88;
const OFFSET_FREE_SET_EXTENT_COUNT = 92;
const OFFSET_FREE_SET_EXTENTS = 96;
const EXTENT_ENTRY_SIZE = 16;
const OFFSET_ROOT_BLOCK = OFFSET_FREE_SET_EXTENTS + FREE_SET_EXTENTS_MAX * EXTENT_ENTRY_SIZE; // 224
const OFFSET_ROOT_CRC = 232;
const OFFSET_ROOT_LEVEL = 236;
const OFFSET_VALUE_ENCODING = 237;
const OFFSET_RESERVED_SHORT = 238;
const OFFSET_KEY_COUNT = 240;
const OFFSET_RESERVED = 248;
const OFFSET_CRC = SUPERBLOCK_SIZE - 4; // 508

if (OFFSET_ROOT_BLOCK !== 224) throw new Error('ringstore: superblock layout drifted from docs/format.md');

/** The absolute block of superblock slot `slot` in a store whose WAL has `walBlockCount` blocks. */
export function superblockSlotBlock(slot: number, walStartBlock: number, walBlockCount: number): number {
  if (!Number.isInteger(slot) || slot < 0 || slot >= SUPERBLOCK_SLOT_COUNT) throw new RangeError(`superblock slot ${slot}`);
  return slot < SUPERBLOCK_HEAD_SLOT_COUNT ? slot : walStartBlock + walBlockCount + slot - SUPERBLOCK_HEAD_SLOT_COUNT;
}

/** The two slots generation `generation` is written to: one at the head, one after the WAL. */
export function superblockSlotsFor(generation: number): [number, number] {
  if (!Number.isSafeInteger(generation) || generation < 1) throw new RangeError(`superblock generation ${generation}`);
  const parity = generation % 2;
  return [parity, SUPERBLOCK_HEAD_SLOT_COUNT + parity];
}

/** Exact payload bytes of the free-set frame of a store with `dataBlockCount` data blocks. */
export function freeSetPayloadBytes(dataBlockCount: number): number {
  return FREE_SET_HEADER_SIZE + Math.ceil(dataBlockCount / 8);
}

/** Encodes into the first SUPERBLOCK_SIZE bytes of `target` (which must be zeroed beyond). */
export function encodeSuperblock(superblock: Superblock, target: Uint8Array): void {
  if (target.length < SUPERBLOCK_SIZE) throw new RangeError('superblock target too small');
  if (superblock.freeSetExtents.length > FREE_SET_EXTENTS_MAX) {
    throw new RangeError(`a superblock names at most ${FREE_SET_EXTENTS_MAX} free-set extents`);
  }
  // DataView truncates what does not fit a u8 or u32 field: a level of 257
  // would be written as 1 and read back as a valid, different superblock.
  checkFieldWidth(superblock.formatVersion, 0xffff_ffff, 'formatVersion');
  checkFieldWidth(superblock.blockSize, 0xffff_ffff, 'blockSize');
  checkFieldWidth(superblock.freeSetBlockCount, 0xffff_ffff, 'freeSetBlockCount');
  checkFieldWidth(superblock.valueEncodingId, 0xff, 'valueEncodingId');
  if (superblock.treeRoot !== undefined) {
    // Root block 0 is how "no root" is written; block 0 is a superblock slot anyway.
    if (superblock.treeRoot.block === 0) throw new RangeError('superblock treeRoot.block 0 (0 means no root)');
    checkFieldWidth(superblock.treeRoot.level, 0xff, 'treeRoot.level');
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
  if (!(superblock.generation < SEQUENCE_LIMIT && superblock.checkpointSeq < SEQUENCE_LIMIT)) {
    throw new RangeError(`superblock generation ${superblock.generation} or checkpointSeq ${superblock.checkpointSeq} at or above 2^52 (SEQUENCE_LIMIT): a reader would refuse it`);
  }
  writeU64(data, OFFSET_GENERATION, superblock.generation);
  data.setUint32(OFFSET_STORE_TAG, superblock.storeTag >>> 0, true);
  data.setUint32(OFFSET_FLAGS, superblock.clean ? SUPERBLOCK_FLAG_CLEAN : 0, true);
  writeU64(data, OFFSET_CHECKPOINT_SEQ, superblock.checkpointSeq);
  writeU64(data, OFFSET_WAL_REPLAY, superblock.walReplayBlock);
  writeU64(data, OFFSET_FREE_SET_LENGTH, superblock.freeSetByteLength);
  data.setUint32(OFFSET_FREE_SET_BLOCKS, superblock.freeSetBlockCount, true);
  data.setUint32(OFFSET_FREE_SET_EXTENT_COUNT, superblock.freeSetExtents.length, true);
  superblock.freeSetExtents.forEach((extent, i) => {
    writeU64(data, OFFSET_FREE_SET_EXTENTS + i * EXTENT_ENTRY_SIZE, extent.startBlock);
    writeU64(data, OFFSET_FREE_SET_EXTENTS + i * EXTENT_ENTRY_SIZE + 8, extent.blockCount);
  });
  if (superblock.treeRoot !== undefined) {
    writeU64(data, OFFSET_ROOT_BLOCK, superblock.treeRoot.block);
    data.setUint32(OFFSET_ROOT_CRC, superblock.treeRoot.crc >>> 0, true);
    data.setUint8(OFFSET_ROOT_LEVEL, superblock.treeRoot.level);
  }
  data.setUint8(OFFSET_VALUE_ENCODING, superblock.valueEncodingId);
  writeU64(data, OFFSET_KEY_COUNT, superblock.keyCount);
  data.setUint32(OFFSET_CRC, crc32c(target.subarray(0, OFFSET_CRC)), true);
}

function checkFieldWidth(value: number, max: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`superblock ${name} ${value} does not fit its field (0..${max})`);
}

/** True if the bytes start with the superblock magic (a ringstore, maybe damaged). */
export function hasSuperblockMagic(bytes: Uint8Array): boolean {
  for (let i = 0; i < SUPERBLOCK_MAGIC.length; i++) if (bytes[i] !== SUPERBLOCK_MAGIC[i]) return false;
  return true;
}

/**
 * Decodes and validates one superblock copy read from block `blockIndex`.
 * Throws FormatError saying what is wrong — FormatVersionError for an intact
 * superblock of another format version — and never returns a partly valid value.
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
  // The version is read before anything else it governs: format 1 (0.1)
  // kept its checkpoint where format 2 keeps the free set and the root.
  const formatVersion = data.getUint32(OFFSET_VERSION, true);
  if (formatVersion !== FORMAT_VERSION) {
    throw new FormatVersionError(
      formatVersion,
      formatVersion === FORMAT_VERSION_V1
        ? `format version 1 (written by ringstore 0.1); this version reads format ${FORMAT_VERSION}`
        : `format version ${formatVersion}; this version reads format ${FORMAT_VERSION}`,
      blockIndex,
    );
  }
  const flags = data.getUint32(OFFSET_FLAGS, true);
  if ((flags & ~SUPERBLOCK_FLAGS_KNOWN) !== 0) fail(`unknown flags set (0x${flags.toString(16)})`);
  if (data.getUint16(OFFSET_RESERVED_SHORT, true) !== 0 || !isAllZero(bytes, OFFSET_RESERVED, OFFSET_CRC)) fail('reserved bytes are not zero');
  const blockSize = data.getUint32(OFFSET_BLOCK_SIZE, true);
  if (blockSize < BLOCK_SIZE_MIN || blockSize > BLOCK_SIZE_MAX || (blockSize & (blockSize - 1)) !== 0) {
    fail(`block size ${blockSize} is not a power of two from ${BLOCK_SIZE_MIN} to ${BLOCK_SIZE_MAX}`);
  }
  const u64 = (offset: number, name: string): number => {
    const value = readU64(data, offset);
    if (value < 0) fail(`${name} exceeds 2^53`);
    return value;
  };
  const sequence = (offset: number, name: string): number => {
    const value = u64(offset, name);
    if (value >= SEQUENCE_LIMIT) fail(`${name} ${value} is at or above 2^52 (SEQUENCE_LIMIT): no store advances that far, nor could this one advance`);
    return value;
  };
  const rootBlock = u64(OFFSET_ROOT_BLOCK, 'root block');
  const rootCrc = data.getUint32(OFFSET_ROOT_CRC, true);
  const rootLevel = data.getUint8(OFFSET_ROOT_LEVEL);
  const superblock: Superblock = {
    formatVersion,
    blockSize,
    blockCount: u64(OFFSET_BLOCK_COUNT, 'blockCount'),
    walStartBlock: u64(OFFSET_WAL_START, 'walStartBlock'),
    walBlockCount: u64(OFFSET_WAL_COUNT, 'walBlockCount'),
    dataStartBlock: u64(OFFSET_DATA_START, 'dataStartBlock'),
    generation: sequence(OFFSET_GENERATION, 'generation'),
    storeTag: data.getUint32(OFFSET_STORE_TAG, true),
    checkpointSeq: sequence(OFFSET_CHECKPOINT_SEQ, 'checkpointSeq'),
    walReplayBlock: u64(OFFSET_WAL_REPLAY, 'walReplayBlock'),
    freeSetByteLength: u64(OFFSET_FREE_SET_LENGTH, 'freeSetByteLength'),
    freeSetBlockCount: data.getUint32(OFFSET_FREE_SET_BLOCKS, true),
    freeSetExtents: [],
    treeRoot: rootBlock === 0 ? undefined : { block: rootBlock, crc: rootCrc, level: rootLevel },
    keyCount: u64(OFFSET_KEY_COUNT, 'keyCount'),
    valueEncodingId: data.getUint8(OFFSET_VALUE_ENCODING),
    clean: (flags & SUPERBLOCK_FLAG_CLEAN) !== 0,
  };
  if (rootBlock === 0 && (rootCrc !== 0 || rootLevel !== 0)) fail('no root block but a root checksum or level');
  if (!Object.values(VALUE_ENCODING_IDS).includes(superblock.valueEncodingId as never)) fail(`unknown value encoding ${superblock.valueEncodingId}`);
  const extentCount = data.getUint32(OFFSET_FREE_SET_EXTENT_COUNT, true);
  if (extentCount > FREE_SET_EXTENTS_MAX) fail(`${extentCount} free-set extents (at most ${FREE_SET_EXTENTS_MAX})`);
  let extentBlocks = 0;
  for (let i = 0; i < FREE_SET_EXTENTS_MAX; i++) {
    const offset = OFFSET_FREE_SET_EXTENTS + i * EXTENT_ENTRY_SIZE;
    if (i >= extentCount) {
      if (!isAllZero(bytes, offset, offset + EXTENT_ENTRY_SIZE)) fail(`unused free-set extent ${i} is not zero`);
      continue;
    }
    const startBlock = u64(offset, `free-set extent ${i} start`);
    const blockCount = u64(offset + 8, `free-set extent ${i} length`);
    if (blockCount === 0) fail(`free-set extent ${i} is empty`);
    superblock.freeSetExtents.push({ startBlock, blockCount });
    extentBlocks += blockCount;
  }
  checkGeometry(superblock, fail);
  checkCheckpoint(superblock, extentBlocks, fail);
  return superblock;
}

function checkGeometry(superblock: Superblock, fail: (reason: string) => never): void {
  if (superblock.generation < 1) fail('generation 0');
  if (superblock.walStartBlock !== SUPERBLOCK_HEAD_SLOT_COUNT) fail(`WAL starts at block ${superblock.walStartBlock}, not ${SUPERBLOCK_HEAD_SLOT_COUNT}`);
  if (superblock.walBlockCount < 2) fail(`WAL of ${superblock.walBlockCount} blocks`);
  if (superblock.dataStartBlock !== superblock.walStartBlock + superblock.walBlockCount + SUPERBLOCK_SLOT_COUNT - SUPERBLOCK_HEAD_SLOT_COUNT) {
    fail('data region does not start right after the WAL and the backup superblocks');
  }
  if (superblock.dataStartBlock >= superblock.blockCount) fail('no room for a data region');
  if (superblock.walReplayBlock >= superblock.walBlockCount) fail(`WAL replay block ${superblock.walReplayBlock} outside the WAL`);
}

function checkCheckpoint(superblock: Superblock, extentBlocks: number, fail: (reason: string) => never): void {
  const hasCheckpoint = superblock.checkpointSeq > 0;
  if (hasCheckpoint !== superblock.freeSetExtents.length > 0) fail('checkpoint sequence and free-set extents disagree about whether a checkpoint exists');
  if (!hasCheckpoint) {
    if (superblock.freeSetByteLength !== 0 || superblock.freeSetBlockCount !== 0) fail('a free-set length without a checkpoint');
    if (superblock.treeRoot !== undefined || superblock.keyCount !== 0) fail('a tree without a checkpoint');
    return;
  }
  // The checkpoint's free set describes the data region as it was then: the
  // whole of it, or less if the store has grown since (format/free_set.ts).
  const expectedBytesMax = freeSetPayloadBytes(superblock.blockCount - superblock.dataStartBlock);
  const freeSetBytes = superblock.freeSetByteLength;
  if (freeSetBytes > expectedBytesMax || freeSetBytes < freeSetPayloadBytes(1)) {
    fail(`a free set of ${freeSetBytes} bytes; ${superblock.blockCount - superblock.dataStartBlock} data blocks take ${expectedBytesMax}`);
  }
  if (extentBlocks !== superblock.freeSetBlockCount) fail(`free-set extents hold ${extentBlocks} blocks, the header says ${superblock.freeSetBlockCount}`);
  if (superblock.freeSetBlockCount !== frameBlockCount(freeSetBytes, superblock.blockSize)) {
    fail(`a free set of ${freeSetBytes} bytes does not take ${superblock.freeSetBlockCount} blocks`);
  }
  const sorted = [...superblock.freeSetExtents].sort((a, b) => a.startBlock - b.startBlock);
  for (let i = 0; i < sorted.length; i++) {
    const extent = sorted[i];
    if (!inDataRegion(superblock, extent)) {
      fail(`free-set extent ${extent.startBlock}+${extent.blockCount} lies outside the data region`);
    }
    if (i > 0 && extent.startBlock < sorted[i - 1].startBlock + sorted[i - 1].blockCount) fail(`free-set extents overlap at block ${extent.startBlock}`);
  }
  const root = superblock.treeRoot;
  if ((root === undefined) !== (superblock.keyCount === 0)) fail(`${superblock.keyCount} keys ${root === undefined ? 'without' : 'with'} a root page`);
  if (root !== undefined) {
    const pageBlocks = pageSizeFor(superblock.blockSize) / superblock.blockSize;
    if (root.block < superblock.dataStartBlock || root.block + pageBlocks > superblock.blockCount) fail(`root page at block ${root.block} lies outside the data region`);
    if (root.level >= TREE_LEVELS_MAX) fail(`root level ${root.level} (at most ${TREE_LEVELS_MAX - 1})`);
  }
}

/** Whether `extent` lies within the data region of `superblock`'s geometry. */
export function inDataRegion(superblock: Pick<Superblock, 'dataStartBlock' | 'blockCount'>, extent: Extent): boolean {
  return extent.startBlock >= superblock.dataStartBlock && extent.startBlock + extent.blockCount <= superblock.blockCount;
}
