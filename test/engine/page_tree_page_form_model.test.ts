// A PageTree over the real codec (TreePages), with a cache so small that
// nearly every leaf is read back in page form, against a model: gets,
// ranges (both directions, inclusive/exclusive bounds that are prefixes of
// keys, bytes >= 0x80) over snapshots held across writes and checkpoints,
// and the tree's invariants. The seed is fixed (RINGSTORE_PAGE_FORM_SEED to
// try others). (Written by a reviewer of the page-form change.)
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import { PageTree, type PageRef, type TreeNode, type TreeSnapshot } from '../../engine/page_tree.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { TreePages, type TreeGeometry } from '../../engine/tree_pages.js';
import { branchChildBytes, leafEntryBytes, pageCapacityBytes, pageSizeFor } from '../../format/page.js';
import type { StoredValue } from '../../format/records.js';

const BLOCK_SIZE = 4096;
const PAGE_SIZE = pageSizeFor(BLOCK_SIZE);
const GEOMETRY: TreeGeometry = { blockSize: BLOCK_SIZE, pageSize: PAGE_SIZE, storeTag: 0x5eed, dataStartBlock: 10, blockCount: 1 << 20 };
const SEED = Number(process.env.RINGSTORE_PAGE_FORM_SEED ?? 0x2026_1203);

function random(seed: number): (below: number) => number {
  let state = seed >>> 0 || 1;
  return (below) => {
    state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0;
    return state % below;
  };
}
const storedValue = (entry: IndexEntry): StoredValue => (entry.value instanceof Uint8Array ? { kind: 'inline', bytes: entry.value } : entry.value);
const plain = (entry: IndexEntry | undefined): unknown => (entry === undefined ? undefined : { isString: entry.isString, value: entry.value instanceof Uint8Array ? [...entry.value] : entry.value });

function memoryDevice(blocks: Map<number, Uint8Array>): BlockDevice {
  return {
    ioAlignment: 512,
    async read(position: number, buffer: Uint8Array): Promise<void> {
      await new Promise((resolve) => setImmediate(resolve));
      const page = blocks.get(position / BLOCK_SIZE);
      assert.ok(page !== undefined, `block ${position / BLOCK_SIZE} never written`);
      buffer.set(page);
    },
  } as unknown as BlockDevice;
}

describe('PageTree with leaves in page form, against a model', () => {
  it(`gets, ranges and invariants agree with a model (seed ${SEED})`, async () => {
    const next = random(SEED);
    const blocks = new Map<number, Uint8Array>();
    const pages = new TreePages(memoryDevice(blocks), () => GEOMETRY);
    const tree = new PageTree(
      { io: pages, entryBytes: (key, entry) => leafEntryBytes(key.length, storedValue(entry)), childBytes: (s) => branchChildBytes(s.length), capacityBytes: pageCapacityBytes(PAGE_SIZE), cacheBytesMax: 16 * 1024 },
      undefined,
      0,
    );
    let model = new Map<string, IndexEntry>();
    let nextBlock = GEOMETRY.dataStartBlock;
    let sequence = 0;
    const alphabet = [0x00, 0x01, 0x61, 0x62, 0x7f, 0x80, 0x81, 0xfe, 0xff];
    const newKey = (): string => {
      const length = 1 + next(10);
      let key = '';
      for (let i = 0; i < length; i++) key += String.fromCharCode(alphabet[next(alphabet.length)]!);
      return key;
    };
    const newEntry = (): IndexEntry => {
      if (next(6) === 0) return { isString: next(2) === 0, value: { kind: 'extents', length: 5000, crc: next(1000), extents: [{ startBlock: 500_000 + next(1000), blockCount: 2 }], ...(next(2) === 0 ? { raw: true as const } : {}) } };
      return { isString: next(2) === 0, value: Uint8Array.from({ length: next(3) === 0 ? 0 : next(80) }, () => next(256)) };
    };
    const checkpoint = async (): Promise<void> => {
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
      plan.complete(assigned);
    };
    const modelRange = (m: Map<string, IndexEntry>, o: { low?: string; high?: string; lowInclusive?: boolean; highInclusive?: boolean; reverse?: boolean }) => {
      const keys = [...m.keys()].sort().filter((k) => {
        if (o.low !== undefined && (k < o.low || (k === o.low && o.lowInclusive === false))) return false;
        if (o.high !== undefined && (k > o.high || (k === o.high && o.highInclusive === false))) return false;
        return true;
      });
      if (o.reverse) keys.reverse();
      return keys.map((k) => [k, plain(m.get(k))]);
    };
    const probe = (): string => {
      const keys = [...model.keys()];
      if (keys.length > 0 && next(2) === 0) {
        const key = keys[next(keys.length)]!;
        const roll = next(4);
        return roll === 0 ? key : roll === 1 ? key.slice(0, Math.max(1, key.length - 1)) : roll === 2 ? `${key}\x00` : `${key}\xff`;
      }
      return newKey();
    };
    const held: { snapshot: TreeSnapshot; model: Map<string, IndexEntry>; iterator: AsyncIterator<[string, IndexEntry]>; expected: unknown[]; at: number }[] = [];
    for (let batch = 0; batch < 300; batch++) {
      const sets = new Map<string, IndexEntry>();
      const deletes = new Set<string>();
      const keys = [...model.keys()];
      for (let i = 1 + next(30); i > 0; i--) {
        const roll = next(10);
        if (roll < 5 || keys.length === 0) sets.set(newKey(), newEntry());
        else if (roll < 7) sets.set(keys[next(keys.length)]!, newEntry());
        else deletes.add(keys[next(keys.length)]!);
      }
      for (const key of sets.keys()) deletes.delete(key);
      const prepared = await tree.prepare(sets.keys(), deletes);
      const nextModel = new Map(model);
      for (const [key, entry] of sets) { tree.set(key, entry); nextModel.set(key, entry); }
      for (const key of deletes) { tree.delete(key); nextModel.delete(key); }
      tree.release(prepared);
      model = nextModel;
      if (next(3) === 0) await checkpoint();
      tree.checkInvariants();
      // Point reads.
      for (let i = 0; i < 10; i++) {
        const key = probe();
        assert.deepEqual(plain(await tree.get(key)), plain(model.get(key)), `get ${JSON.stringify(key)} batch ${batch}`);
      }
      // A range over a snapshot, consumed a little each batch while writes go on.
      if (held.length < 4 && next(2) === 0) {
        const a = probe();
        const b = probe();
        const o = { low: next(4) === 0 ? undefined : a < b ? a : b, high: next(4) === 0 ? undefined : a < b ? b : a, lowInclusive: next(2) === 0, highInclusive: next(2) === 0, reverse: next(2) === 0 };
        const snapshot = tree.snapshot();
        held.push({ snapshot, model, iterator: tree.entries(snapshot, o)[Symbol.asyncIterator](), expected: modelRange(model, o), at: 0 });
      }
      for (let h = held.length - 1; h >= 0; h--) {
        const it = held[h]!;
        for (let step = next(60); step > 0; step--) {
          const result = await it.iterator.next();
          if (result.done) {
            assert.equal(it.at, it.expected.length, `range ended early at ${it.at} of ${it.expected.length}, batch ${batch}`);
            held.splice(h, 1);
            break;
          }
          assert.deepEqual([result.value[0], plain(result.value[1])], it.expected[it.at], `range item ${it.at}, batch ${batch}`);
          it.at++;
        }
      }
    }
    await checkpoint();
    tree.checkInvariants();
    // Device reads: a leaf a lookup read lately is decoded again from the
    // buffer TreePages held back, without one (452 reads at this seed).
    assert.ok(pages.reads > 400, `${pages.reads} pages read`);
  });
});
