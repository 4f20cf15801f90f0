// WAL scan: finds the chain of intact commits in a WAL region, given as
// bytes (scanWal) or as a WalSummary of it read a chunk at a time
// (scanWalBlocks), from the replay position a superblock names. Pure: the
// engine's recovery and tools/fsck both run it over a region they read
// themselves.
//
// The writer's rules this relies on (engine/wal_writer.ts):
//  - commits have consecutive sequence numbers;
//  - a commit starts at the block after the previous one, or at block 0 of
//    the region when it does not fit before the region's end;
//  - with sync: true, commit N+2 is written only after commit N is durable
//    (two commits are in flight at most), so at a crash the last two
//    commits can be incomplete, in either order; with deferred flushes
//    (sync: false) every commit after the last flush can be;
//  - every commit records the highest sequence known durable when it was
//    written (durableSequence; sequence - 1 or - 2 with sync: true, less
//    with deferred flushes).
// Hence: an invalid commit N is a torn tail — a crash during its write — and
// ends the log, unless a later commit's first block says N was already
// durable when that commit was written: then N was damaged after the fact,
// in the middle of the log, and the scan refuses it.
import assert from 'node:assert/strict';

import { isAllZero } from './bytes.js';
import { commitDurableSequence } from './commit.js';
import { FormatError } from './format_error.js';
import { decodeFrameBlock, frameBlockPayload, frameMagic, framePayloadPerBlock, type FrameBlockHeader } from './frame.js';

export interface ScannedCommit {
  sequence: number;
  /** WAL-relative first block. */
  startBlock: number;
  blockCount: number;
  /** Its payload: never a view into the region given to scanWal, nor into memory anything writes again (recovery keeps views into it). */
  payload: Uint8Array;
}

export interface WalScan {
  commits: ScannedCommit[];
  /** WAL-relative block where the next commit goes. */
  nextBlock: number;
  nextSequence: number;
  /** Why the scan stopped: 'end' (no commit there) or 'torn' (an incomplete last commit). */
  stop: 'end' | 'torn';
  /** For 'torn': what was wrong, naming the block. */
  tornReason: string | undefined;
}

export interface WalRegion {
  /** The whole WAL region: walBlockCount × blockSize bytes. */
  bytes: Uint8Array;
  blockSize: number;
  /** Absolute block index of the region's first block (for error messages). */
  startBlock: number;
  storeTag: number;
}

/**
 * What a scan reads of a WAL region, block by block: a WalRegion's bytes
 * (regionBlocks), or a WalSummary of a region read a chunk at a time.
 */
export interface WalBlocks {
  readonly blockCount: number;
  readonly blockSize: number;
  /** Absolute block index of the region's first block (for error messages). */
  readonly startBlock: number;
  readonly storeTag: number;
  /** Whether the block starts with the WAL magic (cheap: no decode). */
  hasMagic(block: number): boolean;
  /** decodeFrameBlock's verdict on the block: its header, or the FormatError it threw. */
  header(block: number): FrameBlockHeader | FormatError;
  /**
   * The payload of an intact block of this store whose sequence is at least
   * the scan's first one (the only blocks whose payload a scan reads), with
   * `header` its header: a view.
   */
  payload(block: number, header: FrameBlockHeader): Uint8Array;
  /**
   * The payloads of blocks `firstBlock` .. `firstBlock + blockCount - 1`
   * (each such a block, all but the last full) as one view of `byteLength`
   * bytes, if they lie in a row in memory the scan never writes again;
   * else undefined, and the caller copies them.
   */
  payloadRun(firstBlock: number, blockCount: number, byteLength: number): Uint8Array | undefined;
  /** Whether the block is all zeros (never written, or trimmed). */
  isAllZero(block: number): boolean;
}

export function scanWal(region: WalRegion, replayBlock: number, firstSequence: number): WalScan {
  return scanWalBlocks(regionBlocks(region), replayBlock, firstSequence);
}

/** The blocks of a region held whole in memory. */
export function regionBlocks(region: WalRegion): WalBlocks {
  const { bytes, blockSize, startBlock, storeTag } = region;
  const words = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = frameMagic('wal');
  const blockAt = (block: number): Uint8Array => bytes.subarray(block * blockSize, (block + 1) * blockSize);
  return {
    blockCount: bytes.length / blockSize,
    blockSize,
    startBlock,
    storeTag,
    hasMagic: (block) => words.getUint32(block * blockSize, true) === magic,
    header: (block) => decodeWalBlock(blockAt(block), startBlock + block),
    payload: (block, header) => frameBlockPayload(blockAt(block), header),
    // The caller's bytes, which it may change: commits get copies.
    payloadRun: () => undefined,
    isAllZero: (block) => isAllZero(bytes, block * blockSize, (block + 1) * blockSize),
  };
}

/**
 * A WAL region read a chunk at a time (add()), kept as much as a scan of
 * it from `firstSequence` needs: every block's header (or why it is not an
 * intact WAL block), and the payloads of only the intact blocks of this
 * store with a sequence of `firstSequence` or later — the commits to
 * replay, and the leftovers of torn ones. Stale blocks of older laps, most
 * of a large WAL, are checked and dropped: recovery holds the WAL tail, not
 * a copy of the whole region (fresh memory for 64 MiB cost ~0.25 s of page
 * faults here, more than reading it).
 *
 * The payloads a chunk keeps are copied into one arena of its own, block
 * b's at (b - the arena's first block) × the payload a block holds: since
 * every block of a frame but its last is full, a commit whose blocks came
 * in one chunk is one view of it (payloadRun), and the scan copies only the
 * few that straddle two chunks. Copying each kept block apart, and then
 * each commit's payload out of them, touched twice the tail's size of
 * fresh memory (page faults: ~3 ms a MiB in 4 KiB pages on a PVM guest)
 * and made an allocation a block: 0.13 s of a 10 M-key store's crash-open
 * with a 29 MiB tail. Views into an arena keep all of it alive (recovery
 * keeps views into commits): at most the WAL's size. An arena spans a
 * chunk's kept blocks only, so a short tail takes about its own size.
 * REQUIRES: every block added once before the scan.
 */
export class WalSummary implements WalBlocks {
  readonly blockCount: number;
  readonly blockSize: number;
  readonly startBlock: number;
  readonly storeTag: number;
  readonly #firstSequence: number;
  readonly #payloadBytesPerBlock: number;
  /** Per block: its header, the FormatError of a damaged block with the magic, or undefined without the magic. */
  readonly #headers: (FrameBlockHeader | FormatError | undefined)[];
  /** Per kept block: the arena holding its payload (undefined: not kept). */
  readonly #arenas: (PayloadArena | undefined)[];
  readonly #zero: boolean[];
  readonly #allocate: (byteLength: number) => Uint8Array;
  #added = 0;

  /**
   * `allocate` gives the arenas' memory (the engine's comes in huge pages,
   * whose faults cost a fraction of small pages'); only the bytes copied in
   * are ever read.
   */
  constructor(blockCount: number, blockSize: number, startBlock: number, storeTag: number, firstSequence: number, allocate: (byteLength: number) => Uint8Array = (byteLength) => new Uint8Array(byteLength)) {
    this.#allocate = allocate;
    this.blockCount = blockCount;
    this.blockSize = blockSize;
    this.startBlock = startBlock;
    this.storeTag = storeTag;
    this.#firstSequence = firstSequence;
    this.#payloadBytesPerBlock = framePayloadPerBlock(blockSize);
    this.#headers = new Array(blockCount).fill(undefined);
    this.#arenas = new Array(blockCount).fill(undefined);
    this.#zero = new Array(blockCount).fill(false);
  }

  /** Takes in whole blocks from `firstBlock` on (the payloads kept are copied). */
  add(firstBlock: number, bytes: Uint8Array): void {
    const blockSize = this.blockSize;
    const blockCount = bytes.length / blockSize;
    assert.ok(Number.isInteger(blockCount) && firstBlock >= 0 && firstBlock + blockCount <= this.blockCount, 'whole blocks of the region');
    const words = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const magic = frameMagic('wal');
    // Headers first, then one arena from the first kept block to the last:
    // a short tail (or the few blocks of one that wrapped) takes what it
    // needs, not a chunk's worth.
    let firstKept = -1;
    let lastKept = -1;
    for (let i = 0; i < blockCount; i++) {
      const block = firstBlock + i;
      const start = i * blockSize;
      this.#added++;
      if (words.getUint32(start, true) !== magic) {
        this.#zero[block] = isAllZero(bytes, start, start + blockSize);
        continue;
      }
      const header = decodeWalBlock(bytes.subarray(start, start + blockSize), this.startBlock + block);
      this.#headers[block] = header;
      if (!this.#keeps(header)) continue;
      if (firstKept < 0) firstKept = i;
      lastKept = i;
    }
    if (firstKept < 0) return;
    const arena: PayloadArena = { firstBlock: firstBlock + firstKept, bytes: this.#allocate((lastKept - firstKept + 1) * this.#payloadBytesPerBlock) };
    for (let i = firstKept; i <= lastKept; i++) {
      const header = this.#headers[firstBlock + i];
      if (!this.#keeps(header)) continue;
      const start = i * blockSize;
      arena.bytes.set(frameBlockPayload(bytes.subarray(start, start + blockSize), header), (i - firstKept) * this.#payloadBytesPerBlock);
      this.#arenas[firstBlock + i] = arena;
    }
  }

  /** Whether a block's payload is kept: an intact block of this store from the first sequence on. */
  #keeps(header: FrameBlockHeader | FormatError | undefined): header is FrameBlockHeader {
    return header !== undefined && !(header instanceof FormatError) && header.storeTag === this.storeTag && header.sequence >= this.#firstSequence;
  }

  hasMagic(block: number): boolean {
    this.#checkComplete();
    return this.#headers[block] !== undefined;
  }

  header(block: number): FrameBlockHeader | FormatError {
    this.#checkComplete();
    // decodeFrameBlock's own refusal of a block without the magic (any
    // such block gets the same one).
    return this.#headers[block] ?? decodeWalBlock(new Uint8Array(this.blockSize), this.startBlock + block);
  }

  payload(block: number, header: FrameBlockHeader): Uint8Array {
    const arena = this.#keptArena(block);
    const start = (block - arena.firstBlock) * this.#payloadBytesPerBlock;
    return arena.bytes.subarray(start, start + header.payloadBytes);
  }

  payloadRun(firstBlock: number, blockCount: number, byteLength: number): Uint8Array | undefined {
    const arena = this.#keptArena(firstBlock);
    const last = firstBlock + blockCount - 1;
    assert.ok(blockCount >= 1 && (blockCount === 1 || byteLength > (blockCount - 1) * this.#payloadBytesPerBlock) && byteLength <= blockCount * this.#payloadBytesPerBlock, 'all blocks but the last full');
    if (last >= this.blockCount || this.#arenas[last] !== arena) return undefined;
    const start = (firstBlock - arena.firstBlock) * this.#payloadBytesPerBlock;
    return arena.bytes.subarray(start, start + byteLength);
  }

  #keptArena(block: number): PayloadArena {
    const arena = this.#arenas[block];
    assert.ok(arena !== undefined, `block ${block} is an intact block of this store from the first sequence on (the scan reads no other)`);
    return arena;
  }

  isAllZero(block: number): boolean {
    this.#checkComplete();
    return this.#zero[block]!;
  }

  #checkComplete(): void {
    assert.ok(this.#added === this.blockCount, 'every block of the region was added');
  }
}

/** The kept payloads of one add(): block b's at (b - firstBlock) × the payload a block holds. */
interface PayloadArena {
  readonly firstBlock: number;
  readonly bytes: Uint8Array;
}

function decodeWalBlock(block: Uint8Array, absoluteBlock: number): FrameBlockHeader | FormatError {
  try {
    return decodeFrameBlock('wal', block, absoluteBlock);
  } catch (error) {
    if (error instanceof FormatError) return error;
    throw error;
  }
}

/** scanWal over any WalBlocks of the region. */
export function scanWalBlocks(region: WalBlocks, replayBlock: number, firstSequence: number): WalScan {
  const walBlockCount = region.blockCount;
  const commits: ScannedCommit[] = [];
  let position = replayBlock;
  let sequence = firstSequence;
  for (;;) {
    let attempt = readCommitAt(region, position, sequence, walBlockCount);
    if (!attempt.ok && position !== 0) {
      // The writer puts a commit at block 0 only when it does not fit
      // between `position` and the region's end; a commit at 0 that would
      // have fitted is not the next one (a stale or misdirected copy).
      const wrapped = readCommitAt(region, 0, sequence, walBlockCount);
      if (wrapped.ok && wrapped.commit.blockCount > walBlockCount - position) attempt = wrapped;
      // Nothing at `position` but a broken commit of this sequence at 0: the
      // damage (or the tear) is there, so that is the block to name.
      else if (!wrapped.ok && wrapped.reason !== 'no commit' && !attempt.ok && attempt.reason === 'no commit') attempt = wrapped;
    }
    if (!attempt.ok) {
      const later = findLaterWitness(region, sequence, walBlockCount);
      if (later !== undefined) {
        // Name the block most likely damaged: if the expected position holds
        // an intact block of another commit (stale) while block 0 holds a
        // broken one, the commit wrapped and its first block at 0 is the
        // damaged one.
        if (
          attempt.block === position &&
          position !== 0 &&
          !(region.header(position) instanceof FormatError) &&
          region.header(0) instanceof FormatError &&
          !region.isAllZero(0)
        ) {
          attempt = { ok: false, reason: describeBlock(region, 0), block: 0 };
        }
        throw new FormatError(
          'wal',
          `commit ${sequence} is damaged (${attempt.reason}) but commit ${later.sequence} at block ${region.startBlock + later.block} was written after it was durable: damage in the middle of the log`,
          region.startBlock + attempt.block,
        );
      }
      return {
        commits,
        nextBlock: position,
        nextSequence: sequence,
        stop: attempt.reason === 'no commit' ? 'end' : 'torn',
        tornReason: attempt.reason === 'no commit' ? undefined : `block ${region.startBlock + attempt.block}: ${attempt.reason}`,
      };
    }
    commits.push(attempt.commit);
    position = attempt.commit.startBlock + attempt.commit.blockCount;
    if (position === walBlockCount) position = 0;
    sequence++;
  }
}

type Attempt = { ok: true; commit: ScannedCommit } | { ok: false; reason: string; block: number };

function readCommitAt(region: WalBlocks, position: number, sequence: number, walBlockCount: number): Attempt {
  // A block without the WAL magic (never written, zeroed or trimmed) holds
  // no commit: the log simply ends there.
  if (!region.hasMagic(position)) {
    return { ok: false, reason: 'no commit', block: position };
  }
  const first = region.header(position);
  if (first instanceof FormatError) return { ok: false, reason: first.reason, block: position };
  if (first.sequence !== sequence || first.storeTag !== region.storeTag || first.blockIndex !== 0) {
    return { ok: false, reason: 'no commit', block: position };
  }
  if (position + first.blockCount > walBlockCount) {
    return { ok: false, reason: `commit of ${first.blockCount} blocks runs past the WAL end`, block: position };
  }
  const headers: FrameBlockHeader[] = [first];
  let length = first.payloadBytes;
  for (let index = 1; index < first.blockCount; index++) {
    const header = region.header(position + index);
    if (header instanceof FormatError) return { ok: false, reason: header.reason, block: position + index };
    if (
      header.sequence !== sequence ||
      header.storeTag !== region.storeTag ||
      header.blockIndex !== index ||
      header.blockCount !== first.blockCount
    ) {
      return { ok: false, reason: `block ${index} of commit ${sequence} is missing (stale or foreign block)`, block: position + index };
    }
    headers.push(header);
    length += header.payloadBytes;
  }
  let payload = region.payloadRun(position, first.blockCount, length);
  if (payload === undefined) {
    payload = new Uint8Array(length);
    let offset = 0;
    for (let index = 0; index < headers.length; index++) {
      const part = region.payload(position + index, headers[index]!);
      payload.set(part, offset);
      offset += part.length;
    }
  }
  return { ok: true, commit: { sequence, startBlock: position, blockCount: first.blockCount, payload } };
}

function describeBlock(region: WalBlocks, block: number): string {
  const header = region.header(block);
  return header instanceof FormatError ? header.reason : `holds commit ${header.sequence}, block ${header.blockIndex}`;
}

/**
 * An intact first block of a later commit of this store whose durableSequence
 * covers `sequence`: proof that commit `sequence` had been durable.
 */
function findLaterWitness(region: WalBlocks, sequence: number, walBlockCount: number): { block: number; sequence: number } | undefined {
  for (let block = 0; block < walBlockCount; block++) {
    // Most blocks of a region are stale or empty: skip those without the
    // magic before paying for a decode (and an exception).
    if (!region.hasMagic(block)) continue;
    const header = region.header(block);
    if (header instanceof FormatError || header.storeTag !== region.storeTag) continue;
    if (header.sequence <= sequence || header.blockIndex !== 0) continue;
    if (commitDurableSequence(region.payload(block, header)) >= sequence) {
      return { block, sequence: header.sequence };
    }
  }
  return undefined;
}
