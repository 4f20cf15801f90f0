// The nodes of the page tree (engine/page_tree.ts) in memory, the interface
// through which pages are read, and the small pure helpers on keys and
// separators. No IO here, and the codec is injected; a page held in memory
// keeps its records in the format's layout (leaf_page.ts, branch_page.ts).
//
// A leaf holds sorted keys and their entries. A branch at level >= 1 holds
// n >= 2 children and n-1 separators; separator i is > every key under
// child i and <= every key under child i+1. A child is either a node in
// memory (dirty: it has no block yet) or a page on disk (clean: its decoded
// node, when loaded, lives in the page cache), which the branch holds as
// its record's block and CRC (BranchPage.childAt makes a PageRef of it).
import { BranchPage } from './branch_page.js';
import type { LeafPage } from './leaf_page.js';
import type { IndexEntry } from './store_index.js';

/**
 * What a leaf in array form that was in page form is encoded against, by
 * difference (format/page.ts, LeafBasis): that page (as read from disk, or
 * the owned copy it was edited in, which nothing writes once the leaf left
 * it), and the keys and entries the arrays were made of (a record whose key
 * and entry are these very objects is that page's record again). Never
 * changed.
 *
 * Leaves a checkpoint writes from arrays keep none, and stay in arrays: a
 * copy of their records, kept while their next version is dirty, made the
 * probe's checkpoints ~20 % cheaper again (31.5 -> 24.9 µs of CPU a page)
 * but held ~90 MiB more at 300 k keys (a page for every dirty leaf). And a
 * written leaf that took page form (a checked copy of the page it was
 * written as, in place of its arrays) loaded 1 M random keys no faster and
 * closed slower (docs/benchmarks.md, session 10): checking and keeping
 * every written page costs more than the cheaper next write saves. A leaf
 * written from its owned page keeps that page: it costs nothing more.
 */
export interface LeafBasisSource {
  readonly page: LeafPage;
  readonly keys: readonly string[];
  readonly entries: readonly IndexEntry[];
}

/** Where a page is on disk, and the CRC32C the codec checks it against. */
export interface PageRef {
  readonly block: number;
  readonly crc: number;
}

/** A page as the codec decodes it (and as a checkpoint gives it to encode). */
export type DecodedTreePage =
  | { readonly kind: 'leaf'; readonly keys: readonly string[]; readonly entries: readonly IndexEntry[]; readonly page?: undefined }
  | { readonly kind: 'leaf'; readonly page: LeafPage }
  | { readonly kind: 'branch'; readonly level: number; readonly separators: readonly string[]; readonly children: readonly PageRef[]; readonly page?: undefined }
  | { readonly kind: 'branch'; readonly level: number; readonly page: BranchPage<TreeNode> };

export interface TreePageIo {
  /**
   * Reads and decodes the page at `ref`, which must be at `level` (0 for a
   * leaf); rejects with StoreCorruptError on damage (a CRC mismatch, a bad
   * encoding). A leaf comes as a LeafPage (the real codec: its key order
   * checked by the codec, format/page.ts scanLeafRecords) or as arrays (the
   * tests' fake codec). The tree checks the rest of the structure again
   * (counts, level, size, key sizes, bounds; the order of arrays) and
   * rejects with StoreCorruptError itself. What is returned becomes the
   * tree's: the codec must not reuse it.
   */
  read(ref: PageRef, level: number): Promise<DecodedTreePage>;
  /**
   * read() of a leaf (level 0) for a lookup that keeps nothing of it: the
   * page, checked as read() checks it, is handed to `use` in a buffer that
   * is reused once `use` returns, and `use`'s result is returned. Optional:
   * the tree reads with read() where a codec lacks it.
   */
  withLeaf?<T>(ref: PageRef, use: (page: DecodedTreePage) => T): Promise<T>;
  /**
   * read() of a leaf (level 0) for a scan that keeps nothing of it past its
   * visit: the page, checked as read() checks it, stays in the read's buffer
   * until `giveBack()` is called, after which nothing may read it (or any
   * view of it). Optional, as withLeaf.
   */
  lendLeaf?(ref: PageRef): Promise<LentLeaf>;
  /**
   * An owned page (LeafPage.ofRecords) of `keys` and `entries`, whose
   * records take `recordBytes` (by PageMeasure), with room for
   * `capacityBytes`: the page of a new leaf a write makes, so that the
   * checkpoint that writes it seals it as it is. Optional: a codec without
   * it (the tests' fakes) has new leaves in array form.
   */
  leafPageOf?(keys: readonly string[], entries: readonly IndexEntry[], recordBytes: number, capacityBytes: number): LeafPage;
}

/** A leaf read into a buffer the reader gives back (TreePageIo.lendLeaf). */
export interface LentLeaf {
  readonly page: DecodedTreePage;
  /** Ends the loan: the buffer is reused. Once only. */
  giveBack(): void;
  /** Ends the loan with the page copied into memory of its own, which the caller keeps (as read() gives it). */
  keep(): DecodedTreePage;
}

/** Measures of page space, injected so the tree does not know the codec. */
export interface PageMeasure {
  /** Page bytes an entry takes in a leaf (key, value and per-entry overhead). */
  entryBytes(key: string, entry: IndexEntry): number;
  /**
   * Page bytes a child takes in a branch: its PageRef and the separator on
   * its left. The first child of a branch has none and is measured as
   * childBytes('').
   */
  childBytes(separator: string): number;
  /** Page bytes available to entries or children (a page minus its header). */
  capacityBytes: number;
}

/** `epoch` of a node that can never be mutated again (clean, from disk or written). */
export const EPOCH_NEVER = -1;

interface NodeCommon {
  /**
   * The tree's write epoch when this node was created; the node is mutable
   * only while the tree's epoch still equals it. EPOCH_NEVER once the node
   * is clean or was frozen by a checkpoint.
   */
  epoch: number;
  /** Set once the node is on disk (loaded, or written by a completed checkpoint). */
  ref: PageRef | undefined;
  /** Page bytes by PageMeasure: entries, or children with their separators. */
  bytes: number;
  /** prepare() holds on this node: the page cache must not evict it. */
  pins: number;
  /** The running checkpoint plan writes this node (it will get a block). */
  planned: boolean;
  /** Estimated memory of the decoded node, for the page cache's budget (clean nodes only). */
  memoryBytes: number;
  /** The page cache's second-chance bit: read since the cache last passed it looking for a page to evict. */
  cacheReferenced: boolean;
  /** Where the page cache's clock holds this node; -1 when it is not cached. */
  cacheSlot: number;
}

/**
 * A leaf holds its records in one of two forms:
 * - page form (`page`; `keys` and `entries` undefined), searched in the
 *   page's bytes (engine/leaf_page.ts): a clean leaf read from disk holds
 *   the page as read; a write's copy of a leaf in page form, and a new
 *   leaf a write makes (the first of a tree, a split's piece), hold an
 *   owned page, edited in place, which a checkpoint seals as it is and
 *   which then stays the clean leaf's page. A dirty leaf in page form
 *   always holds an owned page, and only a mutable one is written to;
 * - array form: keys and entries (`page` undefined): merges, leaves a
 *   checkpoint wrote from arrays, and new leaves where the codec makes no
 *   pages (TreePageIo.leafPageOf; the tests' fakes). A dirty leaf in page
 *   form is split in its bytes (tree_split.ts, splitPagePieces); one a
 *   merge takes turns into arrays first (leafArrays), with its page as its
 *   basis.
 */
export interface LeafNode extends NodeCommon {
  readonly kind: 'leaf';
  readonly level: 0;
  page: LeafPage | undefined;
  keys: string[] | undefined;
  entries: IndexEntry[] | undefined;
  /**
   * The page read from disk this leaf's records were copied from (by copies
   * and splits, through any number of them): the basis of its encoding.
   * Dropped once a checkpoint wrote this one.
   */
  basis: LeafBasisSource | undefined;
}

/** A leaf in array form (see LeafNode). */
export type ArrayLeafNode = LeafNode & { keys: string[]; entries: IndexEntry[] };

/**
 * A branch holds its children as its page's records (engine/branch_page.ts):
 * child i's record holds separator i - 1 (none for child 0) and, for a
 * clean child, its block and CRC; the children that are nodes in memory are
 * listed in the page beside the records.
 */
export interface BranchNode extends NodeCommon {
  readonly kind: 'branch';
  readonly level: number;
  page: BranchPage<TreeNode>;
}

export type TreeNode = LeafNode | BranchNode;
export type Child = TreeNode | PageRef;

export function isNode(child: Child): child is TreeNode {
  return (child as TreeNode).kind !== undefined;
}

export function newLeaf(epoch: number, keys: string[], entries: IndexEntry[], bytes: number): ArrayLeafNode {
  return { kind: 'leaf', level: 0, page: undefined, keys, entries, epoch, ref: undefined, bytes, pins: 0, planned: false, memoryBytes: 0, cacheReferenced: false, cacheSlot: -1, basis: undefined };
}

/** A clean leaf of the page `page` read from disk (its ref is set by the reader). */
export function newPageLeaf(page: LeafPage): LeafNode {
  return { kind: 'leaf', level: 0, page, keys: undefined, entries: undefined, epoch: EPOCH_NEVER, ref: undefined, bytes: page.recordBytes, pins: 0, planned: false, memoryBytes: 0, cacheReferenced: false, cacheSlot: -1, basis: undefined };
}

/** A dirty leaf in page form over `page`, an owned page (see LeafNode). */
export function newOwnedPageLeaf(epoch: number, page: LeafPage): LeafNode {
  if (!page.owned) throw new Error('ringstore: a dirty leaf in page form over a page as read from disk');
  return { kind: 'leaf', level: 0, page, keys: undefined, entries: undefined, epoch, ref: undefined, bytes: page.recordBytes, pins: 0, planned: false, memoryBytes: 0, cacheReferenced: false, cacheSlot: -1, basis: undefined };
}

/**
 * The arrays of a leaf in array form. A dirty leaf in page form turns into
 * array form here, with its page as its basis: one a merge takes, or one
 * that a running checkpoint encodes through PageTree's content() (the
 * same records: a node a snapshot or the plan holds may change form,
 * never content). Not a clean one: the page cache counts the memory it
 * had when it went in (read those through leafRecords). An Error (a bug)
 * for a clean leaf in page form: copy it first.
 */
export function leafArrays(leaf: LeafNode): { keys: string[]; entries: IndexEntry[] } {
  if (leaf.page !== undefined) {
    if (leaf.ref !== undefined) throw new Error('ringstore: a clean leaf in page form turned into arrays (copy it first; its cached memory would change unseen)');
    const page = leaf.page;
    // The page is nobody's to write once the leaf leaves it: the entries
    // may view it, and it stays the basis they are encoded against.
    const { keys, entries } = page.materialize();
    leaf.keys = keys;
    leaf.entries = entries;
    leaf.basis = { page, keys: keys.slice(), entries: entries.slice() };
    leaf.page = undefined;
  }
  return { keys: keysOf(leaf), entries: entriesOf(leaf) };
}

/**
 * The records of a leaf of either form as arrays, changing nothing (for
 * checks and merges of a leaf that is going away): its page's for a leaf in
 * page form.
 */
export function leafRecords(leaf: LeafNode): { keys: string[]; entries: IndexEntry[] } {
  if (leaf.page === undefined) return { keys: keysOf(leaf), entries: entriesOf(leaf) };
  return leaf.page.materialize();
}

/**
 * Inserts `item` at `index` of `array`: push() at the end, the place of
 * every insert of a sorted load, since splice() makes an array of the
 * removed items (none) on every call (a sixth of what a sorted load of 2 M
 * keys allocated went to splice()).
 */
export function insertAt<T>(array: T[], index: number, item: T): void {
  if (index === array.length) array.push(item);
  else array.splice(index, 0, item);
}

/** pageLeafSet's answer when the put does not fit the leaf's page (the leaf is unchanged). */
export const NO_ROOM: unique symbol = Symbol('ringstore.NO_ROOM');

/**
 * Sets `key` to `entry` (`bytes`: the entry's page bytes) in a mutable
 * leaf in page form, in its page, changing its page bytes; returns the
 * previous entry (viewing nothing of the page), or NO_ROOM, changing
 * nothing, when the records would no longer fit `capacityBytes`.
 */
export function pageLeafSet(leaf: LeafNode, key: string, entry: IndexEntry, bytes: number, capacityBytes: number): IndexEntry | undefined | typeof NO_ROOM {
  const page = leaf.page!;
  const index = page.lowerBound(key);
  if (index < page.count && page.compareKeyAt(index, key) === 0) {
    const previousBytes = page.starts[index + 1]! - page.starts[index]!;
    if (leaf.bytes + bytes - previousBytes > capacityBytes) return NO_ROOM;
    const previous = page.detachedEntryAt(index);
    page.replaceAt(index, key, entry, bytes);
    leaf.bytes += bytes - previousBytes;
    return previous;
  }
  if (leaf.bytes + bytes > capacityBytes) return NO_ROOM;
  page.insertAt(index, key, entry, bytes);
  leaf.bytes += bytes;
  return undefined;
}

/** pageLeafSet() of a key past the last of the leaf's (an append): no search. REQUIRES: it is. */
export function pageLeafAppend(leaf: LeafNode, key: string, entry: IndexEntry, bytes: number, capacityBytes: number): undefined | typeof NO_ROOM {
  if (leaf.bytes + bytes > capacityBytes) return NO_ROOM;
  leaf.page!.append(key, entry, bytes);
  leaf.bytes += bytes;
  return undefined;
}

/**
 * Deletes `key`, which the leaf holds, from a mutable leaf in page form, in
 * its page; returns its entry (viewing nothing of the page).
 */
export function pageLeafDelete(leaf: LeafNode, key: string): IndexEntry {
  const page = leaf.page!;
  const index = page.lowerBound(key);
  if (index === page.count || page.compareKeyAt(index, key) !== 0) throw new Error(`ringstore: delete of ${JSON.stringify(key.slice(0, 40))}, which the leaf does not hold`);
  const previous = page.detachedEntryAt(index);
  leaf.bytes -= page.starts[index + 1]! - page.starts[index]!;
  page.removeAt(index);
  return previous;
}

export function newBranch(epoch: number, level: number, separators: readonly string[], children: readonly Child[], bytes: number): BranchNode {
  return newBranchOfPage(epoch, level, BranchPage.ofChildren(separators, children), bytes);
}

/** A branch of `page`, which becomes the node's. */
export function newBranchOfPage(epoch: number, level: number, page: BranchPage<TreeNode>, bytes: number): BranchNode {
  return { kind: 'branch', level, page, epoch, ref: undefined, bytes, pins: 0, planned: false, memoryBytes: 0, cacheReferenced: false, cacheSlot: -1 };
}

/**
 * Changes a mutable branch through its separators and children as arrays
 * (`edit` changes them in place), then holds the result as its page: for
 * the rare changes of shape (merges, removals after deletes), not the
 * writes of every commit.
 */
export function editBranch(branch: BranchNode, edit: (separators: string[], children: Child[]) => void): void {
  const separators = branch.page.separators();
  const children = branch.page.children();
  edit(separators, children);
  branch.page = BranchPage.ofChildren(separators, children);
}

/** Children of a branch. */
export function childCount(branch: BranchNode): number {
  return branch.page.count;
}

/** Child `index` of a branch: its node if in memory, else a PageRef (a new object) of its record. */
export function childAt(branch: BranchNode, index: number): Child {
  return branch.page.childAt(index);
}

/** Separator `index` of a branch (between child index and index + 1), as a key string. */
export function separatorAt(branch: BranchNode, index: number): string {
  return branch.page.separatorAt(index);
}

/**
 * A mutable copy for epoch `epoch` (arrays copied; children shared). A leaf
 * in page form gets an owned copy of its page, with room for
 * `capacityBytes` of records.
 */
export function copyNode(node: TreeNode, epoch: number, capacityBytes: number): TreeNode {
  if (node.kind === 'branch') return newBranchOfPage(epoch, node.level, node.page.copy(), node.bytes);
  if (node.page !== undefined) return newOwnedPageLeaf(epoch, node.page.ownedCopy(capacityBytes));
  const { keys, entries } = leafArrays(node);
  const copy = newLeaf(epoch, keys.slice(), entries.slice(), node.bytes);
  copy.basis = node.basis;
  return copy;
}

// The readers of a leaf of either form below are on the paths of gets and
// ranges: they take the arrays field by field (keysOf, entriesOf) rather
// than through leafArrays, whose result is an object a call.

/** Number of records of a leaf, in any form. */
export function leafCount(leaf: LeafNode): number {
  return leaf.page !== undefined ? leaf.page.count : keysOf(leaf).length;
}

/** The entry of `key` in a leaf of any form, or undefined. */
export function leafFind(leaf: LeafNode, key: string): IndexEntry | undefined {
  if (leaf.page !== undefined) return leaf.page.find(key);
  const keys = keysOf(leaf);
  const index = lowerBound(keys, key);
  return keys[index] === key ? entriesOf(leaf)[index] : undefined;
}

// By position: a leaf of either form.

/** Record `index`'s key. */
export function leafKeyAt(leaf: LeafNode, index: number): string {
  return leaf.page !== undefined ? leaf.page.keyAt(index) : keysOf(leaf)[index]!;
}

/** Record `index`'s entry (a new object each call in page form). */
export function leafEntryAt(leaf: LeafNode, index: number): IndexEntry {
  return leaf.page !== undefined ? leaf.page.entryAt(index) : entriesOf(leaf)[index]!;
}

/** lowerBound of `key` in a leaf. */
export function leafLowerBound(leaf: LeafNode, key: string): number {
  return leaf.page !== undefined ? leaf.page.lowerBound(key) : lowerBound(keysOf(leaf), key);
}

/** upperBound of `key` in a leaf. */
export function leafUpperBound(leaf: LeafNode, key: string): number {
  return leaf.page !== undefined ? leaf.page.upperBound(key) : upperBound(keysOf(leaf), key);
}

function keysOf(leaf: LeafNode): string[] {
  if (leaf.keys === undefined) throw new Error('ringstore: a leaf without keys in neither form');
  return leaf.keys;
}

function entriesOf(leaf: LeafNode): IndexEntry[] {
  if (leaf.entries === undefined) throw new Error('ringstore: a leaf without entries in neither form');
  return leaf.entries;
}

// Estimates of a decoded node's memory in V8, from the usual sizes of its
// parts (an object header and a few fields ~64 B, an array slot 8 B, a
// one-byte string ~16 B + its length, an IndexEntry with its Uint8Array
// ~160 B + the bytes). Not measured yet: only the cache budget depends on
// them, and they need not be exact.
const NODE_MEMORY_BYTES = 160;
const KEY_MEMORY_BYTES = 24;
const ENTRY_MEMORY_BYTES = 160;
/** A slot of a small-integer array. */
const RECORD_START_MEMORY_BYTES = 8;

export function nodeMemoryBytes(node: TreeNode): number {
  let bytes = NODE_MEMORY_BYTES;
  if (node.kind === 'leaf') {
    if (node.page !== undefined) return bytes + node.page.bytes.length + node.page.starts.length * RECORD_START_MEMORY_BYTES;
    // From the page bytes of its records (node.bytes: keys, values and
    // record headers), not a walk of its entries: that walk read every
    // entry and value from all over the heap, for every leaf a checkpoint
    // wrote. Extent values count at their record size (12 bytes an
    // extent), under their memory: an estimate for the cache budget.
    bytes += leafArrays(node).keys.length * (KEY_MEMORY_BYTES + ENTRY_MEMORY_BYTES) + node.bytes;
  } else {
    // Its records' bytes with their room, and their starts (BranchPage).
    bytes += node.page.memoryBytes;
  }
  return bytes;
}

/** Page bytes of a leaf's entries. */
export function leafBytes(measure: PageMeasure, keys: readonly string[], entries: readonly IndexEntry[]): number {
  let bytes = 0;
  for (let index = 0; index < keys.length; index++) bytes += measure.entryBytes(keys[index]!, entries[index]!);
  return bytes;
}

/** Page bytes of a branch's children (the first measured as childBytes('')). */
export function branchBytes(measure: PageMeasure, separators: readonly string[]): number {
  let bytes = measure.childBytes('');
  for (const separator of separators) bytes += measure.childBytes(separator);
  return bytes;
}

// Both searches look at the last key first: keys written in ascending
// order (a sorted load, an append-heavy key space) land past the last
// separator of every branch on their path and past the last key of their
// leaf in array form (which a sorted load's leaves are: new ones), found
// in one compare instead of a binary search of ~7 (a sorted load of 1 M
// keys spent 8.6 % of its time in these). Random keys pay one compare
// more. A leaf searched in its page (LeafPage) has searches of its own.

/** Index of the first key >= `key` (keys.length if none). */
export function lowerBound(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  if (high > 0 && keys[high - 1]! < key) return high;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (keys[middle]! < key) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Index of the first key > `key` (keys.length if none). */
export function upperBound(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  if (high > 0 && keys[high - 1]! <= key) return high;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (keys[middle]! <= key) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The child of a branch whose subtree holds `key`: the number of separators <= key. */
export function childIndexFor(branch: BranchNode, key: string): number {
  return branch.page.childIndexFor(key);
}

/**
 * The shortest separator s with left < s <= right: the shortest prefix of
 * `right` that is greater than `left`. Branches hold these instead of whole
 * keys (suffix truncation), so long keys with a short distinguishing prefix
 * cost little branch space.
 * REQUIRES: left < right.
 */
export function shortestSeparator(left: string, right: string): string {
  if (!(left < right)) throw new Error(`ringstore: shortestSeparator(${JSON.stringify(left)}, ${JSON.stringify(right)}) needs left < right`);
  let common = 0;
  const limit = Math.min(left.length, right.length);
  while (common < limit && left.charCodeAt(common) === right.charCodeAt(common)) common++;
  // right[0..common] is a prefix of left (or all of right, when left is a
  // prefix of right); one more char of right makes it greater than left.
  return right.slice(0, common + 1);
}

