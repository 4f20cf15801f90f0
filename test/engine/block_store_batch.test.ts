// BlockStore#batch() on a real file: puts and deletes applied together in
// one commit, in order (a later operation on the same key wins), and refused
// as a whole when any operation is invalid.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { type BatchOperation } from '../../engine/store_options.js';
import { collect, makeStoreDir, openSmallStore, pattern, rejectsWith, rejectsWithCode, removeStoreDir, waitForTrims } from './helpers.js';

describe('BlockStore#batch()', () => {
  let dir: string | undefined;
  let store: BlockStore | undefined;
  const path = (): string => `${dir}/store`;

  before(async () => {
    dir = makeStoreDir();
    store = await openSmallStore(path());
  });

  after(async () => {
    await store?.close();
    removeStoreDir(dir);
  });

  it('applies puts and deletes of different keys together', async () => {
    await store!.put('old', 'to delete');
    await store!.batch([
      { type: 'put', key: 'new-1', value: 1 },
      { type: 'del', key: 'old' },
      { type: 'put', key: 'new-2', value: { two: 2 } },
    ]);
    assert.equal(await store!.get('new-1'), 1);
    assert.deepEqual(await store!.get('new-2'), { two: 2 });
    assert.equal(await store!.has('old'), false);
  });

  it('lets the later operation on the same key win', async () => {
    await store!.put('put-then-del', 'before');
    await store!.batch([
      { type: 'put', key: 'put-then-put', value: 'first' },
      { type: 'put', key: 'put-then-put', value: 'second' },
      { type: 'put', key: 'put-then-del', value: 'overwritten' },
      { type: 'del', key: 'put-then-del' },
      { type: 'del', key: 'del-then-put' },
      { type: 'put', key: 'del-then-put', value: 'last' },
    ]);
    assert.equal(await store!.get('put-then-put'), 'second');
    assert.equal(await store!.has('put-then-del'), false);
    assert.equal(await store!.get('del-then-put'), 'last');
  });

  it('frees the blocks of an extent value that a later operation in the same batch replaces', async () => {
    await store!.batch([
      { type: 'put', key: 'big', value: pattern(20_000, 1) },
      { type: 'put', key: 'big', value: pattern(30_000, 2) },
      { type: 'put', key: 'big-gone', value: pattern(20_000, 3) },
      { type: 'del', key: 'big-gone' },
    ]);
    assert.ok(Buffer.from((await store!.get('big')) as Uint8Array).equals(pattern(30_000, 2)));
    assert.equal(await store!.has('big-gone'), false);
    await store!.verifyIntegrity(); // rejects if the replaced extents leaked
  });

  it('resolves an empty batch and changes nothing', async () => {
    const before = await collect(store!.range());
    await store!.batch([]);
    assert.deepEqual(await collect(store!.range()), before);
  });

  it('refuses the whole batch, applying nothing, when one operation is invalid', async () => {
    const invalid: [BatchOperation[], string][] = [
      [[{ type: 'put', key: 'refused-1', value: 1 }, { type: 'put', key: 'k'.repeat(2000), value: 2 }], 'ERR_KEY_TOO_LARGE'],
      [[{ type: 'put', key: 'refused-2', value: pattern(10_000, 4) }, { type: 'put', key: 'x', value: undefined }], 'ERR_INVALID_ARG'],
      [[{ type: 'del', key: 'new-1' }, { type: 'merge', key: 'x' } as unknown as BatchOperation], 'ERR_INVALID_ARG'],
    ];
    await waitForTrims(store!); // so blocksUsed moves only if a refused batch keeps blocks
    for (const [operations, code] of invalid) {
      const blocksBefore = store!.stats().blocksUsed;
      if (code === 'ERR_KEY_TOO_LARGE') await rejectsWithCode(() => store!.batch(operations), code);
      else await assert.rejects(store!.batch(operations), (error: unknown) => (error as { code?: string }).code === code);
      assert.equal(store!.stats().blocksUsed, blocksBefore, 'blocks allocated for a refused batch were not returned');
    }
    assert.equal(await store!.has('refused-1'), false);
    assert.equal(await store!.has('refused-2'), false);
    assert.equal(await store!.get('new-1'), 1, 'the delete in the refused batch was not applied');
    await store!.verifyIntegrity();
  });

  it('refuses an argument that is not an array with ERR_INVALID_ARG', async () => {
    await rejectsWith(() => store!.batch('put' as unknown as BatchOperation[]), TypeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => store!.batch([null as unknown as BatchOperation]), TypeError, 'ERR_INVALID_ARG');
  });

  it('keeps every operation of a batch across a reopen', async () => {
    const operations: BatchOperation[] = Array.from({ length: 200 }, (_, i) => ({ type: 'put', key: `bulk-${i}`, value: i % 10 === 0 ? pattern(5000, i) : i }));
    operations.push({ type: 'del', key: 'bulk-7' });
    await store!.batch(operations);
    await store!.close();
    store = await BlockStore.open(path());
    for (let i = 0; i < 200; i++) {
      const value: unknown = await store.get(`bulk-${i}`);
      if (i === 7) assert.equal(value, undefined);
      else if (i % 10 === 0) assert.ok(Buffer.from(value as Uint8Array).equals(pattern(5000, i)), `bulk-${i}`);
      else assert.equal(value, i, `bulk-${i}`);
    }
  });
});
