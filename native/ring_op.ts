// The internal protocol between RingFile (which validates and describes an
// operation) and IoUringActor (which owns the native client, its slots and
// the waiting FIFO). Not exported from the package.
import type { IoMutation, IoObserver } from './io_observer.js';

/** One operation on its way through the actor. */
export interface PendingOp {
  /** constants.OP_* */
  kind: number;
  fd: number;
  position: number;
  /** Single-buffer transfers (OP_READ, OP_WRITE). */
  buffer: ArrayBufferView | undefined;
  /** Vector transfers (OP_READV, OP_WRITEV, OP_WRITE_AND_SYNC). */
  buffers: ArrayBufferView[] | undefined;
  /** Range operations (OP_PUNCH_HOLE, OP_DISCARD). */
  length: number;
  /** Direct-IO alignment of the file, 0 for buffered. */
  directAlignment: number;
  owner: OpOwner;
  /** The observer's record of this op, when one was attached at submit. */
  mutation: IoMutation | undefined;
  observer: IoObserver | undefined;
  resolve: (result: number) => void;
  reject: (error: Error) => void;
}

/** What an op reports back to when it settles: its file. */
export interface OpOwner {
  readonly path: string;
  /** Called once per op, after the result is known and before the caller sees it. */
  [kOpSettled](): void;
}

export const kOpSettled: unique symbol = Symbol('ringstore.opSettled');

/** The actor side, as a RingFile sees it. */
export interface OpSink {
  readonly backend: 'io_uring' | 'threads';
  readonly observer: IoObserver | undefined;
  readonly closed: boolean;
  /** Submit order of mutations, for the observer. */
  nextMutationSeq(): number;
  /** Hands the op to the native actor, or queues it while all slots are busy. */
  enqueue(op: PendingOp): void;
  /** The file was closed: forget it. */
  forgetFile(file: object): void;
}
