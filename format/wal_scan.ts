// WAL scan: finds the chain of intact commits in a WAL region, given as
// bytes, from the replay position a superblock names. Pure: the engine's
// recovery and tools/fsck both run it over a region they read themselves.
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
import { isAllZero } from './bytes.js';
import { commitDurableSequence } from './commit.js';
import { FormatError } from './format_error.js';
import { decodeFrameBlock, frameBlockPayload, frameMagic, type FrameBlockHeader } from './frame.js';

export interface ScannedCommit {
  sequence: number;
  /** WAL-relative first block. */
  startBlock: number;
  blockCount: number;
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

export function scanWal(region: WalRegion, replayBlock: number, firstSequence: number): WalScan {
  const walBlockCount = region.bytes.length / region.blockSize;
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
          !(decodeAt(region, position) instanceof FormatError) &&
          decodeAt(region, 0) instanceof FormatError &&
          !isAllZero(blockAt(region, 0), 0, region.blockSize)
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

function readCommitAt(region: WalRegion, position: number, sequence: number, walBlockCount: number): Attempt {
  // A block without the WAL magic (never written, zeroed or trimmed) holds
  // no commit: the log simply ends there.
  if (new DataView(region.bytes.buffer, region.bytes.byteOffset).getUint32(position * region.blockSize, true) !== frameMagic('wal')) {
    return { ok: false, reason: 'no commit', block: position };
  }
  const first = decodeAt(region, position);
  if (first instanceof FormatError) return { ok: false, reason: first.reason, block: position };
  if (first.sequence !== sequence || first.storeTag !== region.storeTag || first.blockIndex !== 0) {
    return { ok: false, reason: 'no commit', block: position };
  }
  if (position + first.blockCount > walBlockCount) {
    return { ok: false, reason: `commit of ${first.blockCount} blocks runs past the WAL end`, block: position };
  }
  const parts: Uint8Array[] = [frameBlockPayload(blockAt(region, position), first)];
  let length = first.payloadBytes;
  for (let index = 1; index < first.blockCount; index++) {
    const header = decodeAt(region, position + index);
    if (header instanceof FormatError) return { ok: false, reason: header.reason, block: position + index };
    if (
      header.sequence !== sequence ||
      header.storeTag !== region.storeTag ||
      header.blockIndex !== index ||
      header.blockCount !== first.blockCount
    ) {
      return { ok: false, reason: `block ${index} of commit ${sequence} is missing (stale or foreign block)`, block: position + index };
    }
    parts.push(frameBlockPayload(blockAt(region, position + index), header));
    length += header.payloadBytes;
  }
  const payload = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    payload.set(part, offset);
    offset += part.length;
  }
  return { ok: true, commit: { sequence, startBlock: position, blockCount: first.blockCount, payload } };
}

function describeBlock(region: WalRegion, block: number): string {
  const header = decodeAt(region, block);
  return header instanceof FormatError ? header.reason : `holds commit ${header.sequence}, block ${header.blockIndex}`;
}

function blockAt(region: WalRegion, block: number): Uint8Array {
  return region.bytes.subarray(block * region.blockSize, (block + 1) * region.blockSize);
}

function decodeAt(region: WalRegion, block: number): FrameBlockHeader | FormatError {
  try {
    return decodeFrameBlock('wal', blockAt(region, block), region.startBlock + block);
  } catch (error) {
    if (error instanceof FormatError) return error;
    throw error;
  }
}

/**
 * An intact first block of a later commit of this store whose durableSequence
 * covers `sequence`: proof that commit `sequence` had been durable.
 */
function findLaterWitness(region: WalRegion, sequence: number, walBlockCount: number): { block: number; sequence: number } | undefined {
  const magic = frameMagic('wal');
  const words = new DataView(region.bytes.buffer, region.bytes.byteOffset, region.bytes.byteLength);
  for (let block = 0; block < walBlockCount; block++) {
    // Most blocks of a region are stale or empty: skip those without the
    // magic before paying for a decode (and an exception).
    if (words.getUint32(block * region.blockSize, true) !== magic) continue;
    const header = decodeAt(region, block);
    if (header instanceof FormatError || header.storeTag !== region.storeTag) continue;
    if (header.sequence <= sequence || header.blockIndex !== 0) continue;
    if (commitDurableSequence(frameBlockPayload(blockAt(region, block), header)) >= sequence) {
      return { block, sequence: header.sequence };
    }
  }
  return undefined;
}
