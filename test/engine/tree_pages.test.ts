// TreePages#read(): a leaf read from the device is a LeafPage holding the
// keys and entries it was encoded from, and its records where the page has them; a leaf's inline values are views into a copy
// of its used bytes that later reads never overwrite (values handed out
// outlive the page in the cache); and a damaged page is refused with the
// reason decodePage gives for the same bytes, as ERR_STORE_CORRUPT naming
// the page's block.
import assert from 'node:assert/strict';

import { crc32c } from '../../format/crc32c.js';
import { FormatError } from '../../format/format_error.js';
import { decodePage, type PageExpectation } from '../../format/page.js';
import type { LeafPage } from '../../engine/leaf_page.js';
import { PageInlineEntry } from '../../engine/page_entry.js';
import type { DecodedTreePage } from '../../engine/tree_node.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreCorruptError } from '../../engine/store_error.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { TreePages, type TreeGeometry } from '../../engine/tree_pages.js';
import { seededRandom } from './helpers.js';

const BLOCK_SIZE = 4096;
const STORE_TAG = 0x5eed_7a95;
const DATA_START_BLOCK = 8;
const BLOCK_COUNT = 256;
/** Fixed so a failure reproduces; printed on failure. */
const SEED = 0x7a6e_5001;

const geometry: TreeGeometry = { blockSize: BLOCK_SIZE, pageSize: BLOCK_SIZE, storeTag: STORE_TAG, dataStartBlock: DATA_START_BLOCK, blockCount: BLOCK_COUNT };

function newPages(): { device: SimulatedDevice; pages: TreePages } {
  const device = new SimulatedDevice({ sizeBytes: BLOCK_COUNT * BLOCK_SIZE });
  return { device, pages: new TreePages(device, () => geometry) };
}

/** A leaf of `count` keys whose inline values depend on `seed`, and one extent value. */
function leafContent(seed: number, count: number): { keys: string[]; entries: IndexEntry[] } {
  const keys: string[] = [];
  const entries: IndexEntry[] = [];
  for (let i = 0; i < count; i++) {
    keys.push(`key-${String(seed).padStart(4, '0')}-${String(i).padStart(3, '0')}`);
    if (i === 3) entries.push({ isString: true, value: { kind: 'extents', length: 5000, crc: 0x1234, extents: [{ startBlock: DATA_START_BLOCK + 100, blockCount: 2 }] } });
    else entries.push({ isString: i % 2 === 0, value: Uint8Array.from({ length: 20 + ((seed + i) % 60) }, (_, j) => (seed * 31 + i * 7 + j) & 0xff) });
  }
  return { keys, entries };
}

async function writeLeaf(device: SimulatedDevice, pages: TreePages, block: number, seed: number, count = 30): Promise<{ crc: number; content: ReturnType<typeof leafContent>; bytes: Uint8Array }> {
  const content = leafContent(seed, count);
  const bytes = new Uint8Array(BLOCK_SIZE);
  const crc = pages.encode({ kind: 'leaf', ...content }, block, 1, bytes);
  await device.write(block * BLOCK_SIZE, [bytes]);
  return { crc, content, bytes };
}

function expectation(block: number, crc: number, level: number): PageExpectation {
  return { address: block, storeTag: STORE_TAG, crc, level, dataStartBlock: DATA_START_BLOCK, blockCount: BLOCK_COUNT, blockSize: BLOCK_SIZE };
}

function leafPageOf(page: DecodedTreePage): LeafPage {
  if (page.kind !== 'leaf' || page.page === undefined) throw new Error('a leaf in page form');
  return page.page;
}

function plainEntry(entry: IndexEntry): { isString: boolean; value: unknown } {
  return { isString: entry.isString, value: entry.value instanceof Uint8Array ? [...entry.value] : entry.value };
}

describe('TreePages#read()', () => {
  it('gives back the keys and entries a leaf was encoded from, and its used bytes as the page has them', async () => {
    const { device, pages } = newPages();
    const { crc, content, bytes } = await writeLeaf(device, pages, 20, 1);
    const page = leafPageOf(await pages.read({ block: 20, crc }, 0));
    const { keys, entries } = page.materialize();
    assert.deepEqual(keys, content.keys);
    assert.deepEqual(entries.map(plainEntry), content.entries.map(plainEntry));
    const used = new DataView(bytes.buffer).getUint32(32, true);
    assert.deepEqual([...page.bytes], [...bytes.subarray(0, 48 + used)]);
    assert.equal(page.starts[0], 48);
    assert.equal(page.starts[page.count], 48 + used);
    assert.equal(page.recordBytes, used);
    for (let i = 0; i < page.count; i++) {
      assert.equal(page.keyAt(i), content.keys[i]);
      assert.deepEqual(plainEntry(page.entryAt(i)), plainEntry(content.entries[i]!));
    }
  });

  it('makes an inline value view on first use, the same view every time', async () => {
    const { device, pages } = newPages();
    const { crc } = await writeLeaf(device, pages, 20, 2);
    const entry = leafPageOf(await pages.read({ block: 20, crc }, 0)).entryAt(0);
    assert.ok(entry instanceof PageInlineEntry);
    assert.equal(entry.value, entry.value);
  });

  it('never overwrites the bytes of a leaf read earlier: values handed out stay intact after many more reads', async () => {
    const { device, pages } = newPages();
    const written = [];
    for (let i = 0; i < 40; i++) written.push(await writeLeaf(device, pages, DATA_START_BLOCK + i, 100 + i));
    const first = leafPageOf(await pages.read({ block: DATA_START_BLOCK, crc: written[0]!.crc }, 0)).materialize();
    const held = first.entries.map((entry) => entry.value);
    const expected = written[0]!.content.entries.map(plainEntry);
    // Read every page again and again, many at once, so that the aligned
    // buffers go round; the first page's values must not change.
    for (let round = 0; round < 5; round++) {
      await Promise.all(written.map(({ crc }, i) => pages.read({ block: DATA_START_BLOCK + i, crc }, 0)));
    }
    assert.deepEqual(
      held.map((value, i) => plainEntry({ isString: first.entries[i]!.isString, value })),
      expected,
    );
  });

  it('reads a branch as its records (BranchPage): separators as key strings, children as refs, and writes it back the same', async () => {
    const { device, pages } = newPages();
    const bytes = new Uint8Array(BLOCK_SIZE);
    const content = { kind: 'branch' as const, level: 1, separators: ['b', 'key-5', 'zz'], children: [0, 1, 2, 3].map((i) => ({ block: DATA_START_BLOCK + i, crc: 0x100 + i })) };
    const crc = pages.encode(content, 30, 1, bytes);
    await device.write(30 * BLOCK_SIZE, [bytes]);
    const read = await pages.read({ block: 30, crc }, 1);
    assert.ok(read.kind === 'branch' && read.page !== undefined);
    assert.equal(read.level, 1);
    assert.deepEqual(read.page.separators(), content.separators);
    assert.deepEqual(read.page.children(), content.children);
    const again = new Uint8Array(BLOCK_SIZE);
    assert.equal(pages.encodeBranch(read.page, 1, 30, 1, again), crc);
    assert.deepEqual(again, bytes);
  });

  it('refuses any damaged page with decodePage\'s reason, as ERR_STORE_CORRUPT naming its block (seeded damage)', async () => {
    const random = seededRandom(SEED);
    const { device, pages } = newPages();
    const leaf = await writeLeaf(device, pages, 40, 7, 25);
    const branchBytes = new Uint8Array(BLOCK_SIZE);
    const branchCrc = pages.encode({ kind: 'branch', level: 1, separators: ['m'], children: [{ block: 41, crc: 1 }, { block: 42, crc: 2 }] }, 50, 1, branchBytes);
    for (let trial = 0; trial < 300; trial++) {
      const isLeaf = trial % 3 !== 0;
      const original = isLeaf ? leaf.bytes : branchBytes;
      const block = isLeaf ? 40 : 50;
      const crc = isLeaf ? leaf.crc : branchCrc;
      const damaged = original.slice();
      // Bytes of the header and the records, or of the zeros after them.
      const where = trial % 2 === 0 ? Math.floor(random() * 160) : Math.floor(random() * BLOCK_SIZE);
      damaged[where] ^= 1 + Math.floor(random() * 255);
      // Half the time the damage comes with a valid checksum (a bug or a
      // lucky tear): the checks behind the CRC must refuse it too.
      const expected = expectation(block, crc, isLeaf ? 0 : 1);
      if (trial % 4 < 2 && where >= 8) {
        const sealed = crc32c(damaged.subarray(8));
        new DataView(damaged.buffer).setUint32(4, sealed, true);
        expected.crc = sealed;
      }
      let reason: string | undefined;
      try {
        decodePage(damaged, expected);
      } catch (error) {
        assert.ok(error instanceof FormatError);
        reason = error.reason;
      }
      await device.write(block * BLOCK_SIZE, [damaged]);
      const outcome = await pages.read({ block, crc: expected.crc }, expected.level).then(
        () => undefined,
        (error: unknown) => error,
      );
      if (reason === undefined) {
        assert.equal(outcome, undefined, `trial ${trial} (seed ${SEED}): decodePage accepts the page, read() must too`);
        continue;
      }
      assert.ok(outcome instanceof StoreCorruptError, `trial ${trial} (seed ${SEED}): expected ERR_STORE_CORRUPT, got ${String(outcome)}`);
      assert.equal(outcome.code, 'ERR_STORE_CORRUPT');
      assert.equal(outcome.structure, 'page');
      assert.equal(outcome.blockIndex, block);
      assert.equal(outcome.reason, reason, `trial ${trial} (seed ${SEED}): decodePage's reason`);
    }
  });
});

describe('TreePages#withLeaf()', () => {
  it('hands a checked leaf to its callback and holds the buffer back: read() of the same page then reads nothing', async () => {
    const { device, pages } = newPages();
    const { crc, content } = await writeLeaf(device, pages, 20, 3);
    const keys = await pages.withLeaf({ block: 20, crc }, (page) => leafPageOf(page).materialize().keys);
    assert.deepEqual(keys, content.keys);
    const reads = pages.reads;
    const again = leafPageOf(await pages.read({ block: 20, crc }, 0));
    assert.equal(pages.reads, reads, 'read() went to the device');
    assert.deepEqual(again.materialize().entries.map(plainEntry), content.entries.map(plainEntry));
    await pages.read({ block: 20, crc }, 0);
    assert.equal(pages.reads, reads + 1, 'a held buffer serves one read() only');
  });

  it('never serves a held leaf for another page of its block (a block reused since): it reads that page', async () => {
    const { device, pages } = newPages();
    const first = await writeLeaf(device, pages, 20, 4);
    await pages.withLeaf({ block: 20, crc: first.crc }, () => undefined);
    const second = await writeLeaf(device, pages, 20, 5);
    assert.notEqual(second.crc, first.crc);
    const page = leafPageOf(await pages.read({ block: 20, crc: second.crc }, 0));
    assert.deepEqual(page.materialize().keys, second.content.keys);
  });

  it('holds back no buffer of a leaf that fails its checks, and rejects with ERR_STORE_CORRUPT', async () => {
    const { device, pages } = newPages();
    const { crc } = await writeLeaf(device, pages, 20, 6);
    await assert.rejects(pages.withLeaf({ block: 20, crc: crc ^ 1 }, () => undefined), (error: unknown) => error instanceof StoreCorruptError && error.blockIndex === 20);
    const reads = pages.reads;
    await pages.read({ block: 20, crc }, 0);
    assert.equal(pages.reads, reads + 1, 'a refused page was held back');
  });
});


describe('TreePages#lendLeaf()', () => {
  it('lends a checked leaf in its pooled buffer, which the next read reuses once it is given back (once only)', async () => {
    const { device, pages } = newPages();
    const first = await writeLeaf(device, pages, 20, 7);
    const second = await writeLeaf(device, pages, 21, 8);
    const lent = await pages.lendLeaf({ block: 20, crc: first.crc });
    const page = leafPageOf(lent.page);
    assert.deepEqual(page.materialize().keys, first.content.keys);
    const bytes = page.bytes;
    lent.giveBack();
    assert.throws(() => lent.giveBack(), /given back twice/);
    // The pool hands the buffer to the next read: the lent page's bytes are the next page's now.
    const next = await pages.lendLeaf({ block: 21, crc: second.crc });
    const nextBytes = leafPageOf(next.page).bytes;
    assert.ok(nextBytes.buffer === bytes.buffer && nextBytes.byteOffset === bytes.byteOffset, 'the buffer given back was not reused');
    next.giveBack();
  });

  it('keep() gives a copy of the page of its own, which later reads leave alone', async () => {
    const { device, pages } = newPages();
    const first = await writeLeaf(device, pages, 20, 9);
    const second = await writeLeaf(device, pages, 21, 10);
    const kept = leafPageOf((await pages.lendLeaf({ block: 20, crc: first.crc })).keep());
    const next = await pages.lendLeaf({ block: 21, crc: second.crc });
    assert.deepEqual(kept.materialize().entries.map(plainEntry), first.content.entries.map(plainEntry));
    assert.notEqual(leafPageOf(next.page).bytes.buffer, kept.bytes.buffer);
    next.giveBack();
  });

  it('rejects a leaf that fails its checks with ERR_STORE_CORRUPT, and gives its buffer back to the pool', async () => {
    const { device, pages } = newPages();
    const { crc } = await writeLeaf(device, pages, 20, 11);
    const first = await pages.lendLeaf({ block: 20, crc });
    const buffer = leafPageOf(first.page).bytes;
    first.giveBack();
    // The failed read takes the same buffer (the pool's last given back), and must give it back.
    await assert.rejects(pages.lendLeaf({ block: 20, crc: crc ^ 1 }), (error: unknown) => error instanceof StoreCorruptError && error.blockIndex === 20);
    const next = leafPageOf((await pages.lendLeaf({ block: 20, crc })).page).bytes;
    assert.ok(next.buffer === buffer.buffer && next.byteOffset === buffer.byteOffset, 'the refused read kept its buffer');
  });
});
