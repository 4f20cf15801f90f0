// CrashImage on random synthetic traces of overlapping writes, trims and
// flushes with late and failed completions: equal to buildImage byte for
// byte. In particular a write applied under a newer write must not undo an
// even newer write that lies over that one but not over it (the newer write
// is rewritten only where it overlaps).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import fc from 'fast-check';

import type { IoMutation, IoMutationKind } from '../../native/io_observer.js';
import { CrashImage } from '../../tools/lab/crash_image.js';
import { buildImage, crashPoints, type CrashPoint, type PendingChoice } from '../../tools/lab/crash_states.js';
import { WriteTrace } from '../../tools/lab/write_trace.js';
import { assertSameImage, partArb } from './crash_image_helpers.js';

const SEED = Number(process.env.RINGSTORE_CRASH_IMAGE_SEED ?? 20261127);
const RUNS = Number(process.env.RINGSTORE_CRASH_IMAGE_RUNS ?? 300);
const STEPS_MAX = 8;
const SYNTHETIC_DEVICE_BYTES = 8 * 512;


function describeStep(point: CrashPoint, choice: PendingChoice): string {
  const parts = [...choice].map(([operation, part]) => `${operation.id}:${Array.isArray(part) ? part.join('') : part}`);
  return `point ${point.eventCount} (${point.durable.length} durable, pending ${parts.join(' ') || 'none'})`;
}

interface SyntheticOperation {
  kind: 'write' | 'writeDsync' | 'writeAndSync' | 'trim' | 'flush';
  position: number;
  length: number;
  /** Completes after this many later submissions (0: before the next one). */
  completionDelay: number;
  failed: boolean;
}

const syntheticOperationArb: fc.Arbitrary<SyntheticOperation> = fc
  .record({
    kind: fc.constantFrom<SyntheticOperation['kind']>('write', 'write', 'writeDsync', 'writeAndSync', 'trim', 'flush'),
    position: fc.integer({ min: 0, max: SYNTHETIC_DEVICE_BYTES - 1 }),
    length: fc.integer({ min: 1, max: 3 * 512 }),
    completionDelay: fc.integer({ min: 0, max: 3 }),
    failed: fc.integer({ min: 0, max: 9 }).map((roll) => roll === 0),
  })
  .map((operation) =>
    operation.kind === 'flush'
      ? { ...operation, position: 0, length: 0 }
      : { ...operation, length: Math.min(operation.length, SYNTHETIC_DEVICE_BYTES - operation.position) },
  );

/** Records `operations` in a WriteTrace through its IoObserver interface; write i's data are bytes of value i + 1. */
function syntheticTrace(directory: string, operations: readonly SyntheticOperation[]): WriteTrace {
  const path = `${directory}/device`;
  const trace = new WriteTrace(path, directory);
  const file = { path } as IoMutation['file'];
  const inFlight: { mutation: IoMutation; due: number; failed: boolean }[] = [];
  const completeDue = (now: number): void => {
    for (let index = 0; index < inFlight.length; ) {
      const entry = inFlight[index];
      if (entry.due > now) {
        index++;
        continue;
      }
      trace.onComplete(entry.mutation, entry.failed ? new Error('EIO') : entry.mutation.length);
      inFlight.splice(index, 1);
    }
  };
  operations.forEach((operation, index) => {
    const kind: IoMutationKind = operation.kind === 'flush' ? 'fdatasync' : operation.kind;
    const data = operation.kind === 'flush' || operation.kind === 'trim' ? [] : [new Uint8Array(operation.length).fill(index + 1)];
    const mutation: IoMutation = {
      seq: index,
      kind,
      file,
      position: operation.position,
      length: operation.length,
      buffers: data,
      durableOnCompletion: kind === 'writeAndSync' || kind === 'writeDsync',
    };
    trace.onSubmit(mutation);
    inFlight.push({ mutation, due: index + operation.completionDelay, failed: operation.failed });
    completeDue(index);
  });
  completeDue(Infinity);
  return trace;
}

describe('CrashImage on random synthetic traces of overlapping writes', () => {
  it('a pending write under a newer durable write does not undo an even newer durable write beside it', () => {
    const directory = mkdtempSync(`${tmpdir()}/ringstore-overlap-`);
    // 0: write [0,512) of 1s, never flushed (pending); 1: writeDsync [0,1024)
    // of 2s; 2: writeDsync [512,1024) of 3s. Bytes 512..1024 must read 3.
    const trace = syntheticTrace(directory, [
      { kind: 'write', position: 0, length: 512, completionDelay: 0, failed: false },
      { kind: 'writeDsync', position: 0, length: 1024, completionDelay: 0, failed: false },
      { kind: 'writeDsync', position: 512, length: 512, completionDelay: 0, failed: false },
    ]);
    const base = new Uint8Array(2048);
    const image = new CrashImage(trace, base);
    try {
      const point = crashPoints(trace).at(-1)!;
      const choice: PendingChoice = new Map([[trace.operations[0], 'all']]);
      image.moveTo(point, choice);
      const expected = buildImage(trace, base, point, choice);
      assert.equal(expected[600], 3);
      assertSameImage(expected, image.snapshot(), 'after moveTo');
    } finally {
      image.close();
      trace.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it(`equals buildImage byte for byte on random synthetic traces (seed ${SEED}, ${RUNS} runs)`, () => {
    const scenarioArb = fc.array(syntheticOperationArb, { minLength: 1, maxLength: 12 }).chain((operations) => {
      const directory = mkdtempSync(`${tmpdir()}/ringstore-synthetic-trace-`);
      const trace = syntheticTrace(directory, operations);
      const points = crashPoints(trace);
      trace.close();
      rmSync(directory, { recursive: true, force: true });
      const stepArb = fc.integer({ min: 0, max: points.length - 1 }).chain((index) => fc.tuple(fc.constant(index), fc.tuple(...points[index].pending.map(partArb))));
      return fc.tuple(fc.constant(operations), fc.array(stepArb, { minLength: 1, maxLength: STEPS_MAX }));
    });
    fc.assert(
      fc.property(scenarioArb, ([operations, steps]) => {
        const directory = mkdtempSync(`${tmpdir()}/ringstore-synthetic-trace-`);
        const trace = syntheticTrace(directory, operations);
        const base = new Uint8Array(SYNTHETIC_DEVICE_BYTES).fill(0xee);
        const image = new CrashImage(trace, base);
        try {
          const points = crashPoints(trace);
          for (const [index, parts] of steps) {
            const point = points[index];
            const choice: PendingChoice = new Map(point.pending.map((operation, i) => [operation, parts[i]]));
            image.moveTo(point, choice);
            assertSameImage(buildImage(trace, base, point, choice), image.snapshot(), `after moveTo ${describeStep(point, choice)}`);
            image.rollback();
            assertSameImage(buildImage(trace, base, point, new Map()), image.snapshot(), `after rollback from ${describeStep(point, choice)}`);
          }
        } finally {
          image.close();
          trace.close();
          rmSync(directory, { recursive: true, force: true });
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
