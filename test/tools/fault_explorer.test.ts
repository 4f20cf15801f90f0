// IO faults at the Nth operation of every kind (EIO, ENOSPC; once or from
// then on): never an acknowledged write that failed, fail-stop after a
// failed write or flush, and a clean recovery with every acknowledged batch.
import assert from 'node:assert/strict';

import { exploreIoFaults } from '../../tools/lab/fault_explorer.js';

const NTH_MAX = Number(process.env.RINGSTORE_FAULT_NTH ?? 12);

describe('IO fault explorer', function () {
  this.timeout(600_000);

  it(`handles a fault at each of the first ${NTH_MAX} operations of every kind`, async () => {
    const report = await exploreIoFaults(NTH_MAX, 99);
    console.log(`      ${report.runs} runs, ${report.injected} with the fault hit, ${report.violations.length} violations`);
    assert.deepEqual(report.violations.slice(0, 5), []);
    assert.ok(report.injected > report.runs / 2, `faults were hit in only ${report.injected} of ${report.runs} runs`);
  });
});
