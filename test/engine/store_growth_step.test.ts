// How much a growth adds: GROWTH_SHARE of the store while growths ahead of
// demand keep up, twice the last share (up to GROWTH_SHARE_MAX) for each
// growth a write waited for, half again for each growth ahead of the
// writes. Fakes stand for the device and the parts, so that the store is
// large enough for its share, not the least step, to set each growth.
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import type { Checkpointer } from '../../engine/checkpointer.js';
import type { Space } from '../../engine/space.js';
import type { StoreState } from '../../engine/store_state.js';
import { GROWTH_SHARE, GROWTH_SHARE_MAX, GROWTH_STEP_BYTES_MIN, StoreGrowth } from '../../engine/store_growth.js';

const BLOCK_SIZE = 4096;
/** 4 GiB of 4 KiB blocks: a quarter of it is far past GROWTH_STEP_BYTES_MIN. */
const FIRST_BLOCK_COUNT = 1 << 20;

interface Harness {
  growth: StoreGrowth;
  /** The store's block count after each growth. */
  sizes: number[];
  /** Makes the free blocks this share of the store (what growAheadIfLow looks at). */
  setFreeShare(share: number): void;
  /** Holds the next device extension until release() (a growth under way that writes can join). */
  holdNext(): { release: () => void };
}

function harness(): Harness {
  let blockCount = FIRST_BLOCK_COUNT;
  let freeShare = 1;
  let held: Promise<void> | undefined;
  const sizes: number[] = [];
  const device = {
    sizeBytes: blockCount * BLOCK_SIZE,
    sizeBytesMax: Number.MAX_SAFE_INTEGER,
    grow: async () => {
      const wait = held;
      held = undefined;
      await wait;
    },
  } as unknown as BlockDevice;
  const checkpointer = {
    superblock: { dataStartBlock: 64 },
    grow: (count: number) => {
      blockCount = count;
      sizes.push(count);
      return Promise.resolve();
    },
  } as unknown as Checkpointer;
  const space = {
    get blockCount() {
      return blockCount;
    },
    get allocatableBlockCount() {
      return Math.floor(blockCount * freeShare);
    },
    reclaimableBlockCount: 0,
  } as unknown as Space;
  const state = { fail: (error: unknown) => error } as unknown as StoreState;
  return {
    growth: new StoreGrowth({ device, checkpointer, space, state, blockSize: BLOCK_SIZE, maxSizeBytes: undefined }),
    sizes,
    setFreeShare: (share) => {
      freeShare = share;
    },
    holdNext: () => {
      let release!: () => void;
      held = new Promise<void>((resolve) => (release = resolve));
      return { release };
    },
  };
}

/** What each growth added, as a share of the store before it. */
function shares(sizes: readonly number[]): number[] {
  return sizes.map((size, i) => {
    const before = i === 0 ? FIRST_BLOCK_COUNT : sizes[i - 1]!;
    return (size - before) / before;
  });
}

/** A growth ahead of the writes, run to its end. */
async function growAhead(h: Harness): Promise<void> {
  const before = h.sizes.length;
  h.setFreeShare(0);
  h.growth.growAheadIfLow();
  await h.growth.settled();
  h.setFreeShare(1);
  assert.equal(h.sizes.length, before + 1, 'a growth ahead of demand ran');
}

describe('StoreGrowth: how much a growth adds', () => {
  // The share, not the least step, sets each growth of the harness store.
  assert.ok(GROWTH_STEP_BYTES_MIN < FIRST_BLOCK_COUNT * BLOCK_SIZE * GROWTH_SHARE);

  it('adds GROWTH_SHARE of the store for growths ahead of the writes', async () => {
    const h = harness();
    await growAhead(h);
    await growAhead(h);
    assert.deepEqual(shares(h.sizes), [GROWTH_SHARE, GROWTH_SHARE]);
  });

  it('doubles the share for each growth a write waited for, up to GROWTH_SHARE_MAX, and halves it for each growth ahead of the writes', async () => {
    const h = harness();
    for (let i = 0; i < 4; i++) assert.equal(await h.growth.grow(1), true);
    await growAhead(h);
    await growAhead(h);
    await growAhead(h);
    assert.deepEqual(shares(h.sizes), [0.5, 1, 1, 1, 0.5, 0.25, 0.25]);
    assert.equal(GROWTH_SHARE_MAX, 1);
    assert.equal(h.growth.stepShare, GROWTH_SHARE);
  });

  it('counts a growth ahead of demand that writes joined as waited for: the next one adds twice as much', async () => {
    const h = harness();
    const { release } = h.holdNext();
    h.setFreeShare(0);
    h.growth.growAheadIfLow();
    // A write that found no room while that growth ran waits for it.
    const joined = h.growth.grow(1);
    release();
    assert.equal(await joined, true);
    await h.growth.settled();
    h.setFreeShare(1);
    // The growth ahead added the base share; the next one, whatever starts it, twice that.
    await growAhead(h);
    assert.deepEqual(shares(h.sizes), [GROWTH_SHARE, 2 * GROWTH_SHARE]);
  });
});
