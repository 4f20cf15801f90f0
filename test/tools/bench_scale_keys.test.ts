// The scale section's keys (tools/bench/scale_keys.ts): 16 bytes, distinct,
// in random order, and invertible so that a scan can check what it sees.
import assert from 'node:assert/strict';

import { firstRandomScaleKeyIndexes, indexOfRandomScaleKey, randomScaleKey, SCALE_KEY_SIZE_BYTES, sortedScaleKey } from '../../tools/bench/scale_keys.js';

/** Indexes checked exhaustively: enough for collisions or a broken inverse to show. */
const INDEX_COUNT = 100_000;

describe('scale keys', () => {
  it('gives every index a distinct 16-byte hex key that maps back to the index', () => {
    const seen = new Set<string>();
    for (let index = 0; index < INDEX_COUNT; index++) {
      const key = randomScaleKey(index);
      assert.equal(key.length, SCALE_KEY_SIZE_BYTES);
      assert.match(key, /^[0-9a-f]{16}$/);
      assert.equal(indexOfRandomScaleKey(key), index);
      seen.add(key);
    }
    assert.equal(seen.size, INDEX_COUNT);
  });

  it('maps back indexes beyond 32 bits, up to the largest safe integer', () => {
    for (const index of [2 ** 32 - 1, 2 ** 32, 10_000_000_000, Number.MAX_SAFE_INTEGER]) assert.equal(indexOfRandomScaleKey(randomScaleKey(index)), index);
  });

  it('puts consecutive indexes in random key order', () => {
    // Ascending pairs among consecutive keys: about half when the order is random.
    let ascending = 0;
    for (let index = 0; index < INDEX_COUNT; index++) if (randomScaleKey(index) < randomScaleKey(index + 1)) ascending++;
    assert.ok(Math.abs(ascending / INDEX_COUNT - 0.5) < 0.01, `${ascending} of ${INDEX_COUNT} consecutive pairs ascend`);
  });

  it('refuses keys that are not hex or not 16 characters, and keys of indexes past the largest safe integer', () => {
    assert.equal(indexOfRandomScaleKey('0123456789abcdeg'), undefined);
    assert.equal(indexOfRandomScaleKey('0123456789ABCDEF'), undefined);
    assert.equal(indexOfRandomScaleKey('0123'), undefined);
    // Some 64-bit values invert to indexes above 2^53: at least one of a few hundred does.
    let refused = 0;
    for (let i = 0; i < 512; i++) if (indexOfRandomScaleKey(i.toString(16).padStart(16, 'f')) === undefined) refused++;
    assert.ok(refused > 0);
  });

  it('gives sorted-load keys of 16 bytes that ascend with the index', () => {
    assert.equal(sortedScaleKey(0), '0000000000000000');
    assert.equal(sortedScaleKey(255), '00000000000000ff');
    for (const index of [0, 9, 15, 16, 999_999, 10_000_000]) {
      assert.equal(sortedScaleKey(index).length, SCALE_KEY_SIZE_BYTES);
      assert.ok(sortedScaleKey(index) < sortedScaleKey(index + 1));
    }
  });

  describe('firstRandomScaleKeyIndexes()', () => {
    it('gives the indexes of the smallest random keys, in ascending key order: a run of consecutive keys', () => {
      const keyCount = 20_000;
      const sorted = Array.from({ length: keyCount }, (_, index) => index).sort((a, b) => (randomScaleKey(a) < randomScaleKey(b) ? -1 : 1));
      for (const count of [1, 500, 4_000]) assert.deepEqual([...firstRandomScaleKeyIndexes(keyCount, count)], sorted.slice(0, count), `count ${count}`);
    });

    it('gives every index when there are no more keys than asked for, and none of none', () => {
      assert.deepEqual([...firstRandomScaleKeyIndexes(5, 10)].sort((a, b) => a - b), [0, 1, 2, 3, 4]);
      assert.equal(firstRandomScaleKeyIndexes(0, 10).length, 0);
    });
  });
});
