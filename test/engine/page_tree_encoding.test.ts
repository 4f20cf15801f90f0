// PageTree over the real page codec (TreePages on an in-memory device): a
// checkpoint encodes a leaf by difference from the page it was read from
// (TreePages.encodeLeaf), and every such page must be the page
// a full encode of the leaf gives, byte for byte, whatever the writes did to
// the leaf in between: copies, splits, merges, snapshots, aborted plans,
// pages evicted and read back.
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import { PageTree, type PageRef, type TreeNode } from '../../engine/page_tree.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { TreePages, type TreeGeometry } from '../../engine/tree_pages.js';
import { branchChildBytes, leafEntryBytes, pageCapacityBytes, pageSizeFor } from '../../format/page.js';
import type { StoredValue } from '../../format/records.js';

const BLOCK_SIZE = 4096;
const PAGE_SIZE = pageSizeFor(BLOCK_SIZE);
const GEOMETRY: TreeGeometry = { blockSize: BLOCK_SIZE, pageSize: PAGE_SIZE, storeTag: 0x5eed, dataStartBlock: 10, blockCount: 1 << 20 };
const SEED = process.env.PAGE_TREE_ENCODING_SEED === undefined ? 0x2026_1202 : Number(process.env.PAGE_TREE_ENCODING_SEED);

/** xorshift32: the same run for the same seed. */
function random(seed: number): (below: number) => number {
  let state = seed >>> 0 || 1;
  return (below) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % below;
  };
}

function storedValue(entry: IndexEntry): StoredValue {
  return entry.value instanceof Uint8Array ? { kind: 'inline', bytes: entry.value } : entry.value;
}

/** An entry as plain data (inline bytes as an array: a read gives a Buffer view, a write was a Uint8Array). */
function plain(entry: IndexEntry): unknown {
  return { isString: entry.isString, value: entry.value instanceof Uint8Array ? [...entry.value] : entry.value };
}

/** Pages on a Map<block, bytes>, read as the store's device would. */
function memoryDevice(blocks: Map<number, Uint8Array>): BlockDevice {
  const device: Pick<BlockDevice, 'ioAlignment' | 'read'> = {
    ioAlignment: 512,
    async read(position: number, buffer: Uint8Array): Promise<void> {
      const page = blocks.get(position / BLOCK_SIZE);
      assert.ok(page !== undefined && page.length === buffer.length, `a read of block ${position / BLOCK_SIZE}, never written`);
      buffer.set(page);
    },
  };
  return device as BlockDevice;
}

function treeOver(pages: TreePages, root: { ref: PageRef; level: number } | undefined, keyCount: number, cacheBytesMax: number): PageTree {
  return new PageTree(
    {
      io: pages,
      entryBytes: (key, entry) => leafEntryBytes(key.length, storedValue(entry)),
      childBytes: (separator) => branchChildBytes(separator.length),
      capacityBytes: pageCapacityBytes(PAGE_SIZE),
      cacheBytesMax,
    },
    root,
    keyCount,
  );
}

describe('PageTree checkpoints through TreePages: leaves encoded by difference', () => {
  it(`writes every leaf as a full encode would, through copies, splits, merges, snapshots, aborted plans and pages read back (seed ${SEED})`, async () => {
    const next = random(SEED);
    const blocks = new Map<number, Uint8Array>();
    const pages = new TreePages(memoryDevice(blocks), () => GEOMETRY);
    // A small cache: written pages are evicted and read back, so leaves get their basis both ways.
    const tree = treeOver(pages, undefined, 0, 256 * 1024);
    const model = new Map<string, IndexEntry>();
    const keys: string[] = [];
    let nextBlock = GEOMETRY.dataStartBlock;
    let sequence = 0;
    let durable: { root: { ref: PageRef; level: number } | undefined; keyCount: number } = { root: undefined, keyCount: 0 };
    let leavesWritten = 0;
    let leavesWithBasis = 0;

    const newKey = (): string => {
      const length = 1 + next(24);
      let key = '';
      for (let i = 0; i < length; i++) key += String.fromCharCode(next(4) === 0 ? next(256) : 0x61 + next(6));
      return key;
    };
    const newEntry = (): IndexEntry => {
      if (next(20) === 0) {
        return { isString: false, value: { kind: 'extents', length: 5000, crc: next(0x7fff_ffff), extents: [{ startBlock: 500_000 + next(1000), blockCount: 2 }] } };
      }
      return { isString: next(2) === 0, value: Uint8Array.from({ length: next(120) }, () => next(256)) };
    };

    const checkpoint = async (abort: boolean): Promise<void> => {
      sequence++;
      const plan = tree.beginCheckpoint();
      const assigned = new Map<TreeNode, PageRef>();
      for (const node of plan.dirtyNodes) {
        const block = nextBlock++;
        const content = plan.content(node, (child) => assigned.get(child));
        const reference = Buffer.alloc(PAGE_SIZE);
        const referenceCrc = pages.encode(content, block, sequence, reference);
        const page = Buffer.alloc(PAGE_SIZE);
        let crc: number;
        if (node.kind === 'leaf') {
          leavesWritten++;
          if (node.basis !== undefined) leavesWithBasis++;
          crc = pages.encodeLeaf(node, block, sequence, page);
        } else {
          crc = pages.encode(content, block, sequence, page);
        }
        assert.equal(crc, referenceCrc, `checkpoint ${sequence}: the crc of block ${block} (seed ${SEED})`);
        assert.ok(page.equals(reference), `checkpoint ${sequence}: block ${block} differs from a full encode (seed ${SEED})`);
        blocks.set(block, page);
        assigned.set(node, { block, crc });
        // Commits run while a checkpoint is written.
        if (next(8) === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      if (abort) {
        plan.abort();
        return;
      }
      const root = plan.rootRef((node) => assigned.get(node));
      plan.complete(assigned);
      durable = { root: root === undefined ? undefined : { ref: root, level: plan.level }, keyCount: plan.keyCount };
    };

    for (let batch = 0; batch < 400; batch++) {
      const sets = new Map<string, IndexEntry>();
      const deletes = new Set<string>();
      const size = 1 + next(40);
      for (let i = 0; i < size; i++) {
        const roll = next(10);
        if (roll < 5 || keys.length === 0) sets.set(newKey(), newEntry());
        else if (roll < 8) sets.set(keys[next(keys.length)]!, newEntry());
        else deletes.add(keys[next(keys.length)]!);
      }
      for (const key of sets.keys()) deletes.delete(key);
      const prepared = await tree.prepare(sets.keys(), deletes);
      for (const [key, entry] of sets) {
        if (!model.has(key)) keys.push(key);
        tree.set(key, entry);
        model.set(key, entry);
      }
      for (const key of deletes) {
        tree.delete(key);
        model.delete(key);
      }
      tree.release(prepared);
      keys.splice(0, keys.length, ...model.keys());
      if (next(10) === 0) tree.snapshot();
      if (next(6) === 0) await checkpoint(next(8) === 0);
    }
    await checkpoint(false);
    tree.checkInvariants();
    assert.ok(leavesWritten > 200, `${leavesWritten} leaves written`);
    // Only leaves copied from a page read from disk have a basis: the small cache makes it about half.
    assert.ok(leavesWithBasis > leavesWritten / 4, `${leavesWithBasis} of ${leavesWritten} leaves encoded by difference (seed ${SEED})`);

    // What the checkpoints wrote reads back as the model, through a tree that caches nothing.
    const reopened = treeOver(new TreePages(memoryDevice(blocks), () => GEOMETRY), durable.root, durable.keyCount, 0);
    assert.equal(reopened.size, model.size);
    for (const [key, entry] of model) {
      const found = await reopened.get(key);
      assert.ok(found !== undefined, `key ${JSON.stringify(key)} lost (seed ${SEED})`);
      assert.deepEqual(plain(found), plain(entry), `key ${JSON.stringify(key)} (seed ${SEED})`);
    }
  });
});
