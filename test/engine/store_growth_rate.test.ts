// StoreGrowth sizes and starts growths by what the writes measured while
// the last one ran (engine/store_growth.ts): the blocks they took, and
// whether they ran out of room and waited. Fakes stand for the device, the
// checkpointer and the space, so that each growth ends when the test says
// and the blocks taken meanwhile are exact: on a real file that depends on
// how fast the disk is.
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import type { Checkpointer } from '../../engine/checkpointer.js';
import type { Space } from '../../engine/space.js';
import {
  GROW_AHEAD_FREE_SHARE,
  GROW_AHEAD_GROWTHS_OF_WRITES,
  GROWTH_SHARE,
  GROWTH_STEP_BYTES_MIN,
  GROWTH_STEP_GROWTHS_OF_WRITES,
  StoreGrowth,
} from '../../engine/store_growth.js';
import type { StoreState } from '../../engine/store_state.js';

const BLOCK_SIZE = 4096;
/** Large enough that a quarter of it is more than GROWTH_STEP_BYTES_MIN. */
const FIRST_BLOCK_COUNT = 100_000;

/** A store of FIRST_BLOCK_COUNT blocks whose growths end when `finishGrowth()` is called. */
function growingStore(): {
  growth: StoreGrowth;
  space: { blockCount: number; allocatableBlockCount: number; reclaimableBlockCount: number };
  grownTo: number[];
  finishGrowth: () => void;
} {
  const grownTo: number[] = [];
  const space = { blockCount: FIRST_BLOCK_COUNT, allocatableBlockCount: 0, reclaimableBlockCount: 0 };
  const pending: (() => void)[] = [];
  const device = {
    sizeBytes: FIRST_BLOCK_COUNT * BLOCK_SIZE,
    sizeBytesMax: Number.MAX_SAFE_INTEGER,
    grow: (sizeBytes: number) => {
      grownTo.push(sizeBytes / BLOCK_SIZE);
      return Promise.resolve();
    },
  } as unknown as BlockDevice;
  const checkpointer = {
    superblock: { dataStartBlock: 0 },
    // The new blocks join the free ones when the superblock naming them is durable: when the test says.
    grow: (blockCount: number) =>
      new Promise<void>((resolve) => {
        pending.push(() => {
          space.allocatableBlockCount += blockCount - space.blockCount;
          space.blockCount = blockCount;
          resolve();
        });
      }),
  } as unknown as Checkpointer;
  const state = { fail: (error: unknown) => error } as unknown as StoreState;
  const growth = new StoreGrowth({ device, checkpointer, space: space as unknown as Space, state, blockSize: BLOCK_SIZE, maxSizeBytes: undefined });
  const finishGrowth = (): void => {
    const finish = pending.shift();
    assert.ok(finish !== undefined, 'a growth is waiting for its superblock');
    finish();
  };
  return { growth, space, grownTo, finishGrowth };
}

/** Lets the growth under way reach its superblock write (the fake device's grow resolves at once). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** The step the quarter rule alone gives a store of `blockCount` blocks. */
function quarterStep(blockCount: number): number {
  return Math.max(Math.ceil(blockCount * GROWTH_SHARE), GROWTH_STEP_BYTES_MIN / BLOCK_SIZE);
}

describe('StoreGrowth sized by what the writes measured', () => {
  it('grows by a quarter while the writes neither wait nor take much during a growth', async () => {
    const { growth, space, grownTo, finishGrowth } = growingStore();
    // Ahead of demand, with nothing taken meanwhile: a quarter each time.
    for (let round = 0; round < 3; round++) {
      space.allocatableBlockCount = Math.floor(space.blockCount * GROW_AHEAD_FREE_SHARE) - 1;
      const before = space.blockCount;
      growth.growAheadIfLow();
      await settle();
      finishGrowth();
      await growth.settled();
      assert.equal(space.blockCount, before + quarterStep(before));
    }
    assert.equal(grownTo.length, 3);
    // And no growth starts with an eighth of the store free.
    space.allocatableBlockCount = Math.ceil(space.blockCount * GROW_AHEAD_FREE_SHARE);
    growth.growAheadIfLow();
    await settle();
    assert.equal(grownTo.length, 3);
  });

  it('after a growth more writes ran out of room during, adds twice as much and starts the next while that much is free', async () => {
    const { growth, space, grownTo, finishGrowth } = growingStore();
    // A growth ahead of demand, and a write that runs out of room while it runs.
    space.allocatableBlockCount = Math.floor(FIRST_BLOCK_COUNT * GROW_AHEAD_FREE_SHARE) - 1;
    growth.growAheadIfLow();
    await settle();
    const joined = growth.grow(500);
    finishGrowth();
    assert.equal(await joined, true);
    const firstStep = quarterStep(FIRST_BLOCK_COUNT);
    assert.equal(space.blockCount, FIRST_BLOCK_COUNT + firstStep);
    // More free than an eighth of the store, less than that step: under the
    // quarter rule no growth would start yet; after this one, one does.
    space.allocatableBlockCount = firstStep - 1;
    assert.ok(space.allocatableBlockCount > space.blockCount * GROW_AHEAD_FREE_SHARE);
    growth.growAheadIfLow();
    await settle();
    assert.equal(grownTo.length, 2, 'the next growth started ahead of demand');
    finishGrowth();
    await growth.settled();
    assert.equal(space.blockCount, FIRST_BLOCK_COUNT + firstStep + 2 * firstStep, 'twice the last step, more than a quarter');
    // No write joined that one, and the writes took nothing: the next is a quarter again.
    const before = space.blockCount;
    space.allocatableBlockCount = Math.floor(before * GROW_AHEAD_FREE_SHARE) - 1;
    growth.growAheadIfLow();
    await settle();
    finishGrowth();
    await growth.settled();
    assert.equal(space.blockCount, before + quarterStep(before));
  });

  it('does not double after a growth a write started itself on finding no room, with none joining it (a checkpoint taking the free space for a moment)', async () => {
    const { growth, space, grownTo, finishGrowth } = growingStore();
    const asked = growth.grow(500);
    await settle();
    finishGrowth();
    assert.equal(await asked, true);
    const afterFirst = space.blockCount;
    assert.equal(afterFirst, FIRST_BLOCK_COUNT + quarterStep(FIRST_BLOCK_COUNT));
    // Less than that step free, more than an eighth: no growth ahead yet.
    space.allocatableBlockCount = quarterStep(FIRST_BLOCK_COUNT) - 1;
    growth.growAheadIfLow();
    await settle();
    assert.equal(grownTo.length, 1);
    // The next one, again on demand: a quarter.
    const again = growth.grow(500);
    await settle();
    finishGrowth();
    assert.equal(await again, true);
    assert.equal(space.blockCount, afterFirst + quarterStep(afterFirst));
  });

  it('counts writes that joined a growth under way as waiting for it', async () => {
    const { growth, space, finishGrowth } = growingStore();
    space.allocatableBlockCount = Math.floor(FIRST_BLOCK_COUNT * GROW_AHEAD_FREE_SHARE) - 1;
    growth.growAheadIfLow();
    await settle();
    // A write runs out of room while the growth ahead of it runs.
    const joined = growth.grow(300);
    finishGrowth();
    assert.equal(await joined, true);
    const firstStep = quarterStep(FIRST_BLOCK_COUNT);
    const before = space.blockCount;
    space.allocatableBlockCount = Math.floor(before * GROW_AHEAD_FREE_SHARE) - 1;
    growth.growAheadIfLow();
    await settle();
    finishGrowth();
    await growth.settled();
    assert.equal(space.blockCount, before + 2 * firstStep);
  });

  it('sizes the next growth by the blocks the writes took while the last one ran, at most the store size, and starts it early enough', async () => {
    const { growth, space, grownTo, finishGrowth } = growingStore();
    space.allocatableBlockCount = Math.floor(FIRST_BLOCK_COUNT * GROW_AHEAD_FREE_SHARE) - 1;
    growth.growAheadIfLow();
    await settle();
    // The writes take 9 000 blocks while the growth runs (without running out).
    const takenBlocks = 9_000;
    space.allocatableBlockCount -= takenBlocks;
    finishGrowth();
    await growth.settled();
    const afterFirst = space.blockCount;
    assert.equal(afterFirst, FIRST_BLOCK_COUNT + quarterStep(FIRST_BLOCK_COUNT));
    // Started while twice that is still free (more than an eighth of the store).
    space.allocatableBlockCount = GROW_AHEAD_GROWTHS_OF_WRITES * takenBlocks - 1;
    assert.ok(space.allocatableBlockCount > afterFirst * GROW_AHEAD_FREE_SHARE);
    growth.growAheadIfLow();
    await settle();
    assert.equal(grownTo.length, 2);
    // Its step: GROWTH_STEP_GROWTHS_OF_WRITES times what the writes took during the first (more than a quarter).
    assert.ok(GROWTH_STEP_GROWTHS_OF_WRITES * takenBlocks > quarterStep(afterFirst));
    space.allocatableBlockCount -= takenBlocks;
    finishGrowth();
    await growth.settled();
    const afterSecond = space.blockCount;
    assert.equal(afterSecond, afterFirst + GROWTH_STEP_GROWTHS_OF_WRITES * takenBlocks);
    // Writes taking more than the store during a growth: the next step is the store's size, no more.
    space.allocatableBlockCount = GROW_AHEAD_GROWTHS_OF_WRITES * takenBlocks - 1;
    growth.growAheadIfLow();
    await settle();
    space.allocatableBlockCount -= afterSecond + 1;
    finishGrowth();
    await growth.settled();
    const afterThird = space.blockCount;
    space.allocatableBlockCount = 0;
    growth.growAheadIfLow();
    await settle();
    finishGrowth();
    await growth.settled();
    assert.equal(space.blockCount, 2 * afterThird);
  });
});
