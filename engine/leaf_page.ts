// LeafPage: a leaf as a page holds it, searched in its bytes. A clean leaf
// read from disk is its page, never changed. A write's copy of a leaf is
// a private copy of the page's bytes with room for a whole page (owned),
// edited where its records lie: a put writes its record in place and moves
// the records after it, a delete closes the gap. A checkpoint then copies
// the records in one run, stamps the header and seals the page
// (format/page.ts, encodeLeafPageOfEdits with no edits); the leaf turns
// into keys and entries (materialize()) only when it must change shape (a
// split, a merge).
//
// Why: a leaf read into keys and entries cost, at 1 M keys, ~70 objects
// (a latin1 string and an entry per record, their views), most of a cold
// get's CPU and of its garbage, and they filled the page cache's budget
// with objects no lookup needed (docs/architecture.md, "Leaves in page
// form"). A copy that kept the page and listed its edits beside it still
// had to be encoded by every checkpoint, reading the edits' keys, entries
// and values from all over the heap (3.5 µs a page; docs/benchmarks.md,
// session 25), and held those objects while dirty.
//
// Views. Inline values of entries made from a page view its bytes. An
// owned page's bytes change under a write, so a write after a view was
// handed out (entryAt, materialize) first moves the page to a fresh copy
// of its bytes, leaving the viewed ones as they were; find() and
// detachedEntryAt() hand out copies instead, for the lookups of gets and
// writes, which keep nothing.
//
// Key strings hold one byte per char (engine/key_codec.ts), so a key string
// is compared with a record's key bytes char by byte: the same bytewise
// order as the tree's string compares.
import assert from 'node:assert/strict';
import { view } from '../format/bytes.js';
import { PAGE_HEADER_SIZE } from '../format/constants.js';
import {
  compareRecordKeyWith,
  leafRecordExtentValue,
  leafRecordIsInline,
  leafRecordKeyIsString,
  leafRecordKeyLength,
  leafRecordKeyStart,
  writeLeafRecordAt,
} from '../format/page.js';
import { bytesToKey, latin1Of, type Key } from './key_codec.js';
import { PageInlineEntry } from './page_entry.js';
import type { IndexEntry } from './store_index.js';

export class LeafPage {
  /**
   * The page's bytes: the header, then the records at `starts`; inline
   * values of entries made from it view them. A page as read: its used
   * bytes, never reused except those of a leaf lent to a scan
   * (TreePageIo.lendLeaf), which go back to the read pool once its run is
   * over (nothing may keep a view of them past it). An owned page: a whole
   * page's room, replaced by a copy when a write follows a view.
   */
  bytes: Uint8Array;
  /** Where record i begins in `bytes`, for i in [0, count]; starts[count] is the end of the records. Changed only by an owned page's writes. */
  readonly starts: number[];
  count: number;
  /** A write's private copy (ownedCopy), edited in place; false for a page as read from disk, never changed. */
  readonly owned: boolean;
  /** An owned page's bytes are viewed by an entry handed out: the next write copies them first. */
  #viewed = false;

  /** REQUIRES: `starts` are the records of `bytes` as format/page.ts scanLeafRecords checked them. */
  constructor(bytes: Uint8Array, starts: number[], owned = false) {
    this.bytes = bytes;
    this.starts = starts;
    this.count = starts.length - 1;
    this.owned = owned;
  }

  /**
   * An owned page holding `keys` and `entries` (in order; `recordBytes`
   * their page bytes in all), with room for `capacityBytes` of records:
   * the page of a new leaf a write makes (a split's piece).
   */
  static ofRecords(keys: readonly string[], entries: readonly IndexEntry[], recordBytes: number, capacityBytes: number): LeafPage {
    assert.ok(recordBytes <= capacityBytes, 'the records fit the page they are written to');
    const bytes = new Uint8Array(PAGE_HEADER_SIZE + capacityBytes);
    const starts = new Array<number>(keys.length + 1);
    let offset = PAGE_HEADER_SIZE;
    for (let index = 0; index < keys.length; index++) {
      starts[index] = offset;
      offset = writeLeafRecordAt(bytes, offset, keys[index]!, entries[index]!);
    }
    starts[keys.length] = offset;
    assert.equal(offset - PAGE_HEADER_SIZE, recordBytes, 'the records take the bytes measured for them');
    return new LeafPage(bytes, starts, true);
  }

  /** Page bytes of the records (PageMeasure's bytes of the leaf's entries). */
  get recordBytes(): number {
    return this.starts[this.count]! - this.starts[0]!;
  }

  /**
   * An owned copy with room for `capacityBytes` of records after the
   * header: the page a write edits. REQUIRES: the records take at most
   * `capacityBytes`.
   */
  ownedCopy(capacityBytes: number): LeafPage {
    const recordsStart = this.starts[0]!;
    const end = this.starts[this.count]!;
    assert.ok(end - recordsStart <= capacityBytes, 'the records fit the page they are copied into');
    const bytes = new Uint8Array(recordsStart + capacityBytes);
    bytes.set(this.bytes.subarray(0, end));
    return new LeafPage(bytes, this.starts.slice(), true);
  }

  /** Bytes of record `index`'s key. */
  keyLengthAt(index: number): number {
    return leafRecordKeyLength(this.bytes, this.starts[index]!);
  }

  /** Record `index`'s key as a key string. */
  keyAt(index: number): string {
    const start = this.starts[index]!;
    const keyStart = leafRecordKeyStart(this.bytes, start);
    return latin1Of(this.bytes, keyStart, keyStart + leafRecordKeyLength(this.bytes, start));
  }

  /**
   * Record `index`'s key as the caller gave it (keyStringToKey of keyAt),
   * made from its bytes: a scan hands out every key, and it used to make
   * the key string first, then test it for ASCII.
   */
  givenKeyAt(index: number): Key {
    const bytes = this.bytes;
    const start = this.starts[index]!;
    const keyStart = leafRecordKeyStart(bytes, start);
    return bytesToKey(bytes, keyStart, keyStart + leafRecordKeyLength(bytes, start), leafRecordKeyIsString(bytes, start));
  }

  /** Where record `index`'s inline value begins in `bytes` (it ends at starts[index + 1]); -1 for an extent value. */
  inlineValueStartAt(index: number): number {
    const bytes = this.bytes;
    const start = this.starts[index]!;
    if (!leafRecordIsInline(bytes, start)) return -1;
    return leafRecordKeyStart(bytes, start) + leafRecordKeyLength(bytes, start);
  }

  /** Record `index`'s entry: a new object each call (inline values view the page). */
  entryAt(index: number): IndexEntry {
    const bytes = this.bytes;
    const start = this.starts[index]!;
    const isString = leafRecordKeyIsString(bytes, start);
    if (leafRecordIsInline(bytes, start)) {
      if (this.owned) this.#viewed = true;
      const valueStart = leafRecordKeyStart(bytes, start) + leafRecordKeyLength(bytes, start);
      return new PageInlineEntry(bytes, valueStart, this.starts[index + 1]! - valueStart, isString);
    }
    return { isString, value: leafRecordExtentValue(bytes, view(bytes), start) };
  }

  /** Record `index`'s entry, viewing nothing of the page (an inline value is copied out). */
  detachedEntryAt(index: number): IndexEntry {
    const bytes = this.bytes;
    const start = this.starts[index]!;
    const isString = leafRecordKeyIsString(bytes, start);
    if (leafRecordIsInline(bytes, start)) {
      const valueStart = leafRecordKeyStart(bytes, start) + leafRecordKeyLength(bytes, start);
      // A copy: Buffer's slice() would be a view.
      return { isString, value: new Uint8Array(bytes.subarray(valueStart, this.starts[index + 1]!)) };
    }
    return { isString, value: leafRecordExtentValue(bytes, view(bytes), start) };
  }

  /** Record `index`'s key compared with `key` (negative, 0, positive: below, equal, above). */
  compareKeyAt(index: number, key: string): number {
    return compareRecordKeyWith(this.bytes, this.starts[index]!, key);
  }

  /**
   * Index of the first record whose key is >= `key` (count if none). The
   * last record first: keys written in ascending order land past it (as in
   * tree_node.ts's lowerBound).
   */
  lowerBound(key: string): number {
    let low = 0;
    let high = this.count;
    if (high > 0 && this.compareKeyAt(high - 1, key) < 0) return high;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.compareKeyAt(middle, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Index of the first record whose key is > `key` (count if none). */
  upperBound(key: string): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.compareKeyAt(middle, key) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The entry of `key`, or undefined; one of an owned page views nothing of it (detachedEntryAt). */
  find(key: string): IndexEntry | undefined {
    const index = this.lowerBound(key);
    if (index === this.count || this.compareKeyAt(index, key) !== 0) return undefined;
    return this.owned ? this.detachedEntryAt(index) : this.entryAt(index);
  }

  /** Every key and entry, in order: the leaf as a write copies it. */
  materialize(): { keys: string[]; entries: IndexEntry[] } {
    const keys = new Array<string>(this.count);
    const entries = new Array<IndexEntry>(this.count);
    for (let index = 0; index < this.count; index++) {
      keys[index] = this.keyAt(index);
      entries[index] = this.entryAt(index);
    }
    return { keys, entries };
  }

  // ---- Writes, to an owned page only. `recordBytes` is the new record's
  // size (PageMeasure.entryBytes of the key and entry); the caller has
  // checked that the records still fit the page.

  /** Writes the record of `key` and `entry` over record `index`, whose key is `key`. */
  replaceAt(index: number, key: string, entry: IndexEntry, recordBytes: number): void {
    const start = this.starts[index]!;
    const deltaBytes = recordBytes - (this.starts[index + 1]! - start);
    this.#beforeWrite(deltaBytes);
    this.#move(index + 1, deltaBytes);
    this.#write(start, key, entry, this.starts[index + 1]!);
  }

  /** Writes the record of `key` and `entry` as the new record `index` (the records from `index` on move up one). */
  insertAt(index: number, key: string, entry: IndexEntry, recordBytes: number): void {
    this.#beforeWrite(recordBytes);
    const start = this.starts[index]!;
    this.#move(index, recordBytes);
    // By hand, not Array.prototype.splice: the splice took most of insertAt's own time in a random load's profile (docs/benchmarks.md, "Session 35").
    const starts = this.starts;
    for (let at = starts.length; at > index; at--) starts[at] = starts[at - 1]!;
    starts[index] = start;
    this.count++;
    this.#write(start, key, entry, this.starts[index + 1]!);
  }

  /** insertAt(count, ...) without moving anything: the record of a key past the page's last. REQUIRES: it is. */
  append(key: string, entry: IndexEntry, recordBytes: number): void {
    this.#beforeWrite(recordBytes);
    const start = this.starts[this.count]!;
    this.starts.push(start + recordBytes);
    this.count++;
    this.#write(start, key, entry, start + recordBytes);
  }

  /** Appends records [from, to) of `source`, copied as they are. REQUIRES: their keys are above this page's. */
  appendRecordsOf(source: LeafPage, from: number, to: number): void {
    if (from === to) return;
    const runStart = source.starts[from]!;
    const runBytes = source.starts[to]! - runStart;
    this.#beforeWrite(runBytes);
    const end = this.starts[this.count]!;
    this.bytes.set(source.bytes.subarray(runStart, runStart + runBytes), end);
    this.starts.pop();
    for (let index = from; index <= to; index++) this.starts.push(end + source.starts[index]! - runStart);
    this.count += to - from;
  }

  /** Removes the records from `count` on (their bytes stay as they are, past the end). */
  removeFrom(count: number): void {
    assert.ok(this.owned && count >= 0 && count <= this.count, 'an owned page cut down to records it has');
    this.starts.length = count + 1;
    this.count = count;
  }

  /** Removes record `index` (the records after it move down one). */
  removeAt(index: number): void {
    const recordBytes = this.starts[index + 1]! - this.starts[index]!;
    this.#beforeWrite(-recordBytes);
    this.#move(index + 1, -recordBytes);
    this.starts.splice(index + 1, 1);
    this.count--;
  }

  /** Checks a write of an owned page that changes its records by `deltaBytes`; gives the page fresh bytes if views of the current ones are out. */
  #beforeWrite(deltaBytes: number): void {
    if (!this.owned) throw new Error('ringstore: a write to a leaf page as read from disk (copy it first: ownedCopy)');
    assert.ok(this.starts[this.count]! + deltaBytes <= this.bytes.length, 'an owned page\'s records fit its bytes');
    if (!this.#viewed) return;
    const fresh = new Uint8Array(this.bytes.length);
    fresh.set(this.bytes.subarray(0, this.starts[this.count]!));
    this.bytes = fresh;
    this.#viewed = false;
  }

  /** Moves records [from, count) by `deltaBytes`, and their starts with them. */
  #move(from: number, deltaBytes: number): void {
    if (deltaBytes === 0) return;
    const starts = this.starts;
    this.bytes.copyWithin(starts[from]! + deltaBytes, starts[from]!, starts[this.count]!);
    for (let index = from; index <= this.count; index++) starts[index] = starts[index]! + deltaBytes;
  }

  #write(start: number, key: string, entry: IndexEntry, end: number): void {
    const written = writeLeafRecordAt(this.bytes, start, key, entry);
    assert.equal(written, end, 'the record takes the bytes measured for it');
  }
}
