// RingFile on a block device: a loop device over a sparse 64 MiB file, with
// 4096-byte logical sectors (so device alignment differs from the 512 bytes
// many file systems accept). Needs root for losetup; skipped otherwise.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync, writeFileSync, truncateSync } from 'node:fs';

import { allocAligned, IoUringActor, RingError, RingSystemError, type RingFile } from '../../index.js';
import {
  assertAllZero,
  BACKENDS,
  fillPattern,
  isRoot,
  makeTempDir,
  rejectsWith,
  removeTempDir,
  skipBecause,
} from './helpers.js';

const DEVICE_SIZE_BYTES = 64 << 20;
const SECTOR_SIZE = 4096;

/** What the kernel says of the device, asked independently of the addon. */
function blockdev(flag: string, device: string): number {
  return Number(execFileSync('blockdev', [flag, device], { encoding: 'utf8' }).trim());
}

describe('RingFile on a block device (loop device)', () => {
  let dir: string | undefined;
  let imagePath = '';
  let device: string | undefined;

  before(function () {
    if (!isRoot()) skipBecause(this, 'block device tests attach a loop device (losetup), which needs root');
    dir = makeTempDir();
    imagePath = `${dir}/device.img`;
    writeFileSync(imagePath, '');
    truncateSync(imagePath, DEVICE_SIZE_BYTES);
    try {
      device = execFileSync('losetup', ['--find', '--show', '--sector-size', String(SECTOR_SIZE), imagePath], {
        encoding: 'utf8',
      }).trim();
    } catch (error) {
      skipBecause(this, `losetup could not attach a loop device here: ${(error as Error).message.split('\n')[0]}`);
    }
  });

  after(() => {
    if (device !== undefined) execFileSync('losetup', ['--detach', device]);
    removeTempDir(dir);
  });

  /** Reads the backing file, past the loop device, for an independent check. */
  function readImage(position: number, length: number): Buffer {
    const fd = openSync(imagePath, 'r');
    try {
      const buffer = Buffer.alloc(length);
      assert.equal(readSync(fd, buffer, 0, length, position), length);
      return buffer;
    } finally {
      closeSync(fd);
    }
  }

  function patternBlock(seed: number, sizeBytes = SECTOR_SIZE): Buffer {
    const buffer = allocAligned(sizeBytes);
    fillPattern(buffer, seed);
    return buffer;
  }

  for (const backend of BACKENDS) {
    describe(`opened for direct IO (${backend} backend)`, () => {
      let ring: IoUringActor | undefined;
      let file: RingFile;
      /** Seeds differ per backend so one backend's data cannot pass for the other's. */
      const seed = backend === 'io_uring' ? 1000 : 2000;

      before(async () => {
        ring = IoUringActor.start({ backend });
        file = await ring.open(device!, { direct: true });
      });

      after(async () => {
        await ring?.close();
      });

      it('refuses an exclusive create of the device with EEXIST: it exists', async () => {
        const refused = await ring!.open(device!, { direct: true, create: true, exclusive: true }).catch((error: unknown) => error);
        assert.ok(refused instanceof Error, `gave ${String(refused)}`);
        assert.equal((refused as { code?: unknown }).code, 'EEXIST');
      });

      it('reports a block device of the right size and block sizes', async () => {
        const stat = await file.stat();
        assert.equal(stat.isBlockDevice, true);
        assert.equal(stat.sizeBytes, DEVICE_SIZE_BYTES);
        assert.equal(stat.sizeBytes, blockdev('--getsize64', device!));
        assert.equal(stat.logicalBlockSize, blockdev('--getss', device!));
        assert.equal(stat.physicalBlockSize, blockdev('--getpbsz', device!));
        assert.equal(stat.logicalBlockSize, SECTOR_SIZE);
        assert.equal(file.isBlockDevice, true);
        assert.equal(file.logicalBlockSize, SECTOR_SIZE);
        assert.equal(file.offsetAlignment, SECTOR_SIZE);
        assert.ok(file.memoryAlignment > 0 && SECTOR_SIZE % file.memoryAlignment === 0);
      });

      it('round-trips write/read, writev/readv, writeBlock/readBlock and writeAndSync', async () => {
        const single = patternBlock(seed + 1, 2 * SECTOR_SIZE);
        assert.equal(await file.write(single, 0), 2 * SECTOR_SIZE);
        const back = allocAligned(2 * SECTOR_SIZE);
        assert.equal(await file.read(back, 0), 2 * SECTOR_SIZE);
        assert.ok(back.equals(single));

        const vector = [patternBlock(seed + 2), patternBlock(seed + 3)];
        assert.equal(await file.writev(vector, 4 * SECTOR_SIZE), 2 * SECTOR_SIZE);
        const scattered = [allocAligned(SECTOR_SIZE), allocAligned(SECTOR_SIZE)];
        assert.equal(await file.readv(scattered, 4 * SECTOR_SIZE), 2 * SECTOR_SIZE);
        assert.ok(Buffer.concat(scattered).equals(Buffer.concat(vector)));

        const block = patternBlock(seed + 4);
        await file.writeBlock(10, block);
        assert.ok((await file.readBlock(10)).equals(block));

        const durable = patternBlock(seed + 5);
        assert.equal(await file.writeAndSync(durable, 11 * SECTOR_SIZE), SECTOR_SIZE);
        await file.datasync();
        await file.sync();

        // The loop device wrote through to its backing file.
        assert.ok(readImage(0, 2 * SECTOR_SIZE).equals(single));
        assert.ok(readImage(4 * SECTOR_SIZE, 2 * SECTOR_SIZE).equals(Buffer.concat(vector)));
        assert.ok(readImage(10 * SECTOR_SIZE, SECTOR_SIZE).equals(block));
        assert.ok(readImage(11 * SECTOR_SIZE, SECTOR_SIZE).equals(durable));
      });

      it('reads and writes the last sector of the device', async () => {
        const last = DEVICE_SIZE_BYTES - SECTOR_SIZE;
        const block = patternBlock(seed + 6);
        assert.equal(await file.write(block, last), SECTOR_SIZE);
        const back = allocAligned(SECTOR_SIZE);
        assert.equal(await file.read(back, last), SECTOR_SIZE);
        assert.ok(back.equals(block));
      });

      it('trim() discards a range, which then reads back as zeros', async () => {
        const start = 20 * SECTOR_SIZE;
        const blocks = [0, 1, 2, 3].map((index) => patternBlock(seed + 10 + index));
        await file.writev(blocks, start);
        await file.trim(start + SECTOR_SIZE, 2 * SECTOR_SIZE);
        const back = allocAligned(4 * SECTOR_SIZE);
        assert.equal(await file.read(back, start), 4 * SECTOR_SIZE);
        assert.ok(back.subarray(0, SECTOR_SIZE).equals(blocks[0]), 'the sector before the range was kept');
        assertAllZero(back.subarray(SECTOR_SIZE, 3 * SECTOR_SIZE), 'the discarded sectors');
        assert.ok(back.subarray(3 * SECTOR_SIZE).equals(blocks[3]), 'the sector after the range was kept');
        assertAllZero(readImage(start + SECTOR_SIZE, 2 * SECTOR_SIZE), 'the discarded sectors in the backing file');
      });

      it('trim() rejects a length that is not whole logical blocks with RangeError ERR_INVALID_ARG', async () => {
        const error = await rejectsWith(() => file.trim(0, 512), RangeError, 'ERR_INVALID_ARG');
        assert.match(error.message, new RegExp(String(SECTOR_SIZE)));
      });

      it('rejects direct IO at a 512-byte offset that is not sector-aligned with ERR_UNALIGNED_DIRECT_IO', async () => {
        await rejectsWith(() => file.read(allocAligned(SECTOR_SIZE), 512), RangeError, 'ERR_UNALIGNED_DIRECT_IO');
        await rejectsWith(() => file.write(allocAligned(512), 0), RangeError, 'ERR_UNALIGNED_DIRECT_IO');
        await rejectsWith(() => file.trim(512, SECTOR_SIZE), RangeError, 'ERR_UNALIGNED_DIRECT_IO');
      });

      it('resolves a read at the end of the device with 0 bytes, and a straddling one with the bytes before it', async () => {
        assert.equal(await file.read(allocAligned(SECTOR_SIZE), DEVICE_SIZE_BYTES), 0);
        assert.equal(await file.read(allocAligned(2 * SECTOR_SIZE), DEVICE_SIZE_BYTES - SECTOR_SIZE), SECTOR_SIZE);
      });

      it('rejects a write at the end of the device with ENOSPC', async () => {
        const error = await rejectsWith(() => file.write(patternBlock(seed + 20), DEVICE_SIZE_BYTES), RingSystemError, 'ENOSPC');
        assert.equal(error.errno, -28);
        assert.equal(error.syscall, backend === 'io_uring' ? 'io_uring:write' : 'pwritev');
        assert.equal(error.path, device);
      });

      it('rejects a write that runs past the end of the device with ENOSPC', async () => {
        const error = await rejectsWith(
          () => file.write(patternBlock(seed + 21, 2 * SECTOR_SIZE), DEVICE_SIZE_BYTES - SECTOR_SIZE),
          RingSystemError,
          'ENOSPC',
        );
        assert.equal(error.errno, -28);
      });

      it('rejects a discard past the end of the device with EINVAL', async () => {
        const error = await rejectsWith(() => file.trim(DEVICE_SIZE_BYTES, SECTOR_SIZE), RingSystemError, 'EINVAL');
        assert.equal(error.errno, -22);
        assert.equal(error.path, device);
      });

      it('refuses a second open for writing with EBUSY (it is opened exclusively)', async () => {
        const error = await rejectsWith(() => ring!.open(device!, { direct: true }), RingSystemError, 'EBUSY');
        assert.equal(error.errno, -16);
        assert.equal(error.syscall, 'open');
        const buffered = await rejectsWith(() => ring!.open(device!), RingSystemError, 'EBUSY');
        assert.equal(buffered.syscall, 'open');
      });

      it('allows a readOnly open alongside, which sees the data', async () => {
        const block = patternBlock(seed + 30);
        await file.writeBlock(40, block);
        const reader = await ring!.open(device!, { readOnly: true, direct: true });
        try {
          assert.ok((await reader.readBlock(40)).equals(block));
          await rejectsWith(() => reader.writeBlock(40, block), RingError, 'ERR_FILE_READ_ONLY');
        } finally {
          await reader.close();
        }
      });

      it('refuses a blockSize smaller than the sector size at open() with ERR_UNALIGNED_DIRECT_IO', async () => {
        const options = { readOnly: true, direct: true, blockSize: 512 };
        await rejectsWith(() => ring!.open(device!, options), RangeError, 'ERR_UNALIGNED_DIRECT_IO');
      });
    });
  }

  it('can be opened for writing again once the previous opener closed it', async () => {
    const ring = IoUringActor.start();
    try {
      const first = await ring.open(device!, { direct: true });
      await first.close();
      const second = await ring.open(device!, { direct: true });
      await second.close();
    } finally {
      await ring.close();
    }
  });
});
