// A string value (or a string inside a msgpack or JSON value) whose UTF-8
// is longer than Node decodes into one string (buffer.constants.
// MAX_STRING_LENGTH bytes) is refused at the put with ERR_VALUE_TOO_LARGE:
// stored, it could never be read back (found by a review: get() said
// ERR_STORE_CORRUPT for it). Needs ~2 GiB of memory: `npm run test:scaling`.
import assert from 'node:assert/strict';
import { constants } from 'node:buffer';

import { valueCodec, type ValueEncoding } from '../../engine/value_codec.js';

describe('values whose strings Node cannot decode again (scaling)', () => {
  it('refuses a string of more than MAX_STRING_LENGTH bytes of UTF-8 under string, json and msgpack', () => {
    const text = 'é'.repeat(Math.floor(constants.MAX_STRING_LENGTH / 2) + 1);
    assert.ok(Buffer.byteLength(text) > constants.MAX_STRING_LENGTH);
    const values: [ValueEncoding, unknown][] = [
      ['string', text],
      ['json', text],
      ['msgpack', text],
      ['msgpack', { nested: [text] }],
    ];
    for (const [encoding, value] of values) {
      assert.throws(() => valueCodec(encoding).encode(value), (error: Error & { code?: string }) => error.code === 'ERR_VALUE_TOO_LARGE', encoding);
    }
  });
});
