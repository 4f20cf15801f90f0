// The file or block device a store lives in, and the rule for when a new
// store may be made in it.
//
// The rule: `create: true` formats only what holds nothing yet — a regular
// file this call creates, or an existing regular file of size 0. Anything
// else that is not a healthy store (a file of any size, zeros included, or a
// block device) is left byte for byte as it was: the store refuses it before
// writing or resizing anything. Formatting such a thing takes the explicit
// BlockStore.format(). The adversarial run that led here found create: true
// growing a truncated store back with zeros (every acknowledged write lost),
// preallocating a foreign text file to 1 GiB, and formatting over data whose
// first sectors happened to be zero (btrfs and ISO 9660 keep their first
// superblock 64 KiB and 32 KiB in): the head of a file cannot tell "never
// used" from "used, first sectors empty", only its size can.
//
// A new file is made without a name in the store's directory (O_TMPFILE),
// sized, locked, formatted and flushed there, and only then linked to its
// real name (linkat fails if the name exists, so two creators never both
// win). A crash during formatting therefore leaves no half-made store at the
// path — which the rule above would refuse forever — and nothing else: the
// file system frees a file that never got a name (after a crash: ext4's and
// xfs's recovery at the next mount, e2fsck on ext2). Where the file system
// cannot make such files (vfat, some network file systems) or there is no
// /proc to link one through, the file is made under a temporary name,
// `.NAME.ringstore-new-RANDOM`, instead; a crash then leaves that file
// behind (docs/store.md).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, lstat, open as openFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { SUPERBLOCK_MAGIC, SUPERBLOCK_SIZE } from '../format/constants.js';
import { hasSuperblockMagic } from '../format/superblock.js';
import type { IoUringActor } from '../native/io_uring_actor.js';
import { systemErrorCode } from '../native/errors.js';
import { syncDirectory } from '../native/ring_file.js';
import { PROC_SELF_FD, RingBlockDevice } from './ring_block_device.js';
import { pathError, STORE_ADVICE, StoreCorruptError, StoreError } from './store_error.js';

/** A sector: no healthy store file has a length that is not a multiple of it. */
const STORE_FILE_LENGTH_UNIT = 512;

export interface OpenedStoreFile {
  readonly device: RingBlockDevice;
  /**
   * Holds nothing yet (a new file, or a file of size 0 grown to the requested
   * size): the caller formats it and then calls publish(). Only ever true
   * with `create`.
   */
  readonly blank: boolean;
  /** Makes a newly formatted store visible at its path (and durable there). Once. */
  publish(): Promise<void>;
  /**
   * Gives up before publish(): closes the device and removes what opening
   * made — the new file, or the growth of an empty one (back to size 0).
   */
  abandon(): Promise<void>;
}

/**
 * Bytes (UTF-8) of the store file's name kept in its temporary name: the
 * rest (the dot, the suffix, TEMPORARY_NAME_RANDOM_BYTES in hex) must fit
 * NAME_MAX (255 bytes) beside them.
 */
const TEMPORARY_NAME_BASENAME_MAX = 128;
/** Random bytes in a temporary name: unique across threads, processes and a PID reused after a crash. */
const TEMPORARY_NAME_RANDOM_BYTES = 8;
/** Names tried before a create gives up (each collides with probability ~2^-64). */
const TEMPORARY_NAME_ATTEMPTS_MAX = 4;

/**
 * Opens `path` for exclusive use. With `create`, a missing file is made (as
 * a blank device of `sizeBytes`) and an empty one grown; nothing else is
 * ever resized or written here. With `readOnly` (never with `create`), the
 * file is opened O_RDONLY and locked shared (RingBlockDevice.open).
 */
export async function openStoreFile(
  ring: IoUringActor,
  path: string,
  options: { create: boolean; sizeBytes: number; readOnly?: boolean; punchHoles?: boolean },
): Promise<OpenedStoreFile> {
  if (options.readOnly === true && options.create) throw new Error('ringstore: a read-only open cannot create');
  let device: RingBlockDevice;
  try {
    device = await RingBlockDevice.open(ring, path, { readOnly: options.readOnly === true, punchHoles: options.punchHoles });
  } catch (error) {
    if (!(options.create && error instanceof StoreError && error.code === 'ERR_STORE_NOT_FOUND')) throw error;
    return createStoreFile(ring, path, options.sizeBytes);
  }
  try {
    if (device.isBlockDevice) return existing(device);
    const lengthBytes = device.fileLengthBytes;
    if (lengthBytes === 0) {
      if (!options.create) {
        throw new StoreError('ERR_STORE_NOT_FOUND', `'${path}' is an empty file (${STORE_ADVICE.createStoreInIt})`);
      }
      // Through the descriptor: the path may name another file by now (a
      // rename over it), which must not be cut.
      const restoreEmpty = (): Promise<void> => device.truncateToEmpty().catch(() => undefined);
      try {
        await device.grow(options.sizeBytes);
      } catch (error) {
        // A failed fallocate (ENOSPC) may keep what it allocated so far
        // (ext4 does): the file must be left empty, as it was.
        await restoreEmpty();
        throw error;
      }
      return {
        device,
        blank: true,
        publish: async () => undefined,
        abandon: async () => {
          await restoreEmpty();
          await device.close().catch(() => undefined);
        },
      };
    }
    if (lengthBytes % STORE_FILE_LENGTH_UNIT !== 0) await refuseOddLength(path, lengthBytes);
    return existing(device);
  } catch (error) {
    await device.close().catch(() => undefined);
    throw error;
  }
}

function existing(device: RingBlockDevice): OpenedStoreFile {
  return {
    device,
    blank: false,
    publish: async () => undefined,
    abandon: () => device.close().catch(() => undefined),
  };
}

/**
 * Makes a blank, locked store file to be published at `path`. If another
 * creator publishes first, publish() fails with ERR_STORE_LOCKED: that
 * creator holds its store open.
 */
async function createStoreFile(ring: IoUringActor, path: string, sizeBytes: number): Promise<OpenedStoreFile> {
  if ((await lstat(path).catch(() => undefined))?.isSymbolicLink() === true) {
    // open() followed it to nothing; link(2) would not follow it at all.
    throw new StoreError('ERR_STORE_PATH', `'${path}' is a symbolic link to a missing file: create the store at the link's target`);
  }
  const directoryPath = dirname(path);
  // Checked first: a directory that cannot be read cannot be fsynced, and
  // publish() found that out only once the store was linked there (EACCES,
  // uncoded, a store left at the path; found by a review). An fsync of a
  // directory with nothing new in it costs little.
  try {
    await syncDirectory(directoryPath);
  } catch (error) {
    if (isCode(error, 'EACCES')) {
      throw new StoreError('ERR_STORE_PATH', `'${path}': cannot read its directory, which a new store's name is made durable through (an fsync of it): EACCES`, {
        cause: error,
      });
    }
    throw pathError(path, error, 'cannot open its directory');
  }
  // Linked through /proc/self/fd (RingFile.linkTo), and grown through it (RingBlockDevice.grow).
  if (existsSync(PROC_SELF_FD)) {
    // Any refusal falls back to a named file, whose open then fails (or not)
    // with the errors the store has always given: EOPNOTSUPP where the file
    // system makes no unnamed files, EISDIR before Linux 3.11, EINVAL
    // without direct IO, ENOENT, EACCES.
    const device = await RingBlockDevice.openUnnamed(ring, directoryPath, path).catch(() => undefined);
    if (device !== undefined) return createUnnamedStoreFile(device, directoryPath, path, sizeBytes);
  }
  return createNamedStoreFile(ring, directoryPath, path, sizeBytes);
}

async function createUnnamedStoreFile(device: RingBlockDevice, directoryPath: string, path: string, sizeBytes: number): Promise<OpenedStoreFile> {
  try {
    await device.grow(sizeBytes);
  } catch (error) {
    // Closing frees it: it has no name.
    await device.close().catch(() => undefined);
    throw error;
  }
  return {
    device,
    blank: true,
    publish: async () => {
      try {
        await device.linkTo(path);
      } catch (error) {
        if (isCode(error, 'EEXIST')) throw lostCreateRace(path, error);
        throw pathError(path, error, 'cannot link the new store file to its name');
      }
      // The link raised the inode's link count from 0 only in memory; the
      // format's fdatasync wrote it as 0, and fsync of the directory writes
      // the entry, not the inode. On ext2, or ext4 without a journal, a power
      // loss then left a name on an inode of no links: the store gone,
      // e2fsck clearing the entry (found by a review). fsync writes the inode.
      await device.syncAll();
      await syncNewName(path, directoryPath);
    },
    abandon: () => device.close().catch(() => undefined),
  };
}

/** createStoreFile where a file cannot be made without a name: under a temporary one. */
async function createNamedStoreFile(ring: IoUringActor, directoryPath: string, path: string, sizeBytes: number): Promise<OpenedStoreFile> {
  let temporaryPath = '';
  for (let attempt = 1; ; attempt++) {
    const name = `.${prefixOfBytes(basename(path), TEMPORARY_NAME_BASENAME_MAX)}.ringstore-new-${randomBytes(TEMPORARY_NAME_RANDOM_BYTES).toString('hex')}`;
    temporaryPath = join(directoryPath, name);
    try {
      // 'wx': O_CREAT | O_EXCL, so the temporary name is ours alone.
      await (await openFile(temporaryPath, 'wx')).close();
      break;
    } catch (error) {
      if (isCode(error, 'EEXIST') && attempt < TEMPORARY_NAME_ATTEMPTS_MAX) continue;
      throw pathError(path, error, 'cannot create a file in its directory');
    }
  }
  let device: RingBlockDevice | undefined;
  try {
    // Named `path` in its errors from the start: the temporary name is gone once the store is published.
    device = await RingBlockDevice.open(ring, temporaryPath, { name: path, toWrite: true });
    await device.grow(sizeBytes);
  } catch (error) {
    await device?.close().catch(() => undefined);
    await unlink(temporaryPath).catch(() => undefined);
    throw renameInMessage(error, temporaryPath, path);
  }
  const newDevice = device;
  return {
    device: newDevice,
    blank: true,
    publish: () => publishNamedFile(ring, temporaryPath, path),
    abandon: async () => {
      await newDevice.close().catch(() => undefined);
      // Once published, only a second name of the store, or gone (renamed).
      await unlink(temporaryPath).catch(() => undefined);
    },
  };
}

/**
 * Gives the complete, durable file at `temporaryPath` the name `path`, never
 * replacing a file there (ERR_STORE_LOCKED: another creator made it), then
 * drops the temporary name and makes the new one durable. link(2), or on a
 * file system without hard links a rename over a claimed name
 * (publishByRename). Also how `ringstore load --create` publishes the store
 * it built (tools/cli/load_target.ts).
 */
export async function publishNamedFile(ring: IoUringActor, temporaryPath: string, path: string): Promise<void> {
  try {
    await link(temporaryPath, path);
  } catch (error) {
    if (isCode(error, 'EEXIST')) throw lostCreateRace(path, error);
    if (!HARD_LINKS_UNSUPPORTED.has(String(systemErrorCode(error)))) {
      throw pathError(path, error, 'cannot link the new store file to its name');
    }
    await publishByRename(ring, temporaryPath, path);
  }
  // A second name of the live store from here until unlink: a crash in
  // between leaves it behind (see docs/store.md).
  if (existsSync(temporaryPath)) await unlink(temporaryPath);
  await syncNewName(path, dirname(path));
}

/**
 * Makes the new name durable: it must survive a crash like the store's own
 * writes do. Its errors name the store (an EIO of this fsync was a bare
 * error without a path; found by a review): the store is at `path` then,
 * whole, but its name may not survive a crash.
 */
async function syncNewName(path: string, directoryPath: string): Promise<void> {
  try {
    await syncDirectory(directoryPath);
  } catch (error) {
    throw pathError(path, error, 'cannot flush its directory (the new store is there, its name perhaps not durable)');
  }
}

/** link(2) errors of file systems without hard links (vfat, some FUSE). */
const HARD_LINKS_UNSUPPORTED: ReadonlySet<string> = new Set(['EPERM', 'EOPNOTSUPP', 'ENOTSUP', 'ENOSYS']);

function lostCreateRace(path: string, cause: unknown): StoreError {
  return new StoreError('ERR_STORE_LOCKED', `'${path}' was created by another opener while this one formatted a store for it`, { cause });
}

/**
 * publish() without hard links: claim the name with an empty file this
 * process makes and locks on the same descriptor (RingBlockDevice.open's
 * createExclusive: O_CREAT | O_EXCL, then flock), then rename over it.
 * Another creator may open the claim between its making and its lock, and
 * may lock it first (our lock is then refused: a lost race, the claim
 * theirs to format) or even format a store in it and close it before our
 * lock (the claim is then not empty: a lost race too). Under our lock no
 * one else can write it, so renaming over it, or removing it, is safe.
 * (Found by reviews: versions that claimed with one descriptor and locked
 * another renamed over, or removed, another creator's new store.)
 */
async function publishByRename(ring: IoUringActor, temporaryPath: string, path: string): Promise<void> {
  let claim: RingBlockDevice;
  try {
    claim = await RingBlockDevice.open(ring, path, { createExclusive: true });
  } catch (error) {
    // Something is at `path` (EEXIST), or the claim's lock is another's.
    if (isCode(error, 'EEXIST') || (error instanceof StoreError && error.code === 'ERR_STORE_LOCKED')) throw lostCreateRace(path, error);
    // ENOENT from an exclusive create: the directory, not the file, is missing
    // (a claim removed after its making is made again by the open's retry).
    const failed = error instanceof StoreError && error.code === 'ERR_STORE_NOT_FOUND' ? pathError(path, error.cause, 'cannot create the new store file') : pathError(path, error, 'cannot create the new store file');
    // Not removed: made but not locked, it may be another creator's to format by now.
    if (existsSync(path)) failed.message += ` (an empty file made to claim '${path}' may be left there)`;
    throw failed;
  }
  try {
    if (claim.fileLengthBytes !== 0) throw lostCreateRace(path, undefined);
    try {
      await rename(temporaryPath, path);
    } catch (error) {
      // Our empty claim, locked: given back before the lock is (an opener
      // waiting for that lock finds the name gone, and starts again).
      await unlink(path).catch(() => undefined);
      throw pathError(path, error, 'cannot rename the new store file to its name');
    }
  } finally {
    await claim.close();
  }
}

/**
 * What tells one file from another made later at the same name: the inode,
 * and when it was made (statx's btime, which a link or a rename leaves
 * alone; 0 where the file system keeps none: the inode alone then). Not
 * proof where a freed inode is reused at once and times are kept to a clock
 * tick (ext2: a review found the same identity for 187 of 200 files made
 * 0.2 ms apart); removeOwnName checks it again under the file's lock, where
 * only a file removed and made again within that tick could pass.
 */
export interface FileIdentity {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly birthtimeNs: bigint;
}

function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.birthtimeNs === b.birthtimeNs;
}

/** The identity of the file at `path` (stat, following links), to hand to removeOwnName later. */
export async function fileIdentity(path: string): Promise<FileIdentity> {
  return stat(path, { bigint: true });
}

/**
 * Takes back the name `path` that publishNamedFile gave a new store file
 * (`file`: its identity, taken before) when publishing failed past the
 * link (the directory's flush): for a caller that promises to leave
 * nothing at `path` when it fails (a backup, `load --create`). Only that
 * file is removed, and only under its lock: once named, it may already be
 * open as a store elsewhere, whose writes would go to a file without a name
 * (found by a review). If it cannot be removed, `error`'s message says the
 * file is still there.
 */
export async function removeOwnName(ring: IoUringActor, path: string, file: FileIdentity, error: unknown): Promise<void> {
  const isOurs = async (): Promise<boolean> => {
    const there = await lstat(path, { bigint: true }).catch(() => undefined);
    return there !== undefined && sameFile(there, file);
  };
  if (!(await isOurs())) return;
  const leftThere = (why: string): void => {
    if (error instanceof Error) error.message += ` (the new store file at '${path}' is left there: ${why})`;
  };
  let held: RingBlockDevice;
  try {
    held = await RingBlockDevice.open(ring, path);
  } catch (lockError) {
    // Gone or replaced meanwhile: nothing of ours is left to remove or to report.
    if (!(await isOurs())) return;
    leftThere(lockError instanceof StoreError && lockError.code === 'ERR_STORE_LOCKED' ? 'it is open elsewhere' : (lockError as Error).message);
    return;
  }
  try {
    if (await isOurs()) await unlink(path);
  } catch (unlinkError) {
    leftThere((unlinkError as Error).message);
  } finally {
    await held.close();
  }
}

/**
 * A non-empty file whose length no store has: a store cut short (its
 * superblock magic at the start) is corrupt; anything else is not a store.
 */
async function refuseOddLength(path: string, lengthBytes: number): Promise<never> {
  const head = Buffer.alloc(SUPERBLOCK_SIZE);
  const handle = await openFile(path, 'r');
  let headBytes: number;
  try {
    headBytes = (await handle.read(head, 0, SUPERBLOCK_SIZE, 0)).bytesRead;
  } finally {
    await handle.close();
  }
  head.fill(0, headBytes);
  if (headBytes >= SUPERBLOCK_MAGIC.length && hasSuperblockMagic(head)) {
    throw new StoreCorruptError('superblock', `the file is ${lengthBytes} bytes, not a multiple of ${STORE_FILE_LENGTH_UNIT}: the store was cut short`, 0);
  }
  throw new StoreError('ERR_STORE_NOT_FOUND', `'${path}' holds ${lengthBytes} bytes that are not a ringstore; it is left untouched (${STORE_ADVICE.formatOverIt})`);
}

/**
 * The longest prefix of `name` of whole characters within `bytesMax` bytes of
 * UTF-8: NAME_MAX counts bytes, and 128 characters of a non-Latin name are up
 * to 512 (such a store could not be created; found by a review).
 */
export function prefixOfBytes(name: string, bytesMax: number): string {
  let prefix = '';
  let bytes = 0;
  for (const character of name) {
    bytes += Buffer.byteLength(character);
    if (bytes > bytesMax) break;
    prefix += character;
  }
  return prefix;
}

export function isCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as Error & { code?: unknown }).code === code;
}

export function renameInMessage(error: unknown, temporaryPath: string, path: string): unknown {
  if (error instanceof Error && error.message.includes(temporaryPath)) error.message = error.message.split(temporaryPath).join(path);
  return error;
}
