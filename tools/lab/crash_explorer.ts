// Crash explorer: replays a write trace into crash states (crash_plan.ts)
// and checks that the store recovers from each one (state_checker.ts);
// docs/crash-lab.md tells the whole story.
//
// States are checked in rounds, each a spread of the whole plan in trace
// order (the image's durable layer then only grows within a round). A violation is shrunk to a minimal set of surviving pending writes
// and saved as a reproducer directory that `ringstore crash-test --replay
// <dir>` checks again.
import { describeChoice, describeSurvivors, planStates, STRATEGIES, tornBoundaries, tornBoundariesOffered, touchedPhases, type CrashState, type Strategy } from './crash_plan.js';
import { crashPoints, type PendingPart } from './crash_states.js';
import { saveReproducer } from './reproducer.js';
import { StateChecker } from './state_checker.js';
import type { TracedWorkload } from './workload.js';

/**
 * Rounds the planned states are checked in. Each round takes every Nth
 * state of the plan (so every strategy and the whole trace) and goes
 * forward through the trace, where the image's durable layer only grows;
 * a run cut short by its time limit has still seen the whole trace.
 */
export const EXPLORATION_ROUNDS = 8;
/** Most shrinking passes over a violation's surviving writes. */
export const SHRINK_PASSES_MAX = 4;
/** Violations shrunk before they are saved (each shrink re-checks the state dozens of times). */
export const REPRODUCERS_MAX = 3;
/**
 * Violations saved as reproducers at all (the first REPRODUCERS_MAX
 * shrunk, the rest as found). Each holds the trace's metadata (the bytes
 * are hard-linked where the file system allows): a bug that fails every
 * state would otherwise fill the disk.
 */
export const REPRODUCERS_SAVED_MAX = 100;

/** Options of {@link exploreCrashStates}. */
export interface ExplorationOptions {
  /** Most crash states to check. */
  states: number;
  /** Seed of the random strategies: the same seed and trace give the same states. */
  seed: number;
  /** Stop checking once this much time has passed (states planned but unchecked are reported). */
  timeLimitMs?: number;
  /** Save reproducers of violations here (a directory per violation). */
  reproducerDirectory?: string;
  /** Called as states are checked: how many so far, of how many planned. */
  onProgress?: (done: number, total: number) => void;
}


/** A crash state that failed a check. */
export interface Violation {
  /** The strategy that planned the state. */
  strategy: Strategy;
  /** The crash point: trace events that happened before the power failed. */
  eventCount: number;
  /** The fate of each pending write, described. */
  choice: string;
  /** What check failed, and how. */
  problem: string;
  /** The shrunk state: the pending writes that must survive for the problem to show. */
  minimal?: string;
  /** Directory of the saved reproducer. */
  reproducer?: string;
}

/** What {@link exploreCrashStates} checked and found. */
export interface ExplorationReport {
  /** Crash states checked. */
  states: number;
  /** States planned but not checked because the time limit ran out. */
  skipped: number;
  /** States checked, by the strategy that planned them. */
  byStrategy: Record<Strategy, number>;
  /** States by the phases of the writes they left torn or partly on the media. */
  byPhase: Record<string, number>;
  /** Crash points of the trace. */
  crashPoints: number;
  /** Structure × sector boundary pairs the trace offers, and those torn in a checked state. */
  tornBoundaries: {
    /** Pairs offered. */
    total: number;
    /** Pairs torn in at least one checked state. */
    covered: number;
    /** Every pair offered, sorted. */
    offered: string[];
    /** Pairs offered and not torn in any checked state. */
    missing: string[];
  };
  /** Every violation found (the first ones shrunk). */
  violations: Violation[];
  /** Wall time of the exploration, ms. */
  durationMs: number;
}

/**
 * Plans crash states over a traced workload's crash points (every strategy,
 * docs/crash-lab.md), builds each one's image, and checks it on the real IO
 * path: the store opens, holds a prefix of commit order with every
 * acknowledged operation, passes verifyIntegrity and the independent fsck,
 * and takes a new write. Violations are shrunk and saved as reproducers.
 */
export async function exploreCrashStates(workload: TracedWorkload, options: ExplorationOptions): Promise<ExplorationReport> {
  const started = performance.now();
  const points = crashPoints(workload.trace);
  const states = planStates(points, options.states, options.seed);
  const offered = new Set(tornBoundariesOffered(points).keys());
  const covered = new Set<string>();
  const report: ExplorationReport = {
    states: 0,
    skipped: 0,
    byStrategy: Object.fromEntries(STRATEGIES.map((strategy) => [strategy, 0])) as Record<Strategy, number>,
    byPhase: {},
    crashPoints: points.length,
    tornBoundaries: { total: offered.size, covered: 0, offered: [...offered].sort(), missing: [] },
    violations: [],
    durationMs: 0,
  };
  const checker = new StateChecker(workload);
  try {
    const ordered = inRounds(states);
    for (const state of ordered) {
      if (options.timeLimitMs !== undefined && performance.now() - started > options.timeLimitMs) {
        report.skipped = ordered.length - report.states;
        break;
      }
      const problem = await checker.check(state);
      report.states++;
      report.byStrategy[state.strategy]++;
      for (const phase of touchedPhases(state)) report.byPhase[phase] = (report.byPhase[phase] ?? 0) + 1;
      for (const boundary of tornBoundaries(state)) covered.add(boundary);
      if (problem !== undefined) {
        const violation: Violation = { strategy: state.strategy, eventCount: state.point.eventCount, choice: state.key, problem };
        // Every violation reported is saved, shrunk or not: one that did
        // not show again is the one most in need of a replay.
        let saved: { state: CrashState; problem: string } | undefined = { state, problem };
        if (report.violations.length < REPRODUCERS_MAX) {
          const minimal = await shrink(checker, state);
          if (minimal === undefined) {
            violation.minimal = 'not reproducible: the state passed when checked again';
            saved = { state, problem: `${problem} (not reproducible: the state passed when checked again)` };
          } else {
            violation.minimal = describeSurvivors(minimal.state);
            violation.problem = minimal.problem;
            saved = minimal;
          }
        }
        if (options.reproducerDirectory !== undefined && report.violations.length < REPRODUCERS_SAVED_MAX) {
          violation.reproducer = saveReproducer(options.reproducerDirectory, workload, saved.state, saved.problem, options.seed);
        }
        report.violations.push(violation);
      }
      options.onProgress?.(report.states, ordered.length);
    }
  } finally {
    await checker.close();
  }
  report.tornBoundaries.covered = [...offered].filter((boundary) => covered.has(boundary)).length;
  report.tornBoundaries.missing = [...offered].filter((boundary) => !covered.has(boundary));
  report.durationMs = performance.now() - started;
  return report;
}

/** The plan in EXPLORATION_ROUNDS rounds, each in trace order. */
function inRounds(states: readonly CrashState[]): CrashState[] {
  const ordered: CrashState[] = [];
  for (let round = 0; round < EXPLORATION_ROUNDS; round++) {
    const members = states.filter((_, index) => index % EXPLORATION_ROUNDS === round);
    ordered.push(...members.sort((a, b) => a.point.eventCount - b.point.eventCount));
  }
  return ordered;
}

/**
 * What a problem is, without its particulars (numbers, keys): shrinking
 * keeps only states that show the same kind, so it cannot drift from "lost
 * an acknowledged write" to some other failure.
 */
export function problemKind(problem: string): string {
  return problem.split(/[:;]/)[0].replace(/\d+/g, 'N');
}

/**
 * Shrinks a violating state: drops surviving pending writes one at a time
 * (and turns torn ones whole or lost) while the same kind of problem
 * remains, until a pass changes nothing. Undefined when the state passes
 * when checked again (the problem was not deterministic).
 */
async function shrink(checker: StateChecker, state: CrashState): Promise<{ state: CrashState; problem: string } | undefined> {
  let current = state;
  let problem = await checker.check(current);
  if (problem === undefined) return undefined;
  const kind = problemKind(problem);
  for (let pass = 0; pass < SHRINK_PASSES_MAX; pass++) {
    let changed = false;
    for (const operation of current.point.pending) {
      const part = current.choice.get(operation) ?? 'none';
      if (part === 'none') continue;
      const simpler: PendingPart[] = part === 'all' ? ['none'] : ['none', 'all'];
      for (const candidatePart of simpler) {
        const choice = new Map(current.choice);
        choice.set(operation, candidatePart);
        const candidate: CrashState = { ...current, choice, key: `${current.point.eventCount}:${describeChoice(current.point, choice)}` };
        const candidateProblem = await checker.check(candidate);
        if (candidateProblem !== undefined && problemKind(candidateProblem) === kind) {
          current = candidate;
          problem = candidateProblem;
          changed = true;
          break;
        }
      }
    }
    if (!changed) break;
  }
  return { state: current, problem };
}
