// TreePages: the page tree's pages on the device. Reads a page, checks it
// against the reference its parent holds (block, checksum, level) through
// format/page.ts, and hands the tree a leaf as a LeafPage (its records as
// the page holds them) or a branch as a BranchPage (its child records); encodes the
// pages a checkpoint writes. The one place where tree nodes meet bytes.
import assert from 'node:assert/strict';

import { PAGE_HEADER_SIZE } from '../format/constants.js';
import { FormatError } from '../format/format_error.js';
import {
  checkPageHeader,
  checkPageTail,
  encodeBranchPageOfKeyStrings,
  encodeBranchPageOfRecords,
  encodeLeafPageOfEdits,
  type LeafRecordEdits,
  encodeLeafPageOfKeyStrings,
  scanBranchRecords,
  scanLeafRecords,
  type LeafBasis,
  type PageExpectation,
} from '../format/page.js';
import type { BlockDevice } from './block_device.js';
import { BufferPool } from './buffer_pool.js';
import { BranchPage } from './branch_page.js';
import { LeafPage } from './leaf_page.js';
import type { DecodedTreePage, PageRef, TreePageIo } from './page_tree.js';
import { leafArrays, type LeafNode, type LentLeaf, type TreeNode } from './tree_node.js';
import { StoreCorruptError } from './store_error.js';
import type { IndexEntry } from './store_index.js';

/** What a page's checks need to know about the store; blockCount grows with the file. */
export interface TreeGeometry {
  readonly blockSize: number;
  readonly pageSize: number;
  readonly storeTag: number;
  readonly dataStartBlock: number;
  readonly blockCount: number;
}

/** Aligned page buffers kept for reads and checkpoint writes (1024 × 4 KiB = 4 MiB): a commit prepares up to thousands of pages at once. */
const PAGE_BUFFERS_RETAINED = 1024;
/**
 * Leaves a lookup read without keeping (withLeaf) whose buffers are held
 * back from the pool, newest last (256 × 4 KiB = 1 MiB): a write or a second
 * lookup of one of them soon after (a get then a put of the key, a counter)
 * finds its bytes here instead of reading the page again.
 */
const RECENT_LEAVES_MAX = 256;
/** A leaf in page form is sealed with no edits on top of its records. */
const NO_EDITS: LeafRecordEdits = { keyStrings: [], slots: [] };

/** A leaf withLeaf read and held back (TreePages.#recentLeaves); buffer undefined once taken or evicted. */
interface RecentLeaf {
  readonly block: number;
  readonly crc: number;
  buffer: Buffer | undefined;
}

export class TreePages implements TreePageIo {
  readonly #device: BlockDevice;
  readonly #geometry: () => TreeGeometry;
  /** Aligned buffers for direct IO of whole pages, reused. */
  readonly pool: BufferPool;
  /** Pages read from the device (cache misses of the tree). */
  reads = 0;
  /**
   * Leaves withLeaf read and checked, in their pooled buffers, by block
   * (RECENT_LEAVES_MAX). Every cold read looks here: a search of a list of
   * 256 took ~1 µs of a cold get on a slow host.
   */
  readonly #recentLeaves = new Map<number, RecentLeaf>();
  /**
   * The same leaves oldest first, for eviction, and those taken since
   * (buffer undefined), until eviction or a compaction passes them.
   */
  #recentOrder: RecentLeaf[] = [];

  constructor(device: BlockDevice, geometry: () => TreeGeometry) {
    this.#device = device;
    this.#geometry = geometry;
    this.pool = new BufferPool(geometry().pageSize, device.ioAlignment, PAGE_BUFFERS_RETAINED);
  }

  async read(ref: PageRef, level: number): Promise<DecodedTreePage> {
    const expected = this.#expectation(ref, level);
    // The direct read goes into a pooled aligned buffer and is checked
    // there; a leaf keeps a copy of its used bytes (keptCopy), a branch a
    // copy of its records (BranchPage).
    const aligned = await this.#fetch(ref, level);
    try {
      const header = checkPageHeader(aligned, expected);
      if (header.kind === 'branch') {
        const pageStarts = scanBranchRecords(aligned, header, expected);
        checkPageTail(aligned, header);
        // The records, checked, copied out of the pooled buffer (Uint8Array's slice, not Buffer's view).
        const records = Uint8Array.prototype.slice.call(aligned, PAGE_HEADER_SIZE, header.end);
        const starts = pageStarts.map((start) => start - PAGE_HEADER_SIZE);
        return { kind: 'branch', level: header.level, page: BranchPage.ofRecords(records, starts) };
      }
      // Checked where they are kept, and kept as they are (LeafPage).
      const bytes = keptCopy(aligned, header.end);
      const starts = scanLeafRecords(bytes, header, expected);
      checkPageTail(aligned, header);
      return { kind: 'leaf', page: new LeafPage(bytes, starts) };
    } catch (error) {
      if (error instanceof FormatError) throw StoreCorruptError.from(error);
      throw error;
    } finally {
      this.pool.give(aligned);
    }
  }

  /**
   * withLeaf (TreePageIo): the leaf's records checked and searched where the
   * direct read put them, in a pooled buffer, with no copy kept: what a
   * point lookup of a leaf the cache does not admit costs (TreeLoader).
   */
  async withLeaf<T>(ref: PageRef, use: (page: DecodedTreePage) => T): Promise<T> {
    const expected = this.#expectation(ref, 0);
    let aligned: Buffer | undefined = await this.#fetch(ref, 0);
    try {
      const result = use({ kind: 'leaf', page: checkedLeafIn(aligned, expected) });
      // Checked, and nothing `use` returned views it: held back for a while.
      this.#keepRecentLeaf(ref, aligned);
      aligned = undefined;
      return result;
    } finally {
      if (aligned !== undefined) this.pool.give(aligned);
    }
  }

  /**
   * lendLeaf (TreePageIo): the leaf checked where the direct read put it, in
   * a pooled buffer that goes back to the pool when the borrower gives it
   * back: what a scan's visit of a leaf the cache does not admit costs.
   */
  async lendLeaf(ref: PageRef): Promise<LentLeaf> {
    const expected = this.#expectation(ref, 0);
    const aligned = await this.#fetch(ref, 0);
    let page: LeafPage;
    try {
      page = checkedLeafIn(aligned, expected);
    } catch (error) {
      this.pool.give(aligned);
      throw error;
    }
    let lent = true;
    const giveBack = (): void => {
      if (!lent) throw new Error(`ringstore: the lent leaf of block ${ref.block} was given back twice`);
      lent = false;
      this.pool.give(aligned);
    };
    return {
      page: { kind: 'leaf', page },
      giveBack,
      keep: () => {
        const kept = new LeafPage(keptCopy(page.bytes, page.bytes.length), page.starts);
        giveBack();
        return { kind: 'leaf', page: kept };
      },
    };
  }

  /** What the page at `ref`, at `level`, must be (format/page.ts checks it). */
  #expectation(ref: PageRef, level: number): PageExpectation {
    const geometry = this.#geometry();
    return {
      address: ref.block,
      storeTag: geometry.storeTag,
      crc: ref.crc,
      level,
      dataStartBlock: geometry.dataStartBlock,
      blockCount: geometry.blockCount,
      blockSize: geometry.blockSize,
    };
  }

  /**
   * The bytes of the page at `ref`, in an aligned buffer the caller gives
   * back to the pool: a leaf withLeaf read lately from its held buffer
   * (checked again by the caller, as any read), else read from the device.
   */
  async #fetch(ref: PageRef, level: number): Promise<Buffer> {
    const recent = level === 0 ? this.#takeRecentLeaf(ref) : undefined;
    if (recent !== undefined) return recent;
    const aligned = this.pool.take();
    this.reads++;
    try {
      await this.#device.read(ref.block * this.#geometry().blockSize, aligned);
    } catch (error) {
      this.pool.give(aligned);
      throw error;
    }
    return aligned;
  }

  /** The buffer of a leaf withLeaf read lately, if it is the page of `ref` (block and checksum); it leaves the list. */
  #takeRecentLeaf(ref: PageRef): Buffer | undefined {
    const entry = this.#recentLeaves.get(ref.block);
    if (entry === undefined) return undefined;
    this.#recentLeaves.delete(ref.block);
    const buffer = entry.buffer!;
    entry.buffer = undefined;
    if (entry.crc === ref.crc) return buffer;
    // An older page of a reused block: not the page asked for.
    this.pool.give(buffer);
    return undefined;
  }

  #keepRecentLeaf(ref: PageRef, buffer: Buffer): void {
    const recent = this.#recentLeaves;
    // Two lookups of one block read it at once: the later read's buffer is kept.
    const previous = recent.get(ref.block);
    if (previous !== undefined) {
      this.pool.give(previous.buffer!);
      previous.buffer = undefined;
    }
    const entry: RecentLeaf = { block: ref.block, crc: ref.crc, buffer };
    recent.set(ref.block, entry);
    let order = this.#recentOrder;
    order.push(entry);
    while (recent.size > RECENT_LEAVES_MAX) {
      const oldest = order.shift()!;
      if (oldest.buffer === undefined) continue;
      recent.delete(oldest.block);
      this.pool.give(oldest.buffer);
      oldest.buffer = undefined;
    }
    if (order.length > 2 * RECENT_LEAVES_MAX) {
      order = order.filter((kept) => kept.buffer !== undefined);
      this.#recentOrder = order;
    }
    assert.ok(order.length >= recent.size, 'every recent leaf is in the eviction order');
  }

  /**
   * Encodes `content` into `bytes` (a page) as the page at `block`, written
   * by the checkpoint of `checkpointSequence`; returns its checksum. Straight
   * from the node's key strings and entries: no key buffers or entry objects
   * on the way (they were ~70 % of the encode).
   */
  encode(content: DecodedTreePage, block: number, checkpointSequence: number, bytes: Uint8Array): number {
    const stamp = { address: block, checkpointSequence, storeTag: this.#geometry().storeTag };
    if (content.kind === 'leaf') {
      if (content.page !== undefined) throw new Error('ringstore: encode() of a leaf in page form (it is on disk already)');
      return encodeLeafPageOfKeyStrings(bytes, stamp, content.keys, content.entries);
    }
    if (content.page !== undefined) return this.encodeBranch(content.page, content.level, block, checkpointSequence, bytes);
    return encodeBranchPageOfKeyStrings(bytes, stamp, content.level, content.separators, content.children);
  }

  /**
   * encode() of a branch of a running checkpoint plan in page form
   * (CheckpointPlan.branchPage: its children's refs in its records): its
   * records copied in one run, then the header and the seal.
   */
  encodeBranch(page: BranchPage<TreeNode>, level: number, block: number, checkpointSequence: number, bytes: Uint8Array): number {
    const stamp = { address: block, checkpointSequence, storeTag: this.#geometry().storeTag };
    return encodeBranchPageOfRecords(bytes, stamp, level, page.records, 0, page.recordBytes, page.count);
  }

  /** TreePageIo.leafPageOf: an owned page of these records, as a checkpoint seals it. */
  leafPageOf(keys: readonly string[], entries: readonly IndexEntry[], recordBytes: number, capacityBytes: number): LeafPage {
    return LeafPage.ofRecords(keys, entries, recordBytes, capacityBytes);
  }

  /**
   * encode() of a leaf of a running checkpoint plan: a leaf in page form
   * (its owned page, edited in place) sealed as it is, its records copied
   * in one run; one in array form by difference from its basis, copying
   * the records they share.
   */
  encodeLeaf(leaf: LeafNode, block: number, checkpointSequence: number, bytes: Uint8Array): number {
    const stamp = { address: block, checkpointSequence, storeTag: this.#geometry().storeTag };
    if (leaf.page !== undefined) return encodeLeafPageOfEdits(bytes, stamp, leaf.page.bytes, leaf.page.starts, NO_EDITS);
    const source = leaf.basis;
    const basis: LeafBasis | undefined =
      source === undefined ? undefined : { keyStrings: source.keys, slots: source.entries, records: source.page.bytes, recordStarts: source.page.starts };
    const { keys, entries } = leafArrays(leaf);
    return encodeLeafPageOfKeyStrings(bytes, stamp, keys, entries, basis);
  }
}

/**
 * The leaf page in `aligned` as a LeafPage viewing it, checked as read()
 * checks a leaf; damage is ERR_STORE_CORRUPT naming the block.
 */
function checkedLeafIn(aligned: Buffer, expected: PageExpectation): LeafPage {
  try {
    const header = checkPageHeader(aligned, expected);
    if (header.kind !== 'leaf') throw new FormatError('page', 'a branch where a leaf was expected', expected.address);
    const bytes = aligned.subarray(0, header.end);
    const starts = scanLeafRecords(bytes, header, expected);
    checkPageTail(aligned, header);
    return new LeafPage(bytes, starts);
  } catch (error) {
    if (error instanceof FormatError) throw StoreCorruptError.from(error);
    throw error;
  }
}

/**
 * A copy of the first `length` bytes of a page, in an allocation of its
 * own that is never reused: the leaf's inline values are views into it, and
 * an iterator or a value handed out may still hold one after the leaf left
 * the cache. Only the used bytes: the header and the zeros after the
 * records were checked in the aligned buffer, and nothing reads them again
 * (~30 % of a 4 KiB leaf of 16-byte keys and 100-byte values).
 *
 * Not carved from slabs shared by several pages: a slab lives as long as
 * the longest-lived page in it (or a value viewing it), so a few hot pages
 * could keep many slabs of evicted ones alive, past the cache's budget.
 * What a page read paid for its 4 KiB Buffer was mostly the first touch of
 * fresh memory (page faults while the heap grows), which a slab pays as
 * well: in the 1 M-key replay slabs of 64 KiB measured no faster. Tried
 * again with slabs that give up their cached pages when sparse (so their
 * memory stays near the cache's budget): a 1 M-key scan 0.93-0.96 x, the
 * replay of a 33-commit tail 1.02-1.07 x the time, although a loop of
 * allocUnsafeSlow(2944) alone cost 6 us a call against 0.5 us carved from
 * a slab (docs/benchmarks.md, "Engine v2, session 12").
 */
function keptCopy(page: Uint8Array, length: number): Uint8Array {
  const bytes = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
  bytes.set(page.subarray(0, length));
  return bytes;
}
