// Pipelined group commit: the next commit's WAL write is submitted while the
// previous one's is still in flight; commits are applied and acknowledged in
// order, each only once it and every commit before it are durable. A power
// loss that keeps a later commit but not an earlier one loses neither
// acknowledged write and never brings the later one back. A commit with
// extent data still being written has its WAL write submitted beside the
// data; recovery drops it if the data did not reach the disk.
// Writes are held on a simulated device to make each ordering happen on
// every run. A review found the cases of the last three blocks: a commit
// refused (a page it needs cannot be read) behind one in flight settled its
// writes first, so flush() and close() returned before the earlier write
// was durable; and a commit with an inline write beside an extent one never
// took the linked WAL write + fdatasync.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { pattern, rejectsWithCode } from './helpers.js';

const DEVICE_BYTES = 8 << 20;

interface Hold {
  /** Resolves when the held write was asked for. */
  reached: Promise<void>;
  /** Lets it go on (or fail with `error`, never reaching the device). */
  release(error?: Error): void;
}

/** A simulated device whose next write of a phase ('wal': a commit's WAL frame; 'data': extent data) can be held. */
class HoldingDevice extends SimulatedDevice {
  #phase = '';
  readonly #holds = new Map<string, { reachedResolve: () => void; released: Promise<Error | undefined>; hold: Hold }>();
  /** WAL writes asked for and not completed yet. */
  walWritesInFlight = 0;
  walWritesInFlightMax = 0;
  walWritesCompleted = 0;

  hold(phase: 'wal' | 'data'): Hold {
    let reachedResolve!: () => void;
    const reached = new Promise<void>((resolve) => (reachedResolve = resolve));
    let release!: (error?: Error) => void;
    const released = new Promise<Error | undefined>((resolve) => (release = resolve));
    const hold = { reached, release };
    this.#holds.set(phase, { reachedResolve, released, hold });
    return hold;
  }

  mark(phase: string): void {
    this.#phase = phase;
  }

  async #gate(phase: string): Promise<void> {
    const held = this.#holds.get(phase);
    if (held === undefined) return;
    this.#holds.delete(phase);
    held.reachedResolve();
    const error = await held.released;
    if (error !== undefined) throw error;
  }

  async #walWrite(write: () => Promise<void>): Promise<void> {
    this.walWritesInFlight++;
    this.walWritesInFlightMax = Math.max(this.walWritesInFlightMax, this.walWritesInFlight);
    try {
      await this.#gate('wal');
      await write();
      this.walWritesCompleted++;
    } finally {
      this.walWritesInFlight--;
    }
  }

  override write(position: number, buffers: Uint8Array[]): Promise<void> {
    const phase = this.#phase;
    if (phase === 'wal') return this.#walWrite(() => super.write(position, buffers));
    return this.#gate(phase).then(() => super.write(position, buffers));
  }

  override writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#walWrite(() => super.writeDsync(position, buffers));
  }

  override writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    return this.#walWrite(() => super.writeAndSync(position, buffers));
  }
}

function openOn(device: SimulatedDevice, create: boolean): Promise<BlockStore> {
  return BlockStore.open('pipelined', { device, create, encoding: 'binary' });
}

/** Lets every IO that is not held complete (the simulated device completes in microtasks). */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

/**
 * Waits until `done()` holds, up to 10 s (then the assertion after it
 * fails): what settle() gives on an idle machine, where 20 ms was not
 * always enough on a loaded one (a full run beside other work failed one).
 */
async function until(done: () => boolean): Promise<void> {
  for (let waitedMs = 0; !done() && waitedMs < 10_000; waitedMs += 5) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('BlockStore pipelined commits', () => {
  it('submits the next commit while the previous one is in flight, and acknowledges them in commit order', async () => {
    const device = new HoldingDevice({ sizeBytes: DEVICE_BYTES });
    const store = await openOn(device, true);
    await store.put('before', pattern(100, 1));
    const held = device.hold('wal');
    const order: string[] = [];
    const completedBefore = device.walWritesCompleted;
    const first = store.put('first', pattern(100, 2)).then(() => order.push('first'));
    await held.reached;
    const second = store.put('second', pattern(100, 3)).then(() => order.push('second'));
    await until(() => device.walWritesCompleted > completedBefore);
    await settle();
    assert.equal(device.walWritesInFlightMax, 2, "the second commit's WAL write was submitted while the first one's was held");
    assert.equal(device.walWritesInFlight, 1, "the second commit's WAL write completed");
    assert.deepEqual(order, [], 'nothing is acknowledged while an earlier commit is not durable');
    assert.equal(await store.get('second'), undefined, 'a commit is not visible before the ones before it are applied');
    held.release();
    await Promise.all([first, second]);
    assert.deepEqual(order, ['first', 'second']);
    assert.deepEqual(await store.get('second'), pattern(100, 3));
    await store.verifyIntegrity();
    await store.close();
  });

  it('loses neither acknowledged write nor resurrects the later commit after a power loss that kept only the later one', async () => {
    const device = new HoldingDevice({ sizeBytes: DEVICE_BYTES });
    const store = await openOn(device, true);
    await store.put('before', pattern(100, 1));
    const walWritesBefore = device.walWritesCompleted;
    const held = device.hold('wal');
    const first = store.put('first', pattern(100, 2));
    await held.reached;
    const second = store.put('later', pattern(100, 3));
    await until(() => device.walWritesCompleted > walWritesBefore);
    assert.equal(device.walWritesCompleted, walWritesBefore + 1, "the later commit's RWF_DSYNC write is durable");
    assert.equal(device.walWritesInFlight, 1, "the first commit's write never reached the device");
    // Power fails: nothing pending survives; the later commit's frame is on the disk.
    const afterCrash = device.crash({ keepProbability: 0 });
    held.release();
    await Promise.allSettled([first, second]);

    const reopened = await openOn(afterCrash, false);
    assert.deepEqual(await reopened.get('before'), pattern(100, 1));
    assert.equal(await reopened.get('first'), undefined);
    assert.equal(await reopened.get('later'), undefined, 'a commit after a missing one is not replayed');
    // A commit of the same size takes the missing one's sequence and place:
    // the later commit's frame would follow it exactly, were it not erased.
    await reopened.put('again', pattern(100, 4));
    const afterSecondCrash = afterCrash.crash({ keepProbability: 0 });
    const again = await openOn(afterSecondCrash, false);
    assert.deepEqual(await again.get('again'), pattern(100, 4));
    assert.equal(await again.get('later'), undefined, 'the stale frame of the unacknowledged commit never comes back');
    await again.verifyIntegrity();
    await again.close();
  });

  it("submits a commit's WAL write beside its extent data still in flight, and recovery drops it if the data was lost", async () => {
    const device = new HoldingDevice({ sizeBytes: DEVICE_BYTES });
    const store = await openOn(device, true);
    await store.put('before', pattern(20_000, 1));
    const walWritesBefore = device.walWritesCompleted;
    const heldData = device.hold('data');
    const put = store.put('blob', pattern(20_000, 2));
    put.catch(() => undefined);
    await heldData.reached;
    await until(() => device.walWritesCompleted > walWritesBefore);
    assert.equal(device.walWritesCompleted, walWritesBefore + 1, 'the WAL write completed while the data write was held');
    const afterCrash = device.crash({ keepProbability: 1, tornWrites: false });
    heldData.release();
    await put.catch(() => undefined);

    const reopened = await openOn(afterCrash, false);
    assert.deepEqual(await reopened.get('before'), pattern(20_000, 1));
    assert.equal(await reopened.get('blob'), undefined, 'a commit whose extent data is missing is dropped, not read as wrong data');
    await reopened.verifyIntegrity();
    await reopened.close();
  });

  it('fails a later commit whose write succeeded when an earlier one in flight fails, acknowledging neither', async () => {
    const device = new HoldingDevice({ sizeBytes: DEVICE_BYTES });
    const store = await openOn(device, true);
    await store.put('before', pattern(100, 1));
    const held = device.hold('wal');
    const completedBefore = device.walWritesCompleted;
    const first = store.put('first', pattern(100, 2));
    first.catch(() => undefined);
    await held.reached;
    const second = store.put('second', pattern(100, 3));
    second.catch(() => undefined);
    // The later commit's write succeeds while the earlier one's is held.
    await until(() => device.walWritesCompleted > completedBefore);
    const eio = Object.assign(new Error('EIO: i/o error, pwritev'), { errno: -5, code: 'EIO', syscall: 'pwritev' });
    held.release(eio);
    const firstError = await rejectsWithCode(() => first, 'ERR_STORE_FAILED');
    assert.equal(firstError.cause, eio);
    const secondError = await rejectsWithCode(() => second, 'ERR_STORE_FAILED');
    assert.equal(secondError.cause, eio, 'the later commit fails with the earlier one');
    assert.equal(await store.get('second'), undefined, 'the later commit is never applied');
    assert.deepEqual(await store.get('before'), pattern(100, 1), 'reads of acknowledged data go on');
    await store.close().catch(() => undefined);
  });
});

const REFUSAL_DEVICE_BYTES = 16 << 20;

/** Holds the next WAL write (mark 'wal'); fails the next read when armed. */
class RefusingDevice extends SimulatedDevice {
  #phase = '';
  #walHold: { reached: () => void; released: Promise<void> } | undefined;
  failNextRead = false;

  holdWal(): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.#walHold = { reached, released };
    return { reached: reachedPromise, release };
  }

  mark(phase: string): void {
    this.#phase = phase;
  }

  async #gate(): Promise<void> {
    const hold = this.#walHold;
    if (hold === undefined || this.#phase !== 'wal') return;
    this.#walHold = undefined;
    hold.reached();
    await hold.released;
  }

  override async read(position: number, buffer: Uint8Array): Promise<void> {
    if (this.failNextRead) {
      this.failNextRead = false;
      throw Object.assign(new Error('EIO: i/o error, read'), { errno: -5, code: 'EIO', syscall: 'read' });
    }
    return super.read(position, buffer);
  }

  override async readv(position: number, buffers: Uint8Array[]): Promise<void> {
    if (this.failNextRead) {
      this.failNextRead = false;
      throw Object.assign(new Error('EIO: i/o error, read'), { errno: -5, code: 'EIO', syscall: 'read' });
    }
    return super.readv(position, buffers);
  }

  override async writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.#gate();
    return super.writeDsync(position, buffers);
  }

  override async writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    await this.#gate();
    return super.writeAndSync(position, buffers);
  }
}

const key = (i: number): string => `key-${String(i).padStart(5, '0')}`;

/** A store of 3000 keys, reopened: only the pages on the paths of the keys read since are in memory. */
async function reopenedWithColdPages(): Promise<{ device: RefusingDevice; store: BlockStore }> {
  const seed = new SimulatedDevice({ sizeBytes: REFUSAL_DEVICE_BYTES });
  const seeded = await BlockStore.open('review', { device: seed, create: true, encoding: 'binary' });
  for (let i = 0; i < 3000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => seeded.put(key(i + j), pattern(100, 1))));
  await seeded.close();
  const device = new RefusingDevice({ sizeBytes: REFUSAL_DEVICE_BYTES }, seed.snapshot());
  return { device, store: await BlockStore.open('review', { device, create: false, encoding: 'binary' }) };
}

describe('BlockStore pipelined commits: a refused commit behind one in flight (found by a review)', () => {
  it('flush() does not resolve while an earlier write is not durable, when a later commit is refused', async () => {
    const { device, store } = await reopenedWithColdPages();
    const order: string[] = [];
    const held = device.holdWal();
    const first = store.put(key(0), pattern(100, 2)).then(
      () => order.push('first acknowledged'),
      () => order.push('first rejected'),
    );
    await held.reached;
    device.failNextRead = true; // the later commit's prepare cannot read its leaf: CommitRefused
    const second = store.put(key(2999), pattern(100, 3)).then(
      () => order.push('second acknowledged'),
      () => order.push('second rejected'),
    );
    const flushed = store.flush().then(() => order.push('flush resolved'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const beforeRelease = [...order];
    held.release();
    await Promise.all([first, second, flushed]);
    assert.deepEqual(beforeRelease, [], `settled while the first commit's WAL write was still held: ${beforeRelease.join(', ')}`);
    await store.close();
  });

  it('close() does not finish (nor mark the store clean) while an earlier commit is in flight, when a later commit is refused', async () => {
    const { device, store } = await reopenedWithColdPages();
    const order: string[] = [];
    const held = device.holdWal();
    const first = store.put(key(0), pattern(100, 2)).then(
      () => order.push('first acknowledged'),
      (error: Error) => order.push(`first rejected: ${error.message}`),
    );
    await held.reached;
    device.failNextRead = true;
    const second = store.put(key(2999), pattern(100, 3)).catch(() => undefined);
    const closed = store.close().then(
      () => order.push('close resolved'),
      (error: Error) => order.push(`close rejected: ${error.message}`),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const beforeRelease = [...order];
    held.release();
    await Promise.all([first, second, closed]);
    assert.deepEqual(beforeRelease, [], `while the first commit's WAL write was held: ${beforeRelease.join(', ')}; then: ${order.slice(beforeRelease.length).join(', ')}`);
  });
});

/**
 * Holds RWF_DSYNC writes (a commit of inline records) while `holding`, and
 * plain writes of extent data while `holdingData`; counts checkpoint page
 * writes.
 */
class GateDevice extends SimulatedDevice {
  phase = '';
  holding = false;
  holdingData = false;
  readonly held: (() => void)[] = [];
  readonly heldData: (() => void)[] = [];
  checkpointWrites = 0;
  mark(phase: string): void {
    this.phase = phase;
  }
  override async write(position: number, buffers: Uint8Array[]): Promise<void> {
    if (this.phase === 'checkpoint') this.checkpointWrites++;
    if (this.phase === 'data' && this.holdingData) await new Promise<void>((resolve) => this.heldData.push(resolve));
    return super.write(position, buffers);
  }
  override async writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    if (this.holding) await new Promise<void>((resolve) => this.held.push(resolve));
    return super.writeDsync(position, buffers);
  }
}


describe('BlockStore pipelined commits: a checkpoint written while a commit is in flight (from a review)', () => {
  it('replays the in-flight commit after a crash following a checkpoint taken while it was in flight', async () => {
    const device = new GateDevice({ sizeBytes: 8 << 20 });
    const store = await BlockStore.open('gate', { device, create: true, encoding: 'binary', walSizeBytes: 64 << 10 });
    for (let i = 0; i < 6; i++) await store.put(`pre-${i}`, pattern(100, i));
    await settle();
    const checkpointWritesBefore = device.checkpointWrites;
    const checkpointsBefore = store.stats().checkpoints;
    device.holding = true;
    const a = store.put('a', pattern(100, 50));
    await until(() => device.held.length === 1);
    // b: an extent value, its data write held; its WAL write goes out beside
    // it, and its fdatasync after both. No flush of b's is in flight while
    // its data is held, so a's is not held back for it (FlushLedger holds a
    // success only behind other flushes).
    device.holdingData = true;
    const b = store.put('b', pattern(20_000, 51));
    await until(() => device.heldData.length === 1);
    device.holding = false;
    device.held.shift()!();
    await a;
    await until(() => device.checkpointWrites > checkpointWritesBefore);
    assert.ok(device.checkpointWrites > checkpointWritesBefore, 'a checkpoint ran while b was in flight');
    // ...and ended, its superblock durable: the crash below reopens from
    // it, so its WAL replay position must not be past b's frame (found by a
    // review: waiting for its first page write only, the crash reopened from
    // the superblock before it and the test passed a checkpoint skipping b).
    await until(() => store.stats().checkpoints > checkpointsBefore);
    device.holdingData = false;
    device.heldData.shift()!();
    await b;
    const image = device.crash({ keepProbability: 0 });
    const reopened = await BlockStore.open('gate', { device: image, create: false, encoding: 'binary' });
    assert.deepEqual(await reopened.get('a'), pattern(100, 50));
    assert.deepEqual(await reopened.get('b'), pattern(20_000, 51));
    await reopened.verifyIntegrity();
    await reopened.close();
  });
});

class CountingDevice extends SimulatedDevice {
  holding = false;
  readonly held: (() => void)[] = [];
  writeAndSyncs = 0;
  syncs = 0;
  override async writeDsync(position: number, buffers: Uint8Array[]): Promise<void> {
    if (this.holding) await new Promise<void>((resolve) => this.held.push(resolve));
    return super.writeDsync(position, buffers);
  }
  override writeAndSync(position: number, buffers: Uint8Array[]): Promise<void> {
    this.writeAndSyncs++;
    return super.writeAndSync(position, buffers);
  }
  override sync(): Promise<void> {
    this.syncs++;
    return super.sync();
  }
}


describe('BlockStore pipelined commits: a commit whose extent data is written already (found by a review)', () => {
  for (const withInline of [false, true]) {
    it(`goes out as one linked WAL write + fdatasync when the extent data is written already${withInline ? ', with an inline write in the same commit' : ''}`, async () => {
      const device = new CountingDevice({ sizeBytes: 8 << 20 });
      const store = await BlockStore.open('count', { device, create: true, encoding: 'binary' });
      await store.put('pre', pattern(100, 1));
      device.holding = true;
      const blocker = store.put('blocker', pattern(100, 2));
      await settle();
      device.holding = false;
      const blocker2 = store.put('blocker2', pattern(100, 2)); // fills the second pipeline slot
      await settle();
      const writes = [store.put('extent', pattern(20_000, 3))];
      if (withInline) writes.push(store.put('inline', pattern(100, 4)));
      await settle(); // the extent data is written now
      const before = { writeAndSyncs: device.writeAndSyncs, syncs: device.syncs };
      device.held.shift()!();
      await Promise.all([blocker, blocker2, ...writes]);
      // (SimulatedDevice.writeAndSync calls sync() itself: one sync either way.)
      assert.deepEqual({ writeAndSyncs: device.writeAndSyncs - before.writeAndSyncs, syncs: device.syncs - before.syncs }, { writeAndSyncs: 1, syncs: 1 });
      await store.close();
    });
  }
});
