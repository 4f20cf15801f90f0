// BlockStore#range() on a real file: entries in bytewise key order within
// gt/gte/lt/lte bounds, forwards or reversed, at most `limit`, with or
// without values — over a snapshot taken when iteration starts, so writes
// made while iterating are not seen, even when they replace extent values
// whose blocks are then trimmed and reused.
import assert from 'node:assert/strict';

import { addExtension } from 'msgpackr';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import type { RangeOptions } from '../../engine/store_options.js';
import { collect, makeStoreDir, openSmallStore, pattern, rejectsWith, removeStoreDir, storeDirPerTest, waitForTrims } from './helpers.js';

const KEYS = ['a', 'b', 'c', 'd', 'e'];

describe('BlockStore#range()', () => {
  let dir: string | undefined;
  let store: BlockStore | undefined;

  before(async () => {
    dir = makeStoreDir();
    store = await openSmallStore(`${dir}/store`, { encoding: 'string' });
    for (const key of KEYS) await store.put(key, `value of ${key}`);
  });

  after(async () => {
    await store?.close();
    removeStoreDir(dir);
  });

  async function keysOf(options: RangeOptions): Promise<string[]> {
    return (await collect(store!.range(options))).map(([key]) => key as string);
  }

  it('yields every entry in key order with its value', async () => {
    assert.deepEqual(
      await collect(store!.range()),
      KEYS.map((key) => [key, `value of ${key}`]),
    );
  });

  it('honours gt, gte, lt and lte, alone and together', async () => {
    assert.deepEqual(await keysOf({ gt: 'b' }), ['c', 'd', 'e']);
    assert.deepEqual(await keysOf({ gte: 'b' }), ['b', 'c', 'd', 'e']);
    assert.deepEqual(await keysOf({ lt: 'd' }), ['a', 'b', 'c']);
    assert.deepEqual(await keysOf({ lte: 'd' }), ['a', 'b', 'c', 'd']);
    assert.deepEqual(await keysOf({ gt: 'a', lt: 'e' }), ['b', 'c', 'd']);
    assert.deepEqual(await keysOf({ gte: 'b', lte: 'b' }), ['b']);
    assert.deepEqual(await keysOf({ gt: 'b', lt: 'c' }), []);
  });

  it('accepts bounds that are not keys of the store', async () => {
    assert.deepEqual(await keysOf({ gt: 'bb', lt: 'dd' }), ['c', 'd']);
    assert.deepEqual(await keysOf({ gte: 'f' }), []);
    assert.deepEqual(await keysOf({ lte: '0' }), []);
  });

  it('yields entries in descending order with reverse, within the same bounds', async () => {
    assert.deepEqual(await keysOf({ reverse: true }), ['e', 'd', 'c', 'b', 'a']);
    assert.deepEqual(await keysOf({ reverse: true, gt: 'b' }), ['e', 'd', 'c']);
    assert.deepEqual(await keysOf({ reverse: true, gte: 'b' }), ['e', 'd', 'c', 'b']);
    assert.deepEqual(await keysOf({ reverse: true, lt: 'd' }), ['c', 'b', 'a']);
    assert.deepEqual(await keysOf({ reverse: true, lte: 'd' }), ['d', 'c', 'b', 'a']);
    assert.deepEqual(await keysOf({ reverse: true, gt: 'a', lt: 'e' }), ['d', 'c', 'b']);
    assert.deepEqual(await keysOf({ reverse: true, lt: 'dd', gt: 'bb' }), ['d', 'c']);
  });

  it('stops after limit entries, in either direction', async () => {
    assert.deepEqual(await keysOf({ limit: 2 }), ['a', 'b']);
    assert.deepEqual(await keysOf({ limit: 2, reverse: true }), ['e', 'd']);
    assert.deepEqual(await keysOf({ limit: 2, gt: 'c' }), ['d', 'e']);
    assert.deepEqual(await keysOf({ limit: 0 }), []);
    assert.deepEqual(await keysOf({ limit: 100 }), KEYS);
  });

  it('yields [key, undefined] with values: false', async () => {
    assert.deepEqual(
      await collect(store!.range({ values: false, gte: 'd' })),
      [
        ['d', undefined],
        ['e', undefined],
      ],
    );
  });

  it('lets gte take precedence over gt and lte over lt when both are given (abstract-level), in either direction', async () => {
    // Issue 8: { gte: 'b', gt: 'a' } yielded c, d (gt's exclusivity applied to gte's key).
    assert.deepEqual(await keysOf({ gte: 'b', gt: 'a' }), ['b', 'c', 'd', 'e']);
    assert.deepEqual(await keysOf({ gte: 'b', gt: 'c' }), ['b', 'c', 'd', 'e'], 'even when gt is the tighter bound');
    assert.deepEqual(await keysOf({ lte: 'c', lt: 'z' }), ['a', 'b', 'c']);
    assert.deepEqual(await keysOf({ lte: 'c', lt: 'b' }), ['a', 'b', 'c'], 'even when lt is the tighter bound');
    assert.deepEqual(await keysOf({ gte: 'b', gt: 'a', lte: 'd', lt: 'c' }), ['b', 'c', 'd']);
    assert.deepEqual(await keysOf({ reverse: true, gte: 'b', gt: 'a' }), ['e', 'd', 'c', 'b']);
    assert.deepEqual(await keysOf({ reverse: true, lte: 'c', lt: 'z' }), ['c', 'b', 'a']);
    assert.deepEqual(await keysOf({ reverse: true, gte: 'b', gt: 'c', lte: 'd', lt: 'b' }), ['d', 'c', 'b']);
  });

  it('validates every bound given, also one that another takes precedence over', async () => {
    for (const name of ['gt', 'gte', 'lt', 'lte'] as const) {
      const bads: [string, unknown][] = [['a symbol', Symbol('bound')], ['a number', 42], ['null', null], ['an object', {}], ['an empty string', ''], ['a lone surrogate', '\uD800'], ['a Proxy of a Buffer', new Proxy(Buffer.from('b'), {})]];
      for (const [what, bad] of bads) {
        const options = { gt: 'a', gte: 'a', lt: 'z', lte: 'z', [name]: bad } as unknown as RangeOptions;
        const error = await rejectsWith(() => collect(store!.range(options)), Error, 'ERR_INVALID_ARG');
        assert.ok(error instanceof TypeError || error instanceof RangeError, `${name}: ${what} gave ${error.name}`);
        assert.match(error.message, new RegExp(`'${name}'`), 'the message names the option');
      }
    }
  });

  it('refuses a non-boolean reverse or values, and a fractional limit, with ERR_INVALID_ARG', async () => {
    await rejectsWith(() => collect(store!.range({ reverse: 'yes' as unknown as boolean })), TypeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => collect(store!.range({ values: 0 as unknown as boolean })), TypeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => collect(store!.range({ limit: 1.5 })), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => collect(store!.range({ limit: NaN })), RangeError, 'ERR_INVALID_ARG');
    assert.deepEqual(await keysOf({ limit: Infinity }), KEYS, 'Infinity means no limit');
  });

  it('refuses a negative or non-numeric limit with ERR_INVALID_ARG', async () => {
    await rejectsWith(() => collect(store!.range({ limit: -1 })), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => collect(store!.range({ limit: 'ten' as unknown as number })), RangeError, 'ERR_INVALID_ARG');
  });

  it('does not see puts, overwrites or deletes made while it iterates', async () => {
    const seen: [string, unknown][] = [];
    for await (const [key, value] of store!.range()) {
      seen.push([key as string, value]);
      if (key === 'a') {
        await store!.put('b', 'changed');
        await store!.delete('c');
        await store!.put('cc', 'inserted');
        await store!.put('zz', 'appended');
      }
    }
    assert.deepEqual(
      seen,
      KEYS.map((key) => [key, `value of ${key}`]),
    );
    assert.deepEqual(await keysOf({}), ['a', 'b', 'cc', 'd', 'e', 'zz']);
    assert.equal(await store!.get('b'), 'changed');
  });
});

describe('BlockStore#range() over extent values', () => {
  let dir: string | undefined;
  let store: BlockStore | undefined;

  before(async () => {
    dir = makeStoreDir();
    store = await openSmallStore(`${dir}/store`, { encoding: 'binary', cacheSizeBytes: 0 });
  });

  after(async () => {
    await store?.close();
    removeStoreDir(dir);
  });

  it('gives the snapshot values even when they are replaced, trimmed and their blocks reused mid-iteration', async () => {
    const keys = ['k1', 'k2', 'k3', 'k4'];
    for (const [i, key] of keys.entries()) await store!.put(key, pattern(16_384, i));
    const seen: string[] = [];
    for await (const [key, value] of store!.range()) {
      assert.ok((value as Buffer).equals(pattern(16_384, keys.indexOf(key as string))), `${String(key)} changed under the iterator`);
      seen.push(key as string);
      if (key === 'k1') {
        // Replace the values not yet read and fill free space with other
        // data. The iterator pins its snapshot's blocks, so their trims wait
        // for it to end instead of pulling the blocks from under it.
        for (const [i, other] of keys.entries()) if (other !== 'k1') await store!.put(other, pattern(16_384, 100 + i));
        await store!.delete('k4');
        for (let i = 0; i < 8; i++) await store!.put(`filler-${i}`, pattern(16_384, 200 + i));
        assert.ok(store!.stats().pendingTrims > 0, 'the replaced values were released while the iterator still needs them');
      }
    }
    assert.deepEqual(seen, keys);
    // Once the iterator is done, the pinned blocks are trimmed and freed.
    await waitForTrims(store!);
  });
});

/** A value whose msgpack extension keeps the bytes it is unpacked from, as a user's may. */
class Kept {
  constructor(readonly bytes: Uint8Array) {}
}
let keptRegistered = false;

describe('BlockStore#range() over more leaves than the cache holds', () => {
  /** A page cache of a few 4 KiB pages: a scan of the store lends most leaves (tree_loader.ts, loadForScan). */
  const CACHE_BYTES = 16 << 10;
  const KEY_COUNT = 2000;
  const keyOf = (index: number): string => `key-${String(index).padStart(5, '0')}`;
  const valueOf = (index: number): Buffer => Buffer.from(Array.from({ length: 60 }, (_, j) => (index * 13 + j) & 0xff));

  /** Leaves of the 2 000 keys (~75 bytes a record, 4 KiB pages): at least this many. */
  const LEAF_COUNT_MIN = Math.floor(KEY_COUNT / 60);

  /**
   * The store reopened on its device with an empty cache, then the cache
   * filled by lookups of other leaves; its values are `valueOf` each index,
   * through `encoding` (`toValue` makes one).
   */
  async function coldStore<V = Buffer>(encoding: 'binary' | 'msgpack' = 'binary', toValue: (bytes: Buffer) => V = (bytes) => bytes as V): Promise<BlockStore<V>> {
    const first = new SimulatedDevice({ sizeBytes: 8 << 20 });
    const writer = await BlockStore.open<V>('scan', { device: first, create: true, blockSize: 512, encoding });
    await writer.batch(Array.from({ length: KEY_COUNT }, (_, index) => ({ type: 'put' as const, key: keyOf(index), value: toValue(valueOf(index)) })));
    await writer.close();
    const store = await BlockStore.open<V>('scan', { device: new SimulatedDevice({ sizeBytes: 8 << 20 }, first.snapshot()), cacheSizeBytes: CACHE_BYTES });
    for (let index = 0; index < KEY_COUNT; index += 97) {
      await store.get(keyOf(index));
      await store.get(keyOf(index));
    }
    return store;
  }

  /**
   * `scan()`'s result, checking that it lent leaves: a scan of the keys
   * after it reads every leaf from the device again (a leaf lent is not
   * cached). Else the cache held the store, and nothing was lent.
   */
  async function lending<T>(store: BlockStore<unknown>, scan: () => Promise<T>): Promise<T> {
    const result = await scan();
    const missesBefore = store.stats().pageCacheMisses;
    await collect(store.keys());
    const read = store.stats().pageCacheMisses - missesBefore;
    assert.ok(read >= LEAF_COUNT_MIN, `a second scan read ${read} pages, fewer than the ${LEAF_COUNT_MIN} leaves: the first cached them, lent none`);
    return result;
  }

  it('hands out values that stay intact after the scan has moved on and reused its read buffers', async () => {
    const store = await coldStore();
    try {
      const entries = await lending(store, () => collect(store.range()));
      assert.equal(entries.length, KEY_COUNT);
      // Checked after the whole scan: a value viewing a lent page would hold a later leaf's bytes by now.
      entries.forEach(([key, value], index) => {
        assert.equal(key, keyOf(index));
        assert.deepEqual(value, valueOf(index), `the value of ${keyOf(index)} changed after the scan went on`);
      });
      const values = await collect(store.values({ gte: keyOf(500), limit: 300 }));
      values.forEach((value, index) => assert.deepEqual(value, valueOf(500 + index)));
    } finally {
      await store.close();
    }
  });

  it('in reverse as well: descending keys whose values stay intact after the scan has moved on', async () => {
    const store = await coldStore();
    try {
      const entries = await lending(store, () => collect(store.range({ reverse: true })));
      assert.equal(entries.length, KEY_COUNT);
      entries.forEach(([key, value], index) => {
        assert.equal(key, keyOf(KEY_COUNT - 1 - index));
        assert.deepEqual(value, valueOf(KEY_COUNT - 1 - index), `the value of ${key} changed after the scan went on`);
      });
      assert.equal(await store.count({ gte: keyOf(10), lt: keyOf(1990), reverse: true }), 1980);
    } finally {
      await store.close();
    }
  });

  it('hands a msgpackr extension, which keeps a view of its input, bytes no later leaf overwrites', async () => {
    // msgpackr's extensions are global and cannot be removed: this one stays
    // registered for the rest of the process. Type 0x33 is one msgpackr
    // does not use and no other test writes; registered once.
    if (!keptRegistered) {
      addExtension({ Class: Kept, type: 0x33, pack: (kept: Kept) => Buffer.from(kept.bytes), unpack: (bytes: Uint8Array) => new Kept(bytes) });
      keptRegistered = true;
    }
    const store = await coldStore<Kept>('msgpack', (bytes) => new Kept(bytes));
    try {
      const values = await lending(store, () => collect(store.values()));
      assert.equal(values.length, KEY_COUNT);
      // Checked after the whole scan: an extension handed a view of a lent page would hold a later leaf's bytes by now.
      values.forEach((value, index) => {
        assert.ok(value instanceof Kept);
        assert.deepEqual(Buffer.from(value.bytes), valueOf(index), `the value of ${keyOf(index)} changed after the scan went on`);
      });
    } finally {
      await store.close();
    }
  });

  it('answers gets and a second scan the same after scans stopped early', async () => {
    const store = await coldStore();
    try {
      for (const start of [0, 700, 1900]) {
        let seen = 0;
        for await (const [key] of store.range({ gte: keyOf(start) })) {
          assert.equal(key, keyOf(start + seen));
          if (++seen === 150) break;
        }
      }
      assert.deepEqual(await store.get(keyOf(1234)), valueOf(1234));
      assert.equal(await store.count(), KEY_COUNT);
      assert.equal(await store.count({ gte: keyOf(100), lt: keyOf(1100) }), 1000);
      assert.equal((await collect(store.range())).length, KEY_COUNT);
    } finally {
      await store.close();
    }
  });
});

describe('BlockStore#range() of keys and values of every kind', () => {
  const dirOf = storeDirPerTest();
  // Non-ASCII string keys (2-, 3- and 4-byte UTF-8), binary keys (bytes
  // that are not UTF-8 among them), ASCII keys; inline values, an extent
  // value, and an empty one.
  const entries: [string | Buffer, Buffer][] = [
    ['ascii', Buffer.from('small')],
    ['é', Buffer.from([1, 2, 3])],
    ['日本語', Buffer.alloc(0)],
    ['🙂 face', pattern(20_000, 7)],
    [Buffer.from([0xff, 0x00, 0x80]), Buffer.from('binary key')],
    [Buffer.from([0x61, 0x00]), Buffer.from([9])],
    ['zz', pattern(300, 3)],
  ];
  const order = (a: string | Buffer, b: string | Buffer): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
  const sorted = [...entries].sort(([a], [b]) => order(a, b));

  for (const encoding of ['binary', 'msgpack'] as const) {
    it(`gives each key and value back as put, in every shape and in reverse, before and after a reopen (${encoding})`, async () => {
      const path = `${dirOf()}/store`;
      let store = await openSmallStore(path, { encoding });
      try {
        for (const [key, value] of entries) await store.put(key, value);
        for (let pass = 0; pass < 2; pass++) {
          for (const reverse of [false, true]) {
            const expected = reverse ? [...sorted].reverse() : sorted;
            const got = await collect(store.range({ reverse }));
            assert.deepEqual(got.map(([key]) => key), expected.map(([key]) => key), `keys, pass ${pass}`);
            got.forEach(([, value], i) => assert.deepEqual(Buffer.from(value as Uint8Array), expected[i]![1], `value ${i}, pass ${pass}`));
            assert.deepEqual(await collect(store.keys({ reverse })), expected.map(([key]) => key));
            assert.deepEqual((await collect(store.values({ reverse }))).map((value) => Buffer.from(value as Uint8Array)), expected.map(([, value]) => value));
            assert.deepEqual(await collect(store.range({ reverse, values: false })), expected.map(([key]) => [key, undefined]));
          }
          // The second pass reads the leaves from the file.
          await store.close();
          store = await BlockStore.open(path, { encoding });
        }
      } finally {
        await store.close();
      }
    });
  }
});
