// BlockStore#put(), #get(), #has() and #delete() on a real file through the
// io_uring actor: a put is visible once it resolves, an overwrite replaces,
// delete says whether the key existed, and misuse is refused before anything
// is written.
import assert from 'node:assert/strict';

import type { BlockStore } from '../../engine/block_store.js';
import { makeStoreDir, openSmallStore, rejectsWith, rejectsWithCode, removeStoreDir } from './helpers.js';

describe('BlockStore#put() / #get() / #has()', () => {
  let dir: string | undefined;
  let store: BlockStore | undefined;

  before(async () => {
    dir = makeStoreDir();
    store = await openSmallStore(`${dir}/store`);
  });

  after(async () => {
    await store?.close();
    removeStoreDir(dir);
  });

  it('makes a value readable as soon as the put resolves', async () => {
    await store!.put('greeting', { text: 'hello', n: 1 });
    assert.deepEqual(await store!.get('greeting'), { text: 'hello', n: 1 });
    assert.equal(await store!.has('greeting'), true);
  });

  it('gives undefined and false for a key never written', async () => {
    assert.equal(await store!.get('never-written'), undefined);
    assert.equal(await store!.has('never-written'), false);
  });

  it('replaces the value on overwrite', async () => {
    await store!.put('counter', 1);
    await store!.put('counter', 2);
    assert.equal(await store!.get('counter'), 2);
  });

  it('stores falsy values: 0, false, null and the empty string', async () => {
    const values: [string, unknown][] = [
      ['zero', 0],
      ['false', false],
      ['null', null],
      ['empty', ''],
    ];
    for (const [key, value] of values) await store!.put(key, value);
    for (const [key, value] of values) {
      assert.equal(await store!.get(key), value, key);
      assert.equal(await store!.has(key), true, key);
    }
  });

  it('applies concurrent puts of one key in call order', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => store!.put('raced', i)));
    assert.equal(await store!.get('raced'), 49);
  });

  it('refuses an undefined value with ERR_INVALID_ARG and stores nothing', async () => {
    await rejectsWith(() => store!.put('undefined-value', undefined), TypeError, 'ERR_INVALID_ARG');
    assert.equal(await store!.has('undefined-value'), false);
  });

  it('refuses an empty key with ERR_INVALID_ARG in put, get, has and delete', async () => {
    await rejectsWith(() => store!.put('', 1), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => store!.get(''), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => store!.has(new Uint8Array(0)), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => store!.delete(''), RangeError, 'ERR_INVALID_ARG');
  });

  it('refuses a key that is neither a string nor a Uint8Array with ERR_INVALID_ARG', async () => {
    await rejectsWith(() => store!.put(42 as unknown as string, 1), TypeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => store!.get(null as unknown as string), TypeError, 'ERR_INVALID_ARG');
  });
});

describe('BlockStore#delete()', () => {
  let dir: string | undefined;
  let store: BlockStore | undefined;

  before(async () => {
    dir = makeStoreDir();
    store = await openSmallStore(`${dir}/store`);
  });

  after(async () => {
    await store?.close();
    removeStoreDir(dir);
  });

  it('removes the key and resolves true when it existed', async () => {
    await store!.put('doomed', 'value');
    assert.equal(await store!.delete('doomed'), true);
    assert.equal(await store!.has('doomed'), false);
    assert.equal(await store!.get('doomed'), undefined);
  });

  it('resolves false when the key did not exist', async () => {
    assert.equal(await store!.delete('absent'), false);
    await store!.put('once', 1);
    await store!.delete('once');
    assert.equal(await store!.delete('once'), false, 'deleted twice');
  });

  it('removes extent values too (larger than half a block)', async () => {
    await store!.put('big', Buffer.alloc(100_000, 7));
    assert.equal(await store!.delete('big'), true);
    assert.equal(await store!.get('big'), undefined);
    await store!.verifyIntegrity();
  });

  it('says existed=true to the first and false to the second of two concurrent deletes of one key', async () => {
    await store!.put('twice', 1);
    assert.deepEqual(await Promise.all([store!.delete('twice'), store!.delete('twice')]), [true, false]);
  });

  it('says existed=true for each of many concurrent deletes of existing keys', async () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `many-${String(i).padStart(5, '0')}`);
    await store!.batch(keys.map((key) => ({ type: 'put' as const, key, value: 1 })));
    const existed = await Promise.all(keys.map((key) => store!.delete(key)));
    const wrong = existed.flatMap((value, i) => (value ? [] : [keys[i]]));
    assert.equal(wrong.length, 0, `${wrong.length} of ${keys.length} deletes of existing keys resolved false, e.g. ${wrong.slice(0, 3).join(', ')}`);
    for (const key of [keys[0], keys[4999]]) assert.equal(await store!.has(key), false);
  });

  it('refuses an oversized key with ERR_KEY_TOO_LARGE', async () => {
    await rejectsWithCode(() => store!.delete('k'.repeat(1025)), 'ERR_KEY_TOO_LARGE');
  });
});
