// Where `ringstore load --create` puts a new store, and what it undoes when
// a signal ends it: a store built beside a missing PATH and linked there
// only once whole (NewStoreBuild), and the cleanup a SIGINT, SIGTERM or
// SIGHUP runs first (SignalCleanup) — so that an interrupted load never
// leaves a store at PATH that opens, passes fsck and lacks entries.
import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, chownSync, constants, fstatSync, realpathSync, renameSync, rmSync, type Stats, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { fileIdentity, prefixOfBytes, publishNamedFile, removeOwnName } from '../../engine/store_file.js';
import { IoUringActor } from '../../native/io_uring_actor.js';
import { type RingFile, syncDirectory } from '../../native/ring_file.js';
import { commandError, statStorePath } from './command_line.js';

/**
 * What a load undoes if a signal ends it (SIGINT, SIGTERM, SIGHUP): the
 * store it was building removed, or the empty file it was loading into
 * emptied again; stdin's spooled copy removed. SIGKILL leaves them: a
 * `.NAME.ringstore-load-….partial` beside PATH, a partly loaded empty file,
 * a `ringstore-load-*` directory in $TMPDIR.
 */
export class SignalCleanup {
  /** What to undo, by the path it concerns. */
  readonly #undo = new Map<string, () => void>();
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    this.dispose();
    for (const undo of this.#undo.values()) {
      try {
        undo();
      } catch {
        // Gone already, or beyond repair now: the signal ends the process either way.
      }
    }
    // Ends as the signal would have ended it (status 128 + its number).
    process.kill(process.pid, signal);
  };

  constructor() {
    for (const signal of CLEANUP_SIGNALS) process.on(signal, this.#onSignal);
  }

  /** Undoes `path` on a signal: by `undo`, or by removing it (and what it holds). */
  add(path: string, undo: () => void = () => rmSync(path, { recursive: true, force: true })): void {
    this.#undo.set(path, undo);
  }

  delete(path: string): void {
    this.#undo.delete(path);
  }

  /** Stops watching: the process's signals do what they did before. */
  dispose(): void {
    for (const signal of CLEANUP_SIGNALS) process.removeListener(signal, this.#onSignal);
  }
}

const CLEANUP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * A new store load --create builds under a temporary name beside PATH and
 * puts at PATH only once it holds the whole dump; until then PATH is never
 * touched, so a failed or interrupted load leaves it as it was.
 *
 * - A missing PATH: the build is published there as the engine publishes
 *   a new store file (publishNamedFile: never over a file made there
 *   meanwhile, ERR_STORE_LOCKED; a rename over a claimed name without hard
 *   links).
 * - An empty file at PATH: it is locked (flock, as a store locks its file)
 *   for the whole load, so no store can be made in it meanwhile, and the
 *   build — given its mode and, as far as this user may, its owner — is
 *   renamed over it at the end. One with other hard links is refused: they
 *   would keep the empty file. (Formatting it in place, as before, formatted
 *   over a store made there after the check, and a failed load's truncation
 *   then destroyed it; found by a review.)
 */
export class NewStoreBuild {
  readonly buildPath: string;
  /** The file to put the store at (a symlink's target for an empty file through one). */
  readonly #path: string;
  readonly #cleanup: SignalCleanup;
  readonly #ring: IoUringActor;
  /** The empty file at PATH, held locked until the build replaces it. */
  #heldEmpty: RingFile | undefined;

  private constructor(path: string, cleanup: SignalCleanup, ring: IoUringActor) {
    this.#path = path;
    this.#cleanup = cleanup;
    this.#ring = ring;
    this.buildPath = join(dirname(path), `.${prefixOfBytes(basename(path), BUILD_NAME_BASENAME_BYTES_MAX)}.ringstore-load-${process.pid}.${randomBytes(4).toString('hex')}.partial`);
  }

  /** Starts a build for `path`: missing, or an empty regular file (locked now, or refused). */
  static async start(path: string, cleanup: SignalCleanup): Promise<NewStoreBuild> {
    if (path.endsWith('/')) throw commandError('ERR_STORE_PATH', `'${path}' ends in '/': name a file`);
    const existing = statStorePath(path, 'load --create');
    if (existing !== undefined && existing.nlink > 1) {
      throw commandError('ERR_STORE_PATH', `'${path}' is an empty file with other hard links: they would keep the empty file when the new store replaces it; remove it, or load into a new name`);
    }
    const target = existing === undefined ? path : realpathSync(path);
    refuseUnwritableDirectory(path, target, existing);
    const ring = IoUringActor.start({ spinUs: 0, completionSpinUs: 0 });
    const build = new NewStoreBuild(target, cleanup, ring);
    try {
      if (existing !== undefined) {
        const held = await ring.open(build.#path);
        build.#heldEmpty = held;
        if (!held.tryLockExclusive()) throw commandError('ERR_STORE_LOCKED', `'${path}' is open by a store or another load`);
        if ((await held.stat()).sizeBytes !== 0) throw commandError('ERR_STORE_LOCKED', `'${path}' is no longer empty`);
      }
    } catch (error) {
      await build.abandon();
      throw error;
    }
    cleanup.add(build.buildPath);
    return build;
  }

  /** Puts the built store (closed: durable) at PATH, or fails leaving PATH as it was. */
  async publish(): Promise<void> {
    const madeMeanwhile = (): Error => commandError('ERR_STORE_LOCKED', `'${this.#path}' was made by someone else while the load ran: the loaded store is not put there`);
    if (this.#heldEmpty !== undefined) {
      // Locked all along: only a writer that ignores flock could have written to it.
      if ((await this.#heldEmpty.stat()).sizeBytes !== 0) throw madeMeanwhile();
      // And PATH must still name it: a file made there after it was removed
      // (a store another process holds open) would be renamed over, its
      // writes going to a deleted file (found by a review).
      const empty = statSync(this.#path, { throwIfNoEntry: false });
      const held = fstatSync(this.#heldEmpty.fd);
      if (empty === undefined || empty.dev !== held.dev || empty.ino !== held.ino) throw madeMeanwhile();
      chmodSync(this.buildPath, empty.mode & 0o7777);
      try {
        chownSync(this.buildPath, empty.uid, empty.gid);
      } catch {
        // Another user's file: the store is this user's, with the file's mode.
      }
      renameSync(this.buildPath, this.#path);
      this.#cleanup.delete(this.buildPath);
      await this.#release();
      // The new name must survive a crash as the store's contents do.
      await syncDirectory(dirname(this.#path));
      return;
    }
    const built = await fileIdentity(this.buildPath);
    try {
      // Never over a file made at PATH meanwhile (another load, a store).
      await publishNamedFile(this.#ring, this.buildPath, this.#path);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ERR_STORE_LOCKED') throw madeMeanwhile();
      // Failed past the link (the directory's flush): PATH as it was (found by a review).
      await removeOwnName(this.#ring, this.#path, built, error);
      throw error;
    } finally {
      await this.#release();
    }
    this.#cleanup.delete(this.buildPath);
  }

  /** Removes the store being built (nothing once published) and lets go of PATH. Idempotent. */
  async abandon(): Promise<void> {
    rmSync(this.buildPath, { force: true });
    await this.#release();
  }

  async #release(): Promise<void> {
    const held = this.#heldEmpty;
    this.#heldEmpty = undefined;
    await held?.close().catch(() => undefined);
    await this.#ring.close().catch(() => undefined);
  }
}

/**
 * Refuses, before any work, a PATH whose directory the build cannot be made
 * in or renamed from: one this user cannot write (an empty file there was
 * loaded in place before; load into a new name elsewhere), and an empty
 * file in a sticky directory (/tmp) that neither this user nor the
 * directory's owner owns, which rename(2) may not replace (it failed with a
 * raw EPERM after the whole load; found by a review).
 */
function refuseUnwritableDirectory(path: string, target: string, existing: Stats | undefined): void {
  const directory = dirname(target);
  try {
    accessSync(directory, constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') {
      throw Object.assign(commandError('ERR_STORE_PATH', `'${path}': its directory cannot be used (${code ?? String(error)})`), { cause: error });
    }
    throw Object.assign(commandError('ERR_STORE_PATH', `'${path}': its directory is not writable by this user (${code}), and load --create builds the new store beside PATH: load into a new name in a writable directory`), { cause: error });
  }
  const uid = process.getuid?.();
  if (existing === undefined || uid === undefined || uid === 0) return;
  const directoryStats = statSync(directory);
  const sticky = (directoryStats.mode & STICKY_BIT) !== 0;
  if (sticky && existing.uid !== uid && directoryStats.uid !== uid) {
    throw commandError('ERR_STORE_PATH', `'${path}' is another user's file in a sticky directory: the new store cannot replace it; load into a new name`);
  }
}

/** S_ISVTX: in a directory, only a file's owner (or the directory's) may remove or replace it. */
const STICKY_BIT = 0o1000;

/** Bytes (UTF-8) of PATH's name kept in the build's temporary name: with the rest it must fit NAME_MAX (255). */
const BUILD_NAME_BASENAME_BYTES_MAX = 128;
