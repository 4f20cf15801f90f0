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

export function isExtentValue(value: Uint8Array | ExtentValue): value is ExtentValue {
  return !(value instanceof Uint8Array);
}
