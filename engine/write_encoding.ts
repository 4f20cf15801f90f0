// Write encoding: a put, delete or batch as the façade takes it, checked and
// encoded into what the journal commits, before anything else happens to
// it. Everything the caller handed over is read here, once, and what is kept
// of it is copied: the caller may reuse its keys, values and operation
// arrays as soon as the call returns, also when the write itself is held
// (behind the WAL tail's replay, ReplayOverlay) or tried again (after the
// store grew). Nothing here takes blocks or touches the store: that comes
// after, in the façade (BlockStore#tryQueue), so a bad operation refuses the
// whole batch with nothing to give back.
import { deleteRecordBytes, extentPutRecordBytes, inlinePutRecordBytes } from '../format/records.js';
import { COMMIT_HEADER_SIZE } from '../format/constants.js';
import { toKeyString } from './key_codec.js';
import { VALUE_EXTENTS_PER_PUT_MAX } from './space.js';
import { describeArgument, unreadableArgument } from './store_arguments.js';
import { invalidArgument, StoreError } from './store_error.js';
import { VALUE_SIZE_MAX } from './store_options.js';
import type { ValueCodec } from './value_codec.js';
import type { ValueCopySlab } from './value_copy_slab.js';

/** One operation of a write, encoded. */
export interface EncodedOperation {
  readonly keyString: string;
  readonly isString: boolean;
  /**
   * The encoded value of a put (undefined: a delete). An inline value is a
   * view into the write's own copy; a larger one is the codec's output,
   * copied when `copyLargeValues` was asked for (the grid copies it into
   * its aligned buffers when it is written).
   */
  readonly bytes: Uint8Array | undefined;
}

export interface EncodedWrite {
  readonly operations: readonly EncodedOperation[];
  /** The commit payload its records take, counting VALUE_EXTENTS_PER_PUT_MAX extents for each extent value (allocation tells how many). */
  readonly payloadBytesMax: number;
  /** Blocks its extent values take (in whole allocation units). */
  readonly valueBlocks: number;
  /** Whether it holds a put (a batch of deletes only is never refused for room). */
  readonly hasPut: boolean;
  /** Whether its extent values are copies of its own (not the caller's buffers). */
  readonly largeValuesCopied: boolean;
}

/** What encoding a write depends on. */
export interface WriteEncodingParts {
  readonly codec: ValueCodec;
  readonly blockSize: number;
  /** Blocks of an allocation unit (a tree page): a value's blocks are taken in whole units. */
  readonly pageBlocks: number;
  /** A value of at most this many bytes is stored in its record, a larger one in extents. */
  readonly inlineValueMax: number;
  /** The WAL payload one commit may hold (Journal.commitPayloadMax). */
  readonly commitPayloadMax: number;
  /** Where the copies of inline values are carved from. */
  readonly valueCopies: ValueCopySlab;
}

/** `operation` if it is an object (a batch operation's fields are read in encodeWrite); ERR_INVALID_ARG otherwise. */
export function checkedOperation(operation: unknown): object {
  if (operation === null || typeof operation !== 'object') throw invalidArgument('batch operations must be objects');
  return operation;
}

/**
 * Checks and encodes `operations` (BatchOperation objects, as given).
 * Throws ERR_INVALID_ARG, ERR_VALUE_TOO_LARGE or the codec's error; a batch
 * is refused whole. With `copyLargeValues`, extent values are copied too,
 * for a write that is not handed to the grid in this call.
 */
export function encodeWrite(operations: readonly unknown[], parts: WriteEncodingParts, copyLargeValues: boolean): EncodedWrite {
  const encoded: { keyString: string; isString: boolean; bytes: Uint8Array | undefined }[] = [];
  let payloadBytesMax = COMMIT_HEADER_SIZE;
  let valueBlocks = 0;
  let inlineBytes = 0;
  let hasPut = false;
  for (const operation of operations) {
    checkedOperation(operation);
    // Each field read once: a getter cannot hand validation one key and the record another.
    let type: unknown, key: unknown, value: unknown;
    try {
      ({ type, key, value } = operation as { type: unknown; key: unknown; value?: unknown });
    } catch (error) {
      throw unreadableArgument('a batch operation', error);
    }
    const keyString = toKeyString(key);
    const isString = typeof key === 'string';
    if (type === 'del') {
      encoded.push({ keyString, isString, bytes: undefined });
      payloadBytesMax += deleteRecordBytes(keyString.length);
    } else if (type === 'put') {
      hasPut = true;
      const bytes = parts.codec.encode(value);
      if (bytes.length > VALUE_SIZE_MAX) throw new StoreError('ERR_VALUE_TOO_LARGE', `value of ${bytes.length} bytes; a put stores at most ${VALUE_SIZE_MAX} (use createWriteStream)`);
      if (bytes.length <= parts.inlineValueMax) {
        inlineBytes += bytes.length;
        payloadBytesMax += inlinePutRecordBytes(keyString.length, bytes.length);
        encoded.push({ keyString, isString, bytes });
      } else {
        payloadBytesMax += extentPutRecordBytes(keyString.length, VALUE_EXTENTS_PER_PUT_MAX);
        valueBlocks += Math.ceil(bytes.length / parts.blockSize / parts.pageBlocks) * parts.pageBlocks;
        encoded.push({ keyString, isString, bytes: copyLargeValues ? new Uint8Array(bytes) : bytes });
      }
    } else {
      throw invalidArgument(`batch operation type must be 'put' or 'del', got ${describeArgument(type)}`, 'range');
    }
  }
  if (payloadBytesMax > parts.commitPayloadMax) {
    throw new StoreError('ERR_VALUE_TOO_LARGE', `this write needs up to ${payloadBytesMax} bytes of WAL; one commit holds at most ${parts.commitPayloadMax} (use a larger walSizeBytes or smaller batches)`);
  }
  // Inline values are copied into one region per write, carved from a shared slab (value_copy_slab.ts).
  const inline = parts.valueCopies.take(inlineBytes);
  let inlineOffset = 0;
  for (const operation of encoded) {
    const bytes = operation.bytes;
    if (bytes === undefined || bytes.length > parts.inlineValueMax) continue;
    inline.set(bytes, inlineOffset);
    operation.bytes = inline.subarray(inlineOffset, inlineOffset + bytes.length);
    inlineOffset += bytes.length;
  }
  return { operations: encoded, payloadBytesMax, valueBlocks, hasPut, largeValuesCopied: copyLargeValues };
}

/**
 * `write` with copies of its extent values, for a write tried again after
 * its call returned (the caller may have reused the buffers by then).
 */
export function withLargeValuesCopied(write: EncodedWrite, inlineValueMax: number): EncodedWrite {
  if (write.largeValuesCopied) return write;
  const operations = write.operations.map((operation) =>
    operation.bytes !== undefined && operation.bytes.length > inlineValueMax ? { ...operation, bytes: new Uint8Array(operation.bytes) } : operation,
  );
  return { ...write, operations, largeValuesCopied: true };
}
