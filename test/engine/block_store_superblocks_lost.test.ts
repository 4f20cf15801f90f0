// Superblock copies lost (zeroed: lost writes, a wiped head). The head pair
// gone, the store opens from the backup pair after its WAL and rewrites the
// head; every copy gone in front of a store's WAL, it is a damaged store,
// reported as ERR_STORE_CORRUPT — not "no store here", which would invite
// formatting over the data.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { StoreCorruptError } from '../../engine/store_error.js';
import { FORMAT_VERSION, SUPERBLOCK_SIZE } from '../../format/constants.js';
import { decodeSuperblock, encodeSuperblock, superblockSlotBlock } from '../../format/superblock.js';

const WAL_SIZE_BYTES = 1 << 20;

describe('BlockStore.open() with superblock copies lost', () => {
  for (const blockSize of [512, 4096, 65536]) {
    it(`opens from the backup pair when the head is wiped, and rewrites the head (block size ${blockSize})`, async () => {
      const device = new SimulatedDevice({ sizeBytes: 16 << 20 });
      const store = await BlockStore.open('lost', { device, create: true, blockSize, walSizeBytes: WAL_SIZE_BYTES, encoding: 'string' });
      await store.put('a', 'checkpointed');
      await store.checkpoint();
      await store.put('b', 'kept in the WAL');
      const image = device.snapshot();
      await store.close().catch(() => undefined);
      // A wipe of the first 64 KiB, whatever the block size: both head copies and the WAL's first blocks.
      image.fill(0, 0, Math.max(64 << 10, 2 * blockSize));
      const damaged = new SimulatedDevice({ sizeBytes: image.length }, image);
      const reopened = await BlockStore.open('lost', { device: damaged });
      assert.equal(await reopened.get('a'), 'checkpointed');
      await reopened.close();
      const head = damaged.snapshot();
      assert.doesNotThrow(() => decodeSuperblock(head.subarray(0, 512), 0), 'slot 0 was rewritten');
      assert.doesNotThrow(() => decodeSuperblock(head.subarray(blockSize, blockSize + 512), 1), 'slot 1 was rewritten');
    });

    it(`refuses with ERR_STORE_CORRUPT naming the superblock when all four copies are lost (block size ${blockSize})`, async () => {
      const device = new SimulatedDevice({ sizeBytes: 16 << 20 });
      const store = await BlockStore.open('lost', { device, create: true, blockSize, walSizeBytes: WAL_SIZE_BYTES, encoding: 'string' });
      await store.put('a', 'kept in the WAL');
      const image = device.snapshot();
      await store.close().catch(() => undefined);
      const walBlockCount = WAL_SIZE_BYTES / blockSize;
      image.fill(0, 0, 2 * blockSize);
      for (const slot of [2, 3]) {
        const block = superblockSlotBlock(slot, 2, walBlockCount);
        image.fill(0, block * blockSize, (block + 1) * blockSize);
      }
      await assert.rejects(
        () => BlockStore.open('lost', { device: new SimulatedDevice({ sizeBytes: image.length }, image), encoding: 'string' }),
        (error: unknown) => error instanceof StoreCorruptError && error.structure === 'superblock',
      );
    });
  }

  it('refuses, rather than guess, when a stored value holds a superblock image of another store at a backup position', async () => {
    // Where a value's first block lands, found on a store made the same way.
    const marker = Buffer.alloc(8192, 0x5a);
    const probeDevice = new SimulatedDevice({ sizeBytes: 16 << 20 });
    const probe = await BlockStore.open('forged', { device: probeDevice, create: true, walSizeBytes: WAL_SIZE_BYTES, encoding: 'binary' });
    await probe.put('victim', marker);
    await probe.close();
    const at = Buffer.from(probeDevice.snapshot()).indexOf(marker.subarray(0, 64));
    assert.ok(at > 0 && at % 512 === 0);
    // A superblock of another store whose own geometry puts slot 2 there.
    const walBlockCount = at / 512 - 2;
    const image = Buffer.alloc(8192, 0x5a);
    encodeSuperblock(
      { formatVersion: FORMAT_VERSION, blockSize: 512, blockCount: (16 << 20) / 512, walStartBlock: 2, walBlockCount, dataStartBlock: 4 + walBlockCount, generation: 1_000_000, storeTag: 0x1234567, checkpointSeq: 0, walReplayBlock: 0, freeSetByteLength: 0, freeSetBlockCount: 0, freeSetExtents: [], treeRoot: undefined, keyCount: 0, valueEncodingId: 1, clean: true },
      image.subarray(0, SUPERBLOCK_SIZE),
    );
    const device = new SimulatedDevice({ sizeBytes: 16 << 20 });
    const store = await BlockStore.open('forged', { device, create: true, walSizeBytes: WAL_SIZE_BYTES, encoding: 'binary' });
    await store.put('victim', image);
    for (let i = 0; i < 20; i++) await store.put(`key-${i}`, Buffer.from(`value-${i}`));
    await store.close();
    const bytes = device.snapshot();
    assert.equal(Buffer.from(bytes).indexOf(image.subarray(0, 64)), at, 'the image sits where its geometry puts slot 2');
    bytes.fill(0, 0, 2 * 4096);
    await assert.rejects(
      () => BlockStore.open('forged', { device: new SimulatedDevice({ sizeBytes: bytes.length }, bytes) }),
      (error: unknown) => error instanceof StoreCorruptError && error.structure === 'superblock' && /different stores/.test(error.message),
    );
  });
});
