// How the page tree cuts an over-full node into pieces (engine/page_tree.ts
// calls it from its splits): as few pieces as a greedy cut gives, then the
// cut points moved to make the pieces about equal in bytes (unless the
// growth was at the node's right end). Pure: no tree state.
import { LeafPage } from './leaf_page.js';
import type { IndexEntry } from './store_index.js';
import {
  branchBytes,
  leafArrays,
  leafBytes,
  newBranch,
  newLeaf,
  newOwnedPageLeaf,
  shortestSeparator,
  type LeafNode,
  type PageMeasure,
  type TreeNode,
  type TreePageIo,
} from './tree_node.js';

/**
 * The pieces an over-full mutable node is cut into (new nodes of `epoch`),
 * and the separators between them. `appending`: the growth was at the
 * node's right end (sequential inserts), so pieces are packed full from the
 * left. Every piece fits measure.capacityBytes (asserted). Leaf pieces are
 * in page form where the codec makes pages (`io.leafPageOf`), else arrays.
 */
export function splitPieces(
  node: TreeNode,
  appending: boolean,
  epoch: number,
  measure: PageMeasure,
  io: Pick<TreePageIo, 'leafPageOf'>,
): { pieces: TreeNode[]; separators: string[] } {
  const capacityBytes = measure.capacityBytes;
  const pieces: TreeNode[] = [];
  const separators: string[] = [];
  if (node.kind === 'leaf') {
    const split = leafArrays(node);
    const sizes = split.keys.map((key, index) => measure.entryBytes(key, split.entries[index]!));
    const starts = chunkStarts(sizes, sizes, 1, appending, capacityBytes);
    for (let piece = 0; piece < starts.length; piece++) {
      const begin = starts[piece]!;
      const end = starts[piece + 1] ?? sizes.length;
      if (piece > 0) separators.push(shortestSeparator(split.keys[begin - 1]!, split.keys[begin]!));
      const keys = split.keys.slice(begin, end);
      const entries = split.entries.slice(begin, end);
      const bytes = leafBytes(measure, keys, entries);
      if (io.leafPageOf !== undefined) {
        pieces.push(newOwnedPageLeaf(epoch, io.leafPageOf(keys, entries, bytes, capacityBytes)));
        continue;
      }
      const leaf = newLeaf(epoch, keys, entries, bytes);
      // Its entries are the split leaf's: encoded by difference from the same basis.
      leaf.basis = node.basis;
      pieces.push(leaf);
    }
  } else {
    // A branch splits once in ~60 splits of its children: cut from its separators and children as arrays.
    const branchSeparators = node.page.separators();
    const branchChildren = node.page.children();
    const first = measure.childBytes('');
    const asFirst = branchChildren.map(() => first);
    const asOther = branchChildren.map((_, index) => (index === 0 ? first : measure.childBytes(branchSeparators[index - 1]!)));
    const starts = chunkStarts(asFirst, asOther, 2, appending, capacityBytes);
    for (let piece = 0; piece < starts.length; piece++) {
      const begin = starts[piece]!;
      const end = starts[piece + 1] ?? branchChildren.length;
      if (piece > 0) separators.push(branchSeparators[begin - 1]!);
      const pieceSeparators = branchSeparators.slice(begin, end - 1);
      pieces.push(newBranch(epoch, node.level, pieceSeparators, branchChildren.slice(begin, end), branchBytes(measure, pieceSeparators)));
    }
  }
  for (const piece of pieces) {
    if (piece.bytes > capacityBytes) throw new Error(`ringstore: split made a piece of ${piece.bytes} bytes > ${capacityBytes}`);
  }
  return { pieces, separators };
}

/**
 * The pieces of a mutable leaf in page form (over an owned page) with the
 * record of `key` and `entry` (`recordBytes`) put at `index` of its
 * records (over the record there when `replaces`), which its page has no
 * room for, and the separators between them, cut as splitPieces cuts: the
 * leaf itself, its page cut down to the first piece's records (and the new
 * one if it falls there), then new leaves of `epoch` over owned pages of
 * room `capacityBytes` with the page's other records copied in as they
 * are, in runs (no key string or entry is made for them).
 */
export function splitPagePieces(
  leaf: LeafNode,
  index: number,
  replaces: boolean,
  key: string,
  entry: IndexEntry,
  recordBytes: number,
  appending: boolean,
  epoch: number,
  capacityBytes: number,
): { pieces: TreeNode[]; separators: string[] } {
  const page = leaf.page!;
  // Item i of the leaf after the put: record recordOf(i) of the page, or the new record (NEW_RECORD).
  const itemCount = page.count + (replaces ? 0 : 1);
  const recordOf = (item: number): number => (item < index ? item : item === index ? NEW_RECORD : replaces ? item : item - 1);
  const sizes = new Array<number>(itemCount);
  for (let item = 0; item < itemCount; item++) {
    const record = recordOf(item);
    sizes[item] = record === NEW_RECORD ? recordBytes : page.starts[record + 1]! - page.starts[record]!;
  }
  const keyOf = (item: number): string => (item === index ? key : page.keyAt(recordOf(item)));
  const starts = chunkStarts(sizes, sizes, 1, appending, capacityBytes);
  const pieces: TreeNode[] = [leaf];
  const separators: string[] = [];
  // The other pieces first: they copy records from the page as it is.
  for (let piece = 1; piece < starts.length; piece++) {
    const begin = starts[piece]!;
    const end = starts[piece + 1] ?? itemCount;
    separators.push(shortestSeparator(keyOf(begin - 1), keyOf(begin)));
    const target = LeafPage.ofRecords([], [], 0, capacityBytes);
    // The page's records before the new one, the new one, the records after it.
    const before = Math.min(end, index);
    if (begin < before) target.appendRecordsOf(page, begin, before);
    if (begin <= index && index < end) target.insertAt(target.count, key, entry, recordBytes);
    const after = Math.max(begin, index + 1);
    if (after < end) target.appendRecordsOf(page, recordOf(after), recordOf(end - 1) + 1);
    pieces.push(newOwnedPageLeaf(epoch, target));
  }
  // Then the leaf, cut down to the first piece.
  const firstEnd = starts[1] ?? itemCount;
  page.removeFrom(index < firstEnd && !replaces ? firstEnd - 1 : firstEnd);
  if (index < firstEnd) {
    if (replaces) page.replaceAt(index, key, entry, recordBytes);
    else page.insertAt(index, key, entry, recordBytes);
  }
  leaf.bytes = page.recordBytes;
  for (const piece of pieces) {
    if (piece.bytes > capacityBytes) throw new Error(`ringstore: split made a piece of ${piece.bytes} bytes > ${capacityBytes}`);
  }
  return { pieces, separators };
}

/** splitPagePieces's mark of the new record among the page's. */
const NEW_RECORD = -1;

/**
 * Where pieces start when items of these sizes (`asFirst[i]` when item i
 * starts a piece, `asOther[i]` otherwise) are cut into pieces of at most
 * `capacity` bytes with at least `itemsMin` items. Greedy from the left gives
 * the fewest pieces k; unless appending, the cut points are then moved to
 * make k pieces of about equal bytes (falling back to greedy if that
 * breaks a limit), so random inserts do not leave a full page beside a
 * nearly empty one. With itemsMin 2 a valid greedy cut needs every item
 * <= capacity/3 (PageTree asserts it at construction): each piece but the last then
 * holds > 2/3 capacity, so >= 3 items, and can give one to a short last piece.
 */
export function chunkStarts(asFirst: number[], asOther: number[], itemsMin: number, appending: boolean, capacity: number): number[] {
  const count = asFirst.length;
  const greedy = [0];
  let sum = asFirst[0]!;
  for (let index = 1; index < count; index++) {
    if (sum + asOther[index]! > capacity) {
      greedy.push(index);
      sum = asFirst[index]!;
    } else sum += asOther[index]!;
  }
  const lastStart = greedy[greedy.length - 1]!;
  if (greedy.length > 1 && count - lastStart < itemsMin) greedy[greedy.length - 1] = count - itemsMin;
  const valid = (starts: number[]): boolean => {
    for (let piece = 0; piece < starts.length; piece++) {
      const begin = starts[piece]!;
      const end = starts[piece + 1] ?? count;
      if (end - begin < itemsMin) return false;
      let bytes = asFirst[begin]!;
      for (let index = begin + 1; index < end; index++) bytes += asOther[index]!;
      if (bytes > capacity) return false;
    }
    return true;
  };
  if (!valid(greedy)) throw new Error(`ringstore: no valid split of ${count} items (sizes ${asOther.join(',')}) into pages of ${capacity}`);
  if (appending || greedy.length < 2) return greedy;
  let total = 0;
  for (let index = 0; index < count; index++) total += asOther[index]!;
  const balanced = [0];
  let before = 0;
  for (let index = 0; index < count; index++) {
    // Cut before the item whose middle passes the next even share.
    if (index > 0 && balanced.length < greedy.length && before + asOther[index]! / 2 > (total * balanced.length) / greedy.length) balanced.push(index);
    before += asOther[index]!;
  }
  return balanced.length === greedy.length && valid(balanced) ? balanced : greedy;
}
