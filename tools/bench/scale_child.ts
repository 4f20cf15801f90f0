// The child process of the scale section: one store, one key count, one
// mode, in a process of its own so that its memory figures are the store's
// alone. Started by scale_runner.ts as
//
//   node --expose-gc scale_child.js '<ScaleChildRequest as JSON>'
//
// It reports on stdout, one line each, written synchronously (a SIGKILL must
// not lose a line the parent acts on):
//   result {…}    fields of ScaleMeasurement, as each phase ends
//   killable {…}  (mode 'load') the last batch is acknowledged: kill me now
//   error MESSAGE the run failed (then exit status 1)
// Progress goes to stderr.
import { writeSync } from 'node:fs';

import { median } from './latency_recorder.js';
import { lmdbContender, loadPeers } from './peers.js';
import { formatCount } from './report.js';
import { SCALE_LMDB_ID, SCALE_RINGSTORE_ID, type ScaleMeasurement } from './scale_report.js';
import { firstRandomScaleKeyIndexes, randomScaleKey, sortedScaleKey } from './scale_keys.js';
import {
  checkScaleSample,
  fillWalForCrash,
  memoryAfterGc,
  runColdGets,
  runHotGets,
  runScaleGets,
  runScaleLoad,
  ringstoreScaleSizing,
  runScaleScan,
  SCALE_COLD_GET_COUNT,
  SCALE_COLD_READER_COUNT,
  SCALE_GET_COUNT,
  SCALE_HOT_GET_COUNT,
  SCALE_HOT_SET_KEY_COUNT,
  SCALE_SCAN_PASSES,
  SCALE_VALUE_SIZE_BYTES,
  settleReleasedMemory,
  timedMs,
  valueIndexAfterTopUp,
} from './scale_workloads.js';
import { RINGSTORE_DEFAULT, ringstoreContender, type StoreAdapter, type StoreContender } from './store_adapter.js';
import { ValueSource } from './store_workloads.js';

const MiB = 1024 * 1024;

/** Values are cut from this much random data (as in the rest of bench:store). */
const VALUE_POOL_SIZE_BYTES = 1 << 20;
/** Seed of the value pool: the same in every child, so one can check what another wrote. */
const VALUE_POOL_SEED = 0x1b873593;
/** How long a crash-open waits for the killed process's lock to go (its io_uring is torn down after the exit). */
const KILLED_LOCK_WAIT_MS_MAX = 2_000;
const KILLED_LOCK_POLL_MS = 10;

export type ScaleChildMode = 'load' | 'crash-open' | 'sorted-load';

export interface ScaleChildRequest {
  /**
   * 'load': random-order load into an empty directory, close, open, gets,
   * memory, scan, WAL top-up, then 'killable'. 'crash-open': open what the
   * killed 'load' left. 'sorted-load': ascending load into an empty directory.
   */
  mode: ScaleChildMode;
  storeId: typeof SCALE_RINGSTORE_ID | typeof SCALE_LMDB_ID;
  keyCount: number;
  directory: string;
  peersPrefix: string;
  /** For 'crash-open': how many keys (0 .. n - 1) the top-up overwrote before the kill (fillWalForCrash). */
  overwrittenCount: number;
}

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

function report(kind: 'result' | 'killable' | 'error', payload: string): void {
  writeSync(1, `${kind} ${payload}\n`);
}

function reportResult(fields: Partial<ScaleMeasurement>): void {
  report('result', JSON.stringify(fields));
}

function contenderOf(request: ScaleChildRequest): StoreContender {
  return request.storeId === SCALE_RINGSTORE_ID
    ? ringstoreContender(RINGSTORE_DEFAULT, ringstoreScaleSizing(request.keyCount))
    : lmdbContender(loadPeers(request.peersPrefix, log));
}

/**
 * The random-order load and the close after it. A function of its own so
 * that nothing the load used is reachable once it returns: a closed store
 * keeps its tree and page cache until it is collected (137 MiB of heap and
 * array buffers at 1 M keys, in a heap snapshot at the memory reading),
 * which that reading would otherwise count.
 */
async function loadAndClose(request: ScaleChildRequest, contender: StoreContender, values: ValueSource, name: string): Promise<void> {
  const loading = await contender.open(request.directory);
  const load = await runScaleLoad(loading, request.keyCount, values, randomScaleKey);
  log(`${name}: random-order load ${formatCount(load.keysPerSecond)} keys/s, batch max ${load.batchLatencyMsMax.toFixed(1)} ms`);
  reportResult({
    loadKeysPerSecond: load.keysPerSecond,
    loadBatchLatencyMsP50: load.batchLatencyMsP50,
    loadBatchLatencyMsP99: load.batchLatencyMsP99,
    loadBatchLatencyMsMax: load.batchLatencyMsMax,
  });
  const closeDirtyPages = loading.dirtyPageCount?.();
  const closeMs = await timedMs(() => loading.close());
  reportResult({ closeMs, ...(closeDirtyPages === undefined ? {} : { closeDirtyPages }) });
}

async function runLoad(request: ScaleChildRequest, contender: StoreContender, values: ValueSource, name: string): Promise<void> {
  const { keyCount, directory } = request;
  await loadAndClose(request, contender, values, name);
  // The open is timed as an application's open after a restart sees it, not
  // behind the release of the load's memory in this process (that release
  // is not the open's work; settleReleasedMemory says what it cost).
  const settle = await settleReleasedMemory();
  log(`${name}: the closed store's memory released in ${settle.waitedMs.toFixed(0)} ms${settle.settled ? '' : ' (still falling: the open below may pay for the rest)'}`);
  let store: StoreAdapter | undefined;
  const openMs = await timedMs(async () => {
    store = await contender.open(directory);
  });
  log(`${name}: open ${openMs.toFixed(1)} ms`);
  reportResult({ openMs });
  const reopened = store!;
  await checkScaleSample(reopened, keyCount, values, randomScaleKey, (index) => index, 'reopen');

  // The memory target: after reopen and 1 M random gets, default cache.
  const gets = await runScaleGets(reopened, keyCount, SCALE_GET_COUNT, values);
  const memory = memoryAfterGc();
  log(`${name}: ${formatCount(gets.getsPerSecond)} gets/s in a row, heap + arrayBuffers ${(memory.heapAndArrayBuffersBytes / MiB).toFixed(1)} MiB`);
  reportResult({ getCount: SCALE_GET_COUNT, getsPerSecond: gets.getsPerSecond, getDeviceReadsPerGet: gets.deviceReadsPerGet, ...memory });

  const cold = await runColdGets(reopened, keyCount, SCALE_COLD_GET_COUNT, SCALE_COLD_READER_COUNT, values);
  log(`${name}: ${formatCount(cold.getsPerSecond)} gets/s by ${SCALE_COLD_READER_COUNT} concurrent readers${describeDeviceReads(cold.deviceReadsPerGet)}`);
  reportResult({ coldReaderCount: SCALE_COLD_READER_COUNT, coldGetsPerSecond: cold.getsPerSecond, coldGetDeviceReadsPerGet: cold.deviceReadsPerGet });

  const workingSet = firstRandomScaleKeyIndexes(keyCount, SCALE_HOT_SET_KEY_COUNT);
  const hot = await runHotGets(reopened, workingSet, SCALE_HOT_GET_COUNT, values);
  log(`${name}: ${formatCount(hot.getsPerSecond)} gets/s from a working set of ${formatCount(workingSet.length)} keys${describeDeviceReads(hot.deviceReadsPerGet)}`);
  reportResult({ hotWorkingSetKeyCount: workingSet.length, hotGetsPerSecond: hot.getsPerSecond, hotGetDeviceReadsPerGet: hot.deviceReadsPerGet });

  const scanPasses: number[] = [];
  for (let pass = 0; pass < SCALE_SCAN_PASSES; pass++) scanPasses.push(await runScaleScan(reopened, keyCount, values));
  const scanKeysPerSecond = median(scanPasses);
  log(`${name}: ordered scans ${scanPasses.map((rate) => formatCount(rate)).join(', ')} keys/s, median ${formatCount(scanKeysPerSecond)}`);
  reportResult({ scanKeysPerSecond });
  const topUp = await fillWalForCrash(reopened, keyCount, values);
  if (topUp.walFill !== undefined) {
    log(`${name}: ${topUp.batchCount} batches of overwrites of the same ${formatCount(topUp.overwrittenKeyCount)} keys; WAL ${(topUp.walFill * 100).toFixed(0)}% full; killing`);
    reportResult({ crashWalFill: topUp.walFill });
  }
  // The last batch is acknowledged (durable): the parent kills this process
  // now, without close. Nothing more is written.
  report('killable', JSON.stringify({ overwrittenCount: topUp.overwrittenKeyCount }));
  await new Promise(() => setInterval(() => undefined, 60_000));
}

function describeDeviceReads(deviceReadsPerGet: number | undefined): string {
  return deviceReadsPerGet === undefined ? '' : `, ${deviceReadsPerGet.toFixed(2)} device reads per get`;
}

async function openWhenReleased(contender: StoreContender, directory: string): Promise<{ store: StoreAdapter; openMs: number }> {
  const deadline = Date.now() + KILLED_LOCK_WAIT_MS_MAX;
  for (;;) {
    try {
      let store: StoreAdapter | undefined;
      const openMs = await timedMs(async () => {
        store = await contender.open(directory);
      });
      return { store: store!, openMs };
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_STORE_LOCKED' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, KILLED_LOCK_POLL_MS));
    }
  }
}

async function runCrashOpen(request: ScaleChildRequest, contender: StoreContender, values: ValueSource, name: string): Promise<void> {
  const { store, openMs } = await openWhenReleased(contender, request.directory);
  // Waited for before any read, so that the sample's reads below do not slow it.
  const waitStartedMs = performance.now();
  await store.whenRecovered?.();
  const recoveredMs = openMs + (performance.now() - waitStartedMs);
  log(`${name}: open after SIGKILL ${openMs.toFixed(1)} ms, tail applied after ${recoveredMs.toFixed(1)} ms`);
  reportResult({ crashOpenMs: openMs, crashRecoveredMs: recoveredMs });
  try {
    // Acknowledged overwrites survive the kill; the rest is the load's.
    const overwritten = Math.min(request.overwrittenCount, request.keyCount);
    await checkScaleSample(store, request.keyCount, values, randomScaleKey, (index) => valueIndexAfterTopUp(index, overwritten), 'open after SIGKILL');
  } finally {
    await store.close();
  }
}

async function runSortedLoad(request: ScaleChildRequest, contender: StoreContender, values: ValueSource, name: string): Promise<void> {
  const store = await contender.open(request.directory);
  try {
    const load = await runScaleLoad(store, request.keyCount, values, sortedScaleKey);
    log(`${name}: sorted load ${formatCount(load.keysPerSecond)} keys/s`);
    reportResult({ sortedLoadKeysPerSecond: load.keysPerSecond });
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2]) as ScaleChildRequest;
  const contender = contenderOf(request);
  const name = `scale ${contender.label} ${formatCount(request.keyCount)} keys`;
  const values = new ValueSource(SCALE_VALUE_SIZE_BYTES, VALUE_POOL_SIZE_BYTES, VALUE_POOL_SEED);
  switch (request.mode) {
    case 'load':
      return runLoad(request, contender, values, name);
    case 'crash-open':
      return runCrashOpen(request, contender, values, name);
    case 'sorted-load':
      return runSortedLoad(request, contender, values, name);
  }
}

main().then(
  // A store may hold the event loop open (lmdb-js's workers).
  () => process.exit(0),
  (error: unknown) => {
    report('error', (error instanceof Error ? error.message : String(error)).replace(/\n/g, ' '));
    process.stderr.write(`bench: scale child failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
