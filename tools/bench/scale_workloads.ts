// The phases of the scale section, run inside a child process (scale_child.ts)
// against StoreAdapter, so that ringstore and lmdb-js do the same operations
// on the same keys and values.
//
// Keys come from scale_keys.ts (computed from their index, never held in a
// list); values from ValueSource. Every phase checks what it reads: a get or
// a scan returning wrong bytes fails the run instead of winning it.
import assert from 'node:assert/strict';

import { LatencyRecorder } from './latency_recorder.js';
import { RandomOffsets } from './random_offsets.js';
import { indexOfRandomScaleKey, randomScaleKey } from './scale_keys.js';
import type { KeyValue, RingstoreSizing, StoreAdapter } from './store_adapter.js';
import type { ValueSource } from './store_workloads.js';

const MiB = 1024 * 1024;

/**
 * v1 stores have a fixed size, so the scale section sizes ringstore's file
 * from N: room for two live checkpoints of N keys, N values and the WAL, with
 * slack. This is the one place it is done: the v2 engine grows its files on
 * its own, and then this goes (ringstoreContender's default sizing stays).
 */
const RINGSTORE_SCALE_BYTES_PER_KEY = 400;
const RINGSTORE_SCALE_SLACK_BYTES = 256 * MiB;
const RINGSTORE_SCALE_WAL_SIZE_BYTES = 64 * MiB;

export const RINGSTORE_SCALE_SIZING_NOTE =
  `ringstore's file made at N × ${RINGSTORE_SCALE_BYTES_PER_KEY} B + ${RINGSTORE_SCALE_SLACK_BYTES / MiB} MiB (it grows past that if it must), WAL ${RINGSTORE_SCALE_WAL_SIZE_BYTES / MiB} MiB`;

export function ringstoreScaleSizing(keyCount: number): RingstoreSizing {
  const sizeBytes = Math.ceil((keyCount * RINGSTORE_SCALE_BYTES_PER_KEY + RINGSTORE_SCALE_SLACK_BYTES) / MiB) * MiB;
  return { sizeBytes, walSizeBytes: RINGSTORE_SCALE_WAL_SIZE_BYTES };
}

/** Bytes of every value (keys: SCALE_KEY_SIZE_BYTES). */
export const SCALE_VALUE_SIZE_BYTES = 100;
/** Puts per durable batch, in both loads and the WAL top-up. */
export const SCALE_BATCH_ENTRY_COUNT = 1_000;
/**
 * Random gets over all keys after the reopen, awaited one at a time: the
 * issue's memory target is worded "after reopen and 1 M random gets", so
 * this many whatever N (a small N is read more than once).
 */
export const SCALE_GET_COUNT = 1_000_000;
/**
 * Keys of the hot-gets working set: consecutive in key order, so ~2,000
 * leaves of ~25 entries (16 B keys, 100 B values in 4 KiB pages), ~8 MiB of
 * pages plus the branches above them: well inside the default cache's
 * 48 MiB of pages at every N. The phase reports the device reads it made,
 * which says whether it did fit.
 */
export const SCALE_HOT_SET_KEY_COUNT = 50_000;
/** Gets drawn from the working set after its warm-up pass: enough for a second of ringstore's cached gets. */
export const SCALE_HOT_GET_COUNT = 1_000_000;
/**
 * Ordered scans of all keys in a row, the row reporting their median: one
 * scan's rate moved 1.6 × between two runs (lmdb-js's at 2 M keys,
 * docs/benchmarks.md, session 14), and a ratio of two single scans said
 * little.
 */
export const SCALE_SCAN_PASSES = 3;
/** Readers of the cold-gets phase, each awaiting its own get in a loop: the "32 concurrent readers". */
export const SCALE_COLD_READER_COUNT = 32;
/** Gets of the cold-gets phase, over all readers: ~10 s at the 20 k gets/s a virtual disk gives. */
export const SCALE_COLD_GET_COUNT = 200_000;
/**
 * How full the WAL is made before the kill: just under the checkpoint
 * threshold (CHECKPOINT_WAL_FILL = 0.5 in engine/checkpoint_policy.ts), the most
 * WAL a crash can leave without a checkpoint having started.
 */
export const CRASH_WAL_FILL_TARGET = 0.45;
/**
 * The keys the top-up overwrites, over and over: one batch's. A
 * checkpoint also starts once the pages dirtied since the last reach their
 * budget (engine/checkpoint_policy.ts); overwrites spread over every key
 * dirtied a page each, and the checkpoints they started held the WAL at
 * 4 % after 2 000 batches at 2 M keys (session 15): the "full WAL" crash
 * was a small one. The same 1 000 keys dirty ~1 000 leaves, under the
 * budget, so the WAL fills to the target.
 */
export const CRASH_TOP_UP_KEY_COUNT = SCALE_BATCH_ENTRY_COUNT;
/** Most batches the top-up writes: ends it if the engine never reports the target fill (a different checkpoint policy). */
export const CRASH_TOP_UP_BATCH_COUNT_MAX = 2_000;
/** Overwrites in the top-up store value `index + OVERWRITE_VALUE_SHIFT`, so a reopen can tell them from the load's. */
export const OVERWRITE_VALUE_SHIFT = 1;
/** Keys read back to check a store after a load or a reopen, spread over the key range. */
const CHECK_SAMPLE_COUNT = 1_000;
/** Seeds of the gets' xorshifts (any non-zero 32-bit integers, one per phase). */
const SCALE_GET_SEED = 0x5ca1e5;
const SCALE_HOT_GET_SEED = 0x2f6b1d;
const SCALE_COLD_GET_SEED = 0x7a3c95;

/** V8's gc(): the children run with --expose-gc. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc !== undefined, 'the scale child runs with --expose-gc');
  gc();
}

/** Longest wait of settleReleasedMemory(): past it the phase goes on and says so. */
const MEMORY_SETTLE_MS_MAX = 3_000;
/** How often settleReleasedMemory() looks at what is held, and how many looks in a row must find no fall. */
const MEMORY_SETTLE_POLL_MS = 20;
const MEMORY_SETTLE_STILL_POLLS = 3;
/** A fall smaller than this between two looks counts as none. */
const MEMORY_SETTLE_FALL_BYTES = 1 << 20;

/**
 * Waits until the memory of stores this process closed has been given back:
 * gc(), then the native finalizers (run from an immediate), gc() again, then
 * until `external + arrayBuffers` stops falling (V8 frees array buffers'
 * memory on a background thread after the GC). A store's pages are buffers
 * of their own: a store closed after a 1 M-key load held ~190 MiB of them,
 * and their release (munmap holds the process's mmap lock; page faults in
 * the main thread wait on it) made the next open() in the process take
 * 33–110 ms instead of 5–10 (session 34, docs/benchmarks.md). Returns how
 * long it waited and whether it saw the fall end.
 */
export async function settleReleasedMemory(): Promise<{ waitedMs: number; settled: boolean }> {
  const startedMs = performance.now();
  const heldBytes = (): number => {
    const usage = process.memoryUsage();
    return usage.external + usage.arrayBuffers;
  };
  collectGarbage();
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
  let last = heldBytes();
  let stillPolls = 0;
  while (stillPolls < MEMORY_SETTLE_STILL_POLLS) {
    if (performance.now() - startedMs > MEMORY_SETTLE_MS_MAX) return { waitedMs: performance.now() - startedMs, settled: false };
    await new Promise((resolve) => setTimeout(resolve, MEMORY_SETTLE_POLL_MS));
    const now = heldBytes();
    stillPolls = now < last - MEMORY_SETTLE_FALL_BYTES ? 0 : stillPolls + 1;
    last = now;
  }
  return { waitedMs: performance.now() - startedMs, settled: true };
}

export interface LoadResult {
  keysPerSecond: number;
  batchLatencyMsP50: number;
  batchLatencyMsP99: number;
  batchLatencyMsMax: number;
}

/**
 * Puts keys 0..keyCount-1 (`keyOf` each), valued valueOf(index), in durable
 * batches of SCALE_BATCH_ENTRY_COUNT awaited in turn; times each batch.
 */
export async function runScaleLoad(store: StoreAdapter, keyCount: number, values: ValueSource, keyOf: (index: number) => string): Promise<LoadResult> {
  const recorder = new LatencyRecorder();
  collectGarbage();
  const startedNs = process.hrtime.bigint();
  for (let start = 0; start < keyCount; start += SCALE_BATCH_ENTRY_COUNT) {
    const end = Math.min(keyCount, start + SCALE_BATCH_ENTRY_COUNT);
    const entries: KeyValue[] = [];
    for (let i = start; i < end; i++) entries.push([keyOf(i), values.valueOf(i)]);
    const batchStartedNs = process.hrtime.bigint();
    await store.batch(entries);
    recorder.record(Number(process.hrtime.bigint() - batchStartedNs));
  }
  const elapsedSeconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
  const latency = recorder.percentilesUs();
  await checkScaleSample(store, keyCount, values, keyOf, (index) => index, 'load');
  return {
    keysPerSecond: keyCount / elapsedSeconds,
    batchLatencyMsP50: latency.p50 / 1000,
    batchLatencyMsP99: latency.p99 / 1000,
    batchLatencyMsMax: latency.max / 1000,
  };
}

/** Runs `operation` after a gc() and returns how long it took, in ms. */
export async function timedMs(operation: () => Promise<unknown>): Promise<number> {
  collectGarbage();
  const startedNs = process.hrtime.bigint();
  await operation();
  return Number(process.hrtime.bigint() - startedNs) / 1e6;
}

/** A get phase's rate, and for stores that do their own IO, the device reads it made per get. */
export interface GetsResult {
  getsPerSecond: number;
  deviceReadsPerGet: number | undefined;
}

/** Counts `store`'s IO commands over a phase (reads, in a phase of gets); undefined for stores that do not count them. */
function deviceReadCounter(store: StoreAdapter): () => number | undefined {
  const count = store.ioCommandCount;
  if (count === undefined) return () => undefined;
  const before = count();
  return () => count() - before;
}

function getsResult(getCount: number, startedNs: bigint, deviceReads: number | undefined): GetsResult {
  const elapsedSeconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
  assert.ok(getCount > 0 && elapsedSeconds > 0);
  return { getsPerSecond: getCount / elapsedSeconds, deviceReadsPerGet: deviceReads === undefined ? undefined : deviceReads / getCount };
}

/**
 * `getCount` uniform random gets over all loaded keys, one at a time: the
 * store's sync get where it has one, else its get awaited. From N ≈ 1 M
 * ringstore's tree is larger than its default cache, so most of these
 * read a leaf from the device, one read in flight at a time.
 */
export async function runScaleGets(store: StoreAdapter, keyCount: number, getCount: number, values: ValueSource): Promise<GetsResult> {
  const random = new RandomOffsets(SCALE_GET_SEED, keyCount, 1);
  const getSync = store.getSync;
  collectGarbage();
  const deviceReads = deviceReadCounter(store);
  const startedNs = process.hrtime.bigint();
  for (let i = 0; i < getCount; i++) {
    const index = random.next();
    const key = randomScaleKey(index);
    const value = getSync !== undefined ? getSync(key) : await store.get(key);
    values.check(index, value, 'scale random get');
  }
  return getsResult(getCount, startedNs, deviceReads());
}

/**
 * Random gets from a working set the cache holds: one untimed pass over
 * `workingSet` (indexes of random keys) in its order, then `getCount` gets
 * of keys drawn uniformly from it, one at a time (sync get where the store
 * has one, as in runScaleGets).
 */
export async function runHotGets(store: StoreAdapter, workingSet: Uint32Array, getCount: number, values: ValueSource): Promise<GetsResult> {
  assert.ok(workingSet.length > 0);
  const getSync = store.getSync;
  const getOne = async (index: number): Promise<void> => {
    const key = randomScaleKey(index);
    values.check(index, getSync !== undefined ? getSync(key) : await store.get(key), 'scale hot get');
  };
  for (const index of workingSet) await getOne(index);
  const random = new RandomOffsets(SCALE_HOT_GET_SEED, workingSet.length, 1);
  collectGarbage();
  const deviceReads = deviceReadCounter(store);
  const startedNs = process.hrtime.bigint();
  for (let i = 0; i < getCount; i++) {
    const index = workingSet[random.next()];
    const key = randomScaleKey(index);
    const value = getSync !== undefined ? getSync(key) : await store.get(key);
    values.check(index, value, 'scale hot get');
  }
  return getsResult(getCount, startedNs, deviceReads());
}

/**
 * `getCount` uniform random gets over all loaded keys by `readerCount`
 * concurrent readers, each awaiting the store's get() in a loop (for a
 * store whose get is synchronous underneath, lmdb-js, the readers take
 * turns). Reads that miss the cache are in flight together, as fio's QD.
 */
export async function runColdGets(store: StoreAdapter, keyCount: number, getCount: number, readerCount: number, values: ValueSource): Promise<GetsResult> {
  assert.ok(readerCount >= 1 && getCount >= readerCount);
  const random = new RandomOffsets(SCALE_COLD_GET_SEED, keyCount, 1);
  let issuedCount = 0;
  const reader = async (): Promise<void> => {
    while (issuedCount < getCount) {
      issuedCount++;
      const index = random.next();
      values.check(index, await store.get(randomScaleKey(index)), 'scale concurrent get');
    }
  };
  collectGarbage();
  const deviceReads = deviceReadCounter(store);
  const startedNs = process.hrtime.bigint();
  await Promise.all(Array.from({ length: readerCount }, reader));
  assert.equal(issuedCount, getCount);
  return getsResult(getCount, startedNs, deviceReads());
}

/** heapUsed + arrayBuffers and RSS after a gc(), in bytes. */
export function memoryAfterGc(): { heapAndArrayBuffersBytes: number; rssBytes: number } {
  collectGarbage();
  const usage = process.memoryUsage();
  return { heapAndArrayBuffersBytes: usage.heapUsed + usage.arrayBuffers, rssBytes: usage.rss };
}

/** Every entry in key order: checks that keys ascend, that each is a loaded key with its value, and the count. */
export async function runScaleScan(store: StoreAdapter, keyCount: number, values: ValueSource): Promise<number> {
  let count = 0;
  let previous = '';
  collectGarbage();
  const startedNs = process.hrtime.bigint();
  await store.scan((key, value) => {
    if (key <= previous) throw new Error(`scale scan: key ${JSON.stringify(key)} after ${JSON.stringify(previous)} (order wrong)`);
    const index = indexOfRandomScaleKey(key);
    if (index === undefined || index >= keyCount) throw new Error(`scale scan: key ${JSON.stringify(key)} was never put`);
    values.check(index, value, 'scale scan');
    previous = key;
    count++;
  });
  const elapsedSeconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
  if (count !== keyCount) throw new Error(`scale scan: saw ${count} entries, stored ${keyCount}`);
  return count / elapsedSeconds;
}

/**
 * Overwrites loaded keys (index 0 up, value index + OVERWRITE_VALUE_SHIFT)
 * in durable batches until the store's WAL is CRASH_WAL_FILL_TARGET full,
 * for the kill that follows. Returns how many batches it wrote and the fill
 * it reached; a store without a WAL to fill writes nothing.
 */
export async function fillWalForCrash(store: StoreAdapter, keyCount: number, values: ValueSource): Promise<{ batchCount: number; overwrittenKeyCount: number; walFill: number | undefined }> {
  const walFill = store.walFill;
  if (walFill === undefined) return { batchCount: 0, overwrittenKeyCount: 0, walFill: undefined };
  const hotKeyCount = Math.min(CRASH_TOP_UP_KEY_COUNT, keyCount);
  let batchCount = 0;
  while (walFill() < CRASH_WAL_FILL_TARGET && batchCount < CRASH_TOP_UP_BATCH_COUNT_MAX) {
    const entries: KeyValue[] = [];
    for (let j = 0; j < SCALE_BATCH_ENTRY_COUNT; j++) {
      // Keys 0 .. hotKeyCount - 1, every batch (a small N wraps within one).
      const index = j % hotKeyCount;
      entries.push([randomScaleKey(index), values.valueOf(index + OVERWRITE_VALUE_SHIFT)]);
    }
    await store.batch(entries);
    batchCount++;
  }
  return { batchCount, overwrittenKeyCount: batchCount > 0 ? hotKeyCount : 0, walFill: walFill() };
}

/** The value index key `index` holds once the top-up overwrote keys 0 .. `overwrittenKeyCount` - 1 (fillWalForCrash). */
export function valueIndexAfterTopUp(index: number, overwrittenKeyCount: number): number {
  return index < overwrittenKeyCount ? index + OVERWRITE_VALUE_SHIFT : index;
}

/**
 * Reads back a spread sample of keys 0..keyCount-1 (always the first and
 * the last) and compares each with value `valueIndexOf(index)`.
 */
export async function checkScaleSample(
  store: StoreAdapter,
  keyCount: number,
  values: ValueSource,
  keyOf: (index: number) => string,
  valueIndexOf: (index: number) => number,
  what: string,
): Promise<void> {
  const step = Math.max(1, Math.floor(keyCount / CHECK_SAMPLE_COUNT));
  const indexes: number[] = [];
  for (let i = 0; i < keyCount; i += step) indexes.push(i);
  indexes.push(keyCount - 1);
  for (const index of indexes) {
    const key = keyOf(index);
    const value = store.getSync !== undefined ? store.getSync(key) : await store.get(key);
    values.check(valueIndexOf(index), value, `${what} read-back of ${key}`);
  }
}
