// Both superblock copies lost (zeroed: lost writes, a wiped head) in front of
// a store's WAL: a damaged store, reported as ERR_STORE_CORRUPT — not "no
// store here", which would invite formatting over the data.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreCorruptError } from '../../engine/store_error.js';

describe('BlockStore.open() with both superblock copies lost', () => {
  for (const blockSize of [512, 4096, 65536]) {
    it(`refuses with ERR_STORE_CORRUPT naming the superblock (block size ${blockSize})`, async () => {
      const device = new SimulatedDevice({ sizeBytes: 16 << 20 });
      const store = await BlockStore.open('lost', { device, create: true, blockSize, encoding: 'string' });
      await store.put('a', 'kept in the WAL');
      const image = device.snapshot();
      image.fill(0, 0, 2 * blockSize);
      await store.close().catch(() => undefined);
      await assert.rejects(
        () => BlockStore.open('lost', { device: new SimulatedDevice({ sizeBytes: image.length }, image), encoding: 'string' }),
        (error: unknown) => error instanceof StoreCorruptError && error.structure === 'superblock',
      );
    });
  }
});
