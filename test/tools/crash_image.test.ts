// CrashImage (tools/lab/crash_image.ts), the one image in /dev/shm the crash
// explorer brings to each crash state by writing only what differs, checked
// against buildImage (tools/lab/crash_states.ts), which builds every state
// from scratch in memory: byte for byte, at random crash points visited in
// random order (forward and backward through the trace), with random
// pending choices (whole, nothing, or torn per sector), and after each
// rollback. Also: the writes of the store under test (writeLayered and the
// IoObserver path) are undone by rollback, undoMark/rollbackTo undo only
// what came after the mark, and moveTo refuses to stack states.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';

import fc from 'fast-check';

import type { IoMutation, IoMutationKind } from '../../native/io_observer.js';
import { runBuiltinWorkload } from '../../tools/lab/builtin_workload.js';
import { CrashImage } from '../../tools/lab/crash_image.js';
import { isRoot, skipBecause } from '../native/helpers.js';
import { buildImage, crashPoints, sectorCount, SectorFate, type CrashPoint, type PendingChoice, type PendingPart } from '../../tools/lab/crash_states.js';
import type { TracedWorkload } from '../../tools/lab/workload.js';
import { WriteTrace } from '../../tools/lab/write_trace.js';
import { assertSameImage, firstDifference, partArb } from './crash_image_helpers.js';

/** Fixed so a failure reproduces; fast-check prints it (and the path) on failure. */
const SEED = Number(process.env.RINGSTORE_CRASH_IMAGE_SEED ?? 20261127);
const RUNS = Number(process.env.RINGSTORE_CRASH_IMAGE_RUNS ?? 200);
/** Crash states visited by one image in one run. */
const STEPS_MAX = 8;


function describeStep(point: CrashPoint, choice: PendingChoice): string {
  const parts = [...choice].map(([operation, part]) => `${operation.id}:${Array.isArray(part) ? part.join('') : part}`);
  return `point ${point.eventCount} (${point.durable.length} durable, pending ${parts.join(' ') || 'none'})`;
}

/** A stand-in for the ring's IoMutation: only what CrashImage reads is real. */
function mutationOf(path: string, kind: IoMutationKind, position: number, length: number): IoMutation {
  return { seq: 0, kind, file: { path } as IoMutation['file'], position, length, buffers: [], durableOnCompletion: false };
}

/** Writes `bytes` to the image file behind the CrashImage's back, as the ring would after onSubmit. */
function writeFile(path: string, position: number, bytes: Uint8Array): void {
  const fd = openSync(path, 'r+');
  try {
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
  } finally {
    closeSync(fd);
  }
}

describe('CrashImage against buildImage on the built-in workload trace', function () {
  this.timeout(120_000);
  let dir: string;
  let workload: TracedWorkload;
  let points: CrashPoint[];

  before(async () => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-crash-image-`);
    workload = await runBuiltinWorkload(dir, 1);
    points = crashPoints(workload.trace);
  });

  after(() => {
    workload?.trace.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A crash point with pending writes, at least `count` of them. */
  function pointWithPending(count: number): CrashPoint {
    const point = points.find((candidate) => candidate.pending.filter((operation) => operation.kind !== 'trim').length >= count);
    assert.ok(point !== undefined, `the trace has no crash point with ${count} pending writes`);
    return point;
  }

  it('the trace offers what the property needs: many points, pending writes, torn-able writes and trims', () => {
    assert.ok(points.length > 50, `only ${points.length} crash points`);
    assert.ok(points.some((point) => point.pending.length >= 3), 'no point with three pending operations');
    assert.ok(points.some((point) => point.pending.some((operation) => sectorCount(operation) > 1)), 'no pending multi-sector write');
    assert.ok(points.some((point) => point.pending.some((operation) => operation.kind === 'trim')), 'no pending trim');
  });

  it(`equals buildImage byte for byte at random crash states in any order, and after each rollback (seed ${SEED}, ${RUNS} runs)`, () => {
    const stepArb = fc
      .integer({ min: 0, max: points.length - 1 })
      .chain((index) => fc.tuple(fc.constant(index), fc.tuple(...points[index].pending.map(partArb))));
    const base = workload.base;
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: STEPS_MAX }), (steps) => {
        const image = new CrashImage(workload.trace, base);
        try {
          assertSameImage(base, image.snapshot(), 'a new image');
          for (const [index, parts] of steps) {
            const point = points[index];
            const choice: PendingChoice = new Map(point.pending.map((operation, i) => [operation, parts[i]]));
            image.moveTo(point, choice);
            assertSameImage(buildImage(workload.trace, base, point, choice), image.snapshot(), `after moveTo ${describeStep(point, choice)}`);
            image.rollback();
            // What is left is the durable layer alone: the state with every pending write lost.
            assertSameImage(buildImage(workload.trace, base, point, new Map()), image.snapshot(), `after rollback from ${describeStep(point, choice)}`);
          }
        } finally {
          image.close();
        }
      }),
      { seed: SEED, numRuns: RUNS, verbose: 1 },
    );
  });

  it('walks every crash point forward then backward with every pending write whole, equal to buildImage at each', () => {
    const image = new CrashImage(workload.trace, workload.base);
    try {
      const order = [...points, ...[...points].reverse()];
      for (const point of order) {
        const choice: PendingChoice = new Map(point.pending.map((operation) => [operation, 'all' as const]));
        image.moveTo(point, choice);
        assertSameImage(buildImage(workload.trace, workload.base, point, choice), image.snapshot(), `at ${describeStep(point, choice)}`);
        image.rollback();
      }
    } finally {
      image.close();
    }
  });

  it('undoes writeLayered writes on rollback', () => {
    const point = pointWithPending(1);
    const image = new CrashImage(workload.trace, workload.base);
    try {
      image.moveTo(point, new Map());
      const before = image.snapshot();
      image.writeLayered(1000, new Uint8Array(700).fill(0xab));
      image.writeLayered(1500, new Uint8Array(100).fill(0xcd));
      const written = image.snapshot();
      assert.deepEqual([written[1000], written[1499], written[1500], written[1599], written[1699]], [0xab, 0xab, 0xcd, 0xcd, 0xab]);
      image.rollback();
      assertSameImage(before, image.snapshot(), 'after rollback');
    } finally {
      image.close();
    }
  });

  it('undoes the writes and trims its IoObserver saw submitted to its file, and only logs those', () => {
    const point = pointWithPending(1);
    const image = new CrashImage(workload.trace, workload.base);
    try {
      image.moveTo(point, new Map());
      const before = image.snapshot();
      const mark = image.undoMark();
      // Not the image's file, a flush, or nothing to write: no undo entry.
      image.onSubmit(mutationOf(`${image.path}.other`, 'write', 0, 4096));
      image.onSubmit(mutationOf(image.path, 'fdatasync', 0, 0));
      image.onSubmit(mutationOf(image.path, 'fsync', 0, 0));
      image.onSubmit(mutationOf(image.path, 'write', 512, 0));
      assert.equal(image.undoMark(), mark, 'IO the image needs not undo was logged');
      // The store's writes through the ring: announced, then done by the kernel.
      const writes: [IoMutationKind, number, number][] = [
        ['write', 0, 4096],
        ['writeDsync', 8192, 512],
        ['writeAndSync', 4000, 1000],
        ['trim', 20_000, 3000],
      ];
      for (const [kind, position, length] of writes) {
        image.onSubmit(mutationOf(image.path, kind, position, length));
        writeFile(image.path, position, new Uint8Array(length).fill(kind === 'trim' ? 0 : 0x5a));
      }
      // The last block of the image: the undo entry must not reach past its end.
      image.onSubmit(mutationOf(image.path, 'write', image.sizeBytes - 512, 512));
      writeFile(image.path, image.sizeBytes - 512, new Uint8Array(512).fill(0x77));
      assert.equal(image.undoMark(), mark + writes.length + 1);
      assert.ok(firstDifference(before, image.snapshot()) !== undefined, 'the simulated writes changed nothing');
      image.rollback();
      assertSameImage(before, image.snapshot(), 'after rollback');
    } finally {
      image.close();
    }
  });

  it('rollbackTo(undoMark()) takes back only what came after the mark, rollback() the rest', () => {
    const point = pointWithPending(2);
    const writes = point.pending.filter((operation) => operation.kind !== 'trim');
    const choice: PendingChoice = new Map([[writes[0], 'all']]);
    const image = new CrashImage(workload.trace, workload.base);
    try {
      image.moveTo(point, choice);
      image.writeLayered(4096, new Uint8Array(1024).fill(1));
      const afterFirst = image.snapshot();
      const mark = image.undoMark();
      // Overlaps the first write, and the pending one; then the observer path.
      image.writeLayered(4096 + 512, new Uint8Array(1024).fill(2));
      image.writeLayered(writes[0].position, new Uint8Array(writes[0].length).fill(3));
      image.onSubmit(mutationOf(image.path, 'write', 4096, 256));
      writeFile(image.path, 4096, new Uint8Array(256).fill(4));
      assert.ok(firstDifference(afterFirst, image.snapshot()) !== undefined);
      image.rollbackTo(mark);
      assertSameImage(afterFirst, image.snapshot(), 'after rollbackTo(mark)');
      assert.equal(image.undoMark(), mark);
      image.rollback();
      assertSameImage(buildImage(workload.trace, workload.base, point, new Map()), image.snapshot(), 'after rollback');
    } finally {
      image.close();
    }
  });

  it('refuses moveTo before the previous state is rolled back (pending writes or the store\'s own)', () => {
    const point = pointWithPending(1);
    const pendingWrite = point.pending.find((operation) => operation.kind !== 'trim')!;
    const image = new CrashImage(workload.trace, workload.base);
    try {
      image.moveTo(point, new Map([[pendingWrite, 'all']]));
      assert.throws(() => image.moveTo(point, new Map()), /roll back the previous state first/);
      image.rollback();
      image.moveTo(point, new Map());
      image.writeLayered(0, new Uint8Array(10));
      assert.throws(() => image.moveTo(points[0], new Map()), /roll back the previous state first/);
      image.rollback();
      image.moveTo(points[0], new Map());
      assertSameImage(buildImage(workload.trace, workload.base, points[0], new Map()), image.snapshot(), 'after moving on');
    } finally {
      image.close();
    }
  });
});

// ---- Synthetic traces: overlapping writes made durable out of order. The
// built-in workload never leaves a pending or newly durable write under a
// newer one it overlaps, so the newer-wins rule is checked here. ----

/** One operation of a synthetic trace; each completes before the next is submitted. */
type SyntheticOperation = ['write' | 'writeDsync', number, number] | ['flush'];

/**
 * Records `operations` in a WriteTrace through its IoObserver interface; the
 * data of write number i is bytes of value i + 1.
 */
function syntheticTrace(directory: string, operations: readonly SyntheticOperation[]): WriteTrace {
  const path = `${directory}/device`;
  const trace = new WriteTrace(path, directory);
  operations.forEach((operation, index) => {
    const [kind, position = 0, length = 0] = operation;
    const mutation: IoMutation = {
      ...(kind === 'flush' ? mutationOf(path, 'fdatasync', 0, 0) : mutationOf(path, kind, position, length)),
      seq: index,
      buffers: kind === 'flush' ? [] : [new Uint8Array(length).fill(index + 1)],
      durableOnCompletion: kind === 'writeDsync',
    };
    trace.onSubmit(mutation);
    trace.onComplete(mutation, length);
  });
  return trace;
}

describe('CrashImage against buildImage on synthetic traces of overlapping writes', () => {
  const SYNTHETIC_DEVICE_BYTES = 4 * 512;
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-synthetic-trace-`);
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('never lets an older pending write show through a newer durable write over it, whole or torn', () => {
    const trace = syntheticTrace(dir, [
      ['write', 0, 1024],
      ['writeDsync', 256, 512],
    ]);
    const base = new Uint8Array(SYNTHETIC_DEVICE_BYTES).fill(0xee);
    const image = new CrashImage(trace, base);
    try {
      const point = crashPoints(trace).at(-1)!;
      assert.deepEqual([point.durable.map((operation) => operation.id), point.pending.map((operation) => operation.id)], [[1], [0]]);
      // The older write shows only outside the newer one: [0, 256) in its
      // sector 0 and [768, 1024) in its sector 1. Garbage is neither old nor new.
      const isNew = (bytes: Uint8Array): boolean => bytes.every((byte) => byte === 1);
      const isOld = (bytes: Uint8Array): boolean => bytes.every((byte) => byte === 0xee);
      const isGarbage = (bytes: Uint8Array): boolean => !isNew(bytes) && !isOld(bytes);
      const cases: [PendingPart, (bytes: Uint8Array) => boolean, (bytes: Uint8Array) => boolean][] = [
        ['all', isNew, isNew],
        [[SectorFate.New, SectorFate.Old], isNew, isOld],
        [[SectorFate.Old, SectorFate.New], isOld, isNew],
        [[SectorFate.Garbage, SectorFate.Old], isGarbage, isOld],
      ];
      for (const [part, sector0, sector1] of cases) {
        const choice: PendingChoice = new Map([[point.pending[0], part]]);
        image.moveTo(point, choice);
        const snapshot = image.snapshot();
        assertSameImage(buildImage(trace, base, point, choice), snapshot, `with the older write ${JSON.stringify(part)}`);
        assert.ok(snapshot.subarray(256, 768).every((byte) => byte === 2), `the newer durable write lost bytes under ${JSON.stringify(part)}`);
        assert.ok(sector0(snapshot.subarray(0, 256)) && sector1(snapshot.subarray(768, 1024)), `the older write's sectors under ${JSON.stringify(part)}`);
        assert.ok(isOld(snapshot.subarray(1024)), `bytes past the writes changed under ${JSON.stringify(part)}`);
        image.rollback();
      }
    } finally {
      image.close();
      trace.close();
    }
  });

  it('keeps a write that becomes durable after a newer overlapping one under it, going forward and back', () => {
    const trace = syntheticTrace(dir, [['write', 0, 1024], ['writeDsync', 256, 512], ['flush']]);
    const base = new Uint8Array(SYNTHETIC_DEVICE_BYTES).fill(0xee);
    const image = new CrashImage(trace, base);
    try {
      // Points after each submit and completion: write 0 in flight, done;
      // write 1 in flight, durable; the flush in flight, done.
      const points = crashPoints(trace);
      assert.deepEqual(points.map((point) => point.durable.map((operation) => operation.id)), [[], [], [], [1], [1], [0, 1]]);
      for (const point of [...points, ...[...points].reverse()]) {
        image.moveTo(point, new Map());
        assertSameImage(buildImage(trace, base, point, new Map()), image.snapshot(), `at point ${point.eventCount}`);
        image.rollback();
      }
      image.moveTo(points[5], new Map());
      const snapshot = image.snapshot();
      assert.deepEqual([snapshot[0], snapshot[255], snapshot[256], snapshot[767], snapshot[768], snapshot[1023], snapshot[1024]], [1, 1, 2, 2, 1, 1, 0xee]);
      image.rollback();
    } finally {
      image.close();
      trace.close();
    }
  });
});

describe('CrashImage where there is no room for it', function () {
  let mountPoint: string | undefined;

  before(function () {
    if (!isRoot()) skipBecause(this, 'mounting a small tmpfs needs root');
    mountPoint = mkdtempSync(`${tmpdir()}/ringstore-small-shm-`);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountPoint]);
    } catch (error) {
      rmSync(mountPoint, { recursive: true, force: true });
      mountPoint = undefined;
      skipBecause(this, `mount failed: ${(error as Error).message.split('\n')[0]}`);
    }
  });

  after(() => {
    if (mountPoint === undefined) return;
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it('fails with ENOSPC and leaves nothing behind (found by a review: its directory and file stayed until the process exited)', () => {
    const before = process.env.RINGSTORE_LAB_IMAGE_DIR;
    process.env.RINGSTORE_LAB_IMAGE_DIR = mountPoint;
    try {
      assert.throws(() => new CrashImage({} as WriteTrace, new Uint8Array(1 << 20)), { code: 'ENOSPC' });
      assert.deepEqual(readdirSync(mountPoint!), []);
    } finally {
      if (before === undefined) delete process.env.RINGSTORE_LAB_IMAGE_DIR;
      else process.env.RINGSTORE_LAB_IMAGE_DIR = before;
    }
  });
});
