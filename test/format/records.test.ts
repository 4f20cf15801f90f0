// Records: PUT_INLINE, PUT_EXTENTS and DELETE entries of WAL commits.
// Anything writePut/writeDelete write reads back exactly; a
// truncated or malformed record is refused with a FormatError naming the
// structure and block the caller gave, never another exception and never a
// hang, whatever the bytes.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { ByteWriter } from '../../format/byte_writer.js';
import { KEY_FLAG_STRING, KEY_SIZE_MAX, RECORD_DELETE, RECORD_PUT_EXTENTS, RECORD_PUT_INLINE, VALUE_EXTENTS_MAX, VALUE_FLAG_RAW } from '../../format/constants.js';
import { FormatError } from '../../format/format_error.js';
import { readRecords, recordKeyIsString, recordKeyLength, recordKeyStart, recordValueAt, scanRecords, writeDelete, writePut, type StoredValue } from '../../format/records.js';
import { patternBytes, PROPERTY_SEED, throwsFormatError, utf8 } from './helpers.js';
import { collector, entryArbitrary, writeEntries, type Entry } from './record_entries.js';

/** One record of each kind, with string and binary keys. */
function sampleEntries(): Entry[] {
  return [
    { op: 'put', key: utf8('alpha'), keyIsString: true, value: { kind: 'inline', bytes: patternBytes(37, 1) } },
    { op: 'put', key: Uint8Array.from([0, 0xff, 7]), keyIsString: false, value: { kind: 'inline', bytes: new Uint8Array(0) } },
    {
      op: 'put',
      key: utf8('ключ-🔑'),
      keyIsString: true,
      value: { kind: 'extents', length: 9000, crc: 0xdeadbeef, extents: [{ startBlock: 70, blockCount: 2 }, { startBlock: 2 ** 40, blockCount: 1 }] },
    },
    { op: 'delete', key: utf8('beta'), keyIsString: true },
    { op: 'delete', key: Uint8Array.from([0x80]), keyIsString: false },
  ];
}

function written(entries: readonly Entry[]): Uint8Array {
  const writer = new ByteWriter(16);
  writeEntries(writer, entries);
  return writer.bytes().slice();
}

function readAll(payload: Uint8Array, count: number, blockSize?: number): { entries: Entry[]; end: number } {
  const entries: Entry[] = [];
  const end = readRecords(payload, 0, count, collector(entries), 'wal', 12, blockSize);
  return { entries, end };
}

function refused(payload: Uint8Array, count: number, reason: RegExp, what?: string, blockSize?: number): FormatError {
  return throwsFormatError(() => readRecords(payload, 0, count, collector([]), 'page', 345, blockSize), { structure: 'page', blockIndex: 345, reason }, what);
}

/** A record header, for hand-made bad records. */
function header(type: number, flags: number, keyLength: number): number[] {
  return [type, flags, keyLength & 0xff, keyLength >>> 8];
}

function u32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24];
}

function u64(value: bigint): number[] {
  return Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn));
}

describe('writePut() / writeDelete()', () => {
  it('lay records out as the grammar says', () => {
    assert.deepEqual(
      [...written([{ op: 'put', key: utf8('k'), keyIsString: true, value: { kind: 'inline', bytes: Uint8Array.from([9, 8]) } }])],
      [RECORD_PUT_INLINE, 1, 1, 0, 2, 0, 0, 0, 0x6b, 9, 8],
    );
    assert.deepEqual(
      [...written([{ op: 'put', key: Uint8Array.from([5]), keyIsString: false, value: { kind: 'extents', length: 513, crc: 0x04030201, extents: [{ startBlock: 0x0102, blockCount: 2 }] } }])],
      [RECORD_PUT_EXTENTS, 0, 1, 0, ...u64(513n), 1, 2, 3, 4, ...u32(1), 5, ...u64(0x0102n), ...u32(2)],
    );
    assert.deepEqual([...written([{ op: 'delete', key: utf8('ab'), keyIsString: true }])], [RECORD_DELETE, 1, 2, 0, 0x61, 0x62]);
  });

  it('write every byte of an inline record\'s u16 key length and u32 value length, little-endian', () => {
    // Lengths whose every byte differs, so a byte written twice or left out shows.
    const key = patternBytes(0x0102, 3);
    const value = patternBytes(0x030201, 5);
    const record = written([{ op: 'put', key, keyIsString: false, value: { kind: 'inline', bytes: value } }]);
    assert.deepEqual([...record.subarray(0, 8)], [RECORD_PUT_INLINE, 0, 0x02, 0x01, 0x01, 0x02, 0x03, 0x00]);
    assert.deepEqual(record.subarray(8, 8 + key.length), key);
    assert.deepEqual(record.subarray(8 + key.length), value);
    const fourBytes = written([{ op: 'put', key: utf8('k'), keyIsString: true, value: { kind: 'inline', bytes: new Uint8Array(0x01020304) } }]);
    assert.deepEqual([...fourBytes.subarray(0, 9)], [RECORD_PUT_INLINE, KEY_FLAG_STRING, 1, 0, 0x04, 0x03, 0x02, 0x01, 0x6b]);
  });

  it('mark a raw extent value with VALUE_FLAG_RAW (bit 1 of keyFlags), beside the string-key bit', () => {
    const raw: StoredValue = { kind: 'extents', length: 0, crc: 0, extents: [{ startBlock: 9, blockCount: 1 }], raw: true };
    assert.deepEqual(
      [...written([{ op: 'put', key: utf8('s'), keyIsString: true, value: raw }])],
      [RECORD_PUT_EXTENTS, KEY_FLAG_STRING | VALUE_FLAG_RAW, 1, 0, ...u64(0n), ...u32(0), ...u32(1), 0x73, ...u64(9n), ...u32(1)],
    );
    assert.equal(written([{ op: 'put', key: utf8('s'), keyIsString: false, value: raw }])[1], VALUE_FLAG_RAW);
  });

  it('refuse an empty key and a key longer than KEY_SIZE_MAX, accept exactly KEY_SIZE_MAX', () => {
    const writer = new ByteWriter();
    const inline: StoredValue = { kind: 'inline', bytes: new Uint8Array(1) };
    for (const length of [0, KEY_SIZE_MAX + 1]) {
      assert.throws(() => writePut(writer, new Uint8Array(length), false, inline), RangeError, `put key of ${length}`);
      assert.throws(() => writeDelete(writer, new Uint8Array(length), false), RangeError, `delete key of ${length}`);
    }
    assert.equal(writer.length, 0, 'nothing was written');
    writePut(writer, new Uint8Array(KEY_SIZE_MAX), false, inline);
    writeDelete(writer, new Uint8Array(KEY_SIZE_MAX), false);
    assert.equal(readAll(writer.bytes(), 2).entries.length, 2);
  });

  it('refuse an extent value with no extents or more than VALUE_EXTENTS_MAX', () => {
    const writer = new ByteWriter();
    for (const count of [0, VALUE_EXTENTS_MAX + 1]) {
      const extents = Array.from({ length: count }, (_, i) => ({ startBlock: i, blockCount: 1 }));
      assert.throws(() => writePut(writer, utf8('k'), true, { kind: 'extents', length: 1, crc: 0, extents }), RangeError, `${count} extents`);
    }
  });

  it('writePut() refuses an extent value whose length is not an integer from 0 to 2^53 - 1, writing nothing', () => {
    for (const length of [-1, 1.5, 2 ** 53, Number.NaN]) {
      const writer = new ByteWriter();
      assert.throws(() => writePut(writer, utf8('k'), true, { kind: 'extents', length, crc: 0, extents: [{ startBlock: 10, blockCount: 1 }] }), /length is an integer/, `length ${length}`);
      assert.equal(writer.bytes().length, 0, `length ${length}: bytes written before the refusal`);
    }
  });

  it('writePut() refuses an extent that cannot be stored as written (0 blocks, or 2^32 blocks or more)', () => {
    // blockCount is a u32 on disk. An extent the encoder cannot represent must
    // be refused, not wrapped: 2^32 + 1 would read back as 1 block.
    const accepted: string[] = [];
    for (const blockCount of [0, 2 ** 32, 2 ** 32 + 1]) {
      const writer = new ByteWriter();
      const value: StoredValue = { kind: 'extents', length: 1, crc: 0, extents: [{ startBlock: 10, blockCount }] };
      try {
        writePut(writer, utf8('k'), true, value);
      } catch (error) {
        if (error instanceof RangeError) continue;
        throw error;
      }
      const entries: Entry[] = [];
      let readBack: string;
      try {
        readRecords(writer.bytes(), 0, 1, collector(entries), 'wal');
        readBack = JSON.stringify((entries[0] as { value: unknown }).value);
      } catch (error) {
        readBack = String(error);
      }
      accepted.push(`an extent of ${blockCount} blocks (reads back as ${readBack})`);
    }
    assert.deepEqual(accepted, [], `writePut() wrote extents it cannot represent:\n  ${accepted.join('\n  ')}`);
  });
});

describe('readRecords()', () => {
  it('reads back puts (inline, extents) and deletes with string and binary keys', () => {
    const entries = sampleEntries();
    const payload = written(entries);
    const result = readAll(payload, entries.length);
    assert.deepEqual(result.entries, entries);
    assert.equal(result.end, payload.length);
  });

  it('round-trips random record lists (property)', () => {
    fc.assert(
      fc.property(fc.array(entryArbitrary, { maxLength: 30 }), (entries) => {
        const payload = written(entries);
        const result = readAll(payload, entries.length);
        assert.deepEqual(result.entries, entries);
        assert.equal(result.end, payload.length);
      }),
      { seed: PROPERTY_SEED, numRuns: 300 },
    );
  });

  it('starts at the given offset, stops after `count` records and returns the offset after them', () => {
    const entries = sampleEntries();
    const payload = new Uint8Array([0xaa, 0xbb, 0xcc, ...written(entries), 0xdd]);
    const seen: Entry[] = [];
    const end = readRecords(payload, 3, 2, collector(seen), 'wal');
    assert.deepEqual(seen, entries.slice(0, 2));
    assert.equal(end, 3 + written(entries.slice(0, 2)).length);
    assert.equal(readRecords(payload, 3, 0, collector([]), 'wal'), 3, 'zero records read nothing');
  });

  it('hands out key and inline value bytes as views into the payload', () => {
    const payload = written(sampleEntries().slice(0, 1));
    readRecords(payload, 0, 1, {
      put(key, _keyIsString, value) {
        assert.equal(key.buffer, payload.buffer);
        assert.equal(value.kind === 'inline' && value.bytes.buffer, payload.buffer);
      },
      delete() {
        assert.fail('no delete here');
      },
    }, 'wal');
  });

  it('rejects a payload truncated at every byte offset with a FormatError', () => {
    const entries = sampleEntries();
    const payload = written(entries);
    for (let cut = 0; cut < payload.length; cut++) {
      refused(payload.subarray(0, cut), entries.length, /truncated/, `cut at byte ${cut} of ${payload.length}`);
    }
  });

  it('rejects a payload that ends before `count` records, even a count of 2^32 - 1, promptly', () => {
    const payload = written(sampleEntries());
    refused(payload, sampleEntries().length + 1, /truncated at byte/);
    refused(payload, 0xffff_ffff, /truncated at byte/);
    refused(new Uint8Array(0), Number.MAX_SAFE_INTEGER, /truncated at byte 0 of 0/);
  });

  it('rejects an unknown record type', () => {
    for (const type of [0, 4, 0x7f, 0xff]) {
      refused(Uint8Array.from([...header(type, 0, 1), 0x6b, 0, 0, 0, 0]), 1, new RegExp(`unknown type ${type}`), `type ${type}`);
    }
  });

  it('rejects unknown key flags, and VALUE_FLAG_RAW on any record but PUT_EXTENTS', () => {
    for (const flags of [2, 3, 0x80, 0xff]) {
      refused(Uint8Array.from([...header(RECORD_DELETE, flags, 1), 0x6b]), 1, /unknown key flags/, `delete, flags ${flags}`);
      refused(Uint8Array.from([...header(RECORD_PUT_INLINE, flags, 1), 0, 0, 0, 0, 0x6b]), 1, /unknown key flags/, `inline put, flags ${flags}`);
    }
    const extentsPut = (flags: number): Uint8Array => Uint8Array.from([...header(RECORD_PUT_EXTENTS, flags, 1), ...u64(1n), ...u32(0), ...u32(1), 0x6b, ...u64(5n), ...u32(1)]);
    for (const flags of [4, 0x80, 0xff]) refused(extentsPut(flags), 1, /unknown key flags/, `extents put, flags ${flags}`);
    for (const flags of [VALUE_FLAG_RAW, KEY_FLAG_STRING | VALUE_FLAG_RAW]) {
      const [entry] = readAll(extentsPut(flags), 1).entries;
      assert.ok(entry.op === 'put' && entry.value.kind === 'extents' && entry.value.raw === true, `flags ${flags} read as a raw value`);
      assert.equal(entry.keyIsString, (flags & KEY_FLAG_STRING) !== 0);
    }
    const [plain] = readAll(extentsPut(0), 1).entries;
    assert.ok(plain.op === 'put' && !('raw' in plain.value), 'an encoded value has no raw property at all');
  });

  it('rejects a key of 0 bytes or more than KEY_SIZE_MAX, in every record type', () => {
    for (const type of [RECORD_PUT_INLINE, RECORD_PUT_EXTENTS, RECORD_DELETE]) {
      for (const keyLength of [0, KEY_SIZE_MAX + 1, 0xffff]) {
        const payload = Uint8Array.from([...header(type, 0, keyLength), ...new Uint8Array(KEY_SIZE_MAX + 64)]);
        refused(payload, 1, new RegExp(`key of ${keyLength} bytes`), `type ${type}, key of ${keyLength}`);
      }
    }
  });

  it('rejects an extent value with 0 extents or more than VALUE_EXTENTS_MAX', () => {
    for (const extentCount of [0, VALUE_EXTENTS_MAX + 1, 0xffff_ffff]) {
      const payload = Uint8Array.from([...header(RECORD_PUT_EXTENTS, 0, 1), ...u64(100n), ...u32(0), ...u32(extentCount), 0x6b, ...u64(5n), ...u32(1)]);
      refused(payload, 1, new RegExp(`has ${extentCount} extents`), `${extentCount} extents`);
    }
  });

  it('rejects an extent of 0 blocks or starting beyond 2^53, and a value length beyond 2^53', () => {
    const extentRecord = (length: bigint, startBlock: bigint, blockCount: number): Uint8Array =>
      Uint8Array.from([...header(RECORD_PUT_EXTENTS, 0, 1), ...u64(length), ...u32(0), ...u32(1), 0x6b, ...u64(startBlock), ...u32(blockCount)]);
    refused(extentRecord(100n, 5n, 0), 1, /bad extent 0/, 'empty extent');
    refused(extentRecord(100n, 2n ** 53n, 1), 1, /bad extent 0/, 'start of 2^53');
    refused(extentRecord(2n ** 53n, 5n, 1), 1, /value length beyond 2\^53/, 'length of 2^53');
    assert.equal(readAll(extentRecord(100n, 2n ** 53n - 1n, 1), 1).entries.length, 1, 'the largest exact start block is valid');
  });

  it('with a block size, rejects extents holding too few or too many blocks for the value length', () => {
    const put = (length: number, blocks: number[]): Uint8Array =>
      written([{ op: 'put', key: utf8('k'), keyIsString: true, value: { kind: 'extents', length, crc: 0, extents: blocks.map((blockCount, i) => ({ startBlock: 1000 * i, blockCount })) } }]);
    const fits: [number, number[]][] = [
      [0, [1]],
      [1, [1]],
      [512, [1]],
      [513, [2]],
      [513, [1, 1]],
      [5000, [3, 7]],
    ];
    for (const [length, blocks] of fits) assert.equal(readAll(put(length, blocks), 1, 512).entries.length, 1, `${length} bytes in ${blocks}`);
    const misfits: [number, number[]][] = [
      [0, [2]],
      [513, [1]],
      [512, [2]],
      [1024, [1, 1, 1]],
      [5121, [3, 7]],
    ];
    for (const [length, blocks] of misfits) refused(put(length, blocks), 1, /do not fit a value/, `${length} bytes in ${blocks}`, 512);
    // Without a block size the fit is not checked (the caller has none to give).
    assert.equal(readAll(put(513, [1]), 1).entries.length, 1);
  });

  it('never throws anything but a FormatError and never hangs on arbitrary bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400, size: 'max' }), fc.oneof(fc.nat(10), fc.constant(0xffff_ffff)), fc.option(fc.constantFrom(512, 4096)), (payload, count, blockSize) => {
        try {
          const end = readRecords(payload, 0, count, collector([]), 'wal', 3, blockSize ?? undefined);
          assert.ok(end <= payload.length);
        } catch (error) {
          assert.ok(error instanceof FormatError, `expected a FormatError, got ${String(error)}`);
          assert.equal(error.structure, 'wal');
          assert.equal(error.blockIndex, 3);
        }
      }),
      { seed: PROPERTY_SEED, numRuns: 3000 },
    );
  });

  it('never throws anything but a FormatError on random damage to valid records (property)', () => {
    fc.assert(
      fc.property(
        fc.array(entryArbitrary, { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        (entries, edits) => {
          const payload = written(entries);
          for (const [position, xor] of edits) payload[position % payload.length] ^= xor;
          try {
            readRecords(payload, 0, entries.length, collector([]), 'page', 8, 4096);
          } catch (error) {
            assert.ok(error instanceof FormatError, `expected a FormatError, got ${String(error)}`);
          }
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 1000 },
    );
  });

  it('scanRecords() refuses exactly what readRecords() refuses, with the same reason, and its records decode to the same entries (property)', () => {
    fc.assert(
      fc.property(
        fc.array(entryArbitrary, { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.oneof(fc.constant(0), fc.nat(8), fc.constant(0xffff_ffff)),
        (entries, edits, countShift) => {
          const payload = written(entries);
          for (const [position, xor] of edits) payload[position % payload.length] ^= xor;
          const count = countShift === 0xffff_ffff ? countShift : entries.length + (countShift % 3) - 1;
          let readError: unknown;
          const read: Entry[] = [];
          try {
            readRecords(payload, 0, count, collector(read), 'wal', 8, 4096);
          } catch (error) {
            readError = error;
          }
          let starts: number[] | undefined;
          try {
            starts = scanRecords(payload, 0, count, 'wal', 8, 4096);
          } catch (error) {
            assert.ok(readError !== undefined, `scanRecords refused what readRecords read: ${String(error)}`);
            assert.equal((error as Error).message, (readError as Error).message);
            return;
          }
          assert.equal(readError, undefined, 'scanRecords read what readRecords refused');
          const data = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
          const scanned: Entry[] = [];
          for (let i = 0; i < count; i++) {
            const keyStart = recordKeyStart(payload, starts[i]);
            const key = payload.subarray(keyStart, keyStart + recordKeyLength(payload, starts[i]));
            const value = recordValueAt(payload, data, starts[i], starts[i + 1]);
            collector(scanned)[value === undefined ? 'delete' : 'put'](key, recordKeyIsString(payload, starts[i]), value as StoredValue);
          }
          assert.deepEqual(scanned, read);
        },
      ),
      { seed: PROPERTY_SEED, numRuns: 2000 },
    );
  });
});
