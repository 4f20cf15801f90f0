// GrowthWait: writes wait here, in call order, while the store grows for
// one of them.
//
// A write refused for want of room (ERR_STORE_FULL) on a store that can
// still grow waits for a growth (store_growth.ts) and is tried again. Every
// write called after it — puts, deletes, batches, the commit of a write
// stream — waits behind it, and all are handed to the journal in call order
// once there is room. Handed on at once instead, a later delete of the same
// key committed before the put that waited, and the put's old value came
// back after the delete had been acknowledged; a flush() or close() called
// after the waiting write did not wait for it.
//
// Only writes go through here; reads never wait for a growth. The façade
// tries a write (BlockStore's #tryQueue) and says whether it was handed to
// the journal, refused for good, or refused for room with a growth worth
// waiting for.
import type { PendingWrite } from './journal.js';
import type { StoreGrowth } from './store_growth.js';
import type { StoreError } from './store_error.js';
import type { StoreState } from './store_state.js';

/** A write refused for room: what its growth needs. */
export interface RoomRefusal {
  /** The ERR_STORE_FULL it was refused with (the refusal's message if the store cannot grow after all). */
  readonly error: StoreError;
  /** Settles once what the refused attempt took (blocks, reserve) is given back. */
  readonly abandoned: Promise<void>;
  /** Free blocks the write needs beyond what is free. */
  readonly blocksWanted: number;
}

/**
 * An attempt to hand a write to the journal: the journal's promise (a
 * refusal for good rejects it), or a refusal for room. No wrapper object:
 * every write of the hot path makes one attempt.
 */
export type QueueAttempt = Promise<PendingWrite> | RoomRefusal;

/** A write waiting its turn. */
interface HeldWrite {
  /** Tries to hand it to the journal; called in call order, each time there may be room. */
  attempt(): QueueAttempt;
  /** Settles the caller's promise with the journal's. */
  handOver(queued: Promise<PendingWrite>): void;
  fail(error: unknown): void;
  /** Resolves once it was handed over or refused for good. */
  readonly settled: Promise<void>;
  /** A write stream's commit: handed to the journal on a failed store too (inTurn). */
  readonly handedOnAfterFailure: boolean;
}

export interface GrowthWaitParts {
  readonly growth: StoreGrowth;
  readonly state: StoreState;
  /** Waits for freed blocks that only time holds, else grows the store (Journal.makeRoom); resolves to whether room came. */
  readonly makeRoom: (blocksWanted: number) => Promise<boolean>;
}

export class GrowthWait {
  readonly #growth: StoreGrowth;
  readonly #state: StoreState;
  readonly #makeRoom: (blocksWanted: number) => Promise<boolean>;
  /** In call order; the first is the one a growth runs for. Empty when none waits. */
  #held: HeldWrite[] = [];

  constructor(parts: GrowthWaitParts) {
    this.#growth = parts.growth;
    this.#state = parts.state;
    this.#makeRoom = parts.makeRoom;
  }

  /** Whether writes wait for a growth now: a write called now must wait behind them. */
  get waiting(): boolean {
    return this.#held.length > 0;
  }

  /**
   * Makes a write wait its turn: `attempt` hands it to the journal, called
   * in call order each time there may be room. With `refusal`, the write
   * was just refused for room and none waits before it: a growth starts
   * for it. The write must hold its own copies of the caller's buffers
   * (withLargeValuesCopied): it is handed on after its call has returned.
   */
  hold(attempt: () => QueueAttempt, refusal: RoomRefusal | undefined, handedOnAfterFailure = false): Promise<PendingWrite> {
    if ((refusal !== undefined) !== (this.#held.length === 0)) {
      throw new Error(`ringstore: a write held ${refusal === undefined ? 'with none waiting and no refusal' : 'for its refusal while others wait'}`);
    }
    const { write, promise } = heldWrite(attempt, handedOnAfterFailure);
    this.#held.push(write);
    if (refusal !== undefined) {
      this.#drain(refusal).catch((error: unknown) => {
        // A bug: the writes still waiting learn of it rather than wait forever.
        for (const waiting of this.#held.splice(0)) waiting.fail(error);
      });
    }
    return promise;
  }

  /**
   * Hands on a write that is never refused for room (a write stream's
   * commit: its blocks are taken as it streams) in its turn: at once, or
   * behind the writes waiting for a growth.
   */
  inTurn(enqueue: () => Promise<PendingWrite>): Promise<PendingWrite> {
    return this.#held.length === 0 ? enqueue() : this.hold(enqueue, undefined, true);
  }

  /** Resolves once every write waiting now has been handed to the journal or refused (flush and close wait for it). */
  handedOver(): Promise<void> {
    return this.#held[this.#held.length - 1]?.settled ?? Promise.resolve();
  }

  /**
   * Grows for the first waiting write, then hands writes on in call order
   * until one is refused for room again (then grows for it), or none waits.
   */
  async #drain(refusal: RoomRefusal | undefined): Promise<void> {
    while (this.#held.length > 0) {
      if (refusal !== undefined) {
        const first = this.#held[0]!;
        let grew = false;
        let failure: unknown;
        try {
          await refusal.abandoned;
          // A store that failed meanwhile does not grow (no IO after a failure).
          failure = this.#state.failure;
          // Blocks on their way to being free first (no growth for what a trim or a sync gives back), then a growth.
          if (failure === undefined) grew = await this.#makeRoom(refusal.blocksWanted);
        } catch (error) {
          // Only the store's failure (an IO error of the growth's flush or superblock).
          failure = this.#state.failure ?? error;
        }
        if (!grew) {
          this.#held.shift();
          first.fail(failure ?? this.#growth.refusal(refusal.error, refusal.blocksWanted));
        }
        refusal = undefined;
      }
      while (this.#held.length > 0) {
        const write = this.#held[0]!;
        // A failed store starts no IO for a waiting write (a put's extent
        // data); a write stream's commit is handed on all the same: the
        // journal rejects it with the failure and gives back its extents,
        // which are the commit path's once handed over.
        const failure = this.#state.failure;
        if (failure !== undefined && !write.handedOnAfterFailure) {
          this.#held.shift();
          write.fail(failure);
          continue;
        }
        let outcome: QueueAttempt;
        try {
          outcome = write.attempt();
        } catch (error) {
          this.#held.shift();
          write.fail(error);
          continue;
        }
        if (!(outcome instanceof Promise)) {
          refusal = outcome;
          break;
        }
        this.#held.shift();
        write.handOver(outcome);
      }
    }
  }
}

function heldWrite(attempt: () => QueueAttempt, handedOnAfterFailure: boolean): { write: HeldWrite; promise: Promise<PendingWrite> } {
  let resolve!: (queued: Promise<PendingWrite>) => void;
  let reject!: (error: unknown) => void;
  let markSettled!: () => void;
  const promise = new Promise<PendingWrite>((resolvePromise, rejectPromise) => {
    resolve = resolvePromise;
    reject = rejectPromise;
  });
  const settled = new Promise<void>((resolveSettled) => (markSettled = resolveSettled));
  const write: HeldWrite = {
    attempt,
    handOver: (queued) => {
      resolve(queued);
      markSettled();
    },
    fail: (error) => {
      reject(error);
      markSettled();
    },
    settled,
    handedOnAfterFailure,
  };
  return { write, promise };
}
