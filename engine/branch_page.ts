// BranchPage: a branch's children as its page holds them — one record per
// child, back to back, in the layout format/page.ts writes (u64 child block,
// u32 child CRC, u16 separator length, the separator's bytes; the first
// child has no separator) — with the children that are nodes in memory
// (dirty ones, or clean ones a slot still holds) listed beside them by
// index. A clean child is its record: no object, no string.
//
// Why: a branch held as a string per separator and a PageRef object per
// child took ~12 KiB of memory for a 4 KiB page, so at 10 M keys the
// branches (~67 MiB by the cache's estimate) outgrew the page cache, and a
// checkpoint's encode of a branch read ~120 strings and ~120 refs from all
// over the heap: ~16 µs a branch, ~45 % of a close (docs/benchmarks.md,
// sessions 27 and 28). Here a branch is ~4 KiB, and a checkpoint writes
// the blocks of the children it has just written into their records and
// copies the records in one run (format/page.ts, encodeBranchPageOfRecords).
//
// Separators are compared with key strings char by byte (key strings hold
// one byte per char, engine/key_codec.ts): the tree's string order.
import assert from 'node:assert/strict';
import { view } from '../format/bytes.js';
import {
  BRANCH_RECORD_HEADER_BYTES,
  branchRecordBlock,
  branchRecordCrc,
  branchRecordSeparatorLength,
  compareBranchSeparatorWith,
  setBranchRecordChild,
  writeBranchRecordAt,
  type ChildRef,
} from '../format/page.js';
import { latin1Of } from './key_codec.js';

/** Record bytes a new BranchPage leaves room for beyond its records, so that a few inserts do not reallocate. */
const BRANCH_PAGE_SLACK_BYTES = 256;
/** Memory of a BranchPage beside its bytes: the object, its DataView, and its arrays' headers. */
const BRANCH_PAGE_OBJECTS_MEMORY_BYTES = 160;
/** Memory of one element of `starts` or `nodes` (a tagged value). */
const ARRAY_ELEMENT_MEMORY_BYTES = 8;

/** What a branch's nodes are to this file: objects with a `kind`, which a ref has not (the tree's TreeNode). */
interface NodeLike {
  readonly kind: string;
}

/** Whether a child slot holds a node (a ref has no `kind`). */
function childIsNode<Node extends NodeLike>(child: Node | ChildRef): child is Node {
  return (child as Node).kind !== undefined;
}

/** A branch's child records, with its children that are nodes (`Node`: the tree's TreeNode) beside them. */
export class BranchPage<Node extends NodeLike> {
  /** The records, from starts[0] (0) to starts[count]; room after them for inserts. */
  #bytes: Uint8Array;
  #data: DataView;
  /** Where record i begins, for i in [0, count]; starts[count] is the end of the records. */
  readonly #starts: number[];
  /**
   * Child i when it is a node in memory; undefined where record i's block
   * and CRC are the child. A node's record holds a ref that means nothing
   * (0 and 0, or the ref the node replaced) until a checkpoint writes the
   * node's block into it. Undefined when no
   * child is a node (a branch as read from disk, or written and clean).
   */
  #nodes: (Node | undefined)[] | undefined;
  /** Children in #nodes. */
  #nodeCount: number;

  private constructor(bytes: Uint8Array, starts: number[], nodes: (Node | undefined)[] | undefined, nodeCount: number) {
    this.#bytes = bytes;
    this.#data = view(bytes);
    this.#starts = starts;
    this.#nodes = nodeCount > 0 ? nodes : undefined;
    this.#nodeCount = nodeCount;
  }

  /**
   * A page of `children` with `separators` between them (separators[i]
   * between child i and child i + 1). RangeError for a separator that is
   * not a key string. REQUIRES: separators.length === children.length - 1,
   * at least one child.
   */
  static ofChildren<Node extends NodeLike>(separators: readonly string[], children: readonly (Node | ChildRef)[]): BranchPage<Node> {
    assert.ok(children.length >= 1 && separators.length === children.length - 1, 'a branch has one separator fewer than children');
    let recordBytes = BRANCH_RECORD_HEADER_BYTES * children.length;
    for (const separator of separators) recordBytes += separator.length;
    const bytes = new Uint8Array(recordBytes + BRANCH_PAGE_SLACK_BYTES);
    const data = view(bytes);
    const starts = new Array<number>(children.length + 1);
    let nodes: (Node | undefined)[] | undefined;
    let nodeCount = 0;
    let offset = 0;
    for (let index = 0; index < children.length; index++) {
      const child = children[index]!;
      starts[index] = offset;
      const separator = index === 0 ? '' : separators[index - 1]!;
      if (childIsNode(child)) {
        nodes ??= new Array<Node | undefined>(children.length).fill(undefined);
        nodes[index] = child;
        nodeCount++;
        offset = writeBranchRecordAt(bytes, data, offset, 0, 0, separator);
      } else {
        offset = writeBranchRecordAt(bytes, data, offset, child.block, child.crc, separator);
      }
    }
    starts[children.length] = offset;
    return new BranchPage(bytes, starts, nodes, nodeCount);
  }

  /**
   * A page of the records in `records` at `starts` (starts[0] === 0), as a
   * branch page's checked records (format/page.ts readBranchChildren):
   * every child a ref. `records` becomes the page's: nothing else may
   * change it.
   */
  static ofRecords<Node extends NodeLike>(records: Uint8Array, starts: number[]): BranchPage<Node> {
    assert.ok(starts.length >= 2 && starts[0] === 0 && starts[starts.length - 1]! <= records.length, 'records of one child or more');
    return new BranchPage(records, starts, undefined, 0);
  }

  /** Children. */
  get count(): number {
    return this.#starts.length - 1;
  }

  /** Page bytes of the records (branchChildBytes of each child). */
  get recordBytes(): number {
    return this.#starts[this.#starts.length - 1]!;
  }

  /** Estimated memory of this page (for the page cache's budget). */
  get memoryBytes(): number {
    return BRANCH_PAGE_OBJECTS_MEMORY_BYTES + this.#bytes.byteLength + ARRAY_ELEMENT_MEMORY_BYTES * (this.#starts.length + (this.#nodes?.length ?? 0));
  }

  /** A copy that changes apart from this one (a write's copy of a branch). */
  copy(): BranchPage<Node> {
    const end = this.recordBytes;
    const bytes = new Uint8Array(end + BRANCH_PAGE_SLACK_BYTES);
    bytes.set(this.#bytes.subarray(0, end));
    return new BranchPage(bytes, this.#starts.slice(), this.#nodes?.slice(), this.#nodeCount);
  }

  /** Child `index`: its node if one is in memory, else a new PageRef of its record. */
  childAt(index: number): Node | ChildRef {
    return this.#nodes?.[index] ?? this.refAt(index);
  }

  /** Child `index`'s node, or undefined if the child is its record's ref. */
  nodeAt(index: number): Node | undefined {
    return this.#nodes?.[index];
  }

  /** Whether any child is a node in memory. */
  get hasNodes(): boolean {
    return this.#nodeCount > 0;
  }

  /** A new PageRef of record `index`'s block and CRC. REQUIRES: child `index` is not a node. */
  refAt(index: number): ChildRef {
    const start = this.#starts[index]!;
    return { block: branchRecordBlock(this.#data, start), crc: branchRecordCrc(this.#data, start) };
  }

  /** Record `index`'s child block (a placeholder while the child is a node). */
  blockAt(index: number): number {
    return branchRecordBlock(this.#data, this.#starts[index]!);
  }

  /** Record `index`'s child CRC (a placeholder while the child is a node). */
  crcAt(index: number): number {
    return branchRecordCrc(this.#data, this.#starts[index]!);
  }

  /** Separator `index`: between child index and child index + 1 (0 <= index < count - 1), as a key string. */
  separatorAt(index: number): string {
    const start = this.#starts[index + 1]!;
    const separatorStart = start + BRANCH_RECORD_HEADER_BYTES;
    return latin1Of(this.#bytes, separatorStart, separatorStart + branchRecordSeparatorLength(this.#bytes, start));
  }

  /** Every separator, in order (a new array of new strings). */
  separators(): string[] {
    const separators = new Array<string>(this.count - 1);
    for (let index = 0; index < separators.length; index++) separators[index] = this.separatorAt(index);
    return separators;
  }

  /** Every child, in order (a new array; clean children as new PageRefs). */
  children(): (Node | ChildRef)[] {
    const children = new Array<Node | ChildRef>(this.count);
    for (let index = 0; index < children.length; index++) children[index] = this.childAt(index);
    return children;
  }

  /** memcmp order of separator `index` against the key string `key`. */
  compareSeparatorWith(index: number, key: string): number {
    return compareBranchSeparatorWith(this.#bytes, this.#starts[index + 1]!, key);
  }

  /**
   * The child whose subtree holds `key`: the number of separators <= key.
   * The last separator first: a sorted load adds keys at a branch's end.
   */
  childIndexFor(key: string): number {
    const bytes = this.#bytes;
    const starts = this.#starts;
    const separatorCount = starts.length - 2;
    if (separatorCount > 0 && compareBranchSeparatorWith(bytes, starts[separatorCount]!, key) <= 0) return separatorCount;
    let low = 0;
    let high = separatorCount;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBranchSeparatorWith(bytes, starts[middle + 1]!, key) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Makes child `index` `child`: a node is listed, a ref written into the record. RangeError for a ref out of range. */
  setChild(index: number, child: Node | ChildRef): void {
    assert.ok(index >= 0 && index < this.count, 'a child slot of the branch');
    if (childIsNode(child)) {
      const nodes = (this.#nodes ??= new Array<Node | undefined>(this.count).fill(undefined));
      if (nodes[index] === undefined) this.#nodeCount++;
      nodes[index] = child;
      return;
    }
    setBranchRecordChild(this.#data, this.#starts[index]!, child.block, child.crc);
    if (this.#nodes?.[index] !== undefined) {
      this.#nodes[index] = undefined;
      // A branch whose children are all records again holds no list.
      if (--this.#nodeCount === 0) this.#nodes = undefined;
    }
  }

  /**
   * Writes `ref` into record `index`, whose child stays the node listed
   * (a checkpoint gives a frozen branch's node children their blocks before
   * it copies the records). RangeError for a ref out of range.
   */
  writeRefOfNode(index: number, ref: ChildRef): void {
    assert.ok(this.#nodes?.[index] !== undefined, 'the child is a node');
    setBranchRecordChild(this.#data, this.#starts[index]!, ref.block, ref.crc);
  }

  /** Calls `visit` with each child that is a node and its index, in order. */
  forEachNode(visit: (node: Node, index: number) => void): void {
    const nodes = this.#nodes;
    if (nodes === undefined) return;
    for (let index = 0; index < nodes.length; index++) {
      const node = nodes[index];
      if (node !== undefined) visit(node, index);
    }
  }

  /**
   * Replaces child `index` with `pieces`, separated by `separators`
   * (separators[i] between pieces[i] and pieces[i + 1]): the first piece
   * keeps the child's separator. RangeError for a separator that is not a
   * key string. REQUIRES: separators.length === pieces.length - 1, the
   * separators within the child's bounds, in order.
   */
  replaceChild(index: number, pieces: readonly (Node | ChildRef)[], separators: readonly string[]): void {
    assert.ok(pieces.length >= 1 && separators.length === pieces.length - 1, 'pieces and the separators between them');
    assert.ok(index >= 0 && index < this.count, 'a child slot of the branch');
    // The new records first, in a buffer of their own: a separator or ref
    // the format refuses throws before the page changes.
    let insertedBytes = 0;
    for (const separator of separators) insertedBytes += BRANCH_RECORD_HEADER_BYTES + separator.length;
    const inserted = new Uint8Array(insertedBytes);
    const insertedData = view(inserted);
    const newStarts = new Array<number>(separators.length);
    let offset = 0;
    for (let piece = 1; piece < pieces.length; piece++) {
      newStarts[piece - 1] = offset;
      const child = pieces[piece]!;
      offset = childIsNode(child)
        ? writeBranchRecordAt(inserted, insertedData, offset, 0, 0, separators[piece - 1]!)
        : writeBranchRecordAt(inserted, insertedData, offset, child.block, child.crc, separators[piece - 1]!);
    }
    assert.equal(offset, insertedBytes, 'the inserted records take the bytes counted for them');
    this.setChild(index, pieces[0]!);
    if (pieces.length === 1) return;
    const at = this.#starts[index + 1]!;
    const end = this.recordBytes;
    this.#reserve(end + insertedBytes);
    this.#bytes.copyWithin(at + insertedBytes, at, end);
    this.#bytes.set(inserted, at);
    const starts = this.#starts;
    for (let next = index + 1; next < starts.length; next++) starts[next]! += insertedBytes;
    for (let piece = 0; piece < newStarts.length; piece++) newStarts[piece]! += at;
    starts.splice(index + 1, 0, ...newStarts);
    const newNodes = pieces.slice(1).map((piece) => (childIsNode(piece) ? piece : undefined));
    const newNodeCount = newNodes.filter((node) => node !== undefined).length;
    if (this.#nodes !== undefined) this.#nodes.splice(index + 1, 0, ...newNodes);
    else if (newNodeCount > 0) {
      this.#nodes = new Array<Node | undefined>(this.count).fill(undefined);
      this.#nodes.splice(index + 1, newNodes.length, ...newNodes);
    }
    this.#nodeCount += newNodeCount;
  }

  /** Room for `recordBytes` of records: a larger buffer if need be (the records copied over). */
  #reserve(recordBytes: number): void {
    if (recordBytes <= this.#bytes.length) return;
    const bytes = new Uint8Array(Math.max(recordBytes, 2 * this.#bytes.length));
    bytes.set(this.#bytes.subarray(0, this.recordBytes));
    this.#bytes = bytes;
    this.#data = view(bytes);
  }

  /** The records, for a checkpoint's copy (format/page.ts encodeBranchPageOfRecords): valid until the next change. */
  get records(): Uint8Array {
    return this.#bytes;
  }
}
