// FreeBitmap: which blocks of the data region are in use, one bit a block,
// bit i for the region's block i — the same bits, in the same order, as the
// free set a checkpoint writes (format/free_set.ts), so open copies the
// free set into it and a checkpoint copies it back out, O(bitmap bytes)
// both ways with no object per free run.
//
// The bits are kept in 32-bit words (bit i is bit i & 31 of word i >> 5:
// on a little-endian machine, byte for byte the on-disk layout). Searches
// skip what cannot hold what they look for through a summary per chunk of
// CHUNK_BITS blocks: its free-block count, kept exact on every change, and
// its longest free run and free runs at either end, recomputed when a
// search needs them after the chunk changed.
//
// The words cover whole chunks; bits past the region's end are set (in
// use), so no search ever finds them and no run extends past the end.
// Indexes here are relative to the data region's start; the allocator
// (engine/extent_allocator.ts) turns them into block indexes.

const WORD_BITS = 32;
/**
 * Words in a chunk: 1024 blocks. A chunk's summary (four int32 and a byte)
 * is 13 % of its 128 bytes of bits; a search that skips every chunk reads
 * 1/32 of the words (2 441 chunks for 10 M keys' 2.5 M blocks);
 * a search that scans a candidate chunk reads at most 32 words.
 */
const CHUNK_WORDS = 32;
const CHUNK_WORD_SHIFT = 5;
const CHUNK_BITS = CHUNK_WORDS * WORD_BITS;
const CHUNK_BIT_SHIFT = 10;
/**
 * Most blocks a bitmap describes: indexes stay below 2^32, so the shifts
 * and masks of 32-bit words apply to them. 2^32 blocks would be a 16 TiB
 * store of 4 KiB blocks, with a 512 MiB free set written by every
 * checkpoint.
 */
export const FREE_BITMAP_BITS_MAX = 2 ** 32 - CHUNK_BITS;

if (CHUNK_WORDS !== 1 << CHUNK_WORD_SHIFT || CHUNK_BITS !== 1 << CHUNK_BIT_SHIFT) throw new Error('free_bitmap: chunk constants disagree');
// The words are filled from and copied to the free set's bytes through a
// byte view: that needs the bytes of a word least significant first.
if (new Uint8Array(Uint32Array.of(1).buffer)[0] !== 1) throw new Error('ringstore: the free bitmap needs a little-endian machine');

/** A free run: [start, start + count), bit indexes. */
export interface BitRun {
  start: number;
  count: number;
}

export class FreeBitmap {
  /** 1 = in use; bits at and past #bitCount are set. */
  #words: Int32Array;
  #bitCount: number;
  #freeCount: number;
  /** Free bits of each chunk: exact at all times. */
  #chunkFree: Int32Array;
  /** Longest free run inside each chunk, and the free runs at its start and end (all clipped to the chunk); valid unless #chunkStale. */
  #chunkLongest: Int32Array;
  #chunkHead: Int32Array;
  #chunkTail: Int32Array;
  #chunkStale: Uint8Array;

  private constructor(bitCount: number, words: Int32Array) {
    if (!Number.isSafeInteger(bitCount) || bitCount < 0 || bitCount > FREE_BITMAP_BITS_MAX) throw new RangeError(`a free bitmap of ${bitCount} blocks (at most ${FREE_BITMAP_BITS_MAX})`);
    const chunkCount = Math.ceil(bitCount / CHUNK_BITS);
    if (words.length !== chunkCount * CHUNK_WORDS) throw new Error(`ringstore: ${words.length} words for ${chunkCount} chunks`);
    this.#bitCount = bitCount;
    this.#words = words;
    this.#chunkFree = new Int32Array(chunkCount);
    this.#chunkLongest = new Int32Array(chunkCount);
    this.#chunkHead = new Int32Array(chunkCount);
    this.#chunkTail = new Int32Array(chunkCount);
    this.#chunkStale = new Uint8Array(chunkCount).fill(1);
    this.#setPadding();
    this.#freeCount = 0;
    for (let chunk = 0; chunk < chunkCount; chunk++) {
      const free = chunkFreeBits(words, chunk);
      this.#chunkFree[chunk] = free;
      this.#freeCount += free;
    }
  }

  /** `bitCount` bits, every one in use. */
  static allInUse(bitCount: number): FreeBitmap {
    return new FreeBitmap(bitCount, new Int32Array(Math.ceil(bitCount / CHUNK_BITS) * CHUNK_WORDS).fill(-1));
  }

  /** `bitCount` bits, every one free. */
  static allFree(bitCount: number): FreeBitmap {
    return new FreeBitmap(bitCount, new Int32Array(Math.ceil(bitCount / CHUNK_BITS) * CHUNK_WORDS));
  }

  /**
   * `bitCount` bits whose first ones are the in-use bits `bytes` holds
   * (bit i in byte i >> 3, bit i & 7); every bit past them is free. O(bytes).
   * REQUIRES: bytes.length * 8 <= bitCount rounded up to a byte.
   */
  static fromInUseBytes(bytes: Uint8Array, bitCount: number): FreeBitmap {
    const words = new Int32Array(Math.ceil(bitCount / CHUNK_BITS) * CHUNK_WORDS);
    if (bytes.length > Math.ceil(bitCount / 8)) throw new Error(`ringstore: ${bytes.length} bytes of bits for ${bitCount} blocks`);
    new Uint8Array(words.buffer).set(bytes);
    return new FreeBitmap(bitCount, words);
  }

  get bitCount(): number {
    return this.#bitCount;
  }

  get freeCount(): number {
    return this.#freeCount;
  }

  /** Extends the bitmap to `bitCount` bits; the new ones are free. */
  grow(bitCount: number): void {
    const old = this.#bitCount;
    if (!Number.isSafeInteger(bitCount) || bitCount < old || bitCount > FREE_BITMAP_BITS_MAX) throw new RangeError(`growing a free bitmap from ${old} to ${bitCount} blocks`);
    if (bitCount === old) return;
    const oldChunkCount = this.#chunkFree.length;
    const chunkCount = Math.ceil(bitCount / CHUNK_BITS);
    if (chunkCount > oldChunkCount) {
      const words = new Int32Array(chunkCount * CHUNK_WORDS).fill(-1);
      words.set(this.#words);
      this.#words = words;
      const grown = (array: Int32Array): Int32Array => {
        const bigger = new Int32Array(chunkCount);
        bigger.set(array);
        return bigger;
      };
      this.#chunkFree = grown(this.#chunkFree);
      this.#chunkLongest = grown(this.#chunkLongest);
      this.#chunkHead = grown(this.#chunkHead);
      this.#chunkTail = grown(this.#chunkTail);
      const stale = new Uint8Array(chunkCount).fill(1);
      stale.set(this.#chunkStale);
      this.#chunkStale = stale;
    }
    // The padding bits past the old end become the new, free bits.
    this.#bitCount = bitCount;
    this.#setPadding();
    this.#release(old, bitCount);
  }

  /** True if every bit of [from, to) is free. */
  isAllFree(from: number, to: number): boolean {
    return this.firstInUse(from, to) < 0;
  }

  /** True if no bit of [from, to) is free. */
  isAllInUse(from: number, to: number): boolean {
    return this.firstFree(from, to) < 0;
  }

  /** The first free bit of [from, to), or -1. Skips chunks with nothing free. */
  firstFree(from: number, to: number): number {
    return this.#firstInState(from, to, false);
  }

  /** The first bit of [from, to) in use, or -1. Skips chunks that are all free. */
  firstInUse(from: number, to: number): number {
    return this.#firstInState(from, to, true);
  }

  /**
   * The first bit of [from, to) that is in use (`inUse`) or free, or -1.
   * Words are read as "bits in the state sought" (free ones inverted), and
   * a chunk with none of them (by its exact free count) is skipped whole.
   */
  #firstInState(from: number, to: number, inUse: boolean): number {
    to = Math.min(to, this.#bitCount);
    if (from >= to) return -1;
    const words = this.#words;
    const flip = inUse ? 0 : -1;
    const chunkFreeWithout = inUse ? CHUNK_BITS : 0;
    const lastWord = (to - 1) >>> 5;
    let word = from >>> 5;
    let sought = (words[word] ^ flip) & (-1 << (from & 31));
    for (;;) {
      if (sought !== 0) {
        const index = word * WORD_BITS + lowestBit(sought);
        return index < to ? index : -1;
      }
      word++;
      if (word > lastWord) return -1;
      if ((word & (CHUNK_WORDS - 1)) === 0) {
        let chunk = word >>> CHUNK_WORD_SHIFT;
        while (chunk < this.#chunkFree.length && this.#chunkFree[chunk] === chunkFreeWithout) chunk++;
        word = chunk * CHUNK_WORDS;
        if (word > lastWord) return -1;
      }
      sought = words[word] ^ flip;
    }
  }

  /** Marks [from, to) in use. REQUIRES: every bit of it is free. */
  take(from: number, to: number): void {
    if (!(from >= 0 && from < to && to <= this.#bitCount)) throw new Error(`ringstore: taking bits ${from}..${to} of ${this.#bitCount}`);
    this.#setRange(from, to, true);
  }

  /** Marks [from, to) free. REQUIRES: every bit of it is in use. */
  release(from: number, to: number): void {
    if (!(from >= 0 && from < to && to <= this.#bitCount)) throw new Error(`ringstore: releasing bits ${from}..${to} of ${this.#bitCount}`);
    this.#release(from, to);
  }

  #release(from: number, to: number): void {
    this.#setRange(from, to, false);
  }

  /**
   * Marks [from, to) in use (`inUse`) or free, a word at a time, keeping
   * the chunk counts exact and their summaries stale. Throws if any bit is
   * in that state already (a double take or free).
   */
  #setRange(from: number, to: number, inUse: boolean): void {
    const words = this.#words;
    let index = from;
    while (index < to) {
      const word = index >>> 5;
      const high = Math.min(WORD_BITS, to - word * WORD_BITS);
      const mask = (-1 << (index & 31)) & (-1 >>> (WORD_BITS - high));
      const usedInMask = words[word] & mask;
      if (inUse ? usedInMask !== 0 : usedInMask !== mask) {
        throw new Error(`ringstore: ${inUse ? 'taking' : 'releasing'} bits ${from}..${to}, some of which are ${inUse ? 'in use' : 'free'}`);
      }
      words[word] = inUse ? words[word] | mask : words[word] & ~mask;
      const chunk = word >>> CHUNK_WORD_SHIFT;
      this.#chunkFree[chunk] += inUse ? -bitCount32(mask) : bitCount32(mask);
      this.#chunkStale[chunk] = 1;
      index = word * WORD_BITS + high;
    }
    this.#freeCount += inUse ? from - to : to - from;
  }

  /** Maximal free runs. O(words). */
  runCount(): number {
    const words = this.#words;
    const wordCount = Math.ceil(this.#bitCount / WORD_BITS);
    let count = 0;
    // Bit 31 of the previous word, as bit 0: a run continues across words.
    let previousTopFree = 0;
    for (let word = 0; word < wordCount; word++) {
      const free = ~words[word];
      // A run starts at a free bit whose lower neighbour is in use.
      count += bitCount32(free & ~((free << 1) | previousTopFree));
      previousTopFree = free >>> 31;
    }
    return count;
  }

  /** The maximal free runs, in order. O(words + runs). */
  runs(): BitRun[] {
    const out: BitRun[] = [];
    let index = 0;
    for (;;) {
      const start = this.firstFree(index, this.#bitCount);
      if (start < 0) return out;
      const end = this.#runEnd(start);
      out.push({ start, count: end - start });
      index = end;
    }
  }

  /**
   * The first free run of at least `count` bits that starts in [from,
   * startLimit), the run that holds `from` counting from `from` on; -1 if
   * there is none. Chunks from which no such run can start are skipped by
   * their summaries, so a search on a fragmented region reads the summaries
   * and the words of the chunks that may hold one, not every word.
   */
  firstRunOfAtLeast(count: number, from: number, startLimit: number): number {
    if (!(count >= 1)) throw new Error(`ringstore: a run of ${count} bits`);
    startLimit = Math.min(startLimit, this.#bitCount);
    let index = from;
    while (index < startLimit) {
      const chunk = index >>> CHUNK_BIT_SHIFT;
      const chunkEnd = Math.min((chunk + 1) * CHUNK_BITS, startLimit);
      if (this.#chunkFree[chunk] === 0 || (count > 1 && !this.#mayStartRunOf(chunk, count))) {
        // A run that crosses into the next chunk started here, too short:
        // searching from that chunk's start sees less of it.
        index = chunkEnd;
        continue;
      }
      while (index < chunkEnd) {
        const start = this.firstFree(index, chunkEnd);
        if (start < 0) break;
        const limit = start + count;
        if (limit > this.#bitCount) return -1; // every later run ends at the region's end too
        const used = this.firstInUse(start, limit);
        if (used < 0) return start;
        index = used;
      }
      index = Math.max(index, chunkEnd);
    }
    return -1;
  }

  /**
   * The `k` longest maximal free runs, longest first and, among runs of a
   * length, lowest start first. Once it has `k`, it skips the chunks from
   * which no run longer than its shortest can start.
   */
  longestRuns(k: number): BitRun[] {
    if (!(k >= 1)) throw new Error(`ringstore: the ${k} longest runs`);
    const best: BitRun[] = [];
    let index = 0;
    while (index < this.#bitCount) {
      const chunk = index >>> CHUNK_BIT_SHIFT;
      const chunkEnd = Math.min((chunk + 1) * CHUNK_BITS, this.#bitCount);
      if (this.#chunkFree[chunk] === 0 || (best.length === k && !this.#mayStartRunOf(chunk, best[k - 1].count + 1))) {
        // A run crossing into the next chunk is seen there from the chunk's
        // start: shorter than it is, so no longer than the shortest kept.
        index = chunkEnd;
        continue;
      }
      const start = this.firstFree(index, chunkEnd);
      if (start < 0) {
        index = chunkEnd;
        continue;
      }
      const end = this.#runEnd(start);
      const runCount = end - start;
      if (best.length < k || runCount > best[k - 1].count) {
        // After every run at least as long: ties keep the lower start first.
        let at = best.length;
        while (at > 0 && best[at - 1].count < runCount) at--;
        best.splice(at, 0, { start, count: runCount });
        if (best.length > k) best.pop();
      }
      index = end;
    }
    return best;
  }

  /** Copies the first `bitCount` bits, in use = 1, into `target` (bit i in byte i >> 3); bits past them in its last byte are zero. */
  copyInUseBytes(target: Uint8Array, bitCount: number): void {
    if (bitCount > this.#bitCount || target.length !== Math.ceil(bitCount / 8)) throw new Error(`ringstore: copying ${bitCount} of ${this.#bitCount} bits into ${target.length} bytes`);
    target.set(new Uint8Array(this.#words.buffer, 0, target.length));
    if (bitCount % 8 !== 0) target[target.length - 1] &= (1 << (bitCount % 8)) - 1;
  }

  /** End (exclusive) of the free run that holds `start`: the first bit in use after it. */
  #runEnd(start: number): number {
    const end = this.firstInUse(start, this.#bitCount);
    return end < 0 ? this.#bitCount : end;
  }

  /** Whether a free run of `count` bits may start in `chunk` (false: none can). */
  #mayStartRunOf(chunk: number, count: number): boolean {
    // Fewer free bits than asked for and the last one in use: no run
    // reaches `count`, inside the chunk or across its end. No summary needed.
    const lastWord = this.#words[chunk * CHUNK_WORDS + CHUNK_WORDS - 1];
    if (this.#chunkFree[chunk] < count && lastWord < 0) return false;
    this.#summarize(chunk);
    if (this.#chunkLongest[chunk] >= count) return true;
    // The run at the chunk's end, continued through the chunks after it.
    let length = this.#chunkTail[chunk];
    if (length === 0) return false;
    for (let next = chunk + 1; length < count && next < this.#chunkFree.length; next++) {
      if (this.#chunkFree[next] === CHUNK_BITS) {
        length += CHUNK_BITS;
        continue;
      }
      this.#summarize(next);
      length += this.#chunkHead[next];
      break;
    }
    return length >= count;
  }

  /** Recomputes the run summary of `chunk` if it changed since. */
  #summarize(chunk: number): void {
    if (this.#chunkStale[chunk] === 0) return;
    const words = this.#words;
    const first = chunk * CHUNK_WORDS;
    let run = 0;
    let longest = 0;
    let head = -1;
    for (let word = first; word < first + CHUNK_WORDS; word++) {
      const used = words[word];
      if (used === 0) {
        run += WORD_BITS;
        continue;
      }
      // Free bits below the lowest one in use end the current run.
      run += lowestBit(used);
      if (head < 0) head = run;
      if (run > longest) longest = run;
      if (used !== -1) {
        const inside = longestOnes(~used);
        if (inside > longest) longest = inside;
      }
      // Free bits above the highest one in use start the next.
      run = Math.clz32(used);
    }
    if (run > longest) longest = run;
    this.#chunkHead[chunk] = head < 0 ? run : head;
    this.#chunkTail[chunk] = run;
    this.#chunkLongest[chunk] = longest;
    this.#chunkStale[chunk] = 0;
  }

  /** Sets every bit from #bitCount to the end of the words. */
  #setPadding(): void {
    const words = this.#words;
    const end = this.#bitCount;
    if (end % WORD_BITS !== 0) words[end >>> 5] |= -1 << (end & 31);
    words.fill(-1, Math.ceil(end / WORD_BITS));
  }

  /** Test hook: the summaries and counts against a recomputation from the bits. */
  checkSummaries(): void {
    let free = 0;
    for (let chunk = 0; chunk < this.#chunkFree.length; chunk++) {
      const bits = chunkFreeBits(this.#words, chunk);
      if (bits !== this.#chunkFree[chunk]) throw new Error(`ringstore: chunk ${chunk} counts ${this.#chunkFree[chunk]} free bits, has ${bits}`);
      free += bits;
      if (this.#chunkStale[chunk] === 0) {
        const kept = [this.#chunkHead[chunk], this.#chunkTail[chunk], this.#chunkLongest[chunk]];
        this.#chunkStale[chunk] = 1;
        this.#summarize(chunk);
        const fresh = [this.#chunkHead[chunk], this.#chunkTail[chunk], this.#chunkLongest[chunk]];
        if (kept.join() !== fresh.join()) throw new Error(`ringstore: chunk ${chunk} summary ${kept} is stale (${fresh})`);
      }
    }
    if (free !== this.#freeCount) throw new Error(`ringstore: ${this.#freeCount} free bits counted, ${free} in the words`);
    const end = this.#bitCount;
    if (end % WORD_BITS !== 0 && (this.#words[end >>> 5] | ((1 << (end & 31)) - 1)) !== -1) throw new Error('ringstore: padding bits are free');
  }
}

/** Index of the lowest set bit of a nonzero word. */
function lowestBit(word: number): number {
  return 31 - Math.clz32(word & -word);
}

function bitCount32(word: number): number {
  let x = word - ((word >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Length of the longest run of set bits in a word. */
function longestOnes(word: number): number {
  let length = 0;
  // Each step shortens every run by one.
  while (word !== 0) {
    word &= word << 1;
    length++;
  }
  return length;
}

function chunkFreeBits(words: Int32Array, chunk: number): number {
  let free = 0;
  for (let word = chunk * CHUNK_WORDS; word < (chunk + 1) * CHUNK_WORDS; word++) free += WORD_BITS - bitCount32(words[word]);
  return free;
}
