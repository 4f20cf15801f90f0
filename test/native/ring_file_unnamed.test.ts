// Files made without a name (`unnamed`, O_TMPFILE) and linkTo(): the file
// is invisible in its directory until linked, gone when closed unlinked, and
// a link never replaces an existing name. A new store is made this way, so
// that a crash or a terminated worker mid-create leaves nothing behind.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';

import { allocAligned, IoUringActor, RingError } from '../../index.js';
import { isRoot, makeTempDir, pattern, rejectsWith, removeTempDir, withOwnTmpfs } from './helpers.js';

const BLOCK_SIZE = 4096;
/** Large enough to see in the file system's free space beside other users of it. */
const UNNAMED_FILE_BYTES = 64 << 20;

describe('RingFile unnamed files and linkTo()', () => {
  let dir = '';
  let ring: IoUringActor;

  beforeEach(() => {
    dir = makeTempDir();
    ring = IoUringActor.start();
  });

  afterEach(async () => {
    await ring.close();
    removeTempDir(dir);
  });

  it('is invisible until linked, then reads back under its name what was written before', async () => {
    const file = await ring.open(dir, { unnamed: true, direct: true, sizeBytes: 2 * BLOCK_SIZE });
    try {
      const written = allocAligned(BLOCK_SIZE, BLOCK_SIZE);
      pattern(BLOCK_SIZE, 3).copy(written);
      await file.write(written, BLOCK_SIZE);
      assert.deepEqual(readdirSync(dir), [], 'no name before linkTo');
      await file.linkTo(`${dir}/named`);
      assert.deepEqual(readdirSync(dir), ['named']);
      const contents = readFileSync(`${dir}/named`);
      assert.equal(contents.length, 2 * BLOCK_SIZE, 'sizeBytes preallocated it');
      assert.ok(contents.subarray(BLOCK_SIZE).equals(written));
      // Still the same file through the descriptor: a write now shows under the name.
      written.fill(9);
      await file.write(written, 0);
      assert.ok(readFileSync(`${dir}/named`).subarray(0, BLOCK_SIZE).equals(written));
    } finally {
      await file.close();
    }
    assert.deepEqual(readdirSync(dir), ['named'], 'the name outlives the descriptor');
  });

  it('is gone when closed without a link: its space back to the file system, no descriptor left', async () => {
    // A directory never lists an unnamed file, open or not: what shows that
    // it is gone is the space it held and the descriptors (found by a review).
    // As root on a tmpfs of its own: `npm test` runs two files at once, and
    // the other one's writes and removals move a shared disk's free space.
    const fileDir = `${dir}/own`;
    mkdirSync(fileDir);
    const ownFileSystem = isRoot();
    const check = async (): Promise<void> => {
      const freeBytes = (): number => {
        const stats = statfsSync(fileDir);
        return stats.bfree * stats.bsize;
      };
      // Exact on a file system of its own; on a shared one, half the file's
      // size either way is left to the other users.
      const slackBytes = ownFileSystem ? 0 : UNNAMED_FILE_BYTES / 2;
      const descriptorsBefore = readdirSync('/proc/self/fd').length;
      const freeBefore = freeBytes();
      const file = await ring.open(fileDir, { unnamed: true, sizeBytes: UNNAMED_FILE_BYTES });
      await file.write(Buffer.from('nothing to keep'), 0);
      assert.ok(freeBytes() <= freeBefore - UNNAMED_FILE_BYTES + slackBytes, 'the open file holds the space sizeBytes preallocated');
      await file.close();
      assert.deepEqual(readdirSync(fileDir), []);
      assert.ok(freeBytes() >= freeBefore - slackBytes, 'closing it gave the space back');
      assert.equal(readdirSync('/proc/self/fd').length, descriptorsBefore);
    };
    // As root on a tmpfs of its own: `npm test` runs two files at once, and
    // the other one's writes and removals move a shared disk's free space.
    await (ownFileSystem ? withOwnTmpfs(fileDir, 2 * UNNAMED_FILE_BYTES, check) : check());
  });

  it('never replaces an existing name: EEXIST with errno and syscall, the old file untouched', async () => {
    writeFileSync(`${dir}/taken`, 'old');
    const file = await ring.open(dir, { unnamed: true });
    try {
      await file.write(Buffer.from('new'), 0);
      const error = await rejectsWith(() => file.linkTo(`${dir}/taken`), Error, 'EEXIST');
      assert.equal((error as Error & { syscall?: string }).syscall, 'linkat');
      assert.equal(readFileSync(`${dir}/taken`, 'utf8'), 'old');
      await file.linkTo(`${dir}/free`);
      assert.equal(readFileSync(`${dir}/free`, 'utf8'), 'new');
    } finally {
      await file.close();
    }
  });

  it('refuses bad arguments before anything reaches the kernel', async () => {
    await rejectsWith(() => ring.open(dir, { unnamed: true, create: true }), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => ring.open(dir, { unnamed: true, readOnly: true }), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => ring.open(dir, { unnamed: 'yes' as unknown as boolean }), TypeError, 'ERR_INVALID_ARG');
    const file = await ring.open(dir, { unnamed: true });
    for (const bad of ['', 'a\0b', 5, undefined, null]) {
      await rejectsWith(() => file.linkTo(bad as string), TypeError, 'ERR_INVALID_ARG');
    }
    await file.close();
    const closed = await rejectsWith(() => file.linkTo(`${dir}/late`), RingError, 'ERR_FILE_CLOSED');
    assert.match(closed.message, /closed/);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('gives the kernel errors of a path that is not a directory, or a link into a missing one', async () => {
    writeFileSync(`${dir}/plain`, '');
    await rejectsWith(() => ring.open(`${dir}/plain`, { unnamed: true }), Error, 'ENOTDIR');
    const file = await ring.open(dir, { unnamed: true });
    try {
      await rejectsWith(() => file.linkTo(`${dir}/missing/name`), Error, 'ENOENT');
    } finally {
      await file.close();
    }
  });
});
