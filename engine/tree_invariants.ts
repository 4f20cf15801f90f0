// The page tree's invariants, asserted over the pages in memory (tests and
// the lab call PageTree.checkInvariants after every step). Pages not cached
// are skipped: this does no IO.
import type { PageCache } from './page_cache.js';
import { branchBytes, EPOCH_NEVER, isNode, leafBytes, leafRecords, type BranchNode, type Child, type PageMeasure, type PageRef, type TreeNode } from './tree_node.js';

/** What the checks read of a PageTree (its private state, read-only). */
export interface TreeState {
  readonly root: Child | undefined;
  readonly level: number;
  readonly keyCount: number;
  /** The tree's write epoch: nodes of it are mutable. */
  readonly epoch: number;
  readonly capacityBytes: number;
  readonly measure: PageMeasure;
  readonly cache: PageCache;
  /** G: replaced pages (PageTree's #garbage). */
  readonly garbage: readonly (PageRef | TreeNode)[];
  /** Keys whose path may hold a branch of one child waiting for repairUnderflows(). */
  readonly underflowKeys: ReadonlySet<string>;
}

/**
 * Asserts order, separators bounding their subtrees, levels, sizes within
 * capacity and as recorded, no empty non-root leaf and branches with >= 2
 * children (but under a key noted for repair: an empty leaf, one child), mutable nodes neither on disk nor planned, the current tree's
 * slots holding only dirty nodes, the key count when every page is in
 * memory, and the cache's accounting.
 */
export function checkTreeInvariants(tree: TreeState): void {
  const fail = (message: string): never => {
    throw new Error(`ringstore: page tree invariant: ${message}`);
  };
  /** Whether a key noted for repair (PageTree.#rebalance) lies in [low, high): its path may hold an empty leaf or a branch of one child or none. */
  const noted = (low: string | undefined, high: string | undefined): boolean => [...tree.underflowKeys].some((key) => (low === undefined || key >= low) && (high === undefined || key < high));
  let keys = 0;
  let complete = true;
  const check = (child: Child, level: number, low: string | undefined, high: string | undefined): void => {
    if (isNode(child) && child.ref !== undefined) fail('the current tree holds a clean node in a slot (complete() should have made it a ref)');
    const node = isNode(child) ? child : tree.cache.peek(child);
    if (node === undefined) {
      complete = false;
      return;
    }
    if (node.level !== level) fail(`a node of level ${node.level} at level ${level}`);
    if (node.epoch === tree.epoch && (node.ref !== undefined || node.planned)) fail('a mutable node is on disk or planned');
    if (node.bytes > tree.capacityBytes) fail(`a node of ${node.bytes} bytes > capacity ${tree.capacityBytes}`);
    // A leaf in page form is checked through its keys and entries as a copy would read them (without changing its form).
    const leaf = node.kind === 'leaf' ? leafRecords(node) : undefined;
    const ordered = leaf !== undefined ? leaf.keys : (node as BranchNode).page.separators();
    for (let index = 1; index < ordered.length; index++) if (!(ordered[index - 1]! < ordered[index]!)) fail(`keys out of order at level ${level}`);
    if (ordered.length > 0) {
      if (low !== undefined && ordered[0]! < low) fail(`key ${JSON.stringify(ordered[0])} below its bound ${JSON.stringify(low)}`);
      if (high !== undefined && !(ordered[ordered.length - 1]! < high)) fail(`key ${JSON.stringify(ordered[ordered.length - 1])} not below its bound ${JSON.stringify(high)}`);
    }
    if (node.kind === 'leaf') {
      if (node.page !== undefined && (node.keys !== undefined || node.entries !== undefined)) fail('a leaf in page form with arrays');
      if (node.page !== undefined && node.ref === undefined && !node.page.owned) fail('a dirty leaf in page form over a page as read from disk (not its own copy)');
      if (node.page !== undefined) {
        const page = node.page;
        if (page.count !== page.starts.length - 1) fail(`a leaf page counts ${page.count} records over ${page.starts.length - 1} starts`);
        if (page.starts[page.count]! > page.bytes.length) fail('a leaf page whose records end past its bytes');
        if (node.bytes !== page.recordBytes) fail(`a leaf in page form records ${node.bytes} bytes, its page ${page.recordBytes}`);
      }
      if (leaf!.keys.length === 0 && !(level < tree.level && noted(low, high))) fail('an empty leaf');
      if (leaf!.keys.length !== leaf!.entries.length) fail('keys and entries differ in count');
      if (node.bytes !== leafBytes(tree.measure, leaf!.keys, leaf!.entries)) fail('a leaf whose recorded bytes are wrong');
      keys += leaf!.keys.length;
      return;
    }
    // One child only where a delete noted it for repair (PageTree.#rebalance).
    const separators = ordered;
    const children = node.page.children();
    if (children.length < 2 && !(children.length === 1 && noted(low, high))) fail(`a branch with ${children.length} children`);
    if (separators.length !== children.length - 1) fail('separators and children do not match');
    if (node.bytes !== branchBytes(tree.measure, separators)) fail('a branch whose recorded bytes are wrong');
    if (node.ref !== undefined && node.page.hasNodes) fail('a clean branch with children in memory');
    for (let index = 0; index < children.length; index++) {
      check(children[index]!, level - 1, index === 0 ? low : separators[index - 1], index === separators.length ? high : separators[index]);
    }
  };
  if (tree.root === undefined) {
    if (tree.keyCount !== 0 || tree.level !== 0) fail(`no root but ${tree.keyCount} keys, level ${tree.level}`);
  } else {
    check(tree.root, tree.level, undefined, undefined);
    if (complete && keys !== tree.keyCount) fail(`${keys} keys in the tree, ${tree.keyCount} counted`);
  }
  let cachedBytes = 0;
  for (const node of tree.cache.nodes()) {
    if (node.ref === undefined || node.epoch !== EPOCH_NEVER || node.planned) fail('a dirty node in the page cache');
    cachedBytes += node.memoryBytes;
  }
  if (cachedBytes !== tree.cache.bytes) fail(`the cache counts ${tree.cache.bytes} bytes, its nodes ${cachedBytes}`);
  for (const page of tree.garbage) {
    if (isNode(page) && !page.planned) fail('G holds a node no checkpoint will write');
  }
}
