// A seekable cursor over BlockStore.range(), which is the only way the
// store's public API reads a snapshot: a range iterator (an async
// generator's contract) clones the index on its first next(). abstract-level wants the
// snapshot taken when the iterator is created, so the cursor calls next()
// once at construction ("priming") and keeps that first result for later.
//
// seek() cannot ask the store to reposition a generator, and a new range()
// would read a new snapshot. A target outside the iterator's range ends
// it (abstract-level's contract: it reaches its natural end), on the same
// snapshot: a later seek inside the range brings it back. Otherwise three
// cases, cheapest exact one first:
//   1. No write has been submitted through this database since the
//      snapshot was taken (and none was in flight then): a new snapshot
//      equals the old one, so the cursor restarts the range at the target.
//   2. Writes happened and the target lies ahead in the cursor's direction:
//      the cursor stays on its snapshot and skips entries up to the target
//      (cost: the entries skipped, values included); if the snapshot's range
//      has run out already, nothing lies ahead and the cursor stays ended.
//   3. Writes happened and the target lies behind: the range restarts at the
//      target over a new snapshot taken at seek(); the iterator then sees
//      those writes. docs/level.md states this exception.
// Case 1 relies on the database being the store's only writer, which holds:
// RingLevel owns its BlockStore and the store is exclusive (flock).
import type { BlockStore } from '../engine/block_store.js';
import { isWellFormed } from '../engine/key_codec.js';
import { invalidArgument } from '../engine/store_error.js';
import type { RangeOptions } from '../engine/store_options.js';
import { KEY_SIZE_MAX } from '../format/constants.js';
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

type StoreBounds = Pick<RangeOptions, 'gt' | 'gte' | 'lt' | 'lte'>;

/**
 * A bound of more than KEY_SIZE_MAX bytes, which the store refuses as no
 * key could be it, in the store's terms: its first KEY_SIZE_MAX bytes, P.
 * No key equals such a bound, and a key (at most KEY_SIZE_MAX bytes) is
 * above it exactly when it is above P — a key P is a prefix of is P
 * itself, below the bound — and below it exactly when it is at most P. So
 * gt and gte of it are gt P, lt and lte of it are lte P. Shorter bounds
 * pass as they are.
 */
function lowerBound(bound: Encoded, inclusive: boolean): StoreBounds {
  const prefix = truncatedBound(bound);
  if (prefix !== undefined) return { gt: prefix };
  return inclusive ? { gte: bound } : { gt: bound };
}

function upperBound(bound: Encoded, inclusive: boolean): StoreBounds {
  const prefix = truncatedBound(bound);
  if (prefix !== undefined) return { lte: prefix };
  return inclusive ? { lte: bound } : { lt: bound };
}

/** P of a bound longer than KEY_SIZE_MAX bytes; undefined for one that passes as it is (a string the store must refuse, with a lone surrogate, too). */
function truncatedBound(bound: Encoded): Buffer | undefined {
  if (typeof bound === 'string' && !isWellFormed(bound)) return undefined;
  const bytes = toBytes(bound);
  return bytes.length > KEY_SIZE_MAX ? bytes.subarray(0, KEY_SIZE_MAX) : undefined;
}

/** Bounds in the store's terms; undefined when the range is empty whatever the store holds. */
function storeBounds(range: EncodedRange): StoreBounds | undefined {
  let bounds: StoreBounds = {};
  // The store has no empty key and refuses one as a bound: every key is
  // above it, so an empty lower bound is no bound and an empty upper bound
  // leaves nothing.
  if (range.gte !== undefined) {
    if (range.gte.length > 0) bounds = lowerBound(range.gte, true);
  } else if (range.gt !== undefined) {
    if (range.gt.length > 0) bounds = lowerBound(range.gt, false);
  }
  if (range.lte !== undefined) {
    if (range.lte.length === 0) return undefined;
    bounds = { ...bounds, ...upperBound(range.lte, true) };
  } else if (range.lt !== undefined) {
    if (range.lt.length === 0) return undefined;
    bounds = { ...bounds, ...upperBound(range.lt, false) };
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
  /**
   * Where the generator is, in the cursor's direction: the target it
   * started at (it yields no key before it), the last key it yielded
   * (returned or skipped: it yields none up to it again), and whether it
   * has ended. A seek of case 2 must lie ahead of all three; the key last
   * returned alone is not where the generator is after a restart at a
   * target, or a skip that ran past the returned keys.
   */
  #startedAt: Buffer | undefined;
  #consumedThrough: Buffer | undefined;
  #ended = false;
  /** Set by a seek of case 2: entries before it (in the cursor's direction) are skipped. */
  #skipTo: Buffer | undefined;
  /** Set by a seek outside the range: next() gives the end, until a seek inside it. */
  #parked = false;

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
      if (this.#generator === undefined || this.#parked) return undefined;
      const pending = this.#primed ?? this.#generator.next();
      this.#primed = undefined;
      const result = await pending;
      if (result.done === true) {
        this.#ended = true;
        return undefined;
      }
      const key = toBytes(result.value[0] as Encoded);
      this.#consumedThrough = key;
      if (this.#skipTo !== undefined) {
        if (this.#isBefore(key, this.#skipTo)) continue;
        this.#skipTo = undefined;
      }
      return result.value;
    }
  }

  /**
   * Moves to the first key at or after `target` in the cursor's direction;
   * a target outside the original range ends the cursor (abstract-level:
   * "the iterator will reach its natural end").
   */
  seek(target: Encoded): void {
    // Its UTF-8 bytes would be U+FFFD's: refused, as the store refuses such a key.
    if (typeof target === 'string' && !isWellFormed(target)) throw invalidArgument('a seek target must not contain lone surrogates (it has no UTF-8 bytes)');
    const targetBytes = toBytes(target);
    // On the same snapshot, unmoved: a later seek inside the range goes on
    // from here by the cases below (it moved to the range's first key, and
    // after writes took a new snapshot; found by a review).
    this.#parked = !this.#inRange(targetBytes);
    if (this.#parked) return;
    if (!this.#clock.unchangedSince(this.#snapshotToken) && this.#generator !== undefined && this.#isAhead(targetBytes)) {
      // A snapshot run out has nothing ahead: a new one would show writes
      // made since the iterator was created (found by a review).
      if (!this.#ended) this.#skipTo = targetBytes;
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

  /**
   * Whether `target` lies ahead of where the generator is: it can still
   * yield every key from `target` on (or, ended, has none from there), so a
   * seek there may stay on this snapshot.
   */
  #isAhead(target: Buffer): boolean {
    if (this.#startedAt !== undefined && this.#isBefore(target, this.#startedAt)) return false;
    return this.#consumedThrough === undefined || this.#isBefore(this.#consumedThrough, target);
  }

  /** Whether `target` satisfies the range's bounds (gte before gt, lte before lt, as abstract-level ranks them). */
  #inRange(target: Buffer): boolean {
    const { gt, gte, lt, lte } = this.#range;
    if (gte !== undefined ? compareKeys(target, toBytes(gte)) < 0 : gt !== undefined && compareKeys(target, toBytes(gt)) <= 0) return false;
    if (lte !== undefined ? compareKeys(target, toBytes(lte)) > 0 : lt !== undefined && compareKeys(target, toBytes(lt)) >= 0) return false;
    return true;
  }

  /** Whether `key` comes before `target` in the cursor's direction. */
  #isBefore(key: Buffer, target: Buffer): boolean {
    const order = compareKeys(key, target);
    return this.#range.reverse ? order > 0 : order < 0;
  }

  #start(target: Buffer | undefined): void {
    this.#startedAt = target !== undefined && target.length > 0 ? target : undefined;
    this.#consumedThrough = undefined;
    this.#ended = false;
    this.#skipTo = undefined;
    const bounds = storeBounds(this.#range);
    if (bounds === undefined) return;
    if (target !== undefined && target.length > 0) {
      // The target replaces the bound on its side only if it is inside it.
      if (!this.#range.reverse) {
        const low = bounds.gte ?? bounds.gt;
        if (low === undefined || compareKeys(target, low) > 0) {
          delete bounds.gt;
          delete bounds.gte;
          Object.assign(bounds, lowerBound(target, true));
        }
      } else {
        const high = bounds.lte ?? bounds.lt;
        if (high === undefined || compareKeys(target, high) < 0) {
          delete bounds.lt;
          delete bounds.lte;
          Object.assign(bounds, upperBound(target, true));
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
