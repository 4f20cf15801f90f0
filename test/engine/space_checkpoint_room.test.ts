// Space.allocateCheckpoint: the free-set frame (at most FREE_SET_EXTENTS_MAX
// runs) is placed before the pages (one unit each, anywhere), so pages
// never break up the long runs only the frame needs.
import assert from 'node:assert/strict';

import type { Extent } from '../../format/extent.js';
import { BlockCache } from '../../engine/block_cache.js';
import { BufferPool } from '../../engine/buffer_pool.js';
import { ExtentAllocator } from '../../engine/extent_allocator.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { Space } from '../../engine/space.js';
import { StoreState } from '../../engine/store_state.js';

const BLOCK_SIZE = 4096;

function spaceWithFree(blockCount: number, free: Extent[], frameBlocks: number): Space {
  const pool = new BufferPool(BLOCK_SIZE, 4096, 16);
  return new Space({
    device: new SimulatedDevice({ sizeBytes: blockCount * BLOCK_SIZE }),
    blockSize: BLOCK_SIZE,
    cache: new BlockCache(pool, 16 * BLOCK_SIZE),
    state: new StoreState(),
    allocator: ExtentAllocator.fromFreeExtents(0, blockCount, free),
    pageBlocks: 1,
    pageCapacityBytes: BLOCK_SIZE - 64,
    freeSetFrameBlocks: frameBlocks,
    tree: { dirtyNodeCountSinceFreeze: 0, height: 0 },
  });
}

describe('Space.allocateCheckpoint', () => {
  it('places the free-set frame before the pages, so pages do not take the runs it needs', () => {
    // One run of 6 blocks, first (where next-fit starts), then 8 single
    // blocks: 14 free. A 12-block frame in at most 8 runs needs the run of
    // 6 whole (6 + 6 singles); 2 pages fit the 2 singles left. Pages
    // placed first would take 2 blocks of the run of 6, leaving 4 + 7
    // singles = 11 in the 8 largest runs.
    const free: Extent[] = [{ startBlock: 0, blockCount: 6 }];
    for (let i = 0; i < 8; i++) free.push({ startBlock: 7 + 2 * i, blockCount: 1 });
    const space = spaceWithFree(24, free, 12);
    const blocks = space.allocateCheckpoint(2, 12);
    assert.ok(blocks !== undefined, 'a checkpoint that fits exactly was refused');
    assert.equal(blocks.frame.reduce((sum, extent) => sum + extent.blockCount, 0), 12);
    assert.ok(blocks.frame.length <= 8);
    assert.equal(blocks.pages.length, 2);
    assert.equal(space.allocatableBlockCount, 0);
  });

  it('gives every block back when the pages do not fit after the frame', () => {
    const space = spaceWithFree(24, [{ startBlock: 0, blockCount: 10 }], 8);
    assert.equal(space.allocateCheckpoint(3, 8), undefined);
    assert.equal(space.allocatableBlockCount, 10);
  });
});
