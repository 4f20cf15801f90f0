// directDsync: a handle's writeDsyncs go through a ring its own JS thread
// owns (native/direct_ring.h) instead of through the actor. The contract is
// writeDsync's (ring_file_write_dsync.test.ts); these tests hold it on the
// direct path — bytes, errors, short writes, more writes than the ring
// holds, close with writes in flight — and check, through the counters, that
// the writes really took that path. Worker threads ending with direct writes
// in flight are in the stress generator (worker_termination_stress.test.ts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statfsSync } from 'node:fs';

import { allocAligned, BlockStore, IoUringActor, RingError, RingSystemError } from '../../index.js';
import { fillPattern, isRoot, makeTempDir, pattern, rejectsWith, removeTempDir, skipBecause } from './helpers.js';

const BLOCK_SIZE = 4096;
/** native/direct_ring.h kDirectRingEntries: the writes a handle's own ring holds at once. */
const DIRECT_RING_ENTRIES = 64;
/** f_type of ext4, from linux/magic.h. */
const EXT4_SUPER_MAGIC = 0xef53;

function block(seed: number, sizeBytes = BLOCK_SIZE): Buffer {
  const buffer = allocAligned(sizeBytes);
  fillPattern(buffer, seed);
  return buffer;
}

describe('IoUringActor directDsync: writeDsync through a ring of the JS thread', () => {
  let dir: string | undefined;
  let fileCount = 0;

  before(() => {
    dir = makeTempDir();
  });

  after(() => {
    removeTempDir(dir);
  });

  for (const direct of [false, true]) {
    it(`writes every buffer at its position without the actor (${direct ? 'direct' : 'buffered'} file)`, async () => {
      // Without directReads, whose lone reads would go to the thread's ring too.
      const ring = IoUringActor.start({ directDsync: true, directReads: false });
      try {
        const path = `${dir}/file-${fileCount++}`;
        const file = await ring.open(path, { create: true, direct });
        const submittedBefore = ring.stats().submitted;
        const first = block(1);
        const second = block(2);
        assert.equal(await file.writeDsync([first, second], BLOCK_SIZE), 2 * BLOCK_SIZE);
        assert.equal(await file.writeDsync(block(3), 0), BLOCK_SIZE);
        const stats = ring.stats();
        assert.equal(stats.directWrites, 2);
        assert.equal(stats.submitted, submittedBefore, 'the actor was handed a direct write');
        const onDisk = readFileSync(path);
        assert.ok(onDisk.subarray(0, BLOCK_SIZE).equals(block(3)));
        assert.ok(onDisk.subarray(BLOCK_SIZE, 2 * BLOCK_SIZE).equals(first));
        assert.ok(onDisk.subarray(2 * BLOCK_SIZE, 3 * BLOCK_SIZE).equals(second));
        // Everything else still goes to the actor.
        const readBack = allocAligned(BLOCK_SIZE);
        assert.equal(await file.read(readBack, BLOCK_SIZE), BLOCK_SIZE);
        assert.ok(readBack.equals(first));
        assert.equal(ring.stats().submitted, submittedBefore + 1);
        await file.close();
      } finally {
        await ring.close();
      }
    });
  }

  it('sends the writes its ring has no room for to the actor, and every one lands', async () => {
    const ring = IoUringActor.start({ directDsync: true });
    try {
      const path = `${dir}/file-${fileCount++}`;
      const file = await ring.open(path, { create: true, direct: true });
      const writeCount = 3 * DIRECT_RING_ENTRIES;
      const submittedBefore = ring.stats().submitted;
      const written = await Promise.all(Array.from({ length: writeCount }, (_, i) => file.writeDsync(block(100 + i), i * BLOCK_SIZE)));
      assert.deepEqual(written, new Array(writeCount).fill(BLOCK_SIZE));
      const stats = ring.stats();
      // All are submitted in one turn, before any completion is reaped: the
      // ring takes as many as it holds, the actor the rest.
      assert.equal(stats.directWrites, DIRECT_RING_ENTRIES);
      assert.equal(stats.submitted - submittedBefore, writeCount - DIRECT_RING_ENTRIES);
      const onDisk = readFileSync(path);
      for (let i = 0; i < writeCount; i++) {
        assert.ok(onDisk.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE).equals(block(100 + i)), `block ${i}`);
      }
      await file.close();
    } finally {
      await ring.close();
    }
  });

  it('continues short writes at the offset they reached (injected short transfers)', async () => {
    const ring = IoUringActor.start({ directDsync: true, faultInjection: { shortTransferEvery: 1 } });
    try {
      const path = `${dir}/file-${fileCount++}`;
      const file = await ring.open(path, { create: true, direct: true });
      const large = block(7, 16 * BLOCK_SIZE);
      const parts = [block(8, 2 * BLOCK_SIZE), block(9, 3 * BLOCK_SIZE)];
      assert.equal(await file.writeDsync(large, BLOCK_SIZE), 16 * BLOCK_SIZE);
      assert.equal(await file.writeDsync(parts, 20 * BLOCK_SIZE), 5 * BLOCK_SIZE);
      const stats = ring.stats();
      assert.equal(stats.directWrites, 2);
      // 16 blocks halved until one is left: 8, 4, 2, 1, 1; 5 blocks: 2, 1, 1, 1.
      assert.ok(stats.directContinuations >= 6, `${stats.directContinuations} continuations`);
      const onDisk = readFileSync(path);
      assert.ok(onDisk.subarray(BLOCK_SIZE, 17 * BLOCK_SIZE).equals(large));
      assert.ok(onDisk.subarray(20 * BLOCK_SIZE, 22 * BLOCK_SIZE).equals(parts[0]));
      assert.ok(onDisk.subarray(22 * BLOCK_SIZE, 25 * BLOCK_SIZE).equals(parts[1]));
      await file.close();
    } finally {
      await ring.close();
    }
  });

  it('rejects with the same RingSystemError as through the actor (EFBIG beyond ext4\'s largest file)', async function () {
    if (statfsSync(dir!).type !== EXT4_SUPER_MAGIC) {
      skipBecause(this, `the EFBIG limit tested (16 TiB) is ext4's, and ${dir} is not on ext4`);
    }
    const errors: RingSystemError[] = [];
    for (const directDsync of [true, false]) {
      const ring = IoUringActor.start({ directDsync });
      try {
        const path = `${dir}/file-${fileCount++}`;
        const file = await ring.open(path, { create: true });
        errors.push(await rejectsWith(() => file.writeDsync(Buffer.alloc(16), 2 ** 50), RingSystemError, 'EFBIG'));
        assert.equal(ring.stats().directWrites, directDsync ? 1 : 0);
        await file.close();
      } finally {
        await ring.close();
      }
    }
    const [viaOwnRing, viaActor] = errors;
    assert.equal(viaOwnRing.errno, viaActor.errno);
    assert.equal(viaOwnRing.syscall, viaActor.syscall);
  });

  it('rejects a write larger than the free space with ENOSPC, not a short count (a 1 MiB tmpfs)', async function () {
    if (!isRoot()) skipBecause(this, 'mounting the tmpfs to fill needs root');
    const mountPoint = `${dir}/small-fs-${fileCount++}`;
    mkdirSync(mountPoint);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]);
    const ring = IoUringActor.start({ directDsync: true });
    try {
      const file = await ring.open(`${mountPoint}/fill`, { create: true });
      // The kernel writes what fits (a short write), and the continuation
      // gets ENOSPC for the rest.
      await rejectsWith(() => file.writeDsync(pattern(2 << 20, 5), 0), RingSystemError, 'ENOSPC');
      assert.equal(ring.stats().directWrites, 1);
      await file.close();
    } finally {
      await ring.close();
      execFileSync('umount', ['--lazy', mountPoint]);
    }
  });

  it('close() waits for its direct writes in flight, which all land', async () => {
    const ring = IoUringActor.start({ directDsync: true });
    const path = `${dir}/file-${fileCount++}`;
    const file = await ring.open(path, { create: true, direct: true });
    const writes = Array.from({ length: 16 }, (_, i) => file.writeDsync(block(200 + i), i * BLOCK_SIZE));
    const closed = file.close().then(() => ring.close());
    assert.deepEqual(await Promise.all(writes), new Array(16).fill(BLOCK_SIZE));
    await closed;
    assert.throws(() => ring.stats(), (error: unknown) => error instanceof RingError && error.code === 'ERR_RING_CLOSED');
    const onDisk = readFileSync(path);
    for (let i = 0; i < 16; i++) assert.ok(onDisk.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE).equals(block(200 + i)));
  });

  it('is ignored by the thread-pool backend, whose writes land as before', async () => {
    const ring = IoUringActor.start({ backend: 'threads', directDsync: true });
    try {
      const path = `${dir}/file-${fileCount++}`;
      const file = await ring.open(path, { create: true });
      assert.equal(await file.writeDsync(block(11), 0), BLOCK_SIZE);
      assert.equal(ring.stats().directWrites, 0);
      assert.ok(readFileSync(path).equals(block(11)));
      await file.close();
    } finally {
      await ring.close();
    }
  });

  it('refuses a directDsync that is not a boolean, in start() and attach()', async () => {
    for (const bad of [1, 'yes', null]) {
      assert.throws(
        () => IoUringActor.start({ directDsync: bad as unknown as boolean }),
        (error: unknown) => error instanceof TypeError && (error as { code?: string }).code === 'ERR_INVALID_ARG',
      );
    }
    const ring = IoUringActor.start();
    try {
      assert.throws(
        () => IoUringActor.attach(ring.id, { directDsync: 0 as unknown as boolean }),
        (error: unknown) => error instanceof TypeError && (error as { code?: string }).code === 'ERR_INVALID_ARG',
      );
    } finally {
      await ring.close();
    }
  });

  it('carries a store\'s commits, which read back after a reopen through the actor', async () => {
    const ring = IoUringActor.start({ directDsync: true });
    const path = `${dir}/store-${fileCount++}.ringstore`;
    const expected = new Map<string, Buffer>();
    try {
      const store = await BlockStore.open(path, { create: true, ring, encoding: 'binary' });
      // Awaited puts, concurrent puts (one commit for several) and a batch.
      for (let i = 0; i < 50; i++) {
        const value = pattern(1 + (i % 300), i);
        await store.put(`awaited-${i}`, value);
        expected.set(`awaited-${i}`, value);
      }
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => {
          const value = pattern(1 + (i % 200), 1000 + i);
          expected.set(`concurrent-${i}`, value);
          return store.put(`concurrent-${i}`, value);
        }),
      );
      const batch = Array.from({ length: 20 }, (_, i) => ({ type: 'put' as const, key: `batch-${i}`, value: pattern(64, 2000 + i) }));
      for (const op of batch) expected.set(op.key, op.value);
      await store.batch(batch);
      assert.ok(ring.stats().directWrites > 0, 'no commit went through the thread\'s ring');
      await store.close();
    } finally {
      await ring.close();
    }
    const reopened = await BlockStore.open(path, { encoding: 'binary' });
    try {
      for (const [key, value] of expected) assert.ok(Buffer.from((await reopened.get(key)) as Uint8Array).equals(value), key);
      assert.equal(reopened.stats().keys, expected.size);
    } finally {
      await reopened.close();
    }
  });
});
