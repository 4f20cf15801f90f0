// ERR_STORE_FAILED: when the device fails a write or a flush, the store
// stops accepting writes — the failing write and every later one reject with
// ERR_STORE_FAILED carrying the device error as `cause` (no retry that could
// pretend an fdatasync succeeded) — while reads of acknowledged data go on;
// after power loss the device holds every acknowledged write.
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreError } from '../../engine/store_error.js';
import { HeldSyncs, newestSuperblock, pattern, rejectsWithCode } from './helpers.js';

const DEVICE_BYTES = 8 << 20;

type FailingOperation = 'write' | 'writeAndSync' | 'writeDsync' | 'sync';

/** An EIO as the IO layer reports one: errno, code and syscall. */
function eio(syscall: string): Error {
  return Object.assign(new Error(`EIO: i/o error, ${syscall}`), { errno: -5, code: 'EIO', syscall });
}

/**
 * A BlockDevice over a SimulatedDevice that fails one chosen operation once,
 * when armed, without passing it to the simulated device (the write never
 * happened; a failed flush made nothing durable).
 */
class FailingDevice implements BlockDevice {
  readonly inner: SimulatedDevice;
  #armed: ReadonlySet<FailingOperation> = new Set();
  readonly injected: Error[] = [];

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

  /** The next of `operations` rejects with EIO; later ones succeed again. */
  failNext(...operations: FailingOperation[]): void {
    this.#armed = new Set(operations);
  }

  #maybeFail(operation: FailingOperation): Promise<void> | undefined {
    if (!this.#armed.has(operation)) return undefined;
    this.#armed = new Set();
    const error = eio(operation === 'write' || operation === 'writeDsync' ? 'pwritev' : 'fdatasync');
    this.injected.push(error);
    return Promise.reject(error);
  }

  read(position: number, buffer: Uint8Array): Promise<void> {
    return this.inner.read(position, buffer);
  }
  readv(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.inner.readv(position, buffers);
  }
  write(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#maybeFail('write') ?? this.inner.write(position, buffers);
  }
  writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#maybeFail('writeAndSync') ?? this.inner.writeAndSync(position, buffers);
  }
  writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#maybeFail('writeDsync') ?? this.inner.writeDsync(position, buffers);
  }
  sync(): Promise<void> {
    return this.#maybeFail('sync') ?? this.inner.sync();
  }
  trim(position: number, length: number): Promise<void> {
    return this.inner.trim(position, length);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * A FailingDevice whose RWF_DSYNC writes (a commit's WAL write) can be held
 * until released, and whose reads can be made to fail with EIO: a commit
 * in flight whose write is about to fail, while the next one reads pages.
 */
class HoldingDevice extends FailingDevice {
  #held: { release: (error?: Error) => void } | undefined;
  #holding = false;
  #onHeld: (() => void) | undefined;
  #heldWrite: ((error?: Error) => void) | undefined;
  #onWriteHeld: (() => void) | undefined;
  failReads = false;
  /** Milliseconds each data write (write()) takes before it reaches the device; 0: at once. */
  slowWritesMs = 0;

  /** Holds the next writeDsync; resolves once it was called. */
  holdNextDsync(): Promise<void> {
    this.#holding = true;
    return new Promise((resolve) => (this.#onHeld = resolve));
  }

  /** Ends the held writeDsync: with `error`, it fails without reaching the device. */
  release(error?: Error): void {
    const held = this.#held;
    assert.ok(held !== undefined, 'a writeDsync is held');
    this.#held = undefined;
    held.release(error);
  }

  override writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    if (!this.#holding) return super.writeDsync(position, buffers);
    this.#holding = false;
    return new Promise<void>((resolve, reject) => {
      this.#held = { release: (error) => (error === undefined ? super.writeDsync(position, buffers).then(resolve, reject) : reject(error)) };
      this.#onHeld?.();
    });
  }

  /** Holds the next data write (write()); resolves once it was called. releaseWrite() ends it. */
  holdNextWrite(): Promise<void> {
    return new Promise((resolve) => (this.#onWriteHeld = resolve));
  }

  /** Ends the held write(): with `error` (recorded as injected), it fails without reaching the device. */
  releaseWrite(error?: Error): void {
    const held = this.#heldWrite;
    assert.ok(held !== undefined, 'a write is held');
    this.#heldWrite = undefined;
    if (error !== undefined) this.injected.push(error);
    held(error);
  }

  override write(position: number, buffers: Uint8Array[]): Promise<void> {
    const onHeld = this.#onWriteHeld;
    if (onHeld !== undefined) {
      this.#onWriteHeld = undefined;
      return new Promise<void>((resolve, reject) => {
        this.#heldWrite = (error) => (error === undefined ? super.write(position, buffers).then(resolve, reject) : reject(error));
        onHeld();
      });
    }
    if (this.slowWritesMs === 0) return super.write(position, buffers);
    return new Promise((resolve) => setTimeout(resolve, this.slowWritesMs)).then(() => super.write(position, buffers));
  }

  override read(position: number, buffer: Uint8Array): Promise<void> {
    return this.failReads ? Promise.reject(eio('pread')) : super.read(position, buffer);
  }

  override readv(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.failReads ? Promise.reject(eio('preadv')) : super.readv(position, buffers);
  }
}

/**
 * A HoldingDevice that never runs the store's deferred fdatasync (sync:
 * false) on its own: what an unflushed acknowledged write depends on is
 * close()'s flush alone, whatever the test's timing.
 */
class NoDeferredSyncDevice extends HoldingDevice {
  readonly syncs = new HeldSyncs();

  deferTask(): () => void {
    return () => undefined;
  }

  /** The next sync() is issued at once (it covers the writes completed by then) but resolves only once the returned function is called. */
  holdNextSync(): () => void {
    return this.syncs.holdNext();
  }

  override sync(): Promise<void> {
    return this.syncs.around(super.sync());
  }
}

function openOn(device: BlockDevice, options: { create: boolean; sync?: boolean }): Promise<BlockStore> {
  return BlockStore.open('failing', { device, encoding: 'binary', ...options });
}

/**
 * Opens what `simulated` holds after a power loss that kept nothing
 * unflushed, runs `check` on it, verifies its integrity and closes it.
 */
async function afterPowerLoss(simulated: SimulatedDevice, check: (store: BlockStore) => Promise<void>): Promise<void> {
  const reopened = await openOn(simulated.crash({ keepProbability: 0, tornWrites: false }), { create: false });
  try {
    await check(reopened);
    await reopened.verifyIntegrity();
  } finally {
    await reopened.close();
  }
}

/**
 * A write stream of `key`, left open with one full chunk written, whose
 * chunk write `device` holds (releaseWrite ends it); the errors it emits.
 */
async function streamWithHeldChunk(store: BlockStore, device: HoldingDevice, key: string): Promise<unknown[]> {
  const stream = store.createWriteStream(key);
  const errors: unknown[] = [];
  stream.on('error', (error) => errors.push(error));
  const held = device.holdNextWrite();
  // A full chunk goes to the device before the stream is ended.
  stream.write(pattern(1 << 20, 2));
  await held;
  return errors;
}

/** What `promise` settles with: its error, or undefined once it resolves. */
function outcomeOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** Asserts `error` is ERR_STORE_FAILED caused by `cause`. */
function assertFailedBy(error: StoreError, cause: Error | undefined): void {
  assert.ok(cause !== undefined, 'the device error was injected');
  assert.equal(error.cause, cause, 'the device error is the cause');
  assert.match(error.message, /EIO/);
}

describe('BlockStore after a device error', () => {
  const acknowledged = new Map<string, Buffer>([
    ['inline', pattern(100, 1)],
    ['extent', pattern(20_000, 2)],
  ]);

  for (const [what, operations, value] of [
    ['the RWF_DSYNC WAL write of a commit of inline values', ['writeDsync'], pattern(50, 3)],
    // One linked write + fdatasync when the extent data is written already,
    // else a WAL write beside the data writes and an fdatasync after both.
    ['the WAL write and flush of a commit with extent data', ['writeAndSync', 'sync'], pattern(20_000, 3)],
    ['the data write of an extent value', ['write'], pattern(9000, 4)],
  ] as const) {
    it(`fails the put whose ${what} failed, and every later write, with ERR_STORE_FAILED`, async () => {
      const simulated = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
      const device = new FailingDevice(simulated);
      const store = await openOn(device, { create: true });
      for (const [key, stored] of acknowledged) await store.put(key, stored);

      device.failNext(...operations);
      const failed = await rejectsWithCode(() => store.put('failing', value), 'ERR_STORE_FAILED');
      assertFailedBy(failed, device.injected[0]);

      const later = await rejectsWithCode(() => store.put('later', pattern(10, 5)), 'ERR_STORE_FAILED');
      assert.equal(later.cause, device.injected[0]);
      await rejectsWithCode(() => store.delete('inline'), 'ERR_STORE_FAILED');
      await rejectsWithCode(() => store.batch([{ type: 'put', key: 'batched', value: pattern(10, 6) }]), 'ERR_STORE_FAILED');
      await rejectsWithCode(() => store.checkpoint(), 'ERR_STORE_FAILED');
      await rejectsWithCode(() => store.flush(), 'ERR_STORE_FAILED');
      assert.throws(() => store.createWriteStream('streamed'), (error: unknown) => error instanceof StoreError && error.code === 'ERR_STORE_FAILED');

      // Reads of acknowledged data still work; the failed writes are not visible.
      for (const [key, stored] of acknowledged) assert.ok(((await store.get(key)) as Buffer).equals(stored), key);
      assert.equal(await store.has('failing'), false);
      assert.equal(await store.has('later'), false);
      assert.equal(device.injected.length, 1, 'no retry of the failed operation reached the device as a second failure');
      await store.close();

      for (const keepProbability of [0, 1]) {
        const image = simulated.crash({ keepProbability, tornWrites: false });
        const reopened = await openOn(image, { create: false });
        try {
          for (const [key, stored] of acknowledged) assert.ok(((await reopened.get(key)) as Buffer).equals(stored), `${key} (keep ${keepProbability})`);
          assert.equal(await reopened.has('later'), false);
          await reopened.put('after-reopen', pattern(10, 7));
          assert.ok(((await reopened.get('after-reopen')) as Buffer).equals(pattern(10, 7)));
          await reopened.verifyIntegrity();
        } finally {
          await reopened.close();
        }
      }
    });
  }

  for (const ending of ['destroyed', 'left open'] as const) {
    it(`fails the store as soon as a write stream's chunk write fails, the stream ${ending} (later puts were acknowledged, and with destroy() the EIO was told to no one; found by a review)`, async () => {
      const simulated = new SimulatedDevice({ sizeBytes: 16 << 20 });
      const device = new FailingDevice(simulated);
      const store = await openOn(device, { create: true });
      try {
        await store.put('before', pattern(100, 1));
        const stream = store.createWriteStream('blob');
        const streamErrors: unknown[] = [];
        stream.on('error', (error) => streamErrors.push(error));
        device.failNext('write');
        // Two full chunks: the first is written (and fails) while the stream takes the second.
        await new Promise<void>((resolve) => stream.write(pattern(2 << 20, 2), () => resolve()));
        for (let i = 0; i < 100 && device.injected.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
        assert.equal(device.injected.length, 1, 'the chunk write failed');
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (ending === 'destroyed') stream.destroy();
        const later = await rejectsWithCode(() => store.put('later', pattern(10, 3)), 'ERR_STORE_FAILED');
        assertFailedBy(later, device.injected[0]);
        // The stream failed with it, whether or not it wrote again.
        assert.equal(streamErrors.length, 1, 'the stream failed');
        assertFailedBy(streamErrors[0] as StoreError, device.injected[0]);
        await rejectsWithCode(() => store.flush(), 'ERR_STORE_FAILED');
        assert.ok(((await store.get('before')) as Buffer).equals(pattern(100, 1)));
      } finally {
        await store.close();
      }
    });
  }

  for (const sync of [true, false]) {
    it(`fails the store when the chunk write of a write stream left open fails while close() runs, and close() does not mark it clean (sync: ${sync}; the EIO became ERR_STORE_CLOSED and the store was marked clean; found by a review)`, async () => {
      const simulated = new SimulatedDevice({ sizeBytes: 16 << 20 });
      const device = new NoDeferredSyncDevice(simulated);
      const store = await openOn(device, { create: true, sync });
      await store.put('before', pattern(100, 1));
      const streamErrors = await streamWithHeldChunk(store, device, 'blob');
      const closed = outcomeOf(store.close());
      // close() is under way (waiting for the chunk write; without that wait
      // it would have written its checkpoint and clean mark by now) when the
      // chunk write fails.
      await new Promise((resolve) => setTimeout(resolve, 100));
      device.releaseWrite(eio('pwritev'));
      const closeOutcome = await closed;
      // The stream hears of it at once, idle as it is (it heard nothing, and its end() met ERR_STORE_CLOSED).
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(streamErrors.length, 1, 'the stream failed');
      assertFailedBy(streamErrors[0] as StoreError, device.injected[0]);
      if (sync) {
        // With sync: true close() resolves whatever it met (docs/store.md); the next open replays the WAL.
        assert.equal(closeOutcome, undefined);
      } else {
        assert.ok(closeOutcome instanceof StoreError && closeOutcome.code === 'ERR_STORE_FAILED', String(closeOutcome));
        assertFailedBy(closeOutcome, device.injected[0]);
      }
      assert.equal(newestSuperblock(simulated, 4096).clean, false, 'a store whose device failed is not marked clean');
      // Power lost after close(): nothing unflushed kept. The put acknowledged
      // before close() is there with sync: false too (close() flushed the
      // commits before it waited for the stream; found by a review: the
      // stream's failure skipped that flush and lost the put).
      await afterPowerLoss(simulated, async (reopened) => {
        assert.ok(((await reopened.get('before')) as Buffer).equals(pattern(100, 1)));
        assert.equal(await reopened.has('blob'), false);
      });
    });
  }

  it('keeps a put acknowledged before close() (sync: false) when a stream left open fails while close() waits for a stream ended before it (the flush was skipped; found by a review)', async () => {
    const simulated = new SimulatedDevice({ sizeBytes: 16 << 20 });
    const device = new NoDeferredSyncDevice(simulated);
    const store = await openOn(device, { create: true, sync: false });
    await store.put('before', pattern(100, 1));
    const openErrors = await streamWithHeldChunk(store, device, 'open');
    // Ended before close(): close() waits for its slow last chunk.
    device.slowWritesMs = 300;
    const ended = store.createWriteStream('ended');
    const endedErrors: unknown[] = [];
    ended.on('error', (error) => endedErrors.push(error));
    ended.end(pattern(10_000, 3));
    await new Promise((resolve) => setImmediate(resolve));
    const closed = outcomeOf(store.close());
    await new Promise((resolve) => setTimeout(resolve, 100));
    device.releaseWrite(eio('pwritev'));
    const closeOutcome = await closed;
    // The store failed, and close() says so (with sync: false, resolved writes may not all be durable then) …
    assert.ok(closeOutcome instanceof StoreError && closeOutcome.code === 'ERR_STORE_FAILED', String(closeOutcome));
    assert.equal(openErrors.length, 1);
    // … but what was acknowledged before close() was flushed at its start.
    await afterPowerLoss(simulated, async (reopened) => {
      assert.ok(((await reopened.get('before')) as Buffer).equals(pattern(100, 1)));
      assert.equal(await reopened.has('open'), false);
    });
  });

  it('rejects close() (sync: false) when a stream left open fails while close() waits behind a flush already running: a put acknowledged after that flush began may be lost, and close() says so (documented); what the flush covered is durable', async () => {
    const simulated = new SimulatedDevice({ sizeBytes: 16 << 20 });
    const device = new NoDeferredSyncDevice(simulated);
    const store = await openOn(device, { create: true, sync: false });
    await store.put('before', pattern(100, 1));
    const releaseSync = device.holdNextSync();
    const flushed = outcomeOf(store.flush());
    // Acknowledged after that flush was issued: it does not cover it.
    await store.put('late', pattern(100, 2));
    await streamWithHeldChunk(store, device, 'open');
    const closed = outcomeOf(store.close());
    await new Promise((resolve) => setTimeout(resolve, 20));
    device.releaseWrite(eio('pwritev'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    releaseSync();
    await flushed;
    const closeOutcome = await closed;
    assert.ok(closeOutcome instanceof StoreError && closeOutcome.code === 'ERR_STORE_FAILED', String(closeOutcome));
    // No second fdatasync is sent beside the running one (one sent so may
    // report success for what a failing one lost; found by a review), nor
    // after the failure: 'late' may be lost, and close() rejected for it.
    assert.equal(device.syncs.inFlightMax, 1);
    await afterPowerLoss(simulated, async (reopened) => {
      assert.ok(((await reopened.get('before')) as Buffer).equals(pattern(100, 1)));
    });
  });

  it("tells through `failure` of an IO error a sync: true close() met in its own checkpoint, which it resolves over (it was told to no one); undefined for a store that met none", async () => {
    const simulated = new SimulatedDevice({ sizeBytes: 16 << 20 });
    const device = new FailingDevice(simulated);
    const store = await openOn(device, { create: true });
    for (let i = 0; i < 20; i++) await store.put(`k${i}`, pattern(100, i));
    assert.equal(store.failure, undefined);
    device.failNext('write', 'writeDsync', 'writeAndSync');
    await store.close();
    assert.equal(device.injected.length, 1, "close()'s checkpoint met the failure");
    // Read through a call: TypeScript keeps the narrowing of the check above across close().
    const failure = ((reading: BlockStore) => reading.failure)(store);
    assert.ok(failure instanceof StoreError && failure.code === 'ERR_STORE_FAILED', String(failure));
    assertFailedBy(failure, device.injected[0]);
    // Every acknowledged put is there: the next open replays the WAL.
    const reopened = await openOn(simulated.crash({ keepProbability: 0, tornWrites: false }), { create: false });
    try {
      for (let i = 0; i < 20; i++) assert.ok(((await reopened.get(`k${i}`)) as Buffer).equals(pattern(100, i)));
      await reopened.close();
      assert.equal(reopened.failure, undefined, 'a store that met no error');
    } finally {
      await reopened.close();
    }
  });

  it('fails the store when a checkpoint page write fails while its next batch of pages is being encoded', async () => {
    // A checkpoint encodes one batch of pages while the one before is being
    // written: the failed write must fail the checkpoint and the store, and
    // must never go unwatched (an unhandled rejection ends the process).
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const simulated = new SimulatedDevice({ sizeBytes: 32 << 20 });
      const device = new FailingDevice(simulated);
      const store = await BlockStore.open('failing', { device, encoding: 'binary', create: true, walSizeBytes: 16 << 20 });
      const written = new Map<string, Buffer>();
      // ~3 values of 1000 bytes a 4 KiB leaf: ~700 dirty leaves, several batches of writes.
      const entries = Array.from({ length: 2_000 }, (_, index) => ({ type: 'put' as const, key: `key-${String(index).padStart(5, '0')}`, value: pattern(1_000, index) }));
      for (let first = 0; first < entries.length; first += 250) {
        const batch = entries.slice(first, first + 250);
        await store.batch(batch);
        for (const { key, value } of batch) written.set(key, value);
      }
      assert.ok(store.stats().dirtyPages > 600, `${store.stats().dirtyPages} dirty pages: more than two batches of checkpoint writes`);

      device.failNext('write');
      const failed = await rejectsWithCode(() => store.checkpoint(), 'ERR_STORE_FAILED');
      assertFailedBy(failed, device.injected[0]);
      await rejectsWithCode(() => store.put('later', pattern(10, 5)), 'ERR_STORE_FAILED');
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, []);
      await store.close(); // the failure was reported already

      const reopened = await BlockStore.open('failing', { device: simulated.crash({ keepProbability: 0.5, tornWrites: false }), encoding: 'binary' });
      try {
        for (const [key, value] of written) assert.ok(((await reopened.get(key)) as Buffer).equals(value), key);
        assert.equal(await reopened.has('later'), false);
        await reopened.verifyIntegrity();
      } finally {
        await reopened.close();
      }
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('rejects a write whose page read failed with ERR_STORE_FAILED when a commit ahead of it failed the store meanwhile', async () => {
    // Found by a review: with the device failing reads and writes at once,
    // writes refused for a page read after the store had failed got the
    // read's EIO, as if the store still took writes.
    const simulated = new SimulatedDevice({ sizeBytes: 32 << 20 });
    const made = await BlockStore.open('failing', { device: simulated, encoding: 'binary', create: true, walSizeBytes: 8 << 20 });
    // Enough keys for many leaves, checkpointed: a reopen with no cache reads them.
    for (let start = 0; start < 4_000; start += 500) {
      await made.batch(Array.from({ length: 500 }, (_, i) => ({ type: 'put' as const, key: `key-${String(start + i).padStart(5, '0')}`, value: pattern(200, start + i) })));
    }
    await made.close();
    const device = new HoldingDevice(simulated.crash({ keepProbability: 1, tornWrites: false }));
    const store = await BlockStore.open('failing', { device, encoding: 'binary', cacheSizeBytes: 0 });
    await store.get('key-00000');
    const freeBefore = store.stats().blocksFree;
    const held = device.holdNextDsync();
    const ahead = store.put('key-00000', pattern(10, 1));
    await held;
    // The commit of `ahead` is in flight; the next one reads its page and fails.
    device.failReads = true;
    // With a value of its own blocks, written slowly: they are given back
    // when it is refused, once its data write has settled.
    device.slowWritesMs = 60;
    const settled: string[] = [];
    const behind = store.put('key-03999', pattern(100_000, 2));
    // Queued behind it: it settles after `behind`, which waits for its data
    // write before it is given back (writes settle in queue order: flush()
    // and close() wait for the last one queued).
    const later = store.put('later', pattern(10, 3));
    const track = (name: string, promise: Promise<unknown>): Promise<unknown> => promise.finally(() => settled.push(name));
    const tracked = [track('behind', behind), track('later', later)];
    await new Promise((resolve) => setTimeout(resolve, 20));
    const injected = eio('pwritev');
    device.release(injected);
    const [aheadOutcome, behindOutcome] = await Promise.allSettled([ahead, ...tracked]);
    assert.deepEqual(settled, ['behind', 'later'], 'writes settle in the order they were queued');
    await rejectsWithCode(() => later, 'ERR_STORE_FAILED');
    assert.equal(aheadOutcome.status, 'rejected');
    assert.equal(behindOutcome.status, 'rejected');
    for (const outcome of [aheadOutcome, behindOutcome] as PromiseRejectedResult[]) {
      assert.equal((outcome.reason as StoreError).code, 'ERR_STORE_FAILED', String(outcome.reason));
      assert.equal((outcome.reason as StoreError).cause, injected);
    }
    assert.equal(store.stats().blocksFree, freeBefore, "the refused write's value blocks are free again");
    device.failReads = false;
    await store.close().catch(() => undefined);
  });

  it('rejects close() with ERR_STORE_FAILED when the deferred flush of sync: false failed with no write after it to say so', async () => {
    const simulated = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const device = new FailingDevice(simulated);
    const store = await openOn(device, { create: true, sync: false });
    // The first commit after an open clears the clean-close mark with a
    // superblock write and a flush of its own: the fault is for the one after.
    await store.put('first', pattern(10, 10));
    await store.flush();
    device.failNext('sync');
    await store.put('unflushed', pattern(100, 11)); // resolves once written; its flush fails in the background
    const failed = await rejectsWithCode(() => store.close(), 'ERR_STORE_FAILED');
    assertFailedBy(failed, device.injected[0]);
    assert.equal(device.injected.length, 1);
  });

  it('fails flush(), later writes and close() with ERR_STORE_FAILED when the deferred flush of sync: false fails', async () => {
    const simulated = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const device = new FailingDevice(simulated);
    const store = await openOn(device, { create: true, sync: false });
    await store.put('flushed', pattern(100, 8));
    await store.flush();
    device.failNext('sync');
    await store.put('unflushed', pattern(100, 9)); // resolves once written (sync: false)
    const failed = await rejectsWithCode(() => store.flush(), 'ERR_STORE_FAILED');
    assertFailedBy(failed, device.injected[0]);
    await rejectsWithCode(() => store.put('later', pattern(10, 10)), 'ERR_STORE_FAILED');
    assert.ok(((await store.get('flushed')) as Buffer).equals(pattern(100, 8)));
    assertFailedBy(await rejectsWithCode(() => store.close(), 'ERR_STORE_FAILED'), device.injected[0]);

    const reopened = await openOn(simulated.crash({ keepProbability: 0 }), { create: false });
    try {
      assert.ok(((await reopened.get('flushed')) as Buffer).equals(pattern(100, 8)));
      assert.equal(await reopened.has('later'), false);
    } finally {
      await reopened.close();
    }
  });
});
