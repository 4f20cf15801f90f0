// lowerBound and upperBound (engine/tree_node.ts) against their definitions
// by a linear scan: every leaf insert and branch descent goes through them,
// and both take a shortcut past the last key (for keys written in order)
// before their binary search.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { lowerBound, upperBound } from '../../engine/tree_node.js';

/** Fixed so a failure reproduces; fast-check prints it on failure. */
const SEED = 0x5ea2_c401;

/** Few distinct bytes, so probes often equal keys, fall between them, or share prefixes. */
const keyArb = fc.array(fc.constantFrom(0x00, 0x41, 0x42, 0x7f, 0xff), { minLength: 0, maxLength: 4 }).map((bytes) => String.fromCharCode(...bytes));

describe('lowerBound and upperBound', () => {
  it('give the first index whose key is >= (lowerBound) or > (upperBound) the probe, keys.length if none', () => {
    fc.assert(
      fc.property(fc.uniqueArray(keyArb, { maxLength: 40 }), fc.array(keyArb, { minLength: 1, maxLength: 10 }), (unsorted, probes) => {
        const keys = unsorted.sort();
        // Probes past the last key too: the shortcut's case.
        const last = keys[keys.length - 1];
        const all = last === undefined ? probes : [...probes, last, `${last}\x00`, `${last}\xff`];
        for (const probe of all) {
          const lower = keys.findIndex((key) => key >= probe);
          const upper = keys.findIndex((key) => key > probe);
          assert.equal(lowerBound(keys, probe), lower === -1 ? keys.length : lower, `lowerBound(${JSON.stringify(probe)})`);
          assert.equal(upperBound(keys, probe), upper === -1 ? keys.length : upper, `upperBound(${JSON.stringify(probe)})`);
        }
      }),
      { seed: SEED, numRuns: 500 },
    );
  });
});
