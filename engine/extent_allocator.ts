// ExtentAllocator: the free space of the data region. Allocation prefers one
// contiguous run (next-fit from a roving cursor, so consecutive blobs land
// next to each other and free space is reused round-robin); when none is
// long enough it combines the largest runs, up to a caller's extent limit.
//
// Space is handed out in allocation units of `unitBlocks` blocks, aligned
// to the region's start: a tree page's blocks (one block, or 4096 / B
// blocks when blocks are smaller). Every allocation starts on a unit and
// takes whole units (a value's last unit keeps its unused blocks, free in
// the bitmap, until the value is freed), so every wholly free unit can take
// a page. With one-block allocations on a store of 512-byte blocks, freeing
// every other value left all free space in single blocks: a checkpoint
// could place no page, and the store refused even deletes, reopen included
// (found by a review).
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
  /** Blocks of an allocation unit: every allocation takes whole units. */
  readonly unitBlocks: number;
  readonly #bits: FreeBitmap;
  /**
   * Which units are wholly free, bit u for blocks [u, u + 1) × unitBlocks
   * of the region (a partial unit at its end is never free): #bits itself
   * when unitBlocks is 1. Invariant: unit u is free here iff every block
   * of it is free in #bits.
   */
  readonly #units: FreeBitmap;
  /** Next-fit starts here: a unit index, at most #units' length. */
  #cursor = 0;
  /**
   * Disjoint free runs (unit indexes), at most #roomRunsFor of them: a lower
   * bound, kept without a search, on what the #roomRunsFor largest runs
   * hold. Allocation shrinks a run it takes from to its larger remaining
   * piece; frees leave it as it is (it stays a lower bound). Empty when
   * #roomRunsFor is 0.
   */
  #roomRuns: BitRun[] = [];
  #roomRunsFor = 0;
  #roomUnits = 0;

  /**
   * Builds the free set of [dataStartBlock, blockCount) minus `used`,
   * allocated in units of `unitBlocks` (default 1).
   * Throws StoreCorruptError if two used extents overlap or one lies outside.
   * (`bits`, for this module's factories only: the free space as it is,
   * `used` empty.)
   */
  constructor(dataStartBlock: number, blockCount: number, used: Iterable<{ extent: Extent; owner: string }>, options: { unitBlocks?: number; bits?: FreeBitmap } = {}) {
    const unitBlocks = options.unitBlocks ?? 1;
    if (!Number.isInteger(unitBlocks) || unitBlocks < 1 || (unitBlocks & (unitBlocks - 1)) !== 0) throw new RangeError(`an allocation unit of ${unitBlocks} blocks (a power of two)`);
    this.dataStartBlock = dataStartBlock;
    this.unitBlocks = unitBlocks;
    this.#bits = options.bits ?? ExtentAllocator.#bitsWithout(dataStartBlock, blockCount, used);
    if (this.#bits.bitCount !== blockCount - dataStartBlock) throw new Error(`ringstore: a bitmap of ${this.#bits.bitCount} blocks for a data region of ${blockCount - dataStartBlock}`);
    this.#units = unitBlocks === 1 ? this.#bits : this.#unitsOf(this.#bits);
  }

  /** The bits of [dataStartBlock, blockCount) with the blocks of `used` in use. */
  static #bitsWithout(dataStartBlock: number, blockCount: number, used: Iterable<{ extent: Extent; owner: string }>): FreeBitmap {
    const bits = FreeBitmap.allFree(blockCount - dataStartBlock);
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
      bits.take(extent.startBlock - dataStartBlock, end - dataStartBlock);
      next = end;
      previousOwner = owner;
    }
    return bits;
  }

  /** The units wholly free in `bits`: O(bitmap words + free runs). */
  #unitsOf(bits: FreeBitmap): FreeBitmap {
    const units = FreeBitmap.allInUse(Math.floor(bits.bitCount / this.unitBlocks));
    let index = 0;
    for (;;) {
      const start = bits.firstFree(index, bits.bitCount);
      if (start < 0) break;
      const used = bits.firstInUse(start, bits.bitCount);
      const end = used < 0 ? bits.bitCount : used;
      const first = Math.ceil(start / this.unitBlocks);
      const last = Math.floor(end / this.unitBlocks);
      if (first < last) units.release(first, last);
      index = end;
    }
    return units;
  }

  /** The allocator whose free blocks are exactly those of `free` (disjoint, in the data region). O(blocks / 32 + extents). */
  static fromFreeExtents(dataStartBlock: number, blockCount: number, free: readonly Extent[], unitBlocks = 1): ExtentAllocator {
    const allocator = new ExtentAllocator(dataStartBlock, blockCount, [], { unitBlocks, bits: FreeBitmap.allInUse(blockCount - dataStartBlock) });
    for (const extent of free) allocator.free(extent);
    return allocator;
  }

  /**
   * The allocator of a checkpoint's free-set payload, in a data region of
   * [dataStartBlock, blockCount): the blocks the payload describes as it
   * says, those past them (the store grew since) free. Throws FormatError
   * naming `firstBlock` if the payload is malformed. O(payload bytes).
   */
  static fromFreeSetPayload(payload: Uint8Array, dataStartBlock: number, blockCount: number, firstBlock: number, unitBlocks = 1): ExtentAllocator {
    const { bitmap } = decodeFreeSetBitmap(payload, blockCount - dataStartBlock, firstBlock);
    return new ExtentAllocator(dataStartBlock, blockCount, [], { unitBlocks, bits: FreeBitmap.fromInUseBytes(bitmap, blockCount - dataStartBlock) });
  }

  /** End of the data region (exclusive): the store's block count. */
  get blockCount(): number {
    return this.dataStartBlock + this.#bits.bitCount;
  }

  /** Blocks free, in whole units or not: what no extent references. */
  get freeBlockCount(): number {
    return this.#bits.freeCount;
  }

  /** Blocks of the wholly free units: what allocations can take. */
  get allocatableBlockCount(): number {
    return this.#units.freeCount * this.unitBlocks;
  }

  /** Blocks an allocation of `blockCount` blocks takes: whole units. */
  unitsBlockCount(blockCount: number): number {
    return Math.ceil(blockCount / this.unitBlocks) * this.unitBlocks;
  }

  /**
   * Extends the data region to `blockCount` blocks, all of the new ones
   * free (the store grew: its superblock names the new size, durably).
   */
  grow(blockCount: number): void {
    if (!Number.isSafeInteger(blockCount) || blockCount < this.blockCount) throw new Error(`ringstore: growing the data region from ${this.blockCount} to ${blockCount} blocks`);
    this.#bits.grow(blockCount - this.dataStartBlock);
    if (this.#units === this.#bits) return;
    // The partial unit at the old end becomes whole: free only if its
    // blocks below the old end were.
    const oldUnitCount = this.#units.bitCount;
    this.#units.grow(Math.floor(this.#bits.bitCount / this.unitBlocks));
    if (this.#units.bitCount > oldUnitCount && !this.#bits.isAllFree(oldUnitCount * this.unitBlocks, (oldUnitCount + 1) * this.unitBlocks)) {
      this.#units.take(oldUnitCount, oldUnitCount + 1);
    }
  }

  /** Maximal free runs. O(blocks / 32): for messages and tests, not for every put. */
  get freeExtentCount(): number {
    return this.#bits.runCount();
  }

  /** Maximal runs of wholly free units: the pieces allocations can take (freeExtentCount when a unit is a block). O(blocks / 32): for messages. */
  get allocatableRunCount(): number {
    return this.#units.runCount();
  }

  /**
   * Allocates `blockCount` blocks in at most `extentsMax` extents, each
   * starting on a unit, or returns undefined when the free units cannot
   * provide them.
   */
  allocate(blockCount: number, extentsMax: number): Extent[] | undefined {
    if (!(blockCount > 0) || !Number.isInteger(blockCount)) throw new RangeError(`allocate(${blockCount})`);
    const unitBlocks = this.unitBlocks;
    const unitCount = Math.ceil(blockCount / unitBlocks);
    if (unitCount > this.#units.freeCount) return undefined;
    const single = this.#findRun(unitCount);
    if (single >= 0) {
      this.#take(single * unitBlocks, single * unitBlocks + blockCount);
      this.#cursor = single + unitCount;
      return [{ startBlock: this.dataStartBlock + single * unitBlocks, blockCount }];
    }
    // Fragmented: largest runs first, so the value has as few pieces as possible.
    const chosen: Extent[] = [];
    let remaining = unitCount;
    for (const run of this.#units.longestRuns(extentsMax)) {
      if (remaining === 0) break;
      const take = Math.min(run.count, remaining);
      chosen.push({ startBlock: this.dataStartBlock + run.start * unitBlocks, blockCount: take * unitBlocks });
      remaining -= take;
    }
    if (remaining > 0) return undefined;
    // The last piece gives back what rounding to units added (less than a
    // unit, so it keeps at least one block).
    chosen[chosen.length - 1].blockCount -= unitCount * unitBlocks - blockCount;
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
    this.#release(from, from + count);
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

  /** Blocks in the `count` largest runs of free units: what an allocation limited to `count` extents can get. O(blocks / 32) at worst. */
  largestRunsBlockCount(count: number): number {
    // With `count` runs or fewer, all of them: every free unit.
    return this.#units.longestRuns(count).reduce((sum, run) => sum + run.count, 0) * this.unitBlocks;
  }

  /**
   * Whether the `count` largest free runs hold `blockCount` blocks
   * (largestRunsBlockCount(count) >= blockCount), asked on every extent put
   * for the checkpoint's free-set frame. O(count) while the runs found by
   * the last search still hold enough; a search (largestRunsBlockCount's)
   * only when they do not, so the answer is never weaker than the exact one.
   */
  largestRunsHold(count: number, blockCount: number): boolean {
    const unitCount = Math.ceil(blockCount / this.unitBlocks);
    if (this.#roomRunsFor === count && this.#roomUnits >= unitCount) return true;
    this.#roomRuns = this.#units.longestRuns(count);
    this.#roomRunsFor = count;
    this.#roomUnits = this.#roomRuns.reduce((sum, run) => sum + run.count, 0);
    return this.#roomUnits >= unitCount;
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

  /** Test hook: the bitmaps' summaries against a recomputation, the units against the blocks, and the room runs still free. */
  checkInvariants(): void {
    this.#bits.checkSummaries();
    if (this.#units !== this.#bits) {
      this.#units.checkSummaries();
      if (this.#units.bitCount !== Math.floor(this.#bits.bitCount / this.unitBlocks)) throw new Error(`ringstore: ${this.#units.bitCount} units for ${this.#bits.bitCount} blocks`);
      for (let unit = 0; unit < this.#units.bitCount; unit++) {
        const free = this.#bits.isAllFree(unit * this.unitBlocks, (unit + 1) * this.unitBlocks);
        if (free !== this.#units.isAllFree(unit, unit + 1)) throw new Error(`ringstore: unit ${unit} is ${free ? 'free' : 'in use'} but marked otherwise`);
      }
    }
    if (this.#cursor < 0 || this.#cursor > this.#units.bitCount) throw new Error(`ringstore: cursor ${this.#cursor} outside the data region`);
    let sum = 0;
    for (const run of this.#roomRuns) {
      if (!this.#units.isAllFree(run.start, run.start + run.count)) throw new Error(`ringstore: room run ${run.start}+${run.count} is not free`);
      sum += run.count;
    }
    if (sum !== this.#roomUnits || this.#roomRuns.length > this.#roomRunsFor) throw new Error('ringstore: room runs miscounted');
  }

  #inRegion(extent: Extent): boolean {
    return extent.blockCount >= 1 && extent.startBlock >= this.dataStartBlock && extent.startBlock + extent.blockCount <= this.blockCount;
  }

  /**
   * Start (unit index) of a run of at least `unitCount` free units: the
   * first from the cursor on (the run holding the cursor counts from it),
   * else, wrapping once, the first that starts before it; -1 if none.
   */
  #findRun(unitCount: number): number {
    const after = this.#units.firstRunOfAtLeast(unitCount, this.#cursor, this.#units.bitCount);
    return after >= 0 ? after : this.#units.firstRunOfAtLeast(unitCount, 0, this.#cursor);
  }

  /**
   * Marks blocks [from, to) in use (bit indexes; every bit free), and the
   * units they touch, and keeps the room runs free.
   */
  #take(from: number, to: number): void {
    this.#bits.take(from, to);
    if (this.#units !== this.#bits) {
      from = Math.floor(from / this.unitBlocks);
      to = Math.min(Math.ceil(to / this.unitBlocks), this.#units.bitCount);
      // A unit a value's last block left partly free is in use already.
      for (let index = from; index < to; ) {
        const start = this.#units.firstFree(index, to);
        if (start < 0) break;
        const used = this.#units.firstInUse(start, to);
        const end = used < 0 ? to : used;
        this.#units.take(start, end);
        index = end;
      }
    }
    for (let i = 0; i < this.#roomRuns.length; i++) {
      const run = this.#roomRuns[i];
      const end = run.start + run.count;
      if (to <= run.start || from >= end) continue;
      // The larger piece left of it: still free, still disjoint from the others.
      const below = Math.max(0, from - run.start);
      const above = Math.max(0, end - to);
      const kept = below >= above ? { start: run.start, count: below } : { start: to, count: above };
      this.#roomUnits -= run.count - kept.count;
      this.#roomRuns[i] = kept;
    }
  }

  /** Marks blocks [from, to) free (bit indexes; every bit in use), and the units that become wholly free. */
  #release(from: number, to: number): void {
    this.#bits.release(from, to);
    if (this.#units === this.#bits) return;
    const unitBlocks = this.unitBlocks;
    // Units inside [from, to) are wholly free now; the (at most two) it
    // only touches are if their other blocks are.
    const inner = Math.ceil(from / unitBlocks);
    const innerEnd = Math.max(inner, Math.min(Math.floor(to / unitBlocks), this.#units.bitCount));
    if (inner < innerEnd) this.#units.release(inner, innerEnd);
    for (const unit of [Math.floor(from / unitBlocks), Math.floor((to - 1) / unitBlocks)]) {
      if ((unit >= inner && unit < innerEnd) || unit >= this.#units.bitCount) continue;
      if (this.#units.isAllInUse(unit, unit + 1) && this.#bits.isAllFree(unit * unitBlocks, (unit + 1) * unitBlocks)) this.#units.release(unit, unit + 1);
    }
  }
}
