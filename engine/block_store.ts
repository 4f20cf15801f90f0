// BlockStore: the embedded key/value store — the façade over its parts.
//
// It owns the public API and its argument checks, the options, the
// lifecycle (open, format, close), the fail-stop state and the stats; the
// work is done by the parts, each one concept (docs/architecture.md § The
// store):
//
//   journal.ts       the write queue and group commit, WAL placement, sync
//   page_tree.ts     keys and their entries: the copy-on-write B+tree of pages
//   tree_pages.ts    the tree's pages on the device (read, checked, encoded)
//   space.ts         free space: allocation, checkpoint reserve, read epochs, trims
//   grid.ts          block IO of extent values: cache, buffer pool, verified reads
//   checkpointer.ts  incremental checkpoints and superblock writes
//   value_streams.ts createWriteStream / createReadStream
//   store_layout.ts  the layout of a store; formatting a device
//
// A write flows one way: façade → journal → tree, space and grid. The
// parts never import the façade; it passes each its collaborators.
//
// Failure: any IO error of a commit, trim or checkpoint moves the store to
// ERR_STORE_FAILED (store_state.ts): the failing and all later writes are
// rejected; reads of durable data still work; reopening recovers the durable
// prefix.
import type { Readable, Writable } from 'node:stream';

import { crc32c } from '../format/crc32c.js';
import type { Extent } from '../format/extent.js';
import { VALUE_ENCODING_IDS } from '../format/constants.js';
import { branchChildBytes, leafEntryBytes, pageCapacityBytes, pageSizeFor } from '../format/page.js';
import type { ExtentValue } from '../format/records.js';
import { frameBlockCount } from '../format/frame.js';
import { freeSetPayloadBytes, type Superblock } from '../format/superblock.js';
import { IoUringActor } from '../native/io_uring_actor.js';
import { BlockCache } from './block_cache.js';
import { checkBlockDevice, type BlockDevice } from './block_device.js';
import { BufferPool } from './buffer_pool.js';
import { Checkpointer } from './checkpointer.js';
import { Grid } from './grid.js';
import { Journal, recoveredWalSpace, type PendingWrite, type QueuedWrite } from './journal.js';
import { keyStringToKey, toKeyString, type Key } from './key_codec.js';
import type { ExtentAllocator } from './extent_allocator.js';
import { NOT_CACHED, PageTree } from './page_tree.js';
import { probeSuperblocks, recoverStore, type SuperblockProbe } from './recovery.js';
import { RingBlockDevice } from './ring_block_device.js';
import { checkReferences, Space, VALUE_EXTENTS_PER_PUT_MAX } from './space.js';
import { checkBlockSize, checkBoolean, checkSize, describeArgument, describeKey, rangeBound, unreadableArgument } from './store_arguments.js';
import { invalidArgument, StoreCorruptError, StoreError } from './store_error.js';
import { openStoreFile, type OpenedStoreFile } from './store_file.js';
import { isExtentValue, type IndexEntry } from './store_index.js';
import { eraseSuperblocks, formatStore, storeLayout } from './store_layout.js';
import { StoreState } from './store_state.js';
import { TreePages, type TreeGeometry } from './tree_pages.js';
import { createValueReadStream, createValueWriteStream, storedEntries, type StoredEntry, type StreamParts } from './value_streams.js';
import { valueCodec, type ValueCodec, type ValueEncoding } from './value_codec.js';

export { CHECKPOINT_WAL_FILL, SYNC_DEFER_MS } from './journal.js';
export type { StoredEntry } from './value_streams.js';
export { DEFAULT_BLOCK_SIZE, DEFAULT_WAL_SIZE_BYTES, storeLayout } from './store_layout.js';

export interface BlockStoreOptions {
  /** Create the store (and the file) if there is none. Default false. */
  create?: boolean;
  /** Size of a new store file. Default DEFAULT_STORE_SIZE_BYTES; block devices use their size. */
  sizeBytes?: number;
  /** Block size of a new store: a power of two from 512 to 65536, a multiple of the device's alignment. Default 4096. */
  blockSize?: number;
  /**
   * Bytes of tree pages and data blocks kept in memory (three quarters for
   * pages, the rest for blocks of extent values). Default
   * DEFAULT_CACHE_SIZE_BYTES.
   */
  cacheSizeBytes?: number;
  /** WAL region of a new store. Default: an eighth of the store, at most DEFAULT_WAL_SIZE_BYTES. */
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
  /** Run IO on this actor instead of starting one for the store. */
  ring?: IoUringActor;
  /** Use this device instead of opening `path` (the simulated device of crash tests). */
  device?: BlockDevice;
}

export type BatchOperation = { type: 'put'; key: Key; value: unknown } | { type: 'del'; key: Key };

export interface RangeOptions {
  gt?: Key;
  gte?: Key;
  lt?: Key;
  lte?: Key;
  reverse?: boolean;
  limit?: number;
  /** Decode and return values (default true); false yields [key, undefined]. */
  values?: boolean;
}

export interface BlockStoreStats {
  keys: number;
  blocksTotal: number;
  blocksUsed: number;
  blocksFree: number;
  cacheHits: number;
  cacheMisses: number;
  cacheBytes: number;
  commits: number;
  /** Sequence number of the newest commit applied (written; durable unless sync: false); 0 before any. */
  lastCommitSequence: number;
  meanRecordsPerCommit: number;
  walFill: number;
  trimsIssued: number;
  /** Trims the device refused; their blocks were freed anyway (a trim is advisory). */
  trimErrors: number;
  pendingTrims: number;
  checkpoints: number;
  /** Tree pages written by checkpoints since open. */
  pagesWritten: number;
  /** Levels of the page tree (0 when empty). */
  treeHeight: number;
  /** Tree pages in the page cache, and what the cache estimates they take in memory. */
  pagesCached: number;
  pageCacheBytes: number;
  pageCacheHits: number;
  pageCacheMisses: number;
  /** At least the tree pages the next checkpoint writes. */
  dirtyPages: number;
}

/**
 * The actor a store starts for itself when not given one: no busy-polling.
 * A store's IO is mostly flushes (commit writes with RWF_DSYNC or a linked
 * fdatasync), for which the actor and the JS thread do not spin anyway
 * (Command::IsSlow); with the IO layer's default spinning the store measured
 * the same within noise here (npm run bench, both orders), so its own actor
 * does not spend the CPU.
 */
export const STORE_RING_OPTIONS = { fallback: 'threads', spinUs: 0, completionSpinUs: 0 } as const;

export const DEFAULT_STORE_SIZE_BYTES = 1 << 30;
export const DEFAULT_CACHE_SIZE_BYTES = 64 << 20;
/** The share of cacheSizeBytes that holds tree pages; the rest caches blocks of extent values. */
const PAGE_CACHE_SHARE = 0.75;
/**
 * Dirty pages (pinned in memory until a checkpoint writes them) may take up
 * this share of cacheSizeBytes before a checkpoint starts on its own; at
 * least DIRTY_PAGES_MIN pages.
 */
const DIRTY_CACHE_SHARE = 0.5;
const DIRTY_PAGES_MIN = 256;
/**
 * Memory of a decoded dirty page, for the budget above: its page bytes and
 * about as much again in JS objects (key strings, entry objects, arrays).
 */
const DIRTY_PAGE_MEMORY_FACTOR = 2;
/** The value encoding of a new store when open() is given none. */
const DEFAULT_ENCODING: ValueEncoding = 'msgpack';
/** Largest value one put may store (streams have no limit): one transfer. */
export const VALUE_SIZE_MAX = 1 << 30;

export class BlockStore {
  readonly path: string;
  readonly #device: BlockDevice;
  readonly #ownedRing: IoUringActor | undefined;
  readonly #codec: ValueCodec;
  readonly #sync: boolean;
  readonly #blockSize: number;
  readonly #inlineValueMax: number;
  readonly #state = new StoreState();
  readonly #tree: PageTree;
  /** Blocks of one tree page (a page is max(blockSize, 4096) bytes). */
  readonly #pageBlocks: number;
  readonly #space: Space;
  readonly #grid: Grid;
  readonly #checkpointer: Checkpointer;
  readonly #journal: Journal;
  /** What createWriteStream and createReadStream work with. */
  readonly #streamParts: StreamParts;
  #closing: Promise<void> | undefined;

  private constructor(
    path: string,
    device: BlockDevice,
    ownedRing: IoUringActor | undefined,
    options: Required<Pick<BlockStoreOptions, 'encoding' | 'sync' | 'cacheSizeBytes'>>,
    superblock: Superblock,
    tree: PageTree,
    treePages: TreePages,
    allocator: ExtentAllocator,
    liveCommits: { sequence: number; startBlock: number; blockCount: number }[],
    walHeadBlock: number,
    nextSequence: number,
  ) {
    this.path = path;
    this.#device = device;
    this.#ownedRing = ownedRing;
    this.#codec = valueCodec(options.encoding);
    this.#sync = options.sync;
    this.#blockSize = superblock.blockSize;
    this.#inlineValueMax = superblock.blockSize / 2;
    const blockSize = superblock.blockSize;
    const state = this.#state;
    const dataCacheBytes = Math.floor(options.cacheSizeBytes * (1 - PAGE_CACHE_SHARE));
    const cacheBlocks = Math.floor(dataCacheBytes / blockSize);
    const pool = new BufferPool(blockSize, device.ioAlignment, cacheBlocks + 1024);
    const cache = new BlockCache(pool, dataCacheBytes);
    const pageSize = pageSizeFor(blockSize);
    this.#tree = tree;
    this.#pageBlocks = pageSize / blockSize;
    const walSpace = recoveredWalSpace(superblock.walBlockCount, liveCommits, walHeadBlock);
    const freeSetFrameBlocks = frameBlockCount(freeSetPayloadBytes(superblock.blockCount - superblock.dataStartBlock), blockSize);
    this.#space = new Space({ device, blockSize, cache, state, allocator, pageBlocks: this.#pageBlocks, pageCapacityBytes: pageCapacityBytes(pageSize), freeSetFrameBlocks, tree });
    this.#checkpointer = new Checkpointer({ device, superblock, sync: options.sync, tree, pages: treePages, pageBlocks: this.#pageBlocks, walSpace, space: this.#space, state });
    this.#grid = new Grid({ device, blockSize, pool, cache, space: this.#space });
    this.#journal = new Journal({
      device,
      blockSize,
      storeTag: superblock.storeTag,
      walStartBlock: superblock.walStartBlock,
      walBlockCount: superblock.walBlockCount,
      sync: options.sync,
      nextSequence,
      walSpace,
      tree,
      pageBlocks: this.#pageBlocks,
      pageCapacityBytes: pageCapacityBytes(pageSize),
      dirtyPagesMax: Math.max(DIRTY_PAGES_MIN, Math.floor((options.cacheSizeBytes * DIRTY_CACHE_SHARE) / (pageSize * DIRTY_PAGE_MEMORY_FACTOR))),
      space: this.#space,
      grid: this.#grid,
      checkpointer: this.#checkpointer,
      state,
    });
    this.#streamParts = { blockSize, state, tree, space: this.#space, grid: this.#grid, journal: this.#journal };
  }

  /**
   * Opens (or, with `create`, makes) the store at `path`: a regular file or
   * a raw block device. Recovers from a crash: newest valid superblock,
   * the checkpoint's free set and tree root, WAL replay up to the first
   * incomplete commit. Reads no page it does not need: the time it takes
   * follows the WAL tail, not the keys.
   */
  static async open(path: string, options: BlockStoreOptions = {}): Promise<BlockStore> {
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('path must be a non-empty string');
    if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object');
    const create = checkBoolean(options.create, 'create', false);
    const sync = checkBoolean(options.sync, 'sync', true);
    if (options.encoding !== undefined) valueCodec(options.encoding); // validates
    const cacheSizeBytes = checkSize(options.cacheSizeBytes, 'cacheSizeBytes', DEFAULT_CACHE_SIZE_BYTES, 0);
    const blockSize = checkBlockSize(options.blockSize);
    const sizeBytes = checkSize(options.sizeBytes, 'sizeBytes', DEFAULT_STORE_SIZE_BYTES, 0);
    if (options.walSizeBytes !== undefined) checkSize(options.walSizeBytes, 'walSizeBytes', 0, 0);
    if (options.ring !== undefined && !(options.ring instanceof IoUringActor)) throw invalidArgument('ring must be an IoUringActor');
    if (options.device !== undefined) checkBlockDevice(options.device);
    if (create && options.device === undefined) {
      const layout = storeLayout(sizeBytes, blockSize, options.walSizeBytes);
      if (typeof layout === 'string') throw invalidArgument(`option 'sizeBytes': ${layout}`, 'range');
    }

    let ownedRing: IoUringActor | undefined;
    let device = options.device;
    let storeFile: OpenedStoreFile | undefined;
    let formatted = false;
    try {
      if (device === undefined) {
        const ring = options.ring ?? (ownedRing = IoUringActor.start(STORE_RING_OPTIONS));
        // A new file is whole blocks long: open refuses a file whose length
        // is not a multiple of the sector size (a store cut short).
        storeFile = await openStoreFile(ring, path, { create, sizeBytes: sizeBytes - (sizeBytes % blockSize) });
        device = storeFile.device;
      }
      // Only a blank device (a new or empty file) is ever formatted here;
      // see store_file.ts for why nothing else is, zeros included.
      const blank = storeFile !== undefined ? storeFile.blank : device.blank === true;
      let probe: SuperblockProbe;
      if (blank) {
        if (!create) throw new StoreError('ERR_STORE_NOT_FOUND', `'${path}' holds no ringstore (open with create: true to make one)`);
        const superblock = await formatStore(device, blockSize, options.walSizeBytes, options.encoding ?? DEFAULT_ENCODING);
        await storeFile?.publish();
        formatted = true;
        probe = { kind: 'found', superblock, slotsToRepair: [] };
      } else {
        probe = await probeSuperblocks(device);
        if (probe.kind !== 'found') {
          throw new StoreError(
            'ERR_STORE_NOT_FOUND',
            `'${path}' holds ${probe.kind === 'empty' ? 'zeros' : 'data'} but no ringstore; it is left untouched (create: true makes a store only in a new or empty file; BlockStore.format() formats over anything)`,
          );
        }
      }
      if (probe.superblock.blockSize % Math.max(device.ioAlignment, 1) !== 0) {
        throw new StoreError('ERR_INVALID_ARG', `the store's block size ${probe.superblock.blockSize} is not a multiple of the device's direct-IO alignment ${device.ioAlignment}`);
      }
      const superblock = probe.superblock;
      // Without an encoding option the store decodes values the way it was
      // created to; an explicit one overrides it.
      const encoding = options.encoding ?? encodingOfId(superblock.valueEncodingId);
      const pageSize = pageSizeFor(superblock.blockSize);
      const geometry: TreeGeometry = {
        blockSize: superblock.blockSize,
        pageSize,
        storeTag: superblock.storeTag,
        dataStartBlock: superblock.dataStartBlock,
        blockCount: superblock.blockCount,
      };
      const treePages = new TreePages(device, () => geometry);
      const tree = new PageTree(
        {
          io: treePages,
          capacityBytes: pageCapacityBytes(pageSize),
          entryBytes: (key, entry) => leafEntryBytes(key.length, entry.value instanceof Uint8Array ? { kind: 'inline', bytes: entry.value } : entry.value),
          childBytes: (separator) => branchChildBytes(separator.length),
          cacheBytesMax: Math.floor(cacheSizeBytes * PAGE_CACHE_SHARE),
        },
        superblock.treeRoot === undefined ? undefined : { ref: { block: superblock.treeRoot.block, crc: superblock.treeRoot.crc }, level: superblock.treeRoot.level },
        superblock.keyCount,
      );
      const recovered = await recoverStore(device, superblock, probe.slotsToRepair, tree);
      const store = new BlockStore(
        path,
        device,
        ownedRing,
        { encoding, sync, cacheSizeBytes },
        recovered.superblock,
        tree,
        treePages,
        recovered.allocator,
        recovered.liveCommits,
        recovered.walHeadBlock,
        recovered.nextSequence,
      );
      if (recovered.slotsToRepair.length > 0) await store.#checkpointer.writeSuperblockSlots(recovered.superblock, recovered.slotsToRepair);
      if (recovered.staleBlocks.length > 0) await store.#checkpointer.eraseWalBlocks(recovered.staleBlocks);
      return store;
    } catch (error) {
      if (storeFile !== undefined && !formatted) await storeFile.abandon();
      else await device?.close().catch(() => undefined);
      await ownedRing?.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Makes a new, empty store at `path`, destroying whatever the file or block
   * device holds (a store included): the explicit step that open's
   * `create: true` never takes over existing data. A missing file is created
   * as open would; an existing file keeps its length, or grows to
   * `sizeBytes` when that is larger. Refused with ERR_STORE_LOCKED while a
   * store has it open. Resolves once the new store is durable.
   */
  static async format(path: string, options: Pick<BlockStoreOptions, 'sizeBytes' | 'blockSize' | 'walSizeBytes' | 'ring' | 'encoding'> = {}): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('path must be a non-empty string');
    if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object');
    const blockSize = checkBlockSize(options.blockSize);
    const sizeBytes = checkSize(options.sizeBytes, 'sizeBytes', 0, 0);
    if (options.walSizeBytes !== undefined) checkSize(options.walSizeBytes, 'walSizeBytes', 0, 0);
    if (options.ring !== undefined && !(options.ring instanceof IoUringActor)) throw invalidArgument('ring must be an IoUringActor');
    const encoding = options.encoding ?? DEFAULT_ENCODING;
    valueCodec(encoding); // validates
    const ownedRing = options.ring === undefined ? IoUringActor.start(STORE_RING_OPTIONS) : undefined;
    const ring = options.ring ?? ownedRing!;
    try {
      let device: RingBlockDevice;
      try {
        device = await RingBlockDevice.open(ring, path);
      } catch (error) {
        if (!(error instanceof StoreError && error.code === 'ERR_STORE_NOT_FOUND')) throw error;
        const created = await openStoreFile(ring, path, { create: true, sizeBytes: sizeBytes || DEFAULT_STORE_SIZE_BYTES });
        let published = false;
        try {
          await formatStore(created.device, blockSize, options.walSizeBytes, encoding);
          await created.publish();
          published = true;
        } finally {
          if (published) await created.device.close();
          else await created.abandon();
        }
        return;
      }
      try {
        let targetBytes = device.fileLengthBytes;
        if (!device.isBlockDevice) {
          // A regular file grows to sizeBytes (an empty one to the default),
          // and to whole sectors: open() refuses a file of another length.
          const unitBytes = Math.max(device.ioAlignment, 512);
          targetBytes = Math.max(sizeBytes, device.fileLengthBytes === 0 ? DEFAULT_STORE_SIZE_BYTES : 0, device.fileLengthBytes);
          targetBytes = Math.ceil(targetBytes / unitBytes) * unitBytes;
        }
        // Refused before anything is changed.
        const layout = storeLayout(targetBytes - (targetBytes % Math.max(device.ioAlignment, 1)), blockSize, options.walSizeBytes);
        if (typeof layout === 'string') throw new StoreError('ERR_STORE_NO_SPACE', `'${path}' is too small for a store: ${layout}`);
        if (targetBytes > device.fileLengthBytes) await device.grow(ring, targetBytes);
        // The old superblocks go first: a crash while the WAL is zeroed must
        // not leave an older store that opens without the commits it loses.
        await eraseSuperblocks(device);
        await formatStore(device, blockSize, options.walSizeBytes, encoding);
      } finally {
        await device.close();
      }
    } finally {
      await ownedRing?.close();
    }
  }

  // ---- Reads ----

  /** The value of `key`, or undefined. Sees every acknowledged write. */
  get(key: Key): Promise<unknown> {
    // Not an async function: an inline value (the common case) resolves
    // without the extra promise and await an async body costs per call.
    try {
      this.#state.checkOpen();
      const keyString = toKeyString(key);
      const entry = this.#tree.getCached(keyString);
      if (entry === NOT_CACHED) return this.#getUncached(keyString);
      if (entry === undefined) return Promise.resolve(undefined);
      if (entry.value instanceof Uint8Array) return Promise.resolve(this.#decodeValue(keyString, entry, entry.value, false));
      return this.#readValue(entry).then((bytes) => this.#decodeValue(keyString, entry, bytes, true));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  has(key: Key): Promise<boolean> {
    try {
      this.#state.checkOpen();
      const keyString = toKeyString(key);
      const entry = this.#tree.getCached(keyString);
      if (entry !== NOT_CACHED) return Promise.resolve(entry !== undefined);
      return this.#lookUp(keyString, async (found) => found !== undefined);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** get() when a page on the key's path is not in memory. */
  #getUncached(keyString: string): Promise<unknown> {
    return this.#lookUp(keyString, async (entry) => {
      if (entry === undefined) return undefined;
      if (entry.value instanceof Uint8Array) return this.#decodeValue(keyString, entry, entry.value, false);
      return this.#decodeValue(keyString, entry, await this.#readValue(entry), true);
    });
  }

  /**
   * Looks `keyString` up through the page cache and the device, then runs
   * `use` on its entry, under one read epoch: neither the pages read nor
   * the value's extents can be freed and reused in between.
   */
  async #lookUp<T>(keyString: string, use: (entry: IndexEntry | undefined) => Promise<T>): Promise<T> {
    const epoch = this.#space.beginRead();
    try {
      let entry: IndexEntry | undefined;
      try {
        entry = await this.#tree.get(keyString);
      } catch (error) {
        throw this.#state.closedOr(error);
      }
      return await use(entry);
    } finally {
      this.#space.endRead(epoch);
    }
  }

  /**
   * Entries in key order (bytewise), over a snapshot taken when iteration
   * starts: writes made meanwhile are not seen. Bounds as in abstract-level:
   * `gte` takes precedence over `gt` and `lte` over `lt`; every bound given
   * is validated, the one that yields too.
   */
  async *range(options: RangeOptions = {}): AsyncGenerator<[Key, unknown]> {
    this.#state.checkOpen();
    if (options === null || typeof options !== 'object') throw invalidArgument('range options must be an object');
    // Each option read once: a getter cannot hand validation one bound and the iteration another.
    let gt: unknown, gte: unknown, lt: unknown, lte: unknown, reverse: unknown, limit: unknown, values: unknown;
    try {
      ({ gt, gte, lt, lte, reverse, limit = Infinity, values } = options);
    } catch (error) {
      throw unreadableArgument('range options', error);
    }
    const bounds = { gt: rangeBound(gt, 'gt'), gte: rangeBound(gte, 'gte'), lt: rangeBound(lt, 'lt'), lte: rangeBound(lte, 'lte') };
    const low = bounds.gte ?? bounds.gt;
    const lowInclusive = bounds.gte !== undefined;
    const high = bounds.lte ?? bounds.lt;
    const highInclusive = bounds.lte !== undefined;
    if (typeof limit !== 'number' || !(limit >= 0) || !(Number.isInteger(limit) || limit === Infinity)) {
      throw invalidArgument(`range option 'limit' must be an integer >= 0 or Infinity, got ${describeArgument(limit)}`, 'range');
    }
    if (reverse !== undefined && typeof reverse !== 'boolean') throw invalidArgument(`range option 'reverse' must be a boolean, got ${describeArgument(reverse)}`);
    if (values !== undefined && typeof values !== 'boolean') throw invalidArgument(`range option 'values' must be a boolean, got ${describeArgument(values)}`);
    const withValues = values !== false;
    const snapshot = this.#tree.snapshot();
    // The snapshot's pages and extent values must stay readable for the whole
    // iteration: pin them (no trim, no reuse) until it ends. An iterator that
    // is never finished nor returned keeps the pin — break out of loops with
    // `break`/`return` (which ends the generator) rather than abandoning them.
    const epoch = this.#space.beginRead();
    try {
      let yielded = 0;
      if (yielded >= limit) return;
      const entries = this.#tree.entries(snapshot, { low, lowInclusive, high, highInclusive, reverse: reverse === true });
      for await (const [keyString, entry] of entries) {
        // A caller may go on iterating after close(): that is a call after
        // close, answered as one (the device is gone).
        this.#state.checkOpen();
        if (reverse === true) {
          if (low !== undefined && (keyString < low || (!lowInclusive && keyString === low))) break;
        } else {
          if (!lowInclusive && keyString === low) continue;
          if (high !== undefined && (keyString > high || (!highInclusive && keyString === high))) break;
        }
        const key = keyStringToKey(keyString, entry.isString);
        if (withValues) {
          const value =
            entry.value instanceof Uint8Array
              ? this.#decodeValue(keyString, entry, entry.value, false)
              : this.#decodeValue(keyString, entry, await this.#readValue(entry), true);
          yield [key, value];
        } else {
          yield [key, undefined];
        }
        if (++yielded >= limit) return;
      }
    } finally {
      this.#space.endRead(epoch);
    }
  }

  // ---- Writes ----

  /** Stores `value` under `key`; resolves once durable (sync: true). */
  async put(key: Key, value: unknown): Promise<void> {
    await this.#write([{ type: 'put', key, value }]);
  }

  /** Removes `key`; resolves to whether it existed, once durable. */
  async delete(key: Key): Promise<boolean> {
    const write = await this.#write([{ type: 'del', key }]);
    return write.operations[0].existed;
  }

  /** Applies all operations atomically: after a crash, all or none of them. */
  async batch(operations: BatchOperation[]): Promise<void> {
    if (!Array.isArray(operations)) throw invalidArgument('batch takes an array of operations');
    await this.#write(operations);
  }

  /**
   * A writable stream storing a value of any size under `key` without
   * holding it in memory; the put commits (durably) when the stream finishes.
   * The bytes are stored as they are (no value encoding) and marked raw
   * (VALUE_FLAG_RAW), so get() and range() give them back as a Buffer
   * whatever the store's encoding.
   */
  createWriteStream(key: Key): Writable {
    return createValueWriteStream(this.#streamParts, key);
  }

  /**
   * A readable stream of the stored bytes of `key` (as written, no
   * decoding); a missing key errors the stream with ERR_KEY_NOT_FOUND.
   */
  createReadStream(key: Key): Readable {
    return createValueReadStream(this.#streamParts, key);
  }

  // ---- Stored form: what `ringstore dump` reads (tools/dump_command.ts) ----

  /**
   * Every entry in its stored form — the value's bytes as stored, not
   * decoded, and whether they are raw (createWriteStream) or made by the
   * value encoding — in key order, over a snapshot taken when iteration
   * starts. With `encoding: 'binary'` (put stores bytes as given) and
   * createWriteStream (raw bytes) it is the lossless copy path of dump/load.
   */
  storedEntries(): AsyncGenerator<StoredEntry> {
    return storedEntries(this.#streamParts);
  }

  /** Bytes of one block of this store. */
  get blockSize(): number {
    return this.#blockSize;
  }

  /** The value encoding recorded in the superblock when the store was made (an `encoding` option overrides it for this handle only). */
  get recordedEncoding(): ValueEncoding {
    this.#state.checkOpen();
    return encodingOfId(this.#checkpointer.superblock.valueEncodingId);
  }

  // ---- Maintenance ----

  /** Writes a checkpoint now and frees the WAL space it covers. */
  async checkpoint(): Promise<void> {
    this.#state.checkWritable();
    await this.#journal.flushCommits();
    await this.#journal.checkpoint();
  }

  /** Resolves when every write accepted so far is durable (sync: false makes this useful). */
  flush(): Promise<void> {
    // Not an async function: it resolves when the journal's flush does, not later.
    try {
      this.#state.checkOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#journal.flush();
  }

  /**
   * Finishes pending writes, writes a checkpoint, and releases the device
   * (and the ring, if the store started it). Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#state.beginClose();
    this.#closing = (async () => {
      try {
        await this.#journal.flushCommits().catch(() => undefined);
        if (this.#state.failure === undefined) {
          if (!this.#sync) await this.#journal.syncNow().catch(() => undefined);
          await this.#journal.checkpoint().catch(() => undefined);
          await this.#space.trimsSettled();
          // Every commit is in the checkpoint now: the next open reads no WAL.
          if (this.#state.failure === undefined) await this.#checkpointer.markClean(this.#journal.appliedSequence).catch((error: unknown) => this.#state.fail(error));
        }
      } finally {
        this.#state.markClosed();
        this.#journal.close();
        await this.#device.close().catch(() => undefined);
        await this.#ownedRing?.close();
      }
      // With sync: false, writes resolved before they were durable and close
      // is the promise that they are: if a flush failed (now, or earlier in
      // the background, with no write since to report it), say so.
      if (!this.#sync && this.#state.failure !== undefined) throw this.#state.failure;
    })();
    return this.#closing;
  }

  /**
   * Checks the store: every page of the tree (through its checksums in the
   * parents), every block of the data region exactly one of free,
   * referenced (by a page, a value or the free set), replaced and waiting
   * for the next checkpoint, waiting for its trim, or allocated to a write
   * in progress — no leak, no block both free and referenced, none
   * referenced twice — and every extent value against its checksum.
   * Writes may go on meanwhile: it checks the state of the moment it
   * starts. Rejects with ERR_STORE_CORRUPT naming what is wrong.
   */
  async verifyIntegrity(): Promise<{ keys: number; pages: number; extentValues: number; referencedBlocks: number; freeBlocks: number; trimPendingBlocks: number }> {
    this.#state.checkOpen();
    this.#journal.checkReserveAccounting();
    // A checkpoint being written holds blocks that are in no state yet; a
    // commit applying meanwhile may start the next one.
    while (this.#checkpointer.running) await this.#checkpointer.settled();
    // One synchronous snapshot of the tree and the bookkeeping; the read
    // epoch keeps every page and value of the snapshot from reuse while the
    // walk and the value reads go on.
    const snapshot = this.#tree.snapshot();
    const bookkeeping = this.#space.bookkeeping();
    const superblock = this.#checkpointer.superblock;
    const replaced = this.#tree.replacedPages();
    const epoch = this.#space.beginRead();
    try {
      const references: { extent: Extent; owner: string }[] = [
        ...superblock.freeSetExtents.map((extent) => ({ extent, owner: 'the free set' })),
        ...replaced.map((ref) => ({ extent: { startBlock: ref.block, blockCount: this.#pageBlocks }, owner: `the replaced page at block ${ref.block} (freed by the next checkpoint)` })),
      ];
      const values: { key: string; value: ExtentValue }[] = [];
      let keys = 0;
      let pages = 0;
      try {
        await this.#tree.walk(snapshot, (node, ref) => {
          if (ref !== undefined) {
            pages++;
            references.push({ extent: { startBlock: ref.block, blockCount: this.#pageBlocks }, owner: `the page at block ${ref.block}` });
          }
          if (node.kind !== 'leaf') return;
          keys += node.keys.length;
          node.entries.forEach((entry, i) => {
            if (!isExtentValue(entry.value)) return;
            values.push({ key: node.keys[i], value: entry.value });
            for (const extent of entry.value.extents) references.push({ extent, owner: `key ${JSON.stringify(node.keys[i].slice(0, 64))}` });
          });
        });
      } catch (error) {
        throw this.#state.closedOr(error);
      }
      if (keys !== snapshot.keyCount) throw new StoreCorruptError('page', `the tree holds ${keys} keys but counts ${snapshot.keyCount}`);
      const trimPendingBlocks = checkReferences(bookkeeping, references);
      for (const { value } of values) await this.#readValue({ isString: false, value });
      const sum = (extents: Extent[]): number => extents.reduce((total, extent) => total + extent.blockCount, 0);
      return {
        keys,
        pages,
        extentValues: values.length,
        referencedBlocks: sum(references.map((reference) => reference.extent)),
        freeBlocks: bookkeeping.freeBlockCount,
        trimPendingBlocks,
      };
    } finally {
      this.#space.endRead(epoch);
    }
  }

  /**
   * stats().lastCommitSequence without the rest of stats(): what an
   * iterator's snapshot of the store was taken at (ringstore/level compares
   * it on every seek).
   */
  get lastCommitSequence(): number {
    this.#state.checkOpen();
    return this.#journal.appliedSequence;
  }

  stats(): BlockStoreStats {
    this.#state.checkOpen();
    const superblock = this.#checkpointer.superblock;
    const blocksTotal = superblock.blockCount;
    const dataBlocks = blocksTotal - superblock.dataStartBlock;
    const commits = this.#journal.commitCount;
    return {
      keys: this.#tree.size,
      blocksTotal,
      blocksUsed: dataBlocks - this.#space.freeBlockCount,
      blocksFree: this.#space.freeBlockCount,
      cacheHits: this.#grid.cacheHits,
      cacheMisses: this.#grid.cacheMisses,
      cacheBytes: this.#grid.cacheSizeBytes,
      commits,
      lastCommitSequence: this.#journal.appliedSequence,
      meanRecordsPerCommit: commits > 0 ? this.#journal.committedRecordCount / commits : 0,
      walFill: this.#journal.walFill,
      trimsIssued: this.#space.trimsIssued,
      trimErrors: this.#space.trimErrors,
      pendingTrims: this.#space.trimPendingBlockCount,
      checkpoints: this.#checkpointer.checkpointCount,
      pagesWritten: this.#checkpointer.pagesWritten,
      treeHeight: this.#tree.height,
      ...this.#tree.cacheStats(),
      dirtyPages: this.#tree.dirtyNodeCountMax,
    };
  }

  // ---- The write path ----

  #write(operations: BatchOperation[]): Promise<PendingWrite> {
    const write: QueuedWrite = { operations: [], dataWrites: [], dataBlocks: [], payloadBytes: 16 };
    try {
      this.#state.checkWritable();
      // Validate and encode everything first, so a bad operation refuses the
      // batch before any block is allocated.
      const encoded: { keyString: string; isString: boolean; bytes: Uint8Array | undefined }[] = [];
      let inlineBytes = 0;
      for (const operation of operations) {
        if (operation === null || typeof operation !== 'object') throw invalidArgument('batch operations must be objects');
        // Each field read once: a getter cannot hand validation one key and the record another.
        let type: unknown, key: unknown, value: unknown;
        try {
          ({ type, key, value } = operation as { type: unknown; key: unknown; value?: unknown });
        } catch (error) {
          throw unreadableArgument('a batch operation', error);
        }
        const keyString = toKeyString(key);
        const isString = typeof key === 'string';
        if (type === 'del') {
          encoded.push({ keyString, isString, bytes: undefined });
          write.payloadBytes += 4 + keyString.length;
        } else if (type === 'put') {
          const bytes = this.#codec.encode(value);
          if (bytes.length > VALUE_SIZE_MAX) throw new StoreError('ERR_VALUE_TOO_LARGE', `value of ${bytes.length} bytes; a put stores at most ${VALUE_SIZE_MAX} (use createWriteStream)`);
          encoded.push({ keyString, isString, bytes });
          if (bytes.length <= this.#inlineValueMax) {
            inlineBytes += bytes.length;
            write.payloadBytes += 8 + keyString.length + bytes.length;
          } else {
            write.payloadBytes += 24 + keyString.length + VALUE_EXTENTS_PER_PUT_MAX * 12;
          }
        } else {
          throw invalidArgument(`batch operation type must be 'put' or 'del', got ${describeArgument(type)}`, 'range');
        }
      }
      if (write.payloadBytes > this.#journal.commitPayloadMax) {
        throw new StoreError('ERR_VALUE_TOO_LARGE', `this write needs up to ${write.payloadBytes} bytes of WAL; one commit holds at most ${this.#journal.commitPayloadMax} (use a larger walSizeBytes or smaller batches)`);
      }
      // A batch with a put counts all its operations: its deletes dirty pages too.
      if (encoded.some((operation) => operation.bytes !== undefined)) this.#space.checkRoomForPuts(encoded.length, write.payloadBytes);
      // Inline values are copied (the caller may reuse its buffers once the
      // call returns) into one buffer per write: one allocation, not one per value.
      const inline = new Uint8Array(inlineBytes);
      let inlineOffset = 0;
      for (const { keyString, isString, bytes } of encoded) {
        if (bytes === undefined) {
          write.operations.push({ keyString, isString, value: undefined, existed: false });
        } else if (bytes.length <= this.#inlineValueMax) {
          inline.set(bytes, inlineOffset);
          const copy = inline.subarray(inlineOffset, inlineOffset + bytes.length);
          inlineOffset += bytes.length;
          write.operations.push({ keyString, isString, value: { kind: 'inline', bytes: copy }, existed: false });
        } else {
          const extents = this.#space.allocate(Math.ceil(bytes.length / this.#blockSize), VALUE_EXTENTS_PER_PUT_MAX);
          write.payloadBytes -= (VALUE_EXTENTS_PER_PUT_MAX - extents.length) * 12;
          write.dataWrites.push(...this.#grid.writeExtentData(bytes, extents, write.dataBlocks));
          write.operations.push({ keyString, isString, value: { kind: 'extents', length: bytes.length, crc: crc32c(bytes), extents }, existed: false });
        }
      }
    } catch (error) {
      // The caller learns of the refusal once the space is back.
      return this.#journal.abandon(write).then(() => Promise.reject(error));
    }
    return this.#journal.enqueue(write);
  }

  // ---- Reading values ----

  /**
   * The value a caller gets for stored bytes: a raw (stream-written) value
   * as a Buffer, whatever the encoding; anything else through the encoding.
   * Bytes the encoding cannot decode passed their checksum, so they were
   * written so (another encoding, a bug) or damaged in memory: the store is
   * corrupt at this key, not the caller's call wrong.
   */
  #decodeValue(keyString: string, entry: IndexEntry, bytes: Uint8Array, fresh: boolean): unknown {
    const value = entry.value;
    if (isExtentValue(value) && value.raw === true) return fresh ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.from(bytes);
    try {
      return this.#codec.decode(bytes, fresh);
    } catch (error) {
      const key = describeKey(keyStringToKey(keyString, entry.isString));
      const reason = `the value of key ${key} (${bytes.length} bytes) does not decode as ${this.#codec.name} (written with another encoding?): ${error instanceof Error ? error.message : String(error)}`;
      throw isExtentValue(value)
        ? new StoreCorruptError('data', reason, value.extents[0].startBlock, { cause: error })
        : new StoreCorruptError('record', reason, undefined, { cause: error });
    }
  }

  /** Reads an extent value; a read the store's close cut short is ERR_STORE_CLOSED. */
  async #readValue(entry: IndexEntry): Promise<Uint8Array> {
    try {
      return await this.#grid.readValue(entry);
    } catch (error) {
      throw this.#state.closedOr(error);
    }
  }
}

/** The encoding a superblock names (decodeSuperblock accepts only known ids). */
function encodingOfId(id: number): ValueEncoding {
  const found = (Object.keys(VALUE_ENCODING_IDS) as ValueEncoding[]).find((name) => VALUE_ENCODING_IDS[name] === id);
  if (found === undefined) throw new Error(`ringstore: no value encoding has id ${id}`);
  return found;
}
