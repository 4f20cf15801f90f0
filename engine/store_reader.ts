// StoreReader: the store's reads — point lookups, getMany, ranges and
// counts — over the page tree, the WAL tail while its replay runs
// (ReplayOverlay), and the grid for extent values. Every read runs under a
// read epoch (space.ts), so neither the pages it reads nor the value's
// extents can be freed and reused under it; every value it hands out is
// decoded from bytes that passed their checksum.
//
// The façade (block_store.ts) checks the arguments and turns keys into key
// strings; this file takes them checked.
import { keyStringToKey } from './key_codec.js';
import { NOT_CACHED, type PageTree } from './page_tree.js';
import { NOT_IN_TAIL, type ReplayOverlay } from './replay_overlay.js';
import { ScanIterator, type ScanShape } from './scan_iterator.js';
import type { Grid } from './grid.js';
import type { Space } from './space.js';
import { describeKey, type CheckedRange } from './store_arguments.js';
import { StoreCorruptError, StoreError } from './store_error.js';
import { isExtentValue, type IndexEntry } from './store_index.js';
import { GET_MANY_READS_IN_FLIGHT_MAX } from './store_options.js';
import type { StoreState } from './store_state.js';
import { DECODABLE_STRING_BYTES_MAX, type ValueCodec } from './value_codec.js';

export type { ScanShape } from './scan_iterator.js';

export interface StoreReaderParts {
  readonly state: StoreState;
  readonly tree: PageTree;
  readonly space: Space;
  readonly grid: Grid;
  readonly codec: ValueCodec;
  /** The WAL tail recovered at open while its replay runs, else undefined. */
  readonly replay: () => ReplayOverlay | undefined;
}

export class StoreReader {
  readonly #state: StoreState;
  readonly #tree: PageTree;
  readonly #space: Space;
  readonly #grid: Grid;
  readonly #codec: ValueCodec;
  readonly #replay: () => ReplayOverlay | undefined;

  constructor(parts: StoreReaderParts) {
    this.#state = parts.state;
    this.#tree = parts.tree;
    this.#space = parts.space;
    this.#grid = parts.grid;
    this.#codec = parts.codec;
    this.#replay = parts.replay;
  }

  /** The decoded value of `keyString`, or undefined. */
  get(keyString: string): Promise<unknown> {
    // Not an async function: an inline value (the common case) resolves
    // without the extra promise and await an async body costs per call.
    const entry = this.entryNow(keyString);
    if (entry === NOT_CACHED) return this.#getUncached(keyString);
    if (entry === undefined) return Promise.resolve(undefined);
    if (entry.value instanceof Uint8Array) return Promise.resolve(this.decodeValue(keyString, entry, entry.value, false));
    return this.readValue(entry).then((bytes) => this.decodeValue(keyString, entry, bytes, true));
  }

  /** Whether `keyString` has a value; reads no value. */
  has(keyString: string): Promise<boolean> {
    const entry = this.entryNow(keyString);
    if (entry !== NOT_CACHED) return Promise.resolve(entry !== undefined);
    return this.#hasUncached(keyString);
  }

  /**
   * The entry of `keyString` now, if it takes no IO: the WAL tail's while
   * the replay runs (ReplayOverlay) and the tail touches the key, else the
   * pages' in memory; NOT_CACHED when a page on its path must be read (the
   * tree then has the key's entry: the tail does not touch it).
   */
  entryNow(keyString: string): IndexEntry | undefined | typeof NOT_CACHED {
    const replay = this.#replay();
    if (replay !== undefined) {
      const tail = replay.lookUp(keyString);
      if (tail !== NOT_IN_TAIL) return tail;
    }
    return this.#tree.getCached(keyString);
  }

  /**
   * get() when a page on the key's path is not in memory: the lookup and
   * the value's read under one read epoch, so neither the pages read nor
   * the value's extents can be freed and reused in between. One async
   * function from the tree's lookup to the decoded value: every async
   * layer costs a cold get a promise and a turn.
   */
  async #getUncached(keyString: string): Promise<unknown> {
    const epoch = this.#space.beginRead();
    try {
      const entry = await this.#treeEntry(keyString);
      if (entry === undefined) return undefined;
      if (entry.value instanceof Uint8Array) return this.decodeValue(keyString, entry, entry.value, false);
      return this.decodeValue(keyString, entry, await this.readValue(entry), true);
    } finally {
      this.#space.endRead(epoch);
    }
  }

  /** has() when a page on the key's path is not in memory (under a read epoch, as #getUncached). */
  async #hasUncached(keyString: string): Promise<boolean> {
    const epoch = this.#space.beginRead();
    try {
      return (await this.#treeEntry(keyString)) !== undefined;
    } finally {
      this.#space.endRead(epoch);
    }
  }

  /** The tree's entry of `keyString`, reading pages; a read the store's close cut short is ERR_STORE_CLOSED. */
  async #treeEntry(keyString: string): Promise<IndexEntry | undefined> {
    try {
      return await this.#tree.get(keyString);
    } catch (error) {
      throw this.#state.closedOr(error);
    }
  }

  /**
   * The decoded values of `keyStrings`, in the same order (BlockStore.getMany):
   * one consistent state, page and value reads in parallel, at most
   * GET_MANY_READS_IN_FLIGHT_MAX at a time.
   */
  async getMany(keyStrings: readonly string[]): Promise<unknown[]> {
    // One synchronous step: the entries of cached paths, the snapshot for
    // the others and the read epoch are all of the same moment.
    const entries: (IndexEntry | undefined | typeof NOT_CACHED)[] = keyStrings.map((keyString) => this.entryNow(keyString));
    const snapshot = entries.includes(NOT_CACHED) ? this.#tree.snapshot() : undefined;
    const epoch = this.#space.beginRead();
    try {
      const values = new Array<unknown>(keyStrings.length).fill(undefined);
      let next = 0;
      let failed = false;
      const worker = async (): Promise<void> => {
        while (next < keyStrings.length && !failed) {
          const index = next++;
          const keyString = keyStrings[index]!;
          let entry = entries[index];
          if (entry === NOT_CACHED) {
            try {
              entry = await this.#tree.getIn(snapshot!, keyString);
            } catch (error) {
              throw this.#state.closedOr(error);
            }
          }
          if (entry === undefined) continue;
          const bytes = entry.value instanceof Uint8Array ? entry.value : await this.readValue(entry);
          values[index] = this.decodeValue(keyString, entry, bytes, !(entry.value instanceof Uint8Array));
        }
      };
      const workers: Promise<void>[] = [];
      for (let count = 0; count < Math.min(GET_MANY_READS_IN_FLIGHT_MAX, keyStrings.length); count++) {
        workers.push(
          worker().catch((error: unknown) => {
            // The others stop at their next key: the call has failed.
            failed = true;
            throw error;
          }),
        );
      }
      // Every worker settles before the epoch ends, a failed one included:
      // none may still read a block the epoch no longer pins.
      const settled = await Promise.allSettled(workers);
      const rejected = settled.find((result) => result.status === 'rejected');
      if (rejected !== undefined) throw rejected.reason;
      return values;
    } finally {
      this.#space.endRead(epoch);
    }
  }

  /**
   * How many keys `range` holds (at most its limit), in one snapshot of the
   * tree; reads no value. REQUIRES: the WAL tail is replayed.
   */
  async count(range: CheckedRange): Promise<number> {
    if (range.low === undefined && range.high === undefined) return Math.min(this.#tree.size, range.limit);
    let counted = 0;
    if (counted >= range.limit) return counted;
    const snapshot = this.#tree.snapshot();
    const epoch = this.#space.beginRead();
    try {
      for await (const run of this.#tree.runs(snapshot, range)) {
        this.#state.checkOpen();
        counted += (run.end - run.first) * run.step;
        if (counted >= range.limit) return range.limit;
      }
    } catch (error) {
      throw this.#state.closedOr(error);
    } finally {
      this.#space.endRead(epoch);
    }
    return counted;
  }

  /**
   * A range's iteration, in the shape the façade's range(), keys() or
   * values() hands out, over a snapshot taken when iteration starts
   * (ScanIterator). `begin` runs first, on the first next(): the façade's
   * argument checks and its wait for the WAL tail's replay, so that they
   * throw from the iteration as they would from a generator.
   */
  scan(begin: () => Promise<{ range: CheckedRange; shape: ScanShape }>): AsyncGenerator<unknown, undefined, undefined> {
    return new ScanIterator(
      {
        checkOpen: () => this.#state.checkOpen(),
        start: ({ low, lowInclusive, high, highInclusive, reverse }) => {
          const snapshot = this.#tree.snapshot();
          // The snapshot's pages and extent values must stay readable for the
          // whole iteration: pin them (no trim, no reuse) until it ends. An
          // iterator that is never finished nor returned keeps the pin —
          // break out of loops with `break`/`return` (which ends it) rather
          // than abandoning them.
          const epoch = this.#space.beginRead();
          return { runs: this.#tree.runs(snapshot, { low, lowInclusive, high, highInclusive, reverse })[Symbol.asyncIterator](), epoch };
        },
        endRead: (epoch) => this.#space.endRead(epoch),
        // Decoded into a copy (fresh: false): the run's leaf may be lent, its
        // buffer reused after the run. msgpack copies binary data, but a
        // user's msgpackr extension (addExtension is global to msgpackr) is
        // handed a view of its input: that input is a copy of its own.
        decodeInline: (keyString, entry, bytes) => this.decodeValue(keyString, entry, this.#codec.name === 'msgpack' ? new Uint8Array(bytes) : bytes, false),
        // decodeValue() of an inline value (never raw: only extent values are) that decodes.
        // (A plain view: Buffer's subarray() costs a scan ~3 % more.)
        decodeInlineAt: (bytes, start, end) =>
          this.#codec.decode(this.#codec.name === 'msgpack' ? Uint8Array.prototype.slice.call(bytes, start, end) : new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start), false),
        readExtentValue: async (keyString, entry) => this.decodeValue(keyString, entry, await this.readValue(entry), true),
      },
      begin,
    );
  }

  /**
   * The value a caller gets for stored bytes: a raw (stream-written) value
   * as a Buffer, whatever the encoding; anything else through the encoding.
   * Bytes the encoding cannot decode passed their checksum, so they were
   * written so (another encoding, a bug) or damaged in memory: the store is
   * corrupt at this key, not the caller's call wrong.
   */
  decodeValue(keyString: string, entry: IndexEntry, bytes: Uint8Array, fresh: boolean): unknown {
    const value = entry.value;
    if (isExtentValue(value) && value.raw === true) return fresh ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.from(bytes);
    try {
      return this.#codec.decode(bytes, fresh);
    } catch (error) {
      const key = describeKey(keyStringToKey(keyString, entry.isString));
      if (bytes.length > DECODABLE_STRING_BYTES_MAX) {
        // Passed its checksum, but too long for Node to decode into a
        // string (a put before such values were refused at the put).
        throw new StoreError('ERR_VALUE_TOO_LARGE', `the value of key ${key} (${bytes.length} bytes) does not decode as ${this.#codec.name}: more than the ${DECODABLE_STRING_BYTES_MAX} bytes Node reads into one string`, { cause: error });
      }
      const reason = `the value of key ${key} (${bytes.length} bytes) does not decode as ${this.#codec.name} (written with another encoding?): ${error instanceof Error ? error.message : String(error)}`;
      throw isExtentValue(value)
        ? new StoreCorruptError('data', reason, value.extents[0].startBlock, { cause: error })
        : new StoreCorruptError('record', reason, undefined, { cause: error });
    }
  }

  /** Reads an extent value; a read the store's close cut short is ERR_STORE_CLOSED. */
  async readValue(entry: IndexEntry): Promise<Uint8Array> {
    try {
      return await this.#grid.readValue(entry);
    } catch (error) {
      throw this.#state.closedOr(error);
    }
  }
}
