// The file table of a JS environment (native/file_table.{h,cc}): what a
// thread opened and did not close is closed when the thread ends — so its
// flock goes too — and no descriptor is closed twice or closed by a thread
// that did not open it.
import assert from 'node:assert/strict';
import { closeSync, fstatSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

import { BlockStore, IoUringActor } from '../../index.js';
import { addon, constants } from '../../native/addon.js';
import type { LeaveOpenWorkerData } from './fixtures/leave_open_worker.js';
import { makeTempDir, removeTempDir } from './helpers.js';

const WORKER_URL = new URL('./fixtures/leave_open_worker.js', import.meta.url);

/** Runs the worker to its end; resolves with its exit code once it said it opened. */
function runWorker(data: LeaveOpenWorkerData): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: data });
    let opened = false;
    worker.on('message', () => (opened = true));
    worker.on('error', (error: Error) => {
      if (!/throws with its file open/.test(error.message)) reject(error);
    });
    worker.on('exit', (code) => (opened ? resolve(code) : reject(new Error(`the worker exited (${code}) before it opened`))));
  });
}

function descriptorsInto(dir: string): number {
  return readdirSync('/proc/self/fd').filter((name) => {
    try {
      return readlinkSync(`/proc/self/fd/${name}`).startsWith(dir);
    } catch {
      return false;
    }
  }).length;
}

describe('FileTable: what a worker leaves open', () => {
  let dir: string;
  let ring: IoUringActor;

  before(() => {
    dir = makeTempDir();
    ring = IoUringActor.start();
  });

  after(async () => {
    await ring.close();
    removeTempDir(dir);
  });

  for (const end of ['return', 'throw'] as const) {
    for (const attached of [true, false]) {
      it(`closes a file a worker flock'ed on ${attached ? 'an attached' : 'its own'} ring when it ends (${end}), so this thread can flock it`, async () => {
        const path = `${dir}/file-${end}-${attached}`;
        await (await ring.open(path, { create: true })).close();
        const code = await runWorker({ path, what: 'file', end, ...(attached ? { ringId: ring.id } : {}) });
        assert.equal(code, end === 'throw' ? 1 : 0);
        assert.equal(descriptorsInto(dir), 0, 'the worker\'s descriptor is closed');
        const file = await ring.open(path);
        try {
          assert.equal(file.tryLockExclusive(), true);
        } finally {
          await file.close();
        }
      });
    }
  }

  it('releases the lock of a BlockStore a worker left open: this thread opens the store (no ERR_STORE_LOCKED)', async () => {
    const path = `${dir}/store`;
    assert.equal(await runWorker({ path, what: 'store', end: 'return' }), 0);
    const store = await BlockStore.open(path);
    try {
      assert.equal(await store.get('left'), 'open');
    } finally {
      await store.close();
    }
    assert.equal(descriptorsInto(dir), 0);
  });
});

describe('closeFile()', () => {
  it('rejects a descriptor this thread did not open through openFile with EBADF, and leaves it open', async () => {
    const dir = makeTempDir();
    const fd = openSync(`${dir}/not-ours`, 'w');
    try {
      const error = await addon.closeFile(fd).then(
        () => assert.fail('closeFile resolved'),
        (rejection: { errno?: number; syscall?: string }) => rejection,
      );
      assert.equal(error.errno, -9, 'EBADF');
      assert.equal(error.syscall, 'close');
      assert.ok(fstatSync(fd).isFile(), 'the descriptor is still open');
    } finally {
      closeSync(fd);
      removeTempDir(dir);
    }
  });

  it('closes a descriptor once: a second closeFile of the same number rejects with EBADF', async () => {
    const dir = makeTempDir();
    try {
      const opened = await addon.openFile(`${dir}/once`, constants.O_RDWR | constants.O_CREAT, 0, false);
      await addon.closeFile(opened.fd);
      const error = await addon.closeFile(opened.fd).then(
        () => assert.fail('the second closeFile resolved'),
        (rejection: { errno?: number }) => rejection,
      );
      assert.equal(error.errno, -9);
    } finally {
      removeTempDir(dir);
    }
  });
});
