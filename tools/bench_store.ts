// bench:store — ringstore as a key/value store beside lmdb-js, classic-level
// and better-sqlite3, each at its most durable setting, plus fio's numbers
// for the disk, in one run.
//
//   npm run bench
//   npm run bench -- --scale 0.2 --only one-writer,writers-64
//   npm run -s bench -- --json > result.json   # -s: without npm's banner on stdout
//   npm run bench -- --only scale --scale-keys 100000,10000000
//
// The peers are not dependencies of ringstore: they are installed on first
// use into their own prefix (bench-data/peers). Every store works in a fresh
// directory under bench-data/store, removed afterwards. Progress goes to
// stderr; stdout carries only the report (text, or with --json one object).
import { spawnSync } from 'node:child_process';
import { rmSync, mkdirSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { DEFAULT_STORE_SIZE_BYTES, IoUringActor } from '../index.js';
import { prepareBenchFile, prepareFreshSpaceFile } from './bench/bench_file.js';
import { ensureFio, ONCE_THROUGH, runFio, type FioJobSpec } from './bench/fio_runner.js';
import { median } from './bench/latency_recorder.js';
import type { Measurement } from './bench/measurement.js';
import { betterSqlite3Contender, classicLevelContender, lmdbContender, loadPeers } from './bench/peers.js';
import { ringLevelContender } from './bench/ring_level_adapter.js';
import { formatCount, formatTable } from './bench/report.js';
import { RINGSTORE_DEFAULT, RINGSTORE_FILE_SIZE_BYTES, RINGSTORE_GROWING_SIZING, ringstoreContender, withAppBatcher, type StoreAdapter, type StoreContender } from './bench/store_adapter.js';
import { writeChartSvg } from './bench/chart.js';
import { formatOpenGrowth, formatScaleTable, scaleCharts, type ScaleRun } from './bench/scale_report.js';
import { parseMemorySize } from './bench/memory_cgroup.js';
import { parseScaleKeyCounts, runScaleSection, SCALE_KEY_COUNTS_DEFAULT } from './bench/scale_runner.js';
import { checkScaleTargets } from './bench/scale_targets.js';
import { SCALE_KEY_SIZE_BYTES } from './bench/scale_keys.js';
import {
  RINGSTORE_SCALE_SIZING_NOTE,
  ringstoreScaleSizing,
  SCALE_BATCH_ENTRY_COUNT,
  SCALE_COLD_GET_COUNT,
  SCALE_COLD_READER_COUNT,
  SCALE_GET_COUNT,
  SCALE_HOT_GET_COUNT,
  SCALE_HOT_SET_KEY_COUNT,
  SCALE_VALUE_SIZE_BYTES,
} from './bench/scale_workloads.js';
import { formatPhase, formatStoreTargets, phaseChart, type PhaseRow } from './bench/store_report.js';
import { checkStoreTargets, type FioReference } from './bench/store_targets.js';
import {
  BLOB_WRITER_COUNT,
  countsFor,
  DATASET_WARMUP_KEY_COUNT,
  DATASET_WORKLOAD_IDS,
  FULL_COUNTS,
  medianRound,
  phaseSpecs,
  runBlobs,
  runBulkLoad,
  runConcurrentBlobWriters,
  runConcurrentWriters,
  runOneWriter,
  runRandomGets,
  runReopen,
  roundOrder,
  runScan,
  STORE_WORKLOAD_IDS,
  ValueSource,
  type PhaseId,
  type StoreMeasurement,
  type StoreWorkloadId,
  type WorkloadCounts,
  WRITER_PHASE_ROUNDS,
} from './bench/store_workloads.js';
import { WORKLOADS } from './bench/workload_spec.js';
import { usageCode } from './cli/command_line.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BENCH_DATA_DIRECTORY = join(REPO_ROOT, 'bench-data');
const PEERS_PREFIX = join(BENCH_DATA_DIRECTORY, 'peers');
const STORES_DIRECTORY = join(BENCH_DATA_DIRECTORY, 'store');
/** fio's file: the one bench:io uses (1 GiB, fully written, reused). */
const FIO_FILE = { path: join(BENCH_DATA_DIRECTORY, 'io.bin'), sizeBytes: 1024 ** 3 };
const FIO_MEASURE_SECONDS = 5;
const FIO_MEASURE_SECONDS_MIN = 2;
const FIO_WARMUP_SECONDS = 1;
/**
 * fio's references for the store targets, from the IO bench's WORKLOADS:
 * small durable writes, and for the blob targets 1 MiB writes (QD8, and
 * QD1 each with an fdatasync) and 1 MiB reads (QD8).
 */
const FIO_WORKLOAD_IDS = ['write-fdatasync-qd1', 'seqwrite-1m-qd8', 'write-fdatasync-1m-qd1', 'seqread-1m-qd8'] as const;
/**
 * The blob targets' 1 MiB write jobs (write + fdatasync QD1; writes QD8)
 * once through a file whose space was allocated and never written: what a
 * store's blob puts write into (a store file grows by fallocate, and a
 * freed block's hole is punched before it is reused), where fio's file
 * above is written all over. ext4 converts each written range of such space
 * as the write completes (and commits its journal at the next fdatasync):
 * QD8 ran at half the speed of an overwrite here (751 against 1 556 MiB/s,
 * session 48). Not targets' references: they tell how much of the blob
 * targets' gaps is the file system's (docs/benchmarks.md, sessions 24 and
 * 48).
 */
const FIO_NEW_SPACE_JOBS: readonly FioJobSpec[] = [
  {
    ...WORKLOADS.find((workload) => workload.id === 'write-fdatasync-1m-qd1')!,
    id: 'write-fdatasync-1m-qd1-new-space',
    title: '1 MiB sequential direct write + fdatasync, QD1, into new space (fallocated, never written)',
  },
  {
    ...WORKLOADS.find((workload) => workload.id === 'seqwrite-1m-qd8')!,
    id: 'seqwrite-1m-qd8-new-space',
    title: '1 MiB sequential direct write, QD8, into new space (fallocated, never written)',
  },
  // What 8 concurrent durable writers of 1 MiB can reach at best: their
  // writes in flight together, one fdatasync for the 8 (the target's own
  // reference flushes nothing).
  {
    ...WORKLOADS.find((workload) => workload.id === 'seqwrite-1m-qd8')!,
    operation: 'writeAndSync',
    syncEvery: BLOB_WRITER_COUNT,
    id: 'write-fdatasync8-1m-qd8-new-space',
    title: `1 MiB sequential direct write, QD8, + fdatasync after every ${BLOB_WRITER_COUNT}, into new space (fallocated, never written)`,
  },
];
/** Its file, made for the job and removed after it: 1 GiB at scale 1. */
const FIO_NEW_SPACE_FILE_BYTES_MAX = 1024 ** 3;
const FIO_NEW_SPACE_FILE_BYTES_MIN = 256 * 1024 ** 2;
/** Values of the small-value workloads are cut from this much random data. */
const VALUE_POOL_SIZE_BYTES = 1 << 20;
/** Blobs are cut from this much random data (4 MiB: each 1 MiB blob starts elsewhere). */
const BLOB_POOL_SIZE_BYTES = 4 << 20;
/**
 * One store's run of one workload that takes longer than this counts as
 * hung: the run reports it and goes on (the hung store is abandoned).
 */
const STORE_RUN_TIMEOUT_MS = 15 * 60 * 1000;

type SelectableId = StoreWorkloadId | 'fio' | 'scale';
const SELECTABLE_IDS: readonly SelectableId[] = [...STORE_WORKLOAD_IDS, 'fio', 'scale'];

interface Options {
  scale: number;
  only: ReadonlySet<SelectableId>;
  json: boolean;
  keep: boolean;
  /** Also draw the result tables as an SVG at this path. */
  chart: string | undefined;
  /** The key counts of the scale section, ascending. */
  scaleKeyCounts: readonly number[];
  /** The memory each child of the scale section may use (a cgroup of its own), if limited. */
  scaleMemoryMaxBytes: number | undefined;
}

function usage(): string {
  return [
    'usage: npm run bench -- [options]',
    '',
    '  --scale X     multiply the operation counts by X, 0 < X <= 1 (default 1: 1 M keys, 256 × 1 MiB blobs)',
    `  --only IDS    comma-separated subset of: ${SELECTABLE_IDS.join(', ')}`,
    '                (random-get, scan and reopen load the data set first, untimed unless bulk-load is selected)',
    '  --keep        keep the stores under bench-data/store after the run',
    '  --json        print one JSON object on stdout instead of tables (use npm run -s)',
    '  --chart FILE  also draw the results as an SVG bar chart at FILE (one chart per phase)',
    `  --scale-keys N,N,...  key counts of the scale section (default ${SCALE_KEY_COUNTS_DEFAULT.join(',')}; --scale does not shrink them)`,
    '                the scale section: per N, ringstore and lmdb-js loaded in random order, closed, reopened, read, scanned,',
    '                killed (SIGKILL) and reopened, then loaded in sorted order; each in child processes of its own',
    '  --scale-memory-max SIZE  run each scale child in a memory cgroup of its own limited to SIZE (1g, 512m), the OS page',
    '                cache it fills included: a store larger than SIZE behaves as on a machine whose RAM it outgrows (needs root)',
    '',
    `Peers are installed on first use: npm install --prefix ${PEERS_PREFIX} --no-save lmdb classic-level better-sqlite3@12.`,
    'fio is installed with apt-get if missing.',
  ].join('\n');
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string' },
      only: { type: 'string' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      chart: { type: 'string' },
      'scale-keys': { type: 'string' },
      'scale-memory-max': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const scale = values.scale === undefined ? 1 : Number(values.scale);
  if (!Number.isFinite(scale) || scale <= 0 || scale > 1) throw new RangeError(`--scale must be a number above 0 and at most 1, got ${values.scale}`);
  let only = new Set<SelectableId>(SELECTABLE_IDS);
  if (values.only !== undefined) {
    const ids = values.only.split(',').map((id) => id.trim());
    const unknown = ids.filter((id) => !SELECTABLE_IDS.includes(id as SelectableId));
    if (unknown.length > 0) throw new RangeError(`--only: unknown workload(s) ${unknown.join(', ')}`);
    only = new Set(ids as SelectableId[]);
  }
  const scaleKeyCounts = values['scale-keys'] === undefined ? SCALE_KEY_COUNTS_DEFAULT : parseScaleKeyCounts(values['scale-keys']);
  const scaleMemoryMaxBytes = values['scale-memory-max'] === undefined ? undefined : parseMemorySize(values['scale-memory-max']);
  return { scale, only, json: values.json, keep: values.keep, chart: values.chart, scaleKeyCounts, scaleMemoryMaxBytes };
}

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Results by phase, in the order the phases first ran. */
class Results {
  readonly #rows = new Map<PhaseId, PhaseRow[]>();
  failureCount = 0;

  add(phaseId: PhaseId, contender: StoreContender, measurement: StoreMeasurement): void {
    this.#rowsOf(phaseId).push({ contenderId: contender.id, label: contender.label, measurement, error: undefined });
    const headline =
      measurement.bandwidthMiBps !== undefined
        ? `${measurement.bandwidthMiBps.toFixed(1)} MiB/s`
        : measurement.opCount === 1
          ? `${(measurement.elapsedSeconds * 1000).toFixed(1)} ms`
          : `${Math.round(measurement.opsPerSecond)} ops/s`;
    const latency = measurement.latencyUs === undefined ? '' : `, p50 ${measurement.latencyUs.p50.toFixed(1)} µs, p99 ${measurement.latencyUs.p99.toFixed(1)} µs`;
    log(`${phaseId} ${contender.label}: ${headline}${latency}`);
  }

  fail(phaseIds: readonly PhaseId[], contender: StoreContender, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.failureCount++;
    log(`${phaseIds.join('+')} ${contender.label} FAILED: ${error instanceof Error ? (error.stack ?? message) : message}`);
    for (const phaseId of phaseIds) {
      if (!this.#rowsOf(phaseId).some((row) => row.contenderId === contender.id)) {
        this.#rowsOf(phaseId).push({ contenderId: contender.id, label: contender.label, measurement: undefined, error: message });
      }
    }
  }

  get(phaseId: PhaseId, contenderId: string): StoreMeasurement | undefined {
    return this.#rows.get(phaseId)?.find((row) => row.contenderId === contenderId)?.measurement;
  }

  entries(): [PhaseId, PhaseRow[]][] {
    return [...this.#rows.entries()];
  }

  #rowsOf(phaseId: PhaseId): PhaseRow[] {
    let rows = this.#rows.get(phaseId);
    if (rows === undefined) this.#rows.set(phaseId, (rows = []));
    return rows;
  }
}

/**
 * Runs a workload WRITER_PHASE_ROUNDS times over `contenders`, in the order
 * roundOrder gives each round, and adds, for each phase it measures, each
 * contender's median round. `run` returns a round's measurements by phase;
 * `phasesOf` says which phases a contender has. A contender that fails a
 * round is reported failed in its phases and left out of the rounds after it.
 */
async function runInRounds(
  phasesOf: (contender: StoreContender) => readonly PhaseId[],
  contenders: readonly StoreContender[],
  results: Results,
  run: (contender: StoreContender) => Promise<Partial<Record<PhaseId, StoreMeasurement>>>,
): Promise<void> {
  const rounds = new Map<StoreContender, Map<PhaseId, StoreMeasurement[]>>(
    contenders.map((contender) => [contender, new Map(phasesOf(contender).map((phaseId) => [phaseId, []]))]),
  );
  const failed = new Set<StoreContender>();
  for (let round = 0; round < WRITER_PHASE_ROUNDS; round++) {
    for (const contender of roundOrder(contenders, round, WRITER_PHASE_ROUNDS)) {
      if (failed.has(contender)) continue;
      try {
        const measured = await run(contender);
        for (const [phaseId, measurements] of rounds.get(contender)!) {
          const measurement = measured[phaseId];
          if (measurement === undefined) throw new Error(`${phaseId}: the round measured nothing`);
          measurements.push(measurement);
          log(`${phaseId} ${contender.label}, round ${round + 1} of ${WRITER_PHASE_ROUNDS}: ${Math.round(measurement.opsPerSecond)} ops/s`);
        }
      } catch (error) {
        failed.add(contender);
        results.fail(phasesOf(contender), contender, error);
      }
    }
  }
  for (const contender of contenders) {
    if (failed.has(contender)) continue;
    for (const [phaseId, measurements] of rounds.get(contender)!) results.add(phaseId, contender, medianRound(measurements));
  }
}

/** A store's run took longer than STORE_RUN_TIMEOUT_MS: the store is abandoned, not closed. */
class StoreRunTimeout extends Error {}

/** Runs `body` on a fresh store of `contender` in its own directory, closing and (unless --keep) removing it after. */
async function withFreshStore(
  contender: StoreContender,
  workloadId: string,
  options: Options,
  body: (store: StoreAdapter, directory: string) => Promise<StoreAdapter | void>,
): Promise<void> {
  const directory = join(STORES_DIRECTORY, `${workloadId}-${contender.id}`);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  let store: StoreAdapter | undefined = await contender.open(directory);
  try {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreRunTimeout(`no result after ${STORE_RUN_TIMEOUT_MS / 60000} min: hung?`)), STORE_RUN_TIMEOUT_MS);
    });
    try {
      const replaced = await Promise.race([body(store, directory), timeout]);
      if (replaced !== undefined) store = replaced;
    } catch (error) {
      if (error instanceof StoreRunTimeout) store = undefined;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await store?.close();
    if (!options.keep && store !== undefined) rmSync(directory, { recursive: true, force: true });
  }
}

function gitDescription(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' });
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'engine', 'native', 'format'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  return `${head.stdout.trim()}${dirty.stdout.trim().length > 0 ? ' (engine/native/format modified)' : ''}`;
}

/** One fio measurement of the run; `when` says when it was taken, if not with the others at the start. */
interface FioResult {
  spec: FioJobSpec;
  measurement: Measurement;
  when?: string;
}

/** fio's measurements of the run, and how to take one more. */
interface FioRun {
  version: string;
  results: FioResult[];
  /** Measures workload `id` again now and adds it to `results`. */
  again(id: (typeof FIO_WORKLOAD_IDS)[number], when: string): Promise<void>;
}

async function runFioReferences(options: Options): Promise<FioRun> {
  const version = ensureFio(log);
  const outcome = await prepareBenchFile(FIO_FILE, log);
  log(`fio: ${outcome === 'reused' ? 'reusing' : 'created'} ${FIO_FILE.path}`);
  const measureSeconds = Math.max(FIO_MEASURE_SECONDS_MIN, FIO_MEASURE_SECONDS * options.scale);
  const results: FioResult[] = [];
  const timing = { warmupSeconds: FIO_WARMUP_SECONDS, measureSeconds };
  const measure = async (id: (typeof FIO_WORKLOAD_IDS)[number], when?: string): Promise<void> => {
    const spec = WORKLOADS.find((workload) => workload.id === id)!;
    const measurement = await runFio(spec, FIO_FILE, timing);
    log(`fio ${spec.title}${when === undefined ? '' : ` (${when})`}: ${Math.round(measurement.iops)} IOPS, ${measurement.bandwidthMiBps.toFixed(1)} MiB/s, p50 ${measurement.latencyUs.p50.toFixed(1)} µs`);
    results.push(when === undefined ? { spec, measurement } : { spec, measurement, when });
  };
  for (const id of FIO_WORKLOAD_IDS) await measure(id);
  for (const spec of FIO_NEW_SPACE_JOBS) results.push({ spec, measurement: await runFioIntoNewSpace(spec, options) });
  return { version, results, again: measure };
}

/** A job of FIO_NEW_SPACE_JOBS, on a file made for it and removed after. */
async function runFioIntoNewSpace(spec: FioJobSpec, options: Options): Promise<Measurement> {
  const sizeBytes = Math.max(FIO_NEW_SPACE_FILE_BYTES_MIN, Math.round((FIO_NEW_SPACE_FILE_BYTES_MAX * Math.min(1, options.scale)) / 2 ** 20) * 2 ** 20);
  const file = { path: join(BENCH_DATA_DIRECTORY, 'fio-new-space.bin'), sizeBytes };
  const ring = IoUringActor.start();
  try {
    await prepareFreshSpaceFile(file, ring);
    const measurement = await runFio(spec, file, ONCE_THROUGH);
    log(`fio ${spec.title}: ${measurement.bandwidthMiBps.toFixed(1)} MiB/s, p50 ${measurement.latencyUs.p50.toFixed(1)} µs`);
    return measurement;
  } finally {
    rmSync(file.path, { force: true });
    await ring.close();
  }
}

/**
 * The references of the store targets. The 4 KiB write + fdatasync QD1
 * one is the median of every measurement of it: the one-writer phase
 * measures it again right before and right after each of ringstore's rounds, since
 * this host's flush moved 2 × within minutes (fio 9 286 and 4 055 IOPS in
 * two runs of the bench, docs/benchmarks.md, session 15).
 */
function fioReference(fio: { results: FioResult[] } | undefined): FioReference {
  const measured = (id: string): Measurement | undefined => fio?.results.find((result) => result.spec.id === id)?.measurement;
  const writeSyncs = fio?.results.filter((result) => result.spec.id === 'write-fdatasync-qd1').map((result) => result.measurement) ?? [];
  const syncLatencies = writeSyncs.flatMap((measurement) => (measurement.fio?.syncLatencyUs !== undefined ? [measurement.latencyUs.p50 + measurement.fio.syncLatencyUs.p50] : []));
  return {
    writeSyncP50Us: syncLatencies.length > 0 ? median(syncLatencies) : undefined,
    writeSyncIops: writeSyncs.length > 0 ? median(writeSyncs.map((measurement) => measurement.iops)) : undefined,
    seqWriteMiBps: measured('seqwrite-1m-qd8')?.bandwidthMiBps,
    writeSync1MiBMiBps: measured('write-fdatasync-1m-qd1')?.bandwidthMiBps,
    seqReadMiBps: measured('seqread-1m-qd8')?.bandwidthMiBps,
    seqWriteNewSpaceMiBps: measured('seqwrite-1m-qd8-new-space')?.bandwidthMiBps,
    writeSync1MiBNewSpaceMiBps: measured('write-fdatasync-1m-qd1-new-space')?.bandwidthMiBps,
    writeSyncShared1MiBNewSpaceMiBps: measured('write-fdatasync8-1m-qd8-new-space')?.bandwidthMiBps,
  };
}

function formatFio(fio: { version: string; results: FioResult[] }): string {
  const rows = fio.results.map(({ spec, measurement, when }) => [
    when === undefined ? spec.title : `${spec.title} (${when})`,
    Math.round(measurement.iops).toLocaleString('en-US'),
    measurement.bandwidthMiBps.toFixed(1),
    measurement.latencyUs.p50.toFixed(1),
    measurement.fio?.syncLatencyUs?.p50.toFixed(1) ?? '',
    measurement.fio?.syncLatencyUs !== undefined ? (measurement.latencyUs.p50 + measurement.fio.syncLatencyUs.p50).toFixed(1) : '',
  ]);
  return [
    `== fio (${fio.version}, io_uring, direct, ${FIO_FILE.path}) ==`,
    formatTable(['workload', 'IOPS', 'MiB/s', 'write p50 µs', 'sync p50 µs', 'write+sync p50 µs'], rows),
    'write p50 is fio\'s lat_ns (submission + completion); fio times the fdatasync separately (sync p50); MiB/s of a write + fdatasync job counts the fdatasyncs\' time.',
    'ringstore\'s one-writer targets take the median of the write + fdatasync QD1 rows: measured at the start, and right before and after each of ringstore\'s one-writer rounds (the other one-writer rows are not bracketed).',
    `Every row but those "into new space" runs on ${FIO_FILE.path}, written all over, so its writes overwrite. Those run once through a new file whose space is allocated and never written, as a store's blobs land: not targets' references, they show what writing into new space costs on this file system.`,
  ].join('\n');
}

async function main(): Promise<void> {
  let options: Options | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`ringstore: ${usageCode(error)}: ${(error as Error).message}\n\n${usage()}\n`);
    process.exitCode = 2;
    return;
  }
  if (options === undefined) {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const counts: WorkloadCounts = countsFor(options.scale);
  const phases = phaseSpecs(counts);
  const startedAt = new Date().toISOString();
  const peers = loadPeers(PEERS_PREFIX, log);
  const ringstore = ringstoreContender();
  const ringstoreByStream = ringstoreContender({ ...RINGSTORE_DEFAULT, id: 'ringstore-stream', label: 'ringstore (createWriteStream)', putByStream: true });
  // A diagnostic row: the store on an actor with fixed 50 µs busy-polling
  // windows (the store's own actor does not spin; see STORE_RING_OPTIONS),
  // and without the JS thread's own ring: its one writer's commits
  // (directDsync: ~15 % of the one writer's rate, store_options.ts) and its
  // lone reads (directReads) go through the actor, so it differs from the
  // default row in both.
  const ringstoreSpin = ringstoreContender({
    ...RINGSTORE_DEFAULT,
    id: 'ringstore-spin',
    label: 'ringstore spinUs=50 completionSpinUs=50, no direct ring',
    actor: { fallback: 'threads', spinUs: 50, completionSpinUs: 50, directReads: false },
  });
  // A diagnostic row of the blob phases: the default row's store is made
  // at 2 GiB (RINGSTORE_FILE_SIZE_BYTES), so it never grows; this one is
  // made as a store without sizeBytes is, and grows as its blobs arrive
  // (engine/store_growth.ts: each growth's flush and superblock write queue
  // behind the blob writes in flight).
  const ringstoreGrowing = ringstoreContender(
    { ...RINGSTORE_DEFAULT, id: 'ringstore-growing', label: `ringstore, file made at ${DEFAULT_STORE_SIZE_BYTES >> 20} MiB (grows as it fills)` },
    RINGSTORE_GROWING_SIZING,
  );
  const ringLevel = ringLevelContender();
  const lmdb = lmdbContender(peers);
  const classicLevel = classicLevelContender(peers);
  const betterSqlite3 = betterSqlite3Contender(peers);
  const datasetContenders = [ringstore, ringLevel, lmdb, classicLevel, betterSqlite3];
  const classicLevelBatched = withAppBatcher(classicLevel);
  const betterSqlite3Batched = withAppBatcher(betterSqlite3);
  const allContenders = [ringstore, ringstoreSpin, ringstoreByStream, ringstoreGrowing, ringLevel, lmdb, classicLevel, betterSqlite3, classicLevelBatched, betterSqlite3Batched];
  const labelOf = (id: string): string => allContenders.find((contender) => contender.id === id)?.label ?? id;

  const fio = options.only.has('fio') ? await runFioReferences(options) : undefined;
  const results = new Results();
  const values = new ValueSource(counts.valueSizeBytes, VALUE_POOL_SIZE_BYTES);

  if (options.only.has('one-writer')) {
    await runInRounds(() => ['one-writer'], [ringstore, ringstoreSpin, ringLevel, lmdb, classicLevel, betterSqlite3], results, async (contender) => {
      // The flush ringstore's one writer is judged against, measured beside each of its rounds (fioReference).
      if (contender === ringstore) await fio?.again('write-fdatasync-qd1', "before ringstore's one writer");
      let measurement: StoreMeasurement | undefined;
      await withFreshStore(contender, 'one-writer', options, async (store) => {
        measurement = await runOneWriter(store, counts, values);
      });
      if (contender === ringstore) await fio?.again('write-fdatasync-qd1', "after ringstore's one writer");
      return { 'one-writer': measurement };
    });
  }
  if (options.only.has('writers-64')) {
    await runInRounds(() => ['writers-64'], [ringstore, ringstoreSpin, ringLevel, lmdb, classicLevel, betterSqlite3, classicLevelBatched, betterSqlite3Batched], results, async (contender) => {
      let measurement: StoreMeasurement | undefined;
      await withFreshStore(contender, 'writers-64', options, async (store) => {
        measurement = await runConcurrentWriters(store, counts, values);
      });
      return { 'writers-64': measurement };
    });
  }
  if (DATASET_WORKLOAD_IDS.some((id) => options.only.has(id))) {
    const datasetPhases: PhaseId[] = [];
    if (options.only.has('bulk-load')) datasetPhases.push('bulk-load');
    if (options.only.has('random-get')) datasetPhases.push('random-get');
    if (options.only.has('scan')) datasetPhases.push('scan');
    if (options.only.has('reopen')) datasetPhases.push('close', 'reopen');
    // Every contender's code warm before any is timed (DATASET_WARMUP_KEY_COUNT).
    const warmUpCounts: WorkloadCounts = { ...counts, bulkKeyCount: Math.min(counts.bulkKeyCount, DATASET_WARMUP_KEY_COUNT), getCount: Math.min(counts.getCount, DATASET_WARMUP_KEY_COUNT) };
    for (const contender of datasetContenders) {
      await withFreshStore(contender, 'dataset-warmup', options, async (store) => {
        await runBulkLoad(store, warmUpCounts, values);
        await runRandomGets(store, warmUpCounts, values);
        await runScan(store, warmUpCounts, values);
        log(`data-set warm-up ${contender.label}: ${warmUpCounts.bulkKeyCount} keys loaded, read and scanned (untimed)`);
      }).catch((error: unknown) => log(`data-set warm-up ${contender.label} failed: ${(error as Error).message}`));
    }
    for (const contender of datasetContenders) {
      await withFreshStore(contender, 'dataset', options, async (store, directory) => {
        const load = await runBulkLoad(store, counts, values);
        if (options.only.has('bulk-load')) results.add('bulk-load', contender, load);
        else log(`bulk-load ${contender.label} (untimed for the report): ${Math.round(load.opsPerSecond)} puts/s`);
        if (options.only.has('random-get')) results.add('random-get', contender, await runRandomGets(store, counts, values));
        if (options.only.has('scan')) results.add('scan', contender, await runScan(store, counts, values));
        if (options.only.has('reopen')) {
          const reopened = await runReopen(contender, directory, store, counts, values);
          results.add('close', contender, reopened.close);
          results.add('reopen', contender, reopened.reopen);
          return reopened.store;
        }
      }).catch((error: unknown) => results.fail(datasetPhases, contender, error));
    }
  }
  if (options.only.has('blobs')) {
    const blobs = new ValueSource(counts.blobSizeBytes, BLOB_POOL_SIZE_BYTES);
    // In rounds too: the first contender's read-back (fresh memory for the
    // values it returns) and puts trailed the rest (session 24).
    const blobPhasesOf = (contender: StoreContender): PhaseId[] => (contender === ringstoreByStream ? ['blob-write', 'blob-read'] : ['blob-write', 'blob-read', 'blob-writers-8']);
    await runInRounds(blobPhasesOf, [ringstore, ringstoreSpin, ringstoreByStream, ringstoreGrowing, lmdb, classicLevel, betterSqlite3], results, async (contender) => {
      const measured: Partial<Record<PhaseId, StoreMeasurement>> = {};
      await withFreshStore(contender, 'blobs', options, async (store) => {
        const { write, read } = await runBlobs(store, counts, blobs);
        measured['blob-write'] = write;
        measured['blob-read'] = read;
        if (blobPhasesOf(contender).includes('blob-writers-8')) measured['blob-writers-8'] = await runConcurrentBlobWriters(store, counts, blobs);
      });
      return measured;
    });
  }

  let scaleRuns: ScaleRun[] = [];
  if (options.only.has('scale')) {
    scaleRuns = await runScaleSection({
      keyCounts: options.scaleKeyCounts,
      storesDirectory: STORES_DIRECTORY,
      peersPrefix: PEERS_PREFIX,
      keep: options.keep,
      memoryMaxBytes: options.scaleMemoryMaxBytes,
      log,
    });
    for (const run of scaleRuns) results.failureCount += run.errors.length;
  }
  const scaleTargets = checkScaleTargets(scaleRuns);

  const targets = checkStoreTargets((phaseId, id) => results.get(phaseId, id), fioReference(fio), labelOf);
  const environment = {
    node: process.version,
    kernel: release(),
    cpuCount: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    ringstore: gitDescription(),
    peers: peers.versions,
    fio: fio?.version,
  };
  const durability = Object.fromEntries(allContenders.map((contender) => [contender.id, contender.durability]));

  if (options.json) {
    const report = {
      benchmark: 'ringstore bench:store',
      startedAt,
      environment,
      config: { scale: options.scale, counts, fullCounts: FULL_COUNTS, ringstoreFileSizeBytes: RINGSTORE_FILE_SIZE_BYTES, latency: 'process.hrtime.bigint() around each operation' },
      durability,
      fio: fio?.results.map(({ spec, measurement, when }) => ({ workload: spec.id, measurement, ...(when === undefined ? {} : { when }) })),
      phases: results.entries().map(([phaseId, rows]) => ({
        ...phases[phaseId],
        results: rows.map(({ contenderId, measurement, error }) => ({ contenderId, measurement, error })),
      })),
      targets,
      scale: options.only.has('scale')
        ? {
            keyCounts: options.scaleKeyCounts,
            memoryMaxBytes: options.scaleMemoryMaxBytes ?? null,
            keySizeBytes: SCALE_KEY_SIZE_BYTES,
            valueSizeBytes: SCALE_VALUE_SIZE_BYTES,
            batchEntryCount: SCALE_BATCH_ENTRY_COUNT,
            getCount: SCALE_GET_COUNT,
            coldGetCount: SCALE_COLD_GET_COUNT,
            coldReaderCount: SCALE_COLD_READER_COUNT,
            hotSetKeyCount: SCALE_HOT_SET_KEY_COUNT,
            hotGetCount: SCALE_HOT_GET_COUNT,
            ringstoreSizing: Object.fromEntries(options.scaleKeyCounts.map((keyCount) => [keyCount, ringstoreScaleSizing(keyCount)])),
            runs: scaleRuns,
            targets: scaleTargets,
          }
        : undefined,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const out: string[] = [
      `ringstore bench:store — ${startedAt}`,
      `node ${environment.node}, Linux ${environment.kernel}, ${environment.cpuCount} × ${environment.cpuModel}; ringstore ${environment.ringstore}`,
      `peers: ${Object.entries(peers.versions).map(([name, version]) => `${name} ${version}`).join(', ')} (from ${PEERS_PREFIX})`,
      `scale ${options.scale}${options.scale < 1 ? ' (counts shrunk: compare ratios, not the 1 M-key targets)' : ''}; one run; every store in a fresh directory under ${STORES_DIRECTORY}`,
      'latency: process.hrtime.bigint() around each operation (a put: until it is durable). CPU %: the whole process, 100 = one core.',
      'durability:',
      ...allContenders.map((contender) => `  ${contender.label}: ${contender.durability}`),
      '',
    ];
    if (fio !== undefined) out.push(formatFio(fio), '');
    for (const [phaseId, rows] of results.entries()) out.push(formatPhase(phases[phaseId], rows), '');
    if (results.entries().length > 0 || fio !== undefined) {
      out.push(formatStoreTargets(targets));
      if (options.scale < 1 && targets.some((check) => check.unit === 'ms')) out.push(`(reopen at scale ${options.scale}: ${counts.bulkKeyCount} keys, not 1 M)`);
    }
    if (options.only.has('scale')) {
      if (out[out.length - 1] !== '') out.push('');
      out.push(
        `scale: ${RINGSTORE_SCALE_SIZING_NOTE}; open after SIGKILL: the WAL first filled by overwrites;`,
        `  after the reopen: ${formatCount(SCALE_GET_COUNT)} random gets in a row, then heap and RSS (gc() first), then ${formatCount(SCALE_COLD_GET_COUNT)} gets by ${SCALE_COLD_READER_COUNT} concurrent readers,`,
        `  then a warm-up pass over the ${formatCount(SCALE_HOT_SET_KEY_COUNT)} smallest keys and ${formatCount(SCALE_HOT_GET_COUNT)} random gets among them; ringstore with its default cache;`,
        '  every (store, N) in child processes of its own; lmdb-js as above (durable), sync get where one is timed',
      );
      if (options.scaleMemoryMaxBytes !== undefined) {
        out.push(`  each child in a memory cgroup of its own limited to ${formatCount(options.scaleMemoryMaxBytes / 2 ** 20)} MiB, the OS page cache it fills included (--scale-memory-max)`);
      }
      for (const keyCount of options.scaleKeyCounts) out.push('', formatScaleTable(keyCount, scaleRuns));
      const growth = formatOpenGrowth(scaleRuns);
      if (growth !== undefined) out.push('', growth);
      out.push('', formatStoreTargets(scaleTargets, 'Scale targets (engine v2)'));
    }
    process.stdout.write(`${out.join('\n')}\n`);
  }
  if (options.chart !== undefined) {
    const heading = [
      `ringstore bench:store, ${startedAt} (scale ${options.scale}, one run)`,
      `node ${environment.node}, Linux ${environment.kernel}, ${environment.cpuCount} × ${environment.cpuModel}; ringstore ${environment.ringstore}`,
    ];
    await writeChartSvg(options.chart, heading, [...results.entries().map(([phaseId, rows]) => phaseChart(phases[phaseId], rows)), ...scaleCharts(scaleRuns)]);
    log(`chart: ${options.chart}`);
  }
  if (results.failureCount > 0) {
    log(`${results.failureCount} store run(s) failed; see above`);
    process.exitCode = 1;
  }
}

main().then(
  // A store abandoned as hung may hold the event loop open.
  () => process.exit(),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
