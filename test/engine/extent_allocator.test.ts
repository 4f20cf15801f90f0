// ExtentAllocator: the free space of the data region. Allocation is
// next-fit and contiguous when it can be, combines the largest free runs when
// space is fragmented, and never hands out a block twice; freeing merges
// neighbours; a used set that overlaps itself is corruption; a double free is
// a bug and throws.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import type { Extent } from '../../format/extent.js';
import { ExtentAllocator } from '../../engine/extent_allocator.js';
import { StoreCorruptError } from '../../engine/store_error.js';

/** Fixed so a failure reproduces; fast-check prints it on failure. */
const PROPERTY_SEED = Number(process.env.RINGSTORE_ALLOCATOR_SEED ?? 0x616c6c6f);

const DATA_START = 10;
const BLOCK_COUNT = 110; // 100 data blocks: [10, 110)

function emptyAllocator(): ExtentAllocator {
  return new ExtentAllocator(DATA_START, BLOCK_COUNT, []);
}

function blocks(extents: Extent[]): number {
  return extents.reduce((sum, extent) => sum + extent.blockCount, 0);
}

describe('ExtentAllocator constructor', () => {
  it('makes the whole data region one free extent when nothing is used', () => {
    const allocator = emptyAllocator();
    assert.deepEqual(allocator.freeExtents(), [{ startBlock: DATA_START, blockCount: BLOCK_COUNT - DATA_START }]);
    assert.equal(allocator.freeBlockCount, 100);
    assert.equal(allocator.freeExtentCount, 1);
  });

  it('leaves exactly the unreferenced blocks free, whatever the order of the used extents', () => {
    const allocator = new ExtentAllocator(DATA_START, BLOCK_COUNT, [
      { extent: { startBlock: 50, blockCount: 10 }, owner: 'key b' },
      { extent: { startBlock: 10, blockCount: 5 }, owner: 'key a' },
      { extent: { startBlock: 100, blockCount: 10 }, owner: 'the checkpoint' },
    ]);
    assert.deepEqual(allocator.freeExtents(), [
      { startBlock: 15, blockCount: 35 },
      { startBlock: 60, blockCount: 40 },
    ]);
    assert.equal(allocator.freeBlockCount, 75);
  });

  it('refuses two used extents that share a block with ERR_STORE_CORRUPT naming both owners', () => {
    assert.throws(
      () =>
        new ExtentAllocator(DATA_START, BLOCK_COUNT, [
          { extent: { startBlock: 20, blockCount: 10 }, owner: 'key "a"' },
          { extent: { startBlock: 29, blockCount: 3 }, owner: 'key "b"' },
        ]),
      (error: unknown) => {
        assert.ok(error instanceof StoreCorruptError, String(error));
        assert.equal(error.code, 'ERR_STORE_CORRUPT');
        assert.equal(error.structure, 'data');
        assert.equal(error.blockIndex, 29);
        assert.match(error.message, /key "a"/);
        assert.match(error.message, /key "b"/);
        return true;
      },
    );
  });

  it('refuses a used extent that starts inside the WAL or ends past the store', () => {
    for (const extent of [
      { startBlock: DATA_START - 1, blockCount: 2 },
      { startBlock: BLOCK_COUNT - 1, blockCount: 2 },
      { startBlock: 20, blockCount: 0 },
    ]) {
      assert.throws(
        () => new ExtentAllocator(DATA_START, BLOCK_COUNT, [{ extent, owner: 'key x' }]),
        (error: unknown) => error instanceof StoreCorruptError && error.structure === 'data' && /outside the data region/.test(error.message),
        JSON.stringify(extent),
      );
    }
  });
});

describe('ExtentAllocator#allocate()', () => {
  it('hands out consecutive allocations next to each other (next-fit)', () => {
    const allocator = emptyAllocator();
    assert.deepEqual(allocator.allocate(4, 1), [{ startBlock: 10, blockCount: 4 }]);
    assert.deepEqual(allocator.allocate(6, 1), [{ startBlock: 14, blockCount: 6 }]);
    assert.equal(allocator.freeBlockCount, 90);
  });

  it('moves on from the cursor instead of reusing space freed behind it, then wraps around', () => {
    const allocator = emptyAllocator();
    const first = allocator.allocate(10, 1)!;
    allocator.allocate(10, 1);
    allocator.free(first[0]);
    assert.deepEqual(allocator.allocate(10, 1), [{ startBlock: 30, blockCount: 10 }], 'next-fit continues after the cursor');
    allocator.allocate(70, 1);
    assert.deepEqual(allocator.allocate(10, 1), [{ startBlock: 10, blockCount: 10 }], 'wraps to the space freed at the start');
    assert.equal(allocator.freeBlockCount, 0);
  });

  it('returns undefined, taking nothing, when fewer blocks are free than asked for', () => {
    const allocator = emptyAllocator();
    allocator.allocate(95, 1);
    assert.equal(allocator.allocate(6, 64), undefined);
    assert.equal(allocator.freeBlockCount, 5);
    assert.deepEqual(allocator.allocate(5, 1), [{ startBlock: 105, blockCount: 5 }]);
    assert.equal(allocator.allocate(1, 1), undefined);
  });

  it('combines the largest free runs when no single run is long enough', () => {
    const allocator = emptyAllocator();
    // Free runs of 2, 8, 5 and 3 blocks, separated by used blocks.
    const all = allocator.allocate(100, 1)![0];
    assert.deepEqual(all, { startBlock: 10, blockCount: 100 });
    allocator.free({ startBlock: 10, blockCount: 2 });
    allocator.free({ startBlock: 20, blockCount: 8 });
    allocator.free({ startBlock: 40, blockCount: 5 });
    allocator.free({ startBlock: 60, blockCount: 3 });
    const extents = allocator.allocate(12, 64)!;
    assert.deepEqual(extents, [
      { startBlock: 20, blockCount: 8 },
      { startBlock: 40, blockCount: 4 },
    ]);
    assert.equal(allocator.freeBlockCount, 18 - 12);
  });

  it('returns undefined, taking nothing, when the free space needs more pieces than allowed', () => {
    const allocator = emptyAllocator();
    allocator.allocate(100, 1);
    for (let start = 10; start < 110; start += 10) allocator.free({ startBlock: start, blockCount: 5 });
    assert.equal(allocator.freeBlockCount, 50);
    assert.equal(allocator.allocate(20, 3), undefined, 'needs 4 runs of 5');
    assert.equal(allocator.freeBlockCount, 50);
    assert.equal(allocator.freeExtentCount, 10);
    assert.equal(blocks(allocator.allocate(20, 4)!), 20);
  });

  it('throws RangeError for a count that is not a positive integer', () => {
    const allocator = emptyAllocator();
    for (const count of [0, -1, 1.5, Number.NaN]) assert.throws(() => allocator.allocate(count, 1), RangeError, String(count));
  });
});

describe('ExtentAllocator#free()', () => {
  it('merges a freed extent with free neighbours on both sides', () => {
    const allocator = emptyAllocator();
    const [a] = allocator.allocate(10, 1)!;
    const [b] = allocator.allocate(10, 1)!;
    const [c] = allocator.allocate(10, 1)!;
    allocator.free(a);
    allocator.free(c);
    assert.equal(allocator.freeExtentCount, 2, 'a alone; c merged with the tail');
    allocator.free(b);
    assert.deepEqual(allocator.freeExtents(), [{ startBlock: 10, blockCount: 100 }]);
    assert.equal(allocator.freeBlockCount, 100);
  });

  it('throws on a double free, of the same extent or of one overlapping a free run', () => {
    const allocator = emptyAllocator();
    const [a] = allocator.allocate(10, 1)!;
    allocator.allocate(10, 1);
    allocator.free(a);
    assert.throws(() => allocator.free(a), /double free/);
    assert.throws(() => allocator.free({ startBlock: 15, blockCount: 2 }), /double free/, 'inside a free run');
    assert.throws(() => allocator.free({ startBlock: 25, blockCount: 10 }), /double free/, 'overlapping the tail');
    assert.equal(allocator.freeBlockCount, 90, 'the failed frees changed nothing');
  });

  it('throws when freeing blocks outside the data region', () => {
    const allocator = emptyAllocator();
    assert.throws(() => allocator.free({ startBlock: 5, blockCount: 2 }), /outside the data region/);
    assert.throws(() => allocator.free({ startBlock: 109, blockCount: 2 }), /outside the data region/);
  });
});

describe('ExtentAllocator#isFree()', () => {
  it('is true only when every block of the extent is free', () => {
    const allocator = emptyAllocator();
    const [a] = allocator.allocate(10, 1)!;
    assert.equal(allocator.isFree(a), false);
    assert.equal(allocator.isFree({ startBlock: 20, blockCount: 90 }), true);
    assert.equal(allocator.isFree({ startBlock: 19, blockCount: 2 }), false);
  });
});

describe('ExtentAllocator under random allocate/free sequences (fast-check)', () => {
  it(`never hands out a used block and keeps its counts exact (seed ${PROPERTY_SEED})`, () => {
    const operation = fc.oneof(
      fc.record({ kind: fc.constant('allocate' as const), blockCount: fc.integer({ min: 1, max: 30 }), extentsMax: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 200 }), (operations) => {
        const allocator = emptyAllocator();
        const used = new Uint8Array(BLOCK_COUNT); // the model: 1 = allocated
        const live: Extent[][] = [];
        for (const op of operations) {
          if (op.kind === 'allocate') {
            const freeBefore = allocator.freeBlockCount;
            const extents = allocator.allocate(op.blockCount, op.extentsMax);
            if (extents === undefined) {
              assert.equal(allocator.freeBlockCount, freeBefore, 'a failed allocation takes nothing');
              continue;
            }
            assert.ok(extents.length <= op.extentsMax);
            assert.equal(blocks(extents), op.blockCount);
            for (const extent of extents) {
              for (let block = extent.startBlock; block < extent.startBlock + extent.blockCount; block++) {
                assert.ok(block >= DATA_START && block < BLOCK_COUNT, `block ${block} outside the data region`);
                assert.equal(used[block], 0, `block ${block} handed out twice`);
                used[block] = 1;
              }
            }
            live.push(extents);
          } else if (live.length > 0) {
            const [extents] = live.splice(op.pick % live.length, 1);
            for (const extent of extents) {
              allocator.free(extent);
              used.fill(0, extent.startBlock, extent.startBlock + extent.blockCount);
            }
          }
          const modelFree = BLOCK_COUNT - DATA_START - used.reduce((sum, bit) => sum + bit, 0);
          assert.equal(allocator.freeBlockCount, modelFree);
          const free = allocator.freeExtents();
          for (let i = 1; i < free.length; i++) {
            assert.ok(free[i - 1].startBlock + free[i - 1].blockCount < free[i].startBlock, 'free runs must neither touch nor overlap');
          }
          // The by-size index against a sort of the runs.
          const sizes = free.map((run) => run.blockCount).sort((a, b) => b - a);
          for (const count of [1, 2, 4, 16]) {
            assert.equal(allocator.largestRunsBlockCount(count), blocks(sizes.slice(0, count).map((blockCount) => ({ startBlock: 0, blockCount }))));
          }
        }
      }),
      { seed: PROPERTY_SEED, numRuns: 200 },
    );
  });
});
