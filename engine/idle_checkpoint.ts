// IdleCheckpoint: a checkpoint started once a store has taken no commit for
// a while, so that what the last writes dirtied is written while nothing else
// waits: a close() after a pause writes (almost) nothing, an open after a
// crash replays (almost) no WAL, and the dirty pages, pinned in memory until
// a checkpoint writes them, become clean pages the cache may evict.
//
// It does not tick while commits come: the journal tells it of each commit
// (noteCommit: one comparison when it is armed already), and it arms one
// timer. When the timer fires it compares the commit count with the one it
// saw when armed: commits since then re-arm it, so a store is idle when a
// whole delay passed without one (between one and two delays after its last
// commit). An idle store with enough to write (CheckpointPolicy.idleDue)
// starts a checkpoint; the next commit arms the timer again.
//
// Under a device that orders deferred work itself (the crash lab's
// LabDevice, BlockDevice#deferTask) it never arms: a timer would make a
// traced workload's IO depend on wall time, and such a checkpoint is an
// ordinary one, which the lab's workloads already cut at every write.

/** Default idleCheckpointMs: a store idle this long writes its dirty pages. */
export const DEFAULT_IDLE_CHECKPOINT_MS = 1000;
/** The largest idleCheckpointMs: setTimeout's (a 32-bit signed count of milliseconds, ~24.8 days). */
export const IDLE_CHECKPOINT_MS_MAX = 2 ** 31 - 1;

export interface IdleCheckpointParts {
  /** Milliseconds without a commit before a checkpoint starts; 0: never. */
  readonly delayMs: number;
  /** Commits applied since open (Journal.commitCount). */
  readonly commitCount: () => number;
  /** Whether a checkpoint is worth starting now (CheckpointPolicy.idleDue and the store's state). */
  readonly due: () => boolean;
  /** Starts a checkpoint; its outcome is the store's (a failure fails the store through the checkpointer). */
  readonly start: () => void;
}

export class IdleCheckpoint {
  readonly #parts: IdleCheckpointParts;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The commit count when the timer was armed. */
  #commitsWhenArmed = 0;
  #stopped: boolean;

  constructor(parts: IdleCheckpointParts) {
    if (!Number.isSafeInteger(parts.delayMs) || parts.delayMs < 0 || parts.delayMs > IDLE_CHECKPOINT_MS_MAX) {
      throw new RangeError(`delayMs must be an integer from 0 to ${IDLE_CHECKPOINT_MS_MAX}, got ${parts.delayMs}`);
    }
    this.#parts = parts;
    this.#stopped = parts.delayMs === 0;
  }

  /** A commit was applied (or a WAL tail replayed): arms the timer if it is not. */
  noteCommit(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#arm();
  }

  /** Never fires again (close()). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    this.#commitsWhenArmed = this.#parts.commitCount();
    this.#timer = setTimeout(() => this.#fired(), this.#parts.delayMs);
    // A store left open does not keep the process alive for its checkpoint.
    this.#timer.unref();
  }

  #fired(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    // Commits during the delay: not idle yet.
    if (this.#parts.commitCount() !== this.#commitsWhenArmed) {
      this.#arm();
      return;
    }
    if (this.#parts.due()) this.#parts.start();
  }
}
