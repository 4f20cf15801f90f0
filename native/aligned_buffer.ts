// Aligned memory for direct IO.
import { constants as bufferConstants } from 'node:buffer';

import { addon, constants } from './addon.js';
import { describeValue, invalidRange, invalidType } from './errors.js';

/** Default alignment: a 4 KiB page, which satisfies every device's direct IO. */
export const DEFAULT_ALIGNMENT = 4096;

/** The largest Buffer Node makes (buffer.constants.MAX_LENGTH). */
export const HEAP_BUFFER_BYTES_MAX = bufferConstants.MAX_LENGTH;

/** allocAligned buffers from this size up reuse the memory of collected ones (native/recycled_mappings.h). */
export const RECYCLED_BUFFER_BYTES_MIN = constants.RECYCLED_BUFFER_BYTES_MIN;

/**
 * Allocates `sizeBytes` of zeroed memory whose address is a multiple of
 * `alignment` (a power of two), owned by the returned Buffer and freed when it
 * is garbage collected. From RECYCLED_BUFFER_BYTES_MIN (64 KiB) up the memory
 * is a mapping of its own, of the buffer's size class (at most 25 % larger;
 * from 2 MiB up whole 2 MiB pages, marked for transparent huge pages), and a
 * collected buffer's mapping is kept for the next buffer of its class, up to
 * 32 MiB in the whole process (native/recycled_mappings.h): fresh pages are
 * dear in a VM, ~3.5 ms a MiB on the hosts of these sessions.
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
 * memory that is read into once and then handed to JS, below
 * RECYCLED_BUFFER_BYTES_MIN, where malloc reuses what the GC freed and
 * allocAligned's posix_memalign and zeroing cost more. (Above it, session 37
 * measured a fresh 1 MiB allocAligned at 2.7 ms a call and a 1 MiB
 * Buffer.allocUnsafeSlow at 0.1-0.6 ms; session 45 found malloc's reuse
 * of 1 MiB chunks a matter of luck, 0.6-4.5 ms a get, and allocAligned now
 * reuses collected mappings: see grid.ts.) Unlike allocAligned's, this memory is not pinned by the
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
  return buffer.byteLength % alignment === 0 && addon.bufferAddressModulo(buffer, alignment) === 0;
}

export function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0 && value <= 2 ** 30;
}
