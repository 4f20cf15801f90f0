// The clean-close mark (superblock flag bit 0): close() records that every
// commit is in the checkpoint, so the next open reads no WAL; the first
// commit after such an open clears it, durably, before its own WAL write —
// else a crash after that commit would leave a superblock telling recovery
// to skip the WAL that holds it.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { SUPERBLOCK_SIZE } from '../../format/constants.js';
import { decodeSuperblock, superblockSlotBlock, superblockSlotsFor } from '../../format/superblock.js';

const DEVICE_BYTES = 16 << 20;

function newestSuperblock(device: SimulatedDevice, blockSize: number): ReturnType<typeof decodeSuperblock> {
  const image = device.snapshot();
  const copies = [0, 1].map((slot) => decodeSuperblock(image.subarray(slot * blockSize, slot * blockSize + SUPERBLOCK_SIZE), slot));
  return copies.reduce((a, b) => (b.generation > a.generation ? b : a));
}

describe('BlockStore clean close', () => {
  it('marks a store closed cleanly, and the next open finds every key without a WAL replay', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open('clean', { device, create: true, encoding: 'string' });
    for (let i = 0; i < 50; i++) await store.put(`k${i}`, `v${i}`);
    await store.close();
    assert.equal(newestSuperblock(device, 4096).clean, true);
    const reopened = await BlockStore.open('clean', { device: device.crash({ keepProbability: 1 }) });
    try {
      for (let i = 0; i < 50; i++) assert.equal(await reopened.get(`k${i}`), `v${i}`);
    } finally {
      await reopened.close();
    }
  });

  it('writes the mark with the checkpoint close() writes, in one superblock generation, not a second one after it', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open('clean', { device, create: true, encoding: 'string' });
    for (let i = 0; i < 50; i++) await store.put(`k${i}`, `v${i}`);
    const before = newestSuperblock(device, 4096);
    assert.equal(before.clean, false);
    await store.close();
    const after = newestSuperblock(device, 4096);
    assert.equal(after.generation, before.generation + 1, 'one superblock for the checkpoint and the mark');
    assert.equal(after.clean, true);
    assert.ok(after.checkpointSeq > before.checkpointSeq, 'it is the checkpoint of the puts');
    const reopened = await BlockStore.open('clean', { device: device.crash({ keepProbability: 1 }) });
    try {
      assert.equal(reopened.stats().keys, 50);
      for (let i = 0; i < 50; i++) assert.equal(await reopened.get(`k${i}`), `v${i}`);
    } finally {
      await reopened.close();
    }
  });

  it('opens from the generation before a clean close when both copies of the clean one are lost, and replays the WAL after it', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open('clean', { device, create: true, encoding: 'string' });
    for (let i = 0; i < 30; i++) await store.put(`k${i}`, `v${i}`);
    await store.checkpoint();
    for (let i = 30; i < 60; i++) await store.put(`k${i}`, `v${i}`);
    await store.close();
    const clean = newestSuperblock(device, 4096);
    assert.equal(clean.clean, true);
    const bytes = device.snapshot();
    for (const slot of superblockSlotsFor(clean.generation)) {
      const block = superblockSlotBlock(slot, clean.walStartBlock, clean.walBlockCount);
      bytes.fill(0, block * 4096, (block + 1) * 4096);
    }
    const reopened = await BlockStore.open('clean', { device: new SimulatedDevice({ sizeBytes: bytes.length }, bytes) });
    try {
      // The WAL after the earlier checkpoint is replayed (in the background: wait for it).
      await reopened.whenRecovered();
      assert.equal(reopened.stats().keys, 60);
      for (let i = 0; i < 60; i++) assert.equal(await reopened.get(`k${i}`), `v${i}`);
      await reopened.verifyIntegrity();
    } finally {
      await reopened.close();
    }
  });

  it('keeps the first acknowledged write after a clean open through a power loss', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open('clean', { device, create: true, encoding: 'string' });
    await store.put('before', 'checkpointed');
    await store.close();
    for (const keepProbability of [0, 0.5, 1]) {
      const image = device.crash({ keepProbability: 1 });
      const reopened = await BlockStore.open('clean', { device: image });
      await reopened.put('after', `acknowledged (${keepProbability})`);
      assert.equal(newestSuperblock(image, 4096).clean, false, 'the mark is cleared before the commit is written');
      // Power loss right after the acknowledgement, with or without the writes not yet flushed.
      const crashed = image.crash({ keepProbability });
      await reopened.close().catch(() => undefined);
      const recovered = await BlockStore.open('clean', { device: crashed });
      try {
        assert.equal(await recovered.get('after'), `acknowledged (${keepProbability})`);
        assert.equal(await recovered.get('before'), 'checkpointed');
      } finally {
        await recovered.close();
      }
    }
  });

  it('scans the WAL anyway when the write that cleared the mark was lost, and keeps the commit after it', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open('clean', { device, create: true, encoding: 'string' });
    await store.put('before', 'checkpointed');
    await store.close();
    const clean = newestSuperblock(device, 4096);
    const image = device.crash({ keepProbability: 1 });
    const reopened = await BlockStore.open('clean', { device: image });
    await reopened.put('after', 'acknowledged');
    const bytes = image.snapshot();
    await reopened.close().catch(() => undefined);
    // Both copies of the generation that cleared the mark lost: the clean
    // generation is the newest valid one again.
    for (const slot of superblockSlotsFor(clean.generation + 1)) {
      const block = superblockSlotBlock(slot, clean.walStartBlock, clean.walBlockCount);
      bytes.fill(0, block * 4096, (block + 1) * 4096);
    }
    const recovered = await BlockStore.open('clean', { device: new SimulatedDevice({ sizeBytes: bytes.length }, bytes) });
    try {
      assert.equal(await recovered.get('after'), 'acknowledged');
    } finally {
      await recovered.close();
    }
  });
});
