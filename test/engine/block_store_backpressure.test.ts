// Backpressure: commits go on while a checkpoint is written, dirtying pages
// in step with its progress — one budget at its start, up to
// BACKPRESSURE_DIRTY_FACTOR budgets' worth at its end — and wait for its next
// batch of writes past that, so dirty pages (memory pinned until a
// checkpoint writes them) stay bounded however slow checkpoints are, and no
// commit waits for a whole checkpoint. On the simulated
// device every IO completes a macrotask later, so a checkpoint of many pages
// spans many commits of a writer that keeps its queue full.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { pattern } from './helpers.js';

const DEVICE_BYTES = 256 << 20;
/** The smallest budget: 256 dirty pages (DIRTY_PAGES_MIN). */
const CACHE_BYTES = 1 << 20;
const BUDGET_PAGES = 256;
const BACKPRESSURE_DIRTY_FACTOR = 4;
const BATCH_KEYS = 200;
const BATCHES = 400;
/** Writes kept queued at once, so commits are always waiting to run. */
const WRITES_IN_FLIGHT = 4;

function keyOf(index: number): string {
  return `key-${((index * 2654435761) >>> 0).toString(16).padStart(8, '0')}`;
}

describe('BlockStore backpressure', function () {
  this.timeout(300_000);

  it('keeps dirty pages within the budgets a checkpoint in progress allows, and commits wait for its progress instead', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open('backpressure', { device, create: true, walSizeBytes: 64 << 20, cacheSizeBytes: CACHE_BYTES, encoding: 'binary' });
    let dirtyMax = 0;
    try {
      const value = pattern(200, 1);
      const inFlight = new Set<Promise<void>>();
      let key = 0;
      for (let batch = 0; batch < BATCHES; batch++) {
        const operations = [];
        for (let i = 0; i < BATCH_KEYS; i++, key++) operations.push({ type: 'put' as const, key: keyOf(key), value });
        const write = store.batch(operations).then(() => {
          inFlight.delete(write);
          dirtyMax = Math.max(dirtyMax, store.stats().dirtyPages);
        });
        inFlight.add(write);
        if (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      const stats = store.stats();
      // Commits during a checkpoint dirty up to the factor's budgets, plus the
      // commit that crosses it (a group of every queued write, each key a
      // page and a split); the next checkpoint freezes that much and commits
      // may dirty as much again while it is written.
      const commitPagesMax = 2 * BATCH_KEYS * WRITES_IN_FLIGHT;
      const bound = 2 * (BACKPRESSURE_DIRTY_FACTOR * BUDGET_PAGES + commitPagesMax);
      console.log(`      ${stats.checkpoints} checkpoints, ${stats.checkpointWaits} waits, largest dirty ${dirtyMax} pages (bound ${bound})`);
      assert.ok(stats.checkpointWaits > 0, 'no commit ever waited: the load did not outrun its checkpoints');
      // Paced: commits wait for a checkpoint's batches, several times in one
      // checkpoint; waiting for its end could wait once a checkpoint at most.
      assert.ok(stats.checkpointWaits > 2 * stats.checkpoints, `${stats.checkpointWaits} waits in ${stats.checkpoints} checkpoints: commits waited for whole checkpoints`);
      assert.ok(dirtyMax <= bound, `${dirtyMax} dirty pages, more than ${bound}`);
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });
});
