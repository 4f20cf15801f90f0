// The free set: which data blocks the checkpoint's tree, its values and the
// free set itself use, as a bitmap written whole with every checkpoint
// (docs/format.md § Free set), so that open never walks the tree.
//
//   free-set payload := u32 format (1) | u32 reserved (0) | u64 dataBlockCount
//                       | ceil(dataBlockCount / 8) bytes of bitmap
//
// Bit i (byte i >> 3, bit i & 7, least significant first) is set when data
// block dataStartBlock + i is in use. Bits past dataBlockCount are zero.
//
// A free set may describe fewer blocks than the superblock's data region: a
// store on a regular file grows by writing a superblock with a larger
// blockCount and the same checkpoint (engine/store_growth.ts), so the free
// set of that checkpoint covers the data region as it was; the blocks past
// it were added by the growth and are free. Never more blocks.
// One bit a block: 32 KiB per GiB of 4 KiB blocks — the one part of a
// checkpoint whose size follows the store's size rather than its changes.
import { readU64, view } from './bytes.js';
import { FREE_SET_HEADER_SIZE } from './constants.js';
import type { Extent } from './extent.js';
import { FormatError } from './format_error.js';

const FREE_SET_PAYLOAD_FORMAT = 1;

/** The payload of a free set in which exactly `freeExtents` (absolute, sorted, disjoint) are free. */
export function encodeFreeSetPayload(dataStartBlock: number, dataBlockCount: number, freeExtents: readonly Extent[]): Uint8Array {
  const { payload, bitmap } = newFreeSetPayload(dataBlockCount);
  setBits(bitmap, 0, dataBlockCount, true);
  let previousEnd = dataStartBlock;
  for (const extent of freeExtents) {
    if (extent.startBlock < previousEnd) throw new RangeError(`free extent ${extent.startBlock}+${extent.blockCount} is out of order`);
    markFreeInBitmap(bitmap, dataStartBlock, dataBlockCount, extent);
    previousEnd = extent.startBlock + extent.blockCount;
  }
  return payload;
}

/**
 * A free-set payload of `dataBlockCount` blocks with its header written,
 * and its bitmap (a view into it, all zero) for the caller to fill: a
 * checkpoint copies the allocator's in-use bits into it, then marks free
 * what it releases (markFreeInBitmap).
 */
export function newFreeSetPayload(dataBlockCount: number): { payload: Uint8Array; bitmap: Uint8Array } {
  if (!Number.isSafeInteger(dataBlockCount) || dataBlockCount < 0) throw new RangeError(`a free set of ${dataBlockCount} data blocks`);
  const payload = new Uint8Array(FREE_SET_HEADER_SIZE + Math.ceil(dataBlockCount / 8));
  const data = view(payload);
  data.setUint32(0, FREE_SET_PAYLOAD_FORMAT, true);
  data.setUint32(4, 0, true);
  data.setUint32(8, dataBlockCount % 0x1_0000_0000, true);
  data.setUint32(12, Math.floor(dataBlockCount / 0x1_0000_0000), true);
  return { payload, bitmap: payload.subarray(FREE_SET_HEADER_SIZE) };
}

/**
 * Clears the in-use bits of `extent` (absolute) in the bitmap of a free set
 * of `dataBlockCount` blocks from `dataStartBlock`. Throws RangeError if it
 * is empty, lies outside the data region or has a block already free: the
 * free sets a checkpoint combines must be disjoint.
 */
export function markFreeInBitmap(bitmap: Uint8Array, dataStartBlock: number, dataBlockCount: number, extent: Extent): void {
  const first = extent.startBlock - dataStartBlock;
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(extent.blockCount) || first < 0 || extent.blockCount < 1 || first + extent.blockCount > dataBlockCount) {
    throw new RangeError(`free extent ${extent.startBlock}+${extent.blockCount} is outside the data region`);
  }
  if (!allBitsSet(bitmap, first, first + extent.blockCount)) throw new RangeError(`free extent ${extent.startBlock}+${extent.blockCount} overlaps another`);
  setBits(bitmap, first, first + extent.blockCount, false);
}

/**
 * The free extents (absolute, sorted, maximal runs) of a free-set payload,
 * in a data region of `dataBlockCount` blocks (the superblock's): blocks
 * past those the payload describes (the store grew since) are free. Throws
 * FormatError naming `firstBlock` if the payload is malformed or describes
 * more blocks than the region has.
 */
export function decodeFreeSetPayload(payload: Uint8Array, dataStartBlock: number, dataBlockCount: number, firstBlock: number): Extent[] {
  const free = decodeDescribedBlocks(payload, dataStartBlock, dataBlockCount, firstBlock);
  const describedBlockCount = readU64(view(payload), 8);
  if (describedBlockCount < dataBlockCount) {
    const grownStart = dataStartBlock + describedBlockCount;
    const last = free[free.length - 1];
    // A free run at the end of the described blocks continues into the growth.
    if (last !== undefined && last.startBlock + last.blockCount === grownStart) last.blockCount += dataBlockCount - describedBlockCount;
    else free.push({ startBlock: grownStart, blockCount: dataBlockCount - describedBlockCount });
  }
  return free;
}

/**
 * The bitmap of a free-set payload (a view into it) and the data blocks it
 * describes, in a data region of `regionBlockCount` blocks (the
 * superblock's); blocks past those it describes (the store grew since) are
 * free. Throws FormatError naming `firstBlock` if the payload is malformed
 * or describes more blocks than the region has. O(1): the bits are not read
 * beyond the last byte's.
 */
export function decodeFreeSetBitmap(payload: Uint8Array, regionBlockCount: number, firstBlock: number): { bitmap: Uint8Array; describedBlockCount: number } {
  const fail = (reason: string): never => {
    throw new FormatError('free set', reason, firstBlock);
  };
  if (payload.length < FREE_SET_HEADER_SIZE) fail('payload shorter than its header');
  const data = view(payload);
  if (data.getUint32(0, true) !== FREE_SET_PAYLOAD_FORMAT) fail(`payload format ${data.getUint32(0, true)}`);
  if (data.getUint32(4, true) !== 0) fail('header reserved bytes are not zero');
  const storedCount = readU64(data, 8);
  if (storedCount < 0 || storedCount > regionBlockCount) fail(`describes ${storedCount < 0 ? '2^53 or more' : storedCount} data blocks, the superblock ${regionBlockCount}`);
  if (storedCount === 0) fail('describes no data blocks');
  const dataBlockCount = storedCount;
  const bitmap = payload.subarray(FREE_SET_HEADER_SIZE);
  if (bitmap.length !== Math.ceil(dataBlockCount / 8)) fail(`a bitmap of ${bitmap.length} bytes for ${dataBlockCount} blocks`);
  const tailBits = dataBlockCount % 8;
  if (tailBits !== 0 && (bitmap[bitmap.length - 1] >> tailBits) !== 0) fail('bits past the data region are set');
  return { bitmap, describedBlockCount: dataBlockCount };
}

/** The free extents of the blocks the payload describes (at most `dataBlockCount`). */
function decodeDescribedBlocks(payload: Uint8Array, dataStartBlock: number, regionBlockCount: number, firstBlock: number): Extent[] {
  const { bitmap, describedBlockCount: dataBlockCount } = decodeFreeSetBitmap(payload, regionBlockCount, firstBlock);
  const free: Extent[] = [];
  let runStart = -1;
  for (let byteIndex = 0; byteIndex < bitmap.length; byteIndex++) {
    const byte = bitmap[byteIndex];
    // Whole bytes of one kind are the common case: skip them without bit work.
    if (byte === 0xff && runStart < 0) continue;
    if (byte === 0 && runStart >= 0) continue;
    const bitsHere = Math.min(8, dataBlockCount - byteIndex * 8);
    for (let bit = 0; bit < bitsHere; bit++) {
      const used = (byte >> bit) & 1;
      const block = byteIndex * 8 + bit;
      if (used === 0 && runStart < 0) runStart = block;
      else if (used === 1 && runStart >= 0) {
        free.push({ startBlock: dataStartBlock + runStart, blockCount: block - runStart });
        runStart = -1;
      }
    }
  }
  if (runStart >= 0) free.push({ startBlock: dataStartBlock + runStart, blockCount: dataBlockCount - runStart });
  return free;
}

/** True if every bit of [from, to) of `bitmap` is set. */
function allBitsSet(bitmap: Uint8Array, from: number, to: number): boolean {
  let bit = from;
  while (bit < to && (bit & 7) !== 0) {
    if ((bitmap[bit >> 3] & (1 << (bit & 7))) === 0) return false;
    bit++;
  }
  const wholeEnd = to - ((to - bit) & 7);
  for (let byte = bit >> 3; byte < wholeEnd >> 3; byte++) if (bitmap[byte] !== 0xff) return false;
  for (bit = Math.max(bit, wholeEnd); bit < to; bit++) if ((bitmap[bit >> 3] & (1 << (bit & 7))) === 0) return false;
  return true;
}

/** Sets or clears bits [from, to) of `bitmap`. */
function setBits(bitmap: Uint8Array, from: number, to: number, value: boolean): void {
  let bit = from;
  while (bit < to && (bit & 7) !== 0) {
    bitmap[bit >> 3] = value ? bitmap[bit >> 3] | (1 << (bit & 7)) : bitmap[bit >> 3] & ~(1 << (bit & 7));
    bit++;
  }
  const wholeEnd = to - ((to - bit) & 7);
  if (wholeEnd > bit) bitmap.fill(value ? 0xff : 0, bit >> 3, wholeEnd >> 3);
  bit = Math.max(bit, wholeEnd);
  while (bit < to) {
    bitmap[bit >> 3] = value ? bitmap[bit >> 3] | (1 << (bit & 7)) : bitmap[bit >> 3] & ~(1 << (bit & 7));
    bit++;
  }
}
