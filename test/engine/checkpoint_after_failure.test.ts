// A failed store writes nothing more: a checkpoint whose pages were being
// written when the store failed (here: the fdatasync of a sync: false flush)
// does not write the superblock that would name them, and a checkpoint asked
// for after the failure does not start. (Found by a review: a checkpoint ran
// on a sync: false store after its fdatasync had failed, and its free set
// kept the blocks of an earlier failed checkpoint as used: after a crash and
// reopen, 2 blocks were leaked and verifyIntegrity reported ERR_STORE_CORRUPT.)
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import type { IoPhase } from '../../engine/block_device.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreError } from '../../engine/store_error.js';
import { pattern } from './helpers.js';

/** Holds the checkpoint's page writes while `holdingCheckpoint`; fails the next fdatasync once armed; counts superblock writes. */
class FailingDevice extends SimulatedDevice {
  #phase: IoPhase | undefined;
  holdingCheckpoint = false;
  readonly held: (() => void)[] = [];
  failNextSync = false;
  superblockWrites = 0;

  mark(phase: IoPhase): void {
    this.#phase = phase;
  }

  override async write(position: number, buffers: Uint8Array[]): Promise<void> {
    const phase = this.#phase;
    if (phase === 'superblock') this.superblockWrites++;
    if (phase === 'checkpoint' && this.holdingCheckpoint) await new Promise<void>((resolve) => this.held.push(resolve));
    return super.write(position, buffers);
  }

  override sync(): Promise<void> {
    if (this.failNextSync) {
      this.failNextSync = false;
      return Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { errno: -5, code: 'EIO', syscall: 'fdatasync' }));
    }
    return super.sync();
  }
}

const failedStore = (error: unknown): boolean => error instanceof StoreError && error.code === 'ERR_STORE_FAILED';

describe('checkpoints after the store failed', () => {
  it('a checkpoint the store failed under while it wrote its pages writes no superblock, and no later one starts', async () => {
    const device = new FailingDevice({ sizeBytes: 16 << 20 });
    const store = await BlockStore.open('failing', { device, create: true, encoding: 'binary', sync: false });
    for (let i = 0; i < 200; i++) await store.put(`key-${i}`, pattern(100, i));
    device.holdingCheckpoint = true;
    const checkpoint = store.checkpoint();
    checkpoint.catch(() => undefined);
    for (let waited = 0; device.held.length === 0 && waited < 10_000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(device.held.length > 0, "the checkpoint's page writes are held");
    // The store fails while the checkpoint's pages are being written.
    await store.put('later', pattern(100, 999));
    device.failNextSync = true;
    await assert.rejects(store.flush(), failedStore);
    const superblockWritesAtFailure = device.superblockWrites;
    device.holdingCheckpoint = false;
    for (const release of device.held.splice(0)) release();
    await assert.rejects(checkpoint, failedStore);
    assert.equal(device.superblockWrites, superblockWritesAtFailure, 'a superblock was written after the store failed');
    await assert.rejects(store.checkpoint(), failedStore);
    assert.equal(device.superblockWrites, superblockWritesAtFailure);
    await store.close().catch(() => undefined);
    assert.equal(device.superblockWrites, superblockWritesAtFailure, 'close() wrote a superblock after the failure');
  });
  it('sends no fdatasync after one failed: a later flush() and the deferred flush are refused without one', async () => {
    const device = new FailingDevice({ sizeBytes: 16 << 20 });
    const store = await BlockStore.open('no-flush-after-failure', { device, create: true, encoding: 'binary', sync: false });
    await store.put('a', pattern(100, 1));
    device.failNextSync = true;
    await assert.rejects(store.flush(), failedStore);
    let syncs = 0;
    const sync = device.sync.bind(device);
    device.sync = () => {
      syncs++;
      return sync();
    };
    await store.put('b', pattern(100, 2)).catch(() => undefined);
    await assert.rejects(store.flush(), failedStore);
    // Past the deferred flush of a sync: false store (SYNC_DEFER_MS).
    await new Promise((resolve) => setTimeout(resolve, 250));
    await assert.rejects(store.close(), failedStore);
    assert.equal(syncs, 0, 'an fdatasync followed the failed one');
  });
});
