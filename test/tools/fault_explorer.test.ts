// IO faults at the Nth operation of every kind (EIO, ENOSPC, short
// transfers — a prefix of a write's sectors lands, then EIO — and lost
// caches — a flush's device drops what it had not made durable, and the
// EIO comes back after later flushes succeeded; once or from then on), with
// sync: true and sync: false, on a device that grows: never an acknowledged
// write that failed, fail-stop after a failed write, flush or growth, and a
// clean recovery with every acknowledged batch, and none that an
// acknowledged delete removed.
import assert from 'node:assert/strict';

import { exploreIoFaults } from '../../tools/lab/fault_explorer.js';

/** Faults at each of the first N operations of every kind; more with RINGSTORE_FAULT_NTH (60: 4 568 runs, ~2 min). */
const NTH_MAX_DEFAULT = 12;
const NTH_MAX = Number(process.env.RINGSTORE_FAULT_NTH ?? NTH_MAX_DEFAULT);

describe('IO fault explorer', function () {
  this.timeout(600_000);

  it(`handles a fault at each of the first ${NTH_MAX} operations of every kind`, async () => {
    const report = await exploreIoFaults(NTH_MAX, 99);
    const byFault = Object.entries(report.byFault).map(([fault, counts]) => `${fault} ${counts.injected}/${counts.runs}`).join(', ');
    console.log(
      `      ${report.runs} runs, ${report.injected} with the fault hit (${byFault}; ${report.shortCuts} short runs cut a transfer inside; ${report.lostOvertaken} lost runs overtaken by a later flush; the device's growth durable in ${report.grown}; a deferred fdatasync ran in ${report.deferredSyncsRan}; a delete acknowledged in ${report.deletesAcknowledged}; a fault first hit during the deletes in ${report.faultsInDeletes}; close() refused by a read in ${report.closeReadRefusals}), ${report.violations.length} violations`,
    );
    assert.deepEqual(report.violations.slice(0, 5), []);
    // Most plans must reach their operation (the workload does more than
    // 12 of each kind but a rare one); past that, fewer and fewer do.
    for (const [fault, counts] of Object.entries(report.byFault)) {
      const hitShareMin = NTH_MAX <= NTH_MAX_DEFAULT ? 0.5 : 0;
      assert.ok(counts.injected > counts.runs * hitShareMin, `${fault} was hit in only ${counts.injected} of ${counts.runs} runs`);
    }
    // Else the short fault would only repeat EIO on one-sector writes. Of
    // the runs it hit: a kind the workload does rarely (a linked WAL write +
    // fdatasync, used only when a commit's extent data is written before its
    // WAL write goes out) is not hit at a high Nth at all.
    // And the lost fault must let flushes issued behind it succeed before
    // its error comes back, or it tests only the refusal after a failure.
    assert.ok(report.lostOvertaken > 0, `no flush overtook a lost one in ${report.byFault.lost.injected} runs`);
    assert.ok(report.shortCuts > report.byFault.short.injected / 2, `short faults cut a transfer in only ${report.shortCuts} of the ${report.byFault.short.injected} runs they hit`);
    // The faults must meet a growth (a write, flush or fallocate of it),
    // and the sync: false half the store's own deferred fdatasync, or they
    // no longer test those paths.
    assert.ok(report.grown > report.runs / 2, `the device's growth was durable in only ${report.grown} of ${report.runs} runs`);
    assert.ok(report.deferredSyncsRan > report.runs / 4, `a deferred fdatasync ran in only ${report.deferredSyncsRan} of ${report.runs} runs`);
    // The workload's deletes (and the merges and trims they bring) must
    // meet faults, and be acknowledged in runs that then lose power, or
    // the checks of deleted batches test nothing. At N ≤ 12 only trims and
    // reads reach them (118 of 920 runs); write and flush faults do at
    // higher N.
    assert.ok(report.faultsInDeletes > report.runs / 20, `a fault was first hit during the deletes in only ${report.faultsInDeletes} of ${report.runs} runs`);
    assert.ok(report.deletesAcknowledged > report.runs / 4, `a delete was acknowledged in only ${report.deletesAcknowledged} of ${report.runs} runs`);
  });
});
