// A key string's bytes without an allocation: the engine holds keys as key
// strings (one latin1 char per byte, engine/key_codec.ts), and the record
// writers (format/records.ts, through a commit or a leaf page) want bytes.
// A Buffer per key was 2 % of a sorted load, and garbage.
import { KEY_SIZE_MAX } from './constants.js';

/** The one scratch, and a view of each length into it, made once. */
const keyScratch = new Uint8Array(KEY_SIZE_MAX);
const keyScratchViews: Uint8Array[] = [];

/**
 * The bytes of `keyString` (one char a byte) in a scratch that every call
 * reuses: valid until the next call, for a record writer that copies them
 * at once. JavaScript runs one call at a time, so no other caller can come
 * between this call and that copy; nothing may keep the view.
 * An Error (a bug) for a key string longer than a key may be.
 */
export function keyStringBytesNow(keyString: string): Uint8Array {
  const length = keyString.length;
  if (length > KEY_SIZE_MAX) throw new Error(`ringstore: a key string of ${length} chars (at most ${KEY_SIZE_MAX})`);
  for (let i = 0; i < length; i++) keyScratch[i] = keyString.charCodeAt(i);
  return (keyScratchViews[length] ??= keyScratch.subarray(0, length));
}

/**
 * keyStringBytesNow of a string that may not be a key string: undefined,
 * with the scratch's contents unspecified, unless it has 1 to KEY_SIZE_MAX
 * chars, each a byte. One pass that checks and copies, for a writer that
 * must refuse a bad key before it writes (writeLeafRecordAt): checking
 * first and copying after read the key twice, ~3 % of a sorted load
 * (docs/benchmarks.md, "Session 35").
 */
export function checkedKeyStringBytesNow(keyString: string): Uint8Array | undefined {
  const length = keyString.length;
  if (length < 1 || length > KEY_SIZE_MAX) return undefined;
  for (let i = 0; i < length; i++) {
    const code = keyString.charCodeAt(i);
    if (code > 0xff) return undefined;
    keyScratch[i] = code;
  }
  return (keyScratchViews[length] ??= keyScratch.subarray(0, length));
}
