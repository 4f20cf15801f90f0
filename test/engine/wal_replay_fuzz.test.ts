// A randomized WAL tail against the replay that applies only what the tail
// leaves (wal_replay.ts, liveWalOperations): hot keys overwritten with extent
// and inline values, stream-written (raw) values, deletes, a key several
// times in one batch, writes in flight together, and freed value blocks
// reused within the tail; then a crash, and the store reopened (read-write
// and read-only) and reopened after power lost during its replay, each
// checked against a model. After a second reader's fuzz of the replay
// (session 34), which opened such tails with this replay and a one-by-one
// replay alike. npm test runs seed 2, one whose tail reuses a hot key's
// value from before the tail (the replay that kept that value until the
// key's last record failed it, as it failed seed 3; seed 1's tail does not
// get there); RINGSTORE_REPLAY_FUZZ_SEEDS=N runs seeds 1..N instead.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { checkPowerLossDuringReplay, pattern, seededRandom } from './helpers.js';

const DEVICE_BYTES = 64 << 20;
const WAL_BYTES = 32 << 20;
/** The writer never checkpoints on dirty pages: the whole tail stays in the WAL. */
const WRITER_CACHE_BYTES = 1 << 30;
/** A small cache: the replay reads pages again. (This tail dirties too few for the replay to write checkpoints: wal_replay_superseded.test.ts has those.) */
const READER_CACHE_BYTES = 1 << 18;
const HOT_KEYS = 12;
const BASE_KEYS = 3000;
const ROUNDS = Number(process.env.RINGSTORE_REPLAY_FUZZ_ROUNDS ?? 600);
/** The tail stops short of the WAL's checkpoint threshold. */
const WAL_FILL_MAX = 0.45;
const SEEDS = process.env.RINGSTORE_REPLAY_FUZZ_SEEDS === undefined ? [2] : Array.from({ length: Number(process.env.RINGSTORE_REPLAY_FUZZ_SEEDS) }, (_, index) => index + 1);
const POWER_LOSS_POINTS = 2;

const hotKey = (index: number): string => `hot-${index}`;
const scatteredKey = (index: number): string => `key-${((index * 2654435761) >>> 0).toString(16).padStart(8, '0')}`;

type Model = Map<string, Buffer>;

/** Writes the base, checkpoints, then a random tail; returns the image after power loss, and what it must hold. */
async function crashedTail(seed: number): Promise<{ image: Uint8Array; model: Model; rounds: number }> {
  const random = seededRandom(seed);
  const below = (count: number): number => Math.floor(random() * count);
  let valueSeed = seed * 1_000_000;
  const value = (sizeBytes: number): Buffer => pattern(sizeBytes, valueSeed++);
  // Mostly extent values (over a block) of 1 to 32 blocks, else inline ones.
  const valueSize = (): number => (random() < 0.6 ? 4096 * (1 + below(32)) + below(3000) : 50 + below(300));
  const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
  const store = await BlockStore.open('writer', { device, create: true, walSizeBytes: WAL_BYTES, cacheSizeBytes: WRITER_CACHE_BYTES, encoding: 'binary' });
  const model: Model = new Map();
  for (let hot = 0; hot < HOT_KEYS; hot++) {
    const bytes = value(4096 * (1 + below(4)));
    await store.put(hotKey(hot), bytes);
    model.set(hotKey(hot), bytes);
  }
  const base: { type: 'put'; key: string; value: Buffer }[] = [];
  for (let i = 0; i < BASE_KEYS; i++) {
    const bytes = value(100);
    base.push({ type: 'put', key: scatteredKey(i), value: bytes });
    model.set(scatteredKey(i), bytes);
  }
  await store.batch(base);
  await store.checkpoint();
  const checkpoints = store.stats().checkpoints;
  let next = BASE_KEYS;
  let rounds = 0;
  for (; rounds < ROUNDS && store.stats().walFill < WAL_FILL_MAX; rounds++) {
    const kind = random();
    if (kind < 0.1) {
      // A raw value, written by a stream.
      const key = hotKey(below(HOT_KEYS));
      const bytes = value(4096 * (1 + below(5)) + below(100));
      await new Promise<void>((resolve, reject) => {
        const stream = store.createWriteStream(key);
        stream.on('error', reject);
        stream.on('finish', resolve);
        stream.end(bytes);
      });
      model.set(key, bytes);
    } else if (kind < 0.35) {
      // One batch: hot keys, some of them more than once, some deleted, and new keys.
      const operations: ({ type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string })[] = [];
      for (let i = 2 + below(6); i > 0; i--) {
        const key = hotKey(below(HOT_KEYS));
        if (random() < 0.25) {
          operations.push({ type: 'del', key });
          model.delete(key);
        } else {
          const bytes = value(valueSize());
          operations.push({ type: 'put', key, value: bytes });
          model.set(key, bytes);
        }
      }
      for (let i = below(200); i > 0; i--, next++) {
        const bytes = value(100);
        operations.push({ type: 'put', key: scatteredKey(next), value: bytes });
        model.set(scatteredKey(next), bytes);
      }
      await store.batch(operations);
    } else if (kind < 0.7) {
      // Writes of distinct hot keys in flight together (pipelined commits).
      const keys = new Set<string>();
      const count = 2 + below(5);
      while (keys.size < count) keys.add(hotKey(below(HOT_KEYS)));
      const writes: Promise<unknown>[] = [];
      for (const key of keys) {
        if (random() < 0.3) {
          writes.push(store.delete(key));
          model.delete(key);
        } else {
          const bytes = value(valueSize());
          writes.push(store.put(key, bytes));
          model.set(key, bytes);
        }
      }
      await Promise.all(writes);
    } else {
      const key = hotKey(below(HOT_KEYS));
      if (random() < 0.3) {
        await store.delete(key);
        model.delete(key);
      } else {
        const bytes = value(valueSize());
        await store.put(key, bytes);
        model.set(key, bytes);
      }
    }
    // Now and then a pause, for trims to finish and freed blocks to be reused.
    if (random() < 0.3) await new Promise((resolve) => setTimeout(resolve, below(3)));
  }
  assert.equal(store.stats().checkpoints, checkpoints, 'the writer checkpointed during the tail: it would be short');
  return { image: device.crash({ keepProbability: 1 }).snapshot(), model, rounds };
}

async function checkModel(store: BlockStore, model: Model, what: string, readOnly = false): Promise<void> {
  await store.whenRecovered();
  for (const [key, bytes] of model) assert.deepEqual(await store.get(key), bytes, `${what}: ${key}`);
  for (let hot = 0; hot < HOT_KEYS; hot++) if (!model.has(hotKey(hot))) assert.equal(await store.get(hotKey(hot)), undefined, `${what}: ${hotKey(hot)} deleted`);
  assert.equal(await store.count(), model.size, `${what}: count`);
  if (!readOnly) await store.verifyIntegrity();
}

describe('BlockStore replaying a random tail of overwrites, deletes and reused blocks', function () {
  this.timeout(600_000);
  for (const seed of SEEDS) {
    it(`comes back whole, read-write and read-only, and after power lost during the replay (seed ${seed})`, async () => {
      const { image, model, rounds } = await crashedTail(seed);
      assert.ok(rounds > 50, `only ${rounds} rounds of writes`);
      const options = { cacheSizeBytes: READER_CACHE_BYTES, encoding: 'binary' as const };
      for (const readOnly of [false, true]) {
        const store = await BlockStore.open('reader', { ...options, readOnly, device: new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image) });
        try {
          assert.ok(store.stats().tailCommitsToReplay > rounds / 2, 'the tail is short');
          await checkModel(store, model, readOnly ? 'read-only' : 'after the replay', readOnly);
        } finally {
          await store.close();
        }
      }
      await checkPowerLossDuringReplay(image, DEVICE_BYTES, options, POWER_LOSS_POINTS, async (store, what) => {
        try {
          await checkModel(store, model, what);
        } finally {
          await store.close();
        }
      });
    });
  }
});
