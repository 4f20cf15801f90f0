// Helpers of the CrashImage tests: comparing images with a useful message,
// and the fates a pending write may have.
import assert from 'node:assert/strict';

import fc from 'fast-check';

import { sectorCount, SectorFate, type PendingPart } from '../../tools/lab/crash_states.js';
import type { TraceOperation } from '../../tools/lab/write_trace.js';

/** Undefined when equal, else where and how the two images first differ. */
export function firstDifference(expected: Uint8Array, actual: Uint8Array): string | undefined {
  if (expected.length !== actual.length) return `length ${actual.length}, expected ${expected.length}`;
  if (Buffer.compare(expected, actual) === 0) return undefined;
  let offset = 0;
  while (expected[offset] === actual[offset]) offset++;
  let end = offset;
  while (end < expected.length && expected[end] !== actual[end]) end++;
  return `bytes ${offset}..${end} differ (sector ${Math.floor(offset / 512)}): expected ${expected[offset]}, found ${actual[offset]}`;
}

export function assertSameImage(expected: Uint8Array, actual: Uint8Array, what: string): void {
  const difference = firstDifference(expected, actual);
  assert.equal(difference, undefined, `${what}: ${difference}`);
}

/** What a pending operation may leave on the media; garbage sectors only for writes (a trim reads as zeros or as before). */
export function partArb(operation: TraceOperation): fc.Arbitrary<PendingPart> {
  const fates = operation.kind === 'trim' ? [SectorFate.Old, SectorFate.New] : [SectorFate.Old, SectorFate.New, SectorFate.Garbage];
  const sectors = sectorCount(operation);
  return fc.oneof(
    fc.constant<PendingPart>('all'),
    fc.constant<PendingPart>('none'),
    fc.array(fc.constantFrom(...fates), { minLength: sectors, maxLength: sectors }),
  );
}
