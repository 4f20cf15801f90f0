// Ascending runs of keys (a sorted load) take short cuts in PageTree: set()
// appends a key past the last key of the leaf the previous set() appended
// to without walking from the root, while the key stays below that leaf's
// bound and nothing else wrote (the append finger), and prepare() skips the
// walk of a set key that lands in the leaf the previous key's walk reached.
// Both must give the tree a full walk would: checked here on the real page
// codec against a model, with runs that cross leaf bounds exactly, keys
// equal to a separator, and snapshots, deletes and checkpoints between sets.
import assert from 'node:assert/strict';

import { PageTree, type PageRef, type TreeNode } from '../../engine/page_tree.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { TreePages } from '../../engine/tree_pages.js';
import { coldTree, GEOMETRY, keyOf as coldKeyOf, MemoryPages, newTree, PAGE_SIZE, valueOf as coldValueOf } from './cold_tree.js';
import { seededRandom } from './helpers.js';

const keyOf = (i: number): string => `k${String(i).padStart(7, '0')}`;
const entryOf = (i: number, length = 40): IndexEntry => ({ isString: true, value: Uint8Array.from({ length }, (_, j) => (i * 31 + j) & 0xff) });

/** set() of each key, prepared together (one commit's worth), as the journal applies a batch. */
async function setAll(tree: PageTree, model: Map<string, IndexEntry>, keys: readonly string[], entry: (key: string) => IndexEntry): Promise<void> {
  const prepared = await tree.prepare(keys);
  try {
    for (const key of keys) {
      const value = entry(key);
      tree.set(key, value);
      model.set(key, value);
    }
  } finally {
    tree.release(prepared);
  }
}

async function deleteAll(tree: PageTree, model: Map<string, IndexEntry>, keys: readonly string[]): Promise<void> {
  const prepared = await tree.prepare([], keys);
  try {
    for (const key of keys) {
      tree.delete(key);
      model.delete(key);
    }
  } finally {
    tree.release(prepared);
  }
}

/** Writes the tree's dirty nodes to `memory` and completes the checkpoint. */
function checkpoint(tree: PageTree, memory: MemoryPages, pages: TreePages, nextBlock: { value: number }): void {
  completePlan(tree.beginCheckpoint(), memory, pages, nextBlock);
}

/** Writes a checkpoint plan's nodes to `memory` and completes it. */
function completePlan(plan: ReturnType<PageTree['beginCheckpoint']>, memory: MemoryPages, pages: TreePages, nextBlock: { value: number }): void {
  const assigned = new Map<TreeNode, PageRef>();
  for (const node of plan.dirtyNodes) {
    const page = Buffer.alloc(PAGE_SIZE);
    const at = nextBlock.value++;
    const crc = node.kind === 'leaf' ? pages.encodeLeaf(node, at, 1, page) : pages.encode(plan.content(node, (child) => assigned.get(child)), at, 1, page);
    memory.blocks.set(at, page);
    assigned.set(node, { block: at, crc });
  }
  plan.complete(assigned);
}

async function checkAgainst(tree: PageTree, model: Map<string, IndexEntry>, what: string): Promise<void> {
  tree.checkInvariants();
  assert.equal(tree.size, model.size, `${what}: key count`);
  for (const [key, entry] of model) {
    const found = await tree.get(key);
    assert.ok(found !== undefined, `${what}: ${key} missing`);
    assert.deepEqual(Buffer.from(found.value as Uint8Array), Buffer.from(entry.value as Uint8Array), `${what}: ${key}`);
  }
}

describe('PageTree ascending runs (append finger, prepare skipping walks)', function () {
  this.timeout(60_000);

  it('builds the same tree a walk per key would: a sorted load, then runs through the gaps that cross leaf bounds', async () => {
    const memory = new MemoryPages();
    const pages = new TreePages(memory.device(), () => GEOMETRY);
    const tree = newTree(pages, undefined, 0, 1 << 22);
    const model = new Map<string, IndexEntry>();
    // A sorted load in batches: every key past the tree's last.
    for (let start = 0; start < 6000; start += 500) {
      await setAll(tree, model, Array.from({ length: 500 }, (_, i) => keyOf((start + i) * 10)), (key) => entryOf(Number(key.slice(1)), 200));
    }
    assert.ok(tree.height >= 3, `a tree of ${tree.height} levels`);
    await checkAgainst(tree, model, 'after the sorted load');
    // Ascending runs through the gaps: each key lands past the last key of
    // its leaf only where the leaf ends, and the next one is then past that
    // leaf's bound (in the next leaf): the finger must refuse it.
    await setAll(tree, model, Array.from({ length: 3000 }, (_, i) => keyOf(i * 20 + 9)), (key) => entryOf(Number(key.slice(1)), 24));
    await checkAgainst(tree, model, 'after the runs through the gaps');
    // Keys equal to existing keys and to separators (a separator is a prefix
    // of a leaf's first key, or the key): replaced, never appended.
    await setAll(tree, model, Array.from({ length: 600 }, (_, i) => keyOf(i * 100)), (key) => entryOf(Number(key.slice(1)) + 1, 50));
    await checkAgainst(tree, model, 'after overwrites in order');
  });

  it('prepares a run that crosses leaves of a tree partly in memory: every leaf it writes is read first', async () => {
    const { memory, tree } = await coldTree(1 << 22, 4000);
    const model = new Map<string, IndexEntry>();
    for (let i = 0; i < 4000; i++) model.set(coldKeyOf(i), { isString: true, value: coldValueOf(i) });
    // Some leaves in memory, their neighbours not: a walk that reaches a
    // leaf in memory must not stand for the next key's, in the next leaf.
    // (Written, not read: a get does not keep a leaf it reads once.)
    const warm = Array.from({ length: 40 }, (_, i) => coldKeyOf(i * 100));
    await setAll(tree, model, warm, (key) => entryOf(key.length, 60));
    // Keys between each pair of neighbours: an ascending run over every leaf.
    const run = Array.from({ length: 3999 }, (_, i) => `${coldKeyOf(i)}+`);
    const readsBefore = memory.reads;
    await setAll(tree, model, run, (key) => entryOf(key.length, 30));
    assert.ok(memory.reads - readsBefore > 20, `${memory.reads - readsBefore} pages read for the run's cold leaves`);
    await checkAgainst(tree, model, 'after a run over a cold tree');
  });

  it('never appends through a leaf that a snapshot, a delete or a checkpoint made stale', async () => {
    const memory = new MemoryPages();
    const pages = new TreePages(memory.device(), () => GEOMETRY);
    const tree = newTree(pages, undefined, 0, 1 << 22);
    const model = new Map<string, IndexEntry>();
    const nextBlock = { value: GEOMETRY.dataStartBlock };
    const random = seededRandom(34);
    let next = 0;
    const snapshots: { snapshot: ReturnType<PageTree['snapshot']>; frozen: Map<string, IndexEntry> }[] = [];
    for (let round = 0; round < 300; round++) {
      const run = Array.from({ length: 1 + Math.floor(random() * 40) }, () => keyOf((next += 1 + Math.floor(random() * 3))));
      // One set at a time, each prepared alone, with something between some of them.
      for (const key of run) {
        await setAll(tree, model, [key], () => entryOf(next));
        const roll = random();
        if (roll < 0.05) {
          // A snapshot sees the tree as it was, whatever is appended after it.
          if (snapshots.length < 4) snapshots.push({ snapshot: tree.snapshot(), frozen: new Map(model) });
          else tree.snapshot();
        } else if (roll < 0.065) {
          // Appends while a checkpoint's plan holds the leaves it froze.
          const plan = tree.beginCheckpoint();
          for (let i = 0; i < 3; i++) await setAll(tree, model, [keyOf((next += 1))], () => entryOf(next));
          completePlan(plan, memory, pages, nextBlock);
        } else if (roll < 0.08 && model.size > 10) {
          const keys = [...model.keys()];
          await deleteAll(tree, model, [keys[Math.floor(random() * keys.length)]!]);
        } else if (roll < 0.1) checkpoint(tree, memory, pages, nextBlock);
      }
      if (round % 50 === 49) await checkAgainst(tree, model, `round ${round}`);
    }
    checkpoint(tree, memory, pages, nextBlock);
    await checkAgainst(tree, model, 'at the end');
    assert.ok(snapshots.length > 0, 'no snapshot taken');
    for (const { snapshot, frozen } of snapshots) {
      const seen = new Map<string, IndexEntry>();
      for await (const [key, entry] of tree.entries(snapshot)) seen.set(key, entry);
      assert.deepEqual([...seen.keys()], [...frozen.keys()].sort(), 'a snapshot sees the keys of its moment');
      for (const [key, entry] of frozen) assert.deepEqual(Buffer.from(seen.get(key)!.value as Uint8Array), Buffer.from(entry.value as Uint8Array), `snapshot: ${key}`);
    }
    // The checkpointed tree, opened again from its pages, holds the same keys.
    const reopened = newTree(new TreePages(memory.device(), () => GEOMETRY), tree.snapshot().root === undefined ? undefined : rootOf(tree), model.size, 1 << 22);
    await checkAgainst(reopened, model, 'reopened');
  });
});

function rootOf(tree: PageTree): { ref: PageRef; level: number } {
  const root = tree.snapshot().root;
  assert.ok(root !== undefined && !('kind' in root), 'the root is written (a ref) after the checkpoint');
  return { ref: root as PageRef, level: tree.height - 1 };
}
