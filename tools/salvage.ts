// Salvage: every entry of a damaged store that can still be verified, read
// from the image through format/ only (like fsck), so it works on a store
// the engine refuses to open. What `ringstore dump --salvage` writes out;
// the counterpart of LevelDB's RepairDB and `mdb_dump -r`.
//
// Where the entries come from, in order of trust:
//  1. The tree of the newest valid superblock copy (any of the four): every
//     page whose CRC matches the one its parent holds is read; a page that
//     does not verify is skipped with its subtree, and the key range its
//     parent's separators give it is remembered as lost.
//  2. A scan of every block of the data region for intact leaf pages of
//     this store (magic, own CRC, own address, store tag) in blocks the
//     checkpoint's free set marks in use: the leaves under a damaged branch
//     are still there. For a key in a lost range, the entry of the page with
//     the newest checkpoint sequence is kept. Only lost ranges are filled
//     this way: elsewhere the tree is authoritative. Leaves in free blocks
//     are older copies a checkpoint replaced, and are never used.
//     Nor is a page in a block the tree pointed at and found wrong: an
//     intact page there is an older one a lost write left behind.
//  3. The WAL after the checkpoint, replayed as recovery does (puts and
//     deletes, checksummed commits; a torn tail ends it; damage in the
//     middle ends it too, where recovery would refuse the store).
// An extent value is emitted only if its bytes match its CRC32C.
//
// What it cannot do: the entries of a damaged leaf are lost (its older
// copies hold older values, and are not used); if the free set is damaged
// too, so are the entries under a damaged branch; after damage in the
// middle of the WAL, the keys of the lost commits keep older values (which
// keys they were cannot be known). The report lists the skipped pages and
// the key ranges under them, and the WAL's state.
import { commitDurableSequence, readCommitPayload } from '../format/commit.js';
import { PAGE_KIND_LEAF, PAGE_MAGIC, TREE_LEVELS_MAX } from '../format/constants.js';
import { crc32c } from '../format/crc32c.js';
import { FormatError } from '../format/format_error.js';
import { decodePage, pageSizeFor } from '../format/page.js';
import type { ExtentValue, StoredValue } from '../format/records.js';
import { inDataRegion, type Superblock } from '../format/superblock.js';
import { scanWal, type WalRegion } from '../format/wal_scan.js';
import { findSuperblock, readFreeSetInUse, type FsckReport, type ImageReader } from './fsck.js';

/** Bytes of the data region the scan reads at a time, looking for page magics. */
const SCAN_PIECE_BYTES = 4 << 20;
/** Bytes of an extent value read at a time, to check or to copy it. */
export const VALUE_READ_PIECE_BYTES = 1 << 20;

export interface SalvagedEntry {
  key: Uint8Array;
  keyIsString: boolean;
  value: StoredValue;
  /** Where the entry was found. */
  source: 'tree' | 'scan' | 'wal';
}

export interface SalvageReport {
  /** Generation and checkpoint of the superblock copy used. */
  superblock: { generation: number; checkpointSeq: number; blockSize: number; valueEncodingId: number } | undefined;
  /** Superblock copies that did not verify, and other notes. */
  warnings: string[];
  /** Tree pages that did not verify, with their subtrees. */
  pagesSkipped: { block: number; level: number; reason: string }[];
  /** Key ranges under skipped pages (latin1 key strings; undefined: unbounded). */
  lostRanges: { low: string | undefined; high: string | undefined }[];
  /** Intact leaf pages the scan found that the tree did not reach, and how many of their entries were used. */
  scannedLeaves: number;
  entriesFromScan: number;
  /** WAL commits replayed after the checkpoint, and why replay stopped early (if it did). */
  walCommits: number;
  walProblem: string | undefined;
  /**
   * The WAL ends at an incomplete commit: a crash during its write, or
   * damage to the last commit (the two look alike, as for recovery).
   */
  walTornTail: string | undefined;
  /** Entries dropped because their value does not verify. */
  valuesSkipped: { key: string; reason: string }[];
}

/** The image holds no store at all (no superblock copy and no WAL block carries ringstore's magic): what it holds instead. */
export class NoStoreFound extends Error {
  readonly holds: 'nothing' | 'zeros' | 'data';
  constructor(holds: 'nothing' | 'zeros' | 'data') {
    super(`the image holds ${holds} but no ringstore: no superblock copy and no WAL block carries ringstore's magic`);
    this.name = 'NoStoreFound';
    this.holds = holds;
  }
}

/**
 * Finds every entry of the image that verifies. Throws FormatError only if
 * no superblock copy is valid (nothing tells where anything is). `progress`
 * is told the bytes of the data region scanned so far.
 */
export function salvageImage(image: ImageReader, progress?: (doneBytes: number, totalBytes: number) => void): { superblock: Superblock; entries: Map<string, SalvagedEntry>; report: SalvageReport } {
  const report: SalvageReport = {
    superblock: undefined,
    warnings: [],
    pagesSkipped: [],
    lostRanges: [],
    scannedLeaves: 0,
    entriesFromScan: 0,
    walCommits: 0,
    walProblem: undefined,
    walTornTail: undefined,
    valuesSkipped: [],
  };
  const describe = (error: unknown): string => (error instanceof FormatError ? error.message : String(error));
  const found: Pick<FsckReport, 'errors' | 'warnings' | 'noStore'> = { errors: [], warnings: report.warnings };
  const superblock = findSuperblock(image, found, describe);
  if (superblock === undefined) {
    // No trace of a store at all: not a damaged one (fsck says so too).
    if (found.noStore !== undefined) throw new NoStoreFound(found.noStore);
    throw new FormatError('superblock', `no usable superblock copy (${[...found.errors, ...found.warnings].join('; ')})`);
  }
  report.warnings.push(...found.errors);
  report.superblock = { generation: superblock.generation, checkpointSeq: superblock.checkpointSeq, blockSize: superblock.blockSize, valueEncodingId: superblock.valueEncodingId };
  const blockSize = superblock.blockSize;
  const pageSize = pageSizeFor(blockSize);
  const pageBlocks = pageSize / blockSize;
  const entries = new Map<string, SalvagedEntry>();
  const reached = new Set<number>();

  // 1. The tree, skipping what does not verify.
  if (superblock.treeRoot !== undefined) {
    const stack: { block: number; crc: number; level: number; low: string | undefined; high: string | undefined }[] = [
      { ...superblock.treeRoot, low: undefined, high: undefined },
    ];
    while (stack.length > 0) {
      const visit = stack.pop()!;
      const lost = (reason: string): void => {
        report.pagesSkipped.push({ block: visit.block, level: visit.level, reason });
        report.lostRanges.push({ low: visit.low, high: visit.high });
      };
      if (visit.block < superblock.dataStartBlock || visit.block + pageBlocks > superblock.blockCount) {
        lost(`block ${visit.block} lies outside the data region`);
        continue;
      }
      let page;
      try {
        page = decodePage(image.read(visit.block * blockSize, pageSize), {
          address: visit.block,
          storeTag: superblock.storeTag,
          crc: visit.crc,
          level: visit.level,
          dataStartBlock: superblock.dataStartBlock,
          blockCount: superblock.blockCount,
          blockSize,
        });
      } catch (error) {
        if (!(error instanceof FormatError)) throw error;
        lost(error.reason);
        continue;
      }
      reached.add(visit.block);
      if (page.kind === 'leaf') {
        for (const entry of page.entries) {
          const keyString = latin1(entry.key);
          if (!entries.has(keyString)) entries.set(keyString, { key: entry.key.slice(), keyIsString: entry.keyIsString, value: ownValue(entry.value), source: 'tree' });
        }
        continue;
      }
      page.children.forEach((child, i) => {
        stack.push({
          block: child.block,
          crc: child.crc,
          level: visit.level - 1,
          low: i === 0 ? visit.low : latin1(child.separator!),
          high: i + 1 < page.children.length ? latin1(page.children[i + 1].separator!) : visit.high,
        });
      });
    }
  }

  // 2. Intact leaves the tree did not reach, for the keys of lost ranges.
  // Only leaves in blocks the checkpoint's free set marks in use: those are
  // the checkpoint's own pages under a damaged branch. A page the free set
  // calls free is an older copy that a checkpoint replaced (not yet reused
  // or trimmed) and would bring back old values or deleted keys.
  const inUse = report.lostRanges.length > 0 ? readFreeSet(image, superblock) : undefined;
  if (typeof inUse === 'string') report.warnings.push(`the free set does not verify, so pages outside the tree cannot be told from old copies and are not used: ${inUse}`);
  if (inUse instanceof Uint8Array) {
    const inLostRange = (key: string): boolean => report.lostRanges.some(({ low, high }) => (low === undefined || key >= low) && (high === undefined || key < high));
    const newest = new Map<string, { entry: SalvagedEntry; sequence: number }>();
    const skipped = new Set(report.pagesSkipped.map((page) => page.block));
    const startBlock = superblock.dataStartBlock;
    // Up to the image's end: blocks a superblock names past it (a copy cut
    // short, a forged count) read as zeros and hold no page (found by a
    // review: a count of 2^40 blocks was scanned).
    const endBlock = Math.min(superblock.blockCount, Math.floor(image.sizeBytes / blockSize)) - pageBlocks + 1;
    const totalBytes = (endBlock - startBlock) * blockSize;
    const pieceBlocks = Math.max(1, Math.floor(SCAN_PIECE_BYTES / blockSize));
    for (let pieceStart = startBlock; pieceStart < endBlock; pieceStart += pieceBlocks) {
      const count = Math.min(pieceBlocks, endBlock - pieceStart);
      const piece = image.read(pieceStart * blockSize, count * blockSize);
      const data = new DataView(piece.buffer, piece.byteOffset, piece.byteLength);
      for (let i = 0; i < count; i++) {
        const at = i * blockSize;
        const block = pieceStart + i;
        // A block the tree pointed at whose page did not verify holds no
        // usable page: an intact one there is not the page its parent wrote
        // down (a lost write left an older page, or the parent is wrong).
        if (data.getUint32(at, true) !== PAGE_MAGIC || reached.has(block) || skipped.has(block)) continue;
        if (inUse.subarray(block - startBlock, block - startBlock + pageBlocks).includes(0)) continue;
        // Kind and level from the header itself: the CRC check that follows
        // tells whether they, and all else, are what was written.
        if (piece[at + 28] !== PAGE_KIND_LEAF || piece[at + 29] >= TREE_LEVELS_MAX) continue;
        const bytes = image.read(block * blockSize, pageSize);
        let page;
        try {
          page = decodePage(bytes, {
            address: block,
            storeTag: superblock.storeTag,
            crc: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true),
            level: 0,
            dataStartBlock: superblock.dataStartBlock,
            blockCount: superblock.blockCount,
            blockSize,
          });
        } catch (error) {
          if (!(error instanceof FormatError)) throw error;
          continue; // a damaged or foreign page, or data that starts like one
        }
        if (page.kind !== 'leaf') continue;
        report.scannedLeaves++;
        for (const entry of page.entries) {
          const keyString = latin1(entry.key);
          if (entries.has(keyString) || !inLostRange(keyString)) continue;
          const previous = newest.get(keyString);
          if (previous !== undefined && previous.sequence >= page.checkpointSequence) continue;
          newest.set(keyString, { entry: { key: entry.key.slice(), keyIsString: entry.keyIsString, value: ownValue(entry.value), source: 'scan' }, sequence: page.checkpointSequence });
        }
      }
      progress?.((pieceStart + count - startBlock) * blockSize, totalBytes);
    }
    for (const [keyString, { entry }] of newest) entries.set(keyString, entry);
    report.entriesFromScan = newest.size;
  }

  // 3. The WAL after the checkpoint.
  replayWal(image, superblock, entries, report);
  return { superblock, entries, report };
}

/**
 * The checkpoint's free set as one byte per data block (1: in use), or why
 * it cannot be read. Read as fsck reads it: every frame block checked
 * against the superblock.
 */
function readFreeSet(image: ImageReader, superblock: Superblock): Uint8Array | string {
  try {
    return readFreeSetInUse(image, superblock);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    return error.message;
  }
}

/**
 * Replays the commits after the checkpoint over `entries`, as recovery
 * does. A commit written after the last one known durable whose extent
 * data fails its CRC never became durable (the crash came before its
 * fdatasync): the log ends before it. A damaged log stops the replay; the
 * report says so (the entries may then be older than the last writes).
 */
function replayWal(image: ImageReader, superblock: Superblock, entries: Map<string, SalvagedEntry>, report: SalvageReport): void {
  const blockSize = superblock.blockSize;
  const replayBlock = superblock.walReplayBlock;
  const firstSequence = superblock.checkpointSeq + 1;
  const region: WalRegion = {
    bytes: Uint8Array.prototype.slice.call(image.read(superblock.walStartBlock * blockSize, superblock.walBlockCount * blockSize)),
    blockSize,
    startBlock: superblock.walStartBlock,
    storeTag: superblock.storeTag,
  };
  let scan;
  try {
    scan = scanWal(region, replayBlock, firstSequence);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    // Damage in the middle of the log: the commits before it are intact and
    // replayed; which keys the damaged commit wrote cannot be known, so the
    // keys of it and of every later commit may hold older values.
    report.walProblem = `the WAL after checkpoint ${superblock.checkpointSeq} is damaged in the middle: its commits are replayed up to the damage only, so keys written at or after it may hold older values: ${error.message}`;
    if (error.blockIndex === undefined) return;
    const damaged = error.blockIndex - superblock.walStartBlock;
    // Scanned again with every block outside the chain from the replay
    // position to the damage zeroed: a later commit would vouch for the
    // damaged one again and refuse the whole log.
    const prefix = region.bytes.slice();
    for (let block = 0; block < superblock.walBlockCount; block++) {
      const inChain = damaged >= replayBlock ? block >= replayBlock && block < damaged : block >= replayBlock || block < damaged;
      if (!inChain) prefix.fill(0, block * blockSize, (block + 1) * blockSize);
    }
    try {
      scan = scanWal({ ...region, bytes: prefix }, replayBlock, firstSequence);
    } catch (again) {
      if (!(again instanceof FormatError)) throw again;
      return;
    }
  }
  report.walTornTail = scan.tornReason;
  const commits = scan.commits;
  const durable = commits.length > 0 ? commitDurableSequence(commits[commits.length - 1].payload) : superblock.checkpointSeq;
  for (const commit of commits) {
    const operations: { keyString: string; entry: SalvagedEntry | undefined }[] = [];
    try {
      readCommitPayload(
        commit.payload,
        {
          put: (key, keyIsString, value) => operations.push({ keyString: latin1(key), entry: { key: key.slice(), keyIsString, value: ownValue(value), source: 'wal' } }),
          delete: (key) => operations.push({ keyString: latin1(key), entry: undefined }),
        },
        superblock.walStartBlock + commit.startBlock,
        blockSize,
      );
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      report.walProblem = `commit ${commit.sequence} does not decode, it and later commits are not replayed: ${error.message}`;
      return;
    }
    // A value outside the data region was written so (its frame is intact):
    // damage, as open() and fsck say, not a crash before a flush.
    const outside = operations.find(({ entry }) => entry?.value.kind === 'extents' && entry.value.extents.some((extent) => !inDataRegion(superblock, extent)));
    if (outside !== undefined) {
      report.walProblem = `commit ${commit.sequence} puts the value of ${JSON.stringify(outside.keyString.slice(0, 40))} outside the data region (damage): it and later commits are not replayed`;
      return;
    }
    if (commit.sequence > durable) {
      const missing = operations.find(({ entry }) => entry?.value.kind === 'extents' && !extentValueIntact(image, entry.value, blockSize));
      if (missing !== undefined) {
        report.walProblem = `the log ends before commit ${commit.sequence}: the extent data of ${JSON.stringify(missing.keyString.slice(0, 40))} never reached the disk (a crash before its fdatasync)`;
        return;
      }
    }
    for (const { keyString, entry } of operations) {
      if (entry === undefined) entries.delete(keyString);
      else entries.set(keyString, entry);
    }
    report.walCommits++;
  }
}

/**
 * The bytes of an extent value, `VALUE_READ_PIECE_BYTES` at a time (not
 * checked: see extentValueIntact). REQUIRES: the extents lie in the image.
 */
export function* extentValuePieces(image: ImageReader, value: ExtentValue, blockSize: number): Generator<Uint8Array> {
  let remaining = value.length;
  for (const extent of value.extents) {
    const end = (extent.startBlock + extent.blockCount) * blockSize;
    for (let position = extent.startBlock * blockSize; position < end && remaining > 0; position += VALUE_READ_PIECE_BYTES) {
      const length = Math.min(VALUE_READ_PIECE_BYTES, end - position, remaining);
      yield image.read(position, length);
      remaining -= length;
    }
  }
}

/** Whether the extent value lies in the image and its bytes match its CRC32C. */
export function extentValueIntact(image: ImageReader, value: ExtentValue, blockSize: number): boolean {
  for (const extent of value.extents) if ((extent.startBlock + extent.blockCount) * blockSize > image.sizeBytes) return false;
  let crc = 0;
  let length = 0;
  for (const piece of extentValuePieces(image, value, blockSize)) {
    crc = crc32c(piece, crc);
    length += piece.length;
  }
  return length === value.length && crc === value.crc;
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** An entry's value with its own bytes (a decoded page's are views into the page). */
function ownValue(value: StoredValue): StoredValue {
  return value.kind === 'inline' ? { kind: 'inline', bytes: value.bytes.slice() } : value;
}
