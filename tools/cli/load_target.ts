// Where `ringstore load --create` puts a new store, and what it undoes when
// a signal ends it: a store built beside a missing PATH and linked there
// only once whole (NewStoreBuild), and the cleanup a SIGINT, SIGTERM or
// SIGHUP runs first (SignalCleanup) — so that an interrupted load never
// leaves a store at PATH that opens, passes fsck and lacks entries.
import { randomBytes } from 'node:crypto';
import { linkSync, rmSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { prefixOfBytes } from '../../engine/store_file.js';
import { syncDirectory } from '../../native/ring_file.js';
import { commandError } from './command_line.js';

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
 * A new store load --create builds under a temporary name beside a missing
 * PATH, and links at PATH once it holds the whole dump (never over a file
 * made there meanwhile).
 */
export class NewStoreBuild {
  readonly buildPath: string;
  readonly #path: string;
  readonly #cleanup: SignalCleanup;

  constructor(path: string, cleanup: SignalCleanup) {
    this.#path = path;
    this.#cleanup = cleanup;
    this.buildPath = join(dirname(this.#path), `.${prefixOfBytes(basename(this.#path), BUILD_NAME_BASENAME_BYTES_MAX)}.ringstore-load-${process.pid}.${randomBytes(4).toString('hex')}.partial`);
    cleanup.add(this.buildPath);
  }

  /** Puts the built store (closed: durable) at PATH, or fails leaving PATH as it was. */
  async publish(): Promise<void> {
    const madeMeanwhile = (): Error => commandError('ERR_STORE_LOCKED', `'${this.#path}' was made by someone else while the load ran: the loaded store is not put there`);
    try {
      // link(2) never replaces: a file made at PATH meanwhile (another load, a store) wins.
      linkSync(this.buildPath, this.#path);
      this.#cleanup.delete(this.buildPath);
      unlinkSync(this.buildPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw madeMeanwhile();
      throw error;
    }
    // The new name must survive a crash as the store's contents do.
    await syncDirectory(dirname(this.#path));
  }

  /** Removes the store being built (nothing once published). Idempotent. */
  abandon(): void {
    rmSync(this.buildPath, { force: true });
  }
}

/** Bytes (UTF-8) of PATH's name kept in the build's temporary name: with the rest it must fit NAME_MAX (255). */
const BUILD_NAME_BASENAME_BYTES_MAX = 128;
