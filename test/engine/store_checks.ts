// Checks shared by the engine's tests: the store's own integrity check and
// the independent fsck (format/ only) over the device image.
import assert from 'node:assert/strict';

import type { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { fsckImage, memoryImage } from '../../tools/fsck.js';

export async function checkStoreImage(store: BlockStore, device?: SimulatedDevice): Promise<void> {
  const integrity = await store.verifyIntegrity();
  assert.ok(integrity.keys >= 0);
  if (device !== undefined) {
    const report = fsckImage(memoryImage(device.snapshot()));
    assert.deepEqual(report.errors, [], `fsck: ${report.errors.join('; ')}`);
    assert.ok(report.ok);
  }
}
