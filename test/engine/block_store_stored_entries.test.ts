// BlockStore.storedEntries(): every entry in its stored form (what dump and
// backup read). An inline value's bytes come at once (`bytes`), an extent
// value's through chunks(); either is valid only until the iteration moves
// on, and chunks() asked for later is refused rather than read from a leaf
// or blocks that may hold something else by then (found by a review).
import assert from 'node:assert/strict';
import { finished } from 'node:stream/promises';

import { BlockStore } from '../../engine/block_store.js';
import type { StoredEntry } from '../../engine/value_streams.js';
import { collect, rejectsWith, storeDirPerTest } from './helpers.js';

const EXTENT_VALUE_BYTES = 300_000;

describe('BlockStore.storedEntries', () => {
  const dir = storeDirPerTest();

  async function storeWithValues(): Promise<BlockStore> {
    const store = await BlockStore.open(`${dir()}/store.rs`, { create: true, encoding: 'binary' });
    await store.batch([
      { type: 'put', key: 'a-inline', value: Buffer.from('small value') },
      { type: 'put', key: 'b-empty', value: Buffer.alloc(0) },
      { type: 'put', key: 'c-extent', value: Buffer.alloc(EXTENT_VALUE_BYTES, 7) },
    ]);
    const stream = store.createWriteStream('d-raw');
    stream.end(Buffer.alloc(EXTENT_VALUE_BYTES, 9));
    await finished(stream);
    return store;
  }

  it('gives an inline value\'s bytes at once and an extent value\'s in chunks, both the stored bytes', async () => {
    const store = await storeWithValues();
    try {
      const seen: { key: string; raw: boolean; sizeBytes: number; bytes: string | undefined; chunks: Buffer }[] = [];
      for await (const entry of store.storedEntries()) {
        const chunks = Buffer.concat(await collect(entry.chunks()));
        seen.push({ key: entry.key as string, raw: entry.raw, sizeBytes: entry.sizeBytes, bytes: entry.bytes === undefined ? undefined : Buffer.from(entry.bytes).toString(), chunks });
      }
      assert.deepEqual(
        seen.map(({ key, raw, sizeBytes, bytes }) => ({ key, raw, sizeBytes, bytes })),
        [
          { key: 'a-inline', raw: false, sizeBytes: 11, bytes: 'small value' },
          { key: 'b-empty', raw: false, sizeBytes: 0, bytes: '' },
          { key: 'c-extent', raw: false, sizeBytes: EXTENT_VALUE_BYTES, bytes: undefined },
          { key: 'd-raw', raw: true, sizeBytes: EXTENT_VALUE_BYTES, bytes: undefined },
        ],
      );
      assert.equal(seen[0].chunks.toString(), 'small value');
      assert.equal(seen[1].chunks.length, 0);
      assert.ok(seen[2].chunks.equals(Buffer.alloc(EXTENT_VALUE_BYTES, 7)));
      assert.ok(seen[3].chunks.equals(Buffer.alloc(EXTENT_VALUE_BYTES, 9)));
    } finally {
      await store.close();
    }
  });

  it('refuses chunks() of an entry once the iteration has moved on or ended', async () => {
    const store = await storeWithValues();
    try {
      const kept: StoredEntry[] = [];
      for await (const entry of store.storedEntries()) kept.push(entry);
      assert.equal(kept.length, 4);
      for (const entry of kept) await rejectsWith(() => collect(entry.chunks()), TypeError, 'ERR_INVALID_ARG');

      // Moved on in the middle of an extent value's chunks: the next one is refused.
      const iteration = store.storedEntries();
      let step = await iteration.next();
      while (step.done !== true && step.value.key !== 'c-extent') step = await iteration.next();
      const chunks = step.value!.chunks()[Symbol.asyncIterator]();
      await iteration.next();
      await rejectsWith(() => chunks.next(), TypeError, 'ERR_INVALID_ARG');
      await iteration.return(undefined);
    } finally {
      await store.close();
    }
  });
});
