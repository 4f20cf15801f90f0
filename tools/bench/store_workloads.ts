// The workloads of bench:store, written once against StoreAdapter so that
// ringstore and every peer run exactly the same measured operations on the
// same keys and values (the untimed warm-ups before some of them last as
// long for every store, so a faster one puts more warm-up keys).
//
// Every workload checks what it reads (pair check: the bytes a get or a scan
// returns are the bytes that were put), so a store returning wrong data fails
// the run instead of winning it. Latencies are process.hrtime.bigint()
// around each operation, end to end in JS.
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';

import { LatencyRecorder, type LatencyPercentilesUs } from './latency_recorder.js';
import { RandomOffsets } from './random_offsets.js';
import { formatCount } from './report.js';
import type { StoreAdapter, StoreContender } from './store_adapter.js';

const MiB = 1024 * 1024;

export type StoreWorkloadId = 'one-writer' | 'writers-64' | 'bulk-load' | 'random-get' | 'blobs' | 'scan' | 'reopen';

/** In run order. random-get, scan and reopen work on the keys bulk-load stored. */
export const STORE_WORKLOAD_IDS: readonly StoreWorkloadId[] = ['one-writer', 'writers-64', 'bulk-load', 'random-get', 'scan', 'blobs', 'reopen'];
/** Workloads that need the bulk-loaded data set (and load it, untimed, if bulk-load itself is not selected). */
export const DATASET_WORKLOAD_IDS: readonly StoreWorkloadId[] = ['bulk-load', 'random-get', 'scan', 'reopen'];

/** One table of the report: a workload may produce several (blobs: write and read). */
export type PhaseId = 'one-writer' | 'writers-64' | 'bulk-load' | 'random-get' | 'scan' | 'blob-write' | 'blob-writers-8' | 'blob-read' | 'close' | 'reopen';

export interface PhaseSpec {
  id: PhaseId;
  title: string;
  /** What the phase is judged by: a rate of operations, a bandwidth, or a duration (lower is better). */
  headline: 'rate' | 'bandwidth' | 'duration';
  /** The unit of the rate: puts/s, gets/s, keys/s. */
  rateUnit: string;
}

export interface StoreMeasurement {
  opCount: number;
  elapsedSeconds: number;
  opsPerSecond: number;
  /** Payload bytes moved per second, for the blob phases. */
  bandwidthMiBps: number | undefined;
  /** Per operation, when an operation is more than a few µs of JS. */
  latencyUs: LatencyPercentilesUs | undefined;
  /** Process CPU over the phase (all threads, the peers' workers too); 100 is one core. */
  cpuPercent: number;
  /** The store's own counters after the phase, if it has any. */
  note: string | undefined;
}

/** How much each workload does; --scale multiplies the counts. */
export interface WorkloadCounts {
  valueSizeBytes: number;
  onePutCount: number;
  writerCount: number;
  /** Seconds each round of the concurrent writers runs for (every store the same time). */
  concurrentWriterSeconds: number;
  bulkKeyCount: number;
  bulkBatchEntryCount: number;
  getCount: number;
  blobCount: number;
  blobSizeBytes: number;
}

/** Counts at --scale 1: the workloads of FIGURES.md. */
export const FULL_COUNTS: WorkloadCounts = {
  valueSizeBytes: 100,
  onePutCount: 5_000,
  writerCount: 64,
  concurrentWriterSeconds: 2,
  bulkKeyCount: 1_000_000,
  bulkBatchEntryCount: 1_000,
  getCount: 1_000_000,
  blobCount: 256,
  blobSizeBytes: 1 * MiB,
};
/**
 * The shortest round of the concurrent writers, whatever the scale. Their
 * rounds run for a time rather than a count of puts: a round of 64 × 500
 * puts lasted 0.4-0.7 s for ringstore, shorter than the ~0.7 s between its
 * checkpoints at that rate, so whether a round held one decided its rate
 * (its three rows, one store under three settings, differed by as much as
 * what they were meant to compare: docs/benchmarks.md, session 52), while
 * the unbatched peers took 4-7 s a round for the same count. Rounds of
 * 0.25 s at --scale 0.05 did the same (session 53: 42.8 k, 54.2 k and
 * 71.9 k puts/s for ringstore's three rows), so a round lasts at least a
 * second, one checkpoint cycle and more: 24 s for the 8 contenders' three
 * rounds.
 */
const CONCURRENT_WRITER_SECONDS_MIN = 1;
/** Keys of one concurrent writer are `con${writer * CONCURRENT_WRITER_KEY_SPAN + i}`: each writer appends in a range of its own. */
const CONCURRENT_WRITER_KEY_SPAN = 10_000_000;
/** Keys checked after the concurrent writers, per writer (its first, last and some between). */
const CONCURRENT_WRITER_CHECKS = 4;
/** The fewest blobs a blob phase moves, whatever the scale. */
const BLOB_COUNT_MIN = 32;
/** Durable blob puts before the blob phases, untimed: the first writes to a new store file cost extra (allocation, first fdatasyncs). */
const BLOB_WARMUP_COUNT = 4;
/** Durable puts before the one-writer and 64-writer measurements, at least: threads, files and caches awake. */
export const WARMUP_PUT_COUNT = 200;
/**
 * And for at least this long, as fio's ramp before its rows (--ramp_time,
 * FIO_WARMUP_SECONDS in bench_store.ts): a fresh process runs its first
 * ~2 000 durable puts at about half the steady rate while V8 compiles the
 * hot paths (docs/benchmarks.md, session 15: CPU per put 330-420 µs in the
 * first 2 000 puts, 112-246 µs after), so after only 200 warm-up puts the
 * phase measured V8's start as much as the store. Every store gets the
 * same time.
 */
export const WARMUP_SECONDS = 1;

/**
 * Keys of the untimed data set every contender loads, reads and scans
 * before the timed data-set phases (bulk load, random gets, scan, close,
 * reopen), which run once each, contender after contender. Without it the
 * first contender paid for V8 compiling its code: ringstore ran first, and
 * a second ringstore contender run last was 1.34–1.78 × faster at the bulk
 * load and 1.15–1.60 × at random gets (a review, session 43).
 */
export const DATASET_WARMUP_KEY_COUNT = 20_000;

/** Runs `put(i)` for i = 0, 1, ... until both `countMin` puts and WARMUP_SECONDS have passed. */
async function warmUp(countMin: number, put: (index: number) => Promise<unknown>): Promise<void> {
  const endMs = performance.now() + WARMUP_SECONDS * 1000;
  for (let i = 0; i < countMin || performance.now() < endMs; i++) await put(i);
}

export function countsFor(scale: number): WorkloadCounts {
  assert.ok(scale > 0 && scale <= 1);
  const scaled = (count: number, minimum: number): number => Math.max(minimum, Math.round(count * scale));
  return {
    ...FULL_COUNTS,
    onePutCount: scaled(FULL_COUNTS.onePutCount, 100),
    concurrentWriterSeconds: Math.max(CONCURRENT_WRITER_SECONDS_MIN, FULL_COUNTS.concurrentWriterSeconds * scale),
    bulkKeyCount: scaled(FULL_COUNTS.bulkKeyCount, FULL_COUNTS.bulkBatchEntryCount),
    getCount: scaled(FULL_COUNTS.getCount, 1_000),
    // 32 at least: with 13 (scale 0.05) one slow fdatasync decided the row.
    blobCount: scaled(FULL_COUNTS.blobCount, BLOB_COUNT_MIN),
  };
}

/**
 * Rounds of the one-writer, 64-writer and blob phases, each running every
 * contender once on a fresh store, in an order rotated from round to round
 * (roundOrder); a contender's row is its median round. In one process the
 * first contender to run trailed: session 22's first row, ringstore without
 * busy-polling, ran 5 109–6 262 puts/s against 6 512–7 577 for the 50 µs
 * spin row right after it, yet the two were the same within noise when
 * alternated (docs/benchmarks.md, "Session 22"). The order, not the store,
 * decided that row, and the one-writer target is read from it.
 */
export const WRITER_PHASE_ROUNDS = 3;

/**
 * `contenders` in the order of round `round` of `roundCount`: rotated so
 * that over the rounds each runs at positions spread over the list (first,
 * late, middle), not always at the same one.
 */
export function roundOrder<T>(contenders: readonly T[], round: number, roundCount: number): T[] {
  assert.ok(Number.isInteger(round) && round >= 0 && round < roundCount);
  const shift = (round * Math.ceil(contenders.length / roundCount)) % Math.max(1, contenders.length);
  return [...contenders.slice(shift), ...contenders.slice(0, shift)];
}

/** The round whose rate is the median of `rounds` (the lower middle of an even count): its latencies stay those of one run. */
export function medianRound(rounds: readonly StoreMeasurement[]): StoreMeasurement {
  assert.ok(rounds.length > 0);
  const sorted = [...rounds].sort((a, b) => a.opsPerSecond - b.opsPerSecond);
  return sorted[(sorted.length - 1) >> 1]!;
}

export function phaseSpecs(counts: WorkloadCounts): Record<PhaseId, PhaseSpec> {
  const values = `${counts.valueSizeBytes} B values`;
  const bulk = `${formatCount(counts.bulkKeyCount)} keys`;
  const blobs = `${counts.blobCount} × ${counts.blobSizeBytes / MiB} MiB`;
  return {
    'one-writer': { id: 'one-writer', title: `1 writer, durable puts awaited in turn (${formatCount(counts.onePutCount)} × ${values}; median of ${WRITER_PHASE_ROUNDS} rounds)`, headline: 'rate', rateUnit: 'puts/s' },
    'writers-64': {
      id: 'writers-64',
      title: `${counts.writerCount} concurrent writers, durable puts of ${values} (rounds of ${counts.concurrentWriterSeconds} s; median of ${WRITER_PHASE_ROUNDS} rounds)`,
      headline: 'rate',
      rateUnit: 'puts/s',
    },
    'bulk-load': {
      id: 'bulk-load',
      title: `bulk load of ${bulk} × ${values}, ascending, durable batches of ${formatCount(counts.bulkBatchEntryCount)} awaited in turn`,
      headline: 'rate',
      rateUnit: 'puts/s',
    },
    'random-get': { id: 'random-get', title: `${formatCount(counts.getCount)} uniform random gets over ${bulk}, one at a time, right after the load (hot where the data set fits a store's cache: at --scale 1 ringstore's leaves outgrow its default 64 MiB)`, headline: 'rate', rateUnit: 'gets/s' },
    scan: { id: 'scan', title: `full ordered scan of ${bulk} with values`, headline: 'rate', rateUnit: 'keys/s' },
    'blob-write': { id: 'blob-write', title: `${blobs} blobs, durable puts awaited in turn (median of ${WRITER_PHASE_ROUNDS} rounds)`, headline: 'bandwidth', rateUnit: 'puts/s' },
    'blob-writers-8': {
      id: 'blob-writers-8',
      title: `${BLOB_WRITER_COUNT} concurrent writers of ${concurrentBlobCount(counts)} × ${counts.blobSizeBytes / MiB} MiB blobs, durable puts (median of ${WRITER_PHASE_ROUNDS} rounds)`,
      headline: 'bandwidth',
      rateUnit: 'puts/s',
    },
    'blob-read': { id: 'blob-read', title: `${blobs} blobs read back (just written), one at a time (median of ${WRITER_PHASE_ROUNDS} rounds)`, headline: 'bandwidth', rateUnit: 'gets/s' },
    close: { id: 'close', title: `close with ${bulk} (ringstore: writes a checkpoint)`, headline: 'duration', rateUnit: '' },
    reopen: { id: 'reopen', title: `open of ${bulk} after a clean close (ringstore: BlockStore.open)`, headline: 'duration', rateUnit: '' },
  };
}

// ---- Keys and values ----

/** Key `index` of the bulk data set: fixed width, so string order is index order. */
export function bulkKey(index: number): string {
  return `k${index.toString().padStart(9, '0')}`;
}

/**
 * Values cut from one pool of random bytes (random, not zeros, so that no
 * store or device can compress them away): value `index` starts at a
 * different offset for every index within the pool.
 */
export class ValueSource {
  readonly #pool: Buffer;
  readonly #valueSizeBytes: number;

  /**
   * `seed`: fill the pool from xorshift32 with this non-zero seed instead of
   * crypto randomness, so that separate processes cut the same values (the
   * scale section checks in one child what another wrote).
   */
  constructor(valueSizeBytes: number, poolSizeBytes: number, seed?: number) {
    assert.ok(poolSizeBytes > valueSizeBytes);
    this.#pool = Buffer.allocUnsafe(poolSizeBytes);
    if (seed === undefined) {
      randomFillSync(this.#pool);
    } else {
      const random = new RandomOffsets(seed, 2 ** 32, 1);
      for (let i = 0; i < poolSizeBytes; i++) this.#pool[i] = random.next() & 0xff;
    }
    this.#valueSizeBytes = valueSizeBytes;
  }

  /** A view into the pool: stores must copy it (they all do before their put returns). */
  valueOf(index: number): Buffer {
    // 4099 is prime, so consecutive indexes start at well spread offsets.
    const offset = (index * 4099) % (this.#pool.length - this.#valueSizeBytes);
    return this.#pool.subarray(offset, offset + this.#valueSizeBytes);
  }

  /** Throws unless `bytes` is value `index`. */
  check(index: number, bytes: Uint8Array | undefined, what: string): void {
    if (bytes === undefined) throw new Error(`${what}: value ${index} is missing`);
    if (bytes.length !== this.#valueSizeBytes || !this.valueOf(index).equals(bytes)) {
      throw new Error(`${what}: value ${index} came back wrong (${bytes.length} bytes, expected ${this.#valueSizeBytes} bytes of its pattern)`);
    }
  }
}

// ---- Measurement helpers ----

/** V8's gc(), run between phases so that one store's garbage is not collected during the next one's timing. */
const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose_gc');
  return runInNewContext('gc') as () => void;
})();

class PhaseTimer {
  readonly #startedNs: bigint;
  readonly #cpuBefore: NodeJS.CpuUsage;

  constructor(store: StoreAdapter) {
    collectGarbage();
    store.markPhaseStart();
    this.#cpuBefore = process.cpuUsage();
    this.#startedNs = process.hrtime.bigint();
  }

  finish(opCount: number, store: StoreAdapter, extra: { bytes?: number; recorder?: LatencyRecorder } = {}): StoreMeasurement {
    const elapsedSeconds = Number(process.hrtime.bigint() - this.#startedNs) / 1e9;
    const cpu = process.cpuUsage(this.#cpuBefore);
    assert.ok(opCount > 0 && elapsedSeconds > 0);
    return {
      opCount,
      elapsedSeconds,
      opsPerSecond: opCount / elapsedSeconds,
      bandwidthMiBps: extra.bytes === undefined ? undefined : extra.bytes / MiB / elapsedSeconds,
      latencyUs: extra.recorder?.percentilesUs(),
      cpuPercent: ((cpu.user + cpu.system) / 1e6 / elapsedSeconds) * 100,
      note: store.describe(),
    };
  }
}

/** Runs `operation` and records how long it took. */
async function timed(recorder: LatencyRecorder, operation: Promise<unknown>, startedNs: bigint): Promise<void> {
  await operation;
  recorder.record(Number(process.hrtime.bigint() - startedNs));
}

// ---- The workloads ----

/** One writer: each durable put awaited before the next. */
export async function runOneWriter(store: StoreAdapter, counts: WorkloadCounts, values: ValueSource): Promise<StoreMeasurement> {
  await warmUp(WARMUP_PUT_COUNT, (i) => store.put(`warm${i}`, values.valueOf(i)));
  const recorder = new LatencyRecorder();
  const timer = new PhaseTimer(store);
  for (let i = 0; i < counts.onePutCount; i++) {
    const startedNs = process.hrtime.bigint();
    await timed(recorder, store.put(`one${i}`, values.valueOf(i)), startedNs);
  }
  const measurement = timer.finish(counts.onePutCount, store, { recorder });
  await checkSample(store, values, counts.onePutCount, (i) => `one${i}`, 'one-writer');
  return measurement;
}

/**
 * `writerCount` async loops, each awaiting its durable put before its next,
 * for concurrentWriterSeconds: what group commit is for.
 */
export async function runConcurrentWriters(store: StoreAdapter, counts: WorkloadCounts, values: ValueSource): Promise<StoreMeasurement> {
  const warmUpPutsPerWriter = Math.ceil(WARMUP_PUT_COUNT / counts.writerCount);
  await Promise.all(Array.from({ length: counts.writerCount }, (_, w) => warmUp(warmUpPutsPerWriter, (i) => store.put(`warm${w}-${i}`, values.valueOf(w + i)))));
  const recorder = new LatencyRecorder();
  const timer = new PhaseTimer(store);
  const endNs = process.hrtime.bigint() + BigInt(Math.round(counts.concurrentWriterSeconds * 1e9));
  const putCounts = new Array<number>(counts.writerCount).fill(0);
  const indexOf = (writerIndex: number, i: number): number => writerIndex * CONCURRENT_WRITER_KEY_SPAN + i;
  const writer = async (writerIndex: number): Promise<void> => {
    for (let i = 0; ; i++) {
      const startedNs = process.hrtime.bigint();
      if (startedNs >= endNs) break;
      assert.ok(i < CONCURRENT_WRITER_KEY_SPAN, 'a writer stays within its key range');
      const index = indexOf(writerIndex, i);
      await timed(recorder, store.put(`con${index}`, values.valueOf(index)), startedNs);
      putCounts[writerIndex] = i + 1;
    }
  };
  await Promise.all(Array.from({ length: counts.writerCount }, (_, writerIndex) => writer(writerIndex)));
  const total = putCounts.reduce((sum, count) => sum + count, 0);
  const measurement = timer.finish(total, store, { recorder });
  for (const [writerIndex, count] of putCounts.entries()) {
    assert.ok(count > 0, `writer ${writerIndex} made no put in ${counts.concurrentWriterSeconds} s`);
    await checkSample(store, values, count, (i) => `con${indexOf(writerIndex, i)}`, 'writers-64', CONCURRENT_WRITER_CHECKS, (i) => indexOf(writerIndex, i));
  }
  return measurement;
}

/** Loads bulkKeyCount keys in ascending order, in durable batches awaited in turn. */
export async function runBulkLoad(store: StoreAdapter, counts: WorkloadCounts, values: ValueSource): Promise<StoreMeasurement> {
  const recorder = new LatencyRecorder();
  const timer = new PhaseTimer(store);
  for (let start = 0; start < counts.bulkKeyCount; start += counts.bulkBatchEntryCount) {
    const end = Math.min(counts.bulkKeyCount, start + counts.bulkBatchEntryCount);
    const entries = [];
    for (let i = start; i < end; i++) entries.push([bulkKey(i), values.valueOf(i)] as const);
    const startedNs = process.hrtime.bigint();
    await timed(recorder, store.batch(entries), startedNs);
  }
  const measurement = timer.finish(counts.bulkKeyCount, store, { recorder });
  await checkSample(store, values, counts.bulkKeyCount, bulkKey, 'bulk-load');
  return measurement;
}

/** Base of the get workload's xorshift seed. */
const GET_SEED = 0x2545f491;

/** Uniform random gets of loaded keys, one at a time: the store's sync get where it has one. */
export async function runRandomGets(store: StoreAdapter, counts: WorkloadCounts, values: ValueSource): Promise<StoreMeasurement> {
  const keys = Array.from({ length: counts.bulkKeyCount }, (_, i) => bulkKey(i));
  const random = new RandomOffsets(GET_SEED, counts.bulkKeyCount, 1);
  const recorder = new LatencyRecorder();
  const getSync = store.getSync;
  const timer = new PhaseTimer(store);
  if (getSync !== undefined) {
    for (let i = 0; i < counts.getCount; i++) {
      const index = random.next();
      const startedNs = process.hrtime.bigint();
      const value = getSync(keys[index]);
      recorder.record(Number(process.hrtime.bigint() - startedNs));
      values.check(index, value, 'random-get');
    }
  } else {
    for (let i = 0; i < counts.getCount; i++) {
      const index = random.next();
      const startedNs = process.hrtime.bigint();
      const value = await store.get(keys[index]);
      recorder.record(Number(process.hrtime.bigint() - startedNs));
      values.check(index, value, 'random-get');
    }
  }
  return timer.finish(counts.getCount, store, { recorder });
}

/** Every entry in key order; checks the order, the count and every value. */
export async function runScan(store: StoreAdapter, counts: WorkloadCounts, values: ValueSource): Promise<StoreMeasurement> {
  let index = 0;
  const timer = new PhaseTimer(store);
  await store.scan((key, value) => {
    if (key !== bulkKey(index)) throw new Error(`scan: entry ${index} has key ${JSON.stringify(key)}, expected ${bulkKey(index)} (order or contents wrong)`);
    values.check(index, value, 'scan');
    index++;
  });
  if (index !== counts.bulkKeyCount) throw new Error(`scan: saw ${index} entries, stored ${counts.bulkKeyCount}`);
  return timer.finish(index, store);
}

/** blobCount blobs written durably one after another, then read back and compared. */
export async function runBlobs(store: StoreAdapter, counts: WorkloadCounts, blobs: ValueSource): Promise<{ write: StoreMeasurement; read: StoreMeasurement }> {
  const totalBytes = counts.blobCount * counts.blobSizeBytes;
  for (let i = 0; i < BLOB_WARMUP_COUNT; i++) await store.put(`warm${blobKey(i)}`, blobs.valueOf(i));
  const writeRecorder = new LatencyRecorder();
  const writeTimer = new PhaseTimer(store);
  for (let i = 0; i < counts.blobCount; i++) {
    const startedNs = process.hrtime.bigint();
    await timed(writeRecorder, store.put(blobKey(i), blobs.valueOf(i)), startedNs);
  }
  const write = writeTimer.finish(counts.blobCount, store, { bytes: totalBytes, recorder: writeRecorder });

  const readRecorder = new LatencyRecorder();
  const getSync = store.getSync;
  const readTimer = new PhaseTimer(store);
  for (let i = 0; i < counts.blobCount; i++) {
    const startedNs = process.hrtime.bigint();
    const value = getSync !== undefined ? getSync(blobKey(i)) : await store.get(blobKey(i));
    readRecorder.record(Number(process.hrtime.bigint() - startedNs));
    blobs.check(i, value, 'blob-read');
  }
  const read = readTimer.finish(counts.blobCount, store, { bytes: totalBytes, recorder: readRecorder });
  return { write, read };
}

/** Writers of the concurrent blob phase: what fio's 1 MiB sequential write QD8 keeps in flight. */
export const BLOB_WRITER_COUNT = 8;

/** Blobs of the concurrent phase: blobCount, but at least 4 per writer (a smaller scale would time little more than one commit). */
export function concurrentBlobCount(counts: WorkloadCounts): number {
  return Math.max(counts.blobCount, 4 * BLOB_WRITER_COUNT);
}

/** BLOB_WRITER_COUNT writers putting blobs durably, each awaiting its own puts; checked afterwards, untimed. */
export async function runConcurrentBlobWriters(store: StoreAdapter, counts: WorkloadCounts, blobs: ValueSource): Promise<StoreMeasurement> {
  const blobCount = concurrentBlobCount(counts);
  const recorder = new LatencyRecorder();
  const timer = new PhaseTimer(store);
  await Promise.all(
    Array.from({ length: BLOB_WRITER_COUNT }, async (_, writer) => {
      for (let i = writer; i < blobCount; i += BLOB_WRITER_COUNT) {
        const startedNs = process.hrtime.bigint();
        await timed(recorder, store.put(concurrentBlobKey(i), blobs.valueOf(i)), startedNs);
      }
    }),
  );
  const measurement = timer.finish(blobCount, store, { bytes: blobCount * counts.blobSizeBytes, recorder });
  await checkSample(store, blobs, blobCount, concurrentBlobKey, 'blob-writers-8');
  return measurement;
}

function concurrentBlobKey(index: number): string {
  return `cblob${index.toString().padStart(6, '0')}`;
}

function blobKey(index: number): string {
  return `blob${index.toString().padStart(6, '0')}`;
}

/**
 * Closes `store` and opens `directory` again with `contender`, timing both;
 * checks the reopened store still holds the data set. Returns the reopened
 * store, which the caller closes.
 */
export async function runReopen(
  contender: StoreContender,
  directory: string,
  store: StoreAdapter,
  counts: WorkloadCounts,
  values: ValueSource,
): Promise<{ close: StoreMeasurement; reopen: StoreMeasurement; store: StoreAdapter }> {
  collectGarbage();
  const closeStartedNs = process.hrtime.bigint();
  await store.close();
  const closeSeconds = Number(process.hrtime.bigint() - closeStartedNs) / 1e9;
  const openStartedNs = process.hrtime.bigint();
  const reopened = await contender.open(directory);
  const openSeconds = Number(process.hrtime.bigint() - openStartedNs) / 1e9;
  await checkSample(reopened, values, counts.bulkKeyCount, bulkKey, 'reopen');
  const once = (seconds: number, noteAfter: string | undefined): StoreMeasurement => ({
    opCount: 1,
    elapsedSeconds: seconds,
    opsPerSecond: 1 / seconds,
    bandwidthMiBps: undefined,
    latencyUs: undefined,
    cpuPercent: Number.NaN,
    note: noteAfter,
  });
  return { close: once(closeSeconds, undefined), reopen: once(openSeconds, reopened.describe()), store: reopened };
}

/** Keys read back after a write phase: a pair check, not timed. */
const CHECK_SAMPLE_COUNT = 1_000;

/**
 * Reads back a spread sample of about `sampleCount` of keys 0..count-1
 * (always the first and last) and compares them; key i holds value
 * `valueIndexOf(i)` of the source (i itself unless given).
 */
async function checkSample(
  store: StoreAdapter,
  values: ValueSource,
  count: number,
  keyOf: (index: number) => string,
  what: string,
  sampleCount = CHECK_SAMPLE_COUNT,
  valueIndexOf: (index: number) => number = (index) => index,
): Promise<void> {
  const step = Math.max(1, Math.floor(count / sampleCount));
  const indexes = [];
  for (let i = 0; i < count; i += step) indexes.push(i);
  indexes.push(count - 1);
  for (const index of indexes) values.check(valueIndexOf(index), await store.get(keyOf(index)), `${what} read-back of ${keyOf(index)}`);
}
