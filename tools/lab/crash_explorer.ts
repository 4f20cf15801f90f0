// Crash explorer: replays a write trace into crash states and checks that
// the store recovers from each one (docs/durability.md, "The crash lab").
//
// Strategies, in the order the state budget is spent:
//   coverage — every structure (the store's IO phases: wal, data,
//              checkpoint, superblock, erase, format) × every sector boundary
//              its writes have, torn there at least once (prefix and suffix);
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
//
// Every state is built on one image in /dev/shm (CrashImage: an undo log,
// not copies) and checked through the real IO path: the store opens it with
// an io_uring ring. The checks: it opens; what it holds is the state after a
// prefix of commit order holding every acknowledged operation (oracle.ts);
// the independent fsck (format/ only) is clean; verifyIntegrity passes;
// opening again changes nothing; it takes a new write.
//
// A violation is shrunk to a minimal set of surviving pending writes and
// saved as a reproducer directory that `ringstore crash-test --replay <dir>`
// checks again.
import { BlockStore, STORE_RING_OPTIONS } from '../../engine/block_store.js';
import { IoUringActor } from '../../native/io_uring_actor.js';
import type { IoMark, IoMutation, IoObserver } from '../../native/io_observer.js';
import { fsckImage, type FsckReport } from '../fsck.js';
import { CrashImage } from './crash_image.js';
import { crashPointAt, forEachSector, sectorBytes, sectorCount, SectorFate, type CrashPoint, type PendingChoice, type PendingPart } from './crash_states.js';
import { judgeRecovered, readTouched, sameValue, touchedKeys, type WorkloadOperation } from './oracle.js';
import { saveReproducer } from './reproducer.js';
import type { TracedWorkload } from './workload.js';
import { WriteTrace, type TraceOperation } from './write_trace.js';

export const TORN_PENDING_MAX = 6;
export const SUBSET_PENDING_MAX = 10;
/** Most shrinking passes over a violation's surviving writes. */
export const SHRINK_PASSES_MAX = 4;
/** Violations shrunk and saved as reproducers (the rest are only listed). */
export const REPRODUCERS_MAX = 3;

export type Strategy = 'coverage' | 'boundary' | 'alice' | 'subsets' | 'torn' | 'recovery' | 'random';
export const STRATEGIES: readonly Strategy[] = ['coverage', 'boundary', 'alice', 'subsets', 'torn', 'recovery', 'random'];

export interface ExplorationOptions {
  /** Most crash states to check. */
  states: number;
  seed: number;
  /** Stop checking once this much time has passed (states planned but unchecked are reported). */
  timeLimitMs?: number;
  /** Save reproducers of violations here (a directory per violation). */
  reproducerDirectory?: string;
  onProgress?: (done: number, total: number) => void;
}

/** A crash state: a point in the trace and what its pending writes left. */
export interface CrashState {
  strategy: Strategy;
  point: CrashPoint;
  choice: PendingChoice;
  key: string;
  /** For 'recovery': the first recovery crashes after its writeIndex-th write completed; its pending writes choose with this seed. */
  recoveryCrash?: { writeIndex: number; seed: number };
}

export interface Violation {
  strategy: Strategy;
  eventCount: number;
  choice: string;
  problem: string;
  /** The shrunk state: the pending writes that must survive for the problem to show. */
  minimal?: string;
  /** Directory of the saved reproducer. */
  reproducer?: string;
}

export interface ExplorationReport {
  states: number;
  /** States planned but not checked because the time limit ran out. */
  skipped: number;
  byStrategy: Record<Strategy, number>;
  /** States by the phases of the writes they left torn or partly on the media. */
  byPhase: Record<string, number>;
  crashPoints: number;
  /** Structure × sector boundary pairs the trace offers, and those torn in a checked state. */
  tornBoundaries: { total: number; covered: number; offered: string[]; missing: string[] };
  violations: Violation[];
  durationMs: number;
}

export async function exploreCrashStates(workload: TracedWorkload, options: ExplorationOptions): Promise<ExplorationReport> {
  const started = performance.now();
  const points = crashPoints(workload.trace);
  const states = planStates(points, options.states, options.seed);
  const offered = tornBoundariesOffered(points);
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
    // Forward through the trace: the image's durable layer then only grows.
    const ordered = [...states].sort((a, b) => a.point.eventCount - b.point.eventCount);
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
        if (report.violations.length < REPRODUCERS_MAX) {
          const minimal = await shrink(checker, state);
          violation.minimal = describeSurvivors(minimal.state);
          violation.problem = minimal.problem;
          if (options.reproducerDirectory !== undefined) {
            violation.reproducer = saveReproducer(options.reproducerDirectory, workload, minimal.state, minimal.problem, options.seed);
          }
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

/** Crash points: after every completion (and the very end), where durability changes. */
export function crashPoints(trace: WriteTrace): CrashPoint[] {
  const points: CrashPoint[] = [];
  for (let count = 1; count <= trace.events.length; count++) {
    const last = trace.events[count - 1];
    if (last.type === 'complete' || count === trace.events.length) points.push(crashPointAt(trace, count));
  }
  return points;
}

/** A tear of `operation` at sector `boundary`: its first sectors new and the rest old, or the reverse. */
function tear(operation: TraceOperation, boundary: number, prefix: boolean): SectorFate[] {
  return Array.from({ length: sectorCount(operation) }, (_, i) => ((i < boundary) === prefix ? SectorFate.New : SectorFate.Old));
}

function boundaryName(operation: TraceOperation, boundary: number): string {
  return `${operation.phase}@${boundary}`;
}

/** Every structure × sector boundary that some pending write of the trace could be torn at. */
function tornBoundariesOffered(points: CrashPoint[]): Set<string> {
  const offered = new Set<string>();
  for (const point of points) {
    for (const operation of point.pending) {
      if (operation.kind === 'trim') continue;
      for (let boundary = 1; boundary < sectorCount(operation); boundary++) offered.add(boundaryName(operation, boundary));
    }
  }
  return offered;
}

/** The structure × boundary pairs a state tears at (a clean prefix or suffix tear). */
function tornBoundaries(state: CrashState): string[] {
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

/** Phases of the writes a state leaves partly applied (torn), or, failing that, of every surviving pending write. */
function touchedPhases(state: CrashState): Set<string> {
  const phases = new Set<string>();
  for (const [operation, part] of state.choice) if (part !== 'none') phases.add(operation.phase);
  return phases;
}

function planStates(points: CrashPoint[], budget: number, seed: number): CrashState[] {
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
  let state = seed >>> 0 || 1;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };

  // Coverage first: each structure × boundary at the first point that offers
  // it, torn as a prefix (then, budget allowing, as a suffix), the other
  // pending writes kept. Up to half the budget: a store of large blocks
  // offers hundreds of pairs (a checkpoint frame of 64 KiB has 127).
  limit = share(0.5);
  const offeredAt = new Map<string, { point: CrashPoint; operation: TraceOperation; boundary: number }>();
  for (const point of points) {
    for (const operation of point.pending) {
      if (operation.kind === 'trim') continue;
      for (let boundary = 1; boundary < sectorCount(operation); boundary++) {
        const name = boundaryName(operation, boundary);
        if (!offeredAt.has(name)) offeredAt.set(name, { point, operation, boundary });
      }
    }
  }
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
  const withWrites = points.filter((point) => point.pending.some((operation) => operation.kind !== 'trim') || point.durable.length > 0);
  for (let attempts = 0; planned.length < limit && attempts < budget && withWrites.length > 0; attempts++) {
    const point = withWrites[Math.floor(random() * withWrites.length)];
    const choice: PendingChoice = new Map(point.pending.map((operation) => [operation, random() < 0.5 ? 'all' : 'none']));
    add('recovery', point, choice, { writeIndex: 1 + Math.floor(random() * 8), seed: 1 + Math.floor(random() * 0x7fffffff) });
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
function randomPart(operation: TraceOperation, random: () => number, focus: boolean): PendingPart {
  const roll = random();
  const tornShare = focus ? 0.6 : 0.2;
  if (operation.kind === 'trim' || sectorCount(operation) < 2 || roll >= tornShare) {
    return random() < 0.5 ? 'all' : 'none';
  }
  const garbage = random() < 0.3 ? Math.floor(random() * sectorCount(operation)) : -1;
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
  return `crash after event ${state.point.eventCount}, ${state.point.durable.length} durable writes, pending kept: ${parts.length === 0 ? 'none' : parts.join(', ')}${state.recoveryCrash === undefined ? '' : `; recovery crashed after its write ${state.recoveryCrash.writeIndex}`}`;
}

/**
 * Shrinks a violating state: drops surviving pending writes one at a time
 * (and turns torn ones whole or lost) while the problem remains, until a
 * pass changes nothing.
 */
async function shrink(checker: StateChecker, state: CrashState): Promise<{ state: CrashState; problem: string }> {
  let current = state;
  let problem = (await checker.check(current)) ?? 'the problem did not come back when checked again (not deterministic)';
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
        if (candidateProblem !== undefined) {
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

/** Bytes of the device a crashed recovery left written. */
interface WrittenRange {
  position: number;
  length: number;
}

/** Fans the ring's IO notifications out to the image's undo log and, during a recovery that will crash, a trace of it. */
class ObserverFanout implements IoObserver {
  readonly image: CrashImage;
  recovery: WriteTrace | undefined;

  constructor(image: CrashImage) {
    this.image = image;
  }

  onSubmit(mutation: IoMutation): void {
    this.image.onSubmit(mutation);
    this.recovery?.onSubmit(mutation);
  }

  onComplete(mutation: IoMutation, outcome: number | Error): void {
    this.recovery?.onComplete(mutation, outcome);
  }

  onMark(mark: IoMark): void {
    this.recovery?.onMark(mark);
  }
}

/** Checks crash states of one workload on one image, through one ring. */
export class StateChecker {
  readonly #workload: TracedWorkload;
  readonly #image: CrashImage;
  readonly #ring: IoUringActor;
  readonly #observer: ObserverFanout;
  readonly #keys: ReturnType<typeof touchedKeys>;

  constructor(workload: TracedWorkload) {
    this.#workload = workload;
    this.#image = new CrashImage(workload.trace, workload.base);
    this.#ring = IoUringActor.start(STORE_RING_OPTIONS);
    this.#observer = new ObserverFanout(this.#image);
    this.#ring.observer = this.#observer;
    this.#keys = touchedKeys(workload.operations);
  }

  /** Builds the state on the image, checks it, and rolls the image back; returns the problem, if any. */
  async check(state: CrashState): Promise<string | undefined> {
    this.#image.moveTo(state.point, state.choice);
    try {
      const recoveryWrites = state.recoveryCrash === undefined ? [] : await this.#crashDuringRecovery(state.recoveryCrash);
      return await this.#checkImage(state, recoveryWrites);
    } finally {
      this.#image.rollback();
    }
  }

  async close(): Promise<void> {
    this.#ring.observer = undefined;
    await this.#ring.close();
    this.#image.close();
  }

  #open(): Promise<BlockStore> {
    return BlockStore.open(this.#image.path, { ring: this.#ring, encoding: this.#workload.store.encoding, cacheSizeBytes: 64 << 10 });
  }

  /**
   * Runs a first recovery (open and close) on the state, traced; then takes
   * back its writes and puts back only what a power failure after its
   * writeIndex-th completed write would have left. Returns the ranges that
   * crash left written.
   */
  async #crashDuringRecovery(crash: { writeIndex: number; seed: number }): Promise<WrittenRange[]> {
    const before = this.#image.undoMark();
    const trace = new WriteTrace(this.#image.path, this.#workload.trace.directory, 'recovery.data');
    this.#observer.recovery = trace;
    try {
      const store = await this.#open().catch(() => undefined);
      await store?.close().catch(() => undefined);
    } finally {
      this.#observer.recovery = undefined;
    }
    const written: WrittenRange[] = [];
    const completions = trace.events.flatMap((event, index) => (event.type === 'complete' && event.operation.kind !== 'flush' ? [index + 1] : []));
    this.#image.rollbackTo(before);
    if (completions.length > 0) {
      const point = crashPointAt(trace, completions[Math.min(crash.writeIndex, completions.length) - 1]);
      let seed = crash.seed;
      const random = (): number => {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        return (seed >>> 0) / 0x1_0000_0000;
      };
      const survivors = [...point.durable.map((operation) => ({ operation, part: 'all' as PendingPart }))];
      for (const operation of point.pending) survivors.push({ operation, part: randomPart(operation, random, true) });
      survivors.sort((a, b) => a.operation.id - b.operation.id);
      for (const { operation, part } of survivors) {
        const data = operation.kind === 'trim' ? undefined : trace.dataOf(operation);
        forEachSector(operation, part, (start, end, fate) => {
          this.#image.writeLayered(operation.position + start, sectorBytes(operation, data, start, end, fate));
          if (operation.kind !== 'trim') written.push({ position: operation.position + start, length: end - start });
        });
      }
    }
    trace.close();
    return written;
  }

  async #checkImage(state: CrashState, recoveryWrites: readonly WrittenRange[]): Promise<string | undefined> {
    const acknowledged = new Set<number>();
    for (let index = 0; index < state.point.eventCount; index++) {
      const event = this.#workload.trace.events[index];
      if (event.type === 'ack') acknowledged.add(event.operation);
    }
    let store: BlockStore;
    try {
      store = await this.#open();
    } catch (error) {
      // Before the store's first superblocks are durable there is no store
      // yet: an empty device must simply have nothing acknowledged to lose.
      const code = (error as { code?: string }).code;
      if (code === 'ERR_STORE_NOT_FOUND' && acknowledged.size === 0) return undefined;
      return `open failed: ${String(error)}`;
    }
    let observed: Map<string, unknown>;
    try {
      observed = await readTouched(store, this.#keys);
      const problem = judgeRecovered(this.#workload.operations, acknowledged, observed);
      if (problem !== undefined) return problem;
      // The recovered state as the media holds it (recovery's repairs and
      // erases included, nothing the store wrote since).
      const recovered = fsckImage(this.#image.reader());
      if (!recovered.ok) return `fsck after recovery: ${recovered.errors.join('; ')}`;
      const trimmed = trimmedReference(state, recoveryWrites, recovered.references, this.#workload.store.blockSize);
      if (trimmed !== undefined) return trimmed;
      await store.verifyIntegrity();
    } catch (error) {
      return `check failed: ${String(error)}`;
    } finally {
      await store.close().catch(() => undefined);
    }
    // And as the clean close left it (a new checkpoint).
    const closed = fsckImage(this.#image.reader());
    if (!closed.ok) return `fsck after close: ${closed.errors.join('; ')}`;
    // Recovering again must change nothing, and the store takes writes again.
    let again: BlockStore;
    try {
      again = await this.#open();
    } catch (error) {
      return `a second open failed: ${String(error)}`;
    }
    try {
      const observedAgain = await readTouched(again, this.#keys);
      for (const [id, value] of observed) {
        if (!sameValue(value, observedAgain.get(id))) return `a second recovery changed ${id.slice(1)}`;
      }
      const probe = this.#workload.store.encoding === 'binary' ? Buffer.from('after the crash') : 'after the crash';
      await again.put('\u0000probe', probe);
      if (!sameValue(probe, await again.get('\u0000probe'))) return 'the recovered store does not keep a new write';
      return undefined;
    } catch (error) {
      return `check after a second open failed: ${String(error)}`;
    } finally {
      await again.close().catch(() => undefined);
    }
  }
}

/**
 * A block the recovered store references that the state trimmed and nothing
 * wrote again: a trim may leave zeros or the old bytes, so even when the
 * checksums pass such a reference is a bug (space reused or trimmed early).
 */
function trimmedReference(
  state: CrashState,
  recoveryWrites: readonly WrittenRange[],
  references: FsckReport['references'],
  blockSize: number,
): string | undefined {
  const onMedia: TraceOperation[] = [...state.point.durable];
  for (const operation of state.point.pending) if ((state.choice.get(operation) ?? 'none') !== 'none') onMedia.push(operation);
  onMedia.sort((a, b) => a.id - b.id);
  const trimmedBy = new Map<number, TraceOperation>();
  for (const operation of onMedia) {
    const first = Math.floor(operation.position / blockSize);
    const end = Math.ceil((operation.position + operation.length) / blockSize);
    for (let block = first; block < end; block++) {
      if (operation.kind === 'trim') trimmedBy.set(block, operation);
      else trimmedBy.delete(block);
    }
  }
  // A recovery that crashed (the 'recovery' strategy) wrote after all of them.
  for (const { position, length } of recoveryWrites) {
    for (let block = Math.floor(position / blockSize); block < Math.ceil((position + length) / blockSize); block++) trimmedBy.delete(block);
  }
  if (trimmedBy.size === 0) return undefined;
  for (const reference of references) {
    for (let block = reference.startBlock; block < reference.startBlock + reference.blockCount; block++) {
      const trim = trimmedBy.get(block);
      if (trim !== undefined) return `${reference.owner} references block ${block}, trimmed by #${trim.id} and not written since`;
    }
  }
  return undefined;
}

export type { WorkloadOperation };
