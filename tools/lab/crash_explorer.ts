// Crash explorer: replays a write trace into crash states and checks that
// the store recovers from each one with every acknowledged write, no
// partial batch, a clean independent fsck, a second recovery that changes
// nothing, and a store that accepts writes again.
//
// Strategies, in the order the state budget is spent (the plan):
//   boundary — every crash point, with its pending writes all lost and all kept;
//   alice    — each pending write dropped alone, and kept alone;
//   torn     — with at most TORN_PENDING_MAX pending: each write torn at each
//              sector boundary (prefix and suffix), the others lost or kept;
//   subsets  — with at most SUBSET_PENDING_MAX pending: every subset;
//   random   — seeded random choices (whole, lost or torn per write);
//   recovery — power fails again during the recovery of a state, after its
//              Nth IO (repairing a superblock, erasing stale WAL frames):
//              the second recovery must still find everything.
// Duplicate states (same point, same choice) are skipped.
import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { fsckImage, memoryImage } from '../fsck.js';
import { buildImage, crashPointAt, sectorCount, type CrashPoint, type PendingChoice } from './crash_states.js';
import type { TraceOperation, WriteTrace } from './write_trace.js';

export const TORN_PENDING_MAX = 6;
export const SUBSET_PENDING_MAX = 10;
/** A recovery does a few dozen IOs (reads of superblocks, checkpoint, WAL; a repair; erases). */
export const RECOVERY_CRASH_OPS_MAX = 40;

export type Strategy = 'boundary' | 'alice' | 'torn' | 'subsets' | 'random' | 'recovery';

/** One unit of work the workload did: the keys it wrote, all or nothing. */
export interface WorkloadOperation {
  readonly label: string;
  readonly entries: readonly (readonly [string, string])[];
}

export interface ExplorationOptions {
  /** Most crash states to check. */
  states: number;
  seed: number;
  /** Store options the workload used (encoding must be 'string'). */
  storeOptions?: { blockSize?: number };
  onProgress?: (done: number, total: number) => void;
}

export interface Violation {
  strategy: Strategy;
  eventCount: number;
  choice: string;
  problem: string;
}

export interface ExplorationReport {
  states: number;
  byStrategy: Record<Strategy, number>;
  crashPoints: number;
  violations: Violation[];
  durationMs: number;
}

interface CrashState {
  strategy: Strategy;
  point: CrashPoint;
  choice: PendingChoice;
  key: string;
  /** For 'recovery': crash the first recovery after this many IOs, choosing with this seed. */
  recoveryCrash?: { afterOps: number; seed: number };
}

export async function exploreCrashStates(
  trace: WriteTrace,
  base: Uint8Array,
  operations: readonly WorkloadOperation[],
  options: ExplorationOptions,
): Promise<ExplorationReport> {
  const started = performance.now();
  const points = crashPoints(trace);
  const states = planStates(points, options.states, options.seed);
  const report: ExplorationReport = {
    states: 0,
    byStrategy: { boundary: 0, alice: 0, torn: 0, subsets: 0, random: 0, recovery: 0 },
    crashPoints: points.length,
    violations: [],
    durationMs: 0,
  };
  for (const state of states) {
    const problem = await checkState(trace, base, operations, state);
    report.states++;
    report.byStrategy[state.strategy]++;
    if (problem !== undefined) {
      report.violations.push({ strategy: state.strategy, eventCount: state.point.eventCount, choice: state.key, problem });
    }
    options.onProgress?.(report.states, states.length);
  }
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

function planStates(points: CrashPoint[], budget: number, seed: number): CrashState[] {
  const planned: CrashState[] = [];
  const seen = new Set<string>();
  // Each strategy gets a share of the budget, so a cheap-to-generate one
  // (torn writes) cannot crowd out the others; what one leaves unused goes
  // to the next.
  let limit = 0;
  const add = (strategy: Strategy, point: CrashPoint, choice: PendingChoice): boolean => {
    if (planned.length >= limit) return false;
    const key = `${point.eventCount}:${describeChoice(point, choice)}`;
    if (seen.has(key)) return true;
    seen.add(key);
    planned.push({ strategy, point, choice, key });
    return true;
  };
  const uniform = (point: CrashPoint, part: 'all' | 'none'): PendingChoice => new Map(point.pending.map((operation) => [operation, part]));
  const share = (fraction: number): number => Math.min(budget, planned.length + Math.ceil((budget - planned.length) * fraction));

  limit = share(0.3);
  for (const point of points) {
    add('boundary', point, uniform(point, 'none'));
    add('boundary', point, uniform(point, 'all'));
  }
  limit = share(0.3);
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
  limit = share(0.35);
  for (const point of points) {
    const n = point.pending.length;
    if (n < 2 || n > SUBSET_PENDING_MAX) continue;
    for (let mask = 0; mask < 1 << n; mask++) {
      const choice: PendingChoice = new Map(point.pending.map((operation, i) => [operation, mask & (1 << i) ? 'all' : 'none']));
      if (!add('subsets', point, choice)) break;
    }
  }
  limit = share(0.6);
  for (const point of points) {
    if (point.pending.length > TORN_PENDING_MAX) continue;
    for (const operation of point.pending) {
      const sectors = sectorCount(operation);
      for (let boundary = 1; boundary < sectors; boundary++) {
        for (const others of ['none', 'all'] as const) {
          const prefix = uniform(point, others);
          prefix.set(operation, Array.from({ length: sectors }, (_, i) => i < boundary));
          add('torn', point, prefix);
          const suffix = uniform(point, others);
          suffix.set(operation, Array.from({ length: sectors }, (_, i) => i >= boundary));
          add('torn', point, suffix);
        }
      }
    }
  }
  let state = seed >>> 0 || 1;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
  limit = share(0.25);
  for (let attempts = 0; planned.length < limit && attempts < budget && points.length > 0; attempts++) {
    const point = points[Math.floor(random() * points.length)];
    const choice: PendingChoice = new Map(point.pending.map((operation) => [operation, random() < 0.5 ? 'all' : 'none']));
    const afterOps = 1 + Math.floor(random() * RECOVERY_CRASH_OPS_MAX);
    const key = `${point.eventCount}:${describeChoice(point, choice)}:recovery-${afterOps}`;
    if (seen.has(key)) continue;
    seen.add(key);
    planned.push({ strategy: 'recovery', point, choice, key, recoveryCrash: { afterOps, seed: 1 + Math.floor(random() * 0x7fffffff) } });
  }
  limit = budget;
  const withPending = points.filter((point) => point.pending.length > 0);
  for (let attempts = 0; planned.length < budget && attempts < budget * 4 && withPending.length > 0; attempts++) {
    const point = withPending[Math.floor(random() * withPending.length)];
    const choice: PendingChoice = new Map();
    for (const operation of point.pending) {
      const roll = random();
      if (roll < 0.4) choice.set(operation, 'none');
      else if (roll < 0.8) choice.set(operation, 'all');
      else choice.set(operation, Array.from({ length: sectorCount(operation) }, () => random() < 0.5));
    }
    add('random', point, choice);
  }
  return planned;
}

function describeChoice(point: CrashPoint, choice: PendingChoice): string {
  return point.pending
    .map((operation: TraceOperation) => {
      const part = choice.get(operation) ?? 'none';
      return part === 'all' ? '1' : part === 'none' ? '0' : `[${part.map(Number).join('')}]`;
    })
    .join('');
}

async function checkState(
  trace: WriteTrace,
  base: Uint8Array,
  operations: readonly WorkloadOperation[],
  state: CrashState,
): Promise<string | undefined> {
  let image = buildImage(base, state.point, state.choice);
  if (state.recoveryCrash !== undefined) {
    // Power fails again while the first recovery runs; the image is what
    // that second crash leaves.
    const interrupted = new SimulatedDevice({ sizeBytes: image.length, crashAfterOps: state.recoveryCrash.afterOps }, image);
    const opened = await BlockStore.open('crash-state', { device: interrupted, encoding: 'string' }).catch(() => undefined);
    await opened?.close().catch(() => undefined);
    let seed = state.recoveryCrash.seed;
    image = interrupted.crash({
      random: () => {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        return (seed >>> 0) / 0x1_0000_0000;
      },
    }).snapshot();
  }
  const acknowledged = new Set<string>();
  for (let index = 0; index < state.point.eventCount; index++) {
    const event = trace.events[index];
    if (event.type === 'ack') acknowledged.add(event.label);
  }
  // Before the store's first superblocks are durable there is no store yet:
  // an empty device must simply have no acknowledged writes to lose.
  const device = new SimulatedDevice({ sizeBytes: image.length }, image);
  let store: BlockStore;
  try {
    store = await BlockStore.open('crash-state', { device, encoding: 'string' });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_STORE_NOT_FOUND' && acknowledged.size === 0) return undefined;
    return `open failed: ${String(error)}`;
  }
  try {
    const seen = await readOperations(store, operations);
    const problem = judge(operations, acknowledged, seen);
    if (problem !== undefined) return problem;
    const report = fsckImage(memoryImage(device.snapshot()));
    if (!report.ok) return `fsck: ${report.errors.join('; ')}`;
    await store.verifyIntegrity();
    await store.close();
    // Recovering again must change nothing.
    const again = await BlockStore.open('crash-state', { device: new SimulatedDevice({ sizeBytes: image.length }, device.snapshot()), encoding: 'string' });
    const seenAgain = await readOperations(again, operations);
    if (JSON.stringify([...seenAgain]) !== JSON.stringify([...seen])) return 'a second recovery changed the contents';
    // And the store takes writes again.
    await again.put('\u0000probe', 'after the crash');
    if ((await again.get('\u0000probe')) !== 'after the crash') return 'the recovered store does not keep a new write';
    await again.close();
    return undefined;
  } catch (error) {
    await store.close().catch(() => undefined);
    return `check failed: ${String(error)}`;
  }
}

async function readOperations(store: BlockStore, operations: readonly WorkloadOperation[]): Promise<Map<string, boolean[]>> {
  const seen = new Map<string, boolean[]>();
  for (const operation of operations) {
    const present: boolean[] = [];
    for (const [key, value] of operation.entries) {
      const actual = await store.get(key);
      if (actual !== undefined && actual !== value) throw new Error(`${key} holds wrong data after the crash`);
      present.push(actual !== undefined);
    }
    seen.set(operation.label, present);
  }
  return seen;
}

function judge(operations: readonly WorkloadOperation[], acknowledged: Set<string>, seen: Map<string, boolean[]>): string | undefined {
  for (const operation of operations) {
    const present = seen.get(operation.label)!;
    const all = present.every(Boolean);
    const none = !present.some(Boolean);
    if (acknowledged.has(operation.label) && !all) return `acknowledged ${operation.label} lost ${present.filter((p) => !p).length} of ${present.length} keys`;
    if (!all && !none) return `${operation.label} is partly visible (${present.map(Number).join('')})`;
  }
  return undefined;
}
