// Point lookups right after opening a large store, while the lookup map is
// still being filled in the background: every answer matches the data,
// including keys written or deleted during the fill.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';

const KEY_COUNT = 250_000; // more than one fill slice (100 000 keys)
const BATCH = 5_000;

function key(i: number): string {
  return `k${String(i).padStart(7, '0')}`;
}

describe('BlockStore lookups while the lookup map fills after open', function () {
  this.timeout(120_000);

  it('answers get/has from the data before, during and after the fill, with writes during it', async () => {
    const device = new SimulatedDevice({ sizeBytes: 96 << 20 });
    const store = await BlockStore.open('lookup', { device, create: true, encoding: 'string' });
    for (let start = 0; start < KEY_COUNT; start += BATCH) {
      await store.batch(Array.from({ length: BATCH }, (_, i) => ({ type: 'put' as const, key: key(start + i), value: `v${start + i}` })));
    }
    await store.close();

    const reopened = await BlockStore.open('lookup', { device: device.crash({ keepProbability: 1 }), encoding: 'string' });
    // Right after open: the fill has only just started.
    assert.equal(await reopened.get(key(KEY_COUNT - 1)), `v${KEY_COUNT - 1}`);
    await reopened.put(key(KEY_COUNT - 2), 'changed during the fill');
    assert.equal(await reopened.delete(key(KEY_COUNT - 3)), true);
    await reopened.put('new-during-fill', 'fresh');
    assert.equal(await reopened.get(key(KEY_COUNT - 2)), 'changed during the fill');
    assert.equal(await reopened.has(key(KEY_COUNT - 3)), false);
    // Let the fill finish, then check every key through the map.
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (let i = 0; i < KEY_COUNT; i += 997) {
      if (i === KEY_COUNT - 2 || i === KEY_COUNT - 3) continue;
      assert.equal(await reopened.get(key(i)), `v${i}`, key(i));
    }
    assert.equal(await reopened.get(key(KEY_COUNT - 2)), 'changed during the fill');
    assert.equal(await reopened.get(key(KEY_COUNT - 3)), undefined, 'a key deleted during the fill came back');
    assert.equal(await reopened.get('new-during-fill'), 'fresh');
    assert.equal(await reopened.get(key(KEY_COUNT - 1)), `v${KEY_COUNT - 1}`);
    await reopened.close();
  });
});
