// Review of the paced checkpoint (checkpointer.ts: the next batch of pages
// is encoded while the previous one is written; journal.ts: commits wait
// for checkpointer.progressed()). Every way a checkpoint ends — a page
// write that fails while commits wait on its progress, an encoder that
// throws half-way — must wake the waiting commits (they settle, rejected
// with ERR_STORE_FAILED or acknowledged), leave no unhandled rejection, and
// lose nothing acknowledged.
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreError } from '../../engine/store_error.js';
import { TreePages } from '../../engine/tree_pages.js';
import { pattern } from './helpers.js';

const DEVICE_BYTES = 256 << 20;
/** The smallest dirty budget (256 pages): commits outrun checkpoints quickly. */
const CACHE_BYTES = 1 << 20;
const BATCH_KEYS = 200;
const WRITES_IN_FLIGHT = 4;
/** How long every outstanding write may take to settle after the failure before the test calls it a hang. */
const SETTLE_MS_MAX = 30_000;

function keyOf(index: number): string {
  return `key-${((index * 2654435761) >>> 0).toString(16).padStart(8, '0')}`;
}

/** `inner`, with its `write` replaced by `write` (private fields stay on `inner`). */
function withWrite(inner: SimulatedDevice, write: (position: number, buffers: Uint8Array[]) => Promise<void>): BlockDevice {
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'write') return write;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as unknown as BlockDevice;
}

function eio(): Error {
  return Object.assign(new Error('EIO: i/o error, pwritev'), { errno: -5, code: 'EIO', syscall: 'pwritev' });
}

/**
 * Runs a writer that keeps WRITES_IN_FLIGHT batches queued until `failed()`
 * says the store failed, then waits (bounded) for every batch to settle.
 * Returns the acknowledged keys and whether every batch settled.
 */
async function loadUntilFailure(store: BlockStore, failed: () => boolean): Promise<{ acknowledged: string[]; settled: boolean; rejectedCodes: Set<string> }> {
  const value = pattern(200, 1);
  const acknowledged: string[] = [];
  const rejectedCodes = new Set<string>();
  const outstanding = new Set<Promise<void>>();
  let key = 0;
  for (let batch = 0; batch < 2_000 && !failed(); batch++) {
    const keys: string[] = [];
    const operations = [];
    for (let i = 0; i < BATCH_KEYS; i++, key++) {
      keys.push(keyOf(key));
      operations.push({ type: 'put' as const, key: keyOf(key), value });
    }
    const write: Promise<void> = store.batch(operations).then(
      () => {
        outstanding.delete(write);
        acknowledged.push(...keys);
      },
      (error: unknown) => {
        outstanding.delete(write);
        rejectedCodes.add(error instanceof StoreError ? error.code : String(error));
      },
    );
    outstanding.add(write);
    if (outstanding.size >= WRITES_IN_FLIGHT) await Promise.race(outstanding);
  }
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    Promise.all(outstanding).then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), SETTLE_MS_MAX))),
  ]);
  clearTimeout(timer);
  return { acknowledged, settled, rejectedCodes };
}

type LoadOutcome = Awaited<ReturnType<typeof loadUntilFailure>>;

/**
 * After the failed checkpoint: every write settled, each rejection
 * ERR_STORE_FAILED, no unhandled rejection; the store closes; after a crash
 * every acknowledged key is there and the store is whole.
 */
async function assertFailedAndRecovered(outcome: LoadOutcome, unhandled: readonly unknown[], store: BlockStore, simulated: SimulatedDevice, name: string): Promise<void> {
  assert.ok(outcome.settled, `writes still outstanding ${SETTLE_MS_MAX} ms after the checkpoint failed: a commit waits forever on progressed()`);
  for (const code of outcome.rejectedCodes) assert.equal(code, 'ERR_STORE_FAILED');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(unhandled, []);
  await store.close().catch(() => undefined);
  const reopened = await BlockStore.open(name, { device: simulated.crash({ keepProbability: 0.5, tornWrites: false }), encoding: 'binary' });
  try {
    for (const key of outcome.acknowledged) assert.ok(await reopened.has(key), key);
    await reopened.verifyIntegrity();
  } finally {
    await reopened.close();
  }
}

describe('Checkpointer pacing when a checkpoint fails', function () {
  this.timeout(300_000);

  let unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  beforeEach(() => {
    unhandled = [];
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  it('wakes the commits waiting on its progress when a page write fails, and they reject with ERR_STORE_FAILED', async () => {
    const simulated = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    let store: BlockStore | undefined;
    let armed = false;
    let injected = 0;
    // Armed once commits have waited on a checkpoint's progress: the next
    // write of more than one buffer (a run of checkpoint pages) fails.
    const device = withWrite(simulated, (position, buffers) => {
      if (armed && buffers.length > 1 && injected === 0) {
        injected++;
        return Promise.reject(eio());
      }
      return simulated.write(position, buffers);
    });
    store = await BlockStore.open('pacing-fail', { device, create: true, walSizeBytes: 64 << 20, cacheSizeBytes: CACHE_BYTES, encoding: 'binary' });
    const opened = store;
    const poll = setInterval(() => {
      try {
        if (opened.stats().checkpointWaits > 0) armed = true;
      } catch {
        // Closed or failed: nothing left to arm.
      }
    }, 1);
    let failedNow = false;
    try {
      const outcome = await loadUntilFailure(opened, () => {
        if (injected > 0) failedNow = true;
        return failedNow;
      });
      assert.equal(injected, 1, 'no checkpoint page write was failed: the load never waited on a checkpoint');
      clearInterval(poll);
      await assertFailedAndRecovered(outcome, unhandled, opened, simulated, 'pacing-fail');
      store = undefined;
    } finally {
      clearInterval(poll);
      await store?.close().catch(() => undefined);
    }
  });

  it('wakes the commits waiting on its progress when encoding a page throws half-way, with a batch of writes out', async () => {
    const simulated = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open('pacing-encode', { device: simulated, create: true, walSizeBytes: 64 << 20, cacheSizeBytes: CACHE_BYTES, encoding: 'binary' });
    const original = TreePages.prototype.encodeLeaf;
    let armed = false;
    let encodedSinceArmed = 0;
    let thrown = 0;
    // Past the first batch (256 pages) of a checkpoint that started after
    // commits waited: that batch is being written while this one is encoded.
    TreePages.prototype.encodeLeaf = function (this: TreePages, ...args: Parameters<typeof original>): number {
      if (armed && thrown === 0 && ++encodedSinceArmed > 300) {
        thrown++;
        throw new Error('review: an encoder bug');
      }
      return original.apply(this, args);
    };
    const poll = setInterval(() => {
      try {
        if (store.stats().checkpointWaits > 0) armed = true;
      } catch {
        // Closed or failed: nothing left to arm.
      }
    }, 1);
    try {
      const outcome = await loadUntilFailure(store, () => thrown > 0);
      assert.equal(thrown, 1, 'the encoder never threw: no checkpoint of more than 300 leaves ran');
      clearInterval(poll);
      await assertFailedAndRecovered(outcome, unhandled, store, simulated, 'pacing-encode');
    } finally {
      clearInterval(poll);
      TreePages.prototype.encodeLeaf = original;
      await store.close().catch(() => undefined);
    }
  });
});
