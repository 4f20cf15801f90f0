// Arguments whose reading throws or lies: revoked Proxies, getters and
// Proxy traps that throw, arrays that claim a length they do not hold.
// Each is refused with a coded error, promptly, before anything is written
// (found by a review: getMany, batch and open gave uncoded TypeErrors for
// them, and a msgpack value holding a sparse array of length 2^32 − 1 held
// the thread and grew the process by GBs with no error).
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { VALUE_SIZE_MAX } from '../../engine/store_options.js';
import { ENCODED_ELEMENTS_MAX, valueCodec } from '../../engine/value_codec.js';
import { storeDirPerTest } from './helpers.js';

const DEVICE_BYTES = 4 << 20;
/** Long enough for any refusal here, far shorter than the walk over 2^32 elements it replaces. */
const PROMPT_MS = 2_000;

function revokedProxy<T extends object>(target: T): T {
  const revocable = Proxy.revocable(target, {});
  revocable.revoke();
  return revocable.proxy;
}

/** An array whose `length` getter throws. */
function lengthThrowing(): unknown[] {
  return new Proxy([], {
    get(target, property) {
      if (property === 'length') throw new Error('length getter');
      return Reflect.get(target, property) as unknown;
    },
  });
}

/** An array claiming `length` elements while holding one. */
function lyingLength(length: number): unknown[] {
  return new Proxy(['a'], { get: (target, property) => (property === 'length' ? length : (Reflect.get(target, property) as unknown)) });
}

/** An object every read of which throws. */
function throwingObject(): object {
  return new Proxy({}, {
    get: () => {
      throw new Error('getter');
    },
    getPrototypeOf: () => {
      throw new Error('getPrototypeOf');
    },
    ownKeys: () => {
      throw new Error('ownKeys');
    },
  });
}

async function assertRejectsWith(promise: () => Promise<unknown>, code: string, label: string): Promise<void> {
  const startedMs = performance.now();
  await assert.rejects(promise, (error: Error & { code?: string }) => {
    assert.ok(error instanceof Error, `${label}: an Error`);
    assert.equal(error.code, code, `${label}: ${error.message}`);
    return true;
  });
  assert.ok(performance.now() - startedMs < PROMPT_MS, `${label}: refused in ${Math.round(performance.now() - startedMs)} ms`);
}

describe('BlockStore with unreadable or lying arguments', () => {
  const directory = storeDirPerTest();

  async function openStore(): Promise<BlockStore> {
    return BlockStore.open('store', { device: new SimulatedDevice({ sizeBytes: DEVICE_BYTES }), create: true });
  }

  it('refuses getMany and batch of a revoked Proxy, a throwing length or a lying one with ERR_INVALID_ARG, storing nothing', async () => {
    const store = await openStore();
    try {
      await store.put('kept', 1);
      const arrays: [string, () => unknown[]][] = [
        ['a revoked Proxy', () => revokedProxy([])],
        ['a throwing length', lengthThrowing],
        ['a length of 2^53', () => lyingLength(2 ** 53)],
        ['a length of -1', () => lyingLength(-1)],
      ];
      for (const [label, make] of arrays) {
        await assertRejectsWith(() => store.getMany(make() as string[]), 'ERR_INVALID_ARG', `getMany(${label})`);
        await assertRejectsWith(() => store.batch(make() as []), 'ERR_INVALID_ARG', `batch(${label})`);
      }
      assert.equal(store.stats().keys, 1);
      assert.equal(await store.get('kept'), 1);
    } finally {
      await store.close();
    }
  });

  it('refuses getMany and batch of a sparse array of length 2^32 − 1 at its first hole, not after copying it', async () => {
    const store = await openStore();
    try {
      const sparse: unknown[] = [];
      sparse[2 ** 32 - 2] = 'last';
      await assertRejectsWith(() => store.getMany(sparse as string[]), 'ERR_INVALID_ARG', 'getMany(sparse)');
      await assertRejectsWith(() => store.batch(sparse as []), 'ERR_INVALID_ARG', 'batch(sparse)');
      const operations: unknown[] = [{ type: 'put', key: 'a', value: 1 }];
      operations[2 ** 32 - 2] = { type: 'put', key: 'b', value: 2 };
      await assertRejectsWith(() => store.batch(operations as []), 'ERR_INVALID_ARG', 'batch(a put, then holes)');
      assert.equal(store.stats().keys, 0);
    } finally {
      await store.close();
    }
  });

  it('says a closed store is closed before it reads a batch: ERR_STORE_CLOSED, not the Proxy error', async () => {
    const store = await openStore();
    await store.close();
    await assertRejectsWith(() => store.batch(revokedProxy([])), 'ERR_STORE_CLOSED', 'closed batch(revoked)');
    await assertRejectsWith(() => store.getMany(revokedProxy([])), 'ERR_STORE_CLOSED', 'closed getMany(revoked)');
  });

  it('refuses open() and format() options that cannot be read with ERR_INVALID_ARG', async () => {
    const path = `${directory()}/store`;
    for (const [label, make] of [
      ['revoked Proxy options', () => revokedProxy({})],
      ['options whose getters throw', throwingObject],
    ] as [string, () => object][]) {
      await assertRejectsWith(() => BlockStore.open(path, make()), 'ERR_INVALID_ARG', `open(${label})`);
      await assertRejectsWith(() => BlockStore.format(path, make()), 'ERR_INVALID_ARG', `format(${label})`);
    }
    for (const [label, field] of [
      ['a revoked Proxy as device', () => ({ device: revokedProxy({}) })],
      ['a throwing Proxy as device', () => ({ device: throwingObject() })],
      ['a throwing Proxy as ring', () => ({ ring: throwingObject() })],
      ['a revoked Proxy as ring', () => ({ ring: revokedProxy({}) })],
    ] as [string, () => object][]) {
      await assertRejectsWith(() => BlockStore.open(path, { create: true, ...field() }), 'ERR_INVALID_ARG', `open(${label})`);
      if (label.endsWith('ring')) await assertRejectsWith(() => BlockStore.format(path, field()), 'ERR_INVALID_ARG', `format(${label})`);
    }
  });

  it('reads each option once: a getter answering differently the second time cannot pass validation one value and the store another', async () => {
    let reads = 0;
    const options = {
      device: new SimulatedDevice({ sizeBytes: DEVICE_BYTES }),
      create: true,
      get cacheSizeBytes(): number {
        reads++;
        return reads === 1 ? 1 << 20 : -1;
      },
    };
    const store = await BlockStore.open('store', options);
    await store.close();
    assert.equal(reads, 1);
  });

  it('refuses at once a msgpack value holding a sparse array of length 2^32 − 1, or an array claiming 2^53 elements: ERR_VALUE_TOO_LARGE', async () => {
    const store = await openStore();
    try {
      const sparse: unknown[] = [];
      sparse[2 ** 32 - 2] = 'last';
      const values: [string, unknown][] = [
        ['a sparse array', sparse],
        ['a sparse array, nested', { list: [1, { deeper: sparse }] }],
        ['an array claiming 2^53 elements', lyingLength(2 ** 53)],
        ['a Map of a sparse array', new Map([['k', sparse]])],
      ];
      for (const [label, value] of values) {
        await assertRejectsWith(() => store.put('k', value), 'ERR_VALUE_TOO_LARGE', `put(${label})`);
        await assertRejectsWith(() => store.batch([{ type: 'put', key: 'k', value }]), 'ERR_VALUE_TOO_LARGE', `batch(${label})`);
      }
      assert.equal(store.stats().keys, 0);
    } finally {
      await store.close();
    }
  });

  it('refuses a msgpack value holding an array that claims a negative or fractional length with ERR_INVALID_ARG', () => {
    const codec = valueCodec('msgpack');
    for (const length of [-1, 1.5, Number.NaN]) {
      assert.throws(() => codec.encode({ list: lyingLength(length) }), (error: Error & { code?: string }) => error.code === 'ERR_INVALID_ARG' && /claiming/.test(error.message), String(length));
    }
  });

  it('counts elements against the largest value: ENCODED_ELEMENTS_MAX is VALUE_SIZE_MAX (a byte an element at least)', () => {
    assert.equal(ENCODED_ELEMENTS_MAX, VALUE_SIZE_MAX);
  });

  it('still takes msgpack arrays, Maps, Sets and objects that fit, and refuses circular ones as before', () => {
    const codec = valueCodec('msgpack');
    const holey: unknown[] = [];
    holey[9] = 'tenth';
    const value = { list: Array.from({ length: 10_000 }, (_, index) => ({ index })), map: new Map([[1, [2, 3]]]), set: new Set(['a']), holey };
    const back = codec.decode(codec.encode(value)) as typeof value;
    assert.equal(back.list.length, 10_000);
    assert.deepEqual(back.map, value.map);
    assert.equal(back.holey.length, 10);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.throws(() => codec.encode(circular), (error: Error & { code?: string }) => error.code === 'ERR_INVALID_ARG' && /circular or nested too deeply/.test(error.message));
  });
});
