// fio as the reference: installs it when missing, runs one workload with the
// io_uring engine on the bench file, and parses its JSON report.
//
// fio reports latencies in nanoseconds, in three sections per direction:
// slat (submission), clat (submission to completion) and lat (the two
// together: what its caller waited). `latencyUs` of the returned measurement
// is lat — the closest thing fio has to ringstore's end-to-end latency, which
// also starts before the submit. With --fdatasync=1 fio issues an fdatasync
// after every write and reports its latency in a separate 'sync' section; the
// write's own lat does not include it.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';

import type { BenchFile, RunTiming } from './io_workloads.js';
import type { Measurement, PercentilesUs } from './measurement.js';
import type { WorkloadSpec } from './workload_spec.js';

const execFileAsync = promisify(execFile);

export const FIO_COMMAND = 'fio';
/** The percentiles fio is asked for; its JSON keys them as '50.000000' and '99.000000'. */
const PERCENTILE_LIST = '50:99';
const P50_KEY = '50.000000';
const P99_KEY = '99.000000';
/** fio's JSON for one run is tens of KiB; anything near this is not a report. */
const FIO_OUTPUT_SIZE_MAX = 16 * 1024 * 1024;
/** Slack beyond warm-up + runtime before a fio run counts as hung. */
const FIO_TIMEOUT_SLACK_SECONDS = 60;
const MiB = 1024 * 1024;

/** fio's version line ("fio-3.33"), or undefined if it is not on PATH. */
export function fioVersion(): string | undefined {
  const result = spawnSync(FIO_COMMAND, ['--version'], { encoding: 'utf8' });
  if (result.error !== undefined) {
    if ((result.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw result.error;
  }
  return result.stdout.trim();
}

/**
 * Returns fio's version, installing the Debian package first if fio is not
 * on PATH. apt's output goes to stderr: stdout may be a JSON report.
 */
export function ensureFio(log: (line: string) => void): string {
  const found = fioVersion();
  if (found !== undefined) return found;
  log(`${FIO_COMMAND} is not on PATH; installing it: apt-get update && apt-get install -y fio`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', 'fio']]) {
    const result = spawnSync('apt-get', args, { stdio: ['ignore', process.stderr, process.stderr], env });
    if (result.error !== undefined || result.status !== 0) {
      const why = result.error?.message ?? `exit status ${result.status}`;
      throw new Error(`apt-get ${args.join(' ')} failed (${why}); install fio by hand and run again`);
    }
  }
  const installed = fioVersion();
  if (installed === undefined) throw new Error('apt-get installed fio but it is still not on PATH');
  return installed;
}

/**
 * A fio job that runs once through its whole file instead of for a time:
 * each byte is written once, so a job on a file whose space was allocated
 * and never written (prepareFreshSpaceFile) measures writes into new space
 * only. A timed job would wrap around into what it wrote itself.
 */
export const ONCE_THROUGH = 'once-through';
/** How long a fio job runs: a warm-up and a time, or once through the file. */
export type FioTiming = RunTiming | typeof ONCE_THROUGH;
/** A job once through its file has no time set: this bounds it as a hang. */
const FIO_ONCE_THROUGH_TIMEOUT_SECONDS = 300;

/** The fio command line for `spec` on `benchFile` (without the program name). */
export function fioArguments(spec: FioJobSpec, benchFile: BenchFile, timing: FioTiming): string[] {
  let rw: string;
  switch (spec.operation) {
    case 'read':
      rw = spec.pattern === 'random' ? 'randread' : 'read';
      break;
    case 'write':
    case 'writeAndSync':
    case 'writeDsync':
      rw = spec.pattern === 'random' ? 'randwrite' : 'write';
      break;
  }
  const args = [
    `--name=${spec.id}`,
    // fio splits --filename at ':'; a literal colon is written '\:'.
    `--filename=${benchFile.path.replaceAll(':', '\\:')}`,
    `--size=${benchFile.sizeBytes}`,
    '--ioengine=io_uring',
    '--direct=1',
    `--rw=${rw}`,
    `--bs=${spec.blockSize}`,
    `--iodepth=${spec.queueDepth}`,
    // Once through: the file's space as it is (fio would otherwise fallocate it again).
    ...(timing === ONCE_THROUGH
      ? ['--fallocate=none']
      : ['--time_based=1', `--runtime=${Math.round(timing.measureSeconds * 1000)}ms`, `--ramp_time=${Math.round(timing.warmupSeconds * 1000)}ms`]),
    // Uniform random offsets with repeats allowed, a fresh sequence each run:
    // what ringstore's loops do.
    '--norandommap=1',
    '--randrepeat=0',
    '--lat_percentiles=1',
    '--clat_percentiles=1',
    `--percentile_list=${PERCENTILE_LIST}`,
    '--output-format=json',
  ];
  if (spec.operation === 'writeAndSync') args.push(`--fdatasync=${spec.syncEvery ?? 1}`);
  // O_DSYNC on the file: every write is durable when it completes, as
  // ringstore's RWF_DSYNC writes are (the same flag, per write instead of per file).
  if (spec.operation === 'writeDsync') args.push('--sync=dsync');
  return args;
}

/** Runs `spec` under fio and returns its measurement; `latencyUs` is fio's total latency (lat_ns). */
export async function runFio(spec: FioJobSpec, benchFile: BenchFile, timing: FioTiming): Promise<Measurement> {
  const args = fioArguments(spec, benchFile, timing);
  const timeoutMs = (timing === ONCE_THROUGH ? FIO_ONCE_THROUGH_TIMEOUT_SECONDS : timing.warmupSeconds + timing.measureSeconds + FIO_TIMEOUT_SLACK_SECONDS) * 1000;
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(FIO_COMMAND, args, { maxBuffer: FIO_OUTPUT_SIZE_MAX, timeout: timeoutMs }));
  } catch (error) {
    const failed = error as { stderr?: string; message: string };
    throw new Error(`fio ${args.join(' ')} failed: ${failed.stderr?.trim() || failed.message}`);
  }
  return parseFioReport(spec, stdout);
}

interface FioLatencySection {
  N?: number;
  mean?: number;
  percentile?: Record<string, number>;
}

interface FioDirectionSection {
  iops: number;
  bw_bytes: number;
  total_ios: number;
  runtime: number;
  clat_ns: FioLatencySection;
  lat_ns: FioLatencySection;
}

interface FioJob {
  jobname: string;
  error: number;
  read: FioDirectionSection;
  write: FioDirectionSection;
  sync?: { total_ios?: number; lat_ns?: FioLatencySection };
  usr_cpu: number;
  sys_cpu: number;
}

/**
 * Parses fio's --output-format=json report of one job. fio may print
 * warnings before the JSON on stdout, so parsing starts at the first '{'.
 */
export function parseFioReport(spec: FioJobSpec, stdout: string): Measurement {
  const start = stdout.indexOf('{');
  if (start < 0) throw new Error(`fio printed no JSON report: ${stdout.slice(0, 200)}`);
  const report = JSON.parse(stdout.slice(start)) as { jobs?: FioJob[] };
  if (!Array.isArray(report.jobs) || report.jobs.length !== 1) {
    throw new Error(`fio's report has ${report.jobs?.length ?? 'no'} jobs, expected 1`);
  }
  const job = report.jobs[0];
  if (job.error !== 0) throw new Error(`fio job ${job.jobname} failed with error ${job.error}`);
  const direction = spec.operation === 'read' ? job.read : job.write;
  if (direction.total_ios === 0 || direction.runtime === 0) throw new Error(`fio job ${job.jobname} did no ${spec.operation} IO`);

  const syncSection = job.sync?.lat_ns;
  const syncLatencyUs =
    spec.operation === 'writeAndSync' && syncSection?.percentile !== undefined ? percentilesUs(syncSection, 'sync.lat_ns') : undefined;
  const measurement: Measurement = {
    opCount: direction.total_ios,
    elapsedSeconds: direction.runtime / 1000,
    iops: direction.iops,
    bandwidthMiBps: direction.bw_bytes / MiB,
    latencyUs: { ...percentilesUs(direction.lat_ns, 'lat_ns'), mean: meanUs(direction.lat_ns, 'lat_ns') },
    cpuPercent: job.usr_cpu + job.sys_cpu,
    actor: undefined,
    fio: { clatUs: percentilesUs(direction.clat_ns, 'clat_ns'), syncLatencyUs },
  };
  assert.ok(measurement.iops > 0 && measurement.latencyUs.p50 > 0);
  return measurement;
}

function meanUs(section: FioLatencySection, name: string): number {
  if (typeof section.mean !== 'number') throw new Error(`fio's report has no ${name} mean`);
  return section.mean / 1000;
}

function percentilesUs(section: FioLatencySection, name: string): PercentilesUs {
  const p50Ns = section.percentile?.[P50_KEY];
  const p99Ns = section.percentile?.[P99_KEY];
  if (typeof p50Ns !== 'number' || typeof p99Ns !== 'number') {
    throw new Error(`fio's report has no ${name} percentiles ${P50_KEY}/${P99_KEY} (is this fio older than 3.x?)`);
  }
  return { p50: p50Ns / 1000, p99: p99Ns / 1000 };
}

/**
 * A fio job as a report lists it: a WorkloadSpec, or one outside the IO
 * bench's fixed WORKLOADS (bench:store's reference into new space) under an
 * id of its own.
 */
export interface FioJobSpec extends Omit<WorkloadSpec, 'id'> {
  id: string;
  /**
   * With operation 'writeAndSync': an fdatasync after every this many
   * writes, not after each (fio's --fdatasync=N) — what concurrent durable
   * writers sharing a flush do. Default 1.
   */
  syncEvery?: number;
}
