// The crash explorer on the built-in workload: thousands of crash states of
// a traced run on the real IO path, each recovered and checked.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { exploreCrashStates } from '../../tools/lab/crash_explorer.js';
import { runBuiltinWorkload } from '../../tools/lab/builtin_workload.js';

const STATES = Number(process.env.RINGSTORE_CRASH_STATES ?? 2000);
const SEED = Number(process.env.RINGSTORE_CRASH_SEED ?? 20261127);
/** Workload size: 1 for npm test; npm run test:crash uses more. */
const SCALE = Number(process.env.RINGSTORE_CRASH_SCALE ?? 1);

describe('crash explorer on the built-in workload', function () {
  this.timeout(600_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-crash-`);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it(`finds no violation in ${STATES} crash states (seed ${SEED}, scale ${SCALE})`, async () => {
    const workload = await runBuiltinWorkload(dir, SCALE);
    assert.ok(workload.trace.operations.length > 50, 'the workload did too little IO to be a test');
    const report = await exploreCrashStates(workload.trace, workload.base, workload.operations, { states: STATES, seed: SEED });
    console.log(
      `      ${report.states} states at ${report.crashPoints} crash points in ${(report.durationMs / 1000).toFixed(1)} s: ${JSON.stringify(report.byStrategy)}`,
    );
    assert.deepEqual(report.violations.slice(0, 5), []);
    assert.ok(report.states >= Math.min(STATES, 2000), `only ${report.states} states explored`);
    for (const strategy of ['boundary', 'alice', 'torn', 'subsets', 'recovery'] as const) {
      assert.ok(report.byStrategy[strategy] > 0, `strategy ${strategy} explored nothing`);
    }
  });
});
