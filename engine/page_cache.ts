// PageCache: the clean nodes of the page tree in memory, keyed by block and
// bounded by an estimate of their memory, evicting by CLOCK (second chance,
// an approximation of LRU): a hit only sets the node's bit, and eviction
// walks the nodes oldest first, giving a node whose bit is set another round
// at the back. A strict LRU moved the node to the back of the Map on every
// hit, and that delete + set was 1.5 µs a hit with 7 000 pages, most of a
// getCached(). A node that prepare() pinned is never evicted (the cache then
// goes over its budget until the pins are released). Dirty nodes are never
// here: their parents hold them.
import { EPOCH_NEVER, type PageRef, type TreeNode } from './tree_node.js';

export class PageCache {
  /** In the order of the clock: the first entry is the next the eviction looks at. */
  readonly #nodes = new Map<number, TreeNode>();
  readonly #bytesMax: number;
  /** The clock hand (see evict()); undefined: at the front. */
  #hand: IterableIterator<[number, TreeNode]> | undefined;
  #bytes = 0;
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

  /**
   * The node of `ref` if cached (and marks it used). A cached node of the
   * same block with another CRC is an older page of a reused block: a miss
   * (the next insert of the block replaces it).
   */
  get(ref: PageRef): TreeNode | undefined {
    const node = this.#nodes.get(ref.block);
    // Not a miss yet: a lookup that finds nothing here may be tried again on
    // the way to a read (getCached, then the read path): the tree counts the
    // read it starts instead (recordMiss), once a page.
    if (node === undefined || node.ref!.crc !== ref.crc) return undefined;
    this.hits++;
    node.cacheReferenced = true;
    return node;
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

  /** Adds a clean node as the most recently used, replacing its block's previous node, then evicts down to the budget. */
  insert(node: TreeNode): void {
    const ref = node.ref;
    if (ref === undefined || node.epoch !== EPOCH_NEVER) throw new Error('ringstore: only clean nodes go into the page cache');
    const previous = this.#nodes.get(ref.block);
    if (previous !== undefined) {
      this.#bytes -= previous.memoryBytes;
      this.#nodes.delete(ref.block);
    }
    node.cacheReferenced = false;
    this.#nodes.set(ref.block, node);
    this.#bytes += node.memoryBytes;
    this.evict();
  }

  /** Forgets the node of `ref` (a page the tree replaced: only older snapshots may read it again). */
  drop(ref: PageRef): void {
    const node = this.#nodes.get(ref.block);
    if (node === undefined || node.ref!.crc !== ref.crc) return;
    this.#nodes.delete(ref.block);
    this.#bytes -= node.memoryBytes;
  }

  /**
   * Evicts unpinned nodes while over budget, oldest first, except that a
   * node used since the hand last passed it goes to the back once more
   * (its bit cleared).
   *
   * The hand is a live iterator kept from one call to the next, not a new
   * one a call: a Map keeps a deleted entry's slot until it is rehashed,
   * so with nodes taken from the front and added at the back a new
   * iterator first stepped over every slot evicted since the last rehash.
   * That was ~5 µs a call, 124 ms of a 470 ms close at 10 M keys (one
   * evict() per page the close's checkpoint put in the cache). A live Map
   * iterator sees entries added after it and skips deleted ones, and
   * follows the Map through rehashes. Ends: a call looks at each node at
   * most three times (from the hand to the end, once more after its bit is
   * cleared, and after one restart at the front); only pinned nodes are
   * passed over more than once.
   */
  evict(): void {
    if (this.#bytes <= this.#bytesMax) return;
    let steps = 3 * this.#nodes.size + 2;
    while (this.#bytes > this.#bytesMax && steps-- > 0) {
      let next = this.#hand?.next();
      if (next === undefined || next.done === true) {
        this.#hand = this.#nodes.entries();
        next = this.#hand.next();
        if (next.done === true) return;
      }
      const [block, node] = next.value;
      if (node.pins > 0) continue;
      this.#nodes.delete(block);
      if (node.cacheReferenced) {
        node.cacheReferenced = false;
        this.#nodes.set(block, node);
      } else {
        this.#bytes -= node.memoryBytes;
      }
    }
  }

  /** Forgets every node (the store closed): their memory goes with the last reference elsewhere. */
  clear(): void {
    this.#nodes.clear();
    this.#hand = undefined;
    this.#bytes = 0;
  }

  /** Every cached node, least recently used first (for invariant checks). */
  nodes(): IterableIterator<TreeNode> {
    return this.#nodes.values();
  }
}
