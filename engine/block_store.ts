// BlockStore: the embedded key/value store.
//
// Writes: every put/delete/batch becomes records in the next WAL commit.
// Group commit: when a commit starts it takes every record waiting; while it
// is in flight new records wait for the next one. A commit writes the data
// blocks of its extent values first, then its WAL blocks linked to an
// fdatasync, through the io_uring actor. Only then is it applied to the
// in-memory index and acknowledged, so readers only ever see durable data.
//
// Space: extents freed by a commit (values overwritten or deleted) are
// trimmed only after that commit is durable and after every read that
// started before it has finished, and return to the allocator only after the
// trim completed — so a trim never zeroes reused blocks and a reader never
// sees a block reused under it.
//
// Failure: any IO error of a commit, trim or checkpoint moves the store to
// ERR_STORE_FAILED: the failing and all later writes are rejected (no retry
// that could pretend an fdatasync succeeded); reads of durable data still
// work; reopening recovers the durable prefix.
import { randomInt } from 'node:crypto';
import { Readable, Writable } from 'node:stream';

import { ByteWriter } from '../format/byte_writer.js';
import { beginCommitPayload, finishCommitPayload } from '../format/commit.js';
import { BLOCK_SIZE_MAX, FORMAT_VERSION, FREE_SET_EXTENTS_MAX, SUPERBLOCK_HEAD_SLOT_COUNT, SUPERBLOCK_SIZE, SUPERBLOCK_SLOT_COUNT, VALUE_ENCODING_IDS, VALUE_EXTENTS_MAX } from '../format/constants.js';
import { crc32c } from '../format/crc32c.js';
import type { Extent } from '../format/extent.js';
import { encodeFrame, frameBlockCount } from '../format/frame.js';
import { encodeFreeSetPayload } from '../format/free_set.js';
import { branchChildBytes, leafEntryBytes, pageCapacityBytes, pageSizeFor } from '../format/page.js';
import { writeDelete, writePut, type ExtentValue, type StoredValue } from '../format/records.js';
import { encodeSuperblock, freeSetPayloadBytes, superblockSlotBlock, superblockSlotsFor, type Superblock } from '../format/superblock.js';
import { allocAligned } from '../native/aligned_buffer.js';
import { IoUringActor } from '../native/io_uring_actor.js';
import { checkBlockDevice, type BlockDevice } from './block_device.js';
import { BlockCache } from './block_cache.js';
import { BufferPool } from './buffer_pool.js';
import { ExtentAllocator } from './extent_allocator.js';
import { keyStringToBytes, keyStringToKey, toKeyString, type Key } from './key_codec.js';
import { NOT_CACHED, PageTree } from './page_tree.js';
import type { PageRef } from './tree_node.js';
import { probeSuperblocks, readLarge, recoverStore, type SuperblockProbe } from './recovery.js';
import { RingBlockDevice } from './ring_block_device.js';
import { invalidArgument, StoreCorruptError, StoreError } from './store_error.js';
import { openStoreFile, type OpenedStoreFile } from './store_file.js';
import { isExtentValue, type IndexEntry } from './store_index.js';
import { TreePages } from './tree_pages.js';
import { valueCodec, type ValueCodec, type ValueEncoding } from './value_codec.js';
import { WalSpace } from './wal_space.js';

export interface BlockStoreOptions {
  /** Create the store (and the file) if there is none. Default false. */
  create?: boolean;
  /** Size of a new store file. Default DEFAULT_STORE_SIZE_BYTES; block devices use their size. */
  sizeBytes?: number;
  /** Block size of a new store: a power of two from 512 to 65536, a multiple of the device's alignment. Default 4096. */
  blockSize?: number;
  /** Bytes of data blocks kept in memory. Default DEFAULT_CACHE_SIZE_BYTES. */
  cacheSizeBytes?: number;
  /** WAL region of a new store. Default: an eighth of the store, at most DEFAULT_WAL_SIZE_BYTES. */
  walSizeBytes?: number;
  /** How values are turned into bytes. Default 'msgpack'. */
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
export const DEFAULT_WAL_SIZE_BYTES = 64 << 20;
export const DEFAULT_BLOCK_SIZE = 4096;
/** The longest a commit's fdatasync waits with sync: false. */
export const SYNC_DEFER_MS = 100;
/** A checkpoint starts when the WAL is this full. */
export const CHECKPOINT_WAL_FILL = 0.5;
/** One commit takes at most this share of the WAL, so a checkpoint always makes room for it. */
const COMMIT_WAL_SHARE_MAX = 0.25;
/** Extents one value may be split into when free space is fragmented. */
const VALUE_EXTENTS_PER_PUT_MAX = 64;
/** Largest value one put may store (streams have no limit): one transfer. */
export const VALUE_SIZE_MAX = 1 << 30;
/** Bytes a write stream buffers before it writes them to its extents. */
const STREAM_CHUNK_BYTES = 1 << 20;
/**
 * Values at least this large bypass the block cache in both directions
 * (written from and read into one aligned buffer): caching a blob evicts many
 * small hot blocks for one read that is usually sequential anyway.
 */
const LARGE_VALUE_BYTES = 64 << 10;
/** Zeroes written per IO when a new store's WAL region is initialised. */
const WAL_ZERO_CHUNK_BYTES = 8 << 20;
/** Extents trimmed in one batch. */
const TRIM_BATCH_MAX = 256;
/** Room kept for the next checkpoint, relative to the index's current record bytes. */
const CHECKPOINT_RESERVE_SLACK_BLOCKS = 8;
/**
 * Pages kept free beyond what queued writes may need, so that a store full
 * of puts still takes deletes: their checkpoint rewrites a few paths
 * (~4 pages each) before it frees anything.
 */
const DELETE_RESERVE_PAGES = 64;
/** The share of cacheSizeBytes that holds tree pages; the rest caches extent-value blocks. */
const PAGE_CACHE_SHARE = 0.75;
/**
 * Dirty pages (pinned in memory until a checkpoint writes them) may take up
 * to this share of cacheSizeBytes before a checkpoint starts on its own.
 */
const DIRTY_CACHE_SHARE = 0.5;
/** Pages a checkpoint encodes between yields to the event loop (~2 ms of work), so commits go on meanwhile. */
const CHECKPOINT_ENCODE_SLICE_PAGES = 64;
/** Page writes a checkpoint keeps in flight. */
const CHECKPOINT_WRITES_IN_FLIGHT_MAX = 256;
/** The value encoding of a new store when open() is given none. */
const DEFAULT_ENCODING: ValueEncoding = 'msgpack';

/** The store's geometry as the tree's page reads check it (blockCount may grow). */
interface TreeGeometryState {
  blockSize: number;
  pageSize: number;
  storeTag: number;
  dataStartBlock: number;
  blockCount: number;
}

/** The encoding a superblock names (decodeSuperblock accepts only known ids). */
function encodingOfId(id: number): ValueEncoding {
  const found = (Object.keys(VALUE_ENCODING_IDS) as ValueEncoding[]).find((name) => VALUE_ENCODING_IDS[name] === id);
  if (found === undefined) throw new Error(`ringstore: no value encoding has id ${id}`);
  return found;
}

interface PendingOperation {
  keyString: string;
  isString: boolean;
  /** The value to store, or undefined for a delete. */
  value: StoredValue | undefined;
  /** Set when the commit is applied: whether the key had a value before this operation. */
  existed: boolean;
}

interface PendingWrite {
  operations: PendingOperation[];
  /** An empty commit that records durability after a sync: false flush; written with RWF_DSYNC. */
  durableMarker?: boolean;
  /** Data writes of extent values that must complete before the commit's WAL write. */
  dataWrites: Promise<void>[];
  /** Pool buffers holding extent data, handed to the cache once durable. */
  dataBlocks: { blockIndex: number; buffer: Buffer }[];
  payloadBytes: number;
  resolve: (write: PendingWrite) => void;
  reject: (error: Error) => void;
}

interface FreedExtent {
  extent: Extent;
  /** Reads that began at or before this epoch may still use the extent. */
  epoch: number;
}

export class BlockStore {
  readonly path: string;
  readonly #device: BlockDevice;
  readonly #ownedRing: IoUringActor | undefined;
  readonly #codec: ValueCodec;
  readonly #sync: boolean;
  readonly #blockSize: number;
  readonly #inlineValueMax: number;
  readonly #commitPayloadMax: number;
  #superblock: Superblock;
  /** The page tree: the checkpoint's pages on disk, the commits since in dirty pages. */
  readonly #tree: PageTree;
  readonly #treePages: TreePages;
  /** Blocks of one tree page (a page is max(blockSize, 4096) bytes). */
  readonly #pageBlocks: number;
  /** Dirty pages' memory at which a checkpoint starts on its own. */
  readonly #dirtyBytesMax: number;
  #allocator: ExtentAllocator;
  readonly #walSpace: WalSpace;
  readonly #pool: BufferPool;
  readonly #cache: BlockCache;
  readonly #commitWriter = new ByteWriter(1 << 16);

  #nextSequence: number;
  /** Highest sequence known durable (fdatasync completed). */
  #durableSequence: number;
  /** Highest durableSequence a written commit records. */
  #recordedDurableSequence = 0;
  /** Highest sequence written and applied (== durable with sync: true). */
  #appliedSequence: number;
  #pending: PendingWrite[] = [];
  #commitLoop: Promise<void> | undefined;
  /** Cancels the scheduled deferred fdatasync (sync: false), if one is scheduled. */
  #deferredSync: (() => void) | undefined;
  #deferredSyncPromise: Promise<void> | undefined;
  /** Extents freed by commits that are written but not yet durable (sync: false). */
  #freesAwaitingDurability: { sequence: number; extents: Extent[] }[] = [];

  #readEpoch = 0;
  readonly #activeReads = new Map<number, number>();
  #freed: FreedExtent[] = [];
  /** Extents whose trim is in progress: neither referenced nor free yet. */
  #trimming: Extent[] = [];
  #trimLoop: Promise<void> | undefined;
  #trimsIssued = 0;
  #trimErrors = 0;
  #checkpointing: Promise<void> | undefined;
  #checkpoints = 0;
  #commits = 0;
  #committedRecords = 0;

  #failure: StoreError | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;

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
    this.#superblock = superblock;
    this.#blockSize = superblock.blockSize;
    this.#inlineValueMax = superblock.blockSize / 2;
    this.#tree = tree;
    this.#treePages = treePages;
    this.#pageBlocks = pageSizeFor(superblock.blockSize) / superblock.blockSize;
    this.#dirtyBytesMax = Math.max(pageSizeFor(superblock.blockSize) * 64, Math.floor(options.cacheSizeBytes * DIRTY_CACHE_SHARE));
    this.#nextSequence = nextSequence;
    this.#durableSequence = nextSequence - 1;
    this.#appliedSequence = nextSequence - 1;
    this.#allocator = allocator;
    this.#walSpace = new WalSpace(superblock.walBlockCount, liveCommits.length > 0 ? liveCommits[0].startBlock : walHeadBlock);
    for (const commit of liveCommits) this.#walSpace.append(commit.sequence, commit.startBlock, commit.blockCount);
    if (this.#walSpace.headBlock !== walHeadBlock) {
      // Recovery ended the log at a dropped commit: that is where writing resumes.
      throw new Error(`ringstore: WAL head ${this.#walSpace.headBlock} disagrees with recovery's ${walHeadBlock}`);
    }
    const walPayloadPerBlock = superblock.blockSize - 32;
    this.#commitPayloadMax = Math.floor(superblock.walBlockCount * COMMIT_WAL_SHARE_MAX) * walPayloadPerBlock;
    const dataCacheBytes = Math.floor(options.cacheSizeBytes * (1 - PAGE_CACHE_SHARE));
    const cacheBlocks = Math.floor(dataCacheBytes / superblock.blockSize);
    this.#pool = new BufferPool(superblock.blockSize, device.ioAlignment, cacheBlocks + 1024);
    this.#cache = new BlockCache(this.#pool, dataCacheBytes);
  }

  /**
   * Opens (or, with `create`, makes) the store at `path`: a regular file or
   * a raw block device. Recovers from a crash: newest valid superblock,
   * checkpoint, WAL replay up to the first incomplete commit.
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
        storeFile = await openStoreFile(ring, path, { create, sizeBytes });
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
      // created to; an explicit one overrides it (to read raw bytes, say).
      const encoding = options.encoding ?? encodingOfId(superblock.valueEncodingId);
      const geometryOf = (): TreeGeometryState => geometry;
      const geometry: TreeGeometryState = {
        blockSize: superblock.blockSize,
        pageSize: pageSizeFor(superblock.blockSize),
        storeTag: superblock.storeTag,
        dataStartBlock: superblock.dataStartBlock,
        blockCount: superblock.blockCount,
      };
      const treePages = new TreePages(device, geometryOf);
      const tree = new PageTree(
        {
          io: treePages,
          capacityBytes: pageCapacityBytes(geometry.pageSize),
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
      if (recovered.slotsToRepair.length > 0) await store.#writeSuperblockSlots(recovered.superblock, recovered.slotsToRepair);
      if (recovered.staleBlocks.length > 0) await store.#eraseWalBlocks(recovered.staleBlocks);
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
    const encoding = options.encoding ?? DEFAULT_ENCODING;
    valueCodec(encoding); // validates
    if (options.walSizeBytes !== undefined) checkSize(options.walSizeBytes, 'walSizeBytes', 0, 0);
    if (options.ring !== undefined && !(options.ring instanceof IoUringActor)) throw invalidArgument('ring must be an IoUringActor');
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
      this.#checkOpen();
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
      this.#checkOpen();
      const keyString = toKeyString(key);
      const entry = this.#tree.getCached(keyString);
      if (entry !== NOT_CACHED) return Promise.resolve(entry !== undefined);
      return this.#lookUp(keyString, async (found) => found !== undefined);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** get() when the key's leaf is not in memory: the lookup and the value's read under one read epoch. */
  #getUncached(keyString: string): Promise<unknown> {
    return this.#lookUp(keyString, async (entry) => {
      if (entry === undefined) return undefined;
      if (entry.value instanceof Uint8Array) return this.#decodeValue(keyString, entry, entry.value, false);
      return this.#decodeValue(keyString, entry, await this.#readValue(entry), true);
    });
  }

  /**
   * Looks `keyString` up through the page cache and the device, then runs
   * `use` on its entry, all under one read epoch: neither the pages read
   * nor the value's extents can be freed and reused in between.
   */
  async #lookUp<T>(keyString: string, use: (entry: IndexEntry | undefined) => Promise<T>): Promise<T> {
    const epoch = this.#beginRead();
    try {
      let entry: IndexEntry | undefined;
      try {
        entry = await this.#tree.get(keyString);
      } catch (error) {
        throw this.#closedOr(error);
      }
      return await use(entry);
    } finally {
      this.#endRead(epoch);
    }
  }

  /**
   * Entries in key order (bytewise), over a snapshot taken when iteration
   * starts: writes made meanwhile are not seen. Bounds as in abstract-level:
   * `gte` takes precedence over `gt` and `lte` over `lt`; every bound given
   * is validated, the one that yields too.
   */
  async *range(options: RangeOptions = {}): AsyncGenerator<[Key, unknown]> {
    this.#checkOpen();
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
    const epoch = this.#beginRead();
    try {
      let yielded = 0;
      if (yielded >= limit) return;
      const entries = this.#tree.entries(snapshot, { low, lowInclusive, high, highInclusive, reverse: reverse === true });
      for await (const [keyString, entry] of entries) {
        // A caller may go on iterating after close(): that is a call after
        // close, answered as one (the device is gone).
        this.#checkOpen();
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
      this.#endRead(epoch);
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
    this.#checkWritable();
    const keyString = toKeyString(key);
    const isString = typeof key === 'string';
    const blockSize = this.#blockSize;
    const extents: Extent[] = [];
    let crc = 0;
    let length = 0;
    let chunks: Buffer[] = [];
    let chunkBytes = 0;
    const writes: Promise<void>[] = [];
    const dataBlocks: { blockIndex: number; buffer: Buffer }[] = [];
    const flushChunk = (final: boolean): void => {
      const whole = final ? chunkBytes : Math.floor(chunkBytes / blockSize) * blockSize;
      if (whole === 0) return;
      const bytes = Buffer.concat(chunks, chunkBytes);
      const head = bytes.subarray(0, whole);
      crc = crc32c(head, crc);
      length += whole;
      const allocated = this.#allocate(Math.ceil(whole / blockSize), VALUE_EXTENTS_PER_PUT_MAX);
      extents.push(...allocated);
      if (extents.length > VALUE_EXTENTS_MAX) throw new StoreError('ERR_STORE_FULL', 'free space is too fragmented for this stream');
      writes.push(...this.#writeExtentData(head, allocated, dataBlocks));
      const rest = bytes.subarray(whole);
      chunks = rest.length > 0 ? [Buffer.from(rest)] : [];
      chunkBytes = rest.length;
    };
    let handedOver = false;
    const releaseAll = (): void => {
      if (handedOver) return;
      handedOver = true;
      const value: StoredValue = { kind: 'extents', length: Math.max(length, 1), crc, extents: [...extents], raw: true };
      void this.#abandon({ operations: extents.length > 0 ? [{ keyString, isString, value, existed: false }] : [], dataWrites: writes, dataBlocks, payloadBytes: 0 });
    };
    return new Writable({
      highWaterMark: STREAM_CHUNK_BYTES,
      write: (chunk: Buffer, _encoding, callback) => {
        try {
          this.#checkWritable();
          chunks.push(chunk);
          chunkBytes += chunk.length;
          if (chunkBytes >= STREAM_CHUNK_BYTES) flushChunk(false);
          callback();
        } catch (error) {
          callback(error as Error);
        }
      },
      final: (callback) => {
        try {
          this.#checkWritable();
          flushChunk(true);
          if (length === 0) {
            // An empty stream still takes one (zeroed) block: only an extent
            // value can carry the raw flag, and it has at least one block.
            const allocated = this.#allocate(1, 1);
            extents.push(...allocated);
            writes.push(...this.#writeExtentData(new Uint8Array(0), allocated, dataBlocks));
          }
        } catch (error) {
          releaseAll();
          callback(error as Error);
          return;
        }
        const value: StoredValue = { kind: 'extents', length, crc, extents: [...extents], raw: true };
        const payloadBytes = 64 + keyString.length + extents.length * 12;
        if (payloadBytes > this.#commitPayloadMax) {
          releaseAll();
          callback(new StoreError('ERR_VALUE_TOO_LARGE', `the stream's ${extents.length} extents need ${payloadBytes} bytes of WAL; one commit holds at most ${this.#commitPayloadMax}`));
          return;
        }
        // From here the commit path owns the extents (and abandons them itself if it fails).
        handedOver = true;
        this.#enqueue({
          operations: [{ keyString, isString, value, existed: false }],
          dataWrites: writes,
          dataBlocks,
          payloadBytes,
        }).then(
          () => callback(),
          (error: Error) => callback(error),
        );
      },
      destroy: (error, callback) => {
        // Destroyed before its put was handed to a commit (with or without an
        // error): the blocks written so far belong to nobody.
        releaseAll();
        callback(error);
      },
    });
  }

  /**
   * A readable stream of the stored bytes of `key` (as written, no
   * decoding); a missing key errors the stream with ERR_KEY_NOT_FOUND.
   */
  createReadStream(key: Key): Readable {
    this.#checkOpen();
    const keyString = toKeyString(key);
    const isStringKey = typeof key === 'string';
    const chunkBlocks = Math.max(1, Math.floor(STREAM_CHUNK_BYTES / this.#blockSize));
    // Each chunk is a call on the store: after close() it is refused, and a
    // read that close() cut short says so (not the device's ERR_FILE_CLOSED).
    const readBlocks = async (start: number, count: number): Promise<Uint8Array> => {
      this.#checkOpen();
      try {
        return await this.#readBlocks(start, count);
      } catch (error) {
        throw this.#closedOr(error);
      }
    };
    const lookUp = async (): Promise<IndexEntry | undefined> => {
      const cached = this.#tree.getCached(keyString);
      if (cached !== NOT_CACHED) return cached;
      try {
        return await this.#tree.get(keyString);
      } catch (error) {
        throw this.#closedOr(error);
      }
    };
    // The pin starts with the stream: the entry is looked up under it, so
    // its extents cannot be freed between the lookup and the reads.
    const epoch = this.#beginRead();
    let pinned = true;
    const endRead = (): void => {
      if (!pinned) return;
      pinned = false;
      this.#endRead(epoch);
    };
    async function* chunks(): AsyncGenerator<Uint8Array> {
      try {
        const entry = await lookUp();
        if (entry === undefined) throw new StoreError('ERR_KEY_NOT_FOUND', `no value under key ${describeKey(keyStringToKey(keyString, isStringKey))}`);
        if (entry.value instanceof Uint8Array) {
          yield Buffer.from(entry.value);
          return;
        }
        const value = entry.value;
        let remaining = value.length;
        let crc = 0;
        for (const extent of value.extents) {
          for (let offset = 0; offset < extent.blockCount; offset += chunkBlocks) {
            const bytes = await readBlocks(extent.startBlock + offset, Math.min(chunkBlocks, extent.blockCount - offset));
            const used = bytes.subarray(0, Math.min(remaining, bytes.length));
            remaining -= used.length;
            crc = crc32c(used, crc);
            // The last chunk is held back until the whole value checked out,
            // so a consumer never reaches 'end' on wrong data.
            if (remaining === 0 && crc !== value.crc) {
              throw new StoreCorruptError(
                'data',
                `value of ${value.length} bytes has checksum 0x${crc.toString(16)}, its record says 0x${value.crc.toString(16)}`,
                value.extents[0].startBlock,
              );
            }
            yield used;
          }
        }
      } finally {
        endRead();
      }
    }
    const stream = Readable.from(chunks(), { objectMode: false });
    // A stream destroyed before its first read never runs the generator, so
    // its finally never releases the pin: 'close' always comes.
    stream.once('close', endRead);
    return stream;
  }

  // ---- Maintenance ----

  /** Writes a checkpoint now and frees the WAL space it covers. */
  async checkpoint(): Promise<void> {
    this.#checkWritable();
    await this.#flushCommits();
    await this.#runCheckpoint();
  }

  /** Resolves when every write accepted so far is durable (sync: false makes this useful). */
  async flush(): Promise<void> {
    this.#checkOpen();
    await this.#flushCommits();
    if (!this.#sync) {
      await this.#syncNow();
      if (this.#failure === undefined && this.#durableSequence > this.#recordedDurableSequence) {
        // Nothing on disk says the commits just flushed are durable until a
        // later commit records it; until then damage to one of them would
        // pass for a torn tail. A durable empty commit records it now.
        await this.#enqueue({ operations: [], dataWrites: [], dataBlocks: [], payloadBytes: 16, durableMarker: true });
      }
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Finishes pending writes, writes a checkpoint, and releases the device
   * (and the ring, if the store started it). Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closing = (async () => {
      try {
        await this.#flushCommits().catch(() => undefined);
        if (this.#failure === undefined) {
          if (!this.#sync) await this.#syncNow().catch(() => undefined);
          await this.#runCheckpoint().catch(() => undefined);
          await this.#trimLoop?.catch(() => undefined);
        }
      } finally {
        this.#closed = true;
        this.#deferredSync?.();
        this.#deferredSync = undefined;
        await this.#device.close().catch(() => undefined);
        await this.#ownedRing?.close();
      }
      // With sync: false, writes resolved before they were durable and close
      // is the promise that they are: if a flush failed (now, or earlier in
      // the background, with no write since to report it), say so.
      if (!this.#sync && this.#failure !== undefined) throw this.#failure;
    })();
    return this.#closing;
  }

  /**
   * Checks the store while no write is in flight: every block of the data
   * region is exactly one of free, referenced (by a value or the checkpoint)
   * or waiting for its trim — no leak, no block both free and referenced, no
   * block referenced twice — and every extent value matches its checksum.
   * Rejects with ERR_STORE_CORRUPT naming what is wrong.
   */
  async verifyIntegrity(): Promise<{ keys: number; extentValues: number; referencedBlocks: number; freeBlocks: number; trimPendingBlocks: number; pages: number }> {
    this.#checkOpen();
    this.#checkReserveAccounting();
    // A checkpoint in flight holds blocks that are in neither state yet.
    await this.#checkpointing?.catch(() => undefined);
    // One synchronous snapshot of the bookkeeping and of the tree (writes may
    // go on): blocks allocated to writes not yet committed count as in use,
    // and so do the pages the next checkpoint will replace.
    const snapshot = this.#tree.snapshot();
    const epoch = this.#beginRead();
    try {
      const freeExtents = this.#allocator.freeExtents();
      const freeBlockCount = this.#allocator.freeBlockCount;
      const held: { extent: Extent; owner: string }[] = [
        ...this.#superblock.freeSetExtents.map((extent) => ({ extent, owner: 'the free set' })),
        ...this.#tree.pendingGarbageBlocks().map((block) => ({ extent: { startBlock: block, blockCount: this.#pageBlocks }, owner: 'a replaced page awaiting the next checkpoint' })),
        ...[...this.#freed.map((freed) => freed.extent), ...this.#trimming, ...this.#freesAwaitingDurability.flatMap((free) => free.extents)].map((extent) => ({ extent, owner: 'a trim in progress' })),
        ...[...this.#uncommitted].map((extent) => ({ extent, owner: 'a write in progress' })),
      ];
      const trimPendingBlocks = held.filter((reference) => reference.owner === 'a trim in progress').reduce((sum, reference) => sum + reference.extent.blockCount, 0);
      const references: { extent: Extent; owner: string }[] = [];
      const values: { key: string; value: ExtentValue }[] = [];
      let keys = 0;
      let pages = 0;
      await this.#tree.walk(snapshot, (page, ref) => {
        if (ref !== undefined) {
          pages++;
          references.push({ extent: { startBlock: ref.block, blockCount: this.#pageBlocks }, owner: `the page at block ${ref.block}` });
        }
        if (page.kind !== 'leaf') return;
        keys += page.keys.length;
        page.entries.forEach((entry, i) => {
          if (!isExtentValue(entry.value)) return;
          values.push({ key: page.keys[i], value: entry.value });
          for (const extent of entry.value.extents) references.push({ extent, owner: `key ${JSON.stringify(page.keys[i].slice(0, 64))}` });
        });
      });
      // The allocator's constructor refuses overlaps and out-of-range extents.
      const rebuilt = new ExtentAllocator(this.#superblock.dataStartBlock, this.#superblock.blockCount, [...references, ...held]);
      const freeSnapshot = ExtentAllocator.fromFreeExtents(this.#superblock.dataStartBlock, this.#superblock.blockCount, freeExtents);
      for (const { extent, owner } of references) {
        if (freeSnapshot.isUsed(extent)) continue;
        throw new StoreCorruptError('data', `blocks ${extent.startBlock}+${extent.blockCount} are referenced by ${owner} and also free`, extent.startBlock);
      }
      if (rebuilt.freeBlockCount !== freeBlockCount) {
        throw new StoreCorruptError(
          'data',
          `${freeBlockCount} blocks are free but ${rebuilt.freeBlockCount} are unreferenced: ${rebuilt.freeBlockCount - freeBlockCount} blocks leaked`,
        );
      }
      if (keys !== snapshot.keyCount) throw new StoreCorruptError('page', `the tree holds ${keys} keys but counts ${snapshot.keyCount}`);
      // The read epoch keeps every value of the snapshot from being reused meanwhile.
      for (const { value } of values) await this.#readValueBytes({ isString: false, value });
      const sum = (extents: Extent[]): number => extents.reduce((total, extent) => total + extent.blockCount, 0);
      return {
        keys,
        extentValues: values.length,
        referencedBlocks: sum(references.map((reference) => reference.extent)),
        freeBlocks: freeBlockCount,
        trimPendingBlocks,
        pages,
      };
    } finally {
      this.#endRead(epoch);
    }
  }

  /**
   * stats().lastCommitSequence without the rest of stats(): what an
   * iterator's snapshot of the store was taken at (ringstore/level compares
   * it on every seek).
   */
  get lastCommitSequence(): number {
    this.#checkOpen();
    return this.#appliedSequence;
  }

  stats(): BlockStoreStats {
    this.#checkOpen();
    const blocksTotal = this.#superblock.blockCount;
    const dataBlocks = blocksTotal - this.#superblock.dataStartBlock;
    const pendingTrims =
      this.#freed.reduce((sum, freed) => sum + freed.extent.blockCount, 0) + this.#trimming.reduce((sum, extent) => sum + extent.blockCount, 0);
    return {
      keys: this.#tree.size,
      blocksTotal,
      blocksUsed: dataBlocks - this.#allocator.freeBlockCount,
      blocksFree: this.#allocator.freeBlockCount,
      cacheHits: this.#cache.hits,
      cacheMisses: this.#cache.misses,
      cacheBytes: this.#cache.sizeBytes,
      commits: this.#commits,
      lastCommitSequence: this.#appliedSequence,
      meanRecordsPerCommit: this.#commits > 0 ? this.#committedRecords / this.#commits : 0,
      walFill: this.#walSpace.fill,
      trimsIssued: this.#trimsIssued,
      trimErrors: this.#trimErrors,
      pendingTrims,
      checkpoints: this.#checkpoints,
    };
  }

  // ---- The write path ----

  #write(operations: BatchOperation[]): Promise<PendingWrite> {
    const write: Omit<PendingWrite, 'resolve' | 'reject'> = { operations: [], dataWrites: [], dataBlocks: [], payloadBytes: 16 };
    try {
      this.#checkWritable();
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
      if (write.payloadBytes > this.#commitPayloadMax) {
        throw new StoreError('ERR_VALUE_TOO_LARGE', `this write needs up to ${write.payloadBytes} bytes of WAL; one commit holds at most ${this.#commitPayloadMax} (use a larger walSizeBytes or smaller batches)`);
      }
      const putCount = encoded.reduce((count, operation) => count + (operation.bytes === undefined ? 0 : 1), 0);
      if (putCount > 0) this.#checkRoomForPuts(putCount);
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
          const extents = this.#allocate(Math.ceil(bytes.length / this.#blockSize), VALUE_EXTENTS_PER_PUT_MAX);
          write.payloadBytes -= (VALUE_EXTENTS_PER_PUT_MAX - extents.length) * 12;
          write.dataWrites.push(...this.#writeExtentData(bytes, extents, write.dataBlocks));
          write.operations.push({ keyString, isString, value: { kind: 'extents', length: bytes.length, crc: crc32c(bytes), extents }, existed: false });
        }
      }
    } catch (error) {
      // The caller learns of the refusal once the space is back.
      return this.#abandon(write).then(() => Promise.reject(error));
    }
    return this.#enqueue(write);
  }

  /**
   * Gives back what a write that will never commit took: its extents (once
   * its data writes have settled, so no late write lands on reused blocks)
   * and its pool buffers. No durable record references them: no trim needed.
   */
  async #abandon(write: Omit<PendingWrite, 'resolve' | 'reject'>): Promise<void> {
    const extents = write.operations.flatMap((operation) => (operation.value?.kind === 'extents' ? operation.value.extents : []));
    const blocks = write.dataBlocks.splice(0);
    await Promise.allSettled(write.dataWrites);
    for (const { buffer } of blocks) this.#pool.give(buffer);
    this.#freeExtents(extents);
  }

  /**
   * Returns extents to the allocator. Their cached blocks are forgotten now,
   * not when they were released: a read that started before the release may
   * have put them back in the cache since.
   */
  #freeExtents(extents: Extent[]): void {
    for (const extent of extents) {
      this.#uncommitted.delete(extent);
      this.#cache.forget(extent.startBlock, extent.blockCount);
      this.#allocator.free(extent);
    }
  }

  #enqueue(write: Omit<PendingWrite, 'resolve' | 'reject'>): Promise<PendingWrite> {
    const promise = new Promise<PendingWrite>((resolve, reject) => {
      if (this.#failure !== undefined) {
        const failure = this.#failure;
        void this.#abandon(write).then(() => reject(failure));
        return;
      }
      // Completed in place (no copy): one object per write on the hot path.
      const pending = write as PendingWrite;
      pending.resolve = resolve;
      pending.reject = reject;
      this.#pending.push(pending);
      this.#queuedOperationCount += pending.operations.length;
      this.#startCommits();
    });
    this.#lastQueued = promise.catch(() => undefined);
    return promise;
  }

  #startCommits(): void {
    if (this.#commitLoop !== undefined) return;
    this.#commitLoop = this.#runCommits().finally(() => {
      this.#commitLoop = undefined;
      // Writes queued after the loop's last check (in the microtasks between
      // its end and this callback) start the next loop.
      if (this.#pending.length > 0) this.#startCommits();
    });
  }

  /**
   * Resolves when every write queued before the call has committed (or
   * failed). Commits run in queue order, so waiting for the last one is
   * enough — and later writes cannot keep this waiting.
   */
  async #flushCommits(): Promise<void> {
    await this.#lastQueued;
  }

  /** The last queued write's outcome, errors swallowed (see #flushCommits). */
  #lastQueued: Promise<unknown> = Promise.resolve();

  /** Commits waiting writes, one commit at a time, until none wait. */
  async #runCommits(): Promise<void> {
    while (this.#pending.length > 0 && this.#failure === undefined) {
      // Take every waiting write that fits one commit.
      let payloadBytes = 0;
      let take = 0;
      while (take < this.#pending.length && (take === 0 || payloadBytes + this.#pending[take].payloadBytes <= this.#commitPayloadMax)) {
        payloadBytes += this.#pending[take].payloadBytes;
        take++;
      }
      const writes = this.#pending.splice(0, take);
      const operationCount = writes.reduce((sum, write) => sum + write.operations.length, 0);
      this.#queuedOperationCount -= operationCount;
      this.#committingOperationCount = operationCount;
      this.#committing = writes;
      try {
        await this.#commit(writes);
        for (const write of writes) write.resolve(write);
        if (writes.length > 1) {
          // Concurrent writers: let the ones just acknowledged run up to their
          // next write before the next commit takes what is waiting (a
          // macrotask: every promise reaction runs first, however deep the
          // caller's chain). Without this, writers split into two groups that
          // take turns, each commit carrying half of them.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } catch (error) {
        // Refused or failed: these records will never be applied (a no-op
        // if the commit got as far as applying them).
        this.#committingOperationCount = 0;
        this.#committing = [];
        if (error instanceof StoreError && error.code === 'ERR_STORE_FULL') {
          // The WAL is full and no checkpoint fits: refuse these writes, keep the store.
          await Promise.all(writes.map((write) => this.#abandon(write)));
          for (const write of writes) write.reject(error);
          continue;
        }
        const failure = this.#fail(error);
        for (const write of writes) write.reject(failure);
      }
    }
    if (this.#failure !== undefined) {
      const pending = this.#pending.splice(0);
      this.#queuedOperationCount = 0;
      for (const write of pending) write.reject(this.#failure);
    }
    // The running totals against the one recomputation that costs nothing
    // here: an empty queue holds no bytes (verifyIntegrity checks the sums).
    if (this.#pending.length === 0 && this.#queuedOperationCount !== 0) {
      throw new Error(`ringstore: the write queue is empty but its running total says ${this.#queuedOperationCount} operations`);
    }
  }

  async #commit(writes: PendingWrite[]): Promise<void> {
    const sequence = this.#nextSequence;
    const writer = this.#commitWriter;
    writer.reset();
    beginCommitPayload(writer, this.#durableSequence);
    const recordsDurable = this.#durableSequence;
    const marker = writes.some((write) => write.durableMarker === true);
    let recordCount = 0;
    for (const write of writes) {
      for (const { keyString, isString, value } of write.operations) {
        const keyBytes = keyStringToBytes(keyString);
        if (value === undefined) writeDelete(writer, keyBytes, isString);
        else writePut(writer, keyBytes, isString, value);
        recordCount++;
      }
    }
    const payload = finishCommitPayload(writer, recordCount);
    const blockCount = frameBlockCount(payload.length, this.#blockSize);
    const frame = this.#commitFrame(blockCount * this.#blockSize);
    encodeFrame('wal', sequence, this.#superblock.storeTag, payload, frame, this.#blockSize);

    // The pages the commit's keys lead to are read (while its extent data is
    // being written) before its WAL frame is: a commit must never become
    // durable and then fail to apply for want of a page.
    const prepared = await this.#tree.prepare(writes.flatMap((write) => write.operations.map((operation) => operation.keyString)));
    try {
      await this.#commitPrepared(writes, sequence, frame, blockCount, recordCount, recordsDurable, marker);
    } finally {
      this.#tree.release(prepared);
    }
  }

  async #commitPrepared(writes: PendingWrite[], sequence: number, frame: Buffer, blockCount: number, recordCount: number, recordsDurable: number, marker: boolean): Promise<void> {
    let startBlock = this.#walSpace.place(blockCount);
    while (startBlock === undefined) {
      // The WAL is full of commits no checkpoint covers yet: make one.
      await this.#runCheckpoint();
      startBlock = this.#walSpace.place(blockCount);
      if (startBlock === undefined && this.#walSpace.usedBlockCount === 0) {
        throw new Error(`ringstore: a ${blockCount}-block commit does not fit an empty ${this.#walSpace.walBlockCount}-block WAL`);
      }
    }
    // Extent data first: the fdatasync linked to the WAL write must find it
    // complete, so both are durable when the commit is.
    let hasData = false;
    for (const write of writes) {
      if (write.dataWrites.length === 0) continue;
      hasData = true;
      await Promise.all(write.dataWrites);
    }
    const position = (this.#superblock.walStartBlock + startBlock) * this.#blockSize;
    this.#device.mark?.('wal', sequence);
    if (!this.#sync && !marker) {
      await this.#device.write(position, [frame]);
    } else if (hasData) {
      await this.#device.writeAndSync(position, [frame]);
    } else {
      // A commit of inline records needs only its own WAL blocks durable
      // (every earlier commit already is): one RWF_DSYNC write, faster than
      // write + fdatasync. Not for commits with extent data: on a device with
      // FUA it would make the WAL blocks durable without the data.
      await this.#device.writeDsync(position, [frame]);
    }
    this.#walSpace.append(sequence, startBlock, blockCount);
    this.#nextSequence = sequence + 1;
    this.#appliedSequence = sequence;
    this.#recordedDurableSequence = Math.max(this.#recordedDurableSequence, recordsDurable);
    // A durable marker commit (sync: false flush) was written with RWF_DSYNC
    // after an fdatasync of everything before it: all of it is durable now.
    if (marker && !hasData) this.#durableSequence = Math.max(this.#durableSequence, this.#flushedBeforeMarker(sequence));
    if (this.#sync) this.#durableSequence = sequence;

    // Apply to the tree in record order, synchronously (readers see all of
    // the commit or none); collect what the commit unlinked.
    const unlinked: Extent[] = [];
    for (const write of writes) {
      for (const operation of write.operations) {
        const { keyString, isString, value } = operation;
        let previous: IndexEntry | undefined;
        if (value === undefined) {
          previous = this.#tree.delete(keyString);
        } else {
          if (value.kind === 'extents') for (const extent of value.extents) this.#uncommitted.delete(extent);
          previous = this.#tree.set(keyString, { isString, value: value.kind === 'inline' ? value.bytes : value });
        }
        operation.existed = previous !== undefined;
        if (previous !== undefined && isExtentValue(previous.value)) unlinked.push(...previous.value.extents);
      }
      for (const { blockIndex, buffer } of write.dataBlocks) this.#cache.put(blockIndex, buffer);
    }
    this.#committingOperationCount = 0;
    this.#committing = [];
    this.#commits++;
    this.#committedRecords += recordCount;
    if (unlinked.length > 0) {
      if (this.#sync) this.#release(unlinked);
      else this.#freesAwaitingDurability.push({ sequence, extents: unlinked });
    }
    if (!this.#sync) this.#scheduleDeferredSync();
    if (this.#checkpointing === undefined && this.#checkpointDue()) {
      void this.#runCheckpoint().catch(() => undefined);
    }
  }

  /**
   * The aligned buffer a commit's frame is encoded into: one, reused and
   * grown, since only one commit is in flight at a time.
   */
  #commitFrame(sizeBytes: number): Buffer {
    if (this.#commitFrameBuffer === undefined || this.#commitFrameBuffer.length < sizeBytes) {
      let capacity = Math.max(this.#blockSize * 16, this.#commitFrameBuffer?.length ?? 0);
      while (capacity < sizeBytes) capacity *= 2;
      this.#commitFrameBuffer = allocAligned(capacity, Math.max(this.#device.ioAlignment, 4096));
    }
    return this.#commitFrameBuffer.subarray(0, sizeBytes);
  }

  #commitFrameBuffer: Buffer | undefined;

  /** Copies `bytes` into pool blocks and writes them to `extents`; returns the write promises. */
  #writeExtentData(bytes: Uint8Array, extents: Extent[], dataBlocks: { blockIndex: number; buffer: Buffer }[]): Promise<void>[] {
    const blockSize = this.#blockSize;
    const writes: Promise<void>[] = [];
    // The commit these blocks join is not numbered yet.
    this.#device.mark?.('data');
    if (bytes.length >= LARGE_VALUE_BYTES) {
      // A large value bypasses the block cache (it would only evict what is
      // hot): one aligned copy, one write per extent.
      const totalBytes = extents.reduce((sum, extent) => sum + extent.blockCount, 0) * blockSize;
      const aligned = allocAligned(totalBytes, Math.max(this.#device.ioAlignment, 4096));
      aligned.set(bytes);
      let offset = 0;
      for (const extent of extents) {
        const length = extent.blockCount * blockSize;
        writes.push(this.#device.write(extent.startBlock * blockSize, [aligned.subarray(offset, offset + length)]));
        offset += length;
      }
      for (const write of writes) write.catch(() => undefined);
      return writes;
    }
    let offset = 0;
    for (const extent of extents) {
      const buffers: Buffer[] = [];
      for (let i = 0; i < extent.blockCount; i++) {
        const buffer = this.#pool.take();
        const end = Math.min(bytes.length, offset + blockSize);
        buffer.set(bytes.subarray(offset, end));
        if (end - offset < blockSize) buffer.fill(0, end - offset);
        offset += blockSize;
        buffers.push(buffer);
        dataBlocks.push({ blockIndex: extent.startBlock + i, buffer });
      }
      // Vector writes of at most 1024 buffers (IOV_MAX).
      for (let i = 0; i < buffers.length; i += 1024) {
        writes.push(this.#device.write((extent.startBlock + i) * blockSize, buffers.slice(i, i + 1024)));
      }
    }
    // Rejections surface when the commit awaits them; keep them from being unhandled meanwhile.
    for (const write of writes) write.catch(() => undefined);
    return writes;
  }

  /**
   * Allocates blocks for a value, keeping back room for the next checkpoint:
   * without it a full store could not checkpoint, so its WAL could not be
   * reclaimed and not even a delete could commit.
   */
  #allocate(blockCount: number, extentsMax: number): Extent[] {
    const reserve = this.#checkpointReserveBlocks(1);
    // The free-set frame must fit in FREE_SET_EXTENTS_MAX runs and every
    // page in one run of its own; count only what the largest runs hold
    // (conservatively: as if this allocation came out of them).
    const room = this.#allocator.largestRunsBlockCount(FREE_SET_EXTENTS_MAX);
    const extents =
      this.#allocator.freeBlockCount - blockCount >= reserve && room - blockCount >= this.#freeSetFrameBlocks()
        ? this.#allocator.allocate(blockCount, extentsMax)
        : undefined;
    if (extents !== undefined) for (const extent of extents) this.#uncommitted.add(extent);
    if (extents === undefined) {
      throw new StoreError(
        'ERR_STORE_FULL',
        `no room for ${blockCount} blocks (${this.#allocator.freeBlockCount} free in ${this.#allocator.freeExtentCount} pieces, ${reserve} kept for the next checkpoint${this.#freed.length > 0 ? `, ${this.#freed.length} extents waiting for trim` : ''})`,
      );
    }
    return extents;
  }

  /**
   * Refuses a write of `operationCount` more puts when the free space would
   * no longer hold the next checkpoint: a put is refused early and clearly,
   * while deletes (which free space once checkpointed) are always taken.
   */
  #checkRoomForPuts(operationCount: number): void {
    const reserve = this.#checkpointReserveBlocks(operationCount);
    if (this.#allocator.freeBlockCount >= reserve) return;
    throw new StoreError(
      'ERR_STORE_FULL',
      `the store is full: ${this.#allocator.freeBlockCount} blocks free, the next checkpoint may need ${reserve} (delete keys to make room)`,
    );
  }

  /**
   * Blocks the next checkpoint may need: a page for every dirty node, for
   * every node the queued and committing operations (plus `extraOperations`)
   * may dirty — each dirties at most its path and splits it once — the
   * free-set frame, and room kept for deletes. O(1): it runs for every put.
   */
  #checkpointReserveBlocks(extraOperations: number): number {
    const operations = this.#queuedOperationCount + this.#committingOperationCount + extraOperations;
    const pagesPerOperation = 2 * (this.#tree.height + 1) + 1;
    const pages = this.#tree.dirtyNodeCount + operations * pagesPerOperation + DELETE_RESERVE_PAGES;
    return pages * this.#pageBlocks + this.#freeSetFrameBlocks() + CHECKPOINT_RESERVE_SLACK_BLOCKS;
  }

  /** Blocks of the free-set frame of this store's size. */
  #freeSetFrameBlocks(): number {
    return frameBlockCount(freeSetPayloadBytes(this.#superblock.blockCount - this.#superblock.dataStartBlock), this.#blockSize);
  }

  /**
   * When a checkpoint should start on its own: the WAL half full, the dirty
   * pages past their share of the cache (memory stays bounded), or past
   * half the free space (so the checkpoint that writes them always fits).
   */
  #checkpointDue(): boolean {
    if (this.#walSpace.fill >= CHECKPOINT_WAL_FILL) return true;
    if (this.#tree.dirtyBytes >= this.#dirtyBytesMax) return true;
    return this.#tree.dirtyNodeCount * this.#pageBlocks * 2 >= this.#allocator.freeBlockCount;
  }

  /**
   * Running totals of the operations of the writes in #pending and of those
   * the commit in flight took and has not applied yet (for the reserve).
   * Updated when a write is queued, taken by a commit, applied, refused or
   * failed; checked against a recomputation in verifyIntegrity and when the
   * queue empties.
   */
  #queuedOperationCount = 0;
  #committingOperationCount = 0;
  /** The writes of the commit in flight, until it is applied or refused (for verifyIntegrity's recomputation). */
  #committing: PendingWrite[] = [];

  /** Asserts the reserve's running totals against a recomputation: O(queued writes), for verifyIntegrity. */
  #checkReserveAccounting(): void {
    const sum = (writes: PendingWrite[]): number => writes.reduce((total, write) => total + write.operations.length, 0);
    const recomputed = { queued: sum(this.#pending), committing: sum(this.#committing) };
    const running = { queued: this.#queuedOperationCount, committing: this.#committingOperationCount };
    if (recomputed.queued !== running.queued || recomputed.committing !== running.committing) {
      throw new Error(`ringstore: checkpoint reserve accounting ${JSON.stringify(running)} disagrees with a recomputation ${JSON.stringify(recomputed)}`);
    }
  }

  /**
   * What a marker commit makes durable: itself, and everything before it if
   * nothing but the marker was written since the flush that preceded it.
   */
  #flushedBeforeMarker(markerSequence: number): number {
    return this.#durableSequence === markerSequence - 1 ? markerSequence : this.#durableSequence;
  }

  /** Extents allocated to writes that no durable record names yet. */
  readonly #uncommitted = new Set<Extent>();

  #scheduleDeferredSync(): void {
    if (this.#deferredSync !== undefined) return;
    const task = (): void => {
      this.#deferredSync = undefined;
      void this.#syncNow().catch(() => undefined);
    };
    // The crash lab's device picks the moment itself, so that a traced
    // workload does the same IO in the same order on every run.
    if (this.#device.deferTask !== undefined) {
      this.#deferredSync = this.#device.deferTask(task, SYNC_DEFER_MS);
      return;
    }
    const timer = setTimeout(task, SYNC_DEFER_MS);
    this.#deferredSync = () => clearTimeout(timer);
  }

  /** fdatasync now; then everything written so far is durable. */
  async #syncNow(): Promise<void> {
    if (this.#deferredSyncPromise !== undefined) {
      await this.#deferredSyncPromise;
      if (this.#appliedSequence === this.#durableSequence) return;
    }
    const through = this.#appliedSequence;
    this.#deferredSyncPromise = (async () => {
      try {
        this.#device.mark?.('flush', through);
        await this.#device.sync();
      } catch (error) {
        throw this.#fail(error);
      }
      this.#durableSequence = Math.max(this.#durableSequence, through);
      const ready = this.#freesAwaitingDurability.filter((free) => free.sequence <= through);
      this.#freesAwaitingDurability = this.#freesAwaitingDurability.filter((free) => free.sequence > through);
      for (const free of ready) this.#release(free.extents);
    })();
    try {
      await this.#deferredSyncPromise;
    } finally {
      this.#deferredSyncPromise = undefined;
    }
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
      return await this.#readValueBytes(entry);
    } catch (error) {
      throw this.#closedOr(error);
    }
  }

  /** `error`, or ERR_STORE_CLOSED (caused by it) if the store closed meanwhile. */
  #closedOr(error: unknown): unknown {
    if (!this.#closed && this.#closing === undefined) return error;
    if (error instanceof StoreError && error.code === 'ERR_STORE_CLOSED') return error;
    return new StoreError('ERR_STORE_CLOSED', 'the store was closed during the read', { cause: error });
  }

  async #readValueBytes(entry: IndexEntry): Promise<Uint8Array> {
    if (entry.value instanceof Uint8Array) return entry.value;
    const value = entry.value;
    const epoch = this.#beginRead();
    try {
      if (value.length >= LARGE_VALUE_BYTES) return await this.#readLargeValue(value);
      const out = Buffer.allocUnsafe(value.length);
      let offset = 0;
      for (const extent of value.extents) {
        const bytes = await this.#readBlocks(extent.startBlock, extent.blockCount);
        const used = Math.min(value.length - offset, bytes.length);
        out.set(bytes.subarray(0, used), offset);
        offset += used;
      }
      const crc = crc32c(out);
      if (crc !== value.crc) {
        throw new StoreCorruptError('data', `value of ${value.length} bytes has checksum 0x${crc.toString(16)}, its record says 0x${value.crc.toString(16)} (torn, lost or misdirected write)`, value.extents[0].startBlock);
      }
      return out;
    } finally {
      this.#endRead(epoch);
    }
  }

  /** A large value read straight into one aligned buffer, bypassing the cache; verified. */
  async #readLargeValue(value: ExtentValue): Promise<Uint8Array> {
    const blockSize = this.#blockSize;
    const totalBytes = value.extents.reduce((sum, extent) => sum + extent.blockCount, 0) * blockSize;
    const aligned = allocAligned(totalBytes, Math.max(this.#device.ioAlignment, 4096));
    let offset = 0;
    const reads: Promise<void>[] = [];
    for (const extent of value.extents) {
      const length = extent.blockCount * blockSize;
      reads.push(readLarge(this.#device, extent.startBlock * blockSize, aligned.subarray(offset, offset + length)));
      offset += length;
    }
    await Promise.all(reads);
    const out = aligned.subarray(0, value.length);
    const crc = crc32c(out);
    if (crc !== value.crc) {
      throw new StoreCorruptError('data', `value of ${value.length} bytes has checksum 0x${crc.toString(16)}, its record says 0x${value.crc.toString(16)} (torn, lost or misdirected write)`, value.extents[0].startBlock);
    }
    return out;
  }

  /** The bytes of blocks [start, start + count), from the cache or the device. */
  async #readBlocks(startBlock: number, blockCount: number): Promise<Uint8Array> {
    const blockSize = this.#blockSize;
    const out = Buffer.allocUnsafe(blockCount * blockSize);
    let runStart = -1;
    const runs: Promise<void>[] = [];
    const readRun = (from: number, to: number): void => {
      const buffers: Buffer[] = [];
      for (let block = from; block < to; block++) buffers.push(this.#pool.take());
      runs.push(
        (async () => {
          for (let i = 0; i < buffers.length; i += 1024) {
            await this.#device.readv((from + i) * blockSize, buffers.slice(i, i + 1024));
          }
          buffers.forEach((buffer, i) => {
            out.set(buffer, (from + i - startBlock) * blockSize);
            this.#cache.put(from + i, buffer);
          });
        })(),
      );
    };
    for (let block = startBlock; block < startBlock + blockCount; block++) {
      const cached = this.#cache.get(block);
      if (cached !== undefined) {
        if (runStart >= 0) readRun(runStart, block);
        runStart = -1;
        out.set(cached, (block - startBlock) * blockSize);
      } else if (runStart < 0) {
        runStart = block;
      }
    }
    if (runStart >= 0) readRun(runStart, startBlock + blockCount);
    await Promise.all(runs);
    return out;
  }

  #beginRead(): number {
    const epoch = this.#readEpoch;
    this.#activeReads.set(epoch, (this.#activeReads.get(epoch) ?? 0) + 1);
    return epoch;
  }

  #endRead(epoch: number): void {
    const count = this.#activeReads.get(epoch)! - 1;
    if (count === 0) this.#activeReads.delete(epoch);
    else this.#activeReads.set(epoch, count);
    if (this.#freed.length > 0) this.#startTrims();
  }

  // ---- Freeing space ----

  /** Extents no durable record references any more: trim, then free. */
  #release(extents: Extent[]): void {
    // A trace notes the moment extents stop being referenced (no IO follows
    // this mark; their trims carry their own).
    this.#device.mark?.('free', this.#appliedSequence);
    // Reads that started before now may still be reading these blocks.
    const epoch = this.#readEpoch++;
    for (const extent of extents) this.#freed.push({ extent, epoch });
    this.#startTrims();
  }

  #startTrims(): void {
    // After a failure nothing more is sent to the device; a reopen frees
    // whatever was waiting.
    if (this.#trimLoop !== undefined || this.#failure !== undefined) return;
    // Errors other than a trim's (handled in #runTrims) are bugs: not caught.
    this.#trimLoop = this.#runTrims().finally(() => {
      this.#trimLoop = undefined;
    });
  }

  async #runTrims(): Promise<void> {
    for (;;) {
      const oldestRead = this.#activeReads.size > 0 ? Math.min(...this.#activeReads.keys()) : Infinity;
      const ready: Extent[] = [];
      const waiting: FreedExtent[] = [];
      for (const freed of this.#freed) {
        if (freed.epoch < oldestRead && ready.length < TRIM_BATCH_MAX) ready.push(freed.extent);
        else waiting.push(freed);
      }
      if (ready.length === 0) return;
      this.#freed = waiting;
      this.#trimming = ready;
      ready.sort((a, b) => a.startBlock - b.startBlock);
      const merged = mergeExtents(ready);
      this.#device.mark?.('trim');
      const outcomes = await Promise.allSettled(
        merged.map((extent) => this.#device.trim(extent.startBlock * this.#blockSize, extent.blockCount * this.#blockSize)),
      );
      this.#trimsIssued += merged.length;
      // A trim is advisory: if the device refuses it (EOPNOTSUPP without
      // discard support, or an IO error), the blocks keep old data that no
      // record references — still safe to reuse.
      this.#trimErrors += outcomes.filter((outcome) => outcome.status === 'rejected').length;
      this.#freeExtents(ready);
      this.#trimming = [];
    }
  }

  // ---- Checkpoints ----

  #runCheckpoint(): Promise<void> {
    this.#checkpointing ??= this.#checkpoint()
      .catch((error: unknown) => {
        // No room is an answer, not a failure: nothing was written that a
        // superblock names. IO errors stop the store.
        if (error instanceof StoreError && error.code === 'ERR_STORE_FULL') throw error;
        throw this.#fail(error);
      })
      .finally(() => {
        this.#checkpointing = undefined;
      });
    return this.#checkpointing;
  }

  /**
   * An incremental checkpoint: writes the pages dirtied since the last one
   * (children before parents, each to a fresh block: a page on disk is never
   * overwritten) and the free set, flushes, then writes the superblock that
   * names the new root. Its cost follows the pages dirtied, not the store.
   * Commits go on meanwhile against the live tree, which copies any page
   * this checkpoint froze before changing it.
   */
  async #checkpoint(): Promise<void> {
    if (!this.#sync) await this.#syncNow();
    const sequence = this.#appliedSequence;
    // No commit since the last checkpoint: no dirty page, nothing replaced.
    if (sequence === this.#superblock.checkpointSeq) return;

    // ---- Synchronously: freeze the tree at `sequence`, allocate every
    // block the checkpoint writes, and take the free set. No commit can
    // apply in between, so the free set describes exactly the frozen tree
    // (docs/architecture.md § Checkpoints explains each term).
    const previous = this.#superblock;
    const blockSize = this.#blockSize;
    const dataBlockCount = previous.blockCount - previous.dataStartBlock;
    const replayBlock = this.#walSpace.replayBlockAfter(sequence);
    const plan = this.#tree.beginCheckpoint();
    const pageExtents: Extent[] = [];
    let frameExtents: Extent[] | undefined;
    const frameBytes = freeSetPayloadBytes(dataBlockCount);
    const frameBlocks = frameBlockCount(frameBytes, blockSize);
    try {
      for (let i = 0; i < plan.nodes.length; i++) {
        const extents = this.#allocator.allocate(this.#pageBlocks, 1);
        if (extents === undefined) break;
        pageExtents.push(extents[0]);
      }
      if (pageExtents.length === plan.nodes.length) frameExtents = this.#allocator.allocate(frameBlocks, FREE_SET_EXTENTS_MAX);
      if (frameExtents === undefined) {
        throw new StoreError(
          'ERR_STORE_FULL',
          `no room for a checkpoint of ${plan.nodes.length} pages and a ${frameBlocks}-block free set (${this.#allocator.freeBlockCount} blocks free in ${this.#allocator.freeExtentCount} pieces)`,
        );
      }
    } catch (error) {
      for (const extent of pageExtents) this.#allocator.free(extent);
      plan.abort();
      throw error;
    }
    const garbage: Extent[] = plan.garbageBlocks.map((block) => ({ startBlock: block, blockCount: this.#pageBlocks }));
    const releasedWithIt = [...garbage, ...previous.freeSetExtents];
    // Free in the new checkpoint: what the allocator holds free, and every
    // block no record up to `sequence` nor the frozen tree references —
    // writes not yet committed, extents waiting for their trim or for the
    // flush of a sync: false commit, the pages this checkpoint replaces and
    // the previous free set. These sets are disjoint; the encoder refuses an
    // overlap (a bug).
    const awaitingDurability = this.#freesAwaitingDurability.filter((free) => free.sequence <= sequence).flatMap((free) => free.extents);
    const free = [
      ...this.#allocator.freeExtents(),
      ...this.#uncommitted,
      ...this.#freed.map((freed) => freed.extent),
      ...this.#trimming,
      ...awaitingDurability,
      ...releasedWithIt,
    ].sort((a, b) => a.startBlock - b.startBlock);
    const payload = encodeFreeSetPayload(previous.dataStartBlock, dataBlockCount, free);
    const rootLevel = plan.rootLevel;

    // ---- Then: encode and write the pages, the free set, flush, superblock.
    const assigned = new Map<object, PageRef>();
    let writes: Promise<void>[] = [];
    const allWrites: Promise<void>[] = [];
    try {
      this.#device.mark?.('checkpoint', sequence);
      for (let i = 0; i < plan.nodes.length; i++) {
        const node = plan.nodes[i];
        const block = pageExtents[i].startBlock;
        const encoded = this.#treePages.encode(plan.content(node, (child) => assigned.get(child)!), block, sequence);
        assigned.set(node, { block, crc: encoded.crc });
        const write = this.#device.write(block * blockSize, [encoded.bytes]);
        writes.push(write);
        allWrites.push(write);
        if (writes.length >= CHECKPOINT_WRITES_IN_FLIGHT_MAX) {
          await Promise.all(writes);
          writes = [];
        } else if ((i + 1) % CHECKPOINT_ENCODE_SLICE_PAGES === 0) {
          // Encoding is CPU work: let commits and reads run between slices.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      const frame = allocAligned(frameBlocks * blockSize, Math.max(this.#device.ioAlignment, 4096));
      encodeFrame('free set', sequence, previous.storeTag, payload, frame, blockSize);
      let offset = 0;
      for (const extent of frameExtents) {
        const bytes = frame.subarray(offset, offset + extent.blockCount * blockSize);
        allWrites.push(this.#device.write(extent.startBlock * blockSize, [bytes]));
        offset += bytes.length;
      }
      await Promise.all(allWrites);
      this.#device.mark?.('flush', sequence);
      await this.#device.sync();
    } catch (error) {
      // No superblock names these blocks: they are free again once every
      // write to them has settled (the store fails anyway).
      await Promise.allSettled(allWrites);
      for (const extent of [...pageExtents, ...frameExtents]) this.#allocator.free(extent);
      plan.abort();
      throw error;
    }
    const root = plan.root === undefined ? undefined : isPageRef(plan.root) ? plan.root : assigned.get(plan.root)!;
    const next: Superblock = {
      ...previous,
      generation: previous.generation + 1,
      checkpointSeq: sequence,
      walReplayBlock: replayBlock,
      freeSetByteLength: payload.length,
      freeSetBlockCount: frameBlocks,
      freeSetExtents: frameExtents,
      treeRoot: root === undefined ? undefined : { block: root.block, crc: root.crc, level: rootLevel },
      keyCount: plan.keyCount,
    };
    try {
      await this.#writeSuperblockSlots(next, superblockSlotsFor(next.generation));
    } catch (error) {
      // Which superblock is durable is unknown: the store fails, and the
      // blocks stay allocated (reopening decides).
      plan.abort();
      throw error;
    }
    this.#superblock = next;
    plan.complete(assigned);
    this.#checkpoints++;
    this.#walSpace.releaseThrough(sequence);
    // The checkpoint's flush made every commit up to `sequence` durable.
    if (!this.#sync && this.#durableSequence < sequence) {
      this.#durableSequence = sequence;
      const ready = this.#freesAwaitingDurability.filter((entry) => entry.sequence <= sequence);
      this.#freesAwaitingDurability = this.#freesAwaitingDurability.filter((entry) => entry.sequence > sequence);
      for (const entry of ready) this.#release(entry.extents);
    }
    // Unreferenced once the new superblock is durable: the replaced pages
    // and the previous free set (readers of older snapshots hold them until done).
    if (releasedWithIt.length > 0) this.#release(releasedWithIt);
  }

  /** Zeroes WAL blocks, durably: the commits they belonged to are gone for good. */
  async #eraseWalBlocks(walBlocks: number[]): Promise<void> {
    const zero = allocAligned(this.#blockSize, Math.max(this.#device.ioAlignment, 4096));
    this.#device.mark?.('erase');
    await Promise.all(walBlocks.map((walBlock) => this.#device.write((this.#superblock.walStartBlock + walBlock) * this.#blockSize, [zero])));
    this.#device.mark?.('flush');
    await this.#device.sync();
  }

  /** Writes `superblock` into `slots` and flushes once: durable on return. */
  async #writeSuperblockSlots(superblock: Superblock, slots: readonly number[]): Promise<void> {
    const block = allocAligned(this.#blockSize, Math.max(this.#device.ioAlignment, 4096));
    encodeSuperblock(superblock, block);
    this.#device.mark?.('superblock', superblock.generation);
    await Promise.all(slots.map((slot) => this.#device.write(superblockSlotBlock(slot, superblock.walStartBlock, superblock.walBlockCount) * this.#blockSize, [block])));
    await this.#device.sync();
  }

  // ---- State ----

  #fail(error: unknown): StoreError {
    if (this.#failure === undefined) {
      const cause = error instanceof Error ? error : new Error(String(error));
      this.#failure =
        error instanceof StoreError && error.code === 'ERR_STORE_FAILED'
          ? error
          : new StoreError('ERR_STORE_FAILED', `the store stopped accepting writes after an IO error: ${cause.message} (reopen to recover)`, { cause });
    }
    return this.#failure;
  }

  #checkOpen(): void {
    if (this.#closed || this.#closing !== undefined) throw new StoreError('ERR_STORE_CLOSED', 'the store is closed');
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/** Blocks of the WAL at least. */
const WAL_BLOCKS_MIN = 16;
/** Data blocks a store needs beyond its WAL to be of any use, in pages (a 64 KiB data region at 4 KiB pages). */
const DATA_PAGES_MIN = 16;

/**
 * How a store of `sizeBytes` is laid out in `blockSize` blocks, or why it
 * cannot be: a WAL of at least WAL_BLOCKS_MIN blocks (an eighth of the store
 * by default, at most DEFAULT_WAL_SIZE_BYTES) and room for data behind it.
 */
export function storeLayout(sizeBytes: number, blockSize: number, walSizeBytes: number | undefined): { blockCount: number; walBlockCount: number } | string {
  const blockCount = Math.floor(sizeBytes / blockSize);
  const dataBlocksMin = DATA_PAGES_MIN * (pageSizeFor(blockSize) / blockSize);
  const walBlockCount = Math.floor(Math.min(walSizeBytes ?? Math.min(DEFAULT_WAL_SIZE_BYTES, (blockCount * blockSize) / 8), 1 << 30) / blockSize);
  if (walBlockCount < WAL_BLOCKS_MIN) {
    return `${sizeBytes} bytes in ${blockSize}-byte blocks leave a WAL of ${walBlockCount} blocks; it needs at least ${WAL_BLOCKS_MIN} (${WAL_BLOCKS_MIN * blockSize} bytes${walSizeBytes === undefined ? `, so a store of at least ${8 * WAL_BLOCKS_MIN * blockSize} bytes` : ''})`;
  }
  if (SUPERBLOCK_SLOT_COUNT + walBlockCount + dataBlocksMin > blockCount) {
    return `${sizeBytes} bytes in ${blockSize}-byte blocks hold ${blockCount} blocks; a WAL of ${walBlockCount} needs at least ${SUPERBLOCK_SLOT_COUNT + walBlockCount + dataBlocksMin}`;
  }
  return { blockCount, walBlockCount };
}

/**
 * Zeroes, durably, where any store's head superblock copies could be (slot
 * 1 sits one block in, and blocks are up to BLOCK_SIZE_MAX) and the backup
 * copies of the store the device holds, if any: what format() does to an
 * old store before it zeroes that store's WAL. A backup copy left behind
 * would let a later open that finds the head gone resurrect the old store.
 */
async function eraseSuperblocks(device: BlockDevice): Promise<void> {
  let old: Superblock | undefined;
  try {
    const probe = await probeSuperblocks(device);
    if (probe.kind === 'found') old = probe.superblock;
  } catch {
    // Damaged or of another version: no valid backup copy to find.
  }
  const alignment = Math.max(device.ioAlignment, 512);
  const lengthBytes = Math.min(2 * BLOCK_SIZE_MAX, device.sizeBytes - (device.sizeBytes % alignment));
  device.mark?.('erase');
  await device.write(0, [allocAligned(lengthBytes, Math.max(alignment, 4096))]);
  if (old !== undefined) {
    const zero = allocAligned(old.blockSize, Math.max(alignment, 4096));
    for (let slot = SUPERBLOCK_HEAD_SLOT_COUNT; slot < SUPERBLOCK_SLOT_COUNT; slot++) {
      const position = superblockSlotBlock(slot, old.walStartBlock, old.walBlockCount) * old.blockSize;
      if (position + old.blockSize <= device.sizeBytes) await device.write(position, [zero]);
    }
  }
  await device.sync();
}

/** Writes a new store's superblocks (all four slots). */
async function formatStore(device: BlockDevice, blockSize: number, walSizeBytes: number | undefined, encoding: ValueEncoding): Promise<Superblock> {
  if (blockSize % Math.max(device.ioAlignment, 1) !== 0) {
    throw invalidArgument(`blockSize ${blockSize} is not a multiple of the device's direct-IO alignment ${device.ioAlignment}`, 'range');
  }
  const layout = storeLayout(device.sizeBytes, blockSize, walSizeBytes);
  if (typeof layout === 'string') throw new StoreError('ERR_STORE_NO_SPACE', `the device is too small for a store: ${layout}`);
  const { blockCount, walBlockCount } = layout;
  const superblock: Superblock = {
    formatVersion: FORMAT_VERSION,
    blockSize,
    blockCount,
    walStartBlock: SUPERBLOCK_HEAD_SLOT_COUNT,
    walBlockCount,
    dataStartBlock: SUPERBLOCK_SLOT_COUNT + walBlockCount,
    generation: 1,
    storeTag: device.newStoreTag?.() ?? randomInt(1, 0xffffffff),
    checkpointSeq: 0,
    walReplayBlock: 0,
    freeSetByteLength: 0,
    freeSetBlockCount: 0,
    freeSetExtents: [],
    treeRoot: undefined,
    keyCount: 0,
    valueEncodingId: VALUE_ENCODING_IDS[encoding],
  };
  const block = allocAligned(blockSize, Math.max(device.ioAlignment, 4096));
  encodeSuperblock(superblock, block.subarray(0, SUPERBLOCK_SIZE));
  // The whole WAL region is written with zeros once. On a preallocated file
  // its blocks are otherwise "unwritten" extents, and the first write to each
  // makes the commit's fdatasync journal an extent conversion too (measured:
  // ~2× the latency of a durable put until the WAL has wrapped once). It also
  // means a new store never replays a stale commit of an earlier one.
  const zeros = allocAligned(Math.min(walBlockCount * blockSize, WAL_ZERO_CHUNK_BYTES), Math.max(device.ioAlignment, 4096));
  device.mark?.('format');
  for (let offset = 0; offset < walBlockCount * blockSize; offset += zeros.length) {
    const length = Math.min(zeros.length, walBlockCount * blockSize - offset);
    await device.write(2 * blockSize + offset, [zeros.subarray(0, length)]);
  }
  // The backup pair first, then the head: a store is found by its head, so
  // until the head is durable no open takes this device for a store.
  device.mark?.('superblock', superblock.generation);
  for (const slot of [2, 3]) await device.write(superblockSlotBlock(slot, superblock.walStartBlock, walBlockCount) * blockSize, [block]);
  await device.sync();
  const head = allocAligned(2 * blockSize, Math.max(device.ioAlignment, 4096));
  head.set(block, 0);
  head.set(block, blockSize);
  await device.writeAndSync(0, [head]);
  return superblock;
}

/** A tree root that is already on disk (not a node a checkpoint writes). */
function isPageRef(root: object): root is PageRef {
  return 'block' in root && 'crc' in root && !('kind' in root);
}

function mergeExtents(sorted: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const extent of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.startBlock + last.blockCount === extent.startBlock) last.blockCount += extent.blockCount;
    else out.push({ ...extent });
  }
  return out;
}

/**
 * An options or operation object whose getter or Proxy trap threw while its
 * fields were read: the caller's argument is unreadable, ERR_INVALID_ARG with
 * that error as cause.
 */
function unreadableArgument(what: string, error: unknown): TypeError | RangeError {
  return Object.assign(invalidArgument(`${what} could not be read: ${error instanceof Error ? error.message : describeArgument(error)}`), { cause: error });
}

/** A range bound, validated like a key; undefined if absent. */
function rangeBound(bound: unknown, name: string): string | undefined {
  if (bound === undefined) return undefined;
  try {
    return toKeyString(bound);
  } catch (error) {
    if (error instanceof Error) error.message = `range option '${name}': ${error.message}`;
    throw error;
  }
}

/** A key for messages, short. */
function describeKey(key: Key): string {
  return typeof key === 'string' ? JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key) : `0x${Buffer.from(key.subarray(0, 32)).toString('hex')}${key.length > 32 ? '…' : ''}`;
}

/** An argument for messages: never throws, whatever it is. */
function describeArgument(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === undefined) return String(value);
  if (value === null) return 'null';
  return `a ${typeof value}`;
}

function checkBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidArgument(`option '${name}' must be a boolean`);
  return value;
}

function checkBlockSize(value: unknown): number {
  const blockSize = checkSize(value, 'blockSize', DEFAULT_BLOCK_SIZE, 512);
  if ((blockSize & (blockSize - 1)) !== 0 || blockSize > 65536) throw invalidArgument(`blockSize must be a power of two from 512 to 65536, got ${blockSize}`, 'range');
  return blockSize;
}

function checkSize(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw invalidArgument(`option '${name}' must be a number`);
  if (!Number.isSafeInteger(value) || value < min) throw invalidArgument(`option '${name}' must be an integer >= ${min}, got ${value}`, 'range');
  return value;
}
