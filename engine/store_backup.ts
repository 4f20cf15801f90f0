// Online backup (BlockStore.backup): a copy of a live store, as of one
// moment, in a new store file.
//
// The copy is read from a snapshot (storedEntries: each value's stored
// bytes, never decoded, raw values staying raw) while the store goes on
// serving reads and writes, and written into a store built under a temporary
// name beside PATH — formatted with the source's block size and recorded
// encoding, written through a 'binary' handle so the stored bytes go in as
// they are, with sync: false, made durable by its close. Only then is it
// given PATH (publishNamedFile: link, never over a file made there
// meanwhile, then the directory flushed). So a backup that fails or is
// interrupted never leaves at PATH a store that opens and lacks entries; a
// crash or SIGKILL part way leaves the temporary file behind
// (`.NAME.ringstore-backup-PID.RANDOM.partial`, docs/store.md).
//
// It is `ringstore dump | ringstore load --create` in one step without the
// stream, for a store that stays open: the CLI cannot read a store another
// process holds open for writing (flock), the store's own process can.
import { randomBytes } from 'node:crypto';
import { lstat, open as openFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { IoUringActor } from '../native/io_uring_actor.js';
import type { Key } from './key_codec.js';
import { allSettledOrThrow } from './grid.js';
import { invalidArgument, pathError, StoreError } from './store_error.js';
import { fileIdentity, isCode, prefixOfBytes, publishNamedFile, removeOwnName, renameInMessage } from './store_file.js';
import { STORE_RING_OPTIONS } from './store_options.js';
import type { ValueEncoding } from './value_codec.js';
import type { StoredEntry } from './value_streams.js';

/**
 * Inline values go into the new store in batches (one commit each, sync:
 * false: resolved once applied; the close makes them durable) of at most
 * this many entries and this many bytes of values — well within the
 * quarter of the new store's WAL a commit may take (2 MiB for the 8 MiB WAL
 * of a new file). Two batches in flight keep the journal writing one while
 * the next is read from the snapshot.
 */
export const BACKUP_BATCH_ENTRIES_MAX = 1000;
export const BACKUP_BATCH_VALUE_BYTES_MAX = 256 << 10;
export const BACKUP_BATCHES_IN_FLIGHT_MAX = 2;
/** Bytes of extent values (each its own put) a backup has in flight at most, beside the one it reads. */
export const BACKUP_EXTENT_BYTES_IN_FLIGHT_MAX = 64 << 20;

/** Bytes of PATH's name kept in the temporary name: with the rest it must fit NAME_MAX (255). */
const TEMPORARY_NAME_BASENAME_BYTES_MAX = 128;
/** Random bytes in the temporary name: unique across backups, threads and a PID reused after a crash. */
const TEMPORARY_NAME_RANDOM_BYTES = 4;
/** The temporary name's suffix, which docs/store.md tells users to look for after a crash. */
export const BACKUP_TEMPORARY_SUFFIX = '.partial';

/** What BlockStore.backup() resolves to. */
export interface BackupReport {
  /** The path of the new store file. */
  path: string;
  /** Entries copied: every key of the snapshot. */
  entries: number;
  /** Bytes of the new store file (it grew as the copy filled it). */
  sizeBytes: number;
}

/** What a backup reads of the store it copies (a BlockStore). */
export interface BackupSource {
  storedEntries(): AsyncGenerator<StoredEntry>;
  readonly recordedEncoding: ValueEncoding;
  readonly blockSize: number;
}

/** What a backup writes through: a BlockStore opened on the new file. */
export interface BackupTarget {
  put(key: Key, value: Uint8Array): Promise<void>;
  batch(operations: BackupPut[]): Promise<void>;
  createWriteStream(key: Key): Writable;
  close(): Promise<void>;
}

/** How a backup makes its new store: BlockStore's own format() and open(), handed in by the façade. */
export interface BackupStoreMaker {
  format(path: string, options: { blockSize: number; encoding: ValueEncoding; ring: IoUringActor }): Promise<void>;
  open(path: string, options: { encoding: 'binary'; sync: false; ring: IoUringActor }): Promise<BackupTarget>;
}

/**
 * Copies `source` into a new store file at `path` (see the file comment).
 * The snapshot is taken at the call's first step: every write acknowledged
 * before the call is in the copy, and of the writes made while it runs, each
 * is in it whole (a batch with all its operations) or not at all. `path`
 * must not exist (ERR_STORE_PATH otherwise: a backup never replaces a file).
 */
export async function backupStore(source: BackupSource, path: unknown, maker: BackupStoreMaker): Promise<BackupReport> {
  if (typeof path !== 'string' || path.length === 0) throw invalidArgument('backup(path): path must be a non-empty string');
  if (path.endsWith('/')) throw new StoreError('ERR_STORE_PATH', `'${path}' ends in '/': name the new store file`);
  // The snapshot first, before any await: writes acknowledged before the call are in it.
  const entries = source.storedEntries();
  const first = entries.next();
  // Settled by the copy below; not an unhandled rejection if the set-up fails first.
  first.catch(() => undefined);
  let temporaryPath: string | undefined;
  let ring: IoUringActor | undefined;
  let target: BackupTarget | undefined;
  // Errors of publishing name both files as they are (a rename's, say).
  let publishing = false;
  try {
    await refuseExistingPath(path);
    temporaryPath = await claimTemporaryFile(path);
    ring = IoUringActor.start(STORE_RING_OPTIONS);
    await maker.format(temporaryPath, { blockSize: source.blockSize, encoding: source.recordedEncoding, ring });
    target = await maker.open(temporaryPath, { encoding: 'binary', sync: false, ring });
    const copied = await copyEntries(first, entries, target);
    const closing = target;
    target = undefined;
    // Every entry durable (sync: false: the close is the flush), the store clean.
    await closing.close();
    const copy = await fileIdentity(temporaryPath);
    publishing = true;
    const publishRing = ring;
    await publishNamedFile(publishRing, temporaryPath, path).catch(async (error: unknown) => {
      if ((error as { code?: unknown }).code === 'ERR_STORE_LOCKED') {
        throw new StoreError('ERR_STORE_PATH', `'${path}' was made, or the backup's claim on it removed or replaced, by someone else while the backup ran: the backup is not put there`, { cause: error });
      }
      // Failed once the copy had its name (the directory's flush, say): the
      // name goes again, so that a failed backup leaves nothing at `path`.
      await removeOwnName(publishRing, path, copy, error);
      throw error;
    });
    temporaryPath = undefined;
    return { path, entries: copied, sizeBytes: (await stat(path)).size };
  } catch (error) {
    // The snapshot's pin goes with the iteration (a no-op once it ended).
    await entries.return(undefined).catch(() => undefined);
    await target?.close().catch(() => undefined);
    if (temporaryPath !== undefined) {
      await unlink(temporaryPath).catch(() => undefined);
      if (!publishing) renameInMessage(error, temporaryPath, path);
    }
    throw error;
  } finally {
    await ring?.close().catch(() => undefined);
  }
}

/**
 * Refuses a `path` that exists, or that cannot name a file (ENAMETOOLONG,
 * a NUL byte, a file as a directory, no permission), before anything is
 * copied: only "no such file" lets the backup go on (a review found every
 * error of the look-up taken for that, and a name too long refused only
 * after the whole copy).
 */
async function refuseExistingPath(path: string): Promise<void> {
  if (path.includes('\0')) throw new StoreError('ERR_STORE_PATH', `${JSON.stringify(path)} holds a NUL byte: no file can have that name`);
  const found = await lstat(path).then(
    () => true,
    (error: unknown) => {
      if (isCode(error, 'ENOENT')) return false;
      throw pathError(path, error, 'cannot look the name up');
    },
  );
  if (found) throw new StoreError('ERR_STORE_PATH', `'${path}' exists: a backup is written to a new file only, never over one (remove it, or back up to another name)`);
}

/** Makes the temporary file beside `path`, empty and ours alone (O_EXCL). */
async function claimTemporaryFile(path: string): Promise<string> {
  const name = `.${prefixOfBytes(basename(path), TEMPORARY_NAME_BASENAME_BYTES_MAX)}.ringstore-backup-${process.pid}.${randomBytes(TEMPORARY_NAME_RANDOM_BYTES).toString('hex')}${BACKUP_TEMPORARY_SUFFIX}`;
  const temporaryPath = join(dirname(path), name);
  try {
    await (await openFile(temporaryPath, 'wx')).close();
  } catch (error) {
    throw pathError(path, error, 'cannot create the backup file in its directory');
  }
  return temporaryPath;
}

/**
 * Writes every entry of the iteration (its first step `first` already
 * taken) into `target`: inline values in batches (their bytes copied out of
 * the snapshot's leaves, which are valid only until the iteration moves
 * on), extent values as puts of their own, raw values through a write
 * stream each (which keeps them raw and never holds a whole large value).
 * Keys of a snapshot are distinct, so the order the writes land in does not
 * matter. Returns how many entries it wrote. The writes in flight settle
 * before it returns or throws, so the target closes with nothing of its
 * caller's still running.
 */
async function copyEntries(first: Promise<IteratorResult<StoredEntry>>, entries: AsyncGenerator<StoredEntry>, target: BackupTarget): Promise<number> {
  const batches: Promise<void>[] = [];
  let extentPuts: Promise<void>[] = [];
  let extentBytes = 0;
  let batch: BackupPut[] = [];
  let batchBytes = 0;
  let copies = Buffer.allocUnsafe(BACKUP_BATCH_VALUE_BYTES_MAX);
  const sendBatch = async (): Promise<void> => {
    if (batch.length === 0) return;
    const written = target.batch(batch);
    // Reported when awaited; not unhandled while the loop awaits the source.
    written.catch(() => undefined);
    batches.push(written);
    batch = [];
    batchBytes = 0;
    // The batch holds views of these copies until it has been applied.
    copies = Buffer.allocUnsafe(BACKUP_BATCH_VALUE_BYTES_MAX);
    if (batches.length >= BACKUP_BATCHES_IN_FLIGHT_MAX) await batches.shift();
  };
  let copied = 0;
  try {
    for (let step = await first; step.done !== true; step = await entries.next()) {
      const entry = step.value;
      const inline = entry.bytes;
      if (inline !== undefined) {
        if (batch.length >= BACKUP_BATCH_ENTRIES_MAX || batchBytes + inline.length > BACKUP_BATCH_VALUE_BYTES_MAX) await sendBatch();
        copies.set(inline, batchBytes);
        batch.push({ type: 'put', key: entry.key, value: copies.subarray(batchBytes, batchBytes + inline.length) });
        batchBytes += inline.length;
      } else if (entry.raw) {
        // The stream takes every chunk before the iteration moves on (their bytes are valid until then).
        await pipeline(Readable.from(entry.chunks(), { objectMode: false }), target.createWriteStream(entry.key));
      } else {
        const chunks: Uint8Array[] = [];
        for await (const chunk of entry.chunks()) chunks.push(chunk);
        // put() copies the bytes before it returns.
        const put = target.put(entry.key, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
        put.catch(() => undefined);
        extentPuts.push(put);
        extentBytes += entry.sizeBytes;
        if (extentBytes >= BACKUP_EXTENT_BYTES_IN_FLIGHT_MAX) {
          const puts = extentPuts;
          extentPuts = [];
          extentBytes = 0;
          await allSettledOrThrow(puts);
        }
      }
      copied++;
    }
    await sendBatch();
    await allSettledOrThrow([...batches, ...extentPuts]);
  } finally {
    // Also when the source or a stream failed: the writes already made end first.
    await Promise.allSettled([...batches, ...extentPuts]);
  }
  return copied;
}

/** One put of a backup's batch. */
interface BackupPut {
  type: 'put';
  key: Key;
  value: Uint8Array;
}
