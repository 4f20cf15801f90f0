// TreePages: the page tree's pages on the device. Reads a page, checks it
// against the reference its parent holds (block, checksum, level) through
// format/page.ts, and hands the tree its keys and entries; encodes the
// pages a checkpoint writes. The one place where tree nodes meet bytes.
import { FormatError } from '../format/format_error.js';
import { decodePage, encodeBranchPage, encodeLeafPage, type BranchChild, type LeafEntry } from '../format/page.js';
import type { StoredValue } from '../format/records.js';
import type { BlockDevice } from './block_device.js';
import { BufferPool } from './buffer_pool.js';
import { bytesToKeyString, keyStringToBytes } from './key_codec.js';
import type { DecodedTreePage, PageRef, TreePageIo } from './page_tree.js';
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
      const keys = new Array<string>(decoded.entries.length);
      const entries = new Array<IndexEntry>(decoded.entries.length);
      decoded.entries.forEach((entry, i) => {
        keys[i] = bytesToKeyString(entry.key);
        entries[i] = { isString: entry.keyIsString, value: entry.value.kind === 'inline' ? entry.value.bytes : entry.value };
      });
      return { kind: 'leaf', keys, entries };
    }
    const separators: string[] = [];
    const children: PageRef[] = [];
    decoded.children.forEach((child, i) => {
      if (i > 0) separators.push(bytesToKeyString(child.separator!));
      children.push({ block: child.block, crc: child.crc });
    });
    return { kind: 'branch', level: decoded.level, separators, children };
  }

  /** Encodes `content` into `bytes` (a page) as the page at `block`, written by the checkpoint of `checkpointSequence`; returns its checksum. */
  encode(content: DecodedTreePage, block: number, checkpointSequence: number, bytes: Uint8Array): number {
    const geometry = this.#geometry();
    const stamp = { address: block, checkpointSequence, storeTag: geometry.storeTag };
    if (content.kind === 'leaf') {
      // One conversion for all keys of the page, not one allocation a key.
      const keyBytes = Buffer.from(content.keys.join(''), 'latin1');
      let offset = 0;
      const entries: LeafEntry[] = new Array(content.keys.length);
      for (let i = 0; i < content.keys.length; i++) {
        const length = content.keys[i].length;
        entries[i] = { key: keyBytes.subarray(offset, offset + length), keyIsString: content.entries[i].isString, value: storedValue(content.entries[i]) };
        offset += length;
      }
      return encodeLeafPage(bytes, stamp, entries);
    }
    const children: BranchChild[] = content.children.map((child, i) => ({ block: child.block, crc: child.crc, separator: i === 0 ? undefined : keyStringToBytes(content.separators[i - 1]) }));
    return encodeBranchPage(bytes, stamp, content.level, children);
  }
}

function storedValue(entry: IndexEntry): StoredValue {
  return entry.value instanceof Uint8Array ? { kind: 'inline', bytes: entry.value } : entry.value;
}
