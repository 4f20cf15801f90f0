// BlockStore keys on a real file: strings and Uint8Arrays, ordered bytewise
// (so 'a' < 'b' < 'é' < 0xff), a string key and its UTF-8 bytes being the
// same key, string keys coming back as strings and binary keys as Buffers,
// and the KEY_SIZE_MAX limit.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { KEY_SIZE_MAX } from '../../format/constants.js';
import { collect, makeStoreDir, openSmallStore, rejectsWith, rejectsWithCode, removeStoreDir } from './helpers.js';

describe('BlockStore keys', () => {
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

  it('stores under Uint8Array keys, whatever their bytes', async () => {
    const key = Uint8Array.from([0, 1, 0x80, 0xff]);
    await store!.put(key, 'binary key');
    assert.equal(await store!.get(Uint8Array.from([0, 1, 0x80, 0xff])), 'binary key');
    assert.equal(await store!.get(Buffer.from([0, 1, 0x80, 0xff])), 'binary key', 'a Buffer of the same bytes is the same key');
    assert.equal(await store!.get(Uint8Array.from([0, 1, 0x80])), undefined, 'a prefix is another key');
  });

  it('treats a string key and a Uint8Array of its UTF-8 bytes as one key', async () => {
    await store!.put('café', 1);
    assert.equal(await store!.get(Buffer.from('café', 'utf8')), 1);
    await store!.put(Buffer.from('café', 'utf8'), 2);
    assert.equal(await store!.get('café'), 2);
  });

  it("iterates in bytewise order: 'a' < 'b' < 'é' < 0xff, prefixes first", async () => {
    const ordered = await BlockStore.open(`${dir}/ordered`, { create: true, sizeBytes: 32 << 20 });
    try {
      const keys: (string | Uint8Array)[] = ['é', Buffer.from([0xff]), 'b', 'ab', 'a', Buffer.from([0x00]), '\uffff', '😀', 'A'];
      for (const key of keys) await ordered.put(key, 0);
      const got = (await collect(ordered.range({ values: false }))).map(([key]) => key);
      assert.deepEqual(got, [Buffer.from([0x00]), 'A', 'a', 'ab', 'b', 'é', '\uffff', '😀', Buffer.from([0xff])]);
    } finally {
      await ordered.close();
    }
  });

  it('gives string keys back as strings and binary keys as Buffers, also after a reopen', async () => {
    const path = `${dir}/kinds`;
    const first = await BlockStore.open(path, { create: true, sizeBytes: 32 << 20 });
    await first.put('text-é', 1);
    await first.put(Buffer.from('bin'), 2);
    await first.close();
    const reopened = await BlockStore.open(path);
    try {
      const entries = await collect(reopened.range());
      assert.deepEqual(entries, [
        [Buffer.from('bin'), 2],
        ['text-é', 1],
      ]);
      assert.equal(typeof entries[1][0], 'string');
    } finally {
      await reopened.close();
    }
  });

  it('accepts a key of exactly KEY_SIZE_MAX bytes, and keeps it across a reopen', async () => {
    const path = `${dir}/long-keys`;
    const longest = 'k'.repeat(KEY_SIZE_MAX);
    const longestUtf8 = 'é'.repeat(KEY_SIZE_MAX / 2);
    const first = await openSmallStore(path);
    await first.put(longest, 'ascii');
    await first.put(longestUtf8, 'utf8');
    await first.put(new Uint8Array(KEY_SIZE_MAX).fill(0xab), 'binary');
    await first.close();
    const reopened = await BlockStore.open(path);
    try {
      assert.equal(await reopened.get(longest), 'ascii');
      assert.equal(await reopened.get(longestUtf8), 'utf8');
      assert.equal(await reopened.get(new Uint8Array(KEY_SIZE_MAX).fill(0xab)), 'binary');
    } finally {
      await reopened.close();
    }
  });

  it('refuses a key one byte over KEY_SIZE_MAX with ERR_KEY_TOO_LARGE in every operation', async () => {
    const tooLong = 'k'.repeat(KEY_SIZE_MAX + 1);
    const tooLongUtf8 = 'é'.repeat(KEY_SIZE_MAX / 2) + 'k'; // 513 chars, 1025 bytes
    for (const key of [tooLong, tooLongUtf8, new Uint8Array(KEY_SIZE_MAX + 1)]) {
      await rejectsWithCode(() => store!.put(key, 1), 'ERR_KEY_TOO_LARGE');
      await rejectsWithCode(() => store!.get(key), 'ERR_KEY_TOO_LARGE');
      await rejectsWithCode(() => store!.has(key), 'ERR_KEY_TOO_LARGE');
      await rejectsWithCode(() => store!.batch([{ type: 'put', key, value: 1 }]), 'ERR_KEY_TOO_LARGE');
    }
  });

  it('refuses an empty key with ERR_INVALID_ARG, string or binary', async () => {
    await rejectsWith(() => store!.put('', 1), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => store!.put(new Uint8Array(0), 1), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => store!.batch([{ type: 'del', key: '' }]), RangeError, 'ERR_INVALID_ARG');
  });
});
