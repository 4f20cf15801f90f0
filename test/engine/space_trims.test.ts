// Space: release → trim → free. Extents released while the trim loop is
// ending (after its last look at the released list, before it has let go of
// its place) must still be trimmed and freed: a fresh-clone CI run once saw
// one block stay "pending" for good after a store's last delete.
import assert from 'node:assert/strict';

import { BlockCache } from '../../engine/block_cache.js';
import { BufferPool } from '../../engine/buffer_pool.js';
import { ExtentAllocator } from '../../engine/extent_allocator.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { Space } from '../../engine/space.js';
import { StoreState } from '../../engine/store_state.js';

const BLOCK_SIZE = 4096;
const BLOCK_COUNT = 64;

/** A device whose trims complete when the test says so, in microtasks (no turn of the event loop between). */
class GatedTrimDevice extends SimulatedDevice {
  readonly trimsWaiting: (() => void)[] = [];
  override async trim(): Promise<void> {
    await new Promise<void>((resolve) => this.trimsWaiting.push(resolve));
  }
}

function newSpace(device: SimulatedDevice): Space {
  const pool = new BufferPool(BLOCK_SIZE, 4096, 16);
  return new Space({
    device,
    blockSize: BLOCK_SIZE,
    cache: new BlockCache(pool, 16 * BLOCK_SIZE),
    state: new StoreState(),
    allocator: new ExtentAllocator(0, BLOCK_COUNT, []),
    pageBlocks: 1,
    pageCapacityBytes: BLOCK_SIZE - 64,
    freeSetFrameBlocks: 1,
    tree: { dirtyNodeCountSinceFreeze: 0, height: 0 },
  });
}

/** Lets every microtask queued so far run, and those they queue, `turns` deep. */
async function microtasks(turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

describe('Space release → trim → free', () => {
  it('frees extents released in every microtask around the end of a trim loop', async () => {
    // Which microtask the loop ends in depends on the engine's promise
    // plumbing: try a release at each of the first few dozen.
    for (let delay = 0; delay < 40; delay++) {
      const device = new GatedTrimDevice({ sizeBytes: BLOCK_COUNT * BLOCK_SIZE });
      const space = newSpace(device);
      const [first] = space.allocate(1, 1);
      const [second] = space.allocate(1, 1);
      space.committed([first!, second!]);
      space.release([first!], 1);
      assert.equal(device.trimsWaiting.length, 1, 'the trim of the first extent was sent');
      // Its trim completes now; the loop ends some microtasks later.
      device.trimsWaiting.shift()!();
      await microtasks(delay);
      space.release([second!], 2);
      const deadline = Date.now() + 2_000;
      while (space.trimPendingBlockCount > 0 && Date.now() < deadline) {
        for (const complete of device.trimsWaiting.splice(0)) complete();
        await new Promise<void>((resolve) => setTimeout(resolve, 5));
      }
      assert.equal(space.trimPendingBlockCount, 0, `a block released ${delay} microtasks after the first trim completed is still pending`);
    }
  });
});
