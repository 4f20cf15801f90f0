// CrashImage: the one device image the crash explorer works on — a file in
// /dev/shm (memory, no disk IO), brought to each crash state by writing only
// what differs, with an undo log to take a state's writes back again.
//
// The image has two layers. The durable layer (the trace's durable writes
// up to the current crash point) only grows while states go forward in the
// trace, so moving to the next point applies just the newly durable writes.
// A state's pending writes, and every write the store under test makes to
// the image (recovery's repairs, the checks' probe writes), go on top with
// their old bytes saved in the undo log; `rollback()` restores them in
// reverse order. Going back in the trace rebuilds the durable layer from
// the base.
//
// Order matters where writes overlap: the newer write (higher trace id)
// wins. Applying a write after a newer one already applied would undo that
// rule, so after each write the overlapping parts of newer applied writes are
// written again.
import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';

import type { IoMark, IoMutation, IoObserver } from '../../native/io_observer.js';
import type { ImageReader } from '../fsck.js';
import { forEachSector, sectorBytes, SectorFate, type CrashPoint, type PendingChoice, type PendingPart } from './crash_states.js';
import type { TraceOperation, WriteTrace } from './write_trace.js';

interface UndoEntry {
  position: number;
  bytes: Uint8Array;
}

interface AppliedWrite {
  operation: TraceOperation;
  part: PendingPart;
}

/**
 * Where images live: RINGSTORE_LAB_IMAGE_DIR if set, else /dev/shm (memory)
 * where the machine has it, else the temporary directory.
 */
function imageParent(): string {
  const chosen = process.env.RINGSTORE_LAB_IMAGE_DIR;
  if (chosen !== undefined && chosen !== '') return chosen;
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

/**
 * Room for images: the free space where they are made (a container's
 * /dev/shm may hold only 64 MiB), and, /dev/shm being memory, the free
 * memory and the process's memory limit (a cgroup's), whichever is least.
 */
export function imageRoomBytes(): number {
  const room = statfsSync(imageParent(), { bigint: true });
  const limit = process.constrainedMemory?.() ?? 0;
  return Math.min(Number(room.bavail * room.bsize), freemem(), limit > 0 ? limit : Infinity);
}

function imageDirectory(): string {
  const directory = mkdtempSync(join(imageParent(), 'ringstore-crash-'));
  liveDirectories.add(directory);
  if (liveDirectories.size === 1 && !exitHookInstalled) {
    exitHookInstalled = true;
    // An image can be hundreds of MiB of memory: never leave one behind,
    // even when the process exits without closing it (an error, Ctrl-C
    // handled by process.exit).
    process.on('exit', () => {
      for (const live of liveDirectories) rmSync(live, { recursive: true, force: true });
    });
  }
  return directory;
}

/** Image directories not yet closed, removed at exit. */
const liveDirectories = new Set<string>();
let exitHookInstalled = false;

export class CrashImage implements IoObserver {
  /** The image file: open it with a store to check a state. */
  readonly path: string;
  readonly sizeBytes: number;
  readonly #trace: WriteTrace;
  readonly #base: Uint8Array;
  /** The image's own directory (memory-backed), removed by close(): scratch space for its user. */
  readonly directory: string;
  readonly #fd: number;
  /** The durable layer: trace writes applied permanently, by id. */
  #durable = new Map<number, AppliedWrite>();
  #durableEventCount = 0;
  /** Pending writes applied on top (undone by rollback). */
  #layered: AppliedWrite[] = [];
  #undo: UndoEntry[] = [];
  /** Bytes written to the image, for the report. */
  bytesWritten = 0;

  constructor(trace: WriteTrace, base: Uint8Array) {
    this.#trace = trace;
    this.#base = base;
    this.sizeBytes = base.length;
    this.directory = imageDirectory();
    this.path = join(this.directory, 'image.ringstore');
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'w+');
      this.#fd = fd;
      ftruncateSync(fd, base.length);
      this.#writeAt(0, base);
    } catch (error) {
      // No image half made (ENOSPC where images live): nothing left behind.
      this.#remove(fd);
      throw error;
    }
  }

  /** Brings the image to `point` with `choice` for its pending writes. Call rollback() before the next state. */
  moveTo(point: CrashPoint, choice: PendingChoice): void {
    if (this.#undo.length > 0 || this.#layered.length > 0) throw new Error('CrashImage.moveTo: roll back the previous state first');
    if (point.eventCount < this.#durableEventCount) this.#reset();
    for (const operation of point.durable) {
      if (this.#durable.has(operation.id)) continue;
      this.#apply({ operation, part: 'all' }, false);
    }
    // A write durable at an earlier point stays durable at every later one:
    // the layer only grows while states go forward.
    if (this.#durable.size !== point.durableCount) this.#rebuild(point);
    this.#durableEventCount = point.eventCount;
    const pending = point.pending.filter((operation) => (choice.get(operation) ?? 'none') !== 'none').sort((a, b) => a.id - b.id);
    for (const operation of pending) this.#apply({ operation, part: choice.get(operation)! }, true);
  }

  /** Writes `bytes` at `position` as part of the current state (undone by rollback). */
  writeLayered(position: number, bytes: Uint8Array): void {
    this.#saveUndo(position, bytes.length);
    this.#writeAt(position, bytes);
  }

  /** Takes back everything since moveTo: the layered writes and the store's own. */
  rollback(): void {
    this.rollbackTo(0);
    this.#layered = [];
  }

  /** A point in the undo log to roll back to later (rollbackTo), e.g. before a recovery that will crash. */
  undoMark(): number {
    return this.#undo.length;
  }

  /** Takes back the writes made since `mark` (from undoMark()). */
  rollbackTo(mark: number): void {
    for (let index = this.#undo.length - 1; index >= mark; index--) {
      const entry = this.#undo[index];
      this.#writeAt(entry.position, entry.bytes);
    }
    this.#undo.length = mark;
  }

  /** The image's current bytes (a copy). */
  snapshot(): Uint8Array {
    return this.read(0, this.sizeBytes);
  }

  read(position: number, length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const read = readSync(this.#fd, bytes, done, length - done, position + done);
      if (read === 0) break;
      done += read;
    }
    return bytes;
  }

  /** The image as fsck reads it. */
  reader(): ImageReader {
    return { sizeBytes: this.sizeBytes, read: (position, length) => this.read(position, length) };
  }

  // ---- IoObserver: the store under test writes to the image through a ring
  // this observes; each write's old bytes go to the undo log before it is
  // submitted (synchronously, so nothing has touched them yet). ----

  onSubmit(mutation: IoMutation): void {
    if (mutation.file.path !== this.path || mutation.length === 0) return;
    if (mutation.kind === 'fsync' || mutation.kind === 'fdatasync') return;
    this.#saveUndo(mutation.position, Math.min(mutation.length, this.sizeBytes - mutation.position));
  }

  onComplete(): void {}

  onMark(_mark: IoMark): void {}

  close(): void {
    this.#remove(this.#fd);
  }

  /** Closes `fd` (if open) and removes the image's directory. */
  #remove(fd: number | undefined): void {
    if (fd !== undefined) closeSync(fd);
    rmSync(this.directory, { recursive: true, force: true });
    liveDirectories.delete(this.directory);
  }

  #apply(write: AppliedWrite, layered: boolean): void {
    this.#writeOperation(write, layered);
    // Newer writes already on the image that overlap this one win again.
    const { position, length, id } = write.operation;
    const overlapping = (other: AppliedWrite): boolean =>
      other.operation.id > id && other.operation.position < position + length && position < other.operation.position + other.operation.length;
    const newer: AppliedWrite[] = [];
    for (const other of this.#durable.values()) if (overlapping(other)) newer.push(other);
    for (const other of this.#layered) if (overlapping(other)) newer.push(other);
    newer.sort((a, b) => a.operation.id - b.operation.id);
    // Only where they overlap this write: elsewhere a newer write may itself
    // lie under an even newer one that this write does not touch.
    for (const other of newer) this.#writeOperation(other, layered, position, position + length);
    if (layered) this.#layered.push(write);
    else this.#durable.set(write.operation.id, write);
  }

  /** Writes what `write` leaves on the media, within device bytes [clipStart, clipEnd). */
  #writeOperation(write: AppliedWrite, layered: boolean, clipStart = 0, clipEnd = Infinity): void {
    const { operation, part } = write;
    const data = operation.kind === 'trim' ? undefined : this.#trace.dataOf(operation);
    forEachSector(operation, part, (start, end, fate: SectorFate) => {
      const from = Math.max(start, clipStart - operation.position);
      const to = Math.min(end, clipEnd - operation.position);
      if (from >= to) return;
      const bytes = sectorBytes(operation, data, start, end, fate).subarray(from - start, to - start);
      if (layered) this.#saveUndo(operation.position + from, bytes.length);
      this.#writeAt(operation.position + from, bytes);
    });
  }

  #reset(): void {
    this.#writeAt(0, this.#base);
    this.#durable.clear();
    this.#durableEventCount = 0;
  }

  #rebuild(point: CrashPoint): void {
    this.#reset();
    for (const operation of point.durable) this.#apply({ operation, part: 'all' }, false);
  }

  #saveUndo(position: number, length: number): void {
    this.#undo.push({ position, bytes: this.read(position, length) });
  }

  #writeAt(position: number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) done += writeSync(this.#fd, bytes, done, bytes.length - done, position + done);
    this.bytesWritten += bytes.length;
  }
}
