// Grid: the data blocks of extent values, and the IO on them. Small values
// go through the block cache (block buffers from the pool, cached once their
// commit is durable); values of LARGE_VALUE_BYTES or more bypass it in both
// directions. Every value read is verified against the checksum its record
// holds: a torn, lost or misdirected write is ERR_STORE_CORRUPT, never data.
import assert from 'node:assert/strict';

import { crc32c } from '../format/crc32c.js';
import { extentsBlockCount, type Extent } from '../format/extent.js';
import type { ExtentValue } from '../format/records.js';
import { allocAlignedInHeap, HEAP_BUFFER_BYTES_MAX } from '../native/aligned_buffer.js';
import type { BlockCache } from './block_cache.js';
import type { BlockDevice } from './block_device.js';
import { BufferPool } from './buffer_pool.js';
import type { Space } from './space.js';
import { StoreCorruptError, StoreError } from './store_error.js';
import type { IndexEntry } from './store_index.js';

/**
 * Values at least this large bypass the block cache in both directions
 * (written from the grid's chunk buffers, read straight into the buffer
 * that holds the value): caching a blob evicts many small hot blocks for
 * one read that is usually sequential anyway.
 */
export const LARGE_VALUE_BYTES = 64 << 10;

/**
 * A large value moves in IOs of at most this many bytes, all submitted at
 * once, so one awaited 1 MiB put or get keeps several requests in flight
 * and a device with parallelism (NVMe, striped volumes) serves them
 * together. Measured here (shared 2-core VM, virtio disk, 7 runs of 128
 * awaited 1 MiB puts + gets each, medians): 64 KiB 495/583 MiB/s, 128 KiB
 * 488/584, 256 KiB 477/664, 512 KiB 514/613, 1 MiB (one IO) 464/662 —
 * within this machine's noise: its disk does not reward splitting, and
 * fio agrees (1 MiB direct reads QD1 1259-1974 MiB/s, 4 × 256 KiB QD4
 * 946-1802). 256 KiB keeps 4 requests in flight per MiB, for the cost of 4
 * commands instead of 1 (a few µs of JS and actor work each).
 */
export const LARGE_IO_CHUNK_BYTES = 256 << 10;

/**
 * Chunk buffers of large writes the grid keeps for reuse: 64 × 256 KiB = 16
 * MiB at most, enough for 16 concurrent 1 MiB puts without allocating.
 * More in use at once are allocated (and left to the GC when given back).
 */
const LARGE_IO_CHUNKS_RETAINED_MAX = 64;

/** Chunk buffers carved from one allocation: 4 × 256 KiB = one 1 MiB value. */
const LARGE_IO_CHUNKS_PER_SLAB = 4;

/** Buffers one readv or writev takes at most (Linux's IOV_MAX). */
const IOV_MAX = 1024;

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
  /** LARGE_IO_CHUNK_BYTES rounded down to whole blocks (at least one). */
  readonly #chunkBytes: number;
  /** Aligned buffers of #chunkBytes for the IO of large values. */
  readonly #chunks: BufferPool;

  constructor(parts: GridParts) {
    this.#device = parts.device;
    this.#blockSize = parts.blockSize;
    this.#pool = parts.pool;
    this.#cache = parts.cache;
    this.#space = parts.space;
    this.#chunkBytes = Math.max(1, Math.floor(LARGE_IO_CHUNK_BYTES / parts.blockSize)) * parts.blockSize;
    this.#chunks = new BufferPool(this.#chunkBytes, this.alignment, LARGE_IO_CHUNKS_RETAINED_MAX, LARGE_IO_CHUNKS_PER_SLAB);
  }

  /** Bytes of each IO of a large value (and of each chunk buffer). */
  get chunkBytes(): number {
    return this.#chunkBytes;
  }

  /** An aligned chunk buffer (chunkBytes, contents unspecified), for writeChunks. */
  takeChunk(): Buffer {
    return this.#chunks.take();
  }

  /** A chunk buffer no IO uses any more goes back for reuse. */
  giveChunk(buffer: Buffer): void {
    this.#chunks.give(buffer);
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

  /**
   * Copies `bytes` into pool blocks and writes them to `extents`, adding
   * each write's promise to `writes` as it is submitted (so that, if this
   * throws part way, the caller still waits for those before it gives the
   * extents back); returns the CRC32C of `bytes`. A large value is copied,
   * submitted a chunk at a time, so the device writes the first chunks
   * while the last are copied (each chunk write wakes the actor:
   * Command::IsSlow), and checksummed (from the chunks, as written) once
   * all are submitted: the checksum's CPU overlaps the device's work
   * instead of holding back the chunks after the first (~60 µs a 256 KiB
   * chunk on the host of session 33).
   */
  writeExtentData(bytes: Uint8Array, extents: Extent[], dataBlocks: DataBlock[], writes: Promise<void>[]): number {
    const blockSize = this.#blockSize;
    const firstWrite = writes.length;
    // The commit these blocks join is not numbered yet.
    this.#device.mark?.('data');
    if (bytes.length >= LARGE_VALUE_BYTES) {
      // A large value bypasses the block cache (it would only evict what is
      // hot): copied into chunk buffers and written in chunks.
      const totalBytes = extentsBlockCount(extents) * blockSize;
      const chunkBytes = this.#chunkBytes;
      const chunks: Buffer[] = [];
      let crc = 0;
      try {
        this.#forEachPiece(Math.ceil(totalBytes / chunkBytes), totalBytes, extents, (chunkIndex, position, from, to) => {
          if (chunkIndex === chunks.length) {
            // The chunk's first piece: fill the chunk (pieces come in order).
            const chunk = this.#chunks.take();
            chunks.push(chunk);
            const offset = chunkIndex * chunkBytes;
            const used = Math.max(0, Math.min(chunkBytes, bytes.length - offset));
            if (used > 0) chunk.set(bytes.subarray(offset, offset + used));
            chunk.fill(0, used, Math.min(chunkBytes, totalBytes - offset));
          }
          writes.push(this.#device.write(position, [chunks[chunkIndex].subarray(from, to)]));
        });
        // The chunks are ours and unchanged while their writes are in
        // flight: their checksum is the bytes on the device, whatever the
        // caller's buffer does meanwhile (a SharedArrayBuffer).
        for (let chunkIndex = 0; chunkIndex < chunks.length; chunkIndex++) {
          const used = Math.max(0, Math.min(chunkBytes, bytes.length - chunkIndex * chunkBytes));
          if (used > 0) crc = crc32c(chunks[chunkIndex].subarray(0, used), crc);
        }
      } finally {
        // Also if a chunk or a submission failed: what was submitted settles first.
        this.#giveBackWhenSettled(chunks, writes.slice(firstWrite));
      }
      return crc;
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
      // Vector writes of at most IOV_MAX buffers.
      for (let i = 0; i < buffers.length; i += IOV_MAX) {
        writes.push(this.#device.write((extent.startBlock + i) * blockSize, buffers.slice(i, i + IOV_MAX)));
      }
    }
    // Rejections surface when the commit awaits them; keep them from being unhandled meanwhile.
    for (let i = firstWrite; i < writes.length; i++) writes[i].catch(() => undefined);
    return crc32c(bytes);
  }

  /**
   * Writes the first `totalBytes` of `chunks` (chunk buffers from
   * takeChunk, each full but the last; `totalBytes` exactly the extents'
   * blocks) to `extents`, one IO per chunk (two where a chunk spans an
   * extent's end), all submitted at once. Each chunk goes back to the pool
   * when its writes have settled. Returns the write promises (their
   * rejections are handled here too, so none is unhandled while the commit
   * has not awaited it yet).
   */
  writeChunks(chunks: readonly Buffer[], totalBytes: number, extents: readonly Extent[]): Promise<void>[] {
    const writes: Promise<void>[] = [];
    this.#device.mark?.('data');
    this.#forEachPiece(chunks.length, totalBytes, extents, (chunkIndex, position, from, to) => {
      writes.push(this.#device.write(position, [chunks[chunkIndex].subarray(from, to)]));
    });
    this.#giveBackWhenSettled(chunks, writes);
    return writes;
  }

  /**
   * The first `length` bytes of the blocks of `extents` (the rest of the
   * last block is dropped), read straight from the device into one new
   * aligned buffer of the JS heap, bypassing the cache: one IO per piece
   * (at most chunkBytes, ending at a chunk's or an extent's end), all
   * submitted at once, and no copy (a read into chunk buffers and a
   * copy out took ~0.3 ms of a 1 MiB get's ~1.3 ms here). With `checksum`,
   * also the CRC32C of those bytes, computed a piece at a time as soon as
   * the pieces before it have arrived, so most of it overlaps the reads
   * still in flight. Resolves once every read has settled; rejects with the
   * first failure. REQUIRES: the caller pins the extents (Space.beginRead);
   * `length` is at most the extents' bytes, which fit one Buffer
   * (HEAP_BUFFER_BYTES_MAX less the alignment).
   */
  async readExtents(extents: readonly Extent[], length: number, checksum: boolean): Promise<{ bytes: Buffer; crc: number }> {
    const totalBytes = extentsBlockCount(extents) * this.#blockSize;
    assert.ok(length <= totalBytes, 'readExtents: more bytes asked for than the extents hold');
    const buffer = allocAlignedInHeap(totalBytes, this.alignment);
    const chunkBytes = this.#chunkBytes;
    /** Byte ranges of the pieces in the buffer, in order, and which have arrived. */
    const pieceEnds: number[] = [];
    const arrived: boolean[] = [];
    let crc = 0;
    /** Pieces before this one are checksummed. */
    let checked = 0;
    const checkArrived = (): void => {
      while (checked < pieceEnds.length && arrived[checked]) {
        const from = checked === 0 ? 0 : pieceEnds[checked - 1];
        const to = Math.min(pieceEnds[checked], length);
        if (from < to) crc = crc32c(buffer.subarray(from, to), crc);
        checked++;
      }
    };
    const reads: Promise<void>[] = [];
    this.#forEachPiece(Math.ceil(totalBytes / chunkBytes), totalBytes, extents, (chunkIndex, position, from, to) => {
      const index = pieceEnds.length;
      pieceEnds.push(chunkIndex * chunkBytes + to);
      arrived.push(false);
      reads.push(
        this.#device.read(position, buffer.subarray(chunkIndex * chunkBytes + from, chunkIndex * chunkBytes + to)).then(() => {
          arrived[index] = true;
          if (checksum) checkArrived();
        }),
      );
    });
    await allSettledOrThrow(reads);
    assert.ok(!checksum || checked === pieceEnds.length, 'readExtents: a piece was not checksummed');
    return { bytes: buffer.subarray(0, length), crc };
  }

  /**
   * Calls `visit` for each piece of a transfer of `totalBytes` in chunks of
   * #chunkBytes to `extents`: the chunk, the device position, and the
   * piece's byte range in the chunk. A piece ends at a chunk's end or an
   * extent's end, whichever comes first.
   */
  #forEachPiece(chunkCount: number, totalBytes: number, extents: readonly Extent[], visit: (chunkIndex: number, position: number, from: number, to: number) => void): void {
    const blockSize = this.#blockSize;
    const chunkBytes = this.#chunkBytes;
    let offset = 0;
    for (const extent of extents) {
      const extentEnd = offset + extent.blockCount * blockSize;
      const extentPosition = extent.startBlock * blockSize;
      const extentOffset = offset;
      while (offset < extentEnd) {
        const chunkIndex = Math.floor(offset / chunkBytes);
        const from = offset - chunkIndex * chunkBytes;
        const to = Math.min(chunkBytes, extentEnd - chunkIndex * chunkBytes);
        visit(chunkIndex, extentPosition + (offset - extentOffset), from, to);
        offset += to - from;
      }
    }
    assert.equal(offset, totalBytes, 'the transfer is not exactly the extents');
    assert.equal(Math.ceil(totalBytes / chunkBytes), chunkCount, 'the chunks do not hold the transfer');
  }

  /** Gives `chunks` back to the pool once all of `operations` have settled (the kernel is done with them). */
  #giveBackWhenSettled(chunks: readonly Buffer[], operations: readonly Promise<void>[]): void {
    for (const operation of operations) operation.catch(() => undefined);
    void Promise.allSettled(operations).then(() => {
      for (const chunk of chunks) this.#chunks.give(chunk);
    });
  }

  /** Alignment of the buffers of large IO: the device's, and at least a page. */
  get alignment(): number {
    return Math.max(this.#device.ioAlignment, 4096);
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

  /** A large value read straight from the device in chunks, bypassing the cache; verified. */
  async #readLargeValue(value: ExtentValue): Promise<Uint8Array> {
    if (extentsBlockCount(value.extents) * this.#blockSize > HEAP_BUFFER_BYTES_MAX - this.alignment) {
      throw new StoreError('ERR_VALUE_TOO_LARGE', `value of ${value.length} bytes is larger than a Buffer holds: read it with createReadStream`);
    }
    const { bytes, crc } = await this.readExtents(value.extents, value.length, true);
    if (crc !== value.crc) {
      throw new StoreCorruptError('data', `value of ${value.length} bytes has checksum 0x${crc.toString(16)}, its record says 0x${value.crc.toString(16)} (torn, lost or misdirected write)`, value.extents[0].startBlock);
    }
    return bytes;
  }

  /**
   * The bytes of blocks [start, start + count), from the cache or the device.
   * REQUIRES: the caller pins them (Space.beginRead) until it has them.
   */
  async readBlocks(startBlock: number, blockCount: number): Promise<Uint8Array> {
    const blockSize = this.#blockSize;
    const out = Buffer.allocUnsafe(blockCount * blockSize);
    const chunkBlocks = Math.min(IOV_MAX, Math.max(1, Math.floor(this.#chunkBytes / blockSize)));
    let runStart = -1;
    const runs: Promise<void>[] = [];
    const readRun = (from: number, to: number): void => {
      const buffers: Buffer[] = [];
      for (let block = from; block < to; block++) buffers.push(this.#pool.take());
      // One readv per chunk of at most LARGE_IO_CHUNK_BYTES (and IOV_MAX
      // buffers), all in flight at once.
      const reads: Promise<void>[] = [];
      for (let i = 0; i < buffers.length; i += chunkBlocks) {
        reads.push(this.#device.readv((from + i) * blockSize, buffers.slice(i, i + chunkBlocks)));
      }
      runs.push(
        allSettledOrThrow(reads).then(() => {
          buffers.forEach((buffer, i) => {
            out.set(buffer, (from + i - startBlock) * blockSize);
            this.#cache.put(from + i, buffer);
          });
        }),
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
    await allSettledOrThrow(runs);
    return out;
  }
}

/**
 * Waits for every IO of `operations` and then rejects with the first
 * failure, if any: a caller that ends its read epoch on return must not do
 * so while other chunks of its read are still in flight.
 */
export async function allSettledOrThrow(operations: readonly Promise<void>[]): Promise<void> {
  const outcomes = await Promise.allSettled(operations);
  for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
}
