// PageInlineEntry: the entry of an inline value in a leaf read from disk,
// whose value view is made when something first reads it.
//
// A leaf read for a write is copied and written again, and most of its
// entries are never looked at in between: a checkpoint copies their
// records from the page they were read from (TreePages.encodeLeaf), by
// the identity of these objects. A Uint8Array view costs 96 bytes of heap
// (an entry object 40): made for every entry of every leaf a replay read,
// the views were 40 % of the heap the replay of 33 000 random overwrites
// at 1 M keys left (51 of 128 MiB), and the GC copied each of them twice.
import type { IndexEntry } from './store_index.js';

export class PageInlineEntry implements IndexEntry {
  readonly isString: boolean;
  /** The leaf's bytes (LeafPage.bytes: reused only for a lent leaf, after its run), and where in them the value is. */
  readonly #page: Uint8Array;
  readonly #start: number;
  readonly #length: number;
  #value: Uint8Array | undefined;

  constructor(page: Uint8Array, start: number, length: number, isString: boolean) {
    this.isString = isString;
    this.#page = page;
    this.#start = start;
    this.#length = length;
    this.#value = undefined;
  }

  /** A view of the value's bytes in the page: the same view every time. */
  get value(): Uint8Array {
    return (this.#value ??= new Uint8Array(this.#page.buffer, this.#page.byteOffset + this.#start, this.#length));
  }
}
