// RandomOffsets: block-aligned random file offsets from xorshift32, cheap
// enough for the hot loop (a few integer operations, no allocation) and
// reproducible from its seed.
import assert from 'node:assert/strict';

/** Largest block count a 32-bit generator can address without skipping blocks. */
export const BLOCK_COUNT_MAX = 2 ** 32;

export class RandomOffsets {
  #state: number;
  readonly #blockCount: number;
  readonly #blockSize: number;

  /**
   * Offsets of whole `blockSize` blocks in a region of `regionSizeBytes`.
   * REQUIRES: `seed` is a non-zero 32-bit integer (xorshift's state must
   * never be zero), and the region holds at least one block.
   */
  constructor(seed: number, regionSizeBytes: number, blockSize: number) {
    assert.ok(Number.isInteger(seed) && (seed >>> 0) !== 0, 'xorshift32 needs a non-zero seed');
    assert.ok(Number.isInteger(blockSize) && blockSize > 0);
    this.#blockCount = Math.floor(regionSizeBytes / blockSize);
    assert.ok(this.#blockCount >= 1 && this.#blockCount <= BLOCK_COUNT_MAX);
    this.#state = seed >>> 0;
    this.#blockSize = blockSize;
  }

  /** The next offset: a multiple of blockSize, below regionSizeBytes. */
  next(): number {
    // Marsaglia's xorshift32 (13, 17, 5): period 2^32 - 1.
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    // The modulo bias is below blockCount / 2^32: nothing for a 1 GiB file.
    return (this.#state % this.#blockCount) * this.#blockSize;
  }
}
