// RingBlockDevice: a BlockDevice over a file or raw block device, opened with
// direct IO through an IoUringActor.
import assert from 'node:assert/strict';
import { existsSync, fstatSync, statSync } from 'node:fs';

import { RingError, RingSystemError } from '../native/errors.js';
import type { IoUringActor } from '../native/io_uring_actor.js';
import type { RingFile } from '../native/ring_file.js';
import type { BlockDevice, IoPhase } from './block_device.js';
import { isReadOnlyBlockDevice } from './block_device_sysfs.js';
import { tryLock } from './file_lock.js';
import { closeAll, lockLoopBacking, type LoopBacking, NO_LOOP_BACKING, readOnlyLoopBacking } from './loop_backing.js';
import { pathError, STORE_ADVICE, StoreError } from './store_error.js';

/** Where Linux names this process's open descriptors (absent without procfs). */
export const PROC_SELF_FD = '/proc/self/fd';

export class RingBlockDevice implements BlockDevice {
  readonly #ring: IoUringActor;
  readonly #file: RingFile;
  /** For a loop device: its backing file (and theirs, for a loop device over a loop device), held locked while the store is open. */
  readonly #backingFiles: readonly RingFile[];
  /** Whether a trim discards: on a block device, but not on a loop device over a regular file (see trim()). */
  readonly #discards: boolean;
  /** The path errors name: the store's, also while the file is open under a temporary name (store_file.ts). */
  readonly #name: string;
  #fileLengthBytes: number;
  #closing: Promise<void> | undefined;
  /** A trim of a regular file punches a hole (the crash lab's traces); otherwise it does nothing there. */
  readonly #punchHoles: boolean;
  readonly ioAlignment: number;
  readonly trimAlignment: number;

  private constructor(ring: IoUringActor, file: RingFile, fileLengthBytes: number, backing: LoopBacking, name: string, punchHoles: boolean) {
    this.#ring = ring;
    this.#punchHoles = punchHoles;
    this.#file = file;
    this.#backingFiles = backing.files;
    this.#discards = file.isBlockDevice && !backing.overRegularFile;
    this.#name = name;
    this.#fileLengthBytes = fileLengthBytes;
    this.ioAlignment = Math.max(file.memoryAlignment, file.offsetAlignment);
    this.trimAlignment = file.isBlockDevice ? file.logicalBlockSize : 1;
  }

  /**
   * Opens an existing file or block device for exclusive use, changing
   * nothing in it: a regular file is flock'ed; a block device is opened
   * O_EXCL by the IO layer and flock'ed, and a loop device's backing file
   * (or device) is flock'ed too, so a store cannot be open through both
   * names at once. A second opener gets ERR_STORE_LOCKED.
   *
   * With `readOnly`, the file is opened O_RDONLY (a file without write
   * permission opens) and locked shared (flock LOCK_SH): read-only openers
   * coexist, in this process or others, while a writer's exclusive lock and
   * theirs exclude each other. A block device opened read-only gets no
   * O_EXCL claim (the IO layer claims a device only for writing, and the
   * claim would shut out other readers too), only the shared flock
   * (docs/store.md § Read-only opens).
   *
   * `name`: the path the device's errors name, if not `path` (a new store
   * is made under a temporary name, then linked to its own: its errors
   * name that from the start).
   *
   * `punchHoles`: trims of a regular file punch holes, as trims of a block
   * device discard — for the crash lab, whose traces must hold the trims a
   * store on a block device makes (see trim()).
   *
   * `createExclusive`: the file is made by this open (O_CREAT | O_EXCL;
   * the IO layer's EEXIST if anything is at `path`), then locked on that
   * descriptor, so that it is the caller's own.
   */
  static async open(ring: IoUringActor, path: string, options: { readOnly?: boolean; name?: string; punchHoles?: boolean; toWrite?: boolean; createExclusive?: boolean } = {}): Promise<RingBlockDevice> {
    const readOnly = options.readOnly === true;
    assert.ok(!(readOnly && options.createExclusive === true), 'a file made by the open is opened to write');
    for (let attempt = 1; ; attempt++) {
      let file: RingFile;
      try {
        file = await ring.open(path, options.createExclusive === true ? { direct: true, create: true, exclusive: true } : { direct: true, readOnly });
      } catch (error) {
        throw openError(path, error, options.toWrite === true);
      }
      // The kernel opens a read-only block device (`losetup -r`, a write-
      // protected disk) for writing, and refuses each write with EPERM: a
      // store opened there failed at its first write, and every reopen did
      // the same (found by a review). Refused here, as a read-only file
      // system is.
      if (!readOnly && file.isBlockDevice && (await isReadOnlyBlockDevice(path))) {
        await file.close();
        throw new StoreError('ERR_STORE_PATH', `'${options.name ?? path}': cannot open for writing: the block device is read-only; open with readOnly: true to read the store`);
      }
      // Nor over one, before the locks: a reader of the chain holds them,
      // and the writer waited 2 s to be told ERR_STORE_LOCKED (found by a
      // review). lockLoopBacking checks again under its locks.
      const readOnlyBacking =
        !readOnly && file.isBlockDevice
          ? await readOnlyLoopBacking(path).catch(async (error: unknown) => {
              // A name that is not UTF-8, a node gone: the descriptor (and its O_EXCL claim) goes with the refusal (found by a review).
              await file.close();
              throw error;
            })
          : undefined;
      if (readOnlyBacking !== undefined) {
        await file.close();
        throw new StoreError('ERR_STORE_PATH', `'${options.name ?? path}': cannot open for writing: it is a loop device over '${readOnlyBacking}', which is read-only; open with readOnly: true to read the store`);
      }
      // The lock is taken on the file the open found. A rename over `path`
      // between the two (`ringstore load --create` publishing its build over
      // an empty file, a restore with mv) leaves the lock on a file the name
      // no longer reaches: writes there would vanish with its last
      // descriptor. So the name must still reach the locked file; if not,
      // the open starts again at what the name reaches now. The same when
      // the lock is refused: the holder may be the replaced file's (load
      // --create holds the empty file until just after its rename).
      const device = await RingBlockDevice.#locked(ring, file, path, readOnly, options.name ?? path, options.punchHoles === true, path);
      if (device !== REPLACED) {
        let stillNamed: boolean;
        try {
          stillNamed = file.isBlockDevice || namesFile(path, file.fd);
        } catch (error) {
          await device.close();
          throw pathError(path, error, 'cannot open');
        }
        if (stillNamed) return device;
        await device.close();
      }
      if (attempt === REPLACED_OPEN_ATTEMPTS_MAX) {
        throw new StoreError('ERR_STORE_LOCKED', `'${options.name ?? path}' was replaced by another file ${attempt} times while it was being opened`);
      }
    }
  }

  /**
   * Makes a new, empty regular file without a name in `directory` (the
   * IO layer's `unnamed`, O_TMPFILE), locked: it is removed on close or by
   * the file system after a crash unless linkTo() names it. `name`: the
   * path its errors name (the store's). Rejects with the IO layer's error
   * (EOPNOTSUPP where the file system cannot make such files).
   */
  static async openUnnamed(ring: IoUringActor, directory: string, name: string): Promise<RingBlockDevice> {
    const file = await ring.open(directory, { direct: true, unnamed: true });
    return RingBlockDevice.#locked(ring, file, name, false, name, false);
  }

  static async #locked(ring: IoUringActor, file: RingFile, path: string, readOnly: boolean, name: string, punchHoles: boolean): Promise<RingBlockDevice>;
  /** With `replacedPath`: REPLACED (the file closed) when the lock is refused and that path no longer names the file. */
  static async #locked(ring: IoUringActor, file: RingFile, path: string, readOnly: boolean, name: string, punchHoles: boolean, replacedPath: string): Promise<RingBlockDevice | typeof REPLACED>;
  static async #locked(ring: IoUringActor, file: RingFile, path: string, readOnly: boolean, name: string, punchHoles: boolean, replacedPath?: string): Promise<RingBlockDevice | typeof REPLACED> {
    let backing: LoopBacking = NO_LOOP_BACKING;
    try {
      // A block device is flock'ed too, beside its O_EXCL claim: a loop
      // device over it flocks it as its backing file (lockLoopBacking, loop_backing.ts),
      // and the loop driver does not claim its backing device, so without
      // this lock a store on /dev/loop0 and one on a loop device over
      // /dev/loop0 both opened for writing.
      if (!(await tryLock(file, readOnly))) {
        // A path that cannot be looked at now is not known to be replaced: refused as locked.
        if (replacedPath !== undefined && !file.isBlockDevice && !guarded(() => namesFile(replacedPath, file.fd), true)) {
          await file.close();
          return REPLACED;
        }
        // On a block device the lock may be a tool's as well (udev, a partitioner).
        // A check (ringstore fsck, inspect, dump --salvage) locks shared as well (tools/cli/image_file.ts).
        const stores = 'another store or a ringstore check (in this process or another)';
        const holder = file.isBlockDevice ? `${stores}, or a tool (udev, a partitioner)` : stores;
        throw new StoreError('ERR_STORE_LOCKED', readOnly ? `'${path}' is open for writing by ${holder}` : `'${path}' is open by ${holder}`);
      }
      if (file.isBlockDevice) backing = await lockLoopBacking(ring, path, readOnly);
      const stat = await file.stat();
      return new RingBlockDevice(ring, file, stat.sizeBytes, backing, name, punchHoles);
    } catch (error) {
      await closeAll(backing.files);
      await file.close();
      throw error;
    }
  }

  /**
   * The store's extent on this device: the file's length rounded down to the
   * direct-IO alignment (no store has a partial sector; see store_file.ts).
   */
  get sizeBytes(): number {
    return this.#fileLengthBytes - (this.#fileLengthBytes % Math.max(this.ioAlignment, 1));
  }

  /** The length of the file (or device) in bytes, as it is. */
  get fileLengthBytes(): number {
    return this.#fileLengthBytes;
  }

  /**
   * How large a regular file may grow: as large as the file system lets it
   * (it answers ENOSPC or EFBIG first). A block device cannot grow.
   */
  get sizeBytesMax(): number | undefined {
    return this.isBlockDevice ? undefined : Number.MAX_SAFE_INTEGER;
  }

  /**
   * Grows (preallocates) a regular file to `sizeBytes`; never shrinks it
   * below its length before the call. A growth that fails leaves the file
   * as long as it was (the caller asks for less, or gives up).
   */
  async grow(sizeBytes: number): Promise<void> {
    if (this.isBlockDevice) throw new Error('ringstore: a block device cannot grow');
    const lengthBefore = this.#fileLengthBytes;
    if (sizeBytes <= lengthBefore) return;
    // Through a second descriptor that takes no lock and closes at once:
    // the lock on this one is what keeps other openers out meanwhile. It is
    // opened through /proc/self/fd, so it is this file even after a rename
    // (a new store is made under a temporary name and linked to its own).
    const sizerPath = existsSync(PROC_SELF_FD) ? `${PROC_SELF_FD}/${this.#file.fd}` : this.#file.path;
    try {
      const sizer = await this.#ring.open(sizerPath, { sizeBytes });
      await sizer.close();
    } catch (error) {
      // A failed fallocate may still have extended the file: ext4 keeps what
      // it allocated before it ran out (a store that asked for 8 MiB on a
      // file system with 4 MiB free took those 4 MiB, and a format refused
      // for room left the file tens of MiB longer). Nothing is stored past
      // the old length (no superblock names it), so cut it back, which gives
      // the blocks back to the file system.
      const lengthAfter = (await this.#file.stat().catch(() => undefined))?.sizeBytes;
      if (lengthAfter !== undefined && lengthAfter > lengthBefore) await this.#truncate(lengthBefore).catch(() => undefined);
      throw pathError(this.#name, renamedError(error, sizerPath, this.#name), `cannot grow the file to ${sizeBytes} bytes`);
    } finally {
      // The length is whatever the file now has.
      this.#fileLengthBytes = (await this.#file.stat()).sizeBytes;
    }
  }

  /**
   * Cuts a regular file back to no bytes: an empty file a create grew and
   * then gave up on is left as it was found. Through the descriptor, never
   * the path: a file renamed over the path meanwhile (a user's mv) is not
   * this one, and truncating by path destroyed it (found by a review).
   * Rejects with ERR_FILE_CLOSED if the descriptor was closed under the
   * create (a caller's ring closed): the file is then left as it is, grown,
   * since its lock went with the descriptor and another store may have
   * opened it since (a second review found a cut by path destroying one).
   */
  async truncateToEmpty(): Promise<void> {
    if (this.isBlockDevice) throw new Error('ringstore: a block device cannot be truncated');
    await this.#truncate(0);
    this.#fileLengthBytes = 0;
  }

  /** ftruncate(2) of the held descriptor, held open meanwhile (RingFile.truncate). */
  #truncate(lengthBytes: number): Promise<void> {
    return this.#file.truncate(lengthBytes);
  }

  get isBlockDevice(): boolean {
    return this.#file.isBlockDevice;
  }

  read(position: number, buffer: Uint8Array): Promise<void> {
    // Not an async function: every page read of a cold get comes through here.
    return this.#file.read(buffer, position).then((bytes) => {
      if (bytes !== buffer.length) throw shortRead(position, buffer.length, bytes);
    }, this.#renamed);
  }

  readv(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#file.readv(buffers, position).then((bytes) => {
      const wanted = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
      if (bytes !== wanted) throw shortRead(position, wanted, bytes);
    }, this.#renamed);
  }

  write(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#file.writev(buffers, position).then(NOTHING, this.#renamed);
  }

  writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#file.writeAndSync(buffers, position).then(NOTHING, this.#renamed);
  }

  writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#file.writeDsync(buffers, position).then(NOTHING, this.#renamed);
  }

  sync(): Promise<void> {
    return this.#file.datasync().then(NOTHING, this.#renamed);
  }

  /**
   * fsync(2): the file's data and all its inode's metadata, its link count
   * included — which fdatasync may leave behind (see store_file.ts publish).
   */
  syncAll(): Promise<void> {
    return this.#file.sync().then(NOTHING, this.#renamed);
  }

  /**
   * A block device discards the range. A regular file keeps it as it is:
   * a punched hole would give its blocks back to the file system while the
   * store still counts them as its own, and once the file system filled up
   * (with other files, or the store's own growth) a later write into the
   * hole failed with ENOSPC and stopped the store, where the store should
   * have refused writes with ERR_STORE_FULL (found by a review: a 48 MiB
   * ext4, filled, every key deleted, refilled). Like SQLite's and LMDB's
   * files, a store file keeps what it has grown to and reuses it. (Opened
   * with `punchHoles`, for the crash lab, it punches them.) Nor does a loop
   * device over a regular file discard: the loop driver punches the hole in
   * that file, and its writes into a hole the file system can no longer
   * fill fail silently: the driver took a partly failed write for a whole
   * one, fdatasync succeeded, and an acknowledged put read back as zeros
   * (found by a review: a loop device over a file on a full tmpfs).
   */
  trim(position: number, length: number): Promise<void> {
    if (this.#file.isBlockDevice ? !this.#discards : !this.#punchHoles) return Promise.resolve();
    return this.#file.trim(position, length).then(NOTHING, this.#renamed);
  }

  /**
   * Gives the file the name `path` (a file from openUnnamed(), once it is
   * complete): EEXIST if the name is taken. Durable once its directory is
   * fsynced.
   */
  linkTo(path: string): Promise<void> {
    return this.#file.linkTo(path);
  }

  /** Rethrows an error of the file's IO naming the device's name (see open's `name`). */
  readonly #renamed = (error: unknown): never => {
    throw renamedError(error, this.#file.path, this.#name);
  };

  /**
   * Closes the file (and a loop device's backing file) once its operations
   * are done; the native close releases the flock before close(2), so the
   * next open does not find the file locked (see CloseReleasingLock).
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#file.close();
      } finally {
        await closeAll(this.#backingFiles);
      }
    })();
    return this.#closing;
  }

  mark(phase: IoPhase, id?: number): void {
    this.#file.mark(phase, id);
  }
}

/** #locked's answer for a file whose lock was refused and whose path names another file now. */
const REPLACED = Symbol('replaced');

/**
 * How many times open() starts again when `path` was renamed over (or
 * removed) between its open and its lock: once is the race a concurrent
 * publisher makes; several in a row is a path that is replaced without end.
 */
export const REPLACED_OPEN_ATTEMPTS_MAX = 4;

/** `read()`, or `fallback` if it throws. */
function guarded<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/** Whether `path` names (dev, ino) the file open at `fd`: false if it names another file or nothing. */
export function namesFile(path: string, fd: number): boolean {
  const named = statSync(path, { throwIfNoEntry: false });
  if (named === undefined) return false;
  const held = fstatSync(fd);
  return named.dev === held.dev && named.ino === held.ino;
}

/**
 * Errors of opening an existing `path` as StoreErrors with documented codes.
 * `toWrite`: the caller opens it only to write it (format, a new store's
 * temporary file), so a read-only file system is no hint to read it.
 */
function openError(path: string, error: unknown, toWrite: boolean): Error {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === 'EBUSY') return new StoreError('ERR_STORE_LOCKED', `'${path}' is in use (mounted, or opened by another store)`, { cause: error });
  if (code === 'ENOENT') {
    return new StoreError('ERR_STORE_NOT_FOUND', `'${path}' does not exist (${STORE_ADVICE.createStore})`, { cause: error });
  }
  if (error instanceof RingSystemError && error.code === 'EINVAL' && error.syscall === 'open') {
    // O_DIRECT is EINVAL for what cannot do direct IO: a directory opened
    // without write access (not EISDIR), a FIFO, a character device — not
    // a store's place whatever the file system — and a regular file on a
    // file system without direct IO.
    const stats = statSync(path, { throwIfNoEntry: false });
    if (stats?.isDirectory() === true) return new StoreError('ERR_STORE_PATH', `'${path}' is a directory, not a store file`, { cause: error });
    if (stats !== undefined && !stats.isFile() && !stats.isBlockDevice()) {
      return new StoreError('ERR_STORE_PATH', `'${path}' is not a regular file or a block device`, { cause: error });
    }
    // open(2) refuses O_DIRECT with EINVAL on file systems without it (ramfs,
    // some FUSE and network file systems).
    return new StoreError('ERR_STORE_UNSUPPORTED', `'${path}': the file system does not support direct IO (O_DIRECT), which the store needs; use ext4, xfs, btrfs or tmpfs (Linux 6.6+)`, {
      cause: error,
    });
  }
  if (code === 'ERR_INVALID_ARG') {
    return new StoreError('ERR_STORE_PATH', `'${path}' is not a regular file or a block device`, { cause: error });
  }
  // A read-only open can read a store only where there are bytes to read
  // (found by a review: an empty file's create was sent to a read-only
  // open, which then found no store).
  let mayHoldStore = false;
  if (code === 'EROFS' && !toWrite) {
    try {
      mayHoldStore = (statSync(path, { throwIfNoEntry: false })?.size ?? 0) > 0;
    } catch {
      // No hint where the path cannot be looked at (the stat's error must not replace the open's).
    }
  }
  return pathError(path, error, 'cannot open', mayHoldStore);
}

function shortRead(position: number, wanted: number, got: number): Error {
  // The store never reads past its own size, so a short read means the file
  // shrank underneath it.
  return new StoreError('ERR_STORE_CORRUPT', `read of ${wanted} bytes at ${position} returned ${got}: the file is shorter than the store`);
}

function NOTHING(): void {}

/**
 * `error` naming `to` where it named the path `from` (a RingSystemError of
 * the IO layer: its message and `path`); anything else as it is.
 */
function renamedError(error: unknown, from: string, to: string): unknown {
  if (from === to) return error;
  // Only the path in quotes, as the IO layer's messages give it: an unnamed
  // file's path is its directory, which may be '.', and replacing every
  // occurrence mangled the message and the stack's file names (found by a
  // review).
  const quotedFrom = `'${from}'`;
  const quotedTo = `'${to}'`;
  if (error instanceof RingSystemError && error.path === from) {
    const renamed = new RingSystemError(error.errno, error.syscall, to);
    renamed.stack = error.stack?.split(quotedFrom).join(quotedTo);
    return renamed;
  }
  // The ring's own errors name the file in their message ("'…' is closed"):
  // a store made under a temporary name is named by its own (found by a review).
  if (error instanceof RingError && error.message.includes(quotedFrom)) {
    const renamed = new RingError(error.code, error.message.split(quotedFrom).join(quotedTo), { cause: error.cause });
    renamed.stack = error.stack?.split(quotedFrom).join(quotedTo);
    return renamed;
  }
  return error;
}
