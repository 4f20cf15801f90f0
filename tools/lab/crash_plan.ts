// Crash plans: which crash states of a trace to check, within a budget.
//
// Strategies, in the order the state budget is spent:
//   coverage — every structure (the store's IO phases: wal, data,
//              checkpoint, superblock, erase, format) × every sector boundary
//              its writes have, torn there at least once (prefix, then suffix);
//   boundary — every crash point, with its pending writes all lost and all kept;
//   alice    — each pending write dropped alone, and kept alone;
//   subsets  — with at most SUBSET_PENDING_MAX pending: every subset;
//   torn     — with at most TORN_PENDING_MAX pending: each write torn at each
//              sector boundary (prefix and suffix), the others lost or kept;
//   recovery — power fails again during the recovery of a state, after one
//              of its writes completed: the second recovery must still find
//              everything;
//   random   — seeded random choices, stratified by phase: each state picks
//              a phase first, then a crash point with a write of that phase
//              pending, and gives that write a random fate (whole, lost,
//              torn, or with a garbage sector), the others lost, kept or torn.
// Duplicate states (same point, same choice) are skipped.
import { sectorCount, SectorFate, type CrashPoint, type PendingChoice, type PendingPart } from './crash_states.js';
import { seededRandom } from './seeded_random.js';
import type { TraceOperation } from './write_trace.js';

export const TORN_PENDING_MAX = 6;
export const SUBSET_PENDING_MAX = 10;
/**
 * A crashed recovery stops after one of its first this many writes. A
 * recovery writes little: a superblock repair, erased WAL blocks, and at
 * close a checkpoint and its superblock — about a handful.
 */
export const RECOVERY_CRASH_WRITES_MAX = 8;
/** Chance that a random state tears its focus write, and any other pending write. */
export const TEAR_CHANCE_FOCUS = 0.6;
export const TEAR_CHANCE_OTHER = 0.2;
/** Chance that a torn write also has one garbage sector. */
export const GARBAGE_SECTOR_CHANCE = 0.3;

/** How a crash state was chosen; docs/crash-lab.md describes each. */
export type Strategy = 'coverage' | 'boundary' | 'alice' | 'subsets' | 'torn' | 'recovery' | 'random';
/** Every strategy, in the order the state budget is spent on them. */
export const STRATEGIES: readonly Strategy[] = ['coverage', 'boundary', 'alice', 'subsets', 'torn', 'recovery', 'random'];

/** A crash state: a point in the trace and what its pending writes left. */
export interface CrashState {
  /** The strategy that planned it. */
  strategy: Strategy;
  /** Where the power fails. */
  point: CrashPoint;
  /** What each pending write left on the media. */
  choice: PendingChoice;
  /** The state described (crash point, fates, recovery crash): equal keys are the same state. */
  key: string;
  /** For 'recovery': the first recovery crashes after its writeIndex-th write completed; its pending writes choose with this seed. */
  recoveryCrash?: {
    /** The recovery's writes that completed before the second power failure. */
    writeIndex: number;
    /** Seed of the fates of the recovery's pending writes. */
    seed: number;
  };
}

/** A tear of `operation` at sector `boundary`: its first sectors new and the rest old, or the reverse. */
function tear(operation: TraceOperation, boundary: number, prefix: boolean): SectorFate[] {
  return Array.from({ length: sectorCount(operation) }, (_, i) => ((i < boundary) === prefix ? SectorFate.New : SectorFate.Old));
}

function boundaryName(operation: TraceOperation, boundary: number): string {
  return `${operation.phase}@${boundary}`;
}

/** A place to tear a structure at a sector boundary: a pending write and the boundary. */
export interface TornBoundaryOffer {
  point: CrashPoint;
  operation: TraceOperation;
  boundary: number;
}

/**
 * Every structure × sector boundary that some pending write of the trace
 * could be torn at (keyed "phase@boundary"), with the first point offering it.
 */
export function tornBoundariesOffered(points: CrashPoint[]): Map<string, TornBoundaryOffer> {
  const offered = new Map<string, TornBoundaryOffer>();
  for (const point of points) {
    for (const operation of point.pending) {
      if (operation.kind === 'trim') continue;
      for (let boundary = 1; boundary < sectorCount(operation); boundary++) {
        const name = boundaryName(operation, boundary);
        if (!offered.has(name)) offered.set(name, { point, operation, boundary });
      }
    }
  }
  return offered;
}

/** The structure × boundary pairs a state tears at (a clean prefix or suffix tear). */
export function tornBoundaries(state: CrashState): string[] {
  const names: string[] = [];
  for (const [operation, part] of state.choice) {
    if (typeof part === 'string' || operation.kind === 'trim') continue;
    const fates = part.join('');
    const prefix = /^1+0+$/.exec(fates);
    const suffix = /^0+1+$/.exec(fates);
    if (prefix !== null) names.push(boundaryName(operation, fates.indexOf('0')));
    if (suffix !== null) names.push(boundaryName(operation, fates.indexOf('1')));
  }
  return names;
}

/** Phases of the pending writes a state leaves (whole or in part) on the media. */
export function touchedPhases(state: CrashState): Set<string> {
  const phases = new Set<string>();
  for (const [operation, part] of state.choice) if (part !== 'none') phases.add(operation.phase);
  return phases;
}

/**
 * Plans at most `budget` distinct crash states over `points`: each strategy
 * in {@link STRATEGIES} order gets a share of what is left, duplicates are
 * skipped, and the random ones draw from `seed`.
 */
export function planStates(points: CrashPoint[], budget: number, seed: number): CrashState[] {
  const planned: CrashState[] = [];
  const seen = new Set<string>();
  // Each strategy gets a share of what is left of the budget, so a cheap-to-
  // generate one cannot crowd out the others; what one leaves unused goes to
  // the next.
  let limit = 0;
  const add = (strategy: Strategy, point: CrashPoint, choice: PendingChoice, recoveryCrash?: CrashState['recoveryCrash']): boolean => {
    if (planned.length >= limit) return false;
    const key = `${point.eventCount}:${describeChoice(point, choice)}${recoveryCrash === undefined ? '' : `:recovery-${recoveryCrash.writeIndex}`}`;
    if (seen.has(key)) return true;
    seen.add(key);
    planned.push({ strategy, point, choice, key, recoveryCrash });
    return true;
  };
  const uniform = (point: CrashPoint, part: 'all' | 'none'): PendingChoice => new Map(point.pending.map((operation) => [operation, part]));
  const share = (fraction: number): number => Math.min(budget, planned.length + Math.ceil((budget - planned.length) * fraction));
  const random = seededRandom(seed);

  // Coverage first: each structure × boundary at the first point that offers
  // it, torn as a prefix (then, budget allowing, as a suffix), the other
  // pending writes kept. Up to half the budget: a store of large blocks
  // offers hundreds of pairs (a checkpoint frame of 64 KiB has 127).
  limit = share(0.5);
  const offeredAt = tornBoundariesOffered(points);
  for (const prefix of [true, false]) {
    for (const { point, operation, boundary } of offeredAt.values()) {
      const choice = uniform(point, 'all');
      choice.set(operation, tear(operation, boundary, prefix));
      add('coverage', point, choice);
    }
  }
  limit = share(0.25);
  for (const point of points) {
    add('boundary', point, uniform(point, 'none'));
    add('boundary', point, uniform(point, 'all'));
  }
  limit = share(0.25);
  for (const point of points) {
    for (const operation of point.pending) {
      const dropOne = uniform(point, 'all');
      dropOne.set(operation, 'none');
      add('alice', point, dropOne);
      const keepOne = uniform(point, 'none');
      keepOne.set(operation, 'all');
      add('alice', point, keepOne);
    }
  }
  limit = share(0.3);
  for (const point of points) {
    const n = point.pending.length;
    if (n < 2 || n > SUBSET_PENDING_MAX) continue;
    for (let mask = 0; mask < 1 << n; mask++) {
      const choice: PendingChoice = new Map(point.pending.map((operation, i) => [operation, mask & (1 << i) ? 'all' : 'none']));
      if (!add('subsets', point, choice)) break;
    }
  }
  limit = share(0.5);
  for (const point of points) {
    if (point.pending.length > TORN_PENDING_MAX) continue;
    for (const operation of point.pending) {
      if (operation.kind === 'trim') continue;
      for (let boundary = 1; boundary < sectorCount(operation); boundary++) {
        for (const others of ['none', 'all'] as const) {
          for (const prefix of [true, false]) {
            const choice = uniform(point, others);
            choice.set(operation, tear(operation, boundary, prefix));
            add('torn', point, choice);
          }
        }
      }
    }
  }
  limit = share(0.25);
  const withWrites = points.filter((point) => point.pending.some((operation) => operation.kind !== 'trim') || point.durableCount > 0);
  for (let attempts = 0; planned.length < limit && attempts < budget && withWrites.length > 0; attempts++) {
    const point = withWrites[Math.floor(random() * withWrites.length)];
    const choice: PendingChoice = new Map(point.pending.map((operation) => [operation, random() < 0.5 ? 'all' : 'none']));
    add('recovery', point, choice, { writeIndex: 1 + Math.floor(random() * RECOVERY_CRASH_WRITES_MAX), seed: 1 + Math.floor(random() * 0x7fffffff) });
  }
  // Random, stratified by phase: pick the phase first, so the few
  // superblock and checkpoint windows get as many states as the many WAL ones.
  limit = budget;
  const byPhase = new Map<string, { point: CrashPoint; operation: TraceOperation }[]>();
  for (const point of points) {
    for (const operation of point.pending) {
      const list = byPhase.get(operation.phase) ?? [];
      list.push({ point, operation });
      byPhase.set(operation.phase, list);
    }
  }
  const phases = [...byPhase.keys()].sort();
  for (let attempts = 0; planned.length < budget && attempts < budget * 4 && phases.length > 0; attempts++) {
    const candidates = byPhase.get(phases[attempts % phases.length])!;
    const { point, operation: focus } = candidates[Math.floor(random() * candidates.length)];
    const choice: PendingChoice = new Map();
    for (const operation of point.pending) choice.set(operation, randomPart(operation, random, operation === focus));
    add('random', point, choice);
  }
  return planned;
}

/** A random fate for a pending write: lost, whole, or per sector (new, old, now and then garbage). */
export function randomPart(operation: TraceOperation, random: () => number, focus: boolean): PendingPart {
  const roll = random();
  const tornShare = focus ? TEAR_CHANCE_FOCUS : TEAR_CHANCE_OTHER;
  if (operation.kind === 'trim' || sectorCount(operation) < 2 || roll >= tornShare) {
    return random() < 0.5 ? 'all' : 'none';
  }
  const garbage = random() < GARBAGE_SECTOR_CHANCE ? Math.floor(random() * sectorCount(operation)) : -1;
  return Array.from({ length: sectorCount(operation) }, (_, sector) =>
    sector === garbage ? SectorFate.Garbage : random() < 0.5 ? SectorFate.New : SectorFate.Old,
  );
}

export function describeChoice(point: CrashPoint, choice: PendingChoice): string {
  return point.pending
    .map((operation) => {
      const part = choice.get(operation) ?? 'none';
      return part === 'all' ? '1' : part === 'none' ? '0' : `[${part.join('')}]`;
    })
    .join('');
}

/** The pending writes a state keeps, e.g. "#41 wal(12) whole, #43 data torn [1100]". */
export function describeSurvivors(state: CrashState): string {
  const parts: string[] = [];
  for (const operation of state.point.pending) {
    const part = state.choice.get(operation) ?? 'none';
    if (part === 'none') continue;
    const mark = operation.markId === undefined ? '' : `(${operation.markId})`;
    parts.push(`#${operation.id} ${operation.kind} ${operation.phase}${mark} at ${operation.position}+${operation.length} ${part === 'all' ? 'whole' : `sectors [${part.join('')}]`}`);
  }
  return `crash after event ${state.point.eventCount}, ${state.point.durableCount} durable writes, pending kept: ${parts.length === 0 ? 'none' : parts.join(', ')}${state.recoveryCrash === undefined ? '' : `; recovery crashed after its write ${state.recoveryCrash.writeIndex}`}`;
}
