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
//             at 512-byte sectors; a trimmed range reads as zeros or as before.
import type { TraceOperation, WriteTrace } from './write_trace.js';

export const SECTOR_SIZE = 512;

export interface CrashPoint {
  /** Trace events that happened before the power failed. */
  eventCount: number;
  durable: TraceOperation[];
  pending: TraceOperation[];
}

/** A choice of what the pending operations left: for each, the sectors that reached the media. */
export type PendingChoice = Map<TraceOperation, 'all' | 'none' | boolean[]>;

export function crashPointAt(trace: WriteTrace, eventCount: number): CrashPoint {
  const durable = new Set<TraceOperation>();
  const completed = new Set<TraceOperation>();
  const coverAtSubmit = new Map<TraceOperation, TraceOperation[]>();
  const submitted: TraceOperation[] = [];
  for (let index = 0; index < eventCount; index++) {
    const event = trace.events[index];
    if (event.type === 'ack') continue;
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
 * built on `base` (the device before the trace began). Writes are applied in
 * submit order, so a newer write to a sector wins over an older one.
 */
export function buildImage(base: Uint8Array, point: CrashPoint, choice: PendingChoice): Uint8Array {
  const image = Uint8Array.prototype.slice.call(base);
  const chosen = [...point.durable.map((operation) => ({ operation, part: 'all' as const }))];
  for (const operation of point.pending) {
    const part = choice.get(operation) ?? 'none';
    if (part !== 'none') chosen.push({ operation, part: part as 'all' });
  }
  chosen.sort((a, b) => a.operation.id - b.operation.id);
  for (const { operation, part } of chosen) {
    const sectors = Math.ceil(operation.length / SECTOR_SIZE);
    for (let sector = 0; sector < sectors; sector++) {
      if (part !== 'all' && !(part as unknown as boolean[])[sector]) continue;
      const start = sector * SECTOR_SIZE;
      const end = Math.min(operation.length, start + SECTOR_SIZE);
      if (operation.kind === 'trim') image.fill(0, operation.position + start, operation.position + end);
      else image.set(operation.data!.subarray(start, end), operation.position + start);
    }
  }
  return image;
}

/** Sectors of an operation. */
export function sectorCount(operation: TraceOperation): number {
  return Math.ceil(operation.length / SECTOR_SIZE);
}
