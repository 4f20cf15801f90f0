// Keys: a key is its bytes (a string key is its UTF-8). The index compares
// "key strings" (one latin1 char per byte), so JavaScript string order must
// be bytewise key order — which is not UTF-16 order for non-ASCII strings.
import assert from 'node:assert/strict';

import { KEY_SIZE_MAX } from '../../format/constants.js';
import { bytesToKeyString, keyStringToBytes, keyStringToKey, toKeyString } from '../../engine/key_codec.js';
import { StoreError } from '../../engine/store_error.js';
import { assertError } from './helpers.js';

function assertBytewiseOrder(keys: (string | Uint8Array)[]): void {
  for (let i = 1; i < keys.length; i++) {
    const before = toKeyString(keys[i - 1]);
    const after = toKeyString(keys[i]);
    assert.ok(before < after, `key ${i - 1} should sort before key ${i}`);
    const bytes = Buffer.compare(keyStringToBytes(before), keyStringToBytes(after));
    assert.equal(bytes, -1, 'and so should their bytes');
  }
}

describe('toKeyString()', () => {
  it('gives an ASCII string key back as itself', () => {
    assert.equal(toKeyString('user:42'), 'user:42');
  });

  it('turns a non-ASCII string into one char per UTF-8 byte', () => {
    assert.equal(toKeyString('é'), '\u00c3\u00a9');
    assert.equal(toKeyString('日本'), Buffer.from('日本', 'utf8').toString('latin1'));
  });

  it('makes a string key and a Uint8Array of its UTF-8 bytes the same key', () => {
    assert.equal(toKeyString(Buffer.from('é', 'utf8')), toKeyString('é'));
    assert.equal(toKeyString(new Uint8Array([0x61])), toKeyString('a'));
  });

  it('uses only the bytes of a Uint8Array view, not the rest of its buffer', () => {
    const backing = Buffer.from('xxabyy');
    assert.equal(toKeyString(backing.subarray(2, 4)), 'ab');
    assert.equal(toKeyString(new Uint8Array(backing.buffer, backing.byteOffset + 2, 2)), 'ab');
  });

  it("orders keys bytewise: 'a' < 'b' < 'é' < 0xff, and shorter prefixes first", () => {
    assertBytewiseOrder([new Uint8Array([0]), 'a', 'ab', 'b', 'z', 'é', new Uint8Array([0xff]), new Uint8Array([0xff, 0])]);
  });

  it('orders characters beyond the BMP after U+FFFF, as their UTF-8 does (not as UTF-16 would)', () => {
    assert.ok('😀' < '\uffff', 'UTF-16 order puts the surrogate pair first');
    assertBytewiseOrder(['\uffff', '😀']);
  });

  it('accepts a key of exactly KEY_SIZE_MAX bytes, string or binary', () => {
    assert.equal(toKeyString('k'.repeat(KEY_SIZE_MAX)).length, KEY_SIZE_MAX);
    assert.equal(toKeyString(new Uint8Array(KEY_SIZE_MAX).fill(7)).length, KEY_SIZE_MAX);
    assert.equal(toKeyString('é'.repeat(KEY_SIZE_MAX / 2)).length, KEY_SIZE_MAX);
  });

  it('refuses a key of KEY_SIZE_MAX + 1 bytes with ERR_KEY_TOO_LARGE, counting UTF-8 bytes', () => {
    for (const key of ['k'.repeat(KEY_SIZE_MAX + 1), 'é'.repeat(KEY_SIZE_MAX / 2) + 'k', new Uint8Array(KEY_SIZE_MAX + 1)]) {
      assert.throws(
        () => toKeyString(key),
        (error: unknown) => {
          assertError(error, StoreError, 'ERR_KEY_TOO_LARGE');
          return true;
        },
      );
    }
  });

  it('refuses an empty key with a RangeError coded ERR_INVALID_ARG', () => {
    for (const key of ['', new Uint8Array(0)]) {
      assert.throws(
        () => toKeyString(key),
        (error: unknown) => {
          assertError(error, RangeError, 'ERR_INVALID_ARG');
          return true;
        },
      );
    }
  });

  it('refuses keys that are neither strings nor Uint8Arrays with a TypeError coded ERR_INVALID_ARG', () => {
    for (const key of [42, null, undefined, {}, ['a'], new ArrayBuffer(4), Symbol('k')]) {
      assert.throws(
        () => toKeyString(key),
        (error: unknown) => {
          assertError(error, TypeError, 'ERR_INVALID_ARG');
          return true;
        },
        String(key?.toString?.() ?? key),
      );
    }
  });
});

describe('keyStringToKey()', () => {
  it('gives string keys back as equal strings, ASCII or not', () => {
    for (const key of ['plain', 'é', '日本語', '😀', 'mixed é and 😀']) {
      assert.equal(keyStringToKey(toKeyString(key), true), key);
    }
  });

  it('gives binary keys back as Buffers of the same bytes', () => {
    const bytes = Uint8Array.from([0, 1, 0x80, 0xff]);
    const key = keyStringToKey(toKeyString(bytes), false);
    assert.ok(Buffer.isBuffer(key));
    assert.deepEqual([...key], [...bytes]);
  });
});

describe('keyStringToBytes() and bytesToKeyString()', () => {
  it('are inverse, and read only the view they are given', () => {
    const bytes = Uint8Array.from([0x00, 0x7f, 0x80, 0xc3, 0xa9, 0xff]);
    const keyString = bytesToKeyString(bytes);
    assert.equal(keyString.length, bytes.length);
    assert.deepEqual([...keyStringToBytes(keyString)], [...bytes]);
    const backing = Buffer.from([9, 9, 1, 2, 9]);
    assert.equal(bytesToKeyString(backing.subarray(2, 4)), '\u0001\u0002');
  });
});
