// BlockStore on a raw block device (a loop device over a 64 MiB file): the
// store takes the device's size, keeps its data across a reopen, issues
// trims (discards) for freed extents, and holds the device exclusively
// (O_EXCL). Needs root for losetup; skipped with a message otherwise.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';

import { BlockStore } from '../../engine/block_store.js';
import { isRoot, makeStoreDir, pattern, rejectsWithCode, removeStoreDir, skipBecause, waitForTrims } from './helpers.js';

const BACKING_BYTES = 64 << 20;

describe('BlockStore on a loop device', function () {
  let dir: string | undefined;
  let loopDevice: string | undefined;

  before(function () {
    if (!isRoot()) skipBecause(this, 'attaching a loop device needs root');
    dir = makeStoreDir();
    const backing = `${dir}/backing`;
    writeFileSync(backing, Buffer.alloc(0));
    truncateSync(backing, BACKING_BYTES);
    try {
      loopDevice = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
    } catch (error) {
      skipBecause(this, `losetup failed: ${(error as Error).message.split('\n')[0]}`);
    }
  });

  after(() => {
    if (loopDevice !== undefined) execFileSync('losetup', ['--detach', loopDevice]);
    removeStoreDir(dir);
  });

  it('refuses to make a store on a device with create: true, leaving it untouched, and formats it with BlockStore.format()', async () => {
    const before = readFileSync(loopDevice!);
    await rejectsWithCode(() => BlockStore.open(loopDevice!, { create: true, encoding: 'binary' }), 'ERR_STORE_NOT_FOUND');
    assert.ok(readFileSync(loopDevice!).equals(before), 'the device is unchanged');
    await BlockStore.format(loopDevice!);
  });

  it('creates a store the size of the device, and keeps its values across a reopen', async () => {
    const store = await BlockStore.open(loopDevice!, { encoding: 'binary' });
    try {
      assert.equal(store.stats().blocksTotal * 4096, BACKING_BYTES, 'the store spans the device');
      for (let i = 0; i < 20; i++) await store.put(`k${i}`, pattern(i % 2 === 0 ? 50_000 : 100, i));
      for (let i = 0; i < 20; i++) assert.ok(((await store.get(`k${i}`)) as Buffer).equals(pattern(i % 2 === 0 ? 50_000 : 100, i)), `k${i}`);
    } finally {
      await store.close();
    }
    const reopened = await BlockStore.open(loopDevice!, { encoding: 'binary', cacheSizeBytes: 0 });
    try {
      for (let i = 0; i < 20; i++) assert.ok(((await reopened.get(`k${i}`)) as Buffer).equals(pattern(i % 2 === 0 ? 50_000 : 100, i)), `k${i}`);
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('issues trims for the blocks of overwritten extent values', async () => {
    const store = await BlockStore.open(loopDevice!, { encoding: 'binary' });
    try {
      const before = store.stats().trimsIssued;
      for (let i = 0; i < 10; i++) await store.put('k0', pattern(50_000, 100 + i));
      await waitForTrims(store);
      assert.ok(store.stats().trimsIssued > before, `trimsIssued ${store.stats().trimsIssued}`);
      assert.ok(((await store.get('k0')) as Buffer).equals(pattern(50_000, 109)));
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });

  it('refuses a second open of the device with ERR_STORE_LOCKED', async () => {
    const store = await BlockStore.open(loopDevice!);
    try {
      await rejectsWithCode(() => BlockStore.open(loopDevice!), 'ERR_STORE_LOCKED');
    } finally {
      await store.close();
    }
  });

  it("refuses the loop device's backing file while a store is open on the device, and the device while one is open on the file", async () => {
    const onDevice = await BlockStore.open(loopDevice!);
    try {
      const error = await rejectsWithCode(() => BlockStore.open(`${dir}/backing`), 'ERR_STORE_LOCKED');
      assert.match(error.message, /open by another store/);
    } finally {
      await onDevice.close();
    }
    const onFile = await BlockStore.open(`${dir}/backing`);
    try {
      const error = await rejectsWithCode(() => BlockStore.open(loopDevice!), 'ERR_STORE_LOCKED');
      assert.match(error.message, /loop device over/);
    } finally {
      await onFile.close();
    }
  });

  it('refuses a read-only open of the device while a writer has it, and a writer while a reader has it', async () => {
    const writer = await BlockStore.open(loopDevice!);
    try {
      await rejectsWithCode(() => BlockStore.open(loopDevice!, { readOnly: true }), 'ERR_STORE_LOCKED');
    } finally {
      await writer.close();
    }
    const reader = await BlockStore.open(loopDevice!, { readOnly: true });
    try {
      await rejectsWithCode(() => BlockStore.open(loopDevice!), 'ERR_STORE_LOCKED');
    } finally {
      await reader.close();
    }
  });

  /** Attaches a loop device over `backing` for the length of `use`. */
  async function withLoopDevice(backing: string, use: (device: string) => Promise<void>): Promise<void> {
    const device = execFileSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' }).trim();
    try {
      await use(device);
    } finally {
      execFileSync('losetup', ['--detach', device]);
    }
  }

  it('excludes a loop device over this loop device, both ways (found by a review: both opened for writing)', async () => {
    await withLoopDevice(loopDevice!, async (outer) => {
      const inner = await BlockStore.open(loopDevice!);
      try {
        await rejectsWithCode(() => BlockStore.open(outer), 'ERR_STORE_LOCKED');
      } finally {
        await inner.close();
      }
      const overIt = await BlockStore.open(outer);
      try {
        await rejectsWithCode(() => BlockStore.open(loopDevice!), 'ERR_STORE_LOCKED');
      } finally {
        await overIt.close();
      }
    });
  });

  it('excludes the backing file of a loop device whose name ends in a space (found by a review: the name was trimmed, and no lock taken)', async () => {
    const backing = `${dir}/spaced backing `;
    writeFileSync(backing, Buffer.alloc(0));
    truncateSync(backing, BACKING_BYTES);
    await withLoopDevice(backing, async (device) => {
      await BlockStore.format(device);
      const onDevice = await BlockStore.open(device);
      try {
        await rejectsWithCode(() => BlockStore.open(backing), 'ERR_STORE_LOCKED');
      } finally {
        await onDevice.close();
      }
    });
  });
});
