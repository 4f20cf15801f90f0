// PageTree: the store's index as a copy-on-write B+tree of pages, in memory
// over pages on disk, with incremental checkpoints (engine v2).
//
// Nodes are described in engine/tree_node.ts. Clean nodes (on disk) live in
// a bounded CLOCK cache (engine/page_cache.ts); dirty nodes (not yet written) are
// held by their parents until a checkpoint writes them. IO and encoding come
// through the injected TreePageIo and PageMeasure; pages come into memory
// through engine/tree_loader.ts, which checks them, and the invariants are
// asserted by engine/tree_invariants.ts.
//
// Copy-on-write: the tree has a write epoch. A node is mutable only if it was
// created in the current epoch (nodes read from disk or frozen by a
// checkpoint never are). snapshot() and beginCheckpoint() bump the epoch, so
// the writes after them copy every node they touch, along the path from the
// root, and the state they captured stays as it was: O(1) snapshots.
//
// Writes are synchronous so a batch applies atomically; prepare() first
// loads (and pins) the pages they need (engine/tree_prepare.ts). Reads of
// uncached pages are async.
//
// Garbage. When a write replaces (copies, merges away, removes) a node that
// has a block, or a dirty node that the running checkpoint will give one,
// that page is garbage: its PageRef (or, until the checkpoint completes, the
// node) goes into the list G. beginCheckpoint() takes G and starts a new one;
// the caller frees G's blocks once that checkpoint is durable. Why each such
// block is unreachable from the new checkpoint's root:
//   1. A replaced node is, right after the write, unreachable from the
//      current root: the write copied (or mutated in place, when mutable)
//      every node on the path from the root to it, and the new path points
//      at the replacement, not at it.
//   2. Writes never link a node that is unreachable from the current root:
//      they link new nodes, or move children between nodes that are both
//      reachable (splits, merges, borrowing), and snapshots only read.
//      So once unreachable from the current root, a node stays so.
//   3. A checkpoint's root is the current root at its beginCheckpoint(), so
//      its pages are all reachable from it; by 1 and 2, nothing that was
//      in G before that moment is.
// Snapshots and reads that began before the replacing write may still reach
// these blocks: see CheckpointPlan.garbageBlocks().
import { KEY_SIZE_MAX } from '../format/constants.js';
import { BranchPage } from './branch_page.js';
import { PageCache } from './page_cache.js';
import { RECORD_CACHE_SHARE, RecordCache } from './record_cache.js';
import { StoreCorruptError } from './store_error.js';
import { ownedEntry, type IndexEntry } from './store_index.js';
import { CheckpointPlan } from './tree_checkpoint.js';
import { checkTreeInvariants } from './tree_invariants.js';
import { TreeLoader } from './tree_loader.js';
import { PathPreparer, type PreparedPaths } from './tree_prepare.js';
import { splitPagePieces, splitPieces } from './tree_split.js';
import { rangeEntries, rangeRuns, type LeafRun, type NodeSource, type RangeOptions } from './tree_cursor.js';
import { boundStrings, narrowBounds, type WalkBounds } from './tree_walk_bounds.js';
import {
  branchBytes,
  childAt,
  childCount,
  childIndexFor,
  copyNode,
  editBranch,
  EPOCH_NEVER,
  insertAt,
  isNode,
  leafArrays,
  leafCount,
  leafFind,
  leafRecords,
  lowerBound,
  newBranch,
  newLeaf,
  newOwnedPageLeaf,
  nodeMemoryBytes,
  NO_ROOM,
  pageLeafDelete,
  pageLeafAppend,
  pageLeafSet,
  separatorAt,
  type BranchNode,
  type Child,
  type LeafNode,
  type PageMeasure,
  type PageRef,
  type TreeNode,
  type TreePageIo,
} from './tree_node.js';
import { WritePath } from './write_path.js';

export type { BranchNode, Child, DecodedTreePage, LeafNode, PageMeasure, PageRef, TreeNode, TreePageIo } from './tree_node.js';
export type { RangeOptions } from './tree_cursor.js';
export { CheckpointPlan } from './tree_checkpoint.js';
export { PreparedPaths } from './tree_prepare.js';

/** getCached()'s answer when a page on the key's path is not in memory. */
export const NOT_CACHED: unique symbol = Symbol('ringstore.NOT_CACHED');
export type NotCached = typeof NOT_CACHED;

/**
 * After a delete, a node under capacityBytes / MERGE_FILL_DIVISOR merges
 * into a sibling when the two fit one page. Merging only well below half
 * full keeps inserts and deletes that alternate near a page boundary from
 * merging and splitting the same pages again and again.
 */
export const MERGE_FILL_DIVISOR = 4;

export interface PageTreeOptions extends PageMeasure {
  readonly io: TreePageIo;
  /**
   * Memory budget of the clean pages in the cache (by nodeMemoryBytes's
   * estimate). Pinned pages (prepare()) stay even over it; dirty pages are
   * not counted here (stats().dirtyMemoryBytes).
   */
  readonly cacheBytesMax: number;
  /**
   * The most the record cache may take of cacheBytesMax (record_cache.ts);
   * default 1 / RECORD_CACHE_SHARE of it. 0: no records (tests that probe
   * which pages are cached through getCached()).
   */
  readonly recordCacheBytesMax?: number;
  /** Longest key (and so separator) in chars; default KEY_SIZE_MAX. Three separators of this length must fit in a branch. */
  readonly keySizeMax?: number;
}

/** An O(1) frozen state of the tree, for entries() and walk(). */
export interface TreeSnapshot {
  readonly root: Child | undefined;
  /** Level of the root (0: a leaf). */
  readonly level: number;
  readonly keyCount: number;
  /** The write epoch it froze; later writes are in higher epochs. */
  readonly epoch: number;
}

/**
 * A snapshot for walk(): with its dirty nodes (no block yet when it was
 * taken) and, for dirty branches, their children as they were then. A
 * checkpoint completing later gives those nodes blocks and swaps the
 * branches' child slots for the new refs in place (complete()); a walk
 * that read them then would count blocks its caller's bookkeeping, taken
 * with the snapshot, still has as free.
 */
export interface WalkSnapshot extends TreeSnapshot {
  readonly dirty: ReadonlyMap<TreeNode, readonly Child[] | undefined>;
}

/** walk() of a plain TreeSnapshot: no node seen as it was. */
const NO_DIRTY_NODES: ReadonlyMap<TreeNode, readonly Child[] | undefined> = new Map();

/**
 * Where the last #findCached that met a page not in memory stopped: `child`,
 * at `level`, with the bounds its walk had reached (as a prepare() round's
 * walks stop, engine/tree_prepare.ts). get() of the same key right after
 * (a cold point read: StoreReader asks getCached() first) goes on from
 * there instead of walking the same nodes from the root again.
 */
interface CachedWalkStop extends WalkBounds {
  key: string | undefined;
  writeCount: number;
  root: Child | undefined;
  child: PageRef | undefined;
  level: number;
}

export interface PageTreeStats {
  readonly keyCount: number;
  /** Levels: 0 for an empty tree, 1 for a single leaf. */
  readonly height: number;
  /**
   * Dirty nodes reachable from the current root: what the next checkpoint
   * would write now (while one runs, this includes its nodes that no write
   * replaced since). Counted by a walk of the dirty nodes: O(their number).
   */
  readonly dirtyNodeCount: number;
  /** Their page bytes by PageMeasure. */
  readonly dirtyPageBytes: number;
  /** Their estimated memory. */
  readonly dirtyMemoryBytes: number;
  readonly cachedNodeCount: number;
  readonly cachedMemoryBytes: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  /** Pages in G: the next checkpoint to begin takes them, to free once durable. */
  readonly garbageCount: number;
}

/** PageTree's #appendFinger: a leaf in page form, the bound its keys stay below, and the write count when it was taken. */
interface AppendFinger {
  readonly leaf: LeafNode;
  readonly high: string | undefined;
  writeCount: number;
}

/**
 * A page the repair of underflowed nodes needed could not be read (`cause`:
 * the read's error, an IO error or ERR_STORE_CORRUPT). Nothing of the tree
 * changed: the checkpoint that asked is refused, and the store goes on, as
 * it does after any failed read (Checkpointer).
 */
export class PageUnreadable extends Error {
  constructor(cause: unknown) {
    super('a page the repair of underflowed nodes needs could not be read', { cause });
  }
}

export class PageTree {
  readonly #loader: TreeLoader;
  /** The codec, for the pages of new leaves (TreePageIo.leafPageOf; without it new leaves are arrays). */
  readonly #pages: Pick<TreePageIo, 'leafPageOf'>;
  readonly #measure: PageMeasure;
  readonly #capacityBytes: number;
  readonly #keySizeMax: number;
  readonly #cache: PageCache;
  /** Entries of keys gets find again and again (record_cache.ts); set() and delete() forget a key first. */
  readonly #records: RecordCache;
  readonly #path = new WritePath();
  /** Whether the pages a checkpoint wrote enter the page cache (stopCachingWrittenPages). */
  #cacheWrittenPages = true;
  #epoch = 0;
  #root: Child | undefined;
  #level: number;
  #keyCount: number;
  /**
   * G: replaced pages. Outside a running checkpoint only PageRefs; while one
   * runs also the nodes of its plan that writes replaced (they get their
   * blocks when it completes, and are then turned into their PageRefs).
   */
  #garbage: (PageRef | TreeNode)[] = [];
  #plan: CheckpointPlan | undefined;
  /**
   * The running plan's child slots that hold nodes, as beginCheckpoint()
   * found them: slot #planSlotIndexes[i] of branch #planSlotBranches[i]. Its
   * branches are frozen, so these stay the slots to turn into refs once the
   * nodes are written (complete()), without a second look at every child of
   * every branch written (~14 ms of a checkpoint of ~24 k pages at 10 M
   * keys, docs/benchmarks.md, "Session 28").
   */
  #planSlotBranches: BranchNode[] = [];
  #planSlotIndexes: number[] = [];
  /**
   * Nodes made mutable since the last beginCheckpoint() (copies, new roots,
   * split pieces): with the running plan's nodes, an upper bound of the
   * dirty nodes, kept in O(1) for the store's space reserve (stats() counts
   * them exactly, by a walk).
   */
  #dirtyCreated = 0;
  /**
   * Keys on whose path a delete left an empty leaf or a branch of one child
   * for want of a neighbour in memory (#rebalance); repairUnderflows()
   * fixes them before a checkpoint freezes the tree.
   */
  readonly #underflowKeys = new Set<string>();
  /** Repairs done (#repairPath): a write prepared before one must be prepared again (repairCount). */
  #repairCount = 0;
  /**
   * Calls that may change the tree's nodes or drop them from memory (set,
   * delete, #repairPath, releaseCache): a prepare() round whose reads saw
   * it move walks its keys from the root again instead of going on from
   * where they stopped.
   */
  #writeCount = 0;
  /**
   * The last #findCached's stop (CachedWalkStop): valid for its key while
   * no write came between (#writeCount) and the root is the same; taken
   * once (its key cleared).
   */
  readonly #cachedWalkStop: CachedWalkStop = {
    key: undefined,
    writeCount: -1,
    root: undefined,
    child: undefined,
    level: 0,
    lowPage: undefined,
    lowIndex: 0,
    highPage: undefined,
    highIndex: 0,
  };
  /**
   * The leaf the last set() appended to (its new key past the leaf's last),
   * with the bound its keys stay below (undefined: none, the rightmost
   * leaf), while #path still leads to it: the next key of an ascending run
   * (a sorted load) that falls in it is appended without a walk from the
   * root, which took ~0.4 µs of a sorted put's ~4.4 here (session 34).
   * Valid only while no other write came between (#writeCount) and the leaf
   * is still mutable (a snapshot or a checkpoint moves the epoch on).
   */
  #appendFinger: AppendFinger | undefined;
  readonly #source: NodeSource;
  readonly #preparer: PathPreparer;

  /**
   * `root` is the last checkpoint's root page and its level (undefined for
   * an empty tree); `keyCount` the keys under it (the superblock records it).
   */
  constructor(options: PageTreeOptions, root: { ref: PageRef; level: number } | undefined, keyCount: number) {
    const { io, capacityBytes, entryBytes, childBytes, cacheBytesMax } = options;
    this.#keySizeMax = options.keySizeMax ?? KEY_SIZE_MAX;
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes <= 0) throw new RangeError(`capacityBytes must be a positive integer, got ${capacityBytes}`);
    // A branch split packs children greedily; with every child at most a
    // third of a page each piece gets at least two (see tree_split.ts, chunkStarts).
    const longest = '\xff'.repeat(this.#keySizeMax);
    if (3 * childBytes(longest) > capacityBytes) {
      throw new RangeError(`capacityBytes ${capacityBytes} cannot hold 3 children with separators of ${this.#keySizeMax} bytes (${childBytes(longest)} bytes each)`);
    }
    if (!Number.isSafeInteger(keyCount) || keyCount < 0 || (root === undefined) !== (keyCount === 0)) {
      throw new RangeError(`keyCount ${keyCount} does not match a ${root === undefined ? 'missing' : 'present'} root`);
    }
    this.#measure = { entryBytes, childBytes, capacityBytes };
    this.#capacityBytes = capacityBytes;
    this.#cache = new PageCache(cacheBytesMax);
    this.#records = new RecordCache(options.recordCacheBytesMax ?? Math.floor(cacheBytesMax / RECORD_CACHE_SHARE), (deltaBytes) => this.#cache.charge(deltaBytes));
    this.#loader = new TreeLoader({ io, cache: this.#cache, measure: this.#measure, keySizeMax: this.#keySizeMax });
    this.#pages = io;
    this.#root = root?.ref;
    this.#level = root?.level ?? 0;
    this.#keyCount = keyCount;
    this.#source = {
      cached: (ref) => this.#cache.get(ref),
      load: (ref, level, low, high) => this.#loader.load(ref, level, low, high),
      giveBack: (node) => this.#loader.giveBack(node),
    };
    // The preparer reads these fields as they are at each walk, through getters (private to this class).
    const tree = this;
    this.#preparer = new PathPreparer(
      {
        get root() {
          return tree.#root;
        },
        get level() {
          return tree.#level;
        },
        get writeCount() {
          return tree.#writeCount;
        },
      },
      this.#cache,
      this.#loader,
    );
  }

  get size(): number {
    return this.#keyCount;
  }

  /**
   * The pages replaced since the last beginCheckpoint(): still on disk and
   * in use until the next checkpoint is durable (verifyIntegrity counts
   * them). Only between checkpoints (a running plan's nodes have no block yet).
   */
  replacedPages(): PageRef[] {
    if (this.#plan !== undefined) throw new Error('ringstore: replacedPages() while a checkpoint is running');
    return [...(this.#garbage as PageRef[])];
  }

  /**
   * Empties the page cache, for a store that closed: a closed store the
   * application still references must not hold its cache (measured: 137 MiB
   * at 1 M keys, the clean pages its last checkpoint wrote). Reads after it
   * would load pages again; the façade refuses them once closed.
   */
  releaseCache(): void {
    this.#records.clear();
    this.#cache.clear();
    // Nor keep a leaf or a branch page alive through the walks' short cuts.
    this.#appendFinger = undefined;
    this.#preparer.forget();
    const stop = this.#cachedWalkStop;
    stop.key = undefined;
    stop.root = stop.child = stop.lowPage = stop.highPage = undefined;
    // Pinned nodes go too: a prepare() in its reads walks from the root again.
    this.#writeCount++;
  }

  /**
   * From now on, the pages a checkpoint writes leave memory once it is
   * durable instead of entering the page cache (pinned ones aside): close()
   * calls it before its last checkpoint, whose pages nothing reads again.
   * Measuring and inserting them, and evicting as many, was a sixth of the
   * CPU of a 2 M-key store's close after a load (~30 k pages).
   */
  stopCachingWrittenPages(): void {
    this.#cacheWrittenPages = false;
  }

  /** The page cache's counters, O(1) (stats() walks the dirty nodes). */
  cacheStats(): {
    pagesCached: number;
    pageCacheBytes: number;
    pageCacheHits: number;
    pageCacheMisses: number;
    recordsCached: number;
    recordCacheBytes: number;
    recordCacheHits: number;
  } {
    return {
      pagesCached: this.#cache.nodeCount,
      pageCacheBytes: this.#cache.bytes,
      pageCacheHits: this.#cache.hits,
      pageCacheMisses: this.#cache.misses,
      recordsCached: this.#records.size,
      recordCacheBytes: this.#records.bytes,
      recordCacheHits: this.#records.hits,
    };
  }

  /**
   * At least the nodes made dirty since the running (or last) checkpoint
   * froze the tree: what the next checkpoint writes beyond the running
   * one, whose blocks are allocated already. O(1).
   */
  get dirtyNodeCountSinceFreeze(): number {
    return this.#dirtyCreated;
  }

  /** At least the dirty nodes (what the next checkpoint writes, with the running one's); O(1). */
  get dirtyNodeCountMax(): number {
    return this.#dirtyCreated + (this.#plan?.dirtyNodes.length ?? 0);
  }

  /**
   * Whether `key`'s entry `entry` fits one page, as set() needs: a value
   * whose record names many extents (a long write stream) can outgrow it.
   * Checked before such a write is committed: once in the WAL, an entry
   * set() refuses would fail every replay of it.
   */
  entryFits(key: string, entry: IndexEntry): boolean {
    return this.#measure.entryBytes(key, entry) <= this.#capacityBytes;
  }

  get height(): number {
    return this.#root === undefined ? 0 : this.#level + 1;
  }

  // ---- Reads ----

  /**
   * The entry of `key` if it is a record (record_cache.ts) or every page on
   * its path is in memory; NOT_CACHED otherwise. Never does IO. A key found
   * in a leaf may become a record (the second time the doorkeeper sees it).
   */
  getCached(key: string): IndexEntry | undefined | NotCached {
    const record = this.#records.get(key);
    if (record !== undefined) return record;
    const entry = this.#findCached(key);
    if (entry !== undefined && entry !== NOT_CACHED) this.#records.admit(key, entry);
    return entry;
  }

  /** getCached() by the tree alone: its walk down the nodes in memory, admitting no record. */
  #findCached(key: string): IndexEntry | undefined | NotCached {
    // The stop's bounds are this walk's scratch: a stop is the last walk's only.
    const stop = this.#cachedWalkStop;
    stop.key = undefined;
    stop.lowPage = stop.highPage = undefined;
    const root: Child | undefined = this.#root;
    if (root === undefined) return undefined;
    let node: TreeNode | undefined = isNode(root) ? root : this.#cache.get(root);
    if (node === undefined) return this.#stopCachedWalk(key, root as PageRef, this.#level);
    for (;;) {
      if (node.kind === 'leaf') return leafFind(node, key);
      // A clean child is looked up by its record's block and CRC: no PageRef made.
      const page: BranchPage<TreeNode> = node.page;
      const index = page.childIndexFor(key);
      narrowBounds(stop, page, index);
      const next: TreeNode | undefined = page.nodeAt(index) ?? this.#cache.getAt(page.blockAt(index), page.crcAt(index));
      if (next === undefined) return this.#stopCachedWalk(key, page.refAt(index), node.level - 1);
      node = next;
    }
  }

  /** Records where #findCached stopped (its bounds are in the stop already). */
  #stopCachedWalk(key: string, child: PageRef, level: number): NotCached {
    const stop = this.#cachedWalkStop;
    stop.key = key;
    stop.writeCount = this.#writeCount;
    stop.root = this.#root;
    stop.child = child;
    stop.level = level;
    return NOT_CACHED;
  }

  /**
   * The entry of `key` in the tree as it is now, reading pages that are not
   * cached (the nodes in memory are taken at the call). Right after
   * getCached() found a page on the key's path not in memory, it goes on
   * from that page (CachedWalkStop).
   */
  get(key: string): Promise<IndexEntry | undefined> {
    const stop = this.#cachedWalkStop;
    if (stop.key === key && stop.writeCount === this.#writeCount && stop.root === this.#root) {
      stop.key = undefined;
      const child = stop.child!;
      stop.child = undefined;
      const { low, high } = boundStrings(stop, undefined, undefined);
      return this.#getFrom(child, stop.level, key, low, high);
    }
    return this.#getFrom(this.#root, this.#level, key, undefined, undefined);
  }

  /** The entry of `key` in `snapshot`, reading pages that are not cached. */
  getIn(snapshot: TreeSnapshot, key: string): Promise<IndexEntry | undefined> {
    return this.#getFrom(snapshot.root, snapshot.level, key, undefined, undefined);
  }

  /**
   * The entry of `key` under `root` (at `level`, its keys within [low,
   * high)), reading pages that are not cached.
   */
  async #getFrom(root: Child | undefined, rootLevel: number, key: string, low: string | undefined, high: string | undefined): Promise<IndexEntry | undefined> {
    let child: Child | undefined = root;
    if (child === undefined) return undefined;
    let level = rootLevel;
    // The bounds of the branches walked since the last read (a key string a
    // level cost ~0.45 µs of a cold get here).
    const bounds: WalkBounds = { lowPage: undefined, lowIndex: 0, highPage: undefined, highIndex: 0 };
    for (;;) {
      // The nodes are taken from the tree as it was at the call: a write
      // during a read replaces nodes, it does not change those taken.
      let node: TreeNode | undefined = isNode(child) ? child : this.#cache.get(child);
      if (node === undefined) {
        // The bounds as strings now, before the read: a dirty branch walked
        // may be written to while it is in flight.
        ({ low, high } = boundStrings(bounds, low, high));
        // A leaf not in the cache: the loader decides whether to keep it.
        if (level === 0) return this.#loader.lookUp(child as PageRef, low, high, key);
        node = await this.#loader.load(child as PageRef, level, low, high);
      }
      if (node.kind === 'leaf') return leafFind(node, key);
      const page: BranchPage<TreeNode> = node.page;
      const index = page.childIndexFor(key);
      narrowBounds(bounds, page, index);
      child = page.childAt(index);
      level--;
    }
  }

  /** Freezes the current state: O(1); later writes copy what they touch. */
  snapshot(): TreeSnapshot {
    const snapshot = { root: this.#root, level: this.#level, keyCount: this.#keyCount, epoch: this.#epoch };
    this.#epoch++;
    return snapshot;
  }

  /**
   * snapshot() for walk(), which sees the tree as it is now whatever
   * checkpoints complete during the walk. O(dirty nodes): it notes each,
   * and copies each dirty branch's child slots.
   */
  snapshotForWalk(): WalkSnapshot {
    const snapshot = this.snapshot();
    const dirty = new Map<TreeNode, readonly Child[] | undefined>();
    const note = (node: TreeNode): void => {
      if (node.ref !== undefined) return;
      if (node.kind === 'leaf') {
        dirty.set(node, undefined);
        return;
      }
      dirty.set(node, node.page.children());
      node.page.forEachNode(note);
    };
    if (snapshot.root !== undefined && isNode(snapshot.root)) note(snapshot.root);
    return { ...snapshot, dirty };
  }

  /** The snapshot's entries in the range, in bytewise key order (or reversed), reading pages with read-ahead. */
  entries(snapshot: TreeSnapshot, range: RangeOptions = {}): AsyncIterable<[string, IndexEntry]> {
    return rangeEntries(snapshot.root, snapshot.level, this.#source, range);
  }

  /**
   * entries() a leaf at a time (LeafRun): for scans, which pay per step of
   * an async iteration. A run's leaf, and the views its entries hold (inline
   * values), may be read only until the next run is asked for: past the
   * scan's share of the cache, leaves are lent, not cached
   * (TreeLoader.loadForScan).
   */
  runs(snapshot: TreeSnapshot, range: RangeOptions = {}): AsyncIterable<LeafRun> {
    const admission = this.#loader.newScanAdmission();
    const source: NodeSource = { ...this.#source, loadForScan: (ref, level, low, high) => this.#loader.loadForScan(ref, level, low, high, admission) };
    return rangeRuns(snapshot.root, snapshot.level, source, range, true);
  }

  /** Leaves lent to scans and not yet given back (0 once every scan has ended and its reads ahead have landed). */
  get lentLeafCount(): number {
    return this.#loader.lentCount;
  }

  /**
   * Visits every page of the snapshot, parents before children, with its
   * ref, reading pages as it goes (and checking each read page's structure
   * and key bounds: StoreCorruptError). Of a WalkSnapshot, the tree as it
   * was when the snapshot was taken: a node dirty then has no ref, though a
   * checkpoint may have written it since. Of a TreeSnapshot, refs as they
   * are when visited: the blocks of pages checkpoints wrote since count too
   * (what a reader of the snapshot may read).
   */
  async walk(snapshot: TreeSnapshot | WalkSnapshot, visit: (node: Readonly<TreeNode>, ref: PageRef | undefined) => void): Promise<void> {
    const root = snapshot.root;
    if (root === undefined) return;
    const dirty = 'dirty' in snapshot ? snapshot.dirty : NO_DIRTY_NODES;
    const refOf = (node: TreeNode): PageRef | undefined => (dirty.has(node) ? undefined : node.ref);
    const visitNode = async (node: TreeNode, ref: PageRef | undefined, low: string | undefined, high: string | undefined): Promise<void> => {
      visit(node, ref);
      if (node.kind === 'leaf') return;
      const branch: BranchNode = node;
      // A branch clean at the snapshot never changes its slots; a dirty one's are read as they were.
      const children = dirty.get(branch) ?? branch.page.children();
      const separators = branch.page.separators();
      const boundsOf = (index: number): [string | undefined, string | undefined] => [
        index === 0 ? low : separators[index - 1],
        index === separators.length ? high : separators[index],
      ];
      // The children of one branch are read together (a few hundred reads
      // at most), then visited in order.
      const loaded = await Promise.all(children.map((child, index) => (isNode(child) ? child : this.#loader.load(child, branch.level - 1, ...boundsOf(index)))));
      for (let index = 0; index < loaded.length; index++) {
        const child = children[index]!;
        await visitNode(loaded[index]!, isNode(child) ? refOf(child) : child, ...boundsOf(index));
      }
    };
    await visitNode(isNode(root) ? root : await this.#loader.load(root, snapshot.level, undefined, undefined), isNode(root) ? refOf(root) : root, undefined, undefined);
  }

  // ---- Writes ----

  /**
   * Loads every page on the paths of `setKeys` and `deleteKeys`, and the
   * siblings of the pages on the paths of `deleteKeys` (which the merges and
   * borrows after a delete touch), and pins them so the cache keeps them
   * until release(). Then set() of `setKeys` and delete() of `deleteKeys`
   * need no IO. Sets never merge, so they cost no sibling reads.
   * The siblings pinned are those of the moment: a merge in the same batch
   * can bring an unpinned page next to a node of a path (found by a review:
   * a clear() of long keys failed the store, and its WAL replay failed
   * again at every open). Merges, borrows and an empty leaf's range only go
   * to nodes in memory; a branch left with one child, or an empty leaf,
   * with none in memory stays so until repairUnderflows() (#rebalance).
   * REQUIRES: no other writes between this and the writes of these keys (the
   * commit loop applies one batch at a time), and no repair (repairCount
   * unchanged: else prepare again); a checkpoint may complete in between
   * (pinned nodes it makes clean stay cached). Arrays of keys are
   * read as they are, not copied: unchanged until the promise settles.
   */
  prepare(setKeys: Iterable<string>, deleteKeys: Iterable<string> = []): Promise<PreparedPaths> {
    return this.#preparer.prepare(setKeys, deleteKeys);
  }

  /**
   * At most how many nodes writing the prepared keys makes dirty, not
   * counting splits: every pinned node on their paths (and the siblings a
   * delete may merge with) that is not mutable now will be copied.
   */
  nodesToCopy(prepared: PreparedPaths): number {
    let count = 0;
    for (const node of prepared.nodes) if (node.epoch !== this.#epoch || node.ref !== undefined || node.planned) count++;
    return count;
  }

  /** Unpins what prepare() pinned. */
  release(prepared: PreparedPaths): void {
    this.#preparer.release(prepared);
  }

  /**
   * Sets `key` to `entry`; returns the previous entry. An inline value is
   * copied, into the leaf's page or, for a leaf in array form, into memory
   * of the entry's own: the caller may hand a view of shared memory. Throws
   * an Error (a bug) if a page on the path is not in memory: prepare() the
   * keys first.
   */
  set(key: string, entry: IndexEntry): IndexEntry | undefined {
    this.#checkKey(key);
    this.#writeCount++;
    this.#records.forget(key);
    const bytes = this.#measure.entryBytes(key, entry);
    if (!(bytes <= this.#capacityBytes)) throw new RangeError(`an entry of ${bytes} bytes does not fit a page of ${this.#capacityBytes}`);
    if (this.#root === undefined) {
      this.#root = this.#newLeaf([key], [entry], bytes);
      this.#dirtyCreated++;
      this.#level = 0;
      this.#keyCount = 1;
      return undefined;
    }
    const finger = this.#appendFingerFor(key);
    const leaf = finger?.leaf ?? this.#writablePath(key);
    this.#appendFinger = undefined;
    if (leaf.page !== undefined) {
      const previous = finger !== undefined ? pageLeafAppend(leaf, key, entry, bytes, this.#capacityBytes) : pageLeafSet(leaf, key, entry, bytes, this.#capacityBytes);
      if (previous !== NO_ROOM) {
        if (previous === undefined) {
          this.#keyCount++;
          if (finger !== undefined) {
            // The same leaf and path: the finger holds on.
            finger.writeCount = this.#writeCount;
            this.#appendFinger = finger;
          } else if (leaf.page.compareKeyAt(leaf.page.count - 1, key) === 0) {
            this.#appendFinger = { leaf, high: this.#pathHigh(), writeCount: this.#writeCount };
          }
        }
        return previous;
      }
      // No room in its page: it is cut into new pages, its records copied as
      // they are. Past its last key (a sorted load) the cut packs from the
      // left: the page stays as it is, full, and the key starts a new leaf.
      const page = leaf.page;
      const index = page.lowerBound(key);
      const replaces = index < page.count && page.compareKeyAt(index, key) === 0;
      const replaced = replaces ? page.detachedEntryAt(index) : undefined;
      const cut = splitPagePieces(leaf, index, replaces, key, entry, bytes, index === page.count, this.#epoch, this.#capacityBytes);
      // The first piece is the leaf itself, dirty already.
      this.#dirtyCreated += cut.pieces.length - 1;
      if (!replaces) this.#keyCount++;
      this.#split(this.#path, leaf, false, cut);
      return replaced;
    }
    const { keys, entries } = leafArrays(leaf);
    const index = lowerBound(keys, key);
    // A leaf in array form keeps the entry itself: its own copy of an
    // inline value, not the write's, which is carved from a slab that
    // would stay alive whole with it (value_copy_slab.ts).
    const kept = ownedEntry(entry);
    let previous: IndexEntry | undefined;
    if (keys[index] === key) {
      previous = entries[index]!;
      leaf.bytes += bytes - this.#measure.entryBytes(key, previous);
      entries[index] = kept;
    } else {
      insertAt(keys, index, key);
      insertAt(entries, index, kept);
      leaf.bytes += bytes;
      this.#keyCount++;
    }
    if (leaf.bytes > this.#capacityBytes) this.#split(this.#path, leaf, index === keys.length - 1);
    return previous;
  }

  /**
   * #appendFinger if `key` is to be appended to its leaf (past its last
   * key, below its bound), with #path leading to it as set() needs; else
   * undefined. REQUIRES: called by set() after it counted its write.
   */
  #appendFingerFor(key: string): AppendFinger | undefined {
    const finger = this.#appendFinger;
    if (finger === undefined || finger.writeCount !== this.#writeCount - 1 || finger.leaf.epoch !== this.#epoch) return undefined;
    const page = finger.leaf.page!;
    if (page.compareKeyAt(page.count - 1, key) >= 0 || (finger.high !== undefined && key >= finger.high)) return undefined;
    return finger;
  }

  /** The bound the keys of #path's leaf stay below: the separator after it in the deepest branch where it is not the last child; undefined for the rightmost leaf. */
  #pathHigh(): string | undefined {
    for (let depth = this.#path.length - 1; depth >= 0; depth--) {
      const { branch, index } = this.#path.at(depth);
      if (index < childCount(branch) - 1) return separatorAt(branch, index);
    }
    return undefined;
  }

  /** Deletes `key`; returns the entry it had. Throws an Error (a bug) if a page it needs is not in memory. */
  delete(key: string): IndexEntry | undefined {
    this.#checkKey(key);
    this.#writeCount++;
    this.#records.forget(key);
    const existing = this.#findCached(key);
    if (existing === NOT_CACHED) throw this.#notInMemory(key);
    if (existing === undefined) return undefined;
    this.#checkCountBeforeDelete();
    const leaf = this.#writablePath(key);
    let previous: IndexEntry;
    if (leaf.page !== undefined) {
      previous = pageLeafDelete(leaf, key);
    } else {
      const { keys, entries } = leafArrays(leaf);
      const index = lowerBound(keys, key);
      previous = entries[index]!;
      leaf.bytes -= this.#measure.entryBytes(key, previous);
      keys.splice(index, 1);
      entries.splice(index, 1);
    }
    this.#keyCount--;
    this.#rebalance(this.#path, leaf, key);
    return previous;
  }

  /**
   * Refuses, before any of it is applied, a commit whose deletes would take
   * the key count below zero (see #checkCountBeforeDelete): otherwise the
   * refusal would come at one of its deletes, after the operations before it
   * were applied, and readers would see part of a refused commit. Each
   * operation is a key and whether it deletes; a key's existence comes from
   * the tree as it is (its path is prepared) and the commit's earlier
   * operations. Costs a look-up an operation only when the commit deletes
   * more keys than are counted, which a right count never lets happen. Called
   * for every commit (the one-leaf check is a compare).
   */
  checkCountCovers(operations: Iterable<{ readonly keyString: string; readonly deletes: boolean }>, deleteCount: number): void {
    // A tree of one leaf holds exactly its records: a count that differs is
    // wrong, whatever the commit does (one compare; it is also the only tree
    // a delete can empty).
    const root = this.#level === 0 && this.#root !== undefined ? this.#peek(this.#root) : undefined;
    if (root !== undefined && root.kind === 'leaf' && leafCount(root) !== this.#keyCount) throw this.#wrongCount(`the tree is one leaf of ${leafCount(root)} keys`);
    if (deleteCount <= this.#keyCount) return;
    const exists = new Map<string, boolean>();
    let count = this.#keyCount;
    for (const { keyString, deletes } of operations) {
      let existed = exists.get(keyString);
      if (existed === undefined) {
        const entry = this.#findCached(keyString);
        // Not in memory: a bug the operation itself reports (its path was to be prepared), not a wrong count.
        if (entry === NOT_CACHED) return;
        existed = entry !== undefined;
      }
      exists.set(keyString, !deletes);
      if (deletes && existed) {
        if (count <= 0) throw this.#wrongCount('a delete finds a key');
        count--;
      } else if (!deletes && !existed) {
        count++;
      }
    }
  }

  #wrongCount(when: string): StoreCorruptError {
    return new StoreCorruptError('superblock', `the key count it records is wrong: ${this.#keyCount} counted when ${when} (run fsck; dump --salvage recovers the keys)`);
  }

  /**
   * The key count comes from the superblock, which open() cannot check
   * without walking the tree. Media damage cannot make it wrong (the
   * superblock's checksum covers it), but a bug or an edit can. A delete of
   * an existing key is where a low count shows (it would go negative) and
   * where a high one shows when the tree empties: refuse both before
   * anything changes, as corruption of the superblock.
   */
  #checkCountBeforeDelete(): void {
    const root = this.#level === 0 && this.#root !== undefined ? this.#peek(this.#root) : undefined;
    const emptiesTree = root !== undefined && root.kind === 'leaf' && leafCount(root) === 1;
    if (this.#keyCount <= 0 || (emptiesTree && this.#keyCount !== 1)) throw this.#wrongCount(`a delete ${emptiesTree ? 'empties the tree' : 'finds a key'}`);
  }

  #checkKey(key: string): void {
    if (typeof key !== 'string' || key.length === 0 || key.length > this.#keySizeMax) {
      throw new RangeError(`a key is a string of 1 to ${this.#keySizeMax} chars, got ${typeof key === 'string' ? `${key.length} chars` : typeof key}`);
    }
  }

  #notInMemory(what: string): Error {
    return new Error(`ringstore: page tree: a page on the path of ${JSON.stringify(what.slice(0, 40))} is not in memory; prepare() the keys before writing`);
  }

  /** The node of a slot, in memory or cached, or undefined (no IO). */
  #peek(child: Child): TreeNode | undefined {
    return isNode(child) ? child : this.#cache.get(child);
  }

  /** A new leaf of the current epoch: in page form where the codec makes pages, else in arrays. */
  #newLeaf(keys: string[], entries: IndexEntry[], bytes: number): LeafNode {
    // Array form keeps the entries themselves: copies of their own (see set()).
    if (this.#pages.leafPageOf === undefined) return newLeaf(this.#epoch, keys, entries.map(ownedEntry), bytes);
    return newOwnedPageLeaf(this.#epoch, this.#pages.leafPageOf(keys, entries, bytes, this.#capacityBytes));
  }

  /** A mutable node for a slot: the node itself if mutable, else a copy (retiring the slot's page). */
  #writable(child: Child, what: string): TreeNode {
    const node = this.#peek(child);
    if (node === undefined) throw this.#notInMemory(what);
    if (node.epoch === this.#epoch) return node;
    this.#retire(child);
    this.#dirtyCreated++;
    return copyNode(node, this.#epoch, this.#capacityBytes);
  }

  /** A page leaves the current tree: into G if it has (or will get, from the running plan) a block. */
  #retire(child: Child): void {
    const ref = isNode(child) ? child.ref : child;
    if (ref !== undefined) {
      this.#garbage.push(ref);
      // The current tree no longer reads it; a snapshot that does reads it again.
      this.#cache.drop(ref);
    } else if ((child as TreeNode).planned) this.#garbage.push(child);
    // Otherwise a dirty node no checkpoint writes: it frees nothing.
  }

  /**
   * Makes the path of `key` mutable from the root down, linking copies into
   * their parents; returns its leaf, with the branches above it in #path.
   */
  #writablePath(key: string): LeafNode {
    return this.#writablePathTo(key, Infinity) as LeafNode;
  }

  /** #writablePath() down to depth `depth` (root 0) or the leaf, whichever comes first; returns that node. */
  #writablePathTo(key: string, depth: number): TreeNode {
    const path = this.#path;
    path.clear();
    let node = this.#writable(this.#root!, key);
    this.#root = node;
    for (let at = 0; node.kind === 'branch' && at < depth; at++) {
      const index = childIndexFor(node, key);
      const child = this.#writable(childAt(node, index), key);
      node.page.setChild(index, child);
      path.push(node, index);
      node = child;
    }
    path.forgetDeeper();
    return node;
  }

  /**
   * Splits an over-full mutable node into as many nodes as it takes, then
   * its parent if that is now over-full, and so on up; a split root gets a
   * new root above it. `appending`: the growth was at the node's right end
   * (sequential inserts), so pack pieces full from the left. `firstCut`:
   * the pieces of `start` and their separators, cut by the caller.
   */
  #split(path: WritePath, start: TreeNode, appending: boolean, firstCut?: { pieces: TreeNode[]; separators: string[] }): void {
    let node = start;
    let cut = firstCut;
    for (;;) {
      if (node.epoch !== this.#epoch) throw new Error('ringstore: split of an immutable node');
      // `start` cut already (firstCut: its pieces counted as dirty by the caller), or cut here.
      const { pieces, separators } = cut ?? splitPieces(node, appending, this.#epoch, this.#measure, this.#pages);
      if (cut === undefined) this.#dirtyCreated += pieces.length;
      cut = undefined;
      const parent = path.pop();
      if (parent === undefined) {
        const root = newBranch(this.#epoch, node.level + 1, separators, pieces, branchBytes(this.#measure, separators));
        this.#dirtyCreated++;
        this.#root = root;
        this.#level = root.level;
        node = root;
      } else {
        appending = parent.index === childCount(parent.branch) - 1;
        parent.branch.page.replaceChild(parent.index, pieces, separators);
        for (const separator of separators) parent.branch.bytes += this.#measure.childBytes(separator);
        node = parent.branch;
      }
      if (node.bytes <= this.#capacityBytes) return;
    }
  }

  /**
   * After a delete of `key` from `start` (a mutable node on its path, the
   * branches above it in `path`): removes it if it is an empty leaf (its
   * range going to a neighbour in memory), gives a one-child branch a
   * sibling's child or merges it, merges an under-full node into a sibling
   * that is in memory when the two fit, and so on up; then collapses a
   * root branch with one child. Needs no IO: an empty leaf with no
   * neighbour in memory, or a one-child branch with no sibling in memory,
   * stays so, `key` noted for repairUnderflows().
   */
  #rebalance(path: WritePath, start: TreeNode, key: string): void {
    let node = start;
    while (path.length > 0) {
      const { branch: parent, index } = path.pop()!;
      const empty = node.kind === 'leaf' && leafCount(node) === 0;
      const oneChild = node.kind === 'branch' && childCount(node) === 1;
      if (empty) {
        // A mutable node (made so by the delete): no block, not planned. Its
        // keys' range goes to a neighbour in memory: a later put of the
        // same commit into that range must find its leaf there (prepare()
        // read only its own path; found by a review: a batch of deletes
        // then puts failed the store, and its replay every open). With no
        // neighbour in memory it stays, empty, until repairUnderflows(); so
        // does the one child of a branch waiting for repair (no branch is
        // ever left without children: readers descend through every one).
        if (childCount(parent) === 1) {
          this.#underflowKeys.add(key);
          return;
        } else if (index > 0 && this.#peek(childAt(parent, index - 1)) !== undefined) {
          editBranch(parent, (separators, children) => {
            children.splice(index, 1);
            separators.splice(index - 1, 1);
          });
        } else if (index + 1 < childCount(parent) && this.#peek(childAt(parent, index + 1)) !== undefined) {
          editBranch(parent, (separators, children) => {
            children.splice(index, 1);
            separators.splice(index, 1);
          });
        } else {
          this.#underflowKeys.add(key);
          return;
        }
      } else if (oneChild || node.bytes < this.#capacityBytes / MERGE_FILL_DIVISOR) {
        const merged = (index > 0 && this.#tryMerge(parent, index - 1)) || (index + 1 < childCount(parent) && this.#tryMerge(parent, index));
        if (!merged && oneChild) {
          if (!this.#borrow(parent, index)) {
            // No sibling in memory that can give a child: a page read would
            // be needed, and a commit applies without IO. A one-child branch
            // is a valid tree for reads and writes, but not a page: it is
            // repaired before the next checkpoint encodes it.
            this.#underflowKeys.add(key);
            return;
          }
          if (parent.bytes > this.#capacityBytes) {
            // The separator that moved up is longer than the one it replaced.
            this.#split(path, parent, false);
            break;
          }
        }
        if (!merged && !oneChild) return;
      } else {
        return;
      }
      parent.bytes = branchBytes(this.#measure, parent.page.separators());
      node = parent;
    }
    this.#collapseRoot();
  }

  /** The root: branches with one child collapse; an empty root goes. */
  #collapseRoot(): void {
    for (;;) {
      const root = this.#root!;
      if (isNode(root) && root.kind === 'branch' && childCount(root) === 1) {
        this.#retire(root);
        this.#root = childAt(root, 0);
        this.#level--;
        continue;
      }
      if (isNode(root) && root.kind === 'leaf' && leafCount(root) === 0) {
        this.#retire(root);
        this.#root = undefined;
        this.#level = 0;
      }
      return;
    }
  }

  /** Merges children `left` and `left + 1` of a mutable parent if both are in memory and fit one page. */
  #tryMerge(parent: BranchNode, left: number): boolean {
    const leftNode = this.#peek(childAt(parent, left));
    const rightNode = this.#peek(childAt(parent, left + 1));
    if (leftNode === undefined || rightNode === undefined) return false;
    const separator = separatorAt(parent, left);
    const bytes =
      leftNode.kind === 'leaf' ? leftNode.bytes + rightNode.bytes : leftNode.bytes + rightNode.bytes - this.#measure.childBytes('') + this.#measure.childBytes(separator);
    if (bytes > this.#capacityBytes) return false;
    const merged = this.#writable(childAt(parent, left), separator);
    if (merged.kind === 'leaf' && rightNode.kind === 'leaf') {
      // The right leaf's records join the merged leaf's arrays; a right leaf
      // in page form is read into arrays for it (the merged leaf keeps its
      // own basis, so those records are encoded anew).
      const into = leafArrays(merged);
      const from = leafRecords(rightNode);
      into.keys.push(...from.keys);
      into.entries.push(...from.entries);
    } else if (merged.kind === 'branch' && rightNode.kind === 'branch') {
      const rightSeparators = rightNode.page.separators();
      const rightChildren = rightNode.page.children();
      editBranch(merged, (separators, children) => {
        separators.push(separator, ...rightSeparators);
        children.push(...rightChildren);
      });
    } else {
      throw new Error('ringstore: merge of siblings at different levels');
    }
    merged.bytes = bytes;
    this.#retire(childAt(parent, left + 1));
    editBranch(parent, (separators, children) => {
      children[left] = merged;
      children.splice(left + 1, 1);
      separators.splice(left, 1);
    });
    return true;
  }

  /**
   * Gives the one-child branch at `index` a child of a sibling in memory
   * that keeps two or more (the left one first); false if neither sibling
   * is in memory or can give one (then nothing changed).
   */
  #borrow(parent: BranchNode, index: number): boolean {
    const node = childAt(parent, index) as BranchNode;
    const canGive = (sibling: TreeNode | undefined): boolean => sibling !== undefined && sibling.kind === 'branch' && childCount(sibling) >= 3;
    // Rare (deletes that empty a branch): done on the three branches' separators and children as arrays.
    const parentSeparators = parent.page.separators();
    const parentChildren = parent.page.children();
    const nodeSeparators = node.page.separators();
    const nodeChildren = node.page.children();
    if (index > 0 && canGive(this.#peek(parentChildren[index - 1]!))) {
      const left = this.#writable(parentChildren[index - 1]!, parentSeparators[index - 1]!) as BranchNode;
      parentChildren[index - 1] = left;
      const leftSeparators = left.page.separators();
      const leftChildren = left.page.children();
      nodeChildren.unshift(leftChildren.pop()!);
      nodeSeparators.unshift(parentSeparators[index - 1]!);
      parentSeparators[index - 1] = leftSeparators.pop()!;
      left.page = BranchPage.ofChildren(leftSeparators, leftChildren);
      left.bytes = branchBytes(this.#measure, leftSeparators);
    } else if (index + 1 < parentChildren.length && canGive(this.#peek(parentChildren[index + 1]!))) {
      const right = this.#writable(parentChildren[index + 1]!, parentSeparators[index]!) as BranchNode;
      parentChildren[index + 1] = right;
      const rightSeparators = right.page.separators();
      const rightChildren = right.page.children();
      nodeChildren.push(rightChildren.shift()!);
      nodeSeparators.push(parentSeparators[index]!);
      parentSeparators[index] = rightSeparators.shift()!;
      right.page = BranchPage.ofChildren(rightSeparators, rightChildren);
      right.bytes = branchBytes(this.#measure, rightSeparators);
    } else {
      return false;
    }
    node.page = BranchPage.ofChildren(nodeSeparators, nodeChildren);
    node.bytes = branchBytes(this.#measure, nodeSeparators);
    parent.page = BranchPage.ofChildren(parentSeparators, parentChildren);
    parent.bytes = branchBytes(this.#measure, parentSeparators);
    return true;
  }

  /**
   * Repair steps done so far. A repair changes the tree's shape without a
   * commit (it may move a removed leaf's keys to a page it then unpins): a
   * write prepared before it must be prepared again before it applies.
   */
  get repairCount(): number {
    return this.#repairCount;
  }

  /** Keys whose path may hold an empty leaf or a branch of one child (see #rebalance); 0 when the tree can be encoded as it is. */
  get underflowCount(): number {
    return this.#underflowKeys.size;
  }

  /**
   * Repairs the empty leaves and one-child branches deletes left
   * (#rebalance): for each key noted, reads the pages on its path and their
   * siblings (prepare()), then removes, merges or borrows as the delete
   * would have, topmost first (#repairPath). No key or value changes, only
   * the shape: a crash before the next checkpoint loses nothing (the WAL
   * replay makes and repairs the same shape). Writes may apply during the
   * reads; a repair they foil is noted again, so callers loop until
   * underflowCount is 0 at a moment they hold. Each step counts in
   * repairCount: writes prepared before it are prepared again.
   */
  async repairUnderflows(): Promise<void> {
    for (const key of [...this.#underflowKeys]) {
      let prepared: PreparedPaths;
      try {
        prepared = await this.prepare([], [key]);
      } catch (error) {
        // Nothing of the tree changed (prepare let go of what it pinned);
        // the key stays noted for the next repair. A read's error is coded
        // (an IO error, ERR_STORE_CORRUPT); one without a code is a bug
        // (prepare() not converging), which stops the store as before.
        if (typeof (error as { code?: unknown } | undefined)?.code !== 'string') throw error;
        throw new PageUnreadable(error);
      }
      try {
        // Noted until now: checkInvariants() allows the node while its read is awaited.
        this.#underflowKeys.delete(key);
        this.#repairCount++;
        this.#repairPath(key);
      } finally {
        this.release(prepared);
      }
    }
  }

  /**
   * One step of the repair of `key`'s path: collapses a root of one child,
   * then repairs the topmost node below it that #rebalance left (a branch
   * of one child, merged with a sibling or given one's child; or an empty
   * leaf, removed): its siblings are pinned (a one-child parent would be
   * the topmost instead), and #rebalance goes on up. A node further down
   * may get an unpinned neighbour from that (a borrowed child): the key is
   * noted again while one is left, and the next round of
   * repairUnderflows() reads that neighbour. Each round repairs at least
   * the topmost one, so the rounds end within the tree's height.
   */
  #repairPath(key: string): void {
    this.#writeCount++;
    if (this.#root === undefined) return;
    if (isNode(this.#root)) this.#collapseRoot();
    if (this.#root === undefined) return;
    const depth = this.#underflowDepth(key);
    if (depth === undefined) return;
    const node = this.#writablePathTo(key, depth);
    this.#rebalance(this.#path, node, key);
    if (this.#root !== undefined && this.#underflowDepth(key) !== undefined) this.#underflowKeys.add(key);
  }

  /**
   * Depth (root 0) of the topmost node below the root on `key`'s path that
   * #rebalance left for repair — a branch of one child, or an empty leaf —
   * among the nodes in memory; undefined if none.
   */
  #underflowDepth(key: string): number | undefined {
    let node = this.#root === undefined ? undefined : this.#peek(this.#root);
    for (let at = 0; node !== undefined; at++) {
      if (node.kind === 'leaf') return at > 0 && leafCount(node) === 0 ? at : undefined;
      if (at > 0 && childCount(node) === 1) return at;
      node = this.#peek(childAt(node, childIndexFor(node, key)));
    }
    return undefined;
  }

  // ---- Checkpoints ----

  /**
   * Freezes the tree and returns what to write: its dirty nodes in post-order.
   * Writes may go on meanwhile (they copy what the plan holds). One plan at
   * a time: complete() or abort() it before the next.
   */
  beginCheckpoint(): CheckpointPlan {
    if (this.#plan !== undefined) throw new Error('ringstore: beginCheckpoint() while a checkpoint is running');
    if (this.#underflowKeys.size > 0) throw new Error('ringstore: beginCheckpoint() with branches of one child left (repairUnderflows() first)');
    // A wrong count that reached 0 with keys left (or the reverse) passed
    // every delete: a superblock of it would fail its own check at the next
    // open (found by a review). Refused before anything is written.
    if ((this.#root === undefined) !== (this.#keyCount === 0)) throw this.#wrongCount(this.#root === undefined ? 'the tree is empty' : 'a checkpoint finds keys');
    this.#dirtyCreated = 0;
    this.#epoch++;
    const dirty: TreeNode[] = [];
    const slotBranches: BranchNode[] = [];
    const slotIndexes: number[] = [];
    const collect = (node: TreeNode): void => {
      if (node.kind === 'branch') {
        // Only the children in memory: clean ones are records (BranchPage).
        node.page.forEachNode((child, index) => {
          slotBranches.push(node);
          slotIndexes.push(index);
          if (child.ref === undefined) collect(child);
        });
      }
      node.planned = true;
      dirty.push(node);
    };
    if (this.#root !== undefined && isNode(this.#root) && this.#root.ref === undefined) collect(this.#root);
    // Outside a running plan G holds only PageRefs (see #garbage).
    const garbage = this.#garbage as PageRef[];
    this.#garbage = [];
    this.#planSlotBranches = slotBranches;
    this.#planSlotIndexes = slotIndexes;
    this.#plan = new CheckpointPlan(
      this.#root,
      this.#level,
      this.#keyCount,
      dirty,
      garbage,
      (plan, assigned) => this.#complete(plan, assigned),
      (plan) => this.#abort(plan),
    );
    return this.#plan;
  }

  #complete(plan: CheckpointPlan, assigned: ReadonlyMap<TreeNode, PageRef>): void {
    if (this.#plan !== plan) throw new Error('ringstore: complete() of a plan that is not running');
    for (const node of plan.dirtyNodes) {
      const ref = assigned.get(node);
      if (ref === undefined) throw new Error('ringstore: complete() without a PageRef for a node of the plan');
      node.ref = ref;
      node.epoch = EPOCH_NEVER;
      node.planned = false;
      // Copies made since hold the basis themselves; this one needs it no more.
      if (node.kind === 'leaf') node.basis = undefined;
    }
    // Parents point at refs now: the frozen ones of the plan (the node
    // slots beginCheckpoint() listed: every slot of theirs holding a node)
    // and the current tree's (writes since beginCheckpoint copied some
    // nodes of the plan but share their clean... and dirty children).
    const slotBranches = this.#planSlotBranches;
    const slotIndexes = this.#planSlotIndexes;
    for (let i = 0; i < slotBranches.length; i++) {
      const branch = slotBranches[i]!;
      const child = branch.page.nodeAt(slotIndexes[i]!);
      if (child === undefined) throw new Error('ringstore: a branch of the plan changed its child slot while it was written (a frozen node changed)');
      if (child.ref !== undefined) branch.page.setChild(slotIndexes[i]!, child.ref);
    }
    this.#planSlotBranches = [];
    this.#planSlotIndexes = [];
    const root = this.#root;
    if (root !== undefined && isNode(root)) {
      if (root.ref !== undefined) this.#root = root.ref;
      else if (root.kind === 'branch') cleanSlots(root);
    }
    // G gathered during the plan: its nodes have blocks now. The current
    // tree no longer reads them, so they do not go into the cache.
    const replaced = new Set<TreeNode>();
    this.#garbage = this.#garbage.map((page) => {
      if (!isNode(page)) return page;
      replaced.add(page);
      return page.ref!;
    });
    this.#plan = undefined;
    for (const node of plan.dirtyNodes) {
      if (replaced.has(node)) continue;
      // A pinned node stays in memory: a prepared commit writes it without IO.
      if (!this.#cacheWrittenPages && node.pins === 0) continue;
      node.memoryBytes = nodeMemoryBytes(node);
      this.#cache.insert(node);
    }
  }

  #abort(plan: CheckpointPlan): void {
    if (this.#plan !== plan) throw new Error('ringstore: abort() of a plan that is not running');
    for (const node of plan.dirtyNodes) node.planned = false;
    this.#planSlotBranches = [];
    this.#planSlotIndexes = [];
    // They stay dirty: counted again until the next plan takes them.
    this.#dirtyCreated += plan.dirtyNodes.length;
    // Nodes of the plan that writes replaced will never get a block now.
    this.#garbage = [...plan.garbage, ...this.#garbage.filter((page): page is PageRef => !isNode(page))];
    this.#plan = undefined;
  }

  // ---- Stats and checks ----

  stats(): PageTreeStats {
    let dirtyNodeCount = 0;
    let dirtyPageBytes = 0;
    let dirtyMemoryBytes = 0;
    const count = (node: TreeNode): void => {
      dirtyNodeCount++;
      dirtyPageBytes += node.bytes;
      dirtyMemoryBytes += nodeMemoryBytes(node);
      if (node.kind === 'branch') node.page.forEachNode((child) => child.ref === undefined && count(child));
    };
    if (this.#root !== undefined && isNode(this.#root) && this.#root.ref === undefined) count(this.#root);
    return {
      keyCount: this.#keyCount,
      height: this.height,
      dirtyNodeCount,
      dirtyPageBytes,
      dirtyMemoryBytes,
      cachedNodeCount: this.#cache.nodeCount,
      cachedMemoryBytes: this.#cache.bytes,
      cacheHits: this.#cache.hits,
      cacheMisses: this.#cache.misses,
      garbageCount: this.#garbage.length,
    };
  }

  /**
   * Asserts the tree's invariants over the pages in memory (tree_invariants.ts;
   * no IO).
   */
  checkInvariants(): void {
    checkTreeInvariants({
      root: this.#root,
      level: this.#level,
      keyCount: this.#keyCount,
      epoch: this.#epoch,
      capacityBytes: this.#capacityBytes,
      measure: this.#measure,
      cache: this.#cache,
      garbage: this.#garbage,
      underflowKeys: this.#underflowKeys,
    });
  }
}

/**
 * Replaces, in a dirty branch of the current tree and the dirty branches
 * under it, the children in memory that are clean now by their refs (their
 * records hold them again; the plan's own branches: complete(), from the
 * slots beginCheckpoint() listed).
 */
function cleanSlots(branch: BranchNode): void {
  branch.page.forEachNode((child, index) => {
    if (child.ref !== undefined) branch.page.setChild(index, child.ref);
    else if (child.kind === 'branch') cleanSlots(child);
  });
}
