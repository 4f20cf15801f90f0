// Tree pages: the nodes of the store's copy-on-write B+tree (docs/format.md
// § Tree pages). A checkpoint writes them; recovery and reads decode them.
//
//   page   := u32 magic "RPAG" | u32 crc32c | u64 address | u64 checkpointSequence
//           | u32 storeTag | u8 kind | u8 level | u16 entryCount | u32 usedBytes
//           | 12 × u8 reserved (0) | usedBytes × u8 entries | (pageSize − 48 − usedBytes) × u8 (0)
//   leaf   entries := entryCount × one of { PUT_INLINE, PUT_EXTENTS }, keys strictly ascending
//   branch entries := entryCount × (u64 childBlock | u32 childCrc | u16 keyLength | keyLength × u8 separator)
//
// A page is pageSizeFor(B) bytes: one block, or several small blocks. The
// header names the block the page was written to, the checkpoint that wrote
// it and the store, and its parent holds its CRC: together they tell bit rot
// and torn writes (the page's own CRC), misdirected writes (the address),
// another store's page (the tag) and lost writes (an intact older page whose
// CRC is not the one the parent expects) apart.
//
// Pure: bytes in, values out. The codec checks each page on its own; that
// separators bound the keys of their subtrees, and that no two pages or
// values share blocks, is the tree's and the allocator's business.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';

import { readU64, view, writeU64 } from './bytes.js';
import {
  BLOCK_SIZE_MAX,
  BLOCK_SIZE_MIN,
  KEY_FLAG_STRING,
  KEY_SIZE_MAX,
  PAGE_HEADER_SIZE,
  PAGE_KIND_BRANCH,
  PAGE_KIND_LEAF,
  PAGE_MAGIC,
  PAGE_SIZE_MIN,
  RECORD_PUT_EXTENTS,
  RECORD_PUT_INLINE,
  TREE_LEVELS_MAX,
} from './constants.js';
import { crc32c } from './crc32c.js';
import { FormatError } from './format_error.js';
import { checkedKeyStringBytesNow, keyStringBytesNow } from './key_scratch.js';
import {
  checkPut,
  checkRecordAt,
  extentValueAt,
  PUT_EXTENTS_HEADER_BYTES,
  PUT_INLINE_HEADER_BYTES,
  RECORD_EXTENT_BYTES,
  writeInlinePutAt,
  writePutAt,
  type ExtentValue,
  type StoredValue,
} from './records.js';

export interface LeafEntry {
  key: Uint8Array;
  keyIsString: boolean;
  value: StoredValue;
}

export interface BranchChild {
  /** Absolute block index of the child page's first block. */
  block: number;
  /** The child page's CRC (its header's `crc` field), checked when the child is read. */
  crc: number;
  /** undefined for child 0 */
  separator: Uint8Array | undefined;
}

/** What the header says about where and by whom a page was written. */
export interface PageStamp {
  /** Absolute block index of the page's first block. */
  address: number;
  /** Commit sequence of the checkpoint that writes the page. */
  checkpointSequence: number;
  /** The store's random tag (as in frames and the superblock). */
  storeTag: number;
}

/** What the reader knows about a page before reading it: from its parent (or the superblock) and the store. */
export interface PageExpectation {
  /** The absolute block the page was read from. */
  address: number;
  storeTag: number;
  /** The CRC the parent holds for this page. */
  crc: number;
  /** The level the parent's level implies (the parent's level − 1; for the root, the tree's height − 1). */
  level: number;
  /** child blocks and extents must lie in [dataStartBlock, blockCount) */
  dataStartBlock: number;
  blockCount: number;
  blockSize: number;
}

export type DecodedPage =
  | { kind: 'leaf'; checkpointSequence: number; entries: LeafEntry[] }
  | { kind: 'branch'; level: number; checkpointSequence: number; children: BranchChild[] };

const OFFSET_MAGIC = 0;
const OFFSET_CRC = 4;
/** The CRC covers everything after itself: [8, pageSize). */
const OFFSET_CRC_START = 8;
const OFFSET_ADDRESS = 8;
const OFFSET_CHECKPOINT_SEQUENCE = 16;
const OFFSET_STORE_TAG = 24;
const OFFSET_KIND = 28;
const OFFSET_LEVEL = 29;
const OFFSET_ENTRY_COUNT = 30;
const OFFSET_USED_BYTES = 32;
const OFFSET_RESERVED = 36;

/** Largest page: one block of the largest block size. */
const PAGE_SIZE_MAX = Math.max(BLOCK_SIZE_MAX, PAGE_SIZE_MIN);
/** entryCount is a u16. */
const PAGE_ENTRY_COUNT_MAX = 0xffff;
/** A branch child without its separator: u64 childBlock | u32 childCrc | u16 keyLength. */
const BRANCH_CHILD_HEADER_SIZE = 14;
/** The smallest leaf record: PUT_INLINE of a 1-byte key and an empty value. */
const LEAF_ENTRY_SIZE_MIN = PUT_INLINE_HEADER_BYTES + 1;

// The header's fields hold every page this codec can write.
assert.equal(OFFSET_RESERVED + 12, PAGE_HEADER_SIZE);
assert.ok(isPowerOfTwo(PAGE_SIZE_MIN) && PAGE_SIZE_MIN >= BLOCK_SIZE_MIN && PAGE_SIZE_MIN <= PAGE_SIZE_MAX);
assert.ok(Math.floor((PAGE_SIZE_MAX - PAGE_HEADER_SIZE) / LEAF_ENTRY_SIZE_MIN) <= PAGE_ENTRY_COUNT_MAX, 'entryCount (u16) counts a full leaf of the smallest records');
// The smallest page holds a branch of 4 children with separators of the
// largest key, so the tree can always split an overfull branch (5 children)
// into two branches of at least 2 children each.
assert.ok(PAGE_HEADER_SIZE + BRANCH_CHILD_HEADER_SIZE + 3 * (BRANCH_CHILD_HEADER_SIZE + KEY_SIZE_MAX) <= PAGE_SIZE_MIN);
assert.ok(TREE_LEVELS_MAX >= 2 && TREE_LEVELS_MAX <= 0x100, 'level is a u8');

function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0;
}

/** Bytes of a tree page in a store of `blockSize`-byte blocks: one block, and at least PAGE_SIZE_MIN. */
export function pageSizeFor(blockSize: number): number {
  if (!isPowerOfTwo(blockSize) || blockSize < BLOCK_SIZE_MIN || blockSize > BLOCK_SIZE_MAX) {
    throw new RangeError(`block size ${blockSize} is not a power of two from ${BLOCK_SIZE_MIN} to ${BLOCK_SIZE_MAX}`);
  }
  return Math.max(blockSize, PAGE_SIZE_MIN);
}

/** Bytes of entries a page of `pageSize` bytes can hold. */
export function pageCapacityBytes(pageSize: number): number {
  checkPageSize(pageSize);
  return pageSize - PAGE_HEADER_SIZE;
}

/** Exact encoded size of one leaf record (a PUT_INLINE or PUT_EXTENTS record). */
export function leafEntryBytes(keyLength: number, value: StoredValue): number {
  return value.kind === 'inline' ? leafInlineEntryBytes(keyLength, value.bytes.length) : PUT_EXTENTS_HEADER_BYTES + keyLength + RECORD_EXTENT_BYTES * value.extents.length;
}

/** leafEntryBytes of an inline value of `valueLength` bytes, for callers that hold the bytes without a StoredValue around them. */
export function leafInlineEntryBytes(keyLength: number, valueLength: number): number {
  return PUT_INLINE_HEADER_BYTES + keyLength + valueLength;
}

/** Exact encoded size of one branch child (0 for child 0's absent separator). */
export function branchChildBytes(separatorLength: number): number {
  return BRANCH_CHILD_HEADER_SIZE + separatorLength;
}

function checkPageSize(pageSize: number): void {
  if (!isPowerOfTwo(pageSize) || pageSize < PAGE_SIZE_MIN || pageSize > PAGE_SIZE_MAX) {
    throw new RangeError(`page size ${pageSize} is not a power of two from ${PAGE_SIZE_MIN} to ${PAGE_SIZE_MAX}`);
  }
}

function checkStamp(stamp: PageStamp): void {
  if (!Number.isSafeInteger(stamp.address) || stamp.address < 0) throw new RangeError(`page address ${stamp.address}`);
  if (!Number.isSafeInteger(stamp.checkpointSequence) || stamp.checkpointSequence < 0) {
    throw new RangeError(`page checkpointSequence ${stamp.checkpointSequence}`);
  }
  if (!isU32(stamp.storeTag)) throw new RangeError(`page storeTag ${stamp.storeTag} is not a u32`);
}

function isU32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
}

/** memcmp order: bytewise, a proper prefix first. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Zeroes to compare tails and reserved bytes against (one memcmp instead of a loop per byte). */
const ZEROS = new Uint8Array(PAGE_SIZE_MAX);

/** Up to this many bytes isZero() checks in a loop; more, with one native compare. */
const IS_ZERO_LOOP_BYTES_MAX = 64;

function isZero(bytes: Uint8Array, start: number, end: number): boolean {
  // A few bytes (the header's reserved ones, on every page read) are
  // checked in place: the two views a compare takes cost more than they do.
  if (end - start <= IS_ZERO_LOOP_BYTES_MAX) {
    for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
    return true;
  }
  return Buffer.compare(bytes.subarray(start, end), ZEROS.subarray(0, end - start)) === 0;
}

/** Writes the header fields (all but the crc) into a zeroed `target`. */
function writeHeader(target: Uint8Array, stamp: PageStamp, kind: number, level: number, entryCount: number, usedBytes: number): DataView {
  const data = view(target);
  data.setUint32(OFFSET_MAGIC, PAGE_MAGIC, true);
  writeU64(data, OFFSET_ADDRESS, stamp.address);
  writeU64(data, OFFSET_CHECKPOINT_SEQUENCE, stamp.checkpointSequence);
  data.setUint32(OFFSET_STORE_TAG, stamp.storeTag, true);
  data.setUint8(OFFSET_KIND, kind);
  data.setUint8(OFFSET_LEVEL, level);
  data.setUint16(OFFSET_ENTRY_COUNT, entryCount, true);
  data.setUint32(OFFSET_USED_BYTES, usedBytes, true);
  return data;
}

function seal(target: Uint8Array, data: DataView): number {
  const crc = crc32c(target.subarray(OFFSET_CRC_START));
  data.setUint32(OFFSET_CRC, crc, true);
  return crc;
}

/**
 * Encodes into `target` (exactly pageSize bytes, filled by the encoder); returns the page's crc.
 * RangeError if the entries do not fit or break the rules (a caller bug): then `target` is untouched.
 */
export function encodeLeafPage(target: Uint8Array, stamp: PageStamp, entries: readonly LeafEntry[]): number {
  checkPageSize(target.length);
  checkStamp(stamp);
  if (entries.length < 1 || entries.length > PAGE_ENTRY_COUNT_MAX) {
    throw new RangeError(`a leaf holds 1 to ${PAGE_ENTRY_COUNT_MAX} records, got ${entries.length}`);
  }
  let usedBytes = 0;
  for (let i = 0; i < entries.length; i++) {
    const { key, value } = entries[i];
    if (i > 0 && compareBytes(entries[i - 1].key, key) >= 0) throw new RangeError(`leaf keys are not strictly ascending at record ${i}`);
    usedBytes += leafEntryBytes(key.length, value);
  }
  const capacity = target.length - PAGE_HEADER_SIZE;
  if (usedBytes > capacity) throw new RangeError(`${entries.length} records take ${usedBytes} bytes, a page holds ${capacity}`);
  // Every record is checked (RangeError) before the page is touched.
  for (const entry of entries) checkPut(entry.key, entry.value);
  // Records are laid out straight into the page; only the header and the
  // tail after them need zeroing.
  target.fill(0, 0, PAGE_HEADER_SIZE);
  target.fill(0, PAGE_HEADER_SIZE + usedBytes);
  const data = writeHeader(target, stamp, PAGE_KIND_LEAF, 0, entries.length, usedBytes);
  let offset = PAGE_HEADER_SIZE;
  for (const entry of entries) offset = writePutAt(target, data, offset, entry.key, entry.keyIsString, entry.value);
  assert.equal(offset, PAGE_HEADER_SIZE + usedBytes, 'leafEntryBytes agrees with writePutAt');
  return seal(target, data);
}

/**
 * Encodes a branch of `level` (1 .. TREE_LEVELS_MAX − 1) into `target` (exactly pageSize bytes, filled
 * by the encoder); returns the page's crc. RangeError if the children do not fit or break the rules
 * (a caller bug): then `target` is untouched.
 */
export function encodeBranchPage(target: Uint8Array, stamp: PageStamp, level: number, children: readonly BranchChild[]): number {
  checkPageSize(target.length);
  checkStamp(stamp);
  if (!Number.isInteger(level) || level < 1 || level >= TREE_LEVELS_MAX) {
    throw new RangeError(`a branch is at level 1 to ${TREE_LEVELS_MAX - 1}, got ${level}`);
  }
  if (children.length < 2 || children.length > PAGE_ENTRY_COUNT_MAX) {
    throw new RangeError(`a branch has 2 to ${PAGE_ENTRY_COUNT_MAX} children, got ${children.length}`);
  }
  let usedBytes = 0;
  for (let i = 0; i < children.length; i++) {
    const { block, crc, separator } = children[i];
    if (!Number.isSafeInteger(block) || block < 0) throw new RangeError(`child ${i} block ${block}`);
    if (!isU32(crc)) throw new RangeError(`child ${i} crc ${crc} is not a u32`);
    if (i === 0) {
      if (separator !== undefined) throw new RangeError('child 0 has no separator');
    } else {
      if (separator === undefined || separator.length < 1 || separator.length > KEY_SIZE_MAX) {
        throw new RangeError(`child ${i} needs a separator of 1 to ${KEY_SIZE_MAX} bytes, got ${separator?.length}`);
      }
      const previous = children[i - 1].separator;
      if (previous !== undefined && compareBytes(previous, separator) >= 0) throw new RangeError(`separators are not strictly ascending at child ${i}`);
    }
    usedBytes += branchChildBytes(separator === undefined ? 0 : separator.length);
  }
  const capacity = target.length - PAGE_HEADER_SIZE;
  if (usedBytes > capacity) throw new RangeError(`${children.length} children take ${usedBytes} bytes, a page holds ${capacity}`);
  target.fill(0);
  const data = writeHeader(target, stamp, PAGE_KIND_BRANCH, level, children.length, usedBytes);
  let offset = PAGE_HEADER_SIZE;
  for (const { block, crc, separator } of children) {
    writeU64(data, offset, block);
    data.setUint32(offset + 8, crc, true);
    const separatorLength = separator === undefined ? 0 : separator.length;
    data.setUint16(offset + 12, separatorLength, true);
    if (separator !== undefined) target.set(separator, offset + BRANCH_CHILD_HEADER_SIZE);
    offset += branchChildBytes(separatorLength);
  }
  assert.equal(offset, PAGE_HEADER_SIZE + usedBytes, 'branchChildBytes agrees with the layout');
  return seal(target, data);
}

// ---- Encoding from key strings ----
//
// The engine holds keys as key strings: a key's bytes as a latin1 string,
// one char (0..255) per byte, so that string order is bytewise order
// (engine/key_codec.ts). A checkpoint encoded its pages through
// encodeLeafPage after turning every key into a Uint8Array and every entry
// into a LeafEntry, and that conversion was most of a checkpoint's CPU
// (~33 of ~45 µs a 4 KiB page of 16-byte keys, 100-byte values). These two
// encoders take the engine's columns as they are and write the same bytes
// (a test checks them against encodeLeafPage/encodeBranchPage on random
// pages); the record layout stays writePutAt's.

/** A leaf entry as the engine holds it: an inline value is its bytes. */
export interface LeafSlot {
  readonly isString: boolean;
  readonly value: Uint8Array | ExtentValue;
}

/** A branch child as the engine holds it. */
export interface ChildRef {
  readonly block: number;
  readonly crc: number;
}

/** Whether `keyString` is a key string of 1 to KEY_SIZE_MAX bytes (every char a byte). */
function isKeyString(keyString: string): boolean {
  const length = keyString.length;
  if (length < 1 || length > KEY_SIZE_MAX) return false;
  for (let i = 0; i < length; i++) if (keyString.charCodeAt(i) > 0xff) return false;
  return true;
}

/**
 * The records of a leaf page already encoded, to encode a later version of
 * that leaf by difference: a record of the new leaf whose key string and
 * slot are the very objects (===) of basis record j is basis record j's
 * bytes again, copied instead of encoded. A checkpoint writes leaves that
 * changed in a few entries since they were read or last written, and
 * encoding every entry anew read each one's key, entry, value view and
 * value bytes from all over the heap: ~20 µs a 4 KiB page of 16-byte keys
 * and 100-byte values, nearly all of it waiting for memory.
 * REQUIRES: `records` holds the records of keyStrings and slots, in order,
 * at recordStarts (a valid page of them, or its used bytes: scanLeafRecords
 * gives their starts), and nothing changes them.
 */
export interface LeafBasis {
  readonly keyStrings: readonly string[];
  readonly slots: readonly LeafSlot[];
  readonly records: Uint8Array;
  /** Where record j begins in `records`, for j in [0, count]; recordStarts[count] is where the last ends. */
  readonly recordStarts: ArrayLike<number>;
}

/**
 * How far past the expected record a difference encoding looks for the
 * basis record of an entry (entries deleted since the basis): a few
 * pointer compares per entry; a longer gap only costs re-encoding.
 */
const BASIS_LOOKAHEAD_RECORDS = 8;

/** Per record of the page being encoded: its basis record, or -1 (encode it). Grows to the largest leaf seen. */
let basisIndexScratch = new Int32Array(256);

function basisIndexOf(basis: LeafBasis, keyString: string, slot: LeafSlot, from: number, everywhere: boolean): number {
  const slots = basis.slots;
  const end = everywhere ? slots.length : Math.min(slots.length, from + BASIS_LOOKAHEAD_RECORDS);
  // The slot first: a pointer compare, where a key string compare may read the string.
  for (let j = from; j < end; j++) if (slots[j] === slot && basis.keyStrings[j] === keyString) return j;
  return -1;
}

/**
 * encodeLeafPage of the entries whose keys are `keyStrings` (key bytes as
 * latin1 strings) and whose flags and values are `slots`: the same page,
 * byte for byte, copying the records it shares with `basis` (if given)
 * from it. RangeError on what
 * encodeLeafPage refuses, or a key string with a char above 0xff: then
 * `target` is untouched.
 */
export function encodeLeafPageOfKeyStrings(
  target: Uint8Array,
  stamp: PageStamp,
  keyStrings: readonly string[],
  slots: readonly LeafSlot[],
  basis?: LeafBasis,
): number {
  checkPageSize(target.length);
  checkStamp(stamp);
  const count = keyStrings.length;
  if (slots.length !== count) throw new RangeError(`${count} keys but ${slots.length} entries`);
  if (count < 1 || count > PAGE_ENTRY_COUNT_MAX) throw new RangeError(`a leaf holds 1 to ${PAGE_ENTRY_COUNT_MAX} records, got ${count}`);
  if (basisIndexScratch.length < count) basisIndexScratch = new Int32Array(Math.max(count, 2 * basisIndexScratch.length));
  const basisIndex = basisIndexScratch;
  let usedBytes = 0;
  let next = 0;
  for (let i = 0; i < count; i++) {
    const keyString = keyStrings[i];
    const slot = slots[i];
    const j = basis === undefined ? -1 : basisIndexOf(basis, keyString, slot, next, i === 0);
    basisIndex[i] = j;
    if (j >= 0) {
      next = j + 1;
      usedBytes += basis!.recordStarts[j + 1] - basis!.recordStarts[j];
      // Records in a row of the basis are in order and valid already.
      if (i > 0 && basisIndex[i - 1] === j - 1) continue;
    } else {
      if (!isKeyString(keyString)) throw new RangeError(`record ${i}: a key string of 1 to ${KEY_SIZE_MAX} bytes, one char each, got ${keyString.length} chars`);
      const value = slot.value;
      if (value instanceof Uint8Array) {
        usedBytes += PUT_INLINE_HEADER_BYTES + keyString.length + value.length;
      } else {
        checkPut(keyStringBytesNow(keyString), value);
        usedBytes += leafEntryBytes(keyString.length, value);
      }
    }
    // One char a byte: string order is bytewise order.
    if (i > 0 && !(keyStrings[i - 1] < keyString)) throw new RangeError(`leaf keys are not strictly ascending at record ${i}`);
  }
  const data = startLeafPage(target, stamp, count, usedBytes);
  let offset = PAGE_HEADER_SIZE;
  for (let i = 0; i < count; ) {
    const j = basisIndex[i];
    if (j >= 0) {
      // A run of records in a row of the basis: one copy.
      let last = i + 1;
      while (last < count && basisIndex[last] === j + (last - i)) last++;
      const starts = basis!.recordStarts;
      const from = starts[j];
      const run = basis!.records.subarray(from, starts[j + last - i]);
      target.set(run, offset);
      offset += run.length;
      i = last;
      continue;
    }
    offset = writeSlotAt(target, data, offset, keyStrings[i], slots[i]);
    i++;
  }
  assert.equal(offset, PAGE_HEADER_SIZE + usedBytes, 'the sizes agree with writePutAt and the basis');
  return seal(target, data);
}

/**
 * Edits on top of the records of a leaf page already encoded: keys in
 * strictly ascending order, each with its new slot, or undefined where the
 * page's record of that key is gone (deleted).
 */
export interface LeafRecordEdits {
  readonly keyStrings: readonly string[];
  readonly slots: readonly (LeafSlot | undefined)[];
}

/**
 * encodeLeafPageOfKeyStrings of a leaf page's records with `edits` on top
 * (every record whose key the edits do not name, and the edits' slots, in
 * key order): the same page, byte for byte, copying the kept records'
 * bytes in runs. A leaf a checkpoint writes often differs from the page it
 * was read as in a few records; this encodes it without a key string or an
 * entry for the others. RangeError on what encodeLeafPageOfKeyStrings
 * refuses, or an edit that deletes a key the records do not hold: then
 * `target` is untouched.
 * REQUIRES: `records` holds valid leaf records at `recordStarts` (scanLeafRecords gave them), in key order.
 */
export function encodeLeafPageOfEdits(target: Uint8Array, stamp: PageStamp, records: Uint8Array, recordStarts: ArrayLike<number>, edits: LeafRecordEdits): number {
  checkPageSize(target.length);
  checkStamp(stamp);
  const editKeys = edits.keyStrings;
  const editSlots = edits.slots;
  const editCount = editKeys.length;
  if (editSlots.length !== editCount) throw new RangeError(`${editCount} edited keys but ${editSlots.length} slots`);
  const recordCount = recordStarts.length - 1;
  // Pass 1: what the page holds, checked before anything is written.
  let count = 0;
  let usedBytes = 0;
  let record = 0;
  for (let edit = 0; edit < editCount; edit++) {
    const keyString = editKeys[edit]!;
    if (!isKeyString(keyString)) throw new RangeError(`edit ${edit}: a key string of 1 to ${KEY_SIZE_MAX} bytes, one char each, got ${keyString.length} chars`);
    if (edit > 0 && !(editKeys[edit - 1]! < keyString)) throw new RangeError(`edited keys are not strictly ascending at edit ${edit}`);
    let order = 1;
    while (record < recordCount && (order = compareRecordKeyWith(records, recordStarts[record]!, keyString)) < 0) {
      usedBytes += recordStarts[record + 1]! - recordStarts[record]!;
      count++;
      record++;
    }
    if (record === recordCount) order = 1;
    const slot = editSlots[edit];
    if (order === 0) record++;
    else if (slot === undefined) throw new RangeError(`edit ${edit} deletes a key the records do not hold`);
    if (slot === undefined) continue;
    const value = slot.value;
    if (value instanceof Uint8Array) {
      usedBytes += PUT_INLINE_HEADER_BYTES + keyString.length + value.length;
    } else {
      checkPut(keyStringBytesNow(keyString), value);
      usedBytes += leafEntryBytes(keyString.length, value);
    }
    count++;
  }
  usedBytes += recordStarts[recordCount]! - recordStarts[record]!;
  count += recordCount - record;
  if (count < 1 || count > PAGE_ENTRY_COUNT_MAX) throw new RangeError(`a leaf holds 1 to ${PAGE_ENTRY_COUNT_MAX} records, got ${count}`);
  // Pass 2: the kept records copied in runs, the edits encoded between them.
  const data = startLeafPage(target, stamp, count, usedBytes);
  let offset = PAGE_HEADER_SIZE;
  record = 0;
  for (let edit = 0; edit < editCount; edit++) {
    const keyString = editKeys[edit]!;
    const runStart = record;
    while (record < recordCount && compareRecordKeyWith(records, recordStarts[record]!, keyString) < 0) record++;
    offset = copyRecords(target, offset, records, recordStarts, runStart, record);
    if (record < recordCount && compareRecordKeyWith(records, recordStarts[record]!, keyString) === 0) record++;
    const slot = editSlots[edit];
    if (slot !== undefined) offset = writeSlotAt(target, data, offset, keyString, slot);
  }
  offset = copyRecords(target, offset, records, recordStarts, record, recordCount);
  assert.equal(offset, PAGE_HEADER_SIZE + usedBytes, 'the sizes agree with writePutAt and the records');
  return seal(target, data);
}

/**
 * The leaf record of `keyString` and `slot`, laid out at `offset` of
 * `target` exactly as the encoders above lay it out in a page; returns the
 * offset after it. For a leaf whose records are edited where they lie
 * (engine/leaf_page.ts): the page is then sealed by encodeLeafPageOfEdits.
 * RangeError, before `target` is touched, for a key string that is not one
 * (1 to KEY_SIZE_MAX chars, each a byte), an invalid extent value, or a
 * record that does not end within `target`.
 */
export function writeLeafRecordAt(target: Uint8Array, offset: number, keyString: string, slot: LeafSlot): number {
  // The key's bytes stay in the scratch until the record's writer below copies them: no call in between makes others.
  const key = checkedKeyStringBytesNow(keyString);
  if (key === undefined) throw new RangeError(`a key string of 1 to ${KEY_SIZE_MAX} bytes, one char each, got ${keyString.length} chars`);
  const value = slot.value;
  const recordBytes = value instanceof Uint8Array ? PUT_INLINE_HEADER_BYTES + key.length + value.length : leafEntryBytes(key.length, value);
  if (!(value instanceof Uint8Array)) checkPut(key, value);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + recordBytes > target.length) {
    throw new RangeError(`a record of ${recordBytes} bytes at ${offset} does not end within ${target.length} bytes`);
  }
  if (value instanceof Uint8Array) return writeInlinePutAt(target, offset, key, slot.isString, value);
  // An extent value's record has u64 fields: through a DataView, made for it (large values are few).
  return writePutAt(target, view(target), offset, key, slot.isString, value);
}

/** writePutAt of the record of `keyString` and `slot` (checked) at `offset`; returns the offset after it. */
function writeSlotAt(target: Uint8Array, data: DataView, offset: number, keyString: string, slot: LeafSlot): number {
  const key = keyStringBytesNow(keyString);
  const value = slot.value;
  return value instanceof Uint8Array ? writeInlinePutAt(target, offset, key, slot.isString, value) : writePutAt(target, data, offset, key, slot.isString, value);
}

/**
 * Refuses `usedBytes` of records that a page of `target`'s size cannot
 * hold (RangeError, `target` untouched); else zeroes the header and what
 * follows the records and writes the leaf header. The records go at
 * PAGE_HEADER_SIZE, then seal().
 */
function startLeafPage(target: Uint8Array, stamp: PageStamp, count: number, usedBytes: number): DataView {
  const capacity = target.length - PAGE_HEADER_SIZE;
  if (usedBytes > capacity) throw new RangeError(`${count} records take ${usedBytes} bytes, a page holds ${capacity}`);
  target.fill(0, 0, PAGE_HEADER_SIZE);
  target.fill(0, PAGE_HEADER_SIZE + usedBytes);
  return writeHeader(target, stamp, PAGE_KIND_LEAF, 0, count, usedBytes);
}

/** Copies records [from, to) of `records` to `offset` of `target` in one copy; returns the offset after them. */
function copyRecords(target: Uint8Array, offset: number, records: Uint8Array, recordStarts: ArrayLike<number>, from: number, to: number): number {
  if (from === to) return offset;
  const run = records.subarray(recordStarts[from]!, recordStarts[to]!);
  target.set(run, offset);
  return offset + run.length;
}

/** memcmp order of the key of the checked leaf record at `start` of `records` against the key string `keyString` (one byte a char). */
export function compareRecordKeyWith(records: Uint8Array, start: number, keyString: string): number {
  const keyStart = leafRecordKeyStart(records, start);
  const keyLength = leafRecordKeyLength(records, start);
  const common = Math.min(keyLength, keyString.length);
  for (let i = 0; i < common; i++) {
    const difference = records[keyStart + i]! - keyString.charCodeAt(i);
    if (difference !== 0) return difference;
  }
  return keyLength - keyString.length;
}

/**
 * encodeBranchPage of `children` with `separatorStrings` (separator bytes
 * as latin1 strings; separatorStrings[i] is child i + 1's): the same page,
 * byte for byte. RangeError on what encodeBranchPage refuses, or a
 * separator with a char above 0xff: then `target` is untouched.
 */
export function encodeBranchPageOfKeyStrings(target: Uint8Array, stamp: PageStamp, level: number, separatorStrings: readonly string[], children: readonly ChildRef[]): number {
  checkPageSize(target.length);
  checkStamp(stamp);
  if (!Number.isInteger(level) || level < 1 || level >= TREE_LEVELS_MAX) {
    throw new RangeError(`a branch is at level 1 to ${TREE_LEVELS_MAX - 1}, got ${level}`);
  }
  const count = children.length;
  if (count < 2 || count > PAGE_ENTRY_COUNT_MAX) throw new RangeError(`a branch has 2 to ${PAGE_ENTRY_COUNT_MAX} children, got ${count}`);
  if (separatorStrings.length !== count - 1) throw new RangeError(`${count} children need ${count - 1} separators, got ${separatorStrings.length}`);
  let usedBytes = branchChildBytes(0);
  for (let i = 0; i < count; i++) {
    const { block, crc } = children[i];
    if (!Number.isSafeInteger(block) || block < 0) throw new RangeError(`child ${i} block ${block}`);
    if (!isU32(crc)) throw new RangeError(`child ${i} crc ${crc} is not a u32`);
    if (i === 0) continue;
    const separator = separatorStrings[i - 1];
    if (!isKeyString(separator)) throw new RangeError(`child ${i} needs a separator of 1 to ${KEY_SIZE_MAX} bytes, one char each, got ${separator.length} chars`);
    if (i > 1 && !(separatorStrings[i - 2] < separator)) throw new RangeError(`separators are not strictly ascending at child ${i}`);
    usedBytes += branchChildBytes(separator.length);
  }
  const capacity = target.length - PAGE_HEADER_SIZE;
  if (usedBytes > capacity) throw new RangeError(`${count} children take ${usedBytes} bytes, a page holds ${capacity}`);
  target.fill(0, 0, PAGE_HEADER_SIZE);
  target.fill(0, PAGE_HEADER_SIZE + usedBytes);
  const data = writeHeader(target, stamp, PAGE_KIND_BRANCH, level, count, usedBytes);
  let offset = PAGE_HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    const child = children[i];
    const separator = i === 0 ? '' : separatorStrings[i - 1];
    writeU64(data, offset, child.block);
    data.setUint32(offset + 8, child.crc, true);
    data.setUint16(offset + 12, separator.length, true);
    offset += BRANCH_CHILD_HEADER_SIZE;
    for (let c = 0; c < separator.length; c++) target[offset + c] = separator.charCodeAt(c);
    offset += separator.length;
  }
  assert.equal(offset, PAGE_HEADER_SIZE + usedBytes, 'branchChildBytes agrees with the layout');
  return seal(target, data);
}

// ---- Branch records where they lie ----
//
// A branch in memory holds its children as the page's records, back to
// back (engine/branch_page.ts): a write edits them where they lie and a
// checkpoint copies them in one run, writes the blocks of the children it
// has just written into their records, and seals the page. These read and
// write one record in the layout encodeBranchPage writes.

/** Bytes of a branch record before its separator: u64 childBlock | u32 childCrc | u16 separatorLength. */
export const BRANCH_RECORD_HEADER_BYTES = BRANCH_CHILD_HEADER_SIZE;

/**
 * Writes the branch record of a child at `block` with `crc` and the
 * separator `separatorString` on its left ('' for a branch's first child)
 * at `offset` of `target`; returns the offset after it. RangeError, before
 * `target` is touched, for a block or crc out of range, a separator that
 * is not a key string (nor '' ), or a record that does not end within
 * `target`. `data`: a DataView of all of `target`.
 */
export function writeBranchRecordAt(target: Uint8Array, data: DataView, offset: number, block: number, crc: number, separatorString: string): number {
  const length = separatorString.length;
  if (!Number.isSafeInteger(block) || block < 0) throw new RangeError(`child block ${block}`);
  if (!isU32(crc)) throw new RangeError(`child crc ${crc} is not a u32`);
  if (length !== 0 && !isKeyString(separatorString)) throw new RangeError(`a separator of 1 to ${KEY_SIZE_MAX} bytes, one char each, got ${length} chars`);
  const end = offset + BRANCH_CHILD_HEADER_SIZE + length;
  if (!(Number.isInteger(offset) && offset >= 0 && end <= target.length)) throw new RangeError(`a branch record of ${end - offset} bytes at ${offset} does not end within ${target.length} bytes`);
  writeU64(data, offset, block);
  data.setUint32(offset + 8, crc, true);
  data.setUint16(offset + 12, length, true);
  const separatorStart = offset + BRANCH_CHILD_HEADER_SIZE;
  for (let c = 0; c < length; c++) target[separatorStart + c] = separatorString.charCodeAt(c);
  return end;
}

/** The child block of the branch record at `start` (written by writeBranchRecordAt). */
export function branchRecordBlock(data: DataView, start: number): number {
  return readU64(data, start);
}

/** The child crc of the branch record at `start`. */
export function branchRecordCrc(data: DataView, start: number): number {
  return data.getUint32(start + 8, true);
}

/** Writes `block` and `crc` into the branch record at `start`, its separator unchanged. RangeError as writeBranchRecordAt. */
export function setBranchRecordChild(data: DataView, start: number, block: number, crc: number): void {
  if (!Number.isSafeInteger(block) || block < 0) throw new RangeError(`child block ${block}`);
  if (!isU32(crc)) throw new RangeError(`child crc ${crc} is not a u32`);
  writeU64(data, start, block);
  data.setUint32(start + 8, crc, true);
}

/** The separator length of the branch record at `start` of `records`. */
export function branchRecordSeparatorLength(records: Uint8Array, start: number): number {
  return records[start + 12]! | (records[start + 13]! << 8);
}

/** memcmp order of the separator of the branch record at `start` of `records` against the key string `keyString`. */
export function compareBranchSeparatorWith(records: Uint8Array, start: number, keyString: string): number {
  const length = records[start + 12]! | (records[start + 13]! << 8);
  const separatorStart = start + BRANCH_CHILD_HEADER_SIZE;
  const common = Math.min(length, keyString.length);
  for (let i = 0; i < common; i++) {
    const difference = records[separatorStart + i]! - keyString.charCodeAt(i);
    if (difference !== 0) return difference;
  }
  return length - keyString.length;
}

/**
 * encodeBranchPageOfKeyStrings of the `count` branch records in
 * `records[recordsStart, recordsEnd)` (laid out by writeBranchRecordAt),
 * the same page byte for byte: the records are checked (lengths, child 0
 * without a separator and the others with one, separators strictly
 * ascending, child blocks), copied in one run, then the header and seal.
 * RangeError on what encodeBranchPage refuses: then `target` is untouched.
 */
export function encodeBranchPageOfRecords(target: Uint8Array, stamp: PageStamp, level: number, records: Uint8Array, recordsStart: number, recordsEnd: number, count: number): number {
  checkPageSize(target.length);
  checkStamp(stamp);
  if (!Number.isInteger(level) || level < 1 || level >= TREE_LEVELS_MAX) {
    throw new RangeError(`a branch is at level 1 to ${TREE_LEVELS_MAX - 1}, got ${level}`);
  }
  if (count < 2 || count > PAGE_ENTRY_COUNT_MAX) throw new RangeError(`a branch has 2 to ${PAGE_ENTRY_COUNT_MAX} children, got ${count}`);
  const usedBytes = recordsEnd - recordsStart;
  const capacity = target.length - PAGE_HEADER_SIZE;
  if (usedBytes > capacity) throw new RangeError(`${count} children take ${usedBytes} bytes, a page holds ${capacity}`);
  let offset = recordsStart;
  let previousStart = -1;
  for (let i = 0; i < count; i++) {
    if (offset + BRANCH_CHILD_HEADER_SIZE > recordsEnd) throw new RangeError(`branch record ${i} runs past the records' end`);
    // Below 2^53: the u64's high u32 is below 2^21 (read as bytes: no DataView a page).
    if (records[offset + 7] !== 0 || records[offset + 6]! >= 0x20) throw new RangeError(`child ${i} block is 2^53 or more`);
    const length = branchRecordSeparatorLength(records, offset);
    if (i === 0 ? length !== 0 : length < 1 || length > KEY_SIZE_MAX) throw new RangeError(`child ${i} has a separator of ${length} bytes`);
    if (i > 1 && compareSeparators(records, previousStart, offset) >= 0) throw new RangeError(`separators are not strictly ascending at child ${i}`);
    previousStart = offset;
    offset += BRANCH_CHILD_HEADER_SIZE + length;
  }
  if (offset !== recordsEnd) throw new RangeError(`${recordsEnd - offset} bytes after the ${count} branch records`);
  target.fill(0, 0, PAGE_HEADER_SIZE);
  target.set(records.subarray(recordsStart, recordsEnd), PAGE_HEADER_SIZE);
  target.fill(0, PAGE_HEADER_SIZE + usedBytes);
  const data = writeHeader(target, stamp, PAGE_KIND_BRANCH, level, count, usedBytes);
  return seal(target, data);
}

/** memcmp order of the separators of the branch records at `a` and `b` of `records`. */
function compareSeparators(records: Uint8Array, a: number, b: number): number {
  const lengthA = branchRecordSeparatorLength(records, a);
  const lengthB = branchRecordSeparatorLength(records, b);
  const common = Math.min(lengthA, lengthB);
  for (let i = 0; i < common; i++) {
    const difference = records[a + BRANCH_CHILD_HEADER_SIZE + i]! - records[b + BRANCH_CHILD_HEADER_SIZE + i]!;
    if (difference !== 0) return difference;
  }
  return lengthA - lengthB;
}

/**
 * Validates everything; throws FormatError('page', reason, address) on any damage. Key and inline
 * value bytes are views into `bytes`.
 *
 * REQUIRES (asserted: a wrong expectation is a bug of the caller, not damage): `bytes` is exactly
 * pageSizeFor(blockSize) bytes; the page's blocks lie in [dataStartBlock, blockCount); level is below
 * TREE_LEVELS_MAX; crc and storeTag are u32s.
 */
export function decodePage(bytes: Uint8Array, expected: PageExpectation): DecodedPage {
  const header = checkPageHeader(bytes, expected);
  if (header.kind === 'leaf') {
    const entries: LeafEntry[] = [];
    readLeafRecords(bytes, header, expected, (key, keyIsString, value) => {
      entries.push({ key, keyIsString, value });
    });
    checkPageTail(bytes, header);
    return { kind: 'leaf', checkpointSequence: header.checkpointSequence, entries };
  }
  const children = readBranchChildren(bytes, header, expected);
  checkPageTail(bytes, header);
  return { kind: 'branch', level: header.level, checkpointSequence: header.checkpointSequence, children };
}

/** A page header that checkPageHeader found intact and the one its reader expects. */
export interface PageHeader {
  readonly kind: 'leaf' | 'branch';
  /** The block it was read from (it names itself so). */
  readonly address: number;
  readonly level: number;
  readonly checkpointSequence: number;
  readonly entryCount: number;
  readonly usedBytes: number;
  /** PAGE_HEADER_SIZE + usedBytes: the page's bytes that mean something (the rest are zeros). */
  readonly end: number;
  /** pageSizeFor(blockSize). */
  readonly pageSize: number;
}

// decodePage in steps, for a reader that keeps a leaf's records in a copy
// of its used bytes (engine/tree_pages.ts): checkPageHeader on the page as
// read, scanLeafRecords (or readLeafRecords) on the copy, checkPageTail on
// the page. Called in that order they check exactly what decodePage
// checks, and fail with the same reasons.

/**
 * decodePage's first step: the header (magic, CRC over the whole page,
 * address, store, parent's CRC, kind, level, counts). FormatError on damage.
 * REQUIRES: as decodePage (asserted).
 */
export function checkPageHeader(bytes: Uint8Array, expected: PageExpectation): PageHeader {
  const pageSize = pageSizeFor(expected.blockSize);
  const pageBlocks = pageSize / expected.blockSize;
  const { address, dataStartBlock, blockCount } = expected;
  assert.equal(bytes.length, pageSize, 'a page is read whole');
  assert.ok(Number.isSafeInteger(dataStartBlock) && dataStartBlock >= 0 && Number.isSafeInteger(blockCount), 'data region');
  // The messages are made only on failure: this runs on every page read.
  if (!(Number.isSafeInteger(address) && address >= dataStartBlock && address + pageBlocks <= blockCount)) assert.fail(`page address ${address} in the data region`);
  if (!(Number.isInteger(expected.level) && expected.level >= 0 && expected.level < TREE_LEVELS_MAX)) assert.fail(`expected level ${expected.level}`);
  assert.ok(isU32(expected.crc) && isU32(expected.storeTag), 'expected crc and storeTag are u32s');

  const fail = (reason: string): never => {
    throw new FormatError('page', reason, address);
  };
  const data = view(bytes);
  if (data.getUint32(OFFSET_MAGIC, true) !== PAGE_MAGIC) fail('bad magic (not a tree page)');
  // The CRC first: nothing else in a damaged page means anything.
  const storedCrc = data.getUint32(OFFSET_CRC, true);
  const computedCrc = crc32c(bytes.subarray(OFFSET_CRC_START));
  if (storedCrc !== computedCrc) fail(`checksum mismatch (stored 0x${hex(storedCrc)}, computed 0x${hex(computedCrc)})`);
  // An intact page, but maybe not the one the parent meant. The address and
  // tag go before the parent's CRC: a misdirected write or another store's
  // page also has an unexpected CRC, and these say more about what happened.
  const storedAddress = readU64(data, OFFSET_ADDRESS);
  if (storedAddress !== address) {
    fail(`page of block ${storedAddress < 0 ? '2^53 or more' : storedAddress} read from block ${address} (a misdirected write)`);
  }
  const storeTag = data.getUint32(OFFSET_STORE_TAG, true);
  if (storeTag !== expected.storeTag) fail(`store tag 0x${hex(storeTag)} is not this store's 0x${hex(expected.storeTag)} (a page of another store)`);
  if (storedCrc !== expected.crc) {
    fail(`crc 0x${hex(storedCrc)} is not the 0x${hex(expected.crc)} its parent expects (a lost write left an older page, or the parent is wrong)`);
  }
  // From here on the page is the one its parent wrote down: what fails is
  // the writer's bug or damage behind a matching CRC, and the reasons say which rule broke.
  const checkpointSequence = readU64(data, OFFSET_CHECKPOINT_SEQUENCE);
  if (checkpointSequence < 0) fail('checkpointSequence exceeds 2^53');
  if (!isZero(bytes, OFFSET_RESERVED, PAGE_HEADER_SIZE)) fail('reserved header bytes are not zero');
  const kind = bytes[OFFSET_KIND];
  const level = bytes[OFFSET_LEVEL];
  if (kind !== PAGE_KIND_LEAF && kind !== PAGE_KIND_BRANCH) fail(`unknown kind ${kind}`);
  if (kind === PAGE_KIND_LEAF && level !== 0) fail(`a leaf at level ${level} (kind and level disagree)`);
  if (kind === PAGE_KIND_BRANCH && level === 0) fail('a branch at level 0 (kind and level disagree)');
  if (level >= TREE_LEVELS_MAX) fail(`level ${level} is deeper than any tree (${TREE_LEVELS_MAX} levels)`);
  if (level !== expected.level) fail(`level ${level}, expected ${expected.level}`);
  const entryCount = data.getUint16(OFFSET_ENTRY_COUNT, true);
  const usedBytes = data.getUint32(OFFSET_USED_BYTES, true);
  const capacity = pageSize - PAGE_HEADER_SIZE;
  if (usedBytes > capacity) fail(`usedBytes ${usedBytes} exceeds the page's ${capacity} bytes of entries`);
  if (kind === PAGE_KIND_LEAF && entryCount < 1) fail('too few entries: an empty leaf (an empty tree has no root page)');
  if (kind === PAGE_KIND_BRANCH && entryCount < 2) fail(`too few entries: a branch of ${plural(entryCount, 'child', 'children')} (at least 2)`);
  return { kind: kind === PAGE_KIND_LEAF ? 'leaf' : 'branch', address, level, checkpointSequence, entryCount, usedBytes, end: PAGE_HEADER_SIZE + usedBytes, pageSize };
}

/** A leaf's records in order, as readLeafRecords finds them: key and inline value bytes are views into its `bytes`. */
export type LeafRecordVisitor = (key: Uint8Array, keyIsString: boolean, value: StoredValue) => void;

/**
 * decodePage's second step for a leaf whose header checkPageHeader passed,
 * without decoding a record: checks its records (each as readRecords does,
 * keys strictly ascending, extents in the data region, nothing after the
 * last) and returns where each begins in `bytes`, with the end of the last
 * one after them (entryCount + 1 offsets). Makes no view and no value: a
 * leaf read for a lookup is searched in its bytes (engine/leaf_page.ts).
 * `bytes` is the page, or a copy of at least its first header.end bytes at
 * the same offsets.
 */
export function scanLeafRecords(bytes: Uint8Array, header: PageHeader, expected: PageExpectation): number[] {
  assert.ok(header.kind === 'leaf' && bytes.length >= header.end, 'a checked leaf header, and its used bytes');
  const { address, dataStartBlock, blockCount } = expected;
  const fail = (reason: string): never => {
    throw new FormatError('page', reason, address);
  };
  const { end, entryCount, usedBytes } = header;
  const data = view(bytes);
  // A small-integer array in the heap: a typed array would be an
  // allocation of its own outside it for every leaf read.
  const starts = new Array<number>(entryCount + 1).fill(0);
  let offset = PAGE_HEADER_SIZE;
  for (let index = 0; index < entryCount; index++) {
    // Records past usedBytes are truncated: the check sees only the used bytes.
    const next = checkRecordAt(bytes, data, offset, end, index, 'page', address, expected.blockSize);
    const type = bytes[offset];
    if (type !== RECORD_PUT_INLINE && type !== RECORD_PUT_EXTENTS) fail(`record ${index} is a DELETE (a leaf holds only entries)`);
    if (index > 0 && compareRecordKeys(bytes, starts[index - 1], offset) >= 0) fail(`keys not strictly ascending at record ${index}`);
    if (type === RECORD_PUT_EXTENTS) {
      const extentCount = data.getUint32(offset + 16, true);
      let at = offset + PUT_EXTENTS_HEADER_BYTES + data.getUint16(offset + 2, true);
      for (let e = 0; e < extentCount; e++) {
        const startBlock = readU64(data, at);
        const blocks = data.getUint32(at + 8, true);
        if (startBlock < dataStartBlock || startBlock + blocks > blockCount) {
          fail(`record ${index} extent ${e} (${startBlock}+${blocks}) lies outside the data region [${dataStartBlock}, ${blockCount})`);
        }
        at += RECORD_EXTENT_BYTES;
      }
    }
    starts[index] = offset;
    offset = next;
  }
  if (offset !== end) fail(`${plural(end - offset, 'byte')} after the ${entryCount} entries (usedBytes ${usedBytes})`);
  starts[entryCount] = offset;
  return starts;
}

/** Where the key of the checked leaf record at `start` begins in `bytes`. */
export function leafRecordKeyStart(bytes: Uint8Array, start: number): number {
  return start + (bytes[start] === RECORD_PUT_INLINE ? PUT_INLINE_HEADER_BYTES : PUT_EXTENTS_HEADER_BYTES);
}

/** The key length of the checked record at `start`. */
export function leafRecordKeyLength(bytes: Uint8Array, start: number): number {
  return bytes[start + 2] | (bytes[start + 3] << 8);
}

/** Whether the key of the checked record at `start` was a string. */
export function leafRecordKeyIsString(bytes: Uint8Array, start: number): boolean {
  return (bytes[start + 1] & KEY_FLAG_STRING) !== 0;
}

/** Whether the checked leaf record at `start` holds its value inline (after the key, up to the next record). */
export function leafRecordIsInline(bytes: Uint8Array, start: number): boolean {
  return bytes[start] === RECORD_PUT_INLINE;
}

/** The extent value of the checked PUT_EXTENTS leaf record at `start` of `bytes` (a view of them: `data`). */
export function leafRecordExtentValue(bytes: Uint8Array, data: DataView, start: number): ExtentValue {
  return extentValueAt(data, start, bytes[start + 1], leafRecordKeyLength(bytes, start));
}

/** memcmp order of the keys of the checked records at `a` and `b` of `bytes`. */
function compareRecordKeys(bytes: Uint8Array, a: number, b: number): number {
  const aStart = leafRecordKeyStart(bytes, a);
  const bStart = leafRecordKeyStart(bytes, b);
  const aLength = leafRecordKeyLength(bytes, a);
  const bLength = leafRecordKeyLength(bytes, b);
  const common = Math.min(aLength, bLength);
  for (let i = 0; i < common; i++) {
    const difference = bytes[aStart + i] - bytes[bStart + i];
    if (difference !== 0) return difference;
  }
  return aLength - bLength;
}

/**
 * decodePage's second step for a leaf whose header checkPageHeader passed:
 * scanLeafRecords, then `visit` for each record in order. `bytes` is as
 * for scanLeafRecords: the views visit receives are into it.
 */
export function readLeafRecords(bytes: Uint8Array, header: PageHeader, expected: PageExpectation, visit: LeafRecordVisitor): void {
  const starts = scanLeafRecords(bytes, header, expected);
  const data = view(bytes);
  for (let index = 0; index < header.entryCount; index++) {
    const start = starts[index];
    const keyStart = leafRecordKeyStart(bytes, start);
    const keyEnd = keyStart + leafRecordKeyLength(bytes, start);
    const key = bytes.subarray(keyStart, keyEnd);
    const value: StoredValue = leafRecordIsInline(bytes, start) ? { kind: 'inline', bytes: bytes.subarray(keyEnd, starts[index + 1]) } : leafRecordExtentValue(bytes, data, start);
    visit(key, leafRecordKeyIsString(bytes, start), value);
  }
}

/**
 * decodePage's second step for a branch whose header checkPageHeader
 * passed: its children (separators are views into `bytes`).
 */
export function readBranchChildren(bytes: Uint8Array, header: PageHeader, expected: PageExpectation): BranchChild[] {
  const starts = scanBranchRecords(bytes, header, expected);
  const data = view(bytes);
  const children: BranchChild[] = new Array(header.entryCount);
  for (let i = 0; i < header.entryCount; i++) {
    const start = starts[i]!;
    const separatorStart = start + BRANCH_CHILD_HEADER_SIZE;
    const separator = i === 0 ? undefined : bytes.subarray(separatorStart, separatorStart + branchRecordSeparatorLength(bytes, start));
    children[i] = { block: readU64(data, start), crc: data.getUint32(start + 8, true), separator };
  }
  return children;
}

/**
 * readBranchChildren's checks, making nothing for the children: where
 * each record begins in `bytes`, and where the last ends (entryCount + 1
 * offsets). For a reader that keeps the records as they are
 * (engine/branch_page.ts). FormatError on damage, with the same reasons.
 */
export function scanBranchRecords(bytes: Uint8Array, header: PageHeader, expected: PageExpectation): number[] {
  assert.ok(header.kind === 'branch' && bytes.length >= header.end, 'a checked branch header, and its used bytes');
  const { address, dataStartBlock, blockCount } = expected;
  const fail = (reason: string): never => {
    throw new FormatError('page', reason, address);
  };
  const { end, entryCount, usedBytes } = header;
  const pageBlocks = header.pageSize / expected.blockSize;
  const data = view(bytes);
  const starts = new Array<number>(entryCount + 1);
  let offset = PAGE_HEADER_SIZE;
  for (let i = 0; i < entryCount; i++) {
    starts[i] = offset;
    if (offset + BRANCH_CHILD_HEADER_SIZE > end) fail(`child ${i} truncated at byte ${offset} of ${end} (usedBytes ${usedBytes})`);
    const block = readU64(data, offset);
    const separatorLength = data.getUint16(offset + 12, true);
    offset += BRANCH_CHILD_HEADER_SIZE;
    if (i === 0 && separatorLength !== 0) fail(`child 0 has a separator of ${plural(separatorLength, 'byte')} (it has none)`);
    if (i > 0 && separatorLength > KEY_SIZE_MAX) fail(`child ${i} has a separator of ${separatorLength} bytes (1 to ${KEY_SIZE_MAX})`);
    if (i > 0 && separatorLength === 0) fail(`child ${i} has no separator`);
    if (offset + separatorLength > end) fail(`child ${i} truncated at byte ${offset} of ${end} (usedBytes ${usedBytes})`);
    if (block < 0 || block < dataStartBlock || block + pageBlocks > blockCount) {
      fail(`child ${i} at block ${block < 0 ? '2^53 or more' : block} (${pageBlocks} blocks) lies outside the data region [${dataStartBlock}, ${blockCount})`);
    }
    if (i > 1 && compareSeparators(bytes, starts[i - 1]!, starts[i]!) >= 0) fail(`separators not strictly ascending at child ${i}`);
    offset += separatorLength;
  }
  if (offset !== end) fail(`${plural(end - offset, 'byte')} after the ${entryCount} entries (usedBytes ${usedBytes})`);
  starts[entryCount] = end;
  checkChildrenApart(data, starts, entryCount, address, pageBlocks, fail);
  return starts;
}

/**
 * Every child of a branch is a page of its own: no two children's pages
 * share a block, and none is the branch's. A tree has one parent a page;
 * two children naming one leaf made a range yield its keys twice, out of
 * order, and a write free its block twice (found by a review).
 */
function checkChildrenApart(data: DataView, starts: readonly number[], entryCount: number, address: number, pageBlocks: number, fail: (reason: string) => never): void {
  const blocks = new Float64Array(entryCount);
  for (let i = 0; i < entryCount; i++) blocks[i] = readU64(data, starts[i]!);
  for (let i = 0; i < entryCount; i++) if (Math.abs(blocks[i]! - address) < pageBlocks) fail(`child ${i} at block ${blocks[i]} is this page`);
  blocks.sort();
  for (let i = 1; i < entryCount; i++) {
    if (blocks[i]! - blocks[i - 1]! < pageBlocks) fail(`two children are at block ${blocks[i - 1]}${pageBlocks > 1 ? ` and ${blocks[i]} (pages of ${pageBlocks} blocks)` : ''}: a page has one parent`);
  }
}

/**
 * decodePage's last step: the bytes after the entries are zeros. (After
 * the entries' step, so that a usedBytes that cuts the last entry short
 * says so instead of "not zero".)
 */
export function checkPageTail(bytes: Uint8Array, header: PageHeader): void {
  assert.equal(bytes.length, header.pageSize, 'the whole page');
  if (!isZero(bytes, header.end, header.pageSize)) throw new FormatError('page', 'bytes after the entries are not zero', header.address);
}

function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

function hex(value: number): string {
  return value.toString(16);
}
