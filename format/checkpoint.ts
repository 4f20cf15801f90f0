// Checkpoint payloads: the whole index at one commit sequence
// (docs/format.md § Checkpoints).
//
//   checkpoint payload := u32 format (1) | u32 reserved (0) | u64 entryCount
//                         | entryCount × (PUT_INLINE | PUT_EXTENTS record)
import { readU64, view } from './bytes.js';
import { ByteWriter } from './byte_writer.js';
import { CHECKPOINT_HEADER_SIZE } from './constants.js';
import { FormatError } from './format_error.js';
import { readRecords, type RecordVisitor } from './records.js';

const CHECKPOINT_PAYLOAD_FORMAT = 1;

export function beginCheckpointPayload(writer: ByteWriter): void {
  if (writer.length !== 0) throw new RangeError('checkpoint payload must start an empty writer');
  writer.u32(CHECKPOINT_PAYLOAD_FORMAT);
  writer.u32(0);
  writer.u64(0);
}

export function finishCheckpointPayload(writer: ByteWriter, entryCount: number): Uint8Array {
  // entryCount < 2^32 in practice; the u64 field keeps room.
  writer.patchU32(8, entryCount % 0x1_0000_0000);
  writer.patchU32(12, Math.floor(entryCount / 0x1_0000_0000));
  return writer.bytes();
}

/** Visits every entry of a checkpoint payload; throws FormatError if it is malformed. */
export function readCheckpointPayload(payload: Uint8Array, visitor: RecordVisitor, firstBlock: number, blockSize: number): number {
  const fail = (reason: string): never => {
    throw new FormatError('checkpoint', reason, firstBlock);
  };
  if (payload.length < CHECKPOINT_HEADER_SIZE) fail('payload shorter than its header');
  const data = view(payload);
  if (data.getUint32(0, true) !== CHECKPOINT_PAYLOAD_FORMAT) fail(`payload format ${data.getUint32(0, true)}`);
  if (data.getUint32(4, true) !== 0) fail('header reserved bytes are not zero');
  const entryCount = readU64(data, 8);
  if (entryCount < 0) fail('entry count beyond 2^53');
  let deletes = 0;
  const counting: RecordVisitor = {
    put: (key, keyIsString, value) => visitor.put(key, keyIsString, value),
    delete: () => {
      deletes++;
    },
  };
  const end = readRecords(payload, CHECKPOINT_HEADER_SIZE, entryCount, counting, 'checkpoint', firstBlock, blockSize);
  if (deletes > 0) fail(`${deletes} delete records (a checkpoint holds only entries)`);
  if (end !== payload.length) fail(`${payload.length - end} bytes after its ${entryCount} entries`);
  return entryCount;
}
