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

  /** Writes submitted so far: a caller that counts its own can tell whether another was made meanwhile. */
  get submitted(): number {
    return this.#version;
  }

  /** Whether no write is in flight. */
  get idle(): boolean {
    return this.#inFlight === 0;
  }

  /**
   * Counts `written`, a write just submitted to the store (in the same
   * synchronous turn, before any snapshot can be taken in between), until it
   * settles.
   */
  async track(written: Promise<unknown>): Promise<void> {
    this.#version++;
    this.#inFlight++;
    try {
      await written;
    } finally {
      this.#inFlight--;
    }
  }
}
