// Space: the free space of the data region and the rules for reusing it.
//
// Extents freed by a commit (values overwritten or deleted) are trimmed only
// after that commit is durable and after every read that started before it
// has finished (read epochs), and return to the allocator only after the trim
// completed — so a trim never zeroes reused blocks and a reader never sees a
// block reused under it. Extents allocated to a write or a checkpoint that no
// durable record names yet are "uncommitted": neither free nor referenced.
//
// Every allocation for a value keeps back room for the next checkpoint (the
// checkpoint reserve), sized from running totals of the records the index
// holds and of those queued or in the commit in flight.
import { CHECKPOINT_EXTENTS_MAX } from '../format/constants.js';
import type { Extent } from '../format/extent.js';
import { frameBlockCount } from '../format/frame.js';
import type { ExtentValue } from '../format/records.js';
import type { BlockCache } from './block_cache.js';
import type { BlockDevice } from './block_device.js';
import { ExtentAllocator } from './extent_allocator.js';
import type { KeyIndex } from './key_index.js';
import { StoreCorruptError, StoreError } from './store_error.js';
import { isExtentValue } from './store_index.js';
import type { StoreState } from './store_state.js';

/** Extents one value may be split into when free space is fragmented. */
export const VALUE_EXTENTS_PER_PUT_MAX = 64;
/** Extents trimmed in one batch. */
const TRIM_BATCH_MAX = 256;
/** Room kept for the next checkpoint, relative to the index's current record bytes. */
const CHECKPOINT_RESERVE_MARGIN = 1.25;
const CHECKPOINT_RESERVE_SLACK_BLOCKS = 8;
const CHECKPOINT_HEADER_BYTES = 16;

interface FreedExtent {
  extent: Extent;
  /** Reads that began at or before this epoch may still use the extent. */
  epoch: number;
}

export interface SpaceParts {
  device: BlockDevice;
  blockSize: number;
  /** Forgets the blocks of extents as they are freed. */
  cache: BlockCache;
  state: StoreState;
  dataStartBlock: number;
  blockCount: number;
  /** The durable checkpoint's extents: in use, like every extent value of `index`. */
  checkpointExtents: readonly Extent[];
  index: KeyIndex;
}

export class Space {
  readonly #device: BlockDevice;
  readonly #blockSize: number;
  readonly #cache: BlockCache;
  readonly #state: StoreState;
  readonly #allocator: ExtentAllocator;
  /** Extents allocated to writes or a checkpoint that no durable record names yet. */
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

  /** Bytes the index's entries take as checkpoint records; kept current as commits apply. */
  #indexRecordBytes = 0;
  /**
   * Running totals of the WAL payload bytes (PendingWrite.payloadBytes, an
   * upper bound of their checkpoint records) of the writes in the journal's
   * queue, and of those the commit in flight took and has not applied yet.
   * Updated when a write is queued, taken by a commit, applied, refused or
   * failed; checked against a recomputation in verifyIntegrity and when the
   * queue empties.
   */
  #queuedPayloadBytes = 0;
  #committingPayloadBytes = 0;

  /** Rebuilds the free space from what the checkpoint and the index reference. */
  constructor(parts: SpaceParts) {
    this.#device = parts.device;
    this.#blockSize = parts.blockSize;
    this.#cache = parts.cache;
    this.#state = parts.state;
    const used: { extent: Extent; owner: string }[] = parts.checkpointExtents.map((extent) => ({ extent, owner: 'the checkpoint' }));
    parts.index.forEach((key, entry) => {
      if (isExtentValue(entry.value)) for (const extent of entry.value.extents) used.push({ extent, owner: `key ${JSON.stringify(key.slice(0, 64))}` });
      this.#indexRecordBytes += recordBytes(key, entry.value);
    });
    this.#allocator = new ExtentAllocator(parts.dataStartBlock, parts.blockCount, used);
  }

  get freeBlockCount(): number {
    return this.#allocator.freeBlockCount;
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

  // ---- Allocation ----

  /**
   * Allocates blocks for a value, keeping back room for the next checkpoint:
   * without it a full store could not checkpoint, so its WAL could not be
   * reclaimed and not even a delete could commit.
   */
  allocate(blockCount: number, extentsMax: number): Extent[] {
    const reserve = this.#checkpointReserveBlocks();
    // The checkpoint must fit in CHECKPOINT_EXTENTS_MAX runs, so count only
    // what the largest runs hold (conservatively: as if this allocation came
    // out of them).
    const room = this.#allocator.largestRunsBlockCount(CHECKPOINT_EXTENTS_MAX);
    const extents =
      this.#allocator.freeBlockCount - blockCount >= reserve && room - blockCount >= reserve
        ? this.#allocator.allocate(blockCount, extentsMax)
        : undefined;
    if (extents !== undefined) for (const extent of extents) this.#uncommitted.add(extent);
    if (extents === undefined) {
      throw new StoreError(
        'ERR_STORE_FULL',
        `no room for ${blockCount} blocks (${this.#allocator.freeBlockCount} free in ${this.#allocator.freeExtentCount} pieces, ${reserve} kept for the next checkpoint${this.#freed.length > 0 ? `, ${this.#freed.length} extents waiting for trim` : ''})`,
      );
    }
    return extents;
  }

  /** Allocates a checkpoint's blocks: from the reserve, in at most CHECKPOINT_EXTENTS_MAX extents. */
  allocateCheckpoint(blockCount: number): Extent[] {
    const extents = this.#allocator.allocate(blockCount, CHECKPOINT_EXTENTS_MAX);
    if (extents === undefined) {
      throw new StoreError('ERR_STORE_FULL', `no room for a checkpoint of ${blockCount} blocks in at most ${CHECKPOINT_EXTENTS_MAX} pieces (${this.#allocator.freeBlockCount} blocks free in ${this.#allocator.freeExtentCount} pieces)`);
    }
    for (const extent of extents) this.#uncommitted.add(extent);
    return extents;
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
   * Blocks the next checkpoint may need: the index's records and those of
   * writes queued or in the commit in flight, with a margin. O(1): it runs
   * for every extent put, and a walk over the queue here made N concurrent
   * puts cost O(N²) (100 000 concurrent 3 KiB puts took 182 s).
   */
  #checkpointReserveBlocks(): number {
    const bytes = (this.#indexRecordBytes + this.#queuedPayloadBytes + this.#committingPayloadBytes) * CHECKPOINT_RESERVE_MARGIN + CHECKPOINT_HEADER_BYTES;
    return frameBlockCount(bytes, this.#blockSize) + CHECKPOINT_RESERVE_SLACK_BLOCKS;
  }

  /** The running total of the journal's queue: what its queued writes' payloads add up to. */
  get queuedPayloadBytes(): number {
    return this.#queuedPayloadBytes;
  }

  /** A write of `payloadBytes` joined the journal's queue. */
  writeQueued(payloadBytes: number): void {
    this.#queuedPayloadBytes += payloadBytes;
  }

  /** A commit took writes of `payloadBytes` from the queue. */
  writesTaken(payloadBytes: number): void {
    this.#queuedPayloadBytes -= payloadBytes;
    this.#committingPayloadBytes = payloadBytes;
  }

  /** The commit in flight was applied (its records are counted by recordReplaced now), refused or failed. */
  commitSettled(): void {
    this.#committingPayloadBytes = 0;
  }

  /** The store failed: every queued write was rejected. */
  queueDropped(): void {
    this.#queuedPayloadBytes = 0;
  }

  /** A commit replaced the index's entry of `keyString` (undefined: none before, or deleted). */
  recordReplaced(keyString: string, previous: Uint8Array | ExtentValue | undefined, next: Uint8Array | ExtentValue | undefined): void {
    if (previous !== undefined) this.#indexRecordBytes -= recordBytes(keyString, previous);
    if (next !== undefined) this.#indexRecordBytes += recordBytes(keyString, next);
  }

  /** Asserts the reserve's running totals against a recomputation: O(keys), for verifyIntegrity. */
  checkReserveAccounting(index: KeyIndex, queuedPayloadBytes: number, committingPayloadBytes: number): void {
    let indexRecordBytes = 0;
    index.forEach((keyString, entry) => {
      indexRecordBytes += recordBytes(keyString, entry.value);
    });
    const recomputed = { index: indexRecordBytes, queued: queuedPayloadBytes, committing: committingPayloadBytes };
    const running = { index: this.#indexRecordBytes, queued: this.#queuedPayloadBytes, committing: this.#committingPayloadBytes };
    if (recomputed.index !== running.index || recomputed.queued !== running.queued || recomputed.committing !== running.committing) {
      throw new Error(`ringstore: checkpoint reserve accounting ${JSON.stringify(running)} disagrees with a recomputation ${JSON.stringify(recomputed)}`);
    }
  }

  /**
   * Checks the free set against `references` (every extent a value or the
   * checkpoint references), from one synchronous snapshot of the bookkeeping:
   * every block of the data region is exactly one of free, referenced,
   * uncommitted (allocated to a write or a checkpoint in progress) or waiting
   * for its trim. Throws StoreCorruptError naming what is wrong; returns the
   * blocks waiting for their trim.
   */
  checkReferences(references: readonly { extent: Extent; owner: string }[]): number {
    const pending = [
      ...this.#freed.map((freed) => freed.extent),
      ...this.#trimming,
      ...this.#freesAwaitingDurability.flatMap((free) => free.extents),
    ];
    // The allocator's constructor refuses overlaps and out-of-range extents.
    const rebuilt = new ExtentAllocator(this.#allocator.dataStartBlock, this.#allocator.blockCount, [
      ...references,
      ...pending.map((extent) => ({ extent, owner: 'a trim in progress' })),
      ...[...this.#uncommitted].map((extent) => ({ extent, owner: 'a write in progress' })),
    ]);
    for (const { extent, owner } of references) {
      if (!this.#allocator.isFree({ startBlock: extent.startBlock, blockCount: 1 })) continue;
      throw new StoreCorruptError('data', `block ${extent.startBlock} is referenced by ${owner} and also free`, extent.startBlock);
    }
    if (rebuilt.freeBlockCount !== this.#allocator.freeBlockCount) {
      throw new StoreCorruptError(
        'data',
        `${this.#allocator.freeBlockCount} blocks are free but ${rebuilt.freeBlockCount} are unreferenced: ${rebuilt.freeBlockCount - this.#allocator.freeBlockCount} blocks leaked`,
      );
    }
    return pending.reduce((total, extent) => total + extent.blockCount, 0);
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
   * `appliedSequence` is the newest commit applied, for the trace.
   */
  release(extents: readonly Extent[], appliedSequence: number): void {
    // A trace notes the moment extents stop being referenced (no IO follows
    // this mark; their trims carry their own).
    this.#device.mark?.('free', appliedSequence);
    // Reads that started before now may still be reading these blocks.
    const epoch = this.#readEpoch++;
    for (const extent of extents) this.#freed.push({ extent, epoch });
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
    // After a failure nothing more is sent to the device; a reopen frees
    // whatever was waiting.
    if (this.#trimLoop !== undefined || this.#state.failure !== undefined) return;
    // Errors other than a trim's (handled in #runTrims) are bugs: not caught.
    this.#trimLoop = this.#runTrims().finally(() => {
      this.#trimLoop = undefined;
    });
  }

  async #runTrims(): Promise<void> {
    for (;;) {
      const oldestRead = this.#activeReads.size > 0 ? Math.min(...this.#activeReads.keys()) : Infinity;
      const ready: Extent[] = [];
      const waiting: FreedExtent[] = [];
      for (const freed of this.#freed) {
        if (freed.epoch < oldestRead && ready.length < TRIM_BATCH_MAX) ready.push(freed.extent);
        else waiting.push(freed);
      }
      if (ready.length === 0) return;
      this.#freed = waiting;
      this.#trimming = ready;
      ready.sort((a, b) => a.startBlock - b.startBlock);
      const merged = mergeExtents(ready);
      this.#device.mark?.('trim');
      const outcomes = await Promise.allSettled(
        merged.map((extent) => this.#device.trim(extent.startBlock * this.#blockSize, extent.blockCount * this.#blockSize)),
      );
      this.#trimsIssued += merged.length;
      // A trim is advisory: if the device refuses it (EOPNOTSUPP without
      // discard support, or an IO error), the blocks keep old data that no
      // record references — still safe to reuse.
      this.#trimErrors += outcomes.filter((outcome) => outcome.status === 'rejected').length;
      this.free(ready);
      this.#trimming = [];
    }
  }
}

/** Bytes of the checkpoint record of one entry (format/records.ts). */
function recordBytes(keyString: string, value: Uint8Array | ExtentValue): number {
  return value instanceof Uint8Array ? 8 + keyString.length + value.length : 20 + keyString.length + value.extents.length * 12;
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
