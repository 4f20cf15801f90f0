// Corruption explorer: damage at rest. Takes images of the traced workload
// (at crash points where everything submitted so far reached the media) and
// damages it — a flipped bit, a garbage sector, a zeroed sector, a write the
// device acknowledged but lost (one whole write of the trace missing), a
// write that landed on the wrong blocks (misdirected) — in every structure:
// superblock copies, WAL, checkpoint, data.
// Then opens the store and reads every key the workload wrote. The rule: a
// read fails with ERR_STORE_CORRUPT (opening may fail with it too), or what
// the store holds is the state after a prefix of commit order with every
// acknowledged operation; never wrong data, never another error, never a
// crash. One exception, counted apart: damage to the last commit of the log
// is indistinguishable from a torn write and drops it (docs/durability.md);
// losing anything older fails.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { BlockStore } from '../../engine/block_store.js';
import type { Key } from '../../engine/key_codec.js';
import { commitDurableSequence } from '../../format/commit.js';
import { SUPERBLOCK_SLOT_COUNT } from '../../format/constants.js';
import { decodeFrameBlock, frameBlockPayload } from '../../format/frame.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { buildImage, crashPointAt, crashPoints, SECTOR_SIZE, type CrashPoint } from './crash_states.js';
import { isRefusedKey, judgeRecovered, keyId, sameValue, touchedKeys } from './oracle.js';
import { loadReproducerWorkload, newReproducerDirectory } from './reproducer.js';
import { seededRandom } from './seeded_random.js';
import type { TracedWorkload } from './workload.js';
import type { TraceOperation } from './write_trace.js';

/** A kind of damage at rest the corruption explorer applies to a settled image. */
export type Damage = 'bitflip' | 'garbage-sector' | 'zero-sector' | 'lost-write' | 'misdirected-write';
const DAMAGES: readonly Damage[] = ['bitflip', 'garbage-sector', 'zero-sector', 'lost-write', 'misdirected-write'];

/** What {@link exploreCorruption} checked and found. */
export interface CorruptionReport {
  /** Damaged images checked. */
  trials: number;
  /** Trials by kind of damage. */
  byDamage: Record<Damage, number>;
  /** Trials where opening the store was refused with ERR_STORE_CORRUPT. */
  refusedOpens: number;
  /**
   * Trials where the damage destroyed every sign of a store (both superblock
   * copies and the WAL head zeroed or overwritten, e.g. a lost superblock
   * write plus a write misdirected over the start): open says
   * ERR_STORE_NOT_FOUND. No wrong data, but not detected as damage either
   * (docs/durability.md, limits).
   */
  unrecognised: number;
  /** Reads that failed with ERR_STORE_CORRUPT. */
  detectedReads: number;
  /**
   * Trials where the store opened and the replay of its WAL tail, which
   * runs after open (engine/replay_overlay.ts), found the damage
   * (whenRecovered() rejected with ERR_STORE_CORRUPT, failing the store):
   * what refused the open before the replay moved after it.
   */
  failedReplays: number;
  /** Reads that returned bytes other than written: must stay 0. */
  wrongReads: number;
  /**
   * Damaged images that read as a prefix of commit order without some
   * acknowledged operation of the last commit, with no error: the documented
   * last-commit limit. A loss of anything older is a failure.
   */
  silentLosses: number;
  /** Any other failure (an unexpected error): must stay 0. */
  failures: string[];
  /**
   * The reproducer directory of each failure (with reproducerDirectory;
   * undefined past DAMAGE_REPRODUCERS_MAX saved): parallel to `failures`.
   * Replay with `crash-test --replay`.
   */
  reproducers: (string | undefined)[];
  /** Wall time of the exploration, ms. */
  durationMs: number;
}

/** A damage reproducer's description file (beside the trace, the oracle and the damaged image). */
export const DAMAGE_STATE_FILE = 'damage.json';
const DAMAGE_IMAGE_FILE = 'image.bin';
/** Bumped whenever a saved damage would check differently. */
export const DAMAGE_FORMAT_VERSION = 1;
/** Damaged images saved as reproducers (each holds a copy of the image: up to WORKLOAD_STORE_BYTES_MAX). */
export const DAMAGE_REPRODUCERS_MAX = 10;

interface SavedDamage {
  version: number;
  /** The settled crash point the damage was applied to. */
  eventCount: number;
  /** Blocks whose content the damage changed. */
  hit: number[];
  description: string;
  problem: string;
  seed: number;
}

/**
 * Damages settled images of a traced workload (`trials` of them, drawn from
 * `seed`: bit flips, garbage and zeroed sectors, lost and misdirected
 * writes) and checks that every read is right or ERR_STORE_CORRUPT and that
 * the store holds a prefix of commit order with every acknowledged
 * operation, apart from the documented last-commit limit.
 */
export async function exploreCorruption(
  workload: TracedWorkload,
  options: { trials: number; seed: number; /** Save a reproducer of each failure here (a directory per failure). */ reproducerDirectory?: string },
): Promise<CorruptionReport> {
  const started = performance.now();
  const { trace, base } = workload;
  const blockSize = workload.store.blockSize;
  const random = seededRandom(options.seed);
  const keys = touchedKeys(workload.operations);
  // Images where nothing is pending: every acknowledged write is on the media.
  const settled: { point: CrashPoint; image: Uint8Array; written: Set<number> }[] = [];
  // The points right after an acknowledgement (one pass over the trace).
  for (const point of crashPoints(trace)) {
    if (trace.events[point.eventCount - 1].type !== 'ack') continue;
    if (point.pending.some((operation) => operation.completedAt === undefined)) continue;
    const image = buildImage(trace, base, point, new Map(point.pending.map((operation) => [operation, 'all'])));
    // Blocks that hold something: damage to never-written space proves nothing.
    const written = new Set<number>();
    for (const operation of [...point.durable, ...point.pending]) {
      if (operation.kind === 'trim') continue;
      for (let block = Math.floor(operation.position / blockSize); block * blockSize < operation.position + operation.length; block++) written.add(block);
    }
    settled.push({ point, image, written });
  }
  const picks = settled.filter((_, i) => i % Math.max(1, Math.floor(settled.length / 16)) === 0);
  const report = emptyCorruptionReport(0);
  let savedImages = 0;
  for (let trial = 0; trial < options.trials && picks.length > 0; trial++) {
    const { point, image, written } = picks[trial % picks.length];
    const blocks = [...written];
    let block = blocks[Math.floor(random() * blocks.length)];
    let damaged: Uint8Array = Uint8Array.prototype.slice.call(image);
    let damage: Damage = DAMAGES[Math.floor(random() * DAMAGES.length)];
    const sectorsPerBlock = blockSize / SECTOR_SIZE;
    const sectorStart = block * blockSize + Math.floor(random() * sectorsPerBlock) * SECTOR_SIZE;
    const writes = point.durable.filter((operation) => operation.kind !== 'trim' && operation.dataOffset >= 0);
    // Without a durable write to lose, a bit flip instead: every trial damages something.
    if ((damage === 'lost-write' || damage === 'misdirected-write') && writes.length === 0) damage = 'bitflip';
    let what = `${damage} in block ${block}`;
    /** Blocks whose content the damage changed. */
    const hit = new Set<number>([block]);
    if (damage === 'lost-write' || damage === 'misdirected-write') {
      // The device acknowledged (and flushed) this write but it never
      // reached its blocks: they keep what the image had without it.
      const victim = writes[Math.floor(random() * writes.length)];
      what = `${damage} of #${victim.id} (${victim.phase}${victim.markId === undefined ? '' : ` ${victim.markId}`}, block ${Math.floor(victim.position / blockSize)}+${Math.ceil(victim.length / blockSize)})`;
      block = Math.floor(victim.position / blockSize);
      hit.clear();
      for (let lost = block; lost * blockSize < victim.position + victim.length; lost++) hit.add(lost);
      damaged = buildImage(trace, base, { ...point, durable: point.durable.filter((operation) => operation !== victim) }, new Map(point.pending.map((operation) => [operation, 'all'])));
      if (damage === 'misdirected-write') {
        // ... and landed on other blocks instead, block-aligned.
        const blockCount = Math.ceil(victim.length / blockSize);
        const target = blocks[Math.floor(random() * blocks.length)];
        if (target !== block && (target + blockCount) * blockSize <= damaged.length) {
          damaged.set(trace.dataOf(victim), target * blockSize);
          what += ` onto block ${target}`;
          for (let landed = target; landed < target + blockCount; landed++) hit.add(landed);
        }
      }
    } else if (damage === 'bitflip') {
      const byte = block * blockSize + Math.floor(random() * blockSize);
      damaged[byte] ^= 1 << Math.floor(random() * 8);
    } else if (damage === 'garbage-sector') {
      for (let i = 0; i < SECTOR_SIZE; i++) damaged[sectorStart + i] = Math.floor(random() * 256);
    } else if (damage === 'zero-sector') {
      damaged.fill(0, sectorStart, sectorStart + SECTOR_SIZE);
    }
    report.trials++;
    report.byDamage[damage]++;
    const failuresBefore = report.failures.length;
    const description = `${what} at event ${point.eventCount}`;
    await checkDamaged(damaged, workload, keys, point, hit, report, description);
    if (report.failures.length > failuresBefore) {
      let target: string | undefined;
      if (options.reproducerDirectory !== undefined && savedImages < DAMAGE_REPRODUCERS_MAX) {
        savedImages++;
        const record: SavedDamage = { version: DAMAGE_FORMAT_VERSION, eventCount: point.eventCount, hit: [...hit], description, problem: report.failures[failuresBefore], seed: options.seed };
        target = newReproducerDirectory(options.reproducerDirectory, 'damage', workload);
        writeFileSync(join(target, DAMAGE_IMAGE_FILE), damaged);
        writeFileSync(join(target, DAMAGE_STATE_FILE), `${JSON.stringify(record, null, 1)}\n`);
      }
      // One image, however many of its reads failed.
      while (report.reproducers.length < report.failures.length) report.reproducers.push(target);
    }
  }
  report.durationMs = performance.now() - started;
  return report;
}

/** True if `directory` holds a damage reproducer (rather than a crash state's). */
export function isDamageReproducer(directory: string): boolean {
  return existsSync(join(directory, DAMAGE_STATE_FILE));
}

/** Checks a saved damaged image again; the problem now, or undefined if it passes. */
export async function replayDamageReproducer(directory: string): Promise<{ description: string; recorded: string; problem: string | undefined }> {
  const record = JSON.parse(readFileSync(join(directory, DAMAGE_STATE_FILE), 'utf8')) as SavedDamage;
  if (record.version !== DAMAGE_FORMAT_VERSION) {
    throw Object.assign(new Error(`${directory} is a damage reproducer of version ${String(record.version)}; this build replays version ${DAMAGE_FORMAT_VERSION}`), {
      code: 'ERR_REPRODUCER_VERSION',
    });
  }
  const workload = loadReproducerWorkload(directory);
  try {
    const image = new Uint8Array(readFileSync(join(directory, DAMAGE_IMAGE_FILE)));
    const point = crashPointAt(workload.trace, record.eventCount);
    const report = emptyCorruptionReport(1);
    await checkDamaged(image, workload, touchedKeys(workload.operations), point, new Set(record.hit), report, record.description);
    return { description: record.description, recorded: record.problem, problem: report.failures[0] };
  } finally {
    workload.trace.close();
  }
}

/**
 * The operations a damaged image must still hold: all acknowledged ones
 * (`acknowledged`) — or, where the damage can pass for the end of the log,
 * all but those of the commits it can take with it (`outsideLostTail`).
 * The log's end is recorded nowhere but in the commits themselves: a later
 * commit proves an earlier one durable by its durableSequence (format/
 * commit.ts), and nothing else does (docs/durability.md, limits). So a scan
 * cannot tell a torn tail from:
 *  - damage to the last commit (its WAL blocks, or its extent data, which
 *    recovery checks for the commits no later one vouches for);
 *  - damage to a commit whose every witness (a later commit vouching for
 *    it) the same damage destroyed too — a misdirected write over the log's
 *    last commits, or one lost from a commit and landed on the flush marker
 *    that vouched for it. The log then ends before that commit, and the
 *    intact commits after it, vouched for by nothing, go with it;
 *  - and if the damage also hit extent blocks, the commits left that no
 *    surviving commit vouches for (the last one; with sync: false, all
 *    since the last surviving flush marker) have their data checked at
 *    recovery, and the first with a damaged value ends the log like a
 *    torn commit.
 * The commits are the newest WAL writes on the image (a settled image: every
 * write is on it).
 */
function mustHold(
  workload: TracedWorkload,
  point: CrashPoint,
  hit: ReadonlySet<number>,
): { acknowledged: Set<number>; outsideLostTail: Set<number> } {
  const blockSize = workload.store.blockSize;
  const blocksOf = (operation: TraceOperation): number[] => {
    const blocks: number[] = [];
    for (let block = Math.floor(operation.position / blockSize); block * blockSize < operation.position + operation.length; block++) blocks.push(block);
    return blocks;
  };
  // The live commits: WAL writes still the newest at their first block.
  const newestAt = new Map<number, TraceOperation>();
  for (const operation of [...point.durable, ...point.pending].sort((a, b) => a.id - b.id)) {
    for (const block of blocksOf(operation)) newestAt.set(block, operation);
  }
  const commits = [...new Set(newestAt.values())]
    .filter((operation) => operation.phase === 'wal' && operation.markId !== undefined && newestAt.get(blocksOf(operation)[0]) === operation)
    .map((operation) => ({
      sequence: operation.markId!,
      hit: blocksOf(operation).some((block) => hit.has(block)),
      vouchesFor: recordedDurableSequence(workload, operation),
    }))
    .sort((a, b) => a.sequence - b.sequence);
  let lostFrom = commits.length > 0 ? commits[commits.length - 1].sequence : Infinity;
  for (const commit of commits) {
    if (!commit.hit || commit.sequence >= lostFrom) continue;
    const witnessed = commits.some((later) => later.sequence > commit.sequence && !later.hit && later.vouchesFor >= commit.sequence);
    if (!witnessed) lostFrom = commit.sequence;
  }
  // The commits left after the lost ones that none vouches for are a tail
  // whose extent data recovery checks: damage to data blocks may drop it
  // from its first commit on (which commit owns a block is not traced).
  // The engine lays the WAL right after the superblock copies (docs/format.md).
  const walEndBlock = SUPERBLOCK_SLOT_COUNT + workload.store.walSizeBytes / blockSize;
  if ([...hit].some((block) => block >= walEndBlock)) {
    let vouched = 0;
    for (const commit of commits) if (commit.sequence < lostFrom && !commit.hit) vouched = Math.max(vouched, commit.vouchesFor);
    lostFrom = Math.min(lostFrom, vouched + 1);
  }
  const acknowledged = new Set<number>();
  const outsideLostTail = new Set<number>();
  for (let index = 0; index < point.eventCount; index++) {
    const event = workload.trace.events[index];
    if (event.type !== 'ack') continue;
    acknowledged.add(event.operation);
    const sequence = workload.operations[event.operation].commitSequence;
    if (sequence === undefined || sequence < lostFrom) outsideLostTail.add(event.operation);
  }
  return { acknowledged, outsideLostTail };
}

/** The durableSequence a traced WAL write recorded (its first block's commit header). */
function recordedDurableSequence(workload: TracedWorkload, operation: TraceOperation): number {
  const blockSize = workload.store.blockSize;
  const first = workload.trace.dataOf(operation).subarray(0, blockSize);
  const header = decodeFrameBlock('wal', first, Math.floor(operation.position / blockSize));
  return commitDurableSequence(frameBlockPayload(first, header));
}

/**
 * Opens a damaged image and reads every key the workload touched. A read
 * that fails with ERR_STORE_CORRUPT is detected damage; the rest must be the
 * state after a prefix of commit order holding every acknowledged operation,
 * or — the documented limit — every operation outside the commits the damage
 * can pass for the log's end of (mustHold; a silent loss, counted). Anything
 * else is a wrong read (a value never written to the key) or a loss beyond
 * those commits: failures.
 */
async function checkDamaged(
  image: Uint8Array,
  workload: TracedWorkload,
  keys: ReadonlyMap<string, Key>,
  point: CrashPoint,
  hit: ReadonlySet<number>,
  report: CorruptionReport,
  what: string,
): Promise<void> {
  let store: BlockStore;
  try {
    store = await BlockStore.open('damaged', { device: new SimulatedDevice({ sizeBytes: image.length }, image), encoding: workload.store.encoding });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_STORE_CORRUPT') report.refusedOpens++;
    else if (code === 'ERR_STORE_NOT_FOUND') report.unrecognised++;
    else report.failures.push(`${what}: open failed with ${String(error)}`);
    return;
  }
  const observed = new Map<string, unknown>();
  let replayFailed = false;
  try {
    for (const [id, key] of keys) {
      if (isRefusedKey(key)) continue;
      try {
        observed.set(id, await store.get(key));
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_STORE_CORRUPT') report.detectedReads++;
        else report.failures.push(`${what}: get(${id.slice(1)}) failed with ${String(error)}`);
      }
    }
    // The reads above ran while the tail was being replayed, or after; what the replay found:
    try {
      await store.whenRecovered();
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_STORE_CORRUPT') {
        report.failedReplays++;
        replayFailed = true;
      } else report.failures.push(`${what}: the WAL replay failed with ${String(error)}`);
    }
  } finally {
    await store.close().catch(() => undefined);
  }
  const { acknowledged, outsideLostTail } = mustHold(workload, point, hit);
  if (judgeRecovered(workload.operations, acknowledged, observed) === undefined) return;
  const beyondLastCommit = judgeRecovered(workload.operations, outsideLostTail, observed);
  if (beyondLastCommit === undefined) {
    // The documented last-commit limit; not silent where the replay found
    // the damage and said so (as a refused open does).
    if (!replayFailed) report.silentLosses++;
    return;
  }
  const written = new Map<string, unknown[]>();
  for (const operation of workload.operations) {
    for (const [key, value] of operation.writes) written.set(keyId(key), [...(written.get(keyId(key)) ?? []), value]);
  }
  for (const [id, actual] of observed) {
    if (actual !== undefined && !(written.get(id) ?? []).some((value) => sameValue(value, actual))) {
      report.wrongReads++;
      report.failures.push(`${what}: ${id.slice(1)} read back a value never written to it`);
      return;
    }
  }
  report.failures.push(`${what}: lost more than the commits the damage can pass for the log's end of: ${beyondLastCommit}`);
}

/** A report with nothing counted yet, for `trials` trials. */
function emptyCorruptionReport(trials: number): CorruptionReport {
  return {
    trials,
    byDamage: { bitflip: 0, 'garbage-sector': 0, 'zero-sector': 0, 'lost-write': 0, 'misdirected-write': 0 },
    refusedOpens: 0,
    failedReplays: 0,
    unrecognised: 0,
    detectedReads: 0,
    wrongReads: 0,
    silentLosses: 0,
    failures: [],
    reproducers: [],
    durationMs: 0,
  };
}
