// CheckpointPlan: one checkpoint of the page tree in progress, from
// PageTree.beginCheckpoint() to complete() or abort(). It holds the frozen
// tree's root and its dirty nodes in the order to write them, and G, the
// pages replaced before it began, to free once it is durable (why those are
// unreachable from its root: engine/page_tree.ts, "Garbage").
import type { BranchPage } from './branch_page.js';
import { isNode, leafArrays, type BranchNode, type Child, type DecodedTreePage, type PageRef, type TreeNode } from './tree_node.js';

/**
 * A checkpoint in progress: what beginCheckpoint() froze. The caller
 * encodes and writes `dirtyNodes` in order (children before parents, so a
 * branch's children have refs when it is encoded), then its superblock, then
 * calls complete() — or abort() if anything failed.
 */
export class CheckpointPlan {
  #state: 'running' | 'complete' | 'aborted' = 'running';
  readonly #onComplete: (plan: CheckpointPlan, assigned: ReadonlyMap<TreeNode, PageRef>) => void;
  readonly #onAbort: (plan: CheckpointPlan) => void;

  constructor(
    /** The frozen root: a dirty node (in dirtyNodes), a clean page's ref, or undefined for an empty tree. */
    readonly root: Child | undefined,
    readonly level: number,
    readonly keyCount: number,
    /** Every dirty node of the frozen tree, in post-order (children before parents; the root last). */
    readonly dirtyNodes: readonly TreeNode[],
    /** G: pages replaced before beginCheckpoint(); see garbageBlocks(). */
    readonly garbage: readonly PageRef[],
    onComplete: (plan: CheckpointPlan, assigned: ReadonlyMap<TreeNode, PageRef>) => void,
    onAbort: (plan: CheckpointPlan) => void,
  ) {
    this.#onComplete = onComplete;
    this.#onAbort = onAbort;
  }

  get state(): 'running' | 'complete' | 'aborted' {
    return this.#state;
  }

  /**
   * What to encode for a node of the plan. A branch's dirty children are
   * resolved by `refOf` (the refs this plan assigned to nodes before it).
   * The arrays of a leaf are the node's own: read them, do not change them
   * (a leaf in edited form turns into arrays here, the same records; the
   * checkpointer encodes leaves through TreePages.encodeLeaf instead).
   */
  content(node: TreeNode, refOf: (child: TreeNode) => PageRef | undefined): DecodedTreePage {
    if (this.#state !== 'running' || !node.planned) throw new Error('ringstore: content() of a node that is not in a running plan');
    if (node.kind === 'leaf') return { kind: 'leaf', ...leafArrays(node) };
    const children = node.page.children().map((child) => (isNode(child) ? this.#childRef(child, refOf) : child));
    return { kind: 'branch', level: node.level, separators: node.page.separators(), children };
  }

  /**
   * content() of a branch of the plan as its page: the blocks and CRCs of
   * its children in memory (`refOf` as for content()) written into their
   * records, which are then the page's records as they are to be written
   * (format/page.ts encodeBranchPageOfRecords). The branch is frozen: its
   * children stay the nodes they are.
   */
  branchPage(node: BranchNode, refOf: (child: TreeNode) => PageRef | undefined): BranchPage<TreeNode> {
    if (this.#state !== 'running' || !node.planned) throw new Error('ringstore: branchPage() of a node that is not in a running plan');
    const page = node.page;
    page.forEachNode((child, index) => page.writeRefOfNode(index, this.#childRef(child, refOf)));
    return page;
  }

  #childRef(child: TreeNode, refOf: (child: TreeNode) => PageRef | undefined): PageRef {
    const ref = child.ref ?? refOf(child);
    if (ref === undefined) throw new Error('ringstore: content() of a branch before its dirty child has a ref (encode in dirtyNodes order)');
    return ref;
  }

  /** The root's ref for the superblock, given the refs assigned so far (undefined: an empty tree). */
  rootRef(refOf: (node: TreeNode) => PageRef | undefined): PageRef | undefined {
    if (this.root === undefined) return undefined;
    if (!isNode(this.root)) return this.root;
    const ref = this.root.ref ?? refOf(this.root);
    if (ref === undefined) throw new Error('ringstore: rootRef() before the root has a ref');
    return ref;
  }

  /**
   * The checkpoint is durable (its superblock written): its nodes become
   * clean, with `assigned` the ref of each of dirtyNodes. Their parents,
   * frozen or current, now hold the refs; the nodes go into the page cache.
   */
  complete(assigned: ReadonlyMap<TreeNode, PageRef>): void {
    if (this.#state !== 'running') throw new Error(`ringstore: complete() of a ${this.#state} plan`);
    this.#onComplete(this, assigned);
    this.#state = 'complete';
  }

  /** The checkpoint failed: everything stays dirty, and G goes back into the tree's (for the next plan). */
  abort(): void {
    if (this.#state !== 'running') throw new Error(`ringstore: abort() of a ${this.#state} plan`);
    this.#onAbort(this);
    this.#state = 'aborted';
  }

  /**
   * The blocks to free now that this checkpoint is durable: pages replaced
   * before its beginCheckpoint(), unreachable from its root (see the file
   * header). Snapshots and reads (get, entries, walk) begun before that
   * beginCheckpoint() may still read them: free them only once those ended
   * (the store's read epochs), else a reused block could be read as a page.
   */
  garbageBlocks(): number[] {
    if (this.#state !== 'complete') throw new Error(`ringstore: garbageBlocks() of a ${this.#state} plan (only once complete)`);
    return this.garbage.map((ref) => ref.block);
  }
}
