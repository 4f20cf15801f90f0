// Little-endian field access on byte arrays. u64 fields hold values below
// 2^53 (block indexes, lengths, sequence numbers): they are read as exact JS
// numbers, and a larger value is reported, never rounded.

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function writeU64(data: DataView, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 field out of range: ${value}`);
  data.setUint32(offset, value % 0x1_0000_0000, true);
  data.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true);
}

/** Returns the value, or -1 if it does not fit 2^53 (the caller reports it). */
export function readU64(data: DataView, offset: number): number {
  const low = data.getUint32(offset, true);
  const high = data.getUint32(offset + 4, true);
  if (high >= 0x20_0000) return -1;
  return high * 0x1_0000_0000 + low;
}

export function isAllZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Copies up to this many bytes with a loop rather than TypedArray.set. */
const SMALL_COPY_BYTES = 64;

/**
 * Copies `bytes` to `offset` of `target`; returns the offset after them.
 * Short ones by a loop: TypedArray.set costs more than one for the keys and
 * small values records are made of (measured: ~13 µs a 4 KiB page of them).
 */
export function copyBytes(target: Uint8Array, offset: number, bytes: Uint8Array): number {
  const length = bytes.length;
  if (length <= SMALL_COPY_BYTES) {
    for (let i = 0; i < length; i++) target[offset + i] = bytes[i];
  } else {
    target.set(bytes, offset);
  }
  return offset + length;
}
