// Writes called while the WAL tail is replayed in the background
// (engine/replay_overlay.ts) must behave as they do on a store without a
// replay (found in review of the first version, which held the call itself
// and read its arguments only when the replay ended):
//
// 1. What is stored is what the call was given: the caller may reuse its
//    buffer, object, key or operations array once the call has returned
//    (write_encoding.ts checks, encodes and copies at the call).
// 2. close() finishes writes called before it, also during the replay
//    (also through RingLevel: abstract-level does not wait for writes).
// 3. Writes apply in call order, whether their caller waited for
//    whenRecovered() or not, and a flush() waits for every write called
//    before it.
// 4. Argument and mode checks come at the call, not after the replay.
// The controls show each behaviour on the same store without a replay.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { RingLevel } from '../../level/index.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import type { BatchOperation } from '../../engine/store_options.js';

const DEVICE_BYTES = 64 << 20;
const WAL_BYTES = 16 << 20;
const WRITER_CACHE_BYTES = 1 << 30;
/** The reader's small cache makes the replay read pages (and take its time). */
const READER_CACHE_BYTES = 1 << 20;
const BASE_KEYS = 6000;
const TAIL_BATCHES = 12;
const TAIL_KEYS_PER_BATCH = 500;

function keyOf(index: number): string {
  return `k-${((index * 2654435761) >>> 0).toString(16).padStart(8, '0')}`;
}

/** A msgpack store with BASE_KEYS checkpointed keys and a WAL tail of random overwrites, then power loss. */
async function crashedImage(): Promise<Uint8Array> {
  const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
  const store = await BlockStore.open('writer', { device, create: true, walSizeBytes: WAL_BYTES, cacheSizeBytes: WRITER_CACHE_BYTES });
  const base: BatchOperation[] = [];
  for (let i = 0; i < BASE_KEYS; i++) base.push({ type: 'put', key: keyOf(i), value: { i, pad: 'x'.repeat(150) } });
  for (let i = 0; i < base.length; i += 1000) await store.batch(base.slice(i, i + 1000));
  await store.checkpoint();
  for (let batch = 0; batch < TAIL_BATCHES; batch++) {
    const keys = new Set<string>();
    for (let i = 0; i < TAIL_KEYS_PER_BATCH; i++) keys.add(keyOf((batch * 997 + i * 13) % BASE_KEYS));
    await store.batch([...keys].map((key) => ({ type: 'put', key, value: { batch, pad: 'y'.repeat(150) } })));
  }
  return device.crash({ keepProbability: 1 }).snapshot();
}

async function openCrashed(device: SimulatedDevice, encoding?: 'binary'): Promise<BlockStore> {
  const store = await BlockStore.open('reader', { device, cacheSizeBytes: READER_CACHE_BYTES, ...(encoding === undefined ? {} : { encoding }) });
  assert.ok(store.stats().tailCommitsToReplay > 0, 'open returned after the replay: nothing runs in the background');
  return store;
}

describe('BlockStore writes called while the WAL tail is replayed in the background', function () {
  this.timeout(120_000);
  let image: Uint8Array;

  before(async () => {
    image = await crashedImage();
  });

  it('stores the bytes a put was called with, though the caller reuses its buffer once put() returned', async () => {
    const store = await openCrashed(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image), 'binary');
    try {
      const value = Buffer.from('original');
      const put = store.put('reused-buffer', value);
      value.fill(0x78); // 'xxxxxxxx'
      await put;
      assert.deepEqual(await store.get('reused-buffer'), Buffer.from('original'));
    } finally {
      await store.close();
    }
  });

  it('stores each object as it was when put() was called (msgpack), not as it is when the replay ends', async () => {
    const store = await openCrashed(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image));
    try {
      const record = { n: 0 };
      const puts: Promise<void>[] = [];
      for (let n = 0; n < 3; n++) {
        record.n = n;
        puts.push(store.put(`record-${n}`, record));
      }
      record.n = 99;
      await Promise.all(puts);
      assert.deepEqual(await store.getMany(['record-0', 'record-1', 'record-2']), [{ n: 0 }, { n: 1 }, { n: 2 }]);
    } finally {
      await store.close();
    }
  });

  it('stores under the key put() was called with, though the caller reuses its key buffer', async () => {
    const store = await openCrashed(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image));
    try {
      const key = Buffer.from('key-a');
      const put = store.put(key, 'value');
      key[4] = 0x62; // 'key-b'
      await put;
      assert.equal(await store.get('key-a'), 'value');
      assert.equal(await store.get('key-b'), undefined);
    } finally {
      await store.close();
    }
  });

  it('commits every operation of a batch whose array the caller empties once batch() returned (an acknowledged batch is not lost)', async () => {
    const store = await openCrashed(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image));
    try {
      const operations: BatchOperation[] = [
        { type: 'put', key: 'batch-a', value: 1 },
        { type: 'put', key: 'batch-b', value: 2 },
      ];
      const batch = store.batch(operations);
      operations.length = 0; // reused for the next batch
      await batch; // resolves: acknowledged
      assert.deepEqual(await store.getMany(['batch-a', 'batch-b']), [1, 2]);
    } finally {
      await store.close();
    }
  });

  it('applies puts of one key in call order when one caller waited for whenRecovered() and another did not', async () => {
    const store = await openCrashed(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image));
    try {
      const calls: string[] = [];
      const writerA = async (): Promise<void> => {
        await store.whenRecovered();
        calls.push('A');
        await store.put('ordered', 'A');
      };
      const a = writerA();
      calls.push('B');
      const b = store.put('ordered', 'B'); // called during the replay, before A's put
      await Promise.all([a, b]);
      assert.deepEqual(calls, ['B', 'A'], 'B was called first');
      assert.equal(await store.get('ordered'), 'A', 'the put called last did not win');
    } finally {
      await store.close();
    }
  });

  it('flush() called once whenRecovered() resolved waits for a put called before it, during the replay', async () => {
    const store = await openCrashed(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image));
    try {
      let putSettled = false;
      const flushed = (async () => {
        await store.whenRecovered();
        await store.flush(); // called after the put below
        return putSettled;
      })();
      const put = store.put('before-flush', 'B').finally(() => (putSettled = true));
      assert.equal(await flushed, true, 'flush() resolved before a write accepted before it had committed');
      await put;
    } finally {
      await store.close();
    }
  });

  it('finishes a put called before close() during the replay, as close() does without one', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image);
    const store = await openCrashed(device);
    const put = store.put('before-close', 'kept');
    const closed = store.close();
    const outcome = await put.then(
      () => 'resolved',
      (error: unknown) => `rejected: ${(error as { code?: string }).code ?? String(error)}`,
    );
    await closed;
    assert.equal(outcome, 'resolved', 'a put called before close() was not finished by it');
    const reopened = await BlockStore.open('reader', { device: device.crash({ keepProbability: 0 }), cacheSizeBytes: READER_CACHE_BYTES });
    try {
      assert.equal(await reopened.get('before-close'), 'kept');
    } finally {
      await reopened.close();
    }
  });

  it('finishes a RingLevel put called before db.close() while the store replays its tail', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image);
    const db = new RingLevel('level-reader', { device, cacheSizeBytes: READER_CACHE_BYTES });
    await db.open();
    assert.ok(db.store.stats().tailCommitsToReplay > 0);
    const put = db.put('level-key', 'level-value');
    const closed = db.close();
    const outcome = await put.then(
      () => 'resolved',
      (error: unknown) => `rejected: ${(error as { code?: string }).code ?? String(error)}`,
    );
    await closed;
    assert.equal(outcome, 'resolved');
  });

  it('refuses a put on a read-only store at once, not after the whole replay', async () => {
    const store = await BlockStore.open('reader', { device: new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image), cacheSizeBytes: READER_CACHE_BYTES, readOnly: true });
    try {
      assert.ok(store.stats().tailCommitsToReplay > 0);
      let tailWhenRefused = -1;
      await store.put('x', 1).catch(() => {
        tailWhenRefused = store.stats().tailCommitsToReplay;
      });
      assert.ok(tailWhenRefused > 0, `the read-only put was refused only after the replay (tailCommitsToReplay ${tailWhenRefused})`);
    } finally {
      await store.close();
    }
  });

  it('control: without a replay a reused buffer does not change the stored value', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image);
    const first = await openCrashed(device, 'binary');
    await first.close();
    const store = await BlockStore.open('reader', { device: device.crash({ keepProbability: 0 }), cacheSizeBytes: READER_CACHE_BYTES, encoding: 'binary' });
    try {
      const value = Buffer.from('original');
      const put = store.put('reused-buffer', value);
      value.fill(0x78);
      await put;
      assert.deepEqual(await store.get('reused-buffer'), Buffer.from('original'));
    } finally {
      await store.close();
    }
  });

  it('control: without a replay a RingLevel put called before db.close() is finished', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image);
    const first = await openCrashed(device);
    await first.close();
    const db = new RingLevel('level-reader', { device: device.crash({ keepProbability: 0 }), cacheSizeBytes: READER_CACHE_BYTES });
    await db.open();
    assert.equal(db.store.stats().tailCommitsToReplay, 0);
    const put = db.put('level-key', 'level-value');
    await db.close();
    await put;
  });

  it('control: without a replay the same put before close() is finished by close()', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image);
    const first = await openCrashed(device);
    await first.close();
    const store = await BlockStore.open('reader', { device: device.crash({ keepProbability: 0 }), cacheSizeBytes: READER_CACHE_BYTES });
    assert.equal(store.stats().tailCommitsToReplay, 0);
    const put = store.put('before-close', 'kept');
    await store.close();
    await put;
  });
});
