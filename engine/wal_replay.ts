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
import type { PageTree, PreparedPaths } from './page_tree.js';
import { applyWalCommit, prepareWalCommits, type PendingCommit } from './recovery.js';
import type { Space } from './space.js';
import { StoreError } from './store_error.js';
import { isExtentValue } from './store_index.js';

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
 * Replays `commits` (recovery's pendingCommits, in order). With no room for
 * a checkpoint in the middle, the replay goes on without one.
 *
 * The pages of the next commit are read while one is applied (and while a
 * checkpoint after it is written): a read-ahead through prepare(), whose
 * pins keep them cached until the commit's own prepare() — after the
 * writes before it, as prepare() requires — finds them in memory.
 */
export async function replayWal(parts: WalReplayParts, superblock: Superblock, commits: readonly PendingCommit[]): Promise<void> {
  const { tree, allocator, space, journal, checkpointer } = parts;
  let checkpointsFit = !parts.readOnly;
  let readAhead: Promise<PreparedPaths> | undefined = commits.length > 0 ? startReadAhead(tree, commits[0]) : undefined;
  try {
    for (let i = 0; i < commits.length; i++) {
      const ahead = await (readAhead ?? startReadAhead(tree, commits[i]));
      readAhead = undefined;
      let prepared: PreparedPaths;
      try {
        prepared = await prepareWalCommits(tree, [commits[i]]);
      } finally {
        tree.release(ahead);
      }
      try {
        if (i + 1 < commits.length) readAhead = startReadAhead(tree, commits[i + 1]);
        applyWalCommit(tree, allocator, superblock, commits[i]);
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
      } finally {
        tree.release(prepared);
      }
    }
  } finally {
    // A replay that failed leaves no read-ahead running, nor its pins.
    if (readAhead !== undefined) await readAhead.then((ahead) => tree.release(ahead), () => undefined);
  }
}

/**
 * prepare() of the commit's keys, its failure (a damaged page) awaited
 * later: handled from the start, so that it is not an unhandled rejection
 * if it comes while the replay awaits something else.
 */
function startReadAhead(tree: PageTree, commit: PendingCommit): Promise<PreparedPaths> {
  const prepared = prepareWalCommits(tree, [commit]);
  prepared.catch(() => undefined);
  return prepared;
}

/** The extents of every extent value the commits write. */
function* valueExtentsOf(commits: readonly PendingCommit[]): Generator<Extent> {
  for (const commit of commits) {
    for (const { entry } of commit.operations) {
      if (entry !== undefined && isExtentValue(entry.value)) yield* entry.value.extents;
    }
  }
}
