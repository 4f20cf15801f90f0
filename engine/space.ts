// Space: the free space of the data region and the rules for reusing it.
//
// Extents freed by a commit (values overwritten or deleted) are trimmed only
// after that commit is durable and after every read that started before it
// has finished (read epochs), and return to the allocator only after the trim
// completed — so a trim never zeroes reused blocks and a reader never sees a
// block reused under it. Extents allocated to a write or a checkpoint that no
// durable record names yet are "uncommitted": neither free nor referenced.
//
// Every put keeps back room for the next checkpoint (the checkpoint
// reserve): a page for every node the tree has dirty and every node the
// queued operations may dirty, the free-set frame, and room for deletes.
// The free space itself comes from the checkpoint's free set at open
// (recovery.ts) and is recorded again by every checkpoint
// (checkpointFreeSetPayload).
import { FREE_SET_EXTENTS_MAX } from '../format/constants.js';
import type { Extent } from '../format/extent.js';
import { markFreeInBitmap, newFreeSetPayload } from '../format/free_set.js';
import type { BlockCache } from './block_cache.js';
import type { BlockDevice } from './block_device.js';
import { ExtentAllocator } from './extent_allocator.js';
import { StoreCorruptError, StoreError } from './store_error.js';
import type { StoreState } from './store_state.js';

/** Extents one value may be split into when free space is fragmented. */
export const VALUE_EXTENTS_PER_PUT_MAX = 64;
/** Extents trimmed in one batch. */
const TRIM_BATCH_MAX = 256;
const CHECKPOINT_RESERVE_SLACK_BLOCKS = 8;
/**
 * Paths kept free beyond what queued writes may need, so that a store full
 * of puts still takes deletes: their checkpoint rewrites their paths before
 * it frees anything.
 */
const DELETE_RESERVE_PATHS = 4;

/** What the reserve needs to know of the page tree. */
export interface DirtyPages {
  /** At least the nodes the next checkpoint writes (a running one's blocks are allocated already). */
  readonly dirtyNodeCountSinceFreeze: number;
  /** Levels of the tree (0 when empty). */
  readonly height: number;
}

interface FreedExtent {
  extent: Extent;
  /** Trimmed before it is free again (values); pages are freed without one. */
  trim: boolean;
  /** Reads that began at or before this epoch may still use the extent. */
  epoch: number;
}

export interface SpaceParts {
  device: BlockDevice;
  blockSize: number;
  /** Forgets the blocks of extents as they are freed. */
  cache: BlockCache;
  state: StoreState;
  /** The free space recovery found: the checkpoint's free set, replayed. */
  allocator: ExtentAllocator;
  /** Blocks of a tree page. */
  pageBlocks: number;
  /** Bytes of entries a tree page holds. */
  pageCapacityBytes: number;
  /** Blocks of the free-set frame a checkpoint writes. */
  freeSetFrameBlocks: number;
  tree: DirtyPages;
}

export class Space {
  readonly #device: BlockDevice;
  readonly #blockSize: number;
  readonly #cache: BlockCache;
  readonly #state: StoreState;
  readonly #allocator: ExtentAllocator;
  readonly #pageBlocks: number;
  readonly #pageCapacityBytes: number;
  #freeSetFrameBlocks: number;
  readonly #tree: DirtyPages;
  /** Extents allocated to writes that no durable record names yet. */
  readonly #uncommitted = new Set<Extent>();

  #readEpoch = 0;
  readonly #activeReads = new Map<number, number>();
  #freed: FreedExtent[] = [];
  /** Extents whose trim is in progress: neither referenced nor free yet. */
  #trimming: Extent[] = [];
  #trimLoop: Promise<void> | undefined;
  #trimsIssued = 0;
  #trimErrors = 0;
  /** Extents freed by commits that are written but not yet durable (sync: false). */
  #freesAwaitingDurability: { sequence: number; extents: Extent[] }[] = [];

  /**
   * Running totals of the operations of the writes in the journal's queue,
   * and of those the commit in flight took and has not applied yet (what the
   * reserve counts). Updated when a write is queued, taken by a commit,
   * applied, refused or failed; checked against a recomputation in
   * verifyIntegrity and when the queue empties.
   */
  #queuedOperationCount = 0;
  #committingOperationCount = 0;
  /** The same writes' WAL payload bytes: at least the page bytes their entries take. */
  #queuedPayloadBytes = 0;
  #committingPayloadBytes = 0;

  constructor(parts: SpaceParts) {
    this.#device = parts.device;
    this.#blockSize = parts.blockSize;
    this.#cache = parts.cache;
    this.#state = parts.state;
    this.#allocator = parts.allocator;
    this.#pageBlocks = parts.pageBlocks;
    // Every page takes one allocation unit: then any free unit takes a
    // page, and the reserve, counted in blocks of whole units, is exact.
    if (this.#allocator.unitBlocks !== this.#pageBlocks) throw new Error(`ringstore: an allocator of ${this.#allocator.unitBlocks}-block units for ${this.#pageBlocks}-block pages`);
    this.#pageCapacityBytes = parts.pageCapacityBytes;
    this.#freeSetFrameBlocks = this.#allocator.unitsBlockCount(parts.freeSetFrameBlocks);
    this.#tree = parts.tree;
  }

  /** Blocks no extent references (stats). Not all of them may be allocatable: see allocatableBlockCount. */
  get freeBlockCount(): number {
    return this.#allocator.freeBlockCount;
  }

  /**
   * Blocks of wholly free allocation units (pages): what writes and
   * checkpoints can take, and what every reserve is counted in. Fewer than
   * freeBlockCount when blocks are smaller than a page: a value's last
   * page keeps its unused blocks until the value is freed.
   */
  get allocatableBlockCount(): number {
    return this.#allocator.allocatableBlockCount;
  }

  /** Blocks of the store, superblocks and WAL included (the data region's end). */
  get blockCount(): number {
    return this.#allocator.blockCount;
  }

  /**
   * Blocks a write of `putCount` puts (`payloadBytes` of WAL payload) needs
   * free beyond what is free now, with its checkpoint: what growing the
   * store must add for it (0 if it fits).
   */
  shortfallForPuts(putCount: number, payloadBytes: number, valueBlocks: number): number {
    const needed = this.#checkpointReserveBlocks(Math.max(putCount, 1), payloadBytes) + valueBlocks;
    return Math.max(0, needed - this.#allocator.allocatableBlockCount);
  }

  /**
   * Blocks the next checkpoint needs free beyond what is free now, after a
   * commit that makes `newPages` more pages dirty: what growing the store
   * must add for it (0 if it fits).
   */
  checkpointShortfallBlocks(newPages: number): number {
    const pages = this.#tree.dirtyNodeCountSinceFreeze + newPages;
    const needed = pages * this.#pageBlocks + this.#freeSetFrameBlocks + CHECKPOINT_RESERVE_SLACK_BLOCKS;
    return Math.max(0, needed - this.#allocator.allocatableBlockCount);
  }

  /**
   * The data region now ends at `blockCount` (a superblock naming it is
   * durable): the new blocks are free, and the free-set frame, one bit a
   * block, is larger.
   */
  grow(blockCount: number, freeSetFrameBlocks: number): void {
    this.#allocator.grow(blockCount);
    this.#freeSetFrameBlocks = this.#allocator.unitsBlockCount(freeSetFrameBlocks);
  }

  get trimsIssued(): number {
    return this.#trimsIssued;
  }

  get trimErrors(): number {
    return this.#trimErrors;
  }

  /** Blocks released but not free yet: waiting for their trim, or being trimmed. */
  get trimPendingBlockCount(): number {
    return this.#freed.reduce((sum, freed) => sum + freed.extent.blockCount, 0) + this.#trimming.reduce((sum, extent) => sum + extent.blockCount, 0);
  }

  /** Blocks unlinked by commits written but not yet durable (sync: false): released by the next fdatasync. */
  get awaitingDurabilityBlockCount(): number {
    return this.#freesAwaitingDurability.reduce((sum, free) => sum + blockCountOf(free.extents), 0);
  }

  /**
   * Blocks freed but not free yet that only time holds: being trimmed,
   * released with no read left that may use them (their trims start at
   * once), or awaiting the fdatasync that makes their unlinking durable.
   * Not those that reads still running (iterators, streams) pin: those may
   * never end. A write refused for room waits for these (Journal.reclaim).
   */
  get reclaimableBlockCount(): number {
    const oldestRead = this.#oldestReadEpoch();
    let blocks = this.awaitingDurabilityBlockCount + blockCountOf(this.#trimming);
    for (const freed of this.#freed) if (freed.epoch < oldestRead) blocks += freed.extent.blockCount;
    return blocks;
  }

  /**
   * What of the space is freed but not free yet, for an ERR_STORE_FULL
   * message ('' if nothing): a refusal must not blame the write's size when
   * blocks are held by reads still running.
   */
  notFreeYet(): string {
    const pending = this.trimPendingBlockCount + this.awaitingDurabilityBlockCount;
    if (pending === 0) return '';
    const reclaimable = this.reclaimableBlockCount;
    return `, ${pending} freed and not free yet${pending > reclaimable ? ` (${pending - reclaimable} held by reads still running: iterators, read streams)` : ''}`;
  }

  // ---- Allocation ----

  /**
   * Allocates blocks for a value, keeping back room for the next checkpoint:
   * without it a full store could not checkpoint, so its WAL could not be
   * reclaimed and not even a delete could commit.
   */
  allocate(blockCount: number, extentsMax: number): Extent[] {
    const reserve = this.#checkpointReserveBlocks(1, 0);
    const takenBlocks = this.#allocator.unitsBlockCount(blockCount);
    // The free-set frame must fit in FREE_SET_EXTENTS_MAX runs: count only
    // what the largest runs hold (conservatively: as if this allocation
    // came out of them).
    const reserveKept = this.#allocator.allocatableBlockCount - takenBlocks >= reserve;
    const frameKept = reserveKept && this.#allocator.largestRunsHold(FREE_SET_EXTENTS_MAX, takenBlocks + this.#freeSetFrameBlocks);
    const extents = frameKept ? this.#allocator.allocate(blockCount, extentsMax) : undefined;
    if (extents === undefined) {
      // Which rule refused it: a user who sees free blocks must learn why they cannot be used.
      const why = !reserveKept
        ? `${reserve} kept for the next checkpoint`
        : !frameKept
          ? `free space too fragmented to keep the next checkpoint's ${this.#freeSetFrameBlocks}-block free set in ${FREE_SET_EXTENTS_MAX} pieces`
          : `in at most ${extentsMax} pieces`;
      throw new StoreError('ERR_STORE_FULL', `no room for ${blockCount} blocks (${this.#allocator.allocatableBlockCount} free in ${this.#allocator.allocatableRunCount} pieces, ${why}${this.notFreeYet()})`);
    }
    for (const extent of extents) this.#uncommitted.add(extent);
    return extents;
  }

  /**
   * Refuses a write of `putCount` more puts (`payloadBytes` of WAL payload)
   * when the free space would no longer hold the next checkpoint: a put is
   * refused early and clearly, while deletes (which free space once
   * checkpointed) are always taken.
   */
  checkRoomForPuts(putCount: number, payloadBytes: number): void {
    const reserve = this.#checkpointReserveBlocks(putCount, payloadBytes);
    if (this.#allocator.allocatableBlockCount >= reserve) return;
    throw new StoreError(
      'ERR_STORE_FULL',
      `the store is full: ${this.#allocator.allocatableBlockCount} blocks free, the next checkpoint may need ${reserve}${this.notFreeYet()} (delete keys to make room)`,
    );
  }

  /**
   * Whether the next checkpoint still fits after a commit that makes
   * `newPages` more tree pages dirty: what every commit is checked against
   * before it is written, so that no commit becomes durable whose
   * checkpoint could not be written (a store that cannot checkpoint cannot
   * reclaim its WAL, and would refuse even deletes from then on).
   */
  checkpointFits(newPages: number): boolean {
    const pages = this.#tree.dirtyNodeCountSinceFreeze + newPages;
    return pages * this.#pageBlocks + this.#freeSetFrameBlocks + CHECKPOINT_RESERVE_SLACK_BLOCKS <= this.#allocator.allocatableBlockCount;
  }

  /**
   * How many operations one commit may take while the next checkpoint is
   * sure to fit (each dirtying at most its path and a split a level, like
   * the reserve): group commit takes no more when space is short, so that
   * concurrent deletes on a full store commit in small groups, each with a
   * checkpoint that fits, rather than in one that does not.
   */
  operationsThatFit(): number {
    const pagesPerOperation = 2 * (this.#tree.height + 1) + 1;
    const spareBlocks = this.#allocator.allocatableBlockCount - this.#tree.dirtyNodeCountSinceFreeze * this.#pageBlocks - this.#freeSetFrameBlocks - CHECKPOINT_RESERVE_SLACK_BLOCKS;
    return Math.floor(Math.max(0, spareBlocks) / (pagesPerOperation * this.#pageBlocks));
  }

  /**
   * A checkpoint's blocks, allocated all at once when it freezes the tree:
   * the free-set frame in at most FREE_SET_EXTENTS_MAX runs, then one unit
   * per page. Undefined, allocating nothing, if they do not fit.
   */
  allocateCheckpoint(pageCount: number, frameBlocks: number): { pages: Extent[]; frame: Extent[] } | undefined {
    // The frame first: pages fit any free unit, the frame needs runs long
    // enough to hold it in FREE_SET_EXTENTS_MAX pieces, which pages placed
    // first could break up. Each
    // frame's runs come back once the checkpoint after it is durable, and
    // values take from them only while other runs hold a frame (allocate).
    const frame = this.#allocator.allocate(frameBlocks, FREE_SET_EXTENTS_MAX);
    if (frame === undefined) return undefined;
    const pages: Extent[] = [];
    for (let i = 0; i < pageCount; i++) {
      const extents = this.#allocator.allocate(this.#pageBlocks, 1);
      if (extents === undefined) break;
      pages.push(extents[0]);
    }
    if (pages.length < pageCount) {
      for (const extent of [...frame, ...pages]) this.#allocator.free(extent);
      return undefined;
    }
    return { pages, frame };
  }

  /** Gives back a checkpoint's blocks that no superblock names (it failed). */
  freeCheckpoint(extents: readonly Extent[]): void {
    for (const extent of extents) {
      this.#cache.forget(extent.startBlock, extent.blockCount);
      this.#allocator.free(extent);
    }
  }

  /**
   * The free-set payload of a checkpoint freezing now, of a data region of
   * `dataBlockCount` blocks: free are the blocks the allocator holds free,
   * every block no applied commit references — writes not yet committed,
   * extents waiting for their trim or for a sync: false commit's flush —
   * and `releasedWithIt`, what the checkpoint releases once durable. Built
   * from the allocator's bitmap, O(bitmap bytes + those extents); the sets
   * must be disjoint (an overlap throws RangeError: a block freed twice).
   * Must be called in the same synchronous step as the tree's
   * beginCheckpoint() and the checkpoint's allocation.
   */
  checkpointFreeSetPayload(dataBlockCount: number, releasedWithIt: readonly Extent[]): Uint8Array {
    const { payload, bitmap } = newFreeSetPayload(dataBlockCount);
    this.#allocator.copyInUseBits(bitmap, dataBlockCount);
    const dataStartBlock = this.#allocator.dataStartBlock;
    const markFree = (extent: Extent): void => markFreeInBitmap(bitmap, dataStartBlock, dataBlockCount, extent);
    this.#uncommitted.forEach(markFree);
    for (const freed of this.#freed) markFree(freed.extent);
    this.#trimming.forEach(markFree);
    for (const free of this.#freesAwaitingDurability) free.extents.forEach(markFree);
    releasedWithIt.forEach(markFree);
    return payload;
  }

  /** Runs of allocatable blocks (whole free units), for messages. */
  get allocatableRunCount(): number {
    return this.#allocator.allocatableRunCount;
  }

  /**
   * Keeps the free blocks of `extents` from allocation, while they still
   * count as free in a checkpoint's free set (as the blocks of a write in
   * progress do): the values of WAL commits recovery has yet to replay,
   * while it writes a checkpoint of those it has. Returns what it held,
   * for releaseReplayHold().
   */
  holdForReplay(extents: Iterable<Extent>): Extent[] {
    const held: Extent[] = [];
    for (const extent of extents) {
      for (const part of this.#allocator.takeFreeParts(extent)) {
        this.#uncommitted.add(part);
        held.push(part);
      }
    }
    return held;
  }

  /** Gives back what holdForReplay() held: free again, for the replay to take. */
  releaseReplayHold(held: readonly Extent[]): void {
    for (const extent of held) {
      this.#uncommitted.delete(extent);
      this.#allocator.free(extent);
    }
  }

  /** A durable record (a commit applied, a superblock written) now references these allocated extents. */
  committed(extents: readonly Extent[]): void {
    for (const extent of extents) this.#uncommitted.delete(extent);
  }

  /**
   * Returns extents to the allocator. Their cached blocks are forgotten now,
   * not when they were released: a read that started before the release may
   * have put them back in the cache since.
   */
  free(extents: readonly Extent[]): void {
    for (const extent of extents) {
      this.#uncommitted.delete(extent);
      this.#cache.forget(extent.startBlock, extent.blockCount);
      this.#allocator.free(extent);
    }
  }

  // ---- The checkpoint reserve ----

  /**
   * Blocks the next checkpoint may need: a page for every dirty node and
   * for every node the queued and committing operations (plus
   * `extraOperations` of `extraPayloadBytes`) may dirty, the free-set frame, and room kept for
   * deletes. O(1): it runs for every put (a walk over the queue here once
   * made N concurrent puts cost O(N²)).
   */
  #checkpointReserveBlocks(extraOperations: number, extraPayloadBytes: number): number {
    const operations = this.#queuedOperationCount + this.#committingOperationCount + extraOperations;
    const height = this.#tree.height;
    const dirtyNow = this.#tree.dirtyNodeCountSinceFreeze;
    // Each operation dirties at most its path and splits it once...
    const byPath = operations * (2 * (height + 1) + 1);
    // ...but no page of the tree is dirtied twice: besides the dirty ones,
    // the tree has at most as many pages as the data region has used
    // blocks (its clean pages are on disk), plus what splits add —
    // pieces at least a quarter full, so at most 4 pages per page of new
    // entries, with a split a level and a new root.
    const usedBlocks = this.#allocator.blockCount - this.#allocator.dataStartBlock - this.#allocator.freeBlockCount;
    const payloadBytes = this.#queuedPayloadBytes + this.#committingPayloadBytes + extraPayloadBytes;
    const byTree = Math.ceil(usedBlocks / this.#pageBlocks) + Math.ceil((4 * payloadBytes) / this.#pageCapacityBytes) + 2 * (height + 1);
    const pages = dirtyNow + Math.min(byPath, byTree) + DELETE_RESERVE_PATHS * (height + 2);
    return pages * this.#pageBlocks + this.#freeSetFrameBlocks + CHECKPOINT_RESERVE_SLACK_BLOCKS;
  }

  /** The running total of the journal's queue: the operations of its queued writes. */
  get queuedOperationCount(): number {
    return this.#queuedOperationCount;
  }

  /** A write of `operationCount` operations and `payloadBytes` of WAL payload joined the journal's queue. */
  writeQueued(operationCount: number, payloadBytes: number): void {
    this.#queuedOperationCount += operationCount;
    this.#queuedPayloadBytes += payloadBytes;
  }

  /**
   * A commit took writes of `operationCount` operations and `payloadBytes`
   * from the queue; they count as committing (several commits may be in
   * flight) until commitSettled() gives the same figures back.
   */
  writesTaken(operationCount: number, payloadBytes: number): void {
    this.#queuedOperationCount -= operationCount;
    this.#committingOperationCount += operationCount;
    this.#queuedPayloadBytes -= payloadBytes;
    this.#committingPayloadBytes += payloadBytes;
  }

  /** A commit taken with writesTaken() was applied (its pages are counted as dirty now), refused or failed. */
  commitSettled(operationCount: number, payloadBytes: number): void {
    this.#committingOperationCount -= operationCount;
    this.#committingPayloadBytes -= payloadBytes;
    if (this.#committingOperationCount < 0 || this.#committingPayloadBytes < 0) {
      throw new Error(`ringstore: committing totals went negative (${this.#committingOperationCount} operations, ${this.#committingPayloadBytes} bytes)`);
    }
  }

  /** The store failed: every queued write was rejected. */
  queueDropped(): void {
    this.#queuedOperationCount = 0;
    this.#queuedPayloadBytes = 0;
  }

  /** Asserts the reserve's running totals against a recomputation, for verifyIntegrity. */
  checkReserveAccounting(queued: { operations: number; payloadBytes: number }, committing: { operations: number; payloadBytes: number }): void {
    const recomputed = { queued, committing };
    const running = {
      queued: { operations: this.#queuedOperationCount, payloadBytes: this.#queuedPayloadBytes },
      committing: { operations: this.#committingOperationCount, payloadBytes: this.#committingPayloadBytes },
    };
    if (JSON.stringify(recomputed) !== JSON.stringify(running)) {
      throw new Error(`ringstore: checkpoint reserve accounting ${JSON.stringify(running)} disagrees with a recomputation ${JSON.stringify(recomputed)}`);
    }
  }

  /**
   * One synchronous snapshot of the bookkeeping, for checkReferences: the
   * free runs, and the extents that are neither free nor referenced by a
   * value or page (waiting for their trim, or allocated to a write not yet
   * committed).
   */
  bookkeeping(): SpaceBookkeeping {
    return {
      dataStartBlock: this.#allocator.dataStartBlock,
      blockCount: this.#allocator.blockCount,
      freeExtents: this.#allocator.freeExtents(),
      freeBlockCount: this.#allocator.freeBlockCount,
      trimPending: [...this.#freed.map((freed) => freed.extent), ...this.#trimming, ...this.#freesAwaitingDurability.flatMap((free) => free.extents)],
      uncommitted: [...this.#uncommitted],
    };
  }

  // ---- Read epochs ----

  /** Pins every extent referenced now until endRead(epoch): none is trimmed or reused meanwhile. */
  beginRead(): number {
    const epoch = this.#readEpoch;
    this.#activeReads.set(epoch, (this.#activeReads.get(epoch) ?? 0) + 1);
    return epoch;
  }

  endRead(epoch: number): void {
    const count = this.#activeReads.get(epoch)! - 1;
    if (count === 0) this.#activeReads.delete(epoch);
    else this.#activeReads.set(epoch, count);
    if (this.#freed.length > 0) this.#startTrims();
  }

  // ---- Freeing space ----

  /**
   * Extents no durable record references any more: trim, then free.
   * `appliedSequence` is the newest commit applied, for the trace. With
   * `trim` false (the pages a checkpoint replaced) they are freed without a
   * trim once the reads that may use them have ended: a page is one block
   * the next checkpoints reuse, and a punch hole per page cost ~0.5 ms here
   * (5 423 of them made a close of a 200 k-key store take 2.5 s).
   */
  release(extents: readonly Extent[], appliedSequence: number, trim = true): void {
    // A trace notes the moment extents stop being referenced (no IO follows
    // this mark; their trims carry their own).
    this.#device.mark?.('free', appliedSequence);
    // Reads that started before now may still be reading these blocks.
    const epoch = this.#readEpoch++;
    for (const extent of extents) this.#freed.push({ extent, epoch, trim });
    this.#startTrims();
  }

  /** Extents commit `sequence` (written, not yet durable: sync: false) unlinked: released once it is durable. */
  releaseWhenDurable(sequence: number, extents: Extent[]): void {
    this.#freesAwaitingDurability.push({ sequence, extents });
  }

  /** Every commit up to `sequence` is durable: releases what they unlinked. */
  durableThrough(sequence: number, appliedSequence: number): void {
    const ready = this.#freesAwaitingDurability.filter((free) => free.sequence <= sequence);
    this.#freesAwaitingDurability = this.#freesAwaitingDurability.filter((free) => free.sequence > sequence);
    for (const free of ready) this.release(free.extents, appliedSequence);
  }

  /** Settles when the trims in progress have (never rejects); undefined if none are. */
  trimsSettled(): Promise<void> | undefined {
    return this.#trimLoop?.catch(() => undefined);
  }

  #startTrims(): void {
    // After a failure, or once the store is closed, nothing more is sent to
    // the device (the last checkpoint holds these blocks as free; a trim
    // sent after close() — a read ending late — could zero blocks a later
    // writer of the device had reused; found by a review). A reopen frees
    // whatever was waiting.
    if (this.#state.failure !== undefined || this.#state.closed) return;
    if (this.#trimLoop !== undefined) {
      // The running loop looks again before it ends — unless it has looked
      // for the last time already and is only letting go of its place: then
      // it starts a new one (else these extents would wait for the next
      // release or read, for good if none comes).
      this.#trimAgain = true;
      return;
    }
    // Errors other than a trim's (handled in #runTrims) are bugs: not caught.
    this.#trimLoop = this.#runTrims().finally(() => {
      this.#trimLoop = undefined;
      if (this.#trimAgain) this.#startTrims();
    });
  }

  /** The epoch of the oldest read still running (Infinity if none): extents freed before it are no read's. */
  #oldestReadEpoch(): number {
    return this.#activeReads.size > 0 ? Math.min(...this.#activeReads.keys()) : Infinity;
  }

  /** Extents were released or a read ended while the trim loop ran: it must look again. */
  #trimAgain = false;

  async #runTrims(): Promise<void> {
    for (;;) {
      this.#trimAgain = false;
      if (this.#state.closed) return;
      const oldestRead = this.#oldestReadEpoch();
      const ready: Extent[] = [];
      const toTrim: Extent[] = [];
      const waiting: FreedExtent[] = [];
      for (const freed of this.#freed) {
        if (freed.epoch < oldestRead && toTrim.length < TRIM_BATCH_MAX) {
          ready.push(freed.extent);
          if (freed.trim) toTrim.push(freed.extent);
        } else {
          waiting.push(freed);
        }
      }
      if (ready.length === 0) return;
      this.#freed = waiting;
      this.#trimming = ready;
      if (toTrim.length > 0) {
        toTrim.sort((a, b) => a.startBlock - b.startBlock);
        const merged = mergeExtents(toTrim);
        this.#device.mark?.('trim');
        const outcomes = await Promise.allSettled(
          merged.map((extent) => this.#device.trim(extent.startBlock * this.#blockSize, extent.blockCount * this.#blockSize)),
        );
        this.#trimsIssued += merged.length;
        // A trim is advisory: if the device refuses it (EOPNOTSUPP without
        // discard support, or an IO error), the blocks keep old data that no
        // record references — still safe to reuse.
        this.#trimErrors += outcomes.filter((outcome) => outcome.status === 'rejected').length;
      }
      this.free(ready);
      this.#trimming = [];
    }
  }
}

/** The bookkeeping of a moment, as Space.bookkeeping() took it. */
export interface SpaceBookkeeping {
  dataStartBlock: number;
  blockCount: number;
  freeExtents: Extent[];
  freeBlockCount: number;
  trimPending: Extent[];
  uncommitted: Extent[];
}

/**
 * Checks the free space of `bookkeeping` against `references` (every extent
 * a page, a value or the free set references, and the pages the next
 * checkpoint frees, taken at the same moment): every block of the data
 * region is exactly one of free, referenced, uncommitted (allocated to a
 * write in progress) or waiting for its trim. Throws StoreCorruptError
 * naming what is wrong where a block is referenced twice or referenced and
 * free (a write would be given it, over what it holds); returns the blocks
 * waiting for their trim and the blocks leaked (neither free nor
 * referenced: lost space, which endangers nothing).
 */
export function checkReferences(bookkeeping: SpaceBookkeeping, references: readonly { extent: Extent; owner: string }[]): { trimPendingBlocks: number; leakedBlocks: number } {
  const held = [
    ...bookkeeping.trimPending.map((extent) => ({ extent, owner: 'a trim in progress' })),
    ...bookkeeping.uncommitted.map((extent) => ({ extent, owner: 'a write in progress' })),
  ];
  // The allocator's constructor refuses overlaps and out-of-range extents.
  const rebuilt = new ExtentAllocator(bookkeeping.dataStartBlock, bookkeeping.blockCount, [...references, ...held]);
  const free = ExtentAllocator.fromFreeExtents(bookkeeping.dataStartBlock, bookkeeping.blockCount, bookkeeping.freeExtents);
  // Each extent in use apart, the held ones too: a count alone let a block
  // both free and held hide a leak of as many blocks (found by a review).
  for (const [inUse, verb] of [[references, 'referenced by'], [held, 'held by']] as const) {
    for (const { extent, owner } of inUse) {
      if (!free.isUsed(extent)) throw new StoreCorruptError('data', `blocks ${extent.startBlock}+${extent.blockCount} are ${verb} ${owner} and also free`, extent.startBlock);
    }
  }
  // No free block is in use (above), so the free ones are unreferenced: any
  // more unreferenced than free are leaked.
  assertNoFreeBlockInUse(rebuilt.freeBlockCount, bookkeeping.freeBlockCount);
  return {
    trimPendingBlocks: bookkeeping.trimPending.reduce((total, extent) => total + extent.blockCount, 0),
    leakedBlocks: rebuilt.freeBlockCount - bookkeeping.freeBlockCount,
  };
}

/** The count check that follows from checkReferences' per-extent checks: a bug if it fails. */
function assertNoFreeBlockInUse(unreferencedBlockCount: number, freeBlockCount: number): void {
  if (unreferencedBlockCount < freeBlockCount) throw new Error(`ringstore: ${freeBlockCount} blocks free but ${unreferencedBlockCount} unreferenced, though none free is in use`);
}

function mergeExtents(sorted: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const extent of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.startBlock + last.blockCount === extent.startBlock) last.blockCount += extent.blockCount;
    else out.push({ ...extent });
  }
  return out;
}

/** Blocks of `extents`, summed. */
function blockCountOf(extents: readonly Extent[]): number {
  let blocks = 0;
  for (const extent of extents) blocks += extent.blockCount;
  return blocks;
}
