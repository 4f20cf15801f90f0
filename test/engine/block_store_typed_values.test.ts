// BlockStore<V>: the value type flows from open<V>() to get, getMany, range,
// values, put and batch, and an untyped store is BlockStore<unknown> as
// before. The `@ts-expect-error` lines are the test as much as the asserts:
// `npx tsc` fails if one of them compiles without an error.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { type BatchOperation } from '../../engine/store_options.js';
import type { Key } from '../../engine/key_codec.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { collect } from './helpers.js';

interface User {
  name: string;
  age: number;
}

describe('BlockStore<V> typed values', () => {
  it('types get, getMany, range, values, put and batch by the V of open<V>()', async () => {
    const store = await BlockStore.open<User>('typed', { device: new SimulatedDevice({ sizeBytes: 4 << 20 }), create: true, blockSize: 512 });
    try {
      await store.put('u1', { name: 'Ada', age: 36 });
      // @ts-expect-error a value that is not a User
      await store.put('u2', 'Grace').catch(() => undefined);
      const operations: BatchOperation<User>[] = [{ type: 'put', key: 'u2', value: { name: 'Grace', age: 85 } }, { type: 'del', key: 'u3' }];
      await store.batch(operations);

      const one: User | undefined = await store.get('u1');
      assert.equal(one?.name, 'Ada');
      const many: (User | undefined)[] = await store.getMany(['u1', 'u2', 'none']);
      assert.deepEqual(
        many.map((user) => user?.age),
        [36, 85, undefined],
      );
      const entries: [Key, User][] = await collect(store.range());
      assert.deepEqual(
        entries.map(([, user]) => user.name),
        ['Ada', 'Grace'],
      );
      const withoutValues: [Key, undefined][] = await collect(store.range({ values: false }));
      assert.deepEqual(withoutValues, [
        ['u1', undefined],
        ['u2', undefined],
      ]);
      // @ts-expect-error values: false yields no User
      const wrong: [Key, User][] = await collect(store.range({ values: false }));
      assert.equal(wrong.length, 2);
      const users: User[] = await collect(store.values({ prefix: 'u' }));
      assert.equal(users.length, 2);
    } finally {
      await store.close();
    }
  });

  it('is BlockStore<unknown> without a type argument, taking any value', async () => {
    const store: BlockStore = await BlockStore.open('untyped', { device: new SimulatedDevice({ sizeBytes: 4 << 20 }), create: true, blockSize: 512 });
    try {
      await store.put('a', 1);
      await store.put('b', 'two');
      const value: unknown = await store.get('a');
      assert.equal(value, 1);
      // @ts-expect-error unknown is not a number without a check
      const number: number = await store.get('a');
      assert.equal(number, 1);
    } finally {
      await store.close();
    }
  });
});
