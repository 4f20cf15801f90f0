// Crash states: what a device can hold after power fails at a point of a
// write trace. At crash point p (the first p trace events happened):
//
//  durable  — a write whose completion came before a completed flush was
//             submitted (a flush covers what completed before it started); a
//             write+fdatasync likewise covers what completed before it was
//             submitted, itself included; an RWF_DSYNC write (or a write to
//             an O_DSYNC file) covers only itself. After a flush fails,
//             what it was to cover (and everything else completed) never
//             becomes durable: a later fdatasync may succeed without those
//             pages. Conservative on purpose: never more durable than the
//             kernel promises. A durable trim reads as zeros (the check that
//             nothing references a trimmed block covers a store that would
//             rely on the old bytes).
//  pending  — every other write or trim submitted before p, completed or
//             still in flight (a failed write too: it may have written some
//             sectors). Each may be on the media whole, not at all, or torn
//             at 512-byte sectors — each sector old, new, or garbage (a
//             sector the power cut in mid-write); a trimmed range reads as
//             zeros or as before.
import { SECTOR_SIZE } from '../../engine/simulated_device.js';
import { seededRandom } from './seeded_random.js';
import type { TraceOperation, WriteTrace } from './write_trace.js';

export { SECTOR_SIZE };

/** A point of a write trace where the power fails, and what is durable and pending there. */
export interface CrashPoint {
  /** Trace events that happened before the power failed. */
  readonly eventCount: number;
  /** Writes and trims surely on the media, by id (a fresh array each time it is read). */
  readonly durable: TraceOperation[];
  /** How many writes and trims are durable (the length of `durable`, without building it). */
  readonly durableCount: number;
  /** Writes and trims submitted and not durable, by id. */
  readonly pending: TraceOperation[];
}

/** What one sector of a torn write holds after the crash. */
export const enum SectorFate {
  /** The bytes it held before the write. */
  Old = 0,
  /** The write's bytes. */
  New = 1,
  /** Neither: the device was writing it when the power went. */
  Garbage = 2,
}

/** A choice of what the pending operations left: whole, nothing, or per sector. */
export type PendingPart = 'all' | 'none' | SectorFate[];
/** What each pending operation of a crash point left on the media; an operation not in the map left nothing. */
export type PendingChoice = Map<TraceOperation, PendingPart>;

/**
 * Follows a trace event by event and says, after each, what is durable and
 * what pending (the rules at the top of this file). Durability only grows,
 * so the durable writes are kept once, in the order they became durable,
 * and each crash point holds a count into that list.
 */
class DurabilityTracker {
  readonly #trace: WriteTrace;
  /** Every write that became durable, in that order (shared by every point). */
  readonly #durableOrder: TraceOperation[] = [];
  readonly #durable = new Set<TraceOperation>();
  /** Completed, not yet durable, and still able to become so. */
  readonly #completed = new Set<TraceOperation>();
  /**
   * Writes that completed before a flush failed: after a failed fdatasync
   * the kernel may have dropped their pages and a later fdatasync can report
   * success without them (the "fsyncgate" semantics), so no later flush
   * makes them durable.
   */
  readonly #orphaned = new Set<TraceOperation>();
  readonly #coverAtSubmit = new Map<TraceOperation, TraceOperation[]>();
  /** Submitted writes and trims that are not durable. */
  readonly #pending = new Set<TraceOperation>();
  eventCount = 0;

  constructor(trace: WriteTrace) {
    this.#trace = trace;
  }

  /** Takes the next event of the trace into account. */
  step(): void {
    const event = this.#trace.events[this.eventCount++];
    if (event.type !== 'submit' && event.type !== 'complete') return;
    const operation = event.operation;
    const flushes = operation.kind === 'flush' || operation.kind === 'writeAndSync';
    if (event.type === 'submit') {
      if (operation.kind !== 'flush') this.#pending.add(operation);
      // A flush covers what completed before it was submitted.
      if (flushes) this.#coverAtSubmit.set(operation, [...this.#completed]);
      return;
    }
    const covered = this.#coverAtSubmit.get(operation) ?? [];
    this.#coverAtSubmit.delete(operation);
    if (operation.failed) {
      // A failed write may have written anything: it stays pending. A failed
      // flush orphans everything it was to cover, and all else completed.
      if (flushes) {
        for (const orphan of [...covered, ...this.#completed]) {
          this.#completed.delete(orphan);
          if (!this.#durable.has(orphan)) this.#orphaned.add(orphan);
        }
      }
      return;
    }
    if (flushes) for (const done of covered) if (!this.#orphaned.has(done)) this.#makeDurable(done);
    if (operation.kind === 'flush') return;
    if (operation.kind === 'writeAndSync' || operation.kind === 'writeDsync' || operation.durableOnCompletion) this.#makeDurable(operation);
    else this.#completed.add(operation);
  }

  /** The crash point after the events taken so far. */
  point(): CrashPoint {
    const durableOrder = this.#durableOrder;
    const durableCount = durableOrder.length;
    return {
      eventCount: this.eventCount,
      // Computed when asked for: a trace has thousands of points, each with
      // hundreds of durable writes.
      get durable(): TraceOperation[] {
        return durableOrder.slice(0, durableCount).sort((a, b) => a.id - b.id);
      },
      durableCount,
      pending: [...this.#pending].sort((a, b) => a.id - b.id),
    };
  }

  #makeDurable(operation: TraceOperation): void {
    if (this.#durable.has(operation)) return;
    this.#durable.add(operation);
    this.#durableOrder.push(operation);
    this.#completed.delete(operation);
    this.#pending.delete(operation);
  }
}

/** The crash point after the first `eventCount` events of `trace`. */
export function crashPointAt(trace: WriteTrace, eventCount: number): CrashPoint {
  const tracker = new DurabilityTracker(trace);
  while (tracker.eventCount < eventCount) tracker.step();
  return tracker.point();
}

/**
 * Every crash point of a trace where something changes: after each submit
 * (a write now in flight), each completion (durability moved) and each
 * acknowledgement (more must survive), and at the end.
 */
export function crashPoints(trace: WriteTrace): CrashPoint[] {
  const tracker = new DurabilityTracker(trace);
  const points: CrashPoint[] = [];
  while (tracker.eventCount < trace.events.length) {
    tracker.step();
    const last = trace.events[tracker.eventCount - 1];
    if (last.type !== 'mark' || tracker.eventCount === trace.events.length) points.push(tracker.point());
  }
  return points;
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
