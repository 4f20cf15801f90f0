// Grid: the data blocks of extent values, and the IO on them. Small values
// go through the block cache (block buffers from the pool, cached once their
// commit is durable); values of LARGE_VALUE_BYTES or more bypass it in both
// directions. Every value read is verified against the checksum its record
// holds: a torn, lost or misdirected write is ERR_STORE_CORRUPT, never data.
import { crc32c } from '../format/crc32c.js';
import type { Extent } from '../format/extent.js';
import type { ExtentValue } from '../format/records.js';
import { allocAligned } from '../native/aligned_buffer.js';
import type { BlockCache } from './block_cache.js';
import type { BlockDevice } from './block_device.js';
import type { BufferPool } from './buffer_pool.js';
import { readLarge } from './recovery.js';
import type { Space } from './space.js';
import { StoreCorruptError } from './store_error.js';
import type { IndexEntry } from './store_index.js';

/**
 * Values at least this large bypass the block cache in both directions
 * (written from and read into one aligned buffer): caching a blob evicts many
 * small hot blocks for one read that is usually sequential anyway.
 */
const LARGE_VALUE_BYTES = 64 << 10;

/** A pool buffer written to `blockIndex`: handed to the cache once its commit is durable. */
export interface DataBlock {
  blockIndex: number;
  buffer: Buffer;
}

export interface GridParts {
  device: BlockDevice;
  blockSize: number;
  pool: BufferPool;
  cache: BlockCache;
  /** Pins what a read reads (read epochs). */
  space: Space;
}

export class Grid {
  readonly #device: BlockDevice;
  readonly #blockSize: number;
  readonly #pool: BufferPool;
  readonly #cache: BlockCache;
  readonly #space: Space;

  constructor(parts: GridParts) {
    this.#device = parts.device;
    this.#blockSize = parts.blockSize;
    this.#pool = parts.pool;
    this.#cache = parts.cache;
    this.#space = parts.space;
  }

  get cacheHits(): number {
    return this.#cache.hits;
  }

  get cacheMisses(): number {
    return this.#cache.misses;
  }

  get cacheSizeBytes(): number {
    return this.#cache.sizeBytes;
  }

  // ---- Writing ----

  /** Copies `bytes` into pool blocks and writes them to `extents`; returns the write promises. */
  writeExtentData(bytes: Uint8Array, extents: Extent[], dataBlocks: DataBlock[]): Promise<void>[] {
    const blockSize = this.#blockSize;
    const writes: Promise<void>[] = [];
    // The commit these blocks join is not numbered yet.
    this.#device.mark?.('data');
    if (bytes.length >= LARGE_VALUE_BYTES) {
      // A large value bypasses the block cache (it would only evict what is
      // hot): one aligned copy, one write per extent.
      const totalBytes = extents.reduce((sum, extent) => sum + extent.blockCount, 0) * blockSize;
      const aligned = allocAligned(totalBytes, Math.max(this.#device.ioAlignment, 4096));
      aligned.set(bytes);
      let offset = 0;
      for (const extent of extents) {
        const length = extent.blockCount * blockSize;
        writes.push(this.#device.write(extent.startBlock * blockSize, [aligned.subarray(offset, offset + length)]));
        offset += length;
      }
      for (const write of writes) write.catch(() => undefined);
      return writes;
    }
    let offset = 0;
    for (const extent of extents) {
      const buffers: Buffer[] = [];
      for (let i = 0; i < extent.blockCount; i++) {
        const buffer = this.#pool.take();
        const end = Math.min(bytes.length, offset + blockSize);
        buffer.set(bytes.subarray(offset, end));
        if (end - offset < blockSize) buffer.fill(0, end - offset);
        offset += blockSize;
        buffers.push(buffer);
        dataBlocks.push({ blockIndex: extent.startBlock + i, buffer });
      }
      // Vector writes of at most 1024 buffers (IOV_MAX).
      for (let i = 0; i < buffers.length; i += 1024) {
        writes.push(this.#device.write((extent.startBlock + i) * blockSize, buffers.slice(i, i + 1024)));
      }
    }
    // Rejections surface when the commit awaits them; keep them from being unhandled meanwhile.
    for (const write of writes) write.catch(() => undefined);
    return writes;
  }

  /** The commit that wrote `dataBlocks` is applied: the cache takes their buffers. */
  cacheWritten(dataBlocks: readonly DataBlock[]): void {
    for (const { blockIndex, buffer } of dataBlocks) this.#cache.put(blockIndex, buffer);
  }

  /** The write that took `dataBlocks` will never commit: their buffers go back to the pool. */
  giveBack(dataBlocks: readonly DataBlock[]): void {
    for (const { buffer } of dataBlocks) this.#pool.give(buffer);
  }

  // ---- Reading ----

  /** The bytes of an entry's value, verified; the extents are pinned while they are read. */
  async readValue(entry: IndexEntry): Promise<Uint8Array> {
    if (entry.value instanceof Uint8Array) return entry.value;
    const value = entry.value;
    const epoch = this.#space.beginRead();
    try {
      if (value.length >= LARGE_VALUE_BYTES) return await this.#readLargeValue(value);
      const out = Buffer.allocUnsafe(value.length);
      let offset = 0;
      for (const extent of value.extents) {
        const bytes = await this.readBlocks(extent.startBlock, extent.blockCount);
        const used = Math.min(value.length - offset, bytes.length);
        out.set(bytes.subarray(0, used), offset);
        offset += used;
      }
      const crc = crc32c(out);
      if (crc !== value.crc) {
        throw new StoreCorruptError('data', `value of ${value.length} bytes has checksum 0x${crc.toString(16)}, its record says 0x${value.crc.toString(16)} (torn, lost or misdirected write)`, value.extents[0].startBlock);
      }
      return out;
    } finally {
      this.#space.endRead(epoch);
    }
  }

  /** A large value read straight into one aligned buffer, bypassing the cache; verified. */
  async #readLargeValue(value: ExtentValue): Promise<Uint8Array> {
    const blockSize = this.#blockSize;
    const totalBytes = value.extents.reduce((sum, extent) => sum + extent.blockCount, 0) * blockSize;
    const aligned = allocAligned(totalBytes, Math.max(this.#device.ioAlignment, 4096));
    let offset = 0;
    const reads: Promise<void>[] = [];
    for (const extent of value.extents) {
      const length = extent.blockCount * blockSize;
      reads.push(readLarge(this.#device, extent.startBlock * blockSize, aligned.subarray(offset, offset + length)));
      offset += length;
    }
    await Promise.all(reads);
    const out = aligned.subarray(0, value.length);
    const crc = crc32c(out);
    if (crc !== value.crc) {
      throw new StoreCorruptError('data', `value of ${value.length} bytes has checksum 0x${crc.toString(16)}, its record says 0x${value.crc.toString(16)} (torn, lost or misdirected write)`, value.extents[0].startBlock);
    }
    return out;
  }

  /**
   * The bytes of blocks [start, start + count), from the cache or the device.
   * REQUIRES: the caller pins them (Space.beginRead) until it has them.
   */
  async readBlocks(startBlock: number, blockCount: number): Promise<Uint8Array> {
    const blockSize = this.#blockSize;
    const out = Buffer.allocUnsafe(blockCount * blockSize);
    let runStart = -1;
    const runs: Promise<void>[] = [];
    const readRun = (from: number, to: number): void => {
      const buffers: Buffer[] = [];
      for (let block = from; block < to; block++) buffers.push(this.#pool.take());
      runs.push(
        (async () => {
          for (let i = 0; i < buffers.length; i += 1024) {
            await this.#device.readv((from + i) * blockSize, buffers.slice(i, i + 1024));
          }
          buffers.forEach((buffer, i) => {
            out.set(buffer, (from + i - startBlock) * blockSize);
            this.#cache.put(from + i, buffer);
          });
        })(),
      );
    };
    for (let block = startBlock; block < startBlock + blockCount; block++) {
      const cached = this.#cache.get(block);
      if (cached !== undefined) {
        if (runStart >= 0) readRun(runStart, block);
        runStart = -1;
        out.set(cached, (block - startBlock) * blockSize);
      } else if (runStart < 0) {
        runStart = block;
      }
    }
    if (runStart >= 0) readRun(runStart, startBlock + blockCount);
    await Promise.all(runs);
    return out;
  }
}
