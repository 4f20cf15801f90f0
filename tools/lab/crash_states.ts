// Crash states: what a device can hold after power fails at a point of a
// write trace. At crash point p (the first p trace events happened):
//
//  durable  — a write whose completion came before a completed flush was
//             submitted (a flush covers what completed before it started); a
//             write+fdatasync likewise covers what completed before it was
//             submitted, itself included; an RWF_DSYNC write (or a write to
//             an O_DSYNC file) covers only itself. Conservative on purpose:
//             never more durable than the kernel promises.
//  pending  — every other write or trim submitted before p, completed or
//             still in flight (a failed write too: it may have written some
//             sectors). Each may be on the media whole, not at all, or torn
//             at 512-byte sectors — each sector old, new, or garbage (a
//             sector the power cut in mid-write); a trimmed range reads as
//             zeros or as before.
import { seededRandom } from './seeded_random.js';
import type { TraceOperation, WriteTrace } from './write_trace.js';

export const SECTOR_SIZE = 512;

export interface CrashPoint {
  /** Trace events that happened before the power failed. */
  eventCount: number;
  durable: TraceOperation[];
  pending: TraceOperation[];
}

/** What one sector of a torn write holds after the crash. */
export const enum SectorFate {
  Old = 0,
  New = 1,
  /** Neither: the device was writing it when the power went. */
  Garbage = 2,
}

/** A choice of what the pending operations left: whole, nothing, or per sector. */
export type PendingPart = 'all' | 'none' | SectorFate[];
export type PendingChoice = Map<TraceOperation, PendingPart>;

export function crashPointAt(trace: WriteTrace, eventCount: number): CrashPoint {
  const durable = new Set<TraceOperation>();
  const completed = new Set<TraceOperation>();
  const coverAtSubmit = new Map<TraceOperation, TraceOperation[]>();
  const submitted: TraceOperation[] = [];
  for (let index = 0; index < eventCount; index++) {
    const event = trace.events[index];
    if (event.type !== 'submit' && event.type !== 'complete') continue;
    const operation = event.operation;
    if (event.type === 'submit') {
      submitted.push(operation);
      if (operation.kind === 'flush' || operation.kind === 'writeAndSync') {
        coverAtSubmit.set(operation, [...completed].filter((done) => !durable.has(done)));
      }
      continue;
    }
    if (operation.failed) continue; // may have written anything: stays pending
    if (operation.kind === 'flush' || operation.kind === 'writeAndSync') {
      for (const covered of coverAtSubmit.get(operation) ?? []) durable.add(covered);
    }
    if (operation.kind === 'flush') continue;
    completed.add(operation);
    if (operation.kind === 'writeAndSync' || operation.kind === 'writeDsync' || operation.durableOnCompletion) durable.add(operation);
  }
  const pending = submitted.filter((operation) => operation.kind !== 'flush' && !durable.has(operation));
  return { eventCount, durable: [...durable].sort((a, b) => a.id - b.id), pending };
}

/**
 * The device image for a crash point and a choice for its pending writes,
 * built on a copy of `base` (the device before the trace began). Writes are
 * applied in submit order, so a newer write to a sector wins over an older one.
 */
export function buildImage(trace: WriteTrace, base: Uint8Array, point: CrashPoint, choice: PendingChoice): Uint8Array {
  const image = Uint8Array.prototype.slice.call(base);
  const chosen: { operation: TraceOperation; part: PendingPart }[] = point.durable.map((operation) => ({ operation, part: 'all' }));
  for (const operation of point.pending) {
    const part = choice.get(operation) ?? 'none';
    if (part !== 'none') chosen.push({ operation, part });
  }
  chosen.sort((a, b) => a.operation.id - b.operation.id);
  for (const { operation, part } of chosen) {
    const data = operation.kind === 'trim' ? undefined : trace.dataOf(operation);
    forEachSector(operation, part, (start, end, fate) => {
      image.set(sectorBytes(operation, data, start, end, fate), operation.position + start);
    });
  }
  return image;
}

/** Calls `visit` for each sector of `operation` that `part` puts on the media, with its byte range in the operation. */
export function forEachSector(operation: TraceOperation, part: PendingPart, visit: (start: number, end: number, fate: SectorFate) => void): void {
  if (part === 'none') return;
  const sectors = sectorCount(operation);
  for (let sector = 0; sector < sectors; sector++) {
    const fate = part === 'all' ? SectorFate.New : part[sector];
    if (fate === SectorFate.Old) continue;
    const start = sector * SECTOR_SIZE;
    visit(start, Math.min(operation.length, start + SECTOR_SIZE), fate);
  }
}

/**
 * What a sector of a write holds on the media: its new bytes (zeros for a
 * trim), or garbage — deterministic per operation and sector, so a state
 * rebuilds the same every time.
 */
export function sectorBytes(operation: TraceOperation, data: Uint8Array | undefined, start: number, end: number, fate: SectorFate): Uint8Array {
  if (fate === SectorFate.Garbage) {
    const garbage = new Uint8Array(end - start);
    const random = seededRandom(operation.id * 0x9e3779b1 + start + 1);
    for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(random() * 256);
    return garbage;
  }
  return data === undefined ? new Uint8Array(end - start) : data.subarray(start, end);
}

/** Sectors of an operation. */
export function sectorCount(operation: TraceOperation): number {
  return Math.ceil(operation.length / SECTOR_SIZE);
}
