// `ringstore dump` and `ringstore load`: a store's entries as a dump stream
// (format/dump_stream.ts, docs/format.md § Dump streams) and back — the
// backup, migration and repair path.
//
// dump reads the stored bytes through the engine (BlockStore.storedEntries:
// no decoding, raw values stay raw); dump --salvage reads a damaged image
// through format/ only (tools/salvage.ts). load never writes a store from a
// stream it has not checked to the end: it verifies the whole stream first
// (stdin is spooled to a temporary file while verified), then writes, with
// `encoding: 'binary'` for encoded values (put stores the bytes as given) and
// a write stream for raw ones.
import { createReadStream, lstatSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { BlockStore } from '../../engine/block_store.js';
import { DEFAULT_STORE_SIZE_BYTES, VALUE_SIZE_MAX } from '../../engine/store_options.js';
import type { ValueEncoding } from '../../engine/value_codec.js';
import { VALUE_ENCODING_IDS } from '../../format/constants.js';
import { FormatError } from '../../format/format_error.js';
import { DumpCorruptError, DumpStreamDecoder, DumpStreamEncoder, type DumpEvent, type DumpHeader } from '../../format/dump_stream.js';
import { extentValueIntact, extentValuePieces, NoStoreFound, salvageImage, type SalvageReport } from '../salvage.js';
import { describeUnreadable, openImage } from './image_file.js';
import { startProgress, type Progress } from './progress.js';
import { commandError, statFileArgument, statStorePath, usageCode, usageError } from './command_line.js';
import { Output } from './dump_output.js';
import { NewStoreBuild, SignalCleanup } from './load_target.js';
import { sizeFlag } from '../size_argument.js';

export const DUMP_COMMANDS_USAGE = `  ringstore dump PATH [FILE] [--salvage] [--json]
                           write every key and stored value to FILE (default stdout) as a
                           checksummed dump stream; --salvage: from a damaged store, through
                           the format only, every entry that still verifies (skips on stderr;
                           exit 1 if any); --json: the report as one JSON line on stderr
  ringstore load PATH [FILE] [--create] [--size SIZE] [--block-size SIZE] [--max-size SIZE] [--json]
                           load a dump stream from FILE (default stdin) into the store at PATH;
                           the whole stream is verified before anything is written;
                           --create: make the store (with the dump's value encoding);
                           --max-size: the most the store file may grow to while loading`;

const DUMP_USAGE = 'ringstore dump PATH [FILE] [--salvage] [--json]';
const LOAD_USAGE = 'ringstore load PATH [FILE] [--create] [--size SIZE] [--block-size SIZE] [--max-size SIZE] [--json]';

const DUMP_OPTIONS = { salvage: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const satisfies ParseArgsConfig['options'];
const LOAD_OPTIONS = {
  create: { type: 'boolean' },
  size: { type: 'string' },
  'block-size': { type: 'string' },
  'max-size': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Exit status of a salvage that skipped something (damage found), as fsck's. */
const EXIT_DAMAGE = 1;
const EXIT_USAGE = 2;
/** Bytes read from a dump file at a time. */
const INPUT_PIECE_BYTES = 1 << 20;
/**
 * Puts load keeps in flight: enough for the journal to group them into
 * commits (each resolves once written; the store is opened with sync: false
 * and close makes everything durable), and their values' bytes at most:
 * what load holds beside one value (an encoded value is put whole, up to
 * VALUE_SIZE_MAX; a raw one is streamed).
 */
const LOAD_PUTS_IN_FLIGHT_MAX = 64;
const LOAD_PUT_BYTES_IN_FLIGHT_MAX = 64 << 20;
/** A store load makes is at least this many times the dump's size (values, pages, WAL and free space), and at least the default size. */
const LOAD_STORE_SIZE_FACTOR = 2;

function parse<O extends ParseArgsConfig['options']>(args: string[], options: O, usage: string): { values: Record<string, string | boolean | undefined>; positionals: string[] } | number {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    process.stderr.write(`ringstore: ${usageCode(error)}: ${(error as Error).message}\nusage: ${usage}\n`);
    return EXIT_USAGE;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help === true) {
    process.stdout.write(`usage: ${usage}\n`);
    return 0;
  }
  if (parsed.positionals.length < 1 || parsed.positionals.length > 2) {
    process.stderr.write(`usage: ${usage}\n`);
    return EXIT_USAGE;
  }
  return { values, positionals: parsed.positionals };
}

function encodingOfId(id: number): ValueEncoding {
  const found = (Object.keys(VALUE_ENCODING_IDS) as ValueEncoding[]).find((name) => VALUE_ENCODING_IDS[name] === id);
  if (found === undefined) throw new Error(`ringstore: no value encoding has id ${id}`); // the decoder accepts known ids only
  return found;
}

// ---- Output ----

/** Where dump writes: a file (written whole, fsynced, removed on failure) or stdout. */
// ---- dump ----

export async function dumpCommand(args: string[]): Promise<number> {
  const parsed = parse(args, DUMP_OPTIONS, DUMP_USAGE);
  if (typeof parsed === 'number') return parsed;
  const [path, file] = parsed.positionals;
  const json = parsed.values.json === true;
  if (parsed.values.salvage === true) return salvageCommand(path, file, json);
  // Read-only: a dump changes nothing in the store (no checkpoint or clean
  // flag at close), and may run beside other readers.
  const store = await BlockStore.open(path, { readOnly: true }).catch((error: unknown) => {
    throw withSalvageHint(error);
  });
  // The key count of the progress line includes a recovered WAL tail; damage its replay finds is the dump's error.
  await store.whenRecovered().catch(async (error: unknown) => {
    await store.close().catch(() => undefined);
    throw withSalvageHint(error);
  });
  let output: Output | undefined;
  try {
    output = await Output.open(file, path);
    const stats = store.stats();
    const encoder = new DumpStreamEncoder();
    const progress = startProgress('dump', stats.keys, 'count');
    try {
      // The stored form of the encoding recorded in the store, whatever this handle decodes with.
      await output.write(encoder.header({ valueEncodingId: VALUE_ENCODING_IDS[store.recordedEncoding], blockSize: store.blockSize, salvaged: false }));
      let done = 0;
      for await (const entry of store.storedEntries()) {
        const keyIsString = typeof entry.key === 'string';
        const key = keyIsString ? Buffer.from(entry.key as string, 'utf8') : (entry.key as Uint8Array);
        await output.write(encoder.entry(key, keyIsString, entry.raw, entry.sizeBytes));
        for await (const chunk of entry.chunks()) for (const piece of encoder.value(chunk)) await output.write(piece);
        progress.update(++done);
      }
      await output.write(encoder.end());
      await output.close();
    } finally {
      progress.stop();
    }
    const result = { entries: encoder.entryCount, bytes: output.bytesWritten, encoding: store.recordedEncoding };
    process.stderr.write(json ? `${JSON.stringify(result)}\n` : `dumped ${result.entries} entries (${result.bytes} bytes, encoding ${result.encoding})\n`);
    return 0;
  } catch (error) {
    await output?.abandon();
    throw withSalvageHint(error);
  } finally {
    await store.close();
  }
}

/** A store the engine finds corrupt: say what can still be done. */
function withSalvageHint(error: unknown): unknown {
  if (error instanceof Error && (error as { code?: unknown }).code === 'ERR_STORE_CORRUPT') error.message += ' (ringstore dump --salvage copies out what still verifies)';
  return error;
}

async function salvageCommand(path: string, file: string | undefined, json: boolean): Promise<number> {
  if (statStorePath(path, 'dump') === undefined) throw commandError('ERR_STORE_NOT_FOUND', `'${path}' does not exist`);
  const { image, unreadable, close } = openImage(path);
  let output: Output | undefined;
  try {
    // Drawn only if the scan runs (a tree with damaged pages).
    let scanProgress: Progress | undefined;
    let found;
    try {
      found = salvageImage(image, (done, total) => {
        scanProgress ??= startProgress('salvage: scan', total, 'bytes');
        scanProgress.update(done);
      });
    } catch (error) {
      // Nothing of a store there, as fsck refuses it (it was ERR_STORE_CORRUPT here, ERR_STORE_NOT_FOUND there; found by a review).
      if (error instanceof NoStoreFound && unreadable.length === 0) {
        throw commandError('ERR_STORE_NOT_FOUND', `'${path}' holds ${error.holds} but no ringstore: no superblock copy and no WAL block carries ringstore's magic; nothing to salvage`);
      }
      // No superblock copy verifies: nothing says where anything is. The
      // sectors that could not be read are named (their zeros may be where
      // the store's head was).
      if (error instanceof FormatError || error instanceof NoStoreFound) {
        const unread = unreadable.length > 0 ? ` (${describeUnreadable(unreadable).join('; ')})` : '';
        throw commandError('ERR_STORE_CORRUPT', `nothing to salvage: ${error instanceof NoStoreFound ? 'no superblock copy and no WAL block carries ringstore\'s magic' : error.message}${unread}`);
      }
      throw error;
    } finally {
      scanProgress?.stop();
    }
    const { superblock, entries, report } = found;
    output = await Output.open(file, path);
    const encoder = new DumpStreamEncoder();
    await output.write(encoder.header({ valueEncodingId: superblock.valueEncodingId, blockSize: superblock.blockSize, salvaged: true }));
    const keyStrings = [...entries.keys()].sort();
    const progress = startProgress('salvage: copy', keyStrings.length, 'count');
    const fromSource = { tree: 0, scan: 0, wal: 0 };
    try {
      let done = 0;
      for (const keyString of keyStrings) {
        const { key, keyIsString, value, source } = entries.get(keyString)!;
        progress.update(++done);
        if (value.kind === 'inline') {
          await output.write(encoder.entry(key, keyIsString, false, value.bytes.length));
          if (value.bytes.length > 0) for (const piece of encoder.value(value.bytes)) await output.write(piece);
        } else {
          // Checked in full before the entry is written: a stream cannot take back an entry it announced.
          if (!extentValueIntact(image, value, superblock.blockSize)) {
            report.valuesSkipped.push({ key: describeKey(key, keyIsString), reason: `its value (${value.length} bytes from block ${value.extents[0].startBlock}) fails its checksum` });
            continue;
          }
          await output.write(encoder.entry(key, keyIsString, value.raw === true, value.length));
          for (const bytes of extentValuePieces(image, value, superblock.blockSize)) for (const piece of encoder.value(bytes)) await output.write(piece);
        }
        fromSource[source]++;
      }
      await output.write(encoder.end());
      await output.close();
    } finally {
      progress.stop();
    }
    // Sectors the device could not read: what lay on them was skipped as damaged (their zeros fail the checksums).
    report.warnings.push(...describeUnreadable(unreadable));
    printSalvageReport(report, encoder.entryCount, fromSource, json);
    const damaged = report.pagesSkipped.length > 0 || report.valuesSkipped.length > 0 || report.walProblem !== undefined || unreadable.length > 0;
    return damaged ? EXIT_DAMAGE : 0;
  } catch (error) {
    await output?.abandon();
    throw error;
  } finally {
    close();
  }
}

function printSalvageReport(report: SalvageReport, emitted: number, fromSource: Record<'tree' | 'scan' | 'wal', number>, json: boolean): void {
  if (json) {
    const { lostRanges, ...rest } = report;
    const ranges = lostRanges.map(({ low, high }) => ({ low: low === undefined ? null : describeKeyString(low), high: high === undefined ? null : describeKeyString(high) }));
    process.stderr.write(`${JSON.stringify({ entriesEmitted: emitted, entriesBySource: fromSource, ...rest, lostRanges: ranges })}\n`);
    return;
  }
  const lines: string[] = [];
  for (const warning of report.warnings) lines.push(`warning: ${warning}`);
  for (const page of report.pagesSkipped) lines.push(`skipped: page at block ${page.block} (level ${page.level}) and its subtree: ${page.reason}`);
  if (report.scannedLeaves > 0 || report.lostRanges.length > 0) {
    lines.push(`scan: ${report.scannedLeaves} intact leaf pages outside the tree; ${report.entriesFromScan} entries of lost ranges taken from them`);
  }
  if (report.walTornTail !== undefined) lines.push(`note: the WAL ends at an incomplete commit (a crash during its write, or damage to the last commit): ${report.walTornTail}`);
  if (report.walProblem !== undefined) lines.push(`skipped: ${report.walProblem}`);
  for (const value of report.valuesSkipped) lines.push(`skipped: key ${value.key}: ${value.reason}`);
  lines.push(
    `salvage: ${emitted} entries written (${fromSource.tree} from the tree, ${fromSource.scan} from the scan, ${fromSource.wal} from ${report.walCommits} WAL commits); ${report.pagesSkipped.length} pages and ${report.valuesSkipped.length} values skipped`,
  );
  process.stderr.write(`${lines.join('\n')}\n`);
}

function describeKey(key: Uint8Array, keyIsString: boolean): string {
  return keyIsString ? JSON.stringify(Buffer.from(key).toString('utf8')) : `0x${Buffer.from(key).toString('hex')}`;
}

function describeKeyString(keyString: string): string {
  return `0x${Buffer.from(keyString, 'latin1').toString('hex')}`;
}

// ---- load ----

/** What the verifying pass learned of a stream. */
interface VerifiedDump {
  header: DumpHeader;
  entryCount: number;
  sizeBytes: number;
  /** SHA-256 of every byte read: the second pass must read the same. */
  digest: string;
}

export async function loadCommand(args: string[]): Promise<number> {
  const parsed = parse(args, LOAD_OPTIONS, LOAD_USAGE);
  if (typeof parsed === 'number') return parsed;
  const [path, file] = parsed.positionals;
  const { values } = parsed;
  const sizeBytes = sizeFlag(values.size, '--size');
  const blockSize = sizeFlag(values['block-size'], '--block-size');
  const maxSizeBytes = sizeFlag(values['max-size'], '--max-size');
  if (values.create !== true && (sizeBytes !== undefined || blockSize !== undefined)) throw usageError('--size and --block-size describe the store --create makes');

  if (file === undefined && process.stdin.isTTY === true) throw usageError('stdin is a terminal: give FILE, or pipe a dump in');
  if (file !== undefined) {
    const input = statFileArgument(file);
    if (input === undefined) throw usageError(`FILE '${file}' does not exist`);
    if (input.isDirectory()) throw usageError(`FILE '${file}' is a directory, not a dump`);
  }

  // The input as a file that can be read twice: FILE itself, or stdin
  // spooled to a temporary file while the first pass verifies it. Both
  // passes read one open descriptor: FILE renamed over between them (a
  // dump publishing a new backup there) would otherwise be loaded
  // unverified (found by a review).
  let spoolDirectory: string | undefined;
  let input: FileHandle | undefined;
  const cleanup = new SignalCleanup();
  try {
    let verified: VerifiedDump;
    if (file === undefined || !statSync(file).isFile()) {
      spoolDirectory = mkdtempSync(join(tmpdir(), 'ringstore-load-'));
      cleanup.add(spoolDirectory);
      const spool = join(spoolDirectory, 'dump');
      verified = await verifyDump(file === undefined ? process.stdin : createReadStream(file, { highWaterMark: INPUT_PIECE_BYTES }), 0, spool);
      input = await open(spool, 'r');
    } else {
      input = await open(file, 'r');
      verified = await verifyDump(readFrom(input), (await input.stat()).size, undefined);
    }
    const encoding = encodingOfId(verified.header.valueEncodingId);

    // Only now is the target touched.
    const existing = statStorePath(path, 'load');
    const createsStore = existing === undefined || (existing.isFile() && existing.size === 0);
    if (createsStore && values.create !== true) throw commandError('ERR_STORE_NOT_FOUND', `'${path}' holds no store; add --create to make one`);
    if (!createsStore && (sizeBytes !== undefined || blockSize !== undefined)) throw usageError(`'${path}' exists: --size and --block-size describe a store load makes`);
    if (sizeBytes !== undefined && maxSizeBytes !== undefined && sizeBytes > maxSizeBytes) throw usageError(`--size ${sizeBytes} is over --max-size ${maxSizeBytes}`);
    if (existing === undefined && lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() === true) {
      // Refused before the load, as open() refuses one (a link cannot be made over it).
      throw commandError('ERR_STORE_PATH', `'${path}' is a symbolic link to a missing file: load into the link's target`);
    }
    // A new store is built beside PATH and put there only once it holds the
    // whole dump (load_target.ts): a load interrupted (Ctrl-C, SIGTERM,
    // kill -9) or failed never leaves a store at PATH that opens, passes
    // fsck and lacks entries (found by a review: a Ctrl-C left 4 547 of
    // 200 000 keys there, fsck ok).
    const build = createsStore ? await NewStoreBuild.start(path, cleanup) : undefined;
    const storePath = build?.buildPath ?? path;
    // On failure, the store load built goes, and PATH is as before.
    const undoCreate = (): Promise<void> => build?.abandon() ?? Promise.resolve();
    // The build's errors name PATH, the file the user asked for.
    const named = (error: unknown): unknown => {
      if (build !== undefined && error instanceof Error) error.message = error.message.split(build.buildPath).join(path);
      return error;
    };
    let store: BlockStore;
    try {
      if (createsStore) {
        await BlockStore.format(storePath, {
          // Room for the dump and some more, within the cap (a store that needs
          // more fails the load, which removes it; format rounds a new file down
          // to whole blocks).
          sizeBytes: sizeBytes ?? Math.min(maxSizeBytes ?? Number.MAX_SAFE_INTEGER, Math.max(DEFAULT_STORE_SIZE_BYTES, roundUpToMiB(verified.sizeBytes * LOAD_STORE_SIZE_FACTOR))),
          blockSize: blockSize ?? (verified.header.blockSize > 0 ? verified.header.blockSize : undefined),
          encoding,
        });
      }
      store = await BlockStore.open(storePath, { encoding: 'binary', sync: false, ...(maxSizeBytes === undefined ? {} : { maxSizeBytes }) });
    } catch (error) {
      if (createsStore) await undoCreate();
      throw named(error);
    }
    let loaded = 0;
    // Whether anything may have been written: a refusal before that leaves the store as it was, and says nothing of what it keeps.
    let writing = false;
    try {
      if (store.recordedEncoding !== encoding) {
        throw commandError('ERR_DUMP_ENCODING', `the dump's values are encoded as ${encoding}, the store at '${path}' records ${store.recordedEncoding}: load into a new store (--create)`);
      }
      writing = true;
      loaded = await writeDump(store, input, verified);
      await store.close();
      // Durable and whole (close flushed it): now it may have its name.
      await build?.publish();
    } catch (error) {
      await store.close().catch(() => undefined);
      if (createsStore) {
        await undoCreate();
      } else if (writing && error instanceof Error) {
        error.message += describeLoadStop(error, path);
      }
      throw named(error);
    }
    const result = { entries: loaded, encoding, created: createsStore, salvagedDump: verified.header.salvaged };
    const notes = [createsStore ? `a new ${encoding} store` : '', verified.header.salvaged ? 'from a salvaged dump: entries of the damaged store may be missing' : ''].filter(Boolean);
    process.stdout.write(values.json === true ? `${JSON.stringify(result)}\n` : `loaded ${loaded} entries into ${path}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}\n`);
    return 0;
  } finally {
    await input?.close();
    cleanup.dispose();
    if (spoolDirectory !== undefined) rmSync(spoolDirectory, { recursive: true, force: true });
  }
}

/** The whole of an open file, from its start, leaving it open (each pass of load reads it so). */
function readFrom(handle: FileHandle): AsyncIterable<Buffer> {
  return handle.createReadStream({ start: 0, autoClose: false, highWaterMark: INPUT_PIECE_BYTES }) as AsyncIterable<Buffer>;
}

/**
 * What load refuses in a dump besides what the decoder does: entries it
 * could not store as they are. Both passes check them: the file may change
 * between the two.
 */
function checkLoadable(event: Extract<DumpEvent, { kind: 'entry' }>): void {
  if (event.keyIsString && !Buffer.from(Buffer.from(event.key).toString('utf8'), 'utf8').equals(event.key)) {
    throw new DumpCorruptError('a string key whose bytes are not UTF-8 (it cannot be stored as the same string)', event.offset, event.index);
  }
  if (!event.raw && event.valueLength > VALUE_SIZE_MAX) {
    throw new DumpCorruptError(`an encoded value of ${event.valueLength} bytes (a put stores at most ${VALUE_SIZE_MAX})`, event.offset, event.index);
  }
}


function roundUpToMiB(bytes: number): number {
  return Math.ceil(bytes / 2 ** 20) * 2 ** 20;
}

/**
 * Reads the whole stream (from `file`, or stdin) through the decoder; copies
 * it to `spool` if given. Refuses (ERR_DUMP_CORRUPT) a stream that does not
 * verify to its trailer, and entries load could not store as they are.
 */
async function verifyDump(source: AsyncIterable<Buffer> | NodeJS.ReadableStream, totalBytes: number, spool: string | undefined): Promise<VerifiedDump> {
  const decoder = new DumpStreamDecoder();
  const spoolHandle = spool === undefined ? undefined : await open(spool, 'wx');
  const progress = startProgress('load: verify', totalBytes, 'bytes');
  const hash = createHash('sha256');
  let header: DumpHeader | undefined;
  let entryCount = -1;
  let sizeBytes = 0;
  try {
    for await (const piece of source as AsyncIterable<Buffer>) {
      for (const event of decoder.push(piece)) {
        if (event.kind === 'header') header = event.header;
        else if (event.kind === 'entry') checkLoadable(event);
        else if (event.kind === 'end') entryCount = event.entryCount;
      }
      sizeBytes += piece.length;
      hash.update(piece);
      if (spoolHandle !== undefined) await spoolHandle.write(piece);
      progress.update(sizeBytes);
    }
    decoder.finish();
  } finally {
    progress.stop();
    await spoolHandle?.close();
  }
  if (header === undefined) throw new Error('ringstore: a finished dump stream has a header'); // finish() refuses one without
  return { header, entryCount, sizeBytes, digest: hash.digest('hex') };
}

/** Resolves when `stream` takes writes again; rejects if it fails first (a full store). */
function roomIn(stream: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // Failed already (its error went to the listener load keeps on it): no drain will come.
    if (stream.errored !== null) {
      reject(stream.errored);
      return;
    }
    const onError = (error: Error): void => {
      stream.off('drain', onDrain);
      reject(error);
    };
    const onDrain = (): void => {
      stream.off('error', onError);
      resolve();
    };
    stream.once('error', onError);
    stream.once('drain', onDrain);
  });
}

/** Writes the verified stream in `file` into `store`; resolves to the entries written. */
/** Where a load into a store stopped: entries before `index` are stored, and `storedAfter` of the `writtenAfter` written beside it after it; none later. */
interface LoadStop {
  index: number;
  /** The entry's key; undefined when the failure was between entries. */
  key: string | Buffer | undefined;
  entryCount: number;
  writtenAfter: number;
  storedAfter: number;
}

const LOAD_STOP = Symbol('loadStop');

/** `error` (the store's, or the dump's) carrying where the load stopped, unless it carries it already. */
function withLoadStop(error: unknown, stop: LoadStop): unknown {
  if (!(error instanceof Error) || LOAD_STOP in error) return error;
  return Object.assign(error, { [LOAD_STOP]: stop });
}

/** What a load that failed left in an existing store, for its message. */
function describeLoadStop(error: Error, path: string): string {
  const stop = (error as Error & { [LOAD_STOP]?: LoadStop })[LOAD_STOP];
  if (stop === undefined) return ` (the store at '${path}' may hold some of the dump's entries)`;
  const key = stop.key === undefined ? '' : `, key ${typeof stop.key === 'string' ? JSON.stringify(stop.key) : `0x${stop.key.toString('hex')}`}`;
  const after = stop.writtenAfter === 0 ? '' : `, and ${stop.storedAfter} of the ${stop.writtenAfter} entries after it that were written beside it`;
  return ` (the load stopped at entry ${stop.index + 1} of ${stop.entryCount}${key}: the store at '${path}' holds the ${stop.index} entries before it${after}; none later)`;
}

async function writeDump(store: BlockStore, file: FileHandle, verified: VerifiedDump): Promise<number> {
  const decoder = new DumpStreamDecoder();
  const hash = createHash('sha256');
  const changed = (what: string): DumpCorruptError => new DumpCorruptError(`the file changed since it was verified (${what})`, decoder.offset);
  const progress = startProgress('load', verified.entryCount, 'count');
  /** Puts written beside each other, in dump order: `index` is the entry's. */
  const inFlight: { index: number; key: string | Buffer; put: Promise<void> }[] = [];
  let inFlightBytes = 0;
  /**
   * Waits for the puts in flight. If one failed, throws its error with
   * where the load stopped (LoadStop): the first failed entry, and how many
   * of those written beside it, after it, are stored anyway — every entry
   * before it is, and none after the puts in flight is ever written.
   */
  const settle = async (): Promise<void> => {
    const outcomes = await Promise.allSettled(inFlight.map((written) => written.put));
    const failed = outcomes.findIndex((outcome) => outcome.status === 'rejected');
    const written = inFlight.splice(0);
    inFlightBytes = 0;
    if (failed === -1) return;
    const after = outcomes.slice(failed + 1);
    throw withLoadStop((outcomes[failed] as PromiseRejectedResult).reason, {
      index: written[failed].index,
      key: written[failed].key,
      entryCount: verified.entryCount,
      writtenAfter: after.length,
      storedAfter: after.filter((outcome) => outcome.status === 'fulfilled').length,
    });
  };
  let loaded = 0;
  let entry: { key: string | Buffer; raw: boolean; valueLength: number } | undefined;
  let chunks: Uint8Array[] = [];
  let stream: Writable | undefined;
  const finishEntry = async (): Promise<void> => {
    const { key, raw } = entry!;
    if (raw) {
      stream!.end();
      await finished(stream!);
      stream = undefined;
    } else {
      const put = store.put(key, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
      // Handled here so that a put failing while the loop awaits something
      // else is not an unhandled rejection; settle() still throws its error.
      put.catch(() => undefined);
      inFlight.push({ index: loaded, key, put });
      inFlightBytes += entry!.valueLength;
      chunks = [];
      if (inFlight.length >= LOAD_PUTS_IN_FLIGHT_MAX || inFlightBytes >= LOAD_PUT_BYTES_IN_FLIGHT_MAX) await settle();
    }
    entry = undefined;
    progress.update(++loaded);
  };
  try {
    for await (const piece of readFrom(file)) {
      // The same checks again: the file was verified, but may have been
      // written to since (its name no longer matters: one descriptor).
      hash.update(piece);
      const events: DumpEvent[] = decoder.push(piece);
      for (const event of events) {
        if (event.kind === 'header') {
          const { valueEncodingId, blockSize, salvaged } = event.header;
          if (valueEncodingId !== verified.header.valueEncodingId || blockSize !== verified.header.blockSize || salvaged !== verified.header.salvaged) throw changed('its header');
        } else if (event.kind === 'entry') {
          checkLoadable(event);
          const key = event.keyIsString ? Buffer.from(event.key).toString('utf8') : Buffer.from(event.key);
          entry = { key, raw: event.raw, valueLength: event.valueLength };
          if (event.raw) {
            // Puts before it first: the stream's commit must follow them, as in the dump.
            await settle();
            stream = store.createWriteStream(key);
            // The stream may fail between two writes (its data is written
            // asynchronously): a listener for its whole life, so that the
            // error is never an unhandled 'error' event; roomIn() and
            // finished() then report it.
            stream.on('error', () => undefined);
          }
          if (event.valueLength === 0) await finishEntry();
        } else if (event.kind === 'chunk') {
          if (entry!.raw) {
            if (!stream!.write(event.bytes)) await roomIn(stream!);
          } else {
            chunks.push(event.bytes);
          }
          if (event.last) await finishEntry();
        }
      }
    }
    decoder.finish();
    await settle();
  } catch (error) {
    stream?.destroy();
    // A put in flight that failed too came before the entry that threw: its failure (thrown by settle) is where the load stopped.
    await settle();
    // The entry being written failed (a stream), or the file changed: every entry before it is stored.
    throw withLoadStop(error, { index: loaded, key: entry?.key, entryCount: verified.entryCount, writtenAfter: 0, storedAfter: 0 });
  } finally {
    progress.stop();
  }
  if (loaded !== verified.entryCount) throw new DumpCorruptError(`the file changed since it was verified: ${loaded} entries, ${verified.entryCount} verified`, decoder.offset);
  if (hash.digest('hex') !== verified.digest) throw changed('its bytes');
  return loaded;
}

