// The crash explorer on a workload of large values (LARGE_VALUE_BYTES and
// more, in several IOs of LARGE_IO_CHUNK_BYTES): their data writes are in
// flight beside the WAL write of their commit, and a crash can keep any of
// them whole, lose it or tear it. Every acknowledged value must come back
// whole after recovery, read in pieces and checked against its checksum;
// no unacknowledged one may come back wrong (corruption_large_values.test.ts
// damages such a store at rest).
//
// Not part of the built-in workload: the explorer's coverage strategy tears
// every structure at every sector boundary, and a 320 KiB value has 640
// sector boundaries at 512-byte blocks — more than the built-in run's budget
// holds beside everything else. Here the states are spread by the other
// strategies, and the test asks for no violation, not for every boundary.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { LARGE_IO_CHUNK_BYTES } from '../../engine/grid.js';
import { exploreCrashStates } from '../../tools/lab/crash_explorer.js';
import type { TracedWorkload } from '../../tools/lab/workload.js';
import { LARGE_BYTES, runLargeValueWorkload } from './large_value_workload.js';

const STATES = Number(process.env.RINGSTORE_CRASH_LARGE_VALUE_STATES ?? 400);
const SEED = Number(process.env.RINGSTORE_CRASH_SEED ?? 20261127);
/** A state of this workload took 50-65 ms here beside other work; the bound allows 150 ms, and at least 5 minutes. */
const TIMEOUT_MS = Math.max(300_000, 150 * STATES);

describe('crash explorer on large values', function () {
  this.timeout(TIMEOUT_MS);
  let dir: string;
  let workload: TracedWorkload;

  before(async () => {
    assert.ok(LARGE_BYTES > LARGE_IO_CHUNK_BYTES);
    dir = mkdtempSync(`${tmpdir()}/ringstore-crash-large-`);
    workload = await runLargeValueWorkload(dir);
  });

  after(() => {
    workload?.trace.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`finds no violation in ${STATES} crash states with large values' data writes in flight (seed ${SEED})`, async () => {
    const dataWrites = workload.trace.operations.filter((operation) => operation.phase === 'data' && operation.kind !== 'trim');
    assert.ok(
      dataWrites.some((operation) => operation.length === LARGE_IO_CHUNK_BYTES),
      'no data write of a whole chunk: the large values did not take the large-value path',
    );
    const report = await exploreCrashStates(workload, { states: STATES, seed: SEED });
    console.log(`      ${report.states} states at ${report.crashPoints} crash points in ${(report.durationMs / 1000).toFixed(1)} s: ${JSON.stringify(report.byStrategy)}`);
    console.log(`      by phase ${JSON.stringify(report.byPhase)}; torn boundaries ${report.tornBoundaries.covered}/${report.tornBoundaries.total}`);
    assert.deepEqual(report.violations.slice(0, 3), []);
    assert.ok(report.states >= Math.min(STATES, 300), `only ${report.states} states explored`);
    assert.ok((report.byPhase.data ?? 0) > 0, 'no state left a pending data write on the media');
  });
});
