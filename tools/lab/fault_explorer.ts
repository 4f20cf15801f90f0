// IO fault explorer: runs a workload on a simulated device that fails the Nth
// operation of one kind, once (transient) or from then on (persistent), for
// every N the workload reaches, once with a store that acknowledges writes
// once durable (sync: true) and once with one that acknowledges them once
// written (sync: false: durable at a flush() that resolves, or at a close()
// that does; its deferred fdatasync runs at fixed points of the workload).
// The device starts at about a store's least size and grows as the store
// fills (to DEVICE_BYTES_MAX at once, unless a growth refused for room
// makes the store ask for less). The faults (EIO, ENOSPC, short transfers,
// lost caches) are FaultyDevice's (faulty_device.ts).
// Checks: nothing fails before the fault (no write, not the store); a
// write whose IO failed is never acknowledged; after a failed write, flush
// or growth the store refuses writes (put, delete, batch) with
// ERR_STORE_FAILED (no retry-and-pretend), and no write begun after that
// resolves; a failed trim, read or growth refused for room does not stop it
// (a read the write itself needed — a tree page not in memory — refuses
// that write with the read's error, and only that write; only a growth
// refused for room may make a write ERR_STORE_FULL); close() resolves with
// sync: true, and with sync: false rejects exactly when the store failed
// (either, with a failed read's error, when its checkpoint needed the read);
// and after a power loss at that point, reopening gives every acknowledged
// write, whole batches, none of a batch whose delete was acknowledged, and a
// clean integrity check. The workload puts batches, then deletes some
// (DELETED_BATCHES).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { faultApplies, FaultyDevice, type FaultKind, type FaultPlan, type FaultType } from './faulty_device.js';
import { seededRandom } from './seeded_random.js';

export type { FaultKind, FaultPlan, FaultType } from './faulty_device.js';

/** Every fault kind, in the order {@link exploreIoFaults} runs them. */
export const FAULT_KINDS: readonly FaultKind[] = ['write', 'writeAndSync', 'writeDsync', 'sync', 'trim', 'read', 'grow'];
/** Every fault type, in the order {@link exploreIoFaults} runs them. */
export const FAULT_TYPES: readonly FaultType[] = ['EIO', 'ENOSPC', 'short', 'lost'];

/**
 * The Nth growths a fault is planned at, at most: the workload's store
 * grows once, to the device's largest size, when nothing fails, so a plan
 * at N > 1 would never be hit. After a first growth refused for room the
 * store asks again for less (faulted too when the plan is persistent).
 */
const GROW_NTH_MAX = 1;


/**
 * Whether the plan's fault must stop the store: a failed write or flush,
 * and a growth that failed other than for want of room. A failed trim or
 * read, and a growth the file system refused, must not.
 */
function faultStopsStore(plan: FaultPlan): boolean {
  if (plan.kind === 'grow') return plan.fault !== 'ENOSPC';
  return plan.kind !== 'trim' && plan.kind !== 'read';
}

/** Runs of one fault type, and how many hit the fault. */
export interface FaultTypeCounts {
  /** Runs with this fault type. */
  runs: number;
  /** Runs in which the fault was actually hit. */
  injected: number;
}

/** What {@link exploreIoFaults} ran and found. */
export interface FaultReport {
  /** Fault plans run. */
  runs: number;
  /** Runs in which the fault was actually hit. */
  injected: number;
  /** The same counts for each fault type. */
  byFault: Record<FaultType, FaultTypeCounts>;
  /**
   * Runs of the short fault in which it cut a transfer inside (a proper
   * prefix landed). A one-sector transfer cannot be cut: it moves nothing
   * and fails like EIO.
   */
  shortCuts: number;
  /**
   * Runs of the lost fault in which a flush issued behind the lost one
   * succeeded before its error came back: the case FlushLedger is for (the
   * rest only test the refusal after a failure).
   */
  lostOvertaken: number;
  /** Runs in which the device's growth was durable at the power loss (the reopened store had the room). */
  grown: number;
  /** Runs with sync: false in which the store's deferred fdatasync ran (rather than being cancelled by a flush). */
  deferredSyncsRan: number;
  /** Runs in which a read fault refused close()'s checkpoint (the store not failed). */
  closeReadRefusals: number;
  /** Runs in which a delete batch was acknowledged before the power loss. */
  deletesAcknowledged: number;
  /** Runs whose fault was first hit while the workload's deletes ran. */
  faultsInDeletes: number;
  /** Each violation: the plan, its seed and the problem. */
  violations: string[];
  /** The reproducer directory of each violation (with reproducerDirectory), parallel to `violations`; replay with `crash-test --replay`. */
  reproducers: (string | undefined)[];
}

/** Mixed into the run's seed for the short-fault prefixes, so they do not follow the crash's choices. */
const PREFIX_SEED_SALT = 0x9e3779b9;

/** The device's first size: about the least a store of the workload's WAL fits in, so that it grows early. */
const DEVICE_BYTES_FIRST = 128 << 10;
/** What it may grow to (a growth takes all of it: GROWTH_STEP_BYTES_MIN is larger). */
const DEVICE_BYTES_MAX = 1 << 20;


/**
 * Value sizes of each batch shape, on 512-byte blocks (values up to half a
 * 4 KiB page, 2048 bytes, are inline in the WAL, larger ones get extents):
 * a one-block commit with extent data (WAL write+fdatasync); an inline-only
 * commit of several blocks (one RWF_DSYNC write); and a several-block
 * commit with extent data. The several-block WAL writes are what a short
 * fault can cut inside.
 */
const BATCH_VALUE_SIZES: readonly (readonly number[])[] = [
  [50, 2600],
  [200, 200, 200, 200],
  [50, 2600, 200, 200],
];

function entriesOf(batch: number): [string, string][] {
  const sizes = BATCH_VALUE_SIZES[batch % BATCH_VALUE_SIZES.length];
  return sizes.map((size, i): [string, string] => [`b${batch}/${i}`, `${batch}/${i}:`.padEnd(size, 'x')]);
}

/**
 * After the puts, the workload deletes these batches, one delete batch
 * each, in turn. Their keys are one run in key order ("b1/…" sorts before
 * "b10/…" … "b19/…", and those before "b2/…"), so the deletes take out
 * whole leaves (without faults: 38 of 200 keys, the tree's 16 pages down
 * to 13, 6 extent values freed and trimmed). Until session 54 the
 * workload only put, and no fault met a delete, a merge or the trims of
 * deleted values.
 */
const DELETED_BATCHES: readonly number[] = [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];

/**
 * What became of the workload's writes by the power loss, by batch
 * number: what checkAfterPowerLoss holds the reopened store to.
 */
interface WorkloadOutcome {
  /** Put batches begun (the store had not failed, or had and refused them). */
  readonly attempted: number[];
  /** Put batches acknowledged: there whole after the power loss, unless an acknowledged delete removed them. */
  readonly acknowledged: Set<number>;
  /** Batches whose delete was begun before the store failed: it may have reached the WAL. */
  readonly deletesMayHaveRun: Set<number>;
  /** Batches whose delete was acknowledged: none of their keys after the power loss. */
  readonly deletesAcknowledged: Set<number>;
}

/**
 * Runs the workload under one fault plan. Returns whether the fault was hit,
 * how many transfers a short fault cut inside, and what went wrong, if
 * anything.
 */
export async function runFaultPlan(
  plan: FaultPlan,
  seed: number,
): Promise<{
  /** The workload reached the planned operation. */
  injected: boolean;
  /** Transfers a short fault cut inside (a proper prefix landed). */
  cuts: number;
  /** Flushes that succeeded while a lost-cache flush's error was still to come. */
  overtakes: number;
  /** The device's growth was durable at the power loss. */
  grew: boolean;
  /** Deferred tasks (the fdatasync of sync: false) the workload ran. */
  deferredRan: number;
  /** A read fault refused close()'s checkpoint, the store not failed. */
  closeReadRefused: boolean;
  /** Delete batches acknowledged before the power loss. */
  deletesAcknowledged: number;
  /** The fault was first hit while the workload's deletes ran. */
  faultInDeletes: boolean;
  /** What went wrong, or undefined if every check passed. */
  problem: string | undefined;
}> {
  if (!faultApplies(plan.fault, plan.kind)) throw new RangeError(`a ${plan.kind} cannot be ${plan.fault}`);
  const simulated = new SimulatedDevice({ sizeBytes: DEVICE_BYTES_FIRST, sizeBytesMax: DEVICE_BYTES_MAX });
  const device = new FaultyDevice(simulated, plan, seededRandom(seed ^ PREFIX_SEED_SALT));
  const observed = { grewDurably: false, closeReadRefused: false, deletesAcknowledged: 0, faultInDeletes: false };
  const result = await runWorkload(simulated, device, plan, seed, observed);
  return {
    injected: device.injected,
    cuts: device.cuts,
    overtakes: device.overtakes,
    grew: observed.grewDurably,
    deferredRan: device.deferredRan,
    closeReadRefused: observed.closeReadRefused,
    deletesAcknowledged: observed.deletesAcknowledged,
    faultInDeletes: observed.faultInDeletes,
    problem: result,
  };
}

/** Batches the fault workload writes (in turn, and every fourth with the next one pipelined behind it). */
const WORKLOAD_BATCH_COUNT = 60;
/** With sync: false, the workload calls flush() after every this many groups of batches. */
const DEFERRED_FLUSH_EVERY_GROUPS = 3;
/** With sync: false, the store's deferred fdatasync runs after every this many groups (as if its timer fired then). */
const DEFERRED_TASKS_EVERY_GROUPS = 2;

/** The workload of one plan and the checks while it runs, then the power loss (checkAfterPowerLoss); returns the problem found, if any. */
async function runWorkload(
  simulated: SimulatedDevice,
  device: FaultyDevice,
  plan: FaultPlan,
  seed: number,
  observed: { grewDurably: boolean; closeReadRefused: boolean; deletesAcknowledged: number; faultInDeletes: boolean },
): Promise<string | undefined> {
  const outcome: WorkloadOutcome = { attempted: [], acknowledged: new Set(), deletesMayHaveRun: new Set(), deletesAcknowledged: new Set() };
  const { attempted, acknowledged, deletesMayHaveRun, deletesAcknowledged } = outcome;
  /** With sync: false, put batches resolved (written) and not yet acknowledged by a flush() or close(). */
  const written: number[] = [];
  /** The same for delete batches (by the batch they delete). */
  const deletesWritten: number[] = [];
  let store: BlockStore;
  try {
    // No idle checkpoint: a stall of the event loop must not add IO that
    // moves which operation a fault plan hits (a review's note).
    store = await BlockStore.open('faults', {
      device,
      create: true,
      blockSize: 512,
      walSizeBytes: 16 << 10,
      cacheSizeBytes: 16 << 10,
      encoding: 'string',
      idleCheckpointMs: 0,
      sync: !plan.deferred,
    });
  } catch {
    // A fault while formatting: nothing was acknowledged, nothing to check.
    return undefined;
  }
  let failedWith: string | undefined;
  /** Notes the failure of a write (`what`, for the message); returns the problem if it is not one the plan allows. */
  const failed = (what: string, error: unknown): string | undefined => {
    // Before its fault, the store fails nothing (a review planted a store
    // failing at batch 30 of every run: only runs whose fault came first
    // were flagged).
    if (!device.injected) return `${what} failed with ${String(error)} before the fault was injected`;
    const code = (error as { code?: string }).code;
    if (code === 'ERR_STORE_FAILED') failedWith ??= String((error as { cause?: unknown }).cause);
    // Full only where the device could not grow (a review planted a growth
    // that said it had not grown: every plan's writes were refused as full,
    // and nothing noticed).
    else if (code === 'ERR_STORE_FULL') {
      if (plan.kind !== 'grow' || plan.fault !== 'ENOSPC') return `${what} was refused as full: ${String(error)}`;
    } else if (!(plan.kind === 'read' && /injected/.test(String(error)))) return `${what} failed with ${String(error)}`;
    return undefined;
  };
  /** A write begun after the store failed must not resolve: the problem if `write` did. */
  const refusedAfterFailure = async (what: string, write: () => Promise<void>): Promise<string | undefined> => {
    const failedBefore = store.failure !== undefined;
    await write();
    return failedBefore ? `${what} resolved though it began after the store failed (${String(store.failure?.cause)})` : undefined;
  };
  /** Notes a resolved batch: acknowledged at once with sync: true, else once a flush after it resolves. */
  const resolved = (batch: number): void => {
    if (plan.deferred) written.push(batch);
    else acknowledged.add(batch);
  };
  /** resolved() of the delete of `batch`. */
  const resolvedDelete = (batch: number): void => {
    if (plan.deferred) deletesWritten.push(batch);
    else deletesAcknowledged.add(batch);
  };
  /** With sync: false: what was written so far is acknowledged (a flush() or a close() resolved). */
  const acknowledgeWritten = (): void => {
    for (const batch of written.splice(0)) acknowledged.add(batch);
    for (const batch of deletesWritten.splice(0)) deletesAcknowledged.add(batch);
  };
  /** With sync: false, a flush(): the batches written before it are acknowledged once it resolves. */
  const flushWritten = async (): Promise<string | undefined> => {
    try {
      await store.flush();
    } catch (error) {
      return failed('a flush()', error);
    }
    acknowledgeWritten();
    return undefined;
  };
  /**
   * With sync: false, after step `step` of a phase (a put group, a delete):
   * the deferred fdatasync starts after some steps and runs beside the next
   * step's writes, and a flush() follows others. Returns the flush's problem, if any.
   */
  const deferredPoint = async (step: number): Promise<string | undefined> => {
    if (step % DEFERRED_TASKS_EVERY_GROUPS === DEFERRED_TASKS_EVERY_GROUPS - 1) device.runDeferred();
    if (step % DEFERRED_FLUSH_EVERY_GROUPS === DEFERRED_FLUSH_EVERY_GROUPS - 1) return flushWritten();
    return undefined;
  };
  for (let batch = 0, groupIndex = 0; batch < WORKLOAD_BATCH_COUNT; groupIndex++) {
    // Every fourth batch goes with the next one, which starts an event-loop
    // turn later: its commit is submitted while the first one's is in
    // flight (pipelined), so a fault can hit a commit with a later one
    // written behind it. The later one is in the same commit or a later
    // one: if the first fails, it must fail too.
    const group = batch % 4 === 1 && batch + 1 < WORKLOAD_BATCH_COUNT ? [batch, batch + 1] : [batch];
    attempted.push(...group);
    // Each member's outcome: rejected, or the problem of its resolving though
    // it began after the store failed (undefined: none).
    const outcomes = await Promise.allSettled(
      group.map(async (member, index) => {
        if (index > 0) await new Promise<void>((resolve) => setImmediate(resolve));
        return refusedAfterFailure(`batch ${member}`, () => store.batch(entriesOf(member).map(([key, value]) => ({ type: 'put' as const, key, value }))));
      }),
    );
    // The group's outcomes first, in commit order, then the extra writes and
    // reads of its acknowledged members: a failure those meet comes after
    // every member settled (found with RINGSTORE_FAULT_NTH=60: a rewrite
    // after batch 17 failed the store, and batch 18, acknowledged before
    // it, was reported as acknowledged after the failure).
    const acknowledgedInGroup: number[] = [];
    for (const [index, outcome] of outcomes.entries()) {
      const member = group[index]!;
      if (outcome.status === 'rejected') {
        const problem = failed(`batch ${member}`, outcome.reason);
        if (problem !== undefined) return problem;
        continue;
      }
      resolved(member);
      acknowledgedInGroup.push(member);
      if (failedWith !== undefined) return `batch ${member} was acknowledged after the store failed (${failedWith})`;
      if (outcome.value !== undefined) return outcome.value;
    }
    for (const member of acknowledgedInGroup) {
      try {
        if (member % 7 === 3) {
          const problem = await refusedAfterFailure(`the rewrite after batch ${member}`, () => store.batch(entriesOf(member - 2).map(([key, value]) => ({ type: 'put' as const, key, value }))));
          if (problem !== undefined) return problem;
        }
        if (member % 11 === 5) await store.get(`b${member - 3}/1`).catch(() => undefined);
      } catch (error) {
        const problem = failed(`the rewrite or read after batch ${member}`, error);
        if (problem !== undefined) return problem;
      }
    }
    batch += group.length;
    // After the last group, close() is what acknowledges the batches written since the last flush().
    if (plan.deferred && batch < WORKLOAD_BATCH_COUNT) {
      const problem = await deferredPoint(groupIndex);
      if (problem !== undefined) return problem;
    }
  }
  // The deletes, each awaited, with the deferred fdatasync and a flush()
  // between some of them as between the put groups.
  const injectedBeforeDeletes = device.injected;
  for (const [index, batch] of DELETED_BATCHES.entries()) {
    // A delete begun after the store failed is refused before any IO: it
    // cannot excuse the loss of its batch (found by a review: counted as
    // possibly run, it hid acknowledged batches that recovery dropped).
    if (store.failure === undefined) deletesMayHaveRun.add(batch);
    let problem: string | undefined;
    try {
      problem = await refusedAfterFailure(`the delete of batch ${batch}`, () => store.batch(entriesOf(batch).map(([key]) => ({ type: 'del' as const, key }))));
      resolvedDelete(batch);
      if (failedWith !== undefined) return `the delete of batch ${batch} was acknowledged after the store failed (${failedWith})`;
    } catch (error) {
      problem = failed(`the delete of batch ${batch}`, error);
    }
    if (problem !== undefined) return problem;
    // After the last delete, close() is what acknowledges the deletes written since the last flush().
    if (plan.deferred && index < DELETED_BATCHES.length - 1) {
      const flushProblem = await deferredPoint(index);
      if (flushProblem !== undefined) return flushProblem;
    }
  }
  observed.faultInDeletes = !injectedBeforeDeletes && device.injected;
  const stops = faultStopsStore(plan);
  if (device.injected && stops && failedWith === undefined) {
    // A write-path fault that hit only a checkpoint or a trim-free path may
    // surface on the next write; the store must not simply go on.
    try {
      const problem = await refusedAfterFailure('a put after the workload', () => store.put('after', 'fault'));
      if (problem !== undefined) return problem;
      await store.flush();
      await store.checkpoint();
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_STORE_FAILED') failedWith = 'later';
    }
    if (failedWith === undefined) return `the store went on after a failed ${plan.kind}`;
  }
  // A trim is advisory, a failed read is the reader's error and a growth
  // the file system refused changes nothing: none may stop the store.
  if (device.injected && !stops && failedWith !== undefined) {
    return `a failed ${plan.kind} (${plan.fault}) stopped the store (${failedWith})`;
  }
  // A stopped store refuses every kind of write, not only the batches the
  // workload makes (a review planted a put() that resolved once the store
  // had failed: nothing noticed).
  if (store.failure !== undefined) {
    const writes: [string, () => Promise<unknown>][] = [
      ['put()', () => store.put('b0/0', 'after the failure')],
      ['delete()', () => store.delete('b0/1')],
      ['batch()', () => store.batch([{ type: 'put', key: 'b0/0', value: 'after the failure' }])],
    ];
    for (const [what, write] of writes) {
      const outcome = await write().then(
        () => undefined,
        (error: unknown) => error,
      );
      if ((outcome as { code?: string } | undefined)?.code !== 'ERR_STORE_FAILED') return `${what} on the failed store ${outcome === undefined ? 'resolved' : `rejected with ${String(outcome)}`}`;
    }
  }
  // With sync: true close() resolves whatever IO error it met (the WAL
  // holds every acknowledged write); with sync: false it rejects, with
  // ERR_STORE_FAILED, exactly when the store failed (now or before),
  // and a close() that resolves made every write before it durable. Either
  // way a read its checkpoint needed and could not make rejects it with
  // that read's error, the store not failed and every write before it durable.
  let closeError: unknown;
  try {
    await store.close();
  } catch (error) {
    closeError = error ?? new Error('close() rejected without an error');
  }
  const readRefusedClose = plan.kind === 'read' && store.failure === undefined && (closeError as { syscall?: string } | undefined)?.syscall === 'read';
  if (readRefusedClose) {
    observed.closeReadRefused = true;
    acknowledgeWritten();
  } else if (!plan.deferred) {
    if (closeError !== undefined) return `close() rejected: ${String(closeError)}`;
  } else if (store.failure === undefined) {
    if (closeError !== undefined) return `close() rejected though the store had not failed: ${String(closeError)}`;
    acknowledgeWritten();
  } else if ((closeError as { code?: string } | undefined)?.code !== 'ERR_STORE_FAILED') {
    return `close() of a failed store (${String(store.failure.cause)}) ${closeError === undefined ? 'resolved' : `rejected with ${String(closeError)}`}`;
  }
  // The store's own word, not only the writes': a store that failed with no
  // fault, or after one that must not stop it (in the background, in
  // close()), is wrong though no write was refused (a review planted both:
  // nothing noticed).
  if (store.failure !== undefined && (!device.injected || !stops)) {
    return `the store failed (${String(store.failure.cause)}) ${device.injected ? `after a ${plan.kind} fault that must not stop it` : 'before its fault was injected'}`;
  }
  observed.deletesAcknowledged = deletesAcknowledged.size;
  return checkAfterPowerLoss(simulated, seed, outcome, observed);
}

/**
 * Power loss now; then recovery must give every acknowledged batch whole
 * unless an acknowledged delete removed it, none of a batch whose delete
 * was acknowledged, no batch in part, and a clean integrity check. Returns
 * the problem found, if any.
 */
async function checkAfterPowerLoss(
  simulated: SimulatedDevice,
  seed: number,
  outcome: WorkloadOutcome,
  observed: { grewDurably: boolean },
): Promise<string | undefined> {
  const image = simulated.crash({ random: seededRandom(seed) });
  observed.grewDurably = image.sizeBytes > DEVICE_BYTES_FIRST;
  let reopened: BlockStore;
  try {
    reopened = await BlockStore.open('faults', { device: image, encoding: 'string' });
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_STORE_NOT_FOUND' && outcome.acknowledged.size === 0) return undefined;
    return `reopen failed: ${String(error)}`;
  }
  try {
    for (const batch of outcome.attempted) {
      const present = await Promise.all(entriesOf(batch).map(async ([key, value]) => {
        const actual = await reopened.get(key);
        if (actual !== undefined && actual !== value) throw new Error(`${key} has wrong data`);
        return actual !== undefined;
      }));
      // A batch and the delete of it are each one commit: whole or not at all.
      if (!present.every(Boolean) && present.some(Boolean)) return `batch ${batch} partly there`;
      if (outcome.deletesAcknowledged.has(batch)) {
        if (present.some(Boolean)) return `batch ${batch} is there though its acknowledged delete ran after it`;
      } else if (outcome.acknowledged.has(batch) && !outcome.deletesMayHaveRun.has(batch) && !present.every(Boolean)) {
        return `acknowledged batch ${batch} lost`;
      }
      // An acknowledged batch whose delete may have run, not acknowledged:
      // there whole (the delete lost) or gone whole (the delete durable).
    }
    await reopened.verifyIntegrity();
    return undefined;
  } catch (error) {
    return `check failed: ${String(error)}`;
  } finally {
    await reopened.close().catch(() => undefined);
  }
}

/** A fault reproducer's file: the plan, its seed and the problem (the run needs nothing else). */
export const FAULT_STATE_FILE = 'fault.json';
/** Version 2: plans carry `deferred`, and the device grows (`grow` faults). Version 3: the workload deletes (DELETED_BATCHES), so a plan's Nth operation is another one. */
export const FAULT_FORMAT_VERSION = 3;
let savedFaults = 0;

function saveFaultReproducer(directory: string, plan: FaultPlan, seed: number, problem: string): string {
  const target = join(directory, `fault-${process.pid}-${++savedFaults}`);
  mkdirSync(target, { recursive: true });
  writeFileSync(join(target, FAULT_STATE_FILE), `${JSON.stringify({ version: FAULT_FORMAT_VERSION, plan, seed, problem }, null, 1)}\n`);
  return target;
}

/** True if `directory` holds a fault reproducer. */
export function isFaultReproducer(directory: string): boolean {
  return existsSync(join(directory, FAULT_STATE_FILE));
}

/** Runs a saved fault plan again; the problem now, or undefined if it passes. */
export async function replayFaultReproducer(directory: string): Promise<{ description: string; recorded: string; problem: string | undefined }> {
  const record = JSON.parse(readFileSync(join(directory, FAULT_STATE_FILE), 'utf8')) as { version: number; plan: FaultPlan; seed: number; problem: string };
  if (record.version !== FAULT_FORMAT_VERSION) {
    throw Object.assign(new Error(`${directory} is a fault reproducer of version ${String(record.version)}; this build replays version ${FAULT_FORMAT_VERSION}`), {
      code: 'ERR_REPRODUCER_VERSION',
    });
  }
  const outcome = await runFaultPlan(record.plan, record.seed);
  return { description: `${JSON.stringify(record.plan)} seed ${record.seed}`, recorded: record.problem, problem: outcome.problem };
}

/**
 * Every kind × N up to `nthMax` (GROW_NTH_MAX for growths) × fault (EIO,
 * ENOSPC, and short and lost where they apply) × transient/persistent ×
 * sync: true/false. Run i uses seed `seed + i`; a violation names its plan
 * and seed, so runFaultPlan(plan, seed) reproduces it.
 */
export async function exploreIoFaults(nthMax: number, seed: number, options: { /** Save a reproducer of each violation here. */ reproducerDirectory?: string } = {}): Promise<FaultReport> {
  const byFault = Object.fromEntries(FAULT_TYPES.map((fault) => [fault, { runs: 0, injected: 0 }])) as Record<FaultType, FaultTypeCounts>;
  const report: FaultReport = { runs: 0, injected: 0, byFault, shortCuts: 0, lostOvertaken: 0, grown: 0, deferredSyncsRan: 0, closeReadRefusals: 0, deletesAcknowledged: 0, faultsInDeletes: 0, violations: [], reproducers: [] };
  for (const deferred of [false, true]) {
    for (const kind of FAULT_KINDS) {
      for (let nth = 1; nth <= (kind === 'grow' ? Math.min(nthMax, GROW_NTH_MAX) : nthMax); nth++) {
        for (const fault of FAULT_TYPES) {
          if (!faultApplies(fault, kind)) continue;
          for (const persistent of [false, true]) {
            const plan: FaultPlan = { kind, nth, fault, persistent, deferred };
            const runSeed = seed + report.runs;
            const outcome = await runFaultPlan(plan, runSeed);
            report.runs++;
            byFault[fault].runs++;
            if (outcome.injected) {
              report.injected++;
              byFault[fault].injected++;
            }
            if (outcome.cuts > 0) report.shortCuts++;
            if (outcome.overtakes > 0) report.lostOvertaken++;
            if (outcome.grew) report.grown++;
            if (outcome.deferredRan > 0) report.deferredSyncsRan++;
            if (outcome.closeReadRefused) report.closeReadRefusals++;
            if (outcome.deletesAcknowledged > 0) report.deletesAcknowledged++;
            if (outcome.faultInDeletes) report.faultsInDeletes++;
            if (outcome.problem !== undefined) {
              report.violations.push(`${JSON.stringify(plan)} seed ${runSeed}: ${outcome.problem}`);
              report.reproducers.push(options.reproducerDirectory === undefined ? undefined : saveFaultReproducer(options.reproducerDirectory, plan, runSeed, outcome.problem));
            }
          }
        }
      }
    }
  }
  return report;
}
