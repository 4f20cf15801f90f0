// Checkpoint payloads: u32 format (1) | u32 reserved (0) | u64 entryCount |
// entries. A checkpoint holds the whole index, so it has puts only: a delete
// inside one is damage. Anything malformed is refused with a FormatError
// naming the checkpoint and its first block.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { ByteWriter } from '../../format/byte_writer.js';
import { beginCheckpointPayload, finishCheckpointPayload, readCheckpointPayload } from '../../format/checkpoint.js';
import { CHECKPOINT_HEADER_SIZE } from '../../format/constants.js';
import { FormatError } from '../../format/format_error.js';
import type { RecordVisitor, StoredValue } from '../../format/records.js';
import { patternBytes, PROPERTY_SEED, throwsFormatError, utf8 } from './helpers.js';
import { collector, keyArbitrary, writeEntries, type Entry } from './record_entries.js';

const FIRST_BLOCK = 300;
const BLOCK_SIZE = 4096;

function sampleEntries(): Entry[] {
  return [
    { op: 'put', key: utf8('a'), keyIsString: true, value: { kind: 'inline', bytes: patternBytes(100, 2) } },
    { op: 'put', key: Uint8Array.from([0, 1]), keyIsString: false, value: { kind: 'inline', bytes: new Uint8Array(0) } },
    { op: 'put', key: utf8('b'), keyIsString: true, value: { kind: 'extents', length: 5000, crc: 7, extents: [{ startBlock: 90, blockCount: 2 }] } },
  ];
}

function checkpointPayload(entries: readonly Entry[], entryCount = entries.length): Uint8Array {
  const writer = new ByteWriter();
  beginCheckpointPayload(writer);
  writeEntries(writer, entries);
  return finishCheckpointPayload(writer, entryCount).slice();
}

function readBack(payload: Uint8Array): { count: number; entries: Entry[] } {
  const entries: Entry[] = [];
  const count = readCheckpointPayload(payload, collector(entries), FIRST_BLOCK, BLOCK_SIZE);
  return { count, entries };
}

function refused(payload: Uint8Array, reason: RegExp, what?: string): FormatError {
  return throwsFormatError(
    () => readCheckpointPayload(payload, collector([]), FIRST_BLOCK, BLOCK_SIZE),
    { structure: 'checkpoint', blockIndex: FIRST_BLOCK, reason },
    what,
  );
}

describe('beginCheckpointPayload() / finishCheckpointPayload()', () => {
  it('write format 1, a zero reserved word and the u64 entry count ahead of the entries', () => {
    const payload = checkpointPayload(sampleEntries());
    const data = new DataView(payload.buffer);
    assert.equal(data.getUint32(0, true), 1);
    assert.equal(data.getUint32(4, true), 0);
    assert.equal(data.getBigUint64(8, true), 3n);
    assert.equal(CHECKPOINT_HEADER_SIZE, 16);
  });

  it('store an entry count beyond 2^32 in both words', () => {
    const data = new DataView(checkpointPayload([], 2 ** 32 + 5).buffer);
    assert.equal(data.getBigUint64(8, true), 2n ** 32n + 5n);
  });

  it('refuse to start a checkpoint in a writer that already holds bytes', () => {
    const writer = new ByteWriter();
    writer.u8(1);
    assert.throws(() => beginCheckpointPayload(writer), RangeError);
  });
});

describe('readCheckpointPayload()', () => {
  it('visits every entry and returns their count', () => {
    const entries = sampleEntries();
    assert.deepEqual(readBack(checkpointPayload(entries)), { count: 3, entries });
  });

  it('accepts an empty checkpoint (16 bytes)', () => {
    const payload = checkpointPayload([]);
    assert.equal(payload.length, CHECKPOINT_HEADER_SIZE);
    assert.deepEqual(readBack(payload), { count: 0, entries: [] });
  });

  it('calls a class-based visitor as a method, keeping its `this`', () => {
    // The engine's index builder may well be a class; its put() must see itself.
    class IndexBuilder implements RecordVisitor {
      readonly keys: string[] = [];
      put(key: Uint8Array, _keyIsString: boolean, _value: StoredValue): void {
        this.keys.push(new TextDecoder().decode(key));
      }
      delete(): void {
        throw new Error('no deletes in a checkpoint');
      }
    }
    const builder = new IndexBuilder();
    let outcome: string;
    try {
      readCheckpointPayload(checkpointPayload(sampleEntries().slice(0, 1)), builder, FIRST_BLOCK, BLOCK_SIZE);
      outcome = `visited ${JSON.stringify(builder.keys)}`;
    } catch (error) {
      outcome = `threw ${String(error)}`;
    }
    assert.equal(outcome, 'visited ["a"]');
  });

  it('round-trips random checkpoints (property)', () => {
    const inlinePut = fc
      .tuple(keyArbitrary, fc.uint8Array({ maxLength: 2000, size: 'max' }))
      .map(([{ key, keyIsString }, bytes]): Entry => ({ op: 'put', key, keyIsString, value: { kind: 'inline', bytes } }));
    const extentPut = fc
      .tuple(keyArbitrary, fc.integer({ min: 1, max: 100 * BLOCK_SIZE }), fc.nat({ max: 0xffff_ffff }), fc.maxSafeNat())
      .map(([{ key, keyIsString }, length, crc, startBlock]): Entry => ({
        op: 'put',
        key,
        keyIsString,
        value: { kind: 'extents', length, crc, extents: [{ startBlock, blockCount: Math.ceil(length / BLOCK_SIZE) }] },
      }));
    fc.assert(
      fc.property(fc.array(fc.oneof(inlinePut, extentPut), { maxLength: 30 }), (entries) => {
        assert.deepEqual(readBack(checkpointPayload(entries)), { count: entries.length, entries });
      }),
      { seed: PROPERTY_SEED, numRuns: 200 },
    );
  });

  it('rejects a payload shorter than its header', () => {
    for (let length = 0; length < CHECKPOINT_HEADER_SIZE; length++) {
      refused(checkpointPayload([]).subarray(0, length), /shorter than its header/, `${length} bytes`);
    }
  });

  it('rejects a payload format other than 1', () => {
    for (const format of [0, 2, 0xffff_ffff]) {
      const payload = checkpointPayload(sampleEntries());
      new DataView(payload.buffer).setUint32(0, format, true);
      refused(payload, new RegExp(`payload format ${format}`), `format ${format}`);
    }
  });

  it('rejects nonzero reserved header bytes', () => {
    for (let offset = 4; offset < 8; offset++) {
      const payload = checkpointPayload(sampleEntries());
      payload[offset] = 0x10;
      refused(payload, /reserved bytes are not zero/, `byte ${offset}`);
    }
  });

  it('rejects an entry count of 2^53 or more', () => {
    const payload = checkpointPayload(sampleEntries());
    new DataView(payload.buffer).setBigUint64(8, 2n ** 53n, true);
    refused(payload, /entry count beyond 2\^53/);
  });

  it('rejects a delete record inside a checkpoint', () => {
    const withDelete: Entry[] = [...sampleEntries(), { op: 'delete', key: utf8('gone'), keyIsString: true }];
    refused(checkpointPayload(withDelete), /1 delete records/);
    const onlyDelete: Entry[] = [{ op: 'delete', key: Uint8Array.from([9]), keyIsString: false }];
    refused(checkpointPayload(onlyDelete), /1 delete records/);
  });

  it('rejects trailing bytes after the entries', () => {
    const payload = checkpointPayload(sampleEntries());
    for (const extra of [1, 7, 4096]) {
      refused(Uint8Array.from([...payload, ...new Uint8Array(extra)]), new RegExp(`${extra} bytes after its 3 entries`), `${extra} zero bytes`);
    }
    refused(checkpointPayload(sampleEntries(), 2), /bytes after its 2 entries/, 'an entry count one short');
  });

  it('rejects an entry count larger than the entries present, up to 2^53 - 1, promptly', () => {
    refused(checkpointPayload(sampleEntries(), 4), /record truncated/);
    refused(checkpointPayload(sampleEntries(), Number.MAX_SAFE_INTEGER), /record truncated/);
  });

  it('rejects a payload cut at every byte offset', () => {
    const payload = checkpointPayload(sampleEntries());
    for (let cut = 0; cut < payload.length; cut++) refused(payload.subarray(0, cut), /.+/, `cut at ${cut}`);
  });

  it('never throws anything but a FormatError on random damage (property)', () => {
    const clean = checkpointPayload(sampleEntries());
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(clean.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(clean.length), (edits, cut) => {
        const payload = clean.slice(0, cut === clean.length ? undefined : cut);
        for (const [offset, xor] of edits) if (offset < payload.length) payload[offset] ^= xor;
        try {
          readCheckpointPayload(payload, collector([]), FIRST_BLOCK, BLOCK_SIZE);
        } catch (error) {
          assert.ok(error instanceof FormatError, `expected a FormatError, got ${String(error)}`);
          assert.equal(error.blockIndex, FIRST_BLOCK);
        }
      }),
      { seed: PROPERTY_SEED, numRuns: 1000 },
    );
  });
});
