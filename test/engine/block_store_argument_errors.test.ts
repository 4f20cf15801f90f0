// BlockStore refuses bad arguments with a documented code, and stores
// nothing when it does (issue 8's uncoded rejections, each a case here):
// values the encoding cannot store, Proxies of Uint8Arrays as keys, keys
// with lone surrogates, a malformed `device` option; and it answers calls on
// a closed store — an iteration or a read stream continued after close()
// included — with ERR_STORE_CLOSED, and stored bytes its encoding cannot
// decode with ERR_STORE_CORRUPT naming the key.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';

import { BlockStore } from '../../engine/block_store.js';
import { type RangeOptions } from '../../engine/store_options.js';
import { checkBlockDevice } from '../../engine/block_device.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreCorruptError } from '../../engine/store_error.js';
import type { ValueEncoding } from '../../engine/value_codec.js';
import { collect, detachedBytes, makeStoreDir, openSmallStore, rejectsCorrupt, rejectsWith, rejectsWithCode, removeStoreDir } from './helpers.js';

async function memoryStore(encoding: ValueEncoding = 'msgpack'): Promise<BlockStore> {
  return BlockStore.open('memory', { device: new SimulatedDevice({ sizeBytes: 8 << 20 }), create: true, encoding, blockSize: 512 });
}

function circularObject(): object {
  const value: Record<string, unknown> = { a: 1 };
  value.self = value;
  return value;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part as Uint8Array));
  return Buffer.concat(parts);
}

/** Rejects with ERR_INVALID_ARG as a TypeError or RangeError. */
async function rejectsInvalid(start: () => Promise<unknown>, what: string): Promise<Error> {
  const error = await rejectsWith(start, Error, 'ERR_INVALID_ARG').catch((failure: unknown) => {
    throw new Error(`${what}: ${(failure as Error).message}`);
  });
  assert.ok(error instanceof TypeError || error instanceof RangeError, `${what}: ${error.name}`);
  return error;
}

describe('BlockStore argument errors (issue 8)', () => {
  describe('values the encoding cannot store', () => {
    it("refuses put('fn', () => 1) under msgpack, storing nothing (it resolved, and get() then gave undefined while has() said true)", async () => {
      const store = await memoryStore('msgpack');
      try {
        await rejectsInvalid(() => store.put('fn', () => 1), 'put of a function');
        assert.equal(await store.has('fn'), false);
        assert.equal(await store.get('fn'), undefined);
      } finally {
        await store.close();
      }
    });

    for (const [encoding, cases] of [
      [
        'msgpack',
        [
          ['a circular object', circularObject],
          ['a symbol', () => Symbol('s')],
          ['a detached Uint8Array', detachedBytes],
          ['an object holding a function', () => ({ run: () => 1 })],
          ['a string with a lone surrogate', () => 'a\uD800'],
        ],
      ],
      [
        'json',
        [
          ['a circular object', circularObject],
          ['a bigint', () => 10n],
          ['an object holding a function', () => ({ run: () => 1 })],
          ['NaN', () => NaN],
        ],
      ],
    ] as [ValueEncoding, [string, () => unknown][]][]) {
      it(`refuses, under ${encoding}, ${cases.map(([what]) => what).join(', ')} — in put and in a batch, which then stores none of its operations`, async () => {
        const store = await memoryStore(encoding);
        try {
          for (const [what, make] of cases) {
            const error = await rejectsInvalid(() => store.put('k', make()), `put of ${what}`);
            assert.match(error.message, new RegExp(`'${encoding}'`), 'the message names the encoding');
            await rejectsInvalid(
              () => store.batch([{ type: 'put', key: 'good', value: 1 }, { type: 'put', key: 'bad', value: make() }, { type: 'del', key: 'kept' }]),
              `batch with ${what}`,
            );
          }
          assert.deepEqual(await collect(store.range()), []);
        } finally {
          await store.close();
        }
      });
    }
  });

  describe('keys', () => {
    const proxyKey = (): Uint8Array => new Proxy(Buffer.from('k'), {});
    const keyCalls: [string, (store: BlockStore, key: unknown) => Promise<unknown>][] = [
      ['get', (store, key) => store.get(key as string)],
      ['has', (store, key) => store.has(key as string)],
      ['put', (store, key) => store.put(key as string, 1)],
      ['delete', (store, key) => store.delete(key as string)],
      ['batch put', (store, key) => store.batch([{ type: 'put', key: key as string, value: 1 }])],
      ['batch del', (store, key) => store.batch([{ type: 'del', key: key as string }])],
      ['createReadStream', async (store, key) => readAll(store.createReadStream(key as string))],
      ['createWriteStream', async (store, key) => store.createWriteStream(key as string).destroy()],
      ...(['gt', 'gte', 'lt', 'lte'] as const).map((name): [string, (store: BlockStore, key: unknown) => Promise<unknown>] => [
        `range ${name}`,
        (store, key) => collect(store.range({ [name]: key } as RangeOptions)),
      ]),
    ];

    it('refuses a Proxy of a Uint8Array as a key in every method with ERR_INVALID_ARG (it threw "incompatible receiver")', async () => {
      const store = await memoryStore();
      try {
        await store.put('k', 1);
        for (const [name, call] of keyCalls) await rejectsInvalid(async () => call(store, proxyKey()), name);
        assert.equal(await store.get('k'), 1, 'the store is unchanged');
      } finally {
        await store.close();
      }
    });

    it("refuses string keys with lone surrogates in every method: '\\uD800' and '\\uFFFD' were the same key", async () => {
      const store = await memoryStore();
      try {
        await store.put('\uFFFD', 'replacement character');
        for (const key of ['\uD800', 'a\uDC00', `${'x'.repeat(2000)}\uD83D`]) {
          for (const [name, call] of keyCalls) {
            const error = await rejectsInvalid(async () => call(store, key), `${name}(${JSON.stringify(key.slice(-3))})`);
            assert.match(error.message, /lone surrogate/);
          }
        }
        assert.equal(await store.get('\uFFFD'), 'replacement character');
        assert.equal(await store.get('😀'), undefined, 'a surrogate pair is a well-formed key');
      } finally {
        await store.close();
      }
    });

    it('refuses a batch operation or range options whose getters throw, with ERR_INVALID_ARG and the getter’s error as cause', async () => {
      const store = await memoryStore();
      try {
        const failure = new Error('the getter throws');
        const throwing = (name: string): object =>
          Object.defineProperty({ type: 'put', key: 'k', value: 1 }, name, {
            enumerable: true,
            get() {
              throw failure;
            },
          });
        for (const name of ['type', 'key', 'value']) {
          const error = await rejectsInvalid(() => store.batch([throwing(name) as never]), `a batch operation whose ${name} getter throws`);
          assert.equal(error.cause, failure);
        }
        for (const name of ['gt', 'gte', 'lt', 'lte', 'reverse', 'limit', 'values']) {
          const error = await rejectsInvalid(() => collect(store.range(throwing(name) as RangeOptions)), `range options whose ${name} getter throws`);
          assert.equal(error.cause, failure);
        }
        assert.equal(await store.has('k'), false);
      } finally {
        await store.close();
      }
    });

    it('refuses a batch operation whose type cannot even be printed, with ERR_INVALID_ARG', async () => {
      const store = await memoryStore();
      try {
        await rejectsInvalid(() => store.batch([{ type: Object.create(null), key: 'k' } as never]), 'a null-prototype type');
        await rejectsInvalid(() => store.batch([{ type: Symbol('put'), key: 'k' } as never]), 'a symbol type');
      } finally {
        await store.close();
      }
    });
  });

  describe("the 'device' option", () => {
    it('checkBlockDevice() refuses what is not shaped like a BlockDevice with ERR_INVALID_ARG', () => {
      const valid = new SimulatedDevice({ sizeBytes: 1 << 20 });
      checkBlockDevice(valid);
      const without = (name: string): object => {
        const copy: Record<string, unknown> = {};
        for (const key of ['sizeBytes', 'ioAlignment', 'trimAlignment', 'read', 'readv', 'write', 'writeAndSync', 'writeDsync', 'sync', 'trim', 'close']) {
          copy[key] = (valid as unknown as Record<string, unknown>)[key];
        }
        delete copy[name];
        return copy;
      };
      for (const [what, device] of [
        ['null', null],
        ['{}', {}],
        ['a string', 'device'],
        ['a function', () => undefined],
        ['no read', without('read')],
        ['no close', without('close')],
        ['no sizeBytes', without('sizeBytes')],
        ['a NaN ioAlignment', { ...without('ioAlignment'), ioAlignment: NaN }],
        ['a mark that is not a function', { ...without('x'), mark: 1 }],
      ] as [string, unknown][]) {
        assert.throws(
          () => checkBlockDevice(device),
          (error: unknown) => {
            assert.ok(error instanceof TypeError || error instanceof RangeError, what);
            assert.equal((error as { code?: unknown }).code, 'ERR_INVALID_ARG', what);
            return true;
          },
          what,
        );
      }
    });

    it('BlockStore.open() refuses { device: {} } and { device: null } with ERR_INVALID_ARG', async () => {
      for (const device of [{}, null, { sizeBytes: 1 << 20 }]) {
        await rejectsInvalid(() => BlockStore.open('device', { device: device as never, create: true }), `device ${JSON.stringify(device)}`);
      }
    });
  });

  describe('after close()', () => {
    let dir: string | undefined;
    before(() => {
      dir = makeStoreDir();
    });
    after(() => removeStoreDir(dir));

    it('answers an iteration continued after close() with ERR_STORE_CLOSED (it got the device’s ERR_FILE_CLOSED)', async () => {
      const store = await openSmallStore(`${dir}/iterate`);
      for (let i = 0; i < 4; i++) await store.put(`k${i}`, `${i}`.repeat(5000)); // extent values: read from the device
      const iterator = store.range()[Symbol.asyncIterator]();
      assert.equal((await iterator.next()).done, false);
      await store.close();
      await rejectsWithCode(() => iterator.next(), 'ERR_STORE_CLOSED');
    });

    it('refuses the end of an iteration after close() too, until the caller has had it (it resolved done when the range ended in the current leaf or at its limit)', async () => {
      const store = await openSmallStore(`${dir}/iteration-ends`);
      await store.batch(['a', 'b', 'c'].map((key) => ({ type: 'put' as const, key, value: 1 })));
      // Every entry handed out, the end not yet asked for: the range ends inside the leaf, or the limit was reached.
      const exhausted = [store.keys(), store.keys({ reverse: true }), store.range({ limit: 2 }), store.values({ gte: 'b' })].map((iterable) => iterable[Symbol.asyncIterator]());
      for (const [i, iterator] of exhausted.entries()) for (let taken = 0; taken < [3, 3, 2, 2][i]; taken++) assert.equal((await iterator.next()).done, false);
      // The end told before close(), and an iteration left with return(): done stays done.
      const finished = store.keys({ limit: 1 })[Symbol.asyncIterator]();
      assert.equal((await finished.next()).done, false);
      assert.equal((await finished.next()).done, true);
      const left = store.keys()[Symbol.asyncIterator]();
      assert.equal((await left.next()).done, false);
      await left.return?.(undefined);
      await store.close();
      for (const [i, iterator] of exhausted.entries()) await rejectsWithCode(() => iterator.next(), 'ERR_STORE_CLOSED').catch((error: unknown) => assert.fail(`iteration ${i}: ${String(error)}`));
      assert.deepEqual(await finished.next(), { value: undefined, done: true });
      assert.deepEqual(await left.next(), { value: undefined, done: true });
    });

    it('answers a read stream continued after close() with ERR_STORE_CLOSED', async () => {
      const store = await openSmallStore(`${dir}/stream`, { encoding: 'binary' });
      await store.put('big', Buffer.alloc(3 << 20, 1)); // more than one stream chunk
      const stream = store.createReadStream('big');
      const iterator = stream[Symbol.asyncIterator]();
      assert.equal((await iterator.next()).done, false);
      await store.close();
      await rejectsWithCode(async () => {
        for (let result = await iterator.next(); !result.done; result = await iterator.next());
      }, 'ERR_STORE_CLOSED');
    });
  });

  describe('options the stream methods do not have', () => {
    it("refuses createReadStream(key, { start, end }) (the range was ignored and the whole value streamed) and createWriteStream(key, options), writing nothing", async () => {
      const store = await memoryStore('binary');
      try {
        const value = Buffer.from('0123456789');
        await store.put('v', value);
        for (const extra of [[{ start: 2, end: 4 }], [{}], [null], [undefined, { end: 1 }]] as unknown[][]) {
          const open = store.createReadStream as (key: string, ...rest: unknown[]) => Readable;
          const error = await rejectsInvalid(async () => open.call(store, 'v', ...extra), `createReadStream with ${JSON.stringify(extra)}`);
          assert.match(error.message, /createReadStream takes only a key.*no byte range/);
        }
        // An omitted argument written out as undefined is still the one-argument call.
        assert.deepEqual(await readAll((store.createReadStream as (key: string, options: undefined) => Readable)('v', undefined)), value);
        const openWrite = store.createWriteStream as (key: string, ...rest: unknown[]) => unknown;
        await rejectsInvalid(async () => openWrite.call(store, 'w', { highWaterMark: 1 }), 'createWriteStream with options');
        assert.equal(await store.has('w'), false);
        assert.deepEqual(await readAll(store.createReadStream('v')), value);
      } finally {
        await store.close();
      }
    });
  });

  describe('stored bytes the encoding cannot decode', () => {
    let dir: string | undefined;
    before(() => {
      dir = makeStoreDir();
    });
    after(() => removeStoreDir(dir));

    it('rejects get() and range() with ERR_STORE_CORRUPT naming the key, inline (record) and in extents (data)', async () => {
      const path = `${dir}/encodings`;
      // Bytes that are no JSON, put through a 'binary' handle of a 'json' store.
      await (await openSmallStore(path, { encoding: 'json' })).close();
      const writer = await BlockStore.open(path, { encoding: 'binary' });
      await writer.put('small', Buffer.from('{not json'));
      await writer.put('large', Buffer.from(`{${'x'.repeat(10_000)}`));
      await writer.close();
      const reader = await BlockStore.open(path);
      try {
        const small = await rejectsCorrupt(() => reader.get('small'), 'record');
        assert.match(small.message, /"small"/);
        assert.match(small.message, /json/);
        assert.ok(small.cause instanceof SyntaxError, 'the decoder’s error is the cause');
        const large = await rejectsCorrupt(() => reader.get('large'), 'data');
        assert.match(large.message, /"large"/);
        assert.equal(typeof large.blockIndex, 'number');
        const ranged = await rejectsWith(() => collect(reader.range()), StoreCorruptError, 'ERR_STORE_CORRUPT');
        assert.match(ranged.message, /"large"|"small"/);
        // The inline value, reached by a scan of a leaf read from the file.
        const rangedSmall = await rejectsWith(() => collect(reader.range({ gte: 'small' })), StoreCorruptError, 'ERR_STORE_CORRUPT');
        assert.match(rangedSmall.message, /"small"/);
        assert.ok(rangedSmall.cause instanceof SyntaxError, 'the decoder’s error is the cause');
        const values = await rejectsWith(() => collect(reader.values({ gte: 'small' })), StoreCorruptError, 'ERR_STORE_CORRUPT');
        assert.match(values.message, /"small"/);
        assert.equal(await reader.has('small'), true, 'has() does not decode');
      } finally {
        await reader.close();
      }
    });
  });
});
