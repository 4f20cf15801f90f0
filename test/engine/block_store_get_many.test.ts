// BlockStore#getMany(): the values of many keys, in the order asked,
// undefined where missing, a key asked twice answered twice; every key
// validated before anything is read; all values of one moment of the call,
// even while writes replace them; refused after close().
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { GET_MANY_READS_IN_FLIGHT_MAX } from '../../engine/store_options.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { ReadHoldingDevice } from './read_holding_device.js';
import { makeStoreDir, openSmallStore, pattern, rejectsWith, removeStoreDir } from './helpers.js';

const DEVICE_BYTES = 8 << 20;
/** A page cache of three 4 KiB pages: most lookups read pages from the device. */
const CACHE_BYTES = 16 << 10;
const KEY_COUNT = 400;
/** A tree page with 512-byte blocks: max(blockSize, 4096). */
const PAGE_BYTES = 4096;

function key(index: number): string {
  return `key-${String(index).padStart(5, '0')}`;
}

/** Small values inline, every seventh one an extent value (over half a 512-byte block). */
function value(index: number, generation: number): string {
  return `${generation}:${index}:`.padEnd(index % 7 === 0 ? 2000 : 20, String(generation));
}

/** A store on the simulated device, reopened so that nothing of its tree is in memory. */
async function coldStore(): Promise<{ device: SimulatedDevice; store: BlockStore<string> }> {
  const first = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
  const writer = await BlockStore.open<string>('get-many', { device: first, create: true, blockSize: 512, encoding: 'string' });
  await writer.batch(Array.from({ length: KEY_COUNT }, (_, index) => ({ type: 'put' as const, key: key(index), value: value(index, 1) })));
  await writer.close();
  const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, first.snapshot());
  return { device, store: await BlockStore.open<string>('get-many', { device, cacheSizeBytes: CACHE_BYTES }) };
}

describe('BlockStore#getMany()', () => {
  it('answers in the order asked, undefined for missing keys, twice for a key asked twice', async () => {
    const { store } = await coldStore();
    try {
      const asked = [key(5), 'missing', key(0), key(399), key(5), Buffer.from(key(7)), 'zzz', key(14)];
      assert.deepEqual(await store.getMany(asked), [value(5, 1), undefined, value(0, 1), value(399, 1), value(5, 1), value(7, 1), undefined, value(14, 1)]);
      assert.deepEqual(await store.getMany([]), []);
    } finally {
      await store.close();
    }
  });

  it(`reads more keys than GET_MANY_READS_IN_FLIGHT_MAX (${GET_MANY_READS_IN_FLIGHT_MAX}) from a cold cache, as get() does`, async () => {
    const { store } = await coldStore();
    try {
      const asked = Array.from({ length: KEY_COUNT }, (_, index) => key((index * 37) % KEY_COUNT));
      const values = await store.getMany(asked);
      assert.deepEqual(values, asked.map((asKey) => value(Number(asKey.slice(4)), 1)));
    } finally {
      await store.close();
    }
  });

  it('gives every value of the moment of the call, though a batch replaces them all before its value reads complete', async () => {
    // Every value an extent (3000 bytes: six 512-byte blocks); the device
    // holds back reads of other than a page's 4096 bytes while `holding`:
    // the value reads getMany issues wait until the batch has applied.
    const first = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const writer = await BlockStore.open<string>('moment', { device: first, create: true, blockSize: 512, encoding: 'string' });
    const asked = Array.from({ length: 3 * GET_MANY_READS_IN_FLIGHT_MAX }, (_, index) => key(index));
    const extentValue = (index: number, generation: number): string => `${generation}:${index}:`.padEnd(3000, String(generation));
    await writer.batch(asked.map((asKey, index) => ({ type: 'put' as const, key: asKey, value: extentValue(index, 1) })));
    await writer.close();
    // Reads of other than a tree page (4096 bytes) are held.
    const device = new ReadHoldingDevice(new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, first.snapshot()), (lengthBytes) => lengthBytes !== PAGE_BYTES);
    const store = await BlockStore.open<string>('moment', { device, cacheSizeBytes: CACHE_BYTES });
    try {
      device.holding = true;
      const reading = store.getMany(asked);
      // Page reads pass: the lookups proceed until every worker waits on a value read.
      while (device.heldCount < GET_MANY_READS_IN_FLIGHT_MAX) await new Promise((resolve) => setImmediate(resolve));
      device.holding = false;
      await store.batch(asked.map((asKey, index) => ({ type: 'put' as const, key: asKey, value: extentValue(index, 2) })));
      device.release();
      assert.deepEqual(await reading, asked.map((_, index) => extentValue(index, 1)));
      assert.deepEqual(await store.getMany([key(0), key(1)]), [extentValue(0, 2), extentValue(1, 2)], 'the batch applied');
    } finally {
      device.release();
      await store.close();
    }
  });

  it('runs beside a batch over the same keys without taking the pages the batch pinned out of the cache', async () => {
    // Found by this call: its parallel page reads, completing after the
    // batch's prepare() had put back a page it pinned, replaced that node in
    // a cache of three pages, and the commit then failed the store with
    // "a page on the path ... is not in memory". PageTree keeps the node.
    const { store } = await coldStore();
    try {
      const asked = Array.from({ length: KEY_COUNT }, (_, index) => key(index));
      const reading = store.getMany(asked);
      const writing = store.batch(asked.map((asKey, index) => ({ type: 'put' as const, key: asKey, value: value(index, 2) })));
      const [values] = await Promise.all([reading, writing]);
      assert.deepEqual(values, asked.map((_, index) => value(index, 1)));
      assert.deepEqual(await store.getMany(asked), asked.map((_, index) => value(index, 2)));
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });

  it('refuses a bad key anywhere in the list before reading anything', async () => {
    const { device, store } = await coldStore();
    try {
      const reads = device.counts.reads;
      for (const bad of [42, null, undefined, '', '\uD800', new Uint16Array(2), {}]) {
        const error = await rejectsWith(() => store.getMany([key(1), key(2), bad as string]), Error, 'ERR_INVALID_ARG');
        assert.ok(error instanceof TypeError || error instanceof RangeError, String(error));
        assert.match(error.message, /getMany key 2/);
      }
      await rejectsWith(() => store.getMany([key(1), 'k'.repeat(2000)]), Error, 'ERR_KEY_TOO_LARGE');
      await rejectsWith(() => store.getMany('key-00001' as unknown as string[]), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(() => store.getMany(null as unknown as string[]), TypeError, 'ERR_INVALID_ARG');
      const throwing = new Proxy([key(1)], {
        get(target, property, receiver) {
          if (property === '0') throw new Error('trap');
          return Reflect.get(target, property, receiver) as unknown;
        },
      });
      await rejectsWith(() => store.getMany(throwing), TypeError, 'ERR_INVALID_ARG');
      assert.equal(device.counts.reads, reads, 'a refused getMany read from the device');
    } finally {
      await store.close();
    }
  });

  it('is refused after close()', async () => {
    const { store } = await coldStore();
    await store.close();
    await rejectsWith(() => store.getMany([key(1)]), Error, 'ERR_STORE_CLOSED');
    await rejectsWith(() => store.getMany([]), Error, 'ERR_STORE_CLOSED');
  });

  describe('on a real file', () => {
    let dir: string | undefined;
    before(() => (dir = makeStoreDir()));
    after(() => removeStoreDir(dir));

    it('gives back binary keys, extent values and raw stream values', async () => {
      const store = await openSmallStore(`${dir}/store`);
      try {
        const large = pattern(100_000, 3);
        await store.put(Buffer.from([0, 255]), { large });
        await store.put('small', [1, 2, 3]);
        const stream = store.createWriteStream('raw');
        await new Promise<void>((resolve, reject) => stream.end(pattern(10_000, 5), () => resolve()).on('error', reject));
        const values = await store.getMany([Buffer.from([0, 255]), 'small', 'raw', 'none']);
        assert.deepEqual(values, [{ large }, [1, 2, 3], pattern(10_000, 5), undefined]);
      } finally {
        await store.close();
      }
    });
  });
});
