// directReads: a read submitted while its handle has nothing else in flight
// goes through the ring its own JS thread owns (native/direct_ring.h), not
// through the actor; a read with company goes to the actor, which batches
// it. The contract is read's and readv's (ring_file.test.ts): these tests
// hold it on the direct path — bytes, end of file, bounce copies, short
// reads, close with a read in flight — and check, through the counters,
// which path each read took. Worker threads ending with direct reads in
// flight are in the stress generator (worker_termination_stress.test.ts:
// directReads is the default there).
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

import { allocAligned, IoUringActor, RingError } from '../../index.js';
import type { LoneReadExitWorkerData } from './fixtures/lone_read_exit_worker.js';
import { fillPattern, makeTempDir, removeTempDir } from './helpers.js';

const EXIT_WORKER_URL = new URL('./fixtures/lone_read_exit_worker.js', import.meta.url);
/** Bytes of the read a worker leaves in flight: ~2-10 ms here, far longer than the exit takes to begin. */
const EXIT_READ_BYTES = 16 << 20;
/** Workers ended with a read in flight, per ring mode. */
const EXIT_ROUNDS = 8;

const BLOCK_SIZE = 4096;
/** Blocks of the file every test reads. */
const FILE_BLOCKS = 64;

function block(seed: number, sizeBytes = BLOCK_SIZE): Buffer {
  const buffer = allocAligned(sizeBytes);
  fillPattern(buffer, seed);
  return buffer;
}

/** The file's contents: block i is block(i). */
const contents = Buffer.concat(Array.from({ length: FILE_BLOCKS }, (_, i) => block(i)));

describe('IoUringActor directReads: a read alone in flight through a ring of the JS thread', () => {
  let dir: string | undefined;
  let path = '';

  before(() => {
    dir = makeTempDir();
    path = `${dir}/data`;
    writeFileSync(path, contents);
  });

  after(() => {
    removeTempDir(dir);
  });

  // completionSpinUs 0: the ring's eventfd wakes the event loop; 50: the
  // completion spin reaps the ring itself.
  for (const [direct, completionSpinUs] of [[false, 0], [true, 0], [false, 50], [true, 50]] as const) {
    it(`reads the right bytes without the actor, read() and readv() (${direct ? 'direct' : 'buffered'} file, completionSpinUs ${completionSpinUs})`, async () => {
      const ring = IoUringActor.start({ completionSpinUs });
      try {
        const file = await ring.open(path, { direct });
        const submittedBefore = ring.stats().submitted;
        const one = allocAligned(BLOCK_SIZE);
        assert.equal(await file.read(one, 5 * BLOCK_SIZE), BLOCK_SIZE);
        assert.ok(one.equals(block(5)));
        const parts = [allocAligned(2 * BLOCK_SIZE), allocAligned(BLOCK_SIZE)];
        assert.equal(await file.readv(parts, 10 * BLOCK_SIZE), 3 * BLOCK_SIZE);
        assert.ok(Buffer.concat(parts).equals(contents.subarray(10 * BLOCK_SIZE, 13 * BLOCK_SIZE)));
        const stats = ring.stats();
        assert.equal(stats.directReads, 2);
        assert.equal(stats.submitted, submittedBefore, 'the actor was handed a lone read');
        // Where the route starts: measured against the actor only after an epoch of 256 lone reads.
        assert.deepEqual(stats.loneReadRoute, { direct: true, probeCount: 0, actorWinCount: 0 });
        await file.close();
      } finally {
        await ring.close();
      }
    });
  }

  it('sends reads with company to the actor: of reads issued together only the first is alone', async () => {
    const ring = IoUringActor.start();
    try {
      const file = await ring.open(path, { direct: true });
      const submittedBefore = ring.stats().submitted;
      const buffers = Array.from({ length: 8 }, () => allocAligned(BLOCK_SIZE));
      const counts = await Promise.all(buffers.map((buffer, i) => file.read(buffer, (20 + i) * BLOCK_SIZE)));
      assert.deepEqual(counts, new Array(8).fill(BLOCK_SIZE));
      buffers.forEach((buffer, i) => assert.ok(buffer.equals(block(20 + i)), `block ${20 + i}`));
      const stats = ring.stats();
      assert.equal(stats.directReads, 1);
      assert.equal(stats.submitted - submittedBefore, 7);
      // A read while a write is in flight has company too.
      const written = file.write(block(99), 40 * BLOCK_SIZE);
      const read = allocAligned(BLOCK_SIZE);
      assert.equal(await file.read(read, 41 * BLOCK_SIZE), BLOCK_SIZE);
      await written;
      assert.equal(ring.stats().directReads, 1);
      assert.ok(read.equals(block(41)));
      await file.write(block(40), 40 * BLOCK_SIZE);
      await file.close();
    } finally {
      await ring.close();
    }
  });

  it('sends a read alone to its own ring only after another read alone: concurrent readers that drain for a moment stay with the actor', async () => {
    const ring = IoUringActor.start();
    try {
      const file = await ring.open(path, { direct: true });
      const submittedBefore = ring.stats().submitted;
      const buffers = Array.from({ length: 4 }, () => allocAligned(BLOCK_SIZE));
      // The first of these is alone (nothing before it), the other three have company.
      await Promise.all(buffers.map((buffer, i) => file.read(buffer, (30 + i) * BLOCK_SIZE)));
      assert.equal(ring.stats().directReads, 1);
      // Nothing in flight now, but the read before had company: the actor.
      const first = allocAligned(BLOCK_SIZE);
      assert.equal(await file.read(first, 34 * BLOCK_SIZE), BLOCK_SIZE);
      assert.ok(first.equals(block(34)));
      assert.equal(ring.stats().directReads, 1);
      assert.equal(ring.stats().submitted - submittedBefore, 4);
      // Alone after a read alone: a QD1 run, through the thread's ring from here on.
      for (let i = 0; i < 3; i++) {
        const buffer = allocAligned(BLOCK_SIZE);
        assert.equal(await file.read(buffer, (35 + i) * BLOCK_SIZE), BLOCK_SIZE);
        assert.ok(buffer.equals(block(35 + i)));
      }
      assert.equal(ring.stats().directReads, 4);
      assert.equal(ring.stats().submitted - submittedBefore, 4);
      await file.close();
    } finally {
      await ring.close();
    }
  });

  it('reads nothing through its own ring with directReads: false', async () => {
    const ring = IoUringActor.start({ directReads: false });
    try {
      const file = await ring.open(path, { direct: true });
      const submittedBefore = ring.stats().submitted;
      for (let i = 0; i < 4; i++) {
        const buffer = allocAligned(BLOCK_SIZE);
        assert.equal(await file.read(buffer, i * BLOCK_SIZE), BLOCK_SIZE);
        assert.ok(buffer.equals(block(i)));
      }
      assert.equal(ring.stats().directReads, 0);
      assert.equal(ring.stats().submitted - submittedBefore, 4);
      assert.equal(ring.stats().loneReadRoute.direct, false);
      await file.close();
    } finally {
      await ring.close();
    }
  });

  it('stops at the end of the file as through the actor (a short count, then 0)', async () => {
    const shortPath = `${dir}/short`;
    writeFileSync(shortPath, contents.subarray(0, 2 * BLOCK_SIZE + 100));
    const counts: number[][] = [];
    for (const directReads of [true, false]) {
      const ring = IoUringActor.start({ directReads });
      try {
        const file = await ring.open(shortPath);
        const buffer = Buffer.alloc(2 * BLOCK_SIZE);
        const near = await file.read(buffer, BLOCK_SIZE);
        assert.ok(buffer.subarray(0, near).equals(contents.subarray(BLOCK_SIZE, BLOCK_SIZE + near)));
        const past = await file.read(buffer, 4 * BLOCK_SIZE);
        counts.push([near, past]);
        assert.equal(ring.stats().directReads, directReads ? 2 : 0);
        await file.close();
      } finally {
        await ring.close();
      }
    }
    assert.deepEqual(counts, [
      [BLOCK_SIZE + 100, 0],
      [BLOCK_SIZE + 100, 0],
    ]);
  });

  it('copies a read into memory of V8 (a bounce copy) and into part of a Buffer', async () => {
    const ring = IoUringActor.start();
    try {
      const file = await ring.open(path);
      const heap = Buffer.alloc(3 * BLOCK_SIZE, 0xee);
      // 100 bytes in, 5000 bytes long: neither aligned nor whole blocks.
      const view = heap.subarray(100, 5100);
      assert.equal(await file.read(view, 7 * BLOCK_SIZE + 10), 5000);
      assert.ok(view.equals(contents.subarray(7 * BLOCK_SIZE + 10, 7 * BLOCK_SIZE + 5010)));
      assert.ok(heap.subarray(0, 100).every((byte) => byte === 0xee), 'nothing before the view');
      assert.ok(heap.subarray(5100).every((byte) => byte === 0xee), 'nothing after the view');
      assert.equal(ring.stats().directReads, 1);
      await file.close();
    } finally {
      await ring.close();
    }
  });

  it('continues short reads at the offset they reached (injected short transfers)', async () => {
    const ring = IoUringActor.start({ faultInjection: { shortTransferEvery: 1 } });
    try {
      const file = await ring.open(path, { direct: true });
      const large = allocAligned(16 * BLOCK_SIZE);
      assert.equal(await file.read(large, 3 * BLOCK_SIZE), 16 * BLOCK_SIZE);
      assert.ok(large.equals(contents.subarray(3 * BLOCK_SIZE, 19 * BLOCK_SIZE)));
      const parts = [allocAligned(2 * BLOCK_SIZE), allocAligned(3 * BLOCK_SIZE)];
      assert.equal(await file.readv(parts, 30 * BLOCK_SIZE), 5 * BLOCK_SIZE);
      assert.ok(Buffer.concat(parts).equals(contents.subarray(30 * BLOCK_SIZE, 35 * BLOCK_SIZE)));
      const stats = ring.stats();
      assert.equal(stats.directReads, 2);
      // 16 blocks halved until one is left: 8, 4, 2, 1, 1; 5 blocks: 2, 1, 1, 1.
      assert.ok(stats.directContinuations >= 6, `${stats.directContinuations} continuations`);
      await file.close();
    } finally {
      await ring.close();
    }
  });

  it('close() waits for a direct read in flight, which fills its buffer', async () => {
    const ring = IoUringActor.start();
    const file = await ring.open(path, { direct: true });
    const buffer = allocAligned(8 * BLOCK_SIZE);
    const read = file.read(buffer, 50 * BLOCK_SIZE);
    const closed = file.close().then(() => ring.close());
    assert.equal(await read, 8 * BLOCK_SIZE);
    await closed;
    assert.ok(buffer.equals(contents.subarray(50 * BLOCK_SIZE, 58 * BLOCK_SIZE)));
    assert.throws(() => ring.stats(), (error: unknown) => error instanceof RingError && error.code === 'ERR_RING_CLOSED');
  });

  it('is ignored by the thread-pool backend, whose reads are as before', async () => {
    const ring = IoUringActor.start({ backend: 'threads' });
    try {
      const file = await ring.open(path);
      const buffer = allocAligned(BLOCK_SIZE);
      assert.equal(await file.read(buffer, 2 * BLOCK_SIZE), BLOCK_SIZE);
      assert.ok(buffer.equals(block(2)));
      assert.equal(ring.stats().directReads, 0);
      await file.close();
    } finally {
      await ring.close();
    }
  });

  it('refuses a directReads that is not a boolean, in start() and attach()', async () => {
    for (const bad of [1, 'yes', null]) {
      assert.throws(
        () => IoUringActor.start({ directReads: bad as unknown as boolean }),
        (error: unknown) => error instanceof TypeError && (error as { code?: string }).code === 'ERR_INVALID_ARG' && /directReads/.test((error as Error).message),
      );
    }
    const ring = IoUringActor.start();
    try {
      assert.throws(
        () => IoUringActor.attach(ring.id, { directReads: 0 as unknown as boolean }),
        (error: unknown) => error instanceof TypeError && (error as { code?: string }).code === 'ERR_INVALID_ARG',
      );
      // An attached handle reads through a ring of its own (this thread's second).
      const attached = IoUringActor.attach(ring.id);
      try {
        const file = await attached.open(path);
        const buffer = allocAligned(BLOCK_SIZE);
        assert.equal(await file.read(buffer, 0), BLOCK_SIZE);
        assert.ok(buffer.equals(block(0)));
        assert.equal(attached.stats().directReads, 1);
        assert.equal(ring.stats().directReads, 0);
        await file.close();
      } finally {
        await attached.close();
      }
    } finally {
      await ring.close();
    }
  });
});

describe('IoUringActor directReads: the route of lone reads, measured', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeTempDir();
    writeFileSync(`${dir}/data`, contents);
  });

  after(() => {
    removeTempDir(dir);
  });

  it('probes both routes as lone reads go on, and every read returns its bytes whichever route it took', async () => {
    const ring = IoUringActor.start();
    try {
      const file = await ring.open(`${dir}/data`, { direct: true });
      const buffer = allocAligned(BLOCK_SIZE);
      // Enough epochs (256 reads and 16 ms each) for a probe of both routes.
      let i = 0;
      for (; i < 5_000 && ring.stats().loneReadRoute.probeCount < 1; i++) {
        const index = (i * 7) % FILE_BLOCKS;
        assert.equal(await file.read(buffer, index * BLOCK_SIZE), BLOCK_SIZE);
        assert.ok(buffer.equals(block(index)), `read ${i}`);
      }
      const stats = ring.stats();
      assert.ok(stats.loneReadRoute.probeCount >= 1, `no probe in ${i} lone reads`);
      // A probe measures each route for an epoch: the actor took some lone reads, the thread's ring others.
      assert.ok(stats.submitted >= 256 && stats.directReads >= 256, `actor ${stats.submitted}, direct ${stats.directReads}`);
      assert.equal(stats.submitted + stats.directReads, i);
      await file.close();
    } finally {
      await ring.close();
    }
  });
});

describe('IoUringActor directReads: a worker that ends with a lone read in flight', () => {
  let dir: string | undefined;

  before(() => {
    dir = makeTempDir();
    writeFileSync(`${dir}/large`, Buffer.alloc(EXIT_READ_BYTES, 0x5a));
  });

  after(() => {
    removeTempDir(dir);
  });

  /** Runs one worker to its exit; resolves to the directReads it reported. */
  function runExitWorker(data: LoneReadExitWorkerData): Promise<number> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(EXIT_WORKER_URL, { workerData: data });
      let reported: number | undefined;
      worker.on('message', (message: { directReads: number }) => (reported = message.directReads));
      worker.on('error', reject);
      worker.on('exit', (code) => {
        if (code !== 0) reject(new Error(`the worker exited with ${code}`));
        else if (reported === undefined) reject(new Error('the worker exited without reporting'));
        else resolve(reported);
      });
    });
  }

  it("drains the worker's own ring at its exit: no crash, no descriptor left, the main thread's ring reads on", async () => {
    const ring = IoUringActor.start();
    try {
      const descriptorsBefore = readdirSync('/proc/self/fd').length;
      for (const ringId of [ring.id, undefined]) {
        for (let round = 0; round < EXIT_ROUNDS; round++) {
          const directReads = await runExitWorker({ path: `${dir}/large`, ringId, readBytes: EXIT_READ_BYTES });
          assert.equal(directReads, 1, `the worker's read went through its own ring (${ringId === undefined ? 'own' : 'attached'} ring, round ${round})`);
        }
      }
      assert.equal(readdirSync('/proc/self/fd').length, descriptorsBefore, "descriptors of the workers' rings left open");
      const file = await ring.open(`${dir}/large`, { direct: true });
      const buffer = allocAligned(BLOCK_SIZE);
      assert.equal(await file.read(buffer, 0), BLOCK_SIZE);
      assert.ok(buffer.every((byte) => byte === 0x5a));
      await file.close();
    } finally {
      await ring.close();
    }
  });
});
