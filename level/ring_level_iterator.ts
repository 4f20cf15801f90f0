// The three iterator kinds of abstract-level (entries, keys, values), each a
// thin shell around a RangeCursor that converts what the store yields into
// the formats abstract-level asked for. They do not share a base class
// because abstract-level's three do not.
import { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } from 'abstract-level';

import type { BlockStore } from '../engine/block_store.js';
import { fromStore, type Encoded } from './formats.js';
import { toLevelError } from './level_error.js';
import { RangeCursor, type EncodedRange } from './range_cursor.js';
import type { WriteClock } from './write_clock.js';

/** The options abstract-level passes to _iterator(), _keys() and _values(). */
export interface PrivateIteratorOptions extends Partial<Omit<EncodedRange, 'reverse'>> {
  reverse: boolean;
  keys?: boolean;
  values?: boolean;
  keyEncoding: string;
  valueEncoding?: string;
  limit: number;
}

function rangeOf(options: PrivateIteratorOptions): EncodedRange {
  return { gt: options.gt, gte: options.gte, lt: options.lt, lte: options.lte, reverse: options.reverse };
}

/**
 * Entries, as abstract-level's _nextv and _all want them, read through
 * `next`. abstract-level caps _nextv's size at what the limit leaves but
 * leaves _all to the implementation, so _all passes `remaining`.
 */
async function collect<T>(next: () => Promise<T | undefined>, size: number): Promise<T[]> {
  const items: T[] = [];
  while (items.length < size) {
    const item = await next();
    if (item === undefined) break;
    items.push(item);
  }
  return items;
}

// abstract-level's classes are typed for its public API; the private one
// (_next, _seek, …) is untyped, so these classes type it themselves.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The iterator of {@link RingLevel.iterator}: entries over a snapshot taken
 * when it is created (seek() after writes is the exception, docs/level.md).
 */
export class RingLevelIterator extends AbstractIterator<any, Encoded, Encoded> {
  readonly #cursor: RangeCursor;
  readonly #keys: boolean;
  readonly #values: boolean;
  readonly #keyFormat: string;
  readonly #valueFormat: string;

  /** Made by RingLevel's iterator(), keys() and values(). @internal */
  constructor(db: any, store: BlockStore, clock: WriteClock, options: PrivateIteratorOptions) {
    super(db, options as any);
    this.#keys = options.keys !== false;
    this.#values = options.values !== false;
    this.#keyFormat = options.keyEncoding;
    this.#valueFormat = options.valueEncoding ?? 'utf8';
    this.#cursor = new RangeCursor(store, clock, rangeOf(options), this.#values);
  }

  /** abstract-level's private API. @internal */
  async _next(): Promise<[Encoded | undefined, Encoded | undefined] | undefined> {
    let entry;
    try {
      entry = await this.#cursor.next();
    } catch (error) {
      throw toLevelError(error);
    }
    if (entry === undefined) return undefined;
    return [this.#keys ? fromStore(entry[0], this.#keyFormat) : undefined, this.#values ? fromStore(entry[1], this.#valueFormat) : undefined];
  }

  /** abstract-level's private API. @internal */
  async _nextv(size: number): Promise<[Encoded | undefined, Encoded | undefined][]> {
    return collect(() => this._next(), size);
  }

  /** abstract-level's private API. @internal */
  async _all(): Promise<[Encoded | undefined, Encoded | undefined][]> {
    return collect(() => this._next(), this.limit - this.count);
  }

  /** abstract-level's private API. @internal */
  _seek(target: Encoded): void {
    this.#cursor.seek(target);
  }

  /** abstract-level's private API. @internal */
  async _close(): Promise<void> {
    await this.#cursor.close();
  }
}

/** The iterator of {@link RingLevel.keys}: keys only, no values read; snapshot as for RingLevelIterator. */
export class RingLevelKeyIterator extends AbstractKeyIterator<any, Encoded> {
  readonly #cursor: RangeCursor;
  readonly #keyFormat: string;

  /** Made by RingLevel's iterator(), keys() and values(). @internal */
  constructor(db: any, store: BlockStore, clock: WriteClock, options: PrivateIteratorOptions) {
    super(db, options as any);
    this.#keyFormat = options.keyEncoding;
    this.#cursor = new RangeCursor(store, clock, rangeOf(options), false);
  }

  /** abstract-level's private API. @internal */
  async _next(): Promise<Encoded | undefined> {
    let entry;
    try {
      entry = await this.#cursor.next();
    } catch (error) {
      throw toLevelError(error);
    }
    return entry === undefined ? undefined : fromStore(entry[0], this.#keyFormat);
  }

  /** abstract-level's private API. @internal */
  async _nextv(size: number): Promise<Encoded[]> {
    return collect(() => this._next(), size);
  }

  /** abstract-level's private API. @internal */
  async _all(): Promise<Encoded[]> {
    return collect(() => this._next(), this.limit - this.count);
  }

  /** abstract-level's private API. @internal */
  _seek(target: Encoded): void {
    this.#cursor.seek(target);
  }

  /** abstract-level's private API. @internal */
  async _close(): Promise<void> {
    await this.#cursor.close();
  }
}

/** The iterator of {@link RingLevel.values}: values only; snapshot as for RingLevelIterator. */
export class RingLevelValueIterator extends AbstractValueIterator<any, Encoded, Encoded> {
  readonly #cursor: RangeCursor;
  readonly #valueFormat: string;

  /** Made by RingLevel's iterator(), keys() and values(). @internal */
  constructor(db: any, store: BlockStore, clock: WriteClock, options: PrivateIteratorOptions) {
    super(db, options as any);
    this.#valueFormat = options.valueEncoding ?? 'utf8';
    this.#cursor = new RangeCursor(store, clock, rangeOf(options), true);
  }

  /** abstract-level's private API. @internal */
  async _next(): Promise<Encoded | undefined> {
    let entry;
    try {
      entry = await this.#cursor.next();
    } catch (error) {
      throw toLevelError(error);
    }
    return entry === undefined ? undefined : fromStore(entry[1], this.#valueFormat);
  }

  /** abstract-level's private API. @internal */
  async _nextv(size: number): Promise<Encoded[]> {
    return collect(() => this._next(), size);
  }

  /** abstract-level's private API. @internal */
  async _all(): Promise<Encoded[]> {
    return collect(() => this._next(), this.limit - this.count);
  }

  /** abstract-level's private API. @internal */
  _seek(target: Encoded): void {
    this.#cursor.seek(target);
  }

  /** abstract-level's private API. @internal */
  async _close(): Promise<void> {
    await this.#cursor.close();
  }
}
