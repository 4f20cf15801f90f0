// Running a crash-test workload: a new store on a real file through the
// io_uring actor (the real IO path), traced from its first write, handed to
// the workload as a LabStore; what comes back is the trace, the device
// before it began, and the oracle's list of operations.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { BlockDevice } from '../../engine/block_device.js';
import { BlockStore } from '../../engine/block_store.js';
import { openStoreFile } from '../../engine/store_file.js';
import type { ValueEncoding } from '../../engine/value_codec.js';
import { IoUringActor } from '../../native/io_uring_actor.js';
import { LabDevice } from './lab_device.js';
import { LabStore } from './lab_store.js';
import type { WorkloadOperation } from './oracle.js';
import { WriteTrace } from './write_trace.js';

/** A workload: does its work on the store it is given, and returns when done. */
export type Workload = (store: LabStore) => Promise<void>;

/** The store a workload runs on. Small on purpose: every crash image is a copy of it. */
export interface WorkloadStoreOptions {
  /** Size of the store file, bytes; at most 256 MiB (crash images copy it whole). */
  sizeBytes: number;
  /** Block size of the store, bytes. */
  blockSize: number;
  /** WAL region of the store, bytes: a small one makes the store lap it and checkpoint often. */
  walSizeBytes: number;
  /** The store's value encoding. */
  encoding: ValueEncoding;
  /** Start with sync: false (writes acknowledged by flush()). */
  sync: boolean;
  /** Cache of the workload's store and of the stores the checks open; default LAB_CACHE_SIZE_BYTES. */
  cacheSizeBytes?: number;
}

/** A workload's store unless its options say otherwise: 2 MiB of 512-byte blocks, a 16 KiB WAL, msgpack values, sync: true. */
export const DEFAULT_WORKLOAD_STORE: WorkloadStoreOptions = {
  sizeBytes: 2 << 20,
  blockSize: 512,
  walSizeBytes: 16 << 10,
  encoding: 'msgpack',
  sync: true,
};

/**
 * Block cache of the workload's store and of every store the checks open:
 * small, so reads go to the device (the image) rather than memory.
 */
export const LAB_CACHE_SIZE_BYTES = 64 << 10;

/** Crash images are whole-device copies and undo logs: keep them small. */
export const WORKLOAD_STORE_BYTES_MAX = 256 << 20;

/** A workload that ran: its IO trace and its oracle, what the explorers take. Close `trace` when done. */
export interface TracedWorkload {
  /** The store's IO and the acknowledgements. */
  trace: WriteTrace;
  /** The device before the trace began (a new file: zeros). */
  base: Uint8Array;
  /** The workload's write calls, in call order. */
  operations: WorkloadOperation[];
  /** The options its store was made with. */
  store: WorkloadStoreOptions;
}

/**
 * Runs `workload` on a new store in `directory` (the store file and the
 * trace's side file go there) and returns its trace.
 */
export async function runWorkload(directory: string, workload: Workload, options: Partial<WorkloadStoreOptions> = {}): Promise<TracedWorkload> {
  const store: WorkloadStoreOptions = { ...DEFAULT_WORKLOAD_STORE, ...options };
  if (!Number.isSafeInteger(store.sizeBytes) || store.sizeBytes <= 0 || store.sizeBytes > WORKLOAD_STORE_BYTES_MAX) {
    throw Object.assign(new RangeError(`workload store size must be at most ${WORKLOAD_STORE_BYTES_MAX} bytes, got ${store.sizeBytes}`), { code: 'ERR_INVALID_ARG' });
  }
  mkdirSync(directory, { recursive: true });
  // A new store: the images are built on an all-zero base, so a store file
  // left here by an earlier run must not be reopened. An empty file, not a
  // missing one, so that the store is formatted in place, under the traced
  // path (a missing file is formatted under a temporary name and linked).
  const path = join(directory, 'crash-lab.ringstore');
  rmSync(path, { force: true });
  writeFileSync(path, new Uint8Array(0));
  const ring = IoUringActor.start({ fallback: 'threads' });
  const trace = new WriteTrace(path, directory);
  ring.observer = trace;
  let lab: LabStore | undefined;
  let finished = false;
  try {
    const openOptions = {
      create: true,
      sizeBytes: store.sizeBytes,
      blockSize: store.blockSize,
      walSizeBytes: store.walSizeBytes,
      cacheSizeBytes: store.cacheSizeBytes ?? LAB_CACHE_SIZE_BYTES,
      encoding: store.encoding,
      sync: store.sync,
      ring,
    };
    // Every open of the store goes through a LabDevice: the same workload
    // then makes the same trace on every run (lab_device.ts).
    // The file exists (empty, above), so a create grows and formats it in
    // place: nothing to publish under a temporary name (store_file.ts).
    // Its trims punch holes: the trace then holds the trims a store on a
    // block device makes (on a file they are otherwise no IO), and the
    // crash states explore them.
    const openDevice = async (create: boolean): Promise<BlockDevice> => {
      const file = await openStoreFile(ring, path, { create, sizeBytes: store.sizeBytes, punchHoles: true });
      return new LabDevice(file.device, trace, { blank: file.blank });
    };
    const opened = await BlockStore.open(path, { ...openOptions, device: await openDevice(true) });
    lab = new LabStore(opened, trace, path, ring, openOptions, () => openDevice(false));
    await workload(lab);
    await lab.close().catch((error: unknown) => {
      // A workload that closed the store itself is done.
      if ((error as { code?: string }).code !== 'ERR_STORE_CLOSED') throw error;
    });
    finished = true;
  } finally {
    // A workload that failed may leave writes in flight (a level database's
    // not awaited): the store finishes them before its ring closes, rather
    // than fail them after the run's error (found by a review: they were
    // unhandled rejections, exit 1, read as a violation).
    if (!finished) await lab?.close().catch(() => undefined);
    ring.observer = undefined;
    await ring.close();
    if (!finished) trace.close();
  }
  return { trace, base: new Uint8Array(store.sizeBytes), operations: lab.operations, store };
}

/**
 * Loads a user's workload module: its default export (or an export named
 * `workload`) must be a function that takes a LabStore and returns a
 * promise; an optional `storeOptions` export sizes the store it runs on.
 */
export async function loadWorkloadModule(modulePath: string): Promise<{
  /** The module's workload function. */
  workload: Workload;
  /** Its `storeOptions` export, or `{}`. */
  storeOptions: Partial<WorkloadStoreOptions>;
}> {
  const loaded = (await import(pathToFileURL(resolve(modulePath)).href)) as { default?: unknown; workload?: unknown; storeOptions?: unknown };
  const workload = typeof loaded.default === 'function' ? loaded.default : loaded.workload;
  if (typeof workload !== 'function') {
    throw Object.assign(new TypeError(`${modulePath} must export a workload function (export default async function (store) { ... })`), { code: 'ERR_INVALID_ARG' });
  }
  const storeOptions = loaded.storeOptions ?? {};
  if (typeof storeOptions !== 'object' || storeOptions === null) {
    throw Object.assign(new TypeError(`${modulePath}: storeOptions must be an object`), { code: 'ERR_INVALID_ARG' });
  }
  return { workload: workload as Workload, storeOptions: storeOptions as Partial<WorkloadStoreOptions> };
}
