// TreePages: the page tree's pages on the device. Reads a page, checks it
// against the reference its parent holds (block, checksum, level) through
// format/page.ts, and hands the tree its keys and entries; encodes the
// pages a checkpoint writes. The one place where tree nodes meet bytes.
import { FormatError } from '../format/format_error.js';
import { PAGE_HEADER_SIZE } from '../format/constants.js';
import { decodePage, encodeBranchPageOfKeyStrings, encodeLeafPageOfKeyStrings, leafEntryBytes, type LeafBasis } from '../format/page.js';
import type { BlockDevice } from './block_device.js';
import { BufferPool } from './buffer_pool.js';
import { bytesToKeyString } from './key_codec.js';
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
    // The direct read goes into a pooled aligned buffer; the page is kept in
    // a copy of its own, never pooled: the decoded entries' inline values
    // are views into it, and an iterator may still hold one after the page
    // left the cache.
    const aligned = this.pool.take();
    const bytes = Buffer.allocUnsafe(geometry.pageSize);
    this.reads++;
    try {
      await this.#device.read(ref.block * geometry.blockSize, aligned);
      bytes.set(aligned);
    } finally {
      this.pool.give(aligned);
    }
    let decoded;
    try {
      decoded = decodePage(bytes, {
        address: ref.block,
        storeTag: geometry.storeTag,
        crc: ref.crc,
        level,
        dataStartBlock: geometry.dataStartBlock,
        blockCount: geometry.blockCount,
        blockSize: geometry.blockSize,
      });
    } catch (error) {
      if (error instanceof FormatError) throw StoreCorruptError.from(error);
      throw error;
    }
    if (decoded.kind === 'leaf') {
      const count = decoded.entries.length;
      const keys = new Array<string>(count);
      const entries = new Array<IndexEntry>(count);
      const recordStarts = recordStartsFor(count);
      let offset = 0;
      for (let i = 0; i < count; i++) {
        const entry = decoded.entries[i]!;
        keys[i] = bytesToKeyString(entry.key);
        entries[i] = { isString: entry.keyIsString, value: entry.value.kind === 'inline' ? entry.value.bytes : entry.value };
        recordStarts[i] = offset;
        offset += leafEntryBytes(entry.key.length, entry.value);
      }
      recordStarts[count] = offset;
      // The records stay where they are: the inline values view this page anyway.
      const image: LeafImage = { records: bytes.subarray(PAGE_HEADER_SIZE, PAGE_HEADER_SIZE + offset), recordStarts };
      return { kind: 'leaf', keys, entries, image };
    }
    const separators: string[] = [];
    const children: PageRef[] = [];
    decoded.children.forEach((child, i) => {
      if (i > 0) separators.push(bytesToKeyString(child.separator!));
      children.push({ block: child.block, crc: child.crc });
    });
    return { kind: 'branch', level: decoded.level, separators, children };
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
 * The record starts of a leaf of `count` records: a small-integer array in
 * the heap. A typed array of its own is an ArrayBuffer of its own (an
 * allocation outside the heap per leaf read); one from Node's
 * shared pool keeps the pool's 8 KiB slab alive as long as its leaf lives.
 */
function recordStartsFor(count: number): number[] {
  return new Array<number>(count + 1).fill(0);
}
