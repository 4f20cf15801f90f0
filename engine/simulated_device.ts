// SimulatedDevice: a memory-backed BlockDevice that knows which writes are
// durable, for crash tests — ringstore's own and its users'.
//
// The durability model is a volatile write cache with flushes, like a disk
// without FUA: a completed write is visible to reads at once but durable only
// once a flush (sync, or the flush half of writeAndSync) that started after
// it completes. crash() builds the device as power loss could leave it:
// everything durable, plus any subset of the writes and trims since the last
// flush — each kept whole, dropped, or (optionally) torn at 512-byte sectors,
// since nothing larger is written atomically.
//
// IO completes asynchronously (after a macrotask), so concurrent operations
// of the store interleave as they would on a real device. `crashAfterOps`
// stops the device after that many operations: later ones reject with
// ERR_SIMULATED_CRASH, and crash() then gives the image to reopen.
import type { BlockDevice } from './block_device.js';
import { StoreError } from './store_error.js';

/** Power loss writes nothing larger than a sector atomically. */
export const SECTOR_SIZE = 512;

/** Options of a new {@link SimulatedDevice}. */
export interface SimulatedDeviceOptions {
  /** Size of the device in bytes. */
  sizeBytes: number;
  /** Alignment required of IO (like a direct-IO file). Default 512. */
  ioAlignment?: number;
  /** Stop after this many operations (reads, writes, syncs, trims); see crash(). */
  crashAfterOps?: number;
  /**
   * Lets the device grow (BlockDevice#grow) up to this size, like a
   * regular file. A growth is durable once a later sync completes: a crash
   * before that gives back the device at its earlier size. Default: the
   * device cannot grow.
   */
  sizeBytesMax?: number;
}

/** How {@link SimulatedDevice.crash} decides the fate of the writes not yet flushed. */
export interface CrashOptions {
  /** Source of randomness in [0, 1): which pending writes survive, and how torn. Default Math.random. */
  random?: () => number;
  /** Tear surviving pending writes at sector boundaries. Default true. */
  tornWrites?: boolean;
  /** Probability that a pending write survives (whole or torn). Default 0.5. */
  keepProbability?: number;
}

interface PendingWrite {
  position: number;
  /** Data written, or undefined for a trim (which may read back as zeros or as the old data). */
  data: Uint8Array | undefined;
  length: number;
  /** Completed (acknowledged); until then it is in flight — a crash may still keep or tear it. */
  completed: boolean;
}

/** The rejection of every operation on a {@link SimulatedDevice} after its crash point. */
export class SimulatedDeviceCrash extends Error {
  /** Always 'ERR_SIMULATED_CRASH'. */
  readonly code = 'ERR_SIMULATED_CRASH';
  constructor() {
    super('the simulated device has crashed');
    this.name = 'SimulatedDeviceCrash';
  }
}

/**
 * A {@link BlockDevice} in memory with a durability model, for crash tests:
 * writes become durable only when a flush covers them, {@link SimulatedDevice.crashAfter}
 * stops it after a number of operations, and {@link SimulatedDevice.crash}
 * returns the device a power loss would leave — every flushed write, and any
 * subset of the others, whole or torn at 512-byte sectors. See docs/store.md,
 * "Crash-testing your own code".
 */
export class SimulatedDevice implements BlockDevice {
  /** Size in bytes (grows up to sizeBytesMax, see grow()). */
  #sizeBytes: number;
  /** The size a crash keeps: as of the last completed sync. */
  #durableSizeBytes: number;
  /** A growth up to this size was lost with the cache (loseCache): no sync makes it durable, only a later grow() past it. */
  #growthLostThrough = 0;
  /** The most the device may grow to; undefined: it cannot grow. */
  readonly sizeBytesMax: number | undefined;
  /** Alignment required of every IO's position and length (SimulatedDeviceOptions.ioAlignment). */
  readonly ioAlignment: number;
  /** Alignment of trims: the same as ioAlignment. */
  readonly trimAlignment: number;
  /** What reads see now. */
  readonly #visible: Uint8Array;
  /** What survives power loss for sure. */
  readonly #durable: Uint8Array;
  /** Completed writes and trims not yet covered by a flush, in completion order. */
  #pending: PendingWrite[] = [];
  /** What each sync() in flight covers (a writeDsync's #supersede adds the pieces it leaves of a covered write). */
  readonly #syncsInFlight = new Set<Set<PendingWrite>>();
  #opCount = 0;
  #crashAfterOps: number;
  #crashed = false;
  #closed = false;
  #blank: boolean;
  /** Counters, for tests that want to know what the store did. */
  readonly counts: {
    /** Read calls, readv included (one each). */
    reads: number;
    /** Writes of every kind. */
    writes: number;
    /** Flushes, including the flush half of writeAndSync and each writeDsync. */
    syncs: number;
    /** Trims. */
    trims: number;
  } = { reads: 0, writes: 0, syncs: 0, trims: 0 };

  constructor(options: SimulatedDeviceOptions, image?: Uint8Array) {
    if (!Number.isSafeInteger(options.sizeBytes) || options.sizeBytes <= 0) throw new RangeError('sizeBytes must be a positive integer');
    const sizeBytesMax = options.sizeBytesMax;
    if (sizeBytesMax !== undefined && (!Number.isSafeInteger(sizeBytesMax) || sizeBytesMax < options.sizeBytes)) throw new RangeError('sizeBytesMax must be an integer of at least sizeBytes');
    this.#sizeBytes = options.sizeBytes;
    this.#durableSizeBytes = options.sizeBytes;
    this.sizeBytesMax = sizeBytesMax;
    this.ioAlignment = options.ioAlignment ?? SECTOR_SIZE;
    this.trimAlignment = this.ioAlignment;
    this.#crashAfterOps = options.crashAfterOps ?? Infinity;
    // Room for the largest the device may grow to: growing only moves the end.
    this.#visible = new Uint8Array(sizeBytesMax ?? options.sizeBytes);
    this.#blank = image === undefined;
    if (image !== undefined) {
      if (image.length !== options.sizeBytes) throw new RangeError('image size differs from sizeBytes');
      this.#visible.set(image);
    }
    this.#durable = Uint8Array.prototype.slice.call(this.#visible);
  }

  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** Made without an image and not written or trimmed since: a new device (see BlockDevice.blank). */
  get blank(): boolean {
    return this.#blank;
  }

  /** True once the device has reached its crash point (or crash() was called). */
  get crashed(): boolean {
    return this.#crashed;
  }

  /** Operations since creation (a crash point for crashAfterOps). */
  get opCount(): number {
    return this.#opCount;
  }

  /** Writes and trims that a crash now could keep or lose. */
  get pendingWriteCount(): number {
    return this.#pending.length;
  }

  /** Stops the device after `count` more operations. */
  crashAfter(count: number): void {
    this.#crashAfterOps = this.#opCount + count;
  }

  /** The bytes reads would see now (a copy). */
  snapshot(): Uint8Array {
    return Uint8Array.prototype.slice.call(this.#visible, 0, this.#sizeBytes);
  }

  /**
   * Power loss: returns a new device holding what survived. This device stops
   * (later operations reject with ERR_SIMULATED_CRASH).
   */
  crash(options: CrashOptions = {}): SimulatedDevice {
    this.#crashed = true;
    const random = options.random ?? Math.random;
    const torn = options.tornWrites ?? true;
    const keep = options.keepProbability ?? 0.5;
    const image = Uint8Array.prototype.slice.call(this.#durable);
    for (const write of this.#pending) {
      if (random() >= keep) continue;
      const sectorCount = Math.ceil(write.length / SECTOR_SIZE);
      const tearThis = torn && sectorCount > 1 && random() < 0.5;
      for (let sector = 0; sector < sectorCount; sector++) {
        if (tearThis && random() < 0.5) continue;
        const start = sector * SECTOR_SIZE;
        const end = Math.min(write.length, start + SECTOR_SIZE);
        if (write.data === undefined) image.fill(0, write.position + start, write.position + end);
        else image.set(write.data.subarray(start, end), write.position + start);
      }
    }
    // A growth not yet covered by a sync is lost with the power (the size is
    // file system metadata, durable with the next fdatasync).
    const sizeBytes = this.#durableSizeBytes;
    const sizeBytesMax = this.sizeBytesMax;
    const kept = image.subarray(0, sizeBytes);
    return new SimulatedDevice({ sizeBytes, ioAlignment: this.ioAlignment, ...(sizeBytesMax === undefined ? {} : { sizeBytesMax }) }, kept);
  }

  async read(position: number, buffer: Uint8Array): Promise<void> {
    await this.#begin('read', position, buffer.length, buffer);
    this.counts.reads++;
    buffer.set(this.#visible.subarray(position, position + buffer.length));
  }

  async readv(position: number, buffers: Uint8Array[]): Promise<void> {
    const length = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    await this.#begin('read', position, length, buffers[0]);
    this.counts.reads++;
    let offset = position;
    for (const buffer of buffers) {
      buffer.set(this.#visible.subarray(offset, offset + buffer.length));
      offset += buffer.length;
    }
  }

  async write(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.#write(position, buffers);
  }

  /**
   * A write is pending from its submission: power can fail while it is in
   * flight and leave any of its sectors on the media. It becomes visible to
   * reads when it completes.
   */
  async #write(position: number, buffers: Uint8Array[]): Promise<PendingWrite> {
    const data = concat(buffers);
    this.#check('write', position, data.length);
    this.#blank = false;
    const entry: PendingWrite = { position, data, length: data.length, completed: false };
    if (!this.#crashed) this.#pending.push(entry);
    await this.#begin('write', position, data.length, buffers[0]);
    this.counts.writes++;
    this.#visible.set(data, position);
    entry.completed = true;
    return entry;
  }

  async writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.write(position, buffers);
    await this.sync();
  }

  async writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    const written = await this.#write(position, buffers);
    // Durable now, and only this write: earlier unflushed writes stay
    // pending. The bytes it replaced in earlier pending writes are gone from
    // the cache (a device keeps the newest data of a sector), so those
    // writes lose the overlapping part.
    this.#pending = this.#pending.filter((write) => write !== written);
    this.#durable.set(written.data!, written.position);
    this.#supersede(written.position, written.length);
    this.counts.syncs++;
  }

  #supersede(position: number, length: number): void {
    const end = position + length;
    const kept: PendingWrite[] = [];
    for (const write of this.#pending) {
      const writeEnd = write.position + write.length;
      // Completed writes are older than the one just made durable; a write
      // still in flight may yet land after it, so it keeps all its sectors.
      if (!write.completed || writeEnd <= position || write.position >= end) {
        kept.push(write);
        continue;
      }
      const pieces: PendingWrite[] = [];
      if (write.position < position) pieces.push(slice(write, write.position, position));
      if (writeEnd > end) pieces.push(slice(write, end, writeEnd));
      kept.push(...pieces);
      // A sync in flight that covered the write covers what is left of it.
      for (const covered of this.#syncsInFlight) {
        if (covered.has(write)) for (const piece of pieces) covered.add(piece);
      }
    }
    this.#pending = kept;
  }

  async sync(): Promise<void> {
    // Only writes completed before the flush starts are covered by it.
    const covered = new Set(this.#pending.filter((write) => write.completed));
    const sizeBytes = this.#sizeBytes;
    this.#syncsInFlight.add(covered);
    try {
      await this.#begin('sync', 0, 0, undefined);
    } finally {
      this.#syncsInFlight.delete(covered);
    }
    this.counts.syncs++;
    if (sizeBytes > this.#growthLostThrough) this.#durableSizeBytes = Math.max(this.#durableSizeBytes, sizeBytes);
    for (const write of this.#pending) {
      if (!covered.has(write)) continue;
      if (write.data === undefined) this.#durable.fill(0, write.position, write.position + write.length);
      else this.#durable.set(write.data, write.position);
    }
    this.#pending = this.#pending.filter((write) => !covered.has(write));
  }

  /**
   * The device's volatile cache is lost, as when a flush fails: every
   * completed write and trim not yet made durable is dropped from what
   * power loss can keep — also what a sync() in flight covers (the loss may
   * reach the device before that flush does: its success, when it comes,
   * no longer makes them durable) — and no later flush makes it durable (a
   * flush after a failed one finds nothing of it left to flush). Reads still
   * see those writes; writes in flight (a writeDsync's included) are not
   * affected. A growth not yet durable never becomes durable either (the
   * file system's record of the new length was in the lost cache, and no
   * later flush sends it again) — unless a later grow() takes the device
   * past it, which records a length anew: a crash gives back the device
   * at its durable size, which reads past keep seeing until then. After
   * the crash point it does nothing.
   * It only models the loss: the caller also fails the flush that met it
   * (as the fault explorer's 'lost' fault does) — a loss no operation
   * reports is one no store can notice. For fault tests.
   */
  loseCache(): void {
    if (this.#crashed) return;
    this.#pending = this.#pending.filter((write) => !write.completed);
    if (this.#sizeBytes > this.#durableSizeBytes) this.#growthLostThrough = this.#sizeBytes;
  }

  /** Grows the device to `sizeBytes` (up to sizeBytesMax), new bytes zero; durable with the next sync. */
  async grow(sizeBytes: number): Promise<void> {
    if (this.sizeBytesMax === undefined) throw new Error('simulated device: made without sizeBytesMax, it cannot grow');
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes > this.sizeBytesMax) {
      throw new StoreError('ERR_STORE_NO_SPACE', `simulated device: no room to grow to ${sizeBytes} bytes (at most ${this.sizeBytesMax})`);
    }
    await this.#begin('sync', 0, 0, undefined);
    this.#sizeBytes = Math.max(this.#sizeBytes, sizeBytes);
  }

  async trim(position: number, length: number): Promise<void> {
    this.#check('trim', position, length);
    // Refused after close before it counts as pending: a crash image must not apply it.
    if (this.#closed) throw new Error('simulated device: trim after close');
    this.#blank = false;
    const entry: PendingWrite = { position, data: undefined, length, completed: false };
    if (!this.#crashed) this.#pending.push(entry);
    await this.#begin('trim', position, length, undefined);
    this.counts.trims++;
    this.#visible.fill(0, position, position + length);
    entry.completed = true;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #check(kind: string, position: number, length: number): void {
    if (!Number.isSafeInteger(position) || position < 0 || position + length > this.sizeBytes) {
      throw new RangeError(`simulated device: ${kind} of ${length} bytes at ${position} outside ${this.sizeBytes}`);
    }
  }

  async #begin(kind: string, position: number, length: number, buffer: Uint8Array | undefined): Promise<void> {
    if (this.#closed) throw new Error(`simulated device: ${kind} after close`);
    if (kind !== 'sync') {
      if (!Number.isSafeInteger(position) || position < 0 || position + length > this.sizeBytes) {
        throw new RangeError(`simulated device: ${kind} of ${length} bytes at ${position} outside ${this.sizeBytes}`);
      }
      if (kind !== 'trim' && (position % this.ioAlignment !== 0 || length % this.ioAlignment !== 0)) {
        throw new RangeError(`simulated device: unaligned ${kind} of ${length} bytes at ${position}`);
      }
      if (buffer !== undefined && buffer.byteOffset % 1 !== 0) throw new RangeError('simulated device: bad buffer');
    }
    // Complete on a later turn of the event loop, as real IO does.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.#crashed || this.#opCount >= this.#crashAfterOps) {
      this.#crashed = true;
      throw new SimulatedDeviceCrash();
    }
    this.#opCount++;
  }
}

function slice(write: PendingWrite, from: number, to: number): PendingWrite {
  return {
    position: from,
    length: to - from,
    data: write.data === undefined ? undefined : write.data.subarray(from - write.position, to - write.position),
    completed: write.completed,
  };
}

function concat(buffers: Uint8Array[]): Uint8Array {
  if (buffers.length === 1) return Uint8Array.prototype.slice.call(buffers[0]);
  const total = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const buffer of buffers) {
    out.set(buffer, offset);
    offset += buffer.length;
  }
  return out;
}
