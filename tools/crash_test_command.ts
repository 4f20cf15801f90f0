// `ringstore crash-test`: the durability lab from the command line.
//
// Traces a workload — the built-in one, or a user's module — on the real IO
// path, explores its crash states (and optionally damaged images and IO
// faults), prints a summary, and saves a reproducer for each violation;
// `--replay DIR` checks a saved reproducer again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { runBuiltinWorkload } from './lab/builtin_workload.js';
import { exploreCorruption, isDamageReproducer, replayDamageReproducer } from './lab/corruption_explorer.js';
import { exploreCrashStates, type ExplorationReport } from './lab/crash_explorer.js';
import { exploreIoFaults, isFaultReproducer, replayFaultReproducer } from './lab/fault_explorer.js';
import { startProgress, type Progress } from './cli/progress.js';
import { replayReproducer } from './lab/reproducer.js';
import { loadWorkloadModule, runWorkload, type TracedWorkload } from './lab/workload.js';
import { usageCode } from './cli/command_line.js';

export const CRASH_TEST_USAGE = `  ringstore crash-test [--states N] [--minutes M] [--seed N] [--module FILE] [--scale X]
                       [--block-size B] [--corruption N] [--faults N] [--reproducers DIR]
                           trace a workload on the real IO path and check N crash states
                           (default 20000), for at most M minutes if given. The workload is
                           the built-in one (--scale X: its size, default 4; --block-size B:
                           its store's block size, default 512), or FILE's
                           default export: async (store) => { ... } on a LabStore (put,
                           delete, batch, get, range, flush, checkpoint, reopen); FILE may
                           also export storeOptions ({ sizeBytes, blockSize, walSizeBytes,
                           encoding, sync }). --corruption N: N damaged images; --faults N:
                           IO faults at each of the first N operations of every kind.
                           Violations are saved as reproducers under DIR (default
                           ./crash-test-reproducers). Exit 1 on any violation.
  ringstore crash-test --replay DIR
                           build a saved reproducer's crash state (or damaged image, or IO
                           fault plan) again and check it`;

/** Crash states a minute on this kind of machine, to size a --minutes run's plan. */
const STATES_PER_MINUTE_ESTIMATE = 15_000;
/** Most states one run plans (each planned state holds its choice in memory). */
const PLANNED_STATES_MAX = 300_000;

/** The flags crash-test takes; any other is refused (exit 2). */
const CRASH_TEST_OPTIONS = {
  states: { type: 'string' },
  minutes: { type: 'string' },
  seed: { type: 'string' },
  module: { type: 'string' },
  scale: { type: 'string' },
  'block-size': { type: 'string' },
  corruption: { type: 'string' },
  faults: { type: 'string' },
  reproducers: { type: 'string' },
  replay: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

type CrashTestFlags = Partial<Record<Exclude<keyof typeof CRASH_TEST_OPTIONS, 'help'>, string>>;

/** A flag's number: at least `min`, and a whole one where `integer` (a count or a seed; found by a review: `--states 1.5` explored "1.5 states"). */
function numberFlag(flags: CrashTestFlags, name: keyof CrashTestFlags, fallback: number, { integer, min }: { integer: boolean; min: number }): number {
  const text = flags[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || (integer && !Number.isSafeInteger(value))) {
    throw Object.assign(new RangeError(`--${name} needs ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(text)}`), { code: 'ERR_INVALID_ARG' });
  }
  return value;
}

/** A usage error (exit 2): flags that cannot go together. */
function refuseFlags(message: string): never {
  throw Object.assign(new Error(message), { code: 'ERR_INVALID_ARG' });
}

/**
 * Progress on stderr: a bar (cli-progress) on a terminal; nothing otherwise
 * (a log or a pipe gets the summary on stdout at the end, as every command's
 * progress is silent off a terminal).
 */
function progressReporter(): { report: (done: number, total: number) => void; stop: () => void } {
  if (process.stderr.isTTY !== true) return { report: () => undefined, stop: () => undefined };
  let bar: Progress | undefined;
  return {
    report: (done, total) => {
      bar ??= startProgress('crash states', total, 'count');
      bar.setTotal(total);
      bar.update(done);
    },
    stop: () => bar?.stop(),
  };
}

function printCrashReport(report: ExplorationReport): void {
  const perMinute = report.states / (report.durationMs / 60_000);
  console.log(`crash states: ${report.states} at ${report.crashPoints} crash points in ${(report.durationMs / 1000).toFixed(1)} s (${perMinute.toFixed(0)}/min, ${report.checkers} at once)${report.skipped > 0 ? `; ${report.skipped} more planned, left for the time limit` : ''}`);
  console.log(`  by strategy: ${Object.entries(report.byStrategy).map(([name, count]) => `${name} ${count}`).join(', ')}`);
  console.log(`  by phase of the surviving pending writes: ${Object.entries(report.byPhase).map(([name, count]) => `${name} ${count}`).join(', ')}`);
  const torn = report.tornBoundaries;
  console.log(`  structure x sector boundary torn: ${torn.covered} of ${torn.total}${torn.missing.length > 0 ? ` (missing: ${torn.missing.slice(0, 8).join(', ')}${torn.missing.length > 8 ? ', ...' : ''})` : ''}`);
  console.log(`  violations: ${report.violations.length}`);
  for (const violation of report.violations.slice(0, 10)) {
    console.log(`  - ${violation.strategy} at event ${violation.eventCount}: ${violation.problem}`);
    if (violation.minimal !== undefined) console.log(`    minimal: ${violation.minimal}`);
    if (violation.reproducer !== undefined) console.log(`    replay: ringstore crash-test --replay ${violation.reproducer}`);
  }
}

async function replay(directory: string): Promise<number> {
  const result = isDamageReproducer(directory)
    ? await replayDamageReproducer(directory)
    : isFaultReproducer(directory)
      ? await replayFaultReproducer(directory)
      : await replayReproducer(directory);
  console.log(`state: ${result.description}`);
  console.log(`recorded: ${result.recorded}`);
  console.log(result.problem === undefined ? 'now: passes every check' : `now: ${result.problem}`);
  return result.problem === undefined ? 0 : 1;
}

export async function crashTestCommand(argv: string[]): Promise<number> {
  let flags: CrashTestFlags & { help?: boolean };
  try {
    const parsed = parseArgs({ args: argv, options: CRASH_TEST_OPTIONS, allowPositionals: false, strict: true });
    flags = parsed.values;
  } catch (error) {
    process.stderr.write(`ringstore: ${usageCode(error)}: ${(error as Error).message}\nusage:\n${CRASH_TEST_USAGE}\n`);
    return 2;
  }
  if (flags.help === true) {
    process.stdout.write(`usage:\n${CRASH_TEST_USAGE}\n`);
    return 0;
  }
  const replayDirectory = flags.replay;
  if (replayDirectory !== undefined) {
    // A reproducer holds its state, its seed and its workload's trace: other flags would be ignored.
    const others = Object.keys(flags).filter((name) => name !== 'replay' && name !== 'help');
    if (others.length > 0) refuseFlags(`--replay takes no other flag (its reproducer holds the state to build): ${others.map((name) => `--${name}`).join(', ')}`);
    return replay(replayDirectory);
  }
  const modulePath = flags.module;
  if (modulePath !== undefined && (flags.scale !== undefined || flags['block-size'] !== undefined)) {
    refuseFlags("--scale and --block-size size the built-in workload; with --module, FILE's storeOptions size the store");
  }
  const minutes = numberFlag(flags, 'minutes', 0, { integer: false, min: 0 });
  const states = numberFlag(flags, 'states', minutes > 0 ? Math.min(PLANNED_STATES_MAX, Math.ceil(minutes * STATES_PER_MINUTE_ESTIMATE)) : 20_000, { integer: true, min: 1 });
  const seed = numberFlag(flags, 'seed', Date.now() % 0x7fffffff, { integer: true, min: 0 });
  const scale = numberFlag(flags, 'scale', 4, { integer: false, min: Number.MIN_VALUE });
  const blockSize = numberFlag(flags, 'block-size', 512, { integer: true, min: 512 });
  const corruption = numberFlag(flags, 'corruption', 0, { integer: true, min: 0 });
  const faults = numberFlag(flags, 'faults', 0, { integer: true, min: 0 });
  const reproducers = resolve(flags.reproducers ?? 'crash-test-reproducers');
  const dir = mkdtempSync(`${tmpdir()}/ringstore-crash-test-`);
  // Ctrl-C, and SIGTERM (timeout, a CI job cancelled, docker stop; found by
  // a review: each left its files): remove the trace and the store file,
  // and (through the exit hooks) the crash image in /dev/shm.
  const interrupted = (signal: NodeJS.Signals): void => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  // The event loop emptied while the run still waits: a promise the workload
  // awaits never settles. Node would exit 0 with no summary (found by a
  // review: a CI job went green); say so and fail instead.
  let stage = 'tracing the workload';
  const stalled = (): void => {
    process.stderr.write(`ringstore: ERR_WORKLOAD_STALLED: crash-test stopped while ${stage}: nothing was left to run, so a promise it waits for never settles (a workload awaiting something that never resolves?)\n`);
    rmSync(dir, { recursive: true, force: true });
    process.exitCode = 2;
  };
  process.once('beforeExit', stalled);
  // A promise the workload left unhandled rejected (a write it did not await,
  // refused): Node would print its stack and exit 1, the code of a violation,
  // leaving the run's files (found by a review). Its failure instead.
  const unhandled = (reason: unknown): void => {
    const told = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
    process.stderr.write(`ringstore: ERR_WORKLOAD_FAILED: a promise the workload did not handle rejected while ${stage}: ${told}\n`);
    rmSync(dir, { recursive: true, force: true });
    process.exit(2);
  };
  process.on('unhandledRejection', unhandled);
  let workload: TracedWorkload | undefined;
  try {
    // A module that cannot be loaded is told as Node tells it (not as the workload's failure).
    const loaded = modulePath === undefined ? undefined : await loadWorkloadModule(modulePath);
    // What the workload function itself threw, whatever its code: a bad
    // argument it passed the store is its failure, not a usage error
    // (found by a review).
    let thrownByWorkload: { error: unknown } | undefined;
    let workloadStarted = false;
    try {
      if (loaded !== undefined) {
        process.stderr.write(`tracing ${modulePath}...\n`);
        const watched = async (store: Parameters<typeof loaded.workload>[0]): Promise<void> => {
          workloadStarted = true;
          try {
            await loaded.workload(store);
          } catch (error) {
            thrownByWorkload = { error };
            throw error;
          }
        };
        workload = await runWorkload(dir, watched, loaded.storeOptions);
      } else {
        process.stderr.write(`tracing the built-in workload (scale ${scale}, ${blockSize}-byte blocks)...\n`);
        workload = await runBuiltinWorkload(dir, scale, blockSize);
      }
    } catch (error) {
      // The workload's own failure, told as such, with where it came from
      // (it printed a bare stack and exited as a usage error; found by a
      // review). A refusal of the module's storeOptions (the store's first
      // open, before the workload runs) is told as the store tells it.
      const code = error !== null && typeof error === 'object' ? (error as { code?: unknown }).code : undefined;
      if (loaded !== undefined && !workloadStarted) throw error;
      if (code === 'ERR_INVALID_ARG' && thrownByWorkload?.error !== error) throw error;
      const told = error instanceof Error ? (error.stack ?? error.message) : String(error);
      throw Object.assign(new Error(`the workload failed while it was traced: ${typeof code === 'string' ? `${code}: ` : ''}${told}`, { cause: error }), { code: 'ERR_WORKLOAD_FAILED' });
    }
    stage = 'exploring crash states';
    const acknowledged = workload.trace.events.filter((event) => event.type === 'ack').length;
    // On stdout, for comparing runs: the same seed must give the same trace.
    console.log(`trace: ${workload.trace.operations.length} IOs, ${workload.trace.events.length} events, digest ${workload.trace.digest()}`);
    process.stderr.write(
      `${workload.trace.operations.length} IOs traced, ${workload.operations.length} operations (${acknowledged} acknowledged); exploring ${states} crash states (seed ${seed}${minutes > 0 ? `, at most ${minutes} min` : ''})\n`,
    );
    const progress = progressReporter();
    let report: ExplorationReport;
    try {
      report = await exploreCrashStates(workload, {
        states,
        seed,
        timeLimitMs: minutes > 0 ? minutes * 60_000 : undefined,
        reproducerDirectory: reproducers,
        onProgress: progress.report,
      });
    } finally {
      progress.stop();
    }
    printCrashReport(report);
    let failed = report.violations.length > 0;
    if (corruption > 0) {
      stage = 'checking damaged images';
      const damage = await exploreCorruption(workload, { trials: corruption, seed, reproducerDirectory: reproducers });
      console.log(
        `damaged images: ${damage.trials} (${Object.entries(damage.byDamage).map(([name, count]) => `${name} ${count}`).join(', ')}) in ${(damage.durationMs / 1000).toFixed(1)} s`,
      );
      console.log(`  refused opens ${damage.refusedOpens}, failed replays ${damage.failedReplays}, unrecognised ${damage.unrecognised}, detected reads ${damage.detectedReads}, silent losses ${damage.silentLosses} (documented limits), wrong reads ${damage.wrongReads}, other failures ${damage.failures.length - damage.wrongReads}`);
      damage.failures.slice(0, 10).forEach((failure, index) => {
        console.log(`  - ${failure}`);
        const reproducer = damage.reproducers[index];
        if (reproducer !== undefined) console.log(`    replay: ringstore crash-test --replay ${reproducer}`);
      });
      failed ||= damage.wrongReads > 0 || damage.failures.length > 0;
    }
    if (faults > 0) {
      stage = 'injecting IO faults';
      const faultReport = await exploreIoFaults(faults, seed, { reproducerDirectory: reproducers });
      const byFault = Object.entries(faultReport.byFault).map(([name, counts]) => `${name} ${counts.injected}/${counts.runs}`).join(', ');
      console.log(`IO faults: ${faultReport.runs} runs, ${faultReport.injected} hit the fault (${byFault}; ${faultReport.shortCuts} short writes cut inside, ${faultReport.lostOvertaken} lost flushes overtaken; the device's growth durable in ${faultReport.grown} runs, a deferred fdatasync ran in ${faultReport.deferredSyncsRan}, a delete acknowledged in ${faultReport.deletesAcknowledged}), violations ${faultReport.violations.length}`);
      faultReport.violations.slice(0, 10).forEach((violation, index) => {
        console.log(`  - ${violation}`);
        const reproducer = faultReport.reproducers[index];
        if (reproducer !== undefined) console.log(`    replay: ringstore crash-test --replay ${reproducer}`);
      });
      failed ||= faultReport.violations.length > 0;
    }
    console.log(failed ? 'crash-test: FAILED' : 'crash-test: ok');
    return failed ? 1 : 0;
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    process.removeListener('beforeExit', stalled);
    process.removeListener('unhandledRejection', unhandled);
    workload?.trace.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
