// BlockStore.open() on real files: a missing path or a file that holds no
// ringstore is ERR_STORE_NOT_FOUND without `create`; a file whose first block
// carries the superblock magic but no valid copy is ERR_STORE_CORRUPT
// (engine/recovery.ts probeSuperblocks: no magic in either slot means
// "not a store", a magic means "a damaged store"); options are checked
// before any IO; and a new store must have room for its WAL and some data.
// What create: true may and may not touch is block_store_create_rules.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

import { BlockStore } from '../../engine/block_store.js';
import { SUPERBLOCK_MAGIC, WAL_SIZE_BYTES_MAX } from '../../format/constants.js';
import { makeStoreDir, openSmallStore, pattern, rejectsCorrupt, rejectsWith, rejectsWithCode, removeStoreDir } from './helpers.js';

describe('BlockStore.open()', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeStoreDir();
  });

  after(() => {
    removeStoreDir(dir);
  });

  it('refuses a missing path without create with ERR_STORE_NOT_FOUND, creating nothing', async () => {
    await rejectsWithCode(() => BlockStore.open(`${dir}/missing`), 'ERR_STORE_NOT_FOUND');
    assert.equal(existsSync(`${dir}/missing`), false);
  });

  it('refuses a missing directory even with create, with ERR_STORE_PATH and the system error as cause', async () => {
    const error = await rejectsWithCode(() => BlockStore.open(`${dir}/no-such-dir/store`, { create: true, sizeBytes: 32 << 20 }), 'ERR_STORE_PATH');
    assert.equal((error.cause as { code?: string }).code, 'ENOENT');
    assert.match(error.message, /directory does not exist/);
  });

  it('creates a store with create, and opens it again without', async () => {
    const path = `${dir}/created`;
    const store = await openSmallStore(path);
    await store.put('k', 'v');
    await store.close();
    const reopened = await BlockStore.open(path);
    assert.equal(await reopened.get('k'), 'v');
    await reopened.close();
  });

  it('refuses a file of zeros without create with ERR_STORE_NOT_FOUND, leaving it unchanged', async () => {
    const path = `${dir}/zeros`;
    writeFileSync(path, Buffer.alloc(1 << 20));
    await rejectsWithCode(() => BlockStore.open(path), 'ERR_STORE_NOT_FOUND');
    assert.ok(readFileSync(path).equals(Buffer.alloc(1 << 20)));
  });

  it('refuses an empty file without create with ERR_STORE_NOT_FOUND', async () => {
    const path = `${dir}/empty-file`;
    writeFileSync(path, Buffer.alloc(0));
    await rejectsWithCode(() => BlockStore.open(path), 'ERR_STORE_NOT_FOUND');
  });

  it('refuses random bytes without the superblock magic with ERR_STORE_NOT_FOUND (not a ringstore), leaving them unchanged', async () => {
    const path = `${dir}/garbage`;
    const garbage = pattern(1 << 20, 1);
    assert.notDeepEqual([...garbage.subarray(0, 8)], [...SUPERBLOCK_MAGIC]);
    writeFileSync(path, garbage);
    await rejectsWithCode(() => BlockStore.open(path), 'ERR_STORE_NOT_FOUND');
    assert.ok(readFileSync(path).equals(garbage));
  });

  it('refuses random bytes behind the superblock magic with ERR_STORE_CORRUPT naming the superblock', async () => {
    const path = `${dir}/magic-garbage`;
    const garbage = pattern(1 << 20, 2);
    garbage.set(SUPERBLOCK_MAGIC, 0);
    writeFileSync(path, garbage);
    const error = await rejectsCorrupt(() => BlockStore.open(path), 'superblock');
    assert.match(error.message, /no valid copy/);
    await rejectsCorrupt(() => BlockStore.open(path, { create: true, sizeBytes: garbage.length }), 'superblock');
    assert.ok(readFileSync(path).equals(garbage), 'a damaged store is never reformatted');
  });

  it('refuses a path that is a directory with ERR_STORE_PATH, with or without create', async () => {
    for (const create of [false, true]) {
      const error = await rejectsWithCode(() => BlockStore.open(dir!, { create }), 'ERR_STORE_PATH');
      assert.equal((error.cause as { code?: string }).code, 'EISDIR');
    }
  });

  it('refuses a FIFO and a character device with ERR_STORE_PATH, not as a file system without direct IO (found by a review)', async () => {
    const fifo = `${dir}/fifo`;
    execFileSync('mkfifo', [fifo]);
    for (const path of [fifo, '/dev/null']) {
      for (const create of [false, true]) {
        const error = await rejectsWithCode(() => BlockStore.open(path, { create }), 'ERR_STORE_PATH');
        assert.match(error.message, /not a regular file or a block device/, path);
      }
    }
  });

  it('refuses a new store too small for a WAL and data as an argument error, creating nothing', async () => {
    const error = await rejectsWith(() => BlockStore.open(`${dir}/tiny`, { create: true, sizeBytes: 64 << 10 }), RangeError, 'ERR_INVALID_ARG');
    assert.match(error.message, /at least 524288 bytes/);
    await rejectsWith(() => BlockStore.open(`${dir}/tiny`, { create: true, sizeBytes: 4096 }), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => BlockStore.open(`${dir}/tiny`, { create: true, sizeBytes: 1 << 20, walSizeBytes: 1 << 20 }), RangeError, 'ERR_INVALID_ARG');
    assert.equal(existsSync(`${dir}/tiny`), false);
  });

  it('refuses a WAL larger than the format allows (1 GiB), where it was once cut to that size without a word', async () => {
    const tooLarge = WAL_SIZE_BYTES_MAX + 4096;
    const error = await rejectsWith(() => BlockStore.open(`${dir}/big-wal`, { create: true, sizeBytes: 4 * WAL_SIZE_BYTES_MAX, walSizeBytes: tooLarge }), RangeError, 'ERR_INVALID_ARG');
    assert.match(error.message, /walSizeBytes/);
    await rejectsWith(() => BlockStore.format(`${dir}/big-wal`, { sizeBytes: 4 * WAL_SIZE_BYTES_MAX, walSizeBytes: tooLarge }), RangeError, 'ERR_INVALID_ARG');
    assert.equal(existsSync(`${dir}/big-wal`), false);
  });

  it('checks its arguments before any IO: ERR_INVALID_ARG as TypeError or RangeError', async () => {
    const path = `${dir}/bad-options`;
    await rejectsWith(() => BlockStore.open(''), TypeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => BlockStore.open(path, null as never), TypeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => BlockStore.open(path, { create: 'yes' as never }), TypeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => BlockStore.open(path, { create: true, blockSize: 3000 }), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => BlockStore.open(path, { create: true, blockSize: 1 << 17 }), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => BlockStore.open(path, { create: true, sizeBytes: -1 }), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => BlockStore.open(path, { create: true, encoding: 'yaml' as never }), RangeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => BlockStore.open(path, { create: true, ring: {} as never }), TypeError, 'ERR_INVALID_ARG');
    assert.equal(existsSync(path), false, 'no file was created');
  });

  it("keeps the store's own block size and WAL when reopened with other options", async () => {
    const path = `${dir}/geometry`;
    const store = await openSmallStore(path, { blockSize: 8192, walSizeBytes: 256 << 10 });
    await store.put('k', 'v');
    const { blocksTotal } = store.stats();
    await store.close();
    const reopened = await BlockStore.open(path, { blockSize: 512, walSizeBytes: 1 << 20, sizeBytes: 1 << 30 });
    try {
      assert.equal(reopened.stats().blocksTotal, blocksTotal);
      assert.equal(await reopened.get('k'), 'v');
    } finally {
      await reopened.close();
    }
  });
});
