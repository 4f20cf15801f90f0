// WriteTrace: a record of every state-changing IO a store made through its
// ring — writes, RWF_DSYNC writes, linked write+fdatasync, fsync/fdatasync
// and trims — in submit and completion order, with the store's marks (what
// each IO was for: phase and commit) and the workload's acknowledgements
// (the oracle log). It is an IoObserver: attach it with `ring.observer =
// trace` before opening the store; nothing is recorded when it is not
// attached, and the IO layer then pays one `undefined` check per operation.
//
// The bytes written go to a side file (`<directory>/trace.data`), not the
// heap, so a long workload's trace costs memory only for its metadata. A
// trace is saved next to it as `trace.json` and loaded back for replay.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import type { IoMark, IoMutation, IoObserver } from '../../native/io_observer.js';

/** What a traced IO did: a write, a write linked to fdatasync, an RWF_DSYNC write, a flush (fsync or fdatasync) or a trim. */
export type TraceOperationKind = 'write' | 'writeAndSync' | 'writeDsync' | 'flush' | 'trim';

/** Trace files: version of trace.json, and the names of the two files. */
export const TRACE_FORMAT_VERSION = 1;
export const TRACE_META_FILE = 'trace.json';
export const TRACE_DATA_FILE = 'trace.data';

/** One state-changing IO in a {@link WriteTrace}. */
export interface TraceOperation {
  /** Submit order, from 0. */
  readonly id: number;
  /** What it did. */
  readonly kind: TraceOperationKind;
  /** Byte offset and length (0 for a flush). */
  readonly position: number;
  /** Bytes written or trimmed (0 for a flush). */
  readonly length: number;
  /** Offset of the written bytes in the side file (write kinds), else -1. */
  readonly dataOffset: number;
  /** Durable on completion by itself (dsync file or writeDsync); a writeAndSync flushes too. */
  readonly durableOnCompletion: boolean;
  /** The store's mark in force when it was submitted: phase ('wal', 'superblock', …) and commit/generation. */
  readonly phase: string;
  /** The id of that mark (commit sequence or superblock generation), if it had one. */
  readonly markId: number | undefined;
  /** Index in `events` of its completion, or undefined while in flight. */
  completedAt: number | undefined;
  /** True if it completed with an error. */
  failed: boolean;
  /** Bytes moved, or the failure's code (e.g. 'EIO'); undefined while in flight. */
  result: number | string | undefined;
}

/** One entry of a trace's event list, in the order things happened. */
export type TraceEvent =
  | {
      /** An IO was submitted. */
      readonly type: 'submit';
      /** The IO. */
      readonly operation: TraceOperation;
    }
  | {
      /** An IO completed (durability may have moved). */
      readonly type: 'complete';
      /** The IO. */
      readonly operation: TraceOperation;
    }
  | {
      /** The store marked what the IO submitted next is for. */
      readonly type: 'mark';
      /** The phase ('wal', 'checkpoint', 'superblock', …). */
      readonly phase: string;
      /** The commit sequence or superblock generation, if any. */
      readonly id: number | undefined;
    }
  | {
      /** The workload saw its operation number `operation` acknowledged (durable). */
      readonly type: 'ack';
      /** Its index in the workload's operation list. */
      readonly operation: number;
    };

/** Phase of IO submitted before the store marked any. */
export const UNMARKED_PHASE = 'unmarked';

/**
 * A record of every state-changing IO a store made through its ring, in
 * submit and completion order, with the store's marks and the workload's
 * acknowledgements; the written bytes go to a side file (`trace.data`). It is
 * an {@link IoObserver}: attach it with `ring.observer = trace`. The crash
 * explorers build their states from it (docs/crash-lab.md).
 */
export class WriteTrace implements IoObserver {
  /** Submits, completions, marks and acknowledgements, in the order they happened. */
  readonly events: TraceEvent[] = [];
  /** Every traced IO, by submit order (`id`). */
  readonly operations: TraceOperation[] = [];
  /** Only IO on this file path is recorded (the store's device). */
  readonly path: string;
  /** Where trace.data (and, once saved, trace.json) live. */
  readonly directory: string;
  readonly #byMutation = new Map<IoMutation, TraceOperation>();
  #dataFd: number;
  #dataBytes = 0;
  #phase = UNMARKED_PHASE;
  #markId: number | undefined;
  /** Completions of the round in progress (LabDevice), recorded in submit order when it ends; undefined outside rounds. */
  #roundCompletions: TraceOperation[] | undefined;

  /**
   * A new, empty trace of IO on `path`; its side file (`dataFileName`) is
   * created, or truncated, in `directory` — or, with `existing` (for
   * WriteTrace.load), opened read-only as it is.
   */
  constructor(path: string, directory: string, dataFileName = TRACE_DATA_FILE, existing = false) {
    this.path = path;
    this.directory = directory;
    this.#dataFd = openSync(join(directory, dataFileName), existing ? 'r' : 'w+');
  }

  onSubmit(mutation: IoMutation): void {
    if (mutation.file.path !== this.path) return;
    const kind: TraceOperationKind =
      mutation.kind === 'fsync' || mutation.kind === 'fdatasync' ? 'flush' : mutation.kind === 'trim' ? 'trim' : mutation.kind;
    let dataOffset = -1;
    if (kind !== 'flush' && kind !== 'trim') {
      dataOffset = this.#dataBytes;
      for (const buffer of mutation.buffers) {
        // The buffers are the store's and are reused once the write is done:
        // copy them out now (to the side file).
        writeSync(this.#dataFd, buffer, 0, buffer.length, this.#dataBytes);
        this.#dataBytes += buffer.length;
      }
      if (this.#dataBytes - dataOffset !== mutation.length) throw new Error('write trace: buffers and length disagree');
    }
    const operation: TraceOperation = {
      id: this.operations.length,
      kind,
      position: mutation.position,
      length: mutation.length,
      dataOffset,
      durableOnCompletion: mutation.durableOnCompletion,
      phase: this.#phase,
      markId: this.#markId,
      completedAt: undefined,
      failed: false,
      result: undefined,
    };
    this.operations.push(operation);
    this.#byMutation.set(mutation, operation);
    this.events.push({ type: 'submit', operation });
  }

  onComplete(mutation: IoMutation, outcome: number | Error): void {
    const operation = this.#byMutation.get(mutation);
    if (operation === undefined) return;
    this.#byMutation.delete(mutation);
    operation.failed = outcome instanceof Error;
    operation.result = outcome instanceof Error ? String((outcome as { code?: unknown }).code ?? outcome.message) : outcome;
    if (this.#roundCompletions !== undefined) this.#roundCompletions.push(operation);
    else this.#recordCompletion(operation);
  }

  #recordCompletion(operation: TraceOperation): void {
    operation.completedAt = this.events.length;
    this.events.push({ type: 'complete', operation });
  }

  /**
   * A round of IO begins (LabDevice): every operation submitted in it is in
   * flight together, and none of their results is seen before it ends.
   */
  beginRound(): void {
    if (this.#roundCompletions !== undefined) throw new Error('write trace: a round began inside another');
    this.#roundCompletions = [];
  }

  /**
   * The round's operations have all completed: their completions are
   * recorded now, in submit order — one order the kernel could have
   * completed them in, and the same on every run (the order they really
   * arrived in is timing).
   */
  endRound(): void {
    const completions = this.#roundCompletions;
    if (completions === undefined) throw new Error('write trace: a round ended that never began');
    this.#roundCompletions = undefined;
    completions.sort((a, b) => a.id - b.id);
    for (const operation of completions) this.#recordCompletion(operation);
  }

  onMark(mark: IoMark): void {
    if (mark.file.path !== this.path) return;
    this.#phase = mark.phase;
    this.#markId = mark.id;
    this.events.push({ type: 'mark', phase: mark.phase, id: mark.id });
  }

  /** Records that the workload saw its operation number `operation` acknowledged. */
  acknowledge(operation: number): void {
    this.events.push({ type: 'ack', operation });
  }

  /** The bytes a write operation wrote (read back from the side file). */
  dataOf(operation: TraceOperation): Uint8Array {
    if (operation.dataOffset < 0) throw new Error(`trace operation ${operation.id} (${operation.kind}) wrote no data`);
    const bytes = new Uint8Array(operation.length);
    let done = 0;
    while (done < bytes.length) {
      const read = readSync(this.#dataFd, bytes, done, bytes.length - done, operation.dataOffset + done);
      if (read === 0) throw new Error(`trace data file ends before operation ${operation.id}'s bytes`);
      done += read;
    }
    return bytes;
  }

  /**
   * SHA-256 (hex) of the whole trace: every event in order, every
   * operation's fields, and the bytes written. Two runs of a workload gave
   * the same trace exactly when their digests agree (crash-test prints it).
   */
  digest(): string {
    const hash = createHash('sha256');
    // Not the store file's path: it is in a new temporary directory each run.
    const { path: _path, ...meta } = this.#serialize();
    hash.update(JSON.stringify(meta));
    const chunk = new Uint8Array(1 << 20);
    for (let offset = 0; offset < this.#dataBytes; offset += chunk.length) {
      const length = Math.min(chunk.length, this.#dataBytes - offset);
      let done = 0;
      while (done < length) {
        const read = readSync(this.#dataFd, chunk, done, length - done, offset + done);
        if (read === 0) throw new Error('write trace: the data file ends early');
        done += read;
      }
      hash.update(chunk.subarray(0, length));
    }
    return hash.digest('hex');
  }

  /** Writes trace.json next to trace.data, so `WriteTrace.load(directory)` gives this trace back. */
  save(): void {
    writeFileSync(join(this.directory, TRACE_META_FILE), JSON.stringify(this.#serialize()));
  }

  /** trace.json's content. */
  #serialize(): { version: number; path: string; dataBytes: number; operations: unknown[]; events: unknown[] } {
    const events = this.events.map((event) => {
      switch (event.type) {
        case 'submit':
          return ['s', event.operation.id];
        case 'complete':
          return ['c', event.operation.id];
        case 'mark':
          return ['m', event.phase, event.id ?? null];
        case 'ack':
          return ['a', event.operation];
      }
    });
    const operations = this.operations.map((operation) => [
      operation.kind,
      operation.position,
      operation.length,
      operation.dataOffset,
      operation.durableOnCompletion ? 1 : 0,
      operation.phase,
      operation.markId ?? null,
      operation.failed ? 1 : 0,
      operation.result ?? null,
    ]);
    return { version: TRACE_FORMAT_VERSION, path: this.path, dataBytes: this.#dataBytes, operations, events };
  }

  /** A trace saved in `directory` (trace.json + trace.data); its side file is opened read-only. */
  static load(directory: string): WriteTrace {
    const metaPath = join(directory, TRACE_META_FILE);
    if (!existsSync(metaPath)) throw new Error(`no write trace in ${directory} (${TRACE_META_FILE} is missing)`);
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as {
      version: number;
      path: string;
      dataBytes: number;
      operations: [TraceOperationKind, number, number, number, number, string, number | null, number, number | string | null][];
      events: (['s' | 'c' | 'a', number] | ['m', string, number | null])[];
    };
    if (meta.version !== TRACE_FORMAT_VERSION) throw new Error(`${metaPath} is trace format ${meta.version}; this build reads ${TRACE_FORMAT_VERSION}`);
    const trace = new WriteTrace(meta.path, directory, TRACE_DATA_FILE, true);
    const fields = trace as { events: TraceEvent[]; operations: TraceOperation[] };
    trace.#dataBytes = meta.dataBytes;
    for (const [kind, position, length, dataOffset, durable, phase, markId, failed, result] of meta.operations) {
      fields.operations.push({
        id: fields.operations.length,
        kind,
        position,
        length,
        dataOffset,
        durableOnCompletion: durable === 1,
        phase,
        markId: markId ?? undefined,
        completedAt: undefined,
        failed: failed === 1,
        result: result ?? undefined,
      });
    }
    for (const event of meta.events) {
      if (event[0] === 'm') fields.events.push({ type: 'mark', phase: event[1], id: event[2] ?? undefined });
      else if (event[0] === 'a') fields.events.push({ type: 'ack', operation: event[1] });
      else {
        const operation = fields.operations[event[1]];
        if (event[0] === 'c') operation.completedAt = fields.events.length;
        fields.events.push({ type: event[0] === 's' ? 'submit' : 'complete', operation });
      }
    }
    return trace;
  }

  /** Closes the side file; the trace can no longer give data. */
  close(): void {
    if (this.#dataFd < 0) return;
    closeSync(this.#dataFd);
    this.#dataFd = -1;
  }
}
