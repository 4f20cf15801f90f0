// Opening a store: find the newest valid superblock among its four copies,
// load the checkpoint's free set, open its page tree at the root, replay the
// WAL after it, and drop a torn tail. Open reads O(WAL tail + free set),
// never the whole tree. Every decoding step goes through format/; damage
// becomes StoreCorruptError naming structure and block. Lenient paths name
// the crash they tolerate.
import { scanCommitPayload } from '../format/commit.js';
import { isAllZero } from '../format/bytes.js';
import { BLOCK_SIZE_MAX, BLOCK_SIZE_MIN, RECORD_PUT_EXTENTS, SUPERBLOCK_SIZE, SUPERBLOCK_SLOT_COUNT, WAL_SIZE_BYTES_MAX } from '../format/constants.js';
import { crc32c } from '../format/crc32c.js';
import { extentsBlockCount, type Extent } from '../format/extent.js';
import { FormatError, FormatVersionError } from '../format/format_error.js';
import { decodeFrameBlock, frameBlockPayload, frameMagic } from '../format/frame.js';
import { pageSizeFor } from '../format/page.js';
import { recordKeyIsString, recordKeyLength, recordKeyStart, recordValueAt, type ExtentValue, type StoredValue } from '../format/records.js';
import { view } from '../format/bytes.js';
import { decodeSuperblock, hasSuperblockMagic, inDataRegion, superblockSlotBlock, type Superblock } from '../format/superblock.js';
import { scanWalBlocks, WalSummary, type ScannedCommit } from '../format/wal_scan.js';
import { allocAligned } from '../native/aligned_buffer.js';
import type { BlockDevice } from './block_device.js';
import { ExtentAllocator } from './extent_allocator.js';
import { latin1Of } from './key_codec.js';
import { StoreCorruptError, StoreError } from './store_error.js';
import type { IndexEntry } from './store_index.js';

/**
 * A WAL commit recovery found and checked, to be replayed: its payload and
 * where its records start. Its records are decoded when needed — those the
 * replay applies or checks (liveWalOperations), one by a point read of the
 * replay overlay (entryAt), all of a commit whose extent data recovery
 * checks (operations()) — so that an open after a crash makes no entry and
 * no view for each record of the tail (a 45 % WAL holds ~240 k records).
 */
export class PendingCommit {
  readonly sequence: number;
  /** Absolute block of its first WAL block (for error messages). */
  readonly walBlock: number;
  readonly #payload: Uint8Array;
  readonly #data: DataView;
  /** Where each record starts, then where the last ends (scanCommitPayload). */
  readonly #starts: readonly number[];

  constructor(sequence: number, walBlock: number, payload: Uint8Array, recordStarts: readonly number[]) {
    this.sequence = sequence;
    this.walBlock = walBlock;
    this.#payload = payload;
    this.#data = view(payload);
    this.#starts = recordStarts;
  }

  get recordCount(): number {
    return this.#starts.length - 1;
  }

  /** The key string of record `index`. */
  keyAt(index: number): string {
    const start = this.#starts[index];
    const keyStart = recordKeyStart(this.#payload, start);
    return latin1Of(this.#payload, keyStart, keyStart + recordKeyLength(this.#payload, start));
  }

  /** Whether record `index` puts an extent value (no decoding). */
  writesExtentsAt(index: number): boolean {
    return this.#payload[this.#starts[index]] === RECORD_PUT_EXTENTS;
  }

  /** The entry record `index` puts, or undefined for a delete. */
  entryAt(index: number): IndexEntry | undefined {
    const start = this.#starts[index];
    const value = recordValueAt(this.#payload, this.#data, start, this.#starts[index + 1]);
    return value === undefined ? undefined : toEntry(recordKeyIsString(this.#payload, start), value);
  }

  /**
   * The extents of the extent values it writes, decoding only those
   * records: what the replay holds out of allocation for the commits still
   * to come at each checkpoint it writes (Space.holdForReplay).
   */
  *valueExtents(): Generator<Extent> {
    for (let index = 0; index < this.recordCount; index++) {
      const start = this.#starts[index];
      if (this.#payload[start] !== RECORD_PUT_EXTENTS) continue;
      const value = recordValueAt(this.#payload, this.#data, start, this.#starts[index + 1]);
      if (value?.kind === 'extents') yield* value.extents;
    }
  }

  /** Every record, decoded (new objects each call): for the commits whose extent data recovery checks. */
  operations(): Operation[] {
    const operations = new Array<Operation>(this.recordCount);
    for (let index = 0; index < operations.length; index++) operations[index] = { key: this.keyAt(index), entry: this.entryAt(index) };
    return operations;
  }
}

export interface RecoveredStore {
  superblock: Superblock;
  /** Superblock slots that held no valid copy of the newest generation's store and must be rewritten before writes. */
  slotsToRepair: number[];
  /** The data region's free space: the checkpoint's free set, replayed. */
  allocator: ExtentAllocator;
  /** Commits to replay from the WAL, kept live until a checkpoint covers them. */
  liveCommits: { sequence: number; startBlock: number; blockCount: number }[];
  /**
   * Their records, in order, for the store to replay (engine/wal_replay.ts)
   * once its parts exist: it may write checkpoints between them, so that
   * the pages a long tail dirties need not all stay in memory.
   */
  pendingCommits: PendingCommit[];
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

interface SlotCandidate {
  slot: number;
  superblock?: Superblock;
  error?: FormatError;
  magic: boolean;
}

/** Bytes read per IO while searching for the backup superblocks of a store whose head is gone. */
const BACKUP_SEARCH_CHUNK_BYTES = 8 << 20;

export async function probeSuperblocks(device: BlockDevice): Promise<SuperblockProbe> {
  const headSize = Math.max(4096, device.ioAlignment);
  const head = allocAligned(Math.min(headSize, device.sizeBytes), Math.max(device.ioAlignment, 4096));
  await device.read(0, head);
  const candidates: SlotCandidate[] = [];
  const slot0 = tryDecode(head.subarray(0, SUPERBLOCK_SIZE), 0);
  candidates.push({ slot: 0, ...slot0, magic: hasSuperblockMagic(head) });
  // Slot 1 sits at one block size from the start; that size is in slot 0,
  // or, if slot 0 is damaged, found by trying every legal block size.
  const sizes = slot0.superblock !== undefined ? [slot0.superblock.blockSize] : legalBlockSizes();
  let slot1: Omit<SlotCandidate, 'slot'> = { magic: false };
  for (const blockSize of sizes) {
    if (blockSize + SUPERBLOCK_SIZE > device.sizeBytes) break;
    const bytes = await readAt(device, blockSize, head, headSize);
    const decoded = placedAt(tryDecode(bytes, 1), 1, blockSize);
    slot1 = { ...decoded, magic: hasSuperblockMagic(bytes) };
    if (decoded.superblock !== undefined || slot0.superblock !== undefined) break;
  }
  candidates.push({ slot: 1, ...slot1 });
  const headValid = candidates.filter((candidate) => candidate.superblock !== undefined);
  const headVersionError = candidates.find((candidate) => candidate.error instanceof FormatVersionError)?.error;
  if (headValid.length === 0 && headVersionError !== undefined) throw versionRefusal(headVersionError as FormatVersionError);
  // The backup pair follows the WAL, whose size a head copy gives; with no
  // head copy left it is searched for (only then: it reads up to the
  // largest WAL).
  const layout = headValid.length > 0 ? newestOf(headValid) : await searchBackupSuperblock(device);
  if (layout !== undefined) {
    for (let slot = 2; slot < SUPERBLOCK_SLOT_COUNT; slot++) {
      const offset = superblockSlotBlock(slot, layout.walStartBlock, layout.walBlockCount) * layout.blockSize;
      if (offset + layout.blockSize > device.sizeBytes) {
        candidates.push({ slot, magic: false, error: new FormatError('superblock', 'lies past the end of the device', offset / layout.blockSize) });
        continue;
      }
      const bytes = await readAt(device, offset, head, headSize);
      candidates.push({ slot, ...placedAt(tryDecode(bytes, offset / layout.blockSize), slot, layout.blockSize, layout), magic: hasSuperblockMagic(bytes) });
    }
  }
  const valid = candidates.filter((candidate) => candidate.superblock !== undefined);
  if (valid.length === 0) {
    const versionError = candidates.find((candidate) => candidate.error instanceof FormatVersionError)?.error;
    if (versionError !== undefined) throw versionRefusal(versionError as FormatVersionError);
    if (!candidates.some((candidate) => candidate.magic)) {
      // Every superblock copy gone (zeroed, lost writes) but WAL blocks of a
      // ringstore right behind them: a damaged store — never "empty", or
      // create: true would format over it. (Read far enough for the largest
      // block size: this path runs only when no superblock was found.)
      const wideSize = Math.min(device.sizeBytes, 2 * BLOCK_SIZE_MAX + 4096);
      const wide = allocAligned(wideSize - (wideSize % Math.max(device.ioAlignment, 512)), Math.max(device.ioAlignment, 4096));
      await device.read(0, wide);
      const walAt = findWalMagic(wide);
      if (walAt !== undefined) {
        throw new StoreCorruptError('superblock', `every copy is missing, but a WAL block of a ringstore follows at byte ${walAt}`, 0);
      }
      // Never format over data: only a head of zeros (a new or empty file)
      // is free to become a store.
      if (isAllZero(head, 0, head.length)) return { kind: 'empty' };
      return { kind: 'foreign' };
    }
    const first = candidates.find((candidate) => candidate.error !== undefined)?.error;
    const backups = layout === undefined ? '; no valid backup copy found after the WAL' : '';
    throw new StoreCorruptError('superblock', `no valid copy: ${candidates.map((c) => `slot ${c.slot}: ${c.error?.reason ?? 'missing'}`).join('; ')}${backups}`, first?.blockIndex);
  }
  const newest = newestOf(valid);
  // A damaged or missing copy is what a torn superblock write leaves (or bit
  // rot, or a wiped head): the newest copy is authoritative and the damaged
  // slots are rewritten.
  const slotsToRepair = candidates.filter((candidate) => candidate.superblock === undefined).map((candidate) => candidate.slot);
  for (const other of valid) {
    const copy = other.superblock!;
    if (copy.storeTag !== newest.storeTag || copy.blockSize !== newest.blockSize || copy.walBlockCount !== newest.walBlockCount) {
      throw new StoreCorruptError('superblock', `copies describe different stores (tags ${newest.storeTag} and ${copy.storeTag})`, superblockSlotBlock(other.slot, newest.walStartBlock, newest.walBlockCount));
    }
  }
  if (newest.blockCount * newest.blockSize > device.sizeBytes) {
    throw new StoreCorruptError('superblock', `store of ${newest.blockCount} blocks does not fit the device (${device.sizeBytes} bytes): the file or device was cut short or shrunk since the store was written`, 0);
  }
  return { kind: 'found', superblock: newest, slotsToRepair };
}

/** An intact superblock of another format: refused, never read further. */
function versionRefusal(error: FormatVersionError): StoreError {
  return new StoreError('ERR_STORE_VERSION', `the store is of ${error.reason}; it is left untouched (dump it with the version that wrote it, and load the dump into a new store)`, { cause: error });
}

function newestOf(candidates: SlotCandidate[]): Superblock {
  return candidates.reduce((best, candidate) => (candidate.superblock!.generation > best.superblock!.generation ? candidate : best)).superblock!;
}

/** A decoded copy is valid only where its own geometry puts that slot (a misdirected copy is not). */
function placedAt(decoded: { superblock?: Superblock; error?: FormatError }, slot: number, blockSize: number, layout?: Superblock): { superblock?: Superblock; error?: FormatError } {
  const copy = decoded.superblock;
  if (copy === undefined) return decoded;
  const expectedBlockSize = layout?.blockSize ?? blockSize;
  const where = superblockSlotBlock(slot, copy.walStartBlock, copy.walBlockCount);
  if (copy.blockSize !== expectedBlockSize || (layout !== undefined && copy.walBlockCount !== layout.walBlockCount)) {
    return { error: new FormatError('superblock', `says block size ${copy.blockSize} and a WAL of ${copy.walBlockCount} blocks, which do not put slot ${slot} here`, where) };
  }
  return decoded;
}

/**
 * Every intact superblock copy on the device that sits where its own
 * geometry puts a backup slot (2 or 3), at any sector boundary within the
 * largest WAL: what a store whose head copies are all gone is found by, and
 * what format() erases.
 */
export async function findBackupSuperblocks(device: BlockDevice): Promise<{ superblock: Superblock; position: number }[]> {
  const alignment = Math.max(device.ioAlignment, BLOCK_SIZE_MIN);
  const limit = Math.min(device.sizeBytes - (device.sizeBytes % alignment), 4 * BLOCK_SIZE_MAX + WAL_SIZE_BYTES_MAX);
  if (limit <= 0) return [];
  const chunk = allocAligned(Math.min(BACKUP_SEARCH_CHUNK_BYTES, limit), Math.max(alignment, 4096));
  const found: { superblock: Superblock; position: number }[] = [];
  for (let position = 0; position < limit; position += chunk.length) {
    const length = Math.min(chunk.length, limit - position);
    const bytes = chunk.subarray(0, length);
    await device.read(position, bytes);
    for (let offset = 0; offset + SUPERBLOCK_SIZE <= length; offset += BLOCK_SIZE_MIN) {
      if (!hasSuperblockMagic(bytes.subarray(offset))) continue;
      const decoded = tryDecode(bytes.subarray(offset, offset + SUPERBLOCK_SIZE), (position + offset) / BLOCK_SIZE_MIN).superblock;
      if (decoded === undefined) continue;
      const block = (position + offset) / decoded.blockSize;
      if ([2, 3].some((slot) => superblockSlotBlock(slot, decoded.walStartBlock, decoded.walBlockCount) === block)) found.push({ superblock: decoded, position: position + offset });
    }
  }
  return found;
}

/**
 * The backup superblock to open a store whose head copies are all gone
 * from: the newest copy found, if every copy found belongs to one store.
 * Copies of different stores (an old store's backups left behind, or a
 * stored value that holds a superblock image at a place its own geometry
 * makes a backup slot) are refused: open cannot tell which store the
 * device holds, and must not guess and rewrite the head.
 */
async function searchBackupSuperblock(device: BlockDevice): Promise<Superblock | undefined> {
  const found = await findBackupSuperblocks(device);
  if (found.length === 0) return undefined;
  const tags = [...new Set(found.map(({ superblock }) => superblock.storeTag))];
  if (tags.length > 1) {
    throw new StoreCorruptError(
      'superblock',
      `no head copy is valid, and backup copies of ${tags.length} different stores were found (tags ${tags.map((tag) => `0x${tag.toString(16)}`).join(', ')} at bytes ${found.map(({ position }) => position).join(', ')}): which store this is cannot be told`,
      0,
    );
  }
  return found.reduce((best, { superblock }) => (superblock.generation > best.generation ? superblock : best), found[0].superblock);
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

/**
 * The SUPERBLOCK_SIZE bytes at `offset`, from `head` or read as the
 * device's aligned units that hold them: a store's block size may be
 * smaller than the device's IO unit (a store of 512-byte blocks copied to a
 * 4096-byte-sector disk), and open() refuses such a store by name once a
 * copy is read, not with an IO error on the way there.
 */
async function readAt(device: BlockDevice, offset: number, head: Uint8Array, headSize: number): Promise<Uint8Array> {
  if (offset + SUPERBLOCK_SIZE <= headSize) return head.subarray(offset, offset + SUPERBLOCK_SIZE);
  const alignment = Math.max(device.ioAlignment, 512);
  const start = offset - (offset % alignment);
  const length = Math.ceil((offset - start + SUPERBLOCK_SIZE) / alignment) * alignment;
  const buffer = allocAligned(length, Math.max(alignment, 4096));
  await device.read(start, buffer);
  return buffer.subarray(offset - start, offset - start + SUPERBLOCK_SIZE);
}

function tryDecode(bytes: Uint8Array, slot: number): { superblock?: Superblock; error?: FormatError } {
  try {
    return { superblock: decodeSuperblock(bytes, slot) };
  } catch (error) {
    if (error instanceof FormatError) return { error };
    throw error;
  }
}

/**
 * Loads the free set and reads and checks the WAL of a store whose
 * superblock was found; the caller replays the commits it returns
 * (pendingCommits, engine/wal_replay.ts) into the tree opened at the
 * superblock's root.
 */
export async function recoverStore(device: BlockDevice, superblock: Superblock, slotsToRepair: number[]): Promise<RecoveredStore> {
  const blockSize = superblock.blockSize;
  try {
    const allocator = await loadFreeSet(device, superblock);
    if (superblock.clean && !(await commitFollowsCleanClose(device, superblock))) {
      // Closed cleanly: no commit after the checkpoint was written, and the
      // open that wrote one would have cleared the flag first. The WAL holds
      // only commits the checkpoint covers: nothing to read.
      return {
        superblock,
        slotsToRepair,
        allocator,
        liveCommits: [],
        pendingCommits: [],
        walHeadBlock: superblock.walReplayBlock,
        nextSequence: superblock.checkpointSeq + 1,
        tornTail: undefined,
        staleBlocks: [],
      };
    }

    const region = await readWal(device, superblock);
    const scan = scanWalBlocks(region, superblock.walReplayBlock, superblock.checkpointSeq + 1);

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
    // The records of the commits not known durable, decoded once (few: the
    // last one or two), so that a value checked stays the same object.
    const unvouched = new Map<number, Operation[]>();
    for (let i = 0; i < commits.length; i++) if (commits[i].sequence > durableSequence) unvouched.set(i, parsed[i].commit.operations());
    for (;;) {
      const live = new Map<string, { value: ExtentValue | undefined; commit: number }>();
      for (let i = 0; i < keep; i++) {
        if (commits[i].sequence <= durableSequence) continue;
        for (const { key, entry } of unvouched.get(i)!) {
          live.set(key, { value: entry !== undefined && !(entry.value instanceof Uint8Array) ? entry.value : undefined, commit: i });
        }
      }
      let firstBad: { commit: number; reason: string } | undefined;
      for (const [key, { value, commit }] of live) {
        if (value === undefined || verified.has(value) || (firstBad !== undefined && commit >= firstBad.commit)) continue;
        checkExtentsInDataRegion(superblock, value, `commit ${commits[commit].sequence}: value of key ${JSON.stringify(key.slice(0, 64))}`, superblock.walStartBlock + commits[commit].startBlock);
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
    const pendingCommits = parsed.slice(0, keep).map(({ commit }) => commit);
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
      allocator,
      liveCommits: kept.map(({ sequence, startBlock, blockCount }) => ({ sequence, startBlock, blockCount })),
      pendingCommits,
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

/**
 * Whether a commit after the checkpoint of a clean superblock is on the
 * device after all: an intact WAL frame of this store with a later sequence
 * where the first commit after the close would have gone (the replay block,
 * or block 0 if it did not fit before the region's end). The clean mark is
 * cleared before that commit is written, so this means the clearing
 * superblock write was lost or damaged: recovery then scans the WAL as if
 * the mark were not there, instead of skipping the commits it holds.
 */
async function commitFollowsCleanClose(device: BlockDevice, superblock: Superblock): Promise<boolean> {
  const blockSize = superblock.blockSize;
  const block = allocAligned(blockSize, Math.max(device.ioAlignment, 4096));
  for (const walBlock of new Set([superblock.walReplayBlock, 0])) {
    const absolute = superblock.walStartBlock + walBlock;
    await device.read(absolute * blockSize, block);
    try {
      const header = decodeFrameBlock('wal', block, absolute);
      if (header.storeTag === superblock.storeTag && header.sequence > superblock.checkpointSeq) return true;
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
    }
  }
  return false;
}

/** Refuses (StoreCorruptError, structure wal) an extent value of a WAL record outside the data region; `what` names the record. */
export function checkExtentsInDataRegion(superblock: Superblock, value: ExtentValue, what: string, walBlock: number): void {
  for (const extent of value.extents) {
    if (!inDataRegion(superblock, extent)) {
      throw new StoreCorruptError('wal', `${what} references blocks ${extent.startBlock}+${extent.blockCount} outside the data region`, walBlock);
    }
  }
}

/** Intact WAL blocks of this store whose sequence will be written again. */
function findStaleBlocks(region: WalSummary, superblock: Superblock, nextSequence: number): number[] {
  const stale: number[] = [];
  for (let block = 0; block < region.blockCount; block++) {
    if (!region.hasMagic(block)) continue;
    const header = region.header(block);
    // A damaged block can never complete a frame: nothing to erase.
    if (header instanceof FormatError) continue;
    if (header.storeTag === superblock.storeTag && header.sequence >= nextSequence) stale.push(block);
  }
  return stale;
}

/**
 * The free space the checkpoint recorded. A store without a checkpoint yet
 * (checkpointSeq 0) has an empty tree: every data block is free.
 */
async function loadFreeSet(device: BlockDevice, superblock: Superblock): Promise<ExtentAllocator> {
  const dataBlockCount = superblock.blockCount - superblock.dataStartBlock;
  // Space is allocated a tree page at a time (ExtentAllocator).
  const pageBlocks = pageSizeFor(superblock.blockSize) / superblock.blockSize;
  if (superblock.freeSetExtents.length === 0) {
    return ExtentAllocator.fromFreeExtents(superblock.dataStartBlock, superblock.blockCount, [{ startBlock: superblock.dataStartBlock, blockCount: dataBlockCount }], pageBlocks);
  }
  const payload = await readFrame(device, superblock, 'free set', superblock.freeSetExtents, superblock.freeSetByteLength);
  const allocator = ExtentAllocator.fromFreeSetPayload(payload.bytes, superblock.dataStartBlock, superblock.blockCount, payload.firstBlock, pageBlocks);
  // The free set's own blocks and the root page are in use in the free set
  // that names them; a free set that says otherwise is damaged.
  for (const extent of superblock.freeSetExtents) {
    if (!allocator.isUsed(extent)) throw new FormatError('free set', `its own blocks ${extent.startBlock}+${extent.blockCount} are marked free`, payload.firstBlock);
  }
  if (superblock.treeRoot !== undefined && !allocator.isUsed({ startBlock: superblock.treeRoot.block, blockCount: pageBlocks })) {
    throw new FormatError('free set', `the root page's blocks ${superblock.treeRoot.block}+${pageBlocks} are marked free`, payload.firstBlock);
  }
  return allocator;
}

/** Reads and checks a frame the superblock names in `extents`; returns its payload. */
async function readFrame(device: BlockDevice, superblock: Superblock, kind: 'free set', extents: Extent[], byteLength: number): Promise<{ bytes: Uint8Array; firstBlock: number }> {
  const blockSize = superblock.blockSize;
  const blockCount = extentsBlockCount(extents);
  const bytes = allocAligned(blockCount * blockSize, Math.max(device.ioAlignment, 4096));
  let offset = 0;
  const reads: Promise<void>[] = [];
  const blockNumbers: number[] = [];
  for (const extent of extents) {
    reads.push(readLarge(device, extent.startBlock * blockSize, bytes.subarray(offset, offset + extent.blockCount * blockSize)));
    for (let i = 0; i < extent.blockCount; i++) blockNumbers.push(extent.startBlock + i);
    offset += extent.blockCount * blockSize;
  }
  await Promise.all(reads);
  const payload = new Uint8Array(byteLength);
  let payloadOffset = 0;
  for (let i = 0; i < blockNumbers.length; i++) {
    const block = bytes.subarray(i * blockSize, (i + 1) * blockSize);
    const header = decodeFrameBlock(kind, block, blockNumbers[i]);
    if (
      header.sequence !== superblock.checkpointSeq ||
      header.storeTag !== superblock.storeTag ||
      header.blockIndex !== i ||
      header.blockCount !== blockNumbers.length
    ) {
      // A frame block that is intact but not this checkpoint's: a lost or
      // misdirected write.
      throw new FormatError(
        kind,
        `holds block ${header.blockIndex}/${header.blockCount} of checkpoint ${header.sequence}, expected ${i}/${blockNumbers.length} of ${superblock.checkpointSeq}`,
        blockNumbers[i],
      );
    }
    const part = frameBlockPayload(block, header);
    if (payloadOffset + part.length > payload.length) throw new FormatError(kind, 'longer than the superblock says', blockNumbers[i]);
    payload.set(part, payloadOffset);
    payloadOffset += part.length;
  }
  if (payloadOffset !== payload.length) {
    throw new FormatError(kind, `${payloadOffset} payload bytes, the superblock says ${payload.length}`, blockNumbers[0]);
  }
  return { bytes: payload, firstBlock: blockNumbers[0] };
}

/** One record of a replayed commit: a put (entry) or a delete (undefined). */
export type Operation = { key: string; entry: IndexEntry | undefined };

/** Checks a scanned commit's payload and its records (scanCommitPayload), decoding none. */
function parseCommit(commit: ScannedCommit, firstBlock: number, blockSize: number): { commit: PendingCommit; durableSequence: number } {
  const summary = scanCommitPayload(commit.payload, firstBlock, blockSize);
  return { commit: new PendingCommit(commit.sequence, firstBlock, commit.payload, summary.recordStarts), durableSequence: summary.durableSequence };
}

function toEntry(isString: boolean, value: StoredValue): IndexEntry {
  // Inline bytes stay views into their commit's payload: never into the WAL
  // as read (its chunk buffers are reused), but into the arena where the
  // scan copied the payloads of the commits of one chunk (WalSummary), which
  // stays alive, all of it, while a page holds one of its values.
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

/** Bytes of each direct read of readWal (two in flight). */
const REGION_READ_CHUNK_BYTES = 4 << 20;

/**
 * The WAL region, read directly in chunks through two aligned buffers into
 * a WalSummary: what a scan from the checkpoint needs, not a copy of the
 * whole region (an aligned buffer of the whole WAL cost ~0.6 s to allocate
 * here, 64 MiB; a plain one ~0.25 s of page faults on its first touch).
 */
async function readWal(device: BlockDevice, superblock: Superblock): Promise<WalSummary> {
  const { blockSize, walBlockCount, walStartBlock } = superblock;
  // The tail's payloads are kept in allocAligned memory for its huge pages
  // (aligned_buffer.cc); no IO uses it, so any alignment would do. Seen as a
  // plain Uint8Array, as a copied payload is: views into it are made per
  // record, and a Buffer's subarray() costs more.
  const allocateArena = (byteLength: number): Uint8Array => {
    const memory = allocAligned(byteLength, 8);
    return new Uint8Array(memory.buffer, memory.byteOffset, memory.byteLength);
  };
  const region = new WalSummary(walBlockCount, blockSize, walStartBlock, superblock.storeTag, superblock.checkpointSeq + 1, allocateArena);
  const lengthBytes = walBlockCount * blockSize;
  const chunkBytes = Math.min(REGION_READ_CHUNK_BYTES - (REGION_READ_CHUNK_BYTES % blockSize), lengthBytes);
  const buffers = [0, 1].map(() => allocAligned(chunkBytes, Math.max(device.ioAlignment, 4096)));
  const readChunk = async (offset: number, buffer: Buffer): Promise<void> => {
    const bytes = buffer.subarray(0, Math.min(chunkBytes, lengthBytes - offset));
    await device.read(walStartBlock * blockSize + offset, bytes);
    region.add(offset / blockSize, bytes);
  };
  for (let offset = 0; offset < lengthBytes; offset += 2 * chunkBytes) {
    const reads = [readChunk(offset, buffers[0])];
    if (offset + chunkBytes < lengthBytes) reads.push(readChunk(offset + chunkBytes, buffers[1]));
    await Promise.all(reads);
  }
  return region;
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
