// The page cache's doorkeeper for point lookups (engine/tree_loader.ts,
// lookUp), on a PageTree over the real codec (TreePages): a leaf a get
// misses once is read, checked and searched in the read's pooled buffer and
// not cached, its buffer held back a while (TreePages' recent leaves); the
// second miss of it while remembered caches it, from that buffer if it is
// still there, as does a write's prepare, without reading it again; a value
// found in a leaf that was not cached is a copy (later reads reuse the
// buffer); a damaged leaf is ERR_STORE_CORRUPT either way; entries() caches
// what it reads at once (scans' runs() lend leaves instead past their share
// of a full cache: tree_scan_lending.test.ts).
import assert from 'node:assert/strict';

import { NOT_CACHED } from '../../engine/page_tree.js';
import { StoreCorruptError } from '../../engine/store_error.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { coldTree, KEY_COUNT, keyOf, valueOf } from './cold_tree.js';

describe('TreeLoader: the doorkeeper of point lookups', () => {
  it('caches a leaf on its second miss, not its first', async () => {
    const { memory, tree } = await coldTree();
    const key = keyOf(1234);
    assert.deepEqual((await tree.get(key))?.value, valueOf(1234));
    const afterFirst = memory.reads;
    assert.equal(afterFirst, tree.height, 'one read a level');
    assert.equal(tree.getCached(key), NOT_CACHED, 'the leaf was cached on its first miss');
    // A neighbour in the same leaf: the branches are cached, and the leaf,
    // missed a second time, is cached from the buffer its first read left.
    assert.deepEqual((await tree.get(keyOf(1235)))?.value, valueOf(1235));
    assert.equal(memory.reads, afterFirst, 'the leaf was read again');
    assert.deepEqual((tree.getCached(key) as IndexEntry).value, valueOf(1234), 'the leaf is cached after its second miss');
    await tree.get(keyOf(1236));
    assert.equal(memory.reads, afterFirst, 'a third lookup in the leaf read something');
    assert.equal(tree.cacheStats().pageCacheMisses, tree.height + 1, 'each miss counted once');
  });

  it('lets a write take a leaf a lookup just read without reading it again (a get, then a put of the key)', async () => {
    const { memory, tree } = await coldTree();
    const key = keyOf(777);
    await tree.get(key);
    const reads = memory.reads;
    const prepared = await tree.prepare([key]);
    assert.equal(memory.reads, reads, 'the write read the leaf again');
    tree.set(key, { isString: true, value: valueOf(1) });
    tree.release(prepared);
    assert.deepEqual((tree.getCached(key) as IndexEntry).value, valueOf(1));
  });

  it('reads a leaf again once 256 others were looked up after it, and caches it then', async () => {
    const keyCount = 20_000;
    const { memory, tree } = await coldTree(1 << 22, keyCount);
    const leafKeys: string[] = [];
    // Keys 60 apart are in different leaves (a leaf holds at most ~52 of these records).
    for (let i = 0; i < keyCount; i += 60) leafKeys.push(keyOf(i));
    assert.ok(leafKeys.length > 256 + 10, `only ${leafKeys.length} leaves`);
    await tree.get(leafKeys[0]!);
    for (const key of leafKeys.slice(1, 258)) await tree.get(key);
    const reads = memory.reads;
    assert.deepEqual((await tree.get(keyOf(1)))?.value, valueOf(1));
    assert.equal(memory.reads, reads + 1, 'the first leaf was still held after 257 others');
    assert.notEqual(tree.getCached(keyOf(1)), NOT_CACHED, 'its second miss cached it');
  });

  it('remembers a missed leaf for about as many misses as the cache holds pages: forgotten behind a small cache, cached behind a large one', async () => {
    // 4 MiB holds ~1 000 pages: a generation of ~500 blocks, so 1 100 other
    // leaves missed in between push the first one out of both generations;
    // 16 MiB (~4 000 pages, generations of ~2 000) still remembers it.
    const keyCount = 60_000;
    for (const [cacheBytesMax, remembered] of [
      [1 << 22, false],
      [1 << 24, true],
    ] as const) {
      const { memory, tree } = await coldTree(cacheBytesMax, keyCount);
      const leafKeys: string[] = [];
      for (let i = 0; i < keyCount; i += 53) leafKeys.push(keyOf(i));
      assert.ok(leafKeys.length >= 1_100, `only ${leafKeys.length} leaves`);
      for (const key of leafKeys.slice(0, 1_100)) await tree.get(key);
      const reads = memory.reads;
      assert.deepEqual((await tree.get(keyOf(1)))?.value, valueOf(1));
      assert.equal(memory.reads, reads + 1, 'the first leaf was not read again (its buffer is long gone)');
      assert.equal(tree.getCached(keyOf(1)) !== NOT_CACHED, remembered, `with a cache of ${cacheBytesMax} bytes the second miss ${remembered ? 'did not cache' : 'cached'} the leaf`);
    }
  });

  it('hands out copies of values found in a leaf it did not cache: later reads into the same buffer leave them alone', async () => {
    const { tree } = await coldTree();
    const held: [number, Uint8Array][] = [];
    for (let i = 0; i < KEY_COUNT; i += 97) {
      const entry = await tree.get(keyOf(i));
      assert.ok(entry !== undefined && entry.value instanceof Uint8Array);
      held.push([i, entry.value]);
    }
    for (const [i, value] of held) assert.deepEqual(value, valueOf(i), `the value of ${keyOf(i)} changed after later reads`);
  });

  it('answers a damaged leaf with ERR_STORE_CORRUPT naming its block, on its first miss and on its second', async () => {
    const { memory, tree } = await coldTree();
    const key = keyOf(2222);
    await tree.get(keyOf(0)); // the branches into the cache
    const leafBlock = [...memory.blocks.keys()].find((block) => {
      const page = memory.blocks.get(block)!;
      return Buffer.from(page).includes(Buffer.from(key, 'latin1'));
    });
    assert.ok(leafBlock !== undefined);
    memory.damagedBlock = leafBlock;
    for (const attempt of ['first', 'second']) {
      await assert.rejects(tree.get(key), (error: unknown) => error instanceof StoreCorruptError && error.code === 'ERR_STORE_CORRUPT' && error.blockIndex === leafBlock, `${attempt} miss`);
    }
    memory.damagedBlock = undefined;
    assert.deepEqual((await tree.get(key))?.value, valueOf(2222));
  });

  it('caches the leaves a scan reads at once', async () => {
    const { memory, tree } = await coldTree();
    let count = 0;
    for await (const [key] of tree.entries(tree.snapshot(), { low: keyOf(100), high: keyOf(160), highInclusive: false })) {
      assert.equal(key, keyOf(100 + count));
      count++;
    }
    assert.equal(count, 60);
    const reads = memory.reads;
    for (let i = 100; i < 160; i++) assert.notEqual(tree.getCached(keyOf(i)), NOT_CACHED, `${keyOf(i)} not cached after the scan`);
    await tree.get(keyOf(130));
    assert.equal(memory.reads, reads, 'a get after the scan read again');
  });
});
