// The CLI's commands on a store's contents, through the public BlockStore
// API: get, put, del, scan, stats. Each opens the store (taking its lock, so
// a store another process has open is ERR_STORE_LOCKED) and closes it.
//
// Values print as JSON. What JSON has no form for prints as an object of one
// key naming it: a Uint8Array as {"base64": "..."} (with --raw, get writes
// the bytes themselves), a Map as {"map": [...]}, a Set as {"set": [...]}
// (toJson below); a bigint as its decimal string; undefined inside objects
// is left out, as JSON.stringify does.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { BlockStore } from '../../engine/block_store.js';
import { type RangeOptions, VALUE_SIZE_MAX } from '../../engine/store_options.js';
import type { ValueEncoding } from '../../engine/value_codec.js';
import { commandError, usageCode } from './command_line.js';
import { writeStdout } from './stdout_pipe.js';

/** Exit status of a command that ran, but found nothing (get of a missing key). */
export const EXIT_NOT_FOUND = 1;
/** Exit status of a usage error (wrong arguments). */
export const EXIT_USAGE = 2;

export const STORE_COMMANDS_USAGE = `  ringstore get PATH KEY [--raw]
                           print KEY's value as JSON (--raw: its bytes); exit 1 if missing
  ringstore put PATH KEY VALUE [--json] | ringstore put PATH KEY --file F
                           store VALUE as a string (--json: parsed as JSON), or F's bytes
  ringstore del PATH KEY   delete KEY; prints "deleted" or "absent"
  ringstore scan PATH [--gte K] [--gt K] [--lte K] [--lt K] [--limit N] [--reverse]
                      [--keys-only] [--json]
                           keys in order (with values); --json: one {"key","value"} per line
  ringstore stats PATH [--json]
                           key count, space, WAL and cache figures
  Each takes --encoding E: the encoding the store records (the default), or binary for
  the stored bytes as they are; another is refused. get, scan and stats open the store read-only.`;

/** Bytes put --file reads at a time. */
const VALUE_FILE_PIECE_BYTES = 1 << 20;

/**
 * The bytes of put's --file: at most VALUE_SIZE_MAX, the largest value a
 * put stores. A longer file is refused by its size before it is read, and
 * anything else that goes on past it (/dev/zero, a pipe) once that much has
 * been read: reading it whole first took a review's `--file /dev/zero` to
 * 6.5 GB of memory and a crash.
 */
function readValueFile(path: string): Buffer {
  const tooLarge = (): Error => commandError('ERR_VALUE_TOO_LARGE', `--file '${path}' holds more than ${VALUE_SIZE_MAX} bytes, the largest value put stores`);
  const fd = openSync(path, 'r');
  try {
    const stats = fstatSync(fd);
    if (stats.isFile() && stats.size > VALUE_SIZE_MAX) throw tooLarge();
    const pieces: Buffer[] = [];
    let total = 0;
    for (;;) {
      const piece = Buffer.allocUnsafe(Math.min(VALUE_FILE_PIECE_BYTES, VALUE_SIZE_MAX + 1 - total));
      const read = readSync(fd, piece, 0, piece.length, null);
      if (read === 0) break;
      pieces.push(piece.subarray(0, read));
      total += read;
      if (total > VALUE_SIZE_MAX) throw tooLarge();
    }
    return Buffer.concat(pieces, total);
  } finally {
    closeSync(fd);
  }
}

const ENCODING_OPTION = { encoding: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const satisfies ParseArgsConfig['options'];

interface StoreCommand {
  usage: string;
  options: ParseArgsConfig['options'];
  /** Positional arguments after PATH: their names, the last optional if it ends with '?'. */
  positionals: string[];
  /** Opens the store with readOnly: it changes nothing (no checkpoint or clean flag at close) and runs beside other readers. */
  readOnly: boolean;
  run(store: BlockStore, positionals: string[], values: Record<string, string | boolean | undefined>): Promise<number>;
}

const COMMANDS: Record<string, StoreCommand> = {
  get: {
    readOnly: true,
    usage: 'ringstore get PATH KEY [--raw] [--encoding E]',
    options: { ...ENCODING_OPTION, raw: { type: 'boolean' } },
    positionals: ['KEY'],
    async run(store, [key], values) {
      if (!(await store.has(key))) {
        process.stderr.write(`ringstore: no key ${JSON.stringify(key)}\n`);
        return EXIT_NOT_FOUND;
      }
      const value = await store.get(key);
      if (values.raw === true) {
        if (!(value instanceof Uint8Array) && typeof value !== 'string') throw usageError('--raw needs a value stored as bytes or a string');
        await writeStdout(value);
      } else {
        await writeStdout(`${toJson(value)}\n`);
      }
      return 0;
    },
  },
  put: {
    readOnly: false,
    usage: 'ringstore put PATH KEY VALUE [--json] [--encoding E] | ringstore put PATH KEY --file F',
    options: { ...ENCODING_OPTION, json: { type: 'boolean' }, file: { type: 'string' } },
    positionals: ['KEY', 'VALUE?'],
    async run(store, [key, text], values) {
      let value: unknown;
      if (typeof values.file === 'string') {
        if (text !== undefined) throw usageError('give VALUE or --file, not both');
        value = readValueFile(values.file);
      } else {
        if (text === undefined) throw usageError('put needs VALUE (or --file F)');
        value = values.json === true ? parseJson(text) : text;
      }
      await store.put(key, value);
      return 0;
    },
  },
  del: {
    readOnly: false,
    usage: 'ringstore del PATH KEY [--encoding E]',
    options: ENCODING_OPTION,
    positionals: ['KEY'],
    async run(store, [key]) {
      await writeStdout((await store.delete(key)) ? 'deleted\n' : 'absent\n');
      return 0;
    },
  },
  scan: {
    readOnly: true,
    usage: 'ringstore scan PATH [--gte K] [--gt K] [--lte K] [--lt K] [--limit N] [--reverse] [--keys-only] [--json] [--encoding E]',
    options: {
      ...ENCODING_OPTION,
      gte: { type: 'string' },
      gt: { type: 'string' },
      lte: { type: 'string' },
      lt: { type: 'string' },
      limit: { type: 'string' },
      reverse: { type: 'boolean' },
      'keys-only': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    positionals: [],
    async run(store, _positionals, values) {
      const range: RangeOptions = { reverse: values.reverse === true, values: values['keys-only'] !== true };
      for (const bound of ['gte', 'gt', 'lte', 'lt'] as const) {
        if (typeof values[bound] === 'string') range[bound] = values[bound] as string;
      }
      if (values.limit !== undefined) {
        // Digits only: Number('') is 0 (an unset shell variable printed
        // nothing and exited 0; found by a review), and '0x1' or '1e0' are
        // not what the size flags take either.
        if (!/^[0-9]+$/.test(values.limit as string)) throw usageError(`--limit needs a whole number of keys, got ${JSON.stringify(values.limit)}`);
        range.limit = Number(values.limit);
      }
      for await (const [key, value] of store.range(range)) {
        if (values.json === true) {
          const line = values['keys-only'] === true ? { key: key } : { key: key, value };
          await writeStdout(`${toJson(line)}\n`);
        } else {
          await writeStdout(values['keys-only'] === true ? `${toJson(key)}\n` : `${toJson(key)}\t${toJson(value)}\n`);
        }
      }
      return 0;
    },
  },
  stats: {
    readOnly: true,
    usage: 'ringstore stats PATH [--json] [--encoding E]',
    options: { ...ENCODING_OPTION, json: { type: 'boolean' } },
    positionals: [],
    async run(store, _positionals, values) {
      const stats = store.stats();
      if (values.json === true) await writeStdout(`${JSON.stringify(stats)}\n`);
      else for (const [name, value] of Object.entries(stats)) await writeStdout(`${name}: ${value}\n`);
      return 0;
    },
  },
};

export function isStoreCommand(name: string): boolean {
  return Object.hasOwn(COMMANDS, name);
}

/** Runs `ringstore NAME ARGS…`; resolves to the exit status. */
export async function storeCommand(name: string, args: string[]): Promise<number> {
  const command = COMMANDS[name];
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options: command.options, allowPositionals: true, strict: true });
  } catch (error) {
    process.stderr.write(`ringstore: ${usageCode(error)}: ${(error as Error).message}\nusage: ${command.usage}\n`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(`usage: ${command.usage}\n`);
    return 0;
  }
  const required = command.positionals.filter((name) => !name.endsWith('?')).length;
  if (positionals.length < 1 + required || positionals.length > 1 + command.positionals.length) {
    process.stderr.write(`usage: ${command.usage}\n`);
    return EXIT_USAGE;
  }
  // Without --encoding, the store's recorded one.
  const encoding = values.encoding as ValueEncoding | undefined;
  const store = await BlockStore.open(positionals[0], { encoding, readOnly: command.readOnly });
  try {
    // A command sees the store whole: a WAL tail recovered after a crash
    // applied (stats count its keys), and damage its replay finds reported.
    await store.whenRecovered();
    return await command.run(store, positionals.slice(1), values as Record<string, string | boolean | undefined>);
  } finally {
    await store.close();
  }
}

function usageError(message: string): Error {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG' });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw Object.assign(new TypeError(`VALUE is not JSON: ${(error as Error).message}`), { code: 'ERR_INVALID_ARG' });
  }
}

/**
 * JSON of a stored value. What JSON has no form for is printed as an object
 * of one key naming it — bytes as {"base64": …}, a Map as {"map": [[key,
 * value], …]}, a Set as {"set": […]}, another typed array as
 * {"Float64Array": […]} (its constructor's name), a RegExp as {"regexp":
 * "/…/flags"}, an Error as {"error": {"name", "message"}}, NaN and ±Infinity
 * as {"number": "NaN"}, undefined in an array as {"undefined": true}, an
 * invalid Date as {"date": "Invalid Date"} — and a bigint as its decimal
 * string, a Date as its ISO string. Before, a Map, a
 * Set, a RegExp or a Float64Array printed as {} or as index keys, NaN as
 * null: data shown as absent (found by a review). Undefined object
 * properties are left out, as JSON.stringify does.
 */
export function toJson(value: unknown): string {
  return (
    JSON.stringify(value, function (this: unknown, name: string, item: unknown) {
      // JSON.stringify hands some values to the replacer already converted
      // (a Buffer into {type: 'Buffer', data}, a Date into a string): look at
      // the holder's own property instead (the root's holder is {"": value},
      // so this holds for it too; a test of name === '' took any property
      // named "" for the root: found by a review).
      const original = (this as Record<string, unknown>)[name];
      if (original instanceof Uint8Array) return { base64: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64') };
      if (ArrayBuffer.isView(original) && !(original instanceof DataView)) {
        return { [original.constructor.name]: Array.from(original as unknown as ArrayLike<number | bigint>, (element) => (typeof element === 'bigint' ? element.toString() : element)) };
      }
      if (typeof original === 'bigint') return original.toString();
      if (typeof original === 'number' && !Number.isFinite(original)) return { number: String(original) };
      if (original === undefined && Array.isArray(this)) return { undefined: true };
      if (original instanceof Map) return { map: [...original] };
      if (original instanceof Set) return { set: [...original] };
      if (original instanceof RegExp) return { regexp: String(original) };
      if (original instanceof Error) return { error: { name: original.name, message: original.message } };
      if (original instanceof Date && Number.isNaN(original.getTime())) return { date: 'Invalid Date' };
      return item;
    }) ?? 'null'
  );
}
