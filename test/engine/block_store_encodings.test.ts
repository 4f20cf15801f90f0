// BlockStore value encodings on a real file: 'msgpack' (the default),
// 'json', 'string' and 'binary' each store what they accept, inline and as
// extents, and give it back after a reopen (read from the disk, not from the
// block cache).
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import type { ValueEncoding } from '../../engine/value_codec.js';
import { makeStoreDir, openSmallStore, pattern, rejectsWith, removeStoreDir } from './helpers.js';

/** A string longer than half a 4 KiB block, so it is stored as an extent. */
const LONG_TEXT = 'ringstore é 😀 '.repeat(400);

describe('BlockStore encodings', () => {
  let dir: string | undefined;
  const open: BlockStore[] = [];

  before(() => {
    dir = makeStoreDir();
  });

  after(async () => {
    for (const store of open) await store.close();
    removeStoreDir(dir);
  });

  /** Writes `entries` with `encoding`, then reads them back live and after a reopen with no cache. */
  async function roundTrip(encoding: ValueEncoding, entries: [string, unknown][], check: (key: string, expected: unknown, actual: unknown) => void): Promise<void> {
    const path = `${dir}/${encoding}`;
    const store = await openSmallStore(path, { encoding });
    open.push(store);
    for (const [key, value] of entries) await store.put(key, value);
    for (const [key, value] of entries) check(key, value, await store.get(key));
    await store.close();
    const reopened = await BlockStore.open(path, { encoding, cacheSizeBytes: 0 });
    open.push(reopened);
    for (const [key, value] of entries) check(key, value, await reopened.get(key));
    await reopened.close();
  }

  describe("'msgpack' (default)", () => {
    it('round-trips structured values, inline and as extents', async () => {
      const entries: [string, unknown][] = [
        ['object', { name: 'x', list: [1, 'two', null, true], nested: { ratio: 0.5 } }],
        ['array', [1, [2, [3]]]],
        ['number', 3.25],
        ['string', 'é😀'],
        ['big-object', { text: LONG_TEXT, numbers: Array.from({ length: 500 }, (_, i) => i * 1.5) }],
      ];
      await roundTrip('msgpack', entries, (key, expected, actual) => assert.deepEqual(actual, expected, key));
    });

    it('keeps Dates, Sets, typed arrays and bigints their types', async () => {
      const date = new Date(1_700_000_000_123);
      const entries: [string, unknown][] = [
        ['date', date],
        ['set', new Set(['a', 1])],
        ['floats', Float64Array.from([0.5, -1])],
        ['bigint', 2n ** 64n + 1n],
        ['mixed', { when: date, tags: new Set(['x']), bytes: Uint8Array.from([1, 2, 3]) }],
      ];
      await roundTrip('msgpack', entries, (key, expected, actual) => assert.deepEqual(actual, expected, key));
    });

    it('keeps a Map a Map', async () => {
      const entries: [string, unknown][] = [
        [
          'map',
          new Map<unknown, unknown>([
            [1, 'one'],
            ['k', { v: 2 }],
          ]),
        ],
      ];
      await roundTrip('msgpack', entries, (key, expected, actual) => {
        assert.ok(actual instanceof Map, `${key}: a Map came back as ${JSON.stringify(actual)}`);
        assert.deepEqual(actual, expected);
      });
    });

    it("refuses an open with another encoding than the recorded one but 'binary' (a 5 put through 'json' read back as 53; found by a review)", async () => {
      const path = `${dir}/mismatch`;
      const store = await openSmallStore(path);
      await store.put('n', 5);
      await store.close();
      for (const encoding of ['json', 'string'] as const) {
        await rejectsWith(() => BlockStore.open(path, { encoding }), RangeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => BlockStore.open(path, { encoding, create: true }), RangeError, 'ERR_INVALID_ARG');
        await rejectsWith(() => BlockStore.open(path, { encoding, readOnly: true }), RangeError, 'ERR_INVALID_ARG');
      }
      const asBytes = await BlockStore.open(path, { encoding: 'binary' });
      open.push(asBytes);
      assert.deepEqual(Buffer.from((await asBytes.get('n')) as Uint8Array), Buffer.from([5]), 'the stored bytes: msgpack of 5');
      await asBytes.close();
      const reopened = await BlockStore.open(path, { encoding: 'msgpack' });
      open.push(reopened);
      assert.equal(await reopened.get('n'), 5);
      await reopened.close();
    });

    it('is the encoding when none is given', async () => {
      const path = `${dir}/default`;
      const store = await openSmallStore(path);
      open.push(store);
      await store.put('k', { a: [1] });
      await store.close();
      const asMsgpack = await BlockStore.open(path, { encoding: 'msgpack' });
      open.push(asMsgpack);
      assert.deepEqual(await asMsgpack.get('k'), { a: [1] });
      await asMsgpack.close();
    });
  });

  describe("'json'", () => {
    it('round-trips JSON values, inline and as extents', async () => {
      const entries: [string, unknown][] = [
        ['object', { a: [1, 2, { b: null }], c: 'é' }],
        ['scalar', 12],
        ['big', { text: LONG_TEXT }],
      ];
      await roundTrip('json', entries, (key, expected, actual) => assert.deepEqual(actual, expected, key));
    });
  });

  describe("'string'", () => {
    it('round-trips strings, including the empty string and non-ASCII text', async () => {
      const entries: [string, unknown][] = [
        ['empty', ''],
        ['short', 'é😀 日本'],
        ['long', LONG_TEXT],
      ];
      await roundTrip('string', entries, (key, expected, actual) => assert.equal(actual, expected, key));
    });

    it('refuses a non-string value with ERR_INVALID_ARG', async () => {
      const store = await openSmallStore(`${dir}/string-refuses`, { encoding: 'string' });
      open.push(store);
      await rejectsWith(() => store.put('k', 42), TypeError, 'ERR_INVALID_ARG');
      assert.equal(await store.has('k'), false);
      await store.close();
    });
  });

  describe("'binary'", () => {
    it('round-trips bytes as Buffers: empty, inline and extents', async () => {
      const entries: [string, unknown][] = [
        ['empty', Buffer.alloc(0)],
        ['inline', pattern(100, 1)],
        ['uint8array', Uint8Array.from(pattern(300, 2))],
        ['extent', pattern(50_000, 3)],
      ];
      await roundTrip('binary', entries, (key, expected, actual) => {
        assert.ok(Buffer.isBuffer(actual), `${key} should come back as a Buffer`);
        assert.ok(actual.equals(expected as Uint8Array), key);
      });
    });

    it('copies the value at put(): changing the caller buffer afterwards changes nothing', async () => {
      const store = await openSmallStore(`${dir}/binary-copies`, { encoding: 'binary' });
      open.push(store);
      for (const size of [100, 20_000]) {
        const original = pattern(size, size);
        const buffer = Buffer.from(original);
        const done = store.put(`copied-${size}`, buffer);
        buffer.fill(0);
        await done;
        assert.ok(((await store.get(`copied-${size}`)) as Buffer).equals(original), `${size} bytes`);
      }
      await store.close();
    });
  });
});
