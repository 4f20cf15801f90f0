// IoUringActor: a JS thread's handle on a native io_uring actor (or on the
// thread-pool fallback). One actor can be shared by the main thread and any
// number of worker_threads: `IoUringActor.start()` creates it, `ring.id`
// names it, and `IoUringActor.attach(id)` in a worker joins it. Operations
// from every handle are micro-batched into the same ring.
//
// Each handle owns CLIENT_SLOT_COUNT native command slots. An operation takes
// a free slot and goes to the actor at once; while all slots are busy,
// operations wait in a FIFO here (bounded by PENDING_OPS_MAX) — that is the
// backpressure. Completions arrive in batches through one native callback and
// are read from a shared Int32Array.
import { readFileSync } from 'node:fs';

import { addon, constants, type NativeActorStats, type NativeRingClient } from './addon.js';
import { describeValue, fromNative, invalidRange, invalidType, readOptions, RingError, RingSystemError, unreadable } from './errors.js';
import type { IoObserver } from './io_observer.js';
import { kOpSettled, type OpSink, type PendingOp } from './ring_op.js';
import { RingFile, type RingFileOptions } from './ring_file.js';

/** How an actor performs IO: an io_uring ring, or a pool of threads making plain syscalls. */
export type RingBackend = 'io_uring' | 'threads';

/**
 * A busy-wait setting: a fixed window in microseconds (0 = never spin), or
 * `'auto'`: spin for AUTO_SPIN_WINDOW_US only while spinning is measured to
 * pay on this machine (docs/io.md, *Spinning*).
 */
export type SpinSetting = number | 'auto';

/** Options of {@link IoUringActor.start}; every field is optional (docs/io.md). */
export interface IoUringActorOptions {
  /** Submission queue entries (the CQ gets twice as many). Default 256. */
  entries?: number;
  /**
   * Most commands submitted by one io_uring_enter. Default DEFAULT_BATCH_SIZE
   * (4). Small batches keep the actor reaping between submissions: at QD32 of
   * 4 KiB random reads here, batches of 1–4 reached 117–125 k IOPS and
   * batches of 16–256 95–110 k, because submitting many reads in one call
   * delays reaping the completions that arrive meanwhile.
   */
  batchSize?: number;
  /**
   * Microseconds the actor busy-polls for new work and completions after its
   * last activity before it sleeps. Spinning saves a thread wake-up (5-20 µs
   * here) per operation at low queue depth, at the cost of CPU while busy; an
   * idle actor always sleeps. Whether that pays depends on the host: on one
   * VM it halved QD1 latency, on another it made it 40 % worse. Default
   * `'auto'` (DEFAULT_SPIN_US): the actor measures, as it runs, fast
   * completions per busy second with and without spinning and keeps the
   * better (window AUTO_SPIN_WINDOW_US). A number is a fixed window, never
   * adapted; 0 disables spinning.
   */
  spinUs?: SpinSetting;
  /**
   * Microseconds this JS thread busy-waits for completions, while it has
   * operations in flight, before its event loop goes to sleep. Waking a
   * sleeping loop costs 15-25 µs here — as much as a 4 KiB read — so this
   * can halve latency at low queue depth; it delays other events of this
   * thread by at most this much, and costs nothing with no IO in flight.
   * Default `'auto'` (DEFAULT_COMPLETION_SPIN_US): spin only while it is
   * measured to pay, as for spinUs; a number is a fixed window, 0 disables.
   * Per handle (attach takes it too).
   */
  completionSpinUs?: SpinSetting;
  /**
   * Durable writes with `RWF_DSYNC` ({@link RingFile.writeDsync}, a store's
   * commit writes) go through a ring this JS thread owns instead of through
   * the actor: the thread submits them itself, and the kernel wakes its event
   * loop through an eventfd when they complete. One thread wake-up a write
   * instead of the actor's three, which on some hosts cost more than the
   * write waits for the device (docs/io.md, *Durable writes*). Every other
   * operation still goes to the actor. Default false. Per handle (attach
   * takes it too); io_uring backend only (ignored by the thread pool); if
   * this thread's ring cannot be made, or has 64 writes in flight, writes go
   * to the actor as without it.
   */
  directDsync?: boolean;
  /**
   * A read ({@link RingFile.read}, {@link RingFile.readv}) submitted while
   * this handle has nothing else in flight, as the read before it had not
   * (a QD1 run: concurrent readers that drain for a moment stay with the
   * actor), goes through the same ring of
   * this JS thread as `directDsync` writes: the actor would have nothing to
   * batch it with, and its hand-offs cost a third of a QD1 4 KiB read's
   * latency on one host (docs/io.md, *Lone reads*). On a host where the
   * actor is faster for them it gets them: the handle measures both routes
   * as it runs ({@link RingStats.loneReadRoute}). Reads with others in
   * flight go to the actor, which batches them. Default true. Per handle (attach takes it
   * too); io_uring backend only; the ring is made with the handle (two
   * descriptors, with `directDsync` too); if it cannot be made, reads go to
   * the actor as without it.
   */
  directReads?: boolean;
  /** Force a backend. Default 'io_uring'. */
  backend?: RingBackend;
  /**
   * What to do when the kernel refuses io_uring: 'none' (default) throws
   * ERR_IO_URING_UNAVAILABLE; 'threads' serves the same API from a small pool
   * of native threads doing blocking system calls.
   */
  fallback?: 'none' | 'threads';
  /** Threads of the thread-pool backend. Default 4. */
  threadCount?: number;
  /**
   * For tests only: faults the actor injects into its own IO, to reach
   * recovery paths a healthy kernel never takes. Off by default; never set it
   * in production (it slows every affected transfer down).
   */
  faultInjection?: IoUringFaultInjection;
}

/** Test-only faults of an actor; see IoUringActorOptions.faultInjection. */
export interface IoUringFaultInjection {
  /**
   * Treats every Nth read or write completion of the actor (the write half
   * of writeAndSync included; counted over all handles) as if the kernel had
   * moved only part of the bytes: half, rounded down to the file's direct-IO
   * alignment, at least one alignment unit; a transfer of one unit (one byte
   * when buffered) or less is left whole. The kernel really moved every byte,
   * so the actor's continuation re-reads or re-writes the same bytes at the
   * same offsets: results are unchanged, and the short-transfer path — which
   * a healthy kernel almost never takes — runs (see RingStats.continuations).
   * An integer from 1 to SHORT_TRANSFER_EVERY_MAX; 1 shortens every completion.
   */
  shortTransferEvery?: number;
}

/** Keys IoUringFaultInjection accepts: a misspelt one would silently test nothing. */
const FAULT_INJECTION_KEYS: ReadonlySet<string> = new Set(['shortTransferEvery']);

/** Every option of IoUringActor.start(), each read once (readOptions). */
const ACTOR_OPTION_NAMES: readonly (keyof IoUringActorOptions)[] = [
  'entries',
  'batchSize',
  'spinUs',
  'completionSpinUs',
  'directDsync',
  'directReads',
  'backend',
  'fallback',
  'threadCount',
  'faultInjection',
];

/** A latency distribution in microseconds, over the actor's recent commands. */
export interface LatencySummaryUs {
  /** Commands measured. */
  count: number;
  /** Median, µs. */
  p50: number;
  /** 99th percentile, µs. */
  p99: number;
  /** Largest, µs. */
  max: number;
  /** Arithmetic mean, µs. */
  mean: number;
}

/** Counters of an actor, from {@link IoUringActor.stats}; they cover every handle of the actor unless said otherwise. */
export interface RingStats {
  /** The backend the actor runs. */
  backend: RingBackend;
  /** Commands handed to the kernel by the actor (all handles sharing it). */
  submitted: number;
  /** Commands completed (all handles). */
  completed: number;
  /** io_uring_enter calls that submitted work (thread pool: one per command). */
  batches: number;
  /** SQEs submitted, including the actor's own eventfd reads. */
  sqesSubmitted: number;
  /** Mean commands per batch. */
  meanBatchSize: number;
  /** Times the actor went to sleep waiting for IO or work. */
  waits: number;
  /** Commands inside the actor (all handles). */
  inFlight: number;
  /**
   * Short reads and writes the actor continued (each submission of the rest
   * of a transfer counts once). A healthy kernel almost never transfers
   * short; see IoUringFaultInjection.shortTransferEvery.
   */
  continuations: number;
  /** Operations of this handle waiting for a free slot. */
  waitingInJs: number;
  /** Durable writes this handle sent through its own ring (`directDsync`), not counted above. */
  directWrites: number;
  /** Reads this handle sent through its own ring (`directReads`: each alone in flight), not counted above. */
  directReads: number;
  /** Short transfers this handle's own ring continued, as `continuations` counts the actor's. */
  directContinuations: number;
  /** Time a command spent queued before the actor submitted it. */
  queuedUs: LatencySummaryUs;
  /** Time from submission to completion (the kernel's part). */
  kernelUs: LatencySummaryUs;
  /** The actor thread's busy-poll (spinUs). */
  actorSpin: SpinState;
  /** This handle's busy-wait for completions (completionSpinUs). */
  completionSpin: SpinState;
  /** Where this handle sends a read alone in flight (`directReads`): see {@link LoneReadRoute}. */
  loneReadRoute: LoneReadRoute;
}

/**
 * The route of a handle's lone reads (`directReads`), measured as it runs:
 * each lone read's latency under the route it took, both routes probed in
 * turn, the actor kept only while it is 5 % faster (docs/io.md, *Lone reads*).
 */
export interface LoneReadRoute {
  /** Whether a lone read goes through this thread's own ring now (false: through the actor, or directReads off). */
  direct: boolean;
  /** Measurements of both routes so far. */
  probeCount: number;
  /** Measurements that the actor won. */
  actorWinCount: number;
}

/** What a busy-wait setting is doing now; see IoUringActorOptions.spinUs. */
export interface SpinState {
  /** True for `'auto'`: the decision below is remeasured as the actor runs. */
  adaptive: boolean;
  /** Whether it busy-waits now (fixed: the window is not 0; the thread-pool backend's actor never spins). */
  spinning: boolean;
  /** Measurements of both choices so far (`'auto'` only). */
  probeCount: number;
  /** Measurements that spinning won. */
  spinWinCount: number;
}

/** Default busy-poll of the actor thread: adaptive; see IoUringActorOptions.spinUs. */
export const DEFAULT_SPIN_US: SpinSetting = 'auto';
/** Default busy-wait of a JS thread for completions: adaptive; see IoUringActorOptions.completionSpinUs. */
export const DEFAULT_COMPLETION_SPIN_US: SpinSetting = 'auto';
/** The busy-wait window of `'auto'` while spinning pays, µs (the addon's constant). */
export const AUTO_SPIN_WINDOW_US: number = constants.AUTO_SPIN_WINDOW_US;
/** Default submission-queue entries of a new actor; see IoUringActorOptions.entries. */
export const DEFAULT_ENTRIES = 256;
/** Default most commands per io_uring_enter; see IoUringActorOptions.batchSize. */
export const DEFAULT_BATCH_SIZE = 4;
export const DEFAULT_THREAD_COUNT = 4;
/**
 * Operations one handle may hold waiting for a slot. Beyond it, operations
 * are rejected with ERR_RING_OVERLOADED instead of growing memory without
 * bound; at ~200 bytes an op this is ~200 MiB of queued work.
 */
export const PENDING_OPS_MAX = 1 << 20;
/** Consumed FIFO entries tolerated before the waiting array is compacted. */
const WAITING_COMPACT_MIN = 4096;

/**
 * Operations the addon always treats as slow (Command::IsSlow): each wakes
 * the actor at once whether or not wakes are held. Transfers of 64 KiB or
 * more are slow too, but by size; they take the hold like any transfer.
 */
const ALWAYS_SLOW_KINDS: ReadonlySet<number> = new Set([
  constants.OP_FSYNC,
  constants.OP_FDATASYNC,
  constants.OP_WRITE_AND_SYNC,
  constants.OP_PUNCH_HOLE,
  constants.OP_DISCARD,
  constants.OP_WRITEV_DSYNC,
]);

/**
 * A JS thread's handle on an io_uring actor: one native thread owning one ring
 * (or the thread-pool fallback), shared by the main thread and any worker
 * threads. Make one with {@link IoUringActor.start}, join it from a worker with
 * {@link IoUringActor.attach}, and open files with {@link IoUringActor.open}.
 * See docs/io.md.
 */
export class IoUringActor implements OpSink {
  readonly #native: NativeRingClient;
  readonly #completions: Int32Array;
  readonly #slots: (PendingOp | undefined)[];
  readonly #freeSlots: Int32Array;
  #freeSlotCount: number;
  #waiting: PendingOp[] = [];
  #waitingHead = 0;
  #inFlight = 0;
  #closed = false;
  #closePromise: Promise<void> | undefined;
  #drained: (() => void) | undefined;
  #observer: IoObserver | undefined;
  #mutationSeq = 0;
  /** Whether a delivery's reactions may still be running (see #beginDelivery). */
  #delivering = false;
  /** Whether this handle holds the actor's wakes (see #holdWakesIfDelivering). */
  #wakesHeld = false;
  readonly #holdsWakes: boolean;
  readonly #endDelivery = (): void => {
    this.#delivering = false;
    if (!this.#wakesHeld) return;
    this.#wakesHeld = false;
    this.#native.holdWakes(false);
  };
  readonly #endDeliveryAfterMicrotasks = (): void => {
    // Queued from a microtask, a nextTick runs once the microtask queue is
    // empty: after every promise reaction this delivery started, however
    // deep. (Queued before any reaction ran, it runs before the nextTicks
    // reactions queue: what those submit wakes the actor as usual.)
    process.nextTick(this.#endDelivery);
  };
  readonly #files = new Set<RingFile>();
  /** The actor's id, for {@link IoUringActor.attach} in another thread of this process. */
  readonly id: number;
  /** The backend the actor runs: `'io_uring'`, or `'threads'` when forced or fallen back to. */
  readonly backend: RingBackend;

  private constructor(spec: number | Parameters<typeof createSpec>[0], completionSpinUs: SpinSetting, direct: DirectOptions) {
    const slotCount = constants.CLIENT_SLOT_COUNT;
    this.#completions = new Int32Array(slotCount * constants.COMPLETION_WORDS);
    this.#slots = new Array<PendingOp | undefined>(slotCount).fill(undefined);
    this.#freeSlots = new Int32Array(slotCount);
    for (let i = 0; i < slotCount; i++) this.#freeSlots[i] = slotCount - 1 - i;
    this.#freeSlotCount = slotCount;
    const onCompletions = (count: number): void => this.#onCompletions(count);
    const nativeSpec = typeof spec === 'number' ? spec : createSpec(spec);
    try {
      this.#native = new addon.NativeRingClient(nativeSpec, onCompletions, this.#completions, {
        ...nativeCompletionSpin(completionSpinUs),
        directDsync: direct.directDsync ? 1 : 0,
        directReads: direct.directReads ? 1 : 0,
      });
    } catch (error) {
      throw translateStartError(error);
    }
    this.id = this.#native.actorId;
    this.backend = this.#native.backend;
    // The thread pool wakes one thread per command: one wake for several
    // would serve them one after another.
    this.#holdsWakes = this.backend === 'io_uring';
  }

  /** Starts a new actor (its native thread and ring) and returns its first handle. */
  static start(given: IoUringActorOptions = {}): IoUringActor {
    const options = readOptions<IoUringActorOptions>(given, ACTOR_OPTION_NAMES, 'options');
    const backend = options.backend ?? 'io_uring';
    if (backend !== 'io_uring' && backend !== 'threads') {
      throw invalidRange(`backend must be 'io_uring' or 'threads', got ${describeValue(backend)}`);
    }
    const fallback = options.fallback ?? 'none';
    if (fallback !== 'none' && fallback !== 'threads') {
      throw invalidRange(`fallback must be 'none' or 'threads', got ${describeValue(fallback)}`);
    }
    const completionSpinUs = options.completionSpinUs ?? DEFAULT_COMPLETION_SPIN_US;
    checkSpinSetting('completionSpinUs', completionSpinUs);
    const direct = checkDirectOptions(options);
    try {
      return new IoUringActor({ ...options, backend }, completionSpinUs, direct);
    } catch (error) {
      if (
        backend === 'io_uring' &&
        fallback === 'threads' &&
        error instanceof RingError &&
        error.code === 'ERR_IO_URING_UNAVAILABLE'
      ) {
        return new IoUringActor({ ...options, backend: 'threads' }, completionSpinUs, direct);
      }
      throw error;
    }
  }

  /**
   * Joins an actor started elsewhere in this process (typically: the main
   * thread passes `ring.id` to a worker through workerData).
   */
  static attach(id: number, given: Pick<IoUringActorOptions, 'completionSpinUs' | 'directDsync' | 'directReads'> = {}): IoUringActor {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 0xffffffff) {
      throw invalidType(`ring id must be a positive integer, got ${describeValue(id)}`);
    }
    const options = readOptions<IoUringActorOptions>(given, ['completionSpinUs', 'directDsync', 'directReads'], 'options');
    const completionSpinUs = options.completionSpinUs ?? DEFAULT_COMPLETION_SPIN_US;
    checkSpinSetting('completionSpinUs', completionSpinUs);
    return new IoUringActor(id, completionSpinUs, checkDirectOptions(options));
  }

  /**
   * Whether `value` is a handle made by start() or attach(): a brand check,
   * which an object made from the prototype (Object.create) or a Proxy of a
   * handle does not pass, where `instanceof` would (a review: such a ring
   * passed a store's option check, then failed with an uncoded TypeError).
   */
  static isActor(value: unknown): value is IoUringActor {
    return typeof value === 'object' && value !== null && #native in value;
  }

  /** True once {@link IoUringActor.close} was called on this handle. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The observer that sees every write, flush and trim of this handle's files. */
  get observer(): IoObserver | undefined {
    return this.#observer;
  }

  /** Sets (or, with `undefined`, removes) the observer; throws ERR_INVALID_ARG if it lacks onSubmit or onComplete. */
  set observer(observer: IoObserver | undefined) {
    if (
      observer !== undefined &&
      (typeof observer !== 'object' ||
        observer === null ||
        typeof observer.onSubmit !== 'function' ||
        typeof observer.onComplete !== 'function' ||
        (observer.onMark !== undefined && typeof observer.onMark !== 'function'))
    ) {
      throw invalidType('observer must have onSubmit and onComplete methods (and onMark, if any, a method)');
    }
    this.#observer = observer;
  }

  /** Opens a file or block device for IO through this ring. */
  async open(path: string, options: RingFileOptions = {}): Promise<RingFile> {
    if (this.#closed) throw new RingError('ERR_RING_CLOSED', 'the ring is closed');
    const file = await RingFile.open(this, path, options);
    if (this.#closed) {
      await file.close();
      throw new RingError('ERR_RING_CLOSED', 'the ring was closed while the file was opening');
    }
    this.#files.add(file);
    return file;
  }

  /** The actor's counters and latency summaries; throws ERR_RING_CLOSED on a closed handle. */
  stats(): RingStats {
    if (this.#closed) throw new RingError('ERR_RING_CLOSED', 'the ring is closed');
    const raw: NativeActorStats = this.#native.stats();
    const commandCount = raw.submitted;
    return {
      backend: this.backend,
      submitted: raw.submitted,
      completed: raw.completed,
      batches: raw.batches,
      sqesSubmitted: raw.sqesSubmitted,
      meanBatchSize: raw.batches > 0 ? commandCount / raw.batches : 0,
      waits: raw.waits,
      inFlight: raw.inFlight,
      continuations: raw.continuations,
      waitingInJs: this.#waiting.length - this.#waitingHead,
      directWrites: raw.directWrites,
      directReads: raw.directReads,
      directContinuations: raw.directContinuations,
      queuedUs: raw.queuedUs,
      kernelUs: raw.kernelUs,
      actorSpin: { ...raw.actorSpin },
      completionSpin: { ...raw.completionSpin },
      loneReadRoute: { ...raw.loneReadRoute },
    };
  }

  /**
   * Closes this handle: new operations are rejected with ERR_RING_CLOSED,
   * operations already submitted finish, files opened through this handle are
   * closed, and the handle leaves the actor. The actor's thread is joined and
   * its ring freed when its last handle closes. Closing twice is harmless.
   */
  close(): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    this.#closed = true;
    this.#closePromise = (async () => {
      if (this.#inFlight > 0) {
        await new Promise<void>((resolve) => {
          this.#drained = resolve;
        });
      }
      for (const file of [...this.#files]) {
        try {
          await file.close();
        } catch {
          // A close error (EIO from a final writeback) belongs to the file's
          // owner, who should have closed it; the ring still shuts down.
        }
      }
      this.#native.close();
    })();
    return this.#closePromise;
  }

  // ---- OpSink: used by RingFile only. ----

  /** @internal */
  nextMutationSeq(): number {
    return this.#mutationSeq++;
  }

  /** @internal */
  forgetFile(file: object): void {
    this.#files.delete(file as RingFile);
  }

  /** @internal */
  enqueue(op: PendingOp): void {
    if (this.#waiting.length - this.#waitingHead >= PENDING_OPS_MAX) {
      this.#settle(op, new RingError('ERR_RING_OVERLOADED', `more than ${PENDING_OPS_MAX} operations are waiting`));
      return;
    }
    this.#inFlight++;
    if (this.#freeSlotCount > 0 && this.#waitingHead === this.#waiting.length) {
      this.#dispatch(op, this.#freeSlots[--this.#freeSlotCount]);
    } else {
      this.#waiting.push(op);
    }
  }

  #dispatch(op: PendingOp, slot: number): void {
    this.#slots[slot] = op;
    this.#holdWakesIfDelivering(op.kind);
    try {
      if (op.buffer !== undefined) {
        this.#native.submit(slot, op.kind, op.fd, op.position, op.buffer, op.directAlignment);
      } else if (op.buffers !== undefined) {
        this.#native.submitVector(slot, op.kind, op.fd, op.position, op.buffers, op.directAlignment);
      } else {
        this.#native.submitRange(slot, op.kind, op.fd, op.position, op.length);
      }
    } catch (error) {
      // The addon re-validates what RingFile validated (it must never trust
      // JS); landing here means a buffer was detached between the two checks.
      this.#slots[slot] = undefined;
      this.#freeSlots[this.#freeSlotCount++] = slot;
      this.#inFlight--;
      this.#settle(op, fromNative(error, op.owner.path));
      this.#checkDrained();
    }
  }

  /**
   * Marks a delivery as running until the microtasks it starts have run;
   * the reads its reactions submit after the first then go to the actor
   * with one wake, not one each (native/ring_client.h, "Held wakes"). Ended
   * in a nextTick queued from a microtask, which runs even if a reaction
   * throws; a worker's teardown releases a wake still held.
   */
  #beginDelivery(): void {
    if (this.#delivering || !this.#holdsWakes) return;
    this.#delivering = true;
    queueMicrotask(this.#endDeliveryAfterMicrotasks);
  }

  /**
   * Holds the actor's wakes at the first command a delivery's reactions
   * submit, not at the delivery itself: the first command still wakes the
   * actor (Enqueue), so the hold changes nothing until a second one, and a
   * delivery that submits nothing for the actor costs no call into the
   * addon. A flush, a durable write or a trim never takes the hold: it
   * always wakes the actor (Command::IsSlow), or goes to this thread's own
   * ring (directDsync), so the hold would change nothing for it. Two calls
   * a delivery were ~3 µs of a durable put on a slow host
   * (docs/benchmarks.md, "Session 33").
   */
  #holdWakesIfDelivering(kind: number): void {
    if (!this.#delivering || this.#wakesHeld || ALWAYS_SLOW_KINDS.has(kind)) return;
    this.#wakesHeld = true;
    this.#native.holdWakes(true);
  }

  #onCompletions(count: number): void {
    this.#beginDelivery();
    const view = this.#completions;
    const words = constants.COMPLETION_WORDS;
    let emptySlot: number | undefined;
    for (let i = 0; i < count; i++) {
      const slot = view[i * words];
      const result = view[i * words + 1];
      const stage = view[i * words + 2];
      const op = this.#slots[slot];
      // A completion for an empty slot would mean the addon and this handle
      // disagree about which command is where: a bug, never an IO outcome.
      // Thrown once every other completion is settled: a throw here lost them.
      if (op === undefined) {
        emptySlot ??= slot;
        continue;
      }
      this.#slots[slot] = undefined;
      this.#freeSlots[this.#freeSlotCount++] = slot;
      this.#inFlight--;
      this.#settle(op, result >= 0 ? result : this.#systemError(op, result, stage));
    }
    // Refill freed slots from the waiting FIFO, oldest first.
    while (this.#freeSlotCount > 0 && this.#waitingHead < this.#waiting.length) {
      const op = this.#waiting[this.#waitingHead];
      this.#waiting[this.#waitingHead++] = undefined as unknown as PendingOp;
      this.#dispatch(op, this.#freeSlots[--this.#freeSlotCount]);
    }
    if (this.#waitingHead === this.#waiting.length && this.#waitingHead > 0) {
      this.#waiting = [];
      this.#waitingHead = 0;
    } else if (this.#waitingHead >= WAITING_COMPACT_MIN && this.#waitingHead * 2 >= this.#waiting.length) {
      // Drop the consumed prefix so a FIFO that never empties cannot grow.
      this.#waiting = this.#waiting.slice(this.#waitingHead);
      this.#waitingHead = 0;
    }
    this.#checkDrained();
    // The addon reports it as uncaught (ring_client_delivery.cc).
    if (emptySlot !== undefined) throw new Error(`ringstore: completion for empty slot ${emptySlot}`);
  }

  #checkDrained(): void {
    if (this.#inFlight === 0 && this.#drained !== undefined) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }

  #settle(op: PendingOp, outcome: number | Error): void {
    op.owner[kOpSettled]();
    if (op.observer !== undefined && op.mutation !== undefined) {
      try {
        op.observer.onComplete(op.mutation, outcome);
      } catch (error) {
        // The observer's bug must not break this handle's bookkeeping (the
        // rest of the batch still has to settle): raise it on its own.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    if (typeof outcome === 'number') op.resolve(outcome);
    else op.reject(outcome);
  }

  #systemError(op: PendingOp, result: number, stage: number): RingSystemError {
    return new RingSystemError(result, syscallName(this.backend, op.kind, stage), op.owner.path);
  }
}

function createSpec(options: IoUringActorOptions & { backend: RingBackend }) {
  const entries = options.entries ?? DEFAULT_ENTRIES;
  checkInteger('entries', entries, constants.RING_ENTRIES_MIN, constants.RING_ENTRIES_MAX);
  const batchSize = options.batchSize ?? Math.min(entries, DEFAULT_BATCH_SIZE);
  checkInteger('batchSize', batchSize, 1, constants.RING_ENTRIES_MAX);
  const spinUs = options.spinUs ?? DEFAULT_SPIN_US;
  checkSpinSetting('spinUs', spinUs);
  const threadCount = options.threadCount ?? DEFAULT_THREAD_COUNT;
  checkInteger('threadCount', threadCount, 1, constants.THREAD_COUNT_MAX);
  const shortTransferEvery = checkFaultInjection(options.faultInjection);
  return {
    backend: options.backend,
    entries,
    batchSize,
    spinUs: spinUs === 'auto' ? AUTO_SPIN_WINDOW_US : spinUs,
    spinAdaptive: spinUs === 'auto' ? 1 : 0,
    threadCount,
    shortTransferEvery,
  };
}

/** What a handle sends through its JS thread's own ring. */
interface DirectOptions {
  directDsync: boolean;
  directReads: boolean;
}

/** The checked directDsync (default false) and directReads (default true) options. */
function checkDirectOptions(options: Pick<IoUringActorOptions, 'directDsync' | 'directReads'>): DirectOptions {
  const checked = (name: 'directDsync' | 'directReads', byDefault: boolean): boolean => {
    const value: unknown = options[name];
    if (value === undefined) return byDefault;
    if (typeof value !== 'boolean') throw invalidType(`${name} must be a boolean, got ${describeValue(value)}`);
    return value;
  };
  return { directDsync: checked('directDsync', false), directReads: checked('directReads', true) };
}

/** The addon's form of a checked completionSpinUs. */
function nativeCompletionSpin(setting: SpinSetting): { completionSpinUs: number; completionSpinAdaptive: number } {
  return setting === 'auto'
    ? { completionSpinUs: AUTO_SPIN_WINDOW_US, completionSpinAdaptive: 1 }
    : { completionSpinUs: setting, completionSpinAdaptive: 0 };
}

/** A SpinSetting: 'auto', or an integer number of µs from 0 to SPIN_US_MAX. */
function checkSpinSetting(name: string, value: unknown): void {
  if (value === 'auto') return;
  if (typeof value === 'string') throw invalidType(`${name} must be 'auto' or a number of µs, got '${value}'`);
  checkInteger(name, value, 0, constants.SPIN_US_MAX);
}

/** Validates IoUringActorOptions.faultInjection; returns the native period (0 = off). */
function checkFaultInjection(faultInjection: unknown): number {
  if (faultInjection === undefined) return 0;
  if (faultInjection === null || typeof faultInjection !== 'object') {
    throw invalidType(`faultInjection must be an object, got ${faultInjection === null ? 'null' : typeof faultInjection}`);
  }
  let keys: string[];
  let shortTransferEvery: unknown;
  try {
    keys = Object.keys(faultInjection);
    shortTransferEvery = (faultInjection as IoUringFaultInjection).shortTransferEvery;
  } catch (error) {
    throw unreadable('faultInjection', error);
  }
  for (const key of keys) {
    if (!FAULT_INJECTION_KEYS.has(key)) throw invalidRange(`faultInjection has no option '${key}'`);
  }
  if (shortTransferEvery === undefined) return 0;
  checkInteger('faultInjection.shortTransferEvery', shortTransferEvery, 1, constants.SHORT_TRANSFER_EVERY_MAX);
  return shortTransferEvery as number;
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number') throw invalidType(`${name} must be a number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidRange(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
}

const IO_URING_SYSCALLS: Record<number, string> = {};
const THREAD_SYSCALLS: Record<number, string> = {};
IO_URING_SYSCALLS[constants.OP_READ] = 'io_uring:read';
IO_URING_SYSCALLS[constants.OP_WRITE] = 'io_uring:write';
IO_URING_SYSCALLS[constants.OP_READV] = 'io_uring:readv';
IO_URING_SYSCALLS[constants.OP_WRITEV] = 'io_uring:writev';
IO_URING_SYSCALLS[constants.OP_FSYNC] = 'io_uring:fsync';
IO_URING_SYSCALLS[constants.OP_FDATASYNC] = 'io_uring:fdatasync';
IO_URING_SYSCALLS[constants.OP_WRITE_AND_SYNC] = 'io_uring:writev';
IO_URING_SYSCALLS[constants.OP_PUNCH_HOLE] = 'io_uring:fallocate';
IO_URING_SYSCALLS[constants.OP_DISCARD] = 'io_uring:discard';
IO_URING_SYSCALLS[constants.OP_WRITEV_DSYNC] = 'io_uring:writev';
THREAD_SYSCALLS[constants.OP_READ] = 'preadv';
THREAD_SYSCALLS[constants.OP_WRITE] = 'pwritev';
THREAD_SYSCALLS[constants.OP_READV] = 'preadv';
THREAD_SYSCALLS[constants.OP_WRITEV] = 'pwritev';
THREAD_SYSCALLS[constants.OP_FSYNC] = 'fsync';
THREAD_SYSCALLS[constants.OP_FDATASYNC] = 'fdatasync';
THREAD_SYSCALLS[constants.OP_WRITE_AND_SYNC] = 'pwritev';
THREAD_SYSCALLS[constants.OP_PUNCH_HOLE] = 'fallocate';
THREAD_SYSCALLS[constants.OP_DISCARD] = 'ioctl:BLKDISCARD';
THREAD_SYSCALLS[constants.OP_WRITEV_DSYNC] = 'pwritev2';

function syscallName(backend: RingBackend, kind: number, stage: number): string {
  if (stage === constants.STAGE_SYNC) return backend === 'io_uring' ? 'io_uring:fdatasync' : 'fdatasync';
  return (backend === 'io_uring' ? IO_URING_SYSCALLS : THREAD_SYSCALLS)[kind] ?? 'unknown';
}

/** Turns the addon's start failure into ERR_IO_URING_UNAVAILABLE with advice. */
function translateStartError(error: unknown): Error {
  const raw = error as { code?: string; errno?: number; reason?: string };
  if (raw?.code !== 'ERR_IO_URING_UNAVAILABLE') return fromNative(error);
  const errno = typeof raw.errno === 'number' ? raw.errno : 0;
  let why = raw.reason ?? 'io_uring_setup failed';
  let disabledSysctl = '';
  try {
    disabledSysctl = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
  } catch {
    // Kernels before 6.6 have no such sysctl.
  }
  if (disabledSysctl === '2') why += '; kernel.io_uring_disabled is 2 (io_uring is off for everyone)';
  else if (disabledSysctl === '1') why += '; kernel.io_uring_disabled is 1 (only root or the io_uring_group may use it)';
  else if (errno === -1) why += '; EPERM usually means a seccomp filter (a container runtime\'s default profile) blocks io_uring';
  const advice =
    'Allow io_uring (a seccomp profile that permits io_uring_setup, io_uring_enter and io_uring_register; ' +
    'sysctl kernel.io_uring_disabled=0), or start the ring with { fallback: \'threads\' }.';
  const result = new RingError('ERR_IO_URING_UNAVAILABLE', `io_uring is not available: ${why}. ${advice}`, {
    cause: error,
  });
  return Object.assign(result, { errno, syscall: 'io_uring_setup' });
}
