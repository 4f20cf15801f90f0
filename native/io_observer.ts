// The one place where every state-changing IO of a ring can be watched: each
// write, linked write+fdatasync, fsync/fdatasync and trim is announced to the
// attached observer when it is submitted and again when it completes. The
// durability lab records its write trace here; with no observer attached the
// cost is one `undefined` check per operation.
//
// This module imports nothing of the IO layer: ring_file.ts and ring_op.ts
// build on these types, and a file is described to an observer by the
// ObservedFile interface that RingFile implements (the object passed is the
// RingFile itself).

/**
 * The file a mutation or mark belongs to, as an observer sees it: the
 * RingFile the operation was called on (compare it with `===`), typed by its
 * descriptive properties only. An observer runs inside the submit path and
 * must not start IO of its own from there.
 */
export interface ObservedFile {
  readonly path: string;
  readonly fd: number;
  readonly direct: boolean;
  readonly dsync: boolean;
  readonly readOnly: boolean;
  readonly blockSize: number;
  readonly isBlockDevice: boolean;
  readonly logicalBlockSize: number;
  readonly memoryAlignment: number;
  readonly offsetAlignment: number;
}

export type IoMutationKind = 'write' | 'writeAndSync' | 'writeDsync' | 'fsync' | 'fdatasync' | 'trim';

export interface IoMutation {
  /** Submit order among mutations of this ring handle, from 0. */
  readonly seq: number;
  readonly kind: IoMutationKind;
  readonly file: ObservedFile;
  /** Byte offset (writes, trim); 0 for fsync/fdatasync. */
  readonly position: number;
  /** Bytes written or trimmed; 0 for fsync/fdatasync. */
  readonly length: number;
  /**
   * The data of a write, exactly as submitted. The buffers are the caller's:
   * an observer that keeps the bytes must copy them in onSubmit.
   */
  readonly buffers: readonly Uint8Array[];
  /**
   * True when the write is durable on completion without a separate flush:
   * the file was opened with `dsync`, or the kind is writeAndSync (which also
   * flushes every earlier completed write) or writeDsync (which covers only
   * its own bytes).
   */
  readonly durableOnCompletion: boolean;
}

/**
 * A note from the layer above about the mutations it submits next: what they
 * are for (`phase`, e.g. a store's 'wal' or 'superblock') and which unit of
 * work (`id`, e.g. a commit's sequence). The IO layer does not interpret it.
 */
export interface IoMark {
  readonly file: ObservedFile;
  readonly phase: string;
  readonly id: number | undefined;
}

export interface IoObserver {
  /** Called synchronously before the operation is handed to the actor. */
  onSubmit(mutation: IoMutation): void;
  /** Called when it completes: bytes moved, or the error it failed with. */
  onComplete(mutation: IoMutation, outcome: number | Error): void;
  /** Called for RingFile#mark: the mutations submitted after it (until the next mark) belong to it. */
  onMark?(mark: IoMark): void;
}
