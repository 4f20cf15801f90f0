// BlockStore#clear() across power loss, on the simulated device: once clear()
// resolves its deletes are durable (a crash keeps none of the keys); a crash
// in the middle of a clear of several batches leaves the range cut at a batch
// boundary — the keys from the range's start (its end, reversed) up to some
// point deleted, the rest and everything outside the range as they were.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { CLEAR_BATCH_KEYS_MAX } from '../../engine/store_options.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { collect, seededRandom } from './helpers.js';

const DEVICE_BYTES = 16 << 20;
const SEED = 20261202;
/** Keys in the range to clear: three batches and a bit. */
const RANGE_KEY_COUNT = 3 * CLEAR_BATCH_KEYS_MAX + 100;

const inRange = (index: number): string => `r-${String(index).padStart(6, '0')}`;
const OUTSIDE = ['a-first', 'q-before', 's-after', 'z-last'];

async function filledStore(): Promise<{ device: SimulatedDevice; store: BlockStore<number> }> {
  const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
  const store = await BlockStore.open<number>('clear', { device, create: true });
  for (let start = 0; start < RANGE_KEY_COUNT; start += 1000) {
    await store.batch(Array.from({ length: Math.min(1000, RANGE_KEY_COUNT - start) }, (_, offset) => ({ type: 'put' as const, key: inRange(start + offset), value: start + offset })));
  }
  await store.batch(OUTSIDE.map((key, index) => ({ type: 'put' as const, key, value: -index })));
  await store.checkpoint();
  return { device, store };
}

describe('BlockStore#clear() durability', () => {
  for (const seed of [SEED, SEED + 1, SEED + 2]) {
    it(`keeps none of the cleared keys through a crash right after it resolved (seed ${seed})`, async () => {
      const { device, store } = await filledStore();
      assert.equal(await store.clear({ prefix: 'r-' }), RANGE_KEY_COUNT);
      const after = device.crash({ random: seededRandom(seed) });
      const reopened = await BlockStore.open('clear', { device: after });
      try {
        assert.deepEqual(await collect(reopened.keys()), OUTSIDE);
        await reopened.verifyIntegrity();
      } finally {
        await reopened.close();
      }
    });
  }

  for (const reverse of [false, true]) {
    it(`cuts the range at a batch boundary when power fails part way${reverse ? ', reversed' : ''} (seed ${SEED})`, async () => {
      const random = seededRandom(SEED);
      const cuts = new Set<number>();
      // The clear's IO is one WAL write per batch (its pages are cached):
      // a crash at each of them, the write it hits kept or lost at random.
      for (const crashAfterOps of [0, 1, 2, 3, 0, 1, 2, 3]) {
        const { device, store } = await filledStore();
        device.crashAfter(crashAfterOps);
        const clearing = store.clear({ gte: 'r-', lt: 'r.', reverse });
        await clearing.then(
          () => undefined,
          () => undefined,
        );
        const after = device.crash({ random });
        const reopened = await BlockStore.open<number>('clear', { device: after });
        try {
          const keys = (await collect(reopened.keys())) as string[];
          const rangeKeys = keys.filter((key) => key.startsWith('r-'));
          assert.deepEqual(
            keys.filter((key) => !key.startsWith('r-')),
            OUTSIDE,
            'keys outside the range are untouched',
          );
          const deleted = RANGE_KEY_COUNT - rangeKeys.length;
          const expected = Array.from({ length: RANGE_KEY_COUNT }, (_, index) => inRange(index));
          assert.deepEqual(rangeKeys, reverse ? expected.slice(0, RANGE_KEY_COUNT - deleted) : expected.slice(deleted), `the ${deleted} deleted keys are the range's ${reverse ? 'last' : 'first'}`);
          assert.equal(deleted % CLEAR_BATCH_KEYS_MAX === 0 || deleted === RANGE_KEY_COUNT, true, `${deleted} keys deleted: whole batches`);
          cuts.add(deleted);
          await reopened.verifyIntegrity();
        } finally {
          await reopened.close();
        }
      }
      // The crash points must have hit the clear part way at least once: otherwise this test shows nothing.
      assert.ok([...cuts].some((deleted) => deleted > 0 && deleted < RANGE_KEY_COUNT), `crashes left ${[...cuts].join(', ')} keys deleted: none part way`);
    });
  }
});
