// Shared helpers for the format tests: a fixed property-test seed, a
// deterministic byte pattern, bit flips, re-sealing a tampered structure so
// only the check under test can catch it, and the one assertion every
// decoder test makes: bad input is refused with a FormatError, never with
// another exception. Not a test file itself (mocha runs only *.test.js).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { crc32c } from '../../format/crc32c.js';
import { FormatError, type StructureName } from '../../format/format_error.js';

/**
 * Seed of every fast-check property in test/format. Fixed so a run is
 * reproducible; fast-check prints it (with the failing path) on failure, and
 * FORMAT_TEST_SEED overrides it to explore other inputs.
 */
export const PROPERTY_SEED: number = process.env.FORMAT_TEST_SEED === undefined ? 0x52494e47 : Number(process.env.FORMAT_TEST_SEED);

/** Bytes of a pseudo-random pattern determined by `seed` (xorshift32). */
export function patternBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = (Math.imul(seed + 1, 2654435761) >>> 0) || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/** A copy of `bytes` with bit `bit` (0 = least significant bit of byte 0) inverted. */
export function withBitFlipped(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >>> 3] ^= 1 << (bit & 7);
  return copy;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Superblock: crc32c of bytes [0, 508) stored little-endian at 508. */
export function resealSuperblock(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(508, crc32c(bytes.subarray(0, 508)), true);
  return bytes;
}

/** Frame block: crc32c of bytes [8, blockSize) stored little-endian at 4. */
export function resealFrameBlock(block: Uint8Array): Uint8Array {
  new DataView(block.buffer, block.byteOffset, block.byteLength).setUint32(4, crc32c(block.subarray(8)), true);
  return block;
}

export interface ExpectedFormatError {
  structure: StructureName;
  /** The block the error must name; `null` for "names none". Unchecked when absent. */
  blockIndex?: number | null;
  /** A pattern the reason must match. */
  reason?: RegExp;
}

/**
 * Runs `decode`, which must throw a FormatError matching `expected` — any
 * other exception type, or a return, fails the test with what happened.
 */
export function throwsFormatError(decode: () => unknown, expected: ExpectedFormatError, what = 'the input'): FormatError {
  let outcome: unknown;
  try {
    outcome = decode();
  } catch (error) {
    if (!(error instanceof FormatError)) {
      const shown = error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
      assert.fail(`${what}: expected a FormatError, got ${shown}`);
    }
    assert.equal(error.structure, expected.structure, `${what}: wrong structure in '${error.message}'`);
    if (expected.blockIndex !== undefined) {
      assert.equal(error.blockIndex, expected.blockIndex ?? undefined, `${what}: wrong block in '${error.message}'`);
    }
    if (expected.reason !== undefined) {
      assert.match(error.reason, expected.reason, `${what}: unexpected reason`);
    }
    return error;
  }
  return assert.fail(`${what}: expected a FormatError, but it decoded to ${safeString(outcome)}`);
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, field: unknown) => (field instanceof Uint8Array ? `<${field.length} bytes>` : field));
  } catch {
    return String(value);
  }
}

/**
 * The bytes of the first `hexdump -C` block after the heading `### heading`
 * in docs/format.md: a `*` line repeats the line before it up to the next
 * offset. With `annotated`, lines that are not hexdump lines (the block's
 * annotations) are skipped; otherwise every line must be one.
 */
export function hexdumpInDocs(heading: string, options: { annotated?: boolean } = {}): Uint8Array {
  const text = readFileSync(new URL('../../../docs/format.md', import.meta.url), 'utf8');
  const start = text.indexOf(`### ${heading}`);
  assert.ok(start >= 0, `docs/format.md has a section '${heading}'`);
  const open = text.indexOf('```\n', start) + 4;
  const lines = text.slice(open, text.indexOf('```', open)).trimEnd().split('\n');
  const bytes: number[] = [];
  let previous: number[] = [];
  let repeating = false;
  for (const line of lines) {
    if (line.trim() === '*') {
      repeating = true;
      continue;
    }
    const match = /^([0-9a-f]{8})((?:\s+[0-9a-f]{2})*)/.exec(line);
    if (match === null && options.annotated === true) continue;
    assert.ok(match, `a hexdump line: '${line}'`);
    const offset = parseInt(match[1], 16);
    while (repeating && bytes.length < offset) bytes.push(...previous);
    repeating = false;
    assert.equal(bytes.length, offset, `hexdump offset ${match[1]}`);
    previous = match[2].trim() === '' ? [] : match[2].trim().split(/\s+/).map((byte) => parseInt(byte, 16));
    bytes.push(...previous);
  }
  return Uint8Array.from(bytes);
}
