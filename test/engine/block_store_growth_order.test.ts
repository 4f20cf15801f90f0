// Writes keep their call order while the store grows for one of them
// (engine/growth_wait.ts; found by a review). A write refused for room
// used to wait for its growth and then be queued again, behind the writes
// called after it: a put and then a delete of the same key, called
// together, both resolved (the delete saying the key did not exist), and
// the put's value stayed, also after a reopen; a flush() resolved before
// the waiting writes were durable; and close() rejected them with
// ERR_STORE_CLOSED.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { pattern } from './helpers.js';

/** A store of 1 MiB that may grow to 64 MiB: a few puts of VALUE_BYTES fill it. */
const STORE_BYTES = 1 << 20;
const STORE_BYTES_MAX = 64 << 20;
/** Values large enough (extents) that KEY_COUNT of them need several growths' worth of room. */
const VALUE_BYTES = 16 << 10;
const KEY_COUNT = 200;

function growableDevice(): SimulatedDevice {
  return new SimulatedDevice({ sizeBytes: STORE_BYTES, sizeBytesMax: STORE_BYTES_MAX });
}

function keyOf(index: number): string {
  return `k${String(index).padStart(4, '0')}`;
}

describe('BlockStore writes in call order across a growth', function () {
  this.timeout(120_000);

  it('a put and then a delete of the same key, called together on a full store: the key is gone, also after a reopen, and every delete found its key', async () => {
    const device = growableDevice();
    const store = await BlockStore.open('order', { device, create: true, encoding: 'binary' });
    let reopened: BlockStore | undefined;
    try {
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < KEY_COUNT; i++) {
        calls.push(store.put(keyOf(i), pattern(VALUE_BYTES, i)));
        calls.push(store.delete(keyOf(i)));
      }
      const outcomes = await Promise.all(calls);
      assert.ok(store.stats().growths >= 1, 'the puts made the store grow (else this test proves nothing)');
      const deletesThatFoundNothing = outcomes.flatMap((outcome, call) => (call % 2 === 1 && outcome !== true ? [keyOf((call - 1) / 2)] : []));
      assert.deepEqual(deletesThatFoundNothing, [], 'each delete comes after its put: it finds the key');
      const present = [];
      for (let i = 0; i < KEY_COUNT; i++) if ((await store.get(keyOf(i))) !== undefined) present.push(keyOf(i));
      assert.deepEqual(present, [], 'keys deleted after their put are present');
      await store.close();
      reopened = await BlockStore.open('order', { device: device.crash(), encoding: 'binary' });
      assert.equal(reopened.stats().keys, 0, 'keys came back after a reopen');
      await reopened.verifyIntegrity();
    } finally {
      await store.close();
      await reopened?.close();
    }
  });

  it('a write stream finished after a put that waits for a growth: the stream, ended last, wins', async () => {
    const device = new SimulatedDevice({ sizeBytes: 8 << 20, sizeBytesMax: STORE_BYTES_MAX });
    const store = await BlockStore.open('stream-order', { device, create: true, encoding: 'binary' });
    try {
      // The stream's data first: one whole chunk (1 MiB), written and its
      // blocks taken before the room runs out, so its end only commits.
      const streamed = pattern(1 << 20, 2);
      const stream = store.createWriteStream('key');
      const finished = new Promise<void>((resolve, reject) => {
        stream.on('finish', resolve);
        stream.on('error', reject);
      });
      await new Promise<void>((resolve, reject) => stream.write(streamed, (error) => (error ? reject(error) : resolve())));
      // More than the store holds: the put after them waits for a growth.
      const fillers = Array.from({ length: 600 }, (_, i) => store.put(`filler-${i}`, pattern(VALUE_BYTES, 1000 + i)));
      const put = store.put('key', pattern(VALUE_BYTES, 1));
      stream.end();
      await Promise.all([...fillers, put, finished]);
      assert.ok(store.stats().growths >= 1, 'the puts made the store grow');
      assert.deepEqual(await store.get('key'), streamed);
    } finally {
      await store.close();
    }
  });

  for (const sync of [true, false]) {
    it(`flush() with sync: ${sync} resolves after every write called before it, those waiting for a growth included; they survive a crash right after`, async () => {
      const device = growableDevice();
      const store = await BlockStore.open('flush', { device, create: true, encoding: 'binary', sync });
      let reopened: BlockStore | undefined;
      try {
        let resolved = 0;
        const puts = Array.from({ length: KEY_COUNT / 4 }, (_, i) => store.put(keyOf(i), pattern(VALUE_BYTES * 4, i)).then(() => resolved++));
        await store.flush();
        assert.equal(resolved, puts.length, 'flush() resolved before writes called before it');
        assert.ok(store.stats().growths >= 1, 'the puts made the store grow');
        // Power lost right after the flush: no close, no checkpoint.
        reopened = await BlockStore.open('flush', { device: device.crash(), encoding: 'binary' });
        await reopened.whenRecovered();
        const missing = [];
        for (let i = 0; i < puts.length; i++) {
          const value = await reopened.get(keyOf(i));
          if (value === undefined || !pattern(VALUE_BYTES * 4, i).equals(value as Uint8Array)) missing.push(keyOf(i));
        }
        assert.deepEqual(missing, [], 'writes flushed are lost');
      } finally {
        await reopened?.close();
        await store.close().catch(() => undefined);
      }
    });
  }

  it('close() finishes the writes called before it that wait for a growth, rather than refusing them', async () => {
    const device = growableDevice();
    const store = await BlockStore.open('close', { device, create: true, encoding: 'binary' });
    const puts = Array.from({ length: KEY_COUNT / 4 }, (_, i) => store.put(keyOf(i), pattern(VALUE_BYTES * 4, i)));
    await store.close();
    const refused = (await Promise.allSettled(puts)).flatMap((outcome, i) => (outcome.status === 'rejected' ? [`${keyOf(i)}: ${(outcome.reason as Error).message}`] : []));
    assert.deepEqual(refused, []);
    const reopened = await BlockStore.open('close', { device: device.crash(), encoding: 'binary' });
    try {
      assert.equal(reopened.stats().keys, puts.length);
      assert.ok(reopened.stats().blocksTotal * 4096 > STORE_BYTES, 'the puts made the store grow');
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('a flush failing in the growth: every waiting write is rejected with the store\'s failure, none hangs, and close() ends', async () => {
    /** Fails the first flush after the device has grown: the growth's own, before its superblock. */
    class FailingGrowthDevice extends SimulatedDevice {
      grew = false;
      override async grow(sizeBytes: number): Promise<void> {
        await super.grow(sizeBytes);
        this.grew = true;
      }
      override async sync(): Promise<void> {
        if (this.grew) throw Object.assign(new Error('EIO: simulated flush failure'), { code: 'EIO' });
        return super.sync();
      }
    }
    const device = new FailingGrowthDevice({ sizeBytes: STORE_BYTES, sizeBytesMax: STORE_BYTES_MAX });
    const store = await BlockStore.open('failing-growth', { device, create: true, encoding: 'binary' });
    const puts = Array.from({ length: KEY_COUNT / 4 }, (_, i) => store.put(keyOf(i), pattern(VALUE_BYTES * 4, i)));
    const stream = store.createWriteStream('streamed');
    const streamed = new Promise<void>((resolve, reject) => {
      stream.on('finish', resolve);
      stream.on('error', reject);
    });
    stream.end(pattern(4096, 9));
    const outcomes = await Promise.allSettled([...puts, streamed]);
    assert.ok(device.grew, 'the puts made the store grow');
    const codes = new Set(outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [(outcome.reason as { code?: string }).code] : [])));
    assert.ok(outcomes.some((outcome) => outcome.status === 'rejected'), 'the writes that waited for the growth were refused');
    assert.deepEqual([...codes], ['ERR_STORE_FAILED'], 'refused with the store\'s failure');
    await store.close().catch(() => undefined);
  });
});
