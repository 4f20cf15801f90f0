// Counts the writes a RingLevel makes to its store, so an iterator can tell
// whether a new range() would read the same snapshot as its old one (see
// range_cursor.ts). The token also carries the store's newest applied commit
// (lastCommitSequence), so a write that reached the store another
// way (through `db.store`) and has applied is seen too; one still in flight
// through that way is not — the reason docs/level.md says not to write
// through `db.store` while iterating.
import type { BlockStore } from '../engine/block_store.js';

export class WriteClock {
  /** The database's store while it is open (a database can be closed and opened again). */
  readonly #store: () => BlockStore | undefined;

  /** Incremented when a write is submitted, before the store can apply it. */
  #version = 0;
  #inFlight = 0;
  /** The running watches of puts (watchPuts). */
  readonly #putWatches = new Set<PutWatch>();
  /** The writes that put a key and have not settled, each with the watches that count it. */
  readonly #putsInFlight = new Set<PutWatch[]>();

  constructor(store: () => BlockStore | undefined) {
    this.#store = store;
  }

  /** A token for "the store as it is now", or undefined while writes are in flight (they may apply at any moment). */
  snapshotToken(): string | undefined {
    if (this.#inFlight !== 0) return undefined;
    let applied: number | undefined;
    try {
      applied = this.#store()?.lastCommitSequence;
    } catch {
      return undefined; // the store is closing: no snapshot can be reused
    }
    return `${this.#version}:${applied}`;
  }

  /**
   * Whether the store is still as it was when `token` was taken: nothing was
   * in flight then and nothing has been submitted since.
   */
  unchangedSince(token: string | undefined): boolean {
    return token !== undefined && token === this.snapshotToken();
  }

  /**
   * Counts, from now until unwatched, the writes that put a key and were
   * not refused (in flight or applied; a refusal is taken back once the
   * write settled), those in flight now included: a clear() takes a new
   * snapshot only while none may have changed the store since its first
   * one (ring_level.ts). One in flight when the clear began may apply after
   * its first snapshot (found by a review: such a key was kept or deleted
   * by where it sorted).
   */
  watchPuts(): PutWatch {
    const watch: PutWatch = { putsMade: this.#putsInFlight.size };
    for (const watches of this.#putsInFlight) watches.push(watch);
    this.#putWatches.add(watch);
    return watch;
  }

  unwatchPuts(watch: PutWatch): void {
    this.#putWatches.delete(watch);
  }

  /**
   * Counts `written`, a write just submitted to the store (in the same
   * synchronous turn, before any snapshot can be taken in between), until it
   * settles; `puts`: whether it puts a key (a put, or a batch with one).
   */
  async track(written: Promise<unknown>, puts: boolean): Promise<void> {
    this.#version++;
    this.#inFlight++;
    // The watches that count it: those running now, and those begun while it is in flight.
    const watches = puts ? [...this.#putWatches] : undefined;
    if (watches !== undefined) {
      for (const watch of watches) watch.putsMade++;
      this.#putsInFlight.add(watches);
    }
    try {
      await written;
    } catch (error) {
      if (watches !== undefined) for (const watch of watches) watch.putsMade--;
      throw error;
    } finally {
      this.#inFlight--;
      if (watches !== undefined) this.#putsInFlight.delete(watches);
    }
  }
}

/** Puts made since a watch began (WriteClock.watchPuts). */
export interface PutWatch {
  putsMade: number;
}
