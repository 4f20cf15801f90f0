// close() while a refused write's growth is about to start: no IO after the
// device has closed (a growth running after it would write to a closed
// device and fail the put), and the batch, called before close(), is
// finished and kept (engine/growth_wait.ts).
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { HeldSyncs, pattern } from './helpers.js';

class ClosingDevice extends SimulatedDevice {
  isClosed = false;
  opsAfterClose: string[] = [];
  override async write(position: number, buffers: Uint8Array[]): Promise<void> {
    if (this.isClosed) this.opsAfterClose.push(`write@${position}`);
    return super.write(position, buffers);
  }
  override async sync(): Promise<void> {
    if (this.isClosed) this.opsAfterClose.push('sync');
    return super.sync();
  }
  override async grow(sizeBytes: number): Promise<void> {
    if (this.isClosed) this.opsAfterClose.push(`grow ${sizeBytes}`);
    return super.grow(sizeBytes);
  }
  override async close(): Promise<void> {
    this.isClosed = true;
    return super.close();
  }
}

/**
 * A ClosingDevice whose growths take a while, whose next sync() can be
 * held, and which runs no deferred fdatasync on its own; it counts the
 * growths started once `closing` is set.
 */
class SlowGrowthDevice extends ClosingDevice {
  closing = false;
  growthsWhileClosing = 0;
  readonly syncs = new HeldSyncs();

  deferTask(): () => void {
    return () => undefined;
  }

  /** The next sync() covers what is written by then but resolves only once the returned function is called. */
  holdNextSync(): () => void {
    return this.syncs.holdNext();
  }

  override sync(): Promise<void> {
    return this.syncs.around(super.sync());
  }

  override async grow(sizeBytes: number): Promise<void> {
    if (this.closing) this.growthsWhileClosing++;
    await new Promise((resolve) => setTimeout(resolve, 50));
    return super.grow(sizeBytes);
  }
}

describe('BlockStore close() and growth', function () {
  this.timeout(120_000);

  it('does no IO after the device closed when close() follows a batch that must grow the store, and finishes and keeps the batch', async () => {
    const device = new ClosingDevice({ sizeBytes: 4 << 20, sizeBytesMax: 64 << 20 });
    const store = await BlockStore.open('closing', { device, create: true, encoding: 'binary' });
    // More than the store's free blocks: the put is refused for room, and waits for a growth.
    const put = store.batch([
      { type: 'put', key: 'a', value: pattern(1536 << 10, 1) },
      { type: 'put', key: 'b', value: pattern(1536 << 10, 2) },
    ]);
    const closed = store.close();
    const outcome = await put.then(
      () => 'stored',
      (error: unknown) => (error as { code?: string }).code ?? String(error),
    );
    await closed;
    assert.deepEqual(device.opsAfterClose, [], `IO after close (put: ${outcome})`);
    assert.equal(outcome, 'stored', 'close() finishes the writes called before it');
    const reopened = await BlockStore.open('closing', { device: device.crash(), encoding: 'binary' });
    try {
      assert.deepEqual(await reopened.get('b'), pattern(1536 << 10, 2), 'an acknowledged write is lost');
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('grows nothing for a write stream not ended once close() has begun, also when its wait for reclaimed blocks ends after it (the growth ran beside close() and past the device close; found by a review)', async () => {
    const device = new SlowGrowthDevice({ sizeBytes: 4 << 20, sizeBytesMax: 64 << 20 });
    const store = await BlockStore.open('closing', { device, create: true, encoding: 'binary', sync: false });
    await store.put('small', pattern(64 << 10, 1));
    await store.flush();
    // Nearly full, without a growth ahead: the rest of the room in one stream.
    const fill = store.createWriteStream('fill');
    await new Promise<void>((resolve, reject) => {
      fill.on('error', reject);
      fill.end(pattern((store.stats().blocksFree - 150) * 4096, 2), resolve);
    });
    assert.equal(store.stats().growths, 0);
    // A read holds what is freed from now on, past the flush that frees it.
    const reading = store.createReadStream('fill');
    reading.pause();
    reading.on('error', () => undefined);
    const overwrite = store.createWriteStream('small');
    await new Promise<void>((resolve, reject) => {
      overwrite.on('error', reject);
      overwrite.end(pattern(64 << 10, 3), resolve);
    });
    // A stream's chunk finds no room and waits for the blocks the overwrite
    // freed (their flush held); close() begins meanwhile, and the flush then
    // frees nothing the read does not hold.
    const releaseSync = device.holdNextSync();
    const stream = store.createWriteStream('big');
    const streamErrors: unknown[] = [];
    stream.on('error', (error) => streamErrors.push(error));
    stream.write(pattern(1 << 20, 4));
    await new Promise((resolve) => setTimeout(resolve, 20));
    device.closing = true;
    const closed = store.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    releaseSync();
    await closed;
    reading.destroy();
    assert.equal(device.growthsWhileClosing, 0, 'a growth started while close() ran');
    assert.deepEqual(device.opsAfterClose, []);
    assert.equal(store.failure, undefined);
    assert.equal(streamErrors.length, 1);
    assert.equal((streamErrors[0] as { code?: string }).code, 'ERR_STORE_CLOSED');
  });
});
