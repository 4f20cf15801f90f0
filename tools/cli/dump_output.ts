// Where `ringstore dump` writes: stdout, a device or a fifo, or a regular
// file — replaced whole by a temporary file renamed over it once the dump
// is complete and durable, so that a failed dump never costs the backup
// already there.
import { randomBytes } from 'node:crypto';
import { lstatSync, readlinkSync, realpathSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { statFileArgument, usageError } from './command_line.js';
import { writeStdout } from './stdout_pipe.js';

/** Output bytes gathered before one write: entry heads are small, a write per entry would cost more than the entry. */
const OUTPUT_BATCH_BYTES = 1 << 20;

/**
 * Where a dump goes: stdout; a device or a fifo, or a regular file written
 * in place (truncated at the start, removed if the dump fails); or a
 * regular file replaced whole by a temporary file renamed over it.
 */
type OutputKind = 'stdout' | 'device' | 'inPlace' | 'replace';

/** Signals that end a dump with its temporary file removed (SIGKILL leaves it: a `.NAME.PID.RANDOM.partial` beside FILE). */
const CLEANUP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export class Output {
  readonly #kind: OutputKind;
  readonly #handle: FileHandle | undefined;
  /** Where the dump is written while it runs: FILE itself, or the temporary file beside it ('replace'). */
  readonly #writtenPath: string | undefined;
  /** 'replace': the file the finished dump is renamed over. */
  readonly #finalPath: string | undefined;
  /** 'replace': removes the temporary file and ends the process on a signal, until close() or abandon(). */
  readonly #onSignal: ((signal: NodeJS.Signals) => void) | undefined;
  #pieces: Uint8Array[] = [];
  #pieceBytes = 0;
  bytesWritten = 0;

  private constructor(kind: OutputKind, handle: FileHandle | undefined, writtenPath: string | undefined, finalPath: string | undefined) {
    this.#kind = kind;
    this.#handle = handle;
    this.#writtenPath = writtenPath;
    this.#finalPath = finalPath;
    if (kind === 'replace') {
      this.#onSignal = (signal) => {
        this.#stopWatchingSignals();
        try {
          unlinkSync(writtenPath!);
        } catch {
          // gone already
        }
        // Ends as the signal would have ended it (status 128 + its number).
        process.kill(process.pid, signal);
      };
      for (const signal of CLEANUP_SIGNALS) process.on(signal, this.#onSignal);
    }
  }

  /**
   * Opens stdout, or FILE for the dump. A regular file (or a new one) is
   * not truncated: the dump goes to a temporary file in its directory,
   * renamed over it once complete and durable, with FILE's permissions and
   * owner, so a dump that fails — a damaged store, a full disk, a signal —
   * leaves the previous backup at FILE as it was (found by a review: a
   * failed nightly dump deleted the last good one). Written in place
   * instead, as before: a device or a fifo; a FILE with other hard links
   * (a rename would split them); a FILE in a directory this user cannot
   * write. Refuses FILE naming the store being dumped.
   */
  static async open(path: string | undefined, storePath: string): Promise<Output> {
    if (path === undefined) {
      // A dump is binary: on a terminal it would be noise, and a lost backup.
      if (process.stdout.isTTY === true) throw usageError('stdout is a terminal: give FILE, or redirect stdout to a file');
      return new Output('stdout', undefined, undefined, undefined);
    }
    const target = statFileArgument(path);
    const store = statSync(storePath, { throwIfNoEntry: false });
    if (target !== undefined && store !== undefined && target.dev === store.dev && target.ino === store.ino) {
      throw usageError(`FILE '${path}' is the store being dumped: writing the dump there would destroy it`);
    }
    if (target?.isDirectory() === true) throw usageError(`FILE '${path}' is a directory: name the dump file`);
    if (target !== undefined && !target.isFile()) return new Output('device', await open(path, 'w'), path, undefined);
    if (target !== undefined && target.nlink > 1) return new Output('inPlace', await open(path, 'w'), path, undefined);
    // Through a symlink, the file it names is replaced, not the link — one
    // that names no file yet too.
    const finalPath = target !== undefined ? realpathSync(path) : danglingLinkTarget(path) ?? path;
    const writtenPath = join(dirname(finalPath), `.${basename(finalPath)}.${process.pid}.${randomBytes(4).toString('hex')}.partial`);
    let handle: FileHandle;
    try {
      handle = await open(writtenPath, 'wx', 0o666);
    } catch (error) {
      // No room for a file beside FILE, for this user: FILE itself, if it may be written.
      const code = (error as NodeJS.ErrnoException).code;
      if (target !== undefined && (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')) return new Output('inPlace', await open(path, 'w'), path, undefined);
      // Named as FILE, not as the hidden file beside it (found by a review:
      // a missing directory was reported as ENOENT of '.x.dump.PID.RAND.partial').
      throw Object.assign(usageError(`FILE '${path}' cannot be written: ${typeof code === 'string' ? code : String(error)}${code === 'ENOENT' ? ' (its directory does not exist)' : ''}`), { cause: error });
    }
    if (target !== undefined) {
      // FILE's permissions (the umask applied to open's mode) and, as far as this user may, its owner.
      await handle.chmod(target.mode & 0o7777);
      await handle.chown(target.uid, target.gid).catch(() => undefined);
    }
    return new Output('replace', handle, writtenPath, finalPath);
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.#pieces.push(bytes);
    this.#pieceBytes += bytes.length;
    if (this.#pieceBytes >= OUTPUT_BATCH_BYTES) await this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#pieceBytes === 0) return;
    const bytes = Buffer.concat(this.#pieces, this.#pieceBytes);
    this.#pieces = [];
    this.#pieceBytes = 0;
    this.bytesWritten += bytes.length;
    if (this.#handle !== undefined) {
      await this.#handle.write(bytes);
      return;
    }
    // A reader that went away (EPIPE) fails the dump: stdout_pipe.ts.
    await writeStdout(bytes);
  }

  /**
   * Everything written and durable: a file is fsynced (a backup that a
   * crash can lose is none); a replacement is then renamed over FILE, and
   * the rename made durable by an fsync of the directory.
   */
  async close(): Promise<void> {
    await this.#flush();
    if (this.#handle === undefined) return;
    // A device or a fifo has nothing to make durable (fsync of /dev/null is EINVAL).
    if (this.#kind !== 'device') await this.#handle.sync();
    await this.#handle.close();
    if (this.#kind !== 'replace') return;
    renameSync(this.#writtenPath!, this.#finalPath!);
    this.#stopWatchingSignals();
    const directory = await open(dirname(this.#finalPath!), 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }

  /**
   * After a failure: a replacement's temporary file is removed (FILE keeps
   * what it held); a file written in place is removed rather than left to
   * look like a backup. What a device or a fifo took is not a file anyone
   * will load: left alone (found by a review: as root a failed dump to
   * /dev/null unlinked it).
   */
  async abandon(): Promise<void> {
    if (this.#handle === undefined) return;
    await this.#handle.close().catch(() => undefined);
    this.#stopWatchingSignals();
    if (this.#kind === 'device') return;
    try {
      unlinkSync(this.#writtenPath!);
    } catch {
      // renamed already (the directory's fsync failed), or gone: load refuses a dump cut short anyway
    }
  }

  #stopWatchingSignals(): void {
    if (this.#onSignal === undefined) return;
    for (const signal of CLEANUP_SIGNALS) process.off(signal, this.#onSignal);
  }
}

/** The path a symlink at `path` names when that names nothing yet; undefined when `path` is no symlink. */
function danglingLinkTarget(path: string): string | undefined {
  const link = lstatSync(path, { throwIfNoEntry: false });
  if (link === undefined || !link.isSymbolicLink()) return undefined;
  return resolve(dirname(path), readlinkSync(path));
}
