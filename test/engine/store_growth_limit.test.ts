// StoreGrowth keeps a store within what its format can describe: the free
// set holds at most FREE_BITMAP_BITS_MAX data blocks, and a growth past them
// made a superblock durable that no open could load (found by a review, with
// a sparse device of ~2^32 512-byte blocks). Fakes stand for the device and
// the parts: a real store of that size takes GiBs of memory to reach.
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import type { Checkpointer } from '../../engine/checkpointer.js';
import { FREE_BITMAP_BITS_MAX } from '../../engine/free_bitmap.js';
import type { Space } from '../../engine/space.js';
import { StoreError } from '../../engine/store_error.js';
import { StoreGrowth } from '../../engine/store_growth.js';
import type { StoreState } from '../../engine/store_state.js';

const BLOCK_SIZE = 512;
const DATA_START_BLOCK = 1000;

function growthNear(limitGapBlocks: number): { growth: StoreGrowth; grownTo: number[] } {
  const grownTo: number[] = [];
  let blockCount = DATA_START_BLOCK + FREE_BITMAP_BITS_MAX - limitGapBlocks;
  const device = {
    sizeBytes: blockCount * BLOCK_SIZE,
    sizeBytesMax: Number.MAX_SAFE_INTEGER,
    grow: (sizeBytes: number) => {
      grownTo.push(sizeBytes / BLOCK_SIZE);
      return Promise.resolve();
    },
  } as unknown as BlockDevice;
  const checkpointer = {
    superblock: { dataStartBlock: DATA_START_BLOCK },
    grow: (count: number) => {
      blockCount = count;
      return Promise.resolve();
    },
  } as unknown as Checkpointer;
  const space = {
    get blockCount() {
      return blockCount;
    },
    allocatableBlockCount: 0,
    reclaimableBlockCount: 0,
  } as unknown as Space;
  const state = { fail: (error: unknown) => error } as unknown as StoreState;
  return { growth: new StoreGrowth({ device, checkpointer, space, state, blockSize: BLOCK_SIZE, maxSizeBytes: undefined }), grownTo };
}

describe('StoreGrowth at the format limit', () => {
  it('grows to the most data blocks a free set describes, no further, and then says the format is the limit', async () => {
    const { growth, grownTo } = growthNear(100);
    assert.equal(await growth.grow(10), true);
    assert.deepEqual(grownTo, [DATA_START_BLOCK + FREE_BITMAP_BITS_MAX]);
    assert.equal(growth.canGrow, false);
    assert.equal(await growth.grow(1), false);
    const refusal = growth.refusal(new StoreError('ERR_STORE_FULL', 'no room'));
    assert.match(refusal.message, /the format's: a free set of at most 4294966272 blocks/);
  });

  it('does not grow for a write that lacks more than the limit leaves', async () => {
    const { growth, grownTo } = growthNear(100);
    assert.equal(await growth.grow(101), false);
    assert.deepEqual(grownTo, []);
    // Another writer's refusal first, whose need fits: not labelled with this one's.
    assert.doesNotMatch(growth.refusal(new StoreError('ERR_STORE_FULL', 'no room'), 50).message, /lacks/);
    assert.match(growth.refusal(new StoreError('ERR_STORE_FULL', 'no room'), 101).message, /lacks 101 blocks/);
  });
});
