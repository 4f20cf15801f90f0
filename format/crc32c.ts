// CRC32C (Castagnoli): the checksum of every on-disk structure.
//
// Conventions (docs/format.md): reflected polynomial 0x82F63B78, register
// initialised to 0xFFFFFFFF and inverted at the end; crc32c("123456789") is
// 0xE3069283. `crc32c` runs in the addon (SSE4.2 / ARMv8 CRC instructions in
// three interleaved chains: 0.23 µs a 4 KiB page, ~35 GB/s on 1 MiB here,
// with the call); `crc32cPortable` is the same function in TypeScript, kept equal by
// a test, for readers that must not depend on the addon's arithmetic.
import { addon } from '../native/addon.js';

export const CRC32C_CHECK_VALUE = 0xe3069283;

/** CRC32C of `bytes`, continuing `seed` (0 for a fresh checksum). */
export function crc32c(bytes: Uint8Array, seed = 0): number {
  return addon.crc32c(bytes, seed);
}

const TABLE = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    table[i] = crc >>> 0;
  }
  return table;
}

/** The same CRC32C, bytewise in TypeScript. */
export function crc32cPortable(bytes: Uint8Array, seed = 0): number {
  let crc = ~seed >>> 0;
  for (let i = 0; i < bytes.length; i++) crc = TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}
