// The store's integrity check (BlockStore.verifyIntegrity): every page of
// the tree, read through the checksums in its parents; every block of the
// data region exactly one of free, referenced (by a page, a value or the
// free set), replaced and waiting for the next checkpoint, waiting for its
// trim, or allocated to a write in progress (Space's checkReferences); and
// every extent value against its checksum. It checks one synchronous
// snapshot of the tree and the bookkeeping; a read epoch keeps their pages
// and values from reuse while the walk and the reads go on.
import type { Extent } from '../format/extent.js';
import type { ExtentValue } from '../format/records.js';
import type { Checkpointer } from './checkpointer.js';
import type { Journal } from './journal.js';
import type { PageTree } from './page_tree.js';
import { checkReferences, type Space } from './space.js';
import { StoreCorruptError } from './store_error.js';
import { isExtentValue, type IndexEntry } from './store_index.js';
import type { StoreState } from './store_state.js';
import { leafCount, leafEntryAt, leafKeyAt } from './tree_node.js';

/** What verifyIntegrity() found: counts of what it checked, all consistent. */
export interface IntegrityReport {
  /** Keys in the tree. */
  keys: number;
  /** Tree pages read and checked. */
  pages: number;
  /** Extent values read and checked against their CRC32C. */
  extentValues: number;
  /** Data blocks referenced by pages, values and the free set. */
  referencedBlocks: number;
  /** Data blocks free. */
  freeBlocks: number;
  /** Data blocks released and waiting for (or in) their trim. */
  trimPendingBlocks: number;
}

export interface IntegrityParts {
  state: StoreState;
  journal: Journal;
  checkpointer: Checkpointer;
  tree: PageTree;
  space: Space;
  /** Blocks of a tree page. */
  pageBlocks: number;
  /** Reads an extent value, checked against its checksum. */
  readValue(entry: IndexEntry): Promise<Uint8Array>;
}

/** Checks the store; rejects with ERR_STORE_CORRUPT naming what is wrong. */
export async function checkIntegrity(parts: IntegrityParts): Promise<IntegrityReport> {
  const { state, checkpointer, tree, space, pageBlocks } = parts;
  parts.journal.checkReserveAccounting();
  // A checkpoint being written holds blocks that are in no state yet; a
  // commit applying meanwhile may start the next one.
  while (checkpointer.running) await checkpointer.settled();
  // The walk sees the tree as it is now, though a checkpoint may start and
  // complete during it (giving its dirty pages blocks this bookkeeping has
  // as free): page_tree.ts, WalkSnapshot.
  const snapshot = tree.snapshotForWalk();
  const bookkeeping = space.bookkeeping();
  const superblock = checkpointer.superblock;
  const replaced = tree.replacedPages();
  const epoch = space.beginRead();
  try {
    const pageExtent = (block: number): Extent => ({ startBlock: block, blockCount: pageBlocks });
    const references: { extent: Extent; owner: string }[] = [
      ...superblock.freeSetExtents.map((extent) => ({ extent, owner: 'the free set' })),
      ...replaced.map((ref) => ({ extent: pageExtent(ref.block), owner: `the replaced page at block ${ref.block} (freed by the next checkpoint)` })),
    ];
    const values: ExtentValue[] = [];
    let keys = 0;
    let pages = 0;
    try {
      await tree.walk(snapshot, (node, ref) => {
        if (ref !== undefined) {
          pages++;
          references.push({ extent: pageExtent(ref.block), owner: `the page at block ${ref.block}` });
        }
        if (node.kind !== 'leaf') return;
        const count = leafCount(node);
        keys += count;
        for (let i = 0; i < count; i++) {
          const entry = leafEntryAt(node, i);
          if (!isExtentValue(entry.value)) continue;
          values.push(entry.value);
          const owner = `key ${JSON.stringify(leafKeyAt(node, i).slice(0, 64))}`;
          for (const extent of entry.value.extents) references.push({ extent, owner });
        }
      });
    } catch (error) {
      throw state.closedOr(error);
    }
    if (keys !== snapshot.keyCount) throw new StoreCorruptError('page', `the tree holds ${keys} keys but counts ${snapshot.keyCount}`);
    let space: { trimPendingBlocks: number; leakedBlocks: number };
    try {
      space = checkReferences(bookkeeping, references);
    } catch (error) {
      // Blocks the bookkeeping has as free while something references them,
      // or two owners share (a forged or miswritten free set, a bug), would
      // be given to a write over what they hold: no write may follow (found
      // by a review: a put overwrote a live value that this check had found
      // free). A leak (below) only loses space: writes go on.
      if (error instanceof StoreCorruptError) state.fail(error);
      throw error;
    }
    const { trimPendingBlocks, leakedBlocks } = space;
    if (leakedBlocks > 0) {
      throw new StoreCorruptError('data', `${bookkeeping.freeBlockCount} blocks are free but ${bookkeeping.freeBlockCount + leakedBlocks} are unreferenced: ${leakedBlocks} blocks leaked`);
    }
    for (const value of values) await parts.readValue({ isString: false, value });
    return {
      keys,
      pages,
      extentValues: values.length,
      referencedBlocks: references.reduce((total, reference) => total + reference.extent.blockCount, 0),
      freeBlocks: bookkeeping.freeBlockCount,
      trimPendingBlocks,
    };
  } finally {
    space.endRead(epoch);
  }
}
