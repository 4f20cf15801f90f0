// bench:io — ringstore's IO layer beside fio (io_uring engine) and Node's
// fs.promises, on the same file, the same workloads, in one run.
//
//   npm run bench:io
//   npm run bench:io -- --seconds 3 --repeat 3
//   npm run -s bench:io -- --json > result.json   # -s: without npm's banner on stdout
//
// See usage() for the options. Progress goes to stderr; stdout carries only
// the report (text, or with --json one JSON object).
import assert from 'node:assert/strict';
import { cpus, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { DEFAULT_COMPLETION_SPIN_US, DEFAULT_ENTRIES, DEFAULT_SPIN_US } from '../index.js';
import { prepareBenchFile } from './bench/bench_file.js';
import { ensureFio, runFio } from './bench/fio_runner.js';
import {
  runFsPromises,
  runRingstore,
  verifyReadsAgree,
  type BenchFile,
  type RingSpinOptions,
  type RunTiming,
} from './bench/io_workloads.js';
import { SAMPLE_COUNT_MAX } from './bench/latency_recorder.js';
import { medianMeasurement, type Measurement } from './bench/measurement.js';
import { writeChartSvg } from './bench/chart.js';
import { formatTargets, formatWorkload, workloadCharts } from './bench/report.js';
import { headlineOf, type Contender, type ContenderResult, type WorkloadResult } from './bench/results.js';
import { checkTargets } from './bench/targets.js';
import { BLOCK_SIZE_MAX, WORKLOADS, type WorkloadSpec } from './bench/workload_spec.js';
import { usageCode } from './cli/command_line.js';
import { parseSizeBytes } from './size_argument.js';

const GiB = 1024 * 1024 * 1024;
/** The bench file: 1 GiB, large enough that random reads are not served by a small device cache. */
const DEFAULT_FILE_SIZE_BYTES = 1 * GiB;
const DEFAULT_FILE_PATH_IN_REPO = join('bench-data', 'io.bin');
/** Measured seconds per contender and workload: 7 workloads × 6 contenders × (5 + warm-up) s ≈ 4 minutes a repeat. */
const DEFAULT_MEASURE_SECONDS = 5;
/** Bounded so that a QD32 run at ~150 k IOPS stays within the latency recorder's SAMPLE_COUNT_MAX. */
const MEASURE_SECONDS_MAX = 100;
/** Untimed run before each measurement (fio: --ramp_time). */
const WARMUP_SECONDS = 1;
const DEFAULT_REPEAT_COUNT = 1;
const REPEAT_COUNT_MAX = 50;
/** A busy-wait window turned off. */
const SPIN_US_OFF = 0;
/** The fixed busy-wait window compared with 'auto': the default of both before 'auto'. */
const FIXED_SPIN_US = 50;
/** Blocks read through both ringstore and fs.promises before timing, to check they agree. */
const VERIFY_BLOCK_SIZE = 4096;
/**
 * The fastest rate whose latencies a longest run still keeps in full: fio
 * reaches ~110 k IOPS at QD32 on this kind of machine. A faster disk only
 * makes the recorder keep the first SAMPLE_COUNT_MAX samples of a run.
 */
const OPS_PER_SECOND_RECORDED_MAX = 160_000;
assert.ok(MEASURE_SECONDS_MAX * OPS_PER_SECOND_RECORDED_MAX <= SAMPLE_COUNT_MAX, 'latency recorder too small for the longest run');

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const END_TO_END = 'end to end in JS: process.hrtime.bigint() around each await';
const FIO_TOTAL = 'fio lat_ns: submission + completion';
// ringstore runs four ways: as shipped (both busy-waits 'auto': each spins
// only while it measures that spinning pays); with both fixed at
// FIXED_SPIN_US (the defaults before 'auto'); without the actor's busy-poll
// (spinUs=0: every command wakes a sleeping actor); and without any busy-wait
// (also completionSpinUs=0: every completion wakes a sleeping event loop).
// 'auto' should come within a few percent of the best fixed setting. For
// the RWF_DSYNC write, a fifth: the defaults with directDsync (the write
// through the JS thread's own ring, as a store's own ring does it); for the
// random reads, the defaults without directReads (every read through the
// actor, as before session 49).
// Every row but that one sends a read alone in flight through the JS
// thread's own ring (directReads, the default): at QD1 the spin settings
// then change only what the actor and the completion spin do for it.
const CONTENDERS: readonly Contender[] = [
  { id: 'fio', kind: 'fio', label: 'fio io_uring', spin: undefined, latencyKind: FIO_TOTAL },
  ringstoreContender('ringstore', { spinUs: DEFAULT_SPIN_US, completionSpinUs: DEFAULT_COMPLETION_SPIN_US }),
  ringstoreContender('ringstore-spin50', { spinUs: FIXED_SPIN_US, completionSpinUs: FIXED_SPIN_US }),
  ringstoreContender('ringstore-spin0', { spinUs: SPIN_US_OFF, completionSpinUs: FIXED_SPIN_US }),
  ringstoreContender('ringstore-nospin', { spinUs: SPIN_US_OFF, completionSpinUs: SPIN_US_OFF }),
  {
    ...ringstoreContender('ringstore-direct-dsync', { spinUs: DEFAULT_SPIN_US, completionSpinUs: DEFAULT_COMPLETION_SPIN_US, directDsync: true }),
    label: `ringstore directDsync`,
    workloadIds: ['write-dsync-qd1'],
  },
  {
    ...ringstoreContender('ringstore-actor-reads', { spinUs: DEFAULT_SPIN_US, completionSpinUs: DEFAULT_COMPLETION_SPIN_US, directReads: false }),
    label: `ringstore no directReads`,
    workloadIds: ['randread-qd1', 'randread-qd32'],
  },
  { id: 'fs.promises', kind: 'fs.promises', label: 'fs.promises O_DIRECT', spin: undefined, latencyKind: END_TO_END },
];

function ringstoreContender(id: string, spin: RingSpinOptions): Contender {
  return { id, kind: 'ringstore', label: `ringstore spin=${spin.spinUs} cSpin=${spin.completionSpinUs}`, spin, latencyKind: END_TO_END };
}

interface Options {
  benchFile: BenchFile;
  timing: RunTiming;
  repeatCount: number;
  workloads: readonly WorkloadSpec[];
  json: boolean;
  /** Also draw the results as an SVG at this path. */
  chart: string | undefined;
}

function usage(): string {
  return [
    'usage: npm run bench:io -- [options]',
    '',
    `  --file PATH      bench file (default <repo>/${DEFAULT_FILE_PATH_IN_REPO}); created fully written, reused if`,
    '                   the size matches. Its contents are overwritten by the write workloads.',
    `  --size SIZE      file size, a multiple of 1 MiB: bytes or 512M, 1G, 2GiB... (default 1 GiB)`,
    `  --seconds N      measured seconds per contender and workload (default ${DEFAULT_MEASURE_SECONDS}, at most ${MEASURE_SECONDS_MAX});`,
    `                   each is preceded by ${WARMUP_SECONDS} s of warm-up`,
    `  --repeat N       run every measurement N times and report medians (default ${DEFAULT_REPEAT_COUNT})`,
    `  --workloads IDS  comma-separated subset of: ${WORKLOADS.map((workload) => workload.id).join(', ')}`,
    '  --json           print one JSON object on stdout instead of tables (use npm run -s: npm',
    '                   itself prints a banner on stdout)',
    '  --chart FILE     also draw the results as an SVG bar chart at FILE (per workload: IOPS or',
    '                   MiB/s, and p50 latency at queue depth 1)',
    '',
    'Installs fio with apt-get if it is not on PATH. fs.promises runs on libuv\'s thread pool:',
    'UV_THREADPOOL_SIZE and UV_USE_IO_URING change what it measures.',
  ].join('\n');
}

/** Parses argv; throws RangeError with the reason on bad input. */
function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      file: { type: 'string' },
      size: { type: 'string' },
      seconds: { type: 'string' },
      repeat: { type: 'string' },
      workloads: { type: 'string' },
      json: { type: 'boolean', default: false },
      chart: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const sizeBytes = values.size === undefined ? DEFAULT_FILE_SIZE_BYTES : sizeOption(values.size);
  if (sizeBytes <= 0 || sizeBytes % BLOCK_SIZE_MAX !== 0) {
    throw new RangeError(`--size must be a positive multiple of ${BLOCK_SIZE_MAX} bytes, got ${values.size}`);
  }
  const measureSeconds = values.seconds === undefined ? DEFAULT_MEASURE_SECONDS : Number(values.seconds);
  if (!Number.isFinite(measureSeconds) || measureSeconds <= 0 || measureSeconds > MEASURE_SECONDS_MAX) {
    throw new RangeError(`--seconds must be a number above 0 and at most ${MEASURE_SECONDS_MAX}, got ${values.seconds}`);
  }
  const repeatCount = values.repeat === undefined ? DEFAULT_REPEAT_COUNT : Number(values.repeat);
  if (!Number.isInteger(repeatCount) || repeatCount < 1 || repeatCount > REPEAT_COUNT_MAX) {
    throw new RangeError(`--repeat must be an integer from 1 to ${REPEAT_COUNT_MAX}, got ${values.repeat}`);
  }
  let workloads = WORKLOADS;
  if (values.workloads !== undefined) {
    const ids = values.workloads.split(',').map((id) => id.trim());
    const unknown = ids.filter((id) => !WORKLOADS.some((workload) => workload.id === id));
    if (unknown.length > 0) throw new RangeError(`unknown workload(s) ${unknown.join(', ')}`);
    workloads = WORKLOADS.filter((workload) => ids.includes(workload.id));
  }
  return {
    benchFile: { path: resolve(values.file ?? join(REPO_ROOT, DEFAULT_FILE_PATH_IN_REPO)), sizeBytes },
    timing: { warmupSeconds: WARMUP_SECONDS, measureSeconds },
    repeatCount,
    workloads,
    json: values.json,
    chart: values.chart,
  };
}

/** --size: bytes, or with a binary unit (1G, 512M). */
function sizeOption(text: string): number {
  const sizeBytes = parseSizeBytes(text);
  if (sizeBytes === undefined) throw new RangeError(`--size: cannot read '${text}' as a size (try 1G or 536870912)`);
  return sizeBytes;
}

function log(line: string): void {
  process.stderr.write(`bench:io: ${line}\n`);
}

function runOnce(contender: Contender, workload: WorkloadSpec, options: Options): Promise<Measurement> {
  switch (contender.kind) {
    case 'fio':
      return runFio(workload, options.benchFile, options.timing);
    case 'ringstore':
      assert.ok(contender.spin !== undefined);
      return runRingstore(workload, options.benchFile, options.timing, contender.spin);
    case 'fs.promises':
      return runFsPromises(workload, options.benchFile, options.timing);
  }
}

function describeRun(workload: WorkloadSpec, measurement: Measurement): string {
  const headline =
    workload.headline === 'iops'
      ? `${Math.round(measurement.iops)} IOPS`
      : `${headlineOf(workload, measurement).toFixed(1)} MiB/s`;
  return `${headline}, p50 ${measurement.latencyUs.p50.toFixed(1)} µs, p99 ${measurement.latencyUs.p99.toFixed(1)} µs`;
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

  const fioVersion = ensureFio(log);
  const fileOutcome = await prepareBenchFile(options.benchFile, log);
  log(`${fileOutcome === 'reused' ? 'reusing' : 'created'} ${options.benchFile.path} (${options.benchFile.sizeBytes} B)`);
  await verifyReadsAgree(options.benchFile, VERIFY_BLOCK_SIZE);

  const environment = {
    node: process.version,
    kernel: release(),
    cpuCount: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    fio: fioVersion,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
    uvUseIoUring: process.env.UV_USE_IO_URING ?? 'unset',
  };
  const startedAt = new Date().toISOString();
  const runsWorkload = (contender: Contender, workload: WorkloadSpec): boolean =>
    contender.workloadIds === undefined || contender.workloadIds.includes(workload.id);
  const runTotal = options.repeatCount * options.workloads.reduce((sum, workload) => sum + CONTENDERS.filter((contender) => runsWorkload(contender, workload)).length, 0);
  let runIndex = 0;
  const workloadResults: WorkloadResult[] = [];
  for (const workload of options.workloads) {
    const contenders = CONTENDERS.filter((contender) => runsWorkload(contender, workload));
    const runsByContender = new Map<string, Measurement[]>(contenders.map((contender) => [contender.id, []]));
    // Contenders take turns within each repeat, so slow drifts of a shared
    // machine spread over all of them instead of landing on one.
    for (let repeatIndex = 0; repeatIndex < options.repeatCount; repeatIndex++) {
      for (const contender of contenders) {
        runIndex++;
        const measurement = await runOnce(contender, workload, options);
        runsByContender.get(contender.id)!.push(measurement);
        log(`[${runIndex}/${runTotal}] ${workload.id} ${contender.label}: ${describeRun(workload, measurement)}`);
      }
    }
    const results: ContenderResult[] = contenders.map((contender) => {
      const runs = runsByContender.get(contender.id)!;
      return { contender, runs, median: medianMeasurement(runs) };
    });
    workloadResults.push({ workload, results });
  }
  const targetChecks = checkTargets(workloadResults, CONTENDERS);
  if (options.chart !== undefined) {
    const heading = [
      `ringstore bench:io, ${startedAt} (${options.repeatCount} repeat(s), medians)`,
      `node ${environment.node}, Linux ${environment.kernel}, ${environment.cpuCount} × ${environment.cpuModel}, ${fioVersion}`,
    ];
    await writeChartSvg(options.chart, heading, workloadResults.flatMap(workloadCharts));
    log(`chart: ${options.chart}`);
  }

  if (options.json) {
    const report = {
      benchmark: 'ringstore bench:io',
      startedAt,
      environment,
      config: {
        file: options.benchFile.path,
        fileSizeBytes: options.benchFile.sizeBytes,
        fileOutcome,
        measureSeconds: options.timing.measureSeconds,
        warmupSeconds: options.timing.warmupSeconds,
        repeatCount: options.repeatCount,
        ringEntries: DEFAULT_ENTRIES,
        ringBatchSize: DEFAULT_ENTRIES,
        statistic: 'median over repeats, field by field',
      },
      contenders: CONTENDERS,
      workloads: workloadResults.map(({ workload, results }) => ({
        ...workload,
        results: results.map(({ contender, runs, median }) => ({ contenderId: contender.id, median, runs })),
      })),
      targets: targetChecks,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }

  const labelOf = (contenderId: string): string => CONTENDERS.find((contender) => contender.id === contenderId)?.label ?? contenderId;
  const out: string[] = [
    `ringstore bench:io — ${startedAt}`,
    `node ${environment.node}, Linux ${environment.kernel}, ${environment.cpuCount} × ${environment.cpuModel}, ${fioVersion}`,
    `file ${options.benchFile.path} (${options.benchFile.sizeBytes / GiB} GiB, ${fileOutcome}), O_DIRECT everywhere; ` +
      `${options.timing.measureSeconds} s measured after ${options.timing.warmupSeconds} s warm-up, ` +
      `${options.repeatCount} repeat(s), medians`,
    `fs.promises: UV_THREADPOOL_SIZE=${environment.uvThreadpoolSize}, UV_USE_IO_URING=${environment.uvUseIoUring}`,
    'latency: fio = lat_ns (submission + completion, fio\'s total); ringstore and fs.promises = end to end in JS',
    '(process.hrtime.bigint() around each await). ringstore: spin = the actor thread\'s busy-poll window (spinUs),',
    'cSpin = the JS thread\'s busy-wait for completions (completionSpinUs), both µs or \'auto\' (the default:',
    'spin only while it is measured to pay); other options default. Targets judge the default row.',
    'queued/kernel p50: ring.stats() of that run\'s actor (warm-up included): time waiting for the actor\'s',
    'io_uring_enter, and from there to the CQE. batch: commands per io_uring_enter. CPU %: 100 = one core.',
    '',
  ];
  for (const workloadResult of workloadResults) out.push(formatWorkload(workloadResult, options.repeatCount), '');
  out.push(formatTargets(targetChecks, labelOf));
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:io failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
