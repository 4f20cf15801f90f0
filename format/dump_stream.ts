// Dump streams: every key and stored value of a store as one portable,
// versioned, checksummed byte stream (docs/format.md § Dump streams). What
// `ringstore dump` writes and `ringstore load` reads; the backup, migration
// and repair path.
//
//   stream := header | entry* | trailer
//   header := 8 × u8 magic "RINGDUMP" | u16 version | u8 valueEncodingId | u8 flags
//           | u32 blockSize | u32 reserved (0) | u32 headerCrc
//   entry  := u8 kind (1) | u8 flags | u16 keyLength | u64 valueLength | u32 headCrc
//           | keyLength × u8 key | chunk*
//   chunk  := min(DUMP_CHUNK_SIZE, rest) × u8 value bytes | u32 chunkCrc
//   trailer:= u8 kind (2) | 7 × u8 reserved (0) | u64 entryCount | u32 streamCrc
//
// A value is its *stored* bytes: what the store's value encoding made of it,
// or the raw bytes of a write stream (VALUE_FLAG_RAW), never decoded, so a
// dump is lossless whatever the values are. Values are cut into chunks of
// DUMP_CHUNK_SIZE bytes, each with its own checksum, so neither side ever
// holds more than one chunk of a value. The trailer counts the entries and
// checksums the whole stream before it, so a stream cut short, or with
// entries left out or reordered, is refused.
//
// Pure: bytes in, values out. The encoder hands back the bytes to write; the
// decoder takes the bytes as they arrive, in pieces of any size, and hands
// back what they hold. Its verdict on bad bytes is DumpCorruptError
// (ERR_DUMP_CORRUPT), not FormatError: a dump is no structure of a store,
// has no block to name, and is refused with a code of its own.
import assert from 'node:assert/strict';

import { isAllZero, readU64, view, writeU64 } from './bytes.js';
import { BLOCK_SIZE_MAX, BLOCK_SIZE_MIN, KEY_FLAG_STRING, KEY_SIZE_MAX, VALUE_ENCODING_IDS, VALUE_FLAG_RAW } from './constants.js';
import { crc32c } from './crc32c.js';

/** "RINGDUMP" */
export const DUMP_MAGIC = Uint8Array.from([0x52, 0x49, 0x4e, 0x47, 0x44, 0x55, 0x4d, 0x50]);
/** The dump stream format this code writes and reads. Independent of FORMAT_VERSION: a dump outlives the store format it came from. */
export const DUMP_VERSION = 1;
export const DUMP_HEADER_SIZE = 24;
/** An entry's fixed part, before its key. */
export const DUMP_ENTRY_HEAD_SIZE = 16;
export const DUMP_TRAILER_SIZE = 20;
/** Bytes of a chunk's checksum, after its bytes. */
export const DUMP_CHUNK_CRC_SIZE = 4;
/**
 * Value bytes per chunk (the last chunk of a value may be shorter). What one
 * side holds of a value at a time; 4 bytes of checksum per 256 KiB is
 * 0.002% of the stream.
 */
export const DUMP_CHUNK_SIZE = 256 << 10;
export const DUMP_KIND_ENTRY = 1;
export const DUMP_KIND_TRAILER = 2;
/** Header flag bit 0: written by `dump --salvage` from a damaged store (some entries may be missing). */
export const DUMP_FLAG_SALVAGED = 1;
/** The entry flags a dump carries: the same bits as a record's keyFlags. */
const ENTRY_FLAGS_KNOWN = KEY_FLAG_STRING | VALUE_FLAG_RAW;

assert.ok(DUMP_CHUNK_SIZE > 0 && DUMP_CHUNK_SIZE <= 0xffff_ffff);
assert.ok(KEY_SIZE_MAX <= 0xffff, 'keyLength is a u16');

export interface DumpHeader {
  /** VALUE_ENCODING_IDS of the encoding the values were stored with. */
  valueEncodingId: number;
  /** Block size of the store dumped (a hint for the store load makes). */
  blockSize: number;
  /** Written by `dump --salvage`. */
  salvaged: boolean;
}

/** What one decoded piece of the stream holds. Byte arrays are the decoder's own copies. */
export type DumpEvent =
  | { kind: 'header'; header: DumpHeader }
  | { kind: 'entry'; index: number; /** Stream offset of the entry. */ offset: number; key: Uint8Array; keyIsString: boolean; raw: boolean; valueLength: number }
  /** The next bytes of the current entry's value; `last` on the value's final chunk (an empty value has none). */
  | { kind: 'chunk'; bytes: Uint8Array; last: boolean }
  | { kind: 'end'; entryCount: number };

/** ERR_DUMP_CORRUPT: the stream is not a valid dump; says where (byte offset, entry index) and why. */
export class DumpCorruptError extends Error {
  readonly code = 'ERR_DUMP_CORRUPT';
  /** Stream offset of the structure that failed. */
  readonly offset: number;
  /** Index of the entry being read, or undefined in the header or trailer. */
  readonly entryIndex: number | undefined;
  readonly reason: string;
  constructor(reason: string, offset: number, entryIndex?: number) {
    super(`dump stream${entryIndex === undefined ? '' : ` entry ${entryIndex}`} at byte ${offset}: ${reason}`);
    this.name = 'DumpCorruptError';
    this.offset = offset;
    this.entryIndex = entryIndex;
    this.reason = reason;
  }
}

/** Number of chunks of a value of `valueLength` bytes (0 for an empty value). */
export function dumpChunkCount(valueLength: number): number {
  return Math.ceil(valueLength / DUMP_CHUNK_SIZE);
}

/**
 * Writes a dump stream piece by piece: header(), then for each entry entry()
 * and value() until the value's bytes are all given, then end(). Each call
 * returns the bytes to append to the stream. Misuse (a value longer or
 * shorter than announced, a call out of order) is a caller bug: it throws
 * before returning bytes.
 */
export class DumpStreamEncoder {
  #state: 'start' | 'entries' | 'value' | 'ended' = 'start';
  #streamCrc = 0;
  #entryCount = 0;
  /** Value bytes still to come for the current entry. */
  #valueRemaining = 0;
  /** The current chunk: its bytes so far. */
  #chunk: Uint8Array = new Uint8Array(0);
  #chunkFill = 0;

  header(header: DumpHeader): Uint8Array {
    assert.equal(this.#state, 'start', 'header() comes first, once');
    if (!(Object.values(VALUE_ENCODING_IDS) as number[]).includes(header.valueEncodingId)) throw new RangeError(`unknown value encoding id ${header.valueEncodingId}`);
    if (!Number.isInteger(header.blockSize) || !isDumpBlockSize(header.blockSize)) throw new RangeError(`block size ${header.blockSize}`);
    const bytes = new Uint8Array(DUMP_HEADER_SIZE);
    const data = view(bytes);
    bytes.set(DUMP_MAGIC, 0);
    data.setUint16(8, DUMP_VERSION, true);
    data.setUint8(10, header.valueEncodingId);
    data.setUint8(11, header.salvaged ? DUMP_FLAG_SALVAGED : 0);
    data.setUint32(12, header.blockSize, true);
    data.setUint32(20, crc32c(bytes.subarray(0, 20)), true);
    this.#state = 'entries';
    return this.#emit(bytes);
  }

  /** Starts an entry; its `valueLength` bytes follow through value(). */
  entry(key: Uint8Array, keyIsString: boolean, raw: boolean, valueLength: number): Uint8Array {
    assert.equal(this.#state, 'entries', 'entry() after the header and the previous value');
    if (key.length === 0 || key.length > KEY_SIZE_MAX) throw new RangeError(`key of ${key.length} bytes (1 to ${KEY_SIZE_MAX})`);
    if (!Number.isSafeInteger(valueLength) || valueLength < 0) throw new RangeError(`value length ${valueLength}`);
    const bytes = new Uint8Array(DUMP_ENTRY_HEAD_SIZE + key.length);
    const data = view(bytes);
    data.setUint8(0, DUMP_KIND_ENTRY);
    data.setUint8(1, (keyIsString ? KEY_FLAG_STRING : 0) | (raw ? VALUE_FLAG_RAW : 0));
    data.setUint16(2, key.length, true);
    writeU64(data, 4, valueLength);
    bytes.set(key, DUMP_ENTRY_HEAD_SIZE);
    data.setUint32(12, entryHeadCrc(bytes), true);
    this.#entryCount++;
    this.#valueRemaining = valueLength;
    this.#state = valueLength > 0 ? 'value' : 'entries';
    return this.#emit(bytes);
  }

  /**
   * The next bytes of the current entry's value, in pieces of any size;
   * returns the stream bytes of the chunks they complete (maybe none: a
   * chunk is written once whole). Holds at most one chunk.
   */
  value(bytes: Uint8Array): Uint8Array[] {
    assert.equal(this.#state, 'value', 'value() inside an entry with bytes to come');
    if (bytes.length > this.#valueRemaining) throw new RangeError(`${bytes.length} value bytes, ${this.#valueRemaining} announced still to come`);
    const out: Uint8Array[] = [];
    let offset = 0;
    while (offset < bytes.length) {
      if (this.#chunkFill === 0) this.#chunk = new Uint8Array(Math.min(DUMP_CHUNK_SIZE, this.#valueRemaining) + DUMP_CHUNK_CRC_SIZE);
      const chunkLength = this.#chunk.length - DUMP_CHUNK_CRC_SIZE;
      const take = Math.min(chunkLength - this.#chunkFill, bytes.length - offset);
      this.#chunk.set(bytes.subarray(offset, offset + take), this.#chunkFill);
      this.#chunkFill += take;
      offset += take;
      this.#valueRemaining -= take;
      if (this.#chunkFill === chunkLength) {
        view(this.#chunk).setUint32(chunkLength, crc32c(this.#chunk.subarray(0, chunkLength)), true);
        out.push(this.#emit(this.#chunk));
        this.#chunkFill = 0;
      }
    }
    assert.ok(this.#valueRemaining > 0 || this.#chunkFill === 0, 'a value ends on a chunk boundary');
    if (this.#valueRemaining === 0) this.#state = 'entries';
    return out;
  }

  /** The trailer; the stream is complete after it. */
  end(): Uint8Array {
    assert.equal(this.#state, 'entries', 'end() after the last value is complete');
    const bytes = new Uint8Array(DUMP_TRAILER_SIZE);
    const data = view(bytes);
    data.setUint8(0, DUMP_KIND_TRAILER);
    writeU64(data, 8, this.#entryCount);
    data.setUint32(16, crc32c(bytes.subarray(0, 16), this.#streamCrc), true);
    this.#state = 'ended';
    return bytes;
  }

  get entryCount(): number {
    return this.#entryCount;
  }

  #emit(bytes: Uint8Array): Uint8Array {
    this.#streamCrc = crc32c(bytes, this.#streamCrc);
    return bytes;
  }
}

/** An entry head's checksum: bytes [0, 12) and the key, so a damaged key is caught with the length it was read by. */
function entryHeadCrc(head: Uint8Array): number {
  return crc32c(head.subarray(DUMP_ENTRY_HEAD_SIZE), crc32c(head.subarray(0, 12)));
}

/**
 * Reads a dump stream as it arrives: push() the bytes in pieces of any size
 * and take the events they complete; finish() once the input ended. Every
 * structure is checked before it is handed out — the header, each entry
 * head, each chunk — and the trailer checks the count and the checksum of
 * the whole stream. Anything wrong throws DumpCorruptError, and the decoder
 * stays failed. Holds at most one chunk plus one pushed piece.
 *
 * A consumer must treat the stream as valid only once it got the 'end'
 * event (and finish() returned): until then, the next bytes may still
 * reveal a stream cut short, or entries lost or swapped.
 */
export class DumpStreamDecoder {
  /** Bytes pushed and not yet consumed, in the pieces they came in (joined only when a structure spans pieces). */
  #pieces: Uint8Array[] = [];
  #available = 0;
  /** Stream offset of the first byte not yet consumed. */
  #offset = 0;
  #state: 'header' | 'unit' | 'value' | 'ended' | 'failed' = 'header';
  #streamCrc = 0;
  #entryCount = 0;
  #valueRemaining = 0;

  /** Stream bytes consumed into events so far. */
  get offset(): number {
    return this.#offset;
  }

  /** Entries started so far. */
  get entryCount(): number {
    return this.#entryCount;
  }

  push(bytes: Uint8Array): DumpEvent[] {
    assert.notEqual(this.#state, 'failed', 'a failed decoder is not fed again');
    if (bytes.length === 0) return [];
    if (this.#state === 'ended') this.#fail(`at least ${bytes.length} bytes after the trailer`, this.#offset);
    // A private copy: the caller may reuse what it pushed.
    this.#pieces.push(bytes.slice());
    this.#available += bytes.length;
    const events: DumpEvent[] = [];
    try {
      for (let event = this.#next(); event !== undefined; event = this.#next()) events.push(event);
    } catch (error) {
      this.#state = 'failed';
      throw error;
    }
    return events;
  }

  /** The input ended: throws unless the stream ended with its trailer. */
  finish(): void {
    assert.notEqual(this.#state, 'failed', 'a failed decoder is not finished');
    if (this.#state === 'ended') return;
    const inValue = this.#state === 'value';
    const where = this.#state === 'header' ? 'its header' : inValue ? `a chunk of the value of entry ${this.#entryCount - 1}` : 'the next entry or the trailer';
    const pending = this.#available;
    const inEntryHead = this.#state === 'unit' && pending > 0 && this.#pieces[0][0] === DUMP_KIND_ENTRY;
    const entryIndex = inValue ? this.#entryCount - 1 : inEntryHead ? this.#entryCount : undefined;
    this.#fail(`the stream ends ${pending > 0 ? `${pending} bytes into` : 'before'} ${where} (truncated)`, this.#offset, entryIndex);
  }

  #fail(reason: string, offset: number, entryIndex?: number): never {
    this.#state = 'failed';
    throw new DumpCorruptError(reason, offset, entryIndex);
  }

  /**
   * The next `length` unconsumed bytes as one array (not consumed), or
   * undefined if fewer have arrived. Pieces are joined only once enough
   * bytes are there, so each byte is copied a bounded number of times.
   */
  #peek(length: number): Uint8Array | undefined {
    if (this.#available < length) return undefined;
    if (this.#pieces[0].length < length) this.#pieces = [concat(this.#pieces)];
    return this.#pieces[0].subarray(0, length);
  }

  /** Consumes `length` bytes (REQUIRES: #peek(length) returned them); returns them as their own array. */
  #take(length: number): Uint8Array {
    const first = this.#pieces[0];
    assert.ok(first.length >= length, 'take after peek');
    const bytes = first.slice(0, length);
    if (first.length === length) this.#pieces.shift();
    else this.#pieces[0] = first.subarray(length);
    this.#available -= length;
    this.#offset += length;
    return bytes;
  }

  /** The next event the pending bytes complete, or undefined if they complete none. */
  #next(): DumpEvent | undefined {
    if (this.#state === 'header') {
      if (this.#peek(DUMP_HEADER_SIZE) === undefined) {
        if (!isPrefix(concat(this.#pieces), DUMP_MAGIC)) this.#fail('bad magic (not a ringstore dump)', 0);
        return undefined;
      }
      const bytes = this.#take(DUMP_HEADER_SIZE);
      const header = decodeHeader(bytes, (reason) => this.#fail(reason, 0));
      this.#streamCrc = crc32c(bytes);
      this.#state = 'unit';
      return { kind: 'header', header };
    }
    if (this.#state === 'value') {
      const index = this.#entryCount - 1;
      const chunkLength = Math.min(DUMP_CHUNK_SIZE, this.#valueRemaining);
      if (this.#peek(chunkLength + DUMP_CHUNK_CRC_SIZE) === undefined) return undefined;
      const at = this.#offset;
      const bytes = this.#take(chunkLength + DUMP_CHUNK_CRC_SIZE);
      const stored = view(bytes).getUint32(chunkLength, true);
      const computed = crc32c(bytes.subarray(0, chunkLength));
      if (stored !== computed) this.#fail(`value chunk checksum mismatch (stored 0x${hex(stored)}, computed 0x${hex(computed)})`, at, index);
      this.#streamCrc = crc32c(bytes, this.#streamCrc);
      this.#valueRemaining -= chunkLength;
      if (this.#valueRemaining === 0) this.#state = 'unit';
      return { kind: 'chunk', bytes: bytes.subarray(0, chunkLength), last: this.#valueRemaining === 0 };
    }
    if (this.#state === 'ended' || this.#available === 0) {
      if (this.#state === 'ended' && this.#available > 0) this.#fail(`at least ${this.#available} bytes after the trailer`, this.#offset);
      return undefined;
    }
    const at = this.#offset;
    const kind = this.#pieces[0][0];
    if (kind === DUMP_KIND_TRAILER) {
      if (this.#peek(DUMP_TRAILER_SIZE) === undefined) return undefined;
      const bytes = this.#take(DUMP_TRAILER_SIZE);
      const data = view(bytes);
      const stored = data.getUint32(16, true);
      const computed = crc32c(bytes.subarray(0, 16), this.#streamCrc);
      if (stored !== computed) this.#fail(`stream checksum mismatch in the trailer (stored 0x${hex(stored)}, computed 0x${hex(computed)}): entries lost, reordered or damaged`, at);
      if (!isAllZero(bytes, 1, 8)) this.#fail('reserved trailer bytes are not zero', at);
      const entryCount = readU64(data, 8);
      if (entryCount !== this.#entryCount) this.#fail(`the trailer counts ${entryCount} entries, the stream holds ${this.#entryCount}`, at);
      this.#state = 'ended';
      if (this.#available > 0) this.#fail(`at least ${this.#available} bytes after the trailer`, this.#offset);
      return { kind: 'end', entryCount };
    }
    const index = this.#entryCount;
    if (kind !== DUMP_KIND_ENTRY) this.#fail(`unknown kind ${kind} (neither an entry nor the trailer)`, at, index);
    const fixed = this.#peek(DUMP_ENTRY_HEAD_SIZE);
    if (fixed === undefined) return undefined;
    const headData = view(fixed);
    const keyLength = headData.getUint16(2, true);
    // The length is checked before it is used to wait for more bytes, but a
    // wrong length within bounds is caught by the head's checksum.
    if (keyLength === 0 || keyLength > KEY_SIZE_MAX) this.#fail(`a key of ${keyLength} bytes (1 to ${KEY_SIZE_MAX})`, at, index);
    if (this.#peek(DUMP_ENTRY_HEAD_SIZE + keyLength) === undefined) return undefined;
    const head = this.#take(DUMP_ENTRY_HEAD_SIZE + keyLength);
    const data = view(head);
    const stored = data.getUint32(12, true);
    const computed = entryHeadCrc(head);
    if (stored !== computed) this.#fail(`entry checksum mismatch (stored 0x${hex(stored)}, computed 0x${hex(computed)})`, at, index);
    const flags = head[1];
    if ((flags & ~ENTRY_FLAGS_KNOWN) !== 0) this.#fail(`unknown entry flags ${flags}`, at, index);
    const valueLength = readU64(data, 4);
    if (valueLength < 0) this.#fail('value length exceeds 2^53', at, index);
    this.#streamCrc = crc32c(head, this.#streamCrc);
    this.#entryCount++;
    this.#valueRemaining = valueLength;
    this.#state = valueLength > 0 ? 'value' : 'unit';
    return {
      kind: 'entry',
      index,
      offset: at,
      key: head.subarray(DUMP_ENTRY_HEAD_SIZE),
      keyIsString: (flags & KEY_FLAG_STRING) !== 0,
      raw: (flags & VALUE_FLAG_RAW) !== 0,
      valueLength,
    };
  }
}

function decodeHeader(bytes: Uint8Array, fail: (reason: string) => never): DumpHeader {
  const data = view(bytes);
  if (!isPrefix(bytes, DUMP_MAGIC)) fail('bad magic (not a ringstore dump)');
  const stored = data.getUint32(20, true);
  const computed = crc32c(bytes.subarray(0, 20));
  if (stored !== computed) fail(`header checksum mismatch (stored 0x${hex(stored)}, computed 0x${hex(computed)})`);
  const version = data.getUint16(8, true);
  if (version !== DUMP_VERSION) fail(`dump version ${version}; this version reads dump version ${DUMP_VERSION}`);
  const valueEncodingId = data.getUint8(10);
  if (!(Object.values(VALUE_ENCODING_IDS) as number[]).includes(valueEncodingId)) fail(`unknown value encoding ${valueEncodingId}`);
  const flags = data.getUint8(11);
  if ((flags & ~DUMP_FLAG_SALVAGED) !== 0) fail(`unknown header flags ${flags}`);
  if (!isAllZero(bytes, 16, 20)) fail('reserved header bytes are not zero');
  const blockSize = data.getUint32(12, true);
  // A store's block size, or 0 for none: load makes a store of it (found by
  // a review: 3 passed, and load failed on an option the user never gave).
  if (!isDumpBlockSize(blockSize)) fail(`header blockSize ${blockSize} is not 0 or a power of two from ${BLOCK_SIZE_MIN} to ${BLOCK_SIZE_MAX}`);
  return { valueEncodingId, blockSize, salvaged: (flags & DUMP_FLAG_SALVAGED) !== 0 };
}

/** A header's blockSize: 0 (none named) or a store's block size. */
function isDumpBlockSize(blockSize: number): boolean {
  return blockSize === 0 || (blockSize >= BLOCK_SIZE_MIN && blockSize <= BLOCK_SIZE_MAX && (blockSize & (blockSize - 1)) === 0);
}

/** Whether `bytes` starts like `prefix` (as far as it goes). */
function isPrefix(bytes: Uint8Array, prefix: Uint8Array): boolean {
  for (let i = 0; i < Math.min(bytes.length, prefix.length); i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function hex(value: number): string {
  return value.toString(16);
}
