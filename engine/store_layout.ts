// The store's place on the device: how a store of a given size is laid out
// in blocks (docs/format.md § Device layout), formatting a new store and
// erasing an old one's superblocks. The BlockStore façade and the CLI's
// format go through these; nothing here knows about a running store.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';

import { BLOCK_SIZE_MAX, FORMAT_VERSION, SUPERBLOCK_HEAD_SLOT_COUNT, SUPERBLOCK_SIZE, SUPERBLOCK_SLOT_COUNT, VALUE_ENCODING_IDS, WAL_SIZE_BYTES_MAX } from '../format/constants.js';
import { pageSizeFor } from '../format/page.js';
import { encodeSuperblock, superblockSlotBlock, type Superblock } from '../format/superblock.js';
import { allocAligned } from '../native/aligned_buffer.js';
import type { BlockDevice } from './block_device.js';
import { findBackupSuperblocks } from './recovery.js';
import { invalidArgument, StoreError } from './store_error.js';
import type { ValueEncoding } from './value_codec.js';

/** Largest WAL region a new store gets by default (an eighth of the store, at most this): 64 MiB. */
export const DEFAULT_WAL_SIZE_BYTES = 64 << 20;
/** Block size of a new store when open() or format() is given none. */
export const DEFAULT_BLOCK_SIZE = 4096;
/** Zeroes written per IO when a new store's WAL region is initialised. */
const WAL_ZERO_CHUNK_BYTES = 8 << 20;
/** Blocks of the WAL at least. */
const WAL_BLOCKS_MIN = 16;
/**
 * Data a store that can grow needs beyond its WAL at first, in pages (64
 * KiB at 4 KiB pages): it grows as it fills.
 */
const DATA_PAGES_MIN = 16;
/**
 * Data a store of a fixed size (a block device, a device that cannot grow)
 * needs beyond its WAL, in pages (256 KiB at 4 KiB pages): more than the
 * room the next checkpoint keeps for itself (Space's reserve, ~20 pages for
 * one put). With DATA_PAGES_MIN a device of the smallest size format
 * accepted, in 512-byte blocks, took one put and then refused every other
 * (found by a review); raising it for every store refused small stores
 * made before, reopened with their options and create: true (found by the
 * next review).
 */
const FIXED_SIZE_DATA_PAGES_MIN = 64;

/**
 * How a store of `sizeBytes` is laid out in `blockSize` blocks, or why it
 * cannot be: a WAL of at least WAL_BLOCKS_MIN blocks (an eighth of the store
 * by default, at most DEFAULT_WAL_SIZE_BYTES) and room for data behind it,
 * more of it where the store can never grow (`grows` false).
 */
export function storeLayout(sizeBytes: number, blockSize: number, walSizeBytes: number | undefined, grows: boolean): { blockCount: number; walBlockCount: number } | string {
  const blockCount = Math.floor(sizeBytes / blockSize);
  const dataBlocksMin = (grows ? DATA_PAGES_MIN : FIXED_SIZE_DATA_PAGES_MIN) * (pageSizeFor(blockSize) / blockSize);
  // walSizeBytes was checked against WAL_SIZE_BYTES_MAX (store_arguments.ts, checkWalSize).
  assert.ok(walSizeBytes === undefined || walSizeBytes <= WAL_SIZE_BYTES_MAX, 'a WAL larger than the format allows');
  const walBlockCount = Math.floor((walSizeBytes ?? Math.min(DEFAULT_WAL_SIZE_BYTES, (blockCount * blockSize) / 8)) / blockSize);
  if (walBlockCount < WAL_BLOCKS_MIN) {
    return `${sizeBytes} bytes in ${blockSize}-byte blocks leave a WAL of ${walBlockCount} blocks; it needs at least ${WAL_BLOCKS_MIN} (${WAL_BLOCKS_MIN * blockSize} bytes${walSizeBytes === undefined ? `, so a store of at least ${8 * WAL_BLOCKS_MIN * blockSize} bytes` : ''})`;
  }
  if (SUPERBLOCK_SLOT_COUNT + walBlockCount + dataBlocksMin > blockCount) {
    return `${sizeBytes} bytes in ${blockSize}-byte blocks hold ${blockCount} blocks; a WAL of ${walBlockCount} needs at least ${SUPERBLOCK_SLOT_COUNT + walBlockCount + dataBlocksMin}`;
  }
  return { blockCount, walBlockCount };
}

/**
 * Zeroes, durably, where any store's head superblock copies could be (slot
 * 1 sits one block in, and blocks are up to BLOCK_SIZE_MAX) and the backup
 * copies of the store the device holds, if any: what format() does to an
 * old store before it zeroes that store's WAL. A backup copy left behind
 * would let a later open that finds the head gone resurrect the old store.
 */
export async function eraseSuperblocks(device: BlockDevice): Promise<void> {
  // Every backup copy there is, whatever store it belongs to — also when the
  // old store is too damaged to open, the usual reason to format.
  const backups = await findBackupSuperblocks(device);
  const alignment = Math.max(device.ioAlignment, 512);
  const lengthBytes = Math.min(2 * BLOCK_SIZE_MAX, device.sizeBytes - (device.sizeBytes % alignment));
  device.mark?.('erase');
  await device.write(0, [allocAligned(lengthBytes, Math.max(alignment, 4096))]);
  const zero = allocAligned(alignment, Math.max(alignment, 4096));
  for (const { position } of backups) {
    const sector = position - (position % alignment);
    if (sector + alignment <= device.sizeBytes) await device.write(sector, [zero]);
  }
  await device.sync();
}

/** Writes a new store's superblocks (all four slots). */
/**
 * Throws ERR_INVALID_ARG unless `device` can do direct IO in blocks of
 * `blockSize`. Before anything is written: BlockStore.format() checks it
 * before erasing the old superblocks (found by a review: a format refused
 * for its block size had destroyed the store it was refused over).
 */
export function checkBlockSizeServed(blockSize: number, device: Pick<BlockDevice, 'ioAlignment'>): void {
  if (blockSize % Math.max(device.ioAlignment, 1) !== 0) {
    throw invalidArgument(`blockSize ${blockSize} is not a multiple of the device's direct-IO alignment ${device.ioAlignment}`, 'range');
  }
}

/** Whether a store on `device` can grow (a regular file; a simulated device given a larger maximum): as StoreGrowth decides. */
export function deviceGrows(device: Pick<BlockDevice, 'grow' | 'sizeBytesMax'>): boolean {
  return device.grow !== undefined && device.sizeBytesMax !== undefined;
}

/**
 * Whether a store made on `device` at its present size can grow by the
 * data a store of a fixed size needs beyond a growing one's: the device
 * grows, and neither its limit nor the open's `maxSizeBytes` stops it
 * first. A store capped tighter is a store of a fixed size (found by a
 * review: one capped at its first size took one put).
 */
export function growsPastFixedMinimum(device: Pick<BlockDevice, 'grow' | 'sizeBytesMax' | 'sizeBytes'>, blockSize: number, maxSizeBytes: number | undefined): boolean {
  if (!deviceGrows(device)) return false;
  const limitBytes = Math.min(maxSizeBytes ?? Number.POSITIVE_INFINITY, device.sizeBytesMax!);
  return limitBytes - device.sizeBytes >= (FIXED_SIZE_DATA_PAGES_MIN - DATA_PAGES_MIN) * pageSizeFor(blockSize);
}

/**
 * Writes a new, empty store over the whole of `device`. `maxSizeBytes`:
 * the open's cap on its growth, if any (a store that cannot grow needs
 * more room from the start).
 */
export async function formatStore(device: BlockDevice, blockSize: number, walSizeBytes: number | undefined, encoding: ValueEncoding, maxSizeBytes?: number): Promise<Superblock> {
  checkBlockSizeServed(blockSize, device);
  const grows = growsPastFixedMinimum(device, blockSize, maxSizeBytes);
  const layout = storeLayout(device.sizeBytes, blockSize, walSizeBytes, grows);
  if (typeof layout === 'string') {
    const why = !grows && deviceGrows(device) ? ' that cannot grow (its size limit, maxSizeBytes or the device\'s, leaves no room to)' : '';
    throw new StoreError('ERR_STORE_NO_SPACE', `the device is too small for a store${why}: ${layout}`);
  }
  const { blockCount, walBlockCount } = layout;
  const superblock: Superblock = {
    formatVersion: FORMAT_VERSION,
    blockSize,
    blockCount,
    walStartBlock: SUPERBLOCK_HEAD_SLOT_COUNT,
    walBlockCount,
    dataStartBlock: SUPERBLOCK_SLOT_COUNT + walBlockCount,
    generation: 1,
    storeTag: device.newStoreTag?.() ?? randomInt(1, 0xffffffff),
    checkpointSeq: 0,
    walReplayBlock: 0,
    freeSetByteLength: 0,
    freeSetBlockCount: 0,
    freeSetExtents: [],
    treeRoot: undefined,
    keyCount: 0,
    valueEncodingId: VALUE_ENCODING_IDS[encoding],
    // Nothing written after it: the first open need not read the WAL.
    clean: true,
  };
  const block = allocAligned(blockSize, Math.max(device.ioAlignment, 4096));
  encodeSuperblock(superblock, block.subarray(0, SUPERBLOCK_SIZE));
  // The whole WAL region is written with zeros once. On a preallocated file
  // its blocks are otherwise "unwritten" extents, and the first write to each
  // makes the commit's fdatasync journal an extent conversion too (measured:
  // ~2× the latency of a durable put until the WAL has wrapped once). It also
  // means a new store never replays a stale commit of an earlier one.
  const zeros = allocAligned(Math.min(walBlockCount * blockSize, WAL_ZERO_CHUNK_BYTES), Math.max(device.ioAlignment, 4096));
  device.mark?.('format');
  for (let offset = 0; offset < walBlockCount * blockSize; offset += zeros.length) {
    const length = Math.min(zeros.length, walBlockCount * blockSize - offset);
    await device.write(2 * blockSize + offset, [zeros.subarray(0, length)]);
  }
  // The backup pair first, then the head. A crash in between leaves the new
  // backup pair and an old or zeroed head: an open then finds the new, empty
  // store through the backup search and rewrites its head — the format's
  // outcome, not the old store.
  device.mark?.('superblock', superblock.generation);
  for (const slot of [2, 3]) await device.write(superblockSlotBlock(slot, superblock.walStartBlock, walBlockCount) * blockSize, [block]);
  await device.sync();
  const head = allocAligned(2 * blockSize, Math.max(device.ioAlignment, 4096));
  head.set(block, 0);
  head.set(block, blockSize);
  await device.writeAndSync(0, [head]);
  return superblock;
}

