// A PageTree over the real page codec (TreePages) on pages kept in memory,
// written by a checkpoint and opened again with an empty cache: what the
// tests of the tree's read paths (the doorkeeper, scans' lent leaves) start
// from. Reads count, wait a turn of the event loop, and can be damaged.
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import { PageTree, type PageRef, type TreeNode } from '../../engine/page_tree.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { TreePages, type TreeGeometry } from '../../engine/tree_pages.js';
import { branchChildBytes, leafEntryBytes, pageCapacityBytes, pageSizeFor } from '../../format/page.js';
import type { StoredValue } from '../../format/records.js';

export const BLOCK_SIZE = 4096;
export const PAGE_SIZE = pageSizeFor(BLOCK_SIZE);
export const GEOMETRY: TreeGeometry = { blockSize: BLOCK_SIZE, pageSize: PAGE_SIZE, storeTag: 0x5eed, dataStartBlock: 10, blockCount: 1 << 20 };
export const KEY_COUNT = 3000;

const storedValue = (entry: IndexEntry): StoredValue => (entry.value instanceof Uint8Array ? { kind: 'inline', bytes: entry.value } : entry.value);
export const keyOf = (i: number): string => `key-${String(i).padStart(5, '0')}`;
export const valueOf = (i: number): Uint8Array => Uint8Array.from({ length: 60 }, (_, j) => (i * 7 + j) & 0xff);

/** Pages by block; reads count and can be damaged. */
export class MemoryPages {
  readonly blocks = new Map<number, Uint8Array>();
  reads = 0;
  damagedBlock: number | undefined;
  /** Turns of the event loop a read of the block waits (one unless set). */
  readTurns: (block: number) => number = () => 1;

  device(): BlockDevice {
    return {
      ioAlignment: 512,
      read: async (position: number, buffer: Uint8Array): Promise<void> => {
        const block = position / BLOCK_SIZE;
        for (let turn = 0; turn < this.readTurns(block); turn++) await new Promise((resolve) => setImmediate(resolve));
        const page = this.blocks.get(block);
        assert.ok(page !== undefined, `block ${block} never written`);
        this.reads++;
        buffer.set(page);
        if (block === this.damagedBlock) buffer[100] ^= 0xff;
      },
    } as unknown as BlockDevice;
  }
}

export function newTree(pages: TreePages, root: { ref: PageRef; level: number } | undefined, keyCount: number, cacheBytesMax: number, recordCacheBytesMax?: number): PageTree {
  return new PageTree(
    {
      io: pages,
      entryBytes: (key, entry) => leafEntryBytes(key.length, storedValue(entry)),
      childBytes: (s) => branchChildBytes(s.length),
      capacityBytes: pageCapacityBytes(PAGE_SIZE),
      cacheBytesMax,
      recordCacheBytesMax,
    },
    root,
    keyCount,
  );
}

/**
 * `keyCount` keys written and checkpointed, then the tree opened again with
 * an empty cache of `cacheBytesMax`; with no records unless
 * `recordCacheBytesMax` says (its tests ask getCached() which pages are cached).
 */
export async function coldTree(cacheBytesMax = 1 << 20, keyCount = KEY_COUNT, recordCacheBytesMax = 0): Promise<{ memory: MemoryPages; tree: PageTree }> {
  const memory = new MemoryPages();
  const pages = new TreePages(memory.device(), () => GEOMETRY);
  const writer = newTree(pages, undefined, 0, 1 << 20);
  for (let start = 0; start < keyCount; start += 500) {
    const keys = Array.from({ length: 500 }, (_, i) => keyOf(start + i));
    const prepared = await writer.prepare(keys);
    for (const key of keys) writer.set(key, { isString: true, value: valueOf(Number(key.slice(4))) });
    writer.release(prepared);
  }
  const plan = writer.beginCheckpoint();
  const assigned = new Map<TreeNode, PageRef>();
  let block = GEOMETRY.dataStartBlock;
  for (const node of plan.dirtyNodes) {
    const page = Buffer.alloc(PAGE_SIZE);
    const at = block++;
    const crc = node.kind === 'leaf' ? pages.encodeLeaf(node, at, 1, page) : pages.encode(plan.content(node, (child) => assigned.get(child)), at, 1, page);
    memory.blocks.set(at, page);
    assigned.set(node, { block: at, crc });
  }
  const root = plan.rootRef((node) => assigned.get(node))!;
  plan.complete(assigned);
  const tree = newTree(new TreePages(memory.device(), () => GEOMETRY), { ref: root, level: writer.height - 1 }, keyCount, cacheBytesMax, recordCacheBytesMax);
  assert.ok(tree.height >= 2, 'a tree of leaves under branches');
  return { memory, tree };
}

