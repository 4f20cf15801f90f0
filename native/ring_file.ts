// RingFile: a file or block device opened for IO through an IoUringActor.
//
// Every method validates its arguments before anything reaches the addon —
// types, ranges, closed handles, and for files opened with `direct: true` the
// alignment of buffer address, position and length — and reports a bad
// argument as a rejected promise with a TypeError/RangeError carrying a
// stable `code`. Transfers are full or fail: the actor continues short reads
// and writes, and a read stops early only at end-of-file.
import { ftruncate } from 'node:fs';
import { addon, constants } from './addon.js';
import { allocAligned, isPowerOfTwo } from './aligned_buffer.js';
import { describeValue, fromNative, invalidRange, invalidType, readOptions, RingError, RingSystemError, unalignedDirectIo } from './errors.js';
import type { IoMutation, IoMutationKind, ObservedFile } from './io_observer.js';
import { kOpSettled, type OpOwner, type OpSink, type PendingOp } from './ring_op.js';
import { byteLengthOf, isDetached, toBytes, zeroBetween } from './view_bytes.js';

/** Options of {@link IoUringActor.open}; every field is optional (docs/io.md). */
export interface RingFileOptions {
  /** O_DIRECT: bypass the page cache. Buffers, positions and lengths must then be aligned. */
  direct?: boolean;
  /** O_DSYNC: every write is durable when it completes. */
  dsync?: boolean;
  /** Create the file if it does not exist (regular files only). */
  create?: boolean;
  /**
   * With `create`: the file must not exist — made by this open or refused
   * with EEXIST (O_EXCL), so that the caller knows the file is its own.
   */
  exclusive?: boolean;
  /**
   * Make a new regular file without a name in the directory `path`
   * (O_TMPFILE): it is removed when closed, and by the file system after a
   * crash, unless {@link RingFile.linkTo} names it first. Not with `create`
   * or `readOnly`. Rejected with EOPNOTSUPP where the file system cannot
   * (vfat, some network file systems); EISDIR on kernels before 3.11.
   */
  unnamed?: boolean;
  /** Open read-only: writes and trims are refused with ERR_FILE_READ_ONLY. */
  readOnly?: boolean;
  /** Grow a regular file to at least this size, preallocating what it adds (holes before its old end stay holes). Never shrinks. */
  sizeBytes?: number;
  /** Unit of readBlock/writeBlock. Default 4096; a power of two, a multiple of the direct-IO alignment. */
  blockSize?: number;
}

/** Size and alignment facts of a file or block device, from {@link RingFile.stat}. */
export interface FileStat {
  /** Size in bytes (a block device's whole size). */
  sizeBytes: number;
  /** Smallest unit the device addresses (BLKSSZGET; a file's file-system block size otherwise). */
  logicalBlockSize: number;
  /** The device's physical sector size (BLKPBSZGET), the unit it writes atomically at best. */
  physicalBlockSize: number;
  /** Memory alignment direct IO needs (0 if the file system reports none). */
  dioMemAlign: number;
  /** Offset and length alignment direct IO needs (0 if the file system reports none). */
  dioOffsetAlign: number;
  /** True for a block device, false for a regular file. */
  isBlockDevice: boolean;
}

/** Default RingFileOptions.blockSize: 4096 bytes. */
export const DEFAULT_BLOCK_SIZE = 4096;
/** Largest blockSize: 1 MiB, the size of one large sequential IO. */
export const BLOCK_SIZE_MAX = 1 << 20;

const MAX_POSITION = Number.MAX_SAFE_INTEGER;
/** -EOPNOTSUPP on Linux (Node names it ENOTSUP: the two share the number). */
const ERRNO_EOPNOTSUPP = -95;
/** EWOULDBLOCK (= EAGAIN) on Linux, as flock returns it. */
const ERRNO_EWOULDBLOCK = 11;

/** Refuses what no system call could take as a path (ERR_INVALID_ARG), before the addon sees it. */
function checkPath(path: unknown): asserts path is string {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw invalidType('path must be a non-empty string without NUL characters');
  }
}

/**
 * fsync(2) of the directory `path`: makes the names made in it durable. The
 * directory is opened, synced and closed in one task on libuv's thread pool,
 * so no descriptor of it reaches JS (one held by fs.promises stayed open
 * when its worker was terminated).
 * @internal
 */
export async function syncDirectory(path: string): Promise<void> {
  checkPath(path);
  try {
    await addon.syncDirectory(path);
  } catch (cause) {
    throw fromNative(cause, path);
  }
}

/**
 * A file or block device opened through an {@link IoUringActor} (make one with
 * {@link IoUringActor.open}): positional reads and writes, vectored IO,
 * write+fdatasync in one submission, trims and whole-block IO. Every
 * argument is checked before anything reaches the kernel. See docs/io.md.
 */
export class RingFile implements OpOwner, ObservedFile {
  /** The path it was opened with (for an `unnamed` file, its directory). */
  readonly path: string;
  readonly #fd: number;
  /** Opened with O_DIRECT: buffers, positions and lengths must be aligned. */
  readonly direct: boolean;
  /** Opened with O_DSYNC: every write is durable when it completes. */
  readonly dsync: boolean;
  /** Opened read-only: writes and trims are refused. */
  readonly readOnly: boolean;
  /** Unit of {@link RingFile.readBlock} and {@link RingFile.writeBlock}, bytes. */
  readonly blockSize: number;
  /** True for a block device, false for a regular file. */
  readonly isBlockDevice: boolean;
  /** For direct files: the memory alignment every buffer must have. 0 for buffered files. */
  readonly memoryAlignment: number;
  /** For direct files: the alignment of every position and length. 0 for buffered files. */
  readonly offsetAlignment: number;
  /** For block devices: the logical block size discards must be aligned to. */
  readonly logicalBlockSize: number;
  readonly #sink: OpSink;
  #inFlight = 0;
  #closed = false;
  #closePromise: Promise<void> | undefined;
  #idle: (() => void) | undefined;
  #uringDiscardUnsupported = false;

  private constructor(sink: OpSink, path: string, fd: number, options: RingFileOptions, stat: FileStat, blockSize: number) {
    this.#sink = sink;
    this.path = path;
    this.#fd = fd;
    this.direct = options.direct === true;
    this.dsync = options.dsync === true;
    this.readOnly = options.readOnly === true;
    this.blockSize = blockSize;
    this.isBlockDevice = stat.isBlockDevice;
    this.logicalBlockSize = stat.logicalBlockSize;
    this.memoryAlignment = this.direct ? stat.dioMemAlign || stat.logicalBlockSize : 0;
    this.offsetAlignment = this.direct ? stat.dioOffsetAlign || stat.logicalBlockSize : 0;
  }

  /**
   * Use IoUringActor#open.
   * @internal
   */
  static async open(sink: OpSink, path: string, given: RingFileOptions): Promise<RingFile> {
    checkPath(path);
    // Each option read once: what is checked is what opens the file and what the file then checks by.
    const options = readOptions<RingFileOptions>(given, ['direct', 'dsync', 'create', 'exclusive', 'readOnly', 'unnamed', 'sizeBytes', 'blockSize'], 'options');
    for (const name of ['direct', 'dsync', 'create', 'exclusive', 'readOnly', 'unnamed'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'boolean') {
        throw invalidType(`option '${name}' must be a boolean`);
      }
    }
    const sizeBytes = options.sizeBytes ?? 0;
    if (typeof sizeBytes !== 'number') throw invalidType(`sizeBytes must be a number, got ${typeof sizeBytes}`);
    if (!Number.isInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > MAX_POSITION) {
      throw invalidRange(`sizeBytes must be an integer from 0 to 2^53-1, got ${describeValue(sizeBytes)}`);
    }
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (typeof blockSize !== 'number') throw invalidType(`blockSize must be a number, got ${typeof blockSize}`);
    if (!isPowerOfTwo(blockSize) || blockSize < 512 || blockSize > BLOCK_SIZE_MAX) {
      throw invalidRange(`blockSize must be a power of two from 512 to ${BLOCK_SIZE_MAX}, got ${describeValue(blockSize)}`);
    }
    if (options.readOnly === true && (options.create === true || sizeBytes > 0)) {
      throw invalidRange('a readOnly file cannot be created or sized');
    }
    const unnamed = options.unnamed === true;
    if (unnamed && (options.create === true || options.readOnly === true)) {
      throw invalidRange("option 'unnamed' makes a new file in a directory: not with 'create' or 'readOnly'");
    }
    if (options.exclusive === true && options.create !== true) {
      throw invalidRange("option 'exclusive' makes the file: only with 'create'");
    }
    let flags = options.readOnly === true ? constants.O_RDONLY : constants.O_RDWR;
    if (options.create === true) flags |= constants.O_CREAT;
    if (options.exclusive === true) flags |= constants.O_EXCL;
    if (options.direct === true) flags |= constants.O_DIRECT;
    if (options.dsync === true) flags |= constants.O_DSYNC;

    let opened;
    try {
      opened = await addon.openFile(path, flags, sizeBytes, unnamed);
    } catch (error) {
      throw fromNative(error, path);
    }
    const file = new RingFile(sink, path, opened.fd, options, opened, blockSize);
    if (file.direct && blockSize % file.offsetAlignment !== 0) {
      await addon.closeFile(opened.fd);
      throw unalignedDirectIo(
        `blockSize ${blockSize} is not a multiple of the direct-IO alignment ${file.offsetAlignment} of '${path}'`,
      );
    }
    return file;
  }

  /**
   * The file descriptor (closed by {@link RingFile.close}, not by the
   * caller). A getter: a field assigned from JS sent IO to another file
   * and leaked this one (found by a review).
   */
  get fd(): number {
    return this.#fd;
  }

  /** True once {@link RingFile.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Reads into `buffer` from `position`; resolves with bytes read (less only at end-of-file). */
  read(buffer: ArrayBufferView, position: number): Promise<number> {
    const error = this.#checkUsable(false) ?? this.#checkBuffer(buffer, 'buffer') ?? this.#checkPosition(position, byteLengthOf(buffer));
    if (error !== undefined) return Promise.reject(error);
    if (byteLengthOf(buffer) === 0) return Promise.resolve(0);
    return this.#submit(constants.OP_READ, position, buffer, undefined, 0, undefined);
  }

  /** Writes all of `buffer` at `position`; resolves with its length, or rejects. */
  write(buffer: ArrayBufferView, position: number): Promise<number> {
    const error = this.#checkUsable(true) ?? this.#checkBuffer(buffer, 'buffer') ?? this.#checkPosition(position, byteLengthOf(buffer));
    if (error !== undefined) return Promise.reject(error);
    if (byteLengthOf(buffer) === 0) return Promise.resolve(0);
    // On an O_DSYNC file every write is a flush-like wait: submitted as the
    // RWF_DSYNC kind so the actor and this thread sleep instead of spinning.
    if (this.dsync) return this.#submit(constants.OP_WRITEV_DSYNC, position, undefined, [buffer], 0, 'write');
    return this.#submit(constants.OP_WRITE, position, buffer, undefined, 0, 'write');
  }

  /** Reads into `buffers` in order, from `position`. */
  readv(buffers: readonly ArrayBufferView[], position: number): Promise<number> {
    const list = this.#checkedVector(buffers, position, false);
    if (list instanceof Error) return Promise.reject(list);
    return this.#submit(constants.OP_READV, position, undefined, list, 0, undefined);
  }

  /** Writes `buffers` in order, from `position`, in full. */
  writev(buffers: readonly ArrayBufferView[], position: number): Promise<number> {
    const list = this.#checkedVector(buffers, position, true);
    if (list instanceof Error) return Promise.reject(list);
    return this.#submit(this.dsync ? constants.OP_WRITEV_DSYNC : constants.OP_WRITEV, position, undefined, list, 0, 'write');
  }

  /**
   * Writes `buffers` at `position` and fdatasyncs the file, as one linked
   * submission (IOSQE_IO_LINK): resolves only when the data is durable.
   */
  writeAndSync(buffers: ArrayBufferView | readonly ArrayBufferView[], position: number): Promise<number> {
    const given = ArrayBuffer.isView(buffers) ? [buffers] : buffers;
    const list = this.#checkedVector(given, position, true);
    if (list instanceof Error) return Promise.reject(list);
    return this.#submit(constants.OP_WRITE_AND_SYNC, position, undefined, list, 0, 'writeAndSync');
  }

  /**
   * Writes `buffers` at `position` with RWF_DSYNC: resolves once these bytes
   * are durable, in one operation (often faster than writeAndSync). Unlike
   * writeAndSync it makes durable only its own bytes, not earlier writes: on
   * a device with FUA the kernel may persist just this write.
   */
  writeDsync(buffers: ArrayBufferView | readonly ArrayBufferView[], position: number): Promise<number> {
    const given = ArrayBuffer.isView(buffers) ? [buffers] : buffers;
    const list = this.#checkedVector(given, position, true);
    if (list instanceof Error) return Promise.reject(list);
    return this.#submit(constants.OP_WRITEV_DSYNC, position, undefined, list, 0, 'writeDsync');
  }

  /** fsync(2): data and all metadata durable. */
  sync(): Promise<void> {
    const error = this.#checkUsable(false);
    if (error !== undefined) return Promise.reject(error);
    return this.#submit(constants.OP_FSYNC, 0, undefined, undefined, 0, 'fsync').then(discard);
  }

  /** fdatasync(2): data and the metadata needed to read it back durable. */
  datasync(): Promise<void> {
    const error = this.#checkUsable(false);
    if (error !== undefined) return Promise.reject(error);
    return this.#submit(constants.OP_FDATASYNC, 0, undefined, undefined, 0, 'fdatasync').then(discard);
  }

  /**
   * Releases a range: on a regular file a hole is punched (the range reads
   * back as zeros, the size is kept); on a block device the range is
   * discarded (io_uring discard on Linux 6.12+, else BLKDISCARD), and must be
   * aligned to the device's logical block size.
   */
  trim(position: number, length: number): Promise<void> {
    let error = this.#checkUsable(true) ?? this.#checkLength(length) ?? this.#checkPosition(position, length);
    if (error === undefined && this.isBlockDevice && (position % this.logicalBlockSize !== 0 || length % this.logicalBlockSize !== 0)) {
      error = invalidRange(
        `trim of a block device needs position and length in multiples of ${this.logicalBlockSize}, got ${position}+${length}`,
      );
    }
    if (error !== undefined) return Promise.reject(error);
    if (length === 0) return Promise.resolve();
    if (!this.isBlockDevice) {
      return this.#submit(constants.OP_PUNCH_HOLE, position, undefined, undefined, length, 'trim').then(discard);
    }
    return this.#discard(position, length);
  }

  async #discard(position: number, length: number): Promise<void> {
    // Hold the file open across the whole trim, fallback included: close()
    // must not close the descriptor between the failed io_uring discard and
    // the ioctl (which would then discard through a closed or reused fd).
    this.#inFlight++;
    try {
      if (this.#uringDiscardUnsupported || this.#sink.backend !== 'io_uring') {
        await this.#submit(constants.OP_DISCARD, position, undefined, undefined, length, 'trim');
        return;
      }
      try {
        await this.#submit(constants.OP_DISCARD, position, undefined, undefined, length, 'trim');
      } catch (error) {
        if ((error as { errno?: number }).errno !== ERRNO_EOPNOTSUPP) throw error;
        // Before Linux 6.12 the block layer has no io_uring discard: use the
        // BLKDISCARD ioctl on libuv's thread pool from now on.
        this.#uringDiscardUnsupported = true;
        try {
          await addon.blkDiscard(this.#fd, position, length);
        } catch (cause) {
          throw fromNative(cause, this.path);
        }
      }
    } finally {
      this[kOpSettled]();
    }
  }

  /**
   * Takes an exclusive advisory lock (flock LOCK_EX | LOCK_NB) on the file:
   * true if taken, false if another open of the file — in this process or
   * another — holds it. Released when the file is closed.
   */
  tryLockExclusive(): boolean {
    const error = this.#checkUsable(false);
    if (error !== undefined) throw error;
    const errno = addon.lockExclusive(this.#fd);
    if (errno === 0) return true;
    if (errno === ERRNO_EWOULDBLOCK) return false;
    throw new RingSystemError(errno, 'flock', this.path);
  }

  /**
   * Takes a shared advisory lock (flock LOCK_SH | LOCK_NB) on the file: true
   * if taken, false if another open of the file — in this process or
   * another — holds it exclusively. Shared locks of separate opens coexist.
   * Released when the file is closed.
   */
  tryLockShared(): boolean {
    const error = this.#checkUsable(false);
    if (error !== undefined) throw error;
    const errno = addon.lockShared(this.#fd);
    if (errno === 0) return true;
    if (errno === ERRNO_EWOULDBLOCK) return false;
    throw new RingSystemError(errno, 'flock', this.path);
  }

  /**
   * Gives the file a new name, `path` (linkat(2)): an existing name is never
   * replaced (EEXIST), and the file keeps any names it had. This is how a
   * file opened with `unnamed` is made visible once it is complete. The new
   * name is durable only after {@link RingFile.sync} of the file (the
   * inode's link count, which {@link RingFile.datasync} may leave behind)
   * and an fsync of its directory.
   */
  async linkTo(path: string): Promise<void> {
    checkPath(path);
    const error = this.#checkUsable(false);
    if (error !== undefined) throw error;
    // Held open like a discard: close() must not free the number while the
    // pool thread links it.
    this.#inFlight++;
    try {
      await addon.linkFile(this.#fd, path);
    } catch (cause) {
      throw fromNative(cause, path);
    } finally {
      this[kOpSettled]();
    }
  }

  /**
   * Sets a regular file's length (ftruncate(2)), held open like a discard:
   * close() waits for it, so the number is never one the kernel has given
   * to another open meanwhile. Refused on a closed or read-only file.
   * @internal
   */
  async truncate(lengthBytes: number): Promise<void> {
    // The file's state, not the ring's: ftruncate does not go through the
    // ring, and a ring that closes closes this file only once #inFlight has
    // drained (a create whose caller closed its ring meanwhile still cuts
    // back what it grew; found by a review).
    const error = this.#closed
      ? new RingError('ERR_FILE_CLOSED', `'${this.path}' is closed`)
      : this.readOnly
        ? new RingError('ERR_FILE_READ_ONLY', `'${this.path}' was opened readOnly`)
        : this.#checkLength(lengthBytes);
    if (error !== undefined) throw error;
    this.#inFlight++;
    try {
      await new Promise<void>((resolve, reject) => ftruncate(this.#fd, lengthBytes, (failure) => (failure === null ? resolve() : reject(failure))));
    } catch (cause) {
      const errno = (cause as { errno?: unknown }).errno;
      throw typeof errno === 'number' ? new RingSystemError(errno, 'ftruncate', this.path) : cause;
    } finally {
      this[kOpSettled]();
    }
  }

  /** Size and alignment facts of the file or device, read now. */
  async stat(): Promise<FileStat> {
    const error = this.#checkUsable(false);
    if (error !== undefined) throw error;
    try {
      return await addon.statFile(this.#fd);
    } catch (cause) {
      throw fromNative(cause, this.path);
    }
  }

  /**
   * Reads block `index` (of `blockSize` bytes) into `buffer`, or into a new
   * aligned buffer. Bytes past end-of-file read as zeros.
   */
  async readBlock<T extends ArrayBufferView = Buffer>(index: number, buffer?: T): Promise<T> {
    const position = this.#blockPosition(index);
    const target = (buffer === undefined ? allocAligned(this.blockSize, Math.max(this.memoryAlignment, 4096)) : buffer) as T;
    if (!ArrayBuffer.isView(target)) throw invalidType('readBlock buffer must be a Buffer, TypedArray or DataView');
    // Through the intrinsic getter, as read() checks it: an own byteLength
    // property said 4096 of a 200-byte view (found by a review).
    if (viewByteLength(target, 'readBlock buffer') !== this.blockSize) {
      throw invalidRange(`readBlock needs a buffer of exactly blockSize (${this.blockSize}) bytes`);
    }
    const bytesRead = await this.read(target, position);
    // Zeros past end-of-file, into what of the buffer is still there: it may
    // have been detached during the read (which then copied nothing into it).
    if (bytesRead < this.blockSize) zeroBetween(target, bytesRead, this.blockSize);
    return target;
  }

  /** Writes block `index`; `buffer` must be exactly `blockSize` bytes. */
  async writeBlock(index: number, buffer: ArrayBufferView): Promise<void> {
    const position = this.#blockPosition(index);
    if (!ArrayBuffer.isView(buffer)) throw invalidType('writeBlock buffer must be a Buffer, TypedArray or DataView');
    if (viewByteLength(buffer, 'writeBlock buffer') !== this.blockSize) {
      throw invalidRange(`writeBlock needs a buffer of exactly blockSize (${this.blockSize}) bytes`);
    }
    await this.write(buffer, position);
  }

  /**
   * Closes the file after its in-flight operations finish. Later calls on
   * the file are rejected with ERR_FILE_CLOSED; closing twice is harmless.
   */
  close(): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    this.#closed = true;
    this.#closePromise = (async () => {
      if (this.#inFlight > 0) {
        await new Promise<void>((resolve) => {
          this.#idle = resolve;
        });
      }
      this.#sink.forgetFile(this);
      try {
        await addon.closeFile(this.#fd);
      } catch (error) {
        throw fromNative(error, this.path);
      }
    })();
    return this.#closePromise;
  }

  /** @internal */
  [kOpSettled](): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#idle !== undefined) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle();
    }
  }

  /**
   * Tells the ring's observer (if any) what the mutations submitted next on
   * this file are for: a `phase` name and an optional `id` (a commit). Costs
   * one check when no observer is attached; never reaches the kernel.
   */
  mark(phase: string, id?: number): void {
    const observer = this.#sink.observer;
    if (observer?.onMark === undefined) return;
    observer.onMark({ file: this, phase, id });
  }

  #submit(
    kind: number,
    position: number,
    buffer: ArrayBufferView | undefined,
    buffers: ArrayBufferView[] | undefined,
    length: number,
    mutationKind: IoMutationKind | undefined,
  ): Promise<number> {
    // What goes to the kernel is what was checked: a fixed-length view of
    // each buffer, made before any caller code runs again (an observer's
    // onSubmit, or the wait for a slot). A length-tracking view of a
    // resizable ArrayBuffer grown meanwhile wrote past its block, and one
    // shrunk wrote part of it (found by a review); shrunk under a fixed
    // view, the memory is refused when the addon reads it, with a code.
    const fixedBuffer = buffer === undefined ? undefined : toBytes(buffer);
    const fixedBuffers = buffers?.map(toBytes);
    return new Promise<number>((resolve, reject) => {
      const observer = mutationKind === undefined ? undefined : this.#sink.observer;
      let mutation: IoMutation | undefined;
      // In flight before the observer hears of it: a close() of this file
      // (or of the ring) that the observer makes waits for this operation,
      // rather than closing the descriptor it is about to be sent to (a
      // number the next open may reuse, for another file).
      this.#inFlight++;
      if (observer !== undefined) {
        try {
          const views = fixedBuffer !== undefined ? [fixedBuffer] : fixedBuffers ?? [];
          mutation = {
            seq: this.#sink.nextMutationSeq(),
            kind: mutationKind!,
            file: this,
            position,
            length: fixedBuffer !== undefined || fixedBuffers !== undefined ? views.reduce((sum, view) => sum + view.byteLength, 0) : length,
            buffers: views,
            durableOnCompletion: mutationKind === 'writeAndSync' || mutationKind === 'writeDsync' || (this.dsync && mutationKind === 'write'),
          };
          observer.onSubmit(mutation);
        } catch (error) {
          // The operation never goes out; the throw rejects it.
          this[kOpSettled]();
          throw error;
        }
      }
      const op: PendingOp = {
        kind,
        fd: this.#fd,
        position,
        buffer: fixedBuffer,
        buffers: fixedBuffers,
        length,
        directAlignment: this.offsetAlignment,
        owner: this,
        mutation,
        observer,
        resolve,
        reject,
      };
      this.#sink.enqueue(op);
    });
  }

  // ---- Argument checks. Each returns the error to reject with, or undefined. ----

  #checkUsable(mutates: boolean): Error | undefined {
    if (this.#closed) return new RingError('ERR_FILE_CLOSED', `'${this.path}' is closed`);
    if (this.#sink.closed) return new RingError('ERR_RING_CLOSED', 'the ring is closed');
    if (mutates && this.readOnly) return new RingError('ERR_FILE_READ_ONLY', `'${this.path}' was opened readOnly`);
    return undefined;
  }

  #checkBuffer(buffer: unknown, name: string): Error | undefined {
    if (!ArrayBuffer.isView(buffer)) return invalidType(`${name} must be a Buffer, TypedArray or DataView`);
    let byteLength: number;
    try {
      byteLength = byteLengthOf(buffer);
    } catch {
      // A DataView over a resizable ArrayBuffer shrunk below it throws here.
      return invalidType(`${name} views memory its ArrayBuffer no longer holds (detached or shrunk)`);
    }
    if (byteLength > constants.TRANSFER_SIZE_MAX) {
      return invalidRange(`${name} is ${byteLength} bytes; one operation moves at most ${constants.TRANSFER_SIZE_MAX}`);
    }
    if (byteLength === 0 && isDetached(buffer)) return invalidType(`${name}'s ArrayBuffer is detached`);
    if (this.memoryAlignment !== 0 && byteLength > 0) {
      const offBy = addon.bufferAddressModulo(buffer, this.memoryAlignment);
      if (offBy !== 0) {
        return unalignedDirectIo(
          `${name} address is ${offBy} bytes past a multiple of ${this.memoryAlignment}, which direct IO on '${this.path}' requires (use allocAligned)`,
        );
      }
      if (byteLength % this.offsetAlignment !== 0) {
        return unalignedDirectIo(
          `${name} length ${byteLength} is not a multiple of ${this.offsetAlignment}, which direct IO on '${this.path}' requires`,
        );
      }
    }
    return undefined;
  }

  /** The checked copy of a vector call's buffer list (#checkBuffers), or the error its arguments or the file's state give. */
  #checkedVector(buffers: unknown, position: number, mutates: boolean): ArrayBufferView[] | Error {
    const checked = this.#checkBuffers(buffers);
    const unusable = this.#checkUsable(mutates);
    if (unusable !== undefined) return unusable;
    if (checked instanceof Error) return checked;
    return this.#checkPosition(position, checked.totalBytes) ?? checked.list;
  }

  /**
   * Returns a copy of the list, checked, and its total length (> 0: it
   * holds 1 to IOV_COUNT_MAX buffers, none empty); or the error. The copy
   * is what is submitted: an array whose index getters or iterator answer
   * differently each time (a subclass, a Proxy) had one list checked and
   * another, unaligned, submitted (found by a review).
   */
  #checkBuffers(buffers: unknown): { list: ArrayBufferView[]; totalBytes: number } | Error {
    let list: ArrayBufferView[];
    try {
      if (!Array.isArray(buffers)) return invalidType('buffers must be an array of Buffers, TypedArrays or DataViews');
      const count = buffers.length;
      // An empty list is misuse, like an empty buffer: an operation that moves
      // nothing has no meaning the kernel could give it (and an empty
      // writeAndSync would silently become a bare fdatasync).
      if (count === 0 || count > constants.IOV_COUNT_MAX) {
        return invalidRange(`buffers must hold 1 to ${constants.IOV_COUNT_MAX} buffers, got ${count}`);
      }
      list = new Array<ArrayBufferView>(count);
      for (let i = 0; i < count; i++) list[i] = buffers[i] as ArrayBufferView;
    } catch (error) {
      // A revoked Proxy, an index getter that throws: the call's coded
      // rejection, not a synchronous throw of the caller's error (found by a
      // review).
      // (The message names nothing of it: reading a hostile value's message could throw again.)
      return Object.assign(invalidType('buffers could not be read as a list (its error is the cause)'), { cause: error });
    }
    const count = list.length;
    let total = 0;
    for (let i = 0; i < count; i++) {
      const error = this.#checkBuffer(list[i], `buffers[${i}]`);
      if (error !== undefined) return error;
      const byteLength = byteLengthOf(list[i]!);
      if (byteLength === 0) return invalidRange(`buffers[${i}] is empty`);
      total += byteLength;
    }
    if (total > constants.TRANSFER_SIZE_MAX) {
      return invalidRange(`buffers total ${total} bytes; one operation moves at most ${constants.TRANSFER_SIZE_MAX}`);
    }
    return { list, totalBytes: total };
  }

  #checkPosition(position: unknown, length: number): Error | undefined {
    if (typeof position !== 'number') return invalidType(`position must be a number, got ${typeof position}`);
    if (!Number.isInteger(position) || position < 0 || position + length > MAX_POSITION) {
      return invalidRange(`position must be an integer from 0 to 2^53-1 (with its length), got ${position}`);
    }
    if (this.offsetAlignment !== 0 && position % this.offsetAlignment !== 0) {
      return unalignedDirectIo(
        `position ${position} is not a multiple of ${this.offsetAlignment}, which direct IO on '${this.path}' requires`,
      );
    }
    return undefined;
  }

  #checkLength(length: unknown): Error | undefined {
    if (typeof length !== 'number') return invalidType(`length must be a number, got ${typeof length}`);
    if (!Number.isInteger(length) || length < 0 || length > MAX_POSITION) {
      return invalidRange(`length must be an integer from 0 to 2^53-1, got ${length}`);
    }
    return undefined;
  }

  #blockPosition(index: unknown): number {
    if (typeof index !== 'number') throw invalidType(`block index must be a number, got ${typeof index}`);
    if (!Number.isInteger(index) || index < 0 || index * this.blockSize > MAX_POSITION - this.blockSize) {
      throw invalidRange(`block index must be a non-negative integer within 2^53 bytes, got ${index}`);
    }
    return index * this.blockSize;
  }
}

function discard(): void {}

/**
 * `view`'s length through the intrinsic getters, or ERR_INVALID_ARG naming
 * `what` when there is none (a DataView over a resizable ArrayBuffer shrunk
 * below it). REQUIRES: ArrayBuffer.isView(view).
 */
function viewByteLength(view: ArrayBufferView, what: string): number {
  try {
    return byteLengthOf(view);
  } catch {
    throw invalidType(`${what} views memory its ArrayBuffer no longer holds (detached or shrunk)`);
  }
}
