// ValueCopySlab: the memory of a write's copies of its inline values, carved
// from shared slabs instead of allocated one write at a time.
//
// Why: a Uint8Array longer than 64 bytes keeps its bytes outside V8's heap,
// and each such allocation is a malloc of its own that the GC later frees
// from a helper thread (and counts towards external memory, which brings
// full collections forward). encodeWrite made one for every write: 64
// closed-loop writers of 100-byte values ran 1.085 × faster with the copy
// carved from a slab instead (median of 6 alternating pairs of processes,
// every pair faster; 1.135 × over 16 in-process pairs of a scratch build,
// whose JS thread spent 10.1 against 11.7 µs a put: docs/benchmarks.md,
// session 52).
//
// Lifetime: nothing here reuses memory. A slab is freed by the GC once no
// copy carved from it is referenced, as Node's own Buffer pool is. A copy
// lives until its commit is applied — the WAL frame and the tree's pages
// copy its bytes — except where the tree keeps the entry itself (a leaf in
// array form), which keeps a copy of its own instead (PageTree.set): a
// long-lived leaf holding one small copy would keep its whole slab alive,
// memory the page cache's budget does not see.

/** Bytes of one slab: a few dozen to a hundred small values' copies each. */
export const VALUE_COPY_SLAB_BYTES = 16 * 1024;

/**
 * The largest copy carved from a slab; a larger one gets memory of its own
 * (its allocation is rarer per byte, and carving it would leave most of a
 * slab's tail unused).
 */
export const SLAB_COPY_BYTES_MAX = VALUE_COPY_SLAB_BYTES / 4;

export class ValueCopySlab {
  #slab = new Uint8Array(0);
  #usedBytes = 0;

  /**
   * `sizeBytes` of zeroed memory no other copy shares: a view of the
   * current slab (a new one when it has no room left), or memory of its own
   * above SLAB_COPY_BYTES_MAX.
   */
  take(sizeBytes: number): Uint8Array {
    if (!(Number.isInteger(sizeBytes) && sizeBytes >= 0)) throw new RangeError(`ringstore: a value copy of ${sizeBytes} bytes`);
    if (sizeBytes > SLAB_COPY_BYTES_MAX) return new Uint8Array(sizeBytes);
    if (this.#usedBytes + sizeBytes > this.#slab.length) {
      this.#slab = new Uint8Array(VALUE_COPY_SLAB_BYTES);
      this.#usedBytes = 0;
    }
    const start = this.#usedBytes;
    this.#usedBytes = start + sizeBytes;
    return this.#slab.subarray(start, this.#usedBytes);
  }
}
