// StoreAdapter: the one interface bench:store drives every store through —
// ringstore and its peers alike — so that each workload is written once.
// Also here: ringstore's own adapter, and the app-level batcher that turns a
// peer's single puts into one durable batch per event-loop turn.
//
// Keys are ASCII strings (bytewise order = string order); values are bytes.
// Every write resolves only once durable, at the store's most durable
// setting, which `durability` states for the report.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';

import { BlockStore, IoUringActor, STORE_RING_OPTIONS, type IoUringActorOptions, type RingStats } from '../../index.js';

export type KeyValue = readonly [key: string, value: Uint8Array];

export interface StoreAdapter {
  /** Stores one value; resolves once durable. */
  put(key: string, value: Uint8Array): Promise<void>;
  /** Stores all entries atomically in one durable commit. */
  batch(entries: readonly KeyValue[]): Promise<void>;
  /** The value of `key`, or undefined (the store's asynchronous read). */
  get(key: string): Promise<Uint8Array | undefined>;
  /** A synchronous read, for stores that have one: what the get workload uses when present. */
  getSync: ((key: string) => Uint8Array | undefined) | undefined;
  /** Visits every entry in ascending key order. */
  scan(visit: (key: string, value: Uint8Array) => void): Promise<void>;
  /** Finishes pending work and releases everything (files, threads). */
  close(): Promise<void>;
  /** Starts a phase: describe() counts from here. */
  markPhaseStart(): void;
  /** The store's own counters since markPhaseStart(), if it has any, for printing beside the numbers. */
  describe(): string | undefined;
  /** The share of its WAL in use (0..1), for stores with a WAL of fixed size (ringstore); the scale section fills it before a kill. */
  walFill?: () => number;
  /**
   * IO commands the store has handed to the kernel since it opened, for
   * stores that do their own IO (ringstore: its actor's `submitted` and
   * what the JS thread's own ring took, `directWrites` and `directReads`:
   * a get alone in flight reads there, and left out, 1 M gets one at a
   * time counted 0.01 reads a get where each read a leaf). A
   * phase of gets does nothing else, so the difference over it is the
   * device reads those gets made (the page cache's miss counter is not:
   * one read counts up to three lookups that missed).
   */
  ioCommandCount?: () => number;
  /**
   * Tree pages not yet written, at most, for stores that write their pages
   * in checkpoints (ringstore: `stats().dirtyPages`); the scale section
   * reads it as close begins.
   */
  dirtyPageCount?: () => number;
  /**
   * Resolves once what an open after a crash recovered is applied, for
   * stores that finish recovery after open returns (ringstore replays its
   * WAL tail in the background; writes wait for it).
   */
  whenRecovered?: () => Promise<void>;
}

export interface StoreContender {
  /** Stable name in the JSON output and in --only-style filters. */
  id: string;
  /** The row's label in the text output. */
  label: string;
  /** How its writes are made durable: printed with the report. */
  durability: string;
  /** Opens the store in `directory`, creating it when there is none. */
  open(directory: string): Promise<StoreAdapter>;
}

// ---- ringstore ----

/**
 * Size of a ringstore file: room for the WAL, two live checkpoints of 1 M
 * keys (~120 MiB each) and 1 M values or 256 MiB of blobs, with slack for the
 * allocator. The file is fallocated at creation (not sparse).
 */
export const RINGSTORE_FILE_SIZE_BYTES = 2 * 1024 ** 3;
const RINGSTORE_FILE_NAME = 'ringstore.db';

/** Size of a new ringstore file and of its WAL (undefined: the store's default; for sizeBytes, a small file that grows as it fills). */
export interface RingstoreSizing {
  sizeBytes: number | undefined;
  walSizeBytes: number | undefined;
}

/** A store made as `BlockStore.open(path, { create: true })` makes it: DEFAULT_STORE_SIZE_BYTES, growing as it fills. */
export const RINGSTORE_GROWING_SIZING: RingstoreSizing = { sizeBytes: undefined, walSizeBytes: undefined };

export const RINGSTORE_DEFAULT_SIZING: RingstoreSizing = { sizeBytes: RINGSTORE_FILE_SIZE_BYTES, walSizeBytes: undefined };

export interface RingstoreVariant {
  id: string;
  label: string;
  /** Store values through createWriteStream instead of put. */
  putByStream: boolean;
  /** Options of the actor the store runs on; STORE_RING_OPTIONS is the store's own default. */
  actor: IoUringActorOptions;
}

export const RINGSTORE_DEFAULT: RingstoreVariant = { id: 'ringstore', label: 'ringstore', putByStream: false, actor: { ...STORE_RING_OPTIONS } };

/**
 * ringstore with sync: true (the default): a write resolves after the
 * fdatasync of its commit. The store runs on an actor this adapter starts,
 * so the actor's statistics can be printed (with the default options the
 * store would start an identical one itself).
 */
export function ringstoreContender(variant: RingstoreVariant = RINGSTORE_DEFAULT, sizing: RingstoreSizing = RINGSTORE_DEFAULT_SIZING): StoreContender {
  const actorOptions = Object.entries(variant.actor).map(([name, value]) => `${name}: ${String(value)}`);
  return {
    id: variant.id,
    label: variant.label,
    durability:
      "sync: true (default): each write resolves after its commit's WAL write + fdatasync; encoding 'binary'" +
      (variant.putByStream ? '; puts through createWriteStream' : '') +
      (actorOptions.length > 0 ? `; actor ${actorOptions.join(', ')}` : ''),
    open: async (directory) => openRingstore(join(directory, RINGSTORE_FILE_NAME), variant, sizing),
  };
}

export async function openRingstore(path: string, variant: RingstoreVariant, sizing: RingstoreSizing = RINGSTORE_DEFAULT_SIZING): Promise<StoreAdapter> {
  const ring = IoUringActor.start(variant.actor);
  let store: BlockStore;
  try {
    if (ring.backend !== 'io_uring') throw new Error(`ringstore's actor runs on the ${ring.backend} backend, not io_uring: the numbers would not be ringstore's`);
    store = await BlockStore.open(path, { create: true, sizeBytes: sizing.sizeBytes, walSizeBytes: sizing.walSizeBytes, encoding: 'binary', sync: true, ring });
  } catch (error) {
    await ring.close();
    throw error;
  }
  const putByStream = variant.putByStream;
  const adapter: StoreAdapter = {
    put: putByStream
      ? (key: string, value: Uint8Array) => pipeline(Readable.from([value], { objectMode: false }), store.createWriteStream(key))
      : (key: string, value: Uint8Array) => store.put(key, value),
    batch: (entries: readonly KeyValue[]) => store.batch(entries.map(([key, value]) => ({ type: 'put' as const, key, value }))),
    // No wrapper of its own: the get workload awaits the store's own promise.
    get: (key: string) => store.get(key) as Promise<Uint8Array | undefined>,
    getSync: undefined,
    scan: async (visit: (key: string, value: Uint8Array) => void) => {
      for await (const [key, value] of store.range()) visit(key as string, value as Uint8Array);
    },
    close: async () => {
      try {
        await store.close();
      } finally {
        await ring.close();
      }
    },
    markPhaseStart: () => {
      mark = countersOf(store, ring.stats());
    },
    describe: () => describeRingstore(mark, countersOf(store, ring.stats()), ring.stats()),
    walFill: () => store.stats().walFill,
    ioCommandCount: () => {
      const stats = ring.stats();
      return stats.submitted + stats.directWrites + stats.directReads;
    },
    dirtyPageCount: () => store.stats().dirtyPages,
    whenRecovered: () => store.whenRecovered(),
  };
  let mark = countersOf(store, ring.stats());
  return adapter;
}

interface RingstoreCounters {
  commits: number;
  records: number;
  checkpoints: number;
  cacheHits: number;
  cacheMisses: number;
  commands: number;
  enters: number;
  sleeps: number;
  /** Durable writes through the JS thread's own ring (directDsync), which the actor's counters leave out. */
  directWrites: number;
  /** Reads alone in flight through that ring (directReads), also left out of the actor's counters. */
  directReads: number;
  growths: number;
  blocksTotal: number;
}

function countersOf(store: BlockStore, ring: RingStats): RingstoreCounters {
  const stats = store.stats();
  return {
    commits: stats.commits,
    records: stats.commits * stats.meanRecordsPerCommit,
    checkpoints: stats.checkpoints,
    cacheHits: stats.cacheHits,
    cacheMisses: stats.cacheMisses,
    commands: ring.submitted,
    enters: ring.batches,
    sleeps: ring.waits,
    directWrites: ring.directWrites,
    directReads: ring.directReads,
    growths: stats.growths,
    blocksTotal: stats.blocksTotal,
  };
}

/** Counts since the phase began; the actor's latency percentiles cover its whole life (they cannot be subtracted). */
function describeRingstore(before: RingstoreCounters, after: RingstoreCounters, ring: RingStats): string {
  const commits = after.commits - before.commits;
  const records = after.records - before.records;
  const commands = after.commands - before.commands;
  const enters = after.enters - before.enters;
  return (
    `${commits} commits, ${commits > 0 ? (records / commits).toFixed(1) : '0'} records/commit, ${after.checkpoints - before.checkpoints} checkpoints, ` +
    (after.growths > before.growths ? `${after.growths - before.growths} growths (${before.blocksTotal} to ${after.blocksTotal} blocks), ` : '') +
    `cache ${after.cacheHits - before.cacheHits} hits / ${after.cacheMisses - before.cacheMisses} misses; ` +
    `actor: ${commands} commands in ${enters} io_uring_enter, ${after.sleeps - before.sleeps} sleeps; ` +
    `through the JS thread's own ring: ${after.directWrites - before.directWrites} durable writes (directDsync), ${after.directReads - before.directReads} lone reads (directReads); ` +
    `since the actor started: queued p50 ${ring.queuedUs.p50.toFixed(1)} µs p99 ${ring.queuedUs.p99.toFixed(1)} µs, ` +
    `kernel p50 ${ring.kernelUs.p50.toFixed(1)} µs p99 ${ring.kernelUs.p99.toFixed(1)} µs`
  );
}

// ---- The app-level batcher ----

interface WaitingPut {
  entry: KeyValue;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * `inner` driven by an application-level batcher: puts made during one
 * event-loop turn are collected and written, at the next turn
 * (setImmediate), as one durable `inner.batch`. Batches may overlap: the
 * batcher does not wait for one to finish before starting the next.
 */
export function withAppBatcher(inner: StoreContender): StoreContender {
  return {
    id: `${inner.id}+batcher`,
    label: `${inner.label} + app batcher`,
    durability: `${inner.durability}; puts of one event-loop turn collected into one durable batch`,
    open: async (directory) => {
      const store = await inner.open(directory);
      let waiting: WaitingPut[] = [];
      let batchCount = 0;
      let batchedPutCount = 0;
      const markPhaseStart = (): void => {
        batchCount = 0;
        batchedPutCount = 0;
      };
      const flush = (): void => {
        const puts = waiting;
        waiting = [];
        assert.ok(puts.length > 0);
        batchCount++;
        batchedPutCount += puts.length;
        store.batch(puts.map((put) => put.entry)).then(
          () => {
            for (const put of puts) put.resolve();
          },
          (error: unknown) => {
            for (const put of puts) put.reject(error);
          },
        );
      };
      return {
        ...store,
        put: (key, value) =>
          new Promise<void>((resolve, reject) => {
            if (waiting.length === 0) setImmediate(flush);
            waiting.push({ entry: [key, value], resolve, reject });
          }),
        markPhaseStart,
        describe: () => `${batchCount} batches, ${batchCount > 0 ? (batchedPutCount / batchCount).toFixed(1) : 0} puts/batch`,
      };
    },
  };
}
