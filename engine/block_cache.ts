// BlockCache: an LRU (lru-cache, sized in bytes) of data blocks, keyed by
// absolute block index. Writes of extent values put their blocks here when
// their commit applies (durable, unless sync: false); reads of cached blocks do no IO. Evicted buffers go back to the
// pool for reuse.
import { LRUCache } from 'lru-cache';

import type { BufferPool } from './buffer_pool.js';

export class BlockCache {
  readonly #lru: LRUCache<number, Buffer> | undefined;
  readonly #pool: BufferPool;
  hits = 0;
  misses = 0;

  constructor(pool: BufferPool, sizeBytes: number) {
    this.#pool = pool;
    const blockSize = pool.blockSize;
    this.#lru =
      sizeBytes >= blockSize
        ? new LRUCache<number, Buffer>({
            maxSize: sizeBytes,
            sizeCalculation: () => blockSize,
            dispose: (buffer) => pool.give(buffer),
          })
        : undefined;
  }

  get sizeBytes(): number {
    return this.#lru?.calculatedSize ?? 0;
  }

  /** The cached block, or undefined. Counts a hit or a miss. */
  get(blockIndex: number): Buffer | undefined {
    const buffer = this.#lru?.get(blockIndex);
    if (buffer === undefined) this.misses++;
    else this.hits++;
    return buffer;
  }

  /** Takes ownership of `buffer` (a pool buffer) as the content of `blockIndex`. */
  put(blockIndex: number, buffer: Buffer): void {
    if (this.#lru === undefined) {
      this.#pool.give(buffer);
      return;
    }
    this.#lru.set(blockIndex, buffer);
  }

  /** Forgets blocks (freed extents): their content is no longer any value's. */
  forget(startBlock: number, blockCount: number): void {
    if (this.#lru === undefined) return;
    for (let block = startBlock; block < startBlock + blockCount; block++) this.#lru.delete(block);
  }
}
