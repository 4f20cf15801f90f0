// Aligned memory for direct IO.
import { addon, constants } from './addon.js';
import { invalidRange, invalidType } from './errors.js';

/** Default alignment: a 4 KiB page, which satisfies every device's direct IO. */
export const DEFAULT_ALIGNMENT = 4096;

/**
 * Allocates `sizeBytes` of zeroed memory whose address is a multiple of
 * `alignment` (a power of two), owned by the returned Buffer and freed when it
 * is garbage collected.
 */
export function allocAligned(sizeBytes: number, alignment: number = DEFAULT_ALIGNMENT): Buffer {
  if (typeof sizeBytes !== 'number' || typeof alignment !== 'number') {
    throw invalidType('allocAligned(sizeBytes, alignment) takes numbers');
  }
  if (!Number.isInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > constants.TRANSFER_SIZE_MAX) {
    throw invalidRange(`sizeBytes must be an integer from 0 to ${constants.TRANSFER_SIZE_MAX}, got ${sizeBytes}`);
  }
  if (!isPowerOfTwo(alignment) || alignment > constants.ALIGNMENT_MAX) {
    throw invalidRange(`alignment must be a power of two up to ${constants.ALIGNMENT_MAX}, got ${alignment}`);
  }
  return addon.allocAligned(sizeBytes, alignment);
}

/**
 * True when the buffer's memory address and its length are both multiples of
 * `alignment` — what direct IO requires of a buffer.
 */
export function isAligned(buffer: ArrayBufferView, alignment: number): boolean {
  if (!ArrayBuffer.isView(buffer)) throw invalidType('buffer must be a Buffer, TypedArray or DataView');
  if (!isPowerOfTwo(alignment) || alignment > constants.ALIGNMENT_MAX) {
    throw invalidRange(`alignment must be a power of two up to ${constants.ALIGNMENT_MAX}, got ${alignment}`);
  }
  return buffer.byteLength % alignment === 0 && addon.bufferAddressModulo(buffer, alignment) === 0;
}

export function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0 && value <= 2 ** 30;
}
