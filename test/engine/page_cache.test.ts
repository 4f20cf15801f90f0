// PageCache against its rules, through random inserts, hits, pins and drops:
// its byte count is the sum of its nodes'; a pinned node is never evicted;
// after an insert or a release it is within budget unless every node left
// is pinned (the clock hand, kept across calls, still finds every node it
// may evict); a node hit since the hand last passed it outlives one that
// was not.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { PageCache } from '../../engine/page_cache.js';
import { EPOCH_NEVER, type TreeNode } from '../../engine/tree_node.js';

/** Fixed so a failure reproduces; fast-check prints it on failure. */
const SEED = 0x9a6e_cac4;

type Op =
  | { readonly type: 'insert'; readonly block: number; readonly memoryBytes: number }
  | { readonly type: 'get'; readonly block: number }
  | { readonly type: 'pin'; readonly block: number }
  | { readonly type: 'unpin'; readonly block: number }
  | { readonly type: 'drop'; readonly block: number };

function nodeOf(block: number, memoryBytes: number): TreeNode {
  return { kind: 'leaf', level: 0, ref: { block, crc: block * 7 }, epoch: EPOCH_NEVER, memoryBytes, pins: 0, cacheReferenced: false, cacheSlot: -1 } as unknown as TreeNode;
}

const blockArb = fc.integer({ min: 0, max: 40 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ type: fc.constant('insert' as const), block: blockArb, memoryBytes: fc.integer({ min: 1, max: 300 }) }), weight: 5 },
  { arbitrary: fc.record({ type: fc.constant('get' as const), block: blockArb }), weight: 3 },
  { arbitrary: fc.record({ type: fc.constant('pin' as const), block: blockArb }), weight: 1 },
  { arbitrary: fc.record({ type: fc.constant('unpin' as const), block: blockArb }), weight: 1 },
  { arbitrary: fc.record({ type: fc.constant('drop' as const), block: blockArb }), weight: 1 },
);

function blocksOf(cache: PageCache): number[] {
  return [...cache.nodes()].map((node) => node.ref!.block).sort((a, b) => a - b);
}

describe('PageCache', () => {
  it('keeps its byte count, its budget and its pins through random inserts, hits, pins and drops', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.array(opArb, { minLength: 1, maxLength: 300, size: 'max' }), (bytesMax, ops) => {
        const cache = new PageCache(bytesMax);
        /** The node each block's last insert made (cached or not). */
        const latest = new Map<number, TreeNode>();
        /** Nodes a drop took out of the cache: the only way out for a pinned one. */
        const dropped = new WeakSet<TreeNode>();
        const withinBudget = (what: string): void => {
          const nodes = [...cache.nodes()];
          assert.equal(cache.bytes, nodes.reduce((sum, node) => sum + node.memoryBytes, 0), `${what}: bytes`);
          assert.equal(cache.nodeCount, nodes.length);
          assert.ok(nodes.every((node) => cache.holds(node) && node.cacheSlot >= 0), `${what}: the clock holds exactly the cached nodes`);
          if (cache.bytes > bytesMax) assert.ok(nodes.every((node) => node.pins > 0), `${what}: over budget with an unpinned node`);
        };
        for (const op of ops) {
          const node = latest.get(op.block);
          switch (op.type) {
            case 'insert': {
              const fresh = nodeOf(op.block, op.memoryBytes);
              latest.set(op.block, fresh);
              cache.insert(fresh);
              withinBudget('insert');
              break;
            }
            case 'get':
              if (node !== undefined) assert.equal(cache.get(node.ref!), cache.holds(node) ? node : undefined);
              break;
            case 'pin':
              if (node !== undefined && cache.holds(node)) node.pins++;
              break;
            case 'unpin':
              if (node !== undefined && node.pins > 0) {
                node.pins--;
                cache.evict();
                withinBudget('release');
              }
              break;
            case 'drop':
              if (node !== undefined) {
                cache.drop(node.ref!);
                dropped.add(node);
              }
              break;
          }
          // A pinned node is never evicted (only a drop or a newer insert of its block removes it).
          for (const current of latest.values()) {
            if (current.pins > 0 && !dropped.has(current)) assert.ok(cache.holds(current), `pinned block ${current.ref!.block} was evicted`);
          }
        }
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('evicts a node the hand passed while it was pinned once it is released, before newer ones', () => {
    // Half the cache pinned when the hand passes it (a commit's prepare), then released.
    const cache = new PageCache(400);
    const nodes = [0, 1, 2, 3].map((block) => nodeOf(block, 100));
    for (const node of nodes) cache.insert(node);
    nodes[0]!.pins++;
    nodes[1]!.pins++;
    cache.insert(nodeOf(4, 100));
    assert.deepEqual(blocksOf(cache), [0, 1, 3, 4]);
    nodes[0]!.pins--;
    nodes[1]!.pins--;
    cache.evict();
    for (let block = 5; block < 10; block++) cache.insert(nodeOf(block, 100));
    assert.deepEqual(blocksOf(cache), [6, 7, 8, 9]);
  });

  it('keeps inserting new pages after every node was pinned while one more came in (the hand does not stall)', () => {
    const cache = new PageCache(400);
    const pinned = [0, 1, 2, 3].map((block) => nodeOf(block, 100));
    for (const node of pinned) cache.insert(node);
    for (const node of pinned) node.pins++;
    // A concurrent read loads a page: over budget, nothing evictable but it.
    const loaded = nodeOf(4, 100);
    cache.insert(loaded);
    for (const node of pinned) node.pins--;
    cache.evict();
    for (let block = 5; block < 25; block++) {
      const node = nodeOf(block, 100);
      cache.insert(node);
      assert.equal(cache.peek(node.ref!), node, `page ${block} is cached right after its insert`);
    }
    assert.deepEqual(blocksOf(cache), [21, 22, 23, 24]);
  });

  it('lets go of dropped and replaced nodes: the clock holds no node the cache does not', () => {
    const cache = new PageCache(100_000);
    const nodes = Array.from({ length: 500 }, (_, block) => nodeOf(block, 100));
    for (const node of nodes) cache.insert(node);
    for (const node of nodes.slice(0, 450)) cache.drop(node.ref!);
    cache.insert(nodeOf(460, 100));
    for (const node of nodes) assert.equal(node.cacheSlot === -1, !cache.holds(node), `block ${node.ref!.block}: in the clock exactly when cached`);
    assert.equal(cache.nodeCount, 50);
    assert.deepEqual(blocksOf(cache).length, 50);
  });

  it('evicts a node not hit since the hand passed before one that was, across calls', () => {
    const cache = new PageCache(300);
    const nodes = [0, 1, 2].map((block) => nodeOf(block, 100));
    for (const node of nodes) cache.insert(node);
    // Full: the next insert evicts one. Block 0 is hit: block 1 goes.
    cache.get(nodes[0]!.ref!);
    cache.insert(nodeOf(3, 100));
    assert.deepEqual([...cache.nodes()].map((node) => node.ref!.block).sort(), [0, 2, 3]);
    // The hand goes on from where it stopped: block 2, then 3; block 0 went
    // to the back behind 3 when the hand passed it, its bit cleared.
    cache.insert(nodeOf(4, 100));
    assert.deepEqual([...cache.nodes()].map((node) => node.ref!.block).sort(), [0, 3, 4]);
    cache.insert(nodeOf(5, 100));
    assert.deepEqual([...cache.nodes()].map((node) => node.ref!.block).sort(), [0, 4, 5]);
    cache.insert(nodeOf(6, 100));
    assert.deepEqual([...cache.nodes()].map((node) => node.ref!.block).sort(), [4, 5, 6]);
  });

  it('keeps a pinned node when a node of another page at its block is inserted (a read for an older snapshot that landed late)', () => {
    const cache = new PageCache(1 << 20);
    const current = nodeOf(5, 100);
    cache.insert(current);
    current.pins++;
    const stale = { ...nodeOf(5, 100), ref: { block: 5, crc: 12345 } } as TreeNode;
    cache.insert(stale);
    assert.equal(cache.get(current.ref!), current);
    assert.equal(cache.get(stale.ref!), undefined);
    assert.equal(stale.cacheSlot, -1, 'not cached');
    // Unpinned, it is replaced as before.
    current.pins--;
    cache.insert(stale);
    assert.equal(cache.get(stale.ref!), stale);
    assert.equal(cache.get(current.ref!), undefined);
  });
});
