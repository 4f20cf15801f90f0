// ByteWriter: appends little-endian fields to a growing byte array. Used by
// the encoders of WAL commits and the free set.
import { copyBytes, writeU64 } from './bytes.js';

const INITIAL_CAPACITY = 4096;

export class ByteWriter {
  #bytes: Uint8Array;
  #data: DataView;
  #length = 0;

  constructor(initialCapacity = INITIAL_CAPACITY) {
    this.#bytes = new Uint8Array(Math.max(16, initialCapacity));
    this.#data = new DataView(this.#bytes.buffer);
  }

  get length(): number {
    return this.#length;
  }

  /** The bytes written so far (a view: valid until the next write). */
  bytes(): Uint8Array {
    return this.#bytes.subarray(0, this.#length);
  }

  reset(): void {
    this.#length = 0;
  }

  u8(value: number): void {
    this.#reserve(1);
    this.#data.setUint8(this.#length, value);
    this.#length += 1;
  }

  u16(value: number): void {
    this.#reserve(2);
    this.#data.setUint16(this.#length, value, true);
    this.#length += 2;
  }

  u32(value: number): void {
    this.#reserve(4);
    this.#data.setUint32(this.#length, value >>> 0, true);
    this.#length += 4;
  }

  u64(value: number): void {
    this.#reserve(8);
    writeU64(this.#data, this.#length, value);
    this.#length += 8;
  }

  raw(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#length = copyBytes(this.#bytes, this.#length, bytes);
  }

  /**
   * Appends `length` bytes for the caller to fill in place (a record laid
   * out by writePutAt): the array, a view over it and where they start.
   * Valid until the next write.
   */
  claim(length: number): { bytes: Uint8Array; data: DataView; offset: number } {
    this.#reserve(length);
    const offset = this.#length;
    this.#length += length;
    return { bytes: this.#bytes, data: this.#data, offset };
  }

  /** Overwrites a u32 written earlier (for counts known only at the end). */
  patchU32(offset: number, value: number): void {
    this.#data.setUint32(offset, value >>> 0, true);
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#bytes.length) return;
    let capacity = this.#bytes.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
    this.#data = new DataView(grown.buffer);
  }
}
