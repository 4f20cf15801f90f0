// Aligned memory for direct IO.
import { constants as bufferConstants } from 'node:buffer';

import { addon, constants } from './addon.js';
import { describeValue, invalidRange, invalidType, unreadable } from './errors.js';
import { byteLengthOf } from './view_bytes.js';

/** Default alignment: a 4 KiB page, which satisfies every device's direct IO. */
export const DEFAULT_ALIGNMENT = 4096;

/** The largest Buffer Node makes (buffer.constants.MAX_LENGTH). */
export const HEAP_BUFFER_BYTES_MAX = bufferConstants.MAX_LENGTH;

/**
 * Allocates `sizeBytes` of zeroed memory whose address is a multiple of
 * `alignment` (a power of two), owned by the returned Buffer and freed when it
 * is garbage collected. From 2 MiB up the memory is a mapping of its own,
 * rounded up to whole 2 MiB pages and marked for transparent huge pages
 * (native/aligned_buffer.cc): its page faults cost a fraction of small pages'.
 */
export function allocAligned(sizeBytes: number, alignment: number = DEFAULT_ALIGNMENT): Buffer {
  if (typeof sizeBytes !== 'number' || typeof alignment !== 'number') {
    throw invalidType('allocAligned(sizeBytes, alignment) takes numbers');
  }
  if (!Number.isInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > constants.TRANSFER_SIZE_MAX) {
    throw invalidRange(`sizeBytes must be an integer from 0 to ${constants.TRANSFER_SIZE_MAX}, got ${describeValue(sizeBytes)}`);
  }
  if (!isPowerOfTwo(alignment) || alignment > constants.ALIGNMENT_MAX) {
    throw invalidRange(`alignment must be a power of two up to ${constants.ALIGNMENT_MAX}, got ${describeValue(alignment)}`);
  }
  return addon.allocAligned(sizeBytes, alignment);
}

/**
 * `sizeBytes` of uninitialised JS-heap memory whose address is a multiple of
 * `alignment`: a view into a Buffer `alignment` bytes longer, whose bytes
 * outside the view are zeroed (nothing stale shows through `.buffer`). For
 * memory that is read into once and then handed to JS, where allocAligned
 * costs too much: a fresh 1 MiB allocAligned took 2.7 ms a call here (mmap,
 * zeroing, page faults, freed only at the next GC), a 1 MiB
 * Buffer.allocUnsafeSlow 0.1-0.6 ms (malloc reuses what the GC freed); one
 * without the zeroing still cost ~0.8 ms of CPU more than this a 1 MiB get
 * (session 37). Unlike allocAligned's, this memory is not pinned by the
 * native layer: JS could transfer (detach) it while IO is in flight, and
 * its memory would then be freed with the new owner, so IO on it goes
 * through bounce copies of the native layer's own (native/command.h,
 * BounceBuffer): copied in for a write, out at delivery for a read.
 */
export function allocAlignedInHeap(sizeBytes: number, alignment: number = DEFAULT_ALIGNMENT): Buffer {
  if (!isPowerOfTwo(alignment) || alignment > constants.ALIGNMENT_MAX) {
    throw invalidRange(`alignment must be a power of two up to ${constants.ALIGNMENT_MAX}, got ${describeValue(alignment)}`);
  }
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > HEAP_BUFFER_BYTES_MAX - alignment) {
    throw invalidRange(`sizeBytes must be an integer from 0 to ${HEAP_BUFFER_BYTES_MAX - alignment}, got ${describeValue(sizeBytes)}`);
  }
  const whole = Buffer.allocUnsafeSlow(sizeBytes + alignment);
  const offBy = addon.bufferAddressModulo(whole, alignment);
  const start = offBy === 0 ? 0 : alignment - offBy;
  whole.fill(0, 0, start);
  whole.fill(0, start + sizeBytes);
  return whole.subarray(start, start + sizeBytes);
}

/**
 * True when the buffer's memory address and its length are both multiples of
 * `alignment` — what direct IO requires of a buffer.
 */
export function isAligned(buffer: ArrayBufferView, alignment: number): boolean {
  if (!ArrayBuffer.isView(buffer)) throw invalidType('buffer must be a Buffer, TypedArray or DataView');
  if (!isPowerOfTwo(alignment) || alignment > constants.ALIGNMENT_MAX) {
    throw invalidRange(`alignment must be a power of two up to ${constants.ALIGNMENT_MAX}, got ${describeValue(alignment)}`);
  }
  // Its length through the intrinsic getter: an own byteLength may say anything, or throw (a review).
  let byteLength: number;
  try {
    byteLength = byteLengthOf(buffer);
  } catch (error) {
    // A DataView over a resizable ArrayBuffer shrunk below it.
    throw unreadable("buffer's length", error);
  }
  return byteLength % alignment === 0 && addon.bufferAddressModulo(buffer, alignment) === 0;
}

export function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0 && value <= 2 ** 30;
}
