// Checkpointer: incremental checkpoints and superblock writes.
//
// A checkpoint writes the pages the tree dirtied since the last one — each
// to a fresh block, children before parents, never over a page of the
// durable tree — and the free set, flushes, then writes the next superblock
// generation (two of the four slots, one flush) naming the new root, the
// free set, the newest applied commit S and the WAL block where commit S+1
// starts. Only then are the replaced pages, the previous free set and the
// WAL space of commits up to S released. Its cost follows the pages
// dirtied, not the size of the store (the free set aside: one bit a block).
//
// Commits go on while a checkpoint is written: the tree copies a page the
// checkpoint froze before changing it.
//
// It owns the current superblock; the journal starts checkpoints (when the
// WAL fills up, or dirty pages grow) and the façade asks for them
// (checkpoint(), close()).
import { FREE_SET_EXTENTS_MAX } from '../format/constants.js';
import type { Extent } from '../format/extent.js';
import { encodeFrame, frameBlockCount } from '../format/frame.js';
import { encodeSuperblock, freeSetPayloadBytes, superblockSlotBlock, superblockSlotsFor, type Superblock } from '../format/superblock.js';
import { allocAligned } from '../native/aligned_buffer.js';
import type { BlockDevice } from './block_device.js';
import { FREE_BITMAP_BITS_MAX } from './free_bitmap.js';
import { PageUnreadable, type PageRef, type PageTree, type TreeNode } from './page_tree.js';
import type { Space } from './space.js';
import { StoreError } from './store_error.js';
import type { StoreState } from './store_state.js';
import type { TreePages } from './tree_pages.js';
import type { WalSpace } from './wal_space.js';

/** Pages a checkpoint encodes between yields to the event loop (a few ms of work), so commits go on meanwhile. */
const CHECKPOINT_ENCODE_SLICE_PAGES = 64;
/** Pages a checkpoint encodes and writes at a time (a batch: 256 × 4 KiB = 1 MiB of buffers). */
export const CHECKPOINT_BATCH_PAGES = 256;
/**
 * Bytes of page buffers close()'s checkpoint has written and not yet seen
 * complete, at most (at least one batch, whatever the page size): encoding
 * goes on while writes wait on the device, behind a flush too (a device may
 * hold every write while it flushes: docs/benchmarks.md, "Session 41").
 */
const CHECKPOINT_BYTES_IN_FLIGHT_MAX = 4 << 20;
/** Buffers of one vector write (IOV_MAX). */
const WRITE_BUFFERS_MAX = 1024;
/**
 * Batches of pages written between two flushes a checkpoint starts while it
 * goes on encoding and writing (flush-behind). A device's flush costs in
 * proportion to what was written since the last one (docs/benchmarks.md,
 * "Session 41"): one flush at the end, after every page, is time the CPU
 * waits with nothing to do; flushes along the way overlap it with the
 * encoding of the batches after them.
 */
export const CHECKPOINT_FLUSH_BEHIND_BATCHES = 4;

/** What a checkpoint needs of the journal: the newest applied commit, and a way to make it durable. */
export interface AppliedCommits {
  /** Highest sequence written and applied to the tree. */
  readonly appliedSequence: number;
  /** fdatasync now; then everything applied so far is durable. */
  syncNow(): Promise<void>;
  /**
   * Durable writes and flushes of commits completed so far. Where they
   * flush the device's whole cache (an fdatasync; an O_DSYNC write on a
   * device without FUA, as virtio disks are here) they flush a running
   * checkpoint's pages too, and its flush-behind has nothing to add.
   */
  readonly flushCount: number;
}

export interface CheckpointerParts {
  device: BlockDevice;
  /** The superblock recovery found (or format wrote). */
  superblock: Superblock;
  /** Whether every applied commit is durable already (sync: true). */
  sync: boolean;
  tree: PageTree;
  pages: TreePages;
  /** Blocks of a tree page. */
  pageBlocks: number;
  walSpace: WalSpace;
  space: Space;
  state: StoreState;
}

export class Checkpointer {
  readonly #device: BlockDevice;
  readonly #blockSize: number;
  readonly #sync: boolean;
  readonly #tree: PageTree;
  readonly #pages: TreePages;
  readonly #pageBlocks: number;
  readonly #walSpace: WalSpace;
  readonly #space: Space;
  readonly #state: StoreState;
  #superblock: Superblock;
  /** this.#superblock.clean, kept in step by #setSuperblock (see the getter). */
  #clean: boolean;
  #checkpointing: Promise<void> | undefined;
  /** Pages of the running checkpoint's plan, and how many of them are written (0 / 0 when none runs). */
  #plannedPages = 0;
  #writtenPages = 0;
  /** Whether the running checkpoint has its plan (and #plannedPages). */
  #planned = false;
  /** Waiters of progressed(): woken at each written batch and when the checkpoint ends. */
  #progressWaiters: (() => void)[] = [];
  #checkpoints = 0;
  #pagesWritten = 0;

  constructor(parts: CheckpointerParts) {
    this.#device = parts.device;
    this.#superblock = parts.superblock;
    this.#clean = parts.superblock.clean;
    this.#blockSize = parts.superblock.blockSize;
    this.#sync = parts.sync;
    this.#tree = parts.tree;
    this.#pages = parts.pages;
    this.#pageBlocks = parts.pageBlocks;
    this.#walSpace = parts.walSpace;
    this.#space = parts.space;
    this.#state = parts.state;
  }

  /** The newest durable superblock. */
  get superblock(): Readonly<Superblock> {
    return this.#superblock;
  }

  /**
   * Whether the newest durable superblock carries the clean mark: read by
   * every commit (Journal), so kept as a field of its own. Each checkpoint
   * makes a superblock object of a new hidden class as V8 widens its
   * fields' types, and a read of `superblock.clean` in the commit path
   * deoptimized it at each new one (`--trace-deopt`: "wrong map" in
   * Journal's #begin, whose every recompile took 25–55 ms of V8's helper
   * threads; docs/benchmarks.md, session 54).
   */
  get clean(): boolean {
    return this.#clean;
  }

  /** Checkpoints written since open. */
  get checkpointCount(): number {
    return this.#checkpoints;
  }

  /** Tree pages written by checkpoints since open. */
  get pagesWritten(): number {
    return this.#pagesWritten;
  }

  /** Whether a checkpoint is being written. */
  get running(): boolean {
    return this.#checkpointing !== undefined;
  }

  /**
   * The share of the running checkpoint's pages written so far, 0 to 1 (1
   * once its pages are written and it flushes and writes its superblock);
   * 0 when none runs. Commits are paced by it (journal.ts, backpressure).
   */
  get progress(): number {
    // Before its plan (a sync: false checkpoint flushes first), or for a
    // superblock write that is no checkpoint: nothing written yet.
    if (this.#checkpointing === undefined || !this.#planned) return 0;
    return this.#plannedPages === 0 ? 1 : this.#writtenPages / this.#plannedPages;
  }

  /** Resolves when the running checkpoint has written another batch of pages, or ended; at once if none runs. Never rejects. */
  progressed(): Promise<void> {
    if (this.#checkpointing === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => this.#progressWaiters.push(resolve));
  }

  #wakeProgressWaiters(): void {
    const waiters = this.#progressWaiters;
    this.#progressWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Settles when the checkpoint being written has (never rejects); undefined if none is. */
  settled(): Promise<void> | undefined {
    return this.#checkpointing?.catch(() => undefined);
  }

  /** Blocks of the free-set frame of a store of this size. */
  get freeSetFrameBlocks(): number {
    return frameBlockCount(freeSetPayloadBytes(this.#superblock.blockCount - this.#superblock.dataStartBlock), this.#blockSize);
  }

  /**
   * Writes a checkpoint that covers `journal`'s newest applied commit (at
   * it or later), after the one being written if that one does not.
   * Rejects with ERR_STORE_FULL if there is no room for it, or with
   * PageUnreadable if a page its repair of underflowed nodes needed could
   * not be read (the store goes on after either), or with the store's
   * failure.
   */
  run(journal: AppliedCommits): Promise<void> {
    const target = journal.appliedSequence;
    const running = this.#checkpointing;
    if (running === undefined) return this.#start(journal);
    // One is being written, frozen at some earlier commit maybe: wait for it,
    // then write another if it does not cover `target` (close() must leave
    // no commit outside the checkpoint).
    return running.then(() => (this.#superblock.checkpointSeq >= target ? undefined : this.run(journal)));
  }

  #start(journal: AppliedCommits): Promise<void> {
    this.#checkpointing ??= this.#checkpoint(journal)
      .catch((error: unknown) => {
        // No room is an answer, not a failure: nothing was written that a
        // superblock names. Nor is a page the repair could not read (found
        // by a review: one failed read stopped the store); nothing is
        // written before the repair. Write and flush errors stop the store.
        if ((error instanceof StoreError && error.code === 'ERR_STORE_FULL') || error instanceof PageUnreadable) throw error;
        throw this.#state.fail(error);
      })
      .finally(() => this.#ended());
    return this.#checkpointing;
  }

  /** The checkpoint (or superblock write) in #checkpointing ended, however. */
  #ended(): void {
    this.#checkpointing = undefined;
    this.#plannedPages = 0;
    this.#writtenPages = 0;
    this.#planned = false;
    this.#wakeProgressWaiters();
  }

  async #checkpoint(journal: AppliedCommits): Promise<void> {
    // A failed store writes nothing more: a checkpoint asked for before the
    // failure (checkpoint() waited for the commits ahead of it), or queued
    // behind one it failed, does not start (found by a review: one ran on a
    // sync: false store whose fdatasync had failed, and its free set kept
    // the blocks of the checkpoint that failed as used: 2 blocks leaked, and
    // verifyIntegrity after reopen reported ERR_STORE_CORRUPT).
    if (this.#state.failure !== undefined) throw this.#state.failure;
    // An empty leaf or a branch of one child that a delete left is no page
    // (PageTree.#rebalance): repaired first, until none is left at a moment
    // with no await before the tree is frozen (commits may apply during the
    // repair's reads).
    for (;;) {
      while (this.#tree.underflowCount > 0) await this.#tree.repairUnderflows();
      if (!this.#sync) await journal.syncNow();
      if (this.#tree.underflowCount === 0) break;
    }
    const sequence = journal.appliedSequence;
    // No commit since the last checkpoint: no dirty page, nothing replaced.
    if (sequence === this.#superblock.checkpointSeq) return;

    // ---- One synchronous step: freeze the tree at `sequence`, allocate
    // every block the checkpoint writes, and take the free set. No commit
    // applies in between, so the free set is exactly the complement of what
    // the frozen tree (and this checkpoint's own blocks) reference.
    const previous = this.#superblock;
    const blockSize = this.#blockSize;
    const dataBlockCount = previous.blockCount - previous.dataStartBlock;
    const replayBlock = this.#walSpace.replayBlockAfter(sequence);
    const plan = this.#tree.beginCheckpoint();
    const frameBytes = freeSetPayloadBytes(dataBlockCount);
    const frameBlocks = frameBlockCount(frameBytes, blockSize);
    const blocks = this.#space.allocateCheckpoint(plan.dirtyNodes.length, frameBlocks);
    if (blocks === undefined) {
      plan.abort();
      throw new StoreError(
        'ERR_STORE_FULL',
        `no room for a checkpoint of ${plan.dirtyNodes.length} pages and a ${frameBlocks}-block free set in at most ${FREE_SET_EXTENTS_MAX} pieces (${this.#space.allocatableBlockCount} blocks free in ${this.#space.allocatableRunCount} pieces)`,
      );
    }
    // Released once the new superblock is durable: the pages this
    // checkpoint replaces (no longer in its tree) and the previous free set.
    const releasedWithIt: Extent[] = [...pageRuns(plan.garbage, this.#pageBlocks), ...previous.freeSetExtents];
    const payload = this.#space.checkpointFreeSetPayload(dataBlockCount, releasedWithIt);

    // ---- Then: encode and write the pages, the free set; flush; superblock.
    const assigned = new Map<TreeNode, PageRef>();
    const writes: Promise<void>[] = [];
    this.#plannedPages = plan.dirtyNodes.length;
    this.#writtenPages = 0;
    this.#planned = true;
    // Batches written while the next ones are encoded: the device works
    // while the CPU does. Their writes are watched from the start
    // (allSettled): one that fails while the next batch is encoded is no
    // unhandled rejection; and their pages count as written (progress) as
    // soon as they are, not once the next batch is encoded.
    // Deep only for close()'s checkpoint, which no commit follows: a
    // commit's WAL write queues behind every page write in flight (4 MiB of
    // them cost a 1 M-key random load 4 %, even held back while commits
    // flushed: docs/benchmarks.md, "Session 41"), so otherwise one batch is
    // written while the next is encoded.
    const batchesInFlightDeep = Math.max(1, Math.floor(CHECKPOINT_BYTES_IN_FLIGHT_MAX / (CHECKPOINT_BATCH_PAGES * this.#pageBlocks * blockSize)));
    const writing: { batch: { block: number; buffer: Buffer }[]; settled: Promise<PromiseSettledResult<void>[]> }[] = [];
    let encoding: { block: number; buffer: Buffer }[] = [];
    const giveBack = (batch: readonly { buffer: Buffer }[]): void => {
      for (const { buffer } of batch) this.#pages.pool.give(buffer);
    };
    // Flushes started along the way, each waited for before the final one.
    // A failure stops the store at once, not once the last page is written:
    // no write is acknowledged after a failed flush, and the checkpoint
    // fails at its next batch. A failed fdatasync is never followed by
    // another for the same writes (the kernel may report success for them).
    const flushesBehind: Promise<void>[] = [];
    let flushBehindFailure: unknown;
    let batchesSinceFlush = 0;
    let commitFlushesSeen = journal.flushCount;
    /** Waits for the oldest batch in flight; with `pagesFollow`, starts a flush behind every few. */
    const finishOldest = async (pagesFollow: boolean): Promise<void> => {
      const done = writing[0];
      const outcomes = await done.settled;
      writing.shift();
      giveBack(done.batch);
      for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
      if (flushBehindFailure !== undefined) throw flushBehindFailure;
      // Nor does it go on (or flush) once the store failed for another
      // reason, a commit's failed fdatasync: it could name nothing anyway.
      if (this.#state.failure !== undefined) throw this.#state.failure;
      // None once every page is written: the final flush follows at once.
      if (!pagesFollow || ++batchesSinceFlush < CHECKPOINT_FLUSH_BEHIND_BATCHES) return;
      batchesSinceFlush = 0;
      // Nor while commits flush: theirs take these pages along (an
      // fdatasync does; an RWF_DSYNC write does on a device without FUA),
      // and on a device that holds writes behind a flush one more would
      // stall them. Only a hint: the final flush never depends on it.
      const commitFlushes = journal.flushCount;
      if (commitFlushes !== commitFlushesSeen) {
        commitFlushesSeen = commitFlushes;
        return;
      }
      this.#device.mark?.('flush', sequence);
      flushesBehind.push(
        this.#device.sync().catch((error: unknown) => {
          flushBehindFailure ??= error ?? new Error('ringstore: a checkpoint flush failed without an error');
          this.#state.fail(flushBehindFailure);
        }),
      );
    };
    try {
      this.#device.mark?.('checkpoint', sequence);
      for (let first = 0; first < plan.dirtyNodes.length; first += CHECKPOINT_BATCH_PAGES) {
        const last = Math.min(plan.dirtyNodes.length, first + CHECKPOINT_BATCH_PAGES);
        const batch: { block: number; buffer: Buffer }[] = [];
        encoding = batch;
        for (let i = first; i < last; i++) {
          const node = plan.dirtyNodes[i];
          const block = blocks.pages[i].startBlock;
          const buffer = this.#pages.pool.take();
          // A leaf by difference from the version of it on disk (TreePages.encodeLeaf).
          // A branch from its records, its children's new refs written into them (TreePages.encodeBranch).
          const crc =
            node.kind === 'leaf'
              ? this.#pages.encodeLeaf(node, block, sequence, buffer)
              : this.#pages.encodeBranch(plan.branchPage(node, (child) => assigned.get(child)), node.level, block, sequence, buffer);
          assigned.set(node, { block, crc });
          batch.push({ block, buffer });
          // Encoding is CPU work: let commits and reads run between slices.
          if ((i + 1) % CHECKPOINT_ENCODE_SLICE_PAGES === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        }
        const batchesInFlightMax = this.#state.closing ? batchesInFlightDeep : 1;
        while (writing.length >= batchesInFlightMax) await finishOldest(true);
        // Checked here too: with several batches in flight, finishOldest may
        // not have run since the store failed (found by a review).
        if (flushBehindFailure !== undefined) throw flushBehindFailure;
        if (this.#state.failure !== undefined) throw this.#state.failure;
        // Commits run between batches: mark this IO as the checkpoint's again.
        this.#device.mark?.('checkpoint', sequence);
        const batchWrites = this.#writePages(batch);
        writes.push(...batchWrites);
        encoding = [];
        writing.push({
          batch,
          settled: Promise.allSettled(batchWrites).then((outcomes) => {
            if (outcomes.every((outcome) => outcome.status === 'fulfilled')) {
              this.#writtenPages += batch.length;
              this.#wakeProgressWaiters();
            }
            return outcomes;
          }),
        });
      }
      while (writing.length > 0) await finishOldest(false);
      const frame = allocAligned(frameBlocks * blockSize, Math.max(this.#device.ioAlignment, 4096));
      encodeFrame('free set', sequence, previous.storeTag, payload, frame, blockSize);
      this.#device.mark?.('checkpoint', sequence);
      let offset = 0;
      for (const extent of blocks.frame) {
        const bytes = frame.subarray(offset, offset + extent.blockCount * blockSize);
        writes.push(this.#device.write(extent.startBlock * blockSize, [bytes]));
        offset += bytes.length;
      }
      await Promise.all(writes);
      await Promise.all(flushesBehind);
      if (flushBehindFailure !== undefined) throw flushBehindFailure;
      if (this.#state.failure !== undefined) throw this.#state.failure;
      this.#device.mark?.('flush', sequence);
      await this.#device.sync();
    } catch (error) {
      // No superblock names these blocks: they are free again once every
      // write to them has settled (the store fails anyway); nor does a
      // flush outlive the checkpoint (close() shuts the device after it).
      await Promise.allSettled([...writes, ...flushesBehind]);
      // The buffers of the batch being encoded and of those being written (settled now) go back too.
      giveBack(encoding);
      for (const { batch } of writing.splice(0)) giveBack(batch);
      this.#space.freeCheckpoint([...blocks.pages, ...blocks.frame]);
      plan.abort();
      throw error;
    }
    const root = plan.rootRef((node) => assigned.get(node));
    const next: Superblock = {
      ...previous,
      generation: previous.generation + 1,
      checkpointSeq: sequence,
      walReplayBlock: replayBlock,
      freeSetByteLength: payload.length,
      freeSetBlockCount: frameBlocks,
      freeSetExtents: blocks.frame,
      treeRoot: root === undefined ? undefined : { block: root.block, crc: root.crc, level: plan.level },
      keyCount: plan.keyCount,
      clean: false,
    };
    try {
      // Nor does one the store failed under while it wrote its pages name them.
      if (this.#state.failure !== undefined) throw this.#state.failure;
      await this.writeSuperblockSlots(next, superblockSlotsFor(next.generation));
    } catch (error) {
      // Which superblock is durable is unknown: the store fails and keeps
      // the blocks (reopening decides).
      plan.abort();
      throw error;
    }
    this.#setSuperblock(next);
    plan.complete(assigned);
    this.#checkpoints++;
    this.#pagesWritten += plan.dirtyNodes.length;
    this.#walSpace.releaseThrough(sequence);
    // Readers of older snapshots may still read them: the space frees them
    // once those reads end (read epochs), without trims (see Space.release).
    if (releasedWithIt.length > 0) this.#space.release(releasedWithIt, journal.appliedSequence, false);
  }

  /**
   * Writes pages, one write per run of consecutive blocks. A checkpoint's
   * pages come from the allocator in block order: into new space, a few
   * long runs; into the pages earlier checkpoints freed, scattered where
   * leaves were, mostly one write a page (19 168 writes for 24 797 pages
   * at 10 M keys: docs/benchmarks.md, "Session 30").
   */
  #writePages(pages: { block: number; buffer: Buffer }[]): Promise<void>[] {
    const sorted = [...pages].sort((a, b) => a.block - b.block);
    const writes: Promise<void>[] = [];
    let run: { block: number; buffer: Buffer }[] = [];
    const flush = (): void => {
      if (run.length === 0) return;
      writes.push(this.#device.write(run[0].block * this.#blockSize, run.map((page) => page.buffer)));
      run = [];
    };
    for (const page of sorted) {
      const previous = run[run.length - 1];
      if (previous !== undefined && (previous.block + this.#pageBlocks !== page.block || run.length === WRITE_BUFFERS_MAX)) flush();
      run.push(page);
    }
    flush();
    return writes;
  }

  /**
   * Records a clean close: the checkpoint covers `lastSequence`, the last
   * commit given a sequence (Journal.lastSequence: applied, or with its WAL
   * write in flight), and no commit will be written after it, so the next
   * open need not read the WAL (recovery.ts). Does nothing if a commit is
   * outside the checkpoint: one still being written counts, though close()
   * waits for them — the flag must never be durable with a WAL frame after it.
   */
  async markClean(lastSequence: number): Promise<void> {
    if (this.#superblock.clean || this.#superblock.checkpointSeq !== lastSequence) return;
    await this.#rewriteSuperblock(true);
  }

  /**
   * Clears the clean mark, durably, before the first commit after an open
   * that found it: otherwise a crash after that commit would leave a
   * superblock telling recovery to skip the WAL that holds it.
   */
  async clearClean(): Promise<void> {
    if (!this.#clean) return;
    await this.#rewriteSuperblock(false);
  }

  /** Makes `next` the newest durable superblock. */
  #setSuperblock(next: Superblock): void {
    this.#superblock = next;
    this.#clean = next.clean;
  }

  #rewriteSuperblock(clean: boolean): Promise<void> {
    return this.#exclusively(async () => {
      if (this.#superblock.clean === clean) return;
      const next: Superblock = { ...this.#superblock, generation: this.#superblock.generation + 1, clean };
      await this.writeSuperblockSlots(next, superblockSlotsFor(next.generation));
      this.#setSuperblock(next);
    });
  }

  /**
   * Makes a larger data region durable, after the device has grown to hold
   * it: a flush (the file's new length is metadata fdatasync persists),
   * then the next superblock generation naming `blockCount` blocks with the
   * same checkpoint. That checkpoint's free set describes the smaller
   * region, and the blocks past it read as free (format/free_set.ts); the
   * allocator gets them once that superblock is durable, so nothing is
   * ever written to them before. A crash before that superblock leaves the old store in a
   * longer file, which opens as it was.
   */
  grow(blockCount: number): Promise<void> {
    return this.#exclusively(async () => {
      const previous = this.#superblock;
      if (blockCount <= previous.blockCount) return;
      if (blockCount * previous.blockSize > this.#device.sizeBytes) throw new Error(`ringstore: growing the store to ${blockCount} blocks on a device of ${this.#device.sizeBytes} bytes`);
      // Before anything is durable: no open could load a free set larger than this (StoreGrowth keeps within it).
      if (blockCount - previous.dataStartBlock > FREE_BITMAP_BITS_MAX) throw new Error(`ringstore: growing the store to ${blockCount} blocks, past the ${FREE_BITMAP_BITS_MAX} data blocks a free set describes`);
      this.#device.mark?.('flush');
      await this.#device.sync();
      const next: Superblock = { ...previous, generation: previous.generation + 1, blockCount };
      await this.writeSuperblockSlots(next, superblockSlotsFor(next.generation));
      // In the same step as the superblock becomes current, before the next
      // checkpoint can start: a checkpoint that took the larger superblock
      // with the allocator still at the old size would record the added
      // blocks as in use, leaking them for good.
      this.#setSuperblock(next);
      this.#space.grow(blockCount, this.freeSetFrameBlocks);
    });
  }

  /**
   * Runs `task` — a superblock write outside a checkpoint — where a
   * checkpoint would run, once none runs: two writers of the next
   * generation would both write it. A failure fails the store (which
   * superblock is durable is unknown).
   */
  #exclusively(task: () => Promise<void>): Promise<void> {
    const settled = this.#checkpointing;
    if (settled !== undefined) return settled.catch(() => undefined).then(() => this.#exclusively(task));
    const running = task()
      .catch((error: unknown) => {
        throw this.#state.fail(error);
      })
      .finally(() => this.#ended());
    this.#checkpointing = running;
    return running;
  }

  /** Zeroes WAL blocks, durably: the commits they belonged to are gone for good. */
  async eraseWalBlocks(walBlocks: number[]): Promise<void> {
    const zero = allocAligned(this.#blockSize, Math.max(this.#device.ioAlignment, 4096));
    this.#device.mark?.('erase');
    await Promise.all(walBlocks.map((walBlock) => this.#device.write((this.#superblock.walStartBlock + walBlock) * this.#blockSize, [zero])));
    this.#device.mark?.('flush');
    await this.#device.sync();
  }

  /** Writes `superblock` into `slots` (of the four) and flushes once: durable on return. */
  async writeSuperblockSlots(superblock: Superblock, slots: readonly number[]): Promise<void> {
    const block = allocAligned(this.#blockSize, Math.max(this.#device.ioAlignment, 4096));
    encodeSuperblock(superblock, block);
    this.#device.mark?.('superblock', superblock.generation);
    await Promise.all(slots.map((slot) => this.#device.write(superblockSlotBlock(slot, superblock.walStartBlock, superblock.walBlockCount) * this.#blockSize, [block])));
    await this.#device.sync();
  }
}

/**
 * The blocks of `pages` as runs of adjacent pages, in block order. The
 * pages a checkpoint replaces were mostly written side by side by the one
 * before, and the space frees each extent it is given through the
 * allocator's tree and the block cache: freeing them page by page was
 * ~7-10 µs a page written in the probe's profiles, a fifth to a third of a
 * checkpoint's CPU.
 */
function pageRuns(pages: readonly PageRef[], pageBlocks: number): Extent[] {
  const blocks = pages.map((ref) => ref.block).sort((a, b) => a - b);
  const runs: Extent[] = [];
  for (const block of blocks) {
    const last = runs[runs.length - 1];
    // A block given twice stays two extents: the allocator reports the double free.
    if (last !== undefined && last.startBlock + last.blockCount === block) last.blockCount += pageBlocks;
    else runs.push({ startBlock: block, blockCount: pageBlocks });
  }
  return runs;
}
