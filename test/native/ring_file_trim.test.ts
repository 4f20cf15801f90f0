// RingFile#trim() on a regular file punches a hole: the range reads back as
// zeros, the blocks are released, and the file keeps its size.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';

import { allocAligned, IoUringActor } from '../../index.js';
import { assertAllZero, BACKENDS, makeTempDir, pattern, removeTempDir } from './helpers.js';

const BLOCK_SIZE = 4096;

for (const backend of BACKENDS) {
  describe(`RingFile#trim() on a regular file (${backend} backend)`, () => {
    let dir: string | undefined;
    let ring: IoUringActor | undefined;
    let fileCount = 0;

    before(() => {
      dir = makeTempDir();
      ring = IoUringActor.start({ backend });
    });

    after(async () => {
      await ring?.close();
      removeTempDir(dir);
    });

    /** A file of `blockCount` blocks of pattern data, on disk (not only in the page cache). */
    function writeDataFile(blockCount: number, seed: number): { path: string; data: Buffer } {
      const path = `${dir}/file-${fileCount++}`;
      const data = pattern(blockCount * BLOCK_SIZE, seed);
      writeFileSync(path, data, { flush: true });
      return { path, data };
    }

    it('makes the range read back as zeros and keeps the rest and the size', async () => {
      const { path, data } = writeDataFile(4, 1);
      const file = await ring!.open(path);
      await file.trim(BLOCK_SIZE, 2 * BLOCK_SIZE);

      const back = allocAligned(4 * BLOCK_SIZE);
      assert.equal(await file.read(back, 0), 4 * BLOCK_SIZE, 'the size was kept');
      assert.ok(back.subarray(0, BLOCK_SIZE).equals(data.subarray(0, BLOCK_SIZE)), 'block 0 was kept');
      assertAllZero(back.subarray(BLOCK_SIZE, 3 * BLOCK_SIZE), 'the trimmed blocks');
      assert.ok(back.subarray(3 * BLOCK_SIZE).equals(data.subarray(3 * BLOCK_SIZE)), 'block 3 was kept');

      assert.equal(statSync(path).size, 4 * BLOCK_SIZE);
      assert.equal((await file.stat()).sizeBytes, 4 * BLOCK_SIZE);
      const onDisk = readFileSync(path);
      assertAllZero(onDisk.subarray(BLOCK_SIZE, 3 * BLOCK_SIZE), 'the trimmed blocks as node:fs reads them');
      await file.close();
    });

    it('releases the blocks of the range (a hole, not written zeros)', async () => {
      const { path } = writeDataFile(16, 2);
      const file = await ring!.open(path);
      await file.datasync();
      const blocksBefore = statSync(path).blocks;
      await file.trim(0, 8 * BLOCK_SIZE);
      const blocksAfter = statSync(path).blocks;
      assert.ok(
        blocksAfter < blocksBefore,
        `st_blocks went from ${blocksBefore} to ${blocksAfter}; a punched hole frees the blocks`,
      );
      await file.close();
    });

    it('keeps a punched hole when the file is grown later (open with sizeBytes preallocates only what it adds; it refilled the holes, undoing a store\'s trims at each growth — found by a review)', async () => {
      const { path } = writeDataFile(256, 3);
      const file = await ring!.open(path);
      await file.datasync();
      await file.trim(0, 128 * BLOCK_SIZE);
      const blocksTrimmed = statSync(path).blocks;
      // Grown by 16 blocks through a second descriptor, as a store grows.
      const sizer = await ring!.open(path, { sizeBytes: 272 * BLOCK_SIZE });
      await sizer.close();
      assert.equal(statSync(path).size, 272 * BLOCK_SIZE);
      const added512 = statSync(path).blocks - blocksTrimmed;
      assert.ok(added512 <= (16 * BLOCK_SIZE) / 512 + 64, `the growth allocated ${added512 * 512} bytes: the new 64 KiB (and some metadata), not the 512 KiB hole again`);
      await file.close();
    });

    it('zeroes exactly a range that does not start or end on a block boundary', async () => {
      const { path, data } = writeDataFile(2, 3);
      const file = await ring!.open(path);
      await file.trim(100, 5000);
      const onDisk = readFileSync(path);
      assert.equal(onDisk.length, 2 * BLOCK_SIZE);
      assert.ok(onDisk.subarray(0, 100).equals(data.subarray(0, 100)));
      assertAllZero(onDisk.subarray(100, 5100), 'bytes 100..5100');
      assert.ok(onDisk.subarray(5100).equals(data.subarray(5100)));
      await file.close();
    });

    it('keeps the size when the range runs past end-of-file', async () => {
      const { path, data } = writeDataFile(2, 4);
      const file = await ring!.open(path);
      await file.trim(BLOCK_SIZE, 10 * BLOCK_SIZE);
      assert.equal(statSync(path).size, 2 * BLOCK_SIZE);
      const onDisk = readFileSync(path);
      assert.ok(onDisk.subarray(0, BLOCK_SIZE).equals(data.subarray(0, BLOCK_SIZE)));
      assertAllZero(onDisk.subarray(BLOCK_SIZE), 'block 1');
      await file.close();
    });

    it('works on a file opened for direct IO', async () => {
      const { path, data } = writeDataFile(3, 5);
      const file = await ring!.open(path, { direct: true });
      await file.trim(BLOCK_SIZE, BLOCK_SIZE);
      const back = allocAligned(3 * BLOCK_SIZE);
      assert.equal(await file.read(back, 0), 3 * BLOCK_SIZE);
      assert.ok(back.subarray(0, BLOCK_SIZE).equals(data.subarray(0, BLOCK_SIZE)));
      assertAllZero(back.subarray(BLOCK_SIZE, 2 * BLOCK_SIZE), 'the trimmed block');
      assert.ok(back.subarray(2 * BLOCK_SIZE).equals(data.subarray(2 * BLOCK_SIZE)));
      await file.close();
    });

    it('lets the range be written again afterwards', async () => {
      const { path } = writeDataFile(2, 6);
      const file = await ring!.open(path);
      await file.trim(0, 2 * BLOCK_SIZE);
      const fresh = pattern(BLOCK_SIZE, 7);
      await file.writeBlock(1, fresh);
      const onDisk = readFileSync(path);
      assertAllZero(onDisk.subarray(0, BLOCK_SIZE), 'block 0');
      assert.ok(onDisk.subarray(BLOCK_SIZE).equals(fresh));
      await file.close();
    });
  });
}
