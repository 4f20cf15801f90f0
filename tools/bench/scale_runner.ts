// The scale section of bench:store: for each key count N, ringstore and
// lmdb-js each loaded with N keys in random order, closed, reopened, read,
// scanned, killed with SIGKILL and reopened again, then loaded in sorted
// order into a fresh store.
//
// Every (store, N) runs in child processes of its own (scale_child.ts), so
// that one store's memory is not counted against the next: one child for
// the load and everything after it up to the kill, one for the open after
// the kill, one for the sorted load. With a memory limit (bench:store
// --scale-memory-max), each child runs in a memory cgroup of its own
// (memory_cgroup.ts): the page cache lmdb-js keeps its file in counts
// against the limit, as on a machine whose RAM the store outgrows.
//
// Between ringstore's first child and the next, fio reads 4 KiB blocks at
// random at QD32 from a file of the store file's size in the store's
// directory: the reference of the cold-gets target, on the same disk in
// the same run.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { prepareBenchFile } from './bench_file.js';
import { ensureFio, runFio } from './fio_runner.js';
import { createMemoryCgroup, type MemoryCgroup } from './memory_cgroup.js';
import { formatCount } from './report.js';
import { WORKLOADS } from './workload_spec.js';
import type { ScaleChildMode, ScaleChildRequest } from './scale_child.js';
import { SCALE_LMDB_ID, SCALE_RINGSTORE_ID, type ScaleMeasurement, type ScaleRun } from './scale_report.js';

const SCALE_CHILD_PATH = fileURLToPath(new URL('./scale_child.js', import.meta.url));
/**
 * One child that takes longer than this counts as hung: it is killed and
 * the run goes on. lmdb-js's random-order load of 10 M keys, durable batch by
 * batch, is the longest expected (~10 k batches of ~1000 random pages each).
 */
const SCALE_CHILD_TIMEOUT_MS = 90 * 60 * 1000;
/** Key counts when --scale-keys is not given: a few minutes on v1. */
export const SCALE_KEY_COUNTS_DEFAULT: readonly number[] = [100_000, 1_000_000];
/** Largest key count --scale-keys accepts: 100 M keys are ~40 GB of ringstore file. */
export const SCALE_KEY_COUNT_MAX = 100_000_000;
/** The IO bench's workload the cold-gets target is measured against: 4 KiB random direct reads, QD32. */
const SCALE_FIO_WORKLOAD = WORKLOADS.find((workload) => workload.id === 'randread-qd32')!;
/** fio's run: as bench:store's fio references (a second to wake the device, five measured). */
const SCALE_FIO_TIMING = { warmupSeconds: 1, measureSeconds: 5 };
/** prepareBenchFile writes whole MiB; fio's file is the store's size rounded up to one. */
const FIO_FILE_SIZE_UNIT_BYTES = 1024 * 1024;

const SCALE_STORES: readonly { storeId: ScaleChildRequest['storeId']; label: string }[] = [
  { storeId: SCALE_RINGSTORE_ID, label: 'ringstore' },
  { storeId: SCALE_LMDB_ID, label: 'lmdb-js' },
];

/** Parses --scale-keys: comma-separated positive integers (100000 or 100_000), returned ascending without repeats. */
export function parseScaleKeyCounts(text: string): number[] {
  const counts = text.split(',').map((part) => Number(part.trim().replace(/_/g, '')));
  const invalid = counts.filter((count) => !Number.isInteger(count) || count < 1 || count > SCALE_KEY_COUNT_MAX);
  if (counts.length === 0 || invalid.length > 0) {
    throw new RangeError(`--scale-keys must be comma-separated key counts from 1 to ${SCALE_KEY_COUNT_MAX}, got ${text}`);
  }
  return [...new Set(counts)].sort((a, b) => a - b);
}

export interface ScaleSectionOptions {
  keyCounts: readonly number[];
  /** Where the stores go: one directory per (store, N), removed afterwards unless `keep`. */
  storesDirectory: string;
  peersPrefix: string;
  keep: boolean;
  /**
   * Runs each child in a memory cgroup of its own limited to this many
   * bytes, page cache included (tools/bench/memory_cgroup.ts): a store
   * larger than it behaves as on a machine whose RAM it outgrows.
   */
  memoryMaxBytes?: number;
  log: (line: string) => void;
}

/** Runs every (store, N), N ascending, and returns what each measured; a failed child is recorded in its run's errors. */
export async function runScaleSection(options: ScaleSectionOptions): Promise<ScaleRun[]> {
  const runs: ScaleRun[] = [];
  // A host that cannot limit a child's memory is refused before any child runs.
  if (options.memoryMaxBytes !== undefined) await createMemoryCgroup(`ringstore-bench-${process.pid}-check`, options.memoryMaxBytes).remove();
  const children = new ChildRunner(options.memoryMaxBytes);
  let fioVersion: string | undefined;
  try {
    fioVersion = ensureFio(options.log);
  } catch (error) {
    options.log(`scale: no fio, so no reference for the cold gets: ${(error as Error).message}`);
  }
  for (const keyCount of options.keyCounts) {
    for (const { storeId, label } of SCALE_STORES) {
      const run: ScaleRun = { storeId, label, keyCount, measurement: {}, errors: [] };
      runs.push(run);
      options.log(`scale ${label} ${formatCount(keyCount)} keys: starting`);
      const request = (mode: ScaleChildMode, directory: string, overwrittenCount: number): ScaleChildRequest => ({
        mode,
        storeId,
        keyCount,
        directory,
        peersPrefix: options.peersPrefix,
        overwrittenCount,
      });
      const directory = freshDirectory(join(options.storesDirectory, `scale-${keyCount}-${storeId}`));
      const killed = await children.run(request('load', directory, 0), run);
      if (storeId === SCALE_RINGSTORE_ID && fioVersion !== undefined) await runFioBeside(directory, run, options.log);
      if (killed !== undefined) await children.run(request('crash-open', directory, killed.overwrittenCount), run);
      if (!options.keep) rmSync(directory, { recursive: true, force: true });
      const sortedDirectory = freshDirectory(join(options.storesDirectory, `scale-${keyCount}-${storeId}-sorted`));
      await children.run(request('sorted-load', sortedDirectory, 0), run);
      if (!options.keep) rmSync(sortedDirectory, { recursive: true, force: true });
    }
  }
  return runs;
}

/**
 * fio's random 4 KiB reads at QD32 on a fully written file the size of the
 * store's files in `directory`, put there beside them (and removed after):
 * the same file system, and a footprint the disk's caches treat alike.
 */
async function runFioBeside(directory: string, run: ScaleRun, log: (line: string) => void): Promise<void> {
  const path = join(directory, 'fio-randread.bin');
  try {
    const storeSizeBytes = readdirSync(directory).reduce((total, name) => total + statSync(join(directory, name)).size, 0);
    const sizeBytes = Math.max(1, Math.ceil(storeSizeBytes / FIO_FILE_SIZE_UNIT_BYTES)) * FIO_FILE_SIZE_UNIT_BYTES;
    const benchFile = { path, sizeBytes };
    await prepareBenchFile(benchFile, log);
    const measurement = await runFio(SCALE_FIO_WORKLOAD, benchFile, SCALE_FIO_TIMING);
    log(`scale ${run.label} ${formatCount(run.keyCount)} keys: fio ${SCALE_FIO_WORKLOAD.title} ${formatCount(measurement.iops)} IOPS`);
    Object.assign(run.measurement, { fioRandomReadQd32Iops: measurement.iops, fioFileSizeBytes: sizeBytes } satisfies Partial<ScaleMeasurement>);
  } catch (error) {
    run.errors.push(`fio: ${(error as Error).message}`);
  } finally {
    rmSync(path, { force: true });
  }
}

function freshDirectory(directory: string): string {
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  return directory;
}

/** Runs the children, each in a memory cgroup of its own when the section has a limit. */
class ChildRunner {
  readonly #memoryMaxBytes: number | undefined;
  #childCount = 0;

  constructor(memoryMaxBytes: number | undefined) {
    this.#memoryMaxBytes = memoryMaxBytes;
  }

  /**
   * Runs one child, merging its results into `run`. For mode 'load', kills
   * it with SIGKILL when it says it is killable and returns what it said
   * then; otherwise (or when it fails) returns undefined.
   */
  async run(request: ScaleChildRequest, run: ScaleRun): Promise<{ overwrittenCount: number } | undefined> {
    let cgroup: MemoryCgroup | undefined;
    if (this.#memoryMaxBytes !== undefined) {
      try {
        cgroup = createMemoryCgroup(`ringstore-bench-${process.pid}-${++this.#childCount}`, this.#memoryMaxBytes);
      } catch (error) {
        run.errors.push(`${request.mode}: ${(error as Error).message}`);
        return undefined;
      }
    }
    try {
      return await spawnChild(request, run, cgroup);
    } finally {
      await cgroup?.remove();
    }
  }
}

function spawnChild(request: ScaleChildRequest, run: ScaleRun, cgroup: MemoryCgroup | undefined): Promise<{ overwrittenCount: number } | undefined> {
  return new Promise((resolve) => {
    const nodeArgs = ['--expose-gc', SCALE_CHILD_PATH, JSON.stringify(request)];
    const { command, args } = cgroup === undefined ? { command: process.execPath, args: nodeArgs } : cgroup.wrap(process.execPath, nodeArgs);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let killable: { overwrittenCount: number } | undefined;
    let errorMessage: string | undefined;
    let timedOut = false;
    let pending = '';
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, SCALE_CHILD_TIMEOUT_MS);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        const space = line.indexOf(' ');
        const kind = space < 0 ? line : line.slice(0, space);
        const payload = space < 0 ? '' : line.slice(space + 1);
        if (kind === 'result') Object.assign(run.measurement, JSON.parse(payload) as Partial<ScaleMeasurement>);
        else if (kind === 'error') errorMessage = payload;
        else if (kind === 'killable' && request.mode === 'load' && killable === undefined) {
          killable = JSON.parse(payload) as { overwrittenCount: number };
          child.kill('SIGKILL');
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (killable !== undefined && signal === 'SIGKILL' && !timedOut) {
        resolve(killable);
        return;
      }
      if (code === 0 && request.mode !== 'load') {
        resolve(undefined);
        return;
      }
      // The kernel's OOM killer ends a child that outgrows its cgroup with SIGKILL.
      const outOfMemory = cgroup !== undefined && signal === 'SIGKILL' ? ` (out of memory in ${cgroup.directory}?)` : '';
      const why = timedOut ? `no result after ${SCALE_CHILD_TIMEOUT_MS / 60000} min: hung? (killed)` : (errorMessage ?? `exited with ${code ?? signal}${outOfMemory}`);
      run.errors.push(`${request.mode}: ${why}`);
      resolve(undefined);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      run.errors.push(`${request.mode}: could not start the child: ${error.message}`);
      resolve(undefined);
    });
  });
}
