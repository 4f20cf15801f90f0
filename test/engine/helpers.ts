// Shared helpers for the engine's tests on real files: temporary store
// directories, small stores, error assertions, waiting for background trims,
// and byte surgery on a closed store file. Not a test file itself (mocha
// runs only *.test.js).
import assert from 'node:assert/strict';
import { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { type BlockStoreOptions } from '../../engine/store_options.js';
import { StoreCorruptError, StoreError, type StoreErrorCode } from '../../engine/store_error.js';
import { SUPERBLOCK_SIZE } from '../../format/constants.js';
import { decodeSuperblock, type Superblock } from '../../format/superblock.js';
import { rejectsWith } from '../native/helpers.js';

export {
  assertError,
  describeChild,
  isRoot,
  pattern,
  PACKAGE_ENTRY_URL,
  rejectsWith,
  runNodeModule,
  skipBecause,
  withOwnTmpfs,
} from '../native/helpers.js';

/** Small enough to create in milliseconds, large enough for multi-MiB values. */
export const SMALL_STORE_BYTES = 32 << 20;

/** The longest a test waits for background trims before it reports them stuck. */
const TRIM_WAIT_MS_MAX = 10_000;
const TRIM_POLL_MS = 2;

/** A fresh directory under os.tmpdir() (ext4 here, so direct IO works). */
export function makeStoreDir(): string {
  return mkdtempSync(`${tmpdir()}/ringstore-engine-`);
}

export function removeStoreDir(dir: string | undefined): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}

/**
 * A fresh store directory for each test of the describe() it is called in
 * (made before each, removed after): returns the current one's path.
 */
export function storeDirPerTest(): () => string {
  let dir: string | undefined;
  beforeEach(() => {
    dir = makeStoreDir();
  });
  afterEach(() => {
    removeStoreDir(dir);
    dir = undefined;
  });
  return () => {
    if (dir === undefined) throw new Error('storeDirPerTest: no test is running');
    return dir;
  };
}

/** Opens (creating if needed) a SMALL_STORE_BYTES store at `path`. */
export function openSmallStore(path: string, options: BlockStoreOptions = {}): Promise<BlockStore> {
  return BlockStore.open(path, { create: true, sizeBytes: SMALL_STORE_BYTES, ...options });
}

/** Every item of an async iterable, in order. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Asserts that `start()` rejects with a StoreError carrying `code`; returns it. */
export function rejectsWithCode(start: () => Promise<unknown>, code: StoreErrorCode): Promise<StoreError & { code: string }> {
  return rejectsWith(start, StoreError, code);
}

/** Asserts that `start()` rejects with ERR_STORE_CORRUPT naming `structure`; returns the error. */
export async function rejectsCorrupt(start: () => Promise<unknown>, structure: StoreCorruptError['structure']): Promise<StoreCorruptError> {
  const error = await rejectsWith(start, StoreCorruptError, 'ERR_STORE_CORRUPT');
  assert.equal(error.structure, structure, `expected damage to be blamed on the ${structure}: ${error.message}`);
  return error;
}

/**
 * Resolves once no freed extent waits for its trim. Trims run in the
 * background after the commit that freed the extents resolved; a test that
 * needs the space back waits here (bounded, so a stuck trim fails the test).
 */
export async function waitForTrims(store: BlockStore): Promise<void> {
  const deadline = Date.now() + TRIM_WAIT_MS_MAX;
  while (store.stats().pendingTrims > 0) {
    if (Date.now() > deadline) assert.fail(`trims still pending after ${TRIM_WAIT_MS_MAX} ms: ${JSON.stringify(store.stats())}`);
    await new Promise((resolve) => setTimeout(resolve, TRIM_POLL_MS));
  }
}

/** Inverts every bit of the byte at `position` of a (closed) file, durably. */
export function flipByteInFile(path: string, position: number): void {
  const fd = openSync(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    assert.equal(readSync(fd, byte, 0, 1, position), 1, `no byte at ${position} of ${path}`);
    byte[0] ^= 0xff;
    writeSync(fd, byte, 0, 1, position);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** How long openWhenReleased waits for a killed process's lock to go. */
const KILLED_LOCK_WAIT_MS_MAX = 2_000;
const KILLED_LOCK_POLL_MS = 10;

/**
 * Opens a store a killed process had open. Its lock lasts until the kernel
 * has torn down the process's io_uring, whose in-flight requests hold the
 * file: a few milliseconds after the exit. Retries ERR_STORE_LOCKED briefly.
 */
export async function openWhenReleased(path: string, options: BlockStoreOptions = {}): Promise<BlockStore> {
  const deadline = Date.now() + KILLED_LOCK_WAIT_MS_MAX;
  for (;;) {
    try {
      return await BlockStore.open(path, options);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_STORE_LOCKED' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, KILLED_LOCK_POLL_MS));
    }
  }
}

/** A Uint8Array whose buffer was transferred away (detached): length 0, unreadable. */
export function detachedBytes(): Uint8Array {
  const bytes = Uint8Array.from([1, 2, 3]);
  structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
  return bytes;
}

/**
 * xorshift32 in [0, 1): a small seeded generator, for the choices of a
 * simulated crash (which pending writes survive) and other test data that
 * must reproduce from a seed.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

/**
 * Power lost during the open and background replay of a crashed store
 * `image` (on a SimulatedDevice of `deviceBytes`), at `points` places spread
 * evenly over the operations an undisturbed open and replay take; after
 * each, the surviving image (pending writes kept or torn at random, seeded
 * by the point) is opened again and handed to `check`, which must close it.
 * The opens use `options` (cacheSizeBytes, encoding...).
 */
export async function checkPowerLossDuringReplay(
  image: Uint8Array,
  deviceBytes: number,
  options: BlockStoreOptions,
  points: number,
  check: (store: BlockStore, what: string) => Promise<void>,
): Promise<void> {
  const probe = new SimulatedDevice({ sizeBytes: deviceBytes }, image);
  const probed = await BlockStore.open('reader', { ...options, device: probe });
  await probed.whenRecovered();
  const replayOps = probe.opCount;
  await probed.close();
  for (let point = 1; point <= points; point++) {
    const crashAfter = Math.floor((replayOps * point) / (points + 1));
    const device = new SimulatedDevice({ sizeBytes: deviceBytes, crashAfterOps: crashAfter }, image);
    await BlockStore.open('reader', { ...options, device }).then(
      async (store) => {
        await store.whenRecovered().catch(() => undefined);
        await store.close().catch(() => undefined);
      },
      () => undefined, // the power went during the open
    );
    const store = await BlockStore.open('again', { ...options, device: device.crash({ random: seededRandom(point) }) });
    await check(store, `power lost after ${crashAfter} of the replay's ${replayOps} operations`);
  }
}

/** The newer of a store image's two head superblock copies (blocks 0 and 1). */
export function newestSuperblock(device: SimulatedDevice, blockSize: number): Superblock {
  const image = device.snapshot();
  const copies = [0, 1].map((slot) => decodeSuperblock(image.subarray(slot * blockSize, slot * blockSize + SUPERBLOCK_SIZE), slot));
  return copies.reduce((a, b) => (b.generation > a.generation ? b : a));
}

/**
 * For a test device: holds its next sync() — issued at once, so it covers
 * what was written by then, but resolved only once released — and counts
 * the syncs in flight at once. The device's sync() returns
 * `around(super.sync())`.
 */
export class HeldSyncs {
  /** The most sync() calls in flight at once. */
  inFlightMax = 0;
  #inFlight = 0;
  #held: Promise<void> | undefined;

  /** Holds the next sync(); returns the function that releases it. */
  holdNext(): () => void {
    let release!: () => void;
    this.#held = new Promise((resolve) => (release = resolve));
    return release;
  }

  /** `synced` (a sync() just issued), resolved no earlier than a hold on it is released. */
  around(synced: Promise<void>): Promise<void> {
    const held = this.#held;
    this.#held = undefined;
    this.inFlightMax = Math.max(this.inFlightMax, ++this.#inFlight);
    return (held === undefined ? synced : held.then(() => synced)).finally(() => this.#inFlight--);
  }
}
