// PageCache: the clean nodes of the page tree in memory, keyed by block and
// bounded by an estimate of their memory, evicting by CLOCK (second chance,
// an approximation of LRU): a hit only sets the node's bit, and eviction
// walks the nodes oldest first, giving a node whose bit is set another round
// at the back. A strict LRU moved the node to the back of the Map on every
// hit, and that delete + set was 1.5 µs a hit with 7 000 pages, most of a
// getCached(). A node that prepare() pinned is never evicted (the cache then
// goes over its budget until the pins are released). Dirty nodes are never
// here: their parents hold them. The tree's record cache (record_cache.ts)
// shares the budget: what it holds is charged here (charge()), and pages
// are evicted to make room for it.
import assert from 'node:assert/strict';

import { EPOCH_NEVER, type PageRef, type TreeNode } from './tree_node.js';

/** Holes and passed slots the clock may hold beyond one per cached node before it is compacted. */
const CLOCK_HOLES_MIN = 64;

export class PageCache {
  /** The cached node of each block. */
  readonly #nodes = new Map<number, TreeNode>();
  /**
   * The clock: the cached nodes in the order eviction looks at them, from
   * #hand on, each at its cacheSlot; a hole (undefined) where a node left
   * (dropped, replaced by a newer page of its block). Slots before the hand
   * are holes too. Not the Map's own order: with nodes taken from the
   * front and added at the back, a Map keeps the slot of each deleted
   * entry until it rehashes, and an eviction starting a new iterator
   * stepped over all of them (~5 us an insert, a quarter of a close at
   * 10 M keys); a kept iterator held the Map's old table, and with it
   * nodes the cache had let go, until it next moved.
   */
  #clock: (TreeNode | undefined)[] = [];
  #hand = 0;
  /** Holes in #clock at or after the hand. */
  #holes = 0;
  readonly #bytesMax: number;
  #bytes = 0;
  /** Memory of the budget held by others (the record cache), charged through charge(). */
  #chargedBytes = 0;
  hits = 0;
  misses = 0;

  constructor(bytesMax: number) {
    if (!(Number.isSafeInteger(bytesMax) && bytesMax >= 0)) throw new RangeError(`cacheBytesMax must be an integer >= 0, got ${bytesMax}`);
    this.#bytesMax = bytesMax;
  }

  get nodeCount(): number {
    return this.#nodes.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The budget the cached nodes' memory is kept within. */
  get bytesMax(): number {
    return this.#bytesMax;
  }

  /**
   * The node of `ref` if cached (and marks it used). A cached node of the
   * same block with another CRC is an older page of a reused block: a miss
   * (the next insert of the block replaces it).
   */
  get(ref: PageRef): TreeNode | undefined {
    return this.getAt(ref.block, ref.crc);
  }

  /** get() of the page at `block` with `crc`, with no PageRef made for it (a branch's child record). */
  getAt(block: number, crc: number): TreeNode | undefined {
    const node = this.#nodes.get(block);
    // Not a miss yet: a lookup that finds nothing here may be tried again on
    // the way to a read (getCached, then the read path): the tree counts the
    // read it starts instead (recordMiss), once a page.
    if (node === undefined || node.ref!.crc !== crc) return undefined;
    this.hits++;
    node.cacheReferenced = true;
    return node;
  }

  /** Whether a node of `memoryBytes` would fit the budget beside those cached now, evicting none. */
  hasRoomFor(memoryBytes: number): boolean {
    return this.#bytes + this.#chargedBytes + memoryBytes <= this.#bytesMax;
  }

  /** Counts a page the tree reads from the device because it was not here. */
  recordMiss(): void {
    this.misses++;
  }

  /** The node of `ref` if cached, changing neither recency nor counters (for checks). */
  peek(ref: PageRef): TreeNode | undefined {
    const node = this.#nodes.get(ref.block);
    return node !== undefined && node.ref!.crc === ref.crc ? node : undefined;
  }

  /** Whether `node` is the cached node of its block. */
  holds(node: TreeNode): boolean {
    return node.ref !== undefined && this.#nodes.get(node.ref.block) === node;
  }

  /**
   * Takes `deltaBytes` of the budget for memory held elsewhere (the record
   * cache), evicting pages down to what is left; a negative delta gives
   * it back.
   */
  charge(deltaBytes: number): void {
    this.#chargedBytes += deltaBytes;
    if (this.#chargedBytes < 0) throw new Error('ringstore: the page cache was credited more than it was charged');
    if (deltaBytes > 0) this.evict();
  }

  /**
   * Adds a clean node as the most recently used, replacing its block's
   * previous node (unless that one is pinned and of another page: then
   * nothing is added), then evicts down to the budget.
   */
  insert(node: TreeNode): void {
    const ref = node.ref;
    if (ref === undefined || node.epoch !== EPOCH_NEVER) throw new Error('ringstore: only clean nodes go into the page cache');
    const previous = this.#nodes.get(ref.block);
    if (previous !== undefined) {
      // A pinned node of another page at this block stays: it is on a path
      // prepare() pinned for a write, which finds it here. A page read for an
      // older snapshot — a scan's read ahead that outlived the scan, its block
      // since freed and written again — is then not cached (a review: taking
      // the pinned node's place would leave that write's path not in memory).
      if (previous.pins > 0 && previous.ref!.crc !== ref.crc) return;
      this.#remove(previous);
    }
    if (node.cacheSlot !== -1) throw new Error('ringstore: a node went into the page cache twice');
    node.cacheReferenced = false;
    this.#nodes.set(ref.block, node);
    this.#bytes += node.memoryBytes;
    this.#append(node);
    this.evict();
  }

  /** Forgets the node of `ref` (a page the tree replaced: only older snapshots may read it again). */
  drop(ref: PageRef): void {
    const node = this.#nodes.get(ref.block);
    if (node === undefined || node.ref!.crc !== ref.crc) return;
    this.#remove(node);
  }

  /**
   * Evicts unpinned nodes while over budget, from the hand on, except that
   * a node used since the hand last passed it goes to the back once more
   * (its bit cleared), and a pinned one goes to the back as it is: nothing
   * the hand has passed is left behind it. Ends: a call looks at a node at
   * most twice (its bit is clear the second time), or only passes pinned
   * ones once it has looked at 2 × the nodes it holds.
   */
  evict(): void {
    if (this.#bytes + this.#chargedBytes <= this.#bytesMax) return;
    let looks = 2 * this.#nodes.size;
    while (this.#bytes + this.#chargedBytes > this.#bytesMax && looks > 0) {
      if (this.#hand === this.#clock.length) this.#compact();
      const node = this.#clock[this.#hand];
      this.#clock[this.#hand++] = undefined;
      if (node === undefined) {
        this.#holes--;
        continue;
      }
      looks--;
      node.cacheSlot = -1;
      if (node.pins > 0 || node.cacheReferenced) {
        if (node.pins === 0) node.cacheReferenced = false;
        this.#append(node);
      } else {
        this.#nodes.delete(node.ref!.block);
        this.#bytes -= node.memoryBytes;
      }
    }
  }

  /** Forgets every node (the store closed): their memory goes with the last reference elsewhere. */
  clear(): void {
    for (const node of this.#nodes.values()) node.cacheSlot = -1;
    this.#nodes.clear();
    this.#clock = [];
    this.#hand = 0;
    this.#holes = 0;
    this.#bytes = 0;
  }

  /** Every cached node, in the order eviction looks at them (for invariant checks). */
  *nodes(): IterableIterator<TreeNode> {
    for (let slot = this.#hand; slot < this.#clock.length; slot++) {
      const node = this.#clock[slot];
      if (node !== undefined) yield node;
    }
  }

  /** Takes `node` (cached) out of the cache. */
  #remove(node: TreeNode): void {
    assert.equal(this.#clock[node.cacheSlot], node, 'a cached node is at its clock slot');
    this.#clock[node.cacheSlot] = undefined;
    node.cacheSlot = -1;
    this.#holes++;
    this.#nodes.delete(node.ref!.block);
    this.#bytes -= node.memoryBytes;
    // Holes cost the hand a step each: not more of them than nodes.
    if (this.#holes > this.#nodes.size + CLOCK_HOLES_MIN) this.#compact();
  }

  /** Puts `node` at the back of the clock. */
  #append(node: TreeNode): void {
    node.cacheSlot = this.#clock.length;
    this.#clock.push(node);
    if (this.#hand > this.#nodes.size + CLOCK_HOLES_MIN) this.#compact();
  }

  /** Drops the slots before the hand and the holes after it: O(nodes), once per as many removals or passes. */
  #compact(): void {
    this.#clock = compactClock(this.#clock, this.#hand, (node, slot) => {
      node.cacheSlot = slot;
    });
    this.#hand = 0;
    this.#holes = 0;
  }
}

/**
 * A CLOCK's slots from `hand` on, holes (undefined) dropped, each item told
 * its new slot: the compaction of PageCache's and RecordCache's clocks.
 */
export function compactClock<T>(clock: readonly (T | undefined)[], hand: number, setSlot: (item: T, slot: number) => void): T[] {
  const compacted: T[] = [];
  for (let slot = hand; slot < clock.length; slot++) {
    const item = clock[slot];
    if (item === undefined) continue;
    setSlot(item, compacted.length);
    compacted.push(item);
  }
  return compacted;
}
