// What the index holds for a key: its entry — the value's bytes when inline,
// where its extents are otherwise — and whether the key was a string. The
// index itself is the page tree (page_tree.ts); this is the unit its leaves
// hold and every part of the engine passes around.
import type { ExtentValue } from '../format/records.js';

export interface IndexEntry {
  /** The key was given as a string (iteration returns it as one). */
  readonly isString: boolean;
  /** Inline value bytes, or where an extent value lives. */
  readonly value: Uint8Array | ExtentValue;
}

/** Bytewise order: key strings hold one byte per char (engine/key_codec.ts). */
export function compareKeyStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * `entry` with an inline value copied into an ArrayBuffer of its own (an
 * extent value's entry as it is): for what keeps an entry past the memory
 * it was handed in (a page, a read's buffer, a write's slab). Uint8Array's
 * slice, which copies, also for a Buffer (whose own slice is a view).
 */
export function ownedEntry(entry: IndexEntry): IndexEntry {
  const value = entry.value;
  return isExtentValue(value) ? entry : { isString: entry.isString, value: Uint8Array.prototype.slice.call(value) };
}

export function isExtentValue(value: Uint8Array | ExtentValue): value is ExtentValue {
  return !(value instanceof Uint8Array);
}
