// The scale section's options and inputs (tools/bench/scale_runner.ts,
// tools/bench/store_workloads.ts): --scale-keys parsing, and values that
// separate processes cut alike.
import assert from 'node:assert/strict';

import { parseScaleKeyCounts, SCALE_KEY_COUNT_MAX } from '../../tools/bench/scale_runner.js';
import { ValueSource } from '../../tools/bench/store_workloads.js';

describe('scale options', () => {
  describe('parseScaleKeyCounts()', () => {
    it('reads comma-separated counts, with or without underscores, ascending and without repeats', () => {
      assert.deepEqual(parseScaleKeyCounts('2000000, 100_000,100000'), [100_000, 2_000_000]);
      assert.deepEqual(parseScaleKeyCounts('10000000'), [10_000_000]);
    });

    it('refuses counts that are not positive integers or are above the maximum', () => {
      for (const text of ['', '0', '-5', '1.5', '1e3x', '100000,', `${SCALE_KEY_COUNT_MAX + 1}`]) {
        assert.throws(() => parseScaleKeyCounts(text), RangeError, text);
      }
    });
  });

  describe('ValueSource with a seed', () => {
    it('cuts the same values in every instance with that seed, and other values with another seed', () => {
      const first = new ValueSource(100, 1 << 16, 0x1b873593);
      const second = new ValueSource(100, 1 << 16, 0x1b873593);
      const other = new ValueSource(100, 1 << 16, 7);
      for (const index of [0, 1, 999, 123_456]) {
        assert.ok(first.valueOf(index).equals(second.valueOf(index)));
        assert.doesNotThrow(() => second.check(index, first.valueOf(index), 'same seed'));
        assert.ok(!first.valueOf(index).equals(other.valueOf(index)));
      }
    });
  });
});
