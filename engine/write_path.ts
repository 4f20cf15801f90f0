// WritePath: the branches a write walked through to its leaf, root first,
// with the child index taken in each: what a split or a merge after it
// climbs back up (engine/page_tree.ts). One per tree, reused by every set()
// and delete() (they are synchronous): a path of fresh objects a write was a
// quarter of what a WAL tail's replay allocated.
import type { BranchNode } from './tree_node.js';

export class WritePath {
  readonly #steps: { branch: BranchNode; index: number }[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Starts a walk from the root. */
  clear(): void {
    this.#length = 0;
  }

  push(branch: BranchNode, index: number): void {
    const step = this.#steps[this.#length];
    if (step === undefined) this.#steps.push({ branch, index });
    else {
      step.branch = branch;
      step.index = index;
    }
    this.#length++;
  }

  /** Ends a walk: steps of a deeper earlier walk (the tree has since lost a level) no longer hold their branches. */
  forgetDeeper(): void {
    if (this.#steps.length > this.#length) this.#steps.length = this.#length;
  }

  /** Step `depth` (0: the root's) of the walk; REQUIRES depth < length. */
  at(depth: number): { readonly branch: BranchNode; readonly index: number } {
    if (!(depth >= 0 && depth < this.#length)) throw new RangeError(`step ${depth} of a path of ${this.#length}`);
    return this.#steps[depth]!;
  }

  /** The innermost step left, or undefined; valid until the next push(). */
  pop(): { readonly branch: BranchNode; readonly index: number } | undefined {
    return this.#length === 0 ? undefined : this.#steps[--this.#length];
  }
}
