// A process crash (kill -9), a reopen, then a power loss. The killed
// process leaves its last writes in the device's volatile cache: readable,
// not durable. An open that built on them without a flush (replayed the
// tail, vouched for it in its first commit's durableSequence, reused blocks
// an unflushed superblock freed) lost to the power loss what it acknowledged
// after: the store was refused as damaged in the middle of its log, or its
// free set overwritten (found by a review; open now flushes what recovery
// read before a writer builds on it, engine/block_store.ts).
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import type { BlockDevice } from '../../engine/block_device.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';

/**
 * The view one process has of a shared device: kill() is SIGKILL — the
 * process's later IO never reaches the device, and what the device's cache
 * holds stays there (neither flushed nor lost).
 */
class ProcessView implements BlockDevice {
  #killed = false;
  constructor(readonly device: SimulatedDevice) {}
  get sizeBytes(): number {
    return this.device.sizeBytes;
  }
  get ioAlignment(): number {
    return this.device.ioAlignment;
  }
  get trimAlignment(): number {
    return this.device.trimAlignment;
  }
  get blank(): boolean {
    return this.device.blank;
  }
  kill(): void {
    this.#killed = true;
  }
  /** SIGKILL at the next flush this process asks for: its writes have completed, the flush never runs. */
  killAtNextFlush = false;
  get killed(): boolean {
    return this.#killed;
  }
  #gate<T>(run: () => Promise<T>): Promise<T> {
    if (this.#killed) return new Promise<T>(() => undefined); // the process is gone: nothing completes
    return run();
  }
  read(position: number, buffer: Uint8Array): Promise<void> {
    return this.#gate(() => this.device.read(position, buffer));
  }
  readv(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#gate(() => this.device.readv(position, buffers));
  }
  write(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#gate(() => this.device.write(position, buffers));
  }
  writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    if (this.killAtNextFlush) return this.#gate(async () => {
      await this.device.write(position, buffers);
      this.kill();
      return new Promise<void>(() => undefined);
    });
    return this.#gate(() => this.device.writeAndSync(position, buffers));
  }
  writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#gate(() => this.device.writeDsync(position, buffers));
  }
  sync(): Promise<void> {
    if (this.killAtNextFlush) this.kill();
    return this.#gate(() => this.device.sync());
  }
  trim(position: number, length: number): Promise<void> {
    return this.#gate(() => this.device.trim(position, length));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  /** SIGKILL at the flush that follows the next superblock write (the superblock written, not durable). */
  killAfterSuperblockWrite = false;
  mark(phase: string): void {
    if (phase === 'superblock' && this.killAfterSuperblockWrite) this.killAtNextFlush = true;
  }
}

const OPTIONS = { walSizeBytes: 64 << 10, blockSize: 512, encoding: 'string' as const, idleCheckpointMs: 0 };

describe('kill -9, reopen, a write, power loss', function () {
  this.timeout(60_000);

  for (const firstSync of [false, true]) {
    it(`keeps the second session's acknowledged write (first session sync: ${firstSync})`, async () => {
      const device = new SimulatedDevice({ sizeBytes: 4 << 20 });
      // Session 1: a store with durable data, then one write whose commit is
      // visible on the device but not yet flushed when the process is killed.
      const first = new ProcessView(device);
      const store1 = await BlockStore.open('s1', { ...OPTIONS, device: first, create: true, sync: firstSync });
      await store1.put('durable', 'before');
      await store1.flush();
      if (firstSync) {
        // sync: true with an extent value: its frame is written, then flushed
        // (one linked write + fdatasync, or beside its data with an fdatasync
        // after both); the process dies after the writes completed, before the flush.
        first.killAtNextFlush = true;
        void store1.put('unflushed', 'x'.repeat(3000)).catch(() => undefined);
        for (let i = 0; i < 10_000 && !first.killed; i++) await new Promise((resolve) => setImmediate(resolve));
        assert.ok(first.killed, 'the put reached its flush');
      } else {
        // sync: false: resolves once written; killed before the deferred fdatasync (100 ms).
        await store1.put('unflushed', 'written, not flushed');
        first.kill();
      }
      assert.ok(device.pendingWriteCount > 0, 'the killed session left writes in the device cache');

      // Session 2 (a new process, sync: true): recovery replays the unflushed
      // commit; a put is acknowledged (durable).
      const second = new ProcessView(device);
      const store2 = await BlockStore.open('s2', { ...OPTIONS, device: second, sync: true });
      await store2.whenRecovered();
      await store2.put('acknowledged', 'durable in session 2');

      // Power loss: the cache's unflushed writes (session 1's) are lost.
      second.kill();
      const afterPowerLoss = device.crash({ keepProbability: 0 });
      const store3 = await BlockStore.open('s3', { ...OPTIONS, device: afterPowerLoss }).catch((error: unknown) => error as Error);
      if (store3 instanceof Error) assert.fail(`a store whose only loss is a never-acknowledged commit is refused: ${store3.message}`);
      try {
        await store3.whenRecovered();
        assert.equal(await store3.get('acknowledged'), 'durable in session 2', 'the acknowledged write of session 2 is lost');
        assert.equal(await store3.get('durable'), 'before');
      } finally {
        await store3.close();
      }
    });
  }
});

describe('kill -9 after a checkpoint wrote its superblock, reopen, power loss', function () {
  this.timeout(60_000);

  it('keeps the writes acknowledged in the first session', async () => {
    const device = new SimulatedDevice({ sizeBytes: 4 << 20 });
    const first = new ProcessView(device);
    const opts = { ...OPTIONS, encoding: 'binary' as const };
    const store1 = await BlockStore.open('s1', { ...opts, device: first, create: true, sync: true });
    const value = (i: number, n: number): Buffer => Buffer.alloc(n, i & 0xff);
    const keys = 200;
    for (let i = 0; i < keys; i++) await store1.put(`key-${String(i).padStart(4, '0')}`, value(i, 100));
    await store1.checkpoint(); // generation A: durable
    for (let i = 0; i < keys; i++) await store1.put(`key-${String(i).padStart(4, '0')}`, value(i + 1, 100)); // acknowledged
    // The next checkpoint writes its pages and free set, flushes, writes its
    // superblock: the process dies before that superblock's flush.
    first.killAfterSuperblockWrite = true;
    void store1.checkpoint().catch(() => undefined);
    for (let i = 0; i < 100_000 && !first.killed; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.ok(first.killed, 'killed at the superblock flush');
    const leftInCache = device.pendingWriteCount;
    assert.ok(leftInCache > 0, 'the superblock copies are in the device cache');

    // Session 2: opens from the superblock in the cache; puts values (extent
    // data into blocks that superblock's free set gives, among them the
    // pages it replaced); the power fails before the put's flush.
    const second = new ProcessView(device);
    const store2 = await BlockStore.open('s2', { ...opts, device: second, sync: true });
    await store2.whenRecovered();
    second.killAtNextFlush = true;
    const puts = [];
    for (let i = 0; i < 40; i++) puts.push(store2.put(`big-${i}`, value(i, 3000)).catch(() => undefined));
    for (let i = 0; i < 100_000 && !second.killed; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.ok(second.killed);
    // Power loss: session 1's unflushed superblock copies are lost, session 2's unflushed writes land.
    let n = 0;
    const image = device.crash({ random: () => (n++ < leftInCache ? 0.99 : 0), tornWrites: false });
    const store3 = await BlockStore.open('s3', { ...opts, device: image });
    try {
      await store3.whenRecovered();
      const wrong: string[] = [];
      for (let i = 0; i < keys; i++) {
        const key = `key-${String(i).padStart(4, '0')}`;
        try {
          const got = (await store3.get(key)) as Buffer | undefined;
          if (got === undefined || !Buffer.from(got).equals(value(i + 1, 100))) wrong.push(`${key}: ${got === undefined ? 'missing' : 'wrong value'}`);
        } catch (error) {
          wrong.push(`${key}: ${(error as { code?: string }).code} ${(error as Error).message}`);
        }
      }
      assert.deepEqual(wrong, [], 'acknowledged writes of session 1 lost');
    } finally {
      await store3.close();
    }
  });
});
