// Stores on loop devices of other kinds than block_store_block_device.test.ts's
// one: of 4 KiB sectors, read-only, stacked on another loop device, over a
// file. Each case comes from a review (session 45). Needs root for losetup;
// skipped with a message otherwise.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync, truncateSync, writeFileSync } from 'node:fs';

import { BlockStore } from '../../engine/block_store.js';
import { IoUringActor } from '../../native/io_uring_actor.js';
import { runCli } from '../tools/cli/run_cli.js';
import { isRoot, makeStoreDir, pattern, rejectsWithCode, removeStoreDir, skipBecause, waitForTrims } from './helpers.js';

describe('BlockStore on loop devices of other kinds', function () {
  this.timeout(60_000);
  let dir: string | undefined;
  const attached: string[] = [];

  before(function () {
    if (!isRoot()) skipBecause(this, 'attaching a loop device needs root');
    dir = makeStoreDir();
    try {
      execFileSync('losetup', ['--version'], { stdio: 'ignore' });
    } catch (error) {
      skipBecause(this, `losetup cannot run: ${(error as Error).message.split('\n')[0]}`);
    }
  });

  afterEach(() => {
    // Stacked devices go first: the last attached is the outermost.
    for (const device of attached.splice(0).reverse()) execFileSync('losetup', ['--detach', device]);
  });

  after(() => {
    removeStoreDir(dir);
  });

  /** A new sparse file of `sizeBytes` in the test's directory. */
  function backingFile(name: string, sizeBytes: number): string {
    const path = `${dir}/${name}`;
    writeFileSync(path, Buffer.alloc(0));
    truncateSync(path, sizeBytes);
    return path;
  }

  /** Attaches a loop device over `backing` (detached after the test). */
  function attach(backing: string, flags: string[] = []): string {
    const device = execFileSync('losetup', ['--find', '--show', ...flags, backing], { encoding: 'utf8' }).trim();
    attached.push(device);
    return device;
  }

  it('a format refused for its block size leaves the store it was refused over as it was (it erased its superblocks first)', async () => {
    const device = attach(backingFile('sectors-4k', 8 << 20), ['--sector-size', '4096']);
    await BlockStore.format(device);
    const store = await BlockStore.open(device, { encoding: 'binary' });
    await store.put('precious', pattern(100, 1));
    await store.close();
    await assert.rejects(BlockStore.format(device, { blockSize: 512 }), (error: Error & { code?: string }) => error.code === 'ERR_INVALID_ARG');
    const after = await BlockStore.open(device, { encoding: 'binary' });
    try {
      assert.ok(((await after.get('precious')) as Buffer).equals(pattern(100, 1)));
    } finally {
      await after.close();
    }
  });

  it('a store of 512-byte blocks reached through a device of 4 KiB sectors is ERR_STORE_UNSUPPORTED (not ERR_INVALID_ARG), naming what to do', async () => {
    const backing = backingFile('blocks-512', 8 << 20);
    await BlockStore.format(backing, { blockSize: 512 });
    const device = attach(backing, ['--sector-size', '4096']);
    const error = await rejectsWithCode(() => BlockStore.open(device), 'ERR_STORE_UNSUPPORTED');
    assert.match(error.message, /block size 512 .* alignment 4096/);
    assert.match(error.message, /dump --salvage/);
  });

  it('refuses a read-only loop device for writing (ERR_STORE_PATH), and reads the store on it with readOnly: true', async () => {
    const backing = backingFile('read-only', 8 << 20);
    await BlockStore.format(backing);
    const store = await BlockStore.open(backing, { encoding: 'binary' });
    await store.put('k', pattern(100, 2));
    await store.close();
    const device = attach(backing, ['--read-only']);
    const error = await rejectsWithCode(() => BlockStore.open(device), 'ERR_STORE_PATH');
    assert.match(error.message, /read-only.*readOnly: true/);
    await rejectsWithCode(() => BlockStore.format(device), 'ERR_STORE_PATH');
    const reader = await BlockStore.open(device, { readOnly: true, encoding: 'binary' });
    try {
      assert.ok(((await reader.get('k')) as Buffer).equals(pattern(100, 2)));
    } finally {
      await reader.close();
    }
    // A loop device over it is not marked read-only by the kernel: refused all the same (found by a review).
    const over = attach(device);
    const overError = await rejectsWithCode(() => BlockStore.open(over), 'ERR_STORE_PATH');
    assert.match(overError.message, /read-only/);
    await rejectsWithCode(() => BlockStore.format(over), 'ERR_STORE_PATH');
    const overReader = await BlockStore.open(over, { readOnly: true, encoding: 'binary' });
    try {
      // A writer while a reader holds the chain: refused for the read-only
      // device, at once (it waited 2 s for the reader's lock and was told
      // ERR_STORE_LOCKED; found by a review).
      const startedMs = performance.now();
      const whileRead = await rejectsWithCode(() => BlockStore.open(over), 'ERR_STORE_PATH');
      assert.match(whileRead.message, /read-only/);
      assert.ok(performance.now() - startedMs < 1_000, `refused after ${(performance.now() - startedMs).toFixed(0)} ms`);
    } finally {
      await overReader.close();
    }
  });

  it('refuses a loop device over a file whose name is not UTF-8 (ERR_STORE_UNSUPPORTED), every time: the refusal leaves no descriptor holding the device (the next open was ERR_STORE_LOCKED; found by a review)', async () => {
    // A name of bytes: made and attached by the shell, which passes them as they are.
    const nameBytes = Buffer.concat([Buffer.from(`${dir}/b`), Buffer.from([0xff]), Buffer.from('.img')]);
    writeFileSync(nameBytes, Buffer.alloc(0));
    truncateSync(nameBytes, 8 << 20);
    const device = execFileSync('sh', ['-c', 'losetup --find --show "$(printf "%s\\377.img" "$1")"', 'sh', `${dir}/b`], { encoding: 'utf8' }).trim();
    attached.push(device);
    const ring = IoUringActor.start();
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const error = await rejectsWithCode(() => BlockStore.open(device, { ring }), 'ERR_STORE_UNSUPPORTED');
        assert.match(error.message, /not UTF-8/);
      }
    } finally {
      await ring.close();
    }
  });

  it("excludes the file under a loop device over a loop device, both ways (the lock went one level down only: two writers, a damaged tree)", async () => {
    const backing = backingFile('stacked', 16 << 20);
    const inner = attach(backing);
    const outer = attach(inner);
    await BlockStore.format(outer);
    const onOuter = await BlockStore.open(outer);
    try {
      await rejectsWithCode(() => BlockStore.open(backing), 'ERR_STORE_LOCKED');
      await rejectsWithCode(() => BlockStore.open(backing, { readOnly: true }), 'ERR_STORE_LOCKED');
    } finally {
      await onOuter.close();
    }
    const onFile = await BlockStore.open(backing);
    try {
      await rejectsWithCode(() => BlockStore.open(outer), 'ERR_STORE_LOCKED');
    } finally {
      await onFile.close();
    }
  });

  it('does not discard on a loop device over a regular file: the file keeps its blocks (a hole there lost an acknowledged put once the file system filled)', async () => {
    const backing = backingFile('discard', 32 << 20);
    const device = attach(backing);
    await BlockStore.format(device);
    const store = await BlockStore.open(device, { encoding: 'binary' });
    try {
      for (let i = 0; i < 8; i++) await store.put(`k${i}`, pattern(1 << 20, i));
      await store.checkpoint();
      const allocatedBefore = statSync(backing).blocks;
      for (let i = 0; i < 8; i++) await store.delete(`k${i}`);
      await store.checkpoint();
      await store.checkpoint();
      await waitForTrims(store);
      assert.ok(store.stats().trimsIssued > 0, 'the store freed the values');
      // A discard would have punched ~8 MiB out of the file.
      assert.ok(statSync(backing).blocks >= allocatedBefore, `the file kept its blocks: ${statSync(backing).blocks} of 512 bytes, ${allocatedBefore} before`);
    } finally {
      await store.close();
    }
  });

  it('fsck, inspect and dump --salvage read a store on a device of 4 KiB sectors whose size is not a multiple of them (they failed with EIO)', async () => {
    // Whole 512-byte sectors, 3 of them past the last 4 KiB one.
    const device = attach(backingFile('odd-size', (4 << 20) + 3 * 512), ['--sector-size', '4096']);
    await BlockStore.format(device);
    const store = await BlockStore.open(device, { encoding: 'binary' });
    await store.put('k', pattern(100, 3));
    await store.close();
    for (const args of [['fsck', device], ['inspect', device], ['dump', '--salvage', device, `${dir}/salvaged.dump`]]) {
      const result = await runCli(args);
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    }
  });
});
