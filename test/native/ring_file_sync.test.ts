// Flushes: datasync(), sync() and writeAndSync() resolve once the kernel has
// made the data durable, and the data reads back afterwards. Durability
// itself needs a power cut to prove; these tests hold the contract's
// observable half on both backends.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';

import { allocAligned, IoUringActor, type RingFileOptions } from '../../index.js';
import { BACKENDS, fillPattern, makeTempDir, pattern, rejectsWith, removeTempDir } from './helpers.js';

const BLOCK_SIZE = 4096;

for (const backend of BACKENDS) {
  describe(`RingFile flushes (${backend} backend)`, () => {
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

    function freshPath(): string {
      return `${dir}/file-${fileCount++}`;
    }

    function patternBlock(seed: number): Buffer {
      const buffer = allocAligned(BLOCK_SIZE);
      fillPattern(buffer, seed);
      return buffer;
    }

    for (const direct of [false, true]) {
      const mode = direct ? 'direct' : 'buffered';
      const options: RingFileOptions = { create: true, direct };

      it(`datasync() resolves after writes, and the data reads back (${mode})`, async () => {
        const path = freshPath();
        const file = await ring!.open(path, options);
        const data = patternBlock(1);
        await file.write(data, BLOCK_SIZE);
        assert.equal(await file.datasync(), undefined);
        assert.ok((await file.readBlock(1)).equals(data));
        assert.ok(readFileSync(path).subarray(BLOCK_SIZE).equals(data));
        await file.close();
      });

      it(`sync() resolves after writes, and the data reads back (${mode})`, async () => {
        const path = freshPath();
        const file = await ring!.open(path, options);
        const data = patternBlock(2);
        await file.write(data, 0);
        assert.equal(await file.sync(), undefined);
        assert.ok((await file.readBlock(0)).equals(data));
        assert.ok(readFileSync(path).equals(data));
        await file.close();
      });

      it(`writeAndSync() resolves with the length, and the data reads back (${mode})`, async () => {
        const path = freshPath();
        const file = await ring!.open(path, options);
        const blocks = [patternBlock(3), patternBlock(4), patternBlock(5)];
        assert.equal(await file.writeAndSync(blocks, 0), 3 * BLOCK_SIZE);
        const back = allocAligned(3 * BLOCK_SIZE);
        assert.equal(await file.read(back, 0), 3 * BLOCK_SIZE);
        assert.ok(back.equals(Buffer.concat(blocks)));
        assert.ok(readFileSync(path).equals(back));
        await file.close();
      });
    }

    it('resolves many concurrent writeAndSync() calls, each with its own data', async () => {
      const path = freshPath();
      const file = await ring!.open(path, { create: true, direct: true });
      const blocks = Array.from({ length: 32 }, (_, index) => patternBlock(100 + index));
      const lengths = await Promise.all(blocks.map((block, index) => file.writeAndSync(block, index * BLOCK_SIZE)));
      assert.deepEqual(lengths, blocks.map(() => BLOCK_SIZE));
      assert.ok(readFileSync(path).equals(Buffer.concat(blocks)));
      await file.close();
    });

    it('resolves concurrent datasync() and sync() calls alongside writes', async () => {
      const path = freshPath();
      const file = await ring!.open(path, { create: true });
      const outcomes = await Promise.all([
        file.write(patternBlock(6), 0),
        file.datasync(),
        file.sync(),
        file.write(patternBlock(7), BLOCK_SIZE),
        file.datasync(),
      ]);
      assert.deepEqual(outcomes, [BLOCK_SIZE, undefined, undefined, BLOCK_SIZE, undefined]);
      await file.close();
    });

    it('writeAndSync() of an empty list is refused, not turned into a bare fdatasync', async () => {
      const file = await ring!.open(freshPath(), { create: true });
      const before = ring!.stats().submitted;
      await rejectsWith(() => file.writeAndSync([], 0), RangeError, 'ERR_INVALID_ARG');
      assert.equal(ring!.stats().submitted, before, 'nothing was submitted');
      await file.close();
    });

    it('writes of a file opened with dsync resolve and read back', async () => {
      const path = freshPath();
      const file = await ring!.open(path, { create: true, dsync: true });
      assert.equal(file.dsync, true);
      const data = patternBlock(8);
      assert.equal(await file.write(data, 0), BLOCK_SIZE);
      assert.ok(readFileSync(path).equals(data));
      await file.close();
    });

    it('sync() and datasync() are allowed on a readOnly file', async () => {
      const path = freshPath();
      writeFileSync(path, pattern(BLOCK_SIZE, 9));
      const file = await ring!.open(path, { readOnly: true });
      assert.equal(await file.sync(), undefined);
      assert.equal(await file.datasync(), undefined);
      await file.close();
    });
  });
}
