// ExtentAllocator: the free space of the data region. Allocation prefers one
// contiguous run (next-fit from a roving cursor, so consecutive blobs land
// next to each other and free space is reused round-robin); when none is
// long enough it combines the largest runs, up to a caller's extent limit.
//
// The free space is a bitmap, one bit a block (engine/free_bitmap.ts), the
// same bits as the free set a checkpoint writes (format/free_set.ts): open
// builds the allocator from that free set in O(bitmap bytes), and a
// checkpoint copies it back out, with no object per free run either way.
// (A B-tree of free runs by start and by size cost ~100-200 ms of open at
// 1 M keys, 80 % of it inserting ~100 k runs.)
import { decodeFreeSetBitmap } from '../format/free_set.js';
import type { Extent } from '../format/extent.js';
import { FreeBitmap, type BitRun } from './free_bitmap.js';
import { StoreCorruptError } from './store_error.js';

export class ExtentAllocator {
  readonly dataStartBlock: number;
  readonly #bits: FreeBitmap;
  /** Next-fit starts here: a bit index, at most the bitmap's length. */
  #cursor = 0;
  /**
   * Disjoint free runs (bit indexes), at most #roomRunsFor of them: a lower
   * bound, kept without a search, on what the #roomRunsFor largest runs
   * hold. Allocation shrinks a run it takes from to its larger remaining
   * piece; frees leave it as it is (it stays a lower bound). Empty when
   * #roomRunsFor is 0.
   */
  #roomRuns: BitRun[] = [];
  #roomRunsFor = 0;
  #roomBlocks = 0;

  /**
   * Builds the free set of [dataStartBlock, blockCount) minus `used`.
   * Throws StoreCorruptError if two used extents overlap or one lies outside.
   * (`bits`, for this module's factories only: the free space as it is,
   * `used` empty.)
   */
  constructor(dataStartBlock: number, blockCount: number, used: Iterable<{ extent: Extent; owner: string }>, bits?: FreeBitmap) {
    this.dataStartBlock = dataStartBlock;
    if (bits !== undefined) {
      if (bits.bitCount !== blockCount - dataStartBlock) throw new Error(`ringstore: a bitmap of ${bits.bitCount} blocks for a data region of ${blockCount - dataStartBlock}`);
      this.#bits = bits;
      return;
    }
    this.#bits = FreeBitmap.allFree(blockCount - dataStartBlock);
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
      this.#bits.take(extent.startBlock - dataStartBlock, end - dataStartBlock);
      next = end;
      previousOwner = owner;
    }
  }

  /** The allocator whose free blocks are exactly those of `free` (disjoint, in the data region). O(blocks / 32 + extents). */
  static fromFreeExtents(dataStartBlock: number, blockCount: number, free: readonly Extent[]): ExtentAllocator {
    const allocator = new ExtentAllocator(dataStartBlock, blockCount, [], FreeBitmap.allInUse(blockCount - dataStartBlock));
    for (const extent of free) allocator.free(extent);
    return allocator;
  }

  /**
   * The allocator of a checkpoint's free-set payload, in a data region of
   * [dataStartBlock, blockCount): the blocks the payload describes as it
   * says, those past them (the store grew since) free. Throws FormatError
   * naming `firstBlock` if the payload is malformed. O(payload bytes).
   */
  static fromFreeSetPayload(payload: Uint8Array, dataStartBlock: number, blockCount: number, firstBlock: number): ExtentAllocator {
    const { bitmap } = decodeFreeSetBitmap(payload, blockCount - dataStartBlock, firstBlock);
    return new ExtentAllocator(dataStartBlock, blockCount, [], FreeBitmap.fromInUseBytes(bitmap, blockCount - dataStartBlock));
  }

  /** End of the data region (exclusive): the store's block count. */
  get blockCount(): number {
    return this.dataStartBlock + this.#bits.bitCount;
  }

  get freeBlockCount(): number {
    return this.#bits.freeCount;
  }

  /**
   * Extends the data region to `blockCount` blocks, all of the new ones
   * free (the store grew: its superblock names the new size, durably).
   */
  grow(blockCount: number): void {
    if (!Number.isSafeInteger(blockCount) || blockCount < this.blockCount) throw new Error(`ringstore: growing the data region from ${this.blockCount} to ${blockCount} blocks`);
    this.#bits.grow(blockCount - this.dataStartBlock);
  }

  /** Maximal free runs. O(blocks / 32): for messages and tests, not for every put. */
  get freeExtentCount(): number {
    return this.#bits.runCount();
  }

  /**
   * Allocates `blockCount` blocks in at most `extentsMax` extents, or returns
   * undefined when the free space cannot provide them.
   */
  allocate(blockCount: number, extentsMax: number): Extent[] | undefined {
    if (!(blockCount > 0) || !Number.isInteger(blockCount)) throw new RangeError(`allocate(${blockCount})`);
    if (blockCount > this.#bits.freeCount) return undefined;
    const single = this.#findRun(blockCount);
    if (single >= 0) {
      this.#take(single, single + blockCount);
      this.#cursor = single + blockCount;
      return [{ startBlock: this.dataStartBlock + single, blockCount }];
    }
    // Fragmented: largest runs first, so the value has as few pieces as possible.
    const chosen: Extent[] = [];
    let remaining = blockCount;
    for (const run of this.#bits.longestRuns(extentsMax)) {
      if (remaining === 0) break;
      const take = Math.min(run.count, remaining);
      chosen.push({ startBlock: this.dataStartBlock + run.start, blockCount: take });
      remaining -= take;
    }
    if (remaining > 0) return undefined;
    chosen.sort((a, b) => a.startBlock - b.startBlock);
    for (const extent of chosen) this.#take(extent.startBlock - this.dataStartBlock, extent.startBlock - this.dataStartBlock + extent.blockCount);
    return chosen;
  }

  /** Returns an extent to the free set. */
  free(extent: Extent): void {
    const start = extent.startBlock;
    const count = extent.blockCount;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < this.dataStartBlock || start + count > this.blockCount || count <= 0) {
      throw new Error(`ringstore: freeing ${start}+${count} outside the data region`);
    }
    const from = start - this.dataStartBlock;
    const free = this.#bits.firstFree(from, from + count);
    if (free >= 0) throw new Error(`ringstore: double free of block ${this.dataStartBlock + free} (freeing ${start}+${count})`);
    this.#bits.release(from, from + count);
  }

  /**
   * Marks `extent` in use if every block of it is free (recovery replaying
   * a commit that wrote a value there); false, changing nothing, otherwise.
   */
  takeIfFree(extent: Extent): boolean {
    if (!this.#inRegion(extent) || !this.isFree(extent)) return false;
    const from = extent.startBlock - this.dataStartBlock;
    this.#take(from, from + extent.blockCount);
    return true;
  }

  /**
   * Frees `extent` if no block of it is free (recovery replaying a commit
   * that unlinked a value); false, changing nothing, otherwise.
   */
  freeIfUsed(extent: Extent): boolean {
    if (!this.#inRegion(extent) || !this.isUsed(extent)) return false;
    this.free(extent);
    return true;
  }

  /**
   * Takes (marks in use) every free block of `extent` and returns them as
   * maximal runs in block order; blocks of it already in use stay as they
   * are. O(blocks of it / 32 + runs it meets).
   */
  takeFreeParts(extent: Extent): Extent[] {
    const from = Math.max(extent.startBlock, this.dataStartBlock) - this.dataStartBlock;
    const to = Math.min(extent.startBlock + extent.blockCount, this.blockCount) - this.dataStartBlock;
    const parts: Extent[] = [];
    let index = from;
    while (index < to) {
      const start = this.#bits.firstFree(index, to);
      if (start < 0) break;
      const used = this.#bits.firstInUse(start, to);
      const end = used < 0 ? to : used;
      this.#take(start, end);
      parts.push({ startBlock: this.dataStartBlock + start, blockCount: end - start });
      index = end;
    }
    return parts;
  }

  /** True if no block of `extent` is free (blocks outside the data region are not). */
  isUsed(extent: Extent): boolean {
    const from = Math.max(extent.startBlock, this.dataStartBlock) - this.dataStartBlock;
    const to = Math.min(extent.startBlock + extent.blockCount, this.blockCount) - this.dataStartBlock;
    return this.#bits.isAllInUse(from, to);
  }

  /** True if every block of `extent` is free (for assertions and fsck-style checks). */
  isFree(extent: Extent): boolean {
    if (!this.#inRegion(extent)) return false;
    const from = extent.startBlock - this.dataStartBlock;
    return this.#bits.isAllFree(from, from + extent.blockCount);
  }

  /** Blocks in the `count` largest free runs: what an allocation limited to `count` extents can get. O(blocks / 32) at worst. */
  largestRunsBlockCount(count: number): number {
    // With `count` runs or fewer, all of them: every free block.
    return this.#bits.longestRuns(count).reduce((sum, run) => sum + run.count, 0);
  }

  /**
   * Whether the `count` largest free runs hold `blockCount` blocks
   * (largestRunsBlockCount(count) >= blockCount), asked on every extent put
   * for the checkpoint's free-set frame. O(count) while the runs found by
   * the last search still hold enough; a search (largestRunsBlockCount's)
   * only when they do not, so the answer is never weaker than the exact one.
   */
  largestRunsHold(count: number, blockCount: number): boolean {
    if (this.#roomRunsFor === count && this.#roomBlocks >= blockCount) return true;
    this.#roomRuns = this.#bits.longestRuns(count);
    this.#roomRunsFor = count;
    this.#roomBlocks = this.#roomRuns.reduce((sum, run) => sum + run.count, 0);
    return this.#roomBlocks >= blockCount;
  }

  /** The free extents, in block order (a copy). O(blocks / 32 + runs). */
  freeExtents(): Extent[] {
    return this.#bits.runs().map((run) => ({ startBlock: this.dataStartBlock + run.start, blockCount: run.count }));
  }

  /**
   * Writes the in-use bits of the data region into `bitmap`, a free-set
   * payload's (format/free_set.ts): bit i for block dataStartBlock + i.
   * REQUIRES: `dataBlockCount` is the data region's size.
   */
  copyInUseBits(bitmap: Uint8Array, dataBlockCount: number): void {
    if (dataBlockCount !== this.#bits.bitCount) throw new Error(`ringstore: a free set of ${dataBlockCount} blocks for a data region of ${this.#bits.bitCount}`);
    this.#bits.copyInUseBytes(bitmap, dataBlockCount);
  }

  /** Test hook: the bitmap's summaries against a recomputation, and the room runs still free. */
  checkInvariants(): void {
    this.#bits.checkSummaries();
    if (this.#cursor < 0 || this.#cursor > this.#bits.bitCount) throw new Error(`ringstore: cursor ${this.#cursor} outside the data region`);
    let sum = 0;
    for (const run of this.#roomRuns) {
      if (!this.#bits.isAllFree(run.start, run.start + run.count)) throw new Error(`ringstore: room run ${run.start}+${run.count} is not free`);
      sum += run.count;
    }
    if (sum !== this.#roomBlocks || this.#roomRuns.length > this.#roomRunsFor) throw new Error('ringstore: room runs miscounted');
  }

  #inRegion(extent: Extent): boolean {
    return extent.blockCount >= 1 && extent.startBlock >= this.dataStartBlock && extent.startBlock + extent.blockCount <= this.blockCount;
  }

  /**
   * Start (bit index) of a free run of at least `blockCount` blocks: the
   * first from the cursor on (the run holding the cursor counts from it),
   * else, wrapping once, the first that starts before it; -1 if none.
   */
  #findRun(blockCount: number): number {
    const after = this.#bits.firstRunOfAtLeast(blockCount, this.#cursor, this.#bits.bitCount);
    return after >= 0 ? after : this.#bits.firstRunOfAtLeast(blockCount, 0, this.#cursor);
  }

  /** Marks [from, to) in use (bit indexes; every bit free) and keeps the room runs free. */
  #take(from: number, to: number): void {
    this.#bits.take(from, to);
    for (let i = 0; i < this.#roomRuns.length; i++) {
      const run = this.#roomRuns[i];
      const end = run.start + run.count;
      if (to <= run.start || from >= end) continue;
      // The larger piece left of it: still free, still disjoint from the others.
      const below = Math.max(0, from - run.start);
      const above = Math.max(0, end - to);
      const kept = below >= above ? { start: run.start, count: below } : { start: to, count: above };
      this.#roomBlocks -= run.count - kept.count;
      this.#roomRuns[i] = kept;
    }
  }
}
