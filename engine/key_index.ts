// KeyIndex: every key of the store and its entry, in memory, behind the
// narrow interface the rest of the engine uses (get, set, delete, snapshot,
// forEach, size) — so that it can be replaced by an on-disk page tree
// without touching the journal, the checkpointer or the façade.
//
// Two structures hold the same entry objects: the ordered B-tree
// (store_index.ts), the truth for ranges and checkpoints, and a Map for
// point lookups. Both are updated together by set and delete.
import type { IndexEntry, StoreIndex } from './store_index.js';

/** Keys put into the lookup map per event-loop turn while it is filled after open. */
const LOOKUP_FILL_SLICE = 100_000;

/** The index as it was when snapshot() was called; writes made since are not seen. */
export interface IndexSnapshot {
  readonly size: number;
  /** Entries in key order from `lowKeyString` (inclusive; the first key if undefined). */
  iterate(lowKeyString?: string): IterableIterator<[string, IndexEntry]>;
  /** Entries in reverse key order from `highKeyString` (the last key if undefined), skipping it if `skipHigh`. */
  iterateReversed(highKeyString: string | undefined, skipHigh: boolean): IterableIterator<[string, IndexEntry]>;
  /** Calls `visit` for every entry in key order. */
  forEach(visit: (keyString: string, entry: IndexEntry) => void): void;
}

export class KeyIndex {
  readonly #tree: StoreIndex;
  /**
   * The same entries by key, for point lookups: a hash lookup is ~10× faster
   * than the B-tree's (measured 0.12 µs against 1.1 µs with 1 M keys) for
   * ~45 B per key. The B-tree stays the ordered truth for ranges and
   * checkpoints; both are updated together when a commit applies.
   */
  readonly #lookup = new Map<string, IndexEntry>();
  /**
   * While the map is being filled after open (in the background, so a large
   * store opens without waiting for it): the keys a commit touched since, so
   * the filler does not put back their old entries. Undefined once complete;
   * until then lookups use the B-tree.
   */
  #lookupFilling: Set<string> | undefined = new Set();
  /** Set by close(): the filler stops at its next slice. */
  #closed = false;

  /** Takes ownership of `tree` (recovery's index). Lookups use it until startLookupFill() has filled the map. */
  constructor(tree: StoreIndex) {
    this.#tree = tree;
  }

  get size(): number {
    return this.#tree.size;
  }

  /** The entry of a key: from the map once it is complete, else from the B-tree. */
  get(keyString: string): IndexEntry | undefined {
    return this.#lookupFilling === undefined ? this.#lookup.get(keyString) : this.#tree.get(keyString);
  }

  set(keyString: string, entry: IndexEntry): void {
    this.#lookupFilling?.add(keyString);
    this.#tree.set(keyString, entry, true);
    this.#lookup.set(keyString, entry);
  }

  delete(keyString: string): void {
    this.#lookupFilling?.add(keyString);
    this.#tree.delete(keyString);
    this.#lookup.delete(keyString);
  }

  /** An O(1) copy-on-write snapshot: iterating it while writes go on sees the index as it is now. */
  snapshot(): IndexSnapshot {
    return new TreeSnapshot(this.#tree.clone());
  }

  /** Calls `visit` for every entry in key order; `visit` must not change the index. */
  forEach(visit: (keyString: string, entry: IndexEntry) => void): void {
    this.#tree.forEachPair((keyString, entry) => {
      visit(keyString, entry);
    });
  }

  /** Starts filling the lookup map in the background, from a snapshot taken now. */
  startLookupFill(): void {
    void this.#fillLookup(this.#tree.clone());
  }

  /** Stops the background fill (the store is closing). */
  close(): void {
    this.#closed = true;
  }

  /**
   * Fills the lookup map from a snapshot of the index taken at open, in
   * slices between other work (~50 ms a slice for LOOKUP_FILL_SLICE keys),
   * skipping keys commits have touched since (those are in the map already,
   * or deleted).
   */
  async #fillLookup(snapshot: StoreIndex): Promise<void> {
    const filling = this.#lookupFilling!;
    let done = 0;
    for (const [key, entry] of snapshot.entries()) {
      if (!filling.has(key)) this.#lookup.set(key, entry);
      if (++done % LOOKUP_FILL_SLICE === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.#closed) return;
      }
    }
    this.#lookupFilling = undefined;
  }
}

class TreeSnapshot implements IndexSnapshot {
  readonly #tree: StoreIndex;

  constructor(tree: StoreIndex) {
    this.#tree = tree;
  }

  get size(): number {
    return this.#tree.size;
  }

  iterate(lowKeyString?: string): IterableIterator<[string, IndexEntry]> {
    return this.#tree.entries(lowKeyString);
  }

  iterateReversed(highKeyString: string | undefined, skipHigh: boolean): IterableIterator<[string, IndexEntry]> {
    return this.#tree.entriesReversed(highKeyString, undefined, skipHigh);
  }

  forEach(visit: (keyString: string, entry: IndexEntry) => void): void {
    this.#tree.forEachPair((keyString, entry) => {
      visit(keyString, entry);
    });
  }
}
