// RecordCache: the entries of keys that gets look up again and again, by key
// string, so that such a get is a Map lookup instead of a walk down the
// tree's branches and a search of a leaf's records. At 10 M keys an awaited
// get of a key whose path was cached took 1.1-1.7 µs, a third of it in the
// leaf search and a third in the branches, mostly waiting for memory; one
// answered by a record takes 0.55-0.64 µs (5 pairs; docs/benchmarks.md,
// session 31).
//
// What it holds: an inline value's entry, its value copied into memory of
// its own. Never a view of a page: a lent leaf's bytes are reused, and a
// view would keep its whole page alive past the page cache's budget.
// Extent values are not kept: their get is a device read anyway.
//
// Who comes in: a key getCached() found in a leaf in memory (PageTree) for
// the second time while a doorkeeper remembers the first. A key read from
// the device is not admitted: a cold get seldom repeats. Without the
// doorkeeper, uniform random gets over 1 M keys (more than the cache
// holds) made records of keys never asked again, which took half the
// pages' budget: 0.73 device reads a get against 0.58, 13.8 k gets/s
// against 15.4 k (npm run bench, random-get; docs/benchmarks.md, session
// 31). The doorkeeper remembers hashes of keys, two generations of half
// as many as the records' budget holds, at least 256: a key is admitted
// when asked again within about a budget's worth of other first
// lookups; a hash shared by two keys only admits one a lookup early. Its
// ~56 000 numbers at the default cache (~1.5 MiB) are outside
// cacheSizeBytes.
//
// Consistency: PageTree.set() and delete() forget a key before they change
// it, and nothing else changes what a key holds (merges and splits move
// records, not entries), so a record here is the tree's entry now.
//
// Memory: records share the page cache's budget (cacheSizeBytes). Each
// record's estimate is charged to the page cache as it comes in (which
// then evicts pages) and credited back as it leaves, so a store whose gets
// do not repeat keeps its whole budget for pages. At most a
// RECORD_CACHE_SHARE of the budget goes to records; past it the oldest
// record not looked up since the clock hand last passed it leaves (CLOCK,
// as PageCache). A record replaces its leaf for the gets of its key: a leaf
// all of whose hot keys are records is no longer touched, and the page
// cache's own clock lets it go.
import { compactClock } from './page_cache.js';
import { ownedEntry, type IndexEntry } from './store_index.js';

/** Records take at most 1 / RECORD_CACHE_SHARE of the cache's budget. */
export const RECORD_CACHE_SHARE = 2;
/**
 * Memory a record takes beyond its key's chars and its value's bytes: the
 * Map's entry, the key string's header, the entry and record objects, the
 * value's Uint8Array and ArrayBuffer objects and its allocation's header.
 * Measured ~300-330 bytes (process RSS over 200 000 records, Node 20);
 * rounded up.
 */
export const RECORD_OVERHEAD_BYTES = 384;
/** Holes the clock may hold beyond one per record before it is compacted. */
const CLOCK_HOLES_MIN = 64;
/** The fewest hashes a generation of the doorkeeper remembers, however small the budget. */
const SEEN_ONCE_GENERATION_MIN = 256;
/** Memory a record of a typical key and value takes, for sizing the doorkeeper only. */
const TYPICAL_RECORD_BYTES = RECORD_OVERHEAD_BYTES + 64;

interface CachedRecord {
  readonly key: string;
  readonly entry: IndexEntry;
  readonly memoryBytes: number;
  /** Looked up since the clock hand last passed it. */
  referenced: boolean;
  /** Its index in the clock. */
  slot: number;
}

export class RecordCache {
  readonly #records = new Map<string, CachedRecord>();
  /** The records in the order eviction looks at them, from #hand on; holes (undefined) where a record left. */
  #clock: (CachedRecord | undefined)[] = [];
  #hand = 0;
  /** Holes in #clock at or after the hand. */
  #holes = 0;
  readonly #bytesMax: number;
  #bytes = 0;
  /** Charges (positive) or credits (negative) the page cache with records' memory. */
  readonly #charge: (deltaBytes: number) => void;
  /** Hashes of keys looked up once, in two generations (the doorkeeper). */
  #seenOnce = new Set<number>();
  #seenOnceOlder = new Set<number>();
  readonly #seenOnceGenerationMax: number;
  hits = 0;

  /** `bytesMax`: the most the records may take; `charge`: told every change of what they take. */
  constructor(bytesMax: number, charge: (deltaBytes: number) => void) {
    if (!(Number.isSafeInteger(bytesMax) && bytesMax >= 0)) throw new RangeError(`bytesMax must be an integer >= 0, got ${bytesMax}`);
    this.#bytesMax = bytesMax;
    this.#charge = charge;
    this.#seenOnceGenerationMax = Math.max(SEEN_ONCE_GENERATION_MIN, Math.floor(bytesMax / (2 * TYPICAL_RECORD_BYTES)));
  }

  get size(): number {
    return this.#records.size;
  }

  /** Slots of the clock, holes and passed ones included: at most about twice the records, plus CLOCK_HOLES_MIN (for tests). */
  get clockLength(): number {
    return this.#clock.length;
  }

  /** The records' memory by the estimate (charged to the page cache). */
  get bytes(): number {
    return this.#bytes;
  }

  /** The entry of `key` if it is a record (and marks it used). */
  get(key: string): IndexEntry | undefined {
    const record = this.#records.get(key);
    if (record === undefined) return undefined;
    record.referenced = true;
    this.hits++;
    return record.entry;
  }

  /**
   * Offers `entry` as the record of `key`: kept, an inline value's copied,
   * if the doorkeeper saw the key lately and it fits the budget at all;
   * then evicts down to the budget. REQUIRES: `entry` is the tree's entry
   * of `key` now, and `key` is no record.
   */
  admit(key: string, entry: IndexEntry): void {
    const value = entry.value;
    if (!(value instanceof Uint8Array)) return;
    const memoryBytes = RECORD_OVERHEAD_BYTES + key.length + value.length;
    if (memoryBytes > this.#bytesMax) return;
    if (!this.#seenBefore(key)) return;
    if (this.#records.has(key)) throw new Error('ringstore: a record was admitted twice');
    // Its own ArrayBuffer: nothing shared with a page or a pool.
    const record: CachedRecord = { key, entry: ownedEntry(entry), memoryBytes, referenced: false, slot: this.#clock.length };
    this.#records.set(key, record);
    this.#clock.push(record);
    this.#bytes += memoryBytes;
    this.#charge(memoryBytes);
    this.#evict();
  }

  /** Whether the doorkeeper remembers `key`; remembers it if not. */
  #seenBefore(key: string): boolean {
    const hash = hashOfKey(key);
    if (this.#seenOnce.has(hash) || this.#seenOnceOlder.has(hash)) return true;
    this.#seenOnce.add(hash);
    if (this.#seenOnce.size >= this.#seenOnceGenerationMax) {
      this.#seenOnceOlder = this.#seenOnce;
      this.#seenOnce = new Set();
    }
    return false;
  }

  /** Forgets the record of `key`, if any: its entry is about to change. */
  forget(key: string): void {
    const record = this.#records.get(key);
    if (record === undefined) return;
    this.#remove(record);
  }

  /** Forgets every record (the store closed). */
  clear(): void {
    const bytes = this.#bytes;
    this.#records.clear();
    this.#clock = [];
    this.#hand = 0;
    this.#holes = 0;
    this.#bytes = 0;
    this.#seenOnce = new Set();
    this.#seenOnceOlder = new Set();
    if (bytes > 0) this.#charge(-bytes);
  }

  #remove(record: CachedRecord): void {
    this.#records.delete(record.key);
    if (record.slot >= this.#hand) {
      this.#clock[record.slot] = undefined;
      this.#holes++;
    }
    this.#bytes -= record.memoryBytes;
    this.#charge(-record.memoryBytes);
    // Here too, not only after evictions: below its budget the hand never
    // moves, and a key put and got again and again left a hole a write
    // (found by a review: 10 MiB of heap over 1 M writes of one hot key,
    // outside the estimate).
    this.#compactIfSparse();
  }

  /** Evicts while over budget, from the hand on; a record looked up since the hand passed it goes to the back once more. */
  #evict(): void {
    while (this.#bytes > this.#bytesMax) {
      if (this.#hand === this.#clock.length) this.#compact();
      const record = this.#clock[this.#hand];
      this.#clock[this.#hand++] = undefined;
      if (record === undefined) {
        this.#holes--;
        continue;
      }
      if (record.referenced) {
        record.referenced = false;
        record.slot = this.#clock.length;
        this.#clock.push(record);
        continue;
      }
      record.slot = -1;
      this.#remove(record);
    }
    this.#compactIfSparse();
  }

  /** Compacts once the passed slots and holes outnumber the records by CLOCK_HOLES_MIN. */
  #compactIfSparse(): void {
    if (this.#hand + this.#holes > this.#records.size + CLOCK_HOLES_MIN) this.#compact();
  }

  /** Drops the passed slots and holes: the records from the hand on, in order, renumbered. */
  #compact(): void {
    this.#clock = compactClock(this.#clock, this.#hand, (record, slot) => {
      record.slot = slot;
    });
    this.#hand = 0;
    this.#holes = 0;
  }
}

/** FNV-1a over a key string's chars (one byte each), cut to 30 bits: the doorkeeper's hash, a small integer V8 keeps unboxed. */
function hashOfKey(key: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < key.length; index++) hash = Math.imul(hash ^ key.charCodeAt(index), 0x01000193);
  return hash & 0x3fffffff;
}
