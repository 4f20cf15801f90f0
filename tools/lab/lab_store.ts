// LabStore: the store a crash-test workload (built in, or a user's module)
// works on. It forwards to a BlockStore on a traced ring and keeps the
// oracle's books: every put, delete and batch in call order (the store's
// commit order), and, in the write trace, the moment each one was
// acknowledged as durable — when it resolved (sync: true), or when a
// flush(), reopen() or close() called after it resolved (the store promises
// every write accepted before the call), whichever comes first. A
// ringstore/level database over it (level()) writes through the same books.
import type { Writable } from 'node:stream';

import type { BlockDevice } from '../../engine/block_device.js';
import { BlockStore } from '../../engine/block_store.js';
import { type BatchOperation, type BlockStoreOptions, type RangeOptions } from '../../engine/store_options.js';
import { isDetachedView, isUint8Array, ownBytes, type Key } from '../../engine/key_codec.js';
import { invalidArgument, StoreError } from '../../engine/store_error.js';
import { openStoreWith, RingLevel, type RingLevelOptions, type RingLevelStoreOptions } from '../../level/ring_level.js';
import type { IoUringActor } from '../../native/io_uring_actor.js';
import type { WorkloadOperation } from './oracle.js';
import type { WriteTrace } from './write_trace.js';

/** Options a workload may reopen its store with. */
export interface LabReopenOptions {
  /** The store's `sync` option after the reopen. Default true. */
  sync?: boolean;
  /** The store's `cacheSizeBytes` after the reopen. Default the store's default. */
  cacheSizeBytes?: number;
}

/** Options of {@link LabStore.level}: abstract-level's (encodings and the like); the store is the lab's. */
export type LabLevelOptions<K = string, V = string> = Omit<RingLevelOptions<K, V>, keyof RingLevelStoreOptions>;

/** RingLevel options that choose or size a store: the lab's store is made already. */
const STORE_OPTION_NAMES: readonly (keyof RingLevelStoreOptions)[] = ['sizeBytes', 'maxSizeBytes', 'blockSize', 'cacheSizeBytes', 'walSizeBytes', 'sync', 'idleCheckpointMs', 'ring', 'device'];

/**
 * The store a crash-lab workload writes to: a {@link BlockStore} whose write
 * calls are recorded, in call order, with the commit that carried each and
 * when it was acknowledged — the oracle the crash states are judged
 * against. Write through this, not through `store` (docs/crash-lab.md).
 */
export class LabStore {
  /** Every write call made, in call order: the oracle log. */
  readonly operations: WorkloadOperation[] = [];
  /** The trace of the store's IO, which also holds the acknowledgements. */
  readonly trace: WriteTrace;
  readonly #path: string;
  readonly #ring: IoUringActor;
  readonly #encoding: BlockStoreOptions['encoding'];
  readonly #openDevice: (() => Promise<BlockDevice>) | undefined;
  #store: BlockStore;
  #sync: boolean;
  #cacheSizeBytes: number | undefined;
  /** The store was closed (by close(), or by a level database's close()) and not opened again. */
  #closed = false;
  /** The last open of the store (reopen(), a level database's open), settled or not. */
  #opening: Promise<void> | undefined;
  /** The store a level database holds (opened and not closed), if any: one at a time. */
  #levelStore: BlockStore | undefined;
  /** Operations called and not yet acknowledged, by index. */
  readonly #unacknowledged = new Set<number>();
  /** Write streams whose put has not yet taken its place in commit order (no operation yet). */
  readonly #unorderedStreams = new Set<UnorderedStream>();

  /**
   * Wraps an open store; `options` are those it was opened with. With
   * `openDevice`, reopen() opens the store on the device it gives (the
   * crash lab's LabDevice), else on `path` through `ring`.
   */
  constructor(store: BlockStore, trace: WriteTrace, path: string, ring: IoUringActor, options: BlockStoreOptions, openDevice?: () => Promise<BlockDevice>) {
    this.#store = store;
    this.#openDevice = openDevice;
    this.trace = trace;
    this.#path = path;
    this.#ring = ring;
    this.#encoding = options.encoding;
    this.#sync = options.sync ?? true;
    this.#cacheSizeBytes = options.cacheSizeBytes;
  }

  /** The store underneath, for reads and stats. Writes made on it directly are not in the oracle. */
  get store(): BlockStore {
    return this.#store;
  }

  /** The store's put, recorded. */
  put(key: Key, value: unknown): Promise<void> {
    return this.#put(this.#store, key, value);
  }

  #put(store: BlockStore, key: Key, value: unknown): Promise<void> {
    return this.#record(store, `put ${describeKey(key)}`, [[key, value]], () => store.put(key, value));
  }

  /** The store's delete, recorded; resolves to whether the key existed. */
  delete(key: Key): Promise<boolean> {
    return this.#delete(this.#store, key);
  }

  #delete(store: BlockStore, key: Key): Promise<boolean> {
    // The store's own promise, as put's: a wrapper's extra turns let the
    // commit after this one apply before #record read the sequence (found
    // by a review: a delete was recorded in the next commit).
    return this.#record(store, `delete ${describeKey(key)}`, [[key, undefined]], () => store.delete(key));
  }

  /** The store's batch, recorded as one all-or-nothing operation. */
  batch(operations: BatchOperation[]): Promise<void> {
    return this.#batch(this.#store, operations);
  }

  #batch(store: BlockStore, operations: BatchOperation[]): Promise<void> {
    const writes = operations.map((operation) => [operation.key, operation.type === 'put' ? operation.value : undefined] as const);
    return this.#record(store, `batch of ${operations.length} from ${describeKey(operations[0]?.key ?? '')}`, writes, () => store.batch(operations));
  }

  /**
   * The store's createWriteStream, recorded as a put of the bytes written
   * (a Buffer, as get() gives a raw value back). Its operation takes its
   * place in the log when the store puts the stream's commit in order —
   * after end(), once its last bytes are written, so writes called between
   * end() and then come before it, as they commit — and it is acknowledged
   * when the stream finishes (sync: true) or by a flush(), reopen() or
   * close() called after its end().
   */
  createWriteStream(key: Key): Writable {
    return this.#createWriteStream(this.#store, key);
  }

  #createWriteStream(store: BlockStore, key: Key): Writable {
    // The key as the store took it, at the call: the workload may reuse its buffer meanwhile.
    const keyCopy = copyKey(key);
    const chunks: Buffer[] = [];
    let index: number | undefined;
    const unordered: UnorderedStream = { ended: () => stream.writableEnded, index: () => index };
    const stream = store.createOrderedWriteStream(key, () => {
      index = this.operations.length;
      this.#unorderedStreams.delete(unordered);
      this.operations.push({ label: `#${index} write stream ${describeKey(keyCopy)}`, writes: [[keyCopy, Buffer.concat(chunks)]] });
      this.#unacknowledged.add(index);
    });
    this.#unorderedStreams.add(unordered);
    // The oracle's copy of each chunk as the store takes it (Writable hands
    // every chunk, strings already made bytes, to _write), and the commit
    // read as the stream's put resolves, in the same turn as a put's
    // (#record): wrapping the stream's own methods, not piping through
    // another stream, keeps its end(), backpressure and errors the store's.
    const write = stream._write.bind(stream);
    stream._write = (chunk: Buffer, encoding, callback) => {
      chunks.push(Buffer.from(chunk));
      write(chunk, encoding, callback);
    };
    const final = stream._final.bind(stream);
    stream._final = (callback) => {
      final((error?: Error | null) => {
        if (index !== undefined) {
          if (error === undefined || error === null) {
            this.operations[index].commitSequence = store.appliedSequence;
            if (this.#sync) this.#acknowledge(index);
          } else if ((error as { code?: string }).code !== 'ERR_STORE_FAILED') {
            // Refused once in order (an index entry too large for a page): never committed, as in #record.
            this.operations[index].refused = true;
          }
        }
        callback(error);
      });
    };
    // Destroyed or failed before its put was ordered: it is no write at all.
    stream.once('close', () => this.#unorderedStreams.delete(unordered));
    return stream;
  }

  /** The store's get (not recorded: reads change nothing). */
  get(key: Key): Promise<unknown> {
    return this.#store.get(key);
  }

  /** The store's range (not recorded). */
  range(options?: RangeOptions): AsyncIterable<[Key, unknown]> {
    return this.#store.range(options) as AsyncIterable<[Key, unknown]>;
  }

  /** Writes a checkpoint now (no operation is recorded: the contents do not change). */
  checkpoint(): Promise<void> {
    return this.#store.checkpoint();
  }

  /** Makes every write called before it durable, and acknowledges them. */
  async flush(): Promise<void> {
    await this.#covering(() => this.#store.flush());
  }

  /** Closes the store (durably; unless closed already) and opens it again, optionally with other options. */
  reopen(options: LabReopenOptions = {}): Promise<void> {
    const reopening = (async () => {
      if (!this.#closed) await this.#close(this.#store);
      this.#sync = options.sync ?? true;
      this.#cacheSizeBytes = options.cacheSizeBytes;
      await this.#open();
    })();
    this.#opening = reopening;
    return reopening;
  }

  /** Closes the store; every write called before is acknowledged (close makes them durable). */
  async close(): Promise<void> {
    // An open still under way (a reopen not awaited) ends first: the run's
    // end closes the store it makes, not the one before it, and the ring
    // closes after it (found by a review: its ERR_RING_CLOSED went unhandled).
    await this.#opening?.catch(() => undefined);
    return this.#close(this.#store);
  }

  /**
   * A ringstore/level database (`RingLevel`) over this store, for a workload
   * written against the Level API: its writes (and those made through its
   * `store`) are recorded as this LabStore's own — a `clear()` as the
   * batches of deletes it is made of. Its `close()` closes the store as
   * close() does, and opening it again opens the store again (with the
   * options of the last open). The workload's store must have `encoding:
   * 'binary'` (a RingLevel stores bytes); one database holds the store at a
   * time; `options` are abstract-level's (`keyEncoding`, `valueEncoding`),
   * not the store's. docs/crash-lab.md.
   */
  level<K = string, V = string>(options: LabLevelOptions<K, V> = {}): RingLevel<K, V> {
    if (this.#encoding !== 'binary') {
      throw invalidArgument(`LabStore.level(): a RingLevel stores bytes: give the workload's store encoding 'binary' (export const storeOptions = { encoding: 'binary' }), not ${JSON.stringify(this.#encoding ?? 'msgpack')}`);
    }
    if (options === null || typeof options !== 'object') throw invalidArgument('LabStore.level(): options must be an object');
    for (const name of STORE_OPTION_NAMES) {
      if (name in options) throw invalidArgument(`LabStore.level(): option '${name}' is the lab store's: give it in the workload's storeOptions`);
    }
    const db = new RingLevel<K, V>(this.#path, options);
    openStoreWith(db as RingLevel<unknown, unknown>, async () => {
      if (this.#closed) await this.#open();
      if (this.#levelStore === this.#store) throw new StoreError('ERR_STORE_LOCKED', 'LabStore.level(): another database holds the lab store: close it first');
      this.#levelStore = this.#store;
      return this.#recording(this.#store);
    });
    return db;
  }

  /** Opens the store again on its path (or device), with the options of the last open. */
  #open(): Promise<void> {
    const opening = (async () => {
      const device = await this.#openDevice?.();
      this.#store = await BlockStore.open(this.#path, { ring: this.#ring, device, encoding: this.#encoding, sync: this.#sync, cacheSizeBytes: this.#cacheSizeBytes });
      this.#closed = false;
    })();
    this.#opening = opening;
    return opening;
  }

  async #close(store: BlockStore): Promise<void> {
    try {
      await this.#covering(() => store.close());
    } finally {
      if (store === this.#store) this.#closed = true;
      if (store === this.#levelStore) this.#levelStore = undefined;
    }
  }

  /**
   * `store` as a level database sees it: its writes recorded as this
   * LabStore's (put, delete, batch, createWriteStream), flush and close as
   * this LabStore's; what would write unrecorded refused; the rest is the
   * store's own. A Proxy: the store's methods run on the store itself (its
   * private fields), and `instanceof BlockStore` holds.
   */
  #recording(store: BlockStore): BlockStore {
    const unrecorded = (name: string): Error =>
      invalidArgument(`the crash lab records a level database's writes made through put, delete, batch and createWriteStream; its store's ${name}() would write unrecorded`);
    const own: Record<string, unknown> = {
      put: (key: Key, value: unknown) => this.#put(store, key, value),
      delete: (key: Key) => this.#delete(store, key),
      batch: (operations: BatchOperation[]) => this.#batch(store, operations),
      createWriteStream: (key: Key) => this.#createWriteStream(store, key),
      flush: () => this.#covering(() => store.flush()),
      close: () => this.#close(store),
      clear: () => Promise.reject(unrecorded('clear')),
      createOrderedWriteStream: () => {
        throw unrecorded('createOrderedWriteStream');
      },
    };
    return new Proxy(store, {
      get: (target, property) => {
        if (typeof property === 'string' && Object.hasOwn(own, property)) return own[property];
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /**
   * Runs a call that makes every write accepted before it durable (flush,
   * close), then acknowledges those writes — all that were called before it,
   * resolved or not, except those the store refused.
   */
  async #covering(call: () => Promise<void>): Promise<void> {
    const covered = [...this.#unacknowledged];
    // A write stream ended before the call is a write called before it,
    // although its put is not yet in order: the call waits for it.
    const ending = [...this.#unorderedStreams].filter((stream) => stream.ended());
    await call();
    // A write refused after this point (its rejection still settling) is
    // acknowledged here, but refused operations never count in the oracle.
    for (const index of covered) this.#acknowledge(index);
    for (const stream of ending) {
      const index = stream.index();
      if (index !== undefined) this.#acknowledge(index);
    }
  }

  #acknowledge(index: number): void {
    if (!this.#unacknowledged.delete(index) || this.operations[index].refused) return;
    this.trace.acknowledge(index);
  }

  async #record<T>(store: BlockStore, label: string, writes: WorkloadOperation['writes'], call: () => Promise<T>): Promise<T> {
    const index = this.operations.length;
    const operation: WorkloadOperation = { label: `#${index} ${label}`, writes: writes.map(([key, value]) => [copyKey(key), copyValue(value)]) };
    this.operations.push(operation);
    this.#unacknowledged.add(index);
    let result: T;
    try {
      result = await call();
    } catch (error) {
      // Refused before it could commit (bad input, a full store): never part
      // of the store. A store that failed (ERR_STORE_FAILED) may or may not
      // have made it durable: that stays open, as for a crash.
      if ((error as { code?: string }).code !== 'ERR_STORE_FAILED') operation.refused = true;
      throw error;
    }
    // A write resolves in the microtasks right after its commit is applied,
    // before any later commit can be: the newest commit is its own. Read
    // also while the store closes: a write the workload did not wait for
    // resolves inside the close() that ends the run (or a reopen's), where
    // lastCommitSequence refuses (found by a review: the lab crashed with an
    // unhandled ERR_STORE_CLOSED; then, with no sequence recorded, the
    // corruption explorer counted damage to that last commit as a failure).
    operation.commitSequence = store.appliedSequence;
    if (this.#sync) this.#acknowledge(index);
    return result;
  }
}

/** A recorded write stream until its put takes its place in commit order. */
interface UnorderedStream {
  /** Whether its end() was called. */
  ended(): boolean;
  /** Its operation's index, once ordered. */
  index(): number | undefined;
}

/** The oracle's copy of a key; one that is no key stays as given, for the store to refuse (ERR_INVALID_ARG). */
function copyKey(key: Key): Key {
  if (typeof key === 'string') return key;
  // A Buffer of the bytes the store reads (the built-in getters):
  // a subclass's slice() could make a copy of other bytes or another length
  // (found by a review: a padded copy passed for a key the store refuses).
  return isUint8Array(key) && !isDetachedView(key) ? Buffer.from(ownBytes(key)) : key;
}

/** The oracle keeps its own copy: the workload may reuse its buffers and objects. */
function copyValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return Uint8Array.prototype.slice.call(value);
  if (value === null || typeof value !== 'object') return value;
  try {
    return structuredClone(value);
  } catch {
    return value;
  }
}

function describeKey(key: Key): string {
  // Never throws: a key that is no key reaches the store, which refuses it
  // with its own ERR_INVALID_ARG (found by a review: Buffer.from threw
  // Node's ERR_INVALID_ARG_TYPE here first).
  const text = typeof key === 'string' ? JSON.stringify(key) : key instanceof Uint8Array ? `0x${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')}` : `(${typeof key})`;
  return text.length > 32 ? `${text.slice(0, 29)}…` : text;
}
