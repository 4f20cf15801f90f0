// RingFile#allocateHoles(): every hole of a regular file gets blocks of its
// own, its data and length unchanged — what a store needs of a file made
// with `truncate -s` or copied by a sparse-aware tool, where a write into a
// hole on a full file system would fail with ENOSPC. (A file system without
// fallocate, where zeros are written instead, is in
// test/engine/block_store_full_file_system.test.ts.)
import assert from 'node:assert/strict';
import { openSync, closeSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';

import { IoUringActor, RingError } from '../../index.js';
import { makeTempDir, pattern, rejectsWith, removeTempDir } from './helpers.js';

const BLOCK_SIZE = 4096;
const FILE_BYTES = 1 << 20;

describe('RingFile#allocateHoles()', () => {
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

  /** Bytes the file system has allocated to `path`. */
  const allocatedBytes = (path: string): number => statSync(path).blocks * 512;

  it('fills the holes of a sparse file, keeping its data and length, and resolves with the bytes allocated for them', async () => {
    const path = `${dir}/sparse`;
    writeFileSync(path, Buffer.alloc(0));
    truncateSync(path, FILE_BYTES);
    const data = pattern(BLOCK_SIZE, 5);
    const fd = openSync(path, 'r+');
    writeSync(fd, data, 0, BLOCK_SIZE, FILE_BYTES / 2);
    closeSync(fd);
    assert.ok(allocatedBytes(path) < FILE_BYTES / 2, `a sparse file to start with (${allocatedBytes(path)} bytes allocated)`);

    const file = await ring.open(path, { direct: true });
    try {
      const allocated = await file.allocateHoles();
      // The holes, and whatever blocks the file system's own records of the file took.
      assert.ok(allocated >= FILE_BYTES - BLOCK_SIZE && allocated <= FILE_BYTES + 16 * BLOCK_SIZE, `${allocated} bytes allocated`);
      assert.ok(allocatedBytes(path) >= FILE_BYTES, `${allocatedBytes(path)} bytes allocated of ${FILE_BYTES}`);
      assert.equal(statSync(path).size, FILE_BYTES);
      const contents = readFileSync(path);
      assert.ok(contents.subarray(FILE_BYTES / 2, FILE_BYTES / 2 + BLOCK_SIZE).equals(data), 'the data is kept');
      assert.equal(contents.subarray(0, FILE_BYTES / 2).some((byte) => byte !== 0), false, 'the holes still read as zeros');
      assert.equal(await file.allocateHoles(), 0, 'no hole left');
    } finally {
      await file.close();
    }
  });

  it('resolves 0 and changes nothing for a file without holes, written or only preallocated', async () => {
    const path = `${dir}/dense`;
    const data = pattern(4 * BLOCK_SIZE, 6);
    writeFileSync(path, data, { flush: true });
    const file = await ring.open(path);
    try {
      assert.equal(await file.allocateHoles(), 0);
    } finally {
      await file.close();
    }
    assert.ok(readFileSync(path).equals(data));
    // Preallocated and never written: ext4 and xfs report such ranges as holes to SEEK_HOLE.
    const preallocated = await ring.open(`${dir}/preallocated`, { create: true, sizeBytes: FILE_BYTES });
    try {
      assert.equal(await preallocated.allocateHoles(), 0);
    } finally {
      await preallocated.close();
    }
  });

  it('is refused on a read-only or closed file before anything reaches the kernel', async () => {
    const path = `${dir}/refused`;
    writeFileSync(path, Buffer.alloc(0));
    truncateSync(path, FILE_BYTES);
    const readOnly = await ring.open(path, { readOnly: true });
    await rejectsWith(() => readOnly.allocateHoles(), RingError, 'ERR_FILE_READ_ONLY');
    await readOnly.close();
    const file = await ring.open(path);
    await file.close();
    await rejectsWith(() => file.allocateHoles(), RingError, 'ERR_FILE_CLOSED');
    assert.ok(allocatedBytes(path) < FILE_BYTES / 2, 'still sparse');
  });
});
