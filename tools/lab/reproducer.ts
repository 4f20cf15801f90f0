// Reproducers: a violation of the crash explorer, saved so that one command
// (`ringstore crash-test --replay <dir>`) builds the same crash state and
// checks it again — on another machine, after a fix, under a debugger.
//
// A reproducer directory holds:
//   trace.json, trace.data — the workload's write trace (WriteTrace.save);
//   oracle.v8              — the workload's operations and store options, in
//                            Node's structured-clone serialization (v8), which
//                            keeps Maps, typed arrays and undefined as they are;
//   state.json             — the crash point, the fate of each pending
//                            write, the recovery crash if any, the problem
//                            seen, the exploration's seed, and the version of
//                            this layout (a reproducer from another version is
//                            refused: garbage sectors, say, may be drawn
//                            differently).
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { deserialize, serialize } from 'node:v8';

import { describeSurvivors, type CrashState, type Strategy } from './crash_plan.js';
import { StateChecker } from './state_checker.js';
import { crashPointAt, type PendingChoice, type PendingPart } from './crash_states.js';
import type { WorkloadOperation } from './oracle.js';
import type { TracedWorkload, WorkloadStoreOptions } from './workload.js';
import { TRACE_DATA_FILE, TRACE_META_FILE, WriteTrace } from './write_trace.js';

export const REPRODUCER_STATE_FILE = 'state.json';
export const REPRODUCER_ORACLE_FILE = 'oracle.v8';
/** Bumped whenever a saved state would rebuild differently (layout, sector fates, garbage bytes). */
export const REPRODUCER_FORMAT_VERSION = 1;

interface SavedState {
  version: number;
  strategy: Strategy;
  eventCount: number;
  /** [trace operation id, fate] for each pending write that left something. */
  survivors: [number, PendingPart][];
  recoveryCrash: CrashState['recoveryCrash'] | null;
  problem: string;
  seed: number;
  description: string;
}

let saved = 0;

/**
 * A new reproducer directory `<prefix>-<pid>-<n>` under `directory`, holding
 * the workload's trace and oracle (what every kind of reproducer needs).
 */
export function newReproducerDirectory(directory: string, prefix: string, workload: TracedWorkload): string {
  const target = join(directory, `${prefix}-${process.pid}-${++saved}`);
  mkdirSync(target, { recursive: true });
  workload.trace.save();
  copyFileSync(join(workload.trace.directory, TRACE_META_FILE), join(target, TRACE_META_FILE));
  // The bytes are written once and never changed: a hard link is a copy
  // that costs nothing (a copy where links cannot cross file systems).
  try {
    linkSync(join(workload.trace.directory, TRACE_DATA_FILE), join(target, TRACE_DATA_FILE));
  } catch {
    copyFileSync(join(workload.trace.directory, TRACE_DATA_FILE), join(target, TRACE_DATA_FILE));
  }
  writeFileSync(join(target, REPRODUCER_ORACLE_FILE), serialize({ operations: workload.operations, store: workload.store }));
  return target;
}

/** The trace and oracle of a reproducer directory, as a workload (its trace open until the caller closes it). */
export function loadReproducerWorkload(directory: string): TracedWorkload {
  const oracle = deserialize(readFileSync(join(directory, REPRODUCER_ORACLE_FILE))) as { operations: WorkloadOperation[]; store: WorkloadStoreOptions };
  const trace = WriteTrace.load(directory);
  return { trace, base: new Uint8Array(oracle.store.sizeBytes), operations: oracle.operations, store: oracle.store };
}

/** Saves `state` of `workload` under `directory`; returns the reproducer's own directory. */
export function saveReproducer(directory: string, workload: TracedWorkload, state: CrashState, problem: string, seed: number): string {
  const target = newReproducerDirectory(directory, 'violation', workload);
  const survivors: [number, PendingPart][] = [];
  for (const operation of state.point.pending) {
    const part = state.choice.get(operation) ?? 'none';
    if (part !== 'none') survivors.push([operation.id, part]);
  }
  const record: SavedState = {
    version: REPRODUCER_FORMAT_VERSION,
    strategy: state.strategy,
    eventCount: state.point.eventCount,
    survivors,
    recoveryCrash: state.recoveryCrash ?? null,
    problem,
    seed,
    description: describeSurvivors(state),
  };
  writeFileSync(join(target, REPRODUCER_STATE_FILE), `${JSON.stringify(record, null, 1)}\n`);
  return target;
}

/** What a replayed reproducer found. */
export interface ReplayResult {
  /** What the state is: crash point and surviving writes. */
  description: string;
  /** The problem recorded when it was saved. */
  recorded: string;
  /** The problem now, or undefined if the state now passes every check. */
  problem: string | undefined;
}

/** Builds a saved state again and checks it. */
export async function replayReproducer(directory: string): Promise<ReplayResult> {
  // Operating errors (a wrong directory, another build's reproducer) carry a
  // code, so `ringstore crash-test --replay` prints them as one line.
  if (!existsSync(join(directory, REPRODUCER_STATE_FILE))) {
    throw Object.assign(new Error(`no reproducer in ${directory} (${REPRODUCER_STATE_FILE} is missing)`), { code: 'ERR_REPRODUCER_NOT_FOUND' });
  }
  const record = JSON.parse(readFileSync(join(directory, REPRODUCER_STATE_FILE), 'utf8')) as SavedState;
  if (record.version !== REPRODUCER_FORMAT_VERSION) {
    throw Object.assign(new Error(`${directory} is a reproducer of version ${String(record.version)}; this build replays version ${REPRODUCER_FORMAT_VERSION}`), {
      code: 'ERR_REPRODUCER_VERSION',
    });
  }
  const workload = loadReproducerWorkload(directory);
  const trace = workload.trace;
  try {
    const point = crashPointAt(trace, record.eventCount);
    const choice: PendingChoice = new Map(point.pending.map((operation) => [operation, 'none']));
    for (const [id, part] of record.survivors) {
      const operation = trace.operations[id];
      if (!choice.has(operation)) throw new Error(`reproducer names write #${id}, which is not pending at event ${record.eventCount}`);
      choice.set(operation, part);
    }
    const state: CrashState = { strategy: record.strategy, point, choice, key: 'replay', recoveryCrash: record.recoveryCrash ?? undefined };
    const checker = new StateChecker(workload);
    try {
      return { description: describeSurvivors(state), recorded: record.problem, problem: await checker.check(state) };
    } finally {
      await checker.close();
    }
  } finally {
    trace.close();
  }
}
