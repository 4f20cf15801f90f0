// Dump streams (format/dump_stream.ts): what the encoder writes the decoder
// gives back, in pieces of any size; every kind of damage — bit flips,
// truncation at every entry boundary, a wrong magic or version, entries left
// out or swapped, bytes after the trailer — is refused with ERR_DUMP_CORRUPT.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { crc32c } from '../../format/crc32c.js';
import {
  DUMP_CHUNK_SIZE,
  DUMP_HEADER_SIZE,
  DumpCorruptError,
  DumpStreamDecoder,
  DumpStreamEncoder,
  type DumpEvent,
  type DumpHeader,
} from '../../format/dump_stream.js';
import { concatBytes, hexdumpInDocs, patternBytes, PROPERTY_SEED, utf8, withBitFlipped } from './helpers.js';

interface Entry {
  key: Uint8Array;
  keyIsString: boolean;
  raw: boolean;
  value: Uint8Array;
}

const HEADER: DumpHeader = { valueEncodingId: 1, blockSize: 4096, salvaged: false };

/** The stream of `entries`, and the offset where each entry (then the trailer) starts. */
function encode(entries: readonly Entry[], header = HEADER, pieceBytes = 1 << 20): { stream: Uint8Array; boundaries: number[] } {
  const encoder = new DumpStreamEncoder();
  const parts: Uint8Array[] = [encoder.header(header)];
  let length = parts[0].length;
  const boundaries: number[] = [];
  const add = (bytes: Uint8Array): void => {
    parts.push(bytes);
    length += bytes.length;
  };
  for (const entry of entries) {
    boundaries.push(length);
    add(encoder.entry(entry.key, entry.keyIsString, entry.raw, entry.value.length));
    for (let offset = 0; offset < entry.value.length; offset += pieceBytes) {
      for (const chunk of encoder.value(entry.value.subarray(offset, offset + pieceBytes))) add(chunk);
    }
  }
  boundaries.push(length);
  add(encoder.end());
  return { stream: concatBytes(parts), boundaries };
}

/** Decodes `stream` pushed in pieces of `pieceBytes`; throws what the decoder throws. */
function decode(stream: Uint8Array, pieceBytes = stream.length || 1): { header: DumpHeader; entries: Entry[]; entryCount: number } {
  const decoder = new DumpStreamDecoder();
  const events: DumpEvent[] = [];
  for (let offset = 0; offset < stream.length; offset += pieceBytes) events.push(...decoder.push(stream.slice(offset, offset + pieceBytes)));
  decoder.finish();
  let header: DumpHeader | undefined;
  let entryCount = -1;
  const entries: Entry[] = [];
  let chunks: Uint8Array[] = [];
  for (const event of events) {
    if (event.kind === 'header') header = event.header;
    else if (event.kind === 'entry') {
      entries.push({ key: event.key, keyIsString: event.keyIsString, raw: event.raw, value: new Uint8Array(0) });
      chunks = [];
    } else if (event.kind === 'chunk') {
      chunks.push(event.bytes);
      if (event.last) entries[entries.length - 1].value = concatBytes(chunks);
    } else entryCount = event.entryCount;
  }
  assert.ok(header !== undefined);
  return { header, entries, entryCount };
}

function refused(stream: Uint8Array, reason: RegExp, what: string, pieceBytes?: number): DumpCorruptError {
  try {
    decode(stream, pieceBytes);
  } catch (error) {
    if (!(error instanceof DumpCorruptError)) assert.fail(`${what}: expected ERR_DUMP_CORRUPT, got ${String(error)}`);
    assert.equal(error.code, 'ERR_DUMP_CORRUPT');
    assert.match(error.reason, reason, what);
    return error;
  }
  return assert.fail(`${what}: the damaged stream decoded`);
}

const SAMPLE: Entry[] = [
  { key: utf8('a'), keyIsString: true, raw: false, value: utf8('hello') },
  { key: Uint8Array.from([0, 255]), keyIsString: false, raw: false, value: new Uint8Array(0) },
  { key: utf8('blob'), keyIsString: true, raw: true, value: patternBytes(2 * DUMP_CHUNK_SIZE + 17, 3) },
  { key: utf8('empty-raw'), keyIsString: true, raw: true, value: new Uint8Array(0) },
  { key: utf8('exact'), keyIsString: true, raw: false, value: patternBytes(DUMP_CHUNK_SIZE, 4) },
];

describe('format/dump_stream', () => {
  describe('a valid stream', () => {
    it('gives back every entry: key bytes, key flag, raw flag and value bytes, in order', () => {
      const { stream } = encode(SAMPLE);
      const decoded = decode(stream);
      assert.deepEqual(decoded.header, HEADER);
      assert.equal(decoded.entryCount, SAMPLE.length);
      assert.deepEqual(decoded.entries, SAMPLE);
    });

    it('decodes the same whatever the size of the pieces the bytes arrive in', () => {
      const { stream } = encode(SAMPLE, HEADER, 1000);
      for (const piece of [1, 7, 4096, DUMP_CHUNK_SIZE + 3]) assert.deepEqual(decode(stream, piece).entries, SAMPLE, `pieces of ${piece}`);
    });

    it('an empty store is a header and a trailer; a salvaged dump says so', () => {
      const { stream } = encode([], { valueEncodingId: 3, blockSize: 512, salvaged: true });
      assert.equal(stream.length, DUMP_HEADER_SIZE + 20);
      assert.deepEqual(decode(stream), { header: { valueEncodingId: 3, blockSize: 512, salvaged: true }, entries: [], entryCount: 0 });
    });

    it('cuts a value into chunks of DUMP_CHUNK_SIZE, each with its checksum, whatever pieces the encoder was given', () => {
      const value = patternBytes(DUMP_CHUNK_SIZE + 5, 9);
      const a = encode([{ key: utf8('k'), keyIsString: true, raw: true, value }], HEADER, 3).stream;
      const b = encode([{ key: utf8('k'), keyIsString: true, raw: true, value }], HEADER, DUMP_CHUNK_SIZE * 2).stream;
      assert.deepEqual(a, b);
      // header | entry head (16 + 1) | chunk (DUMP_CHUNK_SIZE + 4) | chunk (5 + 4) | trailer
      assert.equal(a.length, DUMP_HEADER_SIZE + 17 + DUMP_CHUNK_SIZE + 4 + 9 + 20);
      const firstCrcAt = DUMP_HEADER_SIZE + 17 + DUMP_CHUNK_SIZE;
      assert.equal(new DataView(a.buffer).getUint32(firstCrcAt, true), crc32c(value.subarray(0, DUMP_CHUNK_SIZE)));
    });

    it('round-trips random entry sets (property, seed in helpers.ts)', () => {
      const entry = fc.record({
        key: fc.uint8Array({ minLength: 1, maxLength: 40 }),
        keyIsString: fc.boolean(),
        raw: fc.boolean(),
        value: fc.uint8Array({ maxLength: 600 }),
      });
      fc.assert(
        fc.property(fc.array(entry, { maxLength: 12 }), fc.integer({ min: 1, max: 300 }), (entries, piece) => {
          const { stream } = encode(entries, HEADER, piece);
          assert.deepEqual(decode(stream, piece).entries, entries.map((entry) => ({ ...entry })));
        }),
        { seed: PROPERTY_SEED, numRuns: 200 },
      );
    });

    it('matches the annotated hexdump in docs/format.md', () => {
      const { stream } = encode(DOCS_EXAMPLE);
      assert.deepEqual(stream, hexdumpInDocs('Example: a dump stream', { annotated: true }));
    });
  });

  describe('a damaged stream', () => {
    const small: Entry[] = [
      { key: utf8('a'), keyIsString: true, raw: false, value: utf8('hello') },
      { key: utf8('b'), keyIsString: true, raw: true, value: patternBytes(DUMP_CHUNK_SIZE + 10, 1) },
      { key: Uint8Array.from([7]), keyIsString: false, raw: false, value: utf8('x') },
    ];
    const { stream, boundaries } = encode(small);

    it('is refused at every truncation: at each entry boundary, inside each entry, inside the header and trailer', () => {
      const cuts = new Set<number>([0, 1, 8, DUMP_HEADER_SIZE - 1, stream.length - 1, stream.length - 10]);
      for (const boundary of boundaries) for (const delta of [0, 1, 5, 16, 17, 20]) if (boundary + delta < stream.length) cuts.add(boundary + delta);
      cuts.add(boundaries[1] + 17 + DUMP_CHUNK_SIZE); // between the chunks of entry 1
      for (const cut of cuts) {
        const error = refused(stream.slice(0, cut), cut === 0 ? /truncated/ : /truncated|bad magic/, `cut at ${cut}`);
        assert.ok(error.offset <= cut, `cut at ${cut}: the error names offset ${error.offset}`);
      }
    });

    it('is refused on any single bit flip, naming the entry the flip is in', () => {
      // Every bit of the header, the entry heads, the trailer; a sample of value bits.
      const bits: number[] = [];
      for (let bit = 0; bit < stream.length * 8; bit += bit < (DUMP_HEADER_SIZE + 40) * 8 || bit > (stream.length - 40) * 8 ? 1 : 997) bits.push(bit);
      for (const bit of bits) {
        const error = refused(withBitFlipped(stream, bit), /./, `bit ${bit}`);
        const byte = bit >>> 3;
        if (byte >= boundaries[0] && byte < boundaries[boundaries.length - 1]) {
          const entry = boundaries.findIndex((start, i) => byte >= start && byte < boundaries[i + 1]);
          assert.equal(error.entryIndex, entry, `bit ${bit} (byte ${byte}): ${error.message}`);
        }
      }
    });

    it('refuses a wrong magic, version or encoding in the header', () => {
      refused(Uint8Array.from(Buffer.from('PK\x03\x04 not a dump at all, a zip')), /bad magic/, 'a zip file');
      const versioned = stream.slice();
      new DataView(versioned.buffer).setUint16(8, 2, true);
      new DataView(versioned.buffer).setUint32(20, crc32c(versioned.subarray(0, 20)), true);
      refused(versioned, /dump version 2/, 'version 2');
      const encoding = stream.slice();
      encoding[10] = 99;
      new DataView(encoding.buffer).setUint32(20, crc32c(encoding.subarray(0, 20)), true);
      refused(encoding, /unknown value encoding 99/, 'encoding 99');
    });

    it('refuses a header blockSize that is neither 0 nor a block size, and the encoder will not write one (found by a review: load made a store of it)', () => {
      for (const blockSize of [3, 256, 1000, 4097, 131072, 0xffff_ffff]) {
        const bad = stream.slice();
        new DataView(bad.buffer).setUint32(12, blockSize, true);
        new DataView(bad.buffer).setUint32(20, crc32c(bad.subarray(0, 20)), true);
        refused(bad, new RegExp(`header blockSize ${blockSize} is not 0 or a power of two from 512 to 65536`), `blockSize ${blockSize}`);
        assert.throws(() => new DumpStreamEncoder().header({ valueEncodingId: 1, blockSize, salvaged: false }), RangeError, `encoder, blockSize ${blockSize}`);
      }
      for (const blockSize of [0, 512, 4096, 65536]) {
        const good = stream.slice();
        new DataView(good.buffer).setUint32(12, blockSize, true);
        new DataView(good.buffer).setUint32(20, crc32c(good.subarray(0, 20)), true);
        const events = new DumpStreamDecoder().push(good);
        assert.deepEqual(events[0], { kind: 'header', header: { ...(events[0] as { header: DumpHeader }).header, blockSize } }, `blockSize ${blockSize}`);
      }
    });

    it('refuses a stream with an entry left out, or two entries swapped, at the trailer', () => {
      const [h, e0, e1, e2, end] = [0, ...boundaries].map((start, i, all) => stream.slice(start, all[i + 1] ?? stream.length));
      refused(concatBytes([h, e0, e2, end]), /stream checksum mismatch/, 'entry 1 left out');
      refused(concatBytes([h, e0, e2, e1, end]), /stream checksum mismatch/, 'entries swapped');
      // A header and trailer with nothing between: the count and the checksum disagree.
      refused(concatBytes([h, end]), /stream checksum mismatch/, 'all entries left out');
    });

    it('refuses bytes after the trailer (two dumps concatenated)', () => {
      refused(concatBytes([stream, stream]), /at least \d+ bytes after the trailer/, 'two dumps');
      refused(concatBytes([stream, Uint8Array.of(0)]), /after the trailer/, 'one byte more', 7);
    });
  });
});

/** The entries of the dump stream example in docs/format.md. */
const DOCS_EXAMPLE: Entry[] = [
  { key: utf8('a'), keyIsString: true, raw: false, value: Uint8Array.from([0xa5, 0x68, 0x65, 0x6c, 0x6c, 0x6f]) },
  { key: utf8('log'), keyIsString: true, raw: true, value: utf8('abc') },
];

