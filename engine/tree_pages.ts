// TreePages: the page tree's pages on the device. Reads a page, checks it
// against the reference its parent holds (block, checksum, level) through
// format/page.ts, and hands the tree its keys and entries; encodes the
// pages a checkpoint writes. The one place where tree nodes meet bytes.
import { FormatError } from '../format/format_error.js';
import { PAGE_HEADER_SIZE } from '../format/constants.js';
import {
  checkPageHeader,
  checkPageTail,
  encodeBranchPageOfKeyStrings,
  encodeLeafPageOfKeyStrings,
  leafEntryBytes,
  readBranchChildren,
  readLeafRecords,
  type LeafBasis,
  type PageExpectation,
} from '../format/page.js';
import type { BlockDevice } from './block_device.js';
import { BufferPool } from './buffer_pool.js';
import { PageInlineEntry } from './page_entry.js';
import type { DecodedTreePage, PageRef, TreePageIo } from './page_tree.js';
import { encodingBasisOf, type LeafImage, type LeafNode } from './tree_node.js';
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
 * bytesToKeyString (engine/key_codec.ts) without a Buffer object per key:
 * Node's latin1 decoder applied to the view itself. It is the method behind
 * Buffer#toString('latin1') (Node 20 to 24) but not a documented API: where
 * a Node lacks it, the documented path (a Buffer over the same bytes).
 */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;
const latin1: (bytes: Uint8Array) => string =
  typeof latin1Slice === 'function'
    ? (bytes) => latin1Slice.call(bytes, 0, bytes.length)
    : (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');

export class TreePages implements TreePageIo {
  readonly #device: BlockDevice;
  readonly #geometry: () => TreeGeometry;
  /** Aligned buffers for direct IO of whole pages, reused. */
  readonly pool: BufferPool;
  /** Pages read from the device (cache misses of the tree). */
  reads = 0;

  constructor(device: BlockDevice, geometry: () => TreeGeometry) {
    this.#device = device;
    this.#geometry = geometry;
    this.pool = new BufferPool(geometry().pageSize, device.ioAlignment, PAGE_BUFFERS_RETAINED);
  }

  async read(ref: PageRef, level: number): Promise<DecodedTreePage> {
    const geometry = this.#geometry();
    const expected: PageExpectation = {
      address: ref.block,
      storeTag: geometry.storeTag,
      crc: ref.crc,
      level,
      dataStartBlock: geometry.dataStartBlock,
      blockCount: geometry.blockCount,
      blockSize: geometry.blockSize,
    };
    // The direct read goes into a pooled aligned buffer and is checked
    // there; a leaf keeps a copy of its used bytes (keptCopy), a branch
    // nothing (its separators are strings).
    const aligned = this.pool.take();
    this.reads++;
    try {
      await this.#device.read(ref.block * geometry.blockSize, aligned);
      const header = checkPageHeader(aligned, expected);
      if (header.kind === 'branch') {
        const children = readBranchChildren(aligned, header, expected);
        checkPageTail(aligned, header);
        // Separators become strings (copies): nothing keeps viewing the buffer.
        const separators: string[] = new Array(children.length - 1);
        const refs: PageRef[] = new Array(children.length);
        for (let i = 0; i < children.length; i++) {
          const child = children[i]!;
          if (i > 0) separators[i - 1] = latin1(child.separator!);
          refs[i] = { block: child.block, crc: child.crc };
        }
        return { kind: 'branch', level: header.level, separators, children: refs };
      }
      const bytes = keptCopy(aligned, header.end);
      const count = header.entryCount;
      const keys = new Array<string>(count);
      const entries = new Array<IndexEntry>(count);
      const recordStarts = recordStartsFor(count);
      let index = 0;
      let offset = 0;
      readLeafRecords(bytes, header, expected, (key, isString, value) => {
        keys[index] = latin1(key);
        entries[index] = value.kind === 'inline' ? new PageInlineEntry(bytes, value.bytes.byteOffset - bytes.byteOffset, value.bytes.length, isString) : { isString, value };
        recordStarts[index] = offset;
        offset += leafEntryBytes(key.length, value);
        index++;
      });
      recordStarts[count] = offset;
      checkPageTail(aligned, header);
      // The records stay where they are: the inline values view them anyway.
      const image: LeafImage = { records: bytes.subarray(PAGE_HEADER_SIZE, header.end), recordStarts };
      return { kind: 'leaf', keys, entries, image };
    } catch (error) {
      if (error instanceof FormatError) throw StoreCorruptError.from(error);
      throw error;
    } finally {
      this.pool.give(aligned);
    }
  }

  /**
   * Encodes `content` into `bytes` (a page) as the page at `block`, written
   * by the checkpoint of `checkpointSequence`; returns its checksum. Straight
   * from the node's key strings and entries: no key buffers or entry objects
   * on the way (they were ~70 % of the encode).
   */
  encode(content: DecodedTreePage, block: number, checkpointSequence: number, bytes: Uint8Array): number {
    const stamp = { address: block, checkpointSequence, storeTag: this.#geometry().storeTag };
    if (content.kind === 'leaf') return encodeLeafPageOfKeyStrings(bytes, stamp, content.keys, content.entries);
    return encodeBranchPageOfKeyStrings(bytes, stamp, content.level, content.separators, content.children);
  }

  /**
   * encode() of a leaf of a running checkpoint plan: by difference from the
   * image of the page it was copied from, when that was read from disk,
   * copying the records they share.
   */
  encodeLeaf(leaf: LeafNode, block: number, checkpointSequence: number, bytes: Uint8Array): number {
    const stamp = { address: block, checkpointSequence, storeTag: this.#geometry().storeTag };
    const basisLeaf = encodingBasisOf(leaf);
    const basis: LeafBasis | undefined =
      basisLeaf === undefined ? undefined : { keyStrings: basisLeaf.keys, slots: basisLeaf.entries, records: basisLeaf.image!.records, recordStarts: basisLeaf.image!.recordStarts };
    return encodeLeafPageOfKeyStrings(bytes, stamp, leaf.keys, leaf.entries, basis);
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
 * well: in the 1 M-key replay slabs of 64 KiB measured no faster.
 */
function keptCopy(page: Uint8Array, length: number): Uint8Array {
  const bytes = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
  bytes.set(page.subarray(0, length));
  return bytes;
}

/**
 * The record starts of a leaf of `count` records: a small-integer array in
 * the heap. A typed array of its own is an ArrayBuffer of its own (an
 * allocation outside the heap per leaf read); one from Node's
 * shared pool keeps the pool's 8 KiB slab alive as long as its leaf lives.
 */
function recordStartsFor(count: number): number[] {
  return new Array<number>(count + 1).fill(0);
}
