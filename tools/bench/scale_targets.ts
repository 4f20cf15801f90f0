// The targets of the engine-v2 issue, checked on the scale section: absolute
// bounds on open, close and memory (what v1, which decodes every key on open
// and keeps them all in the JS heap, cannot meet at 10 M keys), and rates
// against lmdb-js measured in the same run.
//
// Absolute bounds are checked at the largest key count (the one that
// matters, and the slowest); rates against lmdb-js at every key count.
import { formatCount } from './report.js';
import { openGrowth, SCALE_LMDB_ID, SCALE_RINGSTORE_ID, type ScaleMeasurement, type ScaleRun } from './scale_report.js';
import type { StoreTargetCheck } from './store_targets.js';

/** Open after a clean close, at the largest key count. */
export const SCALE_OPEN_MS_MAX = 50;
/** open(largest N) ÷ open(smallest N): open does not grow with the key count (v1's is linear). */
export const SCALE_OPEN_GROWTH_MAX = 2;
/** Open after SIGKILL with a full WAL, at the largest key count. */
export const SCALE_CRASH_OPEN_MS_MAX = 1_000;
/** Close after the load, at the largest key count. */
export const SCALE_CLOSE_MS_MAX = 100;
/** heapUsed + arrayBuffers after reopen + random gets, at the largest key count. */
export const SCALE_MEMORY_BYTES_MAX = 192 * 1024 * 1024;
/** Random-order durable load: at least this multiple of lmdb-js's keys/s. */
export const SCALE_RANDOM_LOAD_VS_LMDB_MIN = 2;
/** Sorted durable load: at least this multiple of lmdb-js's keys/s. */
export const SCALE_SORTED_LOAD_VS_LMDB_MIN = 1.5;
/** Random gets: at least lmdb-js's sync get. */
export const SCALE_GETS_VS_LMDB_MIN = 1;
/** Ordered scan: at least lmdb-js. */
export const SCALE_SCAN_VS_LMDB_MIN = 1;

const MiB = 1024 * 1024;

/** Every target whose measurements are there (a failed or skipped phase leaves its targets out). */
export function checkScaleTargets(runs: readonly ScaleRun[]): StoreTargetCheck[] {
  const checks: StoreTargetCheck[] = [];
  const keyCounts = [...new Set(runs.map((run) => run.keyCount))].sort((a, b) => a - b);
  if (keyCounts.length === 0) return checks;
  const measurementOf = (storeId: string, keyCount: number): Partial<ScaleMeasurement> | undefined =>
    runs.find((run) => run.storeId === storeId && run.keyCount === keyCount)?.measurement;
  const keyCountMax = keyCounts[keyCounts.length - 1];
  const atMax = `${formatCount(keyCountMax)} keys`;
  const largest = measurementOf(SCALE_RINGSTORE_ID, keyCountMax);

  const maximum = (target: string, actual: number | undefined, bound: number, unit: string): void => {
    if (actual !== undefined) checks.push({ target, reference: 'absolute', actual, bound, unit, kind: 'max', met: actual <= bound });
  };
  maximum(`open after a clean close at ${atMax} ≤ ${SCALE_OPEN_MS_MAX} ms`, largest?.openMs, SCALE_OPEN_MS_MAX, 'ms');
  const growth = openGrowth(runs, SCALE_RINGSTORE_ID);
  if (growth !== undefined) {
    checks.push({
      target: `open(${formatCount(growth.keyCountMax)}) ≤ ${SCALE_OPEN_GROWTH_MAX} × open(${formatCount(growth.keyCountMin)})`,
      reference: `ringstore at ${formatCount(growth.keyCountMin)} keys`,
      actual: growth.ratio,
      bound: SCALE_OPEN_GROWTH_MAX,
      unit: '×',
      kind: 'max',
      met: growth.ratio <= SCALE_OPEN_GROWTH_MAX,
    });
  }
  maximum(`open after SIGKILL with a full WAL at ${atMax} ≤ ${SCALE_CRASH_OPEN_MS_MAX} ms`, largest?.crashOpenMs, SCALE_CRASH_OPEN_MS_MAX, 'ms');
  maximum(`close after the load at ${atMax} ≤ ${SCALE_CLOSE_MS_MAX} ms`, largest?.closeMs, SCALE_CLOSE_MS_MAX, 'ms');
  const memoryBytes = largest?.heapAndArrayBuffersBytes;
  maximum(
    `heapUsed + arrayBuffers after reopen + gets at ${atMax} ≤ ${SCALE_MEMORY_BYTES_MAX / MiB} MiB`,
    memoryBytes === undefined ? undefined : memoryBytes / MiB,
    SCALE_MEMORY_BYTES_MAX / MiB,
    'MiB',
  );

  const againstLmdb: [keyof ScaleMeasurement, string, number, string][] = [
    ['loadKeysPerSecond', 'random-order durable load', SCALE_RANDOM_LOAD_VS_LMDB_MIN, 'keys/s'],
    ['sortedLoadKeysPerSecond', 'sorted durable load', SCALE_SORTED_LOAD_VS_LMDB_MIN, 'keys/s'],
    ['getsPerSecond', "random gets ≥ lmdb-js's sync get", SCALE_GETS_VS_LMDB_MIN, 'gets/s'],
    ['scanKeysPerSecond', 'ordered scan', SCALE_SCAN_VS_LMDB_MIN, 'keys/s'],
  ];
  for (const keyCount of keyCounts) {
    for (const [field, what, factor, unit] of againstLmdb) {
      const ours = measurementOf(SCALE_RINGSTORE_ID, keyCount)?.[field];
      const theirs = measurementOf(SCALE_LMDB_ID, keyCount)?.[field];
      if (ours === undefined || theirs === undefined) continue;
      const target = what.includes('≥') ? `${what} at ${formatCount(keyCount)} keys` : `${what} at ${formatCount(keyCount)} keys ≥ ${factor} × lmdb-js`;
      checks.push({ target, reference: 'lmdb-js', actual: ours, bound: factor * theirs, unit, kind: 'min', met: ours >= factor * theirs });
    }
  }
  return checks;
}
