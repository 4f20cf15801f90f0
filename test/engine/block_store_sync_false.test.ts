// BlockStore with sync: false: writes resolve once written, before their
// fdatasync; flush() makes everything accepted so far durable. On a real
// file the writes survive close and reopen; on the simulated device a power
// loss right after flush() keeps them all, and one before it loses whole
// commits only — never part of a value.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { makeStoreDir, newestSuperblock, openSmallStore, pattern, removeStoreDir } from './helpers.js';

const DEVICE_BYTES = 8 << 20;

/** A simulated device whose commit writes (a WAL frame written and made durable at once, as a flush's marker commit) complete `delayMs` late. */
class SlowCommitWrites extends SimulatedDevice {
  constructor(
    sizeBytes: number,
    private readonly delayMs: number,
  ) {
    super({ sizeBytes });
  }

  override async writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return super.writeDsync(position, buffers);
  }

  override async writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return super.writeAndSync(position, buffers);
  }
}

/**
 * A simulated device that holds the journal's deferred fdatasync task
 * (BlockDevice.deferTask) and runs it at the first write after `closing` is
 * set — inside close()'s checkpoint — with that fdatasync slowed; it
 * records how many operations were in flight when the device was closed.
 */
class DeferredSyncInClose extends SimulatedDevice {
  closing = false;
  inFlightAtClose = -1;
  #task: (() => void) | undefined;
  #slowSync = false;
  #inFlight = 0;

  deferTask(task: () => void): () => void {
    this.#task = task;
    return () => {
      if (this.#task === task) this.#task = undefined;
    };
  }

  override write(position: number, buffers: Uint8Array[]): Promise<void> {
    const task = this.#task;
    if (this.closing && task !== undefined) {
      this.#task = undefined;
      // The task calls sync() synchronously.
      this.#slowSync = true;
      task();
      this.#slowSync = false;
    }
    return this.#track(super.write(position, buffers));
  }

  override sync(): Promise<void> {
    if (!this.#slowSync) return this.#track(super.sync());
    return this.#track(new Promise<void>((resolve) => setTimeout(resolve, 30)).then(() => super.sync()));
  }

  override close(): Promise<void> {
    this.inFlightAtClose = this.#inFlight;
    return super.close();
  }

  async #track(operation: Promise<void>): Promise<void> {
    this.#inFlight++;
    try {
      await operation;
    } finally {
      this.#inFlight--;
    }
  }
}

/** A simulated device whose fdatasyncs take `delayMs`; it records the most that were in flight at once. */
class SlowSyncs extends SimulatedDevice {
  syncsInFlightMax = 0;
  syncs = 0;
  #syncsInFlight = 0;

  constructor(
    sizeBytes: number,
    private readonly delayMs: number,
  ) {
    super({ sizeBytes });
  }

  override async sync(): Promise<void> {
    this.syncs++;
    this.syncsInFlightMax = Math.max(this.syncsInFlightMax, ++this.#syncsInFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      await super.sync();
    } finally {
      this.#syncsInFlight--;
    }
  }
}

function simulatedStore(device: SimulatedDevice, create: boolean): Promise<BlockStore> {
  return BlockStore.open('simulated', { device, create, sync: false, encoding: 'binary' });
}

describe('BlockStore with sync: false on a real file', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeStoreDir();
  });

  after(() => {
    removeStoreDir(dir);
  });

  it('resolves writes, makes them durable with flush(), and keeps them across a reopen', async () => {
    const path = `${dir}/store`;
    const valueOf = (i: number): Buffer => pattern(i % 3 === 0 ? 9000 : 50, i);
    const store = await openSmallStore(path, { sync: false, encoding: 'binary' });
    try {
      await Promise.all(Array.from({ length: 100 }, (_, i) => store.put(`k${i}`, valueOf(i))));
      await store.delete('k1');
      await store.flush();
      for (let i = 0; i < 100; i++) {
        const value = (await store.get(`k${i}`)) as Buffer | undefined;
        if (i === 1) assert.equal(value, undefined);
        else assert.ok(value?.equals(valueOf(i)), `k${i}`);
      }
    } finally {
      await store.close();
    }
    const reopened = await BlockStore.open(path, { encoding: 'binary' });
    try {
      assert.equal((await reopened.verifyIntegrity()).keys, 99);
      for (const i of [0, 2, 98, 99]) assert.ok(((await reopened.get(`k${i}`)) as Buffer).equals(valueOf(i)), `k${i}`);
      assert.equal(await reopened.has('k1'), false);
    } finally {
      await reopened.close();
    }
  });
});

describe('BlockStore#flush() with sync: false on the simulated device', () => {
  it('makes every resolved write survive a power loss that keeps nothing unflushed', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await simulatedStore(device, true);
    for (let i = 0; i < 20; i++) await store.put(`k${i}`, pattern(i % 2 === 0 ? 5000 : 40, i));
    await store.put('k0', pattern(6000, 100)); // an overwrite: the old blocks are freed only once durable
    await store.delete('k3');
    await store.flush();
    const after = device.crash({ keepProbability: 0 });
    await store.close().catch(() => undefined);
    const reopened = await simulatedStore(after, false);
    try {
      assert.ok(((await reopened.get('k0')) as Buffer).equals(pattern(6000, 100)));
      assert.equal(await reopened.has('k3'), false);
      for (let i = 1; i < 20; i++) {
        if (i === 3) continue;
        assert.ok(((await reopened.get(`k${i}`)) as Buffer).equals(pattern(i % 2 === 0 ? 5000 : 40, i)), `k${i}`);
      }
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('covers a write stream ended before it: the streamed value survives a power loss right after flush() (found by a review)', async () => {
    // The stream's last chunk and its commit are still on their way when
    // flush() is called; it used to resolve without them (20 of 20 lost).
    for (let round = 0; round < 5; round++) {
      const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
      const store = await simulatedStore(device, true);
      const stream = store.createWriteStream('streamed');
      const finished = new Promise<void>((resolve, reject) => {
        stream.on('finish', resolve);
        stream.on('error', reject);
      });
      stream.end(pattern(round === 0 ? 100 : 30_000 * round, round));
      await store.flush();
      const after = device.crash({ keepProbability: 0 });
      await finished;
      await store.close().catch(() => undefined);
      const reopened = await simulatedStore(after, false);
      try {
        const value = (await reopened.get('streamed')) as Buffer | undefined;
        assert.ok(value?.equals(pattern(round === 0 ? 100 : 30_000 * round, round)), `round ${round}: the streamed value is durable`);
      } finally {
        await reopened.close();
      }
    }
  });

  it('loses at most the unflushed writes, each whole or not at all, when the power fails before flush()', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
      const store = await simulatedStore(device, true);
      await store.put('flushed', pattern(7000, seed));
      await store.flush();
      const unflushed = Array.from({ length: 10 }, (_, i) => pattern(i % 2 === 0 ? 6000 : 30, seed * 100 + i));
      for (const [i, value] of unflushed.entries()) await store.put(`unflushed-${i}`, value);
      let state = seed;
      const after = device.crash({
        tornWrites: true,
        random: () => {
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          return (state >>> 0) / 0x1_0000_0000;
        },
      });
      await store.close().catch(() => undefined);
      const reopened = await simulatedStore(after, false);
      try {
        assert.ok(((await reopened.get('flushed')) as Buffer).equals(pattern(7000, seed)), `seed ${seed}: a flushed write was lost`);
        let present = 0;
        for (const [i, value] of unflushed.entries()) {
          const got = (await reopened.get(`unflushed-${i}`)) as Buffer | undefined;
          if (got === undefined) continue;
          present++;
          assert.ok(got.equals(value), `seed ${seed}: unflushed-${i} came back with other bytes`);
        }
        // Commits are replayed in order: the survivors are a prefix.
        for (let i = 0; i < present; i++) assert.equal(await reopened.has(`unflushed-${i}`), true, `seed ${seed}: survivors are not a prefix`);
        await reopened.verifyIntegrity();
      } finally {
        await reopened.close();
      }
    }
  });

  it('finishes a flush() called just before close() first: its marker commit is written before the checkpoint, and close() resolves after it (found by a review)', async () => {
    for (const delayMs of [0, 5, 20]) {
      const device = new SlowCommitWrites(DEVICE_BYTES, delayMs);
      const store = await simulatedStore(device, true);
      for (let i = 0; i < 5; i++) await store.put(`k${i}`, pattern(40, i));
      const order: string[] = [];
      // Neither awaited before the other is called: flush()'s marker commit
      // is enqueued only after its fdatasync, once close() is under way.
      const flushed = store.flush().then(() => order.push('flush'));
      const closed = store.close().then(() => order.push('close'));
      // The simulated device refuses IO after close: a marker written then fails the flush.
      await Promise.all([flushed, closed]);
      assert.deepEqual(order, ['flush', 'close'], `delay ${delayMs} ms`);
      // The newest superblock is clean only if no commit is after its checkpoint.
      assert.equal(newestSuperblock(device, 4096).clean, true, `delay ${delayMs} ms`);
      const image = device.snapshot();
      const reopened = await simulatedStore(new SimulatedDevice({ sizeBytes: image.length }, image), false);
      try {
        for (let i = 0; i < 5; i++) assert.ok(((await reopened.get(`k${i}`)) as Buffer).equals(pattern(40, i)), `delay ${delayMs} ms: k${i}`);
        await reopened.verifyIntegrity();
      } finally {
        await reopened.close();
      }
    }
  });

  it('runs one fdatasync at a time: flush() calls that waited for the same one start one more between them, not one each', async () => {
    const device = new SlowSyncs(DEVICE_BYTES, 20);
    const store = await simulatedStore(device, true);
    await store.put('a', pattern(40, 1));
    // Its fdatasync runs; a commit applies meanwhile; two more flushes wait for that fdatasync, then both need another.
    const first = store.flush();
    await store.put('b', pattern(40, 2));
    const rest = [store.flush(), store.flush()];
    await Promise.all([first, ...rest]);
    assert.equal(device.syncsInFlightMax, 1);
    await store.close();
    const reopened = await simulatedStore(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, device.snapshot()), false);
    try {
      assert.ok(((await reopened.get('b')) as Buffer).equals(pattern(40, 2)));
    } finally {
      await reopened.close();
    }
  });

  it('writes nothing for a flush() after opening a clean store: the checkpoint holds every commit, none needs a durable marker', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await simulatedStore(device, true);
    for (let i = 0; i < 5; i++) await store.put(`k${i}`, pattern(40, i));
    await store.close();
    const reopenedDevice = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, device.snapshot());
    const reopened = await simulatedStore(reopenedDevice, false);
    const writesAtOpen = reopenedDevice.counts.writes;
    await reopened.flush();
    await reopened.close();
    assert.equal(reopenedDevice.counts.writes, writesAtOpen);
    // A write after that flush is still made durable by the next one.
    const again = await simulatedStore(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, reopenedDevice.snapshot()), false);
    await again.put('later', pattern(40, 9));
    await again.flush();
    assert.ok(((await again.get('k4')) as Buffer).equals(pattern(40, 4)));
    await again.close();
  });

  it('does not close the device under a deferred fdatasync that started during its checkpoint (found by a review)', async () => {
    const device = new DeferredSyncInClose({ sizeBytes: DEVICE_BYTES });
    const store = await simulatedStore(device, true);
    // Its commit schedules the deferred fdatasync (held by the device).
    await store.put('k', pattern(40, 1));
    device.closing = true;
    await store.close();
    assert.equal(device.inFlightAtClose, 0);
    const reopened = await simulatedStore(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, device.snapshot()), false);
    try {
      assert.ok(((await reopened.get('k')) as Buffer).equals(pattern(40, 1)));
    } finally {
      await reopened.close();
    }
  });
});
