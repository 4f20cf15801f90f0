// A store image opened for the tools that read it through format/ only
// (inspect, fsck, dump --salvage): plain positional reads with node:fs,
// never the engine, so they work on a store the engine refuses to open.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

import type { ImageReader } from '../fsck.js';

/** Bytes one positional read may ask for; larger reads are split. */
const READ_PIECE_BYTES = 64 << 20;

export function openImage(path: string): { image: ImageReader; close: () => void } {
  const fd = openSync(path, 'r');
  const stat = fstatSync(fd);
  let sizeBytes = stat.size;
  if (stat.isBlockDevice()) {
    // fstat reports 0 for a block device: find its end by reading.
    sizeBytes = blockDeviceSize(fd);
  }
  return {
    image: {
      sizeBytes,
      read(position: number, length: number): Uint8Array {
        const out = Buffer.alloc(length);
        let done = 0;
        while (done < length) {
          const bytes = readSync(fd, out, done, Math.min(READ_PIECE_BYTES, length - done), position + done);
          if (bytes === 0) break;
          done += bytes;
        }
        return out;
      },
    },
    close: () => closeSync(fd),
  };
}

function blockDeviceSize(fd: number): number {
  // Node has no lseek(SEEK_END) or BLKGETSIZE64: find the last readable byte
  // by doubling, then bisecting. `readable` is always a readable offset and
  // `unreadable` never is.
  const probe = Buffer.alloc(1);
  const canRead = (offset: number): boolean => readSync(fd, probe, 0, 1, offset) === 1;
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
