// WAL commit payloads: a header then records (docs/format.md § WAL commits).
//
//   commit payload := u32 recordCount | u32 reserved (0) | recordCount × record
import { view } from './bytes.js';
import { ByteWriter } from './byte_writer.js';
import { COMMIT_HEADER_SIZE } from './constants.js';
import { FormatError } from './format_error.js';
import { readRecords, type RecordVisitor } from './records.js';

/** Starts a commit payload in `writer` (which must be empty). */
export function beginCommitPayload(writer: ByteWriter): void {
  if (writer.length !== 0) throw new RangeError('commit payload must start an empty writer');
  writer.u32(0);
  writer.u32(0);
}

/** Seals the payload: stores the record count in the header. */
export function finishCommitPayload(writer: ByteWriter, recordCount: number): Uint8Array {
  writer.patchU32(0, recordCount);
  return writer.bytes();
}

/** Visits the records of a commit payload; throws FormatError if it is malformed. */
export function readCommitPayload(payload: Uint8Array, visitor: RecordVisitor, firstBlock: number, blockSize: number): number {
  if (payload.length < COMMIT_HEADER_SIZE) throw new FormatError('wal', 'commit payload shorter than its header', firstBlock);
  const data = view(payload);
  const recordCount = data.getUint32(0, true);
  if (data.getUint32(4, true) !== 0) throw new FormatError('wal', 'commit header reserved bytes are not zero', firstBlock);
  const end = readRecords(payload, COMMIT_HEADER_SIZE, recordCount, visitor, 'wal', firstBlock, blockSize);
  if (end !== payload.length) {
    throw new FormatError('wal', `commit payload has ${payload.length - end} bytes after its ${recordCount} records`, firstBlock);
  }
  return recordCount;
}
