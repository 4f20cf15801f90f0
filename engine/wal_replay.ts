// Replaying the WAL tail recovery found, once the store's parts exist: the
// commits go through the tree in order, and when the pages they dirty pass
// their replay budget (Journal.replayCheckpointDue) a checkpoint of the
// commits replayed so far is written before the next one, as in normal
// operation. Replaying a long tail of random keys then holds about a budget
// of dirty pages, not every page it touches.
//
// While such a checkpoint is written, the blocks of the values the
// remaining commits will take are held out of allocation (Space.holdForReplay):
// they are free in its free set — those commits come back from the WAL
// after a crash — and their data must still be there when they do.
import type { Extent } from '../format/extent.js';
import type { Superblock } from '../format/superblock.js';
import type { Checkpointer } from './checkpointer.js';
import type { ExtentAllocator } from './extent_allocator.js';
import type { Journal } from './journal.js';
import type { PageTree } from './page_tree.js';
import { applyWalCommit, liveWalOperations, prepareWalCommit, type PendingCommit, type TailRole } from './recovery.js';
import type { Space } from './space.js';
import { StoreError } from './store_error.js';

export interface WalReplayParts {
  tree: PageTree;
  allocator: ExtentAllocator;
  space: Space;
  journal: Journal;
  checkpointer: Checkpointer;
  /** A read-only store replays in memory and writes no checkpoint. */
  readOnly: boolean;
}

/**
 * Replays `commits` (recovery's pendingCommits, in order), calling
 * `commitApplied` after each. With no room for a checkpoint in the middle,
 * the replay goes on without one. It runs after open has returned
 * (ReplayOverlay): reads of the store go on meanwhile, writes wait for it.
 *
 * One commit at a time: of the records a later record of the tail
 * supersedes, a key's first is applied as a delete and the others are
 * checked and left out (`tailRole`, from ReplayOverlay's index;
 * liveWalOperations); the operations are decoded (PendingCommit) and their
 * pages read (prepareWalCommit: REPLAY_PREPARE_KEYS_MAX keys' pages at a
 * time, so that point reads meanwhile do not wait behind ~1000), then it
 * is applied. Tried and left out: stretches of commits prepared together
 * (4096 or 16384 operations, slower: pins past the cache's budget make
 * each insert of a read page walk them in PageCache.evict()), and reading
 * the next commit's pages while one is applied (no gain measurable on the
 * shared 2-core host, where the replay is CPU-bound).
 */
export async function replayWal(
  parts: WalReplayParts,
  superblock: Superblock,
  commits: readonly PendingCommit[],
  commitApplied: () => void,
  tailRole: (commitIndex: number, recordIndex: number) => TailRole,
): Promise<void> {
  const { tree, allocator, space, journal, checkpointer } = parts;
  let checkpointsFit = !parts.readOnly;
  for (let i = 0; i < commits.length; i++) {
    // Each key's last record in the tail, and a delete for its first of several (liveWalOperations).
    const operations = liveWalOperations(allocator, superblock, commits[i], (recordIndex) => tailRole(i, recordIndex));
    let repairs = tree.repairCount;
    let prepared = await prepareWalCommit(tree, operations);
    // A checkpoint's repair of the tree (one a caller started during the
    // replay) may have moved keys to pages it let go: prepare again.
    while (tree.repairCount !== repairs) {
      repairs = tree.repairCount;
      const again = await prepareWalCommit(tree, operations);
      for (const paths of prepared) tree.release(paths);
      prepared = again;
    }
    try {
      applyWalCommit(tree, allocator, superblock, commits[i], operations);
    } finally {
      for (const paths of prepared) tree.release(paths);
    }
    commitApplied();
    if (!checkpointsFit || i + 1 === commits.length || !journal.replayCheckpointDue()) continue;
    const held = space.holdForReplay(valueExtentsOf(commits.slice(i + 1)));
    try {
      // Replayed commits are durable already, or made so by the checkpoint's own flush.
      await checkpointer.run({ appliedSequence: commits[i].sequence, syncNow: async () => undefined });
    } catch (error) {
      if (!(error instanceof StoreError && error.code === 'ERR_STORE_FULL')) throw error;
      checkpointsFit = false;
    } finally {
      space.releaseReplayHold(held);
    }
  }
}

/** The extents of every extent value the commits write. */
function* valueExtentsOf(commits: readonly PendingCommit[]): Generator<Extent> {
  for (const commit of commits) yield* commit.valueExtents();
}
