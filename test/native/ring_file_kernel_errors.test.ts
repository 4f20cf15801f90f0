// Errors the kernel returns reach the caller as RingSystemError with the
// errno's code, the negative errno, the system call that failed and the path.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, statfsSync } from 'node:fs';

import { IoUringActor, type RingBackend, RingSystemError } from '../../index.js';
import { BACKENDS, isRoot, makeTempDir, pattern, rejectsWith, removeTempDir, skipBecause } from './helpers.js';

/** The system call each backend names for a failed read, write and linked write+sync. */
const SYSCALLS: Record<RingBackend, { read: string; write: string; writeAndSync: string }> = {
  io_uring: { read: 'io_uring:read', write: 'io_uring:write', writeAndSync: 'io_uring:writev' },
  threads: { read: 'preadv', write: 'pwritev', writeAndSync: 'pwritev' },
};

/** f_type of ext4 (and ext2/3), from linux/magic.h. */
const EXT4_SUPER_MAGIC = 0xef53;
/** Size of the tmpfs the ENOSPC tests fill. */
const SMALL_FS_SIZE_BYTES = 1 << 20;

function assertSystemError(error: Error, code: string, errno: number, syscall: string, path: string): void {
  assert.ok(error instanceof RingSystemError);
  assert.equal(error.code, code);
  assert.equal(error.errno, errno);
  assert.equal(error.syscall, syscall);
  assert.equal(error.path, path);
  assert.ok(error.message.includes(code) && error.message.includes(syscall) && error.message.includes(path), error.message);
}

describe('RingFile#open() errors', () => {
  let dir: string | undefined;
  let ring: IoUringActor | undefined;

  before(() => {
    dir = makeTempDir();
    ring = IoUringActor.start();
  });

  after(async () => {
    await ring?.close();
    removeTempDir(dir);
  });

  it('rejects a missing file opened without create with ENOENT from open', async () => {
    const path = `${dir}/missing`;
    const error = await rejectsWith(() => ring!.open(path), RingSystemError, 'ENOENT');
    assertSystemError(error, 'ENOENT', -2, 'open', path);
  });

  it('rejects a file in a missing directory, even with create, with ENOENT', async () => {
    const path = `${dir}/no-such-dir/file`;
    const error = await rejectsWith(() => ring!.open(path, { create: true }), RingSystemError, 'ENOENT');
    assertSystemError(error, 'ENOENT', -2, 'open', path);
  });

  it('rejects a directory opened for writing with EISDIR', async () => {
    const path = `${dir}/a-directory`;
    mkdirSync(path);
    const error = await rejectsWith(() => ring!.open(path), RingSystemError, 'EISDIR');
    assertSystemError(error, 'EISDIR', -21, 'open', path);
  });
});

for (const backend of BACKENDS) {
  describe(`RingFile kernel errors (${backend} backend)`, () => {
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

    it('rejects IO on a descriptor closed behind the file\'s back with EBADF', async () => {
      const path = `${dir}/file-${fileCount++}`;
      const file = await ring!.open(path, { create: true });
      closeSync(file.fd);
      const readError = await rejectsWith(() => file.read(Buffer.alloc(16), 0), RingSystemError, 'EBADF');
      assertSystemError(readError, 'EBADF', -9, SYSCALLS[backend].read, path);
      const writeError = await rejectsWith(() => file.write(Buffer.alloc(16), 0), RingSystemError, 'EBADF');
      assertSystemError(writeError, 'EBADF', -9, SYSCALLS[backend].write, path);
      // The file's own close now finds the descriptor gone, and says so.
      const closeError = await rejectsWith(() => file.close(), RingSystemError, 'EBADF');
      assertSystemError(closeError, 'EBADF', -9, 'close', path);
      assert.equal(file.closed, true);
    });

    it('opens a file whose descriptor number was closed behind another file\'s back (the process aborted on an assert; found by a review)', () => {
      // In a child: the abort took the whole process with it.
      const script = `
        import { closeSync, readFileSync } from 'node:fs';
        const { IoUringActor } = await import(${JSON.stringify(new URL('../../index.js', import.meta.url).href)});
        const ring = IoUringActor.start({ backend: ${JSON.stringify(backend)} });
        const first = await ring.open(${JSON.stringify(`${dir}/behind-a`)}, { create: true });
        const number = first.fd;
        closeSync(number);
        const second = await ring.open(${JSON.stringify(`${dir}/behind-b`)}, { create: true });
        if (second.fd !== number) throw new Error('the kernel gave another number: nothing tested');
        await second.write(Buffer.from('written'), 0);
        await second.close();
        await first.close().catch((error) => { if (error.code !== 'EBADF') throw error; });
        await ring.close();
        console.log(readFileSync(${JSON.stringify(`${dir}/behind-b`)}, 'utf8'));
      `;
      const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(output.trim(), 'written');
    });

    it('rejects a write beyond the file system\'s largest file with EFBIG', async function () {
      if (statfsSync(dir!).type !== EXT4_SUPER_MAGIC) {
        skipBecause(this, `the EFBIG limit tested (16 TiB) is ext4's, and ${dir} is not on ext4`);
      }
      const path = `${dir}/file-${fileCount++}`;
      const file = await ring!.open(path, { create: true });
      const error = await rejectsWith(() => file.write(Buffer.alloc(16), 2 ** 50), RingSystemError, 'EFBIG');
      assertSystemError(error, 'EFBIG', -27, SYSCALLS[backend].write, path);
      await file.close();
    });

    describe('on a full file system (a 1 MiB tmpfs)', () => {
      let mountPoint: string | undefined;

      before(function () {
        if (!isRoot()) {
          skipBecause(this, 'ENOSPC tests mount a 1 MiB tmpfs to fill, which needs root; run the suite as root to cover them');
        }
        mountPoint = `${dir}/small-fs`;
        mkdirSync(mountPoint);
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SMALL_FS_SIZE_BYTES}`, 'tmpfs', mountPoint]);
      });

      after(() => {
        // Lazy, so a file a failed test left open cannot make the unmount fail.
        if (mountPoint !== undefined) execFileSync('umount', ['--lazy', mountPoint]);
      });

      it('rejects the write that finds no space with ENOSPC', async () => {
        const path = `${mountPoint}/fill-${backend}`;
        const file = await ring!.open(path, { create: true });
        const chunk = pattern(256 << 10, 1);
        let written = 0;
        let failure: unknown;
        // Bounded: the file system holds SMALL_FS_SIZE_BYTES.
        for (let attempt = 0; attempt <= SMALL_FS_SIZE_BYTES / chunk.length + 1; attempt++) {
          try {
            written += await file.write(chunk, written);
          } catch (error) {
            failure = error;
            break;
          }
        }
        assert.ok(failure instanceof Error, `${written} bytes fit into a ${SMALL_FS_SIZE_BYTES}-byte file system`);
        assertSystemError(failure, 'ENOSPC', -28, SYSCALLS[backend].write, path);
        await file.close();
      });

      it('rejects a write larger than the free space with ENOSPC, not a short count', async () => {
        const path = `${mountPoint}/big-${backend}`;
        const file = await ring!.open(path, { create: true });
        const error = await rejectsWith(() => file.write(pattern(2 * SMALL_FS_SIZE_BYTES, 2), 0), RingSystemError, 'ENOSPC');
        assertSystemError(error, 'ENOSPC', -28, SYSCALLS[backend].write, path);
        await file.close();
      });

      it('rejects writeAndSync() with ENOSPC from its write', async () => {
        const path = `${mountPoint}/synced-${backend}`;
        const file = await ring!.open(path, { create: true });
        const error = await rejectsWith(
          () => file.writeAndSync(pattern(2 * SMALL_FS_SIZE_BYTES, 3), 0),
          RingSystemError,
          'ENOSPC',
        );
        assertSystemError(error, 'ENOSPC', -28, SYSCALLS[backend].writeAndSync, path);
        await file.close();
      });
    });
  });
}
