// One actor shared by several JS threads: the main thread starts it, workers
// join it with IoUringActor.attach(ring.id), and every thread's operations go
// into the same ring.
import assert from 'node:assert/strict';
import { openSync, closeSync, readSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

import { IoUringActor, RingError } from '../../index.js';
import { type RingWorkerData, type RingWorkerReport, blockByte } from './fixtures/ring_worker_protocol.js';
import { BACKENDS, CHILD_DIR_SOURCE, describeChild, makeTempDir, PACKAGE_ENTRY_URL, removeTempDir, runNodeModule, throwsWith } from './helpers.js';

const WORKER_URL = new URL('./fixtures/ring_worker.js', import.meta.url);
const WORKER_COUNT = 4;
/** Blocks each worker writes and reads; each batch is submitted at once. */
const BLOCKS_PER_WORKER = 256;
const BLOCK_SIZE = 4096;

function runWorker(data: RingWorkerData): Promise<RingWorkerReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: data });
    let report: RingWorkerReport | undefined;
    worker.on('message', (message: RingWorkerReport) => (report = message));
    worker.on('error', reject);
    worker.on('exit', (code) => {
      if (code !== 0) reject(new Error(`worker ${data.workerIndex} exited with code ${code}`));
      else if (report === undefined) reject(new Error(`worker ${data.workerIndex} exited without a report`));
      else resolve(report);
    });
  });
}

for (const backend of BACKENDS) {
  describe(`IoUringActor shared by worker threads (${backend} backend)`, () => {
    let dir: string | undefined;
    let ring: IoUringActor | undefined;

    before(() => {
      dir = makeTempDir();
      // Large batches, so a burst from several threads can go in one io_uring_enter.
      ring = IoUringActor.start({ backend, batchSize: 256 });
    });

    after(async () => {
      await ring?.close();
      removeTempDir(dir);
    });

    it(`takes the operations of ${WORKER_COUNT} workers into the one ring the main thread started`, async () => {
      const path = `${dir}/shared`;
      const file = await ring!.open(path, {
        create: true,
        direct: true,
        sizeBytes: WORKER_COUNT * BLOCKS_PER_WORKER * BLOCK_SIZE,
      });
      const before = ring!.stats();
      const barrier = new Int32Array(new SharedArrayBuffer(4));
      const reports = await Promise.all(
        Array.from({ length: WORKER_COUNT }, (_, workerIndex) =>
          runWorker({
            ringId: ring!.id,
            path,
            workerIndex,
            blockCount: BLOCKS_PER_WORKER,
            blockSize: BLOCK_SIZE,
            mode: 'io',
            barrier,
            workerCount: WORKER_COUNT,
          }),
        ),
      );
      const after = ring!.stats();

      for (const report of reports) {
        assert.equal(report.ringId, ring!.id, `worker ${report.workerIndex} joined ring ${report.ringId}`);
        assert.equal(report.backend, ring!.backend);
      }
      // stats() is actor-wide: the main thread's handle counts what the workers
      // submitted, so their operations went into this ring.
      const workerOperationCount = reports.reduce((sum, report) => sum + report.operationCount, 0);
      assert.equal(workerOperationCount, WORKER_COUNT * (2 * BLOCKS_PER_WORKER + 1));
      assert.equal(after.submitted - before.submitted, workerOperationCount);
      assert.equal(after.completed - before.completed, workerOperationCount);
      if (backend === 'io_uring') {
        // Bursts of concurrent operations are micro-batched: fewer
        // io_uring_enter calls than commands. (The thread pool has no batches.)
        const batchCount = after.batches - before.batches;
        assert.ok(
          batchCount < workerOperationCount,
          `${workerOperationCount} operations took ${batchCount} batches; expected batching`,
        );
      }

      // Every worker's blocks are in the file, as the main thread reads them
      // through the ring and as node:fs reads them.
      for (let workerIndex = 0; workerIndex < WORKER_COUNT; workerIndex++) {
        for (const blockIndex of [0, BLOCKS_PER_WORKER - 1]) {
          const block = await file.readBlock(workerIndex * BLOCKS_PER_WORKER + blockIndex);
          assert.ok(
            block.every((byte) => byte === blockByte(workerIndex, blockIndex)),
            `block ${blockIndex} of worker ${workerIndex}`,
          );
        }
      }
      const fd = openSync(path, 'r');
      try {
        const block = Buffer.alloc(BLOCK_SIZE);
        for (let workerIndex = 0; workerIndex < WORKER_COUNT; workerIndex++) {
          for (let blockIndex = 0; blockIndex < BLOCKS_PER_WORKER; blockIndex++) {
            readSync(fd, block, 0, BLOCK_SIZE, (workerIndex * BLOCKS_PER_WORKER + blockIndex) * BLOCK_SIZE);
            const expected = blockByte(workerIndex, blockIndex);
            assert.ok(block.every((byte) => byte === expected), `block ${blockIndex} of worker ${workerIndex} on disk`);
          }
        }
      } finally {
        closeSync(fd);
      }
      await file.close();
    });

    it('stays open for the main thread after the workers closed their handles', async () => {
      assert.equal(ring!.closed, false);
      const file = await ring!.open(`${dir}/after-workers`, { create: true });
      assert.equal(await file.write(Buffer.from('still here'), 0), 10);
      await file.close();
    });

    it('can be attached from the thread that started it, sharing its stats', async () => {
      const second = IoUringActor.attach(ring!.id);
      try {
        assert.equal(second.id, ring!.id);
        assert.equal(second.backend, ring!.backend);
        const before = ring!.stats().submitted;
        const file = await second.open(`${dir}/second-handle`, { create: true });
        await file.write(Buffer.from('via the second handle'), 0);
        assert.equal(ring!.stats().submitted, before + 1);
        assert.equal(second.stats().submitted, ring!.stats().submitted);
      } finally {
        await second.close();
      }
      assert.equal(ring!.closed, false, "closing the second handle leaves the first open");
      assert.ok(ring!.stats().submitted > 0);
    });
  });
}

describe('IoUringActor.attach()', () => {
  it('throws ERR_RING_NOT_FOUND for an id no ring has', () => {
    throwsWith(() => IoUringActor.attach(0xfffffff0), Error, 'ERR_RING_NOT_FOUND');
  });

  it('throws ERR_RING_NOT_FOUND as a RingError, the class that owns the IO layer\'s codes', () => {
    throwsWith(() => IoUringActor.attach(0xfffffff0), RingError, 'ERR_RING_NOT_FOUND');
  });

  it('throws ERR_RING_NOT_FOUND for the id of a ring whose last handle closed', async () => {
    const closed = IoUringActor.start();
    const id = closed.id;
    await closed.close();
    throwsWith(() => IoUringActor.attach(id), Error, 'ERR_RING_NOT_FOUND');
  });

  it('rejects an id that is not a positive integer with TypeError ERR_INVALID_ARG', () => {
    for (const id of [0, -1, 1.5, Number.NaN, 2 ** 32, '1', null, undefined]) {
      throwsWith(() => IoUringActor.attach(id as number), TypeError, 'ERR_INVALID_ARG');
    }
  });

  it('rejects bad options with ERR_INVALID_ARG', async () => {
    const ring = IoUringActor.start();
    try {
      type AttachOptions = Parameters<typeof IoUringActor.attach>[1];
      throwsWith(() => IoUringActor.attach(ring.id, null as unknown as AttachOptions), TypeError, 'ERR_INVALID_ARG');
      throwsWith(() => IoUringActor.attach(ring.id, { completionSpinUs: '5' as unknown as number }), TypeError, 'ERR_INVALID_ARG');
      throwsWith(() => IoUringActor.attach(ring.id, { completionSpinUs: -1 }), RangeError, 'ERR_INVALID_ARG');
      throwsWith(() => IoUringActor.attach(ring.id, { completionSpinUs: 1.5 }), RangeError, 'ERR_INVALID_ARG');
    } finally {
      await ring.close();
    }
  });
});

describe('A worker thread that exits with operations in flight', () => {
  it('neither crashes the process nor breaks the ring (20 workers in a child process)', async () => {
    // In a child process: if the addon mishandles the worker's teardown it
    // aborts the whole process, which must not take mocha down with it.
    const source = `
      import { Worker } from 'node:worker_threads';
      const { allocAligned, IoUringActor } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
      const ring = IoUringActor.start();
      const path = ${CHILD_DIR_SOURCE} + '/shared';
      const file = await ring.open(path, { create: true, direct: true, sizeBytes: 64 * 4096 });
      for (let round = 0; round < 20; round++) {
        const worker = new Worker(new URL(${JSON.stringify(WORKER_URL.href)}), {
          workerData: { ringId: ring.id, path, workerIndex: 0, blockCount: 64, blockSize: 4096, mode: 'exit-in-flight' },
        });
        const code = await new Promise((resolve, reject) => { worker.on('exit', resolve); worker.on('error', reject); });
        if (code !== 0) throw new Error('worker exited with code ' + code);
      }
      if (await file.write(allocAligned(4096).fill(7), 0) !== 4096) throw new Error('write after the workers failed');
      await ring.close();
      console.log('ok');
    `;
    const result = await runNodeModule(source, { timeoutMs: 20_000 });
    assert.ok(result.exitCode === 0 && result.stdout.includes('ok'), describeChild(result));
  });
});
