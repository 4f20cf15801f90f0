// Opening a store: find the newest valid superblock, load the checkpoint,
// replay the WAL after it, and drop a torn tail. Every decoding step goes
// through format/; damage becomes StoreCorruptError naming structure and
// block. Lenient paths name the crash they tolerate.
import { readCheckpointPayload } from '../format/checkpoint.js';
import { readCommitPayload } from '../format/commit.js';
import { isAllZero } from '../format/bytes.js';
import { BLOCK_SIZE_MAX, BLOCK_SIZE_MIN, SUPERBLOCK_SIZE } from '../format/constants.js';
import { crc32c } from '../format/crc32c.js';
import { FormatError } from '../format/format_error.js';
import { decodeFrameBlock, frameBlockPayload, frameMagic } from '../format/frame.js';
import type { ExtentValue, RecordVisitor, StoredValue } from '../format/records.js';
import { decodeSuperblock, hasSuperblockMagic, type Superblock } from '../format/superblock.js';
import { scanWal, type ScannedCommit } from '../format/wal_scan.js';
import { allocAligned } from '../native/aligned_buffer.js';
import type { BlockDevice } from './block_device.js';
import { bytesToKeyString } from './key_codec.js';
import { StoreCorruptError } from './store_error.js';
import { newIndex, type IndexEntry, type StoreIndex } from './store_index.js';

export interface RecoveredStore {
  superblock: Superblock;
  /** Superblock slots that held no valid copy and must be rewritten before writes. */
  slotsToRepair: number[];
  index: StoreIndex;
  /** Commits replayed from the WAL, kept live until a checkpoint covers them. */
  liveCommits: { sequence: number; startBlock: number; blockCount: number }[];
  /** WAL block for the next commit and its sequence number. */
  walHeadBlock: number;
  nextSequence: number;
  /** Why the log ended early, if it did (a torn tail). */
  tornTail: string | undefined;
  /**
   * WAL-relative blocks that hold an intact frame block of this store with a
   * sequence number the store will write again (≥ nextSequence): leftovers of
   * torn or dropped commits. The store erases them before accepting writes,
   * or a later scan could join one of them with a block of the new commit of
   * the same sequence, or replay a dropped commit after its successor.
   */
  staleBlocks: number[];
}

/**
 * Result of reading the superblock slots: 'empty' when the head of the
 * device is zeros (a new file), 'foreign' when it holds something else.
 */
export type SuperblockProbe = { kind: 'empty' } | { kind: 'foreign' } | { kind: 'found'; superblock: Superblock; slotsToRepair: number[] };

export async function probeSuperblocks(device: BlockDevice): Promise<SuperblockProbe> {
  const headSize = Math.max(4096, device.ioAlignment);
  const head = allocAligned(Math.min(headSize, device.sizeBytes), Math.max(device.ioAlignment, 4096));
  await device.read(0, head);
  const candidates: { slot: number; superblock?: Superblock; error?: FormatError; magic: boolean }[] = [];
  const slot0 = tryDecode(head.subarray(0, SUPERBLOCK_SIZE), 0);
  candidates.push({ slot: 0, ...slot0, magic: hasSuperblockMagic(head) });
  // Slot 1 sits at one block size from the start; that size is in slot 0,
  // or, if slot 0 is damaged, found by trying every legal block size.
  const sizes = slot0.superblock !== undefined ? [slot0.superblock.blockSize] : legalBlockSizes();
  let slot1: { superblock?: Superblock; error?: FormatError; magic: boolean } = { magic: false };
  for (const blockSize of sizes) {
    if (blockSize + SUPERBLOCK_SIZE > device.sizeBytes) break;
    const bytes = await readAt(device, blockSize, head, headSize);
    const decoded = tryDecode(bytes, 1);
    if (decoded.superblock !== undefined && decoded.superblock.blockSize !== blockSize) {
      decoded.error = new FormatError('superblock', `says block size ${decoded.superblock.blockSize} but sits at offset ${blockSize}`, 1);
      decoded.superblock = undefined;
    }
    slot1 = { ...decoded, magic: hasSuperblockMagic(bytes) };
    if (decoded.superblock !== undefined || slot0.superblock !== undefined) break;
  }
  candidates.push({ slot: 1, ...slot1 });
  const valid = candidates.filter((candidate) => candidate.superblock !== undefined);
  if (valid.length === 0) {
    if (!candidates.some((candidate) => candidate.magic)) {
      // Both superblock copies gone (zeroed, lost writes) but WAL blocks of a
      // ringstore right behind them: a damaged store — never "empty", or
      // create: true would format over it. (Read far enough for the largest
      // block size: this path runs only when no superblock was found.)
      const wideSize = Math.min(device.sizeBytes, 2 * BLOCK_SIZE_MAX + 4096);
      const wide = allocAligned(wideSize - (wideSize % Math.max(device.ioAlignment, 512)), Math.max(device.ioAlignment, 4096));
      await device.read(0, wide);
      const walAt = findWalMagic(wide);
      if (walAt !== undefined) {
        throw new StoreCorruptError('superblock', `both copies are missing, but a WAL block of a ringstore follows at byte ${walAt}`, 0);
      }
      // Never format over data: only a head of zeros (a new or empty file)
      // is free to become a store.
      if (isAllZero(head, 0, head.length)) return { kind: 'empty' };
      return { kind: 'foreign' };
    }
    const first = candidates.find((candidate) => candidate.error !== undefined)?.error;
    throw new StoreCorruptError('superblock', `no valid copy: ${candidates.map((c) => `slot ${c.slot}: ${c.error?.reason ?? 'missing'}`).join('; ')}`, first?.blockIndex);
  }
  valid.sort((a, b) => b.superblock!.generation - a.superblock!.generation);
  const newest = valid[0].superblock!;
  // A damaged or missing copy is what a torn superblock write leaves (or bit
  // rot): the other copy is authoritative and the damaged slot is rewritten.
  const slotsToRepair = candidates.filter((candidate) => candidate.superblock === undefined).map((candidate) => candidate.slot);
  for (const other of valid.slice(1)) {
    if (other.superblock!.storeTag !== newest.storeTag || other.superblock!.blockSize !== newest.blockSize) {
      throw new StoreCorruptError('superblock', `the two copies describe different stores (tags ${newest.storeTag} and ${other.superblock!.storeTag})`, other.slot * newest.blockSize);
    }
  }
  if (newest.blockCount * newest.blockSize > device.sizeBytes) {
    throw new StoreCorruptError('superblock', `store of ${newest.blockCount} blocks does not fit the device (${device.sizeBytes} bytes)`, 0);
  }
  return { kind: 'found', superblock: newest, slotsToRepair };
}

/** Offset of a WAL block's magic where block 2 would start for some block size, if any. */
function findWalMagic(head: Uint8Array): number | undefined {
  const words = new DataView(head.buffer, head.byteOffset, head.byteLength);
  for (let blockSize = BLOCK_SIZE_MIN; 2 * blockSize + 4 <= head.length; blockSize *= 2) {
    if (words.getUint32(2 * blockSize, true) === frameMagic('wal')) return 2 * blockSize;
  }
  return undefined;
}

function legalBlockSizes(): number[] {
  const sizes: number[] = [];
  for (let size = BLOCK_SIZE_MIN; size <= BLOCK_SIZE_MAX; size *= 2) sizes.push(size);
  return sizes;
}

async function readAt(device: BlockDevice, offset: number, head: Uint8Array, headSize: number): Promise<Uint8Array> {
  if (offset + SUPERBLOCK_SIZE <= headSize) return head.subarray(offset, offset + SUPERBLOCK_SIZE);
  const alignment = Math.max(device.ioAlignment, 512);
  const buffer = allocAligned(Math.max(SUPERBLOCK_SIZE, alignment), Math.max(alignment, 4096));
  await device.read(offset, buffer);
  return buffer.subarray(0, SUPERBLOCK_SIZE);
}

function tryDecode(bytes: Uint8Array, slot: number): { superblock?: Superblock; error?: FormatError } {
  try {
    return { superblock: decodeSuperblock(bytes, slot) };
  } catch (error) {
    if (error instanceof FormatError) return { error };
    throw error;
  }
}

/** Loads checkpoint and WAL of a store whose superblock was found. */
export async function recoverStore(device: BlockDevice, superblock: Superblock, slotsToRepair: number[]): Promise<RecoveredStore> {
  const blockSize = superblock.blockSize;
  const index = newIndex();
  try {
    if (superblock.checkpointExtents.length > 0) await loadCheckpoint(device, superblock, index);

    const walBytes = superblock.walBlockCount * blockSize;
    const region = allocAligned(walBytes, Math.max(device.ioAlignment, 4096));
    await readLarge(device, superblock.walStartBlock * blockSize, region);
    const scan = scanWal(
      { bytes: region, blockSize, startBlock: superblock.walStartBlock, storeTag: superblock.storeTag },
      superblock.walReplayBlock,
      superblock.checkpointSeq + 1,
    );

    // Commits after the last one known durable may have reached the disk
    // only in part: their WAL blocks but not their extent data, if the crash
    // came before the commit's fdatasync. Check the extent values those
    // commits leave live (a value they superseded may already be trimmed,
    // legitimately); the commit that wrote a value whose data is missing, and
    // everything after it, is dropped like a torn commit.
    const commits = scan.commits;
    const parsed = commits.map((commit) => parseCommit(commit, superblock.walStartBlock + commit.startBlock, blockSize));
    const durableSequence = parsed.length > 0 ? parsed[parsed.length - 1].durableSequence : superblock.checkpointSeq;
    let keep = parsed.length;
    let tornTail = scan.tornReason;
    const verified = new Set<ExtentValue>();
    for (;;) {
      const live = new Map<string, { value: ExtentValue | undefined; commit: number }>();
      for (let i = 0; i < keep; i++) {
        if (commits[i].sequence <= durableSequence) continue;
        for (const { key, entry } of parsed[i].operations) {
          live.set(key, { value: entry !== undefined && !(entry.value instanceof Uint8Array) ? entry.value : undefined, commit: i });
        }
      }
      let firstBad: { commit: number; reason: string } | undefined;
      for (const [key, { value, commit }] of live) {
        if (value === undefined || verified.has(value) || (firstBad !== undefined && commit >= firstBad.commit)) continue;
        for (const extent of value.extents) {
          if (extent.startBlock < superblock.dataStartBlock || extent.startBlock + extent.blockCount > superblock.blockCount) {
            throw new StoreCorruptError('wal', `commit ${commits[commit].sequence}: value of key ${JSON.stringify(key.slice(0, 64))} references blocks ${extent.startBlock}+${extent.blockCount} outside the data region`, superblock.walStartBlock + commits[commit].startBlock);
          }
        }
        const crc = await extentValueCrc(device, value, blockSize);
        if (crc === value.crc) {
          verified.add(value);
          continue;
        }
        firstBad = { commit, reason: `value of key ${JSON.stringify(key.slice(0, 64))} has checksum 0x${crc.toString(16)}, its record says 0x${value.crc.toString(16)}` };
      }
      if (firstBad === undefined) break;
      keep = firstBad.commit;
      tornTail = `commit ${commits[keep].sequence} (block ${superblock.walStartBlock + commits[keep].startBlock}): ${firstBad.reason}`;
    }
    for (let i = 0; i < keep; i++) applyOperations(index, parsed[i].operations);
    const kept = commits.slice(0, keep);
    // Writing resumes where the scan expects the next commit: after the last
    // kept one. Frames of dropped or torn commits may still be intact; the
    // store erases them (staleBlocks) before reusing their sequence numbers.
    let walHeadBlock = scan.nextBlock;
    if (keep < commits.length) {
      walHeadBlock = keep > 0 ? (kept[keep - 1].startBlock + kept[keep - 1].blockCount) % superblock.walBlockCount : superblock.walReplayBlock;
    }
    const nextSequence = keep < commits.length ? commits[keep].sequence : scan.nextSequence;
    const staleBlocks = findStaleBlocks(region, superblock, nextSequence);
    return {
      superblock,
      slotsToRepair,
      index,
      liveCommits: kept.map(({ sequence, startBlock, blockCount }) => ({ sequence, startBlock, blockCount })),
      walHeadBlock,
      nextSequence,
      tornTail,
      staleBlocks,
    };
  } catch (error) {
    if (error instanceof FormatError) throw StoreCorruptError.from(error);
    throw error;
  }
}

/** Intact WAL blocks of this store whose sequence will be written again. */
function findStaleBlocks(region: Uint8Array, superblock: Superblock, nextSequence: number): number[] {
  const blockSize = superblock.blockSize;
  const magic = frameMagic('wal');
  const words = new DataView(region.buffer, region.byteOffset, region.byteLength);
  const stale: number[] = [];
  for (let block = 0; block < superblock.walBlockCount; block++) {
    if (words.getUint32(block * blockSize, true) !== magic) continue;
    try {
      const header = decodeFrameBlock('wal', region.subarray(block * blockSize, (block + 1) * blockSize), superblock.walStartBlock + block);
      if (header.storeTag === superblock.storeTag && header.sequence >= nextSequence) stale.push(block);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      // A damaged block can never complete a frame: nothing to erase.
    }
  }
  return stale;
}

async function loadCheckpoint(device: BlockDevice, superblock: Superblock, index: StoreIndex): Promise<void> {
  const blockSize = superblock.blockSize;
  const bytes = allocAligned(superblock.checkpointBlockCount * blockSize, Math.max(device.ioAlignment, 4096));
  let offset = 0;
  const reads: Promise<void>[] = [];
  const blockNumbers: number[] = [];
  for (const extent of superblock.checkpointExtents) {
    reads.push(readLarge(device, extent.startBlock * blockSize, bytes.subarray(offset, offset + extent.blockCount * blockSize)));
    for (let i = 0; i < extent.blockCount; i++) blockNumbers.push(extent.startBlock + i);
    offset += extent.blockCount * blockSize;
  }
  await Promise.all(reads);
  const payload = new Uint8Array(superblock.checkpointByteLength);
  let payloadOffset = 0;
  for (let i = 0; i < blockNumbers.length; i++) {
    const block = bytes.subarray(i * blockSize, (i + 1) * blockSize);
    const header = decodeFrameBlock('checkpoint', block, blockNumbers[i]);
    if (
      header.sequence !== superblock.checkpointSeq ||
      header.storeTag !== superblock.storeTag ||
      header.blockIndex !== i ||
      header.blockCount !== blockNumbers.length
    ) {
      // A checkpoint block that is intact but not this checkpoint's: a lost
      // or misdirected write.
      throw new FormatError(
        'checkpoint',
        `holds block ${header.blockIndex}/${header.blockCount} of checkpoint ${header.sequence}, expected ${i}/${blockNumbers.length} of ${superblock.checkpointSeq}`,
        blockNumbers[i],
      );
    }
    const part = frameBlockPayload(block, header);
    if (payloadOffset + part.length > payload.length) throw new FormatError('checkpoint', 'longer than the superblock says', blockNumbers[i]);
    payload.set(part, payloadOffset);
    payloadOffset += part.length;
  }
  if (payloadOffset !== payload.length) {
    throw new FormatError('checkpoint', `${payloadOffset} payload bytes, the superblock says ${payload.length}`, blockNumbers[0]);
  }
  const visitor: RecordVisitor = {
    put(key, isString, value) {
      index.set(bytesToKeyString(key), toEntry(isString, value), true);
    },
    delete() {
      // readCheckpointPayload refuses delete records.
    },
  };
  readCheckpointPayload(payload, visitor, blockNumbers[0], blockSize);
}

type Operation = { key: string; entry: IndexEntry | undefined };

function parseCommit(commit: ScannedCommit, firstBlock: number, blockSize: number): { operations: Operation[]; durableSequence: number } {
  const operations: Operation[] = [];
  const summary = readCommitPayload(
    commit.payload,
    {
      put(key, isString, value) {
        operations.push({ key: bytesToKeyString(key), entry: toEntry(isString, value) });
      },
      delete(key) {
        operations.push({ key: bytesToKeyString(key), entry: undefined });
      },
    },
    firstBlock,
    blockSize,
  );
  return { operations, durableSequence: summary.durableSequence };
}

function applyOperations(index: StoreIndex, operations: Operation[]): void {
  for (const { key, entry } of operations) {
    if (entry === undefined) index.delete(key);
    else index.set(key, entry, true);
  }
}

function toEntry(isString: boolean, value: StoredValue): IndexEntry {
  // Inline bytes stay views into the checkpoint or commit payload: copying
  // a million small values costs a million ArrayBuffers (seconds of
  // allocation and GC at open). The payload is then kept alive while any of
  // its values is, so the memory they pin is at most the checkpoint's size
  // until the next checkpoint and reopen.
  return { isString, value: value.kind === 'inline' ? value.bytes : value };
}

export async function extentValueCrc(device: BlockDevice, value: ExtentValue, blockSize: number): Promise<number> {
  let crc = 0;
  let remaining = value.length;
  for (const extent of value.extents) {
    const bytes = allocAligned(extent.blockCount * blockSize, Math.max(device.ioAlignment, 4096));
    await readLarge(device, extent.startBlock * blockSize, bytes);
    const used = Math.min(remaining, bytes.length);
    crc = crc32c(bytes.subarray(0, used), crc);
    remaining -= used;
  }
  return crc;
}

/** Transfers are at most 1 GiB; larger reads go in pieces. */
const READ_PIECE_BYTES = 64 << 20;

export async function readLarge(device: BlockDevice, position: number, target: Uint8Array): Promise<void> {
  const reads: Promise<void>[] = [];
  for (let offset = 0; offset < target.length; offset += READ_PIECE_BYTES) {
    reads.push(device.read(position + offset, target.subarray(offset, Math.min(target.length, offset + READ_PIECE_BYTES))));
  }
  await Promise.all(reads);
}
