// close() while a refused write's growth is about to start: no IO after the
// device has closed (a growth running after it would write to a closed
// device and fail the put), and the batch, called before close(), is
// finished and kept (engine/growth_wait.ts).
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { pattern } from './helpers.js';

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
});
