// TreeLoader: brings a page of the tree into memory as a clean node. A page
// in the cache is returned as it is; concurrent loads of one page share one
// read; a page read from the device is checked against the tree's rules
// (levels, counts, key order and bounds, size) on top of the codec's checks
// of its bytes, and goes into the page cache. Damage is ERR_STORE_CORRUPT
// naming the block, never a node.
//
// Point lookups (lookUp) admit a leaf into the cache only on its second miss
// while the loader remembers the first (a doorkeeper): a leaf missed once is
// checked and searched where its read put it, and nothing of it is kept.
// Random gets over a store larger than the cache mostly touch a leaf once:
// caching it cost a copy of the page, its objects and their garbage, and
// evicted a page that would have been as useful (measured: ~30 % of the
// JS thread of 32 concurrent cold readers). TreePages holds back from reuse
// the buffers of the last leaves lookups read without admitting them
// (withLeaf), so that a write or a second lookup soon after (a get then a
// put of the key; keys of one leaf in turn) caches the leaf from them
// instead of reading it again. Such a read is not shared: a lookup of the
// leaf while it is in flight reads it too.
//
// Pages read by writes and lookups' branches are admitted at once. A scan's
// pages are admitted while the cache has room for them or the scan has not
// yet evicted its share of the cache; past that, its leaves are lent to it
// and its branches kept by it alone (loadForScan).
import { KEY_SIZE_MAX } from '../format/constants.js';
import type { BranchPage } from './branch_page.js';
import type { LeafPage } from './leaf_page.js';
import type { PageCache } from './page_cache.js';
import { StoreCorruptError } from './store_error.js';
import { ownedEntry, type IndexEntry } from './store_index.js';
import {
  branchBytes,
  EPOCH_NEVER,
  leafBytes,
  leafFind,
  newBranch,
  newBranchOfPage,
  newLeaf,
  newPageLeaf,
  nodeMemoryBytes,
  type BranchNode,
  type DecodedTreePage,
  type LeafNode,
  type LentLeaf,
  type PageMeasure,
  type PageRef,
  type TreeNode,
  type TreePageIo,
} from './tree_node.js';

/**
 * The fewest leaves a generation of the doorkeeper remembers (lookUp),
 * whatever the cache: as many as TreePages holds the buffers of, so a tiny
 * cache still caches a leaf looked up again within that many others.
 */
const MISSED_ONCE_GENERATION_MIN = 256;
/**
 * A generation of the doorkeeper remembers this share of the pages the
 * cache holds, so a leaf is remembered for between a half and a whole
 * cache's worth of later misses: about as long as the cache keeps a page
 * nobody touches again. A leaf missed less often than that would not stay
 * cached, and admitting it only evicts another (a copy, its objects and
 * their garbage for nothing). Measured with 32 concurrent cold readers on a
 * 10 M-key store, 64 MiB cacheSizeBytes (a 48 MiB page cache, ~12 k pages;
 * docs/benchmarks.md, session 16): generations of 64 Ki blocks (as before)
 * 37 180 / 37 077 gets/s, 16 Ki 42 799 / 41 308, 4 Ki 44 374 / 44 340.
 */
const MISSED_ONCE_CACHE_SHARE = 0.5;

/**
 * The share of the page cache one scan may evict (its admission budget,
 * loadForScan): 1/16, 4 MiB of leaves at the default 64 MiB. A range that
 * fits it is cached for the next pass over it, as before; a longer one
 * caches its first pages and reads the rest without caching them, as
 * PostgreSQL reads a relation of more than a quarter of its buffers
 * through a small ring of its own. What gets and writes cached stays.
 */
const SCAN_EVICTION_SHARE = 16;

/** What one scan may still evict from the page cache (TreeLoader.newScanAdmission). */
export interface ScanAdmission {
  evictableBytes: number;
}

export interface TreeLoaderParts {
  readonly io: TreePageIo;
  readonly cache: PageCache;
  readonly measure: PageMeasure;
  /** The longest key the tree takes (KEY_SIZE_MAX unless a test lowers it). */
  readonly keySizeMax: number;
}

export class TreeLoader {
  readonly #io: TreePageIo;
  readonly #cache: PageCache;
  readonly #measure: PageMeasure;
  readonly #keySizeMax: number;
  /** Reads in flight by block, so concurrent loads of a page read it once. */
  readonly #loading = new Map<number, { crc: number; promise: Promise<TreeNode> }>();
  /**
   * Blocks of leaves a lookup read and did not admit, in two generations:
   * when the newer one holds #missedOnceMax, it becomes the older one and
   * the older one is dropped, so a block is remembered for at least that
   * many such reads after its own.
   */
  #missedOnce = new Set<number>();
  /** Blocks a generation of #missedOnce holds (MISSED_ONCE_CACHE_SHARE). */
  readonly #missedOnceMax: number;
  /** The loans of the nodes loadForScan() lent, until given back. */
  readonly #lent = new Map<TreeNode, LentLeaf>();
  #missedOnceBefore = new Set<number>();

  constructor(parts: TreeLoaderParts) {
    this.#io = parts.io;
    this.#cache = parts.cache;
    this.#measure = parts.measure;
    this.#keySizeMax = parts.keySizeMax;
    // Pages the cache holds at most: a cached node's memory is at least its page bytes.
    if (!(parts.measure.capacityBytes > 0)) throw new RangeError(`capacityBytes must be positive, got ${parts.measure.capacityBytes}`);
    const cachePagesMax = Math.floor(parts.cache.bytesMax / parts.measure.capacityBytes);
    this.#missedOnceMax = Math.max(MISSED_ONCE_GENERATION_MIN, Math.floor(cachePagesMax * MISSED_ONCE_CACHE_SHARE));
  }

  /**
   * The clean node of `ref`, which must be a page of `level` whose keys lie
   * in [low, high) (the bounds its parent gives; undefined: none).
   */
  load(ref: PageRef, level: number, low: string | undefined, high: string | undefined): Promise<TreeNode> {
    // Not an async function: a page read costs one promise here, not two.
    const cached = this.#cache.get(ref);
    if (cached !== undefined) {
      if (cached.level !== level) return Promise.reject(corrupt(ref, level, `page of level ${cached.level} where level ${level} was expected`));
      return Promise.resolve(cached);
    }
    const loading = this.#loading.get(ref.block);
    if (loading !== undefined && loading.crc === ref.crc) return loading.promise;
    this.#cache.recordMiss();
    const promise: Promise<TreeNode> = this.#io.read(ref, level).then(
      (page) => {
        this.#loaded(ref.block, promise);
        const node = this.#decoded(ref, level, page, low, high);
        // Another node of this page may have come into the cache while the
        // read was in flight: prepare() puts back a node it loaded that was
        // evicted before it pinned it. That one stays — replacing it would
        // leave a pinned node outside the cache, and the write it was pinned
        // for would find its path not in memory — and is the one returned.
        const present = this.#cache.peek(ref);
        if (present !== undefined) return present;
        this.#cache.insert(node);
        return node;
      },
      (error: unknown) => {
        this.#loaded(ref.block, promise);
        throw error;
      },
    );
    this.#loading.set(ref.block, { crc: ref.crc, promise });
    return promise;
  }

  /**
   * The entry of `key` in the leaf of `ref` (bounds `low`, `high` as for
   * load): from the cache, from a read in flight, or read; the leaf goes
   * into the cache if a lookup missed it before (the doorkeeper above), or
   * else is searched in the read's buffer and left. An inline value found
   * there is copied out of it.
   */
  lookUp(ref: PageRef, low: string | undefined, high: string | undefined, key: string): Promise<IndexEntry | undefined> {
    const withLeaf = this.#io.withLeaf;
    if (withLeaf === undefined || this.#cache.peek(ref) !== undefined || this.#loading.get(ref.block)?.crc === ref.crc || this.#missedBefore(ref.block)) {
      return this.load(ref, 0, low, high).then((node) => leafFind(node as LeafNode, key));
    }
    this.#cache.recordMiss();
    return withLeaf.call<TreePageIo, [PageRef, (page: DecodedTreePage) => IndexEntry | undefined], Promise<IndexEntry | undefined>>(this.#io, ref, (page) => {
      const entry = leafFind(this.#decoded(ref, 0, page, low, high) as LeafNode, key);
      return entry === undefined ? undefined : ownedEntry(entry);
    });
  }

  /**
   * A new scan's admission budget (loadForScan): the cache memory it may
   * take from what is cached, 1 / SCAN_EVICTION_SHARE of the budget.
   */
  newScanAdmission(): ScanAdmission {
    return { evictableBytes: Math.floor(this.#cache.bytesMax / SCAN_EVICTION_SHARE) };
  }

  /**
   * load() for a scan, which may lend a leaf instead of caching it. A page
   * not in memory is read and checked (a leaf in the read's buffer,
   * TreePageIo.lendLeaf), then cached if the cache has room for it, or if
   * the scan's `admission` still allows it to evict that much; otherwise it
   * is not cached: a leaf is lent, and the caller gives back (giveBack)
   * every node this returns once it no longer reads it; a branch is kept
   * by the caller alone. A range over more pages than the cache holds used
   * to replace every cached page with its own, each at the cost of a copy,
   * cache bookkeeping and garbage, and left the cache holding the range's
   * last pages; a short range (up to its budget) is still cached for the
   * next pass over it.
   */
  loadForScan(ref: PageRef, level: number, low: string | undefined, high: string | undefined, admission: ScanAdmission): Promise<TreeNode> {
    const lendLeaf = this.#io.lendLeaf;
    if ((level === 0 && lendLeaf === undefined) || this.#cache.peek(ref) !== undefined || this.#loading.get(ref.block)?.crc === ref.crc) {
      return this.load(ref, level, low, high);
    }
    this.#cache.recordMiss();
    if (level !== 0) {
      // A branch holds no view of its read's buffer: kept or not, nothing to give back.
      return this.#io.read(ref, level).then((page) => {
        const node = this.#decoded(ref, level, page, low, high);
        return this.#admitForScan(node, admission) ?? node;
      });
    }
    return lendLeaf!.call(this.#io, ref).then((lent) => {
      let node: TreeNode;
      try {
        node = this.#decoded(ref, 0, lent.page, low, high);
      } catch (error) {
        lent.giveBack();
        throw error;
      }
      if (!this.#mayAdmitForScan(node, admission)) {
        this.#lent.set(node, lent);
        return node;
      }
      // Admitted: a copy of its own, kept as load() keeps a page.
      const kept = this.#decoded(ref, 0, lent.keep(), low, high);
      return this.#admitForScan(kept, admission) ?? kept;
    });
  }

  /** Whether the cache has room for `node`, or the scan may still evict its size. */
  #mayAdmitForScan(node: TreeNode, admission: ScanAdmission): boolean {
    return this.#cache.hasRoomFor(node.memoryBytes) || admission.evictableBytes >= node.memoryBytes;
  }

  /**
   * Caches `node` for a scan if #mayAdmitForScan, charging what it evicts to
   * `admission`, and returns the cached node of its page (another node of
   * the page cached meanwhile, by a load() in flight, is the one returned);
   * undefined if not admitted.
   */
  #admitForScan(node: TreeNode, admission: ScanAdmission): TreeNode | undefined {
    const present = this.#cache.peek(node.ref!);
    if (present !== undefined) return present;
    if (!this.#mayAdmitForScan(node, admission)) return undefined;
    if (!this.#cache.hasRoomFor(node.memoryBytes)) admission.evictableBytes -= node.memoryBytes;
    this.#cache.insert(node);
    return node;
  }

  /** Ends the loan of a node loadForScan() lent (nothing for any other node): nothing may read it after. */
  giveBack(node: TreeNode): void {
    const lent = this.#lent.get(node);
    if (lent === undefined) return;
    this.#lent.delete(node);
    lent.giveBack();
  }

  /** Leaves lent to scans (loadForScan), until given back. */
  get lentCount(): number {
    return this.#lent.size;
  }

  /** Whether a lookup read `block` before and did not admit it; remembers it now if not. */
  #missedBefore(block: number): boolean {
    if (this.#missedOnce.delete(block) || this.#missedOnceBefore.delete(block)) return true;
    if (this.#missedOnce.size >= this.#missedOnceMax) {
      this.#missedOnceBefore = this.#missedOnce;
      this.#missedOnce = new Set();
    }
    this.#missedOnce.add(block);
    return false;
  }

  /** The read of `block` that `promise` waits for has ended: later loads of the block read it again. */
  #loaded(block: number, promise: Promise<TreeNode>): void {
    if (this.#loading.get(block)?.promise === promise) this.#loading.delete(block);
  }

  /** Checks a decoded page against the tree's rules (the codec checked its bytes) and makes it a clean node. */
  #decoded(ref: PageRef, level: number, page: DecodedTreePage, low: string | undefined, high: string | undefined): TreeNode {
    const bad = (reason: string): StoreCorruptError => corrupt(ref, level, reason);
    let node: TreeNode;
    if (page.kind === 'leaf' && page.page !== undefined) {
      if (level !== 0) throw bad('a leaf where a branch was expected');
      node = this.#checkedPageLeaf(page.page, low, high, bad);
    } else if (page.kind === 'branch' && page.page !== undefined) {
      if (page.level !== level || level < 1) throw bad(`a page of level ${page.level}`);
      node = this.#checkedPageBranch(level, page.page, low, high, bad);
    } else {
      let keys: readonly string[];
      if (page.kind === 'leaf') {
        if (level !== 0) throw bad('a leaf where a branch was expected');
        if (page.keys.length === 0) throw bad('an empty leaf');
        if (page.keys.length !== page.entries.length) throw bad(`${page.keys.length} keys but ${page.entries.length} entries`);
        keys = page.keys;
        node = newLeaf(EPOCH_NEVER, page.keys.slice(), page.entries.slice(), leafBytes(this.#measure, page.keys, page.entries));
      } else {
        if (page.level !== level || level < 1) throw bad(`a page of level ${page.level}`);
        if (page.children.length < 2) throw bad(`a branch with ${page.children.length} children`);
        if (page.separators.length !== page.children.length - 1) throw bad(`${page.separators.length} separators for ${page.children.length} children`);
        keys = page.separators;
        node = newBranch(EPOCH_NEVER, level, page.separators.slice(), page.children.slice(), branchBytes(this.#measure, page.separators));
      }
      for (let index = 0; index < keys.length; index++) {
        const key = keys[index]!;
        if (typeof key !== 'string' || key.length === 0 || key.length > this.#keySizeMax) throw bad(`key ${index} is not a key`);
        if (index > 0 && !(keys[index - 1]! < key)) throw bad(`key ${index} is not above key ${index - 1}`);
      }
      if (low !== undefined && keys[0]! < low) throw bad('a key below the bound its parent gives');
      if (high !== undefined && !(keys[keys.length - 1]! < high)) throw bad('a key at or above the bound its parent gives');
    }
    if (node.bytes > this.#measure.capacityBytes) throw bad(`${node.bytes} bytes, over the page capacity ${this.#measure.capacityBytes}`);
    node.ref = ref;
    node.memoryBytes = nodeMemoryBytes(node);
    return node;
  }

  /**
   * #decoded of a leaf in page form: the same rules, checked in its bytes.
   * The codec checked that its keys are keys in strictly ascending order;
   * its page bytes are its records' (PageMeasure's bytes of every entry,
   * which the codec checked add up to them): measuring the entries again
   * would read every value.
   */
  #checkedPageLeaf(page: LeafPage, low: string | undefined, high: string | undefined, bad: (reason: string) => StoreCorruptError): LeafNode {
    if (page.count === 0) throw bad('an empty leaf');
    if (this.#keySizeMax < KEY_SIZE_MAX) {
      for (let index = 0; index < page.count; index++) if (page.keyLengthAt(index) > this.#keySizeMax) throw bad(`key ${index} is not a key`);
    }
    if (low !== undefined && page.compareKeyAt(0, low) < 0) throw bad('a key below the bound its parent gives');
    if (high !== undefined && page.compareKeyAt(page.count - 1, high) >= 0) throw bad('a key at or above the bound its parent gives');
    return newPageLeaf(page);
  }

  /**
   * #decoded of a branch in page form (engine/branch_page.ts): the same
   * rules, checked in its records. The codec checked that its separators
   * are keys in strictly ascending order and that its records take its
   * page bytes.
   */
  #checkedPageBranch(level: number, page: BranchPage<TreeNode>, low: string | undefined, high: string | undefined, bad: (reason: string) => StoreCorruptError): BranchNode {
    const count = page.count;
    if (count < 2) throw bad(`a branch with ${count} children`);
    if (this.#keySizeMax < KEY_SIZE_MAX) {
      for (let index = 0; index < count - 1; index++) if (page.separatorAt(index).length > this.#keySizeMax) throw bad(`key ${index} is not a key`);
    }
    if (low !== undefined && page.compareSeparatorWith(0, low) < 0) throw bad('a key below the bound its parent gives');
    if (high !== undefined && page.compareSeparatorWith(count - 2, high) >= 0) throw bad('a key at or above the bound its parent gives');
    return newBranchOfPage(EPOCH_NEVER, level, page, page.recordBytes);
  }
}

function corrupt(ref: PageRef, level: number, reason: string): StoreCorruptError {
  return new StoreCorruptError('page', `level ${level}: ${reason}`, ref.block);
}
