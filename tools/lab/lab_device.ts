// LabDevice: a BlockDevice over a real one (a RingBlockDevice on the store
// file, traced) that makes a workload's IO the same on every run: the same
// operations, in the same order, with the same bytes — so a crash-test seed
// names one trace, and a reproducer's trace is the one that failed.
//
// Left alone, a store's IO depends on timing: how many writes a group commit
// takes depends on when the previous commit's IO completed; a trim that
// completes before a put returns its blocks to the allocator, one that
// completes after does not; the deferred fdatasync of sync: false runs after
// 100 ms of wall time, wherever the store then is; a new store's tag is
// random. So this device:
//
// * runs IO in rounds: it waits until the JavaScript side has settled (no
//   more work queued for the next few event-loop turns), submits every
//   operation requested meanwhile at once (they are in flight together, as
//   they would be), waits for all of them, and only then settles their
//   promises, in the order they were requested. What the store sees depends
//   on what it asked for, never on when the kernel answered;
// * tells the trace to record each round's completions in submit order
//   (any order of concurrent completions is one the kernel could have
//   produced), rather than in the order they happened to arrive;
// * forwards the store's marks in order with the IO they describe;
// * runs the deferred fdatasync (BlockDevice#deferTask) when a round finds
//   nothing else to do: as if the timer fired while the store was idle;
// * gives a new store a fixed tag (BlockDevice#newStoreTag).
//
// The rounds keep concurrency — everything the store has in flight at once
// is in flight together — but not timing: a write that really completed
// before another was submitted is, here, either in an earlier round or in
// flight beside it. Deterministic as long as the workload itself does not
// depend on time (no timers, no Date.now).
import type { BlockDevice, IoPhase } from '../../engine/block_device.js';

/** Event-loop turns (setImmediate) with nothing new before a round starts: the store's own macrotask chains are one turn deep. */
export const LAB_SETTLE_TURNS = 3;
/** The tag of every store formatted in the lab (a store's tag is otherwise random). */
export const LAB_STORE_TAG = 0x1ab5_eed1;

/** Told where each round of IO starts and ends (a WriteTrace, to order a round's completions canonically). */
export interface RoundObserver {
  beginRound(): void;
  endRound(): void;
}

type Request =
  | { kind: 'mark'; phase: IoPhase; id: number | undefined }
  | { kind: 'io'; start: () => Promise<void>; resolve: () => void; reject: (error: unknown) => void };

export class LabDevice implements BlockDevice {
  readonly #inner: BlockDevice;
  readonly #observer: RoundObserver | undefined;
  #queue: Request[] = [];
  /** Deferred tasks (deferTask), run in order when a round finds no IO. */
  #deferred: { task: () => void; cancelled: boolean }[] = [];
  #pumping = false;
  readonly sizeBytes: number;
  readonly ioAlignment: number;
  readonly trimAlignment: number;
  /** Whether a store may be made on it (BlockDevice#blank): the inner device's, or as opening its file found. */
  readonly blank: boolean;

  constructor(inner: BlockDevice, observer?: RoundObserver, options: { blank?: boolean } = {}) {
    this.#inner = inner;
    this.#observer = observer;
    this.blank = options.blank ?? inner.blank === true;
    this.sizeBytes = inner.sizeBytes;
    this.ioAlignment = inner.ioAlignment;
    this.trimAlignment = inner.trimAlignment;
  }

  read(position: number, buffer: Uint8Array): Promise<void> {
    return this.#request(() => this.#inner.read(position, buffer));
  }

  readv(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#request(() => this.#inner.readv(position, buffers));
  }

  write(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#request(() => this.#inner.write(position, buffers));
  }

  writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#request(() => this.#inner.writeAndSync(position, buffers));
  }

  writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#request(() => this.#inner.writeDsync(position, buffers));
  }

  sync(): Promise<void> {
    return this.#request(() => this.#inner.sync());
  }

  trim(position: number, length: number): Promise<void> {
    return this.#request(() => this.#inner.trim(position, length));
  }

  close(): Promise<void> {
    // After everything requested before it, like any other request.
    return this.#request(() => this.#inner.close());
  }

  mark(phase: IoPhase, id?: number): void {
    // In order with the IO: after whatever is queued ahead of it is
    // submitted (at once when nothing is).
    if (this.#queue.length === 0) this.#inner.mark?.(phase, id);
    else this.#queue.push({ kind: 'mark', phase, id });
  }

  newStoreTag(): number {
    return LAB_STORE_TAG;
  }

  deferTask(task: () => void, _delayMs: number): () => void {
    const entry = { task, cancelled: false };
    this.#deferred.push(entry);
    this.#startPump();
    return () => {
      entry.cancelled = true;
    };
  }

  #request(start: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ kind: 'io', start, resolve, reject });
      this.#startPump();
    });
  }

  #startPump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    // A failure here is a bug (the store's or an observer's): not caught.
    void this.#pump();
  }

  /** Rounds until nothing is queued and no deferred task waits. */
  async #pump(): Promise<void> {
    try {
      for (;;) {
        await settle();
        if (!this.#queue.some((request) => request.kind === 'io')) {
          const tasks = this.#deferred.splice(0).filter((entry) => !entry.cancelled);
          if (tasks.length === 0) {
            // Marks queued behind IO have gone out with it; any left have none after them.
            for (const request of this.#queue.splice(0)) if (request.kind === 'mark') this.#inner.mark?.(request.phase, request.id);
            return;
          }
          for (const { task } of tasks) task();
          continue;
        }
        await this.#round(this.#queue.splice(0));
      }
    } finally {
      // Synchronously with the last check of the queue: a request made
      // right after it starts a new pump (a .finally() would leave a gap of
      // microtasks in which a request found the pump still "running").
      this.#pumping = false;
    }
  }

  async #round(requests: Request[]): Promise<void> {
    this.#observer?.beginRound();
    let results: PromiseSettledResult<void>[];
    const started: { request: Extract<Request, { kind: 'io' }>; outcome: Promise<PromiseSettledResult<void>> }[] = [];
    try {
      for (const request of requests) {
        if (request.kind === 'mark') {
          this.#inner.mark?.(request.phase, request.id);
          continue;
        }
        let promise: Promise<void>;
        try {
          promise = request.start();
        } catch (error) {
          promise = Promise.reject(error);
        }
        started.push({ request, outcome: promise.then((value) => ({ status: 'fulfilled', value }) as const, (reason: unknown) => ({ status: 'rejected', reason }) as const) });
      }
      results = await Promise.all(started.map((entry) => entry.outcome));
    } finally {
      this.#observer?.endRound();
    }
    // All at once, in request order: no result is seen before the round is over.
    started.forEach(({ request }, index) => {
      const result = results[index];
      if (result.status === 'fulfilled') request.resolve();
      else request.reject(result.reason);
    });
  }
}

/** Resolves after LAB_SETTLE_TURNS event-loop turns: whatever the last round's results set off has run. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < LAB_SETTLE_TURNS; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
}
