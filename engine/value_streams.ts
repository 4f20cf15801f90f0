// Value streams: storing and reading one value of any size without holding
// it in memory. A write stream writes its bytes to extents as they arrive and
// commits one put through the journal when it finishes; a read stream reads
// the extents chunk by chunk and checks the value's checksum before its end.
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';

import { crc32c } from '../format/crc32c.js';
import { COMMIT_HEADER_SIZE, VALUE_EXTENTS_MAX } from '../format/constants.js';
import type { Extent } from '../format/extent.js';
import { extentPutRecordBytes, type ExtentValue, type StoredValue } from '../format/records.js';
import type { EndingStreams } from './ending_streams.js';
import { allSettledOrThrow, LARGE_VALUE_BYTES, type Grid } from './grid.js';
import type { GrowthWait } from './growth_wait.js';
import type { Journal } from './journal.js';
import { keyStringToKey, toKeyString, type Key } from './key_codec.js';
import { NOT_CACHED, type PageTree } from './page_tree.js';
import { leafEntryAt, leafKeyAt } from './tree_node.js';
import type { IndexEntry } from './store_index.js';
import { VALUE_EXTENTS_PER_PUT_MAX, type Space } from './space.js';
import { describeKey } from './store_arguments.js';
import { invalidArgument, StoreCorruptError, StoreError } from './store_error.js';
import { GROWTH_ATTEMPTS_MAX, type StoreGrowth } from './store_growth.js';
import type { StoreState } from './store_state.js';

/**
 * Bytes a write stream gathers before it writes them to its extents, and
 * bytes of each read of a read stream: one allocation of blocks each (a 1 MiB chunk of 4 KiB blocks is one extent
 * record of 12 WAL bytes when free space is not fragmented).
 */
const STREAM_CHUNK_BYTES = 1 << 20;

/**
 * Bytes a stream has in flight at most: a write stream's chunks written but
 * not yet completed (its Writable callback waits below this — backpressure),
 * a read stream's chunks read ahead of its consumer. With the chunk being
 * gathered, a write stream holds at most this plus STREAM_CHUNK_BYTES of
 * buffers: 5 MiB. A read stream holds more: beside what is in flight, the
 * chunk it checksums, the one Node's Readable buffers and the one the
 * consumer holds — 7.0 MiB of array buffers above the idle process at
 * peak, measured after a GC at every chunk of a 64 MiB value read by a
 * slow consumer (a review had seen ~8 MiB without the GCs). So 64
 * concurrent read streams take about 450 MiB. Four chunks (16 device
 * requests of LARGE_IO_CHUNK_BYTES) keep a disk busy while the JS thread
 * copies and checksums the next chunk.
 */
export const STREAM_IN_FLIGHT_BYTES_MAX = 4 << 20;

assert.ok(STREAM_IN_FLIGHT_BYTES_MAX >= STREAM_CHUNK_BYTES, 'a stream must have room for one chunk in flight');
assert.ok(STREAM_CHUNK_BYTES >= LARGE_VALUE_BYTES, 'a read stream reads a large value in chunks no smaller than the large-value threshold');

/** The parts of a store its streams use. */
export interface StreamParts {
  blockSize: number;
  state: StoreState;
  tree: PageTree;
  space: Space;
  grid: Grid;
  journal: Journal;
  growth: StoreGrowth;
  /** Writes waiting for a growth: a stream's commit goes in its turn, behind them. */
  growthWait: GrowthWait;
  /** Write streams ended and not yet in the journal, which flush() and close() wait for. */
  endingStreams: EndingStreams;
  /**
   * The chunk writes of every write stream, each settled (never rejected)
   * once it is: close() waits for them before the device closes, ended or
   * not (a stream never ended still has its writes in flight; found by a
   * review).
   */
  chunkWritesInFlight: Set<Promise<void>>;
  /** A key's entry now if it takes no IO, the WAL tail's while the replay runs (ReplayOverlay); NOT_CACHED otherwise. */
  entryNow: (keyString: string) => IndexEntry | undefined | typeof NOT_CACHED;
  /** Waits for the replay of the WAL tail if one runs: iterations start after it (a failed one: its error). */
  replayed: () => Promise<void> | undefined;
  /** The same for a write stream's blocks and commit (a failed replay: the store's failure). */
  replayedForWrites: () => Promise<void> | undefined;
}

/**
 * A writable stream storing a value of any size under `key`; the put
 * commits (durably) when the stream finishes. The bytes are stored as they
 * are and marked raw (VALUE_FLAG_RAW).
 *
 * The bytes are gathered in chunks of STREAM_CHUNK_BYTES (in the grid's
 * aligned chunk buffers); each full chunk gets its blocks and is written at
 * once (as several device requests, Grid.writeChunks), and the stream takes
 * more bytes while less than
 * STREAM_IN_FLIGHT_BYTES_MAX are in flight. A failed chunk write fails the
 * store (as a failed data write of a put does) and the stream with it; a
 * stream that fails or is destroyed before its put is handed to a commit
 * gives back every block it took once its writes have settled.
 *
 * `onOrdered`, if given, is called at the moment the put takes its place in
 * commit order (handed to the journal, or queued behind writes waiting for
 * a growth): every write called before that moment commits before it, every
 * write called after it commits after it. The crash lab records the stream
 * there (tools/lab/lab_store.ts).
 */
export function createValueWriteStream(parts: StreamParts, key: Key, onOrdered?: () => void): Writable {
  const { state, space, grid, journal, growth, growthWait } = parts;
  state.checkWritable();
  // Ended before close() began, the stream is finished by it: its steps go on while the store closes.
  const checkWritable = (): void => (tracked.admittedPastClose ? state.checkWritableWhileClosing() : state.checkWritable());
  const keyString = toKeyString(key);
  const isString = typeof key === 'string';
  const blockSize = parts.blockSize;
  assert.equal(STREAM_CHUNK_BYTES % blockSize, 0, 'a stream chunk is whole blocks');
  const extents: Extent[] = [];
  let crc = 0;
  let length = 0;
  /** The chunk being gathered: grid chunk buffers (each full but the last), STREAM_CHUNK_BYTES at most. */
  let staged: Buffer[] = [];
  let stagedBytes = 0;
  /** Every data write of the stream: the commit (or an abandon) waits for all of them. */
  const writes: Promise<void>[] = [];
  /** One promise per chunk in flight, settled (never rejected) when all its writes have. */
  const inFlight = new Set<Promise<void>>();
  let inFlightBytes = 0;
  /** The first failed chunk write. */
  let writeFailure: unknown;
  let handedOver = false;
  /**
   * Blocks for the stream's data; with no room, it waits first for the
   * blocks only time holds, then the store grows where it can
   * (Journal.makeRoom), as a put does.
   */
  const allocate = async (blockCount: number, extentsMax: number): Promise<Extent[]> => {
    // Blocks are taken (and the put committed) after the WAL tail's replay.
    await parts.replayedForWrites();
    checkWritable();
    for (let attempt = 0; ; attempt++) {
      try {
        return space.allocate(blockCount, extentsMax);
      } catch (error) {
        if (!(error instanceof StoreError && error.code === 'ERR_STORE_FULL')) throw error;
        const shortfall = space.shortfallForPuts(1, 0, blockCount);
        // Checked again before a growth: close() may have begun while
        // reclaim() waited, and a growth started then ran beside close()
        // and past the device's close (found by a review: the store failed
        // with a made-up error).
        const room = attempt < GROWTH_ATTEMPTS_MAX && (await journal.makeRoom(shortfall, checkWritable));
        if (!room) throw growth.refusal(error, shortfall);
        checkWritable();
      }
    }
  };
  /**
   * The error a failed chunk write gives the stream: the store's failure,
   * also while the store closes (close() waits for the chunk writes in
   * flight before it writes its checkpoint, and a failed store is not
   * marked clean; found by a review: the EIO of a stream left open during
   * close() became ERR_STORE_CLOSED, and the store was marked clean over it).
   */
  const failureOf = (error: unknown): unknown => {
    // A write the closed device refused (ClosedDeviceGuard) is no device failure.
    if (state.closing && error instanceof StoreError && error.code === 'ERR_STORE_CLOSED') return error;
    return state.fail(error);
  };
  /**
   * Writes the staged chunk (zero-padded to whole blocks; at least one
   * block) and waits while too much is in flight.
   */
  const flushStaged = async (): Promise<void> => {
    if (staged.length === 0) staged.push(grid.takeChunk());
    const chunks = staged;
    const usedBytes = stagedBytes;
    staged = [];
    stagedBytes = 0;
    const blockCount = Math.max(1, Math.ceil(usedBytes / blockSize));
    const writtenBytes = blockCount * blockSize;
    let allocated: Extent[];
    try {
      allocated = await allocate(blockCount, VALUE_EXTENTS_PER_PUT_MAX);
    } catch (error) {
      for (const chunk of chunks) grid.giveChunk(chunk);
      throw error;
    }
    if (handedOver) {
      // Destroyed while the blocks were being found (releaseAll has run):
      // nobody will write them, and nobody sees this stream's callbacks.
      space.free(allocated);
      for (const chunk of chunks) grid.giveChunk(chunk);
      return;
    }
    try {
      // close() may have begun since: a stream it does not finish submits
      // no more chunks (close() waits once for those in flight, before its
      // checkpoint, so that a failed one keeps the store from being marked clean).
      checkWritable();
    } catch (error) {
      space.free(allocated);
      for (const chunk of chunks) grid.giveChunk(chunk);
      throw error;
    }
    // Recorded at once, so that whoever releases the stream frees them too.
    extents.push(...allocated);
    if (extents.length > VALUE_EXTENTS_MAX) {
      for (const chunk of chunks) grid.giveChunk(chunk);
      // One extent a chunk at least: a size limit (64 GiB) more than fragmentation.
      throw new StoreError('ERR_VALUE_TOO_LARGE', `the stream's value takes more than ${VALUE_EXTENTS_MAX} extents (one a MiB written, more where free space is fragmented)`);
    }
    // Its index entry names every extent and must fit one index page (found
    // by a review: a ~336 MiB stream on 4 KiB blocks committed an entry that
    // no page holds, and the store failed at every replay of that commit).
    if (!parts.tree.entryFits(keyString, { isString, value: { kind: 'extents', length: length + usedBytes, crc: 0, extents, raw: true } })) {
      for (const chunk of chunks) grid.giveChunk(chunk);
      throw new StoreError(
        'ERR_VALUE_TOO_LARGE',
        `the stream's ${extents.length} extents (${length + usedBytes} bytes so far) make an index entry larger than one index page (blocks of ${blockSize} bytes); a store of larger blocks holds longer streams`,
      );
    }
    // Its put record names every extent and must fit one commit: refused as
    // soon as it would not, not after the rest is written (found by a
    // review: a 170 MiB stream on a small WAL was refused at its end).
    const payloadBytesNow = COMMIT_HEADER_SIZE + extentPutRecordBytes(keyString.length, extents.length);
    if (payloadBytesNow > journal.commitPayloadMax) {
      for (const chunk of chunks) grid.giveChunk(chunk);
      throw new StoreError(
        'ERR_VALUE_TOO_LARGE',
        `the stream's ${extents.length} extents (${length + usedBytes} bytes so far) need ${payloadBytesNow} bytes of WAL; one commit holds at most ${journal.commitPayloadMax} (use a larger walSizeBytes)`,
      );
    }
    const chunkBytes = grid.chunkBytes;
    const lastIndex = chunks.length - 1;
    chunks[lastIndex].fill(0, usedBytes - lastIndex * chunkBytes, writtenBytes - lastIndex * chunkBytes);
    // Submitted first, checksummed while the device writes (reading a
    // buffer a write is using is safe): the CRC is off the IO's path.
    const chunkWrites = grid.writeChunks(chunks, writtenBytes, allocated);
    for (let i = 0; i < chunks.length; i++) crc = crc32c(chunks[i].subarray(0, Math.min(chunkBytes, usedBytes - i * chunkBytes)), crc);
    length += usedBytes;
    writes.push(...chunkWrites);
    inFlightBytes += writtenBytes;
    const settled: Promise<void> = allSettledOrThrow(chunkWrites)
      .catch((error: unknown) => {
        writeFailure ??= error;
        // The store stops now, as for a put's data write, not at the
        // stream's next chunk or end(): a stream destroyed meanwhile never
        // got there, and later writes were acknowledged with the device
        // failing and the EIO told to no one (found by a review).
        const failure = failureOf(error);
        // So does the stream, unless its put is in the journal (which fails
        // it): one left idle while the store closed heard of its failed
        // write from nobody, and its end() got ERR_STORE_CLOSED (a review).
        if (!handedOver && !writable.destroyed) writable.destroy(failure instanceof Error ? failure : new Error(String(failure)));
      })
      .finally(() => {
        inFlightBytes -= writtenBytes;
        inFlight.delete(settled);
        parts.chunkWritesInFlight.delete(settled);
      });
    inFlight.add(settled);
    parts.chunkWritesInFlight.add(settled);
    // Backpressure: room for the next chunk before the stream takes more.
    while (inFlightBytes + STREAM_CHUNK_BYTES > STREAM_IN_FLIGHT_BYTES_MAX && inFlight.size > 0) await Promise.race(inFlight);
    if (writeFailure !== undefined) throw failureOf(writeFailure);
  };
  /** Copies `chunk` into the staged chunk, writing each one that fills up. */
  const accept = async (chunk: Uint8Array): Promise<void> => {
    const chunkBytes = grid.chunkBytes;
    // Taken once: a chunk is copied across awaits (each full staged chunk
    // is written before the rest is copied), and a caller that detaches or
    // resizes its buffer meanwhile leaves a shorter chunk, which must fail
    // the stream, not end the copy early (found by a review: a 2 MiB chunk
    // whose buffer was transferred after write() stored 1 MiB, and the
    // stream finished without an error).
    const chunkLength = chunk.length;
    for (let offset = 0; offset < chunkLength && !handedOver; ) {
      if (chunk.length !== chunkLength) {
        throw invalidArgument(`a chunk of ${chunkLength} bytes was detached or resized after write() took it (${offset} bytes copied): nothing of this stream is stored`);
      }
      let targetFill = stagedBytes - (staged.length - 1) * chunkBytes;
      if (staged.length === 0 || targetFill === chunkBytes) {
        staged.push(grid.takeChunk());
        targetFill = 0;
      }
      const target = staged[staged.length - 1];
      const count = Math.min(chunkLength - offset, chunkBytes - targetFill, STREAM_CHUNK_BYTES - stagedBytes);
      target.set(chunk.subarray(offset, offset + count), targetFill);
      stagedBytes += count;
      offset += count;
      if (stagedBytes === STREAM_CHUNK_BYTES) await flushStaged();
    }
  };
  /** Gives the stream's blocks back; resolves once they are free (its data writes settled). */
  const releaseAll = (): Promise<void> => {
    if (handedOver) return Promise.resolve();
    handedOver = true;
    for (const chunk of staged.splice(0)) grid.giveChunk(chunk);
    stagedBytes = 0;
    const value: StoredValue = { kind: 'extents', length: Math.max(length, 1), crc, extents: [...extents], raw: true };
    return journal.abandon({ operations: extents.length > 0 ? [{ keyString, isString, value, existed: false }] : [], dataWrites: writes, dataBlocks: [], payloadBytes: 0 });
  };
  /** The stream's end: its last bytes written, then its put committed. */
  const finish = async (): Promise<void> => {
    try {
      await finishInJournal();
    } finally {
      tracked.done();
    }
  };
  const finishInJournal = async (): Promise<void> => {
    try {
      checkWritable();
      // An empty stream still takes one (zeroed) block: only an extent
      // value can carry the raw flag, and it has at least one block.
      if (stagedBytes > 0 || length === 0) await flushStaged();
      if (writeFailure !== undefined) throw failureOf(writeFailure);
      // Destroyed while its last chunk was written: destroy() gave its
      // extents back (releaseAll), so it must not commit them (found by a
      // review: the put named freed blocks).
      if (handedOver) throw new StoreError('ERR_STORE_CLOSED', 'the write stream was destroyed before its put was committed');
    } catch (error) {
      void releaseAll();
      throw error;
    }
    const value: StoredValue = { kind: 'extents', length, crc, extents: [...extents], raw: true };
    const payloadBytes = COMMIT_HEADER_SIZE + extentPutRecordBytes(keyString.length, extents.length);
    if (payloadBytes > journal.commitPayloadMax) {
      void releaseAll();
      throw new StoreError('ERR_VALUE_TOO_LARGE', `the stream's ${extents.length} extents need ${payloadBytes} bytes of WAL; one commit holds at most ${journal.commitPayloadMax}`);
    }
    // From here the commit path owns the extents (and abandons them itself
    // if it fails); it commits only once every data write has completed.
    handedOver = true;
    onOrdered?.();
    await growthWait.inTurn(() => {
      const committed = journal.enqueue({
        operations: [{ keyString, isString, value, existed: false }],
        dataWrites: writes,
        dataBlocks: [],
        payloadBytes,
      });
      // In the journal: a flush() from now covers it.
      tracked.done();
      return committed;
    });
  };
  const writable: Writable = new Writable({
    highWaterMark: STREAM_CHUNK_BYTES,
    write: (chunk: Buffer, _encoding, callback) => {
      try {
        checkWritable();
      } catch (error) {
        callback(error as Error);
        return;
      }
      // Writable calls write() once at a time: the chunk is taken (and any
      // full staged chunk submitted) before the next one comes.
      accept(chunk).then(
        () => callback(),
        (error: Error) => callback(error),
      );
    },
    final: (callback) => {
      void finish().then(
        () => callback(),
        (error: Error) => callback(error),
      );
    },
    destroy: (error, callback) => {
      // Destroyed before its put was handed to a commit (with or without an
      // error): the blocks written so far belong to nobody. 'close' (and a
      // pipeline's end) comes once they are free again: a write refused for
      // room right after found them still held, and was refused on a capped
      // store or grew an uncapped one (found by a review).
      const released = releaseAll();
      tracked.done();
      released.then(
        () => callback(error),
        () => callback(error),
      );
    },
  });
  // Tracked once nothing above can throw (a bad key): an untracked stream is never waited for.
  const tracked = parts.endingStreams.track(() => writable.writableEnded);
  return writable;
}

/**
 * A readable stream of the stored bytes of `key` (as written, no
 * decoding); a missing key errors the stream with ERR_KEY_NOT_FOUND.
 */
export function createValueReadStream(parts: StreamParts, key: Key): Readable {
  const { state, space } = parts;
  state.checkOpen();
  const keyString = toKeyString(key);
  const isStringKey = typeof key === 'string';
  const lookUp = async (): Promise<IndexEntry | undefined> => {
    const cached = parts.entryNow(keyString);
    if (cached !== NOT_CACHED) return cached;
    try {
      return await parts.tree.get(keyString);
    } catch (error) {
      throw state.closedOr(error);
    }
  };
  // The pin starts with the stream: the entry is looked up under it, so its
  // extents cannot be freed and reused between the lookup and the reads.
  const epoch = space.beginRead();
  let pinned = true;
  const endRead = (): void => {
    if (!pinned) return;
    pinned = false;
    space.endRead(epoch);
  };
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      const entry = await lookUp();
      if (entry === undefined) throw new StoreError('ERR_KEY_NOT_FOUND', `no value under key ${describeKey(keyStringToKey(keyString, isStringKey))}`);
      if (entry.value instanceof Uint8Array) {
        yield Buffer.from(entry.value);
        return;
      }
      yield* extentValueChunks(parts, entry.value);
    } finally {
      endRead();
    }
  }
  const stream = Readable.from(chunks(), { objectMode: false });
  // A stream destroyed before its first read never runs the generator, so
  // its finally never releases the pin: 'close' always comes.
  stream.once('close', endRead);
  return stream;
}

/** One chunk of a read stream: its bytes and the read filling them. */
interface ChunkRead {
  /** The bytes read (a large value's: only those of the value, not the rest of its last block). */
  bytes: Uint8Array;
  /** Bytes of the blocks read. */
  sizeBytes: number;
  read: Promise<void>;
}

/**
 * The stored bytes of an extent value, chunk by chunk (about
 * STREAM_CHUNK_BYTES each). A large value (LARGE_VALUE_BYTES or more) is
 * read straight from the device, bypassing the block cache, with up to
 * STREAM_IN_FLIGHT_BYTES_MAX read ahead of the consumer; a smaller one is
 * one read through the cache. The last chunk is held back until the whole
 * value checked out against its CRC, so a consumer never reaches the end on
 * wrong data. Reads in flight when the consumer stops are waited for before
 * the generator returns, so the caller's read epoch outlives them.
 * REQUIRES: the caller holds a read epoch covering the value.
 */
async function* extentValueChunks(parts: StreamParts, value: ExtentValue): AsyncGenerator<Uint8Array> {
  const { state, grid } = parts;
  const blockSize = parts.blockSize;
  const chunkBlocks = Math.max(1, Math.floor(STREAM_CHUNK_BYTES / blockSize));
  // Each chunk is a call on the store: after close() it is refused, and a
  // read that close() cut short says so (not the device's ERR_FILE_CLOSED).
  const closedOr = async <T>(read: Promise<T>): Promise<T> => {
    try {
      return await read;
    } catch (error) {
      throw state.closedOr(error);
    }
  };
  // The chunks: pieces of at most chunkBlocks of one extent each.
  const pieces: Extent[] = [];
  for (const extent of value.extents) {
    for (let offset = 0; offset < extent.blockCount; offset += chunkBlocks) {
      pieces.push({ startBlock: extent.startBlock + offset, blockCount: Math.min(chunkBlocks, extent.blockCount - offset) });
    }
  }
  const large = value.length >= LARGE_VALUE_BYTES;
  const ahead: ChunkRead[] = [];
  let aheadBytes = 0;
  let nextPiece = 0;
  /** Offset in the value of the next piece. */
  let pieceOffset = 0;
  /** Starts reads of the next pieces while they fit in the read-ahead (always at least one). */
  const readAhead = (): void => {
    while (nextPiece < pieces.length && (ahead.length === 0 || aheadBytes + pieces[nextPiece].blockCount * blockSize <= STREAM_IN_FLIGHT_BYTES_MAX)) {
      const piece = pieces[nextPiece++];
      state.checkOpen();
      let chunk: ChunkRead;
      if (large) {
        const read = grid.readExtents([piece], Math.min(piece.blockCount * blockSize, value.length - pieceOffset), false);
        chunk = { bytes: new Uint8Array(0), sizeBytes: piece.blockCount * blockSize, read: read.then(({ bytes }) => void (chunk.bytes = bytes)) };
      } else {
        const read = grid.readBlocks(piece.startBlock, piece.blockCount);
        chunk = { bytes: new Uint8Array(0), sizeBytes: piece.blockCount * blockSize, read: read.then((bytes) => void (chunk.bytes = bytes)) };
      }
      pieceOffset += piece.blockCount * blockSize;
      chunk.read.catch(() => undefined);
      ahead.push(chunk);
      aheadBytes += chunk.sizeBytes;
    }
  };
  let remaining = value.length;
  let crc = 0;
  try {
    while (ahead.length > 0 || nextPiece < pieces.length) {
      readAhead();
      const chunk = ahead[0];
      await closedOr(chunk.read);
      // A chunk read ahead is still refused after close(): the consumer asks for it now.
      state.checkOpen();
      ahead.shift();
      aheadBytes -= chunk.sizeBytes;
      // The next reads go out before this chunk is checksummed and consumed.
      if (remaining > chunk.bytes.length) readAhead();
      const used = chunk.bytes.subarray(0, Math.min(remaining, chunk.bytes.length));
      remaining -= used.length;
      crc = crc32c(used, crc);
      if (remaining === 0 && crc !== value.crc) {
        throw new StoreCorruptError(
          'data',
          `value of ${value.length} bytes has checksum 0x${crc.toString(16)}, its record says 0x${value.crc.toString(16)} (torn, lost or misdirected write)`,
          value.extents[0].startBlock,
        );
      }
      // An empty value (one zeroed block) yields nothing.
      if (used.length > 0) yield used;
    }
  } finally {
    // Stopped early (consumer gone, or an error): the reads still in flight
    // end before the caller's read epoch does.
    await Promise.allSettled(ahead.map((chunk) => chunk.read));
  }
}

/** One entry in its stored form (BlockStore.storedEntries). */
export interface StoredEntry {
  /** The key, as stored (a string key as a string). */
  key: Key;
  /** Stored raw by a write stream (VALUE_FLAG_RAW), not by the value encoding. */
  raw: boolean;
  /** Bytes of the stored value. */
  sizeBytes: number;
  /**
   * An inline value's stored bytes at once: a view, valid until the
   * iteration moves on. Undefined for an extent value: read chunks().
   */
  bytes: Uint8Array | undefined;
  /**
   * The stored bytes, not decoded: an inline value at once (a copy), an
   * extent value in chunks checked against its CRC (ERR_STORE_CORRUPT
   * before the last chunk if it fails). Valid until the iteration moves on.
   */
  chunks(): AsyncIterable<Uint8Array>;
}

/**
 * Where a storedEntries() iteration is: how many entries it has handed out
 * (the current one is the last), and whether it has ended. An entry's
 * chunks() are read only while it is the current one.
 */
interface StoredEntriesCursor {
  handedOut: number;
  ended: boolean;
}

/** A StoredEntry of a leaf's record: its chunks() made only when asked for. */
class LeafStoredEntry implements StoredEntry {
  readonly key: Key;
  readonly raw: boolean;
  readonly sizeBytes: number;
  readonly bytes: Uint8Array | undefined;
  readonly #parts: StreamParts;
  readonly #extentValue: ExtentValue | undefined;
  readonly #cursor: StoredEntriesCursor;
  /** This entry's place in its iteration (StoredEntriesCursor.handedOut when it was handed out). */
  readonly #position: number;

  constructor(parts: StreamParts, key: Key, value: IndexEntry['value'], cursor: StoredEntriesCursor) {
    this.key = key;
    this.#parts = parts;
    this.#cursor = cursor;
    this.#position = cursor.handedOut;
    if (value instanceof Uint8Array) {
      this.raw = false;
      this.sizeBytes = value.length;
      this.bytes = value;
      this.#extentValue = undefined;
    } else {
      this.raw = value.raw === true;
      this.sizeBytes = value.length;
      this.bytes = undefined;
      this.#extentValue = value;
    }
  }

  /**
   * Refused once the iteration has moved on (a review): an inline value's
   * bytes are a view of a leaf that may be lent and reused after its run,
   * and an extent value's blocks are pinned only until the iteration ends —
   * read later, they could be another value's.
   */
  chunks(): AsyncIterable<Uint8Array> {
    return this.#chunksWhileCurrent();
  }

  // One generator for an inline value (a dump reads one for every entry), a
  // second layer only over an extent value's chunks.
  async *#chunksWhileCurrent(): AsyncGenerator<Uint8Array> {
    this.#checkCurrent();
    if (this.#extentValue === undefined) {
      // An empty value has no chunk (a dump's entry of 0 bytes takes none); a copy: the view goes with the leaf.
      if (this.bytes!.length > 0) yield Buffer.from(this.bytes!);
      return;
    }
    for await (const chunk of extentValueChunks(this.#parts, this.#extentValue)) {
      this.#checkCurrent();
      yield chunk;
    }
  }

  #checkCurrent(): void {
    if (this.#cursor.ended || this.#cursor.handedOut !== this.#position) {
      throw invalidArgument('a stored entry\'s chunks() are read before its iteration moves on: the entry is no longer valid');
    }
  }
}

/**
 * Every entry of the store in its stored form, in key order, over a
 * snapshot taken when iteration starts: a leaf at a time (PageTree.runs,
 * which lends leaves past a scan's share of the cache), so an entry and its
 * views are valid until the iteration moves on.
 */
export async function* storedEntries(parts: StreamParts): AsyncGenerator<StoredEntry> {
  const { state, space, tree } = parts;
  state.checkOpen();
  await parts.replayed();
  state.checkOpen();
  const snapshot = tree.snapshot();
  // The snapshot's pages and values stay readable (no trim, no reuse) until the iteration ends.
  const epoch = space.beginRead();
  const cursor: StoredEntriesCursor = { handedOut: 0, ended: false };
  try {
    for await (const run of tree.runs(snapshot)) {
      const leaf = run.leaf;
      for (let index = run.first; index !== run.end; index += run.step) {
        state.checkOpen();
        const entry = leafEntryAt(leaf, index);
        const key = leaf.page !== undefined ? leaf.page.givenKeyAt(index) : keyStringToKey(leafKeyAt(leaf, index), entry.isString);
        cursor.handedOut++;
        yield new LeafStoredEntry(parts, key, entry.value, cursor);
      }
    }
  } catch (error) {
    throw state.closedOr(error);
  } finally {
    cursor.ended = true;
    space.endRead(epoch);
  }
}
