// RingBlockDevice: a BlockDevice over a file or raw block device, opened with
// direct IO through an IoUringActor.
import { RingSystemError } from '../native/errors.js';
import type { IoUringActor } from '../native/io_uring_actor.js';
import type { RingFile } from '../native/ring_file.js';
import type { BlockDevice, IoPhase } from './block_device.js';
import { fileIdentity, noteLockClosed, noteLockHeld, waitForLockRelease, type FileIdentity } from './lock_release.js';
import { StoreError } from './store_error.js';

export class RingBlockDevice implements BlockDevice {
  readonly #file: RingFile;
  /** The locked file's identity (regular files; undefined for block devices or when it could not be stat'ed). */
  readonly #lockIdentity: FileIdentity | undefined;
  #closePromise: Promise<void> | undefined;
  readonly sizeBytes: number;
  readonly ioAlignment: number;
  readonly trimAlignment: number;

  private constructor(file: RingFile, sizeBytes: number, lockIdentity: FileIdentity | undefined) {
    this.#file = file;
    this.#lockIdentity = lockIdentity;
    this.sizeBytes = sizeBytes;
    this.ioAlignment = Math.max(file.memoryAlignment, file.offsetAlignment);
    this.trimAlignment = file.isBlockDevice ? file.logicalBlockSize : 1;
  }

  /**
   * Opens `path` for exclusive use: a regular file is created (when `create`)
   * and grown to `sizeBytes`, then flock'ed; a block device is opened with
   * O_EXCL by the IO layer. Either way a second opener gets ERR_STORE_LOCKED.
   */
  static async open(ring: IoUringActor, path: string, options: { create: boolean; sizeBytes: number }): Promise<RingBlockDevice> {
    let file: RingFile;
    try {
      // Not sized yet: a store that turns out to be locked must be left as it was.
      file = await ring.open(path, { direct: true, create: options.create });
    } catch (error) {
      if (error instanceof RingSystemError && error.code === 'EBUSY') {
        throw new StoreError('ERR_STORE_LOCKED', `'${path}' is in use (mounted, or opened by another store)`, { cause: error });
      }
      if (error instanceof RingSystemError && error.code === 'ENOENT') {
        throw new StoreError('ERR_STORE_NOT_FOUND', `'${path}' does not exist (open with create: true to make a store)`, {
          cause: error,
        });
      }
      throw error;
    }
    let lockIdentity: FileIdentity | undefined;
    try {
      if (!file.isBlockDevice && !file.tryLockExclusive()) {
        throw new StoreError('ERR_STORE_LOCKED', `'${path}' is open by another store (in this process or another)`);
      }
      // Stat'ed by path after the lock is ours: the file cannot be another store's now.
      lockIdentity = file.isBlockDevice ? undefined : fileIdentity(path);
      if (lockIdentity !== undefined) noteLockHeld(lockIdentity);
      let stat = await file.stat();
      if (options.create && !file.isBlockDevice && stat.sizeBytes < options.sizeBytes) {
        // Grow (preallocate) through a second descriptor, now that the lock is
        // ours; it takes no lock of its own and closes at once.
        const sizer = await ring.open(path, { sizeBytes: options.sizeBytes });
        await sizer.close();
        stat = await file.stat();
      }
      return new RingBlockDevice(file, stat.sizeBytes, lockIdentity);
    } catch (error) {
      await closeAndRelease(file, lockIdentity);
      throw error;
    }
  }

  get isBlockDevice(): boolean {
    return this.#file.isBlockDevice;
  }

  async read(position: number, buffer: Uint8Array): Promise<void> {
    const bytes = await this.#file.read(buffer, position);
    if (bytes !== buffer.length) throw shortRead(position, buffer.length, bytes);
  }

  async readv(position: number, buffers: Uint8Array[]): Promise<void> {
    const bytes = await this.#file.readv(buffers, position);
    const wanted = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    if (bytes !== wanted) throw shortRead(position, wanted, bytes);
  }

  async write(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.#file.writev(buffers, position);
  }

  async writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.#file.writeAndSync(buffers, position);
  }

  async writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.#file.writeDsync(buffers, position);
  }

  sync(): Promise<void> {
    return this.#file.datasync();
  }

  trim(position: number, length: number): Promise<void> {
    return this.#file.trim(position, length);
  }

  /**
   * Closes the file once its operations are done, and resolves only when
   * its lock is released: the next open of the file, in this process or
   * another, does not see ERR_STORE_LOCKED (see lock_release.ts for what
   * keeps a lock after close(2), and the bound of the wait). Idempotent.
   */
  close(): Promise<void> {
    this.#closePromise ??= closeAndRelease(this.#file, this.#lockIdentity);
    return this.#closePromise;
  }

  mark(phase: IoPhase, id?: number): void {
    this.#file.mark(phase, id);
  }
}

/** Closes `file`, then waits until the lock it held (if any) is really released. */
async function closeAndRelease(file: RingFile, lockIdentity: FileIdentity | undefined): Promise<void> {
  try {
    await file.close();
  } finally {
    if (lockIdentity !== undefined) {
      noteLockClosed(lockIdentity);
      await waitForLockRelease(lockIdentity);
    }
  }
}

function shortRead(position: number, wanted: number, got: number): Error {
  // The store never reads past its own size, so a short read means the file
  // shrank underneath it.
  return new StoreError('ERR_STORE_CORRUPT', `read of ${wanted} bytes at ${position} returned ${got}: the file is shorter than the store`);
}
