// Pipelined group commit: the next commit's WAL write is submitted while the
// previous one's is still in flight; commits are applied and acknowledged in
// order, each only once it and every commit before it are durable. A power
// loss that keeps a later commit but not an earlier one loses neither
// acknowledged write and never brings the later one back. A commit with
// extent data still being written has its WAL write submitted beside the
// data; recovery drops it if the data did not reach the disk.
// Writes are held on a simulated device to make each ordering happen on
// every run.
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

describe('BlockStore pipelined commits', () => {
  it('submits the next commit while the previous one is in flight, and acknowledges them in commit order', async () => {
    const device = new HoldingDevice({ sizeBytes: DEVICE_BYTES });
    const store = await openOn(device, true);
    await store.put('before', pattern(100, 1));
    const held = device.hold('wal');
    const order: string[] = [];
    const first = store.put('first', pattern(100, 2)).then(() => order.push('first'));
    await held.reached;
    const second = store.put('second', pattern(100, 3)).then(() => order.push('second'));
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
    await settle();
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
    await settle();
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
    const first = store.put('first', pattern(100, 2));
    first.catch(() => undefined);
    await held.reached;
    const second = store.put('second', pattern(100, 3));
    second.catch(() => undefined);
    await settle();
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
