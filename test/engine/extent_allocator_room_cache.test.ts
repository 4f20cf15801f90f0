// ExtentAllocator#largestRunsHold keeps the runs its last search found and
// answers from them while they hold enough: it must never say "yes" when the
// exact answer (largestRunsBlockCount) is "no". The model test asks it with a
// count that changes from one question to the next (a fresh search most
// times); here every question has the same count, after every kind of
// change, so the cached runs live through long sequences of allocations,
// frees, takeIfFree, takeFreeParts and growth.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import type { Extent } from '../../format/extent.js';
import { ExtentAllocator } from '../../engine/extent_allocator.js';

const PROPERTY_SEED = Number(process.env.RINGSTORE_ALLOCATOR_SEED ?? 0x726f6f6d);
const RUNS = Number(process.env.RINGSTORE_ALLOCATOR_RUNS ?? 120);
/** As Space asks it: FREE_SET_EXTENTS_MAX. */
const ROOM_RUNS = 8;

const operation = fc.oneof(
  fc.record({ kind: fc.constant('allocate' as const), blockCount: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 600 })), extentsMax: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('freeLive' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('freeLivePart' as const), pick: fc.nat(), skip: fc.nat({ max: 10 }) }),
  fc.record({ kind: fc.constantFrom('takeIfFree' as const, 'takeFreeParts' as const), start: fc.nat({ max: 6000 }), count: fc.integer({ min: 1, max: 1500 }) }),
  fc.record({ kind: fc.constant('grow' as const), by: fc.integer({ min: 1, max: 2000 }) }),
  fc.record({ kind: fc.constant('room' as const), blockCount: fc.integer({ min: 0, max: 6000 }) }),
);

describe('ExtentAllocator#largestRunsHold() with one count (fast-check)', () => {
  it(`never holds more than the exact largest runs do, across every change (seed ${PROPERTY_SEED})`, () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.array(operation, { minLength: 20, maxLength: 200, size: 'max' }), (dataBlocks, operations) => {
        const dataStart = 3;
        const allocator = ExtentAllocator.fromFreeExtents(dataStart, dataStart + dataBlocks, [{ startBlock: dataStart, blockCount: dataBlocks }]);
        const live: Extent[] = [];
        for (const [step, op] of operations.entries()) {
          switch (op.kind) {
            case 'allocate': {
              const got = allocator.allocate(op.blockCount, op.extentsMax);
              if (got !== undefined) live.push(...got);
              break;
            }
            case 'freeLive':
              if (live.length > 0) allocator.free(live.splice(op.pick % live.length, 1)[0]);
              break;
            case 'freeLivePart': {
              // Free the tail of a live extent, keep its head: runs merge with neighbours.
              if (live.length === 0) break;
              const index = op.pick % live.length;
              const extent = live[index];
              const kept = Math.min(op.skip, extent.blockCount - 1);
              if (kept === 0) {
                allocator.free(extent);
                live.splice(index, 1);
              } else {
                allocator.free({ startBlock: extent.startBlock + kept, blockCount: extent.blockCount - kept });
                live[index] = { startBlock: extent.startBlock, blockCount: kept };
              }
              break;
            }
            case 'takeIfFree': {
              const extent = { startBlock: dataStart + op.start, blockCount: op.count };
              if (allocator.takeIfFree(extent)) live.push(extent);
              break;
            }
            case 'takeFreeParts':
              live.push(...allocator.takeFreeParts({ startBlock: dataStart + op.start, blockCount: op.count }));
              break;
            case 'grow':
              allocator.grow(allocator.blockCount + op.by);
              break;
            case 'room':
              break;
          }
          // Asked after every change, always with the same count.
          const exact = allocator.largestRunsBlockCount(ROOM_RUNS);
          const asked = op.kind === 'room' ? op.blockCount : Math.max(0, exact - (step % 7));
          assert.equal(allocator.largestRunsHold(ROOM_RUNS, asked), exact >= asked, `step ${step} ${JSON.stringify(op)}: asked ${asked}, exact ${exact}`);
          if (op.kind === 'room') assert.equal(allocator.largestRunsHold(ROOM_RUNS, exact + 1), false, `step ${step}: holds more than ${exact}`);
          allocator.checkInvariants();
        }
      }),
      { seed: PROPERTY_SEED, numRuns: RUNS },
    );
  });
});
