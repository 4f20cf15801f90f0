// FaultyDevice: a SimulatedDevice wrapped to fail the Nth operation of one
// kind, once (transient) or from then on (persistent), as a FaultPlan says
// — the device of the IO fault explorer (fault_explorer.ts). Four faults:
//   - EIO or ENOSPC: the operation fails (a failed write+fdatasync or
//     RWF_DSYNC write may still land its bytes, without their durability;
//     a growth's ENOSPC is the file system's refusal, ERR_STORE_NO_SPACE, its
//     EIO a failing fallocate);
//   - short: a write lands only a prefix of its 512-byte sectors (at least
//     one, fewer than all, chosen from the seed), not durably, and then fails
//     with EIO — what the IO layer reports when the kernel stops a write
//     short and it cannot be continued; a short read delivers a prefix and
//     fails with ERR_STORE_CORRUPT, as RingBlockDevice reports one;
//   - lost (flushes only: fdatasync, write + fdatasync, RWF_DSYNC write):
//     the device's cache is lost as the flush reaches it (every completed
//     write not yet durable never will be, SimulatedDevice.loseCache —
//     also what a flush already in flight covers: the device may take the
//     two in either order), but the flush's EIO comes back late, after
//     flushes beside it have completed, having found nothing left to flush.
//     Nothing acknowledged on such a success may be lost (FlushLedger). A
//     growth not yet durable is lost with the cache too.
import assert from 'node:assert/strict';

import type { BlockDevice } from '../../engine/block_device.js';
import { SECTOR_SIZE, type SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreError } from '../../engine/store_error.js';

/** The kind of device operation a fault plan fails. */
export type FaultKind = 'write' | 'writeAndSync' | 'writeDsync' | 'sync' | 'trim' | 'read' | 'grow';
/** What happens to the faulted operation; see the file comment. */
export type FaultType = 'EIO' | 'ENOSPC' | 'short' | 'lost';

/**
 * The kinds a short transfer applies to: the writes, and reads. A flush and
 * a trim move no bytes, so they cannot be cut; those combinations are
 * skipped.
 */
const SHORT_FAULT_KINDS: ReadonlySet<FaultKind> = new Set<FaultKind>(['write', 'writeAndSync', 'writeDsync', 'read']);

/** The kinds a lost cache applies to: the flushes. */
const LOST_FAULT_KINDS: ReadonlySet<FaultKind> = new Set<FaultKind>(['writeAndSync', 'writeDsync', 'sync']);

/**
 * Event-loop turns a lost-cache flush's error waits before it comes back:
 * the simulated device completes an operation in one, so flushes issued
 * within a few turns behind it complete first.
 */
const LOST_FLUSH_DELAY_TURNS = 8;

/** Whether a fault plan of this type can fail an operation of this kind. */
export function faultApplies(fault: FaultType, kind: FaultKind): boolean {
  if (fault === 'short') return SHORT_FAULT_KINDS.has(kind);
  if (fault === 'lost') return LOST_FAULT_KINDS.has(kind);
  return true;
}

/** One fault to inject: which operation fails, and how. */
export interface FaultPlan {
  /** The kind of operation that fails. */
  kind: FaultKind;
  /** Fail the Nth operation of `kind` (1-based). */
  nth: number;
  /** How it fails. */
  fault: FaultType;
  /** True: every later operation of `kind` fails too; false: only the Nth. */
  persistent: boolean;
  /**
   * The workload's store is opened with sync: false: a write resolves once
   * written, and is acknowledged (must survive) once a flush() or close()
   * called after it resolved.
   */
  deferred: boolean;
}

/**
 * A SimulatedDevice that fails the operation a FaultPlan names (see the
 * file comment), counts what the explorer reports of it, and runs the
 * store's deferred tasks when the workload says (runDeferred).
 */
export class FaultyDevice implements BlockDevice {
  readonly inner: SimulatedDevice;
  readonly #plan: FaultPlan;
  readonly #counts = new Map<FaultKind, number>();
  /** Chooses how many sectors a short fault lets land. */
  readonly #random: () => number;
  injected = false;
  /** Short faults that landed a proper prefix. */
  cuts = 0;
  /** Lost-cache flushes whose error is still to come back. */
  #lostPending = 0;
  /** Flushes issued while a lost one's error was still to come that succeeded before it came (what FlushLedger must not believe). */
  overtakes = 0;
  /** The store's deferred tasks (deferTask), run by runDeferred(). */
  #deferred: { task: () => void; cancelled: boolean }[] = [];
  /** Deferred tasks run. */
  deferredRan = 0;

  constructor(inner: SimulatedDevice, plan: FaultPlan, random: () => number) {
    this.inner = inner;
    this.#plan = plan;
    this.#random = random;
  }

  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }
  get ioAlignment(): number {
    return this.inner.ioAlignment;
  }
  get trimAlignment(): number {
    return this.inner.trimAlignment;
  }

  get sizeBytesMax(): number | undefined {
    return this.inner.sizeBytesMax;
  }

  get blank(): boolean {
    return this.inner.blank;
  }

  /** Keeps the task for runDeferred(): the workload decides when a timer would have fired, so a plan hits the same IO on every run. */
  deferTask(task: () => void): () => void {
    const entry = { task, cancelled: false };
    this.#deferred.push(entry);
    return () => {
      entry.cancelled = true;
    };
  }

  /** Runs the deferred tasks not cancelled, as if their timers fired now. */
  runDeferred(): void {
    for (const entry of this.#deferred.splice(0)) {
      if (entry.cancelled) continue;
      this.deferredRan++;
      entry.task();
    }
  }

  /** Counts an operation of `kind`; true if the plan faults it. */
  #hit(kind: FaultKind): boolean {
    const count = (this.#counts.get(kind) ?? 0) + 1;
    this.#counts.set(kind, count);
    if (kind !== this.#plan.kind) return false;
    if (count === this.#plan.nth || (this.#plan.persistent && count > this.#plan.nth)) {
      this.injected = true;
      return true;
    }
    return false;
  }

  /** The kernel-style error of a fault on `kind`: EIO for a short write, as the IO layer reports one. */
  #error(kind: FaultKind): Error {
    const code = this.#plan.fault === 'ENOSPC' ? 'ENOSPC' : 'EIO';
    const errno = code === 'EIO' ? -5 : -28;
    const what = this.#plan.fault === 'short' ? 'short write' : this.#plan.fault === 'lost' ? 'fault (the device cache lost)' : 'fault';
    return Object.assign(new Error(`${code}: injected ${what} on ${kind} #${this.#counts.get(kind)}`), { code, errno, syscall: kind });
  }

  /**
   * The first sectors of `buffers` that a short transfer moves: at least
   * one, fewer than all; none when there is only one sector.
   */
  #prefix(buffers: Uint8Array[]): Uint8Array[] {
    const totalBytes = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    // The store moves whole blocks, multiples of ioAlignment (>= a sector).
    assert.equal(totalBytes % SECTOR_SIZE, 0, `a ${totalBytes}-byte transfer is not whole sectors`);
    const sectorCount = totalBytes / SECTOR_SIZE;
    if (sectorCount < 2) return [];
    this.cuts++;
    let remaining = (1 + Math.floor(this.#random() * (sectorCount - 1))) * SECTOR_SIZE;
    const prefix: Uint8Array[] = [];
    for (const buffer of buffers) {
      if (remaining === 0) break;
      const part = buffer.subarray(0, Math.min(buffer.length, remaining));
      prefix.push(part);
      remaining -= part.length;
    }
    return prefix;
  }

  /**
   * A faulted write. EIO/ENOSPC on a plain write lands nothing; on a
   * write+fdatasync or RWF_DSYNC write the bytes may land without their
   * durability. A short write lands a prefix (not durable: the fdatasync
   * linked behind it was cancelled) and fails.
   */
  async #faultedWrite(kind: FaultKind, position: number, buffers: Uint8Array[]): Promise<never> {
    const error = this.#error(kind);
    if (this.#plan.fault === 'lost') {
      // The bytes land in the cache, which is then lost with the rest.
      await this.inner.write(position, buffers);
      return this.#lostFlush(error);
    }
    if (this.#plan.fault === 'short') {
      const prefix = this.#prefix(buffers);
      if (prefix.length > 0) await this.inner.write(position, prefix);
    } else if (kind !== 'write') {
      await this.inner.write(position, buffers);
    }
    throw error;
  }

  /** A flush whose device lost its cache: the loss now, the error late. */
  async #lostFlush(error: Error): Promise<never> {
    this.inner.loseCache();
    this.#lostPending++;
    try {
      for (let turn = 0; turn < LOST_FLUSH_DELAY_TURNS; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
    } finally {
      this.#lostPending--;
    }
    throw error;
  }

  /** A flush that goes through to the device, counted if it overtakes a lost one (issued after it, done before its error). */
  async #flush(issue: () => Promise<void>): Promise<void> {
    const behindLost = this.#lostPending > 0;
    await issue();
    if (behindLost && this.#lostPending > 0) this.overtakes++;
  }

  /**
   * A faulted read. EIO/ENOSPC: nothing read. Short: the prefix arrives in
   * the buffers, and the read fails as RingBlockDevice fails a short read
   * (the store never reads past its end, so the file must have shrunk).
   */
  async #faultedRead(position: number, buffers: Uint8Array[]): Promise<never> {
    if (this.#plan.fault !== 'short') throw this.#error('read');
    const prefix = this.#prefix(buffers);
    if (prefix.length > 0) await this.inner.readv(position, prefix);
    const wanted = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    const got = prefix.reduce((sum, buffer) => sum + buffer.length, 0);
    throw new StoreError('ERR_STORE_CORRUPT', `read of ${wanted} bytes at ${position} returned ${got} (injected short read): the file is shorter than the store`);
  }

  read(position: number, buffer: Uint8Array): Promise<void> {
    return this.#hit('read') ? this.#faultedRead(position, [buffer]) : this.inner.read(position, buffer);
  }
  readv(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#hit('read') ? this.#faultedRead(position, buffers) : this.inner.readv(position, buffers);
  }
  write(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#hit('write') ? this.#faultedWrite('write', position, buffers) : this.inner.write(position, buffers);
  }
  writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#hit('writeAndSync') ? this.#faultedWrite('writeAndSync', position, buffers) : this.#flush(() => this.inner.writeAndSync(position, buffers));
  }
  writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#hit('writeDsync') ? this.#faultedWrite('writeDsync', position, buffers) : this.#flush(() => this.inner.writeDsync(position, buffers));
  }
  sync(): Promise<void> {
    if (!this.#hit('sync')) return this.#flush(() => this.inner.sync());
    return this.#plan.fault === 'lost' ? this.#lostFlush(this.#error('sync')) : Promise.reject(this.#error('sync'));
  }
  trim(position: number, length: number): Promise<void> {
    return this.#hit('trim') ? Promise.reject(this.#error('trim')) : this.inner.trim(position, length);
  }
  /**
   * A growth. ENOSPC is the file system's refusal, as RingBlockDevice
   * reports it (ERR_STORE_NO_SPACE, the device keeps its length); EIO a
   * failing fallocate (its syscall says so).
   */
  grow(sizeBytes: number): Promise<void> {
    if (!this.#hit('grow')) return this.inner.grow(sizeBytes);
    const error = this.#error('grow');
    Object.assign(error, { syscall: 'fallocate' });
    if (this.#plan.fault !== 'ENOSPC') return Promise.reject(error);
    return Promise.reject(new StoreError('ERR_STORE_NO_SPACE', `cannot grow the device to ${sizeBytes} bytes: ${error.message}`, { cause: error }));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
