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
  /** The path it was opened with. */
  readonly path: string;
  /** Its file descriptor. */
  readonly fd: number;
  /** Opened with O_DIRECT. */
  readonly direct: boolean;
  /** Opened with O_DSYNC. */
  readonly dsync: boolean;
  /** Opened without write access. */
  readonly readOnly: boolean;
  /** Unit of its readBlock/writeBlock. */
  readonly blockSize: number;
  /** A block device rather than a regular file. */
  readonly isBlockDevice: boolean;
  /** The device's logical block size (its trim unit). */
  readonly logicalBlockSize: number;
  /** Memory alignment direct IO needs (0 for buffered files). */
  readonly memoryAlignment: number;
  /** Position and length alignment direct IO needs (0 for buffered files). */
  readonly offsetAlignment: number;
}

/** What a mutation does: a plain write, a write linked to fdatasync, an RWF_DSYNC write, a flush or a trim. */
export type IoMutationKind = 'write' | 'writeAndSync' | 'writeDsync' | 'fsync' | 'fdatasync' | 'trim';

/** One state-changing IO of a ring, as an {@link IoObserver} sees it. */
export interface IoMutation {
  /** Submit order among mutations of this ring handle, from 0. */
  readonly seq: number;
  /** What the operation does. */
  readonly kind: IoMutationKind;
  /** The file it acts on. */
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
  /** The file the marked mutations go to. */
  readonly file: ObservedFile;
  /** What they are for, e.g. 'wal', 'checkpoint' or 'superblock'. */
  readonly phase: string;
  /** The unit of work they belong to (a commit sequence, a superblock generation), if any. */
  readonly id: number | undefined;
}

/**
 * Watches every state-changing IO of a ring handle's files (set it with
 * {@link IoUringActor.observer}); reads are not reported. The durability lab's
 * write trace is one.
 */
export interface IoObserver {
  /** Called synchronously before the operation is handed to the actor. */
  onSubmit(mutation: IoMutation): void;
  /** Called when it completes: bytes moved, or the error it failed with. */
  onComplete(mutation: IoMutation, outcome: number | Error): void;
  /** Called for RingFile#mark: the mutations submitted after it (until the next mark) belong to it. */
  onMark?(mark: IoMark): void;
}
