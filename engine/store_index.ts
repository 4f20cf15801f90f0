// The in-memory index: key string -> entry, ordered (sorted-btree), so range
// scans are ordered and an iterator can run over an O(1) copy-on-write clone
// while writes go on.
import type { ExtentValue } from '../format/records.js';
import { BTree } from './btree.js';

export interface IndexEntry {
  /** The key was given as a string (iteration returns it as one). */
  readonly isString: boolean;
  /** Inline value bytes, or where an extent value lives. */
  readonly value: Uint8Array | ExtentValue;
}

export type StoreIndex = BTree<string, IndexEntry>;

export function newIndex(): StoreIndex {
  return new BTree<string, IndexEntry>(undefined, compareKeyStrings);
}

/** Bytewise order: key strings hold one byte per char (engine/key_codec.ts). */
export function compareKeyStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isExtentValue(value: Uint8Array | ExtentValue): value is ExtentValue {
  return !(value instanceof Uint8Array);
}
