// The scale section's report and targets (tools/bench/scale_report.ts,
// tools/bench/scale_targets.ts): ratios oriented so that > 1 means ringstore
// is better, tables per key count, open growth, and pass/fail targets.
import assert from 'node:assert/strict';

import { formatOpenGrowth, formatScaleTable, openGrowth, scaleCharts, scaleRatio, type ScaleMeasurement, type ScaleRun } from '../../tools/bench/scale_report.js';
import { checkScaleTargets, SCALE_MEMORY_BYTES_MAX } from '../../tools/bench/scale_targets.js';
import { formatStoreTargets } from '../../tools/bench/store_report.js';

const MiB = 1024 * 1024;

function measurement(overrides: Partial<ScaleMeasurement>): ScaleMeasurement {
  return {
    loadKeysPerSecond: 100_000,
    loadBatchLatencyMsP50: 8,
    loadBatchLatencyMsP99: 20,
    loadBatchLatencyMsMax: 40,
    closeMs: 10,
    openMs: 10,
    crashOpenMs: 100,
    crashWalFill: 0.45,
    getCount: 1_000_000,
    getsPerSecond: 500_000,
    heapAndArrayBuffersBytes: 64 * MiB,
    rssBytes: 200 * MiB,
    scanKeysPerSecond: 1_000_000,
    sortedLoadKeysPerSecond: 300_000,
    ...overrides,
  };
}

function run(storeId: 'ringstore' | 'lmdb', keyCount: number, overrides: Partial<ScaleMeasurement> = {}, errors: string[] = []): ScaleRun {
  return { storeId, label: storeId === 'lmdb' ? 'lmdb-js' : 'ringstore', keyCount, measurement: measurement(overrides), errors };
}

describe('scale report', () => {
  describe('scaleRatio()', () => {
    it('divides ringstore by lmdb-js for rates, so that faster is above 1', () => {
      assert.equal(scaleRatio('higher', 300, 100), 3);
    });

    it('divides lmdb-js by ringstore for times and memory, so that shorter is above 1', () => {
      assert.equal(scaleRatio('lower', 10, 40), 4);
    });

    it('gives no ratio when a side is missing or the divisor is zero', () => {
      assert.equal(scaleRatio('higher', undefined, 100), undefined);
      assert.equal(scaleRatio('lower', 10, undefined), undefined);
      assert.equal(scaleRatio('lower', 0, 40), undefined);
    });
  });

  describe('formatScaleTable()', () => {
    it('shows both stores, the ratio, memory in MiB, the get count and the WAL fill at the kill', () => {
      const runs = [run('ringstore', 1_000_000, { openMs: 5, loadKeysPerSecond: 200_000 }), run('lmdb', 1_000_000, { crashWalFill: undefined })];
      const table = formatScaleTable(1_000_000, runs);
      assert.match(table, /== scale: 1,000,000 keys/);
      assert.match(table, /random-order load, durable batches of 1,000 +keys\/s +200,000 +100,000 +2\.00/);
      assert.match(table, /open after a clean close +ms +5\.0 +10\.0 +2\.00/);
      assert.match(table, /1,000,000 random gets after reopen/);
      assert.match(table, /heapUsed \+ arrayBuffers after gets +MiB +64\.0 +64\.0 +1\.00/);
      assert.match(table, /ratio > 1: ringstore is better/);
      assert.match(table, /ringstore: WAL 45% full at the kill/);
      assert.doesNotMatch(table, /lmdb-js: WAL/);
    });

    it('leaves the cells of a failed phase empty and says why', () => {
      const failed: ScaleRun = { storeId: 'ringstore', label: 'ringstore', keyCount: 100, measurement: { loadKeysPerSecond: 1_000 }, errors: ['crash-open: exited with 1'] };
      const table = formatScaleTable(100, [failed, run('lmdb', 100)]);
      assert.match(table, /\n {2}batch latency p50 +ms +8\.0\n/);
      assert.match(table, /ringstore: FAILED: crash-open: exited with 1/);
    });
  });

  describe('openGrowth()', () => {
    it('divides open at the largest key count by open at the smallest', () => {
      const runs = [run('ringstore', 10_000_000, { openMs: 30 }), run('ringstore', 100_000, { openMs: 20 }), run('ringstore', 1_000_000, { openMs: 25 })];
      assert.deepEqual(openGrowth(runs, 'ringstore'), { keyCountMin: 100_000, keyCountMax: 10_000_000, ratio: 1.5 });
      assert.match(formatOpenGrowth(runs)!, /^open\(10,000,000\)\/open\(100,000\) after a clean close: ringstore 1\.50$/);
    });

    it('has nothing to say with one key count', () => {
      assert.equal(openGrowth([run('ringstore', 100)], 'ringstore'), undefined);
      assert.equal(formatOpenGrowth([run('ringstore', 100)]), undefined);
    });
  });

  it('draws a panel per headline metric with a bar per store and key count, the smallest first', () => {
    const panels = scaleCharts([run('ringstore', 1_000_000), run('lmdb', 1_000_000), run('ringstore', 100_000), run('lmdb', 100_000)]);
    const open = panels.find((panel) => panel.title === 'scale: open after a clean close')!;
    assert.equal(open.lowerIsBetter, true);
    assert.deepEqual(
      open.bars.map((bar) => [bar.label, bar.isRingstore]),
      [
        ['ringstore, 100,000 keys', true],
        ['lmdb-js, 100,000 keys', false],
        ['ringstore, 1,000,000 keys', true],
        ['lmdb-js, 1,000,000 keys', false],
      ],
    );
  });
});

describe('scale targets', () => {
  const targetsOf = (runs: ScaleRun[]): Map<string, boolean> => new Map(checkScaleTargets(runs).map((check) => [check.target, check.met]));

  it('checks the absolute bounds at the largest key count only, and open growth across key counts', () => {
    const targets = targetsOf([
      run('ringstore', 100_000, { openMs: 1_000, closeMs: 1_000 }),
      run('ringstore', 10_000_000, { openMs: 40, closeMs: 90, crashOpenMs: 900, heapAndArrayBuffersBytes: SCALE_MEMORY_BYTES_MAX }),
    ]);
    assert.equal(targets.get('open after a clean close at 10,000,000 keys ≤ 50 ms'), true);
    assert.equal(targets.get('open(10,000,000) ≤ 2 × open(100,000)'), true);
    assert.equal(targets.get('open after SIGKILL with a full WAL at 10,000,000 keys ≤ 1000 ms'), true);
    assert.equal(targets.get('close after the load at 10,000,000 keys ≤ 100 ms'), true);
    assert.equal(targets.get('heapUsed + arrayBuffers after reopen + gets at 10,000,000 keys ≤ 192 MiB'), true);
    assert.ok(![...targets.keys()].some((target) => target.includes('at 100,000 keys')), 'no absolute bound at the smaller key count');
  });

  it('fails open growth beyond 2 × and memory beyond 192 MiB', () => {
    const targets = targetsOf([run('ringstore', 100_000, { openMs: 10 }), run('ringstore', 1_000_000, { openMs: 21, heapAndArrayBuffersBytes: SCALE_MEMORY_BYTES_MAX + 1 })]);
    assert.equal(targets.get('open(1,000,000) ≤ 2 × open(100,000)'), false);
    assert.equal(targets.get('heapUsed + arrayBuffers after reopen + gets at 1,000,000 keys ≤ 192 MiB'), false);
  });

  it('compares rates with lmdb-js at every key count, by the factor of each target', () => {
    const checks = checkScaleTargets([
      run('ringstore', 100_000, { loadKeysPerSecond: 200_000, sortedLoadKeysPerSecond: 449_999, getsPerSecond: 500_000, scanKeysPerSecond: 999_999 }),
      run('lmdb', 100_000),
    ]);
    const met = new Map(checks.filter((check) => check.reference === 'lmdb-js').map((check) => [check.target, check.met]));
    assert.deepEqual(
      [...met.entries()],
      [
        ['random-order durable load at 100,000 keys ≥ 2 × lmdb-js', true],
        ['sorted durable load at 100,000 keys ≥ 1.5 × lmdb-js', false],
        ["random gets ≥ lmdb-js's sync get at 100,000 keys", true],
        ['ordered scan at 100,000 keys ≥ 1 × lmdb-js', false],
      ],
    );
  });

  it('leaves out the targets whose measurements are missing', () => {
    const failed: ScaleRun = { storeId: 'ringstore', label: 'ringstore', keyCount: 100, measurement: { loadKeysPerSecond: 1 }, errors: ['load: exited with 1'] };
    const checks = checkScaleTargets([failed, run('lmdb', 100)]);
    assert.deepEqual(
      checks.map((check) => check.target),
      ['random-order durable load at 100 keys ≥ 2 × lmdb-js'],
    );
  });

  it('prints its bounds as ≤ under its own title (< only for a strict bound)', () => {
    const text = formatStoreTargets(checkScaleTargets([run('ringstore', 100, { closeMs: 100 })]), 'Scale targets');
    assert.match(text, /^== Scale targets ==/);
    assert.match(text, /close after the load at 100 keys ≤ 100 ms +absolute +100\.0 ms +≤ 100\.0 ms +yes/);
    const strict = formatStoreTargets([{ target: 'reopen', reference: 'absolute', actual: 1, bound: 2, unit: 'ms', kind: 'max', strict: true, met: true }]);
    assert.match(strict, /< 2\.0 ms/);
  });
});
