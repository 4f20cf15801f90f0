// Argument checks at the store's boundary: options, range bounds, and how an
// argument is described in the TypeError or RangeError that refuses it.
// API misuse is refused here, before anything reaches the kernel.
import { toKeyString, type Key } from './key_codec.js';
import { DEFAULT_BLOCK_SIZE } from './store_layout.js';
import { invalidArgument } from './store_error.js';

/**
 * An options or operation object whose getter or Proxy trap threw while its
 * fields were read: the caller's argument is unreadable, ERR_INVALID_ARG with
 * that error as cause.
 */
export function unreadableArgument(what: string, error: unknown): TypeError | RangeError {
  return Object.assign(invalidArgument(`${what} could not be read: ${error instanceof Error ? error.message : describeArgument(error)}`), { cause: error });
}

/** A range bound, validated like a key; undefined if absent. */
export function rangeBound(bound: unknown, name: string): string | undefined {
  if (bound === undefined) return undefined;
  try {
    return toKeyString(bound);
  } catch (error) {
    if (error instanceof Error) error.message = `range option '${name}': ${error.message}`;
    throw error;
  }
}

/** A key for messages, short. */
export function describeKey(key: Key): string {
  return typeof key === 'string' ? JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key) : `0x${Buffer.from(key.subarray(0, 32)).toString('hex')}${key.length > 32 ? '…' : ''}`;
}

/** An argument for messages: never throws, whatever it is. */
export function describeArgument(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === undefined) return String(value);
  if (value === null) return 'null';
  return `a ${typeof value}`;
}

export function checkBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidArgument(`option '${name}' must be a boolean`);
  return value;
}

export function checkBlockSize(value: unknown): number {
  const blockSize = checkSize(value, 'blockSize', DEFAULT_BLOCK_SIZE, 512);
  if ((blockSize & (blockSize - 1)) !== 0 || blockSize > 65536) throw invalidArgument(`blockSize must be a power of two from 512 to 65536, got ${blockSize}`, 'range');
  return blockSize;
}

export function checkSize(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw invalidArgument(`option '${name}' must be a number`);
  if (!Number.isSafeInteger(value) || value < min) throw invalidArgument(`option '${name}' must be an integer >= ${min}, got ${value}`, 'range');
  return value;
}
