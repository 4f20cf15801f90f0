// Value streams: storing and reading one value of any size without holding
// it in memory. A write stream writes its bytes to extents as they arrive and
// commits one put through the journal when it finishes; a read stream reads
// the extents chunk by chunk and checks the value's checksum before its end.
import { Readable, Writable } from 'node:stream';

import { crc32c } from '../format/crc32c.js';
import { VALUE_EXTENTS_MAX } from '../format/constants.js';
import type { Extent } from '../format/extent.js';
import type { ExtentValue, StoredValue } from '../format/records.js';
import type { DataBlock, Grid } from './grid.js';
import type { Journal } from './journal.js';
import { keyStringToKey, toKeyString, type Key } from './key_codec.js';
import { NOT_CACHED, type PageTree } from './page_tree.js';
import type { IndexEntry } from './store_index.js';
import { VALUE_EXTENTS_PER_PUT_MAX, type Space } from './space.js';
import { describeKey } from './store_arguments.js';
import { StoreCorruptError, StoreError } from './store_error.js';
import { GROWTH_ATTEMPTS_MAX, type StoreGrowth } from './store_growth.js';
import type { StoreState } from './store_state.js';

/** Bytes a write stream buffers before it writes them to its extents. */
const STREAM_CHUNK_BYTES = 1 << 20;

/** The parts of a store its streams use. */
export interface StreamParts {
  blockSize: number;
  state: StoreState;
  tree: PageTree;
  space: Space;
  grid: Grid;
  journal: Journal;
  growth: StoreGrowth;
}

/**
 * A writable stream storing a value of any size under `key`; the put
 * commits (durably) when the stream finishes. The bytes are stored as they
 * are and marked raw (VALUE_FLAG_RAW).
 */
export function createValueWriteStream(parts: StreamParts, key: Key): Writable {
  const { state, space, grid, journal, growth } = parts;
  state.checkWritable();
  const keyString = toKeyString(key);
  const isString = typeof key === 'string';
  const blockSize = parts.blockSize;
  const extents: Extent[] = [];
  let crc = 0;
  let length = 0;
  let chunks: Buffer[] = [];
  let chunkBytes = 0;
  const writes: Promise<void>[] = [];
  const dataBlocks: DataBlock[] = [];
  /** Blocks for the stream's data; with no room, the store grows first where it can. */
  const allocate = async (blockCount: number, extentsMax: number): Promise<Extent[]> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return space.allocate(blockCount, extentsMax);
      } catch (error) {
        if (!(error instanceof StoreError && error.code === 'ERR_STORE_FULL')) throw error;
        if (attempt >= GROWTH_ATTEMPTS_MAX || !(await growth.grow(space.shortfallForPuts(1, 0, blockCount)))) throw growth.refusal(error);
        state.checkWritable();
      }
    }
  };
  const flushChunk = async (final: boolean): Promise<void> => {
    const whole = final ? chunkBytes : Math.floor(chunkBytes / blockSize) * blockSize;
    if (whole === 0) return;
    const allocated = await allocate(Math.ceil(whole / blockSize), VALUE_EXTENTS_PER_PUT_MAX);
    const bytes = Buffer.concat(chunks, chunkBytes);
    const head = bytes.subarray(0, whole);
    crc = crc32c(head, crc);
    length += whole;
    extents.push(...allocated);
    if (extents.length > VALUE_EXTENTS_MAX) throw new StoreError('ERR_STORE_FULL', 'free space is too fragmented for this stream');
    writes.push(...grid.writeExtentData(head, allocated, dataBlocks));
    const rest = bytes.subarray(whole);
    chunks = rest.length > 0 ? [Buffer.from(rest)] : [];
    chunkBytes = rest.length;
  };
  let handedOver = false;
  const releaseAll = (): void => {
    if (handedOver) return;
    handedOver = true;
    const value: StoredValue = { kind: 'extents', length: Math.max(length, 1), crc, extents: [...extents], raw: true };
    void journal.abandon({ operations: extents.length > 0 ? [{ keyString, isString, value, existed: false }] : [], dataWrites: writes, dataBlocks, payloadBytes: 0 });
  };
  /** The stream's end: its last bytes written, then its put committed. */
  const finish = async (): Promise<void> => {
    try {
      state.checkWritable();
      await flushChunk(true);
      if (length === 0) {
        // An empty stream still takes one (zeroed) block: only an extent
        // value can carry the raw flag, and it has at least one block.
        const allocated = await allocate(1, 1);
        extents.push(...allocated);
        writes.push(...grid.writeExtentData(new Uint8Array(0), allocated, dataBlocks));
      }
    } catch (error) {
      releaseAll();
      throw error;
    }
    const value: StoredValue = { kind: 'extents', length, crc, extents: [...extents], raw: true };
    const payloadBytes = 64 + keyString.length + extents.length * 12;
    if (payloadBytes > journal.commitPayloadMax) {
      releaseAll();
      throw new StoreError('ERR_VALUE_TOO_LARGE', `the stream's ${extents.length} extents need ${payloadBytes} bytes of WAL; one commit holds at most ${journal.commitPayloadMax}`);
    }
    // From here the commit path owns the extents (and abandons them itself if it fails).
    handedOver = true;
    await journal.enqueue({
      operations: [{ keyString, isString, value, existed: false }],
      dataWrites: writes,
      dataBlocks,
      payloadBytes,
    });
  };
  return new Writable({
    highWaterMark: STREAM_CHUNK_BYTES,
    write: (chunk: Buffer, _encoding, callback) => {
      try {
        state.checkWritable();
        chunks.push(chunk);
        chunkBytes += chunk.length;
        if (chunkBytes < STREAM_CHUNK_BYTES) {
          callback();
          return;
        }
        // Writable calls write() once at a time: the chunk is flushed before the next one comes.
        flushChunk(false).then(
          () => callback(),
          (error: Error) => callback(error),
        );
      } catch (error) {
        callback(error as Error);
      }
    },
    final: (callback) => {
      void finish().then(
        () => callback(),
        (error: Error) => callback(error),
      );
    },
    destroy: (error, callback) => {
      // Destroyed before its put was handed to a commit (with or without an
      // error): the blocks written so far belong to nobody.
      releaseAll();
      callback(error);
    },
  });
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
    const cached = parts.tree.getCached(keyString);
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

/**
 * The stored bytes of an extent value, chunk by chunk (about
 * STREAM_CHUNK_BYTES each). The last chunk is held back until the whole
 * value checked out against its CRC, so a consumer never reaches the end on
 * wrong data. REQUIRES: the caller holds a read epoch covering the value.
 */
async function* extentValueChunks(parts: StreamParts, value: ExtentValue): AsyncGenerator<Uint8Array> {
  const { state, grid } = parts;
  const chunkBlocks = Math.max(1, Math.floor(STREAM_CHUNK_BYTES / parts.blockSize));
  // Each chunk is a call on the store: after close() it is refused, and a
  // read that close() cut short says so (not the device's ERR_FILE_CLOSED).
  const readBlocks = async (start: number, count: number): Promise<Uint8Array> => {
    state.checkOpen();
    try {
      return await grid.readBlocks(start, count);
    } catch (error) {
      throw state.closedOr(error);
    }
  };
  let remaining = value.length;
  let crc = 0;
  for (const extent of value.extents) {
    for (let offset = 0; offset < extent.blockCount; offset += chunkBlocks) {
      const bytes = await readBlocks(extent.startBlock + offset, Math.min(chunkBlocks, extent.blockCount - offset));
      const used = bytes.subarray(0, Math.min(remaining, bytes.length));
      remaining -= used.length;
      crc = crc32c(used, crc);
      if (remaining === 0 && crc !== value.crc) {
        throw new StoreCorruptError(
          'data',
          `value of ${value.length} bytes has checksum 0x${crc.toString(16)}, its record says 0x${value.crc.toString(16)}`,
          value.extents[0].startBlock,
        );
      }
      // An empty value (one zeroed block) yields nothing.
      if (used.length > 0) yield used;
    }
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
   * The stored bytes, not decoded: an inline value at once, an extent value
   * in chunks checked against its CRC (ERR_STORE_CORRUPT before the last
   * chunk if it fails). Valid until the iteration moves on.
   */
  chunks(): AsyncIterable<Uint8Array>;
}

/** Every entry of the store in its stored form, in key order, over a snapshot taken when iteration starts. */
export async function* storedEntries(parts: StreamParts): AsyncGenerator<StoredEntry> {
  const { state, space, tree } = parts;
  state.checkOpen();
  const snapshot = tree.snapshot();
  // The snapshot's pages and values stay readable (no trim, no reuse) until the iteration ends.
  const epoch = space.beginRead();
  try {
    for await (const [keyString, entry] of tree.entries(snapshot)) {
      state.checkOpen();
      const key = keyStringToKey(keyString, entry.isString);
      const value = entry.value;
      if (value instanceof Uint8Array) {
        yield { key, raw: false, sizeBytes: value.length, chunks: async function* () { yield Buffer.from(value); } };
      } else {
        yield { key, raw: value.raw === true, sizeBytes: value.length, chunks: () => extentValueChunks(parts, value) };
      }
    }
  } catch (error) {
    throw state.closedOr(error);
  } finally {
    space.endRead(epoch);
  }
}
