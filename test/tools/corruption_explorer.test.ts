// Damage at rest on images of the built-in workload: every read is right or
// ERR_STORE_CORRUPT, never wrong data, never another error.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { exploreCorruption } from '../../tools/lab/corruption_explorer.js';
import { runBuiltinWorkload } from '../../tools/lab/builtin_workload.js';

/**
 * Images in npm test: 1 200 since the built-in workload laps its WAL (each
 * image ~1.6 × the work it was; 2 000 took 29 s on the quiet 2-vCPU host).
 * npm run test:corruption runs 260 000.
 */
const TRIALS = Number(process.env.RINGSTORE_CORRUPTION_TRIALS ?? 1200);
const SEED = Number(process.env.RINGSTORE_CORRUPTION_SEED ?? 7);

describe('corruption explorer on the built-in workload', function () {
  this.timeout(3_600_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(`${tmpdir()}/ringstore-corruption-`);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it(`never returns wrong data in ${TRIALS} damaged images (seed ${SEED})`, async () => {
    const workload = await runBuiltinWorkload(dir);
    const report = await exploreCorruption(workload, { trials: TRIALS, seed: SEED });
    workload.trace.close();
    console.log(
      `      ${report.trials} trials in ${(report.durationMs / 1000).toFixed(1)} s: ${JSON.stringify(report.byDamage)}; refused opens ${report.refusedOpens}, failed replays ${report.failedReplays}, unrecognised ${report.unrecognised}, detected reads ${report.detectedReads}, silent losses ${report.silentLosses}, wrong reads ${report.wrongReads}`,
    );
    assert.deepEqual(report.failures.slice(0, 5), []);
    assert.equal(report.wrongReads, 0);
    assert.equal(report.trials, TRIALS);
    assert.ok(report.refusedOpens + report.failedReplays + report.detectedReads > 0, 'no damage was ever detected: the trials hit nothing');
  });
});
