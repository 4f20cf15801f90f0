// ByteWriter: appends little-endian fields, grows without losing bytes, and
// patches a u32 written earlier.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { ByteWriter } from '../../format/byte_writer.js';
import { PROPERTY_SEED } from './helpers.js';

describe('ByteWriter', () => {
  it('writes each field little-endian, in order', () => {
    const writer = new ByteWriter();
    writer.u8(0x01);
    writer.u16(0x0302);
    writer.u32(0x07060504);
    writer.u64(0x0e0d_0c0b_0a09);
    writer.raw(Uint8Array.from([0xf0, 0xf1]));
    assert.deepEqual(
      [...writer.bytes()],
      [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0, 0, 0xf0, 0xf1],
    );
    assert.equal(writer.length, 17);
  });

  it('stores u32 values as unsigned', () => {
    const writer = new ByteWriter();
    writer.u32(0xffff_ffff);
    assert.deepEqual([...writer.bytes()], [0xff, 0xff, 0xff, 0xff]);
  });

  it('grows past its initial capacity without losing earlier bytes (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300, size: 'max' }), { maxLength: 40, size: 'max' }), fc.nat(64), (chunks, capacity) => {
        const writer = new ByteWriter(capacity);
        const expected: number[] = [];
        for (const chunk of chunks) {
          writer.raw(chunk);
          writer.u8(chunk.length & 0xff);
          expected.push(...chunk, chunk.length & 0xff);
        }
        assert.deepEqual([...writer.bytes()], expected);
      }),
      { seed: PROPERTY_SEED, numRuns: 100 },
    );
  });

  it('patchU32() overwrites an earlier field, even after the writer grew', () => {
    const writer = new ByteWriter(16);
    writer.u32(0);
    writer.raw(new Uint8Array(1000).fill(7));
    writer.patchU32(0, 0xa1b2c3d4);
    assert.deepEqual([...writer.bytes().subarray(0, 5)], [0xd4, 0xc3, 0xb2, 0xa1, 7]);
    assert.equal(writer.length, 1004);
  });

  it('reset() empties the writer for reuse', () => {
    const writer = new ByteWriter();
    writer.u64(123);
    writer.reset();
    assert.equal(writer.length, 0);
    writer.u8(9);
    assert.deepEqual([...writer.bytes()], [9]);
  });

  it('refuses a u64 beyond 2^53', () => {
    const writer = new ByteWriter();
    assert.throws(() => writer.u64(2 ** 53), RangeError);
  });
});
