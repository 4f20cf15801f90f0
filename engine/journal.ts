// Journal: the write queue and group commit. Every put/delete/batch becomes
// records in the next WAL commit: when a commit starts it takes every record
// waiting (up to a quarter of the WAL); records arriving meanwhile wait for
// the next one. Up to COMMIT_PIPELINE_DEPTH commits are in flight: the next
// one is prepared and its WAL write submitted while the previous one is
// still being flushed. A commit's WAL blocks go out with RWF_DSYNC (inline
// records only), linked to an fdatasync (extent data already written), or
// beside its extent data still in flight with one fdatasync after both. It
// is applied to the page tree and acknowledged only once it is durable and
// every commit before it is applied, so readers only ever see durable data
// and acknowledgements keep commit order.
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
import { extentsBlockCount, type Extent } from '../format/extent.js';
import { COMMIT_HEADER_SIZE } from '../format/constants.js';
import { encodeFrame, frameBlockCount, framePayloadPerBlock } from '../format/frame.js';
import { keyStringBytesNow } from '../format/key_scratch.js';
import { writeDelete, writePut, type StoredValue } from '../format/records.js';
import { allocAligned } from '../native/aligned_buffer.js';
import type { BlockDevice } from './block_device.js';
import type { Checkpointer } from './checkpointer.js';
import { CheckpointPolicy } from './checkpoint_policy.js';
import { allSettledOrThrow, type DataBlock, type Grid } from './grid.js';
import { IdleCheckpoint } from './idle_checkpoint.js';
import { PageUnreadable, type PageTree, type PreparedPaths } from './page_tree.js';
import type { Space } from './space.js';
import { StoreError } from './store_error.js';
import { GROWTH_ATTEMPTS_MAX, type StoreGrowth } from './store_growth.js';
import { isExtentValue, type IndexEntry } from './store_index.js';
import type { StoreState } from './store_state.js';
import { WalSpace } from './wal_space.js';

/** The longest a commit's fdatasync waits with sync: false. */
export const SYNC_DEFER_MS = 100;
/** One commit takes at most this share of the WAL, so a checkpoint always makes room for it. */
const COMMIT_WAL_SHARE_MAX = 0.25;
/**
 * Rounds of reclaim(): a sync, then the trims it starts, then trims of
 * extents released meanwhile. Only a bound: one or two do it.
 */
const RECLAIM_ROUNDS_MAX = 4;

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
  /** Set once every one of dataWrites has completed (the commit's WAL write and flush may then go in one submission). */
  dataWritten?: boolean;
  payloadBytes: number;
  resolve: (write: PendingWrite) => void;
  reject: (error: Error) => void;
}

/**
 * Commits in flight at once: the next one is prepared and submitted while
 * the previous one is flushed. 64 closed-loop durable writers (farm-bench,
 * whole processes, paired): depth 2 took 0.84 × the wall time of depth 1,
 * depth 3 0.96 × that of 2 (noise) — measured before FlushLedger (session
 * 47), which acknowledges a commit only once the next one's flush, issued
 * beside it, has ended too; not measured again. Each commit in flight holds a frame
 * buffer, pinned pages and checkpoint-reserve room, and a crash can leave
 * the last DEPTH commits unvouched for (docs/durability.md, Limits).
 */
const COMMIT_PIPELINE_DEPTH = 2;

/** A commit whose WAL write is submitted, until it is applied (or fails). */
interface InFlightCommit {
  readonly sequence: number;
  readonly writes: PendingWrite[];
  readonly operationCount: number;
  readonly payloadBytes: number;
  readonly recordCount: number;
  /** The durableSequence its frame records. */
  readonly recordsDurable: number;
  readonly marker: boolean;
  readonly hasData: boolean;
  /** Tree pages its checkpoint may add: room later commits' checks keep for it until it applies. */
  readonly newPages: number;
  /** What prepare() pinned for it (prepared again before it applies if commits applied meanwhile). */
  prepared: PreparedPaths;
  /** The applied sequence when its pages were prepared. */
  appliedWhenPrepared: number;
  /** PageTree.repairCount when its pages were prepared: a repair in between changes the tree's shape too. */
  repairsWhenPrepared: number;
  /** The aligned buffer its frame is in, under IO until `io` settles. */
  readonly frameBuffer: Buffer;
  /** Settles when its IO has: durable (sync: true, or a durable marker) or written (sync: false). */
  readonly io: Promise<void>;
  /** Settles (never rejects) once it is applied and acknowledged, or has failed. */
  done: Promise<void>;
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
  /** Whether the WAL tail recovered at open is still being replayed (ReplayOverlay): no commit may begin before it ends. */
  replayPending: () => boolean;
  /** Milliseconds without a commit before a checkpoint starts on its own (IdleCheckpoint); 0: never. */
  idleCheckpointMs: number;
}

export class Journal {
  readonly #device: BlockDevice;
  readonly #blockSize: number;
  readonly #storeTag: number;
  readonly #walStartBlock: number;
  readonly #sync: boolean;
  readonly #walSpace: WalSpace;
  readonly #tree: PageTree;
  readonly #pageCapacityBytes: number;
  readonly #policy: CheckpointPolicy;
  readonly #space: Space;
  readonly #grid: Grid;
  readonly #checkpointer: Checkpointer;
  readonly #growth: StoreGrowth;
  readonly #replayPending: () => boolean;
  /** Times a commit waited for a checkpoint's progress because its pages had used their allowance (backpressure). */
  #checkpointsWaitedFor = 0;
  readonly #state: StoreState;
  /** WAL payload bytes one commit may hold: COMMIT_WAL_SHARE_MAX of the WAL. */
  readonly commitPayloadMax: number;
  readonly #commitWriter = new ByteWriter(1 << 16);

  #nextSequence: number;
  /** Highest sequence known durable (fdatasync completed). */
  #durableSequence: number;
  /** Durable writes and flushes of commits completed: see flushCount. */
  #flushCount = 0;
  /**
   * Highest durableSequence a written commit records, or the checkpoint's
   * sequence: recovery never reads a commit the checkpoint covers, so none
   * needs a witness (a flush() after opening a clean store writes no marker).
   */
  #recordedDurableSequence: number;
  /** Highest sequence written and applied (== durable with sync: true). */
  #appliedSequence: number;
  #pending: PendingWrite[] = [];
  #commitLoop: Promise<void> | undefined;
  /** The writes of the commit being begun (taken from the queue, not yet in flight), for verifyIntegrity's recomputation. */
  #beginning: PendingWrite[] = [];
  /** Commits whose WAL writes are submitted, oldest first; each leaves once applied or failed. */
  readonly #inFlight: InFlightCommit[] = [];
  /** Wakes a commit loop that waits, with commits in flight, for a new write or for one of them to settle. */
  #wakeCommitLoop: (() => void) | undefined;
  /** Cancels the scheduled deferred fdatasync (sync: false), if one is scheduled. */
  #deferredSync: (() => void) | undefined;
  #deferredSyncPromise: Promise<void> | undefined;
  #commits = 0;
  #committedRecords = 0;
  readonly #idleCheckpoint: IdleCheckpoint;
  /** Writes being given back (abandon): their blocks are free once their data writes settle. */
  readonly #abandoning = new Set<Promise<void>>();
  #abandoningBlocks = 0;

  constructor(parts: JournalParts) {
    this.#device = parts.device;
    this.#blockSize = parts.blockSize;
    this.#storeTag = parts.storeTag;
    this.#walStartBlock = parts.walStartBlock;
    this.#sync = parts.sync;
    this.#walSpace = parts.walSpace;
    this.#tree = parts.tree;
    this.#pageCapacityBytes = parts.pageCapacityBytes;
    this.#space = parts.space;
    this.#grid = parts.grid;
    this.#checkpointer = parts.checkpointer;
    this.#policy = new CheckpointPolicy(parts);
    this.#growth = parts.growth;
    this.#replayPending = parts.replayPending;
    this.#state = parts.state;
    this.#nextSequence = parts.nextSequence;
    this.#durableSequence = parts.nextSequence - 1;
    this.#appliedSequence = parts.nextSequence - 1;
    this.#recordedDurableSequence = parts.checkpointer.superblock.checkpointSeq;
    this.commitPayloadMax = Math.floor(parts.walBlockCount * COMMIT_WAL_SHARE_MAX) * framePayloadPerBlock(parts.blockSize);
    this.#idleCheckpoint = new IdleCheckpoint({
      // The crash lab's device orders deferred work itself: no wall-time timer under it (idle_checkpoint.ts).
      delayMs: parts.device.deferTask === undefined ? parts.idleCheckpointMs : 0,
      commitCount: () => this.#commits,
      due: () => !this.#state.closing && this.#state.failure === undefined && !this.#replayPending() && this.#policy.idleDue(),
      start: () => void this.checkpoint().catch(() => undefined),
    });
  }

  /** The WAL tail recovered at open is replayed: a pause after it checkpoints what it dirtied, as after commits. */
  tailReplayed(): void {
    this.#idleCheckpoint.noteCommit();
  }

  /** Durable writes and flushes of commits completed since open (AppliedCommits.flushCount). */
  get flushCount(): number {
    return this.#flushCount;
  }

  /** Highest sequence written and applied (== durable with sync: true); 0 before any. */
  get appliedSequence(): number {
    return this.#appliedSequence;
  }

  /**
   * The last sequence given to a commit: its WAL write may still be in
   * flight, and it is applied or the store has failed once that write settles.
   */
  get lastSequence(): number {
    return this.#nextSequence - 1;
  }

  /** Times commits waited for a running checkpoint's progress because they had dirtied their allowance of pages during it. */
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
  abandon(write: QueuedWrite): Promise<void> {
    let blocks = 0;
    for (const operation of write.operations) if (operation.value?.kind === 'extents') blocks += extentsBlockCount(operation.value.extents);
    const abandoning = this.#abandonOnceWritten(write);
    // Only time holds its blocks now: a write refused for room waits for them (reclaim).
    this.#abandoning.add(abandoning);
    this.#abandoningBlocks += blocks;
    const forget = (): void => {
      this.#abandoning.delete(abandoning);
      this.#abandoningBlocks -= blocks;
    };
    abandoning.then(forget, forget);
    return abandoning;
  }

  /**
   * Blocks freed but not free yet that only time holds: Space's
   * (reclaimableBlockCount) and those of writes being given back. A write
   * refused for room waits for them (reclaim) before it is refused.
   */
  get reclaimableBlockCount(): number {
    return this.#space.reclaimableBlockCount + this.#abandoningBlocks;
  }

  async #abandonOnceWritten(write: QueuedWrite): Promise<void> {
    const extents = write.operations.flatMap((operation) => (operation.value?.kind === 'extents' ? operation.value.extents : []));
    const blocks = write.dataBlocks.splice(0);
    const outcomes = await Promise.allSettled(write.dataWrites);
    // A data write that failed is the device failing, whether or not its
    // write commits (found by a review: an abandoned stream's EIO was
    // dropped here). A write the closed device refused is not.
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected' && !(outcome.reason instanceof StoreError && outcome.reason.code === 'ERR_STORE_CLOSED')) this.#state.fail(outcome.reason);
    }
    this.#grid.giveBack(blocks);
    this.#space.free(extents);
  }

  /** Queues `write` for the next commit; resolves with it once it is applied (durable with sync: true). */
  enqueue(write: QueuedWrite): Promise<PendingWrite> {
    const promise = new Promise<PendingWrite>((resolve, reject) => {
      if (this.#state.failure !== undefined) {
        const failure = this.#state.failure;
        this.#refuseInOrder(write, reject, failure);
        return;
      }
      // A value whose index entry no page holds (a write stream of hundreds
      // of extents) is refused before it reaches the WAL: committed, it would
      // fail set() at its apply and at every replay after a reopen (found by
      // a review). The stream checks as it grows; this is the last guard.
      const oversized = write.operations.find((operation) => operation.value?.kind === 'extents' && !this.#tree.entryFits(operation.keyString, { isString: operation.isString, value: operation.value }));
      if (oversized !== undefined) {
        const extentCount = oversized.value?.kind === 'extents' ? oversized.value.extents.length : 0;
        this.#refuseInOrder(write, reject, new StoreError('ERR_VALUE_TOO_LARGE', `the value of ${extentCount} extents makes an index entry larger than one index page`));
        return;
      }
      // Completed in place (no copy): one object per write on the hot path.
      const pending = write as PendingWrite;
      pending.resolve = resolve;
      pending.reject = reject;
      if (pending.dataWrites.length > 0) {
        Promise.all(pending.dataWrites).then(
          () => (pending.dataWritten = true),
          () => undefined,
        );
      }
      this.#pending.push(pending);
      this.#space.writeQueued(pending.operations.length, pending.payloadBytes);
      this.#startCommits();
    });
    this.#lastQueued = promise.catch(() => undefined);
    return promise;
  }

  /**
   * Rejects `write`, refused as it is queued, with `error` once what it took
   * is given back and every write queued before it has settled (#lastQueued
   * is still theirs while enqueue() runs): writes settle in queue order,
   * also when earlier ones wait for their data writes before they reject
   * (found by a review).
   */
  #refuseInOrder(write: QueuedWrite, reject: (error: Error) => void, error: Error): void {
    const before = this.#lastQueued;
    void Promise.all([this.abandon(write), before]).then(() => reject(error));
  }

  /**
   * Resolves when every write queued before the call has committed (or
   * failed). Writes settle in queue order — commits are acknowledged in
   * order, and a commit refused before its write settles after the commits
   * in flight ahead of it — so waiting for the last one is enough, and
   * later writes cannot keep this waiting.
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
        await this.enqueue({ operations: [], dataWrites: [], dataBlocks: [], payloadBytes: COMMIT_HEADER_SIZE, durableMarker: true });
      }
    }
    if (this.#state.failure !== undefined) throw this.#state.failure;
  }

  /**
   * Writes a checkpoint now (or joins the one being written). With no room
   * for it, it waits for the blocks only time holds (reclaim: the previous
   * free-set frame's runs, say, still on their way back to free), then the store grows
   * if it can (store_growth.ts); otherwise ERR_STORE_FULL. A page its
   * repair could not read refuses it with PageUnreadable (the store goes on).
   */
  async checkpoint(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#checkpointer.run(this);
        return;
      } catch (error) {
        if (!(error instanceof StoreError && error.code === 'ERR_STORE_FULL')) throw error;
        const shortfall = this.#space.checkpointShortfallBlocks(0);
        const room = attempt < GROWTH_ATTEMPTS_MAX && (await this.makeRoom(shortfall));
        if (!room) throw this.#growth.refusal(error, shortfall);
      }
    }
  }

  /**
   * Waits for the blocks freed but not free yet that only time holds
   * (Space.reclaimableBlockCount): the fdatasync that makes their unlinking
   * durable (sync: false), then their trims; and the blocks of writes being
   * given back (abandon). Resolves to whether any became
   * free. A write refused for room tries again then, before the store grows
   * or refuses it (found by a review: overwrites of 1 MiB values in a store
   * capped at 8 MiB were refused while the blocks of the values they
   * replaced were being trimmed, and with sync: false the store grew instead).
   * Rejects with the store's failure if the fdatasync fails.
   */
  async reclaim(): Promise<boolean> {
    const freeBefore = this.#space.allocatableBlockCount;
    // Writes given back (a write stream destroyed or refused, a refused
    // commit) free their blocks once their data writes settle (found by a
    // review: a put right after a stream refused for room on a capped store
    // was refused too, and on an uncapped one grew the file).
    if (this.#abandoning.size > 0) await Promise.allSettled([...this.#abandoning]);
    for (let round = 0; round < RECLAIM_ROUNDS_MAX && this.#space.reclaimableBlockCount > 0 && this.#state.failure === undefined; round++) {
      if (this.#space.awaitingDurabilityBlockCount > 0) await this.syncNow();
      // A sync releases extents, whose trims start at once (no read holds them).
      await this.#space.trimsSettled();
    }
    return this.#space.allocatableBlockCount > freeBefore;
  }

  /**
   * Room for a write or a checkpoint refused for it: the blocks only time
   * holds (reclaim), else a growth by `blocksWanted` where the store can
   * grow. Resolves to whether any room came.
   */
  async makeRoom(blocksWanted: number, checkBeforeGrowth?: () => void): Promise<boolean> {
    if (await this.reclaim()) return true;
    // The caller may no longer be taken (a write stream not ended, once close() has begun): it throws then, and nothing grows.
    checkBeforeGrowth?.();
    return this.#growth.grow(blocksWanted);
  }

  /**
   * Cancels the deferred fdatasync and waits for one already running (its
   * failure is the store's, reported by whatever is waiting on it): the
   * device must not close with it in flight (found by a review: the timer of
   * the last commit fired while close() wrote its checkpoint).
   */
  async close(): Promise<void> {
    this.#idleCheckpoint.stop();
    this.#deferredSync?.();
    this.#deferredSync = undefined;
    // A caller that waited for one sync may have started the next (syncNow).
    while (this.#deferredSyncPromise !== undefined) await this.#deferredSyncPromise.catch(() => undefined);
  }

  /** Asserts the checkpoint reserve's running totals against a recomputation: O(queued writes), for verifyIntegrity. */
  checkReserveAccounting(): void {
    const sum = (writes: PendingWrite[]): { operations: number; payloadBytes: number } => ({
      operations: writes.reduce((total, write) => total + write.operations.length, 0),
      payloadBytes: writes.reduce((total, write) => total + write.payloadBytes, 0),
    });
    this.#space.checkReserveAccounting(sum(this.#pending), sum([...this.#beginning, ...this.#inFlight.flatMap((commit) => commit.writes)]));
  }

  /** Wakes the commit loop if it waits (for a new write, or for a commit in flight to settle). */
  #wakeLoop(): void {
    const wake = this.#wakeCommitLoop;
    if (wake === undefined) return;
    this.#wakeCommitLoop = undefined;
    wake();
  }

  #startCommits(): void {
    // A loop waiting for new writes (its commits in flight) takes them now.
    this.#wakeLoop();
    if (this.#commitLoop !== undefined) return;
    this.#commitLoop = this.#runCommits().finally(() => {
      this.#commitLoop = undefined;
      // Writes queued after the loop's last check (in the microtasks between
      // its end and this callback) start the next loop.
      if (this.#pending.length > 0) this.#startCommits();
    });
  }

  /**
   * Commits waiting writes until none wait and none are in flight. Up to
   * COMMIT_PIPELINE_DEPTH commits are in flight at once: the next one is
   * prepared and its WAL write submitted while earlier ones are still being
   * written and flushed; they are applied and acknowledged in order (#finish).
   */
  async #runCommits(): Promise<void> {
    while (this.#state.failure === undefined && (this.#pending.length > 0 || this.#inFlight.length > 0)) {
      if (this.#pending.length === 0) {
        // Nothing to take: wait for a new write (#startCommits) or for the
        // oldest commit in flight to settle (#finish), whichever comes first.
        await new Promise<void>((resolve) => (this.#wakeCommitLoop = resolve));
        continue;
      }
      // A full pipeline: the oldest commit settles first.
      if (this.#inFlight.length >= COMMIT_PIPELINE_DEPTH) {
        await this.#inFlight[0]!.done;
        continue;
      }
      // Backpressure: commits go on while a checkpoint is written, dirtying
      // pages it does not write, paced by its progress (CheckpointPolicy.dirtyAllowance).
      if (this.#checkpointer.running && this.#tree.dirtyNodeCountSinceFreeze >= this.#policy.dirtyAllowance()) {
        await this.#checkpointer.progressed();
        this.#checkpointsWaitedFor++;
        continue;
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
      this.#space.writesTaken(operationCount, payloadBytes);
      let commit: InFlightCommit;
      this.#beginning = writes;
      try {
        commit = await this.#begin(writes, operationCount, payloadBytes);
      } catch (error) {
        this.#beginning = [];
        // Refused or failed before its WAL write was submitted: these
        // records will never be applied. Their writes settle after the
        // commits in flight ahead of them, so that writes still settle in
        // queue order (flushCommits() waits for the last one queued; a
        // refusal settling first would let flush() or close() return
        // before an earlier write is durable).
        this.#space.commitSettled(operationCount, payloadBytes);
        await this.#drainInFlight();
        // A commit ahead of these failed the store meanwhile: that failure
        // is their answer, whatever refused them (a page read that failed
        // with the device, found by a review: such writes were rejected
        // with the read's EIO while the store no longer took any write).
        const failedMeanwhile = this.#state.failure;
        if (failedMeanwhile !== undefined) {
          // Given back as a refusal's are: their blocks count as free
          // (stats) and their data writes have settled when they reject.
          await Promise.all(writes.map((write) => this.abandon(write)));
          for (const write of writes) write.reject(failedMeanwhile);
          continue;
        }
        if ((error instanceof StoreError && error.code === 'ERR_STORE_FULL') || error instanceof CommitRefused || error instanceof PageUnreadable) {
          // The WAL or the free space is full and no checkpoint or growth
          // makes room, or a page could not be read (this commit's, or one
          // the checkpoint that would make room needed): refuse these
          // writes, keep the store.
          await Promise.all(writes.map((write) => this.abandon(write)));
          const reason = error instanceof CommitRefused || error instanceof PageUnreadable ? (error.cause instanceof Error ? error.cause : new Error(String(error.cause))) : error;
          for (const write of writes) write.reject(reason);
          continue;
        }
        const failure = this.#state.fail(error);
        for (const write of writes) write.reject(failure);
        continue;
      }
      const previous = this.#inFlight.length > 0 ? this.#inFlight[this.#inFlight.length - 1]!.done : undefined;
      this.#beginning = [];
      this.#inFlight.push(commit);
      commit.done = this.#finish(commit, previous);
    }
    // Failed: every commit in flight settles (rejecting its writes) before the queue is dropped.
    while (this.#inFlight.length > 0) await this.#inFlight[0]!.done;
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

  /**
   * The first half of a commit, in sequence order: encodes its WAL frame,
   * reads and pins the pages its keys lead to, checks that its checkpoint
   * fits, places it in the WAL and submits its writes. Throws
   * CommitRefused or ERR_STORE_FULL (nothing written) or an IO error.
   */
  async #begin(writes: PendingWrite[], operationCount: number, payloadBytes: number): Promise<InFlightCommit> {
    // The façade holds writes back until the replay ends: a commit applied
    // before the tail would be overwritten by it (a bug; fails the store).
    if (this.#replayPending()) throw new Error(`ringstore: commit ${this.#nextSequence} began while the WAL tail was still being replayed`);
    const writer = this.#commitWriter;
    writer.reset();
    const recordsDurable = this.#durableSequence;
    beginCommitPayload(writer, recordsDurable);
    const marker = writes.some((write) => write.durableMarker === true);
    let recordCount = 0;
    for (const write of writes) {
      for (const { keyString, isString, value } of write.operations) {
        // Copied into the payload by the writer before the next key's bytes replace them.
        const keyBytes = keyStringBytesNow(keyString);
        if (value === undefined) writeDelete(writer, keyBytes, isString);
        else writePut(writer, keyBytes, isString, value);
        recordCount++;
      }
    }
    const payload = finishCommitPayload(writer, recordCount);
    const blockCount = frameBlockCount(payload.length, this.#blockSize);

    // The pages the commit's keys lead to are read (while its extent data is
    // being written) before its WAL frame is: a commit must never become
    // durable and then fail to apply for want of a page.
    const { prepared, newPages, appliedWhenPrepared, repairsWhenPrepared } = await this.#prepareWithRoom(writes, payload.length);
    const frameBuffer = this.#takeFrameBuffer(blockCount * this.#blockSize);
    const frame = frameBuffer.subarray(0, blockCount * this.#blockSize);
    try {
      let startBlock = this.#walSpace.place(blockCount);
      while (startBlock === undefined) {
        // The WAL is full of commits no checkpoint covers yet: let those in
        // flight apply (a checkpoint covers only applied commits), then make one.
        await this.#drainInFlight();
        await this.checkpoint();
        startBlock = this.#walSpace.place(blockCount);
        if (startBlock === undefined && this.#walSpace.usedBlockCount === 0) {
          throw new Error(`ringstore: a ${blockCount}-block commit does not fit an empty ${this.#walSpace.walBlockCount}-block WAL`);
        }
      }
      // The first commit after an open that found a clean close: the mark goes first.
      if (this.#checkpointer.clean) await this.#checkpointer.clearClean();
      if (this.#state.failure !== undefined) throw this.#state.failure;
      const sequence = this.#nextSequence;
      encodeFrame('wal', sequence, this.#storeTag, payload, frame, this.#blockSize);
      // The WAL blocks are taken before the write is submitted: a checkpoint
      // written meanwhile replays from this commit if it is not applied yet.
      this.#walSpace.append(sequence, startBlock, blockCount);
      this.#nextSequence = sequence + 1;
      const hasData = writes.some((write) => write.dataWrites.length > 0);
      const io = this.#submit(writes, sequence, (this.#walStartBlock + startBlock) * this.#blockSize, frame, hasData, marker);
      // Rejections surface in #finish; keep them from being unhandled until then.
      io.catch(() => undefined);
      return {
        sequence,
        writes,
        operationCount,
        payloadBytes,
        recordCount,
        recordsDurable,
        marker,
        hasData,
        newPages,
        prepared,
        appliedWhenPrepared,
        repairsWhenPrepared,
        frameBuffer,
        io,
        done: Promise.resolve(),
      };
    } catch (error) {
      this.#tree.release(prepared);
      this.#giveFrameBuffer(frameBuffer);
      throw error;
    }
  }

  /**
   * Reads and pins the pages of the commit's keys, and checks that the next
   * checkpoint fits with them (and with the commits in flight); with no
   * room, drains the pipeline and checkpoints, then grows the store if it
   * can. Throws CommitRefused (a page could not be read) or ERR_STORE_FULL.
   */
  async #prepareWithRoom(
    writes: PendingWrite[],
    payloadLength: number,
  ): Promise<{ prepared: PreparedPaths; newPages: number; appliedWhenPrepared: number; repairsWhenPrepared: number }> {
    const keys = commitKeys(writes);
    // Attempts after a checkpoint or a growth (waiting for the commits in flight is not one).
    let attempt = 0;
    for (;;) {
      let paths: PreparedPaths;
      const appliedWhenPrepared = this.#appliedSequence;
      const repairsWhenPrepared = this.#tree.repairCount;
      try {
        paths = await this.#tree.prepare(keys.setKeys, keys.deleteKeys);
      } catch (error) {
        // Nothing is written yet: a page that cannot be read (an IO error, a
        // damaged page) refuses these writes, and the store goes on.
        throw new CommitRefused(error);
      }
      // No commit is written whose checkpoint could not be: the pages it
      // copies, and the pieces its new entries may split into. With commits
      // in flight the tree will have changed by the time this one applies
      // (their splits, a checkpoint freezing their pages), so every page on
      // its paths counts as a copy, and a level more for a new root.
      const pipelined = this.#inFlight.length > 0;
      const copies = pipelined ? paths.nodes.length + this.#tree.height + 2 : this.#tree.nodesToCopy(paths);
      const newPages = copies + Math.ceil((2 * payloadLength) / this.#pageCapacityBytes) + this.#tree.height + 1;
      let inFlightPages = 0;
      for (const commit of this.#inFlight) inFlightPages += commit.newPages;
      if (this.#space.checkpointFits(inFlightPages + newPages)) return { prepared: paths, newPages, appliedWhenPrepared, repairsWhenPrepared };
      this.#tree.release(paths);
      if (this.#inFlight.length > 0) {
        // The commits in flight hold room until they apply: try again after.
        await this.#drainInFlight();
        continue;
      }
      attempt++;
      if (attempt > 1) {
        // Blocks on their way to being free (the checkpoint's replaced
        // pages, trims in flight) make room, then growing the store, where
        // it can grow.
        const shortfall = this.#space.checkpointShortfallBlocks(newPages);
        if (attempt <= GROWTH_ATTEMPTS_MAX + 1 && (await this.makeRoom(shortfall))) continue;
        throw this.#growth.refusal(
          new StoreError(
            'ERR_STORE_FULL',
            `the store is full: this write's checkpoint may need ${newPages} more pages than the ${this.#space.allocatableBlockCount} free blocks hold${this.#space.notFreeYet()} (write fewer keys at a time, or delete keys in smaller batches)`,
          ),
          shortfall,
        );
      }
      // A checkpoint writes what is dirty and frees the pages it replaced: then try once more.
      await this.checkpoint();
    }
  }

  /**
   * Submits a commit's WAL write, and its flush; resolves when the commit is
   * durable (sync: true, or a durable marker) or written (sync: false).
   */
  async #submit(writes: PendingWrite[], sequence: number, position: number, frame: Buffer, hasData: boolean, marker: boolean): Promise<void> {
    this.#device.mark?.('wal', sequence);
    if (!this.#sync && !marker) {
      // Durable with the next fdatasync, which must find the extent data complete too.
      await allSettledOrThrow([this.#device.write(position, [frame]), ...writes.flatMap((write) => write.dataWrites)]);
      return;
    }
    if (!hasData) {
      // A commit of inline records needs only its own WAL blocks durable
      // (earlier commits are made durable by their own writes, and it is
      // acknowledged after them): one RWF_DSYNC write, faster than write +
      // fdatasync. Not for commits with extent data: on a device with FUA it
      // would make the WAL blocks durable without the data.
      await this.#device.writeDsync(position, [frame]);
      this.#flushCount++;
      return;
    }
    const dataWrites = writes.flatMap((write) => write.dataWrites);
    if (writes.every((write) => write.dataWrites.length === 0 || write.dataWritten === true)) {
      // The extent data is written already: the WAL write and the flush go
      // in one linked submission.
      await this.#device.writeAndSync(position, [frame]);
      this.#flushCount++;
      return;
    }
    // Extent data still in flight: the WAL write goes beside it (recovery
    // drops a commit after the last durable one whose data does not match
    // its checksum, so the WAL blocks may reach the disk first), and one
    // fdatasync after both makes the commit durable.
    await allSettledOrThrow([this.#device.write(position, [frame]), ...dataWrites]);
    this.#device.mark?.('flush', sequence);
    await this.#device.sync();
    this.#flushCount++;
  }

  /**
   * The second half of a commit, in sequence order: waits for its IO and
   * for the commit before it, then applies it to the tree and acknowledges
   * its writes. Never rejects: a failure fails the store and rejects the
   * writes of this commit (and, through the store's failure, of every later
   * one).
   */
  async #finish(commit: InFlightCommit, previous: Promise<void> | undefined): Promise<void> {
    let ioError: unknown;
    try {
      await commit.io;
    } catch (error) {
      ioError = error ?? new Error('a commit write failed');
    }
    if (previous !== undefined) await previous;
    let settled = false;
    try {
      if (ioError !== undefined) throw ioError;
      // An earlier commit failed: this one is not acknowledged (it may be
      // durable; recovery replays it then).
      if (this.#state.failure !== undefined) throw this.#state.failure;
      while (commit.appliedWhenPrepared !== this.#appliedSequence || commit.repairsWhenPrepared !== this.#tree.repairCount) {
        // Commits applied since this one's pages were prepared may have
        // split, merged or copied them, and a checkpoint's repair of the
        // tree (PageTree.repairUnderflows) may have moved a removed leaf's
        // keys to a page it then let go (found by a review): prepare again
        // on the tree as it is now (usually no IO: its pages are pinned or
        // dirty; a page can still be missing if a checkpoint let one go, or
        // if a merge or borrow gave a page on a delete's path a sibling
        // never loaded), until no repair ran during that. A failure here
        // comes after the commit may be durable: it fails the store.
        commit.appliedWhenPrepared = this.#appliedSequence;
        commit.repairsWhenPrepared = this.#tree.repairCount;
        const keys = commitKeys(commit.writes);
        const again = await this.#tree.prepare(keys.setKeys, keys.deleteKeys);
        this.#tree.release(commit.prepared);
        commit.prepared = again;
        if (this.#state.failure !== undefined) throw this.#state.failure;
      }
      this.#apply(commit, () => (settled = true));
      for (const write of commit.writes) write.resolve(write);
    } catch (error) {
      const failure = this.#state.fail(error);
      for (const write of commit.writes) write.reject(failure);
    } finally {
      try {
        if (!settled) this.#space.commitSettled(commit.operationCount, commit.payloadBytes);
        this.#tree.release(commit.prepared);
        this.#giveFrameBuffer(commit.frameBuffer);
        if (this.#inFlight[0] !== commit) throw new Error(`ringstore: commit ${commit.sequence} settled out of order`);
        this.#inFlight.shift();
      } catch (error) {
        // A broken invariant (a bug): the store fails, so the loop woken
        // below ends through its failure path instead of waiting for a
        // commit that stays in flight, and `done` rejects.
        this.#state.fail(error);
        throw error;
      } finally {
        this.#wakeLoop();
      }
    }
  }

  /** Applies a durable (or, with sync: false, written) commit to the tree, synchronously: a reader sees all of it or none. */
  #apply(commit: InFlightCommit, onSettled: () => void): void {
    const { sequence, writes } = commit;
    if (sequence !== this.#appliedSequence + 1) throw new Error(`ringstore: commit ${sequence} applied after ${this.#appliedSequence}`);
    // A commit the tree's key count cannot cover is refused whole (a wrong count: PageTree.checkCountCovers).
    let deleteCount = 0;
    for (const write of writes) for (const operation of write.operations) if (operation.value === undefined) deleteCount++;
    this.#tree.checkCountCovers(commitKeyOperations(writes), deleteCount);
    this.#appliedSequence = sequence;
    this.#recordedDurableSequence = Math.max(this.#recordedDurableSequence, commit.recordsDurable);
    // A durable marker commit (sync: false flush) was written with RWF_DSYNC
    // after an fdatasync of everything before it: all of it is durable now.
    if (commit.marker && !commit.hasData) this.#durableSequence = Math.max(this.#durableSequence, this.#flushedBeforeMarker(sequence));
    if (this.#sync) this.#durableSequence = sequence;

    // Apply in record order; collect what the commit unlinked.
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
    this.#space.commitSettled(commit.operationCount, commit.payloadBytes);
    onSettled();
    this.#commits++;
    this.#committedRecords += commit.recordCount;
    if (unlinked.length > 0) {
      if (this.#sync) this.#space.release(unlinked, this.#appliedSequence);
      else this.#space.releaseWhenDurable(sequence, unlinked);
    }
    if (!this.#sync) this.#scheduleDeferredSync();
    if (!this.#checkpointer.running && this.#policy.due()) {
      void this.checkpoint().catch(() => undefined);
    }
    this.#idleCheckpoint.noteCommit();
  }

  /** Resolves when every commit in flight now has settled. */
  async #drainInFlight(): Promise<void> {
    const last = this.#inFlight[this.#inFlight.length - 1];
    if (last !== undefined) await last.done;
  }

  /** Whether recovery, replaying the WAL, should write a checkpoint before the next commit (CheckpointPolicy.replayDue). */
  replayCheckpointDue(): boolean {
    return this.#policy.replayDue();
  }

  /**
   * An aligned buffer of at least `sizeBytes` for a commit's frame: one per
   * commit in flight, reused (the free list holds at most
   * COMMIT_PIPELINE_DEPTH) and grown by doubling.
   */
  #takeFrameBuffer(sizeBytes: number): Buffer {
    const free = this.#freeFrameBuffers.pop();
    if (free !== undefined && free.length >= sizeBytes) return free;
    let capacity = Math.max(this.#blockSize * 16, free?.length ?? 0);
    while (capacity < sizeBytes) capacity *= 2;
    return allocAligned(capacity, Math.max(this.#device.ioAlignment, 4096));
  }

  /** A commit's frame buffer, no longer under IO. */
  #giveFrameBuffer(buffer: Buffer): void {
    if (this.#freeFrameBuffers.length < COMMIT_PIPELINE_DEPTH) this.#freeFrameBuffers.push(buffer);
  }

  readonly #freeFrameBuffers: Buffer[] = [];

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

  /**
   * fdatasync now; then everything written so far is durable. One runs at
   * a time: callers that find one running wait for it, and then the first
   * of them to run starts the next if commits were applied meanwhile, the
   * others wait for that one (two flushes at once would do the work twice,
   * and close() would wait for only the second).
   */
  /** One fdatasync for the commits through `through`; the store fails with it if it fails. */
  async #flushThrough(through: number): Promise<void> {
    // Never a flush after the store failed: after a failed fdatasync a
    // second may report success for the same lost writes (found by a
    // review: a later flush() and the deferred timer each sent one).
    if (this.#state.failure !== undefined) throw this.#state.failure;
    try {
      this.#device.mark?.('flush', through);
      await this.#device.sync();
      this.#flushCount++;
    } catch (error) {
      throw this.#state.fail(error);
    }
    // A failure met while it ran (a checkpoint's flush beside it failing):
    // nothing is recorded durable, nor released, from here (a review).
    if (this.#state.failure !== undefined) throw this.#state.failure;
    this.#durableSequence = Math.max(this.#durableSequence, through);
    this.#space.durableThrough(through, this.#appliedSequence);
  }

  async syncNow(): Promise<void> {
    for (let running = this.#deferredSyncPromise; running !== undefined; running = this.#deferredSyncPromise) {
      await running;
      if (this.#appliedSequence === this.#durableSequence) return;
    }
    const syncing = this.#flushThrough(this.#appliedSequence);
    this.#deferredSyncPromise = syncing;
    try {
      await syncing;
    } finally {
      if (this.#deferredSyncPromise === syncing) this.#deferredSyncPromise = undefined;
    }
  }
}

/**
 * The keys a commit's writes set and those they delete, for
 * PageTree.prepare (a delete may merge its leaf with a sibling: it pins
 * those pages too). Plain loops: on the path of every commit, where
 * flatMap, filter and map cost ~5 µs a commit on a slow host (profiled,
 * docs/benchmarks.md, "Session 33").
 */
function commitKeys(writes: readonly PendingWrite[]): { setKeys: string[]; deleteKeys: string[] } {
  const setKeys: string[] = [];
  const deleteKeys: string[] = [];
  for (const write of writes) {
    for (const operation of write.operations) {
      if (operation.value === undefined) deleteKeys.push(operation.keyString);
      else setKeys.push(operation.keyString);
    }
  }
  return { setKeys, deleteKeys };
}

/** A commit's operations in order, as keys and whether each deletes (PageTree.checkCountCovers). */
function* commitKeyOperations(writes: readonly { operations: readonly PendingOperation[] }[]): Generator<{ keyString: string; deletes: boolean }> {
  for (const write of writes) for (const operation of write.operations) yield { keyString: operation.keyString, deletes: operation.value === undefined };
}
