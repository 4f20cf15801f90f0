// RecordCache (engine/record_cache.ts): the entries of hot keys, as copies,
// within a budget charged to the page cache; a record leaves when its key
// is forgotten or the clock evicts it, and the page cache is credited back
// exactly what it was charged. Then PageTree: what getCached() answers
// from records is the tree's entry now, after any sets and deletes.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { BlockStore } from '../../engine/block_store.js';
import { NOT_CACHED } from '../../engine/page_tree.js';
import { RECORD_OVERHEAD_BYTES, RecordCache } from '../../engine/record_cache.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { coldTree, keyOf, valueOf } from './cold_tree.js';

/** Fixed so a failure reproduces; fast-check prints it on failure. */
const SEED = 0x7ec0_0001;

function inline(bytes: number[], isString = true): IndexEntry {
  return { isString, value: Uint8Array.from(bytes) };
}

/** Offers `entry` twice: the doorkeeper lets a key in on its second offer. */
function admitNow(cache: RecordCache, key: string, entry: IndexEntry): void {
  cache.admit(key, entry);
  if (cache.get(key) === undefined) cache.admit(key, entry);
}

/** A record cache with its charges summed, as the page cache sees them. */
function newCache(bytesMax: number): { cache: RecordCache; charged: () => number } {
  let charged = 0;
  const cache = new RecordCache(bytesMax, (delta) => {
    charged += delta;
    assert.ok(charged >= 0, 'credited more than charged');
  });
  return { cache, charged: () => charged };
}

describe('RecordCache', () => {
  it('answers a record with a copy of the entry it was given, and nothing for a key it does not hold', () => {
    const { cache, charged } = newCache(1 << 20);
    const source = inline([1, 2, 3]);
    admitNow(cache, 'a', source);
    (source.value as Uint8Array)[0] = 9;
    const got = cache.get('a')!;
    assert.deepEqual([...(got.value as Uint8Array)], [1, 2, 3], 'the record copies the value');
    assert.notEqual((got.value as Uint8Array).buffer, (source.value as Uint8Array).buffer);
    assert.equal(got.isString, true);
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.hits, 1);
    assert.equal(charged(), RECORD_OVERHEAD_BYTES + 1 + 3);
    assert.equal(cache.bytes, charged());
  });

  it('admits a key only when it is offered again while the doorkeeper remembers it, not keys offered once each', () => {
    const { cache, charged } = newCache(1 << 20);
    cache.admit('once', inline([1]));
    assert.equal(cache.get('once'), undefined, 'a first offer only remembers the key');
    cache.admit('once', inline([2]));
    assert.deepEqual([...(cache.get('once')!.value as Uint8Array)], [2]);
    // Keys offered once each, as uniform random gets over many keys: none comes in.
    for (let i = 0; i < 20_000; i++) cache.admit(`k${i}`, inline([1]));
    assert.equal(cache.size, 1);
    assert.equal(charged(), cache.bytes);
    // The doorkeeper forgets: a key offered again only after many others starts over.
    cache.admit('late', inline([3]));
    for (let i = 0; i < 20_000; i++) cache.admit(`m${i}`, inline([1]));
    cache.admit('late', inline([3]));
    assert.equal(cache.get('late'), undefined, 'remembered past two generations');
  });

  it('keeps no extent value and no record larger than its budget', () => {
    const { cache, charged } = newCache(RECORD_OVERHEAD_BYTES + 10);
    admitNow(cache, 'extent', { isString: true, value: { kind: 'extents', length: 8192, crc: 1, extents: [{ startBlock: 9, blockCount: 2 }] } } as unknown as IndexEntry);
    admitNow(cache, 'large', inline(Array.from({ length: 20 }, () => 1)));
    assert.equal(cache.size, 0);
    assert.equal(charged(), 0);
  });

  it('forgets a key, credits it back, and refuses to admit a key twice (a bug)', () => {
    const { cache, charged } = newCache(1 << 20);
    admitNow(cache, 'a', inline([1]));
    assert.throws(() => cache.admit('a', inline([2])), /admitted twice/);
    cache.forget('a');
    cache.forget('never');
    assert.equal(cache.get('a'), undefined);
    assert.equal(charged(), 0);
    // Seen before: in at its first offer now.
    cache.admit('a', inline([2]));
    assert.deepEqual([...(cache.get('a')!.value as Uint8Array)], [2]);
  });

  it('keeps its clock bounded while keys come and go below its budget (a hot key written and got again and again)', () => {
    const { cache } = newCache(1 << 20);
    admitNow(cache, 'steady', inline([1]));
    for (let i = 0; i < 10_000; i++) {
      admitNow(cache, 'hot', inline([i & 0xff]));
      cache.forget('hot');
    }
    assert.equal(cache.size, 1);
    assert.ok(cache.clockLength <= 2 * cache.size + 2 * 64, `${cache.clockLength} slots for ${cache.size} records`);
  });

  it('evicts down to its budget, giving a record looked up since the hand passed it a second chance', () => {
    const recordBytes = RECORD_OVERHEAD_BYTES + 2 + 1;
    const { cache, charged } = newCache(4 * recordBytes);
    for (const key of ['k0', 'k1', 'k2', 'k3']) admitNow(cache, key, inline([1]));
    assert.ok(cache.get('k0') !== undefined);
    admitNow(cache, 'k4', inline([1]));
    // k0 was used: k1 goes first.
    assert.equal(cache.size, 4);
    assert.ok(cache.get('k0') !== undefined);
    assert.equal(cache.get('k1'), undefined);
    assert.equal(charged(), 4 * recordBytes);
    cache.clear();
    assert.equal(cache.size, 0);
    assert.equal(charged(), 0);
  });

  it('holds what a model of its operations says, within its budget, whatever the sequence (fast-check)', () => {
    const keyArb = fc.constantFrom(...Array.from({ length: 12 }, (_, i) => `k${i}`));
    const operationArb = fc.oneof(
      fc.record({ kind: fc.constant('admit' as const), key: keyArb, length: fc.nat({ max: 40 }) }),
      fc.record({ kind: fc.constant('get' as const), key: keyArb }),
      fc.record({ kind: fc.constant('forget' as const), key: keyArb }),
    );
    fc.assert(
      fc.property(fc.array(operationArb, { maxLength: 300 }), fc.integer({ min: 0, max: 8 }), (operations, recordsMax) => {
        const bytesMax = recordsMax * (RECORD_OVERHEAD_BYTES + 3 + 20);
        const { cache, charged } = newCache(bytesMax);
        const model = new Map<string, number[]>();
        for (const operation of operations) {
          if (operation.kind === 'admit') {
            if (model.has(operation.key) || cache.get(operation.key) !== undefined) continue;
            const bytes = Array.from({ length: operation.length }, (_, i) => (i + operation.length) & 0xff);
            cache.admit(operation.key, inline(bytes));
            // In, or only remembered by the doorkeeper: either way no other value.
            model.set(operation.key, bytes);
          } else if (operation.kind === 'forget') {
            cache.forget(operation.key);
            model.delete(operation.key);
          } else {
            const got = cache.get(operation.key);
            // A record answers its key's value; one evicted answers nothing, never another value.
            if (got !== undefined) assert.deepEqual([...(got.value as Uint8Array)], model.get(operation.key));
            else model.delete(operation.key);
          }
          assert.ok(cache.bytes <= bytesMax, `${cache.bytes} bytes over a budget of ${bytesMax}`);
          assert.equal(charged(), cache.bytes);
        }
        cache.clear();
        assert.equal(charged(), 0);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});

describe('PageTree with records', () => {
  it('answers getCached() from records after sets and deletes of the same keys as the tree does, and lets them go with the cache', async () => {
    const { tree } = await coldTree(1 << 20, undefined, 256 << 10);
    const keys = Array.from({ length: 40 }, (_, i) => keyOf(i * 7));
    for (const key of keys) await tree.get(key);
    const expected = new Map<string, IndexEntry | undefined>(keys.map((key) => [key, { isString: true, value: valueOf(Number(key.slice(4))) }]));
    const check = (when: string): void => {
      for (const key of keys) {
        const got = tree.getCached(key);
        assert.notEqual(got, NOT_CACHED, `${key} ${when}: its path is cached`);
        const want = expected.get(key);
        if (want === undefined) assert.equal(got, undefined, `${key} ${when}`);
        else assert.deepEqual([...((got as IndexEntry).value as Uint8Array)], [...(want.value as Uint8Array)], `${key} ${when}`);
      }
    };
    check('first looked up');
    check('answered by records');
    assert.ok(tree.cacheStats().recordsCached >= keys.length, 'the keys became records');
    const hits = tree.cacheStats().recordCacheHits;
    check('again');
    assert.equal(tree.cacheStats().recordCacheHits, hits + keys.length);
    // Writes change every third key, delete every fifth.
    const prepared = await tree.prepare(keys.filter((_, i) => i % 3 === 0), keys.filter((_, i) => i % 5 === 0 && i % 3 !== 0));
    keys.forEach((key, i) => {
      if (i % 3 === 0) {
        const entry = { isString: true, value: Uint8Array.of(i, 0xee) };
        tree.set(key, entry);
        expected.set(key, entry);
      } else if (i % 5 === 0) {
        tree.delete(key);
        expected.set(key, undefined);
      }
    });
    tree.release(prepared);
    check('after the writes');
    check('after the writes, from records');
    tree.releaseCache();
    assert.equal(tree.cacheStats().recordsCached, 0);
    assert.equal(tree.cacheStats().recordCacheBytes, 0);
  });
});

describe('BlockStore gets through records (fast-check against a model)', function () {
  this.timeout(120_000);
  const KEYS = ['a', 'b', 'c', 'é', 'key-long-enough-to-matter', 'z'];

  it('gives every get the latest put, delete or batch of its key, across checkpoints and reopens', async () => {
    const operationArb = fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.constantFrom(...KEYS), size: fc.oneof(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 300, max: 2000 })), tag: fc.nat({ max: 9 }) }), weight: 3 },
      { arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }), weight: 1 },
      {
        arbitrary: fc.record({
          kind: fc.constant('batch' as const),
          writes: fc.array(fc.record({ key: fc.constantFrom(...KEYS), size: fc.option(fc.integer({ min: 0, max: 120 }), { nil: undefined }), tag: fc.nat({ max: 9 }) }), { minLength: 1, maxLength: 4 }),
        }),
        weight: 1,
      },
      { arbitrary: fc.record({ kind: fc.constant('get' as const), key: fc.constantFrom(...KEYS) }), weight: 5 },
      { arbitrary: fc.record({ kind: fc.constant('checkpoint' as const) }), weight: 1 },
      { arbitrary: fc.record({ kind: fc.constant('reopen' as const) }), weight: 1 },
    );
    const valueOf = (key: string, size: number, tag: number): string => `${key}:${tag}:`.padEnd(size, String(tag));
    await fc.assert(
      fc.asyncProperty(fc.array(operationArb, { minLength: 10, maxLength: 80 }), async (operations) => {
        let device = new SimulatedDevice({ sizeBytes: 4 << 20 });
        const open = (create: boolean): Promise<BlockStore> =>
          BlockStore.open('records', { device, create, walSizeBytes: 96 << 10, blockSize: 512, cacheSizeBytes: 64 << 10, encoding: 'string' });
        let store = await open(true);
        const model = new Map<string, string>();
        try {
          for (const operation of operations) {
            if (operation.kind === 'put') {
              const value = valueOf(operation.key, operation.size, operation.tag);
              await store.put(operation.key, value);
              model.set(operation.key, value);
            } else if (operation.kind === 'delete') {
              await store.delete(operation.key);
              model.delete(operation.key);
            } else if (operation.kind === 'batch') {
              await store.batch(operation.writes.map(({ key, size, tag }) => (size === undefined ? { type: 'del' as const, key } : { type: 'put' as const, key, value: valueOf(key, size, tag) })));
              for (const { key, size, tag } of operation.writes) {
                if (size === undefined) model.delete(key);
                else model.set(key, valueOf(key, size, tag));
              }
            } else if (operation.kind === 'get') {
              // Twice: the first may admit the record the second answers.
              assert.equal(await store.get(operation.key), model.get(operation.key), `get(${operation.key})`);
              assert.equal(await store.get(operation.key), model.get(operation.key), `get(${operation.key}) again`);
              assert.equal(await store.has(operation.key), model.has(operation.key), `has(${operation.key})`);
            } else if (operation.kind === 'checkpoint') {
              await store.checkpoint();
            } else {
              // A clean close; the device's image, opened again.
              await store.close();
              device = new SimulatedDevice({ sizeBytes: device.sizeBytes }, device.snapshot());
              store = await open(false);
            }
          }
          assert.deepEqual(await store.getMany(KEYS), KEYS.map((key) => model.get(key)));
          assert.ok(store.stats().recordCacheBytes <= 24 << 10, 'records within their share of the budget');
        } finally {
          await store.close();
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
  });
});
