// WriteTrace: a record of every state-changing IO a store made through its
// ring — writes (with their data), RWF_DSYNC writes, linked write+fdatasync,
// fsync/fdatasync and trims — in submit and completion order, plus the
// workload's acknowledgements (the oracle). It is an IoObserver: attach it
// with `ring.observer = trace` before opening the store; it costs nothing
// when not attached.
import type { IoMutation, IoObserver } from '../../native/io_observer.js';

export type TraceOperationKind = 'write' | 'writeAndSync' | 'writeDsync' | 'flush' | 'trim';

export interface TraceOperation {
  /** Submit order, from 0. */
  readonly id: number;
  readonly kind: TraceOperationKind;
  /** Byte offset and length (0 for a flush). */
  readonly position: number;
  readonly length: number;
  /** Bytes written (a copy), for write kinds. */
  readonly data: Uint8Array | undefined;
  /** Durable on completion by itself (dsync file or writeDsync); a writeAndSync flushes too. */
  readonly durableOnCompletion: boolean;
  /** Index in `events` of its completion, or undefined while in flight. */
  completedAt: number | undefined;
  failed: boolean;
}

export type TraceEvent =
  | { readonly type: 'submit'; readonly operation: TraceOperation }
  | { readonly type: 'complete'; readonly operation: TraceOperation }
  | { readonly type: 'ack'; readonly label: string; readonly payload: unknown };

export class WriteTrace implements IoObserver {
  readonly events: TraceEvent[] = [];
  readonly operations: TraceOperation[] = [];
  readonly #byMutation = new Map<IoMutation, TraceOperation>();
  /** Only IO on this file path is recorded (the store's device). */
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  onSubmit(mutation: IoMutation): void {
    if (mutation.file.path !== this.path) return;
    const kind: TraceOperationKind =
      mutation.kind === 'fsync' || mutation.kind === 'fdatasync' ? 'flush' : mutation.kind === 'trim' ? 'trim' : mutation.kind;
    const data =
      kind === 'flush' || kind === 'trim' ? undefined : concat(mutation.buffers, mutation.length);
    const operation: TraceOperation = {
      id: this.operations.length,
      kind,
      position: mutation.position,
      length: mutation.length,
      data,
      durableOnCompletion: mutation.durableOnCompletion,
      completedAt: undefined,
      failed: false,
    };
    this.operations.push(operation);
    this.#byMutation.set(mutation, operation);
    this.events.push({ type: 'submit', operation });
  }

  onComplete(mutation: IoMutation, outcome: number | Error): void {
    const operation = this.#byMutation.get(mutation);
    if (operation === undefined) return;
    this.#byMutation.delete(mutation);
    operation.completedAt = this.events.length;
    operation.failed = outcome instanceof Error;
    this.events.push({ type: 'complete', operation });
  }

  /** Records that the workload saw `label` acknowledged (its payload is what the checks expect). */
  acknowledge(label: string, payload: unknown): void {
    this.events.push({ type: 'ack', label, payload });
  }
}

function concat(buffers: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const buffer of buffers) {
    out.set(buffer, offset);
    offset += buffer.length;
  }
  return out;
}
