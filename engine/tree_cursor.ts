// Range iteration over one state of the page tree (a snapshot's root), in
// bytewise key order or its reverse, loading pages as it goes. While a leaf
// is consumed, the reads of the next few children of each branch on the path
// (those whose key ranges meet the range) are already issued: a scan over
// uncached pages waits for about one read per read-ahead window of leaves
// instead of one per leaf. The window starts small, so a short range reads
// little past its end, and doubles with every leaf the range goes on to.
// Near the end of a leaves' parent the window goes on into the next parent's
// first leaves: a scan used to drain its reads to none at the end of every
// parent (~120 leaves) and then wait for two reads in a row, the next
// parent's first leaf and then the window behind it.
//
// The cursor hands out a leaf at a time (a LeafRun: the leaf and the span
// of its positions in the range), not an entry at a time: each step of an
// async generator costs its consumer a promise and a turn of the microtask
// queue, and a scan paid that once per key in every layer it went through.
import { StoreCorruptError } from './store_error.js';
import type { IndexEntry } from './store_index.js';
import {
  childAt,
  childCount,
  childIndexFor,
  isNode,
  leafCount,
  leafEntryAt,
  leafKeyAt,
  leafLowerBound,
  leafUpperBound,
  separatorAt,
  type BranchNode,
  type Child,
  type LeafNode,
  type PageRef,
  type TreeNode,
} from './tree_node.js';

/** Pages read ahead per branch on the path when a range begins. */
export const READ_AHEAD_PAGES = 4;
/**
 * The most pages read ahead per branch on the path, which a range reaches
 * after 3 leaves. A scan of 1 M keys (16-byte keys, 100-byte values, ~23 k
 * uncached leaves, O_DIRECT on virtio) was half idle waiting for reads at a
 * fixed 4 pages: 306-314 k keys/s; 361-370 k at 16, 370-376 k at 64 (2
 * alternating runs each), no difference past 16 within the noise. 32 is
 * between them, for a device slower than this one, and still bounds what
 * a range has in flight: 32 reads a level (each a pooled page buffer), and
 * a range stopped early has read up to a window of leaves it never used.
 */
export const READ_AHEAD_PAGES_MAX = 32;

export interface RangeOptions {
  /** Lowest key of the range; none: from the first key. */
  readonly low?: string | undefined;
  /** Whether `low` itself is in the range (default true). */
  readonly lowInclusive?: boolean | undefined;
  /** Highest key of the range; none: to the last key. */
  readonly high?: string | undefined;
  /** Whether `high` itself is in the range (default true). */
  readonly highInclusive?: boolean | undefined;
  /** From the highest key down (default false). */
  readonly reverse?: boolean | undefined;
}

/** How the cursor gets nodes: synchronously when in memory, else by a read. */
export interface NodeSource {
  /** The node of `ref` if cached, without IO. */
  cached(ref: PageRef): TreeNode | undefined;
  /** Reads (or finds cached) the node of `ref`; `low`/`high` bound its keys (inclusive/exclusive) for checking. */
  load(ref: PageRef, level: number, low: string | undefined, high: string | undefined): Promise<TreeNode>;
  /**
   * load() for a scan, which may keep a page out of the cache and lend a
   * leaf instead of caching it: every node it returns goes back through
   * giveBack() once nothing reads it.
   */
  loadForScan?(ref: PageRef, level: number, low: string | undefined, high: string | undefined): Promise<TreeNode>;
  /** Ends the loan of a node loadForScan() lent; nothing for any other node. */
  giveBack?(node: TreeNode): void;
}

interface Frame {
  readonly node: BranchNode;
  /** The child being visited. */
  index: number;
  /** Bounds of the node's keys: low inclusive, high exclusive (undefined: unbounded). */
  readonly low: string | undefined;
  readonly high: string | undefined;
  /** Reads issued ahead, by child index; each is taken (deleted) when its child is visited. */
  readonly ahead: Map<number, Promise<TreeNode>>;
  /**
   * Reads issued ahead for the children of a child of this branch (a branch
   * itself), by that child's index: the frame made when the range descends
   * into that child takes them as its `ahead`.
   */
  readonly aheadBelow: Map<number, AheadBelow>;
}

/** Reads ahead into the children of a branch the range has not reached yet (Frame.aheadBelow). */
interface AheadBelow {
  readonly ahead: Map<number, Promise<TreeNode>>;
  /** The branch's frame-to-be, once its node is known: reads go on into it as the window moves on. */
  frame: Frame | undefined;
  /** Children to read, from its first in the iteration's order. */
  positions: number;
}

/**
 * The positions of one leaf that are in a range, in iteration order: from
 * `first` by `step` (1, or -1 in reverse) up to `end`, exclusive. Read them
 * with leafKeyAt/leafEntryAt; `leaf` is readable by position (in page or
 * array form) and belongs to a snapshot, so it does not change while it
 * may be read (a lent leaf: until the next run is asked for, rangeRuns).
 */
export interface LeafRun {
  readonly leaf: LeafNode;
  readonly first: number;
  readonly end: number;
  readonly step: 1 | -1;
}

/** The range's entries one at a time, over rangeRuns(). */
export async function* rangeEntries(
  root: Child | undefined,
  rootLevel: number,
  source: NodeSource,
  options: RangeOptions,
): AsyncGenerator<[string, IndexEntry], void, undefined> {
  for await (const run of rangeRuns(root, rootLevel, source, options)) {
    for (let index = run.first; index !== run.end; index += run.step) yield [leafKeyAt(run.leaf, index), leafEntryAt(run.leaf, index)];
  }
}

/**
 * The range's entries a leaf at a time; runs are never empty. With
 * `lendLeaves`, pages come through the source's loadForScan(), and a run's
 * leaf — and every view of it (an inline value's bytes) — may be read only
 * until the consumer asks for the next run: then, or when the iteration
 * ends, it is given back (reads ahead still in flight then, as they land).
 */
export async function* rangeRuns(
  root: Child | undefined,
  rootLevel: number,
  source: NodeSource,
  options: RangeOptions,
  lendLeaves = false,
): AsyncGenerator<LeafRun, void, undefined> {
  if (root === undefined) return;
  const giveBack = lendLeaves ? source.giveBack : undefined;
  const loadForScan = lendLeaves ? source.loadForScan : undefined;
  /** Loads the page `slot` at `level` (through loadForScan when lending). */
  const loadPage = (slot: PageRef, level: number, pageLow: string | undefined, pageHigh: string | undefined): Promise<TreeNode> =>
    loadForScan !== undefined ? loadForScan.call(source, slot, level, pageLow, pageHigh) : source.load(slot, level, pageLow, pageHigh);
  const low = options.low;
  const high = options.high;
  const lowInclusive = options.lowInclusive !== false;
  const highInclusive = options.highInclusive !== false;
  const reverse = options.reverse === true;
  if (low !== undefined && high !== undefined && (low > high || (low === high && !(lowInclusive && highInclusive)))) return;

  /** Whether no key under child `index` of `node` can be in the range (the iteration is past it). */
  const beyond = (node: BranchNode, index: number): boolean => {
    if (!reverse) {
      // Keys under child index are >= separator index - 1.
      if (high === undefined || index === 0) return false;
      const order = node.page.compareSeparatorWith(index - 1, high);
      return order > 0 || (order === 0 && !highInclusive);
    }
    // Keys under child index are < separator index.
    return low !== undefined && index < childCount(node) - 1 && node.page.compareSeparatorWith(index, low) <= 0;
  };

  const boundsOf = (frame: Frame, index: number): [string | undefined, string | undefined] => [
    index === 0 ? frame.low : separatorAt(frame.node, index - 1),
    index === childCount(frame.node) - 1 ? frame.high : separatorAt(frame.node, index),
  ];

  const childOf = async (frame: Frame, index: number): Promise<TreeNode> => {
    const slot = childAt(frame.node, index);
    let node: TreeNode | undefined;
    if (isNode(slot)) node = slot;
    else {
      const ahead = frame.ahead.get(index);
      frame.ahead.delete(index);
      const [childLow, childHigh] = boundsOf(frame, index);
      node = ahead !== undefined ? await ahead : (source.cached(slot) ?? (await loadPage(slot, frame.node.level - 1, childLow, childHigh)));
    }
    readAhead(frame, index);
    return node;
  };

  /** Pages to read ahead per branch: READ_AHEAD_PAGES, doubling with each leaf the range goes on to. */
  let window = READ_AHEAD_PAGES;
  /** Set once the iteration has ended: a read ahead whose branch lands after it issues nothing. */
  let ended = false;
  const step = reverse ? -1 : 1;

  /**
   * Issues the reads of up to `positions` children of `node` after child
   * `index` in the iteration's order, into `ahead` (children in memory, in
   * the cache or already in `ahead` take a position and no read); returns
   * the positions left when the children ran out, or 0 if the window or
   * the range ended first.
   */
  const issueAhead = (frame: Frame, index: number, positions: number): number => {
    let next = index + step;
    for (let count = 0; count < positions; next += step, count++) {
      if (next < 0 || next >= childCount(frame.node)) return positions - count;
      if (beyond(frame.node, next)) return 0;
      const slot = childAt(frame.node, next);
      if (isNode(slot) || frame.ahead.has(next) || source.cached(slot) !== undefined) continue;
      const [childLow, childHigh] = boundsOf(frame, next);
      const promise = loadPage(slot, frame.node.level - 1, childLow, childHigh);
      // An iteration that stops early never awaits it; its error, if any,
      // is reported by the visit that awaits it, or by nobody.
      promise.catch(() => {});
      frame.ahead.set(next, promise);
    }
    return 0;
  };

  const readAhead = (frame: Frame, index: number): void => {
    const left = issueAhead(frame, index, window);
    if (left > 0 && frame.node.level === 1) readAheadIntoNextParent(frame, left);
  };

  /**
   * The rest of a window that ran past the last leaf of `frame` (a leaves'
   * parent): issued for the first leaves of the next parent in the range,
   * into its parent's `aheadBelow`. Only across parents of leaves: a branch
   * two levels up ends once every ~14 000 leaves.
   */
  const readAheadIntoNextParent = (frame: Frame, positions: number): void => {
    const at = stack.lastIndexOf(frame);
    if (at < 1) return;
    const parent = stack[at - 1]!;
    const index = parent.index + step;
    if (index < 0 || index >= childCount(parent.node) || beyond(parent.node, index)) return;
    /** The position before the first child of `node` in the iteration's order. */
    const before = (node: BranchNode): number => (reverse ? childCount(node) : -1);
    const started = parent.aheadBelow.get(index);
    if (started !== undefined) {
      // The window moved on: more of the next parent's children.
      if (positions <= started.positions) return;
      started.positions = positions;
      if (started.frame !== undefined) issueAhead(started.frame, before(started.frame.node), positions);
      return;
    }
    const [low, high] = boundsOf(parent, index);
    const below: AheadBelow = { ahead: new Map(), frame: undefined, positions };
    parent.aheadBelow.set(index, below);
    const fill = (node: TreeNode): void => {
      if (ended || node.kind !== 'branch') return;
      below.frame = { node, index: before(node), low, high, ahead: below.ahead, aheadBelow: new Map() };
      issueAhead(below.frame, before(node), below.positions);
    };
    const slot = childAt(parent.node, index);
    if (isNode(slot)) return fill(slot);
    const present = source.cached(slot);
    if (present !== undefined) return fill(present);
    let pending = parent.ahead.get(index);
    if (pending === undefined) {
      pending = loadPage(slot, parent.node.level - 1, low, high);
      pending.catch(() => {});
      parent.ahead.set(index, pending);
    }
    // Registered before the visit's own await of the branch: the frame
    // made for it takes a map these reads are in already.
    pending.then(fill, () => undefined);
  };

  const stack: Frame[] = [];
  /**
   * Descends from `start` to a leaf, pushing frames, taking the child where
   * the range begins; `startAhead` is what was read ahead for the children
   * of `start` (its frame takes them).
   */
  const descend = async (start: TreeNode, startLow: string | undefined, startHigh: string | undefined, startAhead?: Map<number, Promise<TreeNode>>): Promise<TreeNode> => {
    let node = start;
    let nodeLow = startLow;
    let nodeHigh = startHigh;
    let ahead = startAhead;
    if (node.kind !== 'branch' && ahead !== undefined) giveBackAll(ahead);
    while (node.kind === 'branch') {
      const index = reverse
        ? high === undefined
          ? childCount(node) - 1
          : childIndexFor(node, high)
        : low === undefined
          ? 0
          : childIndexFor(node, low);
      const frame: Frame = { node, index, low: nodeLow, high: nodeHigh, ahead: ahead ?? new Map(), aheadBelow: new Map() };
      ahead = undefined;
      stack.push(frame);
      [nodeLow, nodeHigh] = boundsOf(frame, index);
      node = await childOf(frame, index);
    }
    return node;
  };

  /** Gives back the reads ahead in `ahead` (a range that ended before visiting them), once each settles. */
  const giveBackAll = (ahead: Map<number, Promise<TreeNode>>): void => {
    if (giveBack !== undefined) for (const promise of ahead.values()) promise.then((node) => giveBack.call(source, node), () => undefined);
    ahead.clear();
  };
  /** Gives back the reads ahead a frame still holds, its children's included. */
  const giveBackAhead = (frame: Frame): void => {
    giveBackAll(frame.ahead);
    for (const below of frame.aheadBelow.values()) giveBackAll(below.ahead);
    frame.aheadBelow.clear();
  };

  let leaf: TreeNode | undefined;
  /** The previous leaf's last key in the range's direction: the next leaf's keys all lie beyond it. */
  let previousEdge: string | undefined;
  try {
    leaf = await descend(isNode(root) ? root : (source.cached(root) ?? (await loadPage(root, rootLevel, undefined, undefined))), undefined, undefined);
    for (;;) {
      if (leaf.kind !== 'leaf') throw new Error('ringstore: range descent ended on a branch');
      // A leaf in page form makes each key and entry as it is read. The
      // leaf is a snapshot's: no write changes it while its runs are read.
      const count = leafCount(leaf);
      // A page's keys are checked against its parent's bounds when it is
      // read, not each time a cached page is reached: a page two parents
      // name (forged, or a bug) would give its keys twice, out of order
      // (found by a review). One comparison a leaf.
      if (previousEdge !== undefined && count > 0) {
        const edge = leafKeyAt(leaf, reverse ? count - 1 : 0);
        if (reverse ? !(edge < previousEdge) : !(edge > previousEdge)) {
          throw new StoreCorruptError('page', `level 0: keys out of order across leaves: a leaf's ${reverse ? 'last' : 'first'} key is not ${reverse ? 'below' : 'above'} the previous leaf's in the range (a page named by two parents?)`, leaf.ref?.block);
        }
      }
      if (count > 0) previousEdge = leafKeyAt(leaf, reverse ? 0 : count - 1);
      // The run ends where the range does, if in this leaf: then no later leaf is read.
      if (!reverse) {
        const first = low === undefined ? 0 : lowInclusive ? leafLowerBound(leaf, low) : leafUpperBound(leaf, low);
        const end = high === undefined ? count : highInclusive ? leafUpperBound(leaf, high) : leafLowerBound(leaf, high);
        if (first < end) yield { leaf: leaf, first, end, step: 1 };
        if (end < count) return;
      } else {
        const first = high === undefined ? count - 1 : highInclusive ? leafUpperBound(leaf, high) - 1 : leafLowerBound(leaf, high) - 1;
        const end = low === undefined ? -1 : lowInclusive ? leafLowerBound(leaf, low) - 1 : leafUpperBound(leaf, low) - 1;
        if (first > end) yield { leaf: leaf, first, end, step: -1 };
        if (end > -1) return;
      }
      // The consumer asked for the next run: it is done with this leaf.
      giveBack?.call(source, leaf);
      leaf = undefined;
      // The next leaf: up to the nearest branch with a next child in the range.
      let next: TreeNode | undefined;
      while (stack.length > 0) {
        const frame = stack[stack.length - 1]!;
        frame.index += reverse ? -1 : 1;
        if (frame.index < 0 || frame.index >= childCount(frame.node)) {
          giveBackAhead(stack.pop()!);
          continue;
        }
        if (beyond(frame.node, frame.index)) return;
        const [childLow, childHigh] = boundsOf(frame, frame.index);
        const child = await childOf(frame, frame.index);
        const below = frame.aheadBelow.get(frame.index);
        frame.aheadBelow.delete(frame.index);
        next = await descend(child, childLow, childHigh, below?.ahead);
        break;
      }
      if (next === undefined) return;
      leaf = next;
      window = Math.min(READ_AHEAD_PAGES_MAX, 2 * window);
    }
  } finally {
    // Ended (run out, stopped by the consumer, or failed): nothing lent is read again.
    ended = true;
    if (leaf !== undefined) giveBack?.call(source, leaf);
    for (const frame of stack) giveBackAhead(frame);
  }
}
