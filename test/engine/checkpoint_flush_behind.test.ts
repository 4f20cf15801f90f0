// A checkpoint of many pages flushes along the way (flush-behind,
// checkpointer.ts), so that the device's flush of what it wrote overlaps the
// encoding of what follows, unless commits flush meanwhile. Those flushes are flushes like the last one: a
// failed one stops the store at once (no write is acknowledged after it),
// the checkpoint writes no superblock and issues no other flush, and what
// was acknowledged before survives a power loss.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import type { IoPhase } from '../../engine/block_device.js';
import { CHECKPOINT_BATCH_PAGES, CHECKPOINT_FLUSH_BEHIND_BATCHES } from '../../engine/checkpointer.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreError } from '../../engine/store_error.js';
import { pattern, seededRandom } from './helpers.js';

const PAGE_SIZE_BYTES = 4096;
/** Keys loaded before the checkpoint: ~2 800 pages to write in batches of 256 (flush-behind follows every 4th). */
const KEY_COUNT = 60_000;
const KEYS_PER_BATCH = 2_000;

interface FlushSeen {
  /** Bytes of checkpoint pages whose writes had completed when the flush was issued. */
  checkpointBytesBefore: number;
  failed: boolean;
}

/**
 * Counts the checkpoint's page bytes and the flushes issued among them. It
 * can hold the checkpoint's page writes submitted after the first
 * flush-behind's worth of pages (holdLaterPages), so that the checkpoint is
 * still writing when the store fails; fail the first flush that follows a
 * checkpoint page write (failFirstCheckpointFlush); and fail the next
 * commit's O_DSYNC WAL write (failNextDurableWrite).
 */
class FlushWatchingDevice extends SimulatedDevice {
  #phase: IoPhase | undefined;
  /** Counting from `watch()` on. */
  watching = false;
  checkpointBytes = 0;
  superblockWrites = 0;
  readonly flushes: FlushSeen[] = [];
  holdLaterPages = false;
  failFirstCheckpointFlush = false;
  failNextDurableWrite = false;
  /** Fails the next flush whatever issues it, noting how many page writes were submitted by then. */
  failNextFlush = false;
  submittedAtFailedFlush: number | undefined;
  /** Delays every checkpoint page write by this much (a slow device). */
  pageDelayMs = 0;
  checkpointWritesSubmitted = 0;
  checkpointWritesInFlight = 0;
  /** Checkpoint page writes in flight when the store closed the device, if it did. */
  inFlightAtClose: number | undefined;
  /** Page writes past the first flush-behind's worth, with holdLaterPages: they wait here until released. */
  readonly held: (() => void)[] = [];
  #failed = false;
  #checkpointBytesSubmitted = 0;

  mark(phase: IoPhase): void {
    this.#phase = phase;
  }

  watch(): void {
    this.watching = true;
    this.checkpointBytes = 0;
    this.#checkpointBytesSubmitted = 0;
    this.superblockWrites = 0;
    this.flushes.length = 0;
  }

  override async write(position: number, buffers: Uint8Array[]): Promise<void> {
    const phase = this.#phase;
    if (this.watching && phase === 'superblock') this.superblockWrites++;
    if (this.watching && phase === 'checkpoint') {
      this.checkpointWritesSubmitted++;
      this.checkpointWritesInFlight++;
    }
    try {
      await this.#checkpointWrite(phase, position, buffers);
    } finally {
      if (this.watching && phase === 'checkpoint') this.checkpointWritesInFlight--;
    }
  }

  async #checkpointWrite(phase: IoPhase | undefined, position: number, buffers: Uint8Array[]): Promise<void> {
    if (this.watching && phase === 'checkpoint' && this.pageDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.pageDelayMs));
    if (this.watching && phase === 'checkpoint') {
      const holdPast = CHECKPOINT_FLUSH_BEHIND_BATCHES * CHECKPOINT_BATCH_PAGES * PAGE_SIZE_BYTES;
      const submittedBefore = this.#checkpointBytesSubmitted;
      this.#checkpointBytesSubmitted += buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0);
      if (this.holdLaterPages && submittedBefore >= holdPast) await new Promise<void>((resolve) => this.held.push(resolve));
    }
    await super.write(position, buffers);
    if (this.watching && phase === 'checkpoint') this.checkpointBytes += buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0);
  }

  override writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    if (!this.failNextDurableWrite) return super.writeDsync(position, buffers);
    this.failNextDurableWrite = false;
    return Promise.reject(Object.assign(new Error('EIO: i/o error, write'), { errno: -5, code: 'EIO', syscall: 'write' }));
  }

  override async close(): Promise<void> {
    this.inFlightAtClose ??= this.checkpointWritesInFlight;
    return super.close();
  }

  override sync(): Promise<void> {
    if (this.failNextFlush && this.#phase === 'flush') {
      this.failNextFlush = false;
      this.submittedAtFailedFlush = this.checkpointWritesSubmitted;
      return Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { errno: -5, code: 'EIO', syscall: 'fdatasync' }));
    }
    if (!this.watching || this.#phase !== 'flush') return super.sync();
    const fail = this.failFirstCheckpointFlush && this.checkpointBytes > 0 && !this.#failed;
    this.flushes.push({ checkpointBytesBefore: this.checkpointBytes, failed: fail });
    if (!fail) return super.sync();
    this.#failed = true;
    // It fails when the test says (failTheFlush), as a slow flush would: the checkpoint goes on meanwhile.
    return new Promise<void>((_, reject) => {
      this.failTheFlush = () => reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { errno: -5, code: 'EIO', syscall: 'fdatasync' }));
    });
  }

  /** Set once the flush that is to fail was issued: call it to fail it. */
  failTheFlush: (() => void) | undefined;
}

async function loadedStore(device: FlushWatchingDevice): Promise<{ store: BlockStore; keys: string[] }> {
  const store = await BlockStore.open('flush-behind', { device, create: true, encoding: 'binary', walSizeBytes: 32 << 20 });
  const random = seededRandom(41);
  const keys = Array.from({ length: KEY_COUNT }, (_, i) => `key-${Math.floor(random() * 1e9)}-${i}`);
  for (let first = 0; first < keys.length; first += KEYS_PER_BATCH) {
    await store.batch(keys.slice(first, first + KEYS_PER_BATCH).map((key, i) => ({ type: 'put' as const, key, value: pattern(100, first + i) })));
  }
  return { store, keys };
}

describe('checkpoint flush-behind', () => {
  it('flushes while a large checkpoint still has pages to write, and the store reopens whole after a power loss', async () => {
    const device = new FlushWatchingDevice({ sizeBytes: 96 << 20 });
    const { store, keys } = await loadedStore(device);
    device.watch();
    await store.checkpoint();
    const pageBytes = device.checkpointBytes;
    assert.ok(pageBytes > 5 * 256 * PAGE_SIZE_BYTES, `a checkpoint of ${pageBytes / PAGE_SIZE_BYTES} pages: too few for the test`);
    const early = device.flushes.filter((flush) => flush.checkpointBytesBefore > 0 && flush.checkpointBytesBefore < pageBytes);
    assert.ok(early.length >= 1, `flushes at ${JSON.stringify(device.flushes)} of ${pageBytes} page bytes: none before the last page`);
    assert.equal(device.superblockWrites > 0, true);
    const reopened = await BlockStore.open('flush-behind', { device: device.crash() });
    try {
      assert.equal(reopened.stats().keys, keys.length);
      for (const [i, key] of keys.entries()) if (i % 97 === 0) assert.deepEqual(await reopened.get(key), Buffer.from(pattern(100, i)));
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('adds no flush while commits flush (their durable writes take the pages along)', async () => {
    const device = new FlushWatchingDevice({ sizeBytes: 96 << 20 });
    const { store, keys } = await loadedStore(device);
    device.watch();
    let writing = true;
    let puts = 0;
    const writer = (async () => {
      while (writing) await store.put(`during-${puts++}`, pattern(100, puts));
    })();
    await store.checkpoint();
    writing = false;
    await writer;
    const pageBytes = device.checkpointBytes;
    assert.ok(pageBytes > 5 * 256 * PAGE_SIZE_BYTES, `a checkpoint of ${pageBytes / PAGE_SIZE_BYTES} pages: too few for the test`);
    assert.ok(puts > 10, `only ${puts} puts committed during the checkpoint`);
    const early = device.flushes.filter((flush) => flush.checkpointBytesBefore > 0 && flush.checkpointBytesBefore < pageBytes);
    assert.deepEqual(early, [], `flush-behinds while ${puts} puts committed`);
    assert.equal(store.stats().keys, keys.length + puts);
    await store.close();
  });

  it('a failed flush-behind stops the store at once: writes are refused before the checkpoint ends, no superblock and no other flush follow, and the acknowledged keys survive', async () => {
    const device = new FlushWatchingDevice({ sizeBytes: 96 << 20 });
    const { store, keys } = await loadedStore(device);
    device.watch();
    device.holdLaterPages = true;
    device.failFirstCheckpointFlush = true;
    const checkpoint = store.checkpoint();
    checkpoint.catch(() => undefined);
    for (let waited = 0; (device.held.length === 0 || device.failTheFlush === undefined) && waited < 10_000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(device.failTheFlush !== undefined, `no flush-behind was issued (flushes: ${JSON.stringify(device.flushes)})`);
    assert.ok(device.held.length > 0, 'no page write followed the flush-behind');
    const failedAt = device.flushes.findIndex((flush) => flush.failed);
    device.failTheFlush();
    await new Promise((resolve) => setImmediate(resolve));
    // The checkpoint is still writing (its page writes are held): the store has stopped already.
    const refused = await store.put('after-the-failed-flush', pattern(100, 1)).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof StoreError && refused.code === 'ERR_STORE_FAILED', `a put after the failed flush: ${String(refused)}`);
    assert.equal((refused.cause as { code?: string } | undefined)?.code, 'EIO');
    for (const release of device.held.splice(0)) release();
    const outcome = await checkpoint.then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(outcome instanceof StoreError && outcome.code === 'ERR_STORE_FAILED', `the checkpoint: ${String(outcome)}`);
    assert.equal(device.superblockWrites, 0, 'a superblock was written after the failed flush');
    assert.equal(device.flushes.length, failedAt + 1, `flushes after the failed one: ${JSON.stringify(device.flushes)}`);
    await store.close().catch(() => undefined);
    const reopened = await BlockStore.open('flush-behind', { device: device.crash() });
    try {
      await reopened.whenRecovered();
      assert.equal(reopened.stats().keys, keys.length);
      assert.equal(await reopened.get('after-the-failed-flush'), undefined);
      for (const [i, key] of keys.entries()) if (i % 97 === 0) assert.deepEqual(await reopened.get(key), Buffer.from(pattern(100, i)));
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });
  it("a commit's failed durable write during a checkpoint stops it at its next batch: no flush of its own follows, no superblock", async () => {
    const device = new FlushWatchingDevice({ sizeBytes: 96 << 20 });
    const { store, keys } = await loadedStore(device);
    device.watch();
    device.holdLaterPages = true;
    const checkpoint = store.checkpoint();
    checkpoint.catch(() => undefined);
    for (let waited = 0; device.held.length === 0 && waited < 10_000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(device.held.length > 0, 'no page write was held');
    const flushesBefore = device.flushes.length;
    device.failNextDurableWrite = true;
    const refused = await store.put('commit-that-fails', pattern(100, 2)).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof StoreError && refused.code === 'ERR_STORE_FAILED', `the put whose WAL write failed: ${String(refused)}`);
    // close() now waits for that checkpoint: its page writes settle before the device closes.
    let closeSettled = false;
    const closing = store.close().then(
      () => (closeSettled = true),
      () => (closeSettled = true),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(closeSettled, false, 'close() settled with the checkpoint still writing');
    assert.equal(device.inFlightAtClose, undefined, 'the device was closed with page writes in flight');
    device.holdLaterPages = false;
    for (const release of device.held.splice(0)) release();
    await closing;
    assert.equal(device.inFlightAtClose, 0);
    const outcome = await checkpoint.then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(outcome instanceof StoreError && outcome.code === 'ERR_STORE_FAILED', `the checkpoint: ${String(outcome)}`);
    assert.deepEqual(device.flushes.slice(flushesBefore), [], 'the checkpoint flushed after the store failed');
    assert.equal(device.superblockWrites, 0);
    const reopened = await BlockStore.open('flush-behind', { device: device.crash() });
    try {
      await reopened.whenRecovered();
      assert.equal(reopened.stats().keys, keys.length);
      assert.equal(await reopened.get('commit-that-fails'), undefined);
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });
  it("a store failed during close() stops close()'s checkpoint before its next page write, with several batches in flight", async () => {
    const device = new FlushWatchingDevice({ sizeBytes: 96 << 20 });
    const store = await BlockStore.open('flush-behind', { device, create: true, encoding: 'binary', walSizeBytes: 32 << 20, sync: false });
    const random = seededRandom(7);
    for (let first = 0; first < KEY_COUNT; first += KEYS_PER_BATCH) {
      await store.batch(Array.from({ length: KEYS_PER_BATCH }, (_, i) => ({ type: 'put' as const, key: `key-${Math.floor(random() * 1e9)}-${first + i}`, value: pattern(100, first + i) })));
    }
    await store.flush();
    device.watch();
    device.pageDelayMs = 5;
    const checkpoint = store.checkpoint();
    checkpoint.catch(() => undefined);
    for (let waited = 0; device.checkpointWritesSubmitted === 0 && waited < 10_000; waited += 1) await new Promise((resolve) => setTimeout(resolve, 1));
    // close() makes the running checkpoint keep several batches in flight; its own flush (sync: false) fails.
    device.failNextFlush = true;
    const closed = await store.close().then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(closed instanceof StoreError && closed.code === 'ERR_STORE_FAILED', `close(): ${String(closed)}`);
    assert.notEqual(device.submittedAtFailedFlush, undefined, 'no flush failed');
    assert.equal(device.checkpointWritesSubmitted, device.submittedAtFailedFlush, 'page writes were submitted after the store failed');
    assert.equal(device.superblockWrites, 0);
    assert.equal(device.inFlightAtClose, 0);
    assert.ok((await checkpoint.then(() => undefined, (error: unknown) => error)) instanceof StoreError);
  });
});
