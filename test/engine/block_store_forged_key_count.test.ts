// A superblock whose key count is wrong but whose checksum matches (a bug or
// an edit; media damage cannot do it). open() cannot check the count without
// walking the tree; the first commit or checkpoint that shows it wrong is
// refused as corruption of the superblock, before the tree changes or
// anything is written — never a negative count(), never a checkpoint that
// fails as an "IO error", never a superblock the next open() refuses.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreCorruptError, StoreError } from '../../engine/store_error.js';
import type { BatchOperation } from '../../engine/store_options.js';
import { SUPERBLOCK_SIZE } from '../../format/constants.js';
import { decodeSuperblock, encodeSuperblock, superblockSlotBlock } from '../../format/superblock.js';

const WAL_SIZE_BYTES = 1 << 20;
const BLOCK_SIZE = 4096;
/** Keys of a tree of one leaf, and of one of several levels (100-byte values: ~35 a 4 KiB leaf). */
const ONE_LEAF_KEYS = 10;
const MANY_LEAVES_KEYS = 400;

function keyOf(index: number): string {
  return `key-${String(index).padStart(4, '0')}`;
}

function valueOf(index: number, keyCount: number): string {
  return keyCount > ONE_LEAF_KEYS ? `value-${index}`.padEnd(100, '.') : `value-${index}`;
}

/** An image of a cleanly closed store of `keyCount` keys whose superblocks (every copy) record `forgedCount`. */
async function forgedImage(forgedCount: number, keyCount: number): Promise<Uint8Array> {
  const device = new SimulatedDevice({ sizeBytes: 16 << 20 });
  const store = await BlockStore.open('forged', { device, create: true, blockSize: BLOCK_SIZE, walSizeBytes: WAL_SIZE_BYTES, encoding: 'string' });
  for (let i = 0; i < keyCount; i += 100) {
    await store.batch(Array.from({ length: Math.min(100, keyCount - i) }, (_, j) => ({ type: 'put' as const, key: keyOf(i + j), value: valueOf(i + j, keyCount) })));
  }
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
    assert.equal(superblock.keyCount, keyCount);
    if (keyCount > ONE_LEAF_KEYS) assert.ok(superblock.treeRoot!.level > 0, 'a tree of several levels');
    encodeSuperblock({ ...superblock, keyCount: forgedCount }, bytes);
    forged++;
  }
  assert.ok(forged >= 2, `${forged} superblock copies forged`);
  return image;
}

/** A store opened on forgedImage(forgedCount, keyCount), and its device. */
async function openForged(forgedCount: number, keyCount: number): Promise<{ device: SimulatedDevice; store: BlockStore<unknown> }> {
  const device = new SimulatedDevice({ sizeBytes: 16 << 20 }, await forgedImage(forgedCount, keyCount));
  return { device, store: await BlockStore.open('forged', { device, encoding: 'string' }) };
}

function isForgedCount(error: unknown): boolean {
  return error instanceof StoreCorruptError && error.structure === 'superblock' && /key count/.test(error.reason);
}

function isFailedByForgedCount(error: unknown): boolean {
  return error instanceof StoreError && error.code === 'ERR_STORE_FAILED' && isForgedCount(error.cause) && /after finding corruption: store is corrupt: superblock/.test(error.message) && !/reopen to recover/.test(error.message);
}

/** What `promise` rejects with; undefined if it resolves. */
function refusalOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/**
 * Runs `batch`, which the wrong count must refuse whole: the store fails,
 * every key of `unchanged` still reads its value (none of the batch
 * applied), and a reopen refuses the same way.
 */
async function refusedWhole(store: BlockStore<unknown>, device: SimulatedDevice, batch: BatchOperation<unknown>[], unchanged: [string, string | undefined][]): Promise<void> {
  const refusal = await refusalOf(store.batch(batch));
  assert.ok(isFailedByForgedCount(refusal), String(refusal));
  for (const [key, value] of unchanged) assert.equal(await store.get(key), value, key);
  await store.close().catch(() => undefined);
  assert.equal(await reopenOutcome(device), 'refused');
}

/** Deletes keys in order until one is refused; checks count() never goes below 0. Returns the deletes done and the refusal. */
async function deleteUntilRefused(store: BlockStore<unknown>, keyCount: number): Promise<{ deleted: number; refusal: unknown }> {
  let deleted = 0;
  let refusal: unknown;
  for (let i = 0; i < keyCount && refusal === undefined; i++) {
    refusal = await refusalOf(store.delete(keyOf(i)));
    if (refusal === undefined) deleted++;
    const count = await store.count();
    assert.ok(count >= 0, `count() ${count} after ${deleted} deletes`);
  }
  return { deleted, refusal };
}

/** Opens the image the failed store left: the refused commit may be durable in the WAL, and its replay is refused the same way (from open(), or whenRecovered() if it runs in the background) — or it opens. */
async function reopenOutcome(device: SimulatedDevice): Promise<'refused' | 'opened'> {
  try {
    const reopened = await BlockStore.open('forged', { device: new SimulatedDevice({ sizeBytes: 16 << 20 }, device.snapshot()), encoding: 'string' });
    try {
      await reopened.whenRecovered();
    } finally {
      await reopened.close().catch(() => undefined);
    }
    return 'opened';
  } catch (error) {
    assert.ok(isForgedCount(error) || isFailedByForgedCount(error), String(error));
    return 'refused';
  }
}

describe('BlockStore with a superblock that records a wrong key count', () => {
  for (const forgedCount of [3, ONE_LEAF_KEYS + 2]) {
    it(`a tree of one leaf counted ${forgedCount} for ${ONE_LEAF_KEYS} keys: the first write is refused, whole`, async () => {
      const { device, store } = await openForged(forgedCount, ONE_LEAF_KEYS);
      await refusedWhole(
        store,
        device,
        [
          { type: 'put', key: 'new', value: 'from the refused batch' },
          { type: 'del', key: keyOf(1) },
        ],
        [
          ['new', undefined],
          [keyOf(1), valueOf(1, ONE_LEAF_KEYS)],
        ],
      );
    });
  }

  it('a tree of several levels counted below its keys: the delete that would take the count below 0 is refused, and so is a batch before any of it applies', async () => {
    const { device, store } = await openForged(3, MANY_LEAVES_KEYS);
    for (let i = 0; i < 3; i++) await store.delete(keyOf(i));
    assert.equal(await store.count(), 0);
    // No reader sees part of the refused batch (found by a review).
    await refusedWhole(
      store,
      device,
      [
        { type: 'put', key: keyOf(5), value: 'from the refused batch' },
        { type: 'put', key: keyOf(6), value: 'from the refused batch' },
        { type: 'del', key: keyOf(6) },
      ],
      [
        [keyOf(5), valueOf(5, MANY_LEAVES_KEYS)],
        [keyOf(6), valueOf(6, MANY_LEAVES_KEYS)],
      ],
    );
  });

  it('a tree of several levels counted below its keys: a count that reached 0 with keys left is refused a checkpoint, rather than written into a superblock open() refuses (found by a review)', async () => {
    const { device, store } = await openForged(3, MANY_LEAVES_KEYS);
    for (let i = 0; i < 3; i++) await store.delete(keyOf(i));
    await assert.rejects(store.checkpoint(), isFailedByForgedCount);
    await store.close().catch(() => undefined);
    // Every superblock on the device still passes its own checks: the store opens (its count still wrong).
    const reopened = await BlockStore.open('forged', { device: new SimulatedDevice({ sizeBytes: 16 << 20 }, device.snapshot()), encoding: 'string' });
    await reopened.whenRecovered();
    assert.equal(await reopened.get(keyOf(9)), valueOf(9, MANY_LEAVES_KEYS));
    await reopened.close().catch(() => undefined);
  });

  it('a tree of several levels counted above its keys: refused once the deletes bring it to one leaf, never at a count below 0', async () => {
    const { store } = await openForged(MANY_LEAVES_KEYS + 5, MANY_LEAVES_KEYS);
    const { deleted, refusal } = await deleteUntilRefused(store, MANY_LEAVES_KEYS);
    assert.ok(deleted > 0 && deleted < MANY_LEAVES_KEYS, `${deleted} deletes before the refusal`);
    assert.ok(isFailedByForgedCount(refusal), String(refusal));
    assert.equal(await store.get(keyOf(deleted)), valueOf(deleted, MANY_LEAVES_KEYS));
    await store.close().catch(() => undefined);
  });

  it('counts and checkpoints a tree of several levels normally while the count has not been shown wrong', async () => {
    const { store } = await openForged(MANY_LEAVES_KEYS + 5, MANY_LEAVES_KEYS);
    await store.put('another', 'value');
    await store.checkpoint();
    assert.equal(await store.count(), MANY_LEAVES_KEYS + 6, 'the count is trusted until a commit shows it wrong');
    await store.close();
  });
});
