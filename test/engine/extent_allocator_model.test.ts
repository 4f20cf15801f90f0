// ExtentAllocator against a model: a plain boolean array of the data
// region's blocks with the allocator's policy written out block by block
// (next-fit from a roving cursor, the run at the cursor counting from it,
// wrapping once; else the largest runs first, lowest start among equals).
// Every operation — allocate, free, takeIfFree, freeIfUsed, takeFreeParts,
// isUsed, isFree, grow, the largest-runs questions, the checkpoint's bits —
// and every error case must give exactly the model's answer, from an
// allocator built every way open and the checks build one, on regions of
// several bitmap chunks (1024 blocks) so the chunk summaries are exercised.
// Allocation units of 1, 2 and 8 blocks (stores of 4096-, 2048- and
// 512-byte blocks): the model allocates whole units, a unit free when all
// its blocks are.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import type { Extent } from '../../format/extent.js';
import { FormatError } from '../../format/format_error.js';
import { encodeFreeSetPayload, newFreeSetPayload } from '../../format/free_set.js';
import { ExtentAllocator } from '../../engine/extent_allocator.js';

/** Fixed so a failure reproduces; fast-check prints it on failure. */
const PROPERTY_SEED = Number(process.env.RINGSTORE_ALLOCATOR_SEED ?? 0x6d6f646c);
const RUNS = Number(process.env.RINGSTORE_ALLOCATOR_RUNS ?? 120);

/** The model: used[i] for block dataStart + i, and the cursor (a unit index). */
class Model {
  used: boolean[];
  cursor = 0;
  constructor(
    readonly dataStart: number,
    used: boolean[],
    readonly unit = 1,
  ) {
    this.used = used;
  }

  /** unitFree[u]: every block of unit u is free (a partial unit at the end is none). */
  unitFree(): boolean[] {
    const free: boolean[] = [];
    for (let u = 0; (u + 1) * this.unit <= this.used.length; u++) free.push(this.used.slice(u * this.unit, (u + 1) * this.unit).every((inUse) => !inUse));
    return free;
  }

  /** Runs of free units, as { start, count } in units. */
  unitRuns(): { start: number; count: number }[] {
    const runs: { start: number; count: number }[] = [];
    this.unitFree().forEach((free, u) => {
      if (!free) return;
      const last = runs[runs.length - 1];
      if (last !== undefined && last.start + last.count === u) last.count++;
      else runs.push({ start: u, count: 1 });
    });
    return runs;
  }

  largestUnitRuns(count: number): { start: number; count: number }[] {
    return this.unitRuns()
      .sort((a, b) => b.count - a.count || a.start - b.start)
      .slice(0, count);
  }

  /** Blocks of the `count` largest runs of free units. */
  largestUnitRunsBlocks(count: number): number {
    return this.largestUnitRuns(count).reduce((sum, run) => sum + run.count, 0) * this.unit;
  }

  get blockCount(): number {
    return this.dataStart + this.used.length;
  }

  get freeBlockCount(): number {
    return this.used.filter((inUse) => !inUse).length;
  }

  runs(): Extent[] {
    const runs: Extent[] = [];
    for (let i = 0; i < this.used.length; i++) {
      if (this.used[i]) continue;
      const last = runs[runs.length - 1];
      if (last !== undefined && last.startBlock + last.blockCount === this.dataStart + i) last.blockCount++;
      else runs.push({ startBlock: this.dataStart + i, blockCount: 1 });
    }
    return runs;
  }

  inRegion(extent: Extent): boolean {
    return extent.blockCount >= 1 && extent.startBlock >= this.dataStart && extent.startBlock + extent.blockCount <= this.blockCount;
  }

  /** Indexes of the region's blocks of `extent`, clipped to the region. */
  indexes(extent: Extent): number[] {
    const out: number[] = [];
    for (let b = Math.max(extent.startBlock, this.dataStart); b < Math.min(extent.startBlock + extent.blockCount, this.blockCount); b++) out.push(b - this.dataStart);
    return out;
  }

  isUsed(extent: Extent): boolean {
    return this.indexes(extent).every((i) => this.used[i]);
  }

  isFree(extent: Extent): boolean {
    return this.inRegion(extent) && this.indexes(extent).every((i) => !this.used[i]);
  }

  allocate(blockCount: number, extentsMax: number): Extent[] | undefined {
    const units = Math.ceil(blockCount / this.unit);
    const free = this.unitFree();
    if (units > free.filter(Boolean).length) return undefined;
    const freeFrom = (u: number): number => {
      let n = 0;
      while (u + n < free.length && free[u + n]) n++;
      return n;
    };
    let single = -1;
    for (let s = this.cursor; s < free.length && single < 0; s++) {
      if (free[s] && (s === this.cursor || !free[s - 1]) && freeFrom(s) >= units) single = s;
    }
    for (let s = 0; s < this.cursor && single < 0; s++) {
      if (free[s] && (s === 0 || !free[s - 1]) && freeFrom(s) >= units) single = s;
    }
    if (single >= 0) {
      for (let i = single * this.unit; i < single * this.unit + blockCount; i++) this.used[i] = true;
      this.cursor = single + units;
      return [{ startBlock: this.dataStart + single * this.unit, blockCount }];
    }
    const chosen: Extent[] = [];
    let remaining = units;
    for (const run of this.largestUnitRuns(extentsMax)) {
      if (remaining === 0) break;
      const take = Math.min(run.count, remaining);
      chosen.push({ startBlock: this.dataStart + run.start * this.unit, blockCount: take * this.unit });
      remaining -= take;
    }
    if (remaining > 0) return undefined;
    // What rounding to units added comes off the last piece taken.
    chosen[chosen.length - 1].blockCount -= units * this.unit - blockCount;
    for (const extent of chosen) for (const i of this.indexes(extent)) this.used[i] = true;
    return chosen.sort((a, b) => a.startBlock - b.startBlock);
  }

  /** What free() does: 'outside', 'double' (changing nothing) or 'ok'. */
  free(extent: Extent): 'outside' | 'double' | 'ok' {
    if (!this.inRegion(extent)) return 'outside';
    if (!this.isUsed(extent)) return 'double';
    for (const i of this.indexes(extent)) this.used[i] = false;
    return 'ok';
  }

  takeFreeParts(extent: Extent): Extent[] {
    const parts: Extent[] = [];
    for (const i of this.indexes(extent)) {
      if (this.used[i]) continue;
      this.used[i] = true;
      const last = parts[parts.length - 1];
      if (last !== undefined && last.startBlock + last.blockCount === this.dataStart + i) last.blockCount++;
      else parts.push({ startBlock: this.dataStart + i, blockCount: 1 });
    }
    return parts;
  }

  /** The free set's bitmap bytes of the region (in use = 1). */
  bitmap(): number[] {
    const bytes = new Array<number>(Math.ceil(this.used.length / 8)).fill(0);
    this.used.forEach((inUse, i) => {
      if (inUse) bytes[i >> 3] |= 1 << (i & 7);
    });
    return bytes;
  }
}

/** A used/free map made of runs of random lengths: long runs of each kind and single blocks. */
function mapOf(length: number, runLengths: number[], startUsed: boolean): boolean[] {
  const used: boolean[] = [];
  let inUse = startUsed;
  let r = 0;
  while (used.length < length) {
    const run = runLengths.length === 0 ? length : runLengths[r++ % runLengths.length];
    for (let i = 0; i < run && used.length < length; i++) used.push(inUse);
    inUse = !inUse;
  }
  return used;
}

const extentArb = fc.record({ start: fc.integer({ min: -3, max: 7000 }), count: fc.oneof(fc.integer({ min: -1, max: 4 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 3000 })) });

const operation = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('allocate' as const), blockCount: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 1500 })), extentsMax: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('freeLive' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('badAllocate' as const), blockCount: fc.constantFrom(0, -1, 1.5, Number.NaN, Infinity) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('free' as const, 'takeIfFree' as const, 'freeIfUsed' as const, 'takeFreeParts' as const), extent: extentArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('takeIfFreeLive' as const, 'freeIfUsedLive' as const), pick: fc.nat(), shift: fc.integer({ min: -2, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('grow' as const), by: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 2500 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('shrink' as const), by: fc.integer({ min: 1, max: 10 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('room' as const), count: fc.integer({ min: 1, max: 8 }), blockCount: fc.integer({ min: 0, max: 4000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bits' as const) }) },
);

type Build = 'constructor' | 'fromFreeExtents' | 'fromFreeSetPayload';

const initial = fc.record({
  dataStart: fc.integer({ min: 0, max: 20 }),
  dataBlocks: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 41, max: 1100 }), fc.integer({ min: 1100, max: 5000 })),
  runLengths: fc.array(fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 100, max: 2100 })), { maxLength: 40, size: 'max' }),
  startUsed: fc.boolean(),
  build: fc.constantFrom<Build>('constructor', 'fromFreeExtents', 'fromFreeSetPayload'),
  unitBlocks: fc.constantFrom(1, 1, 2, 8),
  /** For fromFreeSetPayload: blocks past those the payload describes (the store grew since). */
  grownBy: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1500 })),
});

function build(dataStart: number, used: boolean[], how: Build, grownBy: number, unitBlocks: number): ExtentAllocator {
  const model = new Model(dataStart, used);
  switch (how) {
    case 'constructor': {
      // Used runs as owners' extents, shuffled by reversing.
      const usedRuns = new Model(dataStart, used.map((inUse) => !inUse)).runs().reverse();
      const owners = usedRuns.map((extent, i) => ({ extent, owner: `owner ${i}` }));
      return new ExtentAllocator(dataStart, model.blockCount, owners, { unitBlocks });
    }
    case 'fromFreeExtents':
      return ExtentAllocator.fromFreeExtents(dataStart, model.blockCount, model.runs(), unitBlocks);
    case 'fromFreeSetPayload': {
      // The payload describes the first blocks; the rest are free.
      const described = Math.max(1, used.length - grownBy);
      const payload = encodeFreeSetPayload(dataStart, described, new Model(dataStart, used.slice(0, described)).runs());
      for (let i = described; i < used.length; i++) used[i] = false;
      return ExtentAllocator.fromFreeSetPayload(payload, dataStart, model.blockCount, 99, unitBlocks);
    }
  }
}

function check(allocator: ExtentAllocator, model: Model, what: string): void {
  assert.equal(allocator.blockCount, model.blockCount, `${what}: blockCount`);
  assert.equal(allocator.freeBlockCount, model.freeBlockCount, `${what}: freeBlockCount`);
  const runs = model.runs();
  assert.deepEqual(allocator.freeExtents(), runs, `${what}: freeExtents`);
  assert.equal(allocator.freeExtentCount, runs.length, `${what}: freeExtentCount`);
  assert.equal(allocator.allocatableBlockCount, model.unitFree().filter(Boolean).length * model.unit, `${what}: allocatableBlockCount`);
  assert.equal(allocator.allocatableRunCount, model.unitRuns().length, `${what}: allocatableRunCount`);
  for (const count of [1, 3, 8]) {
    assert.equal(allocator.largestRunsBlockCount(count), model.largestUnitRunsBlocks(count), `${what}: largestRunsBlockCount(${count})`);
  }
  allocator.checkInvariants();
}

describe('ExtentAllocator against a boolean-array model (fast-check)', () => {
  it(`gives the model's answer to every operation, error cases included (seed ${PROPERTY_SEED})`, () => {
    fc.assert(
      fc.property(initial, fc.array(operation, { minLength: 10, maxLength: 150, size: 'max' }), fc.array(extentArb, { minLength: 4, maxLength: 4 }), (start, operations, probes) => {
        const used = mapOf(start.dataBlocks, start.runLengths, start.startUsed);
        const allocator = build(start.dataStart, used, start.build, start.grownBy, start.unitBlocks);
        const model = new Model(start.dataStart, used, start.unitBlocks);
        check(allocator, model, 'built');
        const live: Extent[] = [];
        const absolute = (e: { start: number; count: number }): Extent => ({ startBlock: model.dataStart + e.start, blockCount: e.count });
        for (const [step, op] of operations.entries()) {
          const what = `step ${step} ${JSON.stringify(op)}`;
          switch (op.kind) {
            case 'allocate': {
              const expected = model.allocate(op.blockCount, op.extentsMax);
              const got = allocator.allocate(op.blockCount, op.extentsMax);
              assert.deepEqual(got, expected, what);
              if (got !== undefined) live.push(...got);
              break;
            }
            case 'badAllocate':
              assert.throws(() => allocator.allocate(op.blockCount, 4), RangeError, what);
              break;
            case 'freeLive':
            case 'free': {
              let extent: Extent;
              if (op.kind === 'freeLive') {
                if (live.length === 0) continue;
                extent = live.splice(op.pick % live.length, 1)[0];
              } else extent = absolute(op.extent);
              const outcome = model.free(extent);
              if (outcome === 'ok') allocator.free(extent);
              else assert.throws(() => allocator.free(extent), outcome === 'outside' ? /outside the data region/ : /double free/, what);
              break;
            }
            case 'takeIfFree':
            case 'takeIfFreeLive':
            case 'freeIfUsed':
            case 'freeIfUsedLive': {
              let extent: Extent;
              if ('extent' in op) extent = absolute(op.extent);
              else {
                // Near a live extent (or a freed one): mostly valid, sometimes off by a block or two.
                if (live.length === 0) continue;
                const base = live[op.pick % live.length];
                extent = { startBlock: base.startBlock + op.shift, blockCount: base.blockCount };
              }
              if (op.kind === 'takeIfFree' || op.kind === 'takeIfFreeLive') {
                const expected = model.isFree(extent);
                assert.equal(allocator.takeIfFree(extent), expected, what);
                if (expected) model.takeFreeParts(extent);
              } else {
                const expected = model.inRegion(extent) && model.isUsed(extent);
                assert.equal(allocator.freeIfUsed(extent), expected, what);
                if (expected) model.free(extent);
              }
              break;
            }
            case 'takeFreeParts':
              assert.deepEqual(allocator.takeFreeParts(absolute(op.extent)), model.takeFreeParts(absolute(op.extent)), what);
              break;
            case 'grow': {
              const blockCount = model.blockCount + op.by;
              allocator.grow(blockCount);
              for (let i = 0; i < op.by; i++) model.used.push(false);
              break;
            }
            case 'shrink':
              assert.throws(() => allocator.grow(model.blockCount - op.by), /growing the data region/, what);
              break;
            case 'room': {
              assert.equal(allocator.largestRunsHold(op.count, op.blockCount), model.largestUnitRunsBlocks(op.count) >= op.blockCount, what);
              break;
            }
            case 'bits': {
              const { payload, bitmap } = newFreeSetPayload(model.used.length);
              allocator.copyInUseBits(bitmap, model.used.length);
              assert.deepEqual([...bitmap], model.bitmap(), what);
              // What open builds from it is the same free space.
              const reopened = ExtentAllocator.fromFreeSetPayload(payload, model.dataStart, model.blockCount, 99);
              assert.deepEqual(reopened.freeExtents(), model.runs(), what);
              break;
            }
          }
          check(allocator, model, what);
        }
        for (const probe of probes) {
          const extent = absolute(probe);
          assert.equal(allocator.isUsed(extent), model.isUsed(extent), `isUsed ${JSON.stringify(extent)}`);
          assert.equal(allocator.isFree(extent), model.isFree(extent), `isFree ${JSON.stringify(extent)}`);
        }
      }),
      { seed: PROPERTY_SEED, numRuns: RUNS },
    );
  });
});

describe('ExtentAllocator.fromFreeSetPayload()', () => {
  it('refuses a malformed payload with the FormatError the decoder gives, naming the first block', () => {
    const payload = encodeFreeSetPayload(10, 20, []);
    payload[4] = 1;
    assert.throws(
      () => ExtentAllocator.fromFreeSetPayload(payload, 10, 30, 77),
      (error: unknown) => error instanceof FormatError && error.blockIndex === 77 && /reserved bytes are not zero/.test(error.message),
    );
    assert.throws(() => ExtentAllocator.fromFreeSetPayload(encodeFreeSetPayload(10, 20, []), 10, 25, 77), /describes 20 data blocks, the superblock 15/);
  });

  it('takes the blocks past those the payload describes as free (the store grew)', () => {
    const allocator = ExtentAllocator.fromFreeSetPayload(encodeFreeSetPayload(10, 20, [{ startBlock: 25, blockCount: 4 }]), 10, 3000, 1);
    assert.deepEqual(allocator.freeExtents(), [
      { startBlock: 25, blockCount: 4 },
      { startBlock: 30, blockCount: 2970 },
    ]);
    assert.equal(allocator.freeBlockCount, 2974);
    // A free run at the end of the described blocks continues into the growth.
    const tailFree = ExtentAllocator.fromFreeSetPayload(encodeFreeSetPayload(10, 20, [{ startBlock: 25, blockCount: 5 }]), 10, 3000, 1);
    assert.deepEqual(tailFree.freeExtents(), [{ startBlock: 25, blockCount: 2975 }]);
  });
});

describe('ExtentAllocator#allocate() on a fragmented region', () => {
  it('finds the one long-enough run far from the cursor, past many chunks of short runs', () => {
    // 100 000 blocks (98 chunks) of alternating 3 free / 1 used, and one free run of 300 near the end.
    const used = mapOf(100_000, [1, 3], true);
    for (let i = 90_000; i < 90_300; i++) used[i] = false;
    const allocator = ExtentAllocator.fromFreeExtents(0, used.length, new Model(0, used).runs());
    assert.deepEqual(allocator.allocate(256, 1), [{ startBlock: 89_997, blockCount: 256 }]);
    assert.deepEqual(allocator.allocate(1, 1), [{ startBlock: 90_253, blockCount: 1 }], 'next-fit: right after the last one');
    // No run of 49 remains: the 2 largest, the rest of the long one and the first of 3, in block order.
    assert.deepEqual(allocator.allocate(49, 2), [
      { startBlock: 1, blockCount: 3 },
      { startBlock: 90_254, blockCount: 46 },
    ]);
    assert.equal(allocator.allocate(7, 2), undefined, 'runs of 3 at most');
  });
});
