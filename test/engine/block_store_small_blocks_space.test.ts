// Free space on a store of blocks smaller than a tree page (512, 1024 and
// 2048 bytes: a page is 4 KiB) is allocated a page at a time, so that
// deleting values never leaves free space no page fits in. (Found by a
// review: a 24 MiB store of 512-byte blocks filled with one-block values,
// every other key deleted and the holes refilled, left 18 869 free blocks
// in 18 659 pieces; every checkpoint failed with ERR_STORE_FULL, and so
// did every delete, reopen included.)
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { StoreError } from '../../engine/store_error.js';
import { storeDirPerTest } from './helpers.js';

const STORE_BYTES = 4 << 20;
const PAGE_BYTES = 4096;

const keyOf = (index: number): string => `key-${String(index).padStart(6, '0')}`;

/** Puts values of `valueBytes` under keys from `first` on, `step` apart, until the store refuses one for room; returns the keys written. */
async function fill(store: BlockStore, first: number, step: number, valueBytes: number, limit: number): Promise<number[]> {
  const written: number[] = [];
  for (let index = first; index < limit; index += step) {
    try {
      await store.put(keyOf(index), Buffer.alloc(valueBytes, index & 0xff));
    } catch (error) {
      if (error instanceof StoreError && error.code === 'ERR_STORE_FULL') break;
      throw error;
    }
    written.push(index);
  }
  return written;
}

describe('BlockStore space on blocks smaller than a page', function () {
  this.timeout(120_000);
  const dir = storeDirPerTest();

  for (const blockSize of [512, 1024, 2048]) {
    it(`keeps checkpoints and deletes possible after holes are refilled (${blockSize}-byte blocks)`, async () => {
      const path = `${dir()}/store`;
      const options = { blockSize, maxSizeBytes: STORE_BYTES, encoding: 'binary' as const };
      let store = await BlockStore.open(path, { ...options, create: true, sizeBytes: STORE_BYTES });
      try {
        // Values just over the inline limit (half a page): the smallest in
        // extents, an odd number of blocks, the worst case for the holes.
        const smallBytes = PAGE_BYTES / 2 + 1;
        const keys = await fill(store, 0, 1, smallBytes, 100_000);
        assert.ok(keys.length > 200, `only ${keys.length} values fit`);
        for (let i = 0; i < keys.length; i += 2) await store.delete(keyOf(keys[i]));
        await store.checkpoint();
        // Refill the holes with values of other sizes: more blocks than a
        // freed value had, and fewer.
        const larger = await fill(store, 0, 4, PAGE_BYTES + 1, keys.length);
        const smaller = await fill(store, 2, 4, smallBytes - blockSize, keys.length);
        assert.ok(larger.length + smaller.length > keys.length / 8, `the freed space took only ${larger.length} + ${smaller.length} values back`);
        await store.checkpoint();
        // Full again: a checkpoint and every delete still go through.
        for (let i = 1; i < keys.length; i += 4) await store.delete(keyOf(keys[i]));
        await store.checkpoint();
        await store.close();
        store = await BlockStore.open(path, options);
        for (let i = 3; i < keys.length; i += 4) await store.delete(keyOf(keys[i]));
        await store.checkpoint();
        const integrity = await store.verifyIntegrity();
        assert.equal(integrity.keys, larger.length + smaller.length);
        for (const index of larger) assert.equal(((await store.get(keyOf(index))) as Buffer).length, PAGE_BYTES + 1);
      } finally {
        await store.close();
      }
    });
  }

  it('stores values up to half a page inline whatever the block size', async () => {
    const store = await BlockStore.open(`${dir()}/store`, { blockSize: 512, create: true, sizeBytes: STORE_BYTES, encoding: 'binary' });
    try {
      await store.put('inline', Buffer.alloc(PAGE_BYTES / 2, 1));
      assert.equal((await store.verifyIntegrity()).extentValues, 0);
      await store.put('extent', Buffer.alloc(PAGE_BYTES / 2 + 1, 2));
      const integrity = await store.verifyIntegrity();
      assert.equal(integrity.extentValues, 1);
      // Its 5 blocks are what it references; the 3 others of its page stay free but no write takes them.
      assert.equal(integrity.referencedBlocks, 5 + integrity.pages * (PAGE_BYTES / 512));
    } finally {
      await store.close();
    }
  });
});
