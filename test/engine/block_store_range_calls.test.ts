// BlockStore#keys(), #values(), #count(), #clear() and range()'s `prefix`
// against a model: a Map of key strings (a key's bytes as latin1, whose
// string order is the bytewise order) kept sorted, under every combination
// of gt/gte/lt/lte/prefix, reverse and limit, with string and Buffer keys
// whose bytes include 0x00, 0xff and multi-byte UTF-8. The store lives on
// the simulated device with 512-byte blocks and a page cache of a few pages,
// so the ranges cross many leaves read back from the device.
//
// RINGSTORE_RANGE_SEED and RINGSTORE_RANGE_RUNS reproduce or extend a run;
// the seed is in the test's title and fast-check prints it on failure.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { BlockStore } from '../../engine/block_store.js';
import { CLEAR_BATCH_KEYS_MAX, type BatchOperation, type KeyRangeOptions, type RangeOptions } from '../../engine/store_options.js';
import type { Key } from '../../engine/key_codec.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { collect, makeStoreDir, openSmallStore, rejectsWith, removeStoreDir } from './helpers.js';

const SEED = Number(process.env.RINGSTORE_RANGE_SEED ?? 20261202);
const RUNS = Number(process.env.RINGSTORE_RANGE_RUNS ?? 40);
const DEVICE_BYTES = 4 << 20;
/** 3/4 of it for pages: three 4 KiB pages (512-byte blocks), in a tree of several. */
const CACHE_BYTES = 16 << 10;

/** The model's key: the key's bytes as latin1 (bytewise order = string order). */
function keyStringOf(key: Key): string {
  return typeof key === 'string' ? Buffer.from(key, 'utf8').toString('latin1') : Buffer.from(key).toString('latin1');
}

/** A key as the store gives it back, in a form assert.deepEqual compares exactly. */
function shown(key: Key): string {
  return typeof key === 'string' ? `s:${key}` : `b:${Buffer.from(key).toString('hex')}`;
}

interface ModelEntry {
  key: Key;
  value: string;
}

type Model = Map<string, ModelEntry>;

/** What the range options select from the model, in order, written independently of the store's code. */
function select(model: Model, options: KeyRangeOptions): [string, ModelEntry][] {
  const gt = options.gt === undefined ? undefined : keyStringOf(options.gt);
  const gte = options.gte === undefined ? undefined : keyStringOf(options.gte);
  const lt = options.lt === undefined ? undefined : keyStringOf(options.lt);
  const lte = options.lte === undefined ? undefined : keyStringOf(options.lte);
  const prefix = options.prefix === undefined ? undefined : keyStringOf(options.prefix);
  const selected = [...model.entries()]
    .filter(([keyString]) => {
      if (gte !== undefined ? keyString < gte : gt !== undefined && keyString <= gt) return false;
      if (lte !== undefined ? keyString > lte : lt !== undefined && keyString >= lt) return false;
      return prefix === undefined || keyString.startsWith(prefix);
    })
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (options.reverse === true) selected.reverse();
  return selected.slice(0, options.limit ?? Infinity);
}

// Short keys over a few bytes, so that bounds, prefixes and keys collide
// often: 0x00, 'a', 'b', 0xc3 0xa9 ('é' in UTF-8), 0xff.
const BYTES = [0x00, 0x61, 0x62, 0xc3, 0xa9, 0xff];
const STRING_PARTS = ['a', 'b', 'é', 'ab', '\u0000'];
const keyArb: fc.Arbitrary<Key> = fc.oneof(
  fc.array(fc.constantFrom(...STRING_PARTS), { minLength: 1, maxLength: 4 }).map((parts) => parts.join('')),
  fc.array(fc.constantFrom(...BYTES), { minLength: 1, maxLength: 5 }).map((bytes) => Buffer.from(bytes)),
);
const prefixArb: fc.Arbitrary<Key> = fc.oneof(
  keyArb,
  fc.constant(''),
  fc.constant(Buffer.alloc(0)),
  fc.array(fc.constant(0xff), { minLength: 1, maxLength: 2 }).map((bytes) => Buffer.from(bytes)),
);
const rangeArb: fc.Arbitrary<KeyRangeOptions> = fc.record(
  {
    gt: keyArb,
    gte: keyArb,
    lt: keyArb,
    lte: keyArb,
    prefix: prefixArb,
    reverse: fc.boolean(),
    limit: fc.oneof(fc.integer({ min: 0, max: 30 }), fc.constant(Infinity)),
  },
  { requiredKeys: [] },
);

type Call = { kind: 'keys' | 'values' | 'count' | 'range' | 'range without values' | 'clear'; options: KeyRangeOptions } | { kind: 'put'; key: Key; value: string };
const callArb: fc.Arbitrary<Call> = fc.oneof(
  fc.record({ kind: fc.constantFrom('keys', 'values', 'count', 'range', 'range without values', 'clear' as const), options: rangeArb }) as fc.Arbitrary<Call>,
  fc.record({ kind: fc.constant('put' as const), key: keyArb, value: fc.string({ maxLength: 8 }) }),
);

async function check(store: BlockStore<string>, model: Model, call: Call): Promise<void> {
  const what = `${call.kind} ${'options' in call ? describeOptions(call.options) : ''}`;
  switch (call.kind) {
    case 'put':
      await store.put(call.key, call.value);
      model.set(keyStringOf(call.key), { key: call.key, value: call.value });
      return;
    case 'keys':
      assert.deepEqual((await collect(store.keys(call.options))).map(shown), select(model, call.options).map(([, entry]) => shown(entry.key)), what);
      return;
    case 'values':
      assert.deepEqual(await collect(store.values(call.options)), select(model, call.options).map(([, entry]) => entry.value), what);
      return;
    case 'count':
      assert.equal(await store.count(call.options), select(model, call.options).length, what);
      return;
    case 'range':
      assert.deepEqual(
        (await collect(store.range(call.options))).map(([key, value]) => [shown(key), value]),
        select(model, call.options).map(([, entry]) => [shown(entry.key), entry.value]),
        what,
      );
      return;
    case 'range without values':
      assert.deepEqual(
        (await collect(store.range({ ...call.options, values: false }))).map(([key, value]) => [shown(key), value]),
        select(model, call.options).map(([, entry]) => [shown(entry.key), undefined]),
        what,
      );
      return;
    case 'clear': {
      const selected = select(model, call.options);
      assert.equal(await store.clear(call.options), selected.length, what);
      for (const [keyString] of selected) model.delete(keyString);
      // Everything else is still there, nothing more.
      assert.deepEqual(
        (await collect(store.range())).map(([key, value]) => [shown(key), value]),
        select(model, {}).map(([, entry]) => [shown(entry.key), entry.value]),
        `after ${what}`,
      );
      return;
    }
  }
}

function describeOptions(options: KeyRangeOptions): string {
  return JSON.stringify(options, (_name, value: unknown) => (Buffer.isBuffer(value) ? `0x${value.toString('hex')}` : value === Infinity ? 'Infinity' : value));
}

describe('BlockStore range calls: keys(), values(), count(), clear(), prefix', () => {
  it(`agree with a sorted-Map model under every bound, prefix, reverse and limit (seed ${SEED}, ${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(keyArb, { minLength: 0, maxLength: 120, selector: keyStringOf }), fc.array(callArb, { minLength: 1, maxLength: 12 }), async (keys, calls) => {
        const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
        const store = await BlockStore.open<string>('model', { device, create: true, blockSize: 512, cacheSizeBytes: CACHE_BYTES, encoding: 'string' });
        try {
          const model: Model = new Map();
          // Keys that land in different leaves: a value of ~100 bytes each.
          await store.batch(keys.map((key, index) => ({ type: 'put' as const, key, value: `v${index}`.padEnd(100, '.') })));
          keys.forEach((key, index) => model.set(keyStringOf(key), { key, value: `v${index}`.padEnd(100, '.') }));
          await store.checkpoint(); // pages on the device, read back through the small cache
          for (const call of calls) await check(store, model, call);
          await store.verifyIntegrity();
        } finally {
          await store.close();
        }
      }),
      { seed: SEED, numRuns: RUNS, verbose: 1 },
    );
  });

  describe('prefix', () => {
    let device: SimulatedDevice;
    let store: BlockStore<string>;
    before(async () => {
      device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
      store = await BlockStore.open<string>('prefix', { device, create: true, blockSize: 512, encoding: 'string' });
      await store.batch(
        ['a', 'ab', 'abc', 'ab\u00ff', 'ac', 'b', 'é', 'éa', 'ê'].map((key): BatchOperation<string> => ({ type: 'put', key, value: key })).concat([
          { type: 'put', key: Buffer.from([0xff]), value: 'ff' },
          { type: 'put', key: Buffer.from([0xff, 0xff]), value: 'ffff' },
          { type: 'put', key: Buffer.from([0xff, 0xff, 0x00]), value: 'ffff00' },
        ]),
      );
    });
    after(() => store.close());

    it('selects the keys whose bytes start with the prefix, string or Buffer', async () => {
      assert.deepEqual(await collect(store.values({ prefix: 'ab' })), ['ab', 'abc', 'ab\u00ff']);
      assert.deepEqual(await collect(store.values({ prefix: Buffer.from('ab') })), ['ab', 'abc', 'ab\u00ff']);
      // 'é' is 0xc3 0xa9; 'ê' is 0xc3 0xaa: a string prefix is its UTF-8 bytes.
      assert.deepEqual(await collect(store.values({ prefix: 'é' })), ['é', 'éa']);
      assert.deepEqual(await collect(store.values({ prefix: Buffer.from([0xc3]) })), ['é', 'éa', 'ê']);
    });

    it('has no upper bound for a prefix of 0xff bytes', async () => {
      assert.deepEqual(await collect(store.values({ prefix: Buffer.from([0xff]) })), ['ff', 'ffff', 'ffff00']);
      assert.deepEqual(await collect(store.values({ prefix: Buffer.from([0xff, 0xff]), reverse: true })), ['ffff00', 'ffff']);
    });

    it('is every key when empty', async () => {
      assert.equal(await store.count({ prefix: '' }), 12);
      assert.equal(await store.count({ prefix: Buffer.alloc(0) }), 12);
    });

    it('intersects with the bounds', async () => {
      assert.deepEqual(await collect(store.values({ prefix: 'ab', gt: 'ab' })), ['abc', 'ab\u00ff']);
      assert.deepEqual(await collect(store.values({ prefix: 'ab', gte: 'a', lt: 'abd' })), ['ab', 'abc']);
      assert.deepEqual(await collect(store.values({ prefix: 'ab', lte: 'zzz' })), ['ab', 'abc', 'ab\u00ff']);
      assert.deepEqual(await collect(store.values({ prefix: 'ab', gt: 'b' })), []);
      assert.deepEqual(await collect(store.values({ prefix: 'ab', lt: 'ab' })), []);
      assert.deepEqual(await collect(store.values({ prefix: 'a', lt: 'ac', reverse: true, limit: 2 })), ['ab\u00ff', 'abc']);
    });

    it('is validated like a key, with ERR_INVALID_ARG', async () => {
      for (const prefix of [42, null, {}, '\uD800', new Uint16Array(2)]) {
        await rejectsWith(() => collect(store.range({ prefix } as unknown as RangeOptions)), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => store.count({ prefix } as unknown as KeyRangeOptions), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => store.clear({ prefix } as unknown as KeyRangeOptions), TypeError, 'ERR_INVALID_ARG');
      }
      assert.equal(await store.count(), 12, 'a refused clear deleted nothing');
    });
  });

  describe('arguments and state', () => {
    it('refuses bad options before any IO, and every call after close()', async () => {
      const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
      const store = await BlockStore.open('arguments', { device, create: true, blockSize: 512, cacheSizeBytes: CACHE_BYTES });
      await store.batch(Array.from({ length: 300 }, (_, index) => ({ type: 'put' as const, key: `k${String(index).padStart(4, '0')}`, value: index })));
      await store.checkpoint();
      const before = { ...device.counts };
      const bad: [unknown, ErrorConstructor | RangeErrorConstructor][] = [
        [null, TypeError],
        ['gt', TypeError],
        [{ limit: -1 }, RangeError],
        [{ limit: 1.5 }, RangeError],
        [{ limit: '3' }, RangeError],
        [{ reverse: 'yes' }, TypeError],
        [{ gt: '' }, RangeError],
        [{ lte: 7 }, TypeError],
        [
          {
            get gt(): never {
              throw new Error('getter');
            },
          },
          TypeError,
        ],
      ];
      for (const [options, type] of bad) {
        await rejectsWith(() => collect(store.keys(options as KeyRangeOptions)), type, 'ERR_INVALID_ARG');
        await rejectsWith(() => collect(store.values(options as KeyRangeOptions)), type, 'ERR_INVALID_ARG');
        await rejectsWith(() => store.count(options as KeyRangeOptions), type, 'ERR_INVALID_ARG');
        await rejectsWith(() => store.clear(options as KeyRangeOptions), type, 'ERR_INVALID_ARG');
      }
      assert.deepEqual(device.counts, before, 'a refused call did IO');
      assert.equal(await store.count(), 300);
      await store.close();
      await rejectsWith(() => collect(store.keys()), Error, 'ERR_STORE_CLOSED');
      await rejectsWith(() => collect(store.values()), Error, 'ERR_STORE_CLOSED');
      await rejectsWith(() => store.count(), Error, 'ERR_STORE_CLOSED');
      await rejectsWith(() => store.count({ gt: 'a' }), Error, 'ERR_STORE_CLOSED');
      await rejectsWith(() => store.clear(), Error, 'ERR_STORE_CLOSED');
    });

    it('count() of the whole store reads nothing', async () => {
      const first = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
      let store = await BlockStore.open('count', { device: first, create: true, blockSize: 512, cacheSizeBytes: CACHE_BYTES });
      await store.batch(Array.from({ length: 500 }, (_, index) => ({ type: 'put' as const, key: `k${index}`, value: index })));
      await store.close();
      // Reopened: nothing of the tree in memory.
      const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, first.snapshot());
      store = await BlockStore.open('count', { device, cacheSizeBytes: CACHE_BYTES });
      const reads = device.counts.reads;
      assert.equal(await store.count(), 500);
      assert.equal(await store.count({ limit: 20 }), 20);
      assert.equal(device.counts.reads, reads);
      assert.equal(await store.count({ prefix: 'k2' }), 111); // k2, k20..k29, k200..k299
      assert.equal(await store.count({ gte: 'k2' }), 388); // all but k0, k1, k10..k19, k100..k199
      await store.close();
    });
  });

  describe('clear() in batches', () => {
    let dir: string | undefined;
    beforeEach(() => (dir = makeStoreDir()));
    afterEach(() => removeStoreDir(dir));

    it(`deletes a range of more than CLEAR_BATCH_KEYS_MAX (${CLEAR_BATCH_KEYS_MAX}) keys, in several commits, and only that range`, async () => {
      const store = await openSmallStore(`${dir}/store`, { encoding: 'string' });
      try {
        const keyCount = 2 * CLEAR_BATCH_KEYS_MAX + 500;
        const key = (index: number): string => `k${String(index).padStart(6, '0')}`;
        for (let start = 0; start < keyCount; start += 1000) {
          await store.batch(Array.from({ length: Math.min(1000, keyCount - start) }, (_, offset) => ({ type: 'put' as const, key: key(start + offset), value: 'x' })));
        }
        await store.put('a-before', 'kept');
        await store.put('z-after', 'kept');
        const commits = store.stats().commits;
        assert.equal(await store.clear({ gte: 'k', lt: 'l' }), keyCount);
        assert.equal(store.stats().commits - commits, Math.ceil(keyCount / CLEAR_BATCH_KEYS_MAX), 'one commit per batch');
        assert.deepEqual(await collect(store.keys()), ['a-before', 'z-after']);
        await store.verifyIntegrity();
      } finally {
        await store.close();
      }
    });

    it('keeps each batch within a commit of a small WAL, and retries a refused batch smaller', async () => {
      // 512-byte blocks and the smallest WAL: a commit holds a few 1000-byte keys.
      const store = await openSmallStore(`${dir}/small-wal`, { blockSize: 512, walSizeBytes: 16 * 512, encoding: 'string' });
      try {
        const keys = Array.from({ length: 40 }, (_, index) => `${String(index).padStart(3, '0')}`.padEnd(1000, 'k'));
        for (const key of keys) await store.put(key, 'v');
        assert.equal(await store.clear({ limit: 25 }), 25);
        assert.deepEqual(await collect(store.keys()), keys.slice(25));
        assert.equal(await store.clear({ reverse: true }), 15);
        assert.equal(await store.count(), 0);
      } finally {
        await store.close();
      }
    });

    it('counts only the keys it deleted: a delete or another clear called while it builds its batch takes some keys first, and a limit goes on to the next keys', async () => {
      const store = await openSmallStore(`${dir}/counted`, { encoding: 'string' });
      try {
        await store.batch(['a', 'b', 'c'].map((key) => ({ type: 'put' as const, key, value: 'v' })));
        const cleared = store.clear({ gte: 'a', lte: 'c' });
        const existed = store.delete('b'); // called after clear(), applied before its batch
        assert.equal(await existed, true);
        assert.equal(await cleared, 2);
        assert.equal(await store.count(), 0);

        await store.batch(['a', 'b', 'c', 'd'].map((key) => ({ type: 'put' as const, key, value: 'v' })));
        const limited = store.clear({ limit: 2 });
        assert.equal(await store.delete('a'), true);
        // 'a' was gone when the batch committed: the first two keys then were 'b' and 'c'.
        assert.equal(await limited, 2);
        assert.deepEqual(await collect(store.keys()), ['d']);

        const keys = Array.from({ length: 100 }, (_, index) => `k${String(index).padStart(3, '0')}`);
        await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: 'v' })));
        const [first, second] = await Promise.all([store.clear({ prefix: 'k' }), store.clear({ prefix: 'k' })]);
        assert.equal(first + second, keys.length, `two clears of the same keys resolved to ${first} and ${second}`);
        assert.deepEqual(await collect(store.keys()), ['d']);
      } finally {
        await store.close();
      }
    });

  });
});
