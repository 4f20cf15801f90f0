// Records: the entries of WAL commits and checkpoints (docs/format.md § Records).
//
//   PUT_INLINE   u8 type=1 | u8 keyFlags | u16 keyLength | u32 valueLength | key | value
//   PUT_EXTENTS  u8 type=2 | u8 keyFlags | u16 keyLength | u64 valueLength | u32 valueCrc
//                | u32 extentCount | key | extentCount × (u64 startBlock | u32 blockCount)
//                (keyFlags bit 1, VALUE_FLAG_RAW: the value's bytes are raw, not encoded)
//   DELETE       u8 type=3 | u8 keyFlags | u16 keyLength | key
import { copyBytes, readU64, view, writeU64 } from './bytes.js';
import type { ByteWriter } from './byte_writer.js';
import {
  KEY_FLAG_STRING,
  KEY_SIZE_MAX,
  VALUE_FLAG_RAW,
  RECORD_DELETE,
  RECORD_PUT_EXTENTS,
  RECORD_PUT_INLINE,
  VALUE_EXTENTS_MAX,
} from './constants.js';
import type { Extent } from './extent.js';
import { FormatError, type StructureName } from './format_error.js';

export interface InlineValue {
  readonly kind: 'inline';
  readonly bytes: Uint8Array;
}

export interface ExtentValue {
  readonly kind: 'extents';
  readonly length: number;
  /** CRC32C of the value's bytes (not of the padding). */
  readonly crc: number;
  readonly extents: readonly Extent[];
  /**
   * The bytes were stored as they came (a write stream), not by the store's
   * value encoding: read back as bytes. Absent (not false) when unset.
   */
  readonly raw?: true;
}

export type StoredValue = InlineValue | ExtentValue;

export function writePut(writer: ByteWriter, key: Uint8Array, keyIsString: boolean, value: StoredValue): void {
  checkPut(key, value);
  const { bytes, data, offset } = writer.claim(putRecordBytes(key.length, value));
  writePutAt(bytes, data, offset, key, keyIsString, value);
}

/** Exact bytes of the PUT_INLINE or PUT_EXTENTS record of a key of `keyLength` bytes and `value`. */
export function putRecordBytes(keyLength: number, value: StoredValue): number {
  return value.kind === 'inline' ? inlinePutRecordBytes(keyLength, value.bytes.length) : extentPutRecordBytes(keyLength, value.extents.length);
}

/** Exact bytes of the PUT_INLINE record of a key of `keyLength` bytes and a value of `valueLength`. */
export function inlinePutRecordBytes(keyLength: number, valueLength: number): number {
  return PUT_INLINE_HEADER_BYTES + keyLength + valueLength;
}

/** Exact bytes of the PUT_EXTENTS record of a key of `keyLength` bytes and a value of `extentCount` extents. */
export function extentPutRecordBytes(keyLength: number, extentCount: number): number {
  return PUT_EXTENTS_HEADER_BYTES + keyLength + extentCount * RECORD_EXTENT_BYTES;
}

/** Exact bytes of the DELETE record of a key of `keyLength` bytes. */
export function deleteRecordBytes(keyLength: number): number {
  return DELETE_HEADER_BYTES + keyLength;
}

/**
 * Refuses (RangeError, a caller bug) a put record that cannot be stored:
 * a key of 0 or over KEY_SIZE_MAX bytes, an extent value whose length is
 * not an integer from 0 to 2^53 - 1, without extents, with too many, or
 * with an extent a record cannot hold. Encoders check every record with it
 * before they write a byte, so a refused page or commit leaves its target
 * untouched.
 */
export function checkPut(key: Uint8Array, value: StoredValue): void {
  checkKey(key);
  if (value.kind === 'inline') return;
  if (!Number.isSafeInteger(value.length) || value.length < 0) throw new RangeError(`an extent value's length is an integer from 0 to 2^53 - 1, got ${value.length}`);
  if (value.extents.length === 0 || value.extents.length > VALUE_EXTENTS_MAX) {
    throw new RangeError(`an extent value has 1 to ${VALUE_EXTENTS_MAX} extents, got ${value.extents.length}`);
  }
  for (const extent of value.extents) {
    if (!Number.isSafeInteger(extent.startBlock) || extent.startBlock < 0 || !Number.isInteger(extent.blockCount) || extent.blockCount < 1 || extent.blockCount > 0xffffffff) {
      throw new RangeError(`extent ${extent.startBlock}+${extent.blockCount} cannot be stored (1 to 2^32-1 blocks)`);
    }
  }
}

/**
 * Lays out a checked put record (checkPut) at `offset` of `target` (with
 * `data` a view over all of it); returns the offset after it. The one
 * definition of the record layout: WAL commits and tree leaves use it.
 */
export function writePutAt(target: Uint8Array, data: DataView, offset: number, key: Uint8Array, keyIsString: boolean, value: StoredValue): number {
  if (value.kind === 'inline') return writeInlinePutAt(target, offset, key, keyIsString, value.bytes);
  const flags = keyIsString ? KEY_FLAG_STRING : 0;
  data.setUint8(offset, RECORD_PUT_EXTENTS);
  data.setUint8(offset + 1, value.raw === true ? flags | VALUE_FLAG_RAW : flags);
  data.setUint16(offset + 2, key.length, true);
  writeU64(data, offset + 4, value.length);
  data.setUint32(offset + 12, value.crc >>> 0, true);
  data.setUint32(offset + 16, value.extents.length, true);
  offset = copyBytes(target, offset + 20, key);
  for (const extent of value.extents) {
    writeU64(data, offset, extent.startBlock);
    data.setUint32(offset + 8, extent.blockCount, true);
    offset += 12;
  }
  return offset;
}

/**
 * writePutAt of an inline value, with no DataView: its header's fields are
 * stored byte by byte (little-endian), so a writer of leaf records needs no
 * view of its page (one made a page written was ~0.7 % of a random load's
 * CPU, docs/benchmarks.md, "Session 35"). REQUIRES: checked (checkPut), the
 * record ends within `target`, and `valueBytes` is under 2^32 bytes.
 */
export function writeInlinePutAt(target: Uint8Array, offset: number, key: Uint8Array, keyIsString: boolean, valueBytes: Uint8Array): number {
  const keyLength = key.length;
  const valueLength = valueBytes.length;
  target[offset] = RECORD_PUT_INLINE;
  target[offset + 1] = keyIsString ? KEY_FLAG_STRING : 0;
  target[offset + 2] = keyLength & 0xff;
  target[offset + 3] = keyLength >>> 8;
  target[offset + 4] = valueLength & 0xff;
  target[offset + 5] = (valueLength >>> 8) & 0xff;
  target[offset + 6] = (valueLength >>> 16) & 0xff;
  target[offset + 7] = valueLength >>> 24;
  return copyBytes(target, copyBytes(target, offset + PUT_INLINE_HEADER_BYTES, key), valueBytes);
}

export function writeDelete(writer: ByteWriter, key: Uint8Array, keyIsString: boolean): void {
  checkKey(key);
  writer.u8(RECORD_DELETE);
  writer.u8(keyIsString ? KEY_FLAG_STRING : 0);
  writer.u16(key.length);
  writer.raw(key);
}

function checkKey(key: Uint8Array): void {
  if (key.length === 0 || key.length > KEY_SIZE_MAX) throw new RangeError(`key of ${key.length} bytes (1 to ${KEY_SIZE_MAX})`);
}

/** What a record visitor receives. Key and inline value bytes are views into the payload. */
export interface RecordVisitor {
  put(key: Uint8Array, keyIsString: boolean, value: StoredValue): void;
  delete(key: Uint8Array, keyIsString: boolean): void;
}

/** Bytes of a record before its key: PUT_INLINE, PUT_EXTENTS and DELETE (see the table above). */
export const PUT_INLINE_HEADER_BYTES = 8;
export const PUT_EXTENTS_HEADER_BYTES = 20;
const DELETE_HEADER_BYTES = 4;
/** Bytes of one extent of a PUT_EXTENTS record. */
export const RECORD_EXTENT_BYTES = 12;

/**
 * Checks the record `index` at `offset` of `payload`, whose records end at
 * `limit`: its type, flags, key length, that it is not truncated, and its
 * extents (each non-empty, and together the blocks a value of its length
 * takes when `blockSize` is given). Returns the offset after it. Throws the
 * FormatError readRecords throws for it. Allocates nothing, so a reader
 * can check a page's records without making views of them (TreePages).
 */
export function checkRecordAt(
  payload: Uint8Array,
  data: DataView,
  offset: number,
  limit: number,
  index: number,
  structure: StructureName,
  blockIndex?: number,
  blockSize?: number,
): number {
  // No closure for the failures: a leaf read checks every record of its
  // page, and two closures a record were 40 % of what a cold get allocated.
  if (offset + 4 > limit) recordTruncated(structure, blockIndex, offset, limit);
  const type = payload[offset];
  const flags = payload[offset + 1];
  const keyLength = data.getUint16(offset + 2, true);
  // VALUE_FLAG_RAW belongs to extent values only: the engine keeps no
  // flag for inline values (a raw value is never inline).
  const knownFlags = type === RECORD_PUT_EXTENTS ? KEY_FLAG_STRING | VALUE_FLAG_RAW : KEY_FLAG_STRING;
  if ((flags & ~knownFlags) !== 0) recordFailure(structure, blockIndex, `${index} has unknown key flags ${flags}`);
  if (keyLength === 0 || keyLength > KEY_SIZE_MAX) recordFailure(structure, blockIndex, `${index} has a key of ${keyLength} bytes`);
  if (type === RECORD_PUT_INLINE) {
    if (offset + PUT_INLINE_HEADER_BYTES > limit) recordTruncated(structure, blockIndex, offset, limit);
    const valueLength = data.getUint32(offset + 4, true);
    offset += PUT_INLINE_HEADER_BYTES;
    if (offset + keyLength + valueLength > limit) recordTruncated(structure, blockIndex, offset, limit);
    return offset + keyLength + valueLength;
  }
  if (type === RECORD_PUT_EXTENTS) {
    if (offset + PUT_EXTENTS_HEADER_BYTES > limit) recordTruncated(structure, blockIndex, offset, limit);
    const length = readU64(data, offset + 4);
    const extentCount = data.getUint32(offset + 16, true);
    if (length < 0) recordFailure(structure, blockIndex, `${index} has a value length beyond 2^53`);
    if (extentCount === 0 || extentCount > VALUE_EXTENTS_MAX) recordFailure(structure, blockIndex, `${index} has ${extentCount} extents`);
    offset += PUT_EXTENTS_HEADER_BYTES;
    if (offset + keyLength + extentCount * RECORD_EXTENT_BYTES > limit) recordTruncated(structure, blockIndex, offset, limit);
    offset += keyLength;
    let blocks = 0;
    for (let e = 0; e < extentCount; e++) {
      const startBlock = readU64(data, offset);
      const blockCount = data.getUint32(offset + 8, true);
      if (startBlock < 0 || blockCount === 0) recordFailure(structure, blockIndex, `${index} has a bad extent ${e}`);
      blocks += blockCount;
      offset += RECORD_EXTENT_BYTES;
    }
    if (blockSize !== undefined && (blocks * blockSize < length || (blocks - 1) * blockSize >= Math.max(length, 1))) {
      recordFailure(structure, blockIndex, `${index}: ${blocks} blocks do not fit a value of ${length} bytes`);
    }
    return offset;
  }
  if (type === RECORD_DELETE) {
    offset += DELETE_HEADER_BYTES;
    if (offset + keyLength > limit) recordTruncated(structure, blockIndex, offset, limit);
    return offset + keyLength;
  }
  return recordFailure(structure, blockIndex, `${index} has unknown type ${type}`);
}

function recordFailure(structure: StructureName, blockIndex: number | undefined, reason: string): never {
  throw new FormatError(structure, `record ${reason}`, blockIndex);
}

function recordTruncated(structure: StructureName, blockIndex: number | undefined, offset: number, limit: number): never {
  return recordFailure(structure, blockIndex, `truncated at byte ${offset} of ${limit}`);
}

/**
 * The value of the checked PUT_EXTENTS record at `offset` (checkRecordAt
 * passed it), whose key is `keyLength` bytes.
 */
export function extentValueAt(data: DataView, offset: number, flags: number, keyLength: number): ExtentValue {
  const length = readU64(data, offset + 4);
  const crc = data.getUint32(offset + 12, true);
  const extentCount = data.getUint32(offset + 16, true);
  let at = offset + PUT_EXTENTS_HEADER_BYTES + keyLength;
  const extents: Extent[] = new Array(extentCount);
  for (let e = 0; e < extentCount; e++) {
    extents[e] = { startBlock: readU64(data, at), blockCount: data.getUint32(at + 8, true) };
    at += RECORD_EXTENT_BYTES;
  }
  return (flags & VALUE_FLAG_RAW) !== 0 ? { kind: 'extents', length, crc, extents, raw: true } : { kind: 'extents', length, crc, extents };
}

/**
 * Checks `count` records of `payload` from `offset` (checkRecordAt, so the
 * same reasons as readRecords) and returns where each starts, followed by
 * where the last ends: one number a record, no views, for a reader that
 * decodes records later, or only some of them (recordKeyStart,
 * recordValueAt).
 */
export function scanRecords(
  payload: Uint8Array,
  offset: number,
  count: number,
  structure: StructureName,
  blockIndex?: number,
  blockSize?: number,
): number[] {
  const data = view(payload);
  // Grown, not sized by `count`: a damaged count fails at its first missing record, as in readRecords.
  const starts: number[] = [];
  for (let i = 0; i < count; i++) {
    starts.push(offset);
    offset = checkRecordAt(payload, data, offset, payload.length, i, structure, blockIndex, blockSize);
  }
  starts.push(offset);
  return starts;
}

/** Where the key of the checked record at `offset` starts. */
export function recordKeyStart(payload: Uint8Array, offset: number): number {
  const type = payload[offset];
  return offset + (type === RECORD_PUT_INLINE ? PUT_INLINE_HEADER_BYTES : type === RECORD_PUT_EXTENTS ? PUT_EXTENTS_HEADER_BYTES : DELETE_HEADER_BYTES);
}

/** The key length of the checked record at `offset`. */
export function recordKeyLength(payload: Uint8Array, offset: number): number {
  return payload[offset + 2] | (payload[offset + 3] << 8);
}

/** Whether the key of the checked record at `offset` was a string. */
export function recordKeyIsString(payload: Uint8Array, offset: number): boolean {
  return (payload[offset + 1] & KEY_FLAG_STRING) !== 0;
}

/**
 * The value of the checked record at `offset`, which ends at `end`
 * (scanRecords' next start): a view of the payload for an inline value,
 * undefined for a delete.
 */
export function recordValueAt(payload: Uint8Array, data: DataView, offset: number, end: number): StoredValue | undefined {
  const type = payload[offset];
  if (type === RECORD_DELETE) return undefined;
  const keyLength = recordKeyLength(payload, offset);
  if (type === RECORD_PUT_INLINE) return { kind: 'inline', bytes: payload.subarray(offset + PUT_INLINE_HEADER_BYTES + keyLength, end) };
  return extentValueAt(data, offset, payload[offset + 1], keyLength);
}

/**
 * Decodes `count` records from `payload` starting at `offset`, calling the
 * visitor for each; returns the offset after the last. A truncated or
 * malformed record throws FormatError naming `structure` and `blockIndex`.
 */
export function readRecords(
  payload: Uint8Array,
  offset: number,
  count: number,
  visitor: RecordVisitor,
  structure: StructureName,
  blockIndex?: number,
  blockSize?: number,
): number {
  const data = view(payload);
  for (let i = 0; i < count; i++) {
    const end = checkRecordAt(payload, data, offset, payload.length, i, structure, blockIndex, blockSize);
    const type = payload[offset];
    const flags = payload[offset + 1];
    const keyLength = data.getUint16(offset + 2, true);
    const keyIsString = (flags & KEY_FLAG_STRING) !== 0;
    if (type === RECORD_PUT_INLINE) {
      const keyStart = offset + PUT_INLINE_HEADER_BYTES;
      visitor.put(payload.subarray(keyStart, keyStart + keyLength), keyIsString, { kind: 'inline', bytes: payload.subarray(keyStart + keyLength, end) });
    } else if (type === RECORD_PUT_EXTENTS) {
      const keyStart = offset + PUT_EXTENTS_HEADER_BYTES;
      visitor.put(payload.subarray(keyStart, keyStart + keyLength), keyIsString, extentValueAt(data, offset, flags, keyLength));
    } else {
      visitor.delete(payload.subarray(end - keyLength, end), keyIsString);
    }
    offset = end;
  }
  return offset;
}
