// Concurrent writes on a store that can grow (found by a review): each
// refused write used to wait for at most 3 growths, each sized for one
// write, so writers that kept losing the room of a growth to the others were
// refused with ERR_STORE_FULL while the device had room to spare (37 of 64
// here). Growths now add what the writers that joined them asked for, and a
// write may wait for up to GROWTH_ATTEMPTS_MAX of them.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { pattern } from './helpers.js';

describe('BlockStore concurrent writes on a growing store', function () {
  this.timeout(120_000);

  it('stores all of 64 concurrent 1 MiB puts on a 4 MiB store that may grow to 128 MiB (none refused with ERR_STORE_FULL)', async () => {
    const device = new SimulatedDevice({ sizeBytes: 4 << 20, sizeBytesMax: 128 << 20 });
    const store = await BlockStore.open('concurrent', { device, create: true, encoding: 'binary' });
    try {
      const puts = Array.from({ length: 64 }, (_, i) => store.put(`value-${i}`, pattern(1 << 20, i)));
      const results = await Promise.allSettled(puts);
      const refused = results.flatMap((result, i) => (result.status === 'rejected' ? [`value-${i}: ${(result.reason as Error).message}`] : []));
      assert.deepEqual(refused.slice(0, 3), [], `${refused.length} of 64 puts refused; the store is ${store.stats().blocksTotal * 4096} bytes of a device that holds ${128 << 20}`);
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });
});
