// A superblock whose key count is wrong but whose checksum matches (a bug or
// an edit; media damage cannot do it). open() cannot check the count without
// walking the tree; the first delete that shows it wrong is refused as
// corruption of the superblock, before the tree changes — never a negative
// count(), never a checkpoint that fails as an "IO error".
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreCorruptError, StoreError } from '../../engine/store_error.js';
import { SUPERBLOCK_SIZE } from '../../format/constants.js';
import { decodeSuperblock, encodeSuperblock, superblockSlotBlock } from '../../format/superblock.js';

const WAL_SIZE_BYTES = 1 << 20;
const BLOCK_SIZE = 4096;
const KEYS = 10;

/** An image of a cleanly closed store of KEYS keys whose superblocks (every copy) record `forgedCount`. */
async function forgedImage(forgedCount: number): Promise<Uint8Array> {
  const device = new SimulatedDevice({ sizeBytes: 16 << 20 });
  const store = await BlockStore.open('forged', { device, create: true, blockSize: BLOCK_SIZE, walSizeBytes: WAL_SIZE_BYTES, encoding: 'string' });
  for (let i = 0; i < KEYS; i++) await store.put(`key-${i}`, `value-${i}`);
  await store.close();
  const image = device.snapshot();
  const walBlockCount = WAL_SIZE_BYTES / BLOCK_SIZE;
  let forged = 0;
  for (const block of [0, 1, superblockSlotBlock(2, 2, walBlockCount), superblockSlotBlock(3, 2, walBlockCount)]) {
    const bytes = image.subarray(block * BLOCK_SIZE, block * BLOCK_SIZE + SUPERBLOCK_SIZE);
    let superblock;
    try {
      superblock = decodeSuperblock(bytes, block);
    } catch {
      continue;
    }
    assert.equal(superblock.keyCount, KEYS);
    encodeSuperblock({ ...superblock, keyCount: forgedCount }, bytes);
    forged++;
  }
  assert.ok(forged >= 2, `${forged} superblock copies forged`);
  return image;
}

function isForgedCount(error: unknown): boolean {
  return error instanceof StoreCorruptError && error.structure === 'superblock' && /key count/.test(error.reason);
}

describe('BlockStore with a superblock that records a wrong key count', () => {
  for (const forgedCount of [3, KEYS + 2]) {
    it(`refuses the delete that shows a count of ${forgedCount} wrong, as superblock corruption, and nothing counts below zero`, async () => {
      const device = new SimulatedDevice({ sizeBytes: 16 << 20 }, await forgedImage(forgedCount));
      const store = await BlockStore.open('forged', { device, encoding: 'string' });
      let deleted = 0;
      let refusal: unknown;
      for (let i = 0; i < KEYS && refusal === undefined; i++) {
        await store.delete(`key-${i}`).then(
          () => deleted++,
          (error: unknown) => (refusal = error),
        );
        const count = await store.count();
        assert.ok(count >= 0, `count() ${count} after ${deleted} deletes`);
      }
      // A low count shows when it would go below zero; a high one when the tree empties.
      assert.equal(deleted, forgedCount < KEYS ? forgedCount : KEYS - 1);
      assert.ok(refusal instanceof StoreError && refusal.code === 'ERR_STORE_FAILED', String(refusal));
      assert.match(refusal.message, /after finding corruption: store is corrupt: superblock/);
      assert.doesNotMatch(refusal.message, /reopen to recover/);
      assert.ok(isForgedCount(refusal.cause), String(refusal.cause));
      // Reads of what the store holds still work; the refused key is still there.
      assert.equal(await store.get(`key-${deleted}`), `value-${deleted}`);
      await store.close().catch(() => undefined);
      // The refused delete may be durable in the WAL: a reopen replays into
      // the same refusal — from open(), or, if the replay runs in the
      // background, from whenRecovered().
      await assert.rejects(async () => {
        const reopened = await BlockStore.open('forged', { device: new SimulatedDevice({ sizeBytes: 16 << 20 }, device.snapshot()), encoding: 'string' });
        try {
          await reopened.whenRecovered();
        } finally {
          await reopened.close().catch(() => undefined);
        }
      }, isForgedCount);
    });
  }

  it('refuses a batch whose deletes the count cannot cover before applying any of it: no reader sees part of it (found by a review)', async () => {
    const device = new SimulatedDevice({ sizeBytes: 16 << 20 }, await forgedImage(3));
    const store = await BlockStore.open('forged', { device, encoding: 'string' });
    for (let i = 0; i < 3; i++) await store.delete(`key-${i}`);
    const refused = await store
      .batch([
        { type: 'put', key: 'key-5', value: 'from the refused batch' },
        { type: 'put', key: 'key-6', value: 'from the refused batch' },
        { type: 'del', key: 'key-6' },
      ])
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    assert.ok(refused instanceof StoreError && isForgedCount(refused.cause), String(refused));
    assert.equal(await store.get('key-5'), 'value-5');
    assert.equal(await store.get('key-6'), 'value-6');
    await store.close().catch(() => undefined);
  });

  it('refuses to checkpoint a count that reached 0 with keys left, rather than write a superblock open() refuses (found by a review)', async () => {
    const device = new SimulatedDevice({ sizeBytes: 16 << 20 }, await forgedImage(3));
    const store = await BlockStore.open('forged', { device, encoding: 'string' });
    for (let i = 0; i < 3; i++) await store.delete(`key-${i}`);
    assert.equal(await store.count(), 0);
    await assert.rejects(store.checkpoint(), (error: unknown) => error instanceof StoreError && error.code === 'ERR_STORE_FAILED' && isForgedCount(error.cause));
    await store.close().catch(() => undefined);
    // Every superblock on the device still passes its own checks: the store opens (its count still wrong, as before).
    const reopened = await BlockStore.open('forged', { device: new SimulatedDevice({ sizeBytes: 16 << 20 }, device.snapshot()), encoding: 'string' });
    await reopened.whenRecovered();
    assert.equal(await reopened.get('key-9'), 'value-9');
    await reopened.close().catch(() => undefined);
  });

  it('counts and checkpoints normally while the count has not been shown wrong', async () => {
    const device = new SimulatedDevice({ sizeBytes: 16 << 20 }, await forgedImage(KEYS + 5));
    const store = await BlockStore.open('forged', { device, encoding: 'string' });
    await store.put('another', 'value');
    await store.checkpoint();
    assert.equal(await store.count(), KEYS + 6, 'the count is trusted until a delete shows it wrong');
    await store.close();
  });
});
