// Reopening a BlockStore on a real file: after close(), after thousands of
// writes through a WAL small enough that it checkpoints and wraps many
// times, and after the process exits without close() — every acknowledged
// write is there, and nothing deleted comes back.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { BlockStore } from '../../engine/block_store.js';
import { fsckImage, memoryImage } from '../../tools/fsck.js';
import {
  collect,
  describeChild,
  makeStoreDir,
  openSmallStore,
  PACKAGE_ENTRY_URL,
  pattern,
  removeStoreDir,
  runNodeModule,
} from './helpers.js';

/** The smallest WAL a store accepts with 4 KiB blocks: 16 blocks. */
const SMALL_WAL_BYTES = 64 << 10;

/** Deterministic value of a key at a version: inline for most, extents for every fifth. */
function valueFor(key: number, version: number): Buffer {
  return (key + version) % 5 === 0 ? pattern(3000 + ((key * 7 + version) % 9000), key * 1000 + version) : pattern(1 + ((key + version) % 200), key * 1000 + version);
}

async function assertStoreHolds(store: BlockStore, model: Map<string, Buffer>): Promise<void> {
  const entries = await collect(store.range());
  assert.deepEqual(
    entries.map(([key]) => key),
    [...model.keys()].sort(),
    'the store holds exactly the model keys',
  );
  for (const [key, value] of entries) assert.ok((value as Buffer).equals(model.get(key as string)!), `value of ${String(key)}`);
}

describe('BlockStore reopen', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeStoreDir();
  });

  after(() => {
    removeStoreDir(dir);
  });

  it('keeps every key and value across close() and open()', async () => {
    const path = `${dir}/simple`;
    const store = await openSmallStore(path);
    const values = new Map<string, unknown>([
      ['inline', { a: 1 }],
      ['extent', { blob: pattern(50_000, 1) }],
      ['text', 'é'.repeat(100)],
    ]);
    for (const [key, value] of values) await store.put(key, value);
    await store.put(Buffer.from([0xff, 0]), 'binary key');
    await store.put('deleted', 1);
    await store.delete('deleted');
    await store.close();

    const reopened = await BlockStore.open(path);
    try {
      for (const [key, value] of values) assert.deepEqual(await reopened.get(key), value, key);
      assert.equal(await reopened.get(Buffer.from([0xff, 0])), 'binary key');
      assert.equal(await reopened.has('deleted'), false);
      assert.equal((await reopened.verifyIntegrity()).keys, 4);
    } finally {
      await reopened.close();
    }
  });

  it('keeps everything after many writes through a small WAL that checkpoints and wraps', async () => {
    const path = `${dir}/small-wal`;
    const model = new Map<string, Buffer>();
    let store = await openSmallStore(path, { encoding: 'binary', walSizeBytes: SMALL_WAL_BYTES });
    try {
      // 1200 commits of one operation each, over 60 keys: overwrites, deletes,
      // extent values — the 16-block WAL fills and wraps every few commits.
      for (let step = 0; step < 1200; step++) {
        const key = `key-${String((step * 37) % 60).padStart(2, '0')}`;
        if (step % 11 === 0) {
          await store.delete(key);
          model.delete(key);
        } else {
          const value = valueFor((step * 37) % 60, step);
          await store.put(key, value);
          model.set(key, value);
        }
        if (step === 600) {
          // Halfway: reopen without a clean checkpoint beyond what the WAL forced.
          await store.close();
          store = await BlockStore.open(path, { encoding: 'binary' });
          await assertStoreHolds(store, model);
        }
      }
      const stats = store.stats();
      assert.ok(stats.checkpoints > 0, `checkpoints: ${stats.checkpoints}`);
      assert.ok(stats.walFill >= 0 && stats.walFill <= 1, `walFill: ${stats.walFill}`);
    } finally {
      await store.close();
    }
    const report = fsckImage(memoryImage(readFileSync(path)));
    assert.deepEqual(report.errors, [], `fsck: ${report.errors.join('; ')}`);
    assert.equal(report.keys, model.size);

    const reopened = await BlockStore.open(path, { encoding: 'binary', cacheSizeBytes: 0 });
    try {
      await assertStoreHolds(reopened, model);
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('keeps every acknowledged write when the process exits without close()', async function () {
    this.timeout(30_000);
    const path = `${dir}/no-close`;
    const child = await runNodeModule(`
      const { BlockStore } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
      const store = await BlockStore.open(${JSON.stringify(path)}, { create: true, sizeBytes: ${32 << 20}, walSizeBytes: ${SMALL_WAL_BYTES} });
      for (let i = 0; i < 100; i++) await store.put('k' + i, i % 10 === 0 ? 'x'.repeat(5000 + i) : i);
      await store.delete('k1');
      process.stdout.write('acknowledged\\n');
      process.exit(0); // no close(): no final checkpoint
    `);
    assert.equal(child.exitCode, 0, describeChild(child));
    assert.match(child.stdout, /acknowledged/);
    const reopened = await BlockStore.open(path);
    try {
      for (let i = 0; i < 100; i++) {
        const expected = i === 1 ? undefined : i % 10 === 0 ? 'x'.repeat(5000 + i) : i;
        assert.deepEqual(await reopened.get(`k${i}`), expected, `k${i}`);
      }
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });
});
