// SimulatedDevice: a memory device with a volatile write cache. A completed
// write is visible at once but survives crash() only if a flush that started
// after it completed; writeAndSync is durable on resolve; pending writes
// survive whole, not at all, or torn at 512-byte sectors — never finer.
import assert from 'node:assert/strict';

import { SECTOR_SIZE, SimulatedDevice, SimulatedDeviceCrash } from '../../engine/simulated_device.js';
import { pattern, seededRandom } from './helpers.js';

const DEVICE_BYTES = 64 << 10;
const KEEP_NONE = { keepProbability: 0 };
const KEEP_ALL_WHOLE = { keepProbability: 1, tornWrites: false };

async function readBack(device: SimulatedDevice, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  await device.read(position, buffer);
  return buffer;
}

describe('SimulatedDevice reads and writes', () => {
  it('shows a completed write to reads at once, before any flush', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const data = pattern(1024, 1);
    await device.write(2048, [data.subarray(0, 512), data.subarray(512)]);
    assert.ok((await readBack(device, 2048, 1024)).equals(data));
    const parts = [Buffer.alloc(512), Buffer.alloc(512)];
    await device.readv(2048, parts);
    assert.ok(Buffer.concat(parts).equals(data));
    assert.equal(device.pendingWriteCount, 1);
    assert.deepEqual(device.counts, { reads: 2, writes: 1, syncs: 0, trims: 0 });
  });

  it('starts from a given image, and snapshot() is a copy', async () => {
    const image = pattern(DEVICE_BYTES, 2);
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, image);
    assert.ok((await readBack(device, 0, 512)).equals(image.subarray(0, 512)));
    const snapshot = device.snapshot();
    snapshot[0] ^= 0xff;
    assert.equal((await readBack(device, 0, 512))[0], image[0]);
    assert.throws(() => new SimulatedDevice({ sizeBytes: DEVICE_BYTES }, new Uint8Array(512)), RangeError);
  });

  it('refuses unaligned and out-of-range IO with RangeError', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    await assert.rejects(device.write(100, [Buffer.alloc(512)]), RangeError);
    await assert.rejects(device.write(0, [Buffer.alloc(100)]), RangeError);
    await assert.rejects(device.read(DEVICE_BYTES, Buffer.alloc(512)), RangeError);
    await assert.rejects(device.write(DEVICE_BYTES - 512, [Buffer.alloc(1024)]), RangeError);
  });

  it('refuses IO after close()', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    await device.close();
    await assert.rejects(device.read(0, Buffer.alloc(512)), /after close/);
  });
});

describe('SimulatedDevice#crash()', () => {
  it('loses a write that no flush covered (keepProbability 0)', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    await device.write(0, [pattern(4096, 3)]);
    const after = device.crash(KEEP_NONE);
    assert.ok((await readBack(after, 0, 4096)).equals(Buffer.alloc(4096)));
  });

  it('keeps every pending write whole with keepProbability 1 and no tearing', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const first = pattern(4096, 4);
    const second = pattern(2048, 5);
    await device.write(0, [first]);
    await device.write(8192, [second]);
    const after = device.crash(KEEP_ALL_WHOLE);
    assert.ok((await readBack(after, 0, 4096)).equals(first));
    assert.ok((await readBack(after, 8192, 2048)).equals(second));
  });

  it('keeps a write that a completed sync() covered', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const data = pattern(4096, 6);
    await device.write(4096, [data]);
    await device.sync();
    assert.equal(device.pendingWriteCount, 0);
    const after = device.crash(KEEP_NONE);
    assert.ok((await readBack(after, 4096, 4096)).equals(data));
  });

  it('makes writeAndSync() durable on resolve', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const data = pattern(1024, 7);
    await device.writeAndSync(512, [data]);
    const after = device.crash(KEEP_NONE);
    assert.ok((await readBack(after, 512, 1024)).equals(data));
  });

  it('does not count a write that completed after the flush started as flushed', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const early = pattern(512, 8);
    const late = pattern(512, 9);
    await device.write(0, [early]);
    const flush = device.sync(); // covers what has completed now: `early` only
    const write = device.write(512, [late]);
    await Promise.all([flush, write]);
    assert.equal(device.pendingWriteCount, 1);
    const after = device.crash(KEEP_NONE);
    assert.ok((await readBack(after, 0, 512)).equals(early));
    assert.ok((await readBack(after, 512, 512)).equals(Buffer.alloc(512)));
  });

  it('lets an unflushed trim be lost (old data back) or kept (zeros)', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const data = pattern(4096, 10);
    await device.writeAndSync(0, [data]);
    await device.trim(0, 4096);
    assert.ok((await readBack(device, 0, 4096)).equals(Buffer.alloc(4096)), 'reads see the trim at once');
    const lost = device.crash(KEEP_NONE);
    assert.ok((await readBack(lost, 0, 4096)).equals(data));

    const again = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    await again.writeAndSync(0, [data]);
    await again.trim(0, 4096);
    const trimmed = again.crash(KEEP_ALL_WHOLE);
    assert.ok((await readBack(trimmed, 0, 4096)).equals(Buffer.alloc(4096)));
  });

  it('tears pending writes only at 512-byte sector boundaries', async () => {
    const sectorCount = 16;
    const oldData = pattern(sectorCount * SECTOR_SIZE, 11);
    const newData = pattern(sectorCount * SECTOR_SIZE, 12);
    let tornCount = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
      await device.writeAndSync(0, [oldData]);
      await device.write(0, [newData]);
      const after = device.crash({ keepProbability: 1, tornWrites: true, random: seededRandom(seed) });
      const bytes = await readBack(after, 0, sectorCount * SECTOR_SIZE);
      let newSectors = 0;
      for (let sector = 0; sector < sectorCount; sector++) {
        const range = [sector * SECTOR_SIZE, (sector + 1) * SECTOR_SIZE] as const;
        const got = bytes.subarray(...range);
        const isNew = got.equals(newData.subarray(...range));
        assert.ok(isNew || got.equals(oldData.subarray(...range)), `seed ${seed}: sector ${sector} mixes old and new bytes`);
        if (isNew) newSectors++;
      }
      if (newSectors > 0 && newSectors < sectorCount) tornCount++;
    }
    assert.ok(tornCount > 0, 'some of 200 crashes should tear the write');
  });

  it('gives a device that holds only the survivors and stops the crashed one', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    await device.writeAndSync(0, [pattern(512, 13)]);
    const after = device.crash(KEEP_NONE);
    assert.equal(device.crashed, true);
    assert.equal(after.crashed, false);
    assert.equal(after.pendingWriteCount, 0);
    await assert.rejects(device.read(0, Buffer.alloc(512)), (error: unknown) => error instanceof SimulatedDeviceCrash && error.code === 'ERR_SIMULATED_CRASH');
  });
});

describe('SimulatedDevice crashAfterOps', () => {
  it('completes that many operations, then rejects every later one with ERR_SIMULATED_CRASH', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, crashAfterOps: 2 });
    await device.write(0, [pattern(512, 14)]);
    await device.sync();
    await assert.rejects(device.write(512, [pattern(512, 15)]), SimulatedDeviceCrash);
    assert.equal(device.crashed, true);
    assert.equal(device.opCount, 2);
    await assert.rejects(device.sync(), SimulatedDeviceCrash);
    const after = device.crash(KEEP_NONE);
    assert.ok((await readBack(after, 0, 512)).equals(pattern(512, 14)));
  });

  it('crashAfter() counts from the operations done so far', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    await device.write(0, [Buffer.alloc(512)]);
    device.crashAfter(1);
    await device.read(0, Buffer.alloc(512));
    await assert.rejects(device.read(0, Buffer.alloc(512)), SimulatedDeviceCrash);
  });
});

describe('SimulatedDevice#writeDsync()', () => {
  it('makes that write durable and leaves earlier unflushed writes to chance', async () => {
    const device = new SimulatedDevice({ sizeBytes: 8192 });
    await device.write(0, [new Uint8Array(512).fill(1)]);
    await device.writeDsync(4096, [new Uint8Array(512).fill(2)]);
    const lost = device.crash({ keepProbability: 0 });
    const image = new Uint8Array(8192);
    await lost.read(0, image);
    assert.equal(image[0], 0, 'the earlier write was made durable by an RWF_DSYNC write of other bytes');
    assert.equal(image[4096], 2, 'the RWF_DSYNC write did not survive');
  });

  it('supersedes the bytes an earlier unflushed write had put in the same sectors', async () => {
    const device = new SimulatedDevice({ sizeBytes: 4096 });
    await device.write(0, [new Uint8Array(1024).fill(1)]);
    await device.writeDsync(512, [new Uint8Array(512).fill(2)]);
    const kept = device.crash({ keepProbability: 1, tornWrites: false });
    const image = new Uint8Array(4096);
    await kept.read(0, image);
    assert.equal(image[0], 1);
    assert.equal(image[512], 2, 'an older write overwrote newer durable bytes in the crash image');
  });
});

describe('SimulatedDevice#sync() beside a writeDsync()', () => {
  it('makes durable what is left of a covered write that a writeDsync superseded in part while the sync was in flight', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const older = pattern(8192, 7);
    const newer = pattern(4096, 8);
    await device.write(0, [older]);
    // The writeDsync is issued first and completes first, while the sync
    // (which covers the older write, completed before it) is in flight.
    const superseding = device.writeDsync(0, [newer]);
    const syncing = device.sync();
    await Promise.all([superseding, syncing]);
    const image = device.crash(KEEP_NONE);
    assert.ok((await readBack(image, 0, 4096)).equals(newer));
    assert.ok((await readBack(image, 4096, 4096)).equals(older.subarray(4096)), 'the second half, covered by the sync, is durable');
  });
});

describe('SimulatedDevice#loseCache()', () => {
  it('drops completed unflushed writes for good: a later sync() does not make them durable, reads still see them', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const data = pattern(512, 7);
    await device.write(4096, [data]);
    device.loseCache();
    assert.equal(device.pendingWriteCount, 0);
    await device.sync();
    assert.ok((await readBack(device, 4096, 512)).equals(data), 'still visible');
    const image = device.crash(KEEP_ALL_WHOLE);
    assert.ok((await readBack(image, 4096, 512)).equals(Buffer.alloc(512)), 'never durable');
  });

  it('drops what a sync() in flight covers too (that sync still succeeds), and keeps writes still in flight', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
    const covered = pattern(512, 8);
    const inFlight = pattern(512, 9);
    await device.write(0, [covered]);
    const syncing = device.sync();
    const writing = device.write(512, [inFlight]);
    device.loseCache();
    await Promise.all([syncing, writing]);
    assert.equal(device.pendingWriteCount, 1, 'the write that was in flight stays pending');
    const image = device.crash(KEEP_ALL_WHOLE);
    assert.ok((await readBack(image, 0, 512)).equals(Buffer.alloc(512)), 'lost with the cache, whatever the flush in flight reported');
    assert.ok((await readBack(image, 512, 512)).equals(inFlight), 'pending, kept by this crash');
  });

  it('loses a growth not yet durable for good: a later sync() does not keep the new size', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, sizeBytesMax: 2 * DEVICE_BYTES });
    await device.grow(2 * DEVICE_BYTES);
    device.loseCache();
    await device.sync();
    assert.equal(device.sizeBytes, 2 * DEVICE_BYTES, 'the device is still as long until the power goes');
    assert.equal(device.crash(KEEP_ALL_WHOLE).sizeBytes, DEVICE_BYTES);
  });

  it('makes a growth after the loss durable with a later sync()', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, sizeBytesMax: 4 * DEVICE_BYTES });
    await device.grow(2 * DEVICE_BYTES);
    device.loseCache();
    await device.grow(4 * DEVICE_BYTES);
    await device.sync();
    assert.equal(device.crash(KEEP_ALL_WHOLE).sizeBytes, 4 * DEVICE_BYTES);
  });

  it('keeps a growth a sync made durable before the loss', async () => {
    const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES, sizeBytesMax: 2 * DEVICE_BYTES });
    await device.grow(2 * DEVICE_BYTES);
    await device.sync();
    device.loseCache();
    assert.equal(device.crash(KEEP_ALL_WHOLE).sizeBytes, 2 * DEVICE_BYTES);
  });
});
