// BlockStore#close(): finishes the writes already accepted, then releases
// the file; every later operation fails with ERR_STORE_CLOSED; closing again
// is harmless.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { StoreError } from '../../engine/store_error.js';
import { collect, makeStoreDir, openSmallStore, rejectsWithCode, removeStoreDir } from './helpers.js';

function throwsClosed(run: () => unknown): void {
  assert.throws(run, (error: unknown) => error instanceof StoreError && error.code === 'ERR_STORE_CLOSED');
}

describe('BlockStore#close()', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeStoreDir();
  });

  after(() => {
    removeStoreDir(dir);
  });

  it('makes every later operation fail with ERR_STORE_CLOSED', async () => {
    const store = await openSmallStore(`${dir}/closed`);
    await store.put('k', 1);
    await store.close();
    await rejectsWithCode(() => store.get('k'), 'ERR_STORE_CLOSED');
    await rejectsWithCode(() => store.has('k'), 'ERR_STORE_CLOSED');
    await rejectsWithCode(() => store.put('k', 2), 'ERR_STORE_CLOSED');
    await rejectsWithCode(() => store.delete('k'), 'ERR_STORE_CLOSED');
    await rejectsWithCode(() => store.batch([{ type: 'put', key: 'k', value: 3 }]), 'ERR_STORE_CLOSED');
    await rejectsWithCode(() => collect(store.range()), 'ERR_STORE_CLOSED');
    await rejectsWithCode(() => store.checkpoint(), 'ERR_STORE_CLOSED');
    await rejectsWithCode(() => store.flush(), 'ERR_STORE_CLOSED');
    await rejectsWithCode(() => store.verifyIntegrity(), 'ERR_STORE_CLOSED');
    // It resolved after close (found by a review).
    await rejectsWithCode(() => store.whenRecovered(), 'ERR_STORE_CLOSED');
    await rejectsWithCode(() => store.backup(`${dir}/backup`), 'ERR_STORE_CLOSED');
    throwsClosed(() => store.stats());
    throwsClosed(() => store.createWriteStream('k'));
    throwsClosed(() => store.createReadStream('k'));
  });

  it('is harmless to call twice, or concurrently', async () => {
    const store = await openSmallStore(`${dir}/twice`);
    await Promise.all([store.close(), store.close()]);
    await store.close();
  });

  it('fails operations started after close() was called, before it finished', async () => {
    const store = await openSmallStore(`${dir}/closing`);
    const closing = store.close();
    await rejectsWithCode(() => store.put('late', 1), 'ERR_STORE_CLOSED');
    await closing;
  });

  it('waits for writes accepted before it, which then survive a reopen', async () => {
    const path = `${dir}/in-flight`;
    const store = await openSmallStore(path);
    const writes = Array.from({ length: 50 }, (_, i) => store.put(`k${i}`, i % 5 === 0 ? 'x'.repeat(10_000) : i));
    await store.close();
    const outcomes = await Promise.allSettled(writes);
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      writes.map(() => 'fulfilled'),
    );
    const reopened = await BlockStore.open(path);
    try {
      for (let i = 0; i < 50; i++) assert.equal(await reopened.get(`k${i}`), i % 5 === 0 ? 'x'.repeat(10_000) : i, `k${i}`);
    } finally {
      await reopened.close();
    }
  });

  it('finishes a checkpoint() called before it (it was refused with ERR_STORE_CLOSED: found by a review), and refuses one called after it began', async () => {
    for (const sync of [true, false]) {
      const path = `${dir}/checkpoint-then-close-${String(sync)}`;
      const store = await openSmallStore(path, { sync });
      for (let i = 0; i < 2000; i += 500) await store.batch(Array.from({ length: 500 }, (_, j) => ({ type: 'put' as const, key: `k${i + j}`, value: i + j })));
      const checkpoint = store.checkpoint().then(
        () => 'resolved',
        (error: unknown) => (error as { code?: string }).code,
      );
      const closing = store.close();
      await rejectsWithCode(() => store.checkpoint(), 'ERR_STORE_CLOSED');
      await closing;
      assert.equal(await checkpoint, 'resolved', `sync: ${String(sync)}`);
      const reopened = await BlockStore.open(path);
      try {
        assert.equal(reopened.stats().keys, 2000);
        assert.equal(reopened.stats().tailCommitsToReplay, 0);
      } finally {
        await reopened.close();
      }
    }
  });

  it('finishes write streams ended before it (they were refused with ERR_STORE_CLOSED; found by a review), and refuses one ended after it began', async () => {
    const path = `${dir}/streams`;
    const store = await openSmallStore(path, { encoding: 'binary' });
    const finishing = (stream: NodeJS.WritableStream): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        stream.on('finish', resolve);
        stream.on('error', reject);
      });
    const small = store.createWriteStream('small');
    const large = store.createWriteStream('large');
    const late = store.createWriteStream('late');
    const ended = [finishing(small), finishing(large)];
    const lateEnded = finishing(late).then(
      () => 'finished',
      (error: { code?: string }) => error.code,
    );
    small.end(Buffer.from('hello'));
    large.write(Buffer.alloc(300_000, 7));
    large.end(Buffer.alloc(5_000, 8));
    const closing = store.close();
    late.end(Buffer.from('too late'));
    await Promise.all(ended);
    assert.equal(await lateEnded, 'ERR_STORE_CLOSED');
    await closing;
    const reopened = await BlockStore.open(path, { encoding: 'binary' });
    try {
      assert.equal(Buffer.from((await reopened.get('small')) as Uint8Array).toString(), 'hello');
      assert.ok(Buffer.from((await reopened.get('large')) as Uint8Array).equals(Buffer.concat([Buffer.alloc(300_000, 7), Buffer.alloc(5_000, 8)])));
      assert.equal(await reopened.has('late'), false);
    } finally {
      await reopened.close();
    }
  });

  it('finishes a range iteration that was under way with ERR_STORE_CLOSED or its snapshot, never other data', async () => {
    const store = await openSmallStore(`${dir}/iterating`);
    const valueOf = (i: number): string => `${i}`.repeat(5000); // extent values: read from the file
    for (let i = 0; i < 10; i++) await store.put(`k${i}`, valueOf(i));
    const iterator = store.range()[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.deepEqual(first.value, ['k0', valueOf(0)]);
    await store.close();
    let next: IteratorResult<unknown> | undefined;
    try {
      next = await iterator.next();
    } catch (error) {
      assert.ok(error instanceof StoreError && error.code === 'ERR_STORE_CLOSED', `expected ERR_STORE_CLOSED, got ${String(error)} (code ${(error as { code?: string }).code})`);
    }
    if (next !== undefined && !next.done) assert.deepEqual(next.value, ['k1', valueOf(1)]);
  });
});
