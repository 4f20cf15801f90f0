// The scale section's results and their report: per key count, one table of
// ringstore beside lmdb-js with the ratio of the two, oriented so that > 1
// always means ringstore is better; then how open time grows with the key
// count, and the same numbers as chart panels.
import type { ChartPanel } from './chart.js';
import { formatCount, formatTable } from './report.js';
import { SCALE_SCAN_PASSES } from './scale_workloads.js';

const MiB = 1024 * 1024;

export const SCALE_RINGSTORE_ID = 'ringstore';
export const SCALE_LMDB_ID = 'lmdb';

/** What the child processes of one (store, key count) measured; every field is set by one phase. */
export interface ScaleMeasurement {
  /** Random-order durable load of all keys in batches awaited in turn. */
  loadKeysPerSecond: number;
  loadBatchLatencyMsP50: number;
  loadBatchLatencyMsP99: number;
  loadBatchLatencyMsMax: number;
  /** close() right after the load. */
  closeMs: number;
  /**
   * Tree pages the store had yet to write when close began, at most (stores
   * that report them: ringstore's running checkpoint's plan, written or
   * not, and the pages dirtied since it began): the close writes about
   * them, so they tell one close from another.
   */
  closeDirtyPages: number;
  /** open after that clean close. */
  openMs: number;
  /** open after the process was killed (SIGKILL) following its last acknowledged batch. */
  crashOpenMs: number;
  /** From the start of that open until the store has applied what it recovered (writes are accepted): crashOpenMs for stores that recover within open. */
  crashRecoveredMs: number;
  /** The store's WAL fill (0..1) at the kill, for stores that report one. */
  crashWalFill: number;
  /** Random gets over all keys right after the reopen, one at a time (SCALE_GET_COUNT). */
  getCount: number;
  getsPerSecond: number;
  /** Tree pages those gets read from the device, per get (stores with a page cache of their own: ringstore). */
  getDeviceReadsPerGet: number;
  /** process.memoryUsage() heapUsed + arrayBuffers after reopen + those gets and a gc(). */
  heapAndArrayBuffersBytes: number;
  /** process.memoryUsage().rss at the same moment (lmdb-js: includes the pages of its map that were touched). */
  rssBytes: number;
  /** Readers of the concurrent gets (SCALE_COLD_READER_COUNT). */
  coldReaderCount: number;
  /** Random gets over all keys by coldReaderCount concurrent readers, each awaiting get() in a loop. */
  coldGetsPerSecond: number;
  coldGetDeviceReadsPerGet: number;
  /** Keys of the hot-gets working set: min(N, SCALE_HOT_SET_KEY_COUNT), consecutive in key order. */
  hotWorkingSetKeyCount: number;
  /** Random gets from that working set after a warm-up pass over it, one at a time. */
  hotGetsPerSecond: number;
  hotGetDeviceReadsPerGet: number;
  /** fio 4 KiB random direct reads at QD32 on a file the size of ringstore's, in its directory (on ringstore's run). */
  fioRandomReadQd32Iops: number;
  fioFileSizeBytes: number;
  /** The median of SCALE_SCAN_PASSES ordered scans of all keys in a row (the log has each). */
  scanKeysPerSecond: number;
  /** Ascending durable load of N keys into a fresh store, in batches awaited in turn. */
  sortedLoadKeysPerSecond: number;
}

/** One store at one key count: what was measured, and why anything is missing. */
export interface ScaleRun {
  storeId: string;
  label: string;
  keyCount: number;
  measurement: Partial<ScaleMeasurement>;
  /** One line per child process that failed. */
  errors: string[];
}

export interface ScaleMetric {
  field: keyof ScaleMeasurement;
  title: string;
  unit: 'keys/s' | 'gets/s' | 'ms' | 'MiB' | 'reads/get' | 'pages';
  /** Rates: higher is better (ratio ring ÷ lmdb); times and memory: lower is better (ratio lmdb ÷ ring). */
  better: 'higher' | 'lower';
}

/**
 * A get phase counts as cold (the cache smaller than what it reads) when
 * at least this many device reads per get were made: then most
 * gets wait for a read, which is what the cold-gets target is about.
 */
export const COLD_DEVICE_READS_PER_GET_MIN = 0.5;

const DEVICE_READS_TITLE = '  device reads per get';

/** The rows of a scale table, in order (the order the phases run in). */
export const SCALE_METRICS: readonly ScaleMetric[] = [
  { field: 'loadKeysPerSecond', title: 'random-order load, durable batches of 1,000', unit: 'keys/s', better: 'higher' },
  { field: 'loadBatchLatencyMsP50', title: '  batch latency p50', unit: 'ms', better: 'lower' },
  { field: 'loadBatchLatencyMsP99', title: '  batch latency p99', unit: 'ms', better: 'lower' },
  { field: 'loadBatchLatencyMsMax', title: '  batch latency max (stalls)', unit: 'ms', better: 'lower' },
  { field: 'closeMs', title: 'close after the load', unit: 'ms', better: 'lower' },
  { field: 'closeDirtyPages', title: '  tree pages to write when close began, at most', unit: 'pages', better: 'lower' },
  { field: 'openMs', title: 'open after a clean close', unit: 'ms', better: 'lower' },
  { field: 'crashOpenMs', title: 'open after SIGKILL (full WAL)', unit: 'ms', better: 'lower' },
  { field: 'crashRecoveredMs', title: '  until the WAL tail is applied (writes accepted)', unit: 'ms', better: 'lower' },
  { field: 'getsPerSecond', title: 'random gets over all keys in a row after reopen', unit: 'gets/s', better: 'higher' },
  { field: 'getDeviceReadsPerGet', title: DEVICE_READS_TITLE, unit: 'reads/get', better: 'lower' },
  { field: 'heapAndArrayBuffersBytes', title: 'heapUsed + arrayBuffers after reopen + those gets', unit: 'MiB', better: 'lower' },
  { field: 'rssBytes', title: 'RSS after reopen + those gets', unit: 'MiB', better: 'lower' },
  { field: 'coldGetsPerSecond', title: 'random gets over all keys, concurrent readers', unit: 'gets/s', better: 'higher' },
  { field: 'coldGetDeviceReadsPerGet', title: DEVICE_READS_TITLE, unit: 'reads/get', better: 'lower' },
  { field: 'hotGetsPerSecond', title: 'random gets, working set in the cache', unit: 'gets/s', better: 'higher' },
  { field: 'hotGetDeviceReadsPerGet', title: DEVICE_READS_TITLE, unit: 'reads/get', better: 'lower' },
  { field: 'scanKeysPerSecond', title: `ordered scan of all keys, median of ${SCALE_SCAN_PASSES}`, unit: 'keys/s', better: 'higher' },
  { field: 'sortedLoadKeysPerSecond', title: 'sorted load, fresh store, batches of 1,000', unit: 'keys/s', better: 'higher' },
];

function readersLabel(measurement: Partial<ScaleMeasurement> | undefined): string {
  return measurement?.coldReaderCount === undefined ? 'concurrent readers' : `${measurement.coldReaderCount} concurrent readers`;
}

/** What the device reads of a get phase say about the cache: the label of its row. */
function cacheNote(deviceReadsPerGet: number | undefined): string {
  if (deviceReadsPerGet === undefined) return '';
  return deviceReadsPerGet >= COLD_DEVICE_READS_PER_GET_MIN ? ' (cache smaller than the store)' : ' (the store fits the cache)';
}

/** A row's title in the table of one key count: the get rows say how many gets, readers or keys, and whether the cache held the store. */
function metricTitle(metric: ScaleMetric, ringstore: Partial<ScaleMeasurement> | undefined, lmdb: Partial<ScaleMeasurement> | undefined): string {
  const getCount = ringstore?.getCount ?? lmdb?.getCount;
  const workingSet = ringstore?.hotWorkingSetKeyCount ?? lmdb?.hotWorkingSetKeyCount;
  switch (metric.field) {
    case 'getsPerSecond':
      return `${getCount === undefined ? '' : `${formatCount(getCount)} `}${metric.title}, one at a time${cacheNote(ringstore?.getDeviceReadsPerGet)}`;
    case 'heapAndArrayBuffersBytes':
    case 'rssBytes':
      return `${metric.title}, default cache`;
    case 'coldGetsPerSecond':
      return `random gets over all keys, ${readersLabel(ringstore ?? lmdb)}${cacheNote(ringstore?.coldGetDeviceReadsPerGet)}`;
    case 'hotGetsPerSecond':
      return `random gets, working set ${workingSet === undefined ? '' : `of ${formatCount(workingSet)} consecutive keys `}in the cache`;
    default:
      return metric.title;
  }
}

/** A metric's value in its display unit (bytes become MiB). */
export function metricValue(metric: ScaleMetric, measurement: Partial<ScaleMeasurement>): number | undefined {
  const value = measurement[metric.field];
  if (value === undefined) return undefined;
  return metric.unit === 'MiB' ? value / MiB : value;
}

/**
 * ringstore against lmdb-js on one metric, oriented so that > 1 means
 * ringstore is better: ring ÷ lmdb for rates, lmdb ÷ ring for times and
 * memory. undefined when either is missing or the divisor is zero.
 */
export function scaleRatio(better: ScaleMetric['better'], ringstore: number | undefined, lmdb: number | undefined): number | undefined {
  if (ringstore === undefined || lmdb === undefined) return undefined;
  const [numerator, denominator] = better === 'higher' ? [ringstore, lmdb] : [lmdb, ringstore];
  return denominator > 0 ? numerator / denominator : undefined;
}

function formatValue(unit: ScaleMetric['unit'], value: number | undefined): string {
  if (value === undefined) return '';
  if (unit === 'reads/get') return value.toFixed(2);
  return unit === 'ms' || unit === 'MiB' ? value.toFixed(1) : formatCount(value);
}

/** The table of one key count: a row per metric, a column per store, and the ratio. */
export function formatScaleTable(keyCount: number, runs: readonly ScaleRun[]): string {
  const ringstore = runs.find((run) => run.storeId === SCALE_RINGSTORE_ID && run.keyCount === keyCount);
  const lmdb = runs.find((run) => run.storeId === SCALE_LMDB_ID && run.keyCount === keyCount);
  const rows = SCALE_METRICS.map((metric) => {
    const ours = ringstore === undefined ? undefined : metricValue(metric, ringstore.measurement);
    const theirs = lmdb === undefined ? undefined : metricValue(metric, lmdb.measurement);
    const ratio = scaleRatio(metric.better, ours, theirs);
    const title = metricTitle(metric, ringstore?.measurement, lmdb?.measurement);
    return [title, metric.unit, formatValue(metric.unit, ours), formatValue(metric.unit, theirs), ratio === undefined ? '' : ratio.toFixed(2)];
  });
  const lines = [
    `== scale: ${formatCount(keyCount)} keys (16 B keys, 100 B values) ==`,
    formatTable(['', 'unit', ringstore?.label ?? 'ringstore', lmdb?.label ?? 'lmdb-js', 'ratio'], rows),
    'ratio > 1: ringstore is better (rates: ringstore ÷ lmdb-js; times and memory: lmdb-js ÷ ringstore).',
  ];
  const fio = ringstore === undefined ? undefined : formatFioReference(ringstore.measurement);
  if (fio !== undefined) lines.push(fio);
  for (const run of [ringstore, lmdb]) {
    if (run === undefined) continue;
    if (run.measurement.crashWalFill !== undefined) lines.push(`${run.label}: WAL ${(run.measurement.crashWalFill * 100).toFixed(0)}% full at the kill.`);
    for (const error of run.errors) lines.push(`${run.label}: FAILED: ${error}`);
  }
  return lines.join('\n');
}

/** The cold-gets row beside fio's random reads, when both were measured. */
function formatFioReference(measurement: Partial<ScaleMeasurement>): string | undefined {
  const { fioRandomReadQd32Iops: iops, fioFileSizeBytes: sizeBytes, coldGetsPerSecond } = measurement;
  if (iops === undefined || sizeBytes === undefined) return undefined;
  const against = coldGetsPerSecond === undefined ? '' : `; ringstore's ${readersLabel(measurement)}: ${(coldGetsPerSecond / iops).toFixed(2)} × fio`;
  return `fio 4 KiB random direct read, QD32, on a ${(sizeBytes / MiB).toFixed(0)} MiB file beside ringstore's: ${formatCount(iops)} IOPS${against}.`;
}

export interface OpenGrowth {
  keyCountMin: number;
  keyCountMax: number;
  /** open(keyCountMax) ÷ open(keyCountMin), both after a clean close. */
  ratio: number;
}

/** How `storeId`'s open after a clean close grows from the smallest to the largest key count; undefined with fewer than two. */
export function openGrowth(runs: readonly ScaleRun[], storeId: string): OpenGrowth | undefined {
  const opened = runs.filter((run) => run.storeId === storeId && run.measurement.openMs !== undefined).sort((a, b) => a.keyCount - b.keyCount);
  if (opened.length < 2) return undefined;
  const smallest = opened[0];
  const largest = opened[opened.length - 1];
  if (smallest.keyCount === largest.keyCount || smallest.measurement.openMs! <= 0) return undefined;
  return { keyCountMin: smallest.keyCount, keyCountMax: largest.keyCount, ratio: largest.measurement.openMs! / smallest.measurement.openMs! };
}

export function formatOpenGrowth(runs: readonly ScaleRun[]): string | undefined {
  const parts: string[] = [];
  let counts: OpenGrowth | undefined;
  for (const storeId of [SCALE_RINGSTORE_ID, SCALE_LMDB_ID]) {
    const growth = openGrowth(runs, storeId);
    if (growth === undefined) continue;
    counts = growth;
    parts.push(`${runs.find((run) => run.storeId === storeId)!.label} ${growth.ratio.toFixed(2)}`);
  }
  if (counts === undefined) return undefined;
  return `open(${formatCount(counts.keyCountMax)})/open(${formatCount(counts.keyCountMin)}) after a clean close: ${parts.join(', ')}`;
}

/** The metrics drawn in the chart: the headline of each phase. */
const CHARTED_FIELDS: readonly (keyof ScaleMeasurement)[] = [
  'loadKeysPerSecond',
  'loadBatchLatencyMsMax',
  'closeMs',
  'openMs',
  'crashOpenMs',
  'getsPerSecond',
  'heapAndArrayBuffersBytes',
  'coldGetsPerSecond',
  'hotGetsPerSecond',
  'scanKeysPerSecond',
  'sortedLoadKeysPerSecond',
];

/** A chart panel per headline metric, a bar per (store, key count); missing values are left out. */
export function scaleCharts(runs: readonly ScaleRun[]): ChartPanel[] {
  const ordered = [...runs].sort((a, b) => a.keyCount - b.keyCount);
  return CHARTED_FIELDS.map((field) => {
    const metric = SCALE_METRICS.find((candidate) => candidate.field === field)!;
    return {
      title: `scale: ${metric.title.trim()}`,
      unit: metric.unit,
      lowerIsBetter: metric.better === 'lower',
      bars: ordered.map((run) => ({
        label: `${run.label}, ${formatCount(run.keyCount)} keys`,
        value: metricValue(metric, run.measurement) ?? Number.NaN,
        isRingstore: run.storeId === SCALE_RINGSTORE_ID,
      })),
    };
  });
}
