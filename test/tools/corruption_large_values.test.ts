// Damage at rest on images of a store of large values (LARGE_VALUE_BYTES and
// more, read in pieces straight into the buffer that holds them): every read
// is right or ERR_STORE_CORRUPT, never wrong data, never another error.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { exploreCorruption } from '../../tools/lab/corruption_explorer.js';
import { runLargeValueWorkload } from './large_value_workload.js';

const TRIALS = Number(process.env.RINGSTORE_CORRUPTION_LARGE_VALUE_TRIALS ?? 300);
const SEED = Number(process.env.RINGSTORE_CORRUPTION_SEED ?? 7);

describe('corruption explorer on large values', function () {
  this.timeout(3_600_000);

  it(`never returns wrong data in ${TRIALS} damaged images of a store of large values (seed ${SEED})`, async () => {
    const dir = mkdtempSync(`${tmpdir()}/ringstore-corruption-large-`);
    try {
      const workload = await runLargeValueWorkload(dir);
      const report = await exploreCorruption(workload, { trials: TRIALS, seed: SEED });
      workload.trace.close();
      console.log(
        `      ${report.trials} trials in ${(report.durationMs / 1000).toFixed(1)} s: ${JSON.stringify(report.byDamage)}; refused opens ${report.refusedOpens}, failed replays ${report.failedReplays}, detected reads ${report.detectedReads}, silent losses ${report.silentLosses}, wrong reads ${report.wrongReads}`,
      );
      assert.deepEqual(report.failures.slice(0, 5), []);
      assert.equal(report.wrongReads, 0);
      assert.equal(report.trials, TRIALS);
      assert.ok(report.detectedReads > 0, 'no damaged read was ever detected: the trials hit no value');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
