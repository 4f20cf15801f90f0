// A store image opened for the tools that read it through format/ only
// (inspect, fsck, dump --salvage): plain positional reads with node:fs,
// never the engine, so they work on a store the engine refuses to open.
// The image is locked shared, as a read-only store is: a writer holds it
// exclusively, and a store being written cannot be checked from outside
// (below, openImage).
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync } from 'node:fs';

import { sysfsBlockDirectory } from '../../engine/block_device_sysfs.js';
import { namesFile, REPLACED_OPEN_ATTEMPTS_MAX } from '../../engine/ring_block_device.js';
import { pathError, StoreError } from '../../engine/store_error.js';
import { addon } from '../../native/addon.js';
import { RingSystemError, systemErrorCode } from '../../native/errors.js';
import type { ImageReader } from '../fsck.js';

/** flock's answer when another open holds a lock that excludes ours. */
const ERRNO_EWOULDBLOCK = 11;

/** Bytes one positional read may ask for; larger reads are split. */
const READ_PIECE_BYTES = 64 << 20;
/**
 * Where a read fails (a bad sector answers EIO, not wrong bytes), it is
 * read again in pieces of this many bytes, the smallest sector, so that
 * only the sectors that cannot be read are lost.
 */
const SECTOR_BYTES = 512;
/**
 * The errors of a read that say the medium could not give those bytes (a
 * bad sector, a failed integrity check), as opposed to a wrong read (a
 * directory, a closed file), which ends the tool as before.
 */
const MEDIA_ERROR_CODES: ReadonlySet<string> = new Set(['EIO', 'EILSEQ', 'EBADMSG', 'ENODATA', 'EREMOTEIO']);

/** The name of a read error's errno (systemErrorCode: Node's fs may name EBADMSG 'UNKNOWN'). */
function readErrorCode(error: unknown): string {
  return String(systemErrorCode(error));
}

function isMediaError(error: unknown): boolean {
  return MEDIA_ERROR_CODES.has(readErrorCode(error));
}

/** Bytes of the image that could not be read (read as zeros), with the error's code. */
export interface UnreadableRange {
  readonly position: number;
  readonly length: number;
  readonly code: string;
}

/**
 * The image at `path`, read with plain positional reads (tolerantImage:
 * unreadable sectors read as zeros and are listed), locked shared (flock)
 * until close(). A store open for writing holds the exclusive lock:
 * ERR_STORE_LOCKED. Read while it is written, the image changes under the
 * check — pages the writer frees are reused or punched out while the
 * check walks the tree — and fsck reported damage that was not there in
 * every one of 12 runs beside a checkpointing writer. Held shared, the
 * lock also keeps a writer from opening the store during the check; it
 * coexists with read-only stores and other checks. Not seen: a store open
 * through a loop device's backing file while the check reads the loop
 * device (the engine locks both names only when it opens the device).
 */
export function openImage(path: string): OpenedImage {
  // As the engine's open (RingBlockDevice.open): a file renamed over the
  // path between the open and the lock (load --create publishing its
  // build) is not the one to check; the check starts again at what the
  // path names now.
  for (let attempt = 1; attempt <= REPLACED_OPEN_ATTEMPTS_MAX; attempt++) {
    const opened = openImageOnce(path);
    if (opened !== undefined) return opened;
  }
  throw new StoreError('ERR_STORE_LOCKED', `'${path}' was replaced by another file ${REPLACED_OPEN_ATTEMPTS_MAX} times while it was being opened`);
}

interface OpenedImage {
  image: ImageReader;
  unreadable: readonly UnreadableRange[];
  close: () => void;
}

/** openImage's one try: undefined (nothing left open) when the path names another file by the time it is locked. */
function openImageOnce(path: string): OpenedImage | undefined {
  // O_NONBLOCK for the open alone: a FIFO opened for reading waits for a
  // writer (salvage of a FIFO hung: found by a review). Only a regular file
  // or a block device is read, as a store opens only those.
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw pathError(path, error, 'cannot open');
  }
  const kind = fstatSync(fd);
  if (!kind.isFile() && !kind.isBlockDevice()) {
    closeSync(fd);
    throw new StoreError('ERR_STORE_PATH', `'${path}' is not a regular file or a block device`);
  }
  let errno: number;
  let blockDevice: boolean;
  let stillNamed: boolean;
  try {
    errno = addon.lockShared(fd);
    blockDevice = fstatSync(fd).isBlockDevice();
    stillNamed = blockDevice || namesFile(path, fd);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  if (!stillNamed) {
    // Locked or refused, this file is not the one the path names now.
    closeSync(fd);
    return undefined;
  }
  if (errno !== 0) {
    closeSync(fd);
    if (errno === ERRNO_EWOULDBLOCK) {
      const holder = blockDevice ? 'a store or a tool (a partitioner)' : 'a store';
      throw new StoreError('ERR_STORE_LOCKED', `'${path}' is open for writing by ${holder} (in this process or another): close it first; read while it is written, the image changes under the check, which then reports damage that is not there`);
    }
    throw new RingSystemError(errno, 'flock', path);
  }
  try {
    const stat = fstatSync(fd);
    let sizeBytes = stat.size;
    if (stat.isBlockDevice()) {
      // fstat reports 0 for a block device.
      sizeBytes = blockDeviceSize(fd, stat.rdev);
    }
    const { image, unreadable } = tolerantImage(sizeBytes, (out, offset, length, position) => readSync(fd, out, offset, length, position));
    return { image, unreadable, close: () => closeSync(fd) };
  } catch (error) {
    // The descriptor, and its lock, go with the failure.
    closeSync(fd);
    throw error;
  }
}

/** A positional read as readSync does it: bytes read (0 at the end), or a throw. */
export type PositionalRead = (out: Buffer, offset: number, length: number, position: number) => number;

/**
 * An image of `sizeBytes` read through `readAt`. A sector that cannot be
 * read (a media error: EIO, …) reads as zeros and is listed in `unreadable` (in the order met; a
 * sector read twice is listed twice), so that the tools go on past it:
 * zeros fail the checksums of the pages and values over them, which the
 * tools then report and skip as damaged.
 */
export function tolerantImage(sizeBytes: number, readAt: PositionalRead): { image: ImageReader; unreadable: readonly UnreadableRange[] } {
  const unreadable: UnreadableRange[] = [];
  /** Reads `length` bytes at `position` into `out` at `offset` (fewer at the end). */
  const readInto = (out: Buffer, offset: number, length: number, position: number): void => {
    let done = 0;
    while (done < length) {
      const bytes = readAt(out, offset + done, Math.min(READ_PIECE_BYTES, length - done), position + done);
      if (bytes === 0) break;
      done += bytes;
    }
  };
  const image: ImageReader = {
    sizeBytes,
    read(position: number, length: number): Uint8Array {
      const out = Buffer.alloc(length);
      try {
        readInto(out, 0, length, position);
      } catch (error) {
        if (!isMediaError(error)) throw error;
        // Sector by sector, from the first sector the range touches.
        for (let offset = 0; offset < length; ) {
          const sectorEnd = Math.min(length, (Math.floor((position + offset) / SECTOR_BYTES) + 1) * SECTOR_BYTES - position);
          try {
            readInto(out, offset, sectorEnd - offset, position + offset);
          } catch (error) {
            if (!isMediaError(error)) throw error;
            out.fill(0, offset, sectorEnd);
            unreadable.push({ position: position + offset, length: sectorEnd - offset, code: readErrorCode(error) });
          }
          offset = sectorEnd;
        }
      }
      return out;
    },
  };
  return { image, unreadable };
}

/** One line per run of adjacent unreadable bytes: "bytes A-B (EIO)". */
export function describeUnreadable(unreadable: readonly UnreadableRange[]): string[] {
  const sorted = [...unreadable].sort((a, b) => a.position - b.position);
  const runs: { start: number; end: number; codes: Set<string> }[] = [];
  for (const range of sorted) {
    const last = runs[runs.length - 1];
    if (last !== undefined && range.position <= last.end) {
      last.end = Math.max(last.end, range.position + range.length);
      last.codes.add(range.code);
    } else {
      runs.push({ start: range.position, end: range.position + range.length, codes: new Set([range.code]) });
    }
  }
  return runs.map((run) => `bytes ${run.start}-${run.end - 1} could not be read (${[...run.codes].join(', ')}); read as zeros`);
}

/** Bytes in a sector as the kernel counts a block device's size in sysfs, whatever its logical sector size. */
const SYSFS_SECTOR_BYTES = 512;

function blockDeviceSize(fd: number, rdev: number): number {
  // The kernel's count, as the engine's stat has it: reading the end out
  // fails where the last sector is partial (a loop device of 4 KiB sectors
  // over a file not a multiple of them: EIO, found by a review).
  let sectors: number | undefined;
  try {
    sectors = Number(readFileSync(`${sysfsBlockDirectory(rdev)}/size`, 'utf8').trim());
  } catch {
    // No sysfs: read the end out below.
  }
  if (sectors !== undefined && Number.isSafeInteger(sectors) && sectors >= 0) return sectors * SYSFS_SECTOR_BYTES;
  // Node has no lseek(SEEK_END) or BLKGETSIZE64: find the last readable byte
  // by doubling, then bisecting. `readable` is always a readable offset and
  // `unreadable` never is (a read that fails counts as past the end).
  const probe = Buffer.alloc(1);
  const canRead = (offset: number): boolean => {
    try {
      return readSync(fd, probe, 0, 1, offset) === 1;
    } catch {
      return false;
    }
  };
  let readable = 0;
  let unreadable = 2 ** 20;
  while (canRead(unreadable)) {
    readable = unreadable;
    unreadable *= 2;
  }
  while (readable + 1 < unreadable) {
    const middle = Math.floor((readable + unreadable) / 2);
    if (canRead(middle)) readable = middle;
    else unreadable = middle;
  }
  return readable + 1;
}
