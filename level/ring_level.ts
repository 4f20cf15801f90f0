// RingLevel: an abstract-level 3 database over a BlockStore, so the Level
// ecosystem (sublevels, encodings, level-read-stream, …) runs on ringstore.
// abstract-level does the public API, deferred open, encodings, sublevels,
// chained batches, hooks and events; this class maps its private API onto
// the store's methods. The store is opened with the 'binary' value encoding
// and abstract-level's transcoder turns keys and values into bytes or UTF-8
// strings first.
import { stat } from 'node:fs/promises';

import { AbstractLevel, type AbstractDatabaseOptions, type AbstractOpenOptions } from 'abstract-level';

import { BlockStore } from '../engine/block_store.js';
import { type BatchOperation, type BlockStoreOptions } from '../engine/store_options.js';
import type { Key } from '../engine/key_codec.js';
import { describeArgument, unreadableArgument } from '../engine/store_arguments.js';
import { invalidArgument, StoreError } from '../engine/store_error.js';
import { fromStore, isEmptyKey, valueToStore, type Encoded } from './formats.js';
import { emptyKeyError, RingLevelError, toLevelError } from './level_error.js';
import { RangeCursor, type EncodedRange } from './range_cursor.js';
import { RingLevelIterator, RingLevelKeyIterator, RingLevelValueIterator, type PrivateIteratorOptions } from './ring_level_iterator.js';
import { WriteClock } from './write_clock.js';

/**
 * Most keys one clear() deletes in one batch. A batch is one WAL commit and
 * must stay under a quarter of the WAL; 1024 small keys are ~30 KiB of
 * records, and a batch the store still finds too large is split in halves.
 */
export const CLEAR_BATCH_KEYS_MAX = 1024;
/** Most key bytes one clear() batch holds, for the same reason. */
export const CLEAR_BATCH_KEY_BYTES_MAX = 16 << 10;

/**
 * A write the store refused for its size, which fewer keys at a time may
 * pass: more than one commit holds (ERR_VALUE_TOO_LARGE, as LEVEL_INVALID_VALUE),
 * or more room than a full store has for its checkpoint (ERR_STORE_FULL).
 */
function isRefusedForSize(error: unknown): boolean {
  return (error instanceof RingLevelError && error.storeCode === 'ERR_VALUE_TOO_LARGE') || (error instanceof StoreError && error.code === 'ERR_STORE_FULL');
}

/** The store options a RingLevel passes through to BlockStore.open(). */
export type RingLevelStoreOptions = Pick<BlockStoreOptions, 'sizeBytes' | 'maxSizeBytes' | 'blockSize' | 'cacheSizeBytes' | 'walSizeBytes' | 'sync' | 'idleCheckpointMs' | 'ring' | 'device'>;

/**
 * Options of `new RingLevel(location, options)`: abstract-level's and the
 * store's. The store's `create` is abstract-level's `createIfMissing`, its
 * `encoding` is always 'binary' and it is never read-only, so `create`,
 * `encoding` and `readOnly` are refused (ERR_INVALID_ARG).
 */
export interface RingLevelOptions<K = string, V = string> extends AbstractDatabaseOptions<K, V> {
  /** First size of a new store file, in bytes; it grows as it fills. Default 16 MiB (BlockStore's DEFAULT_STORE_SIZE_BYTES). */
  sizeBytes?: number;
  /** The most the store file may grow to; past it, puts fail with ERR_STORE_FULL. Default: no limit but the file system's. */
  maxSizeBytes?: number;
  /** Block size of a new store: a power of two from 512 to 65536. Default 4096. */
  blockSize?: number;
  /** Bytes of data blocks kept in memory. Default 64 MiB. */
  cacheSizeBytes?: number;
  /** WAL region of a new store, in bytes. Default: 8 MiB without sizeBytes (at most half the store), else an eighth of the store, at most 64 MiB. */
  walSizeBytes?: number;
  /** true (default): writes resolve once durable; false: within SYNC_DEFER_MS, a crash may lose (never tear) them. */
  sync?: boolean;
  /** Milliseconds without a write after which the store checkpoints what its writes dirtied; 0: never. Default 1 000 (BlockStore's DEFAULT_IDLE_CHECKPOINT_MS). */
  idleCheckpointMs?: number;
  /** Run IO on this IoUringActor (shared with other stores) instead of one the store starts. */
  ring?: BlockStoreOptions['ring'];
  /** Use this BlockDevice instead of opening `location` (e.g. a SimulatedDevice in tests). */
  device?: BlockStoreOptions['device'];
}

/** BlockStore options a RingLevel does not take, and what to use instead. */
const REFUSED_STORE_OPTIONS: readonly (readonly [string, string])[] = [
  ['encoding', "the store's values are always 'binary' (abstract-level's valueEncoding encodes them)"],
  ['create', 'use createIfMissing'],
  ['readOnly', 'a RingLevel opens its store for writing (open the store itself with BlockStore.open for read-only access)'],
];

/** What the suite and users may rely on; see docs/level.md for each line. */
const MANIFEST = {
  // Keys and values reach the store as strings or bytes without copying.
  encodings: { buffer: true, view: true, utf8: true },
  // Iterators, get() and getMany() read a snapshot taken synchronously when
  // they are called (an iterator's seek() backwards after writes is the
  // documented exception, see range_cursor.ts).
  implicitSnapshots: true,
  // The store's public API cannot hold a snapshot apart from a running range.
  explicitSnapshots: false,
  has: true,
  permanence: true,
  seek: true,
  createIfMissing: true,
  errorIfExists: true,
  deferredOpen: true,
  // getSync cannot read a value stored in data extents without IO.
  getSync: false,
  signals: { iterators: false },
} as const;

// abstract-level's private API is untyped; options arrive as plain objects.
type PrivateOptions = { keyEncoding: string; valueEncoding?: string; [name: string]: unknown };
type PrivateOperation = { type: 'put' | 'del'; key: Encoded; value?: Encoded; keyEncoding: string; valueEncoding?: string };

/** Gives a RingLevel its store in place of BlockStore.open() on its location (openStoreWith). */
export type StoreOpener = () => Promise<BlockStore>;

/** Databases that open their store another way: the crash lab's, whose writes it records. */
const storeOpeners = new WeakMap<object, StoreOpener>();

/**
 * Makes `db` get its store from `open` at every open, in place of
 * BlockStore.open() on its location (its store options are then unused):
 * the crash lab hands a RingLevel its own store this way (LabStore.level()).
 * Call it before the database opens (abstract-level opens a new database on
 * the next tick). Not part of ringstore/level's API.
 */
export function openStoreWith(db: RingLevel<unknown, unknown>, open: StoreOpener): void {
  storeOpeners.set(db, open);
}

/**
 * An abstract-level 3 database over a {@link BlockStore}: the Level
 * ecosystem's API (get, put, del, batch, iterators, sublevels, encodings,
 * events) on a ringstore file. abstract-level provides the public API; this
 * class maps its private API onto the store. See docs/level.md.
 */
export class RingLevel<K = string, V = string> extends AbstractLevel<Encoded, K, V> {
  /** The store file (or block device) this database opens. */
  readonly location: string;
  readonly #storeOptions: RingLevelStoreOptions;
  #store: BlockStore | undefined;
  /** Every write goes through it, for iterators' seek(). */
  readonly #clock = new WriteClock(() => this.#store);
  /** The clear() calls running: close() stops them before their next batch, and waits for them. */
  readonly #clears = new Set<Promise<void>>();
  #stoppingClears = false;

  constructor(location: string, options: RingLevelOptions<K, V> = {}) {
    if (typeof location !== 'string' || location.length === 0) throw invalidArgument(`ringstore/level: location must be a non-empty string, got ${describeArgument(location)}`);
    if (options === null || typeof options !== 'object') throw invalidArgument(`ringstore/level: options must be an object, got ${describeArgument(options)}`);
    // Read once, under a guard: a throwing getter or a revoked Proxy is ERR_INVALID_ARG.
    let storeFields: RingLevelStoreOptions;
    let levelOptions: Omit<RingLevelOptions<K, V>, keyof RingLevelStoreOptions>;
    try {
      const { sizeBytes, maxSizeBytes, blockSize, cacheSizeBytes, walSizeBytes, sync, idleCheckpointMs, ring, device, ...rest } = options;
      storeFields = { sizeBytes, maxSizeBytes, blockSize, cacheSizeBytes, walSizeBytes, sync, idleCheckpointMs, ring, device };
      levelOptions = rest;
    } catch (error) {
      throw unreadableArgument('ringstore/level: options', error);
    }
    // Store options a RingLevel decides itself. Ignoring them would be worse
    // than refusing them: a `readOnly: true` database would take the
    // writer's lock and write (found by a review).
    for (const [name, instead] of REFUSED_STORE_OPTIONS) {
      if (name in levelOptions) throw invalidArgument(`ringstore/level: option '${name}' is not accepted: ${instead}`);
    }
    super(MANIFEST, levelOptions);
    this.location = location;
    this.#storeOptions = storeFields;
  }

  /** The open store, for what abstract-level does not cover (stats, checkpoint, flush). Throws when not open. */
  get store(): BlockStore {
    if (this.#store === undefined) throw new StoreError('ERR_STORE_CLOSED', 'ringstore/level: the database is not open');
    return this.#store;
  }

  // ---- Open and close ----

  /** abstract-level's private API. @internal */
  async _open(options: AbstractOpenOptions & Record<string, unknown>): Promise<void> {
    const createIfMissing = options.createIfMissing !== false;
    if (options.errorIfExists === true || !createIfMissing) {
      // Asked before opening: the store cannot say "created just now". A
      // racing creator between the stat and the open is not detected.
      const exists = this.#storeOptions.device !== undefined || (await pathExists(this.location));
      if (exists && options.errorIfExists === true) {
        throw new RingLevelError('ERR_LEVEL_EXISTS', `'${this.location}' already exists (errorIfExists: true)`);
      }
      if (!exists && !createIfMissing) {
        throw new StoreError('ERR_STORE_NOT_FOUND', `'${this.location}' does not exist (createIfMissing: false)`);
      }
    }
    try {
      const openStore = storeOpeners.get(this);
      this.#store = openStore === undefined ? await BlockStore.open(this.location, { ...this.#definedStoreOptions(), create: createIfMissing, encoding: 'binary' }) : await openStore();
    } catch (error) {
      throw toLevelError(error);
    }
  }

  /** abstract-level's private API. @internal */
  async _close(): Promise<void> {
    // A clear() stops before its next batch rather than meet a closed store
    // (ERR_STORE_CLOSED, with a batch perhaps half handed over: found by a
    // review); the batch it is writing ends first.
    this.#stoppingClears = true;
    try {
      await Promise.allSettled([...this.#clears]);
    } finally {
      this.#stoppingClears = false;
    }
    const store = this.#store;
    this.#store = undefined;
    await store?.close();
  }

  // ---- Reads: each looks the key up synchronously, the snapshot abstract-level asks for ----

  /** abstract-level's private API. @internal */
  _get(key: Encoded, options: PrivateOptions): Promise<Encoded | undefined> {
    return this.#getFrom(this.store, key, options.valueEncoding ?? 'utf8');
  }

  /**
   * One BlockStore.getMany() of the non-empty keys (the empty key has no
   * value): all values of the moment of the call, read in parallel.
   * abstract-level's private API. @internal
   */
  _getMany(keys: Encoded[], options: PrivateOptions): Promise<(Encoded | undefined)[]> {
    const format = options.valueEncoding ?? 'utf8';
    const present = keys.filter((key) => !isEmptyKey(key));
    return this.store.getMany(present).then(
      (values) => {
        let next = 0;
        return keys.map((key) => {
          if (isEmptyKey(key)) return undefined;
          const value = values[next++];
          return value === undefined ? undefined : fromStore(value, format);
        });
      },
      (error) => Promise.reject(toLevelError(error)),
    );
  }

  /** abstract-level's private API. @internal */
  _has(key: Encoded): Promise<boolean> {
    if (isEmptyKey(key)) return Promise.resolve(false);
    return this.store.has(key).catch((error) => Promise.reject(toLevelError(error)));
  }

  /** abstract-level's private API. @internal */
  _hasMany(keys: Encoded[]): Promise<boolean[]> {
    const store = this.store;
    return Promise.all(keys.map((key) => (isEmptyKey(key) ? false : store.has(key)))).catch((error) => Promise.reject(toLevelError(error)));
  }

  /** abstract-level's private API. @internal */
  _iterator(options: PrivateIteratorOptions): RingLevelIterator {
    return new RingLevelIterator(this, this.store, this.#clock, options);
  }

  /** abstract-level's private API. @internal */
  _keys(options: PrivateIteratorOptions): RingLevelKeyIterator {
    return new RingLevelKeyIterator(this, this.store, this.#clock, options);
  }

  /** abstract-level's private API. @internal */
  _values(options: PrivateIteratorOptions): RingLevelValueIterator {
    return new RingLevelValueIterator(this, this.store, this.#clock, options);
  }

  // ---- Writes ----

  /** abstract-level's private API. @internal */
  async _put(key: Encoded, value: Encoded): Promise<void> {
    if (isEmptyKey(key)) throw emptyKeyError();
    await this.#write(this.store.put(key, valueToStore(value)), true);
  }

  /** abstract-level's private API. @internal */
  async _del(key: Encoded): Promise<void> {
    // No value can be stored under the empty key, so there is nothing to delete.
    if (isEmptyKey(key)) return;
    await this.#write(this.store.delete(key), false);
  }

  /** abstract-level's private API. @internal */
  async _batch(operations: PrivateOperation[]): Promise<void> {
    const storeOperations: BatchOperation[] = [];
    for (const operation of operations) {
      if (operation.type === 'put') {
        if (isEmptyKey(operation.key)) throw emptyKeyError();
        storeOperations.push({ type: 'put', key: operation.key, value: valueToStore(operation.value ?? '') });
      } else if (!isEmptyKey(operation.key)) {
        storeOperations.push({ type: 'del', key: operation.key });
      }
    }
    if (storeOperations.length === 0) return;
    await this.#write(this.store.batch(storeOperations), storeOperations.some((operation) => operation.type === 'put'));
  }

  /**
   * Deletes the range in batches of at most CLEAR_BATCH_KEYS_MAX keys, read
   * from one snapshot taken when clear() is called: writes made meanwhile
   * are not deleted unless they were in the snapshot's range and already
   * there. Not atomic (abstract-level does not ask it to be): a crash may
   * leave a prefix of the range deleted.
   * @internal
   */
  _clear(options: PrivateIteratorOptions): Promise<void> {
    const clearing = this.#clearRange(options);
    this.#clears.add(clearing);
    const forget = (): void => {
      this.#clears.delete(clearing);
    };
    clearing.then(forget, forget);
    return clearing;
  }

  async #clearRange(options: PrivateIteratorOptions): Promise<void> {
    const store = this.store;
    /** Where the cursor (re)starts: the range, then the rest of it after each batch written. */
    let rest: EncodedRange = { gt: options.gt, gte: options.gte, lt: options.lt, lte: options.lte, reverse: options.reverse };
    let cursor = new RangeCursor(store, this.#clock, rest, false);
    const limit = options.limit >= 0 ? options.limit : Infinity;
    let batchKeysMax = CLEAR_BATCH_KEYS_MAX;
    let deleted = 0;
    // Puts made through the database since the clear began, or in flight then (see `alone`).
    const puts = this.#clock.watchPuts();
    try {
      while (deleted < limit) {
        const chunk: Key[] = [];
        let chunkBytes = 0;
        while (deleted + chunk.length < limit && chunk.length < batchKeysMax && chunkBytes < CLEAR_BATCH_KEY_BYTES_MAX) {
          let entry;
          try {
            entry = await cursor.next();
          } catch (error) {
            throw toLevelError(error);
          }
          if (entry === undefined) break;
          const key = entry[0] as Key;
          chunk.push(key);
          chunkBytes += key.length;
        }
        if (chunk.length === 0) break;
        if (this.#stoppingClears) {
          throw new RingLevelError('LEVEL_DATABASE_NOT_OPEN', `the database was closed while clear() ran: ${deleted} keys of its range were deleted, the rest were not`);
        }
        let refused = false;
        try {
          await this.#write(store.batch(chunk.map((key) => ({ type: 'del' as const, key }))), false);
        } catch (error) {
          // Too large for one commit, or no room for its checkpoint on a
          // full store: nothing of it applied; smaller batches from here on,
          // as the store's own clear() does.
          if (!(isRefusedForSize(error) && chunk.length > 1)) throw error;
          refused = true;
          batchKeysMax = Math.ceil(chunk.length / 2);
        }
        // Whether no key was put through the database since the clear began,
        // nor was being put then (every such put refused; one in flight, or
        // applied in this batch's commit but not yet resolved, may have put
        // one after the first snapshot). Then a new snapshot holds the rest
        // of the range as it was, less keys deleted meanwhile (by this
        // clear, another, or a delete): none that this clear must keep.
        // Taking it ends the old one's pin on the blocks the deletes freed,
        // which a full store needs back (found by a review: a clear() of a
        // full store failed with ERR_STORE_FULL and deleted nothing, where
        // the store's own clear() emptied it; then a put refused for room,
        // or a delete, while it ran made it fail again). After a put, the
        // snapshot it has goes on.
        const alone = puts.putsMade === 0;
        if (refused && !alone) {
          // The same keys on the same snapshot, in halves.
          await this.#deleteKeys(store, chunk);
        }
        if (!refused || !alone) deleted += chunk.length;
        if (alone) {
          if (!refused) {
            const last = chunk[chunk.length - 1];
            rest = rest.reverse ? { ...rest, lt: last, lte: undefined } : { ...rest, gt: last, gte: undefined };
          }
          await cursor.close();
          cursor = new RangeCursor(store, this.#clock, rest, false);
        }
      }
    } finally {
      this.#clock.unwatchPuts(puts);
      await cursor.close();
    }
  }

  /** One batch of deletes, split in halves while the store refuses it for its size (isRefusedForSize). */
  async #deleteKeys(store: BlockStore, keys: Key[]): Promise<void> {
    try {
      await this.#write(store.batch(keys.map((key) => ({ type: 'del' as const, key }))), false);
    } catch (error) {
      if (!(isRefusedForSize(error) && keys.length > 1)) throw error;
      const half = Math.ceil(keys.length / 2);
      await this.#deleteKeys(store, keys.slice(0, half));
      await this.#deleteKeys(store, keys.slice(half));
    }
  }

  // ---- Helpers ----

  /** Not async: the store looks the key up before this returns, which is the snapshot. */
  #getFrom(store: BlockStore, key: Encoded, format: string): Promise<Encoded | undefined> {
    if (isEmptyKey(key)) return Promise.resolve(undefined);
    return store.get(key).then(
      (value) => (value === undefined ? undefined : fromStore(value, format)),
      (error) => Promise.reject(toLevelError(error)),
    );
  }

  /** Counts a write just submitted to the store on the clock (`puts`: whether it puts a key); maps its error. */
  async #write(written: Promise<unknown>, puts: boolean): Promise<void> {
    try {
      await this.#clock.track(written, puts);
    } catch (error) {
      throw toLevelError(error);
    }
  }

  #definedStoreOptions(): BlockStoreOptions {
    const defined: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(this.#storeOptions)) if (value !== undefined) defined[name] = value;
    return defined as BlockStoreOptions;
  }
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

