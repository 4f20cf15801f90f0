// WAL commit payloads: a header then records (docs/format.md § WAL commits).
//
//   commit payload := u32 recordCount | u32 reserved (0) | u64 durableSequence
//                     | recordCount × record
//
// durableSequence is the highest commit sequence the writer knew to be
// durable when it wrote this commit (sequence - 1 when every commit is
// flushed before the next is written; less with deferred flushes). Recovery
// uses it to tell a torn tail from damage in the middle of the log, and to
// know which commits' extent data may not have reached the disk.
import { readU64, view } from './bytes.js';
import { ByteWriter } from './byte_writer.js';
import { COMMIT_HEADER_SIZE, SEQUENCE_LIMIT } from './constants.js';
import { FormatError } from './format_error.js';
import { readRecords, scanRecords, type RecordVisitor } from './records.js';

/** Starts a commit payload in `writer` (which must be empty). */
export function beginCommitPayload(writer: ByteWriter, durableSequence: number): void {
  if (!(durableSequence < SEQUENCE_LIMIT)) throw new RangeError(`commit durableSequence ${durableSequence} at or above 2^52 (SEQUENCE_LIMIT): a reader would refuse it`);
  if (writer.length !== 0) throw new RangeError('commit payload must start an empty writer');
  writer.u32(0);
  writer.u32(0);
  writer.u64(durableSequence);
}

/** The durableSequence field of a commit payload, or -1 if the payload is too short to hold it. */
export function commitDurableSequence(payload: Uint8Array): number {
  if (payload.length < COMMIT_HEADER_SIZE) return -1;
  return readU64(view(payload), 8);
}

/** The recordCount field of a commit payload (its first block's is enough), or -1 if the payload is too short to hold it. */
export function commitRecordCount(payload: Uint8Array): number {
  if (payload.length < COMMIT_HEADER_SIZE) return -1;
  return view(payload).getUint32(0, true);
}

export interface CommitSummary {
  recordCount: number;
  durableSequence: number;
}

/** Seals the payload: stores the record count in the header. */
export function finishCommitPayload(writer: ByteWriter, recordCount: number): Uint8Array {
  writer.patchU32(0, recordCount);
  return writer.bytes();
}

/** Visits the records of a commit payload; throws FormatError if it is malformed. */
export function readCommitPayload(
  payload: Uint8Array,
  visitor: RecordVisitor,
  firstBlock: number,
  blockSize: number,
): CommitSummary {
  const summary = readCommitHeader(payload, firstBlock);
  const end = readRecords(payload, COMMIT_HEADER_SIZE, summary.recordCount, visitor, 'wal', firstBlock, blockSize);
  checkCommitEnd(payload, end, summary.recordCount, firstBlock);
  return summary;
}

/**
 * Checks a commit payload as readCommitPayload does (the same reasons),
 * without decoding its records: their starts, then the end of the last
 * (scanRecords), for a reader that decodes them later.
 */
export function scanCommitPayload(payload: Uint8Array, firstBlock: number, blockSize: number): CommitSummary & { recordStarts: number[] } {
  const summary = readCommitHeader(payload, firstBlock);
  const recordStarts = scanRecords(payload, COMMIT_HEADER_SIZE, summary.recordCount, 'wal', firstBlock, blockSize);
  checkCommitEnd(payload, recordStarts[summary.recordCount], summary.recordCount, firstBlock);
  return { ...summary, recordStarts };
}

function readCommitHeader(payload: Uint8Array, firstBlock: number): CommitSummary {
  if (payload.length < COMMIT_HEADER_SIZE) throw new FormatError('wal', 'commit payload shorter than its header', firstBlock);
  const data = view(payload);
  const recordCount = data.getUint32(0, true);
  if (data.getUint32(4, true) !== 0) throw new FormatError('wal', 'commit header reserved bytes are not zero', firstBlock);
  const durableSequence = readU64(data, 8);
  if (durableSequence < 0) throw new FormatError('wal', 'commit durableSequence beyond 2^53', firstBlock);
  if (durableSequence >= SEQUENCE_LIMIT) throw new FormatError('wal', `commit durableSequence ${durableSequence} is at or above 2^52 (SEQUENCE_LIMIT)`, firstBlock);
  return { recordCount, durableSequence };
}

function checkCommitEnd(payload: Uint8Array, end: number, recordCount: number, firstBlock: number): void {
  if (end !== payload.length) {
    throw new FormatError('wal', `commit payload has ${payload.length - end} bytes after its ${recordCount} records`, firstBlock);
  }
}
