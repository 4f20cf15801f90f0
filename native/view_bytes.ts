// A view's memory as the engine sees it: its ArrayBuffer, offset and length
// read through the built-in getters of %TypedArray% and DataView, never
// through the caller's object, whose own properties, getters or prototype
// may say anything (reviews found an own byteLength letting a 200-byte view
// pass as a block, an own buffer of null throwing uncoded, and a DataView
// dressed as a Uint8Array). RingFile checks and submits through these; the
// store's keys and values (engine/key_codec.ts) are read through them too.

/** The intrinsic byteLength getters: what a view is, whatever its own properties say. */
const typedArrayByteLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'byteLength')!.get!;
const dataViewByteLength = Object.getOwnPropertyDescriptor(DataView.prototype, 'byteLength')!.get!;

/**
 * `view`'s length, read through %TypedArray%'s or DataView's own getter,
 * never through the object: an own `byteLength` property may answer
 * differently each time, or throw (found by a review). REQUIRES:
 * ArrayBuffer.isView(view). Throws a TypeError for a DataView over a
 * resizable ArrayBuffer shrunk below it.
 */
export function byteLengthOf(view: ArrayBufferView): number {
  // Told apart by the getters' own brand checks, not by a prototype chain
  // the caller can change: %TypedArray%'s throws for anything else.
  try {
    return typedArrayByteLength.call(view) as number;
  } catch {
    return dataViewByteLength.call(view) as number;
  }
}

/** The intrinsic buffer and byteOffset getters, for the same reason (an own `buffer` of null threw a TypeError with no code: a review). */
const typedArrayBuffer = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'buffer')!.get!;
const dataViewBuffer = Object.getOwnPropertyDescriptor(DataView.prototype, 'buffer')!.get!;
const typedArrayByteOffset = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'byteOffset')!.get!;
const dataViewByteOffset = Object.getOwnPropertyDescriptor(DataView.prototype, 'byteOffset')!.get!;
const arrayBufferByteLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')!.get!;
/** ArrayBuffer#detached, where the runtime has it (not Node 20). */
const arrayBufferDetached = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'detached')?.get;

/** `view`'s ArrayBuffer (or SharedArrayBuffer), through the intrinsic getter. REQUIRES: ArrayBuffer.isView(view). */
export function bufferOf(view: ArrayBufferView): ArrayBufferLike {
  try {
    return typedArrayBuffer.call(view) as ArrayBufferLike;
  } catch {
    return dataViewBuffer.call(view) as ArrayBufferLike;
  }
}

/** `view`'s byteOffset, through the intrinsic getter. REQUIRES: ArrayBuffer.isView(view). */
export function byteOffsetOf(view: ArrayBufferView): number {
  try {
    return typedArrayByteOffset.call(view) as number;
  } catch {
    return dataViewByteOffset.call(view) as number;
  }
}

/**
 * A Uint8Array of the same bytes, made from the intrinsic getters: never
 * `view` itself, which `instanceof Uint8Array` would pass for a DataView
 * given Uint8Array's prototype (an observer then failed on it: a review).
 */
export function toBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(bufferOf(view), byteOffsetOf(view), byteLengthOf(view));
}

/**
 * Zeroes bytes [from, to) of `view`, as far as it still holds them: none
 * once detached or shrunk away, and never past `to` if it grew (a
 * length-tracking view of a resizable ArrayBuffer grown during a read had
 * the caller's bytes past the block zeroed: a review).
 */
export function zeroBetween(view: ArrayBufferView, from: number, to: number): void {
  let byteLength: number;
  try {
    byteLength = byteLengthOf(view);
  } catch {
    return;
  }
  const end = Math.min(byteLength, to);
  if (end <= from) return;
  new Uint8Array(bufferOf(view), byteOffsetOf(view) + from, end - from).fill(0);
}

export function isDetached(view: ArrayBufferView): boolean {
  // A detached ArrayBuffer reports byteLength 0 on itself and on every view,
  // like a genuinely empty one. Node 20 has no ArrayBuffer#detached, but
  // cloning a detached buffer throws; this runs only for empty views.
  const buffer = bufferOf(view);
  let byteLength: number;
  try {
    byteLength = arrayBufferByteLength.call(buffer) as number;
  } catch {
    // A SharedArrayBuffer: it cannot be detached.
    return false;
  }
  if (byteLength !== 0) return false;
  if (arrayBufferDetached !== undefined) return arrayBufferDetached.call(buffer) as boolean;
  try {
    structuredClone(buffer);
    return false;
  } catch {
    return true;
  }
}
