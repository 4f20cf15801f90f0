// LeafPage: a clean leaf as the page it was read from holds it, searched in
// its bytes. A leaf read for a lookup becomes no key strings and no entry
// objects: a get makes the one entry it returns. A write's copy of the
// leaf keeps this page and records only what it changes (edited form,
// engine/tree_node.ts); its records become keys and entries
// (materialize()) only when the leaf must change shape or be read by
// position.
//
// Why: a leaf read into keys and entries cost, at 1 M keys, ~70 objects
// (a latin1 string and an entry per record, their views), most of a cold
// get's CPU and of its garbage, and they filled the page cache's budget
// with objects no lookup needed (docs/architecture.md, "Leaves in page form").
//
// Key strings hold one byte per char (engine/key_codec.ts), so a key string
// is compared with a record's key bytes char by byte: the same bytewise
// order as the tree's string compares.
import { view } from '../format/bytes.js';
import {
  compareRecordKeyWith,
  leafRecordExtentValue,
  leafRecordIsInline,
  leafRecordKeyIsString,
  leafRecordKeyLength,
  leafRecordKeyStart,
} from '../format/page.js';
import { latin1Of } from './key_codec.js';
import { PageInlineEntry } from './page_entry.js';
import type { IndexEntry } from './store_index.js';

export class LeafPage {
  /**
   * The page's used bytes (header and records): the inline values of
   * entries made from it are views into them. Never reused, except those of
   * a leaf lent to a scan (TreePageIo.lendLeaf), which go back to the read
   * pool once its run is over: nothing may keep a view of them past it.
   */
  readonly bytes: Uint8Array;
  /** Where record i begins in `bytes`, for i in [0, count]; starts[count] is the end of the records. */
  readonly starts: readonly number[];
  readonly count: number;

  /** REQUIRES: `starts` are the records of `bytes` as format/page.ts scanLeafRecords checked them. */
  constructor(bytes: Uint8Array, starts: readonly number[]) {
    this.bytes = bytes;
    this.starts = starts;
    this.count = starts.length - 1;
  }

  /** Page bytes of the records (PageMeasure's bytes of the leaf's entries). */
  get recordBytes(): number {
    return this.starts[this.count]! - this.starts[0]!;
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

  /** Record `index`'s entry: a new object each call (inline values view the page). */
  entryAt(index: number): IndexEntry {
    const bytes = this.bytes;
    const start = this.starts[index]!;
    const isString = leafRecordKeyIsString(bytes, start);
    if (leafRecordIsInline(bytes, start)) {
      const valueStart = leafRecordKeyStart(bytes, start) + leafRecordKeyLength(bytes, start);
      return new PageInlineEntry(bytes, valueStart, this.starts[index + 1]! - valueStart, isString);
    }
    return { isString, value: leafRecordExtentValue(bytes, view(bytes), start) };
  }

  /** Record `index`'s key compared with `key` (negative, 0, positive: below, equal, above). */
  compareKeyAt(index: number, key: string): number {
    return compareRecordKeyWith(this.bytes, this.starts[index]!, key);
  }

  /** Index of the first record whose key is >= `key` (count if none). */
  lowerBound(key: string): number {
    let low = 0;
    let high = this.count;
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

  /** The entry of `key`, or undefined. */
  find(key: string): IndexEntry | undefined {
    const index = this.lowerBound(key);
    return index < this.count && this.compareKeyAt(index, key) === 0 ? this.entryAt(index) : undefined;
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
}
