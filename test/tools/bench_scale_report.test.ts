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
    closeDirtyPages: 2_000,
    openMs: 10,
    crashOpenMs: 100,
    crashRecoveredMs: 400,
    crashWalFill: 0.45,
    getCount: 1_000_000,
    getsPerSecond: 500_000,
    getDeviceReadsPerGet: 0.9,
    heapAndArrayBuffersBytes: 64 * MiB,
    rssBytes: 200 * MiB,
    coldReaderCount: 32,
    coldGetsPerSecond: 40_000,
    coldGetDeviceReadsPerGet: 0.9,
    hotWorkingSetKeyCount: 50_000,
    hotGetsPerSecond: 800_000,
    hotGetDeviceReadsPerGet: 0,
    fioRandomReadQd32Iops: 45_000,
    fioFileSizeBytes: 656 * MiB,
    scanKeysPerSecond: 1_000_000,
    sortedLoadKeysPerSecond: 300_000,
    ...overrides,
  };
}

/** lmdb-js has no page cache of its own to count, and fio runs beside ringstore only. */
const RINGSTORE_ONLY: Partial<ScaleMeasurement> = {
  closeDirtyPages: undefined,
  getDeviceReadsPerGet: undefined,
  coldGetDeviceReadsPerGet: undefined,
  hotGetDeviceReadsPerGet: undefined,
  fioRandomReadQd32Iops: undefined,
  fioFileSizeBytes: undefined,
};

function run(storeId: 'ringstore' | 'lmdb', keyCount: number, overrides: Partial<ScaleMeasurement> = {}, errors: string[] = []): ScaleRun {
  const ours = storeId === 'lmdb' ? { ...RINGSTORE_ONLY, ...overrides } : overrides;
  return { storeId, label: storeId === 'lmdb' ? 'lmdb-js' : 'ringstore', keyCount, measurement: measurement(ours), errors };
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
    it('shows both stores, the ratio, memory in MiB, the get count, the pages dirty at the close and the WAL fill at the kill', () => {
      const runs = [run('ringstore', 1_000_000, { openMs: 5, loadKeysPerSecond: 200_000 }), run('lmdb', 1_000_000, { crashWalFill: undefined })];
      const table = formatScaleTable(1_000_000, runs);
      assert.match(table, /== scale: 1,000,000 keys/);
      assert.match(table, /random-order load, durable batches of 1,000 +keys\/s +200,000 +100,000 +2\.00/);
      assert.match(table, /open after a clean close +ms +5\.0 +10\.0 +2\.00/);
      assert.match(table, /\n {2}tree pages to write when close began, at most +pages +2,000 *\n/, 'ringstore counts its pages dirty at the close; lmdb-js has none to count');
      assert.match(table, /1,000,000 random gets over all keys in a row after reopen, one at a time \(cache smaller than the store\) +gets\/s/);
      assert.match(table, /heapUsed \+ arrayBuffers after reopen \+ those gets, default cache +MiB +64\.0 +64\.0 +1\.00/);
      assert.match(table, /random gets over all keys, 32 concurrent readers \(cache smaller than the store\) +gets\/s +40,000 +40,000 +1\.00/);
      assert.match(table, /random gets, working set of 50,000 consecutive keys in the cache +gets\/s +800,000/);
      assert.match(table, /\n {2}device reads per get +reads\/get +0\.90\n/);
      assert.match(table, /fio 4 KiB random direct read, QD32, on a 656 MiB file beside ringstore's: 45,000 IOPS; ringstore's 32 concurrent readers: 0\.89 × fio\./);
      assert.match(table, /ratio > 1: ringstore is better/);
      assert.match(table, /ringstore: WAL 45% full at the kill/);
      assert.doesNotMatch(table, /lmdb-js: WAL/);
    });

    it('leaves the cells of a failed phase empty and says why', () => {
      const failed: ScaleRun = { storeId: 'ringstore', label: 'ringstore', keyCount: 100, measurement: { loadKeysPerSecond: 1_000 }, errors: ['crash-open: exited with 1'] };
      const table = formatScaleTable(100, [failed, run('lmdb', 100)]);
      assert.match(table, /\n {2}batch latency p50 +ms +8\.0\n/);
      assert.match(table, /ringstore: FAILED: crash-open: exited with 1/);
      assert.doesNotMatch(table, /fio 4 KiB/);
    });

    it('labels a get row whose gets seldom read a page as one where the store fits the cache, and leaves the reads of lmdb-js empty', () => {
      const table = formatScaleTable(100, [run('ringstore', 100, { getDeviceReadsPerGet: 0.01, coldGetDeviceReadsPerGet: 0.49 }), run('lmdb', 100, { getDeviceReadsPerGet: undefined })]);
      assert.match(table, /1,000,000 random gets over all keys in a row after reopen, one at a time \(the store fits the cache\)/);
      assert.match(table, /random gets over all keys, 32 concurrent readers \(the store fits the cache\)/);
      assert.match(table, /\n {2}device reads per get +reads\/get +0\.01\n/);
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
    assert.equal(targets.get('heapUsed + arrayBuffers after reopen + 1,000,000 random gets, default 64 MiB cache, at 10,000,000 keys ≤ 192 MiB'), true);
    const atSmaller = checkScaleTargets([run('ringstore', 100_000), run('ringstore', 10_000_000)]).filter((check) => check.target.includes('at 100,000 keys'));
    assert.deepEqual(
      atSmaller.map((check) => check.reference),
      ['fio'],
      'no absolute bound at the smaller key count (the concurrent gets are checked against fio at every key count)',
    );
  });

  it('fails open growth beyond 2 × and memory beyond 192 MiB', () => {
    const targets = targetsOf([run('ringstore', 100_000, { openMs: 10 }), run('ringstore', 1_000_000, { openMs: 21, heapAndArrayBuffersBytes: SCALE_MEMORY_BYTES_MAX + 1 })]);
    assert.equal(targets.get('open(1,000,000) ≤ 2 × open(100,000)'), false);
    assert.equal(targets.get('heapUsed + arrayBuffers after reopen + 1,000,000 random gets, default 64 MiB cache, at 1,000,000 keys ≤ 192 MiB'), false);
  });

  it('compares rates with lmdb-js at every key count, by the factor of each target', () => {
    const checks = checkScaleTargets([
      run('ringstore', 100_000, { loadKeysPerSecond: 200_000, sortedLoadKeysPerSecond: 449_999, hotGetsPerSecond: 800_000, getsPerSecond: 1, scanKeysPerSecond: 999_999 }),
      run('lmdb', 100_000),
    ]);
    const met = new Map(checks.filter((check) => check.reference === 'lmdb-js').map((check) => [check.target, check.met]));
    assert.deepEqual(
      [...met.entries()],
      [
        ['random-order durable load at 100,000 keys ≥ 2 × lmdb-js', true],
        ['sorted durable load at 100,000 keys ≥ 1.5 × lmdb-js', false],
        ["random gets, working set in the cache, ≥ lmdb-js's sync get at 100,000 keys", true],
        ['ordered scan at 100,000 keys ≥ 1 × lmdb-js', false],
      ],
    );
  });

  it('checks the concurrent gets against 0.8 × fio where they read from the device, and only reports them where the tree fits the cache', () => {
    const checks = checkScaleTargets([
      run('ringstore', 100_000, { coldGetsPerSecond: 100_000, coldGetDeviceReadsPerGet: 0.02, fioRandomReadQd32Iops: 50_000 }),
      run('ringstore', 1_000_000, { coldGetsPerSecond: 39_999, coldGetDeviceReadsPerGet: 0.7, fioRandomReadQd32Iops: 50_000 }),
    ]).filter((check) => check.reference === 'fio');
    assert.deepEqual(
      checks.map((check) => [check.target, check.bound, check.met, check.informational]),
      [
        ['random gets, cache cold, 32 concurrent readers at 100,000 keys ≥ 0.8 × fio 4 KiB random read QD32 (not checked: the tree fits the cache, 0.02 device reads per get)', 40_000, true, true],
        ['random gets, cache cold, 32 concurrent readers at 1,000,000 keys ≥ 0.8 × fio 4 KiB random read QD32, 0.70 device reads per get', 40_000, false, false],
      ],
    );
    assert.match(formatStoreTargets(checks), /at 100,000 keys .*\(yes\)\n.*at 1,000,000 keys .* NO$/);
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
