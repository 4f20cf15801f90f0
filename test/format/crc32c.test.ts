// CRC32C: the native checksum and its TypeScript twin must be the same
// function (Castagnoli, reflected, init and final inversion), on every length
// and alignment, one-shot or continued from a seed.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { CRC32C_CHECK_VALUE, crc32c, crc32cPortable } from '../../format/crc32c.js';
import { patternBytes, PROPERTY_SEED, utf8 } from './helpers.js';

const IMPLEMENTATIONS = [
  ['crc32c', crc32c],
  ['crc32cPortable', crc32cPortable],
] as const;

/** RFC 3720 (iSCSI) appendix B.4 vectors, plus the standard check value. */
const KNOWN_VECTORS: [string, Uint8Array, number][] = [
  ['"123456789"', utf8('123456789'), 0xe3069283],
  ['32 zero bytes', new Uint8Array(32), 0x8a9136aa],
  ['32 bytes of 0xFF', new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ['bytes 0..31 ascending', Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
  ['bytes 31..0 descending', Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
  ['no bytes', new Uint8Array(0), 0],
];

describe('crc32c()', () => {
  it('exports the standard check value 0xE3069283', () => {
    assert.equal(CRC32C_CHECK_VALUE, 0xe3069283);
  });

  for (const [name, checksum] of IMPLEMENTATIONS) {
    it(`${name} gives the published vectors`, () => {
      for (const [what, bytes, expected] of KNOWN_VECTORS) {
        assert.equal(checksum(bytes), expected, `${name}(${what})`);
      }
    });

    it(`${name} returns an unsigned 32-bit number`, () => {
      for (let seed = 0; seed < 64; seed++) {
        const value = checksum(patternBytes(seed, seed), seed * 0x0400_0001);
        assert.ok(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff, `${name} returned ${value}`);
      }
    });
  }

  it('the native and portable checksums agree on every length 0..300 at every alignment 0..7', () => {
    const backing = patternBytes(300 + 8, 1);
    for (let offset = 0; offset < 8; offset++) {
      for (let length = 0; length <= 300; length++) {
        const bytes = backing.subarray(offset, offset + length);
        assert.equal(crc32c(bytes), crc32cPortable(bytes), `length ${length} at offset ${offset}`);
      }
    }
  });

  it('the native and portable checksums agree at the edges of the addon\'s three-stripe blocks (768 B and 12 KiB), at any alignment and seed', () => {
    // native/crc32c.cc runs three chains over blocks of 3 × 256 and 3 × 4096
    // bytes and joins them: lengths just below, at and past each block size,
    // several blocks of both kinds with a tail, and a large value.
    const lengths = [767, 768, 769, 1535, 1536, 4096, 12_287, 12_288, 12_289, 2 * 12_288 + 768 + 7, 3 * 12_288 + 2 * 768 + 767, (1 << 20) + 13];
    const backing = patternBytes((1 << 20) + 13 + 8, 3);
    for (const length of lengths) {
      for (const offset of [0, 1, 5]) {
        const bytes = backing.subarray(offset, offset + length);
        for (const seed of [0, 0xdeadbeef]) {
          assert.equal(crc32c(bytes, seed), crc32cPortable(bytes, seed), `length ${length} at offset ${offset}, seed ${seed}`);
        }
      }
    }
  });

  it('the native and portable checksums agree on random inputs of 0..10000 bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 10_000, size: 'max' }), fc.nat(15), (bytes, offset) => {
        // Copy behind a random offset so the addon sees unaligned views too.
        const backing = new Uint8Array(offset + bytes.length);
        backing.set(bytes, offset);
        const view = backing.subarray(offset);
        assert.equal(crc32c(view), crc32cPortable(view));
      }),
      { seed: PROPERTY_SEED, numRuns: 300 },
    );
  });

  it('continuing from a seed equals the one-shot checksum, in both implementations (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 4000, size: 'max' }), fc.array(fc.nat(4000), { maxLength: 5, size: 'max' }), (bytes, cutsRaw) => {
        const cuts = [0, ...cutsRaw.map((cut) => cut % (bytes.length + 1)).sort((a, b) => a - b), bytes.length];
        for (const [name, checksum] of IMPLEMENTATIONS) {
          let running = 0;
          for (let i = 1; i < cuts.length; i++) running = checksum(bytes.subarray(cuts[i - 1], cuts[i]), running);
          assert.equal(running, checksum(bytes), `${name} over pieces ${cuts.join(',')}`);
        }
      }),
      { seed: PROPERTY_SEED, numRuns: 200 },
    );
  });

  it('the native and portable checksums agree for any seed (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600, size: 'max' }), fc.nat({ max: 0xffff_ffff }), (bytes, seed) => {
        assert.equal(crc32c(bytes, seed), crc32cPortable(bytes, seed));
      }),
      { seed: PROPERTY_SEED, numRuns: 300 },
    );
  });

  it('detects every single-bit flip of a 4 KiB buffer', () => {
    const bytes = patternBytes(4096, 7);
    const clean = crc32c(bytes);
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      bytes[bit >>> 3] ^= 1 << (bit & 7);
      const flipped = crc32c(bytes);
      bytes[bit >>> 3] ^= 1 << (bit & 7);
      if (flipped === clean) assert.fail(`flipping bit ${bit} left the checksum at 0x${clean.toString(16)}`);
    }
  });

  it('reads only the view, not the rest of its buffer', () => {
    const backing = patternBytes(100, 3);
    const view = backing.subarray(10, 60);
    assert.equal(crc32c(view), crc32c(view.slice()));
    assert.equal(crc32cPortable(view), crc32cPortable(view.slice()));
  });
});
