// PathPreparer: the reads before a batch of writes to the page tree
// (PageTree.prepare()). Writes are synchronous, so that a batch applies
// atomically; before one, every page on the paths of its keys (and, for
// deletes, the siblings the merges and borrows after them touch) is read
// and pinned in memory here, so the writes need no IO. PageTree.prepare()
// states the contract; this file is how the walks go.
//
// A prepare() goes in rounds: each walks its keys down the nodes in memory
// as far as they go, reads the first page missing on each path (all of a
// round's reads together), and the next round goes on from where each walk
// stopped — unless the tree was written to meanwhile, in which case every
// key walks again from the root.
import type { BranchPage } from './branch_page.js';
import type { PageCache } from './page_cache.js';
import type { TreeLoader } from './tree_loader.js';
import { isNode, type BranchNode, type Child, type PageRef, type TreeNode } from './tree_node.js';
import type { WalkBounds } from './tree_walk_bounds.js';

/**
 * Rounds of prepare() before it gives up: each reads the next level of every
 * path, so it takes height + 1 (a tree of 4 KiB pages is under 8 levels
 * high up to billions of keys); more means writes raced it, a bug.
 */
export const PREPARE_ROUNDS_MAX = 64;

/** What of the page tree a prepare() reads as it goes: PageTree's own fields. */
export interface PreparedTreeState {
  /** The root slot (undefined: an empty tree) and its level (0: a leaf). */
  readonly root: Child | undefined;
  readonly level: number;
  /**
   * Moves on with every call that may change the tree's nodes or drop them
   * from memory (writes, repairs, releaseCache): a round whose reads saw it
   * move walks its keys from the root again.
   */
  readonly writeCount: number;
}

/** The pages prepare() pinned; give them back with release(). */
export class PreparedPaths {
  #nodes: TreeNode[] | undefined;
  constructor(nodes: TreeNode[]) {
    this.#nodes = nodes;
  }
  /** The pinned nodes, without taking them. */
  get nodes(): readonly TreeNode[] {
    if (this.#nodes === undefined) throw new Error('ringstore: PreparedPaths used after release');
    return this.#nodes;
  }

  /** Takes the pinned nodes, once (for release()). */
  take(): TreeNode[] {
    const nodes = this.#nodes;
    if (nodes === undefined) throw new Error('ringstore: PreparedPaths released twice');
    this.#nodes = undefined;
    return nodes;
  }
}

/** A page a round must read: its ref, its level and the key bounds its parent gives it. */
interface MissingPage {
  readonly ref: PageRef;
  readonly level: number;
  readonly low: string | undefined;
  readonly high: string | undefined;
}

/**
 * Where one key's walk in a round stopped: the child `index` of `branch`
 * (the root itself when `branch` is undefined) was not in memory, with the
 * key bounds its walk had reached. The next round goes on from there once
 * the page is read, unless the tree was written to meanwhile.
 */
interface PrepareStop extends Readonly<WalkBounds> {
  readonly key: string;
  readonly siblings: boolean;
  readonly branch: BranchNode | undefined;
  readonly index: number;
}

export class PathPreparer {
  readonly #tree: PreparedTreeState;
  readonly #cache: PageCache;
  readonly #loader: TreeLoader;
  /**
   * The high bound of the leaf the last complete #walk reached: separator
   * #leafHighIndex of this branch page, or none (undefined: the rightmost
   * leaf). Read by prepare() right after, in the same round: no write
   * comes between.
   */
  #leafHighPage: BranchPage<TreeNode> | undefined;
  #leafHighIndex = 0;

  constructor(tree: PreparedTreeState, cache: PageCache, loader: TreeLoader) {
    this.#tree = tree;
    this.#cache = cache;
    this.#loader = loader;
  }

  /** PageTree.prepare(): see its contract there. */
  async prepare(setKeys: Iterable<string>, deleteKeys: Iterable<string>): Promise<PreparedPaths> {
    const sets: readonly string[] = Array.isArray(setKeys) ? setKeys : [...setKeys];
    const deletes: readonly string[] = Array.isArray(deleteKeys) ? deleteKeys : [...deleteKeys];
    const pinned = new Set<TreeNode>();
    try {
      // The keys whose walk stopped at a page not in memory; undefined: walk
      // every key from the root (the first round, and after writes).
      let stops: PrepareStop[] | undefined;
      for (let round = 0; round < PREPARE_ROUNDS_MAX; round++) {
        const missing = new Map<number, MissingPage>();
        const stopped: PrepareStop[] = [];
        if (stops === undefined) {
          // A set key past the last one walked, below the bound of the leaf
          // that walk reached in memory, is in that leaf: its path is pinned
          // already (an ascending run, a sorted load, walks once a leaf).
          let previousKey: string | undefined;
          for (const key of sets) {
            if (previousKey !== undefined && key > previousKey && this.#belowLeafHigh(key)) continue;
            previousKey = this.#walk(key, false, pinned, missing, stopped, undefined) ? key : undefined;
          }
          for (const key of deletes) this.#walk(key, true, pinned, missing, stopped, undefined);
        } else {
          for (const stop of stops) this.#walk(stop.key, stop.siblings, pinned, missing, stopped, stop);
        }
        if (missing.size === 0) return new PreparedPaths([...pinned]);
        const writeCount = this.#tree.writeCount;
        const loaded = await Promise.all([...missing.values()].map(({ ref, level, low, high }) => this.#loader.load(ref, level, low, high)));
        for (const node of loaded) this.#pin(node, pinned);
        // A walk goes on from where it stopped only over nodes no write
        // changed meanwhile (the pinned ones stay in memory, and a checkpoint
        // that completed turned children into refs the cache still finds):
        // a write may have split or copied them, so the last round must walk
        // the tree as it is (a walk from the root each round cost each key
        // of a random load at 10 M keys about three walks; docs/benchmarks.md,
        // "Session 30").
        stops = this.#tree.writeCount === writeCount ? stopped : undefined;
      }
    } catch (error) {
      this.release(new PreparedPaths([...pinned]));
      throw error;
    }
    throw new Error(`ringstore: prepare() did not converge in ${PREPARE_ROUNDS_MAX} rounds (writes raced it)`);
  }

  /** Unpins what prepare() pinned, and lets the cache evict down to its budget. */
  release(prepared: PreparedPaths): void {
    for (const node of prepared.take()) {
      if (node.pins <= 0) throw new Error('ringstore: page tree pin count underflow');
      node.pins--;
    }
    this.#cache.evict();
  }

  /** Lets go of the branch page the last walk's leaf bound is in (a store that closed keeps no page alive). */
  forget(): void {
    this.#leafHighPage = undefined;
  }

  /**
   * One key's walk of a round: pins the nodes on its path in memory (and
   * with `siblings` their siblings), and notes in `missing` the first page
   * of each path not in memory, with the key bounds it must keep. Returns
   * whether it reached the leaf. Written without a closure or an array a
   * level: every commit walks each of its keys here (the replay of a
   * 238 k-record tail spent a fifth of its time in this walk).
   */
  #walk(key: string, siblings: boolean, pinned: Set<TreeNode>, missing: Map<number, MissingPage>, stopped: PrepareStop[], from: PrepareStop | undefined): boolean {
    const root = this.#tree.root;
    if (root === undefined) return false;
    // The key bounds of `node` (WalkBounds, kept in locals).
    let lowPage = from?.lowPage;
    let lowIndex = from?.lowIndex ?? 0;
    let highPage = from?.highPage;
    let highIndex = from?.highIndex ?? 0;
    // From the root, or from the child the last round's walk stopped at
    // (its siblings, if any, were noted then: read and pinned since).
    let branch = from?.branch;
    let node =
      branch === undefined
        ? this.#resolve(root, this.#tree.level, undefined, undefined, pinned, missing)
        : this.#resolveChild(branch.page, from!.index, branch.level - 1, lowPage, lowIndex, highPage, highIndex, pinned, missing);
    let index = from?.index ?? 0;
    while (node !== undefined && node.kind === 'branch') {
      branch = node;
      const page = node.page;
      index = page.childIndexFor(key);
      const last = page.count - 1;
      const level = node.level - 1;
      // Child `at` holds the keys from separator at - 1 (the branch's low at 0) up to separator at (its high at the last).
      if (siblings && index > 0) this.#resolveChild(page, index - 1, level, index === 1 ? lowPage : page, index === 1 ? lowIndex : index - 2, page, index - 1, pinned, missing);
      if (siblings && index < last) this.#resolveChild(page, index + 1, level, page, index, index + 1 === last ? highPage : page, index + 1 === last ? highIndex : index + 1, pinned, missing);
      if (index > 0) {
        lowPage = page;
        lowIndex = index - 1;
      }
      if (index < last) {
        highPage = page;
        highIndex = index;
      }
      node = this.#resolveChild(page, index, level, lowPage, lowIndex, highPage, highIndex, pinned, missing);
    }
    if (node === undefined) {
      stopped.push({ key, siblings, branch, index, lowPage, lowIndex, highPage, highIndex });
      return false;
    }
    this.#leafHighPage = highPage;
    this.#leafHighIndex = highIndex;
    return true;
  }

  /** Whether `key` is below the high bound of the leaf the last #walk that returned true reached. */
  #belowLeafHigh(key: string): boolean {
    const page = this.#leafHighPage;
    return page === undefined || page.compareSeparatorWith(this.#leafHighIndex, key) > 0;
  }

  /**
   * #resolve of child `index` of a branch's `page`, whose bounds are
   * separator lowIndex of lowPage and highIndex of highPage: a clean child
   * is looked up by its record, with no PageRef or bound made unless its
   * page must be read.
   */
  #resolveChild(
    page: BranchPage<TreeNode>,
    index: number,
    level: number,
    lowPage: BranchPage<TreeNode> | undefined,
    lowIndex: number,
    highPage: BranchPage<TreeNode> | undefined,
    highIndex: number,
    pinned: Set<TreeNode>,
    missing: Map<number, MissingPage>,
  ): TreeNode | undefined {
    const node = page.nodeAt(index) ?? this.#cache.getAt(page.blockAt(index), page.crcAt(index));
    if (node !== undefined) this.#pin(node, pinned);
    else missing.set(page.blockAt(index), { ref: page.refAt(index), level, low: lowPage?.separatorAt(lowIndex), high: highPage?.separatorAt(highIndex) });
    return node;
  }

  /** A slot's node, pinned, if in memory or cached; else undefined, with its page noted in `missing`. */
  #resolve(child: Child, level: number, low: string | undefined, high: string | undefined, pinned: Set<TreeNode>, missing: Map<number, MissingPage>): TreeNode | undefined {
    const node = isNode(child) ? child : this.#cache.get(child);
    if (node !== undefined) this.#pin(node, pinned);
    else missing.set((child as PageRef).block, { ref: child as PageRef, level, low, high });
    return node;
  }

  #pin(node: TreeNode, pinned: Set<TreeNode>): void {
    if (pinned.has(node)) return;
    pinned.add(node);
    node.pins++;
    // Loaded but evicted before it was pinned (a tiny cache): put it back.
    if (node.ref !== undefined && !this.#cache.holds(node)) this.#cache.insert(node);
  }
}
