// BlockStore#close() resolves only once the file's lock is released: an
// open right after it, in this process or another, never sees
// ERR_STORE_LOCKED. What keeps a lock past close(2) is another reference to
// the open file description — here, child processes forked by a worker
// thread, which hold a copy of every descriptor until their exec closes it
// (before the fix about half of the cycles below failed; closing a file now
// releases its flock first: CloseReleasingLock in native/file_table.h). Each test runs for RINGSTORE_CLOSE_REOPEN_MS
// (default 1 500 ms); set it higher for a longer hunt.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

import { BlockStore } from '../../engine/block_store.js';
import { STORE_RING_OPTIONS } from '../../engine/store_options.js';
import { RingBlockDevice } from '../../engine/ring_block_device.js';
import { StoreError } from '../../engine/store_error.js';
import { allocAligned } from '../../native/aligned_buffer.js';
import { IoUringActor } from '../../native/io_uring_actor.js';
import { makeStoreDir, removeStoreDir } from './helpers.js';

const RUN_MS = Number(process.env.RINGSTORE_CLOSE_REOPEN_MS ?? 1_500);
const BLOCK_BYTES = 4096;

/** A worker thread spawning /bin/true in a loop until stopped; resolves to how many it spawned. */
function startSpawner(): { stop: () => Promise<number> } {
  const worker = new Worker(
    `
    const { spawn } = require('node:child_process');
    const { parentPort } = require('node:worker_threads');
    let stopped = false;
    parentPort.on('message', () => { stopped = true; });
    (async () => {
      let spawned = 0;
      while (!stopped) {
        await new Promise((resolve) => {
          const child = spawn('/bin/true', { stdio: 'ignore' });
          child.on('exit', resolve);
          child.on('error', resolve);
        });
        spawned++;
      }
      parentPort.postMessage(spawned);
    })();
    `,
    { eval: true },
  );
  const done = new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    stop: async () => {
      worker.postMessage('stop');
      const spawned = await done;
      await worker.terminate();
      return spawned;
    },
  };
}

function isLocked(error: unknown): boolean {
  return error instanceof StoreError && error.code === 'ERR_STORE_LOCKED';
}

describe('BlockStore#close() and the file lock', function () {
  this.timeout(RUN_MS * 4 + 30_000);
  let dir: string | undefined;

  before(() => {
    dir = makeStoreDir();
  });

  after(() => {
    removeStoreDir(dir);
  });

  it('lets the device open again as soon as close() resolves, with IO in flight at close and children forking', async () => {
    const path = `${dir}/device`;
    const ring = IoUringActor.start(STORE_RING_OPTIONS);
    const spawner = startSpawner();
    const block = allocAligned(BLOCK_BYTES, BLOCK_BYTES);
    let cycles = 0;
    let locked = 0;
    try {
      writeFileSync(path, new Uint8Array(1 << 20));
      let device = await RingBlockDevice.open(ring, path);
      const started = performance.now();
      while (performance.now() - started < RUN_MS) {
        // Not awaited: close() is called with a flush, a write and a trim in flight.
        const io = [device.writeAndSync(0, [block]), device.write(BLOCK_BYTES, [block]), device.trim(2 * BLOCK_BYTES, BLOCK_BYTES), device.sync()];
        await device.close();
        await Promise.allSettled(io);
        cycles++;
        try {
          device = await RingBlockDevice.open(ring, path);
        } catch (error) {
          if (!isLocked(error)) throw error;
          locked++;
          // Count it, and go on once the lock is really gone.
          for (;;) {
            await new Promise((resolve) => setTimeout(resolve, 1));
            try {
              device = await RingBlockDevice.open(ring, path);
              break;
            } catch (again) {
              if (!isLocked(again)) throw again;
            }
          }
        }
      }
      await device.close();
    } finally {
      const spawned = await spawner.stop();
      await ring.close();
      console.log(`      ${cycles} close → open cycles, ${spawned} children spawned meanwhile, ${locked} opens found the file still locked`);
    }
    assert.ok(cycles > 0);
    assert.equal(locked, 0, `${locked} of ${cycles} opens right after close() found the file still locked`);
  });

  it('lets the store open again as soon as close() resolves, with writes in flight at close and children forking', async () => {
    const path = `${dir}/store`;
    const shared = IoUringActor.start(STORE_RING_OPTIONS);
    const spawner = startSpawner();
    let cycles = 0;
    let locked = 0;
    const value = 'x'.repeat(3000);
    try {
      // Alternately on a shared ring and on the store's own (closed with it).
      const open = (create: boolean): Promise<BlockStore> =>
        BlockStore.open(path, { create, sizeBytes: 8 << 20, ring: cycles % 2 === 0 ? shared : undefined, sync: cycles % 4 !== 3 });
      let store = await open(true);
      const started = performance.now();
      while (performance.now() - started < RUN_MS) {
        // Not awaited: close() finds extent and inline puts and a delete (a trim) under way.
        const writes = [store.put(`k${cycles % 8}`, value), store.put('small', cycles), store.delete(`k${(cycles + 4) % 8}`)];
        await store.close();
        await Promise.allSettled(writes);
        cycles++;
        try {
          store = await open(false);
        } catch (error) {
          if (!isLocked(error)) throw error;
          locked++;
          for (;;) {
            await new Promise((resolve) => setTimeout(resolve, 1));
            try {
              store = await open(false);
              break;
            } catch (again) {
              if (!isLocked(again)) throw again;
            }
          }
        }
      }
      assert.equal(await store.get('small'), cycles - 1);
      await store.close();
    } finally {
      const spawned = await spawner.stop();
      await shared.close();
      console.log(`      ${cycles} close → open cycles, ${spawned} children spawned meanwhile, ${locked} opens found the store still locked`);
    }
    assert.ok(cycles > 0);
    assert.equal(locked, 0, `${locked} of ${cycles} opens right after close() found the store still locked`);
  });
});
