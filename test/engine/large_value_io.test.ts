// The IO of large values (grid.ts, value_streams.ts) on a device that
// watches it: a put or get of 1 MiB is several requests in flight at once;
// streams keep several chunks in flight but never more bytes than their
// limit; a failed chunk write rejects the stream and gives back every block;
// a value spread over many extents reads back whole; a damaged chunk is
// ERR_STORE_CORRUPT naming the value's first block; a read stream abandoned
// half-way lets its value's blocks be freed.
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type { BlockDevice } from '../../engine/block_device.js';
import { BlockStore } from '../../engine/block_store.js';
import { BlockCache } from '../../engine/block_cache.js';
import { BufferPool } from '../../engine/buffer_pool.js';
import { Grid, LARGE_IO_CHUNK_BYTES } from '../../engine/grid.js';
import type { Space } from '../../engine/space.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreCorruptError, StoreError } from '../../engine/store_error.js';
import { STREAM_IN_FLIGHT_BYTES_MAX } from '../../engine/value_streams.js';
import { HEAP_BUFFER_BYTES_MAX } from '../../native/aligned_buffer.js';
import { pattern, rejectsCorrupt, rejectsWithCode, waitForTrims } from './helpers.js';

const BLOCK_BYTES = 4096;
/** How long WatchedDevice.reverseReads gathers reads before it lets them go. */
const REVERSE_WINDOW_MS = 5;
const MiB = 1 << 20;

/** An EIO as the IO layer reports one. */
function eio(): Error {
  return Object.assign(new Error('EIO: i/o error, pwritev'), { errno: -5, code: 'EIO', syscall: 'pwritev' });
}

/**
 * A BlockDevice over a SimulatedDevice (whose IO completes after a
 * macrotask, so requests submitted together are in flight together) that
 * records the most reads and writes in flight at once, can fail one chosen
 * write, and can damage one byte of what reads return.
 */
class WatchedDevice implements BlockDevice {
  readonly inner: SimulatedDevice;
  readsInFlight = 0;
  readBytesInFlight = 0;
  writesInFlight = 0;
  writeBytesInFlight = 0;
  readsInFlightMax = 0;
  readBytesInFlightMax = 0;
  writesInFlightMax = 0;
  writeBytesInFlightMax = 0;
  /** Fails the write for which this returns true (once), without passing it on. */
  failWrite: ((position: number, lengthBytes: number) => boolean) | undefined;
  /** Reads covering this device position return its byte inverted. */
  damagedPosition: number | undefined;
  /** While true, reads that arrive within a few milliseconds of each other complete last first. */
  reverseReads = false;
  /** The most reads let go in reverse at once. */
  reversedReadsMax = 0;
  #heldReads: (() => void)[] = [];

  constructor(inner: SimulatedDevice) {
    this.inner = inner;
  }

  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }
  get ioAlignment(): number {
    return this.inner.ioAlignment;
  }
  get trimAlignment(): number {
    return this.inner.trimAlignment;
  }
  get blank(): boolean {
    return this.inner.blank;
  }

  /** Forgets the maxima, for the next measurement. */
  resetMaxima(): void {
    this.readsInFlightMax = this.readBytesInFlightMax = this.writesInFlightMax = this.writeBytesInFlightMax = 0;
  }

  async #reading(position: number, buffers: Uint8Array[], read: () => Promise<void>): Promise<void> {
    const lengthBytes = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    this.readsInFlight++;
    this.readBytesInFlight += lengthBytes;
    this.readsInFlightMax = Math.max(this.readsInFlightMax, this.readsInFlight);
    this.readBytesInFlightMax = Math.max(this.readBytesInFlightMax, this.readBytesInFlight);
    try {
      await read();
      if (this.reverseReads) await this.#completeInReverse();
    } finally {
      this.readsInFlight--;
      this.readBytesInFlight -= lengthBytes;
    }
    const damaged = this.damagedPosition;
    if (damaged === undefined || damaged < position || damaged >= position + lengthBytes) return;
    let offset = damaged - position;
    for (const buffer of buffers) {
      if (offset < buffer.length) {
        buffer[offset] ^= 0xff;
        return;
      }
      offset -= buffer.length;
    }
  }

  /**
   * Holds a read with the others that arrive within REVERSE_WINDOW_MS of the
   * first (a value's pieces, submitted together), then lets them go last
   * first, a macrotask apart.
   */
  #completeInReverse(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#heldReads.push(resolve) > 1) return;
      setTimeout(() => {
        const held = this.#heldReads.reverse();
        this.#heldReads = [];
        this.reversedReadsMax = Math.max(this.reversedReadsMax, held.length);
        held.forEach((release, i) => setTimeout(release, i));
      }, REVERSE_WINDOW_MS);
    });
  }

  async #writing(position: number, buffers: Uint8Array[], write: () => Promise<void>): Promise<void> {
    const lengthBytes = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    if (this.failWrite?.(position, lengthBytes) === true) {
      this.failWrite = undefined;
      // Completes later, as the device would: the other writes stay in flight meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 1));
      throw eio();
    }
    this.writesInFlight++;
    this.writeBytesInFlight += lengthBytes;
    this.writesInFlightMax = Math.max(this.writesInFlightMax, this.writesInFlight);
    this.writeBytesInFlightMax = Math.max(this.writeBytesInFlightMax, this.writeBytesInFlight);
    try {
      await write();
    } finally {
      this.writesInFlight--;
      this.writeBytesInFlight -= lengthBytes;
    }
  }

  read(position: number, buffer: Uint8Array): Promise<void> {
    return this.#reading(position, [buffer], () => this.inner.read(position, buffer));
  }
  readv(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#reading(position, buffers, () => this.inner.readv(position, buffers));
  }
  write(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#writing(position, buffers, () => this.inner.write(position, buffers));
  }
  writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#writing(position, buffers, () => this.inner.writeAndSync(position, buffers));
  }
  writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#writing(position, buffers, () => this.inner.writeDsync(position, buffers));
  }
  sync(): Promise<void> {
    return this.inner.sync();
  }
  trim(position: number, length: number): Promise<void> {
    return this.inner.trim(position, length);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function openWatched(sizeBytes = 48 * MiB): Promise<{ store: BlockStore; device: WatchedDevice }> {
  const device = new WatchedDevice(new SimulatedDevice({ sizeBytes }));
  const store = await BlockStore.open('memory', { device, create: true, encoding: 'binary', blockSize: BLOCK_BYTES });
  return { store, device };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part as Uint8Array));
  return Buffer.concat(parts);
}

/** Resolves once the stream has been destroyed (its destroy callback has run). */
function closed(stream: Writable | Readable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.closed) resolve();
    else stream.once('close', () => resolve());
  });
}

/** Waits (bounded) until the store uses `blocks` blocks again: a failed stream gives its blocks back once its writes have settled. */
async function waitForBlocksUsed(store: BlockStore, blocks: number): Promise<void> {
  for (let attempt = 0; attempt < 500 && store.stats().blocksUsed !== blocks; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.equal(store.stats().blocksUsed, blocks, 'the failed stream kept blocks');
}

/** Where on `device` the bytes `needle` start (they must be there, block-aligned). */
function positionOf(device: SimulatedDevice, needle: Uint8Array): number {
  const image = Buffer.from(device.snapshot());
  const position = image.indexOf(needle.subarray(0, 256));
  assert.ok(position >= 0 && position % BLOCK_BYTES === 0, 'the value is not on the device');
  return position;
}

describe('Large values: several IOs in flight (grid, value streams)', () => {
  it('writes a 1 MiB put as several writes in flight at once, and reads it back as several reads', async () => {
    const { store, device } = await openWatched();
    try {
      const value = pattern(MiB, 3);
      device.resetMaxima();
      await store.put('blob', value);
      assert.ok(device.writesInFlightMax >= MiB / LARGE_IO_CHUNK_BYTES, `at most ${device.writesInFlightMax} writes were in flight`);
      device.resetMaxima();
      assert.ok(Buffer.from((await store.get('blob')) as Uint8Array).equals(value));
      assert.ok(device.readsInFlightMax >= MiB / LARGE_IO_CHUNK_BYTES, `at most ${device.readsInFlightMax} reads were in flight`);
    } finally {
      await store.close();
    }
  });

  it('keeps several chunks of a write stream in flight, never more bytes than its limit, and commits them all', async () => {
    const { store, device } = await openWatched();
    try {
      const value = pattern(12 * MiB, 5);
      device.resetMaxima();
      // One large write(): the stream must cut it and hold back itself.
      await pipeline(Readable.from([value], { objectMode: false }), store.createWriteStream('streamed'));
      assert.ok(device.writesInFlightMax > MiB / LARGE_IO_CHUNK_BYTES, `at most ${device.writesInFlightMax} writes were in flight: one chunk at a time`);
      assert.ok(device.writeBytesInFlightMax <= STREAM_IN_FLIGHT_BYTES_MAX, `${device.writeBytesInFlightMax} bytes of writes were in flight, the limit is ${STREAM_IN_FLIGHT_BYTES_MAX}`);
      assert.ok(Buffer.from((await store.get('streamed')) as Uint8Array).equals(value));
    } finally {
      await store.close();
    }
  });

  it('reads ahead in a read stream: several chunks in flight, never more bytes than its limit', async () => {
    const { store, device } = await openWatched();
    try {
      const value = pattern(12 * MiB, 7);
      await store.put('blob', value);
      device.resetMaxima();
      assert.ok((await readAll(store.createReadStream('blob'))).equals(value));
      assert.ok(device.readsInFlightMax > MiB / LARGE_IO_CHUNK_BYTES, `at most ${device.readsInFlightMax} reads were in flight: no read-ahead`);
      assert.ok(device.readBytesInFlightMax <= STREAM_IN_FLIGHT_BYTES_MAX, `${device.readBytesInFlightMax} bytes of reads were in flight, the limit is ${STREAM_IN_FLIGHT_BYTES_MAX}`);
    } finally {
      await store.close();
    }
  });

  it('rejects a write stream whose chunk write fails with ERR_STORE_FAILED, gives back every block, and stores nothing', async () => {
    const { store, device } = await openWatched();
    let image: SimulatedDevice;
    try {
      await store.put('before', pattern(MiB, 9));
      const usedBefore = store.stats().blocksUsed;
      // The 6th chunk-sized data write fails: earlier ones have completed or are in flight.
      let chunkWrites = 0;
      device.failWrite = (_position, lengthBytes) => lengthBytes === LARGE_IO_CHUNK_BYTES && ++chunkWrites === 6;
      const stream = store.createWriteStream('failing');
      const error = await rejectsWithCode(() => pipeline(Readable.from([pattern(8 * MiB, 11)], { objectMode: false }), stream), 'ERR_STORE_FAILED');
      assert.match(String((error.cause as Error | undefined)?.message), /EIO/);
      await closed(stream);
      await waitForBlocksUsed(store, usedBefore);
      await rejectsWithCode(() => store.put('after', 'x'), 'ERR_STORE_FAILED');
      image = device.inner.crash({ keepProbability: 1, tornWrites: false });
    } finally {
      await store.close().catch(() => undefined);
    }
    const reopened = await BlockStore.open('memory', { device: image, encoding: 'binary' });
    try {
      assert.equal(await reopened.has('failing'), false);
      assert.ok(Buffer.from((await reopened.get('before')) as Uint8Array).equals(pattern(MiB, 9)));
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('reads a stream-written value spread over many extents, whose chunks straddle extent ends, through get(), a read stream and range()', async () => {
    // Fill a small store with 37-block values, delete every other one: a
    // stream then takes the 37-block holes, 7 for each 1 MiB chunk (an
    // allocation may take only as much as the 8 largest free runs hold,
    // FREE_SET_EXTENTS_MAX), and 64-block IO chunks straddle their ends.
    const { store, device } = await openWatched(16 * MiB);
    try {
      const small = pattern(37 * BLOCK_BYTES, 13);
      let count = 0;
      // Batches of 64, then single puts, until the store is full: no large free run is left.
      for (let batchLength = 64; batchLength >= 1; ) {
        const batch = Array.from({ length: batchLength }, (_, i) => ({ type: 'put' as const, key: `s${String(count + i).padStart(5, '0')}`, value: small }));
        try {
          await store.batch(batch);
        } catch (error) {
          if (!(error instanceof StoreError && error.code === 'ERR_STORE_FULL')) throw error;
          batchLength >>= 1;
          continue;
        }
        count += batch.length;
      }
      assert.ok(count > 50, `only ${count} small values fit`);
      for (let i = 0; i < count; i += 2) await store.delete(`s${String(i).padStart(5, '0')}`);
      await waitForTrims(store);
      const value = pattern(3 * MiB + 12345, 17);
      await pipeline(Readable.from([value], { objectMode: false }), store.createWriteStream('spread'));
      device.resetMaxima();
      assert.ok(Buffer.from((await store.get('spread')) as Uint8Array).equals(value));
      assert.ok(device.readsInFlightMax > 20, `the value took ${device.readsInFlightMax} reads: not spread over many extents`);
      assert.ok((await readAll(store.createReadStream('spread'))).equals(value));
      for await (const [key, bytes] of store.range({ gte: 'spread', lte: 'spread' })) {
        assert.equal(key, 'spread');
        assert.ok(Buffer.from(bytes as Uint8Array).equals(value));
      }
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });

  it('answers a damaged chunk of a large value with ERR_STORE_CORRUPT naming its first block, from get() and a read stream', async () => {
    const { store, device } = await openWatched();
    try {
      const value = pattern(3 * MiB, 19);
      await store.put('blob', value);
      const position = positionOf(device.inner, value);
      // A byte of the second stream chunk, in the middle of an IO chunk.
      device.damagedPosition = position + MiB + LARGE_IO_CHUNK_BYTES + 100;
      const fromGet = await rejectsCorrupt(() => store.get('blob'), 'data');
      assert.equal(fromGet.blockIndex, position / BLOCK_BYTES);
      assert.match(fromGet.message, new RegExp(`block ${position / BLOCK_BYTES}\\b`));
      const stream = store.createReadStream('blob');
      const fromStream = await rejectsCorrupt(() => readAll(stream), 'data');
      assert.ok(fromStream instanceof StoreCorruptError);
      assert.equal(fromStream.blockIndex, position / BLOCK_BYTES);
      device.damagedPosition = undefined;
      assert.ok(Buffer.from((await store.get('blob')) as Uint8Array).equals(value), 'the damage was in the reads only');
    } finally {
      await store.close();
    }
  });

  it('checksums a large value read whole whatever order its pieces arrive in: intact reads back, damage in the first or last piece is ERR_STORE_CORRUPT', async () => {
    const { store, device } = await openWatched();
    try {
      const value = pattern(MiB + 3 * BLOCK_BYTES + 17, 23);
      await store.put('blob', value);
      const position = positionOf(device.inner, value);
      device.reverseReads = true;
      assert.ok(Buffer.from((await store.get('blob')) as Uint8Array).equals(value), 'read back in reverse order');
      assert.ok(device.reversedReadsMax >= Math.ceil(value.length / LARGE_IO_CHUNK_BYTES), `only ${device.reversedReadsMax} reads arrived out of order together`);
      // Still in reverse: the damaged piece arrives first or last.
      for (const offset of [5, value.length - 1]) {
        device.damagedPosition = position + offset;
        const error = await rejectsCorrupt(() => store.get('blob'), 'data');
        assert.equal(error.blockIndex, position / BLOCK_BYTES);
      }
      device.damagedPosition = undefined;
      device.reverseReads = false;
      assert.ok(Buffer.from((await store.get('blob')) as Uint8Array).equals(value), 'the damage was in the reads only');
    } finally {
      await store.close();
    }
  });

  it('answers a read of a value larger than a Buffer holds with ERR_VALUE_TOO_LARGE, before any IO', async () => {
    const device = new WatchedDevice(new SimulatedDevice({ sizeBytes: 4 * MiB }));
    let readEpochs = 0;
    const space = { beginRead: () => ++readEpochs, endRead: () => void readEpochs-- } as unknown as Space;
    const grid = new Grid({ device, blockSize: BLOCK_BYTES, pool: new BufferPool(BLOCK_BYTES, BLOCK_BYTES, 1), cache: new BlockCache(new BufferPool(BLOCK_BYTES, BLOCK_BYTES, 1), 0), space });
    const blockCount = Math.ceil(HEAP_BUFFER_BYTES_MAX / BLOCK_BYTES);
    const value = { kind: 'extents' as const, length: HEAP_BUFFER_BYTES_MAX - 1, crc: 0, extents: [{ startBlock: 16, blockCount }] };
    await rejectsWithCode(() => grid.readValue({ isString: true, value }), 'ERR_VALUE_TOO_LARGE');
    assert.equal(device.readsInFlightMax, 0, 'a read was issued');
    assert.equal(readEpochs, 0, 'the read epoch was not ended');
  });

  it('releases the read epoch of a read stream destroyed half-way: the blocks of its value, deleted, are freed', async () => {
    const { store, device } = await openWatched();
    try {
      const usedBefore = store.stats().blocksUsed;
      await store.put('blob', pattern(10 * MiB, 23));
      const stream = store.createReadStream('blob');
      const iterator = stream[Symbol.asyncIterator]();
      assert.equal((await iterator.next()).done, false);
      // Reads ahead are in flight now; destroy the stream under them.
      stream.destroy();
      await closed(stream);
      await store.delete('blob');
      await waitForTrims(store);
      assert.equal(device.readsInFlight, 0, 'reads of the destroyed stream are still in flight');
      assert.equal(store.stats().blocksUsed, usedBefore, 'the deleted value kept its blocks: the stream still pins them');
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });
});
