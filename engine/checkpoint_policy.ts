// CheckpointPolicy: when a checkpoint starts, and how far commits may run
// ahead of the one being written. The journal asks it after every commit it
// applies (due), before every commit it starts (dirtyAllowance), and
// recovery asks it between the commits it replays (replayDue). It decides
// from what it reads — the WAL's fill, the tree's dirty pages, the free
// space and the running checkpoint's progress — and changes nothing.
import type { Checkpointer } from './checkpointer.js';
import type { PageTree } from './page_tree.js';
import type { Space } from './space.js';
import type { WalSpace } from './wal_space.js';

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
/**
 * An idle store (IdleCheckpoint) writes a checkpoint only with at least this
 * many dirty pages, or with its WAL at least IDLE_CHECKPOINT_WAL_FILL full:
 * a trickle of writes with pauses between them then costs one checkpoint (a
 * free-set frame, two superblock copies and two flushes besides its pages)
 * for every 64 pages it dirties, not one a pause. Fewer pages cost a close()
 * a few milliseconds of encoding and writes besides the flush it makes anyway.
 */
export const IDLE_CHECKPOINT_DIRTY_PAGES_MIN = 64;
/** See IDLE_CHECKPOINT_DIRTY_PAGES_MIN: a WAL this full is replayed at a crash-open even when its commits dirtied few pages (overwrites of the same keys). */
export const IDLE_CHECKPOINT_WAL_FILL = CHECKPOINT_WAL_FILL / 8;
export interface CheckpointPolicyParts {
  readonly walSpace: WalSpace;
  readonly tree: PageTree;
  readonly space: Space;
  readonly checkpointer: Checkpointer;
  /** Blocks a page takes. */
  readonly pageBlocks: number;
  /** The dirty pages' budget: a checkpoint starts at it. */
  readonly dirtyPagesMax: number;
}

export class CheckpointPolicy {
  readonly #walSpace: WalSpace;
  readonly #tree: PageTree;
  readonly #space: Space;
  readonly #checkpointer: Checkpointer;
  readonly #pageBlocks: number;
  readonly #dirtyPagesMax: number;

  constructor(parts: CheckpointPolicyParts) {
    if (!Number.isSafeInteger(parts.dirtyPagesMax) || parts.dirtyPagesMax < 1) throw new RangeError(`dirtyPagesMax must be a positive integer, got ${parts.dirtyPagesMax}`);
    this.#walSpace = parts.walSpace;
    this.#tree = parts.tree;
    this.#space = parts.space;
    this.#checkpointer = parts.checkpointer;
    this.#pageBlocks = parts.pageBlocks;
    this.#dirtyPagesMax = parts.dirtyPagesMax;
  }

  /**
   * When a checkpoint starts on its own: the WAL half full, the dirty pages
   * past their memory budget, or past a share of the free space (so the
   * checkpoint that writes them always fits).
   */
  due(): boolean {
    if (this.#walSpace.fill >= CHECKPOINT_WAL_FILL) return true;
    const dirty = this.#tree.dirtyNodeCountMax;
    if (dirty >= this.#dirtyPagesMax) return true;
    return this.#pastFreeSpaceShare(dirty);
  }

  /**
   * Whether an idle store (IdleCheckpoint) should write a checkpoint: none
   * running, and enough not written yet to be worth one (see
   * IDLE_CHECKPOINT_DIRTY_PAGES_MIN).
   */
  idleDue(): boolean {
    if (this.#checkpointer.running) return false;
    return this.#tree.dirtyNodeCountMax >= IDLE_CHECKPOINT_DIRTY_PAGES_MIN || this.#walSpace.fill >= IDLE_CHECKPOINT_WAL_FILL;
  }

  /**
   * Whether recovery, replaying the WAL, should write a checkpoint before
   * the next commit: the dirty pages past REPLAY_DIRTY_BUDGET_FACTOR times
   * their memory budget, or past a share of the free space (the WAL fill
   * does not matter: replay adds nothing to it).
   */
  replayDue(): boolean {
    const dirty = this.#tree.dirtyNodeCountMax;
    return dirty >= REPLAY_DIRTY_BUDGET_FACTOR * this.#dirtyPagesMax || this.#pastFreeSpaceShare(dirty);
  }

  /**
   * Pages commits may have dirtied since the running checkpoint froze the
   * tree: one budget at its start, growing with the share of its pages
   * written to BACKPRESSURE_DIRTY_FACTOR budgets at its end. Commits that
   * waited for a whole checkpoint once they reached the full allowance
   * came in bursts with stalls of a checkpoint's length between them (a
   * random-order load of 1 M keys: batch p99 692 ms at a p50 of 19 ms);
   * paced, each waits for a batch of its pages at most. The total dirtied
   * per checkpoint, and so the write amplification, stays the same.
   */
  dirtyAllowance(): number {
    return this.#dirtyPagesMax * (1 + (BACKPRESSURE_DIRTY_FACTOR - 1) * this.#checkpointer.progress);
  }

  #pastFreeSpaceShare(dirtyPages: number): boolean {
    return dirtyPages * this.#pageBlocks >= this.#space.allocatableBlockCount * CHECKPOINT_FREE_SPACE_SHARE;
  }
}
