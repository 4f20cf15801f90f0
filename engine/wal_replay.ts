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
import type { ExtentValue } from '../format/records.js';
import type { Superblock } from '../format/superblock.js';
import type { Checkpointer } from './checkpointer.js';
import type { ExtentAllocator } from './extent_allocator.js';
import type { Journal } from './journal.js';
import { PageUnreadable, type PageTree, type PreparedPaths } from './page_tree.js';
import { checkExtentsInDataRegion, type Operation, type PendingCommit } from './recovery.js';
import type { Space } from './space.js';
import { StoreCorruptError, StoreError } from './store_error.js';

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
      await checkpointer.run({ appliedSequence: commits[i].sequence, syncNow: async () => undefined, flushCount: 0 });
    } catch (error) {
      // A page it could not read fails the replay, as the replay's own reads do: with the read's error.
      if (error instanceof PageUnreadable) throw error.cause;
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

/**
 * Keys of a replayed commit whose pages are read in one round. The replay
 * runs while the store serves point reads (ReplayOverlay), and a read's page
 * request waits behind the round in flight: its IO, and the checks of each
 * page it brings. Gets during the replay of a 1 M-key store's tail (33
 * commits of 1000 random keys; /work/probe/openget.mjs, not kept), 2 runs:
 *
 *   keys a round   get p50   get p90    replay
 *   1000 (all)     27 ms     58 ms      1.81–1.83 s
 *    256          3.7–4.0    18–20      1.76–1.80
 *    128          2.0        8–9        1.77–1.90
 *     64          1.0        3.6–4.0    1.97–2.28
 */
const REPLAY_PREPARE_KEYS_MAX = 128;

/**
 * PageTree.prepare() of the commit's keys, in rounds of at most
 * REPLAY_PREPARE_KEYS_MAX keys, for applyWalCommit, then release() of each:
 * the deleted ones with the siblings their merges touch. Nothing changes the
 * tree between the rounds (writes wait for the replay), so the paths pinned
 * by the first still hold when the last ends.
 */
export async function prepareWalCommit(tree: PageTree, operations: readonly Operation[]): Promise<PreparedPaths[]> {
  const prepared: PreparedPaths[] = [];
  try {
    for (let start = 0; start < operations.length; start += REPLAY_PREPARE_KEYS_MAX) {
      const setKeys: string[] = [];
      const deleteKeys: string[] = [];
      for (const { key, entry } of operations.slice(start, start + REPLAY_PREPARE_KEYS_MAX)) (entry === undefined ? deleteKeys : setKeys).push(key);
      prepared.push(await tree.prepare(setKeys, deleteKeys));
    }
  } catch (error) {
    for (const paths of prepared) tree.release(paths);
    throw error;
  }
  return prepared;
}

/**
 * Applies one replayed commit to the tree and to the free space: a value it
 * overwrites or deletes gives its extents back, a value it writes takes
 * them. The checkpoint's free set describes exactly its tree, so in replay
 * order every extent a commit writes must be free and every extent it
 * unlinks must be in use — anything else is damage (or a bug), never
 * repaired silently. (The replay leaves superseded records out and deletes
 * a key at its first of several: the tree then holds a subset of the
 * values the one-by-one replay held, and the rule holds for what it does
 * apply; liveWalOperations.)
 * `operations` are the ones liveWalOperations gave for the commit.
 * REQUIRES: the commit's keys prepared (prepareWalCommit) and not released.
 */
export function applyWalCommit(tree: PageTree, allocator: ExtentAllocator, superblock: Superblock, commit: PendingCommit, operations: readonly Operation[]): void {
  const { sequence, walBlock } = commit;
  // A wrong key count is refused before the commit applies, as a live commit's is (Journal#apply).
  let deleteCount = 0;
  for (const { entry } of operations) if (entry === undefined) deleteCount++;
  tree.checkCountCovers(walKeyOperations(operations), deleteCount);
  for (const { key, entry } of operations) {
    const previous = entry === undefined ? tree.delete(key) : tree.set(key, entry);
    if (previous !== undefined && !(previous.value instanceof Uint8Array)) {
      for (const extent of previous.value.extents) {
        if (!allocator.freeIfUsed(extent)) throw new StoreCorruptError('free set', `${where(sequence, key)}: the value it replaces has blocks ${extent.startBlock}+${extent.blockCount} that the free set says are free`, extent.startBlock);
      }
    }
    if (entry !== undefined && !(entry.value instanceof Uint8Array)) {
      checkExtentsInDataRegion(superblock, entry.value, where(sequence, key), walBlock);
      for (const extent of entry.value.extents) {
        if (!allocator.takeIfFree(extent)) throw new StoreCorruptError('free set', `${where(sequence, key)}: its value's blocks ${extent.startBlock}+${extent.blockCount} are in use by something else`, extent.startBlock);
      }
    }
  }
}

/**
 * What the replay does with a record of the WAL tail, by where it stands
 * among its key's records there (ReplayOverlay works it out for each
 * record; liveWalOperations acts on it).
 */
export const TailRole = {
  /** Neither its key's first record in the tail nor its last: left out. */
  Between: 0,
  /** Its key's last record in the tail (or only one): applied as it is. */
  Last: 1,
  /** The first of its key's several records in the tail: applied as a delete. */
  FirstOfSeveral: 2,
} as const;
export type TailRole = (typeof TailRole)[keyof typeof TailRole];

/**
 * The operations of a replayed commit that the replay applies to the tree,
 * decoded, by each record's TailRole. A record that a later one in the
 * tail supersedes leaves no trace in the tree at the tail's end, so
 * applying it only to undo it costs a walk, a leaf copy and perhaps a page
 * read for nothing, and decoding it costs its entry: a tail that
 * overwrites the same keys again and again (how a WAL fills before dirty
 * pages start a checkpoint: the scale bench's 45 % tail is ~250 000 records
 * of 1 000 keys) is mostly such records. So only each key's last record is
 * applied as it is, and the first of several is applied as a delete.
 *
 * Why the delete: at its first record in the tail a key gave back the
 * blocks of its value from before the tail, and the store frees such
 * blocks once the commit is durable and trimmed — no checkpoint needed —
 * so a later commit of the same tail may have taken them for another
 * value. Left in the tree until the key's last record, that value would
 * make such a commit's blocks look in use (found by a review: a crashed
 * store that the one-by-one replay opened failed every open with
 * ERR_STORE_CORRUPT, and a checkpoint written in the middle of that replay
 * left the damage on disk). With the delete, the value blocks in use at every
 * step of this replay are a subset of those at the same step of the
 * one-by-one replay (which had the record's value, and each later one until
 * the last, in use instead; tree pages land where each replay's own
 * checkpoints put them), so its checks can refuse nothing that replay
 * accepted.
 *
 * A checkpoint written in the middle of the replay then holds such a key
 * as deleted, or with its last value; the WAL from that checkpoint on holds
 * the rest of its records, so a crash after it comes back to the same end.
 * The value a left-out record (or the delete) wrote is never in the tree
 * and never read (ReplayOverlay answers the last record); its blocks stay
 * free, as the one-by-one replay left them once a later record freed them
 * (recovery checks no superseded value's data, and the mid-replay
 * checkpoints hold every remaining commit's extents, superseded or not).
 * They are still checked, less than that replay checked them: inside the
 * data region, and free when their commit is replayed, before any of its
 * records is applied (no value of a commit can use blocks the same commit
 * frees: a commit's freed blocks are released after it is applied), but
 * not against values written while they were live (StoreCorruptError).
 */
export function liveWalOperations(allocator: ExtentAllocator, superblock: Superblock, commit: PendingCommit, roleOf: (recordIndex: number) => TailRole): Operation[] {
  const live: Operation[] = [];
  for (let recordIndex = 0; recordIndex < commit.recordCount; recordIndex++) {
    const role = roleOf(recordIndex);
    if (role === TailRole.Last) {
      live.push({ key: commit.keyAt(recordIndex), entry: commit.entryAt(recordIndex) });
      continue;
    }
    if (role === TailRole.FirstOfSeveral) live.push({ key: commit.keyAt(recordIndex), entry: undefined });
    if (!commit.writesExtentsAt(recordIndex)) continue;
    const value = commit.entryAt(recordIndex)!.value as ExtentValue;
    const what = where(commit.sequence, commit.keyAt(recordIndex));
    checkExtentsInDataRegion(superblock, value, what, commit.walBlock);
    for (const extent of value.extents) {
      if (!allocator.isFree(extent)) throw new StoreCorruptError('free set', `${what}: its value's blocks ${extent.startBlock}+${extent.blockCount} are in use by something else`, extent.startBlock);
    }
  }
  return live;
}

/** A WAL commit's operations in order, as keys and whether each deletes (PageTree.checkCountCovers); read only if the check needs them. */
function* walKeyOperations(operations: readonly Operation[]): Generator<{ keyString: string; deletes: boolean }> {
  for (const { key, entry } of operations) yield { keyString: key, deletes: entry === undefined };
}

function where(sequence: number, key: string): string {
  return `commit ${sequence}, key ${JSON.stringify(key.slice(0, 64))}`;
}
