// Counts the writes a RingLevel makes to its store, so an iterator can tell
// whether a new range() would read the same snapshot as its old one (see
// range_cursor.ts). Exact only because the database is its store's only
// writer: the store is exclusive (flock) and RingLevel owns it.
export class WriteClock {
  /** Incremented when a write is submitted, before the store can apply it. */
  #version = 0;
  #inFlight = 0;

  /** A token for "the store as it is now", or undefined while writes are in flight (they may apply at any moment). */
  snapshotToken(): number | undefined {
    return this.#inFlight === 0 ? this.#version : undefined;
  }

  /**
   * Whether the store is still as it was when `token` was taken: nothing was
   * in flight then and nothing has been submitted since.
   */
  unchangedSince(token: number | undefined): boolean {
    return token !== undefined && token === this.#version;
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
