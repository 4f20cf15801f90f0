// The public options, stats and limits of a BlockStore: what open() takes
// (BlockStoreOptions), what batch(), range() and count() take, what stats()
// gives, the defaults, and how cacheSizeBytes is shared between the page
// cache, the dirty pages and the block cache. Types and constants only: the
// façade (engine/block_store.ts) checks and applies them.
import type { IoUringActor } from '../native/io_uring_actor.js';
import type { BlockDevice } from './block_device.js';
import type { Key } from './key_codec.js';
import type { ValueEncoding } from './value_codec.js';

/** The options of BlockStore.open(). Every field is optional. */
export interface BlockStoreOptions {
  /** Create the store (and the file) if there is none. Default false. */
  create?: boolean;
  /**
   * Size of a new store file (rounded down to whole blocks); the file grows
   * from there as the store fills (see maxSizeBytes). Default
   * DEFAULT_STORE_SIZE_BYTES. A block device has its own size and never
   * grows.
   */
  sizeBytes?: number;
  /**
   * The most a store on a regular file may grow to; past it writes that need
   * room are refused with ERR_STORE_FULL (deletes are still taken). Default:
   * no limit but the file system's. Not recorded in the store: each open
   * sets its own. A store already larger stays as it is.
   */
  maxSizeBytes?: number;
  /** Block size of a new store: a power of two from 512 to 65536, a multiple of the device's alignment. Default 4096. */
  blockSize?: number;
  /**
   * Bytes of tree pages and data blocks kept in memory (three quarters for
   * pages, the rest for blocks of extent values). Default
   * DEFAULT_CACHE_SIZE_BYTES.
   */
  cacheSizeBytes?: number;
  /**
   * WAL region of a new store; it keeps this size as the store grows.
   * Default: DEFAULT_NEW_FILE_WAL_SIZE_BYTES for a file made without
   * sizeBytes, otherwise an eighth of the store, at most
   * DEFAULT_WAL_SIZE_BYTES.
   */
  walSizeBytes?: number;
  /**
   * How values are turned into bytes. A new store records it (default
   * 'msgpack'); opening without it uses the recorded one, and an explicit
   * one overrides it (to read the bytes as 'binary', say).
   */
  encoding?: ValueEncoding;
  /**
   * true (default): a write resolves once durable. false: once written; the
   * fdatasync follows within SYNC_DEFER_MS, and a crash may lose (never tear)
   * the writes of that window.
   */
  sync?: boolean;
  /**
   * Milliseconds without a commit after which the store writes a checkpoint
   * of what its writes dirtied (when that is enough to matter:
   * CheckpointPolicy.idleDue), so that a close() or a crash-open after a
   * pause has little to write or replay. An integer from 0 (never) to
   * IDLE_CHECKPOINT_MS_MAX. Default DEFAULT_IDLE_CHECKPOINT_MS (1 000).
   */
  idleCheckpointMs?: number;
  /** Run IO on this actor instead of starting one for the store. */
  ring?: IoUringActor;
  /** Use this device instead of opening `path` (the simulated device of crash tests). */
  device?: BlockDevice;
  /**
   * Open without writing anything to the store, ever (default false): the
   * file is opened O_RDONLY and locked shared, so read-only opens coexist
   * while a writer and they exclude each other (ERR_STORE_LOCKED); recovery
   * replays the WAL's tail into memory only; every write rejects with
   * ERR_STORE_READ_ONLY; close() writes nothing. Not with `create`.
   */
  readOnly?: boolean;
}

/** Every field of BlockStoreOptions: open() reads each once (store_arguments.ts optionFields). */
export const BLOCK_STORE_OPTION_NAMES = ['create', 'sizeBytes', 'maxSizeBytes', 'blockSize', 'cacheSizeBytes', 'walSizeBytes', 'encoding', 'sync', 'idleCheckpointMs', 'ring', 'device', 'readOnly'] as const satisfies readonly (keyof BlockStoreOptions)[];
// A field added to BlockStoreOptions and not to the list above fails to compile here.
const OPTION_NAMES_COVER_OPTIONS: [Exclude<keyof BlockStoreOptions, (typeof BLOCK_STORE_OPTION_NAMES)[number]>] extends [never] ? true : never = true;
void OPTION_NAMES_COVER_OPTIONS;

/**
 * One operation of BlockStore.batch(): a put of `value` under `key`, or a
 * delete of `key`.
 *
 * @typeParam V - The store's value type (BlockStore<V>).
 */
export type BatchOperation<V = unknown> =
  | {
      /** Stores `value` under `key`. */
      type: 'put';
      /** The key to write. */
      key: Key;
      /** The value, encoded with the store's encoding. */
      value: V;
    }
  | {
      /** Removes `key` (nothing if it is missing). */
      type: 'del';
      /** The key to remove. */
      key: Key;
    };

/**
 * Which keys a range call (range, keys, values, count, clear) covers, in
 * which order and how many. Bounds and prefix are keys, compared bytewise
 * (a string as its UTF-8 bytes); every one given is validated, one that
 * loses to another too.
 */
export interface KeyRangeOptions {
  /** Keys above this one. `gte` takes precedence when both are given. */
  gt?: Key;
  /** Keys at or above this one. */
  gte?: Key;
  /** Keys below this one. `lte` takes precedence when both are given. */
  lt?: Key;
  /** Keys at or below this one. */
  lte?: Key;
  /**
   * Keys that start with these bytes (a string: its UTF-8 bytes, so for
   * string keys the same as starting with the string). May be empty (every
   * key). Combines with the bounds: a key is in the range if it starts with
   * the prefix and meets every bound.
   */
  prefix?: Key;
  /** From the highest key down (default false); `limit` then counts from the top. */
  reverse?: boolean;
  /** At most this many keys: an integer >= 0, or Infinity (the default). */
  limit?: number;
}

/** The options of BlockStore.range(): the range, and whether to read values. */
export interface RangeOptions extends KeyRangeOptions {
  /** Decode and return values (default true); false yields [key, undefined]. */
  values?: boolean;
}

/** What BlockStore.stats() reports: counts of keys, blocks, caches, commits and checkpoints. */
export interface BlockStoreStats {
  /**
   * Keys in the store. While the WAL tail recovered at open is being
   * replayed (tailCommitsToReplay > 0) it counts the tree so far, not the
   * tail's keys; count() waits for the replay and is exact.
   */
  keys: number;
  /** Blocks of the whole store: superblocks, WAL and data region. */
  blocksTotal: number;
  /** Blocks of the data region not free: pages, values, the free set, and those waiting for a trim or a checkpoint. */
  blocksUsed: number;
  /** Blocks of the data region free for allocation. */
  blocksFree: number;
  /** Reads of extent-value blocks found in the block cache, since open. */
  cacheHits: number;
  /** Reads of extent-value blocks that went to the device, since open. */
  cacheMisses: number;
  /** Bytes of extent-value blocks in the block cache. */
  cacheBytes: number;
  /** Commits written since open. */
  commits: number;
  /** Sequence number of the newest commit applied (written; durable unless sync: false); 0 before any. */
  lastCommitSequence: number;
  /** Records (puts and deletes) per commit, on average since open: how much group commit shares. */
  meanRecordsPerCommit: number;
  /** The share of the WAL that commits not yet covered by a checkpoint take, from 0 to 1. */
  walFill: number;
  /** Trims issued since open. */
  trimsIssued: number;
  /** Trims the device refused; their blocks were freed anyway (a trim is advisory). */
  trimErrors: number;
  /** Blocks released but not free yet: waiting for their trim, or being trimmed. */
  pendingTrims: number;
  /** Checkpoints written since open. */
  checkpoints: number;
  /** Tree pages written by checkpoints since open. */
  pagesWritten: number;
  /** Levels of the page tree (0 when empty). */
  treeHeight: number;
  /** Tree pages in the page cache. */
  pagesCached: number;
  /** What the page cache estimates its pages take in memory. */
  pageCacheBytes: number;
  /** Page lookups the page cache answered, since open. */
  pageCacheHits: number;
  /** Page lookups that read the page from the device, since open. */
  pageCacheMisses: number;
  /** Keys whose entries the record cache holds (hot keys of gets; engine/record_cache.ts). */
  recordsCached: number;
  /** What the record cache estimates its records take (part of the cache's budget, cacheSizeBytes). */
  recordCacheBytes: number;
  /** Gets and has() the record cache answered, since open. */
  recordCacheHits: number;
  /** At least the tree pages the next checkpoint writes. */
  dirtyPages: number;
  /** Times the store file grew since open (store_growth.ts). */
  growths: number;
  /**
   * Times commits waited for a checkpoint to end since open: they had
   * dirtied a budget's worth of pages (half of cacheSizeBytes) while it was
   * written (backpressure that keeps memory bounded).
   */
  checkpointWaits: number;
  /** Commits of the WAL tail recovered at open that the background replay has yet to apply to the tree (0 once whenRecovered() resolves). */
  tailCommitsToReplay: number;
}

/**
 * The actor a store starts for itself when not given one: the actor thread
 * does not busy-poll, the JS thread decides for itself (adaptive), and
 * commit writes go through the JS thread's own ring.
 *
 * A store's IO is mostly flushes (commit writes with RWF_DSYNC or a linked
 * fdatasync), for which neither thread spins anyway (Command::IsSlow); with
 * the actor spinning the store measured the same within noise on one host
 * (npm run bench, both orders), and on another the spinning actor cost 32
 * concurrent cold readers up to 18 % (it takes the core the JS thread and
 * the kernel need), so the actor does not spend the CPU. The JS thread's
 * completion spin is left to its SpinPolicy ('auto'), which spins only while
 * it measures that spinning pays and only for fast commands (4 KiB reads,
 * page writes): on the host of docs/benchmarks.md session 56 a store with
 * it made 1.17–1.66 × the cold gets one at a time (6 alternating pairs;
 * waking a sleeping event loop cost ~30 µs of a ~85 µs get) and 1.00–1.11 ×
 * with 32 readers, while its writers' runs never engaged it (no probe:
 * their commits are slow commands). Its RWF_DSYNC commit writes skip the
 * actor's round trip (directDsync): one durable put at a time, 3 170–3 429
 * puts/s against 2 713–2 943 through the actor, in three alternating pairs
 * on a host whose thread wake-ups are dear (docs/io.md, *Durable writes*).
 * A read alone in flight (a cold get) goes through that ring too
 * (directReads, the IO layer's default): 1 M cold gets one at a time,
 * 12.9–16.1 k gets/s against 10.5–11.2 k through the actor (docs/io.md,
 * *Lone reads*).
 */
export const STORE_RING_OPTIONS = {
  /** Fall back to a thread pool where io_uring is unavailable. */
  fallback: 'threads',
  /** No busy-polling by the actor thread. */
  spinUs: 0,
  /** The JS thread busy-polls for fast completions while its SpinPolicy measures that it pays. */
  completionSpinUs: 'auto',
  /** RWF_DSYNC writes (commits) through a ring of the JS thread, not the actor. */
  directDsync: true,
  /** A read with nothing else in flight through that ring too (the default, said here as the store relies on it). */
  directReads: true,
} as const;

/**
 * The first size of a store file made without `sizeBytes`: small, since the
 * file grows as the store fills (a test suite making hundreds of stores
 * needs 16 MiB a store, not a preallocated GiB).
 */
export const DEFAULT_STORE_SIZE_BYTES = 16 << 20;
/**
 * The WAL of a store file made without `sizeBytes` or `walSizeBytes`: half
 * of its first size rather than the eighth a store of a given size gets,
 * since the WAL cannot grow with the file and bounds one commit (a quarter
 * of it: 2 MiB of records) and the work between checkpoints. Stores
 * expected to take GiBs of writes do better with a larger one
 * (walSizeBytes, up to DEFAULT_WAL_SIZE_BYTES and more).
 */
export const DEFAULT_NEW_FILE_WAL_SIZE_BYTES = 8 << 20;
/** Memory for caching when open() is given no cacheSizeBytes: 64 MiB (see BlockStoreOptions.cacheSizeBytes). */
export const DEFAULT_CACHE_SIZE_BYTES = 64 << 20;
/** The share of cacheSizeBytes that holds tree pages; the rest caches blocks of extent values. */
export const PAGE_CACHE_SHARE = 0.75;
/**
 * Dirty pages (pinned in memory until a checkpoint writes them) may take up
 * this share of cacheSizeBytes before a checkpoint starts on its own; at
 * least DIRTY_PAGES_MIN pages.
 */
const DIRTY_CACHE_SHARE = 0.5;
export const DIRTY_PAGES_MIN = 256;
/**
 * Memory of a decoded dirty page, for the budget above: its page bytes and
 * about as much again in JS objects (key strings, entry objects, arrays).
 */
const DIRTY_PAGE_MEMORY_FACTOR = 2;
/** The value encoding of a new store when open() is given none. */
export const DEFAULT_ENCODING: ValueEncoding = 'msgpack';
/** The dirty pages' budget (a checkpoint starts at it) of a store of `pageSize`-byte pages and `cacheSizeBytes`. */
export function dirtyPagesMaxFor(cacheSizeBytes: number, pageSize: number): number {
  return Math.max(DIRTY_PAGES_MIN, Math.floor((cacheSizeBytes * DIRTY_CACHE_SHARE) / (pageSize * DIRTY_PAGE_MEMORY_FACTOR)));
}

/** Largest value one put may store (streams have no limit): one transfer. */
export const VALUE_SIZE_MAX = 1 << 30;
/**
 * Keys BlockStore.clear() deletes per commit, at most: each batch is one
 * atomic, durable commit of deletes. 1024 deletes of keys up to 1 KiB are
 * at most ~1 MiB of WAL, and the batch's keys are all clear() holds in
 * memory. A smaller WAL bounds a batch further (a commit's share of it).
 */
export const CLEAR_BATCH_KEYS_MAX = 1024;
/**
 * Reads getMany() has in flight at once (page lookups and extent-value
 * reads): enough to keep a device's queue busy, few enough that a call with
 * a million keys does not queue a million reads at once.
 */
export const GET_MANY_READS_IN_FLIGHT_MAX = 64;
