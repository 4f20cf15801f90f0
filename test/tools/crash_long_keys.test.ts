// The crash explorer on keys near the 1024-byte limit (long_key_workload.ts):
// batches of deletes that merge branches of three or four children, one of
// which leaves a branch with one child and no sibling in memory, repaired by
// the next checkpoint (PageTree.repairUnderflows). Every state, before,
// during and after that repair's checkpoint, must recover every
// acknowledged operation (a delete that left such a branch failed the store
// and every replay of it before; found by a review).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { exploreCrashStates } from '../../tools/lab/crash_explorer.js';
import type { TracedWorkload } from '../../tools/lab/workload.js';
import { runLongKeyWorkload } from './long_key_workload.js';

const STATES = Number(process.env.RINGSTORE_CRASH_LONG_KEY_STATES ?? 300);
const SEED = Number(process.env.RINGSTORE_CRASH_SEED ?? 20261127);
/** A generous bound per state, and at least 5 minutes. */
const TIMEOUT_MS = Math.max(300_000, 150 * STATES);

describe('crash explorer on keys near the size limit', function () {
  this.timeout(TIMEOUT_MS);
  let dir: string;
  let workload: TracedWorkload;

  before(async () => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-crash-long-keys-`);
    workload = await runLongKeyWorkload(dir);
  });

  after(() => {
    workload?.trace.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`finds no violation in ${STATES} crash states of deletes among long keys (seed ${SEED})`, async () => {
    const report = await exploreCrashStates(workload, { states: STATES, seed: SEED });
    console.log(`      ${report.states} states at ${report.crashPoints} crash points in ${(report.durationMs / 1000).toFixed(1)} s: ${JSON.stringify(report.byStrategy)}`);
    console.log(`      by phase ${JSON.stringify(report.byPhase)}; torn boundaries ${report.tornBoundaries.covered}/${report.tornBoundaries.total}`);
    assert.deepEqual(report.violations.slice(0, 3), []);
    assert.ok(report.states >= Math.min(STATES, 200), `only ${report.states} states explored`);
    assert.ok((report.byPhase.checkpoint ?? 0) > 0, 'no state fell in a checkpoint');
  });
});
