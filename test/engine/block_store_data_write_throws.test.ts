// A value's data write that throws before it reaches the device (in the
// call itself, part way through a large value's chunks): the put is
// refused, and the blocks it took come back once the writes it did submit
// have settled — none leaked until a reopen, none freed under a write.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';

/** A SimulatedDevice whose `throwAt`-th write from now throws in the call (0: never). */
class ThrowingDevice extends SimulatedDevice {
  throwAt = 0;
  #writes = 0;
  inFlight = 0;

  override write(position: number, buffers: Uint8Array[]): Promise<void> {
    if (this.throwAt > 0 && ++this.#writes === this.throwAt) throw new Error('injected: the write call threw');
    this.inFlight++;
    return super.write(position, buffers).finally(() => this.inFlight--);
  }
}

describe('BlockStore when a data write throws in its call', () => {
  for (const [label, valueBytes, throwAt] of [
    ['the third chunk of a 1 MiB value', 1 << 20, 3],
    ['the first chunk of a 1 MiB value', 1 << 20, 1],
    ['a small extent value', 12_000, 1],
  ] as const) {
    it(`refuses the put and leaks no block: ${label}`, async () => {
      const device = new ThrowingDevice({ sizeBytes: 64 << 20 });
      const store = await BlockStore.open('throws', { device, create: true, encoding: 'binary' });
      await store.put('before', Buffer.alloc(300_000, 1));
      const before = await store.verifyIntegrity();
      device.throwAt = throwAt;
      await assert.rejects(store.put('refused', Buffer.alloc(valueBytes, 2)), /injected/);
      device.throwAt = 0;
      // The refusal waited for the writes submitted before the throw.
      assert.equal(device.inFlight, 0);
      const after = await store.verifyIntegrity();
      assert.equal(after.freeBlocks, before.freeBlocks, 'the refused value took no block for good');
      assert.equal(await store.get('refused'), undefined);
      await store.put('after', Buffer.alloc(valueBytes, 3));
      assert.deepEqual(await store.get('after'), Buffer.alloc(valueBytes, 3));
      assert.deepEqual(await store.get('before'), Buffer.alloc(300_000, 1));
      await store.close();
    });
  }
});
