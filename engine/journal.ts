// Journal: the write queue and group commit. Every put/delete/batch becomes
// records in the next WAL commit: when a commit starts it takes every record
// waiting (up to a quarter of the WAL); while it is in flight new records
// wait for the next one. A commit writes the data blocks of its extent values
// first, then its WAL blocks linked to an fdatasync, through the io_uring
// actor. Only then is it applied to the page tree and acknowledged, so
// readers only ever see durable data.
//
// With sync: false a commit is acknowledged once written; the fdatasync
// follows within SYNC_DEFER_MS, and flush() ends with a durable empty commit
// (a durable marker) that records it.
//
// A write flows one way: the façade queues it here; the journal places it in
// the WAL (WalSpace), applies it to the tree, hands its blocks to the grid
// and its unlinked extents to the space, and starts checkpoints.
import { ByteWriter } from '../format/byte_writer.js';
import { beginCommitPayload, finishCommitPayload } from '../format/commit.js';
import type { Extent } from '../format/extent.js';
import { encodeFrame, frameBlockCount } from '../format/frame.js';
import { writeDelete, writePut, type StoredValue } from '../format/records.js';
import { allocAligned } from '../native/aligned_buffer.js';
import type { BlockDevice } from './block_device.js';
import type { Checkpointer } from './checkpointer.js';
import type { DataBlock, Grid } from './grid.js';
import { keyStringToBytes } from './key_codec.js';
import type { PageTree, PreparedPaths } from './page_tree.js';
import type { Space } from './space.js';
import { StoreError } from './store_error.js';
import { GROWTH_ATTEMPTS_MAX, type StoreGrowth } from './store_growth.js';
import { isExtentValue, type IndexEntry } from './store_index.js';
import type { StoreState } from './store_state.js';
import { WalSpace } from './wal_space.js';

/** The longest a commit's fdatasync waits with sync: false. */
export const SYNC_DEFER_MS = 100;
/** A checkpoint starts when the WAL is this full. */
export const CHECKPOINT_WAL_FILL = 0.5;
/**
 * A checkpoint starts when the tree's dirty pages would take this share of
 * the free space: the checkpoint that writes them must always fit.
 */
const CHECKPOINT_FREE_SPACE_SHARE = 0.5;
/**
 * Commits wait for the checkpoint being written once they have dirtied this
 * many budgets' worth of pages (the budget: dirtyPagesMax) since it began:
 * dirty pages then stay within about this plus one budgets (a checkpoint
 * starts at one), and the next checkpoint does not grow with how long this
 * one took. A random-order load of 1 M keys in durable batches of 1 000
 * (64 MiB cache: a budget of 4 096 pages; /tmp/stall.mjs, not kept) measured:
 *
 *   factor      keys/s   largest dirty   longest batch
 *   none        35 105   80 543 pages    8 551 ms (behind a 54 k-page checkpoint)
 *   4           14 522   34 396          1 536
 *   1            9 618   11 018            750
 *
 * Bigger checkpoints combine more writes to a leaf (write amplification of
 * random keys falls with the budget), so this trades load speed for bounded
 * memory and latency; a faster checkpoint (CPU per page) moves the whole
 * curve.
 */
const BACKPRESSURE_DIRTY_FACTOR = 4;
/**
 * Recovery replaying the WAL lets dirty pages grow to this many times their
 * budget (so to about 4 × cacheSizeBytes) before it writes a checkpoint.
 * Replay is a burst over the whole tail, and a checkpoint in it turns the
 * pages it wrote into clean ones the page cache evicts, to be read and
 * decoded again by later commits of the tail: measured with a 16 MiB cache
 * on a 300 k-key store and a 19 % WAL tail of random keys, opening took
 * 1.9 s holding 14.6 k dirty pages with no checkpoint, 8.0 s with this
 * factor (8 checkpoints), 12 s with the normal budget (99). Without any
 * bound a full 64 MiB WAL of random keys could dirty ~450 k pages (GiBs).
 */
const REPLAY_DIRTY_BUDGET_FACTOR = 8;
/** One commit takes at most this share of the WAL, so a checkpoint always makes room for it. */
const COMMIT_WAL_SHARE_MAX = 0.25;

export interface PendingOperation {
  keyString: string;
  isString: boolean;
  /** The value to store, or undefined for a delete. */
  value: StoredValue | undefined;
  /** Set when the commit is applied: whether the key had a value before this operation. */
  existed: boolean;
}

export interface PendingWrite {
  operations: PendingOperation[];
  /** An empty commit that records durability after a sync: false flush; written with RWF_DSYNC. */
  durableMarker?: boolean;
  /** Data writes of extent values that must complete before the commit's WAL write. */
  dataWrites: Promise<void>[];
  /** Pool buffers holding extent data, handed to the cache once durable. */
  dataBlocks: DataBlock[];
  payloadBytes: number;
  resolve: (write: PendingWrite) => void;
  reject: (error: Error) => void;
}

/** A commit refused before anything of it was written (its `cause` says why): the store goes on. */
class CommitRefused extends Error {
  constructor(cause: unknown) {
    super('the commit was refused before it was written', { cause });
  }
}

/** A write as the façade or a stream hands it to the journal. */
export type QueuedWrite = Omit<PendingWrite, 'resolve' | 'reject'>;

/**
 * The WAL's live commits after recovery. Throws (a bug) if they do not end
 * where recovery says writing resumes.
 */
export function recoveredWalSpace(walBlockCount: number, liveCommits: { sequence: number; startBlock: number; blockCount: number }[], walHeadBlock: number): WalSpace {
  const walSpace = new WalSpace(walBlockCount, liveCommits.length > 0 ? liveCommits[0].startBlock : walHeadBlock);
  for (const commit of liveCommits) walSpace.append(commit.sequence, commit.startBlock, commit.blockCount);
  if (walSpace.headBlock !== walHeadBlock) {
    // Recovery ended the log at a dropped commit: that is where writing resumes.
    throw new Error(`ringstore: WAL head ${walSpace.headBlock} disagrees with recovery's ${walHeadBlock}`);
  }
  return walSpace;
}

export interface JournalParts {
  device: BlockDevice;
  blockSize: number;
  storeTag: number;
  walStartBlock: number;
  walBlockCount: number;
  sync: boolean;
  /** Sequence number of the next commit; every one before it is durable. */
  nextSequence: number;
  walSpace: WalSpace;
  tree: PageTree;
  /** Blocks of a tree page. */
  pageBlocks: number;
  /** Bytes of entries a tree page holds. */
  pageCapacityBytes: number;
  /**
   * Dirty pages (pinned in memory until a checkpoint writes them) at which a
   * checkpoint starts on its own: memory stays bounded.
   */
  dirtyPagesMax: number;
  space: Space;
  grid: Grid;
  checkpointer: Checkpointer;
  /** Grows the store when a commit or checkpoint finds no room. */
  growth: StoreGrowth;
  state: StoreState;
}

export class Journal {
  readonly #device: BlockDevice;
  readonly #blockSize: number;
  readonly #storeTag: number;
  readonly #walStartBlock: number;
  readonly #sync: boolean;
  readonly #walSpace: WalSpace;
  readonly #tree: PageTree;
  readonly #pageBlocks: number;
  readonly #pageCapacityBytes: number;
  readonly #dirtyPagesMax: number;
  readonly #space: Space;
  readonly #grid: Grid;
  readonly #checkpointer: Checkpointer;
  readonly #growth: StoreGrowth;
  /** Times a commit waited for a checkpoint because its pages had used the dirty budget (backpressure). */
  #checkpointsWaitedFor = 0;
  readonly #state: StoreState;
  /** WAL payload bytes one commit may hold: COMMIT_WAL_SHARE_MAX of the WAL. */
  readonly commitPayloadMax: number;
  readonly #commitWriter = new ByteWriter(1 << 16);

  #nextSequence: number;
  /** Highest sequence known durable (fdatasync completed). */
  #durableSequence: number;
  /** Highest durableSequence a written commit records. */
  #recordedDurableSequence = 0;
  /** Highest sequence written and applied (== durable with sync: true). */
  #appliedSequence: number;
  #pending: PendingWrite[] = [];
  #commitLoop: Promise<void> | undefined;
  /** The writes of the commit in flight, until it is applied or refused (for verifyIntegrity's recomputation). */
  #committing: PendingWrite[] = [];
  /** Cancels the scheduled deferred fdatasync (sync: false), if one is scheduled. */
  #deferredSync: (() => void) | undefined;
  #deferredSyncPromise: Promise<void> | undefined;
  #commits = 0;
  #committedRecords = 0;

  constructor(parts: JournalParts) {
    this.#device = parts.device;
    this.#blockSize = parts.blockSize;
    this.#storeTag = parts.storeTag;
    this.#walStartBlock = parts.walStartBlock;
    this.#sync = parts.sync;
    this.#walSpace = parts.walSpace;
    this.#tree = parts.tree;
    this.#pageBlocks = parts.pageBlocks;
    this.#pageCapacityBytes = parts.pageCapacityBytes;
    this.#dirtyPagesMax = parts.dirtyPagesMax;
    this.#space = parts.space;
    this.#grid = parts.grid;
    this.#checkpointer = parts.checkpointer;
    this.#growth = parts.growth;
    this.#state = parts.state;
    this.#nextSequence = parts.nextSequence;
    this.#durableSequence = parts.nextSequence - 1;
    this.#appliedSequence = parts.nextSequence - 1;
    const walPayloadPerBlock = parts.blockSize - 32;
    this.commitPayloadMax = Math.floor(parts.walBlockCount * COMMIT_WAL_SHARE_MAX) * walPayloadPerBlock;
  }

  /** Highest sequence written and applied (== durable with sync: true); 0 before any. */
  get appliedSequence(): number {
    return this.#appliedSequence;
  }

  /** Times commits waited for a checkpoint to end because they had dirtied a budget's worth of pages during it. */
  get checkpointWaitCount(): number {
    return this.#checkpointsWaitedFor;
  }

  get commitCount(): number {
    return this.#commits;
  }

  /** Records of all commits since open. */
  get committedRecordCount(): number {
    return this.#committedRecords;
  }

  /** Share of the WAL live commits take, 0 to 1. */
  get walFill(): number {
    return this.#walSpace.fill;
  }

  /**
   * Gives back what a write that will never commit took: its extents (once
   * its data writes have settled, so no late write lands on reused blocks)
   * and its pool buffers. No durable record references them: no trim needed.
   */
  async abandon(write: QueuedWrite): Promise<void> {
    const extents = write.operations.flatMap((operation) => (operation.value?.kind === 'extents' ? operation.value.extents : []));
    const blocks = write.dataBlocks.splice(0);
    await Promise.allSettled(write.dataWrites);
    this.#grid.giveBack(blocks);
    this.#space.free(extents);
  }

  /** Queues `write` for the next commit; resolves with it once it is applied (durable with sync: true). */
  enqueue(write: QueuedWrite): Promise<PendingWrite> {
    const promise = new Promise<PendingWrite>((resolve, reject) => {
      if (this.#state.failure !== undefined) {
        const failure = this.#state.failure;
        void this.abandon(write).then(() => reject(failure));
        return;
      }
      // Completed in place (no copy): one object per write on the hot path.
      const pending = write as PendingWrite;
      pending.resolve = resolve;
      pending.reject = reject;
      this.#pending.push(pending);
      this.#space.writeQueued(pending.operations.length, pending.payloadBytes);
      this.#startCommits();
    });
    this.#lastQueued = promise.catch(() => undefined);
    return promise;
  }

  /**
   * Resolves when every write queued before the call has committed (or
   * failed). Commits run in queue order, so waiting for the last one is
   * enough — and later writes cannot keep this waiting.
   */
  async flushCommits(): Promise<void> {
    await this.#lastQueued;
  }

  /** The last queued write's outcome, errors swallowed (see flushCommits). */
  #lastQueued: Promise<unknown> = Promise.resolve();

  /** Resolves when every write accepted so far is durable; rejects with the store's failure. */
  async flush(): Promise<void> {
    await this.flushCommits();
    if (!this.#sync) {
      await this.syncNow();
      if (this.#state.failure === undefined && this.#durableSequence > this.#recordedDurableSequence) {
        // Nothing on disk says the commits just flushed are durable until a
        // later commit records it; until then damage to one of them would
        // pass for a torn tail. A durable empty commit records it now.
        await this.enqueue({ operations: [], dataWrites: [], dataBlocks: [], payloadBytes: 16, durableMarker: true });
      }
    }
    if (this.#state.failure !== undefined) throw this.#state.failure;
  }

  /**
   * Writes a checkpoint now (or joins the one being written). With no room
   * for it, the store grows first if it can (store_growth.ts); otherwise
   * ERR_STORE_FULL.
   */
  async checkpoint(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#checkpointer.run(this);
        return;
      } catch (error) {
        if (!(error instanceof StoreError && error.code === 'ERR_STORE_FULL')) throw error;
        if (attempt >= GROWTH_ATTEMPTS_MAX || !(await this.#growth.grow(this.#space.checkpointShortfallBlocks(0)))) throw this.#growth.refusal(error);
      }
    }
  }

  /** Cancels the deferred fdatasync (the store is closing). */
  close(): void {
    this.#deferredSync?.();
    this.#deferredSync = undefined;
  }

  /** Asserts the checkpoint reserve's running totals against a recomputation: O(queued writes), for verifyIntegrity. */
  checkReserveAccounting(): void {
    const sum = (writes: PendingWrite[]): { operations: number; payloadBytes: number } => ({
      operations: writes.reduce((total, write) => total + write.operations.length, 0),
      payloadBytes: writes.reduce((total, write) => total + write.payloadBytes, 0),
    });
    this.#space.checkReserveAccounting(sum(this.#pending), sum(this.#committing));
  }

  #startCommits(): void {
    if (this.#commitLoop !== undefined) return;
    this.#commitLoop = this.#runCommits().finally(() => {
      this.#commitLoop = undefined;
      // Writes queued after the loop's last check (in the microtasks between
      // its end and this callback) start the next loop.
      if (this.#pending.length > 0) this.#startCommits();
    });
  }

  /** Commits waiting writes, one commit at a time, until none wait. */
  async #runCommits(): Promise<void> {
    while (this.#pending.length > 0 && this.#state.failure === undefined) {
      // Backpressure: commits go on while a checkpoint is written, dirtying
      // pages it does not write; past BACKPRESSURE_DIRTY_FACTOR budgets'
      // worth, they wait for it to end.
      while (this.#checkpointer.running && this.#tree.dirtyNodeCountSinceFreeze >= BACKPRESSURE_DIRTY_FACTOR * this.#dirtyPagesMax) {
        await this.#checkpointer.settled();
        this.#checkpointsWaitedFor++;
      }
      // Take every waiting write that fits one commit — and whose
      // checkpoint is sure to fit the free space (Space.operationsThatFit).
      let payloadBytes = 0;
      let operationCount = 0;
      let take = 0;
      const operationsMax = this.#space.operationsThatFit();
      while (
        take < this.#pending.length &&
        (take === 0 || (payloadBytes + this.#pending[take].payloadBytes <= this.commitPayloadMax && operationCount + this.#pending[take].operations.length <= operationsMax))
      ) {
        payloadBytes += this.#pending[take].payloadBytes;
        operationCount += this.#pending[take].operations.length;
        take++;
      }
      const writes = this.#pending.splice(0, take);
      this.#space.writesTaken(
        writes.reduce((sum, write) => sum + write.operations.length, 0),
        payloadBytes,
      );
      this.#committing = writes;
      try {
        await this.#commit(writes);
        for (const write of writes) write.resolve(write);
        if (writes.length > 1) {
          // Concurrent writers: let the ones just acknowledged run up to their
          // next write before the next commit takes what is waiting (a
          // macrotask: every promise reaction runs first, however deep the
          // caller's chain). Without this, writers split into two groups that
          // take turns, each commit carrying half of them.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } catch (error) {
        // Refused or failed: these records will never be applied (a no-op
        // if the commit got as far as applying them).
        this.#space.commitSettled();
        this.#committing = [];
        if (error instanceof StoreError && error.code === 'ERR_STORE_FULL') {
          // The WAL is full and no checkpoint fits: refuse these writes, keep the store.
          await Promise.all(writes.map((write) => this.abandon(write)));
          for (const write of writes) write.reject(error);
          continue;
        }
        if (error instanceof CommitRefused) {
          await Promise.all(writes.map((write) => this.abandon(write)));
          const reason = error.cause instanceof Error ? error.cause : new Error(String(error.cause));
          for (const write of writes) write.reject(reason);
          continue;
        }
        const failure = this.#state.fail(error);
        for (const write of writes) write.reject(failure);
      }
    }
    const failure = this.#state.failure;
    if (failure !== undefined) {
      const pending = this.#pending.splice(0);
      this.#space.queueDropped();
      for (const write of pending) write.reject(failure);
    }
    // The running totals against the one recomputation that costs nothing
    // here: an empty queue holds no operations (verifyIntegrity checks the sums).
    if (this.#pending.length === 0 && this.#space.queuedOperationCount !== 0) {
      throw new Error(`ringstore: the write queue is empty but its running total says ${this.#space.queuedOperationCount} operations`);
    }
  }

  async #commit(writes: PendingWrite[]): Promise<void> {
    const sequence = this.#nextSequence;
    const writer = this.#commitWriter;
    writer.reset();
    beginCommitPayload(writer, this.#durableSequence);
    const recordsDurable = this.#durableSequence;
    const marker = writes.some((write) => write.durableMarker === true);
    let recordCount = 0;
    for (const write of writes) {
      for (const { keyString, isString, value } of write.operations) {
        const keyBytes = keyStringToBytes(keyString);
        if (value === undefined) writeDelete(writer, keyBytes, isString);
        else writePut(writer, keyBytes, isString, value);
        recordCount++;
      }
    }
    const payload = finishCommitPayload(writer, recordCount);
    const blockCount = frameBlockCount(payload.length, this.#blockSize);
    const frame = this.#commitFrame(blockCount * this.#blockSize);
    encodeFrame('wal', sequence, this.#storeTag, payload, frame, this.#blockSize);

    // The pages the commit's keys lead to are read (while its extent data is
    // being written) before its WAL frame is: a commit must never become
    // durable and then fail to apply for want of a page.
    const operations = writes.flatMap((write) => write.operations);
    let prepared: PreparedPaths | undefined;
    for (let attempt = 0; prepared === undefined; attempt++) {
      let paths: PreparedPaths;
      try {
        paths = await this.#tree.prepare(
          operations.filter((operation) => operation.value !== undefined).map((operation) => operation.keyString),
          // A delete may merge its leaf with a sibling: those pages too.
          operations.filter((operation) => operation.value === undefined).map((operation) => operation.keyString),
        );
      } catch (error) {
        // Nothing is written yet: a page that cannot be read (an IO error, a
        // damaged page) refuses these writes, and the store goes on.
        throw new CommitRefused(error);
      }
      // No commit is written whose checkpoint could not be: the pages it
      // copies, and the pieces its new entries may split into.
      const newPages = this.#tree.nodesToCopy(paths) + Math.ceil((2 * payload.length) / this.#pageCapacityBytes) + this.#tree.height + 1;
      if (this.#space.checkpointFits(newPages)) {
        prepared = paths;
        break;
      }
      this.#tree.release(paths);
      if (attempt > 0) {
        // Growing the store makes room, where it can grow.
        if (attempt <= GROWTH_ATTEMPTS_MAX && (await this.#growth.grow(this.#space.checkpointShortfallBlocks(newPages)))) continue;
        throw this.#growth.refusal(
          new StoreError(
            'ERR_STORE_FULL',
            `the store is full: this write's checkpoint may need ${newPages} more pages than the ${this.#space.freeBlockCount} free blocks hold (write fewer keys at a time, or delete keys in smaller batches)`,
          ),
        );
      }
      // A checkpoint writes what is dirty and frees the pages it replaced: then try once more.
      await this.checkpoint();
    }
    try {
      await this.#writeAndApply(writes, sequence, frame, blockCount, recordCount, recordsDurable, marker);
    } finally {
      this.#tree.release(prepared);
    }
  }

  /** The rest of a commit, with the pages of its keys in memory: WAL write, then apply. */
  async #writeAndApply(writes: PendingWrite[], sequence: number, frame: Buffer, blockCount: number, recordCount: number, recordsDurable: number, marker: boolean): Promise<void> {
    let startBlock = this.#walSpace.place(blockCount);
    while (startBlock === undefined) {
      // The WAL is full of commits no checkpoint covers yet: make one.
      await this.checkpoint();
      startBlock = this.#walSpace.place(blockCount);
      if (startBlock === undefined && this.#walSpace.usedBlockCount === 0) {
        throw new Error(`ringstore: a ${blockCount}-block commit does not fit an empty ${this.#walSpace.walBlockCount}-block WAL`);
      }
    }
    // Extent data first: the fdatasync linked to the WAL write must find it
    // complete, so both are durable when the commit is.
    let hasData = false;
    for (const write of writes) {
      if (write.dataWrites.length === 0) continue;
      hasData = true;
      await Promise.all(write.dataWrites);
    }
    // The first commit after an open that found a clean close: the mark goes first.
    if (this.#checkpointer.superblock.clean) await this.#checkpointer.clearClean();
    const position = (this.#walStartBlock + startBlock) * this.#blockSize;
    this.#device.mark?.('wal', sequence);
    if (!this.#sync && !marker) {
      await this.#device.write(position, [frame]);
    } else if (hasData) {
      await this.#device.writeAndSync(position, [frame]);
    } else {
      // A commit of inline records needs only its own WAL blocks durable
      // (every earlier commit already is): one RWF_DSYNC write, faster than
      // write + fdatasync. Not for commits with extent data: on a device with
      // FUA it would make the WAL blocks durable without the data.
      await this.#device.writeDsync(position, [frame]);
    }
    this.#walSpace.append(sequence, startBlock, blockCount);
    this.#nextSequence = sequence + 1;
    this.#appliedSequence = sequence;
    this.#recordedDurableSequence = Math.max(this.#recordedDurableSequence, recordsDurable);
    // A durable marker commit (sync: false flush) was written with RWF_DSYNC
    // after an fdatasync of everything before it: all of it is durable now.
    if (marker && !hasData) this.#durableSequence = Math.max(this.#durableSequence, this.#flushedBeforeMarker(sequence));
    if (this.#sync) this.#durableSequence = sequence;

    // Apply to the tree in record order, synchronously (a reader sees all of
    // the commit or none of it); collect what the commit unlinked.
    const unlinked: Extent[] = [];
    for (const write of writes) {
      for (const operation of write.operations) {
        const { keyString, isString, value } = operation;
        let previous: IndexEntry | undefined;
        if (value === undefined) {
          previous = this.#tree.delete(keyString);
        } else {
          if (value.kind === 'extents') this.#space.committed(value.extents);
          previous = this.#tree.set(keyString, { isString, value: value.kind === 'inline' ? value.bytes : value });
        }
        operation.existed = previous !== undefined;
        if (previous !== undefined && isExtentValue(previous.value)) unlinked.push(...previous.value.extents);
      }
      this.#grid.cacheWritten(write.dataBlocks);
    }
    // The records are in the tree now: its dirty pages count in the reserve.
    this.#space.commitSettled();
    this.#committing = [];
    this.#commits++;
    this.#committedRecords += recordCount;
    if (unlinked.length > 0) {
      if (this.#sync) this.#space.release(unlinked, this.#appliedSequence);
      else this.#space.releaseWhenDurable(sequence, unlinked);
    }
    if (!this.#sync) this.#scheduleDeferredSync();
    if (!this.#checkpointer.running && this.#checkpointDue()) {
      void this.checkpoint().catch(() => undefined);
    }
  }

  /**
   * Whether recovery, replaying the WAL, should write a checkpoint before
   * the next commit: the dirty pages past REPLAY_DIRTY_BUDGET_FACTOR times
   * their memory budget, or past a share of the free space (the WAL fill
   * does not matter: replay adds nothing to it).
   */
  replayCheckpointDue(): boolean {
    const dirty = this.#tree.dirtyNodeCountMax;
    return dirty >= REPLAY_DIRTY_BUDGET_FACTOR * this.#dirtyPagesMax || dirty * this.#pageBlocks >= this.#space.freeBlockCount * CHECKPOINT_FREE_SPACE_SHARE;
  }

  /**
   * When a checkpoint starts on its own: the WAL half full, the dirty pages
   * past their memory budget, or past a share of the free space (so the
   * checkpoint that writes them always fits).
   */
  #checkpointDue(): boolean {
    if (this.#walSpace.fill >= CHECKPOINT_WAL_FILL) return true;
    const dirty = this.#tree.dirtyNodeCountMax;
    if (dirty >= this.#dirtyPagesMax) return true;
    return dirty * this.#pageBlocks >= this.#space.freeBlockCount * CHECKPOINT_FREE_SPACE_SHARE;
  }

  /**
   * The aligned buffer a commit's frame is encoded into: one, reused and
   * grown, since only one commit is in flight at a time.
   */
  #commitFrame(sizeBytes: number): Buffer {
    if (this.#commitFrameBuffer === undefined || this.#commitFrameBuffer.length < sizeBytes) {
      let capacity = Math.max(this.#blockSize * 16, this.#commitFrameBuffer?.length ?? 0);
      while (capacity < sizeBytes) capacity *= 2;
      this.#commitFrameBuffer = allocAligned(capacity, Math.max(this.#device.ioAlignment, 4096));
    }
    return this.#commitFrameBuffer.subarray(0, sizeBytes);
  }

  #commitFrameBuffer: Buffer | undefined;

  /**
   * What a marker commit makes durable: itself, and everything before it if
   * nothing but the marker was written since the flush that preceded it.
   */
  #flushedBeforeMarker(markerSequence: number): number {
    return this.#durableSequence === markerSequence - 1 ? markerSequence : this.#durableSequence;
  }

  #scheduleDeferredSync(): void {
    if (this.#deferredSync !== undefined) return;
    const task = (): void => {
      this.#deferredSync = undefined;
      void this.syncNow().catch(() => undefined);
    };
    // The crash lab's device picks the moment itself, so that a traced
    // workload does the same IO in the same order on every run.
    if (this.#device.deferTask !== undefined) {
      this.#deferredSync = this.#device.deferTask(task, SYNC_DEFER_MS);
      return;
    }
    const timer = setTimeout(task, SYNC_DEFER_MS);
    this.#deferredSync = () => clearTimeout(timer);
  }

  /** fdatasync now; then everything written so far is durable. */
  async syncNow(): Promise<void> {
    if (this.#deferredSyncPromise !== undefined) {
      await this.#deferredSyncPromise;
      if (this.#appliedSequence === this.#durableSequence) return;
    }
    const through = this.#appliedSequence;
    this.#deferredSyncPromise = (async () => {
      try {
        this.#device.mark?.('flush', through);
        await this.#device.sync();
      } catch (error) {
        throw this.#state.fail(error);
      }
      this.#durableSequence = Math.max(this.#durableSequence, through);
      this.#space.durableThrough(through, this.#appliedSequence);
    })();
    try {
      await this.#deferredSyncPromise;
    } finally {
      this.#deferredSyncPromise = undefined;
    }
  }
}
