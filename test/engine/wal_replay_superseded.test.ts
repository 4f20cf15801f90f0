// The WAL replay leaves out records that a later record of the tail
// supersedes (wal_replay.ts, liveWalOperations): a key's last record in the
// tail is applied as it is, its first of several as a delete, and the
// others not at all. Checked here: what is left out or made a delete and
// how left-out values are still checked (unit), that ReplayOverlay tells
// the replay each record's role, that a tail reusing the blocks of a value
// it replaced replays (read-write and read-only), and that a store whose tail overwrites the same
// keys again and again — inline and extent values, deletes, a key twice in
// one batch — comes back whole, also when power fails during a replay that
// writes checkpoints.
import assert from 'node:assert/strict';

import type { Extent } from '../../format/extent.js';
import type { ExtentValue } from '../../format/records.js';
import type { Superblock } from '../../format/superblock.js';
import { BlockStore } from '../../engine/block_store.js';
import { ExtentAllocator } from '../../engine/extent_allocator.js';
import type { Operation, PendingCommit } from '../../engine/recovery.js';
import { liveWalOperations, TailRole } from '../../engine/wal_replay.js';
import { ReplayOverlay } from '../../engine/replay_overlay.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreCorruptError } from '../../engine/store_error.js';
import { checkPowerLossDuringReplay, pattern } from './helpers.js';

const DATA_START_BLOCK = 100;
const BLOCK_COUNT = 1000;

function extentValue(...extents: Extent[]): ExtentValue {
  return { kind: 'extents', length: 1, crc: 0, extents };
}

function put(key: string, value: Uint8Array | ExtentValue): Operation {
  return { key, entry: { isString: true, value } };
}

function del(key: string): Operation {
  return { key, entry: undefined };
}

/** A commit of `operations` as liveWalOperations reads one (sequence 7). */
function commitOf(operations: readonly Operation[]): PendingCommit {
  return {
    sequence: 7,
    walBlock: 3,
    recordCount: operations.length,
    keyAt: (index: number) => operations[index].key,
    entryAt: (index: number) => operations[index].entry,
    writesExtentsAt: (index: number) => operations[index].entry !== undefined && !(operations[index].entry!.value instanceof Uint8Array),
  } as unknown as PendingCommit;
}

/** What liveWalOperations reads of a superblock. */
const superblock = { dataStartBlock: DATA_START_BLOCK, blockCount: BLOCK_COUNT } as Superblock;

describe('liveWalOperations', () => {
  it("keeps each key's last record, makes the first of several a delete, and leaves the others out, in order", () => {
    const allocator = new ExtentAllocator(DATA_START_BLOCK, BLOCK_COUNT, []);
    const operations = [put('a', Uint8Array.of(1)), del('b'), put('c', extentValue({ startBlock: 200, blockCount: 2 })), put('a', Uint8Array.of(2)), put('d', Uint8Array.of(3))];
    const roles = [TailRole.FirstOfSeveral, TailRole.Last, TailRole.Between, TailRole.Last, TailRole.Last];
    const live = liveWalOperations(allocator, superblock, commitOf(operations), (recordIndex) => roles[recordIndex]);
    assert.deepEqual(live, [del('a'), operations[1], operations[3], operations[4]]);
    // A left-out value's blocks stay free: the replay never takes them.
    assert.equal(allocator.isFree({ startBlock: 200, blockCount: 2 }), true);
  });

  it('refuses a left-out value whose blocks are in use, as the one-by-one replay did, also for a first of several', () => {
    for (const role of [TailRole.Between, TailRole.FirstOfSeveral]) {
      const allocator = new ExtentAllocator(DATA_START_BLOCK, BLOCK_COUNT, [{ extent: { startBlock: 300, blockCount: 4 }, owner: 'a page' }]);
      const operations = [put('x', extentValue({ startBlock: 200, blockCount: 1 }, { startBlock: 302, blockCount: 1 })), put('x', Uint8Array.of(1))];
      assert.throws(
        () => liveWalOperations(allocator, superblock, commitOf(operations), (recordIndex) => (recordIndex === 1 ? TailRole.Last : role)),
        (error: unknown) => error instanceof StoreCorruptError && error.structure === 'free set' && error.blockIndex === 302 && /commit 7, key "x"/.test(error.message),
      );
    }
  });

  it('refuses a left-out value outside the data region', () => {
    const allocator = new ExtentAllocator(DATA_START_BLOCK, BLOCK_COUNT, []);
    for (const extent of [
      { startBlock: DATA_START_BLOCK - 1, blockCount: 1 },
      { startBlock: BLOCK_COUNT - 1, blockCount: 2 },
    ]) {
      const operations = [put('y', extentValue(extent)), del('y')];
      assert.throws(
        () => liveWalOperations(allocator, superblock, commitOf(operations), (recordIndex) => (recordIndex === 1 ? TailRole.Last : TailRole.Between)),
        (error: unknown) => error instanceof StoreCorruptError && error.structure === 'wal' && /outside the data region/.test(error.message),
      );
    }
  });
});

describe('ReplayOverlay telling the replay each record role in the tail', () => {
  it("marks each key's last record, the first of several, and those between, across commits and within one", async () => {
    const tail = [
      ['a', 'b', 'a'],
      ['c', 'b', 'a'],
      ['a', 'd'],
    ];
    const commits = tail.map((keys, index) => ({ sequence: index + 1, recordCount: keys.length, keyAt: (record: number) => keys[record] }) as unknown as PendingCommit);
    const answers: string[] = [];
    const overlay = new ReplayOverlay(commits, async (commitApplied, tailRole) => {
      tail.forEach((keys, commitIndex) => {
        keys.forEach((key, record) => answers.push(`${key}${commitIndex}.${record}:${tailRole(commitIndex, record)}`));
        commitApplied();
      });
    });
    await overlay.settled();
    const { Between, Last, FirstOfSeveral } = TailRole;
    assert.deepEqual(answers, [`a0.0:${FirstOfSeveral}`, `b0.1:${FirstOfSeveral}`, `a0.2:${Between}`, `c1.0:${Last}`, `b1.1:${Last}`, `a1.2:${Between}`, `a2.0:${Last}`, `d2.1:${Last}`]);
  });
});

// A store-level tail: a hot set overwritten by every batch (extent and
// inline values in turn, deletes and puts back, one key twice in a batch),
// beside new keys scattered over the tree that dirty enough pages for the
// replay to write checkpoints.
const DEVICE_BYTES = 96 << 20;
const WAL_BYTES = 32 << 20;
/** The writer never checkpoints on dirty pages: everything after the base stays in the WAL. */
const WRITER_CACHE_BYTES = 1 << 30;
/** The reader's budget of dirty pages in replay is 8 × 256: the new keys pass it twice. */
const READER_CACHE_BYTES = 1 << 20;
const BASE_KEYS = 2000;
const ROUNDS = 40;
const HOT_KEYS = 40;
const NEW_KEYS_PER_ROUND = 700;
const INLINE_VALUE_BYTES = 200;
/** Over a 4 KiB block: an extent value. */
const EXTENT_VALUE_BYTES = 5000;

function hotKey(index: number): string {
  return `hot-${index}`;
}

function scatteredKey(index: number): string {
  return `key-${((index * 2654435761) >>> 0).toString(16).padStart(8, '0')}`;
}

type Model = Map<string, Buffer>;
type BatchOperation = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

async function writeSupersedingTail(store: BlockStore, model: Model): Promise<void> {
  let next = BASE_KEYS;
  for (let round = 0; round < ROUNDS; round++) {
    const operations: BatchOperation[] = [];
    for (let hot = 0; hot < HOT_KEYS; hot++) {
      const key = hotKey(hot);
      if ((round + hot) % 7 === 3) {
        operations.push({ type: 'del', key });
        model.delete(key);
        continue;
      }
      const value = pattern((round + hot) % 3 === 0 ? EXTENT_VALUE_BYTES : INLINE_VALUE_BYTES, round * 1000 + hot);
      operations.push({ type: 'put', key, value });
      model.set(key, value);
    }
    // The same key twice in one batch: the second wins, the first is superseded within its commit.
    const twice = hotKey(round % HOT_KEYS);
    const first = pattern(EXTENT_VALUE_BYTES, 500_000 + round);
    const second = pattern(INLINE_VALUE_BYTES, 600_000 + round);
    operations.push({ type: 'put', key: twice, value: first }, { type: 'put', key: twice, value: second });
    model.set(twice, second);
    for (let i = 0; i < NEW_KEYS_PER_ROUND; i++, next++) {
      const value = pattern(INLINE_VALUE_BYTES, next);
      operations.push({ type: 'put', key: scatteredKey(next), value });
      model.set(scatteredKey(next), value);
    }
    await store.batch(operations);
  }
}

async function checkModel(store: BlockStore, model: Model, what: string): Promise<void> {
  for (let hot = 0; hot < HOT_KEYS; hot++) assert.deepEqual(await store.get(hotKey(hot)), model.get(hotKey(hot)), `${what}: ${hotKey(hot)}`);
  let index = 0;
  for (const [key, value] of model) {
    if (index++ % 23 === 0) assert.deepEqual(await store.get(key), value, `${what}: ${key}`);
  }
  assert.equal(await store.count(), model.size, what);
  await store.verifyIntegrity();
}

describe('BlockStore replaying a tail that overwrites the same keys again and again', function () {
  this.timeout(300_000);
  let image: Uint8Array;
  const model: Model = new Map();

  before(async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open('writer', { device, create: true, walSizeBytes: WAL_BYTES, cacheSizeBytes: WRITER_CACHE_BYTES, encoding: 'binary' });
    const base: BatchOperation[] = [];
    for (let i = 0; i < BASE_KEYS; i++) {
      const value = pattern(i % 50 === 0 ? EXTENT_VALUE_BYTES : INLINE_VALUE_BYTES, 900_000 + i);
      base.push({ type: 'put', key: scatteredKey(i), value });
      model.set(scatteredKey(i), value);
    }
    for (let hot = 0; hot < HOT_KEYS; hot++) {
      const value = pattern(EXTENT_VALUE_BYTES, 800_000 + hot);
      base.push({ type: 'put', key: hotKey(hot), value });
      model.set(hotKey(hot), value);
    }
    await store.batch(base);
    await store.checkpoint();
    const checkpoints = store.stats().checkpoints;
    await writeSupersedingTail(store, model);
    assert.equal(store.stats().checkpoints, checkpoints, 'the writer checkpointed during the tail: it would be short');
    image = device.crash({ keepProbability: 1 }).snapshot();
  });

  it('comes back with every key last value, the free space exact, and checkpoints written during the replay', async () => {
    const store = await BlockStore.open('reader', { device: new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image), cacheSizeBytes: READER_CACHE_BYTES, encoding: 'binary' });
    try {
      assert.ok(store.stats().tailCommitsToReplay > 0, 'nothing to replay');
      await store.whenRecovered();
      assert.ok(store.stats().checkpoints >= 2, `${store.stats().checkpoints} checkpoints during the replay: the crashes below would cut few or none`);
      await checkModel(store, model, 'after the replay');
      // A checkpoint after the replay, then a clean reopen: the superseded values' blocks were never taken.
      await store.checkpoint();
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });

  it('keeps every last value when power fails during that replay', async () => {
    await checkPowerLossDuringReplay(image, DEVICE_BYTES, { cacheSizeBytes: READER_CACHE_BYTES, encoding: 'binary' }, 2, async (store, what) => {
      try {
        await checkModel(store, model, what);
      } finally {
        await store.close();
      }
    });
  });
});

// The store frees a value's blocks once the commit that replaced it is
// durable and trimmed, without a checkpoint, so one WAL tail can put a
// key's old value's blocks under another value. Found by a review: a
// replay that left a key's first record in the tail out kept the key's
// value from before the tail (and its blocks) until the key's last record,
// so the commit that had reused those blocks failed the replay with
// ERR_STORE_CORRUPT on every open — and a checkpoint written in the middle
// of such a replay left that state on disk.
describe('BlockStore replaying a tail that reused the blocks of a value it replaced', function () {
  this.timeout(300_000);
  const REUSE_DEVICE_BYTES = 64 << 20;
  const REUSE_WAL_BYTES = 24 << 20;
  const BLOB_BYTES = 64 << 10;
  /** Allocations the test watches for: a 64 KiB value's blocks. */
  const BLOB_BLOCKS = BLOB_BYTES / 4096;

  /**
   * Key 'k' holds a 64 KiB value at blocks E0 at the checkpoint; the tail
   * replaces it (freeing E0), puts and deletes 64 KiB fillers until one
   * lands on E0, writes `scattered` batches of 1 000 new keys (which make
   * the replay write checkpoints after that filler's commit), then puts
   * 'k' once more. Returns the crashed image.
   */
  async function reusingImage(scattered: number, keepReusing: boolean): Promise<{ image: Uint8Array; model: Model }> {
    const allocate = ExtentAllocator.prototype.allocate;
    let lastBlob: Extent[] | undefined;
    ExtentAllocator.prototype.allocate = function (this: ExtentAllocator, blockCount: number, extentsMax: number) {
      const extents = allocate.call(this, blockCount, extentsMax);
      if (blockCount === BLOB_BLOCKS) lastBlob = extents;
      return extents;
    };
    try {
      const device = new SimulatedDevice({ sizeBytes: REUSE_DEVICE_BYTES });
      const store = await BlockStore.open('writer', { device, create: true, walSizeBytes: REUSE_WAL_BYTES, cacheSizeBytes: WRITER_CACHE_BYTES, encoding: 'binary' });
      const model: Model = new Map();
      await store.put('k', pattern(BLOB_BYTES, 1));
      const e0 = lastBlob![0]!.startBlock;
      await store.checkpoint();
      const checkpoints = store.stats().checkpoints;
      await store.put('k', pattern(BLOB_BYTES, 2));
      let filler = 0;
      for (; filler < 2000; filler++) {
        await store.put(`filler-${filler}`, pattern(BLOB_BYTES, 100 + filler));
        const landed = lastBlob![0]!.startBlock;
        if (landed === e0 && keepReusing) {
          // The reusing value is its key's last record: the replay takes its blocks.
          model.set(`filler-${filler}`, pattern(BLOB_BYTES, 100 + filler));
          break;
        }
        // Else deleted: its record is left out, its blocks checked free.
        await store.delete(`filler-${filler}`);
        if (landed === e0) break;
      }
      assert.ok(filler < 2000, 'no filler reused the blocks of k before the tail');
      for (let batch = 0; batch < scattered; batch++) {
        const operations: BatchOperation[] = [];
        for (let i = 0; i < 1000; i++) {
          const key = scatteredKey(batch * 1000 + i);
          const value = pattern(INLINE_VALUE_BYTES, batch * 1000 + i);
          operations.push({ type: 'put', key, value });
          model.set(key, value);
        }
        await store.batch(operations);
      }
      const last = pattern(INLINE_VALUE_BYTES, 3);
      await store.put('k', last);
      model.set('k', last);
      assert.equal(store.stats().checkpoints, checkpoints, 'the writer checkpointed during the tail: it would be short');
      return { image: device.crash({ keepProbability: 1 }).snapshot(), model };
    } finally {
      ExtentAllocator.prototype.allocate = allocate;
    }
  }

  async function checkReopened(image: Uint8Array, model: Model, what: string, readOnly = false): Promise<number> {
    const store = await BlockStore.open('reader', { device: new SimulatedDevice({ sizeBytes: REUSE_DEVICE_BYTES }, image), cacheSizeBytes: READER_CACHE_BYTES, encoding: 'binary', readOnly });
    try {
      await store.whenRecovered();
      await checkModel(store, model, what);
      return store.stats().checkpoints;
    } finally {
      await store.close();
    }
  }

  it('comes back whole, with the value the reusing commit wrote, read-write and read-only', async () => {
    const { image, model } = await reusingImage(0, true);
    await checkReopened(image, model, 'after the replay');
    await checkReopened(image, model, 'after a read-only replay', true);
  });

  it('comes back whole when the replay writes checkpoints, and after power fails during it', async () => {
    const { image, model } = await reusingImage(30, false);
    assert.ok((await checkReopened(image, model, 'after the replay')) >= 2, 'the replay wrote fewer than two checkpoints');
    await checkPowerLossDuringReplay(image, REUSE_DEVICE_BYTES, { cacheSizeBytes: READER_CACHE_BYTES, encoding: 'binary' }, 2, async (store, what) => {
      try {
        await store.whenRecovered();
        await checkModel(store, model, what);
      } finally {
        await store.close();
      }
    });
  });
});
