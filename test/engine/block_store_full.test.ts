// ERR_STORE_FULL on a real file held at its size by maxSizeBytes (as a block
// device is by its own size): a put that finds no room is refused with
// ERR_STORE_FULL and changes nothing; the store keeps working — reads, and
// writes again once deletes have freed space (after their trims complete).
//
// The tiny store's 32-block WAL starts a checkpoint every 16 commits, in the
// background, so these tests check integrity after a reopen, when none runs
// (verifying while one runs is block_store_verify_integrity.test.ts's
// concern).
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { storeLayout } from '../../engine/store_layout.js';
import { makeStoreDir, pattern, rejectsWithCode, removeStoreDir, waitForTrims } from './helpers.js';

const BLOCK_SIZE = 4096;
/** 256 blocks: 2 superblocks, a 32-block WAL (an eighth), 222 data blocks. */
const TINY_STORE_BYTES = 1 << 20;

describe('BlockStore when full', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeStoreDir();
  });

  after(() => {
    removeStoreDir(dir);
  });

  async function openTiny(path: string, create: boolean): Promise<BlockStore> {
    // Capped at its first size: a store file otherwise grows as it fills (block_store_growth.test.ts).
    return BlockStore.open(path, { create, sizeBytes: TINY_STORE_BYTES, maxSizeBytes: TINY_STORE_BYTES, blockSize: BLOCK_SIZE, encoding: 'binary' });
  }

  /** Closes `store`, reopens its file, and checks that no block leaked; returns the key count. */
  async function closeAndVerify(store: BlockStore): Promise<number> {
    await store.close();
    const reopened = await openTiny(store.path, false);
    try {
      return (await reopened.verifyIntegrity()).keys;
    } finally {
      await reopened.close();
    }
  }

  it('refuses a put with ERR_STORE_FULL, keeps what it has, and accepts writes again after deletes', async () => {
    const path = `${dir}/blobs`;
    const store = await openTiny(path, true);
    const stored: string[] = [];
    try {
      const valueBytes = 16 * BLOCK_SIZE;
      let error: unknown;
      for (let i = 0; i < 100 && error === undefined; i++) {
        try {
          await store.put(`blob-${i}`, pattern(valueBytes, i));
          stored.push(`blob-${i}`);
        } catch (caught) {
          error = caught;
        }
      }
      await rejectsWithCode(() => Promise.reject(error), 'ERR_STORE_FULL');
      assert.ok(stored.length >= 10, `only ${stored.length} values of 16 blocks fit 222 data blocks`);
      const refusedKey = `blob-${stored.length}`;
      assert.equal(await store.has(refusedKey), false, 'the refused put stored nothing');

      // Still readable, still accepting small (inline) writes.
      assert.ok(((await store.get(stored[0])) as Buffer).equals(pattern(valueBytes, 0)));
      await store.put('inline', pattern(100, 999));

      // Deletes free space once their trims complete; then the put fits.
      assert.equal(await store.delete(stored[0]), true);
      assert.equal(await store.delete(stored[1]), true);
      await waitForTrims(store);
      await store.put(refusedKey, pattern(valueBytes, 1000));
      assert.ok(((await store.get(refusedKey)) as Buffer).equals(pattern(valueBytes, 1000)));
    } finally {
      await store.close();
    }
    const reopened = await openTiny(path, false);
    try {
      assert.equal(await reopened.has(stored[0]), false);
      assert.ok(((await reopened.get(stored[2])) as Buffer).equals(pattern(16 * BLOCK_SIZE, 2)));
      assert.ok(((await reopened.get(`blob-${stored.length}`)) as Buffer).equals(pattern(16 * BLOCK_SIZE, 1000)));
      assert.ok(((await reopened.get('inline')) as Buffer).equals(pattern(100, 999)));
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('gives back the blocks of the values that fitted when a batch is refused with ERR_STORE_FULL', async () => {
    const store = await openTiny(`${dir}/batch`, true);
    try {
      await rejectsWithCode(
        () =>
          store.batch([
            { type: 'put', key: 'fits', value: pattern(100 * BLOCK_SIZE, 1) },
            { type: 'put', key: 'does-not-fit', value: pattern(200 * BLOCK_SIZE, 2) },
          ]),
        'ERR_STORE_FULL',
      );
      assert.equal(await store.has('fits'), false, 'a refused batch stores nothing');
      assert.equal(store.stats().blocksUsed, 0, 'blocks taken for the refused batch were not given back');
      await store.put('needs-most-of-the-store', pattern(150 * BLOCK_SIZE, 3));
    } finally {
      await store.close();
    }
  });

  /**
   * Fills a new tiny store with one-block values until a put is refused, and
   * asserts that the refusal is ERR_STORE_FULL. Every block of the data
   * region is then used, while the 32-block WAL has been starting a
   * checkpoint (which needs blocks of its own) every 16 commits.
   */
  async function fillBlockByBlock(path: string): Promise<{ store: BlockStore; stored: number }> {
    const store = await openTiny(path, true);
    let stored = 0;
    let error: unknown;
    for (let i = 0; i < 400 && error === undefined; i++) {
      try {
        await store.put(`block-${i}`, pattern(BLOCK_SIZE, i));
        stored++;
      } catch (caught) {
        error = caught;
      }
    }
    await rejectsWithCode(() => Promise.reject(error), 'ERR_STORE_FULL');
    assert.ok(stored > 150, `stored ${stored} one-block values in 222 data blocks`);
    return { store, stored };
  }

  it('refuses with ERR_STORE_FULL when filled block by block, and accepts puts again after deletes', async () => {
    const { store, stored } = await fillBlockByBlock(`${dir}/blocks`);
    try {
      for (let i = 0; i < 10; i++) assert.equal(await store.delete(`block-${i}`), true);
      await waitForTrims(store);
      for (let i = 0; i < 5; i++) await store.put(`again-${i}`, pattern(BLOCK_SIZE, 500 + i));
      assert.ok(((await store.get('again-4')) as Buffer).equals(pattern(BLOCK_SIZE, 504)));
    } catch (error) {
      await store.close();
      throw error;
    }
    assert.equal(await closeAndVerify(store), stored - 10 + 5);
  });

  /** Deletes the 40 newest one-block values — more one-record commits than the WAL holds without a checkpoint — then needs 10 blocks. */
  async function deleteFortyThenPut(store: BlockStore, stored: number): Promise<void> {
    try {
      for (let i = 0; i < 40; i++) assert.equal(await store.delete(`block-${stored - 1 - i}`), true, `delete ${i}`);
      await waitForTrims(store);
      await store.put('after-deletes', pattern(10 * BLOCK_SIZE, 600));
    } catch (error) {
      await store.close();
      throw error;
    }
    assert.equal(await closeAndVerify(store), stored - 40 + 1);
  }

  it('keeps accepting deletes when full, through the checkpoints the WAL forces', async () => {
    const { store, stored } = await fillBlockByBlock(`${dir}/deletes`);
    await deleteFortyThenPut(store, stored);
  });

  it('keeps accepting deletes when reopened full', async () => {
    const path = `${dir}/reopened-full`;
    const filled = await fillBlockByBlock(path);
    await filled.store.close();
    await deleteFortyThenPut(await openTiny(path, false), filled.stored);
  });

  it('refuses writes with ERR_STORE_FULL, never ERR_STORE_FAILED, while full', async () => {
    const { store } = await fillBlockByBlock(`${dir}/inline-when-full`);
    try {
      // Inline values need no data blocks, but the checkpoints their commits
      // force do: the store may refuse them, but only as full.
      for (let i = 0; i < 40; i++) {
        await store.put(`inline-${i}`, pattern(10, 700 + i)).catch((error: unknown) => {
          assert.equal((error as { code?: string }).code, 'ERR_STORE_FULL', `inline put ${i}: ${String(error)}`);
        });
      }
      assert.equal(await store.delete('block-0'), true);
    } finally {
      await store.close();
    }
  });

  it('keeps taking deletes after a large batch of them on a store full of inline values, also after a reopen', async () => {
    // Deletes of inline values free nothing until a checkpoint rewrites the
    // leaves they touched: a commit whose checkpoint would not fit must be
    // refused (or split) before it is written, or the store could never
    // checkpoint again, its WAL would fill, and every write would be refused.
    const path = `${dir}/inline-deletes`;
    const key = (i: number): string => `k${String(i).padStart(6, '0')}`;
    let store = await openTiny(path, true);
    let stored = 0;
    for (;;) {
      try {
        await store.put(key(stored), pattern(200, stored));
        stored++;
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'ERR_STORE_FULL');
        break;
      }
    }
    assert.ok(stored > 1000, `stored ${stored} inline values`);
    await store.checkpoint();
    const victims = Array.from({ length: Math.floor(stored / 15) }, (_, i) => i * 15);
    // Taken whole, or refused as full (then in smaller batches): never a commit that wedges the store.
    await store.batch(victims.map((i) => ({ type: 'del' as const, key: key(i) }))).catch(async (error: unknown) => {
      assert.equal((error as { code?: string }).code, 'ERR_STORE_FULL');
      for (let first = 0; first < victims.length; first += 10) {
        await store.batch(victims.slice(first, first + 10).map((i) => ({ type: 'del' as const, key: key(i) })));
      }
    });
    await store.checkpoint();
    for (let i = 1; i < stored; i += 15) assert.equal(await store.delete(key(i)), true, `delete of ${key(i)}`);
    await store.close();
    store = await openTiny(path, false);
    try {
      for (let i = 2; i < stored; i += 15) assert.equal(await store.delete(key(i)), true, `delete of ${key(i)} after reopening`);
      assert.equal(await store.has(key(0)), false);
      assert.equal(await store.has(key(3)), true);
    } finally {
      await store.close();
    }
    assert.equal(await closeAndVerify(await openTiny(path, false)), stored - victims.length - [...Array(stored).keys()].filter((i) => i % 15 === 1 || i % 15 === 2).length);
  });

  it('of the smallest size a store of a fixed size may have, takes hundreds of small puts and then every delete (with 512-byte blocks it took one put, then refused every other; found by a review)', async () => {
    for (const blockSize of [512, 4096]) {
      let sizeBytes = blockSize;
      // A device of a fixed size (no sizeBytesMax): the minimum that never grows.
      while (typeof storeLayout(sizeBytes, blockSize, undefined, false) === 'string') sizeBytes += blockSize;
      const device = new SimulatedDevice({ sizeBytes, ioAlignment: 512 });
      const store = await BlockStore.open('smallest', { device, create: true, blockSize, encoding: 'binary' });
      try {
        let puts = 0;
        const full = await rejectsWithCode(async () => {
          for (; ; puts++) await store.put(`key${puts}`, pattern(100, puts));
        }, 'ERR_STORE_FULL');
        // It says why it did not grow, as a store file at its limit does.
        assert.match(full.message, /a block device cannot grow$/);
        assert.ok(puts >= 200, `${blockSize}-byte blocks, ${sizeBytes} bytes: ${puts} puts`);
        for (let i = 0; i < puts; i++) await store.delete(`key${i}`);
        await store.put('again', pattern(100, 1));
      } finally {
        await store.close();
      }
    }
  });

  it('of the smallest size a store file capped at it may have, takes hundreds of small puts and then every delete (capped by maxSizeBytes it took one put, or none; found by a review)', async () => {
    for (const blockSize of [512, 4096]) {
      // The smallest size that opens, in steps of 4 KiB.
      let store: BlockStore | undefined;
      let sizeBytes = 0;
      for (sizeBytes = 64 << 10; store === undefined; sizeBytes += 4096) {
        const path = `${dir}/capped-${blockSize}`;
        store = await BlockStore.open(path, { create: true, blockSize, sizeBytes, maxSizeBytes: sizeBytes, encoding: 'binary' }).catch((error: Error & { code?: string }) => {
          assert.ok(error.code === 'ERR_STORE_NO_SPACE' || error.code === 'ERR_INVALID_ARG', `${sizeBytes}: ${error.message}`);
          return undefined;
        });
      }
      try {
        let puts = 0;
        await rejectsWithCode(async () => {
          for (; ; puts++) await store.put(`key${puts}`, pattern(100, puts));
        }, 'ERR_STORE_FULL');
        assert.ok(puts >= 200, `${blockSize}-byte blocks, capped at ${sizeBytes - 4096} bytes: ${puts} puts`);
        for (let i = 0; i < puts; i++) await store.delete(`key${i}`);
      } finally {
        await store.close();
      }
    }
  });

  it('reopens a small store file with the options and create: true that made it (a larger minimum for stores of a fixed size refused them; found by a review)', async () => {
    for (const [name, options] of [
      ['small', { sizeBytes: 192 << 10, walSizeBytes: 64 << 10 }],
      ['small-blocks', { blockSize: 512, sizeBytes: 128 << 10 }],
    ] as const) {
      const path = `${dir}/${name}`;
      const made = await BlockStore.open(path, { create: true, encoding: 'binary', ...options });
      await made.put('k', pattern(100, 1));
      await made.close();
      const reopened = await BlockStore.open(path, { create: true, encoding: 'binary', ...options });
      try {
        assert.ok(((await reopened.get('k')) as Buffer).equals(pattern(100, 1)), name);
      } finally {
        await reopened.close();
      }
    }
  });
});
