// Many concurrent puts behind many waiting writes, without a clock: every put
// resolves, reads back, and the reserve's running totals (kept O(1) a put
// instead of a walk over the queue) match a recomputation afterwards
// (verifyIntegrity) and return to zero when the queue empties. The timed
// complexity check of the same paths is block_store_concurrent_puts.scaling.ts
// (`npm run test:scaling`): timings have no place in the default suite.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { makeStoreDir, removeStoreDir } from './helpers.js';

const WAITING_WRITES = 20_000;
const EXTENT_PUTS = 2_000;
const INLINE_PUTS = 2_000;
/** 3 KiB: over half a 4 KiB block, so an extent value (the path that once walked the queue). */
const EXTENT_VALUE_BYTES = 3 << 10;
const INLINE_VALUE_BYTES = 100;
const STORE_BYTES = 64 << 20;

describe('BlockStore queued puts', function () {
  this.timeout(120_000);
  let dir = '';
  beforeEach(() => {
    dir = makeStoreDir();
  });
  afterEach(() => {
    removeStoreDir(dir);
  });

  it('resolves extent and inline puts issued behind many waiting writes, with the reserve totals intact', async () => {
    const store = await BlockStore.open(`${dir}/store`, { create: true, sizeBytes: STORE_BYTES, cacheSizeBytes: 4 << 20 });
    try {
      const writes: Promise<void>[] = [];
      for (let i = 0; i < WAITING_WRITES; i++) writes.push(store.batch([]));
      const extentValue = (i: number): Buffer => Buffer.alloc(EXTENT_VALUE_BYTES, i & 0xff);
      const inlineValue = (i: number): Buffer => Buffer.alloc(INLINE_VALUE_BYTES, (i * 7) & 0xff);
      for (let i = 0; i < EXTENT_PUTS; i++) writes.push(store.put(`extent-${i}`, extentValue(i)));
      for (let i = 0; i < INLINE_PUTS; i++) writes.push(store.put(`inline-${i}`, inlineValue(i)));
      // Checked while the writes are still queued or committing (the totals
      // against a walk of the queue), then once they have all resolved.
      await store.verifyIntegrity();
      await Promise.all(writes);
      await store.verifyIntegrity();
      for (let i = 0; i < EXTENT_PUTS; i += 97) assert.deepEqual(await store.get(`extent-${i}`), extentValue(i));
      for (let i = 0; i < INLINE_PUTS; i += 97) assert.deepEqual(await store.get(`inline-${i}`), inlineValue(i));
      assert.equal(store.stats().keys, EXTENT_PUTS + INLINE_PUTS);
    } finally {
      await store.close();
    }
    // And after reopening, from the WAL or the close's checkpoint.
    const reopened = await BlockStore.open(`${dir}/store`);
    try {
      assert.equal(reopened.stats().keys, EXTENT_PUTS + INLINE_PUTS);
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });
});
