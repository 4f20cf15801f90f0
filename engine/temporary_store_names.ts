// The temporary names a new store file is made under
// (`.NAME.ringstore-new-RANDOM` beside `path`, store_file.ts), and the sweep
// of the ones a creator left behind.
//
// A creator that stops before it publishes — a crash, a kill, a worker
// terminated mid-create (a review counted 22 files left by 30 terminated
// workers) — leaves its temporary file, preallocated to the store's first
// size, and nothing else would ever delete it. So a create sweeps the
// leftovers of its own path first: a temporary of that path that is older
// than LEFTOVER_AGE_MS and whose lock it can take is no creator's any more.
// Such a file is either a half-made store or, after a crash between
// publishing and unlinking, a second name of the published store: deleting
// either loses nothing.
import { randomBytes } from 'node:crypto';
import { lstat, open as openFile, readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { addon } from '../native/addon.js';

/**
 * Bytes of the store's file name kept in a temporary name: the whole name
 * (the dot, the suffix, TEMPORARY_NAME_RANDOM_BYTES in hex) must fit NAME_MAX
 * (255) however long the store's name.
 */
const TEMPORARY_NAME_BASENAME_MAX = 128;
/** Random bytes in a temporary name (16 hex digits). */
const TEMPORARY_NAME_RANDOM_BYTES = 8;
const TEMPORARY_NAME_SUFFIX = '.ringstore-new-';
/**
 * A temporary younger than this is left alone even when unlocked: its
 * creator may be between making it and locking it (RingBlockDevice.open
 * locks right after the open). A creator takes milliseconds to seconds.
 */
export const LEFTOVER_AGE_MS = 60_000;

function temporaryPrefix(path: string): string {
  return `.${basename(path).slice(0, TEMPORARY_NAME_BASENAME_MAX)}${TEMPORARY_NAME_SUFFIX}`;
}

/** A fresh temporary name for a new store file at `path`, in its directory. */
export function temporaryStorePath(path: string): string {
  return join(dirname(path), `${temporaryPrefix(path)}${randomBytes(TEMPORARY_NAME_RANDOM_BYTES).toString('hex')}`);
}

/**
 * Deletes the temporaries of `path` that creators left: regular files of
 * its temporary names, older than LEFTOVER_AGE_MS, whose exclusive flock
 * this call can take (it holds the lock while it unlinks). Returns their
 * names. Best effort: a directory it cannot read, a file it cannot open or
 * lock, is left as it is.
 */
export async function sweepLeftoverTemporaries(path: string, nowMs = Date.now()): Promise<string[]> {
  const directory = dirname(path);
  const prefix = temporaryPrefix(path);
  const pattern = new RegExp(`^${escapeRegExp(prefix)}[0-9a-f]{${2 * TEMPORARY_NAME_RANDOM_BYTES}}$`);
  const names = await readdir(directory).catch(() => [] as string[]);
  const swept: string[] = [];
  for (const name of names) {
    if (!pattern.test(name)) continue;
    const candidate = join(directory, name);
    const stat = await lstat(candidate).catch(() => undefined);
    if (stat === undefined || !stat.isFile() || nowMs - stat.mtimeMs < LEFTOVER_AGE_MS) continue;
    const handle = await openFile(candidate, 'r').catch(() => undefined);
    if (handle === undefined) continue;
    try {
      // Held (by a creator, or by a store open through a second name) or not ours to take: left.
      if (addon.lockExclusive(handle.fd) !== 0) continue;
      await unlink(candidate);
      swept.push(name);
    } catch {
      // Gone meanwhile, or not ours to delete: left.
    } finally {
      await handle.close();
    }
  }
  return swept;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
