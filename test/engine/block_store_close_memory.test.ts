// A closed store that the application still references holds none of its
// page cache: its memory goes back to the heap at close, not when the last
// reference to the store goes.
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';

import { BlockStore } from '../../engine/block_store.js';
import { makeStoreDir, openSmallStore, pattern, removeStoreDir } from './helpers.js';

/** The global gc() of a process started without --expose-gc. */
function garbageCollector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

function heapAndBuffersBytes(gc: () => void): number {
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

describe('BlockStore#close() and memory', () => {
  it('lets the page cache go at close, while the closed store is still referenced', async () => {
    const gc = garbageCollector();
    const dir = makeStoreDir();
    try {
      const path = `${dir}/store`;
      const loading = await openSmallStore(path, { encoding: 'binary' });
      const keyCount = 20_000;
      for (let first = 0; first < keyCount; first += 1_000) {
        await loading.batch(Array.from({ length: 1_000 }, (_, i) => ({ type: 'put' as const, key: `key-${String(first + i).padStart(6, '0')}`, value: pattern(200, first + i) })));
      }
      await loading.close();

      // What close() frees with nothing cached (the ring, buffers), then with the pages of every key cached.
      const freedAtClose = async (readEveryKey: boolean): Promise<{ freedBytes: number; pageCacheBytes: number; store: BlockStore }> => {
        const store = await BlockStore.open(path, { encoding: 'binary', cacheSizeBytes: 64 << 20 });
        if (readEveryKey) for (let i = 0; i < keyCount; i++) await store.get(`key-${String(i).padStart(6, '0')}`);
        const { pageCacheBytes } = store.stats();
        const open = heapAndBuffersBytes(gc);
        await store.close();
        return { freedBytes: open - heapAndBuffersBytes(gc), pageCacheBytes, store };
      };
      const empty = await freedAtClose(false);
      const full = await freedAtClose(true);
      assert.ok(full.pageCacheBytes > 4 << 20, `${full.pageCacheBytes} bytes of pages cached`);
      // Both stores are still referenced here: only close() can have let their pages go.
      assert.equal(empty.store.readOnly, false);
      assert.equal(full.store.readOnly, false);
      const freedByCacheBytes = full.freedBytes - empty.freedBytes;
      assert.ok(
        freedByCacheBytes > full.pageCacheBytes / 4,
        `${(freedByCacheBytes / 2 ** 20).toFixed(1)} MiB more freed at close with ${(full.pageCacheBytes / 2 ** 20).toFixed(1)} MiB of pages cached (estimated) than with none`,
      );
    } finally {
      removeStoreDir(dir);
    }
  });
});
