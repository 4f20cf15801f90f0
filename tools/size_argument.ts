// A size on the command line: a number of bytes, or one with a binary unit
// ('512M', '1G', '1GiB', '64k'), as fio and dd read them. One reader for
// every command that takes a size, so `--size 1G` means the same in each.
import { usageError } from './cli/command_line.js';

/** Multipliers of the unit letters (binary: k is 1024). */
const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * Bytes of `text`: '1073741824', '1G', '1GiB', '512m', '512MB' (binary
 * units throughout). Undefined if `text` is not a size of at least one byte
 * that is a safe integer; the caller words the refusal for its flag.
 */
export function parseSizeBytes(text: string): number | undefined {
  const match = /^(\d+)\s*([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (match === null) return undefined;
  const sizeBytes = Number(match[1]) * SIZE_UNITS[match[2].toLowerCase()]!;
  return Number.isSafeInteger(sizeBytes) && sizeBytes > 0 ? sizeBytes : undefined;
}

/** A size flag's value (undefined when absent); ERR_INVALID_ARG naming `flag` if it is not a size. */
export function sizeFlag(text: string | boolean | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const sizeBytes = typeof text === 'string' ? parseSizeBytes(text) : undefined;
  if (sizeBytes === undefined) throw usageError(`${flag} needs a size: bytes, or with a unit (64M, 1G), got ${JSON.stringify(text)}`);
  return sizeBytes;
}
