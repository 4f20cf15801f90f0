// BlockStore#stats() on a real file: counts that agree with what the test
// did — keys, blocks used and free, commits, cache hits, WAL fill in [0, 1],
// checkpoints, and trims issued once overwritten extent values are freed.
import assert from 'node:assert/strict';

import { SUPERBLOCK_SLOT_COUNT } from '../../format/constants.js';
import { BlockStore } from '../../engine/block_store.js';
import { makeStoreDir, openSmallStore, pattern, removeStoreDir, SMALL_STORE_BYTES, waitForTrims } from './helpers.js';

const BLOCK_SIZE = 4096;
const WAL_BYTES = 1 << 20;
const WAL_BLOCKS = WAL_BYTES / BLOCK_SIZE;

describe('BlockStore#stats()', () => {
  let dir: string | undefined;
  let store: BlockStore | undefined;

  before(async () => {
    dir = makeStoreDir();
    // A 1 MiB WAL: no checkpoint starts on its own during these tests.
    store = await openSmallStore(`${dir}/store`, { encoding: 'binary', blockSize: BLOCK_SIZE, walSizeBytes: WAL_BYTES });
  });

  after(async () => {
    await store?.close();
    removeStoreDir(dir);
  });

  it('describes a new store: no keys, nothing used, an empty WAL', () => {
    const stats = store!.stats();
    assert.equal(stats.keys, 0);
    assert.equal(stats.blocksTotal, SMALL_STORE_BYTES / BLOCK_SIZE);
    assert.equal(stats.blocksUsed, 0);
    assert.equal(stats.blocksFree, stats.blocksTotal - SUPERBLOCK_SLOT_COUNT - WAL_BLOCKS, 'all but the four superblock copies and the WAL');
    assert.equal(stats.commits, 0);
    assert.equal(stats.meanRecordsPerCommit, 0);
    assert.equal(stats.walFill, 0);
    assert.equal(stats.trimsIssued, 0);
    assert.equal(stats.pendingTrims, 0);
    assert.equal(stats.checkpoints, 0);
  });

  it('counts keys, commits, records per commit and the blocks extent values use', async () => {
    await store!.put('inline', pattern(10, 1));
    await store!.put('extent', pattern(3 * BLOCK_SIZE, 2));
    await store!.batch([
      { type: 'put', key: 'b1', value: pattern(10, 3) },
      { type: 'put', key: 'b2', value: pattern(10, 4) },
      { type: 'put', key: 'b3', value: pattern(10, 5) },
    ]);
    const stats = store!.stats();
    assert.equal(stats.keys, 5);
    assert.equal(stats.commits, 3);
    assert.equal(stats.meanRecordsPerCommit, 5 / 3);
    assert.equal(stats.blocksUsed, 3);
    assert.equal(stats.blocksUsed + stats.blocksFree, stats.blocksTotal - SUPERBLOCK_SLOT_COUNT - WAL_BLOCKS);
    assert.ok(stats.walFill > 0 && stats.walFill <= 1, `walFill ${stats.walFill}`);
  });

  it('counts cache hits for blocks of values just written, and holds them in cacheBytes', async () => {
    const before = store!.stats();
    await store!.get('extent');
    const after = store!.stats();
    assert.equal(after.cacheHits - before.cacheHits, 3, 'three blocks, all cached by the write');
    assert.equal(after.cacheMisses, before.cacheMisses);
    assert.ok(after.cacheBytes >= 3 * BLOCK_SIZE);
  });

  it('issues trims for the blocks of overwritten extent values, then has none pending', async () => {
    for (let i = 0; i < 5; i++) await store!.put('extent', pattern(2 * BLOCK_SIZE, 10 + i));
    await waitForTrims(store!);
    const stats = store!.stats();
    assert.ok(stats.trimsIssued > 0, `trimsIssued ${stats.trimsIssued}`);
    assert.equal(stats.pendingTrims, 0);
    const integrity = await store!.verifyIntegrity();
    assert.equal(integrity.trimPendingBlocks, 0);
    assert.equal(stats.checkpoints, 0);
    assert.equal(stats.blocksUsed, integrity.referencedBlocks, 'only the live values hold blocks');
    assert.equal(stats.blocksUsed, 2);
  });

  it('counts a checkpoint made with checkpoint(), which empties the WAL', async () => {
    await store!.checkpoint();
    const stats = store!.stats();
    assert.equal(stats.checkpoints, 1);
    assert.equal(stats.walFill, 0, 'the checkpoint covers every commit');
  });
});

describe('BlockStore#stats() with a small WAL', () => {
  let dir: string | undefined;
  let store: BlockStore | undefined;

  before(async () => {
    dir = makeStoreDir();
    store = await openSmallStore(`${dir}/store`, { encoding: 'binary', blockSize: BLOCK_SIZE, walSizeBytes: 64 << 10 });
  });

  after(async () => {
    await store?.close();
    removeStoreDir(dir);
  });

  it('counts the checkpoints the WAL starts, and keeps walFill in [0, 1] however often it wraps', async () => {
    for (let i = 0; i < 100; i++) {
      await store!.put(`wal-${i % 7}`, pattern(500, i));
      const { walFill } = store!.stats();
      assert.ok(walFill >= 0 && walFill <= 1, `walFill ${walFill} after put ${i}`);
    }
    await store!.checkpoint(); // waits for a checkpoint still being written
    const stats = store!.stats();
    assert.ok(stats.checkpoints > 5, `checkpoints ${stats.checkpoints} after 100 commits through a 16-block WAL`);
    assert.equal(stats.walFill, 0, 'a checkpoint covers every commit');
  });
});

describe('BlockStore#stats() page cache counters', () => {
  it('counts each page read from the device once as a miss, however many lookups failed on the way', async () => {
    const dir = makeStoreDir();
    try {
      const path = `${dir}/store`;
      const first = await openSmallStore(path, { encoding: 'binary' });
      // Enough keys for a tree of three levels on 4 KiB pages.
      for (let batch = 0; batch < 20; batch++) {
        await first.batch(Array.from({ length: 500 }, (_, i) => ({ type: 'put' as const, key: `key-${String(batch * 500 + i).padStart(6, '0')}`, value: pattern(200, i) })));
      }
      await first.close();

      const store = await BlockStore.open(path, { encoding: 'binary' });
      try {
        const { treeHeight, pageCacheMisses: before } = store.stats();
        assert.ok(treeHeight >= 3, `a tree of ${treeHeight} levels`);
        // Nothing cached after the open: the first get reads its whole path, one page a level.
        assert.ok(((await store.get('key-004321')) as Buffer).equals(pattern(200, 321)));
        assert.equal(store.stats().pageCacheMisses - before, treeHeight, 'one miss per page read');
        // The same path again: the branches hit; the leaf, which a get
        // caches only on its second miss (TreeLoader's doorkeeper), misses
        // again and is cached; after that, all hits.
        await store.get('key-004322');
        assert.equal(store.stats().pageCacheMisses - before, treeHeight + 1, 'the leaf missed again');
        await store.get('key-004323');
        assert.equal(store.stats().pageCacheMisses - before, treeHeight + 1, 'no miss once the leaf is cached');
      } finally {
        await store.close();
      }
    } finally {
      removeStoreDir(dir);
    }
  });
});
