// ScanIterator: what range(), keys() and values() return — an async
// iterator over the tree's runs (a leaf at a time, tree_cursor.ts) that
// hands out one entry per next(), with the semantics of an async generator:
// the façade's checks run on the first next(), calls made while one is in
// progress wait their turn, an error ends the iteration, and return() or
// throw() end it early; ending it ends its read epoch.
//
// Not an async generator: `yield` in one costs every entry a resumption of
// the generator and an await of the value yielded, ~200 ns against ~100 for
// an iterator whose next() hands back a resolved promise (a loop of 1 M
// items, Node 20). Here an entry whose value is in the leaf (an inline
// value, or none asked for) is made synchronously inside next(); only the
// first next(), a new leaf and an extent value take an async step.
import { keyStringToKey } from './key_codec.js';
import type { LeafPage } from './leaf_page.js';
import type { LeafRun } from './tree_cursor.js';
import { leafEntryAt, leafKeyAt } from './tree_node.js';
import type { IndexEntry } from './store_index.js';
import type { CheckedRange } from './store_arguments.js';

/** What a scan yields per entry: [key, value], [key, undefined], the key, the value. */
export type ScanShape = 'entries' | 'entriesWithoutValues' | 'keys' | 'values';

/** What a scan needs of the store; StoreReader provides it. */
export interface ScanSource {
  /** Throws if the store is closed (an iteration going on after close() is a call after close). */
  checkOpen(): void;
  /** Takes a snapshot and a read epoch, and starts the snapshot's runs over `range` (PageTree.runs: a run is readable until the next is asked for). */
  start(range: CheckedRange): { runs: AsyncIterator<LeafRun, void, undefined>; epoch: number };
  /** Ends the read epoch start() took. */
  endRead(epoch: number): void;
  /** The value a caller gets for an inline value's bytes (a copy: the run's leaf may be lent). */
  decodeInline(keyString: string, entry: IndexEntry, bytes: Uint8Array): unknown;
  /**
   * decodeInline() of the inline value at `bytes[start, end)`, with no key
   * string or entry to name it by: where it throws, the iterator asks
   * decodeInline() again for the error that names the key.
   */
  decodeInlineAt(bytes: Uint8Array, start: number, end: number): unknown;
  /** Reads and decodes an extent value. */
  readExtentValue(keyString: string, entry: IndexEntry): Promise<unknown>;
}

export class ScanIterator implements AsyncGenerator<unknown, undefined, undefined> {
  readonly #source: ScanSource;
  /** The façade's checks and wait for the replay: run by the first next(). */
  #begin: (() => Promise<{ range: CheckedRange; shape: ScanShape }>) | undefined;
  #shape: ScanShape = 'entries';
  #limit = 0;
  #yielded = 0;
  #runs: AsyncIterator<LeafRun, void, undefined> | undefined;
  #epoch: number | undefined;
  /** The run being handed out, and the next position in it; undefined between runs and once ended. */
  #run: LeafRun | undefined;
  #index = 0;
  #ended = false;
  /**
   * The caller was told the iteration is over (a done result, or its own
   * return() or throw()): next() answers done from then on, after close()
   * too. An iteration that ended itself at its limit has not told it yet.
   */
  #doneTold = false;
  /** Calls (async steps) started and not yet settled: while any is, a next() waits behind them. */
  #stepsPending = 0;
  /** Settles after the last step started (never rejects): where the next one is chained. */
  #lastStep: Promise<unknown> = Promise.resolve();

  constructor(source: ScanSource, begin: () => Promise<{ range: CheckedRange; shape: ScanShape }>) {
    this.#source = source;
    this.#begin = begin;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown, undefined>> {
    // Synchronously only with no step in progress: one that awaits (an
    // extent read) holds the position, and calls after it wait their turn.
    if (this.#stepsPending === 0 && this.#run !== undefined && this.#index !== this.#run.end) {
      let entry: unknown;
      try {
        entry = this.#entryNow(this.#run);
      } catch (error) {
        return this.#step(async () => {
          await this.#end();
          throw error;
        });
      }
      if (entry !== NEEDS_READ) return Promise.resolve({ value: entry, done: false });
    }
    return this.#step(() => this.#nextAsync());
  }

  return(value?: undefined): Promise<IteratorResult<unknown, undefined>> {
    return this.#step(async () => {
      this.#doneTold = true;
      await this.#end();
      // As a generator's return(): the value given, awaited.
      return { value: await value, done: true } as IteratorReturnResult<undefined>;
    });
  }

  throw(error: unknown): Promise<IteratorResult<unknown, undefined>> {
    return this.#step(async () => {
      this.#doneTold = true;
      await this.#end();
      throw error;
    });
  }

  /** An async generator's own: ending it early (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.return().then(() => undefined);
  }

  /** Runs `step` after every step started before it; settles as it does. */
  #step<T>(step: () => Promise<T>): Promise<T> {
    this.#stepsPending++;
    const started = this.#stepsPending === 1 ? step() : this.#lastStep.then(step);
    const result = started.finally(() => {
      this.#stepsPending--;
    });
    this.#lastStep = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** next() when the entry cannot be made synchronously: the first call, a new run, an extent value, the end. */
  async #nextAsync(): Promise<IteratorResult<unknown, undefined>> {
    if (this.#ended) {
      // The end is an answer like an entry: after close() it is refused too
      // until the caller has had it (found by a review: an iteration that
      // ended at its limit, or whose range ended inside the current leaf
      // with no read to refuse, resolved done after close()).
      if (!this.#doneTold) this.#source.checkOpen();
      return this.#toldDone();
    }
    try {
      if (this.#begin !== undefined) {
        const begin = this.#begin;
        this.#begin = undefined;
        const { range, shape } = await begin();
        this.#shape = shape;
        this.#limit = range.limit;
        if (this.#limit <= 0) {
          await this.#end();
          return this.#toldDone();
        }
        const started = this.#source.start(range);
        this.#runs = started.runs;
        this.#epoch = started.epoch;
      }
      for (;;) {
        if (this.#yielded >= this.#limit) {
          this.#source.checkOpen();
          await this.#end();
          return this.#toldDone();
        }
        const run = this.#run;
        if (run !== undefined && this.#index !== run.end) {
          const entry = this.#entryNow(run);
          if (entry !== NEEDS_READ) return { value: entry, done: false };
          return { value: await this.#extentEntry(run), done: false };
        }
        this.#run = undefined;
        const next = await this.#runs!.next();
        if (next.done === true) {
          this.#source.checkOpen();
          await this.#end();
          return this.#toldDone();
        }
        this.#run = next.value;
        this.#index = next.value.first;
      }
    } catch (error) {
      await this.#end();
      throw error;
    }
  }

  #toldDone(): IteratorReturnResult<undefined> {
    this.#doneTold = true;
    return done();
  }

  /** The entry at the run's position, made synchronously, moving past it; NEEDS_READ (not moved) for an extent value to be read. */
  #entryNow(run: LeafRun): unknown {
    // A caller may go on iterating after close(): that is a call after
    // close, answered as one (the device is gone).
    this.#source.checkOpen();
    const index = this.#index;
    const page = run.leaf.page;
    if (page !== undefined) {
      const result = this.#pageEntryAt(page, index);
      if (result !== NEEDS_READ) this.#passed(run);
      return result;
    }
    const keyString = leafKeyAt(run.leaf, index);
    const entry = leafEntryAt(run.leaf, index);
    let result: unknown;
    if (this.#shape === 'keys') {
      result = keyStringToKey(keyString, entry.isString);
    } else if (this.#shape === 'entriesWithoutValues') {
      result = [keyStringToKey(keyString, entry.isString), undefined];
    } else {
      if (!(entry.value instanceof Uint8Array)) return NEEDS_READ;
      const value = this.#source.decodeInline(keyString, entry, entry.value);
      result = this.#shape === 'values' ? value : [keyStringToKey(keyString, entry.isString), value];
    }
    this.#passed(run);
    return result;
  }

  /**
   * The entry of record `index` of a leaf in page form, or NEEDS_READ:
   * #entryNow's answer made from the page's bytes, with no key string,
   * entry object or value view on the way (~10 % of a scan's CPU).
   */
  #pageEntryAt(page: LeafPage, index: number): unknown {
    const shape = this.#shape;
    if (shape === 'keys') return page.givenKeyAt(index);
    if (shape === 'entriesWithoutValues') return [page.givenKeyAt(index), undefined];
    const valueStart = page.inlineValueStartAt(index);
    if (valueStart < 0) return NEEDS_READ;
    let value: unknown;
    try {
      value = this.#source.decodeInlineAt(page.bytes, valueStart, page.starts[index + 1]!);
    } catch {
      // Again with the key and entry, for the error that names them.
      const entry = page.entryAt(index);
      value = this.#source.decodeInline(page.keyAt(index), entry, entry.value as Uint8Array);
    }
    return shape === 'values' ? value : [page.givenKeyAt(index), value];
  }

  /** The entry at the run's position, an extent value read, moving past it. */
  async #extentEntry(run: LeafRun): Promise<unknown> {
    const index = this.#index;
    const keyString = leafKeyAt(run.leaf, index);
    const entry = leafEntryAt(run.leaf, index);
    const value = await this.#source.readExtentValue(keyString, entry);
    const result = this.#shape === 'values' ? value : [keyStringToKey(keyString, entry.isString), value];
    this.#passed(run);
    return result;
  }

  /**
   * One more entry handed out: the position moves on. At the limit the
   * iteration ends at once, not at the next call: a caller that takes the
   * last entry and stops calling next() (`keys({ limit: 1 }).next()`)
   * leaves no read epoch, no lent leaf and no read ahead held.
   */
  #passed(run: LeafRun): void {
    this.#index += run.step;
    if (++this.#yielded < this.#limit) return;
    this.#run = undefined;
    // A step of its own, after any in progress (this one's included); it cannot fail (#end's cursor return only gives back).
    this.#step(() => this.#end()).catch(() => undefined);
  }

  /** Ends the iteration, once: the cursor gives back what it lent, and the read epoch ends. */
  async #end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    this.#begin = undefined;
    this.#run = undefined;
    const runs = this.#runs;
    const epoch = this.#epoch;
    this.#runs = undefined;
    this.#epoch = undefined;
    try {
      await runs?.return?.();
    } finally {
      if (epoch !== undefined) this.#source.endRead(epoch);
    }
  }
}

/** #entryNow's answer for an extent value: it needs a read. */
const NEEDS_READ: unique symbol = Symbol('ringstore.NEEDS_READ');

/** A finished iteration's result: a new object each time, as a generator's. */
function done(): IteratorReturnResult<undefined> {
  return { value: undefined, done: true };
}
