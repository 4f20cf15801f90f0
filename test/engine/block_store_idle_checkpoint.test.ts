// The idle checkpoint (engine/idle_checkpoint.ts): a store that takes no
// commit for idleCheckpointMs writes a checkpoint of what its writes dirtied
// when that is enough to matter (CheckpointPolicy.idleDue), so a close() or
// an open after a crash has little to write or replay; commits keep
// postponing it; it never runs with idleCheckpointMs 0, on a read-only
// store, on a failed or closing store, or under a device that orders
// deferred work itself (the crash lab's).
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { IDLE_CHECKPOINT_DIRTY_PAGES_MIN } from '../../engine/checkpoint_policy.js';
import { IDLE_CHECKPOINT_MS_MAX } from '../../engine/idle_checkpoint.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { type BlockStoreOptions } from '../../engine/store_options.js';
import { rejectsWith, rejectsWithCode, seededRandom } from './helpers.js';

const DEVICE_BYTES = 16 << 20;
const WAL_BYTES = 8 << 20;
/** Short, so the tests are quick; the waits below are many times it. */
const IDLE_MS = 40;
/** How long a test waits for an idle checkpoint that must come before it fails. */
const ARRIVAL_WAIT_MS = 5_000;
/** How long a test waits to see that no idle checkpoint comes: many delays. */
const ABSENCE_WAIT_MS = 12 * IDLE_MS;
/** The delay of the test of commits postponing it. */
const POSTPONED_IDLE_MS = 300;
/** Keys of 100-byte values enough to dirty well over IDLE_CHECKPOINT_DIRTY_PAGES_MIN pages of 4 KiB (about 35 a leaf: ~140 leaves). */
const MANY_KEYS = 5_000;
const SEED = 20261206;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function openOn(device: SimulatedDevice, options: BlockStoreOptions = {}): Promise<BlockStore<string>> {
  // A WAL and a cache large enough that the loads below start no checkpoint of their own.
  return BlockStore.open<string>('idle', { device, create: true, blockSize: 4096, walSizeBytes: WAL_BYTES, encoding: 'string', idleCheckpointMs: IDLE_MS, ...options });
}

/** `count` puts of 100-byte values under random keys, in batches of 1 000. */
async function putMany(store: BlockStore<string>, count: number, random: () => number): Promise<string[]> {
  const keys: string[] = [];
  for (let done = 0; done < count; ) {
    const batch = [];
    for (let index = 0; index < 1000 && done < count; index++, done++) {
      const key = `k${Math.floor(random() * 2 ** 40).toString(36)}-${done}`;
      keys.push(key);
      batch.push({ type: 'put' as const, key, value: `v${done}`.padEnd(100, '.') });
    }
    await store.batch(batch);
  }
  return keys;
}

/** A device crashed after MANY_KEYS puts on a store that never checkpoints when idle: its WAL holds a tail. */
async function crashedAfterPuts(seed: number): Promise<SimulatedDevice> {
  const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 });
  const store = await openOn(device, { idleCheckpointMs: 0 });
  await putMany(store, MANY_KEYS, seededRandom(seed));
  const crashed = device.crash({ random: seededRandom(SEED) });
  await store.close().catch(() => undefined);
  return crashed;
}

/** Resolves once stats().checkpoints exceeds `count`; fails after ARRIVAL_WAIT_MS. */
async function checkpointsPast(store: BlockStore<string>, count: number): Promise<void> {
  const deadline = performance.now() + ARRIVAL_WAIT_MS;
  while (store.stats().checkpoints <= count) {
    assert.ok(performance.now() < deadline, `no idle checkpoint within ${ARRIVAL_WAIT_MS} ms (still ${store.stats().checkpoints})`);
    await sleep(5);
  }
  // Then until it has ended (the count moves when it is durable, but its trims may follow).
  await store.whenRecovered();
}

describe('BlockStore idle checkpoints', () => {
  it('writes a checkpoint once no commit came for idleCheckpointMs: the WAL is covered, and a crash then replays nothing', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 });
    const store = await openOn(device);
    const keys = await putMany(store, MANY_KEYS, seededRandom(SEED));
    const before = store.stats();
    assert.ok(before.walFill > 0, 'the load left commits in the WAL');
    assert.equal(before.checkpoints, 0, 'the load started no checkpoint of its own');
    await checkpointsPast(store, before.checkpoints);
    const after = store.stats();
    assert.equal(after.walFill, 0, 'every commit is in the checkpoint');
    // A crash now: the open reads the checkpoint and has no WAL tail to replay.
    const crashed = device.crash({ random: seededRandom(SEED) });
    await store.close().catch(() => undefined);
    const reopened = await BlockStore.open<string>('idle', { device: crashed, encoding: 'string' });
    try {
      assert.equal(reopened.stats().tailCommitsToReplay, 0);
      assert.equal(await reopened.count(), MANY_KEYS);
      assert.equal(await reopened.get(keys[0]!), 'v0'.padEnd(100, '.'));
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('is postponed by every commit within the delay, and comes after the last', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 });
    // A longer delay here, so that a stall of the event loop (a collection
    // on a loaded machine) does not pass for a pause of the writes.
    const store = await openOn(device, { idleCheckpointMs: POSTPONED_IDLE_MS });
    try {
      await putMany(store, MANY_KEYS, seededRandom(SEED + 1));
      assert.equal(store.stats().checkpoints, 0, 'the load started no checkpoint of its own');
      // A put every sixth of the delay for four delays: never a whole delay
      // without a commit (timers may run late, never early).
      for (let index = 0; index < 24; index++) {
        await store.put(`trickle-${index}`, 'x');
        await sleep(POSTPONED_IDLE_MS / 6);
      }
      assert.equal(store.stats().checkpoints, 0, 'no idle checkpoint while commits come');
      await checkpointsPast(store, 0);
      assert.equal(store.stats().walFill, 0);
    } finally {
      await store.close();
    }
  });

  it(`writes none for fewer than IDLE_CHECKPOINT_DIRTY_PAGES_MIN (${IDLE_CHECKPOINT_DIRTY_PAGES_MIN}) dirty pages and a nearly empty WAL, none with idleCheckpointMs 0`, async () => {
    for (const [idleCheckpointMs, count] of [
      [IDLE_MS, 20],
      [0, MANY_KEYS],
    ] as const) {
      const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 });
      const store = await openOn(device, { idleCheckpointMs });
      try {
        await putMany(store, count, seededRandom(SEED + 2));
        const before = store.stats();
        const writes = device.counts.writes;
        await sleep(ABSENCE_WAIT_MS);
        assert.equal(store.stats().checkpoints, before.checkpoints, `idleCheckpointMs ${idleCheckpointMs}, ${count} keys`);
        assert.equal(device.counts.writes, writes, 'no IO while idle');
      } finally {
        await store.close();
      }
    }
  });

  it('writes nothing on a read-only store that replayed a WAL tail into memory', async () => {
    const image = (await crashedAfterPuts(SEED + 3)).snapshot();
    const readDevice = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 }, image);
    const reader = await BlockStore.open<string>('idle', { device: readDevice, readOnly: true, encoding: 'string', idleCheckpointMs: IDLE_MS });
    try {
      await reader.whenRecovered();
      assert.equal(await reader.count(), MANY_KEYS);
      await sleep(ABSENCE_WAIT_MS);
      assert.deepEqual({ writes: readDevice.counts.writes, syncs: readDevice.counts.syncs }, { writes: 0, syncs: 0 });
    } finally {
      await reader.close();
    }
  });

  it('checkpoints the WAL tail a writer replayed at open once it is idle', async () => {
    const crashed = await crashedAfterPuts(SEED + 4);
    const reopened = await BlockStore.open<string>('idle', { device: crashed, encoding: 'string', idleCheckpointMs: IDLE_MS });
    try {
      assert.ok(reopened.stats().tailCommitsToReplay > 0, 'the crash left a tail');
      await reopened.whenRecovered();
      const checkpoints = reopened.stats().checkpoints;
      await checkpointsPast(reopened, checkpoints);
      assert.equal(reopened.stats().walFill, 0);
      assert.equal(await reopened.count(), MANY_KEYS);
    } finally {
      await reopened.close();
    }
  });

  it('stops at close(): no IO after it, whether it came while idle or during the idle checkpoint', async () => {
    for (const closeAfterMs of [0, IDLE_MS + 5]) {
      const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 });
      const store = await openOn(device);
      await putMany(store, MANY_KEYS, seededRandom(SEED + 5));
      await sleep(closeAfterMs);
      await store.close();
      const counts = { ...device.counts };
      await sleep(ABSENCE_WAIT_MS);
      assert.deepEqual(device.counts, counts, `close after ${closeAfterMs} ms`);
      const reopened = await BlockStore.open<string>('idle', { device: device.crash({ random: seededRandom(SEED) }), encoding: 'string' });
      try {
        assert.equal(reopened.stats().tailCommitsToReplay, 0, 'a clean close');
        assert.equal(await reopened.count(), MANY_KEYS);
      } finally {
        await reopened.close();
      }
    }
  });

  it('writes nothing after the store failed', async () => {
    class FailingSyncDevice extends SimulatedDevice {
      failSyncs = false;
      override async writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
        if (this.failSyncs) throw Object.assign(new Error('EIO: injected'), { code: 'EIO', errno: -5, syscall: 'fdatasync' });
        return super.writeDsync(position, buffers);
      }
    }
    const device = new FailingSyncDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 });
    const store = await openOn(device, { idleCheckpointMs: IDLE_MS });
    try {
      await putMany(store, MANY_KEYS, seededRandom(SEED + 6));
      device.failSyncs = true;
      await rejectsWithCode(() => store.put('fails', 'x'), 'ERR_STORE_FAILED');
      const counts = { ...device.counts };
      await sleep(ABSENCE_WAIT_MS);
      assert.deepEqual(device.counts, counts);
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  it('never arms under a device that orders deferred work itself (the crash lab)', async () => {
    class DeferringDevice extends SimulatedDevice {
      deferTask(task: () => void): () => void {
        void task;
        return () => undefined;
      }
    }
    const device = new DeferringDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 });
    const store = await openOn(device);
    try {
      await putMany(store, MANY_KEYS, seededRandom(SEED + 7));
      const checkpoints = store.stats().checkpoints;
      await sleep(ABSENCE_WAIT_MS);
      assert.equal(store.stats().checkpoints, checkpoints);
    } finally {
      await store.close();
    }
  });

  it('refuses an idleCheckpointMs that is not an integer from 0 to IDLE_CHECKPOINT_MS_MAX', async () => {
    for (const idleCheckpointMs of [-1, 1.5, Number.NaN, Infinity, IDLE_CHECKPOINT_MS_MAX + 1, '100', null, true]) {
      const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 });
      const error = await rejectsWith(() => openOn(device, { idleCheckpointMs: idleCheckpointMs as number }), Error, 'ERR_INVALID_ARG');
      assert.match(error.message, /idleCheckpointMs/, String(idleCheckpointMs));
      assert.equal(device.counts.writes, 0, 'refused before anything is written');
    }
    const store = await openOn(new SimulatedDevice({ sizeBytes: DEVICE_BYTES, ioAlignment: 4096 }), { idleCheckpointMs: IDLE_CHECKPOINT_MS_MAX });
    await store.close();
  });
});
