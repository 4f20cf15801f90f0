// BlockStore#verifyIntegrity() on a real file: on a healthy store it
// accounts for every block of the data region (free, referenced, or waiting
// for its trim) whatever the store is doing in the background; it rejects
// with ERR_STORE_CORRUPT when an extent value's data does not match its
// checksum (block_store_corruption.test.ts damages the file itself).
import assert from 'node:assert/strict';

import { SUPERBLOCK_SLOT_COUNT } from '../../format/constants.js';
import type { BlockStore } from '../../engine/block_store.js';
import { BlockStore as Store } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { ReadHoldingDevice } from './read_holding_device.js';
import { makeStoreDir, openSmallStore, pattern, removeStoreDir, SMALL_STORE_BYTES } from './helpers.js';

const BLOCK_SIZE = 4096;
const SMALL_WAL_BYTES = 64 << 10;

describe('BlockStore#verifyIntegrity()', () => {
  let dir: string | undefined;
  let store: BlockStore | undefined;

  beforeEach(async () => {
    dir = makeStoreDir();
    store = await openSmallStore(`${dir}/store`, { encoding: 'binary', walSizeBytes: SMALL_WAL_BYTES });
  });

  afterEach(async () => {
    await store?.close();
    removeStoreDir(dir);
  });

  it('accounts for every data block of a store with inline and extent values', async () => {
    await store!.put('inline', pattern(100, 1));
    await store!.put('one-block', pattern(3000, 2));
    await store!.put('three-blocks', pattern(3 * BLOCK_SIZE, 3));
    const result = await store!.verifyIntegrity();
    assert.equal(result.keys, 3);
    assert.equal(result.extentValues, 2);
    assert.equal(result.referencedBlocks, 4);
    const dataBlocks = SMALL_STORE_BYTES / BLOCK_SIZE - SUPERBLOCK_SLOT_COUNT - SMALL_WAL_BYTES / BLOCK_SIZE;
    assert.equal(result.referencedBlocks + result.freeBlocks + result.trimPendingBlocks, dataBlocks);
  });

  it('counts the blocks of overwritten values whose trim has not finished as pending, not leaked', async () => {
    await store!.put('value', pattern(8 * BLOCK_SIZE, 4));
    const overwrite = store!.put('value', pattern(BLOCK_SIZE, 5));
    await overwrite;
    const result = await store!.verifyIntegrity(); // the trim of the old 8 blocks may still run
    assert.equal(result.referencedBlocks + result.freeBlocks + result.trimPendingBlocks, SMALL_STORE_BYTES / BLOCK_SIZE - SUPERBLOCK_SLOT_COUNT - 16);
  });

  it('passes while a checkpoint the WAL started is still being written', async () => {
    // Each put is a one-block commit; at half of the 16-block WAL the store
    // starts a checkpoint in the background and resolves the put without
    // waiting for it.
    let puts = 0;
    while (store!.stats().walFill < 0.5) await store!.put(`key-${puts++}`, pattern(3000, puts));
    assert.ok(puts <= 16);
    const result = await store!.verifyIntegrity();
    assert.equal(result.keys, puts);
  });

  it('passes when a checkpoint starts and completes while it walks the tree (it checks the tree as it was when it started)', async () => {
    // A tree of ~500 leaves in a cache of a few pages: the walk reads pages
    // from the device. Its reads are held until a checkpoint started after
    // the walk's snapshot has completed, so the checkpoint always gives the
    // walk's dirty pages blocks that the snapshot's bookkeeping has as free:
    // the walk must not count them (it counted them as "referenced and also
    // free": ERR_STORE_CORRUPT on a healthy store).
    const device = new ReadHoldingDevice(new SimulatedDevice({ sizeBytes: SMALL_STORE_BYTES }));
    const walked = await Store.open('walked', { device, create: true, cacheSizeBytes: 64 << 10, encoding: 'binary' });
    try {
      const key = (index: number): string => `key${String(index).padStart(6, '0')}`;
      const keyCount = 100_000;
      for (let first = 0; first < keyCount; first += 1000) {
        await walked.batch(Array.from({ length: 1000 }, (_, offset) => ({ type: 'put' as const, key: key(first + offset), value: pattern(40, first + offset) })));
      }
      await walked.checkpoint();
      for (let trial = 0; trial < 4; trial++) {
        // Dirty leaves all over the tree, then verify with a checkpoint completed during its walk.
        await walked.batch(Array.from({ length: 5 }, (_, index) => ({ type: 'put' as const, key: key((index * 19_997 + trial * 7) % keyCount), value: pattern(40, trial) })));
        device.holding = true;
        const verify = walked.verifyIntegrity();
        while (device.heldCount === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        await walked.checkpoint();
        device.holding = false;
        device.release();
        const result = await verify;
        assert.equal(result.keys, keyCount);
      }
      // And the store is as healthy as the walk said.
      assert.equal((await walked.verifyIntegrity()).keys, keyCount);
    } finally {
      await walked.close();
    }
  });
});
