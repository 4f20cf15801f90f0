// The tree's checks of a leaf read in page form (PageTree #checkedPageLeaf,
// over real pages: the fake store of page_tree.test.ts gives arrays) refuse
// what the array path refuses: keys outside the bounds the parent's
// separators give, keys over keySizeMax; and accept a key at its low bound.
// (Written by a reviewer of the page-form change.)
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import { PageTree, type PageRef } from '../../engine/page_tree.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { StoreCorruptError } from '../../engine/store_error.js';
import { TreePages, type TreeGeometry } from '../../engine/tree_pages.js';
import { branchChildBytes, encodeBranchPageOfKeyStrings, encodeLeafPageOfKeyStrings, leafEntryBytes, pageCapacityBytes, pageSizeFor } from '../../format/page.js';

const BLOCK_SIZE = 4096;
const PAGE_SIZE = pageSizeFor(BLOCK_SIZE);
const GEOMETRY: TreeGeometry = { blockSize: BLOCK_SIZE, pageSize: PAGE_SIZE, storeTag: 0x5eed, dataStartBlock: 10, blockCount: 1 << 20 };

function setup(keySizeMax?: number) {
  const blocks = new Map<number, Uint8Array>();
  const device = { ioAlignment: 512, async read(position: number, buffer: Uint8Array) { buffer.set(blocks.get(position / BLOCK_SIZE)!); } } as unknown as BlockDevice;
  const pages = new TreePages(device, () => GEOMETRY);
  const leaf = (block: number, keys: string[]): PageRef => {
    const page = Buffer.alloc(PAGE_SIZE);
    const entries: IndexEntry[] = keys.map((_, i) => ({ isString: true, value: Uint8Array.of(i) }));
    const crc = encodeLeafPageOfKeyStrings(page, { address: block, checkpointSequence: 1, storeTag: GEOMETRY.storeTag }, keys, entries);
    blocks.set(block, page);
    return { block, crc };
  };
  const branch = (block: number, separators: string[], children: PageRef[], level = 1): PageRef => {
    const page = Buffer.alloc(PAGE_SIZE);
    const crc = encodeBranchPageOfKeyStrings(page, { address: block, checkpointSequence: 1, storeTag: GEOMETRY.storeTag }, level, separators, children);
    blocks.set(block, page);
    return { block, crc };
  };
  const tree = (root: PageRef, level: number, keyCount: number) =>
    new PageTree(
      {
        io: pages,
        entryBytes: (key, entry) => leafEntryBytes(key.length, { kind: 'inline', bytes: entry.value as Uint8Array }),
        childBytes: (s) => branchChildBytes(s.length),
        capacityBytes: pageCapacityBytes(PAGE_SIZE),
        cacheBytesMax: 1 << 20,
        ...(keySizeMax === undefined ? {} : { keySizeMax }),
      },
      { ref: root, level },
      keyCount,
    );
  return { leaf, branch, tree };
}

describe('PageTree: a leaf read in page form is checked against the tree', () => {
  it('refuses a leaf with a key below its parent\'s separator', async () => {
    const { leaf, branch, tree } = setup();
    const root = branch(30, ['m'], [leaf(20, ['a', 'b']), leaf(21, ['l', 'n'])]);
    await assert.rejects(tree(root, 1, 4).get('n'), (e: unknown) => e instanceof StoreCorruptError && /a key below the bound/.test((e as Error).message));
  });
  it('refuses a leaf with a key at its parent\'s separator on the left', async () => {
    const { leaf, branch, tree } = setup();
    const root = branch(30, ['m'], [leaf(20, ['a', 'm']), leaf(21, ['n'])]);
    await assert.rejects(tree(root, 1, 3).get('a'), (e: unknown) => e instanceof StoreCorruptError && /at or above the bound/.test((e as Error).message));
  });
  it('accepts keys equal to the low bound and prefixes of the high bound', async () => {
    const { leaf, branch, tree } = setup();
    const root = branch(30, ['m\x80'], [leaf(20, ['a', 'm', 'm\x7f\xff']), leaf(21, ['m\x80', 'm\x80\x00', '\xff'])]);
    const t = tree(root, 1, 6);
    assert.deepEqual([...((await t.get('m\x7f\xff'))!.value as Uint8Array)], [2]);
    assert.deepEqual([...((await t.get('m\x80'))!.value as Uint8Array)], [0]);
    assert.equal(await t.get('m\x80\x01'), undefined);
    t.checkInvariants();
  });
  it('refuses a leaf with a key over keySizeMax', async () => {
    const { leaf, tree } = setup(8);
    const root = leaf(20, ['a', 'b'.repeat(9)]);
    await assert.rejects(tree(root, 0, 2).get('a'), (e: unknown) => e instanceof StoreCorruptError && /is not a key/.test((e as Error).message));
  });
});

describe('PageTree: a branch read in page form is checked against the tree', () => {
  const isCorrupt = (pattern: RegExp, block: number) => (e: unknown) => e instanceof StoreCorruptError && e.blockIndex === block && pattern.test((e as Error).message);
  it("refuses a branch with a separator below its parent's separator", async () => {
    const { leaf, branch, tree } = setup();
    const left = branch(31, ['c'], [leaf(20, ['a']), leaf(21, ['c'])]);
    // Right of 'm', but it separates at 'k': a page from elsewhere, or a parent that lies.
    const right = branch(32, ['k'], [leaf(22, ['m']), leaf(23, ['n'])]);
    const root = branch(30, ['m'], [left, right], 2);
    await assert.rejects(tree(root, 2, 4).get('n'), isCorrupt(/a key below the bound/, 32));
  });
  it("refuses a branch with a separator at its parent's separator on the right", async () => {
    const { leaf, branch, tree } = setup();
    const left = branch(31, ['m'], [leaf(20, ['a']), leaf(21, ['l'])]);
    const right = branch(32, ['p'], [leaf(22, ['m']), leaf(23, ['q'])]);
    const root = branch(30, ['m'], [left, right], 2);
    await assert.rejects(tree(root, 2, 4).get('a'), isCorrupt(/at or above the bound/, 31));
  });
  it('accepts a separator equal to the low bound, finds every key, and keeps the tree valid', async () => {
    const { leaf, branch, tree } = setup();
    const left = branch(31, ['c'], [leaf(20, ['a', 'b']), leaf(21, ['c', 'd'])]);
    const right = branch(32, ['m', 'p'], [leaf(22, ['k']), leaf(23, ['m', 'n']), leaf(24, ['p', 'z'])]);
    const root = branch(30, ['k'], [left, right], 2);
    const t = tree(root, 2, 9);
    for (const key of ['a', 'b', 'c', 'd', 'k', 'm', 'n', 'p', 'z']) assert.ok((await t.get(key)) !== undefined, key);
    assert.equal(await t.get('o'), undefined);
    t.checkInvariants();
  });
  it('refuses a branch with a separator over keySizeMax', async () => {
    const { leaf, branch, tree } = setup(8);
    const root = branch(30, ['b'.repeat(9)], [leaf(20, ['a']), leaf(21, ['b'.repeat(8) + 'c'])]);
    await assert.rejects(tree(root, 1, 2).get('a'), isCorrupt(/is not a key/, 30));
  });
});

describe('PageTree: a page is named by one parent (found by a review: a range gave a leaf named twice twice, out of order)', () => {
  const isCorrupt = (pattern: RegExp, block: number | undefined) => (e: unknown) => e instanceof StoreCorruptError && e.blockIndex === block && pattern.test((e as Error).message);
  const keysOf = async (t: PageTree, reverse = false): Promise<string[]> => {
    const keys: string[] = [];
    for await (const [key] of t.entries(t.snapshot(), { reverse })) keys.push(key);
    return keys;
  };

  it('refuses a branch two of whose children are one page', async () => {
    const { leaf, branch, tree } = setup();
    const shared = leaf(20, ['a', 'b']);
    const root = branch(30, ['m'], [shared, shared]);
    await assert.rejects(keysOf(tree(root, 1, 4)), isCorrupt(/two children are at block 20/, 30));
    await assert.rejects(tree(root, 1, 4).get('a'), isCorrupt(/two children are at block 20/, 30));
  });

  it('refuses a branch that names itself as a child', async () => {
    const { leaf, branch, tree } = setup();
    const root = branch(30, ['m'], [leaf(20, ['a']), { block: 30, crc: 0 }]);
    await assert.rejects(tree(root, 1, 2).get('a'), isCorrupt(/child 1 at block 30 is this page/, 30));
  });

  it('stops a range, either way, at a cached leaf two branches name, whose keys break the second one\'s bounds', async () => {
    const { leaf, branch, tree } = setup();
    const x = leaf(20, ['a', 'b']);
    const left = branch(31, ['c'], [x, leaf(21, ['c', 'd'])]);
    // Right of 'k', its second child is the left branch's first leaf.
    const right = branch(32, ['p'], [leaf(22, ['k', 'l']), x]);
    const root = branch(30, ['k'], [left, right], 2);
    const t = tree(root, 2, 8);
    // The leaf is read (and cached) under its own parent first, in both directions.
    assert.ok((await t.get('a')) !== undefined);
    await assert.rejects(keysOf(t), isCorrupt(/keys out of order across leaves/, 20));
    await assert.rejects(keysOf(t, true), isCorrupt(/keys out of order across leaves/, 22));
  });
});
