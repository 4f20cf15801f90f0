// The keys of the scale section: 16-byte keys in random order, computed from
// their index (and the index from the key), so that no process holds a list
// of N keys and pollutes the memory figures it reports.
//
// Random key `index` is a 4-round Feistel network over the index's two 32-bit
// halves, written as 16 lowercase hex digits. A Feistel network is a
// permutation whatever its round function, so distinct indexes give distinct
// keys, and it inverts by running the rounds backwards, so a scan can check
// each value it sees. Hex digits keep the keys ASCII, whose bytewise order is
// string order, as StoreAdapter requires.
import assert from 'node:assert/strict';

/** Bytes (characters) of every scale key. */
export const SCALE_KEY_SIZE_BYTES = 16;
/** Largest index a key can be computed for: the index is a safe integer split into two 32-bit halves. */
export const SCALE_KEY_INDEX_MAX = Number.MAX_SAFE_INTEGER;

const TWO_TO_32 = 2 ** 32;
/** Round keys: arbitrary odd constants (the first from xorshift's seed in store_workloads.ts). */
const ROUND_KEYS = [0x2545f491, 0x9e3779b9, 0x85ebca6b, 0xc2b2ae35] as const;

/** The round function: murmur3's 32-bit finaliser of `half` mixed with the round key. */
function round(half: number, roundKey: number): number {
  let x = (half ^ roundKey) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

function hex8(value: number): string {
  return value.toString(16).padStart(8, '0');
}

/** The key of random-order index `index`: 16 hex digits, uniformly spread over the 64-bit key space. */
export function randomScaleKey(index: number): string {
  assert.ok(Number.isInteger(index) && index >= 0 && index <= SCALE_KEY_INDEX_MAX);
  let left = Math.floor(index / TWO_TO_32) >>> 0;
  let right = index >>> 0;
  for (const roundKey of ROUND_KEYS) {
    const next = (left ^ round(right, roundKey)) >>> 0;
    left = right;
    right = next;
  }
  return hex8(left) + hex8(right);
}

/** The index whose randomScaleKey is `key`; undefined when `key` is not the key of any valid index. */
export function indexOfRandomScaleKey(key: string): number | undefined {
  if (!/^[0-9a-f]{16}$/.test(key)) return undefined;
  let left = Number.parseInt(key.slice(0, 8), 16);
  let right = Number.parseInt(key.slice(8), 16);
  for (let i = ROUND_KEYS.length - 1; i >= 0; i--) {
    const previous = (right ^ round(left, ROUND_KEYS[i])) >>> 0;
    right = left;
    left = previous;
  }
  const index = left * TWO_TO_32 + right;
  return index <= SCALE_KEY_INDEX_MAX ? index : undefined;
}

/** The key of sorted-load index `index`: the index in 16 hex digits, so keys ascend with the index. */
export function sortedScaleKey(index: number): string {
  assert.ok(Number.isInteger(index) && index >= 0 && index <= SCALE_KEY_INDEX_MAX);
  return index.toString(16).padStart(SCALE_KEY_SIZE_BYTES, '0');
}

/**
 * How much wider than its share of the key space the first pass of
 * firstRandomScaleKeyIndexes looks: the random keys are uniform, so the
 * count found in a range is binomial, and 25% over is hundreds of standard
 * deviations for counts of thousands (a short pass is retried wider anyway).
 */
const KEY_RANGE_SLACK = 1.25;

/**
 * The indexes of the `count` smallest random keys of indexes 0..keyCount-1
 * (all of them when keyCount ≤ count), in ascending key order: a run of keys
 * consecutive in key order, so their leaves are a run of adjacent leaves.
 * Computes every key once and keeps only those in the first part of the key
 * space (no list of keyCount keys): ~1 s per million keys here.
 */
export function firstRandomScaleKeyIndexes(keyCount: number, count: number): Uint32Array {
  assert.ok(Number.isInteger(keyCount) && keyCount >= 0 && keyCount <= TWO_TO_32);
  assert.ok(Number.isInteger(count) && count >= 0);
  const wanted = Math.min(count, keyCount);
  // Keys are compared by their first 32 bits: below `prefixBound` is in range.
  for (let share = Math.min(1, (wanted / Math.max(1, keyCount)) * KEY_RANGE_SLACK); ; share = Math.min(1, share * 2)) {
    const prefixBound = share === 1 ? TWO_TO_32 : Math.floor(share * TWO_TO_32);
    const found: { index: number; key: string }[] = [];
    for (let index = 0; index < keyCount; index++) {
      const key = randomScaleKey(index);
      if (Number.parseInt(key.slice(0, 8), 16) < prefixBound) found.push({ index, key });
    }
    if (found.length < wanted && share < 1) continue;
    assert.ok(found.length >= wanted);
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return Uint32Array.from(found.slice(0, wanted), (entry) => entry.index);
  }
}
