// BlockDevice: what the store needs from storage, in bytes at aligned
// positions. Two implementations: RingBlockDevice (a file or block device
// through the io_uring actor, direct IO) and SimulatedDevice (memory, with a
// durability model, for crash tests).
//
// Every method is all-or-error: a read returns all bytes asked for, a write
// writes all of them; anything else rejects.
import { invalidArgument } from './store_error.js';

/**
 * What a store's IO is for, as marked in a write trace: extent data of a
 * commit, its WAL frame, a checkpoint's frame, a superblock, trims of freed
 * extents, flushes, recovery's erasing of stale WAL frames, and a new
 * store's formatting. 'free' marks extents becoming unreferenced (after the
 * commit or superblock that unlinked them is durable); no IO carries it.
 */
export type IoPhase = 'data' | 'wal' | 'checkpoint' | 'superblock' | 'trim' | 'flush' | 'erase' | 'format' | 'free';

/**
 * What a store needs from storage (BlockStoreOptions.device): bytes at aligned
 * positions, each call all or error. The store opens a file or block device
 * through the io_uring actor itself; pass a BlockDevice to run it on
 * something else, such as a {@link SimulatedDevice} in crash tests.
 */
export interface BlockDevice {
  /** Usable size of the device in bytes. */
  readonly sizeBytes: number;
  /** Buffers, positions and lengths of IO must be multiples of this. */
  readonly ioAlignment: number;
  /** Discards on this device must be multiples of this (its logical block size). */
  readonly trimAlignment: number;
  /**
   * True only while the device has never held anything (a new simulated
   * device not yet written to): open with create: true formats only a blank
   * device. Absent means false.
   */
  readonly blank?: boolean;
  /** Fills `buffer` from `position`; rejects unless every byte was read. */
  read(position: number, buffer: Uint8Array): Promise<void>;
  /** Reads consecutive bytes into several buffers. */
  readv(position: number, buffers: Uint8Array[]): Promise<void>;
  /** Writes `buffers` in order from `position`, in full or not at all; durable only after a sync. */
  write(position: number, buffers: Uint8Array[]): Promise<void>;
  /** Writes and then flushes (fdatasync) in one submission; durable on resolve. */
  writeAndSync(position: number, buffers: Uint8Array[]): Promise<void>;
  /**
   * Writes with RWF_DSYNC: durable on resolve, but only these bytes — not
   * earlier completed writes (a device with FUA may persist just this one).
   */
  writeDsync(position: number, buffers: Uint8Array[]): Promise<void>;
  /**
   * fdatasync: every completed write is durable on resolve. Like
   * writeAndSync and writeDsync, it must complete on its own, whatever else
   * is in flight: the store holds a flush's success (any of the three)
   * until the other flushes in flight when it completed have completed
   * (FlushLedger).
   */
  sync(): Promise<void>;
  /** Releases a range; later reads of it return zeros or old data, never other data. */
  trim(position: number, length: number): Promise<void>;
  /**
   * The largest `sizeBytes` grow() can reach. Absent (or equal to
   * sizeBytes) for a device that cannot grow — a block device, whose size
   * is its own.
   */
  readonly sizeBytesMax?: number;
  /**
   * Makes the device `sizeBytes` long (never shorter), the new bytes
   * reading as zeros: a regular file is extended and preallocated. The new
   * size is durable once a sync() that starts after this resolves. Rejects
   * with ERR_STORE_NO_SPACE when the file system has no room (nothing of
   * the store changes then, and the device keeps its length). A rejection
   * whose error, or a cause of it, has `syscall` 'fallocate' or 'pwrite'
   * is the device failing: the store stops (ERR_STORE_FAILED); any other
   * refuses the growth. Used only while sizeBytesMax says the device can
   * grow, one call at a time.
   */
  grow?(sizeBytes: number): Promise<void>;
  /** Releases the device; no call follows. */
  close(): Promise<void>;
  /**
   * Notes what the IO submitted next is for (`id`: the commit sequence or
   * checkpoint generation), for a write trace. Optional; never does IO.
   */
  mark?(phase: IoPhase, id?: number): void;
  /**
   * For a device whose IO must be reproducible (the crash lab's): the tag
   * of a store formatted on it. Without it the tag is random, as it should
   * be (it tells this store's frames from an earlier store's on the device).
   */
  newStoreTag?(): number;
  /**
   * For a device whose IO must be reproducible: runs `task` — a store's
   * timer-driven work, the deferred fdatasync of sync: false — at a point of
   * the device's choosing instead of after `delayMs` of wall time (which
   * would put the task's IO anywhere among the store's, by timing alone).
   * Returns a function that cancels the task if it has not run. Without it
   * the store uses a timer.
   */
  deferTask?(task: () => void, delayMs: number): () => void;
}

/** The methods a BlockDevice must have (`mark` is optional). */
const BLOCK_DEVICE_METHODS = ['read', 'readv', 'write', 'writeAndSync', 'writeDsync', 'sync', 'trim', 'close'] as const;

/**
 * Checks that the `device` option of BlockStore.open is shaped like a
 * BlockDevice before the store calls it, so a wrong one is ERR_INVALID_ARG
 * rather than a TypeError from deep inside recovery. Shape only: whether
 * its IO works shows when it is used.
 */
export function checkBlockDevice(device: unknown): asserts device is BlockDevice {
  if (device === null || typeof device !== 'object') throw invalidArgument(`option 'device' must be a BlockDevice object, got ${device === null ? 'null' : typeof device}`);
  const candidate = device as Record<string, unknown>;
  for (const name of ['sizeBytes', 'ioAlignment', 'trimAlignment'] as const) {
    const value = candidate[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (name === 'sizeBytes' ? 0 : 1)) {
      throw invalidArgument(`option 'device': ${name} must be a ${name === 'sizeBytes' ? 'non-negative' : 'positive'} integer`, typeof value === 'number' ? 'range' : 'type');
    }
  }
  for (const name of BLOCK_DEVICE_METHODS) {
    if (typeof candidate[name] !== 'function') throw invalidArgument(`option 'device': ${name} must be a function`);
  }
  if (candidate.mark !== undefined && typeof candidate.mark !== 'function') throw invalidArgument("option 'device': mark must be a function if present");
  if (candidate.sizeBytesMax !== undefined && candidate.grow === undefined) throw invalidArgument("option 'device': a sizeBytesMax without grow");
  if (candidate.grow !== undefined && typeof candidate.grow !== 'function') throw invalidArgument("option 'device': grow must be a function if present");
  const sizeBytesMax = candidate.sizeBytesMax;
  if (sizeBytesMax !== undefined && (typeof sizeBytesMax !== 'number' || !Number.isSafeInteger(sizeBytesMax) || sizeBytesMax < (candidate.sizeBytes as number))) {
    throw invalidArgument("option 'device': sizeBytesMax must be an integer of at least sizeBytes", 'range');
  }
}
