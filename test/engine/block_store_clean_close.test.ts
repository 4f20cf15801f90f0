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
import { newestSuperblock } from './helpers.js';

const DEVICE_BYTES = 16 << 20;

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

  it('leaves the close\'s checkpoint in both slot pairs, so losing both copies of the clean generation still opens with every key', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const store = await BlockStore.open('clean', { device, create: true, encoding: 'string' });
    for (let i = 0; i < 30; i++) await store.put(`k${i}`, `v${i}`);
    await store.checkpoint();
    for (let i = 30; i < 60; i++) await store.put(`k${i}`, `v${i}`);
    await store.close();
    const clean = newestSuperblock(device, 4096);
    assert.equal(clean.clean, true);
    // The generation before the clean one names the same checkpoint: a
    // double fault on the clean pair needs nothing older than the close
    // (session 35's review: writing the mark with the checkpoint instead
    // left the checkpoint before it there, whose blocks the next session
    // may reuse before it clears the mark).
    const image = device.snapshot();
    const older = superblockSlotsFor(clean.generation - 1).map((slot) => {
      const block = superblockSlotBlock(slot, clean.walStartBlock, clean.walBlockCount);
      return decodeSuperblock(image.subarray(block * 4096, block * 4096 + SUPERBLOCK_SIZE), block);
    });
    for (const copy of older) {
      assert.equal(copy.generation, clean.generation - 1);
      assert.equal(copy.checkpointSeq, clean.checkpointSeq);
      assert.deepEqual(copy.treeRoot, clean.treeRoot);
    }
    for (const slot of superblockSlotsFor(clean.generation)) {
      const block = superblockSlotBlock(slot, clean.walStartBlock, clean.walBlockCount);
      image.fill(0, block * 4096, (block + 1) * 4096);
    }
    const reopened = await BlockStore.open('clean', { device: new SimulatedDevice({ sizeBytes: image.length }, image) });
    try {
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
