// The files under a loop device: a store on /dev/loopN locks the file the
// loop device reads (and, for a loop device over a loop device, every file
// down the chain), so that a store opened on the file itself and one on the
// device exclude each other; and a loop device over a regular file gets no
// discard (the loop driver punches holes the full file system may not fill).
import { readFile, stat as fsStat } from 'node:fs/promises';

import type { IoUringActor } from '../native/io_uring_actor.js';
import type { RingFile } from '../native/ring_file.js';
import { decodeDeviceNumber, isPartition, isReadOnlyBlockDevice, sysfsBlockDirectory } from './block_device_sysfs.js';
import { tryLock } from './file_lock.js';
import { StoreError } from './store_error.js';

/**
 * The major number of loop devices (Documentation/admin-guide/devices.txt);
 * their partitions have the extended major 259 and are found through sysfs.
 */
const LOOP_MAJOR = 7;

/** A loop device's backing-file name, read exactly (a name is bytes; one that is not UTF-8 is refused). */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** What a block device is over, when it is a loop device: the backing files it holds locked, and whether the last is a regular file. */
export interface LoopBacking {
  files: readonly RingFile[];
  /** The chain of loop devices ends at a regular file (or at one that could not be opened: assumed to be). */
  overRegularFile: boolean;
}

export const NO_LOOP_BACKING: LoopBacking = { files: [], overRegularFile: false };

/**
 * Loop devices over loop devices, at most: beyond it the open is refused
 * (the kernel forbids a cycle; this bounds the walk however the devices
 * were stacked).
 */
const LOOP_CHAIN_DEPTH_MAX = 8;

/**
 * For a loop device (or a partition of one): opens and flocks its backing
 * file (`shared`: LOCK_SH, for a read-only store), as a store opened on that
 * file would, so the two names of the same bytes exclude each other — and,
 * when that backing file is itself a loop device, its backing file, down to
 * the last (found by a review: a store on a loop device over /dev/loopA,
 * which locked only /dev/loopA, and one on /dev/loopA's file both opened for
 * writing, and the tree was damaged). Nothing for other block devices, or a
 * loop device whose backing file is gone.
 */
export async function lockLoopBacking(ring: IoUringActor, path: string, shared: boolean): Promise<LoopBacking> {
  const files: RingFile[] = [];
  try {
    let device = path;
    for (let depth = 0; ; depth++) {
      const backing = await loopBackingPath(device);
      if (backing === undefined) return { files, overRegularFile: depth > 0 && !files[files.length - 1]!.isBlockDevice };
      if (depth === LOOP_CHAIN_DEPTH_MAX) {
        throw new StoreError('ERR_STORE_UNSUPPORTED', `'${path}' is a loop device over more than ${LOOP_CHAIN_DEPTH_MAX} loop devices; the store cannot lock every name of its bytes`);
      }
      if (backing === UNREACHABLE) return { files, overRegularFile: true };
      let file: RingFile;
      try {
        file = await ring.open(backing, { readOnly: true });
      } catch {
        // Moved or not reachable from this mount namespace: unlocked, as
        // before; a file, as far as trims go (the safe guess).
        return { files, overRegularFile: true };
      }
      if (!(await tryLock(file, shared))) {
        await file.close();
        throw new StoreError('ERR_STORE_LOCKED', `'${path}' is a loop device over '${backing}', which is open by another store`);
      }
      files.push(file);
      if (!file.isBlockDevice) return { files, overRegularFile: true };
      // A loop device over a read-only one is not marked read-only itself
      // (found by a review: its first write failed with EIO, every reopen too).
      if (!shared && (await isReadOnlyBlockDevice(backing))) {
        throw new StoreError('ERR_STORE_PATH', `'${path}': cannot open for writing: it is a loop device over '${backing}', which is read-only; open with readOnly: true to read the store`);
      }
      device = backing;
    }
  } catch (error) {
    await closeAll(files);
    throw error;
  }
}

/**
 * The first read-only block device down the loop chain under `path` (the
 * kernel does not mark a loop device over a read-only one read-only
 * itself), or undefined. Asked before any lock is taken: a writer of such
 * a chain is refused as it is, not after a lock wait a reader holds.
 */
export async function readOnlyLoopBacking(path: string): Promise<string | undefined> {
  let device = path;
  for (let depth = 0; depth < LOOP_CHAIN_DEPTH_MAX; depth++) {
    const backing = await loopBackingPath(device);
    if (backing === undefined || backing === UNREACHABLE) return undefined;
    const isBlockDevice = await fsStat(backing).then(
      (stat) => stat.isBlockDevice(),
      () => false,
    );
    if (!isBlockDevice) return undefined;
    if (await isReadOnlyBlockDevice(backing)) return backing;
    device = backing;
  }
  return undefined;
}

/** A loop device's backing file that no longer has its name (`(deleted)`). */
const UNREACHABLE = Symbol('unreachable backing file');

/**
 * The backing file of `path` if it is a loop device (or a partition of one):
 * its path; UNREACHABLE if it was deleted; undefined for any other device.
 */
async function loopBackingPath(path: string): Promise<string | typeof UNREACHABLE | undefined> {
  const { rdev } = await fsStat(path);
  const { major } = decodeDeviceNumber(rdev);
  const sysfs = sysfsBlockDirectory(rdev);
  const candidates = [`${sysfs}/loop/backing_file`, `${sysfs}/../loop/backing_file`];
  let backingPath: string | undefined;
  for (const candidate of candidates) {
    const bytes = await readFile(candidate).catch(() => undefined);
    if (bytes === undefined) continue;
    // The kernel ends the name with a newline; spaces are the name's own.
    const name = bytes[bytes.length - 1] === 0x0a ? bytes.subarray(0, bytes.length - 1) : bytes;
    try {
      backingPath = STRICT_UTF8.decode(name);
    } catch {
      // Decoded loosely it would name another path, and the lock be skipped.
      throw new StoreError('ERR_STORE_UNSUPPORTED', `'${path}' is a loop device over a file whose name is not UTF-8; the store cannot lock that file (rename it)`);
    }
    break;
  }
  if (backingPath === undefined) return undefined;
  if (major !== LOOP_MAJOR && !(await isPartition(sysfs))) return undefined;
  return backingPath.endsWith(' (deleted)') ? UNREACHABLE : backingPath;
}

/** Closes `files`, each whatever the others met. */
export async function closeAll(files: readonly RingFile[]): Promise<void> {
  for (const file of files) await file.close().catch(() => undefined);
}
