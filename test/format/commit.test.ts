// WAL commit payloads: u32 recordCount | u32 reserved (0) | u64
// durableSequence | records. What the engine writes reads back record for
// record; a payload whose header or length disagrees with its records is
// refused with a FormatError naming the WAL and the commit's first block.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { ByteWriter } from '../../format/byte_writer.js';
import { beginCommitPayload, commitDurableSequence, finishCommitPayload, readCommitPayload } from '../../format/commit.js';
import { COMMIT_HEADER_SIZE, SEQUENCE_LIMIT } from '../../format/constants.js';
import { FormatError } from '../../format/format_error.js';
import { patternBytes, PROPERTY_SEED, throwsFormatError, utf8 } from './helpers.js';
import { collector, entryArbitrary, writeEntries, type Entry } from './record_entries.js';

const FIRST_BLOCK = 17;
const BLOCK_SIZE = 4096;

function sampleEntries(): Entry[] {
  return [
    { op: 'put', key: utf8('a'), keyIsString: true, value: { kind: 'inline', bytes: patternBytes(100, 2) } },
    { op: 'delete', key: Uint8Array.from([1, 2]), keyIsString: false },
    { op: 'put', key: utf8('b'), keyIsString: true, value: { kind: 'extents', length: 5000, crc: 7, extents: [{ startBlock: 90, blockCount: 2 }] } },
  ];
}

const DURABLE_SEQUENCE = 0x1_2345_6789;

function commitPayload(entries: readonly Entry[], recordCount = entries.length, durableSequence = DURABLE_SEQUENCE): Uint8Array {
  const writer = new ByteWriter();
  beginCommitPayload(writer, durableSequence);
  writeEntries(writer, entries);
  return finishCommitPayload(writer, recordCount).slice();
}

function readBack(payload: Uint8Array): { recordCount: number; durableSequence: number; entries: Entry[] } {
  const entries: Entry[] = [];
  const summary = readCommitPayload(payload, collector(entries), FIRST_BLOCK, BLOCK_SIZE);
  return { ...summary, entries };
}

function refused(payload: Uint8Array, reason: RegExp, what?: string): FormatError {
  return throwsFormatError(() => readCommitPayload(payload, collector([]), FIRST_BLOCK, BLOCK_SIZE), { structure: 'wal', blockIndex: FIRST_BLOCK, reason }, what);
}

describe('beginCommitPayload() / finishCommitPayload()', () => {
  it('write the record count, a zero reserved word and the durable sequence ahead of the records', () => {
    const payload = commitPayload(sampleEntries());
    const data = new DataView(payload.buffer);
    assert.equal(data.getUint32(0, true), 3);
    assert.equal(data.getUint32(4, true), 0);
    assert.equal(data.getBigUint64(8, true), BigInt(DURABLE_SEQUENCE));
    assert.equal(COMMIT_HEADER_SIZE, 16);
  });

  it('refuse a durable sequence beyond 2^53', () => {
    assert.throws(() => beginCommitPayload(new ByteWriter(), 2 ** 53), RangeError);
  });

  it('refuse to start a commit in a writer that already holds bytes', () => {
    const writer = new ByteWriter();
    writer.u8(1);
    assert.throws(() => beginCommitPayload(writer, 0), RangeError);
  });
});

describe('commitDurableSequence()', () => {
  it('reads the durable sequence, or -1 from a payload too short or a value beyond 2^53', () => {
    assert.equal(commitDurableSequence(commitPayload(sampleEntries())), DURABLE_SEQUENCE);
    assert.equal(commitDurableSequence(commitPayload([], 0, SEQUENCE_LIMIT - 1)), SEQUENCE_LIMIT - 1);
    for (let length = 0; length < COMMIT_HEADER_SIZE; length++) {
      assert.equal(commitDurableSequence(commitPayload([]).subarray(0, length)), -1, `${length} bytes`);
    }
    const huge = commitPayload([]);
    new DataView(huge.buffer).setBigUint64(8, 2n ** 53n, true);
    assert.equal(commitDurableSequence(huge), -1);
  });
});

describe('readCommitPayload()', () => {
  it('visits every record of a commit and returns their count', () => {
    const entries = sampleEntries();
    assert.deepEqual(readBack(commitPayload(entries)), { recordCount: 3, durableSequence: DURABLE_SEQUENCE, entries });
  });

  it('accepts a commit of no records (16 bytes)', () => {
    const payload = commitPayload([], 0, 0);
    assert.equal(payload.length, COMMIT_HEADER_SIZE);
    assert.deepEqual(readBack(payload), { recordCount: 0, durableSequence: 0, entries: [] });
  });

  it('round-trips random commits (property)', () => {
    fc.assert(
      fc.property(fc.array(entryArbitrary, { maxLength: 20 }), fc.nat({ max: SEQUENCE_LIMIT - 1 }), (generated, durableSequence) => {
        // The reader checks extents against the block size; give them one that fits.
        const entries = generated.map((entry): Entry =>
          entry.op === 'put' && entry.value.kind === 'extents'
            ? { ...entry, value: { ...entry.value, length: 1, extents: [{ startBlock: 5, blockCount: 1 }] } }
            : entry,
        );
        assert.deepEqual(readBack(commitPayload(entries, entries.length, durableSequence)), { recordCount: entries.length, durableSequence, entries });
      }),
      { seed: PROPERTY_SEED, numRuns: 200 },
    );
  });

  it('rejects a payload shorter than its header', () => {
    for (let length = 0; length < COMMIT_HEADER_SIZE; length++) {
      refused(commitPayload([]).subarray(0, length), /shorter than its header/, `${length} bytes`);
    }
  });

  it('rejects nonzero reserved header bytes', () => {
    for (let offset = 4; offset < 8; offset++) {
      const payload = commitPayload(sampleEntries());
      payload[offset] = 1;
      refused(payload, /reserved bytes are not zero/, `byte ${offset}`);
    }
  });

  it('rejects a durable sequence of 2^53 or more', () => {
    for (const value of [2n ** 53n, 2n ** 64n - 1n]) {
      const payload = commitPayload(sampleEntries());
      new DataView(payload.buffer).setBigUint64(8, value, true);
      refused(payload, /durableSequence beyond 2\^53/, `durable sequence ${value}`);
    }
  });

  it('rejects trailing bytes after the records', () => {
    const payload = commitPayload(sampleEntries());
    for (const extra of [1, 3, 100]) {
      refused(Uint8Array.from([...payload, ...new Uint8Array(extra)]), new RegExp(`${extra} bytes after its 3 records`), `${extra} zero bytes`);
    }
    refused(commitPayload(sampleEntries(), 2), /bytes after its 2 records/, 'a record count one short');
    refused(commitPayload(sampleEntries(), 0), /bytes after its 0 records/, 'a record count of 0');
  });

  it('rejects a record count larger than the records present', () => {
    refused(commitPayload(sampleEntries(), 4), /record truncated/);
    refused(commitPayload(sampleEntries(), 0xffff_ffff), /record truncated/);
  });

  it('rejects a payload cut at every byte offset', () => {
    const payload = commitPayload(sampleEntries());
    for (let cut = 0; cut < payload.length; cut++) refused(payload.subarray(0, cut), /.+/, `cut at ${cut}`);
  });

  it('checks extent values against the block size it is given', () => {
    const misfit: Entry = { op: 'put', key: utf8('k'), keyIsString: true, value: { kind: 'extents', length: 5000, crc: 0, extents: [{ startBlock: 9, blockCount: 1 }] } };
    refused(commitPayload([misfit]), /do not fit/);
  });

  it('never throws anything but a FormatError on random damage (property)', () => {
    const clean = commitPayload(sampleEntries());
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(clean.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(clean.length), (edits, cut) => {
        const payload = clean.slice(0, cut === clean.length ? undefined : cut);
        for (const [offset, xor] of edits) if (offset < payload.length) payload[offset] ^= xor;
        try {
          readCommitPayload(payload, collector([]), FIRST_BLOCK, BLOCK_SIZE);
        } catch (error) {
          assert.ok(error instanceof FormatError, `expected a FormatError, got ${String(error)}`);
          assert.equal(error.blockIndex, FIRST_BLOCK);
        }
      }),
      { seed: PROPERTY_SEED, numRuns: 1000 },
    );
  });
});
