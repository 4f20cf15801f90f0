// BlockStore: the embedded key/value store — the façade over its parts.
//
// It owns the public API and its argument checks, the options, the
// lifecycle (open, format, close), the fail-stop state and the stats; the
// work is done by the parts, each one concept (docs/architecture.md § The
// store):
//
//   store_options.ts the public options, stats and limits, and their defaults
//   journal.ts       the write queue and group commit, WAL placement, sync
//   checkpoint_policy.ts when checkpoints start; how far commits run ahead of one
//   page_tree.ts     keys and their entries: the copy-on-write B+tree of pages
//   tree_pages.ts    the tree's pages on the device (read, checked, encoded)
//   space.ts         free space: allocation, checkpoint reserve, read epochs, trims
//   grid.ts          block IO of extent values: cache, buffer pool, verified reads
//   checkpointer.ts  incremental checkpoints and superblock writes
//   store_reader.ts  get, has, getMany, ranges and counts
//   value_streams.ts createWriteStream / createReadStream
//   store_layout.ts  the layout of a store; formatting a device
//   store_growth.ts  growing a store file as it fills
//   wal_replay.ts    replaying the WAL tail after open, with checkpoints
//   replay_overlay.ts the tail by key while that replay runs; writes held
//   write_encoding.ts checking and encoding a write at the call
//   integrity_check.ts verifyIntegrity
//   closed_device_guard.ts the device as the parts see it: no IO once closed
//
// A write flows one way: façade → journal → tree, space and grid. The
// parts never import the façade; it passes each its collaborators.
//
// Failure: any IO error of a commit, trim or checkpoint moves the store to
// ERR_STORE_FAILED (store_state.ts): the failing and all later writes are
// rejected; reads of durable data still work; reopening recovers the durable
// prefix.
import type { Readable, Writable } from 'node:stream';

import { COMMIT_HEADER_SIZE, KEY_SIZE_MAX, VALUE_ENCODING_IDS } from '../format/constants.js';
import { deleteRecordBytes, extentPutRecordBytes, inlinePutRecordBytes } from '../format/records.js';
import { branchChildBytes, leafEntryBytes, leafInlineEntryBytes, pageCapacityBytes, pageSizeFor } from '../format/page.js';
import { frameBlockCount } from '../format/frame.js';
import { freeSetPayloadBytes, type Superblock } from '../format/superblock.js';
import { IoUringActor } from '../native/io_uring_actor.js';
import { BlockCache } from './block_cache.js';
import { checkBlockDevice } from './block_device.js';
import { ClosedDeviceGuard } from './closed_device_guard.js';
import { BufferPool } from './buffer_pool.js';
import { Checkpointer } from './checkpointer.js';
import { Grid } from './grid.js';
import { Journal, recoveredWalSpace, type PendingWrite, type QueuedWrite } from './journal.js';
import { keyStringToKey, toKeyString, type Key } from './key_codec.js';
import type { ExtentAllocator } from './extent_allocator.js';
import { PageTree, PageUnreadable } from './page_tree.js';
import { probeSuperblocks, recoverStore, type SuperblockProbe } from './recovery.js';
import { RingBlockDevice } from './ring_block_device.js';
import { Space, VALUE_EXTENTS_PER_PUT_MAX } from './space.js';
import { checkBlockSize, checkBoolean, checkRangeOptions, checkSize, checkWalSize, describeArgument, guardedCheck, mapElements, optionFields, refuseStreamOptions, type CheckedRange, type KeyRange } from './store_arguments.js';
import { invalidArgument, STORE_ADVICE, StoreError } from './store_error.js';
import { openStoreFile, type OpenedStoreFile } from './store_file.js';
import { checkBlockSizeServed, deviceGrows, eraseSuperblocks, formatStore, storeLayout } from './store_layout.js';
import { EndingStreams } from './ending_streams.js';
import { GrowthWait, type QueueAttempt, type RoomRefusal } from './growth_wait.js';
import { GROWTH_ATTEMPTS_MAX, StoreGrowth } from './store_growth.js';
import { StoreState } from './store_state.js';
import {
  BLOCK_STORE_OPTION_NAMES,
  CLEAR_BATCH_KEYS_MAX,
  DEFAULT_CACHE_SIZE_BYTES,
  DEFAULT_ENCODING,
  DEFAULT_NEW_FILE_WAL_SIZE_BYTES,
  DEFAULT_STORE_SIZE_BYTES,
  dirtyPagesMaxFor,
  PAGE_CACHE_SHARE,
  STORE_RING_OPTIONS,
  type BatchOperation,
  type BlockStoreOptions,
  type BlockStoreStats,
  type KeyRangeOptions,
  type RangeOptions,
} from './store_options.js';
import { checkIntegrity, type IntegrityReport } from './integrity_check.js';
import { TreePages, type TreeGeometry } from './tree_pages.js';
import { DEFAULT_IDLE_CHECKPOINT_MS, IDLE_CHECKPOINT_MS_MAX } from './idle_checkpoint.js';
import { ReplayOverlay } from './replay_overlay.js';
import { StoreReader, type ScanShape } from './store_reader.js';
import { replayWal } from './wal_replay.js';
import { createValueReadStream, createValueWriteStream, storedEntries, type StoredEntry, type StreamParts } from './value_streams.js';
import { valueCodec, type ValueCodec, type ValueEncoding } from './value_codec.js';
import { backupStore, type BackupReport, type BackupStoreMaker } from './store_backup.js';
import { ValueCopySlab } from './value_copy_slab.js';
import { checkedOperation, encodeWrite, withLargeValuesCopied, type EncodedWrite, type WriteEncodingParts } from './write_encoding.js';

export { CHECKPOINT_WAL_FILL } from './checkpoint_policy.js';
export { SYNC_DEFER_MS } from './journal.js';
export type { IntegrityReport } from './integrity_check.js';
export type { StoredEntry } from './value_streams.js';
export type { BackupReport } from './store_backup.js';
export { DEFAULT_BLOCK_SIZE, DEFAULT_WAL_SIZE_BYTES, storeLayout } from './store_layout.js';

/**
 * The embedded key/value store over one file or block device: keys are
 * strings or bytes in bytewise order, values are encoded with the store's
 * encoding (msgpack by default). `V` is the type of the values the caller
 * stores: get() and range() claim to return it, without checking (a value
 * written with createWriteStream comes back as a Buffer whatever `V` is).
 * Open one with BlockStore.open(); see docs/store.md.
 *
 * @typeParam V - The type of the store's values (default unknown).
 */
export class BlockStore<V = unknown> {
  /** The path the store was opened with. */
  readonly path: string;
  readonly #device: ClosedDeviceGuard;
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
  readonly #growth: StoreGrowth;
  /** Writes waiting, in call order, while the store grows for one of them. */
  readonly #growthWait: GrowthWait;
  /** Write streams ended and not yet in the journal: flush() and close() wait for them. */
  readonly #endingStreams = new EndingStreams();
  /**
   * flush() and checkpoint() calls not settled yet, outcomes swallowed:
   * close() waits for those begun before it. With sync: false a flush ends with a marker
   * commit, enqueued only after its fdatasync — after close() may have
   * drained the journal — so without this wait that commit could reach
   * the WAL behind close()'s checkpoint, or after the device closed
   * (found by a review, session 35).
   */
  readonly #flushesInFlight = new Set<Promise<unknown>>();
  /** What createWriteStream and createReadStream work with. */
  readonly #streamParts: StreamParts;
  #closing: Promise<void> | undefined;
  /** Opened with readOnly (the state refuses writes; close writes nothing). */
  readonly #readOnly: boolean;
  /** The WAL tail recovered at open while its replay runs (undefined once it has applied it). */
  #replay: ReplayOverlay | undefined;
  /** What encoding a write needs (write_encoding.ts). */
  readonly #writeEncoding: WriteEncodingParts;
  /** Point reads, getMany, ranges and counts (store_reader.ts). */
  readonly #reader: StoreReader;

  private constructor(
    path: string,
    device: ClosedDeviceGuard,
    ownedRing: IoUringActor | undefined,
    options: Required<Pick<BlockStoreOptions, 'encoding' | 'sync' | 'cacheSizeBytes' | 'readOnly' | 'idleCheckpointMs'>> & { maxSizeBytes: number | undefined },
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
    this.#readOnly = options.readOnly;
    if (options.readOnly) this.#state.markReadOnly();
    this.#blockSize = superblock.blockSize;
    const blockSize = superblock.blockSize;
    const pageSize = pageSizeFor(blockSize);
    const state = this.#state;
    const dataCacheBytes = Math.floor(options.cacheSizeBytes * (1 - PAGE_CACHE_SHARE));
    const cacheBlocks = Math.floor(dataCacheBytes / blockSize);
    const pool = new BufferPool(blockSize, device.ioAlignment, cacheBlocks + 1024);
    const cache = new BlockCache(pool, dataCacheBytes);
    this.#tree = tree;
    this.#pageBlocks = pageSize / blockSize;
    const walSpace = recoveredWalSpace(superblock.walBlockCount, liveCommits, walHeadBlock);
    const freeSetFrameBlocks = frameBlockCount(freeSetPayloadBytes(superblock.blockCount - superblock.dataStartBlock), blockSize);
    this.#space = new Space({ device, blockSize, cache, state, allocator, pageBlocks: this.#pageBlocks, pageCapacityBytes: pageCapacityBytes(pageSize), freeSetFrameBlocks, tree });
    this.#checkpointer = new Checkpointer({ device, superblock, sync: options.sync, tree, pages: treePages, pageBlocks: this.#pageBlocks, walSpace, space: this.#space, state });
    this.#grid = new Grid({ device, blockSize, pool, cache, space: this.#space });
    this.#growth = new StoreGrowth({ device, checkpointer: this.#checkpointer, space: this.#space, state: this.#state, blockSize, maxSizeBytes: options.maxSizeBytes });
    // Room for a write refused for it: first the blocks only time holds, then a growth.
    this.#growthWait = new GrowthWait({ growth: this.#growth, state: this.#state, makeRoom: (blocksWanted) => this.#journal.makeRoom(blocksWanted) });
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
      dirtyPagesMax: dirtyPagesMaxFor(options.cacheSizeBytes, pageSize),
      space: this.#space,
      grid: this.#grid,
      checkpointer: this.#checkpointer,
      growth: this.#growth,
      state,
      replayPending: () => this.#replay?.pending === true,
      idleCheckpointMs: options.idleCheckpointMs,
    });
    this.#reader = new StoreReader({ state, tree, space: this.#space, grid: this.#grid, codec: this.#codec, replay: () => this.#replay });
    // Values up to half a page are inline, whatever the block size: data
    // extents are allocated a page at a time (ExtentAllocator), so on a
    // store of 512-byte blocks a 300-byte value in an extent would take
    // 4 KiB. But no more than one put of the longest key can commit: on a
    // small WAL (8 KiB of 512-byte blocks: 1 920 bytes a commit) a 2 KiB
    // value inline would be refused where an extent value is taken (found
    // by a review).
    this.#inlineValueMax = Math.min(pageSize / 2, this.#journal.commitPayloadMax - COMMIT_HEADER_SIZE - inlinePutRecordBytes(KEY_SIZE_MAX, 0));
    this.#writeEncoding = {
      codec: this.#codec,
      blockSize,
      pageBlocks: this.#pageBlocks,
      inlineValueMax: this.#inlineValueMax,
      commitPayloadMax: this.#journal.commitPayloadMax,
      valueCopies: new ValueCopySlab(),
    };
    this.#streamParts = {
      blockSize,
      state,
      tree,
      space: this.#space,
      grid: this.#grid,
      journal: this.#journal,
      growth: this.#growth,
      growthWait: this.#growthWait,
      endingStreams: this.#endingStreams,
      chunkWritesInFlight: new Set(),
      entryNow: (keyString) => this.#reader.entryNow(keyString),
      replayed: () => this.#replayed(),
      replayedForWrites: () => this.#replayedForWrites(),
    };
  }

  /**
   * Opens (or, with `create`, makes) the store at `path`: a regular file or
   * a raw block device. Recovers from a crash: newest valid superblock,
   * the checkpoint's free set and tree root, the WAL read and checked up to
   * the first incomplete commit; the replay of that tail into the tree
   * goes on after open returns (whenRecovered(); ReplayOverlay says what
   * waits for it). Reads no page it does not need: the time it takes
   * follows the WAL tail, not the keys. With `readOnly`, it writes nothing:
   * the replayed commits stay in memory, and the superblock repairs and
   * WAL erasures a writer would make first are left to the next writer.
   *
   * @typeParam V - The type of the store's values (see BlockStore).
   */
  static async open<V = unknown>(path: string, given: BlockStoreOptions = {}): Promise<BlockStore<V>> {
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('path must be a non-empty string');
    if (given === null || typeof given !== 'object') throw invalidArgument('options must be an object');
    const options = optionFields(given, BLOCK_STORE_OPTION_NAMES, 'options');
    const create = checkBoolean(options.create, 'create', false);
    const readOnly = checkBoolean(options.readOnly, 'readOnly', false);
    if (readOnly && create) throw invalidArgument("options 'readOnly' and 'create' exclude each other: a read-only open writes nothing");
    const sync = checkBoolean(options.sync, 'sync', true);
    const idleCheckpointMs = checkSize(options.idleCheckpointMs, 'idleCheckpointMs', DEFAULT_IDLE_CHECKPOINT_MS, 0);
    if (idleCheckpointMs > IDLE_CHECKPOINT_MS_MAX) throw invalidArgument(`option 'idleCheckpointMs' must be at most ${IDLE_CHECKPOINT_MS_MAX} (setTimeout's limit), got ${idleCheckpointMs}`, 'range');
    if (options.encoding !== undefined) valueCodec(options.encoding); // validates
    const cacheSizeBytes = checkSize(options.cacheSizeBytes, 'cacheSizeBytes', DEFAULT_CACHE_SIZE_BYTES, 0);
    const blockSize = checkBlockSize(options.blockSize);
    const maxSizeBytes = options.maxSizeBytes === undefined ? undefined : checkSize(options.maxSizeBytes, 'maxSizeBytes', 0, 0);
    // Without sizeBytes a new file starts small (DEFAULT_STORE_SIZE_BYTES, or
    // the cap if lower) with a WAL of half of it, and grows.
    const sizeBytes = checkSize(options.sizeBytes, 'sizeBytes', Math.min(DEFAULT_STORE_SIZE_BYTES, maxSizeBytes ?? Infinity), 0);
    if (options.sizeBytes !== undefined && maxSizeBytes !== undefined && maxSizeBytes < sizeBytes) {
      throw invalidArgument(`option 'maxSizeBytes' (${maxSizeBytes}) is less than 'sizeBytes' (${sizeBytes})`, 'range');
    }
    checkWalSize(options.walSizeBytes);
    if (options.ring !== undefined && !IoUringActor.isActor(options.ring)) throw invalidArgument('ring must be an IoUringActor (one IoUringActor.start() or attach() made)');
    if (options.device !== undefined) guardedCheck("option 'device'", () => checkBlockDevice(options.device));
    const walSizeBytes = options.walSizeBytes ?? (options.sizeBytes === undefined && options.device === undefined ? Math.min(DEFAULT_NEW_FILE_WAL_SIZE_BYTES, sizeBytes / 2) : undefined);
    if (create && options.device === undefined) {
      // A new file: it grows.
      const layout = storeLayout(sizeBytes, blockSize, walSizeBytes, true);
      if (typeof layout === 'string') {
        // The options that made the layout: the caller's, not one it left out.
        const made = [
          options.sizeBytes !== undefined ? "'sizeBytes'" : maxSizeBytes !== undefined ? "'maxSizeBytes' (a new store's first size without sizeBytes)" : undefined,
          options.walSizeBytes !== undefined ? "'walSizeBytes'" : undefined,
        ].filter((name) => name !== undefined);
        throw invalidArgument(`${made.length === 0 ? 'the default sizes' : `option${made.length > 1 ? 's' : ''} ${made.join(' and ')}`}: ${layout}`, 'range');
      }
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
        storeFile = await openStoreFile(ring, path, { create, sizeBytes: sizeBytes - (sizeBytes % blockSize), readOnly });
        device = storeFile.device;
      }
      // Only a blank device (a new or empty file) is ever formatted here;
      // see store_file.ts for why nothing else is, zeros included.
      const blank = storeFile !== undefined ? storeFile.blank : device.blank === true;
      let probe: SuperblockProbe;
      if (blank) {
        if (!create) throw new StoreError('ERR_STORE_NOT_FOUND', `'${path}' holds no ringstore (${STORE_ADVICE.createOne})`);
        const superblock = await formatStore(device, blockSize, walSizeBytes, options.encoding ?? DEFAULT_ENCODING, maxSizeBytes);
        await storeFile?.publish();
        formatted = true;
        probe = { kind: 'found', superblock, slotsToRepair: [] };
      } else {
        probe = await probeSuperblocks(device);
        if (probe.kind !== 'found') {
          throw new StoreError(
            'ERR_STORE_NOT_FOUND',
            `'${path}' holds ${probe.kind === 'empty' ? 'zeros' : 'data'} but no ringstore; it is left untouched (${STORE_ADVICE.formatOverAnything})`,
          );
        }
      }
      if (probe.superblock.blockSize % Math.max(device.ioAlignment, 1) !== 0) {
        // Not the caller's argument (found by a review: ERR_INVALID_ARG): the
        // store is fine, this path to it cannot do its IO.
        throw new StoreError(
          'ERR_STORE_UNSUPPORTED',
          `'${path}': the store's block size ${probe.superblock.blockSize} is not a multiple of this device's direct-IO alignment ${device.ioAlignment} (a device of larger sectors over the store's bytes?): open it through a file or device of sectors of at most ${probe.superblock.blockSize} bytes; \`ringstore dump --salvage\` reads it as it is`,
        );
      }
      const superblock = probe.superblock;
      // Without an encoding option the store decodes values the way it was
      // created to. An explicit one other than that is refused, but for
      // 'binary' (the stored bytes as they are: dump, load, tools): values
      // carry no mark of their encoding, so a handle of another one would
      // write values the store's own handles then misread without an error
      // (a 5 put through 'json' into a msgpack store read back as 53; found
      // by a review), and read the store's values the same way.
      const recordedEncoding = encodingOfId(superblock.valueEncodingId);
      if (options.encoding !== undefined && options.encoding !== recordedEncoding && options.encoding !== 'binary') {
        throw invalidArgument(
          `option 'encoding' is '${options.encoding}', but the store's values are '${recordedEncoding}' (recorded when it was made): open it without the option, with '${recordedEncoding}', or with 'binary' for the stored bytes`,
          'range',
        );
      }
      const encoding = options.encoding ?? recordedEncoding;
      const pageSize = pageSizeFor(superblock.blockSize);
      // The block count follows the store's growth (the allocator's).
      let allocator: ExtentAllocator | undefined;
      const geometry: TreeGeometry = {
        blockSize: superblock.blockSize,
        pageSize,
        storeTag: superblock.storeTag,
        dataStartBlock: superblock.dataStartBlock,
        get blockCount() {
          return allocator?.blockCount ?? superblock.blockCount;
        },
      };
      // What the store's parts do IO through: nothing once it is closed.
      const guarded = new ClosedDeviceGuard(device);
      const treePages = new TreePages(guarded, () => geometry);
      const tree = new PageTree(
        {
          io: treePages,
          capacityBytes: pageCapacityBytes(pageSize),
          entryBytes: (key, entry) => (entry.value instanceof Uint8Array ? leafInlineEntryBytes(key.length, entry.value.length) : leafEntryBytes(key.length, entry.value)),
          childBytes: (separator) => branchChildBytes(separator.length),
          cacheBytesMax: Math.floor(cacheSizeBytes * PAGE_CACHE_SHARE),
        },
        superblock.treeRoot === undefined ? undefined : { ref: { block: superblock.treeRoot.block, crc: superblock.treeRoot.crc }, level: superblock.treeRoot.level },
        superblock.keyCount,
      );
      const recovered = await recoverStore(guarded, superblock, probe.slotsToRepair);
      // What recovery read may be in the device's volatile cache only: a
      // process killed (kill -9) between its writes and their flush leaves
      // them there, readable and not durable. A writer builds on it — replays
      // the tail, vouches for it in its first commit (durableSequence), reuses
      // the blocks that superblock freed — so it makes it durable first. (A
      // review: kill -9, reopen, one acknowledged put, power loss, and the
      // store was refused as damaged in the middle of its log, or its free
      // set overwritten.) A read-only open writes nothing on it; what it
      // shows may still be lost to a power loss (docs/durability.md, 4).
      if (!readOnly) await guarded.sync();
      allocator = recovered.allocator;
      const store = new BlockStore<V>(
        path,
        guarded,
        ownedRing,
        { encoding, sync, cacheSizeBytes, readOnly, maxSizeBytes, idleCheckpointMs },
        recovered.superblock,
        tree,
        treePages,
        recovered.allocator,
        recovered.liveCommits,
        recovered.walHeadBlock,
        recovered.nextSequence,
      );
      // A read-only store never writes, so never reuses the stale blocks'
      // sequence numbers: they only matter to the next writer, which erases them.
      if (!readOnly && recovered.slotsToRepair.length > 0) await store.#checkpointer.writeSuperblockSlots(recovered.superblock, recovered.slotsToRepair);
      if (!readOnly && recovered.staleBlocks.length > 0) await store.#checkpointer.eraseWalBlocks(recovered.staleBlocks);
      if (recovered.pendingCommits.length > 0) {
        // The tail is read and checked: open returns, and the replay goes on
        // in the background (ReplayOverlay: point reads see the tail at once,
        // everything else waits for it).
        const replayParts = { tree, allocator: recovered.allocator, space: store.#space, journal: store.#journal, checkpointer: store.#checkpointer, readOnly };
        const overlay = new ReplayOverlay(recovered.pendingCommits, (commitApplied, tailRole) =>
          replayWal(replayParts, recovered.superblock, recovered.pendingCommits, commitApplied, tailRole),
        );
        store.#replay = overlay;
        overlay.settled().then(
          () => {
            if (store.#replay === overlay) store.#replay = undefined;
            // A read-only store never writes: no checkpoint of the tail it replayed into memory.
            if (!readOnly) store.#journal.tailReplayed();
          },
          (error: unknown) => store.#state.fail(error),
        );
      }
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
  static async format(path: string, given: Pick<BlockStoreOptions, 'sizeBytes' | 'blockSize' | 'walSizeBytes' | 'ring' | 'encoding'> = {}): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw invalidArgument('path must be a non-empty string');
    if (given === null || typeof given !== 'object') throw invalidArgument('options must be an object');
    const options = optionFields(given, ['sizeBytes', 'blockSize', 'walSizeBytes', 'ring', 'encoding'], 'options');
    const blockSize = checkBlockSize(options.blockSize);
    const sizeBytes = checkSize(options.sizeBytes, 'sizeBytes', 0, 0);
    checkWalSize(options.walSizeBytes);
    if (options.ring !== undefined && !IoUringActor.isActor(options.ring)) throw invalidArgument('ring must be an IoUringActor (one IoUringActor.start() or attach() made)');
    /** The WAL of a store whose size is chosen here (a new or empty file without sizeBytes): as open's. */
    const walOfDefaultSize = options.walSizeBytes ?? DEFAULT_NEW_FILE_WAL_SIZE_BYTES;
    const encoding = options.encoding ?? DEFAULT_ENCODING;
    valueCodec(encoding); // validates
    const ownedRing = options.ring === undefined ? IoUringActor.start(STORE_RING_OPTIONS) : undefined;
    const ring = options.ring ?? ownedRing!;
    try {
      let device: RingBlockDevice;
      try {
        device = await RingBlockDevice.open(ring, path, { toWrite: true });
      } catch (error) {
        if (!(error instanceof StoreError && error.code === 'ERR_STORE_NOT_FOUND')) throw error;
        // Whole blocks, as open's new files: a file of another length is a store cut short to open().
        const newFileBytes = sizeBytes || DEFAULT_STORE_SIZE_BYTES;
        const created = await openStoreFile(ring, path, { create: true, sizeBytes: newFileBytes - (newFileBytes % blockSize) });
        let published = false;
        try {
          await formatStore(created.device, blockSize, sizeBytes === 0 ? walOfDefaultSize : options.walSizeBytes, encoding);
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
        checkBlockSizeServed(blockSize, device);
        const walSizeBytes = sizeBytes === 0 && !device.isBlockDevice && device.fileLengthBytes === 0 ? walOfDefaultSize : options.walSizeBytes;
        const layout = storeLayout(targetBytes - (targetBytes % Math.max(device.ioAlignment, 1)), blockSize, walSizeBytes, deviceGrows(device));
        if (typeof layout === 'string') throw new StoreError('ERR_STORE_NO_SPACE', `'${path}' is too small for a store: ${layout}`);
        if (targetBytes > device.fileLengthBytes) await device.grow(targetBytes);
        // The old superblocks go first: a crash while the WAL is zeroed must
        // not leave an older store that opens without the commits it loses.
        await eraseSuperblocks(device);
        await formatStore(device, blockSize, walSizeBytes, encoding);
      } finally {
        await device.close();
      }
    } finally {
      await ownedRing?.close();
    }
  }

  // ---- Reads (store_reader.ts) ----

  /** The value of `key`, or undefined. Sees every acknowledged write. */
  get(key: Key): Promise<V | undefined> {
    try {
      this.#state.checkOpen();
      return this.#reader.get(toKeyString(key)) as Promise<V | undefined>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Whether `key` has a value. Sees every acknowledged write; reads no value. */
  has(key: Key): Promise<boolean> {
    try {
      this.#state.checkOpen();
      return this.#reader.has(toKeyString(key));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Resolves once the WAL tail recovered at open is in the tree (at once
   * when there was none, as after a clean close); rejects with the error
   * that stopped its replay (then the store has failed). Point reads do not
   * wait for it; writes, ranges, counts, checkpoints and close do.
   */
  whenRecovered(): Promise<void> {
    try {
      // A call like any other: refused after close() (it resolved then, found by a review).
      this.#state.checkOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#replayed() ?? Promise.resolve();
  }

  /**
   * Waits for the replay of the WAL tail, if one runs (whenRecovered);
   * rejects with its error: damage (ERR_STORE_CORRUPT) or the kernel's (EIO
   * and the rest) as it is, anything without a code (a bug) as the store's
   * failure, ERR_STORE_FAILED caused by it, so every rejection has a code.
   */
  #replayed(): Promise<void> | undefined {
    return this.#replay?.settled().catch((error: unknown) => {
      throw error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' ? error : this.#state.fail(error);
    });
  }

  /** #replayed() for a write: a failed replay rejects it with the store's failure (ERR_STORE_FAILED), as every write after a failure. */
  #replayedForWrites(): Promise<void> | undefined {
    return this.#replay?.settled().catch((error: unknown) => {
      throw this.#state.fail(error);
    });
  }

  /**
   * The values of `keys`, in the same order: undefined where a key has none
   * (a key given twice gets its value twice). Every key is validated before
   * anything is read. One consistent state: all values are those of one
   * moment of the call, every write acknowledged before it and none started
   * after it (the pages in memory are looked up at once, the rest through a
   * snapshot of that moment). Page and value reads run in parallel, at most
   * GET_MANY_READS_IN_FLIGHT_MAX at a time.
   */
  async getMany(keys: readonly Key[]): Promise<(V | undefined)[]> {
    this.#state.checkOpen();
    // Each key read once: a getter cannot hand validation one key and the lookup another.
    const keyStrings = mapElements(keys, 'the keys of getMany', `getMany takes an array of keys, got ${describeArgument(keys)}`, (key, index) => {
      try {
        return toKeyString(key);
      } catch (error) {
        if (error instanceof Error) error.message = `getMany key ${index}: ${error.message}`;
        throw error;
      }
    });
    return (await this.#reader.getMany(keyStrings)) as (V | undefined)[];
  }

  /**
   * Entries in key order (bytewise), over a snapshot taken when iteration
   * starts: writes made meanwhile are not seen. Bounds as in abstract-level:
   * `gte` takes precedence over `gt` and `lte` over `lt`; every bound given
   * is validated, the one that yields too. `prefix` narrows the range to
   * keys starting with it (KeyRangeOptions.prefix). With `values: false`
   * the values are not read and each entry is [key, undefined].
   */
  range(options: RangeOptions & { values: false }): AsyncGenerator<[Key, undefined]>;
  range(options?: RangeOptions & { values?: true }): AsyncGenerator<[Key, V]>;
  range(options?: RangeOptions): AsyncGenerator<[Key, V | undefined]>;
  range(options: RangeOptions = {}): AsyncGenerator<[Key, V | undefined]> {
    return this.#scan(options, (range) => {
      const values = range.values;
      if (values !== undefined && typeof values !== 'boolean') throw invalidArgument(`range option 'values' must be a boolean, got ${describeArgument(values)}`);
      return values === false ? 'entriesWithoutValues' : 'entries';
    }) as AsyncGenerator<[Key, V | undefined]>;
  }

  /**
   * The keys of a range, in key order (or reversed), over a snapshot taken
   * when iteration starts; reads no value. Options as for range().
   */
  keys(options: KeyRangeOptions = {}): AsyncGenerator<Key> {
    return this.#scan(options, () => 'keys') as AsyncGenerator<Key>;
  }

  /**
   * The values of a range, in key order (or reversed), over a snapshot
   * taken when iteration starts. Options as for range().
   */
  values(options: KeyRangeOptions = {}): AsyncGenerator<V> {
    return this.#scan(options, () => 'values') as AsyncGenerator<V>;
  }

  /**
   * The reader's scan of the range `options` give, in the shape `shapeOf`
   * picks (it checks what only its call takes). Not a generator itself:
   * the reader's scan (ScanIterator) is the one iterator between the
   * caller's loop and the tree. The checks and the wait for the replay (ranges need the
   * whole tree: the WAL tail replayed) run on the first next(), as they
   * would in a generator.
   */
  #scan(options: unknown, shapeOf: (range: CheckedRange) => ScanShape): AsyncGenerator<unknown> {
    return this.#reader.scan(async () => {
      this.#state.checkOpen();
      const range = checkRangeOptions(options);
      const shape = shapeOf(range);
      await this.#replayed();
      return { range, shape };
    });
  }

  /**
   * How many keys a range holds (at most `limit`), in one snapshot; reads
   * no value. The whole store without a limit is O(1) (the tree counts its
   * keys); a range walks its leaves.
   */
  async count(options: KeyRangeOptions = {}): Promise<number> {
    this.#state.checkOpen();
    const range = checkRangeOptions(options);
    await this.#replayed();
    return this.#reader.count(range);
  }

  // ---- Writes ----

  /** Stores `value` under `key`; resolves once durable (sync: true). */
  async put(key: Key, value: V): Promise<void> {
    await this.#write([{ type: 'put', key, value }]);
  }

  /** Removes `key`; resolves to whether it existed, once durable. */
  async delete(key: Key): Promise<boolean> {
    const write = await this.#write([{ type: 'del', key }]);
    return write.operations[0].existed;
  }

  /** Applies all operations atomically: after a crash, all or none of them. */
  async batch(operations: BatchOperation<V>[]): Promise<void> {
    // The array is read in #write, after the store's state: a closed store says so first.
    await this.#write(operations, true);
  }

  /**
   * Deletes the keys of a range (options as for range(), `limit` and
   * `reverse` choosing which keys when the range holds more); resolves to
   * how many it deleted, once they are durable (as a batch of deletes).
   *
   * Not atomic: it deletes in batches of at most CLEAR_BATCH_KEYS_MAX keys
   * (fewer when a commit's share of the WAL holds fewer), each an atomic
   * commit of its own, so it never holds more than one batch of keys in
   * memory nor needs one unbounded commit. Each batch takes the next keys of
   * the range from the store as it is then (from the range's start, or its
   * end with `reverse`). A crash part way leaves the batches committed before
   * it deleted and the rest of the range as it was; a write into the range
   * made during the call may or may not be deleted (it is kept if it lands
   * after the batch that covers its key). On a full store a batch that
   * ERR_STORE_FULL refuses is retried at half the size, down to one key.
   */
  async clear(options: KeyRangeOptions = {}): Promise<number> {
    this.#state.checkWritable();
    const range = checkRangeOptions(options);
    await this.#replayedForWrites();
    let { low, lowInclusive, high, highInclusive } = range as KeyRange;
    let batchKeysMax = CLEAR_BATCH_KEYS_MAX;
    let deleted = 0;
    while (deleted < range.limit) {
      this.#state.checkWritable();
      const batch: BatchOperation<V>[] = [];
      let lastKeyString = '';
      // The batch's commit payload, as #write counts it (QueuedWrite.payloadBytes).
      let payloadBytes = COMMIT_HEADER_SIZE;
      // The next keys in the tree as it is now; the pin ends before the
      // deletes are written, so their blocks can be freed and reused.
      const snapshot = this.#tree.snapshot();
      const epoch = this.#space.beginRead();
      try {
        for await (const [keyString, entry] of this.#tree.entries(snapshot, { low, lowInclusive, high, highInclusive, reverse: range.reverse })) {
          this.#state.checkOpen();
          if (batch.length >= batchKeysMax || deleted + batch.length >= range.limit) break;
          const recordBytes = deleteRecordBytes(keyString.length);
          if (batch.length > 0 && payloadBytes + recordBytes > this.#journal.commitPayloadMax) break;
          payloadBytes += recordBytes;
          batch.push({ type: 'del', key: keyStringToKey(keyString, entry.isString) });
          lastKeyString = keyString;
        }
      } catch (error) {
        throw this.#state.closedOr(error);
      } finally {
        this.#space.endRead(epoch);
      }
      if (batch.length === 0) break;
      let written: PendingWrite;
      try {
        written = await this.#write(batch);
      } catch (error) {
        if (error instanceof StoreError && error.code === 'ERR_STORE_FULL' && batch.length > 1) {
          batchKeysMax = Math.ceil(batch.length / 2);
          continue;
        }
        throw error;
      }
      // What the commit deleted, not what the batch named: a write called
      // while the batch was built (a delete, another clear) is applied
      // before it and may have removed some of its keys (found by a review:
      // two clears of the same 100 keys resolved to 100 each, and a limit
      // was used up by keys already gone). A limit then takes the next keys.
      for (const operation of written.operations) if (operation.existed) deleted++;
      // The range goes on past the last key in the batch.
      if (range.reverse) {
        high = lastKeyString;
        highInclusive = false;
      } else {
        low = lastKeyString;
        lowInclusive = false;
      }
    }
    return deleted;
  }

  /**
   * A writable stream storing a value of any size under `key` without
   * holding it in memory; the put commits (durably) when the stream finishes.
   * The bytes are stored as they are (no value encoding) and marked raw
   * (VALUE_FLAG_RAW), so get() and range() give them back as a Buffer
   * whatever the store's encoding.
   */
  createWriteStream(key: Key, ...unsupported: never[]): Writable {
    refuseStreamOptions('createWriteStream', unsupported, 'it has no options: the stream writes with its defaults and commits at finish');
    return createValueWriteStream(this.#streamParts, key);
  }

  /**
   * createWriteStream, calling `onOrdered` at the moment the stream's put
   * takes its place in commit order — after end(), once its last bytes are
   * written: every write called before that moment commits before it, every
   * one called after it after it. The crash lab records a stream there
   * (LabStore), since commit order is what its oracle judges by.
   *
   * @internal
   */
  createOrderedWriteStream(key: Key, onOrdered: () => void): Writable {
    return createValueWriteStream(this.#streamParts, key, onOrdered);
  }

  /**
   * A readable stream of the stored bytes of `key` (as written, no
   * decoding); a missing key errors the stream with ERR_KEY_NOT_FOUND.
   */
  createReadStream(key: Key, ...unsupported: never[]): Readable {
    // fs.createReadStream's { start, end } would be silently ignored: a
    // caller asking for a byte range must not get the whole value instead.
    refuseStreamOptions('createReadStream', unsupported, 'it has no byte range (start, end) or other options: a value has one checksum (format v2), so a range would still read the whole value to check it');
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

  /**
   * Copies the store into a new store file at `path` while it stays open
   * for reads and writes (store_backup.ts): the copy holds every write
   * acknowledged before the call, and each write made while it runs whole
   * or not at all (one snapshot, taken at the call). The new store has this
   * one's block size and recorded encoding, opens as any store does, and is
   * at `path` only once whole and durable. `path` must not exist
   * (ERR_STORE_PATH). Works on a read-only handle too.
   */
  backup(path: string, ...unsupported: never[]): Promise<BackupReport> {
    try {
      this.#state.checkOpen();
      if (unsupported.length > 0) throw invalidArgument('backup(path) takes no options: the new store has this one\'s block size and encoding, and grows as it is filled');
    } catch (error) {
      return Promise.reject(error);
    }
    return backupStore(this, path, BACKUP_STORE_MAKER);
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
  checkpoint(): Promise<void> {
    try {
      this.#state.checkWritable();
    } catch (error) {
      return Promise.reject(error);
    }
    // Called before close(), it is finished by it, as a flush() is (it was
    // refused with ERR_STORE_CLOSED when close() began during its wait for
    // the replay: found by a review).
    return this.#finishedByClose(this.#checkpointCalled());
  }

  /** `work` (a flush() or checkpoint() call), which close() begun after it waits for. */
  #finishedByClose(work: Promise<void>): Promise<void> {
    const settled: Promise<boolean> = work.then(
      () => this.#flushesInFlight.delete(settled),
      () => this.#flushesInFlight.delete(settled),
    );
    this.#flushesInFlight.add(settled);
    return work;
  }

  async #checkpointCalled(): Promise<void> {
    await this.#replayedForWrites();
    this.#state.checkWritableWhileClosing();
    await this.#growthWait.handedOver();
    await this.#journal.flushCommits();
    await this.#journal.checkpoint().catch((error: unknown) => {
      // Refused for a page it could not read: the read's own error.
      throw error instanceof PageUnreadable ? error.cause : error;
    });
  }

  /** Resolves when every write accepted so far is durable (sync: false makes this useful). */
  flush(): Promise<void> {
    // Not an async function: it resolves when the journal's flush does, not later.
    try {
      this.#state.checkOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    // A read-only store has written nothing to make durable (and the durable
    // marker commit of a sync: false flush would be a write).
    if (this.#readOnly) return Promise.resolve();
    // With sync: false its durable marker is a commit: after the replay, as
    // every write, and after the writes waiting for a growth (GrowthWait).
    const inJournal = (): Promise<void> => (this.#growthWait.waiting ? this.#growthWait.handedOver().then(() => this.#journal.flush()) : this.#journal.flush());
    // Write streams ended before the call are writes accepted before it: in the journal first.
    const endedStreams = this.#endingStreams.handedOver();
    const replayed = this.#replayedForWrites();
    let flushed: Promise<void>;
    if (endedStreams === undefined) flushed = replayed === undefined ? inJournal() : replayed.then(inJournal);
    else flushed = (replayed === undefined ? endedStreams : Promise.all([replayed, endedStreams])).then(inJournal);
    return this.#finishedByClose(flushed);
  }

  /** Settles once no write stream has a chunk write in flight (they never reject). */
  async #chunkWritesSettled(): Promise<void> {
    const chunkWrites = this.#streamParts.chunkWritesInFlight;
    while (chunkWrites.size > 0) await Promise.all(chunkWrites);
  }

  /**
   * Finishes pending writes, writes a checkpoint, and releases the device
   * (and the ring, if the store started it). Idempotent. A read-only store
   * writes nothing: it only releases the device. Rejects, once all is
   * released, with the store's failure (sync: false) or with the error of
   * a page its checkpoint could not read (docs/store.md).
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    // Write streams ended before close() are writes called before it: finished too.
    const endedStreams = this.#endingStreams.admitPastClose();
    this.#state.beginClose();
    // With sync: false the writes resolved before close() are flushed at
    // once: a failure met later in close() (a stream's failed chunk write)
    // fails the store, and no flush follows a failure (found by a review:
    // such a failure while close() waited for an ended stream lost a put
    // acknowledged before it). Behind a flush already running, one at a
    // time: an fdatasync sent beside a failing one may report success for
    // what the failed one lost (a review saw a flush sent so let the store
    // trim a block a durable value still used). A failure met while waiting
    // for that flush still refuses this one: close() rejects then.
    const appliedAtStart = this.#journal.appliedSequence;
    const flushedAtStart = this.#sync || this.#readOnly ? undefined : this.#journal.syncNow().catch(() => undefined);
    // The read's error when the checkpoint needed a page it could not read:
    // damage (or a failing device) the caller must hear of, though every
    // acknowledged write stays durable in the WAL (it was told to no one).
    let unreadablePage: unknown;
    this.#closing = (async () => {
      try {
        // The tail is replayed before the checkpoint that covers it (a failed replay has failed the store: nothing is written).
        await this.#replay?.settled().catch(() => undefined);
        await endedStreams;
        // So are flushes called before it, marker commits included.
        await Promise.all(this.#flushesInFlight);
        // Writes called before close() and waiting for a growth are finished too.
        await this.#growthWait.handedOver();
        await this.#journal.flushCommits().catch(() => undefined);
        // A growth under way ends before the device closes under it.
        await this.#growth.settled();
        if (this.#state.failure === undefined && !this.#readOnly) {
          // Then the commits applied since (those of streams ended before
          // close(), of writes waiting for a growth), before the streams
          // are waited for: a stream's failure keeps none of them from
          // being durable (found by a review).
          await flushedAtStart;
          if (!this.#sync && this.#journal.appliedSequence !== appliedAtStart) await this.#journal.syncNow().catch(() => undefined);
          // A failed chunk write of a stream never ended fails the store:
          // known before the checkpoint, so that close() writes neither a
          // checkpoint nor a clean mark over it.
          await this.#chunkWritesSettled();
        }
        if (this.#state.failure === undefined && !this.#readOnly) {
          // Nothing reads the pages it writes: they need not be cached.
          this.#tree.stopCachingWrittenPages();
          // No room for it (ERR_STORE_FULL) leaves the commits to the next
          // open's replay; a write or flush error has failed the store.
          await this.#journal.checkpoint().catch((error: unknown) => {
            if (error instanceof PageUnreadable) unreadablePage = error.cause;
          });
          await this.#space.trimsSettled();
          // Every commit is in the checkpoint now: the next open reads no WAL.
          if (this.#state.failure === undefined) await this.#checkpointer.markClean(this.#journal.lastSequence).catch((error: unknown) => this.#state.fail(error));
        }
      } finally {
        // A checkpoint the store failed under (none was started above)
        // stops at its next batch: its writes settle before the device
        // closes (found by a review: close() released the device with a
        // page write in flight, and resolved before that checkpoint did).
        await this.#checkpointer.settled();
        // A growth started since close() waited for one (none should: a
        // write not finished by close() checks before it grows) ends before
        // the device closes under it.
        await this.#growth.settled();
        this.#state.markClosed();
        // No new IO from here (a late read, a trim): only what is in flight settles.
        this.#device.shut();
        this.#tree.releaseCache();
        await this.#journal.close();
        // Write streams' chunk writes, of streams never ended too: no IO
        // goes on past the device's close (when close() did not get to its
        // checkpoint, they may still be in flight here).
        await this.#chunkWritesSettled();
        // Trims started before the store was marked closed (a read ending
        // during close); none start after it.
        await this.#space.trimsSettled();
        await this.#device.close().catch(() => undefined);
        await this.#ownedRing?.close();
      }
      // With sync: false, writes resolved before they were durable and close
      // is the promise that they are: if a flush failed (now, or earlier in
      // the background, with no write since to report it), say so. With
      // sync: true every acknowledged write is durable in the WAL whatever
      // close() met, and close() resolves: an IO error of its own (its
      // checkpoint) is told by `failure` alone (a review, session 45;
      // rejecting then, but not for a failure some write was already told
      // of, made the answer depend on timing: a failed background
      // checkpoint just before close() was told to no one either). See
      // docs/store.md.
      if (!this.#sync && this.#state.failure !== undefined) throw this.#state.failure;
      if (unreadablePage !== undefined) throw unreadablePage;
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
  verifyIntegrity(): Promise<IntegrityReport> {
    try {
      this.#state.checkOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.whenRecovered().then(() =>
      checkIntegrity({
        state: this.#state,
        journal: this.#journal,
        checkpointer: this.#checkpointer,
        tree: this.#tree,
        space: this.#space,
        pageBlocks: this.#pageBlocks,
        readValue: (entry) => this.#reader.readValue(entry),
      }),
    );
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

  /**
   * lastCommitSequence, also while close() runs (and after): the crash lab
   * reads it as a write resolves, and a write its workload did not wait for
   * resolves inside the close that ends the run. ringstore/level relies on
   * lastCommitSequence refusing a closing store, so this is apart.
   *
   * @internal
   */
  get appliedSequence(): number {
    return this.#journal.appliedSequence;
  }

  /**
   * Why the store stopped accepting writes — ERR_STORE_FAILED, whose
   * `cause` is the device's error (or ERR_STORE_CORRUPT's) — or undefined
   * while it takes them. Readable after close() too: with sync: true,
   * close() resolves whatever IO error its own checkpoint met (every
   * acknowledged write is durable in the WAL), and this says whether it met
   * one (before, nothing did).
   */
  get failure(): StoreError | undefined {
    return this.#state.failure;
  }

  /** Whether the store was opened with readOnly: true (every write is refused with ERR_STORE_READ_ONLY). */
  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** Counts of keys, blocks, caches, commits and checkpoints, as they are now (BlockStoreStats). */
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
      growths: this.#growth.growthCount,
      checkpointWaits: this.#journal.checkpointWaitCount,
      tailCommitsToReplay: this.#replay?.commitsToApply ?? 0,
    };
  }

  // ---- The write path ----

  /**
   * Checks, encodes and queues a write (write_encoding.ts). While the WAL
   * tail recovered at open is replayed, the encoded write is held and
   * queued when the replay ends, in call order (ReplayOverlay.afterReplay).
   */
  #write(operations: unknown, callersArray = false): Promise<PendingWrite> {
    let encoded: EncodedWrite;
    const replay = this.#replay;
    try {
      this.#state.checkWritable();
      // A caller's array (batch) is read once, under a guard; the façade's own (put, delete) is ours.
      const elements = callersArray
        ? mapElements(operations, 'the operations of batch', `batch takes an array of operations, got ${describeArgument(operations)}`, checkedOperation)
        : (operations as readonly unknown[]);
      encoded = encodeWrite(elements, this.#writeEncoding, replay !== undefined);
    } catch (error) {
      return Promise.reject(error);
    }
    if (replay !== undefined) return replay.afterReplay(() => this.#queueInOrder(encoded), (error) => this.#state.fail(error));
    return this.#queueInOrder(encoded);
  }

  /**
   * Hands an encoded write to the journal in call order: at once, unless
   * writes wait for the store to grow (then behind them), or it is refused
   * for room and the store can grow (then it waits for that growth first).
   */
  #queueInOrder(encoded: EncodedWrite): Promise<PendingWrite> {
    if (!this.#growthWait.waiting) {
      const queued = this.#tryQueue(encoded, 0);
      if (queued instanceof Promise) return queued;
      return this.#holdForGrowth(encoded, 1, queued);
    }
    return this.#holdForGrowth(encoded, 0, undefined);
  }

  /** Makes `encoded` wait its turn in the GrowthWait, with copies of its large values: it is tried again after this call has returned. */
  #holdForGrowth(encoded: EncodedWrite, attempt: number, refusal: RoomRefusal | undefined): Promise<PendingWrite> {
    const kept = withLargeValuesCopied(encoded, this.#inlineValueMax);
    let attempts = attempt;
    return this.#growthWait.hold(() => this.#tryQueue(kept, attempts++), refusal);
  }

  /**
   * Takes the blocks of an encoded write's extent values, starts writing
   * them, and hands the write to the journal; or, refused for want of room
   * (ERR_STORE_FULL) on a store that can grow, says what a growth must
   * bring (the GrowthWait then waits for it and tries again, up to
   * GROWTH_ATTEMPTS_MAX times). Any other refusal rejects the promise
   * returned, once what the write took is given back.
   */
  #tryQueue(encoded: EncodedWrite, attempt: number): QueueAttempt {
    const write: QueuedWrite = { operations: [], dataWrites: [], dataBlocks: [], payloadBytes: encoded.payloadBytesMax };
    try {
      // A batch with a put counts all its operations: its deletes dirty pages too.
      if (encoded.hasPut) this.#space.checkRoomForPuts(encoded.operations.length, write.payloadBytes);
      for (const { keyString, isString, bytes } of encoded.operations) {
        if (bytes === undefined) {
          write.operations.push({ keyString, isString, value: undefined, existed: false });
        } else if (bytes.length <= this.#inlineValueMax) {
          write.operations.push({ keyString, isString, value: { kind: 'inline', bytes }, existed: false });
        } else {
          const extents = this.#space.allocate(Math.ceil(bytes.length / this.#blockSize), VALUE_EXTENTS_PER_PUT_MAX);
          // Encoding counted the most extents a put takes; allocation says how many.
          write.payloadBytes -= extentPutRecordBytes(0, VALUE_EXTENTS_PER_PUT_MAX) - extentPutRecordBytes(0, extents.length);
          // Recorded before its data is written: if writing throws part way,
          // abandon() frees the extents once the writes submitted have settled.
          const value = { kind: 'extents' as const, length: bytes.length, crc: 0, extents };
          write.operations.push({ keyString, isString, value, existed: false });
          value.crc = this.#grid.writeExtentData(bytes, extents, write.dataBlocks, write.dataWrites);
        }
      }
    } catch (error) {
      // Room only time holds, but for this write's own blocks given back just below.
      const reclaimableBlocks = this.#journal.reclaimableBlockCount;
      // The caller learns of the refusal once the space is back.
      const abandoned = this.#journal.abandon(write);
      if (!(error instanceof StoreError && error.code === 'ERR_STORE_FULL')) return abandoned.then(() => Promise.reject(error));
      // Held for room where it can come: freed blocks being trimmed, awaiting
      // an fdatasync or given back by other writes (Journal.reclaim), or a growth.
      const blocksWanted = this.#space.shortfallForPuts(encoded.operations.length, encoded.payloadBytesMax, encoded.valueBlocks);
      if (attempt >= GROWTH_ATTEMPTS_MAX || (!this.#growth.canGrow && reclaimableBlocks === 0)) {
        return abandoned.then(() => Promise.reject(this.#growth.refusal(error, blocksWanted)));
      }
      return { error, abandoned, blocksWanted };
    }
    const queued = this.#journal.enqueue(write);
    this.#growth.growAheadIfLow();
    return queued;
  }
}

/** The encoding a superblock names (decodeSuperblock accepts only known ids). */
function encodingOfId(id: number): ValueEncoding {
  const found = (Object.keys(VALUE_ENCODING_IDS) as ValueEncoding[]).find((name) => VALUE_ENCODING_IDS[name] === id);
  if (found === undefined) throw new Error(`ringstore: no value encoding has id ${id}`);
  return found;
}

/** How backup() makes its new store: with BlockStore's own format() and open(). */
const BACKUP_STORE_MAKER: BackupStoreMaker = {
  format: (path, options) => BlockStore.format(path, options),
  open: (path, options) => BlockStore.open(path, options),
};
