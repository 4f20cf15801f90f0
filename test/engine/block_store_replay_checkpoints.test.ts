// Recovery writes checkpoints while it replays a long WAL tail, so that the
// pages the tail dirties need not all stay in memory until the first
// checkpoint after open. A checkpoint written in the middle of the replay
// must not take the blocks of values that later commits of the tail wrote
// (they are free in its free set, and allocating one for a page would
// overwrite a value that is still to be replayed) — checked by crashing
// during such a replay at every few operations and checking every value.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { checkPowerLossDuringReplay, pattern } from './helpers.js';

const DEVICE_BYTES = 128 << 20;
const WAL_BYTES = 40 << 20;
/** Enough memory that the writing session never checkpoints on dirty pages (only the WAL would start one). */
const WRITER_CACHE_BYTES = 1 << 30;
/** The reopening session's budget: 256 dirty pages (DIRTY_PAGES_MIN), 8 × that in replay. */
const READER_CACHE_BYTES = 1 << 20;
const BATCHES = 40;
/** 40 000 keys of 300 bytes: ~3 300 leaves, more than the replay's budget of dirty pages. */
const INLINE_VALUE_BYTES = 300;
const KEYS_PER_BATCH = 1000;
/** Every this many batches, a few extent values (3 KiB, over half a block) and an overwrite of an earlier one. */
const EXTENT_EVERY_BATCHES = 3;
const EXTENT_VALUE_BYTES = 3 << 10;

/** A key order that scatters every batch over the whole tree. */
function keyOf(index: number): string {
  return `key-${((index * 2654435761) >>> 0).toString(16).padStart(8, '0')}`;
}

interface Expected {
  inline: Map<string, Buffer>;
  extents: Map<string, Buffer>;
}

/** Writes the tail: random inline puts, extent values, overwrites and deletes of extent values (so blocks are reused within the tail). */
async function writeTail(store: BlockStore): Promise<Expected> {
  const expected: Expected = { inline: new Map(), extents: new Map() };
  let key = 0;
  for (let batch = 0; batch < BATCHES; batch++) {
    const operations: { type: 'put'; key: string; value: Buffer }[] = [];
    for (let i = 0; i < KEYS_PER_BATCH; i++, key++) {
      const value = pattern(INLINE_VALUE_BYTES, key);
      operations.push({ type: 'put', key: keyOf(key), value });
      expected.inline.set(keyOf(key), value);
    }
    await store.batch(operations);
    if (batch % EXTENT_EVERY_BATCHES === 0) {
      for (let i = 0; i < 4; i++) {
        const name = `blob-${(batch * 4 + i) % 37}`;
        const value = pattern(EXTENT_VALUE_BYTES, batch * 100 + i);
        await store.put(name, value);
        expected.extents.set(name, value);
      }
      const doomed = `blob-${(batch * 7) % 37}`;
      if (expected.extents.has(doomed)) {
        await store.delete(doomed);
        expected.extents.delete(doomed);
      }
    }
  }
  return expected;
}

async function checkAll(store: BlockStore, expected: Expected, what: string): Promise<void> {
  for (const [key, value] of expected.extents) assert.deepEqual(await store.get(key), value, `${what}: ${key}`);
  let checked = 0;
  for (const [key, value] of expected.inline) {
    if (checked++ % 29 === 0) assert.deepEqual(await store.get(key), value, `${what}: ${key}`);
  }
  // count() waits for the background replay; stats() then counts every key too.
  assert.equal(await store.count(), expected.inline.size + expected.extents.size, what);
  assert.equal(store.stats().keys, expected.inline.size + expected.extents.size, what);
  await store.verifyIntegrity();
}

describe('BlockStore recovery with checkpoints during replay', function () {
  this.timeout(300_000);
  let image: Uint8Array;
  let expected: Expected;

  before(async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open('writer', { device, create: true, walSizeBytes: WAL_BYTES, cacheSizeBytes: WRITER_CACHE_BYTES, encoding: 'binary' });
    expected = await writeTail(store);
    // Power loss instead of close: everything is in the WAL, nothing checkpointed since.
    assert.equal(store.stats().checkpoints, 0, 'the writing session checkpointed: the tail would be short');
    image = device.crash({ keepProbability: 1 }).snapshot();
  });

  it('writes checkpoints while replaying a long tail, holding few dirty pages, and loses nothing', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image);
    const store = await BlockStore.open('reader', { device, cacheSizeBytes: READER_CACHE_BYTES, encoding: 'binary' });
    try {
      await store.whenRecovered();
      const stats = store.stats();
      assert.ok(stats.checkpoints >= 2, `${stats.checkpoints} checkpoints during the replay`);
      // Replay's budget is 8 × 256 pages (REPLAY_DIRTY_BUDGET_FACTOR × DIRTY_PAGES_MIN), and one commit adds at most ~2 × its keys.
      assert.ok(stats.dirtyPages <= 8 * 256 + 2 * KEYS_PER_BATCH + 8, `${stats.dirtyPages} dirty pages after the replay`);
      await checkAll(store, expected, 'after the replay');
    } finally {
      await store.close();
    }
  });

  it('keeps every value when power fails during a replay that writes checkpoints', async () => {
    await checkPowerLossDuringReplay(image, DEVICE_BYTES, { cacheSizeBytes: READER_CACHE_BYTES, encoding: 'binary' }, 4, async (store, what) => {
      try {
        await checkAll(store, expected, what);
      } finally {
        await store.close();
      }
    });
  });
});
