// PageTree: behaviours one at a time, on the fake page store. The model
// test (page_tree_model.test.ts) mixes them at random; the load test
// (page_tree_load.test.ts) runs large sorted and random loads.
import assert from 'node:assert/strict';

import { NOT_CACHED, PageTree } from '../../engine/page_tree.js';
import { StoreCorruptError } from '../../engine/store_error.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { PageCache } from '../../engine/page_cache.js';
import { EPOCH_NEVER, newLeaf, shortestSeparator, type TreeNode } from '../../engine/tree_node.js';
import {
  applyBatch,
  childBytes,
  collect,
  describeEntry,
  describePairs,
  FakeCheckpointer,
  FakePageStore,
  inlineEntry,
  modelRange,
  treeOptions,
} from './page_tree_fakes.js';

function keyOf(index: number): string {
  return `key${String(index).padStart(6, '0')}`;
}

async function filledTree(count: number, options: Parameters<typeof treeOptions>[1] = {}): Promise<{ tree: PageTree; store: FakePageStore; checkpointer: FakeCheckpointer; model: Map<string, IndexEntry> }> {
  const store = new FakePageStore();
  const tree = new PageTree(treeOptions(store, options), undefined, 0);
  const checkpointer = new FakeCheckpointer(store, () => tree);
  const model = new Map<string, IndexEntry>();
  for (let index = 0; index < count; index++) {
    const entry = inlineEntry(40, index & 0xff);
    await applyBatch(tree, [{ key: keyOf(index), entry }]);
    model.set(keyOf(index), entry);
  }
  tree.checkInvariants();
  return { tree, store, checkpointer, model };
}

function reopen(store: FakePageStore, checkpointer: FakeCheckpointer, options: Parameters<typeof treeOptions>[1] = {}): PageTree {
  return new PageTree(treeOptions(store, options), checkpointer.durable.root, checkpointer.durable.keyCount);
}

describe('PageTree', () => {
  describe('construction', () => {
    it('refuses a capacity that cannot hold three children with the longest separators', () => {
      assert.throws(() => new PageTree(treeOptions(new FakePageStore(), { capacityBytes: 3 * childBytes('x'.repeat(1024)) - 1 }), undefined, 0), RangeError);
      assert.doesNotThrow(() => new PageTree(treeOptions(new FakePageStore(), { capacityBytes: 3 * childBytes('x'.repeat(1024)) }), undefined, 0));
    });

    it('refuses a key count that does not match the root', () => {
      assert.throws(() => new PageTree(treeOptions(new FakePageStore()), undefined, 3), RangeError);
      assert.throws(() => new PageTree(treeOptions(new FakePageStore()), { ref: { block: 1, crc: 1 }, level: 0 }, 0), RangeError);
    });

    it('is empty with no root: no keys, height 0', async () => {
      const tree = new PageTree(treeOptions(new FakePageStore()), undefined, 0);
      assert.equal(tree.size, 0);
      assert.equal(tree.height, 0);
      assert.equal(tree.getCached('a'), undefined);
      assert.equal(await tree.get('a'), undefined);
      assert.deepEqual(await collect(tree, tree.snapshot()), []);
      tree.checkInvariants();
    });
  });

  describe('#set() and #delete()', () => {
    it('returns the previous entry and keeps the key count', async () => {
      const tree = new PageTree(treeOptions(new FakePageStore()), undefined, 0);
      assert.deepEqual(await applyBatch(tree, [{ key: 'a', entry: inlineEntry(1, 1) }]), [undefined]);
      const [previous] = await applyBatch(tree, [{ key: 'a', entry: inlineEntry(2, 2) }]);
      assert.equal(describeEntry(previous), 'inline 1:1');
      assert.equal(tree.size, 1);
      assert.equal(describeEntry((await applyBatch(tree, [{ key: 'a', entry: undefined }]))[0]), 'inline 2:2');
      assert.equal((await applyBatch(tree, [{ key: 'a', entry: undefined }]))[0], undefined);
      assert.equal(tree.size, 0);
      assert.equal(tree.height, 0, 'the last delete removes the root');
      tree.checkInvariants();
    });

    it('refuses an entry larger than a page and a key longer than keySizeMax', () => {
      const tree = new PageTree(treeOptions(new FakePageStore()), undefined, 0);
      assert.throws(() => tree.set('a', inlineEntry(4096, 0)), RangeError);
      assert.throws(() => tree.set('x'.repeat(1025), inlineEntry(1, 0)), RangeError);
      assert.throws(() => tree.set('', inlineEntry(1, 0)), RangeError);
      assert.equal(tree.size, 0);
    });

    it('splits a leaf into three when a large entry lands between two others (greedy multi-way split)', async () => {
      const tree = new PageTree(treeOptions(new FakePageStore()), undefined, 0);
      await applyBatch(tree, [
        { key: 'a', entry: inlineEntry(1500, 1) },
        { key: 'c', entry: inlineEntry(1500, 3) },
      ]);
      assert.equal(tree.height, 1);
      await applyBatch(tree, [{ key: 'b', entry: inlineEntry(3100, 2) }]);
      tree.checkInvariants();
      assert.equal(tree.height, 2);
      const plan = tree.beginCheckpoint();
      assert.equal(plan.dirtyNodes.length, 4, 'three leaves and their root');
      assert.equal(plan.dirtyNodes[3], plan.root, 'post-order: the root last');
      const root = plan.content(plan.dirtyNodes[3]!, () => ({ block: 0, crc: 0 }));
      assert.ok(root.kind === 'branch' && root.page === undefined);
      assert.deepEqual(root.separators, ['b', 'c']);
      plan.abort();
    });

    it('throws (a bug) when a page on the path is not in memory, and works once prepared', async () => {
      const { tree, store, checkpointer } = await filledTree(2000, { cacheBytesMax: 0 });
      await checkpointer.run(tree.beginCheckpoint());
      const reopened = reopen(store, checkpointer, { cacheBytesMax: 0 });
      assert.throws(() => reopened.set(keyOf(5), inlineEntry(1, 1)), /not in memory; prepare\(\) the keys/);
      assert.throws(() => reopened.delete(keyOf(5)), /not in memory/);
      const prepared = await reopened.prepare([keyOf(5)], [keyOf(1500)]);
      assert.equal(describeEntry(reopened.set(keyOf(5), inlineEntry(1, 1))), 'inline 40:5');
      assert.equal(describeEntry(reopened.delete(keyOf(1500))), `inline 40:${1500 & 0xff}`);
      reopened.release(prepared);
      reopened.checkInvariants();
      assert.throws(() => reopened.release(prepared), /released twice/);
    });
  });

  describe('#stopCachingWrittenPages()', () => {
    it('leaves the pages of later checkpoints out of the page cache, except those a prepared write has pinned', async () => {
      const { tree, checkpointer, model } = await filledTree(2000);
      await checkpointer.run(tree.beginCheckpoint());
      assert.ok(tree.cacheStats().pagesCached > 1, 'a checkpoint caches the pages it wrote');
      tree.releaseCache();
      await applyBatch(tree, [{ key: keyOf(1999), entry: inlineEntry(40, 7) }]);
      model.set(keyOf(1999), inlineEntry(40, 7));
      const pinned = await tree.prepare([keyOf(0)]);
      tree.stopCachingWrittenPages();
      await checkpointer.run(tree.beginCheckpoint());
      assert.equal(tree.cacheStats().pagesCached, tree.height, 'only the path of the prepared key (pinned) is cached');
      assert.equal(describeEntry(tree.set(keyOf(0), inlineEntry(40, 9))), 'inline 40:0', 'the prepared write needs no IO');
      model.set(keyOf(0), inlineEntry(40, 9));
      tree.release(pinned);
      tree.checkInvariants();
      assert.deepEqual(await collect(tree, tree.snapshot()), [...model].sort(([a], [b]) => (a < b ? -1 : 1)));
    });
  });

  describe('#prepare()', () => {
    it('reads only the path for a set, and the path and its siblings for a delete', async () => {
      const { tree, store, checkpointer } = await filledTree(5000);
      await checkpointer.run(tree.beginCheckpoint());
      const cold = reopen(store, checkpointer, { cacheBytesMax: 0 });
      let reads = store.reads;
      cold.release(await cold.prepare([keyOf(2500)]));
      assert.equal(store.reads - reads, cold.height, 'one read per level');
      reads = store.reads;
      cold.release(await cold.prepare([], [keyOf(2500)]));
      assert.ok(store.reads - reads > cold.height && store.reads - reads <= 3 * cold.height - 2, `${store.reads - reads} reads for height ${cold.height}`);
    });

    it('prepares keys whose paths take a round a level from where each walk stopped: each page read once, every key writable after', async () => {
      const { tree, store, checkpointer } = await filledTree(5000);
      await checkpointer.run(tree.beginCheckpoint());
      const cold = reopen(store, checkpointer, { cacheBytesMax: 0 });
      const keys = [keyOf(10), keyOf(2500), keyOf(4990)];
      const reads = store.reads;
      const hits = cold.cacheStats().pageCacheHits;
      const prepared = await cold.prepare(keys);
      assert.ok(store.reads - reads <= keys.length * cold.height, `${store.reads - reads} reads`);
      // Each round goes on from the page just read: each key finds each page
      // of its path in the cache once (a walk from the root each round finds
      // the root again every round: 9 hits at this height).
      assert.equal(cold.cacheStats().pageCacheHits - hits, keys.length * cold.height);
      for (const key of keys) cold.set(key, inlineEntry(40, 1));
      cold.release(prepared);
      cold.checkInvariants();
    });

    it('walks from the root again when writes moved the tree while its pages were read', async () => {
      // Separators of ~300 chars: a few children a branch, so that a run of
      // inserts splits a branch under a root in memory within one round.
      const longKeyOf = (index: number): string => 'p'.repeat(300) + keyOf(index);
      const store = new FakePageStore();
      const tree = new PageTree(treeOptions(store), undefined, 0);
      const checkpointer = new FakeCheckpointer(store, () => tree);
      for (let start = 0; start < 2000; start += 100) {
        await applyBatch(tree, Array.from({ length: 100 }, (_, i) => ({ key: longKeyOf(start + i), entry: inlineEntry(40, (start + i) & 0xff) })));
      }
      await checkpointer.run(tree.beginCheckpoint());
      const cold = reopen(store, checkpointer, { cacheBytesMax: 0 });
      assert.ok(cold.height >= 3, `height ${cold.height}`);
      // The path of key 100 in memory and mutable (the root a dirty copy).
      const near = await cold.prepare([longKeyOf(100)]);
      cold.set(longKeyOf(100), inlineEntry(40, 1));
      // Its first round stops at the root's child for key 1500, not in memory...
      const racing = cold.prepare([longKeyOf(1500)]);
      // ...while writes split the pages left of that child, in place: the
      // root's records after them move up by one or more.
      const height = cold.height;
      for (let i = 0; i < 300; i++) cold.set(`${longKeyOf(100)}-${String(i).padStart(3, '0')}`, inlineEntry(40, 2));
      assert.equal(cold.height, height, 'the root did not split');
      const prepared = await racing;
      assert.equal(describeEntry(cold.set(longKeyOf(1500), inlineEntry(40, 3))), `inline 40:${1500 & 0xff}`, 'its path is in memory');
      cold.release(prepared);
      cold.release(near);
      cold.checkInvariants();
    });
  });

  describe('#getCached()', () => {
    it('returns NOT_CACHED rather than doing IO, and get() then reads', async () => {
      const { tree, store, checkpointer, model } = await filledTree(3000);
      await checkpointer.run(tree.beginCheckpoint());
      const reopened = reopen(store, checkpointer);
      const readsBefore = store.reads;
      assert.equal(reopened.getCached(keyOf(10)), NOT_CACHED);
      assert.equal(reopened.getCached('zzz'), NOT_CACHED);
      assert.equal(store.reads, readsBefore, 'getCached did no IO');
      assert.equal(describeEntry(await reopened.get(keyOf(10))), describeEntry(model.get(keyOf(10))));
      assert.ok(store.reads > readsBefore);
      const readsAfter = store.reads;
      assert.equal(describeEntry(reopened.getCached(keyOf(10)) as IndexEntry), describeEntry(model.get(keyOf(10))), 'the path is cached now');
      assert.equal(reopened.getCached(keyOf(10) + 'x'), undefined, 'an absent key on a cached path');
      assert.equal(store.reads, readsAfter);
    });
  });

  describe('page cache', () => {
    it('never evicts dirty nodes: with a zero budget every unwritten key is still found without IO', async () => {
      const { tree, store, model } = await filledTree(3000, { cacheBytesMax: 0 });
      assert.ok(tree.height >= 2);
      const reads = store.reads;
      for (const [key, entry] of model) assert.equal(describeEntry(tree.getCached(key) as IndexEntry), describeEntry(entry));
      assert.equal(store.reads, reads);
      assert.equal(tree.stats().cachedNodeCount, 0);
      assert.ok(tree.stats().dirtyNodeCount > 10);
    });

    it('evicts clean nodes down to the budget once a checkpoint makes them clean', async () => {
      const { tree, checkpointer, model } = await filledTree(3000, { cacheBytesMax: 0 });
      await checkpointer.run(tree.beginCheckpoint());
      tree.checkInvariants();
      const stats = tree.stats();
      assert.equal(stats.dirtyNodeCount, 0);
      assert.equal(stats.cachedNodeCount, 0);
      assert.equal(tree.getCached(keyOf(1)), NOT_CACHED);
      for (const key of [keyOf(0), keyOf(1234), keyOf(2999)]) assert.equal(describeEntry(await tree.get(key)), describeEntry(model.get(key)));
      assert.deepEqual(describePairs(await collect(tree, tree.snapshot())), describePairs(modelRange(model)));
    });

    it('keeps pinned pages through a checkpoint that completes between prepare() and the writes', async () => {
      const { tree, checkpointer } = await filledTree(1500, { cacheBytesMax: 0 });
      await checkpointer.run(tree.beginCheckpoint());
      // Dirty again along one path, then prepared; a checkpoint makes those nodes clean.
      await applyBatch(tree, [{ key: keyOf(700), entry: inlineEntry(3, 3) }]);
      const prepared = await tree.prepare([keyOf(700)], [keyOf(10)]);
      await checkpointer.run(tree.beginCheckpoint());
      assert.ok(tree.stats().cachedNodeCount > 0, 'pinned nodes stay over the budget');
      tree.set(keyOf(700), inlineEntry(4, 4));
      tree.delete(keyOf(10));
      tree.release(prepared);
      tree.checkInvariants();
      assert.equal(tree.stats().cachedNodeCount, 0, 'released: evicted');
    });
  });

  describe('PageCache', () => {
    function cleanNode(block: number): TreeNode {
      const node = newLeaf(EPOCH_NEVER, ['k'], [inlineEntry(1, 1)], 10);
      node.ref = { block, crc: block };
      node.memoryBytes = 100;
      return node;
    }

    it('evicts a page not read since it was cached before one that was (second chance), and never a pinned one', () => {
      const cache = new PageCache(300);
      const [a, b, c, d, e] = [1, 2, 3, 4, 5].map(cleanNode) as [TreeNode, TreeNode, TreeNode, TreeNode, TreeNode];
      cache.insert(a);
      cache.insert(b);
      cache.insert(c);
      assert.equal(cache.get(a.ref!), a);
      cache.insert(d);
      assert.equal(cache.get(a.ref!), a, 'a was read: it gets a second chance');
      assert.equal(cache.get(b.ref!), undefined, 'b, the oldest unread, went');
      b.pins = 1;
      cache.insert(b);
      cache.insert(e);
      assert.equal(cache.get(b.ref!), b, 'pinned');
      assert.equal(cache.nodeCount, 3);
      assert.equal(cache.bytes, 300);
      assert.equal(cache.get({ block: 5, crc: 99 }), undefined, 'another CRC: an older page of a reused block');
    });
  });

  describe('#snapshot()', () => {
    it('keeps seeing its state while writes and checkpoints go on', async () => {
      const { tree, checkpointer, model } = await filledTree(2000);
      const snapshot = checkpointer.hold(tree.snapshot());
      const frozen = new Map(model);
      for (let index = 0; index < 2000; index += 3) await applyBatch(tree, [{ key: keyOf(index), entry: undefined }]);
      await applyBatch(tree, [{ key: 'aaa', entry: inlineEntry(9, 9) }]);
      await checkpointer.run(tree.beginCheckpoint());
      for (let index = 1; index < 2000; index += 3) await applyBatch(tree, [{ key: keyOf(index), entry: inlineEntry(7, 7) }]);
      await checkpointer.run(tree.beginCheckpoint());
      tree.checkInvariants();
      assert.deepEqual(describePairs(await collect(tree, snapshot)), describePairs(modelRange(frozen)));
      assert.deepEqual(describePairs(await collect(tree, snapshot, { low: keyOf(100), high: keyOf(200), highInclusive: false, reverse: true })), describePairs(modelRange(frozen, { low: keyOf(100), high: keyOf(200), highInclusive: false, reverse: true })));
      checkpointer.drop(snapshot);
    });
  });

  describe('checkpoints', () => {
    it('writes only the dirty path after a small change (incremental), and frees the pages it replaced', async () => {
      const { tree, checkpointer } = await filledTree(5000);
      await checkpointer.run(tree.beginCheckpoint());
      const height = tree.height;
      await applyBatch(tree, [{ key: keyOf(2500), entry: inlineEntry(5, 5) }]);
      const plan = tree.beginCheckpoint();
      assert.equal(plan.dirtyNodes.length, height, 'one node per level');
      assert.equal(plan.garbage.length, height, 'the old path');
      await checkpointer.run(plan);
      assert.equal(checkpointer.freedCount, height);
    });

    it('after abort() keeps everything dirty, and the next checkpoint writes and frees it all', async () => {
      const { tree, checkpointer } = await filledTree(3000);
      await checkpointer.run(tree.beginCheckpoint());
      await applyBatch(tree, [{ key: keyOf(1), entry: undefined }]);
      const plan = tree.beginCheckpoint();
      const assigned = await checkpointer.write(plan);
      await applyBatch(tree, [{ key: keyOf(2999), entry: undefined }]);
      checkpointer.abort(plan, assigned);
      tree.checkInvariants();
      const next = tree.beginCheckpoint();
      assert.equal(next.garbage.length, 2 * tree.height - 1, 'both old paths (sharing the root)');
      await checkpointer.run(next);
      const reopened = reopen(checkpointer.store, checkpointer);
      assert.equal(await reopened.get(keyOf(1)), undefined);
      assert.equal(await reopened.get(keyOf(2999)), undefined);
      assert.equal(reopened.size, 2998);
    });

    it('refuses a second beginCheckpoint() while one runs, and complete() without every node', async () => {
      const { tree } = await filledTree(10);
      const plan = tree.beginCheckpoint();
      assert.throws(() => tree.beginCheckpoint(), /while a checkpoint is running/);
      assert.throws(() => plan.complete(new Map()), /without a PageRef/);
      assert.throws(() => plan.garbageBlocks(), /only once complete/);
      plan.abort();
      assert.throws(() => plan.abort(), /aborted plan/);
    });

    it('a fresh tree over the last completed checkpoint holds exactly its keys', async () => {
      const { tree, store, checkpointer, model } = await filledTree(4000);
      const plan = tree.beginCheckpoint();
      const atBegin = new Map(model);
      const assigned = await checkpointer.write(plan);
      await applyBatch(tree, [
        { key: keyOf(0), entry: undefined },
        { key: 'new', entry: inlineEntry(1, 1) },
      ]);
      checkpointer.complete(plan, assigned);
      tree.checkInvariants();
      const reopened = reopen(store, checkpointer, { cacheBytesMax: 0 });
      assert.equal(reopened.size, atBegin.size);
      assert.deepEqual(describePairs(await collect(reopened, reopened.snapshot())), describePairs(modelRange(atBegin)));
      let pages = 0;
      await reopened.walk(reopened.snapshot(), (_node, ref) => {
        assert.ok(ref !== undefined);
        pages++;
      });
      assert.equal(pages, store.reachable(checkpointer.durable.root!.ref).size);
    });
  });

  describe('corruption', () => {
    it('rejects with StoreCorruptError naming the block for a page whose keys are out of order', async () => {
      const store = new FakePageStore();
      const ref = store.write(7, { kind: 'leaf', keys: ['b', 'a'], entries: [inlineEntry(1, 1), inlineEntry(1, 2)] });
      const tree = new PageTree(treeOptions(store), { ref, level: 0 }, 2);
      await assert.rejects(tree.get('a'), (error: unknown) => error instanceof StoreCorruptError && error.blockIndex === 7 && /not above/.test(error.message));
    });

    const leafA = { kind: 'leaf', keys: ['a'], entries: [inlineEntry(1, 1)] } as const;
    const damaged: { name: string; root: (store: FakePageStore) => { ref: { block: number; crc: number }; level: number }; reason: RegExp }[] = [
      { name: 'an empty leaf', root: (store) => ({ ref: store.write(5, { kind: 'leaf', keys: [], entries: [] }), level: 0 }), reason: /an empty leaf/ },
      { name: 'keys without entries', root: (store) => ({ ref: store.write(5, { kind: 'leaf', keys: ['a', 'b'], entries: [inlineEntry(1, 1)] }), level: 0 }), reason: /2 keys but 1 entries/ },
      { name: 'a repeated key', root: (store) => ({ ref: store.write(5, { kind: 'leaf', keys: ['a', 'a'], entries: [inlineEntry(1, 1), inlineEntry(1, 1)] }), level: 0 }), reason: /not above/ },
      { name: 'an empty key', root: (store) => ({ ref: store.write(5, { kind: 'leaf', keys: [''], entries: [inlineEntry(1, 1)] }), level: 0 }), reason: /is not a key/ },
      { name: 'a leaf over capacity', root: (store) => ({ ref: store.write(5, { kind: 'leaf', keys: ['a', 'b'], entries: [inlineEntry(2040, 1), inlineEntry(2040, 1)] }), level: 0 }), reason: /over the page capacity/ },
      { name: 'a branch with one child', root: (store) => ({ ref: store.write(5, { kind: 'branch', level: 1, separators: [], children: [store.write(1, leafA)] }), level: 1 }), reason: /a branch with 1 children/ },
      {
        name: 'a branch with too many separators',
        root: (store) => ({ ref: store.write(5, { kind: 'branch', level: 1, separators: ['b', 'c'], children: [store.write(1, leafA), store.write(2, leafA)] }), level: 1 }),
        reason: /2 separators for 2 children/,
      },
      { name: 'a branch of another level than its parent says', root: (store) => ({ ref: store.write(5, { kind: 'branch', level: 1, separators: ['b'], children: [store.write(1, leafA), store.write(2, leafA)] }), level: 2 }), reason: /a page of level 1/ },
      {
        name: 'a child whose keys are at or above the separator after it',
        root: (store) => ({ ref: store.write(5, { kind: 'branch', level: 1, separators: ['a'], children: [store.write(1, leafA), store.write(2, { kind: 'leaf', keys: ['b'], entries: [inlineEntry(1, 1)] })] }), level: 1 }),
        reason: /at or above the bound/,
      },
    ];
    for (const { name, root, reason } of damaged) {
      it(`rejects ${name} with StoreCorruptError naming the block`, async () => {
        const store = new FakePageStore();
        const tree = new PageTree(treeOptions(store), root(store), 1);
        await assert.rejects(
          (async () => {
            await tree.walk(tree.snapshot(), () => {});
          })(),
          (error: unknown) => error instanceof StoreCorruptError && error.structure === 'page' && (error.blockIndex === 5 || error.blockIndex === 1) && reason.test(error.message),
        );
      });
    }

    it('reads a valid two-level tree beside those damaged ones', async () => {
      const store = new FakePageStore();
      const root = store.write(5, { kind: 'branch', level: 1, separators: ['b'], children: [store.write(1, leafA), store.write(2, { kind: 'leaf', keys: ['b'], entries: [inlineEntry(1, 2)] })] });
      const tree = new PageTree(treeOptions(store), { ref: root, level: 1 }, 2);
      assert.deepEqual(describePairs(await collect(tree, tree.snapshot())), ['"a"=inline 1:1', '"b"=inline 1:2']);
      tree.checkInvariants();
    });

    it('rejects a child whose keys lie outside the bounds its parent gives, and a page at the wrong level', async () => {
      const store = new FakePageStore();
      const left = store.write(1, { kind: 'leaf', keys: ['a'], entries: [inlineEntry(1, 1)] });
      const right = store.write(2, { kind: 'leaf', keys: ['c'], entries: [inlineEntry(1, 1)] });
      const root = store.write(3, { kind: 'branch', level: 1, separators: ['d'], children: [left, right] });
      const tree = new PageTree(treeOptions(store), { ref: root, level: 1 }, 2);
      await assert.rejects(collect(tree, tree.snapshot()), (error: unknown) => error instanceof StoreCorruptError && error.blockIndex === 2);
      const wrongLevel = new PageTree(treeOptions(store), { ref: root, level: 2 }, 2);
      await assert.rejects(wrongLevel.get('a'), (error: unknown) => error instanceof StoreCorruptError && error.blockIndex === 3);
    });
  });

  describe('read errors', () => {
    it('a failed read rejects prepare() and get() and leaves nothing pinned; the next read tries again', async () => {
      const { tree, store, checkpointer, model } = await filledTree(3000);
      await checkpointer.run(tree.beginCheckpoint());
      let failures = 1;
      const io = {
        read: async (...args: Parameters<FakePageStore['read']>) => {
          if (failures > 0) {
            failures--;
            throw Object.assign(new Error('EIO (injected)'), { code: 'EIO' });
          }
          return store.read(...args);
        },
      };
      const cold = reopen(store, checkpointer, { io, cacheBytesMax: 0 });
      await assert.rejects(cold.prepare([keyOf(3)]), /EIO/);
      failures = 1;
      await assert.rejects(cold.get(keyOf(3)), /EIO/);
      assert.equal(describeEntry(await cold.get(keyOf(3))), describeEntry(model.get(keyOf(3))));
      cold.release(await cold.prepare([keyOf(3)]));
      cold.checkInvariants();
      assert.equal(cold.stats().cachedNodeCount, 0, 'nothing stays pinned');
    });
  });

  describe('shortestSeparator()', () => {
    it('is the shortest prefix of the right key above the left key', () => {
      assert.equal(shortestSeparator('abc', 'abd'), 'abd');
      assert.equal(shortestSeparator('abc', 'b'), 'b');
      assert.equal(shortestSeparator('ab', 'abc'), 'abc');
      assert.equal(shortestSeparator('a', 'azzzz'), 'az');
      assert.equal(shortestSeparator('a\xff', 'b\x00'), 'b');
      assert.throws(() => shortestSeparator('b', 'a'));
    });
  });
});
