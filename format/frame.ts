// Frames: a payload split over whole blocks, each block self-describing and
// checksummed. WAL commits and the checkpoint's free set are frames
// (docs/format.md § Frames).
//
// Every block carries the frame's sequence number, the store's tag, its index
// in the frame and the frame's block count, so a reader can tell a block of
// this frame from a stale block of an older frame, from a block of another
// store that used the same device, and from a misdirected write.
import { crc32c } from './crc32c.js';
import { readU64, view, writeU64 } from './bytes.js';
import { FREE_SET_BLOCK_MAGIC, FRAME_HEADER_SIZE, SEQUENCE_LIMIT, WAL_BLOCK_MAGIC } from './constants.js';
import { FormatError, type StructureName } from './format_error.js';

export type FrameKind = 'wal' | 'free set';

export interface FrameBlockHeader {
  sequence: number;
  storeTag: number;
  blockIndex: number;
  blockCount: number;
  payloadBytes: number;
}

const OFFSET_MAGIC = 0;
const OFFSET_CRC = 4;
const OFFSET_SEQUENCE = 8;
const OFFSET_STORE_TAG = 16;
const OFFSET_BLOCK_INDEX = 20;
const OFFSET_BLOCK_COUNT = 24;
const OFFSET_PAYLOAD_BYTES = 28;

export function frameMagic(kind: FrameKind): number {
  return kind === 'wal' ? WAL_BLOCK_MAGIC : FREE_SET_BLOCK_MAGIC;
}

export function framePayloadPerBlock(blockSize: number): number {
  return blockSize - FRAME_HEADER_SIZE;
}

/** Blocks a frame of `payloadLength` bytes takes (at least one). */
export function frameBlockCount(payloadLength: number, blockSize: number): number {
  return Math.max(1, Math.ceil(payloadLength / framePayloadPerBlock(blockSize)));
}

/**
 * Writes `payload` as a frame into `target`, which must be exactly
 * frameBlockCount(payload.length) blocks. Unused payload bytes are zero.
 */
export function encodeFrame(
  kind: FrameKind,
  sequence: number,
  storeTag: number,
  payload: Uint8Array,
  target: Uint8Array,
  blockSize: number,
): void {
  const perBlock = framePayloadPerBlock(blockSize);
  const blockCount = frameBlockCount(payload.length, blockSize);
  if (target.length !== blockCount * blockSize) {
    throw new RangeError(`frame target is ${target.length} bytes, needs ${blockCount * blockSize}`);
  }
  const magic = frameMagic(kind);
  for (let index = 0; index < blockCount; index++) {
    const block = target.subarray(index * blockSize, (index + 1) * blockSize);
    const chunk = payload.subarray(index * perBlock, Math.min(payload.length, (index + 1) * perBlock));
    block.fill(0);
    block.set(chunk, FRAME_HEADER_SIZE);
    const data = view(block);
    data.setUint32(OFFSET_MAGIC, magic, true);
    if (!(sequence < SEQUENCE_LIMIT)) throw new RangeError(`frame sequence ${sequence} at or above 2^52 (SEQUENCE_LIMIT): a reader would refuse it`);
    writeU64(data, OFFSET_SEQUENCE, sequence);
    data.setUint32(OFFSET_STORE_TAG, storeTag >>> 0, true);
    data.setUint32(OFFSET_BLOCK_INDEX, index, true);
    data.setUint32(OFFSET_BLOCK_COUNT, blockCount, true);
    data.setUint32(OFFSET_PAYLOAD_BYTES, chunk.length, true);
    data.setUint32(OFFSET_CRC, crc32c(block.subarray(OFFSET_SEQUENCE)), true);
  }
}

/**
 * Decodes one block's header. Throws FormatError (naming `absoluteBlock`) if
 * the block is not an intact frame block of `kind`.
 */
export function decodeFrameBlock(kind: FrameKind, block: Uint8Array, absoluteBlock: number): FrameBlockHeader {
  const structure: StructureName = kind;
  const fail = (reason: string): never => {
    throw new FormatError(structure, reason, absoluteBlock);
  };
  const data = view(block);
  if (data.getUint32(OFFSET_MAGIC, true) !== frameMagic(kind)) fail(`bad magic (not a ${kind} block)`);
  const storedCrc = data.getUint32(OFFSET_CRC, true);
  const computedCrc = crc32c(block.subarray(OFFSET_SEQUENCE));
  if (storedCrc !== computedCrc) {
    fail(`checksum mismatch (stored 0x${storedCrc.toString(16)}, computed 0x${computedCrc.toString(16)})`);
  }
  const sequence = readU64(data, OFFSET_SEQUENCE);
  if (sequence < 0) fail('sequence exceeds 2^53');
  if (sequence >= SEQUENCE_LIMIT) fail(`sequence ${sequence} is at or above 2^52 (SEQUENCE_LIMIT)`);
  const header: FrameBlockHeader = {
    sequence,
    storeTag: data.getUint32(OFFSET_STORE_TAG, true),
    blockIndex: data.getUint32(OFFSET_BLOCK_INDEX, true),
    blockCount: data.getUint32(OFFSET_BLOCK_COUNT, true),
    payloadBytes: data.getUint32(OFFSET_PAYLOAD_BYTES, true),
  };
  const perBlock = framePayloadPerBlock(block.length);
  if (header.blockCount === 0 || header.blockIndex >= header.blockCount) {
    fail(`block ${header.blockIndex} of a ${header.blockCount}-block frame`);
  }
  const isLast = header.blockIndex === header.blockCount - 1;
  if (header.payloadBytes > perBlock || (!isLast && header.payloadBytes !== perBlock) || (isLast && header.blockCount > 1 && header.payloadBytes === 0)) {
    fail(`${header.payloadBytes} payload bytes in block ${header.blockIndex} of ${header.blockCount}`);
  }
  for (let i = FRAME_HEADER_SIZE + header.payloadBytes; i < block.length; i++) {
    if (block[i] !== 0) fail('bytes after the payload are not zero');
  }
  return header;
}

/** The payload bytes of one frame block (a view, not a copy). */
export function frameBlockPayload(block: Uint8Array, header: FrameBlockHeader): Uint8Array {
  return block.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + header.payloadBytes);
}
