// IO fault explorer: runs a workload on a simulated device that fails the Nth
// operation of one kind — EIO or ENOSPC, once (transient) or from then on
// (persistent) — for every N the workload reaches. Checks: a write whose IO
// failed is never acknowledged; after a failed write or flush the store
// refuses writes with ERR_STORE_FAILED (no retry-and-pretend); a failed trim
// or read does not stop it; and after a power loss at that point, reopening
// gives every acknowledged write, whole batches, and a clean integrity check.
import type { BlockDevice } from '../../engine/block_device.js';
import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';

export type FaultKind = 'write' | 'writeAndSync' | 'writeDsync' | 'sync' | 'trim' | 'read';
export const FAULT_KINDS: readonly FaultKind[] = ['write', 'writeAndSync', 'writeDsync', 'sync', 'trim', 'read'];

export interface FaultPlan {
  kind: FaultKind;
  /** Fail the Nth operation of `kind` (1-based). */
  nth: number;
  errno: 'EIO' | 'ENOSPC';
  persistent: boolean;
}

export interface FaultReport {
  runs: number;
  /** Runs in which the fault was actually hit. */
  injected: number;
  violations: string[];
}

const DEVICE_BYTES = 4 << 20;

class FaultyDevice implements BlockDevice {
  readonly inner: SimulatedDevice;
  readonly #plan: FaultPlan;
  readonly #counts = new Map<FaultKind, number>();
  injected = false;

  constructor(inner: SimulatedDevice, plan: FaultPlan) {
    this.inner = inner;
    this.#plan = plan;
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

  #fault(kind: FaultKind): Error | undefined {
    const count = (this.#counts.get(kind) ?? 0) + 1;
    this.#counts.set(kind, count);
    if (kind !== this.#plan.kind) return undefined;
    if (count === this.#plan.nth || (this.#plan.persistent && count > this.#plan.nth)) {
      this.injected = true;
      const errno = this.#plan.errno === 'EIO' ? -5 : -28;
      return Object.assign(new Error(`${this.#plan.errno}: injected fault on ${kind} #${count}`), { code: this.#plan.errno, errno, syscall: kind });
    }
    return undefined;
  }

  read(position: number, buffer: Uint8Array): Promise<void> {
    const error = this.#fault('read');
    return error ? Promise.reject(error) : this.inner.read(position, buffer);
  }
  readv(position: number, buffers: Uint8Array[]): Promise<void> {
    const error = this.#fault('read');
    return error ? Promise.reject(error) : this.inner.readv(position, buffers);
  }
  write(position: number, buffers: Uint8Array[]): Promise<void> {
    const error = this.#fault('write');
    return error ? Promise.reject(error) : this.inner.write(position, buffers);
  }
  writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    const error = this.#fault('writeAndSync');
    // A failed write+fdatasync may have written: the bytes land, durability does not.
    return error ? this.inner.write(position, buffers).then(() => Promise.reject(error)) : this.inner.writeAndSync(position, buffers);
  }
  writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    const error = this.#fault('writeDsync');
    return error ? this.inner.write(position, buffers).then(() => Promise.reject(error)) : this.inner.writeDsync(position, buffers);
  }
  sync(): Promise<void> {
    const error = this.#fault('sync');
    return error ? Promise.reject(error) : this.inner.sync();
  }
  trim(position: number, length: number): Promise<void> {
    const error = this.#fault('trim');
    return error ? Promise.reject(error) : this.inner.trim(position, length);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function entriesOf(batch: number): [string, string][] {
  return [0, 1].map((i): [string, string] => [`b${batch}/${i}`, `${batch}/${i}:`.padEnd(i === 1 ? 700 : 50, 'x')]);
}

/** Runs the workload under one fault plan; returns what went wrong, if anything. */
export async function runFaultPlan(plan: FaultPlan, seed: number): Promise<{ injected: boolean; problem: string | undefined }> {
  const simulated = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
  const device = new FaultyDevice(simulated, plan);
  const acknowledged = new Set<number>();
  const attempted: number[] = [];
  let store: BlockStore;
  try {
    store = await BlockStore.open('faults', { device, create: true, blockSize: 512, walSizeBytes: 16 << 10, cacheSizeBytes: 16 << 10, encoding: 'string' });
  } catch {
    // A fault while formatting: nothing was acknowledged, nothing to check.
    return { injected: device.injected, problem: undefined };
  }
  let failedWith: string | undefined;
  for (let batch = 0; batch < 60; batch++) {
    attempted.push(batch);
    try {
      await store.batch(entriesOf(batch).map(([key, value]) => ({ type: 'put' as const, key, value })));
      acknowledged.add(batch);
      if (failedWith !== undefined) return { injected: device.injected, problem: `batch ${batch} was acknowledged after the store failed (${failedWith})` };
      if (batch % 7 === 3) await store.batch(entriesOf(batch - 2).map(([key, value]) => ({ type: 'put' as const, key, value })));
      if (batch % 11 === 5) await store.get(`b${batch - 3}/1`).catch(() => undefined);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'ERR_STORE_FAILED') failedWith ??= String((error as { cause?: unknown }).cause);
      else if (code !== 'ERR_STORE_FULL') return { injected: device.injected, problem: `batch ${batch} failed with ${String(error)}` };
    }
  }
  const writeKinds: FaultKind[] = ['write', 'writeAndSync', 'writeDsync', 'sync'];
  if (device.injected && writeKinds.includes(plan.kind) && failedWith === undefined) {
    // A write-path fault that hit only a checkpoint or a trim-free path may
    // surface on the next write; the store must not simply go on.
    try {
      await store.put('after', 'fault');
      await store.flush();
      await store.checkpoint();
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_STORE_FAILED') failedWith = 'later';
    }
  }
  await store.close().catch(() => undefined);
  // Power loss now; then recovery must give every acknowledged batch whole.
  let state = seed >>> 0 || 1;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
  const image = simulated.crash({ random });
  let reopened: BlockStore;
  try {
    reopened = await BlockStore.open('faults', { device: image, encoding: 'string' });
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_STORE_NOT_FOUND' && acknowledged.size === 0) return { injected: device.injected, problem: undefined };
    return { injected: device.injected, problem: `reopen failed: ${String(error)}` };
  }
  try {
    for (const batch of attempted) {
      const present = await Promise.all(entriesOf(batch).map(async ([key, value]) => {
        const actual = await reopened.get(key);
        if (actual !== undefined && actual !== value) throw new Error(`${key} has wrong data`);
        return actual !== undefined;
      }));
      if (acknowledged.has(batch) && !present.every(Boolean)) return { injected: device.injected, problem: `acknowledged batch ${batch} lost` };
      if (!present.every(Boolean) && present.some(Boolean)) return { injected: device.injected, problem: `batch ${batch} partly there` };
    }
    await reopened.verifyIntegrity();
    return { injected: device.injected, problem: undefined };
  } catch (error) {
    return { injected: device.injected, problem: `check failed: ${String(error)}` };
  } finally {
    await reopened.close().catch(() => undefined);
  }
}

/** Every kind × N up to `nthMax` × EIO/ENOSPC × transient/persistent. */
export async function exploreIoFaults(nthMax: number, seed: number): Promise<FaultReport> {
  const report: FaultReport = { runs: 0, injected: 0, violations: [] };
  for (const kind of FAULT_KINDS) {
    for (let nth = 1; nth <= nthMax; nth++) {
      for (const errno of ['EIO', 'ENOSPC'] as const) {
        for (const persistent of [false, true]) {
          const plan = { kind, nth, errno, persistent };
          const outcome = await runFaultPlan(plan, seed + report.runs);
          report.runs++;
          if (outcome.injected) report.injected++;
          if (outcome.problem !== undefined) report.violations.push(`${JSON.stringify(plan)}: ${outcome.problem}`);
        }
      }
    }
  }
  return report;
}
