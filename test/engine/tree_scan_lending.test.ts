// Scans lend leaves (engine/tree_loader.ts, loadForScan; tree_cursor.ts,
// rangeRuns with lendLeaves): a page a scan reads is cached while the cache
// has room for it or the scan has evicted less than its share of the cache
// (1/16); past that, a leaf is checked in the read's pooled buffer, handed
// to the consumer for that run only, and given back to the pool when the
// next run is asked for or the scan ends — run out, stopped early, or
// failed on a damaged leaf — and a branch is not cached. A long scan then
// leaves what gets cached in the cache, and a short range read again is
// served from it.
import assert from 'node:assert/strict';

import { NOT_CACHED, PageTree } from '../../engine/page_tree.js';
import { StoreCorruptError } from '../../engine/store_error.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { childCount, leafEntryAt, leafKeyAt, type LentLeaf, type TreePageIo } from '../../engine/tree_node.js';
import { TreePages } from '../../engine/tree_pages.js';
import { branchChildBytes, encodeBranchPage, encodeLeafPage, leafEntryBytes, pageCapacityBytes } from '../../format/page.js';
import { coldTree, GEOMETRY, KEY_COUNT, keyOf, MemoryPages, PAGE_SIZE, valueOf } from './cold_tree.js';

/** A cache of ~8 pages: the branches and a few leaves of the 3000-key tree (~70 leaves). */
const SMALL_CACHE_BYTES = 40 << 10;

/** Turns of the event loop: reads ahead that a stopped scan left in flight settle (each read waits one). */
async function settleReads(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** The block of the leaf that holds `key`. */
function leafBlockOf(memory: MemoryPages, key: string): number {
  const block = [...memory.blocks.keys()].find((candidate) => Buffer.from(memory.blocks.get(candidate)!).includes(Buffer.from(key, 'latin1')));
  assert.ok(block !== undefined, `no page holds ${key}`);
  return block;
}

/** Every key and a copy of every inline value of a whole scan through runs(). */
async function scanAll(tree: PageTree): Promise<{ keys: string[]; values: Uint8Array[] }> {
  const keys: string[] = [];
  const values: Uint8Array[] = [];
  for await (const run of tree.runs(tree.snapshot())) {
    for (let index = run.first; index !== run.end; index += run.step) {
      keys.push(leafKeyAt(run.leaf, index));
      values.push(new Uint8Array((leafEntryAt(run.leaf, index) as IndexEntry).value as Uint8Array));
    }
  }
  return { keys, values };
}

/** A cache full of leaves all over the tree (two gets of every 40th key), so that a scan lends. */
async function fillCache(tree: PageTree): Promise<void> {
  for (let i = 0; i < KEY_COUNT; i += 40) {
    await tree.get(keyOf(i));
    await tree.get(keyOf(i));
  }
}

/**
 * A tree of a root branch over two leaves, written by hand: the second
 * leaf's keys (key-00000..) lie below the separator its parent gives it
 * (key-00100), every checksum right. Read through TreePages, whose loans
 * are counted.
 */
function treeBreakingItsBounds(): { tree: PageTree; loans: () => number; secondLeafBlock: number } {
  const memory = new MemoryPages();
  const stamp = (address: number): { address: number; checkpointSequence: number; storeTag: number } => ({ address, checkpointSequence: 1, storeTag: GEOMETRY.storeTag });
  const leafOf = (address: number, first: number): number => {
    const page = Buffer.alloc(PAGE_SIZE);
    const entries = Array.from({ length: 20 }, (_, i) => ({ key: Buffer.from(keyOf(first + i), 'latin1'), keyIsString: true, value: { kind: 'inline' as const, bytes: valueOf(first + i) } }));
    const crc = encodeLeafPage(page, stamp(address), entries);
    memory.blocks.set(address, page);
    return crc;
  };
  const firstLeaf = GEOMETRY.dataStartBlock + 1;
  const secondLeafBlock = GEOMETRY.dataStartBlock + 2;
  const children = [
    { block: firstLeaf, crc: leafOf(firstLeaf, 0), separator: undefined },
    { block: secondLeafBlock, crc: leafOf(secondLeafBlock, 0), separator: Buffer.from(keyOf(100), 'latin1') },
  ];
  const root = Buffer.alloc(PAGE_SIZE);
  const rootCrc = encodeBranchPage(root, stamp(GEOMETRY.dataStartBlock), 1, children);
  memory.blocks.set(GEOMETRY.dataStartBlock, root);
  const pages = new TreePages(memory.device(), () => GEOMETRY);
  let loans = 0;
  const io: TreePageIo = {
    read: (ref, level) => pages.read(ref, level),
    lendLeaf: async (ref): Promise<LentLeaf> => {
      const lent = await pages.lendLeaf(ref);
      loans++;
      return {
        page: lent.page,
        giveBack: () => {
          loans--;
          lent.giveBack();
        },
        keep: () => {
          loans--;
          return lent.keep();
        },
      };
    },
  };
  const tree = new PageTree(
    {
      io,
      entryBytes: (key, entry) => leafEntryBytes(key.length, entry.value instanceof Uint8Array ? { kind: 'inline', bytes: entry.value } : entry.value),
      childBytes: (separator) => branchChildBytes(separator.length),
      capacityBytes: pageCapacityBytes(PAGE_SIZE),
      // No room: every leaf a scan reads is lent.
      cacheBytesMax: 1,
    },
    { ref: { block: GEOMETRY.dataStartBlock, crc: rootCrc }, level: 1 },
    40,
  );
  return { tree, loans: () => loans, secondLeafBlock };
}

describe('PageTree#runs(): scans lend the leaves past their share of a full cache', () => {
  it('reads every key and value in order, evicts nothing beyond its share of a full cache, and gives every lent leaf back', async () => {
    const { memory, tree } = await coldTree(SMALL_CACHE_BYTES);
    // A leaf looked up twice is cached (the doorkeeper); the cache then fills with the branches and it.
    const hotKey = keyOf(1500);
    await tree.get(hotKey);
    await tree.get(hotKey);
    assert.notEqual(tree.getCached(hotKey), NOT_CACHED);
    const { keys, values } = await scanAll(tree);
    assert.equal(keys.length, KEY_COUNT);
    keys.forEach((key, index) => assert.equal(key, keyOf(index)));
    values.forEach((value, index) => assert.deepEqual(value, valueOf(index), `the value of ${keyOf(index)}`));
    assert.equal(tree.lentLeafCount, 0, 'lent leaves not given back');
    assert.notEqual(tree.getCached(hotKey), NOT_CACHED, 'the scan evicted the hot leaf');
    // The scan's first leaves filled the room the cache had; the later ones were lent, not cached.
    assert.equal(tree.getCached(keyOf(KEY_COUNT - 1)), NOT_CACHED, 'a leaf the scan read went into the full cache');
    assert.ok(memory.reads > 0);
  });

  it('gives the run back when the next one is asked for: its buffer then holds another leaf', async () => {
    const { tree } = await coldTree(SMALL_CACHE_BYTES);
    // Warm a full cache of other pages first, so that the scan lends.
    await fillCache(tree);
    const iterator = tree.runs(tree.snapshot(), { low: keyOf(600) })[Symbol.asyncIterator]();
    const first = (await iterator.next()).value!;
    const firstKey = leafKeyAt(first.leaf, first.first);
    assert.equal(firstKey, keyOf(600));
    assert.equal(tree.lentLeafCount, 1, 'the first run is not a lent leaf');
    // Views into the lent page (what leafEntryAt gives for an inline value) change once it is given back and reused.
    const view = (leafEntryAt(first.leaf, first.first) as IndexEntry).value as Uint8Array;
    assert.deepEqual(view, valueOf(600));
    for (let i = 0; i < 10; i++) await iterator.next();
    assert.notDeepEqual(view, valueOf(600), 'the first run\u2019s buffer was never given back for reuse');
    await iterator.return!(undefined);
    await settleReads();
    assert.equal(tree.lentLeafCount, 0);
  });

  it('gives back the run and the reads ahead when the consumer stops early', async () => {
    const { tree } = await coldTree(SMALL_CACHE_BYTES);
    await fillCache(tree);
    let runs = 0;
    for await (const run of tree.runs(tree.snapshot())) {
      assert.ok(run.end !== run.first);
      if (++runs === 5) break;
    }
    await settleReads();
    assert.equal(tree.lentLeafCount, 0, 'a stopped scan kept lent leaves');
  });

  it('gives back the reads ahead into the next parent of leaves when the consumer stops near the end of one, in either direction', async () => {
    const { tree } = await coldTree(SMALL_CACHE_BYTES, 40_000);
    // Leaves under each parent of leaves, in key order.
    const parentSizes: number[] = [];
    await tree.walk(tree.snapshot(), (node) => {
      if (node.kind === 'branch' && node.level === 1) parentSizes.push(childCount(node));
    });
    assert.ok(parentSizes.length >= 3, `${parentSizes.length} parents of leaves`);
    for (const reverse of [false, true]) {
      const first = reverse ? parentSizes[parentSizes.length - 1]! : parentSizes[0]!;
      // Stops from a window before the first parent's end to just past it.
      for (const stopAt of [first - 20, first - 3, first - 1, first, first + 1, first + 2]) {
        let runs = 0;
        for await (const run of tree.runs(tree.snapshot(), { reverse })) {
          assert.ok(run.end !== run.first);
          if (++runs === stopAt) break;
        }
        await settleReads();
        assert.equal(tree.lentLeafCount, 0, `a ${reverse ? 'reverse ' : ''}scan stopped after ${stopAt} runs (the first parent holds ${first}) kept lent leaves`);
      }
    }
  });

  it('reads nothing ahead for a scan that ended before the next parent of leaves it read ahead into arrived', async () => {
    const { memory, tree } = await coldTree(SMALL_CACHE_BYTES, 40_000);
    // The first parent of leaves, the next one's block and the first key of the first parent's last leaf.
    const parents: { block: number; lastLeafFirstKey: string | undefined }[] = [];
    await tree.walk(tree.snapshot(), (node, ref) => {
      if (node.kind === 'branch' && node.level === 1) parents.push({ block: ref!.block, lastLeafFirstKey: undefined });
      else if (node.kind === 'leaf' && parents.length === 1) parents[0]!.lastLeafFirstKey = leafKeyAt(node, 0);
    });
    assert.ok(parents.length >= 2 && parents[0]!.lastLeafFirstKey !== undefined);
    tree.releaseCache();
    // The next parent arrives long after the scan has ended.
    memory.readTurns = (block) => (block === parents[1]!.block ? 12 : 1);
    for await (const run of tree.runs(tree.snapshot(), { low: parents[0]!.lastLeafFirstKey })) {
      assert.ok(run.end !== run.first);
      break;
    }
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(tree.lentLeafCount, 0, 'reads ahead issued after the scan ended were never given back');
  });

  it('answers a damaged leaf with ERR_STORE_CORRUPT naming its block, and gives back what it had lent', async () => {
    const { memory, tree } = await coldTree(SMALL_CACHE_BYTES);
    await fillCache(tree);
    const damaged = leafBlockOf(memory, keyOf(2003));
    assert.equal(tree.getCached(keyOf(2003)), NOT_CACHED, 'the damaged leaf is cached: the scan would not read it');
    memory.damagedBlock = damaged;
    await assert.rejects(scanAll(tree), (error: unknown) => error instanceof StoreCorruptError && error.code === 'ERR_STORE_CORRUPT' && error.blockIndex === damaged);
    await settleReads();
    assert.equal(tree.lentLeafCount, 0, 'a failed scan kept lent leaves');
    memory.damagedBlock = undefined;
    assert.equal((await scanAll(tree)).keys.length, KEY_COUNT);
  });

  it('answers a lent leaf that breaks the bounds its parent gives (its checksum right) with ERR_STORE_CORRUPT naming its block, and ends the loan', async () => {
    const { tree, loans, secondLeafBlock } = treeBreakingItsBounds();
    const keys: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const run of tree.runs(tree.snapshot())) {
          for (let index = run.first; index !== run.end; index += run.step) keys.push(leafKeyAt(run.leaf, index));
        }
      })(),
      (error: unknown) => error instanceof StoreCorruptError && error.blockIndex === secondLeafBlock && /below the bound its parent gives/.test(error.message),
    );
    // The first leaf was sound and handed out whole before the second was refused.
    assert.deepEqual(keys, Array.from({ length: 20 }, (_, i) => keyOf(i)));
    await settleReads();
    assert.equal(loans(), 0, 'a refused or stopped loan was not given back');
    assert.equal(tree.lentLeafCount, 0);
  });

  it('lends in reverse as well: every key in descending order, values intact, every loan given back, the hot leaf still cached', async () => {
    const { tree } = await coldTree(SMALL_CACHE_BYTES);
    await fillCache(tree);
    const hotKey = keyOf(1521);
    await tree.get(hotKey);
    await tree.get(hotKey);
    assert.notEqual(tree.getCached(hotKey), NOT_CACHED);
    const keys: string[] = [];
    const values: Uint8Array[] = [];
    let lentSeen = 0;
    for await (const run of tree.runs(tree.snapshot(), { reverse: true })) {
      lentSeen = Math.max(lentSeen, tree.lentLeafCount);
      for (let index = run.first; index !== run.end; index += run.step) {
        keys.push(leafKeyAt(run.leaf, index));
        values.push(new Uint8Array((leafEntryAt(run.leaf, index) as IndexEntry).value as Uint8Array));
      }
    }
    assert.ok(lentSeen > 0, 'the reverse scan lent no leaf: the cache was not full');
    assert.equal(keys.length, KEY_COUNT);
    keys.forEach((key, index) => assert.equal(key, keyOf(KEY_COUNT - 1 - index)));
    values.forEach((value, index) => assert.deepEqual(value, valueOf(KEY_COUNT - 1 - index)));
    await settleReads();
    assert.equal(tree.lentLeafCount, 0, 'a reverse scan kept lent leaves');
    assert.notEqual(tree.getCached(hotKey), NOT_CACHED, 'the reverse scan evicted a leaf gets cached');
  });

  it('caches what it reads while the cache has room, and lends nothing then', async () => {
    const { memory, tree } = await coldTree(1 << 22);
    const iterator = tree.runs(tree.snapshot())[Symbol.asyncIterator]();
    await iterator.next();
    assert.equal(tree.lentLeafCount, 0, 'a scan lent a leaf with room in the cache');
    await iterator.return!(undefined);
    await scanAll(tree);
    const reads = memory.reads;
    const second = await scanAll(tree);
    assert.equal(second.keys.length, KEY_COUNT);
    assert.equal(memory.reads, reads, 'a second scan read again: the first did not cache');
  });

  it('leaves a hot leaf cached through a scan of a taller tree, whose branches it does not cache either', async () => {
    const { tree } = await coldTree(SMALL_CACHE_BYTES, 40_000);
    assert.ok(tree.height >= 3, `a tree of height ${tree.height}`);
    const hotKey = keyOf(23_456);
    await tree.get(hotKey);
    await tree.get(hotKey);
    assert.notEqual(tree.getCached(hotKey), NOT_CACHED);
    const iterator = tree.runs(tree.snapshot())[Symbol.asyncIterator]();
    let keys = 0;
    for (let run = await iterator.next(); run.done !== true; run = await iterator.next()) keys += run.value.end - run.value.first;
    assert.equal(keys, 40_000);
    assert.notEqual(tree.getCached(hotKey), NOT_CACHED, 'the scan evicted the hot leaf');
    assert.equal(tree.lentLeafCount, 0);
  });

  it('caches a short range in a full cache (its share), so that the next pass over it reads nothing; a long scan evicts no more than the share', async () => {
    // Its share (1/16) is 64 KiB: a branch (~25 KiB in memory) and a dozen leaves.
    const cacheBytes = 1 << 20;
    const keyCount = 20_000;
    const { memory, tree } = await coldTree(cacheBytes, keyCount);
    // Gets cache leaves all over the tree but the short range's (keys 1000-1040): more than it holds.
    const sampled = Array.from({ length: keyCount / 20 }, (_, i) => i * 20)
      .filter((index) => index < 900 || index > 1200)
      .map(keyOf);
    for (const key of sampled) {
      await tree.get(key);
      await tree.get(key);
    }
    const cachedBefore = sampled.filter((key) => tree.getCached(key) !== NOT_CACHED);
    assert.ok(tree.cacheStats().pageCacheBytes > cacheBytes - 8192, 'the cache is not full');
    const shortRange = { low: keyOf(1000), high: keyOf(1040) };
    const passes: number[] = [];
    for (let pass = 0; pass < 3; pass++) {
      const reads = memory.reads;
      let count = 0;
      for await (const run of tree.runs(tree.snapshot(), shortRange)) count += run.end - run.first;
      assert.equal(count, 41);
      passes.push(memory.reads - reads);
    }
    assert.ok(passes[0]! > 0, 'the short range was cached before its first pass');
    assert.deepEqual(passes.slice(1), [0, 0], `device reads by pass: ${passes.join(', ')}`);
    await scanAll(tree);
    const evicted = cachedBefore.filter((key) => tree.getCached(key) === NOT_CACHED).length;
    // Each scan may evict its share (leaves take over 4 KiB each in memory): the long one and the three short ones.
    const shareLeavesMax = Math.floor(cacheBytes / 16 / 4096);
    assert.ok(evicted <= 4 * shareLeavesMax, `the scans evicted ${evicted} of ${cachedBefore.length} cached leaves`);
    assert.ok(evicted < cachedBefore.length / 4);
  });
});
