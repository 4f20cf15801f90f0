// StoreGrowth: a store on a regular file grows as it fills, from the size it
// was made with (`sizeBytes`) up to an optional cap (`maxSizeBytes`) or what
// the file system holds. A block device keeps its size.
//
// Growing is three steps, in this order (docs/durability.md § Growth):
//
//   1. the file is extended and preallocated (fallocate through a second
//      descriptor; ENOSPC, EDQUOT or EFBIG means the store cannot grow, and
//      the write that needed the room is refused with ERR_STORE_FULL —
//      nothing of the store changed, and the file is cut back to its length
//      before; any other error of the extension, EIO say, fails the store
//      as a write error does);
//   2. the checkpointer flushes (the new length is metadata fdatasync
//      persists) and writes the next superblock generation naming the
//      larger block count with the same checkpoint;
//   3. only then does the allocator hand out the new blocks.
//
// So nothing is ever written past the end a durable superblock names, and a
// crash at any point leaves either the old store (in a file that may be
// longer) or the grown one. The checkpoint's free set, written for the
// smaller region, leaves the added blocks free (format/free_set.ts); the
// next checkpoint writes one for the whole region.
//
// When: on demand, when a write finds no room (the write waits for the
// growth and is tried again), and ahead of demand, in the background, when
// the free blocks fall under GROW_AHEAD_FREE_SHARE of the store, so that a
// store filling steadily rarely makes a write wait. Each growth adds at
// least GROWTH_SHARE of the store's size: a store reaching size S has grown
// O(log S) times, and no more than a quarter of it is unused room it took.
import { systemErrorCode } from '../native/errors.js';
import type { BlockDevice } from './block_device.js';
import type { Checkpointer } from './checkpointer.js';
import { FREE_BITMAP_BITS_MAX } from './free_bitmap.js';
import type { Space } from './space.js';
import { StoreError } from './store_error.js';
import { deviceGrows } from './store_layout.js';
import type { StoreState } from './store_state.js';

/** The least a growth adds (fewer, larger fallocates and superblock writes for small stores). */
export const GROWTH_STEP_BYTES_MIN = 8 << 20;
/** Each growth adds at least this share of the store's size. */
export const GROWTH_SHARE = 0.25;
/** Growth starts in the background once the free blocks are under this share of the store. */
export const GROW_AHEAD_FREE_SHARE = 0.125;
/** A growth ahead of demand that the file system cannot hold whole is worth at least this part of a step, or nothing. */
const GROW_AHEAD_LEAST_STEP_DIVISOR = 16;
/**
 * Growths one write may wait for before it is refused. Concurrent writers
 * share growths, so a write may find the room of one taken by others and
 * ask again; each growth adds at least GROWTH_SHARE of the store, so 64 of
 * them multiply it by 1.25^64 ≈ 10^6 — the bound only keeps a bug from
 * looping forever (the cap or the file system refuses long before).
 */
export const GROWTH_ATTEMPTS_MAX = 64;

export interface StoreGrowthParts {
  device: BlockDevice;
  checkpointer: Checkpointer;
  space: Space;
  state: StoreState;
  blockSize: number;
  /** The cap the opener set (maxSizeBytes); undefined for none. */
  maxSizeBytes: number | undefined;
}

export class StoreGrowth {
  readonly #device: BlockDevice;
  readonly #checkpointer: Checkpointer;
  readonly #space: Space;
  readonly #state: StoreState;
  readonly #blockSize: number;
  /** The most blocks the store may have: the device's, the opener's and the format's limits. */
  readonly #blockCountMax: number;
  /** Whether #blockCountMax is the format's: the free set's most blocks (FREE_BITMAP_BITS_MAX). */
  readonly #formatLimited: boolean;
  /** Whether the device can grow at all (a regular file; a simulated device made to). */
  readonly #deviceGrows: boolean;
  /** Whether #blockCountMax is the opener's maxSizeBytes (else the device's own limit). */
  readonly #capped: boolean;
  #growing: Promise<boolean> | undefined;
  /** Blocks asked for by writers that joined the growth under way: the next growth adds at least that many. */
  #demandBlocks = 0;
  /** Why the last growth could not happen (the file system's answer), for the refusal's message. */
  #lastRefusal: Error | undefined;
  #growths = 0;

  constructor(parts: StoreGrowthParts) {
    this.#device = parts.device;
    this.#checkpointer = parts.checkpointer;
    this.#space = parts.space;
    this.#state = parts.state;
    this.#blockSize = parts.blockSize;
    this.#deviceGrows = deviceGrows(parts.device);
    const deviceMax = this.#deviceGrows ? parts.device.sizeBytesMax! : parts.device.sizeBytes;
    this.#capped = parts.maxSizeBytes !== undefined && parts.maxSizeBytes < deviceMax;
    const sizeLimitBlocks = Math.floor(Math.min(deviceMax, parts.maxSizeBytes ?? Number.MAX_SAFE_INTEGER) / this.#blockSize);
    // The free set describes at most FREE_BITMAP_BITS_MAX data blocks: a
    // growth past them made a superblock durable that no open could load
    // (found by a review: ~2 TiB of 512-byte blocks, ~16 TiB of 4 KiB ones).
    const formatLimitBlocks = parts.checkpointer.superblock.dataStartBlock + FREE_BITMAP_BITS_MAX;
    this.#formatLimited = formatLimitBlocks < sizeLimitBlocks;
    this.#blockCountMax = Math.min(sizeLimitBlocks, formatLimitBlocks);
  }

  /** Growths since open. */
  get growthCount(): number {
    return this.#growths;
  }

  /** Whether the store could still grow (it is a regular file under its cap). */
  get canGrow(): boolean {
    return this.#deviceGrows && this.#space.blockCount < this.#blockCountMax;
  }

  /** Settles when the growth under way has (never rejects). */
  settled(): Promise<void> {
    return (this.#growing ?? Promise.resolve(false)).then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * Grows the store by at least `blocksWanted` free blocks, if it can.
   * Resolves to whether it grew (then the caller tries again); false when
   * the cap or the file system leaves no room, or the file could not be
   * extended for want of room (or could not be opened to be). Rejects only
   * with the store's failure: an extension that failed otherwise (EIO,
   * EROFS, …: isExtensionFailure), or an IO error of the flush or
   * superblock write after it.
   */
  grow(blocksWanted: number): Promise<boolean> {
    if (!this.canGrow) return Promise.resolve(false);
    // One growth at a time. A writer that joins it counts toward the next
    // one, and asks again if this one's room went to others.
    if (this.#growing !== undefined) {
      this.#demandBlocks += blocksWanted;
      return this.#growing.then((grew) => grew || this.grow(blocksWanted));
    }
    const growing = this.#grow(blocksWanted).finally(() => {
      this.#growing = undefined;
    });
    this.#growing = growing;
    return growing;
  }

  /** Starts a growth in the background if free space runs low (after a write took some). */
  growAheadIfLow(): void {
    if (this.#growing !== undefined || !this.canGrow || this.#lastRefusal !== undefined) return;
    const storeBlocks = this.#space.blockCount;
    if (this.#space.allocatableBlockCount >= storeBlocks * GROW_AHEAD_FREE_SHARE) return;
    // Blocks only a trim or a sync holds count as free: a write refused meanwhile waits for them (Journal.reclaim) rather than for a growth.
    if (this.#space.allocatableBlockCount + this.#space.reclaimableBlockCount >= storeBlocks * GROW_AHEAD_FREE_SHARE) return;
    // A failure fails the store (the next write reports it); a refusal is remembered.
    this.grow(0).catch(() => undefined);
  }

  /**
   * The ERR_STORE_FULL for a write that did not fit: `error`, with why the
   * store did not grow. `blocksWanted`: what the write lacked, when the
   * caller knows it (then a need more than the limit leaves is named as
   * such, for this write and no other).
   */
  refusal(error: StoreError, blocksWanted?: number): StoreError {
    // Said as a file store's limit is (found by a review: on a device the
    // message never said why the store did not grow).
    if (!this.#deviceGrows) return new StoreError('ERR_STORE_FULL', `${error.message}; a block device cannot grow`, { cause: error });
    const limit = `${this.#blockCountMax * this.#blockSize} bytes (${this.#formatLimited ? `the format's: a free set of at most ${FREE_BITMAP_BITS_MAX} blocks` : this.#capped ? 'maxSizeBytes' : "the device's"})`;
    const beyondLimit = blocksWanted !== undefined && blocksWanted > 0 && this.#space.blockCount + blocksWanted > this.#blockCountMax ? blocksWanted : undefined;
    const why =
      this.#space.blockCount > this.#blockCountMax
        ? // Capped below the size it had reached before (maxSizeBytes is per open): it keeps that size and does not grow.
          `the store (${this.#space.blockCount * this.#blockSize} bytes) is past its size limit of ${limit} and does not grow`
        : this.#space.blockCount === this.#blockCountMax
        ? `the store is at its size limit of ${limit}`
        : beyondLimit !== undefined
          ? `it lacks ${beyondLimit} blocks, more than growing to the store's size limit of ${limit} would add`
          : this.#lastRefusal !== undefined
          ? `the file could not grow: ${this.#lastRefusal.message}`
          : undefined;
    return why === undefined ? error : new StoreError('ERR_STORE_FULL', `${error.message}; ${why}`, { cause: this.#lastRefusal ?? error });
  }

  async #grow(blocksAsked: number): Promise<boolean> {
    const current = this.#space.blockCount;
    const blocksWanted = Math.max(blocksAsked, this.#demandBlocks);
    // Writers that joined the growth before ask again with their own need if it does not happen.
    this.#demandBlocks = 0;
    // What the asker lacks does not fit even at the limit: the file is not
    // extended for a write refused anyway (found by a review: one put of a
    // value larger than maxSizeBytes left the file at the cap for good).
    if (current + blocksAsked > this.#blockCountMax) return false;
    const step = Math.max(blocksWanted, Math.ceil(current * GROWTH_SHARE), Math.ceil(GROWTH_STEP_BYTES_MIN / this.#blockSize));
    // The least a growth is worth, should the full step not fit: what the
    // waiting writes need, or for a growth ahead of them a share of a step
    // (growing ahead a block at a time made a store filling a nearly full
    // file system grow 850 times for 3 500 puts, two flushes each).
    const leastAdded = blocksWanted > 0 ? blocksWanted : Math.ceil(step / GROW_AHEAD_LEAST_STEP_DIVISOR);
    const least = Math.min(this.#blockCountMax, current + leastAdded);
    let target = Math.min(this.#blockCountMax, current + step);
    if (target <= current) return false;
    // An extension refused for room changes nothing of the store (no
    // superblock names the new length yet, and the device cuts the file
    // back): a refusal, after which a growth half as large is tried, down to
    // the least (so each growth takes at least half the room left, and a
    // store filling the file system grows O(log) times, not once a block).
    // Any other error of the extension is the device failing: the store
    // stops, as after a write error.
    for (;;) {
      try {
        await this.#device.grow!(target * this.#blockSize);
        break;
      } catch (error) {
        if (isExtensionFailure(error)) throw this.#state.fail(error);
        if (!isNoRoom(error) || target <= least) return this.#refused(error);
        target = Math.max(least, current + Math.floor((target - current) / 2));
      }
    }
    // Also hands the new blocks to the allocator, in the step that makes the
    // larger superblock current.
    await this.#checkpointer.grow(target);
    this.#lastRefusal = undefined;
    this.#growths++;
    return true;
  }

  #refused(error: unknown): false {
    this.#lastRefusal = error instanceof Error ? error : new Error(String(error));
    return false;
  }
}

/**
 * Errors that say the device or its file system is failing, whichever call
 * met them: the opening of the second descriptor too (found by a review: an
 * ext4 shut down, or remounted read-only after an error, failed that open
 * with EIO or EROFS, and the store answered ERR_STORE_FULL and went on).
 * ESTALE (an NFS handle whose file is gone) and ENOTCONN (a FUSE file
 * system whose daemon died) say the file is out of reach for good.
 */
const FAILING_DEVICE_CODES: ReadonlySet<string> = new Set(['EIO', 'EROFS', 'EUCLEAN', 'ENXIO', 'ENODEV', 'ESTALE', 'ENOTCONN']);

/**
 * The extension failed (fallocate, or the pwrite of zeros that stands in
 * for it where the file system has none: EIO, EROFS, …), other than for
 * want of room, or the file system failed under it: the device is failing,
 * and the store stops as after a write error. Another error before it
 * (opening the second descriptor: EMFILE, EACCES) changed nothing and is a
 * refusal like no room.
 */
function isExtensionFailure(error: unknown): boolean {
  if (isNoRoom(error)) return false;
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    const { syscall } = cause as { syscall?: unknown };
    const code = systemErrorCode(cause);
    if (syscall === 'fallocate' || syscall === 'pwrite') return true;
    if (typeof code === 'string' && FAILING_DEVICE_CODES.has(code)) return true;
  }
  return false;
}

/** The file system has no room (ERR_STORE_NO_SPACE, from ENOSPC, EDQUOT or EFBIG): the store cannot grow. */
function isNoRoom(error: unknown): boolean {
  return error instanceof StoreError && error.code === 'ERR_STORE_NO_SPACE';
}
