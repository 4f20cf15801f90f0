// Deletes among keys near the 1024-byte limit, with a cache of a few pages:
// a branch then holds three or four children, so deletes merge branches
// often, and a merge brings pages next to a path that prepare() did not read.
// A delete that left a branch with one child and no sibling in memory, or a
// put after deletes in one batch into the range of a leaf they emptied,
// failed the store ("a page on the path of … is not in memory"), and the
// WAL replay failed the same way at every open (found by two reviews). Such
// nodes now wait for PageTree.repairUnderflows(), which the next checkpoint
// runs.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { collect, seededRandom } from './helpers.js';
import { ReadHoldingDevice } from './read_holding_device.js';

const DEVICE_BYTES = 8 << 20;
/** A few pages: most siblings of a path are not in memory. */
const CACHE_BYTES = 16 << 10;
const WAL_BYTES = 256 << 10;
const KEY_COUNT = 300;

/** Bytes keys are made of: few, so that keys share prefixes and bound each other closely. */
const ALPHABET = [0x00, 0x01, 0x41, 0x61, 0x62, 0x7f, 0xc3, 0xff];

/**
 * A key: `longShare` of them (default one in eight) near the key limit (a
 * run of one of three bytes, then a short tail), the rest 1 to 6 bytes. Long keys that differ only in
 * their tails make long separators: branches of three or four children.
 */
function keyOf(random: () => number, longShare = 0.125): Buffer {
  const tail = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 3) }, () => ALPHABET[Math.floor(random() * ALPHABET.length)]!));
  if (random() < longShare) return Buffer.concat([Buffer.alloc(1000 + Math.floor(random() * 21), [0x00, 0x61, 0xff][Math.floor(random() * 3)]!), tail]);
  return Buffer.concat([Buffer.from(Array.from({ length: Math.floor(random() * 4) }, () => ALPHABET[Math.floor(random() * ALPHABET.length)]!)), tail]);
}

const hex = (key: Uint8Array): string => Buffer.from(key).toString('hex');

/** KEY_COUNT keys from `random` put in batches of 50 (noted in `model`, by hex), then a checkpoint. */
async function fillWithKeys(store: BlockStore<number>, random: () => number, model: Map<string, Buffer>): Promise<void> {
  for (let first = 0; first < KEY_COUNT; first += 50) {
    const keys = Array.from({ length: 50 }, () => keyOf(random));
    await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: 1 })));
    for (const key of keys) model.set(hex(key), key);
  }
  await store.checkpoint();
}

async function sortedKeys(store: BlockStore<number>): Promise<string[]> {
  return (await collect(store.keys())).map((key) => hex(Buffer.from(key as Uint8Array)));
}

describe('BlockStore deletes among keys near the size limit', function () {
  this.timeout(120_000);

  // Seeds found by trying 1 to 200: with the first four, deletes leave a
  // branch of one child with no sibling in memory; with the last four, a
  // put after deletes in one batch lands in the range of a leaf they
  // emptied, whose neighbour was never read. Each failed the store before
  // its fix (the last four with the first fix alone).
  for (const seed of [14, 82, 118, 185, 28, 37, 44, 101]) {
    it(`keeps the store working and recoverable through batches of deletes and range clears (seed ${seed})`, async () => {
      const random = seededRandom(seed);
      let device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
      let store = await BlockStore.open<number>('long-keys', { device, create: true, cacheSizeBytes: CACHE_BYTES, walSizeBytes: WAL_BYTES, encoding: 'msgpack' });
      const model = new Map<string, Buffer>();
      try {
        await fillWithKeys(store, random, model);
        for (let round = 0; round < 6; round++) {
          const live = [...model.keys()].sort();
          if (round % 2 === 0) {
            // A batch of deletes of a run of neighbouring keys; in half the
            // rounds some of them are put again after their deletes, in the
            // same batch (a put into the range of a leaf the deletes emptied).
            const start = Math.floor(random() * live.length);
            const doomed = live.slice(start, start + 10 + Math.floor(random() * 20));
            const again = round % 4 === 0 ? doomed.filter(() => random() < 0.3) : [];
            await store.batch([
              ...doomed.map((key) => ({ type: 'del' as const, key: model.get(key)! })),
              ...again.map((key) => ({ type: 'put' as const, key: model.get(key)!, value: round })),
            ]);
            for (const key of doomed) if (!again.includes(key)) model.delete(key);
          } else {
            const cleared = await store.clear({ limit: 17 });
            for (const key of live.slice(0, cleared)) model.delete(key);
            assert.equal(cleared, Math.min(17, live.length));
          }
          assert.deepEqual(await sortedKeys(store), [...model.keys()].sort(), `round ${round}`);
          if (round === 2) await store.checkpoint();
        }
        // Power loss before any checkpoint after the last deletes: the replay
        // deletes the same keys again.
        ({ device, store } = await reopen(device, store, true));
        assert.deepEqual(await sortedKeys(store), [...model.keys()].sort(), 'after power loss');
        assert.equal((await store.verifyIntegrity()).keys, model.size);
        await store.put('after', 2);
        await store.checkpoint();
        model.set(hex(Buffer.from('after')), Buffer.from('after'));
        ({ device, store } = await reopen(device, store, false));
        assert.deepEqual(await sortedKeys(store), [...model.keys()].sort(), 'after a clean close');
        assert.equal((await store.verifyIntegrity()).keys, model.size);
      } finally {
        await store.close().catch(() => undefined);
      }
    });
  }

  /** The store reopened from its device: after a clean close, or with power lost now (every write kept). */
  async function reopen(device: SimulatedDevice, store: BlockStore<number>, powerLoss: boolean): Promise<{ device: SimulatedDevice; store: BlockStore<number> }> {
    let image: Uint8Array;
    if (powerLoss) {
      image = device.crash({ keepProbability: 1 }).snapshot();
      await store.close().catch(() => undefined);
    } else {
      await store.close();
      image = device.snapshot();
    }
    const next = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image);
    const reopened = await BlockStore.open<number>('long-keys', { device: next, cacheSizeBytes: CACHE_BYTES });
    await reopened.whenRecovered();
    return { device: next, store: reopened };
  }
});

/** ReadHoldingDevice that also holds back the next write while `holdingNextWrite`, until releaseWrites(). */
class RaceDevice extends ReadHoldingDevice {
  holdingNextWrite = false;
  #heldWrites: (() => void)[] = [];

  releaseWrites(): void {
    for (const resume of this.#heldWrites.splice(0)) resume();
  }

  async #gateWrite(): Promise<void> {
    if (!this.holdingNextWrite) return;
    this.holdingNextWrite = false;
    await new Promise<void>((resolve) => this.#heldWrites.push(resolve));
  }

  override async write(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.#gateWrite();
    return super.write(position, buffers);
  }
  override async writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.#gateWrite();
    return super.writeAndSync(position, buffers);
  }
  override async writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.#gateWrite();
    return super.writeDsync(position, buffers);
  }
}

const ticks = async (count: number): Promise<void> => {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

describe('BlockStore: a checkpoint repairing the tree while a commit waits to apply', function () {
  this.timeout(120_000);

  // The repair may move a removed empty leaf's keys to a page its own
  // prepare() read, then unpin it; a put prepared before the repair and
  // applied after it found that page gone: the store failed (found by a
  // review). The commit is now prepared again after a repair. The device
  // fixes the order: the checkpoint's repair reads are held while the put is
  // prepared and its WAL write is held; then the repair runs; then the put
  // applies. Seeds from 1 to 40 that failed before the fix (7 did).
  for (const seed of [7, 10, 17, 18, 19, 25]) {
    it(`applies a put prepared before a repair, after it (seed ${seed})`, async () => {
      const random = seededRandom(seed);
      const device = new RaceDevice(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }));
      const store = await BlockStore.open<number>('race', { device, create: true, cacheSizeBytes: CACHE_BYTES, walSizeBytes: WAL_BYTES, encoding: 'msgpack' });
      const model = new Map<string, number>();
      try {
        for (let batch = 0; batch < 6; batch++) {
          const keys = Array.from({ length: 50 }, () => keyOf(random, 0.3));
          await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: batch })));
          for (const key of keys) model.set(hex(key), batch);
        }
        await store.checkpoint();
        for (let round = 0; round < 12; round++) {
          const live = [...model.keys()].sort();
          const start = Math.floor(random() * live.length);
          const doomed = live.slice(start, start + 3 + Math.floor(random() * 25));
          await store.batch(doomed.map((key) => ({ type: 'del' as const, key: Buffer.from(key, 'hex') })));
          for (const key of doomed) model.delete(key);
          const again = doomed[Math.floor(random() * doomed.length)]!;
          device.holding = true;
          const checkpoint = store.checkpoint();
          await ticks(3);
          device.holding = false;
          device.holdingNextWrite = true;
          const put = store.put(Buffer.from(again, 'hex'), 1000 + round);
          model.set(again, 1000 + round);
          await ticks(20);
          device.release();
          await ticks(20);
          device.holdingNextWrite = false;
          device.releaseWrites();
          await Promise.all([checkpoint, put]);
        }
        const got = (await collect(store.range())).map(([key, value]) => `${hex(Buffer.from(key as Uint8Array))}=${value}`);
        assert.deepEqual(got, [...model.keys()].sort().map((key) => `${key}=${model.get(key)}`));
        assert.equal((await store.verifyIntegrity()).keys, model.size);
      } finally {
        device.holding = false;
        device.release();
        device.releaseWrites();
        await store.close().catch(() => undefined);
      }
    });
  }
});

/** A simulated device whose reads fail with an EIO while `failingReads` is set. */
class FailingReadsDevice extends SimulatedDevice {
  failingReads = false;
  failedReads = 0;

  override async read(position: number, buffer: Uint8Array): Promise<void> {
    if (this.failingReads) {
      this.failedReads++;
      throw Object.assign(new Error(`EIO: injected read failure at ${position}`), { code: 'EIO', errno: -5, syscall: 'io_uring:read' });
    }
    return super.read(position, buffer);
  }
}

describe('BlockStore: a read that fails while a checkpoint repairs the tree', function () {
  // Found by a review: a failed read of the page a checkpoint's repair of
  // underflowed nodes needed stopped the store (ERR_STORE_FAILED, every
  // later write refused until reopened), although nothing had been written
  // and a failed read does not stop the store elsewhere.
  this.timeout(60_000);

  /**
   * A store of KEY_COUNT long and short keys, then a batch of deletes that
   * leaves a node for repair whose sibling is not in memory: the next
   * checkpoint reads it first. Seed 44 does (28, 37, 101 and 113 too, of 1
   * to 200).
   */
  async function storeAwaitingRepair(sync: boolean): Promise<{ device: FailingReadsDevice; store: BlockStore<number>; model: Map<string, Buffer> }> {
    const random = seededRandom(44);
    const device = new FailingReadsDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open<number>('long-keys', { device, create: true, cacheSizeBytes: CACHE_BYTES, walSizeBytes: WAL_BYTES, encoding: 'msgpack', sync });
    const model = new Map<string, Buffer>();
    await fillWithKeys(store, random, model);
    const live = [...model.keys()].sort();
    const start = Math.floor(random() * live.length);
    const doomed = live.slice(start, start + 10 + Math.floor(random() * 20));
    await store.batch(doomed.map((key) => ({ type: 'del' as const, key: model.get(key)! })));
    for (const key of doomed) model.delete(key);
    return { device, store, model };
  }

  /** Opens what `device` holds after a power loss that kept nothing unflushed, and checks it holds `model`'s keys. */
  async function checkAfterPowerLoss(device: SimulatedDevice, model: Map<string, Buffer>): Promise<void> {
    const reopened = await BlockStore.open<number>('long-keys', { device: device.crash({ keepProbability: 0, tornWrites: false }), cacheSizeBytes: CACHE_BYTES });
    try {
      assert.deepEqual(await sortedKeys(reopened), [...model.keys()].sort());
      assert.equal((await reopened.verifyIntegrity()).keys, model.size);
    } finally {
      await reopened.close();
    }
  }

  const injectedRead = (error: Error & { code?: string }): boolean => error.code === 'EIO' && /injected read failure/.test(error.message);

  it('refuses that checkpoint with the read error, and the store goes on: writes, the next checkpoint, a reopen', async () => {
    const { device, store, model } = await storeAwaitingRepair(true);
    try {
      device.failingReads = true;
      await assert.rejects(store.checkpoint(), injectedRead);
      device.failingReads = false;
      assert.ok(device.failedReads > 0, 'the checkpoint read a page');
      await store.put('after', 2);
      model.set(hex(Buffer.from('after')), Buffer.from('after'));
      await store.checkpoint();
      assert.deepEqual(await sortedKeys(store), [...model.keys()].sort());
      await store.close();
      await checkAfterPowerLoss(device, model);
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  for (const sync of [true, false]) {
    it(`rejects close() with the read error when its checkpoint met it, and the next open replays every write (sync: ${sync}; close() resolved and told no one)`, async () => {
      const { device, store, model } = await storeAwaitingRepair(sync);
      device.failingReads = true;
      await assert.rejects(store.close(), injectedRead);
      device.failingReads = false;
      assert.ok(device.failedReads > 0, "close()'s checkpoint read a page");
      assert.equal(store.failure, undefined, 'a failed read does not fail the store');
      // Not marked clean, the deletes in the WAL the next open replays.
      await checkAfterPowerLoss(device, model);
    });
  }
});
