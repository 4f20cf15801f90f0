// A flush that succeeds while an earlier one fails vouches for nothing
// (FlushLedger, behind ClosedDeviceGuard): the failed one may have lost
// writes that completed before both, and the later one had nothing left of
// them to flush. A put of an extent value whose commit flush was issued
// while a checkpoint's fdatasync was in flight, and that fdatasync fails,
// is not acknowledged; a checkpoint whose fdatasync was issued while a
// commit's RWF_DSYNC write was in flight, and that write fails, writes no
// superblock. So is a commit of inline records (one RWF_DSYNC write): on a
// device without FUA its bytes go through the device's cache too.
import assert from 'node:assert/strict';

import type { IoPhase } from '../../engine/block_device.js';
import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreError } from '../../engine/store_error.js';

const DEVICE_BYTES = 16 << 20;
const KEY_COUNT = 2_000;
/** A value stored in extents (over half a 4 KiB block). */
const EXTENT_VALUE_BYTES = 8_192;

function eio(syscall: string): Error {
  return Object.assign(new Error(`EIO: i/o error, ${syscall}`), { errno: -5, code: 'EIO', syscall });
}

/** An operation held until the test lets it end. */
interface Hold {
  readonly reached: Promise<void>;
  release(): void;
}

/** What a FailingFlushDevice can hold: a flush (failed once released) or a checkpoint page write (let through). */
type Held = 'sync' | 'writeDsync' | 'checkpointWrite';

/**
 * Holds the next sync(), writeDsync() or checkpoint page write when armed,
 * until released; then fails a flush with EIO (a failed flush makes nothing
 * durable: the operation never reaches the simulated device) and lets the
 * page write through. Counts superblock writes.
 */
class FailingFlushDevice extends SimulatedDevice {
  #phase: IoPhase | undefined;
  superblockWrites = 0;
  readonly #armed = new Map<Held, { readonly reached: () => void; readonly released: Promise<void> }>();

  /** Holds the next `operation` until released. */
  holdNext(operation: Held): Hold {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.#armed.set(operation, { reached, released });
    return { reached: reachedPromise, release };
  }

  mark(phase: IoPhase): void {
    this.#phase = phase;
  }

  /** Waits for the release of `operation` if it is armed; whether it was. */
  async #held(operation: Held): Promise<boolean> {
    const armed = this.#armed.get(operation);
    if (armed === undefined) return false;
    this.#armed.delete(operation);
    armed.reached();
    await armed.released;
    return true;
  }

  override async write(position: number, buffers: Uint8Array[]): Promise<void> {
    if (this.#phase === 'superblock') this.superblockWrites++;
    if (this.#phase === 'checkpoint') await this.#held('checkpointWrite');
    return super.write(position, buffers);
  }

  override async writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    if (await this.#held('writeDsync')) throw eio('pwritev2');
    return super.writeDsync(position, buffers);
  }

  override async sync(): Promise<void> {
    if (await this.#held('sync')) throw eio('fdatasync');
    return super.sync();
  }
}

async function openLoaded(device: FailingFlushDevice): Promise<BlockStore<string>> {
  const store = await BlockStore.open<string>('flushes', { device, create: true, blockSize: 4096, encoding: 'string', idleCheckpointMs: 0 });
  const batch = [];
  for (let i = 0; i < KEY_COUNT; i++) batch.push({ type: 'put' as const, key: `key-${String(i).padStart(6, '0')}`, value: 'v'.repeat(100) });
  await store.batch(batch);
  return store;
}

/** Waits (in event-loop turns, up to a generous deadline) until `condition` holds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`waited 10 s for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** What `promise` has come to after a few more event-loop turns. */
async function outcomeNow(promise: Promise<unknown>): Promise<'pending' | 'resolved' | { rejected: unknown }> {
  let state: 'pending' | 'resolved' | { rejected: unknown } = 'pending';
  promise.then(
    () => (state = 'resolved'),
    (error: unknown) => (state = { rejected: error }),
  );
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  return state;
}

describe('flushes beside a failing flush', () => {
  const puts = [
    // Its data written, then the WAL write linked to an fdatasync that vouches for that data.
    { what: 'an extent value', value: 'x'.repeat(EXTENT_VALUE_BYTES) },
    { what: 'inline records (one RWF_DSYNC write)', value: 'small' },
  ];
  for (const { what, value } of puts) {
    it(`does not acknowledge a put of ${what} whose commit flush succeeded while a checkpoint fdatasync before it failed`, async () => {
      const device = new FailingFlushDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 });
      const store = await openLoaded(device);
      const held = device.holdNext('sync');
      try {
        const checkpoint = store.checkpoint();
        checkpoint.catch(() => undefined);
        await held.reached;
        const syncsBefore = device.counts.syncs;
        const put = store.put('late', value);
        put.catch(() => undefined);
        await until(() => device.counts.syncs === syncsBefore + 1, "the put's own flush");
        assert.equal(await outcomeNow(put), 'pending', 'not acknowledged while the flush before it may fail');
        held.release();
        const putError = await put.then(
          () => assert.fail('the put resolved after the flush before it failed'),
          (error: unknown) => error,
        );
        assert.ok(putError instanceof StoreError && putError.code === 'ERR_STORE_FAILED', String(putError));
        assert.equal((putError.cause as { code?: string }).code, 'EIO');
        await assert.rejects(checkpoint);
        assert.equal(store.failure?.code, 'ERR_STORE_FAILED');
        assert.equal(await store.get('late'), undefined, 'never applied');
      } finally {
        held.release();
        await store.close().catch(() => undefined);
      }
    });
  }

  it('writes no superblock for a checkpoint whose fdatasync succeeded while an earlier commit write failed', async () => {
    const device = new FailingFlushDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 });
    const store = await openLoaded(device);
    const pageWrite = device.holdNext('checkpointWrite');
    const commitWrite = device.holdNext('writeDsync');
    try {
      const checkpoint = store.checkpoint();
      checkpoint.catch(() => undefined);
      await pageWrite.reached;
      const put = store.put('late', 'its write fails');
      put.catch(() => undefined);
      await commitWrite.reached;
      const superblocksBefore = device.superblockWrites;
      const syncsBefore = device.counts.syncs;
      // The checkpoint's pages are written, its fdatasync issued after the commit's write and completed.
      pageWrite.release();
      await until(() => device.counts.syncs === syncsBefore + 1, "the checkpoint's fdatasync");
      assert.equal(await outcomeNow(checkpoint), 'pending', 'the checkpoint waits on the earlier flush');
      assert.equal(device.superblockWrites, superblocksBefore, 'no superblock while the earlier flush may fail');
      commitWrite.release();
      await assert.rejects(put, (error: unknown) => error instanceof StoreError && error.code === 'ERR_STORE_FAILED');
      await assert.rejects(checkpoint);
      assert.equal(device.superblockWrites, superblocksBefore, 'no superblock names pages a failing flush may have lost');
      assert.equal(store.failure?.code, 'ERR_STORE_FAILED');
    } finally {
      pageWrite.release();
      commitWrite.release();
      await store.close().catch(() => undefined);
    }
  });
});
