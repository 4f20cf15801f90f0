// The key bounds a walk down the page tree has reached, kept as branch
// pages and separator indexes rather than strings: a key string a level
// cost ~0.45 µs of a cold get here, and most walks (cached gets, prepare()
// rounds that find every page in memory) never need one. The bounds become
// strings only where a page must be read, since the loader checks a read
// page's keys against them (engine/tree_loader.ts).
import type { BranchPage } from './branch_page.js';
import type { TreeNode } from './tree_node.js';

/**
 * Separator lowIndex of lowPage and highIndex of highPage (none on a side
 * whose page is undefined): the tightest bounds on each side of the
 * branches a walk passed.
 */
export interface WalkBounds {
  lowPage: BranchPage<TreeNode> | undefined;
  lowIndex: number;
  highPage: BranchPage<TreeNode> | undefined;
  highIndex: number;
}

/** Narrows `bounds` to child `index` of `page`: the separators on each side of it, where it has them. */
export function narrowBounds(bounds: WalkBounds, page: BranchPage<TreeNode>, index: number): void {
  if (index > 0) {
    bounds.lowPage = page;
    bounds.lowIndex = index - 1;
  }
  if (index < page.count - 1) {
    bounds.highPage = page;
    bounds.highIndex = index;
  }
}

/**
 * The key strings of `bounds`, or `low` and `high` on a side it has no page
 * for (bounds reached before the last read); takes the pages out of it.
 */
export function boundStrings(bounds: WalkBounds, low: string | undefined, high: string | undefined): { low: string | undefined; high: string | undefined } {
  if (bounds.lowPage !== undefined) {
    low = bounds.lowPage.separatorAt(bounds.lowIndex);
    bounds.lowPage = undefined;
  }
  if (bounds.highPage !== undefined) {
    high = bounds.highPage.separatorAt(bounds.highIndex);
    bounds.highPage = undefined;
  }
  return { low, high };
}
