// A seekable cursor over BlockStore.range(), which is the only way the
// store's public API reads a snapshot: a range iterator (an async
// generator's contract) clones the index on its first next(). abstract-level wants the
// snapshot taken when the iterator is created, so the cursor calls next()
// once at construction ("priming") and keeps that first result for later.
//
// seek() cannot ask the store to reposition a generator, and a new range()
// would read a new snapshot. Three cases, cheapest exact one first:
//   1. No write has been submitted through this database since the
//      snapshot was taken (and none was in flight then): a new snapshot
//      equals the old one, so the cursor restarts the range at the target.
//   2. Writes happened and the target lies ahead in the cursor's direction:
//      the cursor stays on its snapshot and skips entries up to the target
//      (cost: the entries skipped, values included).
//   3. Writes happened and the target lies behind: the range restarts at the
//      target over a new snapshot taken at seek(); the iterator then sees
//      those writes. docs/level.md states this exception.
// Case 1 relies on the database being the store's only writer, which holds:
// RingLevel owns its BlockStore and the store is exclusive (flock).
import type { BlockStore } from '../engine/block_store.js';
import type { RangeOptions } from '../engine/store_options.js';
import { compareKeys, toBytes, type Encoded } from './formats.js';
import type { WriteClock } from './write_clock.js';

/** Encoded range options as abstract-level passes them to the private API. */
export interface EncodedRange {
  gt?: Encoded;
  gte?: Encoded;
  lt?: Encoded;
  lte?: Encoded;
  reverse: boolean;
}

/** Bounds in the store's terms; undefined when the range is empty whatever the store holds. */
function storeBounds(range: EncodedRange): Pick<RangeOptions, 'gt' | 'gte' | 'lt' | 'lte'> | undefined {
  const bounds: Pick<RangeOptions, 'gt' | 'gte' | 'lt' | 'lte'> = {};
  // The store has no empty key and refuses one as a bound: every key is
  // above it, so an empty lower bound is no bound and an empty upper bound
  // leaves nothing.
  if (range.gte !== undefined) {
    if (range.gte.length > 0) bounds.gte = range.gte;
  } else if (range.gt !== undefined) {
    if (range.gt.length > 0) bounds.gt = range.gt;
  }
  if (range.lte !== undefined) {
    if (range.lte.length === 0) return undefined;
    bounds.lte = range.lte;
  } else if (range.lt !== undefined) {
    if (range.lt.length === 0) return undefined;
    bounds.lt = range.lt;
  }
  return bounds;
}

type Entry = [unknown, unknown];

export class RangeCursor {
  readonly #store: BlockStore;
  readonly #clock: WriteClock;
  readonly #range: EncodedRange;
  readonly #values: boolean;
  #generator: AsyncGenerator<Entry> | undefined;
  /** The first next() of the generator, called at its start to take the snapshot. */
  #primed: Promise<IteratorResult<Entry>> | undefined;
  #snapshotToken: string | undefined;
  /** The last key returned, as bytes: where the cursor is. */
  #lastKey: Buffer | undefined;
  /** Set by a seek of case 2: entries before it (in the cursor's direction) are skipped. */
  #skipTo: Buffer | undefined;

  constructor(store: BlockStore, clock: WriteClock, range: EncodedRange, values: boolean) {
    this.#store = store;
    this.#clock = clock;
    this.#range = range;
    this.#values = values;
    this.#start(undefined);
  }

  /** The next [key, value] as the store yields them, or undefined at the end. */
  async next(): Promise<Entry | undefined> {
    for (;;) {
      if (this.#generator === undefined) return undefined;
      const pending = this.#primed ?? this.#generator.next();
      this.#primed = undefined;
      const result = await pending;
      if (result.done === true) return undefined;
      const key = toBytes(result.value[0] as Encoded);
      if (this.#skipTo !== undefined) {
        if (this.#isBefore(key, this.#skipTo)) continue;
        this.#skipTo = undefined;
      }
      this.#lastKey = key;
      return result.value;
    }
  }

  /** Moves to the first key at or after `target` in the cursor's direction, within the original range. */
  seek(target: Encoded): void {
    const targetBytes = toBytes(target);
    const ahead = this.#lastKey === undefined || this.#isBefore(this.#lastKey, targetBytes);
    if (!this.#clock.unchangedSince(this.#snapshotToken) && ahead) {
      this.#skipTo = targetBytes;
      return;
    }
    this.#stop();
    this.#start(targetBytes);
  }

  /** Ends the range, releasing the store's pin on its snapshot. */
  async close(): Promise<void> {
    const generator = this.#generator;
    this.#generator = undefined;
    this.#primed = undefined;
    await generator?.return(undefined);
  }

  /** Whether `key` comes before `target` in the cursor's direction. */
  #isBefore(key: Buffer, target: Buffer): boolean {
    const order = compareKeys(key, target);
    return this.#range.reverse ? order > 0 : order < 0;
  }

  #start(target: Buffer | undefined): void {
    this.#lastKey = undefined;
    this.#skipTo = undefined;
    const bounds = storeBounds(this.#range);
    if (bounds === undefined) return;
    if (target !== undefined && target.length > 0) {
      // The target replaces the bound on its side only if it is inside it.
      if (!this.#range.reverse) {
        const low = bounds.gte ?? bounds.gt;
        if (low === undefined || compareKeys(target, low) > 0) {
          delete bounds.gt;
          bounds.gte = target;
        }
      } else {
        const high = bounds.lte ?? bounds.lt;
        if (high === undefined || compareKeys(target, high) < 0) {
          delete bounds.lt;
          bounds.lte = target;
        }
      }
    } else if (target !== undefined && this.#range.reverse) {
      // Seeking a reverse cursor to the empty key: no key is at or below it.
      return;
    }
    this.#snapshotToken = this.#clock.snapshotToken();
    this.#generator = this.#store.range({ ...bounds, reverse: this.#range.reverse, values: this.#values }) as AsyncGenerator<Entry>;
    // Starts the generator's body: the store takes its snapshot a few
    // microtask steps from now (after its checks and the replay gate), in
    // this turn of the event loop, before any write made after this call
    // can apply (a commit applies once its IO completes). The catch only
    // marks the promise handled; the error still reaches whoever awaits it
    // in next().
    this.#primed = this.#generator.next();
    this.#primed.catch(() => undefined);
  }

  #stop(): void {
    const generator = this.#generator;
    this.#generator = undefined;
    this.#primed = undefined;
    // A pending primed next() runs first; return() is queued behind it.
    if (generator !== undefined) generator.return(undefined).catch(() => undefined);
  }
}
