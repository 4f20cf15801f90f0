// Leaves edited in their own copy of their page (engine/leaf_page.ts): a
// clean leaf written from its owned page stays in page form in the page
// cache (and so keeps the memory the cache counts for it) when a range
// over a snapshot, or the integrity check's walk, reads it by position. An
// earlier form (a page with a list of changes beside it) turned into
// arrays in place there, with a basis holding a second copy of its
// records, behind the cache's budget (found by a reviewer of that form).
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import { PageTree, type PageRef, type TreeNode } from '../../engine/page_tree.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { nodeMemoryBytes } from '../../engine/tree_node.js';
import { TreePages, type TreeGeometry } from '../../engine/tree_pages.js';
import { branchChildBytes, leafEntryBytes, pageCapacityBytes, pageSizeFor } from '../../format/page.js';
import type { StoredValue } from '../../format/records.js';

const BLOCK_SIZE = 4096;
const PAGE_SIZE = pageSizeFor(BLOCK_SIZE);
const GEOMETRY: TreeGeometry = { blockSize: BLOCK_SIZE, pageSize: PAGE_SIZE, storeTag: 0x5eed, dataStartBlock: 10, blockCount: 1 << 20 };
const storedValue = (entry: IndexEntry): StoredValue => (entry.value instanceof Uint8Array ? { kind: 'inline', bytes: entry.value } : entry.value);

function memoryDevice(blocks: Map<number, Uint8Array>): BlockDevice {
  return {
    ioAlignment: 512,
    async read(position: number, buffer: Uint8Array): Promise<void> {
      const page = blocks.get(position / BLOCK_SIZE);
      assert.ok(page !== undefined, `block ${position / BLOCK_SIZE} never written`);
      buffer.set(page);
    },
  } as unknown as BlockDevice;
}

describe('PageTree leaves edited in their own page', () => {
  it('a range over a snapshot does not change the memory of a cached clean leaf behind the page cache', async () => {
    const blocks = new Map<number, Uint8Array>();
    const pages = new TreePages(memoryDevice(blocks), () => GEOMETRY);
    const options = {
      io: pages,
      entryBytes: (key: string, entry: IndexEntry) => leafEntryBytes(key.length, storedValue(entry)),
      childBytes: (s: string) => branchChildBytes(s.length),
      capacityBytes: pageCapacityBytes(PAGE_SIZE),
      cacheBytesMax: 64 << 20,
    };
    let nextBlock = GEOMETRY.dataStartBlock;
    let sequence = 0;
    const checkpoint = (tree: PageTree): PageRef | undefined => {
      sequence++;
      const plan = tree.beginCheckpoint();
      const assigned = new Map<TreeNode, PageRef>();
      for (const node of plan.dirtyNodes) {
        const block = nextBlock++;
        const page = Buffer.alloc(PAGE_SIZE);
        const crc = node.kind === 'leaf' ? pages.encodeLeaf(node, block, sequence, page) : pages.encode(plan.content(node, (c) => assigned.get(c)), block, sequence, page);
        blocks.set(block, page);
        assigned.set(node, { block, crc });
      }
      const root = plan.rootRef((n) => assigned.get(n));
      plan.complete(assigned);
      return root;
    };
    const key = (i: number): string => `key${String(i).padStart(6, '0')}`;
    const value = (i: number): IndexEntry => ({ isString: false, value: Uint8Array.from({ length: 100 }, (_, j) => (i + j) & 0xff) });

    // A tree on disk.
    const first = new PageTree(options, undefined, 0);
    for (let i = 0; i < 400; i++) first.set(key(i), value(i));
    const level = first.height - 1;
    const rootRef = checkpoint(first)!;

    // Reopened: its leaves are read in page form; one write makes a leaf
    // over an owned copy of its page, which the checkpoint leaves clean in
    // the cache.
    const tree = new PageTree(options, { ref: rootRef, level }, 400);
    const prepared = await tree.prepare([key(123)], []);
    tree.set(key(123), value(9999));
    tree.release(prepared);
    checkpoint(tree);
    tree.checkInvariants();

    const cachedLeaves = async (): Promise<TreeNode[]> => {
      const found: TreeNode[] = [];
      const snapshot = tree.snapshot();
      await tree.walk(snapshot, (node, ref) => {
        if (ref !== undefined && node.kind === 'leaf') found.push(node as TreeNode);
      });
      return found;
    };
    const before = await cachedLeaves();
    const edited = before.filter((node) => node.kind === 'leaf' && node.page?.owned === true);
    assert.equal(edited.length, 1, 'one clean leaf over an owned page');
    const leaf = edited[0]!;
    const accounted = tree.cacheStats().pageCacheBytes;
    assert.equal(leaf.memoryBytes, nodeMemoryBytes(leaf), 'memoryBytes as inserted');

    // A range over a snapshot reads the leaf by position.
    const snapshot = tree.snapshot();
    let count = 0;
    for await (const _ of tree.entries(snapshot)) count++;
    assert.equal(count, 400);

    // The cache still counts the same bytes...
    assert.equal(tree.cacheStats().pageCacheBytes, accounted);
    // ...but the leaf changed form behind it: arrays, and a basis kept on a clean node.
    assert.equal(leaf.kind, 'leaf');
    if (leaf.kind !== 'leaf') return;
    const now = nodeMemoryBytes(leaf);
    assert.ok(
      leaf.page !== undefined && leaf.basis === undefined && now === leaf.memoryBytes,
      `a range changed a cached clean leaf into arrays behind the page cache: form ${leaf.page !== undefined ? 'page' : 'arrays'}, ` +
        `basis ${leaf.basis !== undefined ? `kept (${leaf.basis.keys.length} more keys and entries)` : 'none'}, ` +
        `cache counts ${leaf.memoryBytes} bytes for it, nodeMemoryBytes now ${now} (not counting the basis)`,
    );
  });
});
