// Crash explorer: replays a write trace into crash states (crash_plan.ts)
// and checks that the store recovers from each one (state_checker.ts);
// docs/crash-lab.md tells the whole story.
//
// States are checked in rounds, each a spread of the whole plan in trace
// order (the image's durable layer then only grows within a round). A violation is shrunk to a minimal set of surviving pending writes
// and saved as a reproducer directory that `ringstore crash-test --replay
// <dir>` checks again.
import assert from 'node:assert/strict';

import { allSettledOrThrow } from '../../engine/grid.js';
import { describeChoice, describeSurvivors, planStates, STRATEGIES, tornBoundaries, tornBoundariesOffered, touchedPhases, type CrashState, type Strategy } from './crash_plan.js';
import { crashPoints, type PendingPart } from './crash_states.js';
import { saveReproducer } from './reproducer.js';
import { imageRoomBytes } from './crash_image.js';
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
/**
 * Most crash states checked at once, each by a checker with an image and a
 * ring of its own. A check waits on its ring for much of its time (the
 * image's reads and writes, the store's open and close in turn), so checks
 * in flight together fill each other's waits: 1 000 states of the built-in
 * workload took 10.1 s with one checker, 9.2 with 2, 7.1 with 4 and 5.6 with
 * 8 on a 2-core VM (medians of 3; docs/crash-lab.md).
 */
export const STATE_CHECKERS_MAX = 8;
/** Share of the room where images live (free space there, free memory) that the checkers' images may take together. */
export const IMAGE_ROOM_SHARE = 0.5;
/** Most bytes the checkers' images take together: a store of more than a quarter of it gets fewer checkers, and one of 256 MiB one. */
export const IMAGES_BYTES_MAX = 256 << 20;

/** Checkers whose images fit (IMAGE_ROOM_SHARE of `roomBytes`, IMAGES_BYTES_MAX), from 1 to STATE_CHECKERS_MAX. */
export function checkersThatFit(imageSizeBytes: number, roomBytes: number = imageRoomBytes()): number {
  const fit = Math.floor(Math.min(roomBytes * IMAGE_ROOM_SHARE, IMAGES_BYTES_MAX) / imageSizeBytes);
  return Math.max(1, Math.min(STATE_CHECKERS_MAX, fit));
}

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
  /** States checked at once (default: checkersThatFit the image); the report is the same whatever it is, but for its duration. */
  checkers?: number;
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
  /** States checked at once. */
  checkers: number;
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
    checkers: options.checkers ?? checkersThatFit(workload.base.length),
  };
  const ordered = inRounds(states);
  const checkers: StateChecker[] = [];
  try {
    assert.ok(Number.isSafeInteger(report.checkers) && report.checkers >= 1, `checkers must be a whole number of at least 1, got ${report.checkers}`);
    for (let index = 0; index < report.checkers; index++) checkers.push(new StateChecker(workload));
    // States are reported in plan order (which checker finished first must
    // not change the report), and a violation is shrunk and saved as it is
    // reported: a run stopped early keeps the reproducers it found.
    const checked = await checkInPlanOrder(checkers, ordered, options.timeLimitMs === undefined ? undefined : started + options.timeLimitMs, async (state, problem, checker) => {
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
    });
    report.skipped = ordered.length - checked;
  } finally {
    await allSettledOrThrow(checkers.map((checker) => checker.close()));
  }
  report.tornBoundaries.covered = [...offered].filter((boundary) => covered.has(boundary)).length;
  report.tornBoundaries.missing = [...offered].filter((boundary) => !covered.has(boundary));
  report.durationMs = performance.now() - started;
  return report;
}

/**
 * Checks `ordered` with every checker at once, each taking the next
 * unchecked state as it finishes one, and reports each state's result
 * through `onChecked` in plan order, one report at a time. A report gets a
 * checker it may use (to shrink a violation): the one that checked the
 * state that made it due, whose loop waits for the report before it takes
 * another state. Stops taking states once `deadline` (performance.now())
 * has passed; the states taken are always a prefix of the plan, and its
 * length is returned. A check or a report that throws stops every checker
 * after its current state, and the first error is thrown.
 */
async function checkInPlanOrder(
  checkers: readonly StateChecker[],
  ordered: readonly CrashState[],
  deadline: number | undefined,
  onChecked: (state: CrashState, problem: string | undefined, checker: StateChecker) => Promise<void>,
): Promise<number> {
  const problems: (string | undefined)[] = [];
  const done: boolean[] = [];
  let taken = 0;
  let reported = 0;
  let failed = false;
  /** The reports made so far, in plan order. */
  let reporting: Promise<void> = Promise.resolve();
  const work = async (checker: StateChecker): Promise<void> => {
    while (!failed && taken < ordered.length && (deadline === undefined || performance.now() <= deadline)) {
      const index = taken++;
      try {
        problems[index] = await checker.check(ordered[index]);
        done[index] = true;
        let mine: Promise<void> | undefined;
        while (reported < taken && done[reported] === true) {
          const due = reported++;
          mine = reporting = reporting.then(() => onChecked(ordered[due], problems[due], checker));
        }
        if (mine !== undefined) await mine;
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await allSettledOrThrow(checkers.map(work));
  assert.equal(reported, taken, 'every state taken is reported');
  await reporting;
  return taken;
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
