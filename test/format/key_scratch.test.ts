// keyStringBytesNow: a key string's bytes in the one scratch the record
// writers share (format/key_scratch.ts).
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { bytesToKeyString, keyStringToBytes } from '../../engine/key_codec.js';
import { keyStringBytesNow } from '../../format/key_scratch.js';

describe('keyStringBytesNow()', () => {
  it('gives the bytes keyStringToBytes gives, for keys of every length up to the limit', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 1024 }), fc.uint8Array({ minLength: 1, maxLength: 1024 }), (first, second) => {
        const firstString = bytesToKeyString(first);
        const secondString = bytesToKeyString(second);
        assert.deepEqual([...keyStringBytesNow(firstString)], [...first]);
        // A shorter key after a longer one: no bytes of the longer one in its view.
        assert.deepEqual([...keyStringBytesNow(secondString)], [...keyStringToBytes(secondString)]);
      }),
      { seed: 0x6b65_7901, numRuns: 300 },
    );
  });

  it('refuses a key string longer than a key may be (a bug)', () => {
    assert.throws(() => keyStringBytesNow('x'.repeat(1025)), /1025 chars/);
  });
});
