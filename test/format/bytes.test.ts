// Little-endian field access: u64 fields round-trip every value below 2^53,
// and a stored value of 2^53 or more is reported (-1), never rounded.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { isAllZero, readU64, view, writeU64 } from '../../format/bytes.js';
import { PROPERTY_SEED } from './helpers.js';

describe('writeU64() / readU64()', () => {
  const EDGES = [0, 1, 0xff, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, 2 ** 52, Number.MAX_SAFE_INTEGER];

  it('round-trips the edge values', () => {
    const bytes = new Uint8Array(8);
    for (const value of EDGES) {
      writeU64(view(bytes), 0, value);
      assert.equal(readU64(view(bytes), 0), value, `value ${value}`);
    }
  });

  it('round-trips any safe non-negative integer at any offset (property)', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.nat(16), (value, offset) => {
        const bytes = new Uint8Array(offset + 8);
        writeU64(view(bytes), offset, value);
        assert.equal(readU64(view(bytes), offset), value);
        assert.equal(new DataView(bytes.buffer).getBigUint64(offset, true), BigInt(value), 'little-endian u64');
      }),
      { seed: PROPERTY_SEED, numRuns: 500 },
    );
  });

  it('writes little-endian: low word first', () => {
    const bytes = new Uint8Array(8);
    writeU64(view(bytes), 0, 0x0102_0304_0506);
    assert.deepEqual([...bytes], [0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0]);
  });

  it('reads a stored 2^53 or more as -1 instead of rounding it', () => {
    const data = new DataView(new ArrayBuffer(8));
    for (const value of [2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, 0x0020_0000_0000_0000n | 0xffff_ffffn]) {
      data.setBigUint64(0, value, true);
      assert.equal(readU64(data, 0), -1, `stored ${value}`);
    }
    data.setBigUint64(0, 2n ** 53n - 1n, true);
    assert.equal(readU64(data, 0), Number.MAX_SAFE_INTEGER, 'the largest exact value still reads');
  });

  it('refuses to write a value that is not a safe non-negative integer, writing nothing', () => {
    const bytes = new Uint8Array(8).fill(0xaa);
    for (const value of [2 ** 53, 2 ** 64, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -0.5]) {
      assert.throws(() => writeU64(view(bytes), 0, value), RangeError, `value ${value}`);
      assert.ok(bytes.every((byte) => byte === 0xaa), `value ${value} left bytes behind`);
    }
  });
});

describe('view()', () => {
  it('covers exactly the bytes of a subarray', () => {
    const backing = new Uint8Array(32);
    const part = backing.subarray(8, 16);
    view(part).setUint32(0, 0xdeadbeef, true);
    assert.deepEqual([...backing.subarray(8, 12)], [0xef, 0xbe, 0xad, 0xde]);
    assert.equal(view(part).byteLength, 8);
  });
});

describe('isAllZero()', () => {
  it('looks only at [start, end)', () => {
    const bytes = Uint8Array.from([1, 0, 0, 0, 1]);
    assert.equal(isAllZero(bytes, 1, 4), true);
    assert.equal(isAllZero(bytes, 0, 4), false);
    assert.equal(isAllZero(bytes, 1, 5), false);
    assert.equal(isAllZero(bytes, 2, 2), true, 'an empty range is all zero');
  });

  it('finds a single nonzero byte anywhere in the range', () => {
    for (let i = 0; i < 64; i++) {
      const bytes = new Uint8Array(64);
      bytes[i] = 0x80;
      assert.equal(isAllZero(bytes, 0, 64), false, `byte ${i}`);
    }
  });
});
