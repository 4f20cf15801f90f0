// Backends: the thread pool serves the same API when asked for, or when the
// kernel refuses io_uring and the caller allowed the fallback. A refusal
// without fallback is ERR_IO_URING_UNAVAILABLE, with advice.
//
// RINGSTORE_SIMULATE_IO_URING_ERRNO makes the addon's io_uring_setup fail
// with that errno. The addon reads it at every start, so it can be set in this
// process (and must be removed right after) as well as in a child's env.
// (The round trips themselves run on both backends in ring_file_round_trip.test.ts.)
import assert from 'node:assert/strict';

import { allocAligned, IoUringActor, RingError } from '../../index.js';
import { describeChild, makeTempDir, PACKAGE_ENTRY_URL, removeTempDir, runNodeModule, throwsWith } from './helpers.js';

const SIMULATE_ENV = 'RINGSTORE_SIMULATE_IO_URING_ERRNO';
const EPERM = 1;
const ENOSYS = 38;

/** Runs `start` while io_uring_setup is made to fail with `errno`. */
function withIoUringRefused<T>(errno: number, start: () => T): T {
  assert.equal(process.env[SIMULATE_ENV], undefined, `${SIMULATE_ENV} was left set`);
  process.env[SIMULATE_ENV] = String(errno);
  try {
    return start();
  } finally {
    delete process.env[SIMULATE_ENV];
  }
}

describe('IoUringActor backends', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeTempDir();
  });

  after(() => {
    removeTempDir(dir);
  });

  it("start({ backend: 'threads' }) serves IO from the thread pool", async () => {
    const ring = IoUringActor.start({ backend: 'threads' });
    try {
      assert.equal(ring.backend, 'threads');
      assert.equal(ring.stats().backend, 'threads');
      const file = await ring.open(`${dir}/threads`, { create: true });
      assert.equal(await file.write(Buffer.from('pool'), 0), 4);
      const back = Buffer.alloc(4);
      assert.equal(await file.read(back, 0), 4);
      assert.equal(back.toString(), 'pool');
      // One batch per command: the pool has no io_uring_enter to share.
      const stats = ring.stats();
      assert.equal(stats.batches, stats.submitted);
    } finally {
      await ring.close();
    }
  });

  describe('when the kernel refuses io_uring', () => {
    it('start() throws ERR_IO_URING_UNAVAILABLE as a RingError with errno and syscall', () => {
      const error = withIoUringRefused(EPERM, () =>
        throwsWith(() => IoUringActor.start(), RingError, 'ERR_IO_URING_UNAVAILABLE'),
      );
      const detail = error as RingError & { errno?: number; syscall?: string };
      assert.equal(detail.errno, -EPERM);
      assert.equal(detail.syscall, 'io_uring_setup');
      assert.ok(detail.cause instanceof Error, 'the native error is kept as the cause');
    });

    it('start() explains how to allow io_uring, and the fallback', () => {
      const error = withIoUringRefused(ENOSYS, () =>
        throwsWith(() => IoUringActor.start(), RingError, 'ERR_IO_URING_UNAVAILABLE'),
      );
      assert.match(error.message, /io_uring is not available/);
      assert.match(error.message, /Allow io_uring/);
      assert.match(error.message, /seccomp/);
      assert.match(error.message, /io_uring_disabled/);
      assert.match(error.message, /fallback: 'threads'/);
    });

    it("start({ fallback: 'threads' }) starts the thread-pool backend instead", async () => {
      const ring = withIoUringRefused(EPERM, () => IoUringActor.start({ fallback: 'threads' }));
      try {
        assert.equal(ring.backend, 'threads');
        const file = await ring.open(`${dir}/fallback`, { create: true, direct: true });
        const block = allocAligned(4096).fill(0x5a);
        assert.equal(await file.writeAndSync(block, 0), 4096);
        assert.ok((await file.readBlock(0)).equals(block));
      } finally {
        await ring.close();
      }
    });

    it("start({ backend: 'threads' }) does not need io_uring at all", async () => {
      const ring = withIoUringRefused(EPERM, () => IoUringActor.start({ backend: 'threads' }));
      assert.equal(ring.backend, 'threads');
      await ring.close();
    });

    it('is decided at each start: io_uring is back once the refusal is gone', async () => {
      withIoUringRefused(EPERM, () => throwsWith(() => IoUringActor.start(), RingError, 'ERR_IO_URING_UNAVAILABLE'));
      const ring = IoUringActor.start();
      assert.equal(ring.backend, 'io_uring');
      await ring.close();
    });

    it('behaves the same in a process started with the refusal in its environment', async () => {
      const source = `
        const { IoUringActor } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
        const report = {};
        try {
          IoUringActor.start();
          report.start = 'started';
        } catch (error) {
          report.start = { name: error.name, code: error.code, errno: error.errno, message: error.message };
        }
        const ring = IoUringActor.start({ fallback: 'threads' });
        report.fallbackBackend = ring.backend;
        await ring.close();
        console.log(JSON.stringify(report));
      `;
      const result = await runNodeModule(source, { env: { ...process.env, [SIMULATE_ENV]: String(EPERM) } });
      assert.equal(result.exitCode, 0, describeChild(result));
      const report = JSON.parse(result.stdout) as {
        start: { name: string; code: string; errno: number; message: string } | string;
        fallbackBackend: string;
      };
      assert.notEqual(report.start, 'started', 'start() succeeded although io_uring was refused');
      const start = report.start as { name: string; code: string; errno: number; message: string };
      assert.equal(start.name, 'RingError');
      assert.equal(start.code, 'ERR_IO_URING_UNAVAILABLE');
      assert.equal(start.errno, -EPERM);
      assert.match(start.message, /Allow io_uring/);
      assert.equal(report.fallbackBackend, 'threads');
    });
  });
});
