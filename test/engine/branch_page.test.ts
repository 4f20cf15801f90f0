// BranchPage holds a branch's children as its page's records. Against a
// model of the arrays a branch used to be (separators and children), after
// any sequence of the tree's edits (a child replaced by a node or a ref, a
// child replaced by split pieces, a copy edited apart from its original):
// every search agrees with the tree's string search, every separator and
// child reads back as the model's, and the page a checkpoint seals from the
// records is byte for byte the encoder's page of the model.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { BRANCH_RECORD_HEADER_BYTES, encodeBranchPageOfKeyStrings, encodeBranchPageOfRecords } from '../../format/page.js';
import { BranchPage } from '../../engine/branch_page.js';
import { newLeaf, upperBound, type Child, type PageRef, type TreeNode } from '../../engine/tree_node.js';

const PAGE_SIZE = 4096;
const STAMP = { address: 40, checkpointSequence: 7, storeTag: 0xb4a2_c401 };
/** Fixed so a failure reproduces; fast-check prints it on failure. */
const SEED = 0xb4a2_0001;
const RUNS = Number(process.env.RINGSTORE_BRANCH_PAGE_RUNS ?? 300);

/** Bytes where order bugs hide: the ends, the ASCII/latin1 boundary, and a few letters. */
const byteArb = fc.constantFrom(0x00, 0x01, 0x41, 0x61, 0x62, 0x7f, 0x80, 0xfe, 0xff);
const keyArb = fc.array(byteArb, { minLength: 1, maxLength: 10 }).map((bytes) => String.fromCharCode(...bytes));
/** Blocks up to 2^53 - 1 and any u32 CRC: the record's full ranges. */
const refArb: fc.Arbitrary<PageRef> = fc
  .record({ block: fc.oneof(fc.nat(1000), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(2 ** 32 + 5)), crc: fc.nat({ max: 0xffff_ffff }) })
  .map(({ block, crc }) => ({ block, crc }));

function nodeChild(id: number): TreeNode {
  const node = newLeaf(0, [], [], 0);
  // Told apart by identity; `bytes` marks which one it is in a failure.
  node.bytes = id;
  return node;
}

type Edit =
  | { kind: 'set'; at: number; child: PageRef | 'node' }
  | { kind: 'split'; at: number; pieces: (PageRef | 'node')[]; cuts: string[] }
  | { kind: 'copy' };

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), child: fc.oneof(refArb, fc.constant('node' as const)) }),
  fc.record({ kind: fc.constant('split' as const), at: fc.nat(), pieces: fc.array(fc.oneof(refArb, fc.constant('node' as const)), { minLength: 1, maxLength: 4 }), cuts: fc.uniqueArray(keyArb, { minLength: 3, maxLength: 3 }) }),
  fc.record({ kind: fc.constant('copy' as const) }),
);

interface Model {
  separators: string[];
  children: Child[];
}

function check(page: BranchPage<TreeNode>, model: Model, probes: readonly string[]): void {
  assert.equal(page.count, model.children.length);
  assert.deepEqual(page.separators(), model.separators);
  for (let index = 0; index < model.children.length; index++) {
    const child = model.children[index]!;
    const isNode = (child as TreeNode).kind !== undefined;
    if (isNode) assert.equal(page.nodeAt(index), child, `child ${index} is the node`);
    else {
      assert.equal(page.nodeAt(index), undefined);
      assert.deepEqual(page.childAt(index), child);
    }
  }
  assert.equal(page.hasNodes, model.children.some((child) => (child as TreeNode).kind !== undefined));
  for (const probe of [...probes, ...model.separators]) {
    assert.equal(page.childIndexFor(probe), upperBound(model.separators, probe), `childIndexFor(${JSON.stringify(probe)})`);
  }
  for (let index = 0; index < model.separators.length; index++) {
    for (const probe of probes) assert.equal(Math.sign(page.compareSeparatorWith(index, probe)), model.separators[index]! < probe ? -1 : model.separators[index]! > probe ? 1 : 0);
  }
}

/** The page a checkpoint seals of `page`, its node children given `refs[i]`, against the encoder's page of the model. */
function checkSealed(page: BranchPage<TreeNode>, model: Model, refOfNode: (node: TreeNode) => PageRef): void {
  if (model.children.length < 2) return;
  page.forEachNode((node, index) => page.writeRefOfNode(index, refOfNode(node)));
  const sealed = new Uint8Array(PAGE_SIZE);
  const expected = new Uint8Array(PAGE_SIZE);
  const refs = model.children.map((child) => ((child as TreeNode).kind !== undefined ? refOfNode(child as TreeNode) : (child as PageRef)));
  const expectedCrc = encodeBranchPageOfKeyStrings(expected, STAMP, 2, model.separators, refs);
  assert.equal(encodeBranchPageOfRecords(sealed, STAMP, 2, page.records, 0, page.recordBytes, page.count), expectedCrc);
  assert.deepEqual(sealed, expected);
}

describe('BranchPage', () => {
  it('agrees with the arrays it replaces, and seals the encoder’s page, after any edits', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.oneof(refArb, fc.constant('node' as const)), { minLength: 41, maxLength: 41 }),
        fc.array(editArb, { maxLength: 12 }),
        fc.array(keyArb, { maxLength: 8 }),
        (separatorSet, childSpecs, edits, probes) => {
          let nextNode = 1;
          const childOf = (spec: PageRef | 'node'): Child => (spec === 'node' ? nodeChild(nextNode++) : spec);
          const separators = [...separatorSet].sort();
          const model: Model = { separators, children: childSpecs.slice(0, separators.length + 1).map(childOf) };
          let page = BranchPage.ofChildren<TreeNode>(model.separators, model.children);
          check(page, model, probes);
          const copies: { page: BranchPage<TreeNode>; model: Model }[] = [];
          for (const edit of edits) {
            if (edit.kind === 'copy') {
              // The original must not change with the copy's edits.
              copies.push({ page, model: { separators: [...model.separators], children: [...model.children] } });
              page = page.copy();
            } else if (edit.kind === 'set') {
              const at = edit.at % model.children.length;
              const child = childOf(edit.child);
              page.setChild(at, child);
              model.children[at] = child;
            } else {
              const at = edit.at % model.children.length;
              // Cuts strictly inside the child's bounds, in order: what a split of the child gives.
              const low = at === 0 ? undefined : model.separators[at - 1];
              const high = at === model.separators.length ? undefined : model.separators[at];
              const cuts = edit.cuts.filter((cut) => (low === undefined || cut > low) && (high === undefined || cut < high)).sort();
              const pieces = edit.pieces.slice(0, cuts.length + 1).map(childOf);
              const used = cuts.slice(0, pieces.length - 1);
              page.replaceChild(at, pieces, used);
              model.children.splice(at, 1, ...pieces);
              model.separators.splice(at, 0, ...used);
            }
            check(page, model, probes);
          }
          for (const copy of copies) check(copy.page, copy.model, probes);
          checkSealed(page, model, (node) => ({ block: 5000 + node.bytes, crc: (node.bytes * 2654435761) >>> 0 }));
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('refuses to seal records whose separators are out of order, and leaves the target untouched', () => {
    const page = BranchPage.ofChildren(['b', 'c'], [{ block: 10, crc: 1 }, { block: 11, crc: 2 }, { block: 12, crc: 3 }]);
    // Separator 'c' made 'a': records of a branch whose keys no longer ascend.
    const records = page.records.slice();
    records[page.recordBytes - 1] = 0x61;
    const target = new Uint8Array(PAGE_SIZE).fill(0x5a);
    assert.throws(() => encodeBranchPageOfRecords(target, STAMP, 1, records, 0, page.recordBytes, 3), /not strictly ascending at child 2/);
    assert.ok(target.every((byte) => byte === 0x5a));
    assert.throws(() => encodeBranchPageOfRecords(target, STAMP, 1, page.records, 0, page.recordBytes, 2), /bytes after the 2 branch records/);
    // Child 1's block made 2^53 (the u64's byte 6 = 0x20): no block of a page.
    const huge = page.records.slice();
    huge[BRANCH_RECORD_HEADER_BYTES + 6] = 0x20;
    assert.throws(() => encodeBranchPageOfRecords(target, STAMP, 1, huge, 0, page.recordBytes, 3), /child 1 block is 2\^53 or more/);
    assert.ok(target.every((byte) => byte === 0x5a));
    assert.throws(() => encodeBranchPageOfRecords(target, STAMP, 1, page.records, 0, page.recordBytes, 1), /2 to 65535 children/);
  });

  it('refuses a separator that is not a key string before changing anything', () => {
    const page = BranchPage.ofChildren(['m'], [{ block: 10, crc: 1 }, { block: 11, crc: 2 }]);
    assert.throws(() => page.replaceChild(0, [{ block: 12, crc: 3 }, { block: 13, crc: 4 }], ['\u0100']), RangeError);
    assert.throws(() => page.setChild(1, { block: -1, crc: 0 }), RangeError);
    assert.deepEqual(page.separators(), ['m']);
    assert.deepEqual(page.children(), [{ block: 10, crc: 1 }, { block: 11, crc: 2 }]);
  });
});
