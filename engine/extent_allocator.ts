// ExtentAllocator: the free space of the data region as a set of free
// extents ordered by start block. Allocation prefers one contiguous run
// (next-fit from a roving cursor, so consecutive blobs land next to each
// other and free space is reused round-robin); when none is long enough it
// combines the largest runs, up to a caller's extent limit.
//
// At open the allocator starts from the free set the checkpoint recorded
// (format/free_set.ts); every checkpoint records it again.
import { BTree } from './btree.js';

import type { Extent } from '../format/extent.js';
import { StoreCorruptError } from './store_error.js';

export class ExtentAllocator {
  /** start block -> block count, for every free extent; no two touch. */
  readonly #free = new BTree<number, number>();
  /**
   * The same runs by size: [block count, start block], ascending by count
   * and, among equal counts, descending by start — so a reverse walk gives
   * the largest runs first, lowest start first among equals. Every extent
   * put asks for the largest runs (largestRunsBlockCount, for the
   * checkpoint reserve): a walk over all runs there cost O(runs) a put on a
   * fragmented store; this makes it O(FREE_SET_EXTENTS_MAX · log runs).
   */
  readonly #bySize = new BTree<[number, number], undefined>(undefined, (a: [number, number], b: [number, number]) => a[0] - b[0] || b[1] - a[1]);
  readonly dataStartBlock: number;
  #blockCount: number;
  #freeBlocks = 0;
  #cursor: number;

  /**
   * Builds the free set of [dataStartBlock, blockCount) minus `used`.
   * Throws StoreCorruptError if two used extents overlap or one lies outside.
   */
  constructor(dataStartBlock: number, blockCount: number, used: Iterable<{ extent: Extent; owner: string }>) {
    this.dataStartBlock = dataStartBlock;
    this.#blockCount = blockCount;
    this.#cursor = dataStartBlock;
    const sorted = [...used].sort((a, b) => a.extent.startBlock - b.extent.startBlock);
    let next = dataStartBlock;
    let previousOwner = '';
    for (const { extent, owner } of sorted) {
      const end = extent.startBlock + extent.blockCount;
      if (extent.startBlock < dataStartBlock || end > blockCount || extent.blockCount <= 0) {
        throw new StoreCorruptError('data', `${owner} references blocks ${extent.startBlock}..${end - 1} outside the data region`, extent.startBlock);
      }
      if (extent.startBlock < next) {
        throw new StoreCorruptError('data', `blocks ${extent.startBlock}..${Math.min(next, end) - 1} are referenced by both ${previousOwner} and ${owner}`, extent.startBlock);
      }
      if (extent.startBlock > next) this.#insertFree(next, extent.startBlock - next);
      next = end;
      previousOwner = owner;
    }
    if (next < blockCount) this.#insertFree(next, blockCount - next);
  }

  /**
   * The allocator whose free runs are exactly `free` (sorted, disjoint, in
   * the data region: a decoded free set is). O(runs · log runs).
   */
  static fromFreeExtents(dataStartBlock: number, blockCount: number, free: readonly Extent[]): ExtentAllocator {
    const allocator = new ExtentAllocator(dataStartBlock, blockCount, [{ extent: { startBlock: dataStartBlock, blockCount: blockCount - dataStartBlock }, owner: 'the free set' }]);
    for (const extent of free) allocator.free(extent);
    return allocator;
  }

  /** End of the data region (exclusive): the store's block count. */
  get blockCount(): number {
    return this.#blockCount;
  }

  get freeBlockCount(): number {
    return this.#freeBlocks;
  }

  /**
   * Extends the data region to `blockCount` blocks, all of the new ones
   * free (the store grew: its superblock names the new size, durably).
   */
  grow(blockCount: number): void {
    if (!Number.isSafeInteger(blockCount) || blockCount < this.#blockCount) throw new Error(`ringstore: growing the data region from ${this.#blockCount} to ${blockCount} blocks`);
    if (blockCount === this.#blockCount) return;
    const start = this.#blockCount;
    this.#blockCount = blockCount;
    this.free({ startBlock: start, blockCount: blockCount - start });
  }

  get freeExtentCount(): number {
    return this.#free.size;
  }

  /**
   * Allocates `blockCount` blocks in at most `extentsMax` extents, or returns
   * undefined when the free space cannot provide them.
   */
  allocate(blockCount: number, extentsMax: number): Extent[] | undefined {
    if (!(blockCount > 0) || !Number.isInteger(blockCount)) throw new RangeError(`allocate(${blockCount})`);
    if (blockCount > this.#freeBlocks) return undefined;
    const single = this.#findRun(blockCount);
    if (single !== undefined) {
      this.#take(single, blockCount);
      this.#cursor = single + blockCount;
      return [{ startBlock: single, blockCount }];
    }
    // Fragmented: largest runs first, so the value has as few pieces as possible.
    const chosen: Extent[] = [];
    let remaining = blockCount;
    for (const [[runBlocks, runStart]] of this.#bySize.entriesReversed()) {
      if (remaining === 0 || chosen.length === extentsMax) break;
      const take = Math.min(runBlocks, remaining);
      chosen.push({ startBlock: runStart, blockCount: take });
      remaining -= take;
    }
    if (remaining > 0) return undefined;
    for (const extent of chosen) this.#take(extent.startBlock, extent.blockCount);
    chosen.sort((a, b) => a.startBlock - b.startBlock);
    return chosen;
  }

  /** Returns an extent to the free set, merging it with free neighbours. */
  free(extent: Extent): void {
    let start = extent.startBlock;
    let count = extent.blockCount;
    const end = start + count;
    if (start < this.dataStartBlock || end > this.blockCount || count <= 0) {
      throw new Error(`ringstore: freeing ${start}+${count} outside the data region`);
    }
    const before = this.#free.nextLowerPair(start + 1);
    if (before !== undefined && before[0] + before[1] > start) {
      throw new Error(`ringstore: double free of block ${start} (free run ${before[0]}+${before[1]})`);
    }
    const after = this.#free.nextHigherPair(start);
    if (after !== undefined && after[0] < end) {
      throw new Error(`ringstore: double free of block ${after[0]} (freeing ${start}+${count})`);
    }
    if (before !== undefined && before[0] + before[1] === start) {
      this.#deleteFree(before[0], before[1]);
      start = before[0];
      count += before[1];
    }
    if (after !== undefined && after[0] === end) {
      this.#deleteFree(after[0], after[1]);
      count += after[1];
    }
    this.#insertFree(start, count);
  }

  /**
   * Marks `extent` in use if every block of it is free (recovery replaying
   * a commit that wrote a value there); false, changing nothing, otherwise.
   */
  takeIfFree(extent: Extent): boolean {
    if (extent.startBlock < this.dataStartBlock || extent.startBlock + extent.blockCount > this.blockCount || !this.isFree(extent)) return false;
    this.#take(extent.startBlock, extent.blockCount);
    return true;
  }

  /**
   * Frees `extent` if no block of it is free (recovery replaying a commit
   * that unlinked a value); false, changing nothing, otherwise.
   */
  freeIfUsed(extent: Extent): boolean {
    if (extent.startBlock < this.dataStartBlock || extent.startBlock + extent.blockCount > this.blockCount || !this.isUsed(extent)) return false;
    this.free(extent);
    return true;
  }

  /**
   * Takes (marks in use) every free block of `extent` and returns them as
   * maximal runs in block order; blocks of it already in use stay as they
   * are. O(runs it meets · log runs).
   */
  takeFreeParts(extent: Extent): Extent[] {
    const start = Math.max(extent.startBlock, this.dataStartBlock);
    const end = Math.min(extent.startBlock + extent.blockCount, this.#blockCount);
    const parts: Extent[] = [];
    const overlap = (runStart: number, runCount: number): void => {
      const partStart = Math.max(runStart, start);
      const partEnd = Math.min(runStart + runCount, end);
      if (partEnd > partStart) parts.push({ startBlock: partStart, blockCount: partEnd - partStart });
    };
    const containing = this.#free.nextLowerPair(start);
    if (containing !== undefined) overlap(containing[0], containing[1]);
    this.#free.forRange(start, end, false, (runStart, runCount) => overlap(runStart, runCount));
    for (const part of parts) this.#take(part.startBlock, part.blockCount);
    return parts;
  }

  /** True if no block of `extent` is free. */
  isUsed(extent: Extent): boolean {
    const end = extent.startBlock + extent.blockCount;
    const before = this.#free.nextLowerPair(extent.startBlock + 1);
    if (before !== undefined && before[0] + before[1] > extent.startBlock) return false;
    const after = this.#free.nextHigherPair(extent.startBlock);
    return after === undefined || after[0] >= end;
  }

  /** Blocks in the `count` largest free runs: what an allocation limited to `count` extents can get. */
  largestRunsBlockCount(count: number): number {
    if (this.#free.size <= count) return this.#freeBlocks;
    let sum = 0;
    let taken = 0;
    for (const [[runBlocks]] of this.#bySize.entriesReversed()) {
      if (taken === count) break;
      sum += runBlocks;
      taken++;
    }
    return sum;
  }

  /** True if every block of `extent` is free (for assertions and fsck-style checks). */
  isFree(extent: Extent): boolean {
    const run = this.#free.nextLowerPair(extent.startBlock + 1);
    return run !== undefined && run[0] <= extent.startBlock && run[0] + run[1] >= extent.startBlock + extent.blockCount;
  }

  /** The free extents, in block order (a copy). */
  freeExtents(): Extent[] {
    const out: Extent[] = [];
    this.#free.forEachPair((startBlock, blockCount) => {
      out.push({ startBlock, blockCount });
    });
    return out;
  }

  /** Start of a free run of at least `blockCount` blocks, searching from the cursor, wrapping once. */
  #findRun(blockCount: number): number | undefined {
    let found: number | undefined;
    const visit = (startBlock: number, count: number): { break: boolean } | undefined => {
      if (count >= blockCount) {
        found = startBlock;
        return { break: true };
      }
      return undefined;
    };
    // A run that contains the cursor counts from the cursor on.
    const containing = this.#free.nextLowerPair(this.#cursor + 1);
    if (containing !== undefined && containing[0] < this.#cursor && containing[0] + containing[1] - this.#cursor >= blockCount) {
      return this.#cursor;
    }
    this.#free.forRange(this.#cursor, this.blockCount, true, visit);
    if (found === undefined) this.#free.forRange(this.dataStartBlock, this.#cursor, false, visit);
    return found;
  }

  /** Removes [start, start + count) from the free run that contains it. */
  #take(start: number, count: number): void {
    const run = this.#free.nextLowerPair(start + 1);
    if (run === undefined || run[0] > start || run[0] + run[1] < start + count) {
      throw new Error(`ringstore: allocating ${start}+${count}, which is not free`);
    }
    const [runStart, runCount] = run;
    this.#deleteFree(runStart, runCount);
    if (start > runStart) this.#insertFree(runStart, start - runStart);
    const runEnd = runStart + runCount;
    if (start + count < runEnd) this.#insertFree(start + count, runEnd - start - count);
  }

  #insertFree(start: number, count: number): void {
    this.#free.set(start, count);
    this.#bySize.set([count, start], undefined);
    this.#freeBlocks += count;
  }

  #deleteFree(start: number, count: number): void {
    this.#free.delete(start);
    if (!this.#bySize.delete([count, start])) throw new Error(`ringstore: free run ${start}+${count} missing from the by-size index`);
    this.#freeBlocks -= count;
  }
}
