// Views of a SharedArrayBuffer are views like any other (found by a
// review). The addon read their memory through Napi::TypedArray::
// ArrayBuffer(), which fails for a SharedArrayBuffer and leaves an
// exception pending: crc32c then threw on top of it, which node-addon-api
// makes fatal — a BlockStore.put of such a value of more than half a block
// aborted the process — and the alignment check threw an Error without a
// code, synchronously, from a call that should reject.
import assert from 'node:assert/strict';

import { BlockStore } from '../../engine/block_store.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { crc32c, crc32cPortable } from '../../format/crc32c.js';
import { IoUringActor, isAligned, type RingFile } from '../../index.js';
import { fillPattern, makeTempDir, rejectsWith, removeTempDir, throwsWith } from './helpers.js';

const BLOCK_SIZE = 4096;

/** A Uint8Array of `sizeBytes` over a SharedArrayBuffer, `offset` bytes into it, filled with a pattern. */
function sharedView(sizeBytes: number, offset = 0, seed = 1): Uint8Array {
  const view = new Uint8Array(new SharedArrayBuffer(sizeBytes + offset), offset, sizeBytes);
  fillPattern(view, seed);
  return view;
}

describe('views of a SharedArrayBuffer', () => {
  let dir: string | undefined;
  let ring: IoUringActor | undefined;

  before(() => {
    dir = makeTempDir();
    ring = IoUringActor.start();
  });

  after(async () => {
    await ring?.close();
    removeTempDir(dir);
  });

  it('crc32c reads them in place: the same checksum as of the same bytes in an ArrayBuffer', () => {
    const view = sharedView(10_000, 3);
    assert.equal(crc32c(view), crc32cPortable(Uint8Array.from(view)));
  });

  it('isAligned answers for them, and refuses a bad alignment with a coded RangeError whatever it is (a Symbol too)', () => {
    assert.equal(isAligned(sharedView(BLOCK_SIZE, 1), BLOCK_SIZE), false, 'one byte past the start of its memory');
    assert.equal(typeof isAligned(sharedView(BLOCK_SIZE), BLOCK_SIZE), 'boolean');
    throwsWith(() => isAligned(sharedView(BLOCK_SIZE), Symbol('alignment') as unknown as number), RangeError, 'ERR_INVALID_ARG');
  });

  it('a buffered file writes and reads them', async () => {
    const file: RingFile = await ring!.open(`${dir}/buffered`, { create: true });
    try {
      const data = sharedView(BLOCK_SIZE, 0, 7);
      assert.equal(await file.write(data, 0), BLOCK_SIZE);
      const back = sharedView(BLOCK_SIZE, 0, 8);
      assert.equal(await file.read(back, 0), BLOCK_SIZE);
      assert.deepEqual(Uint8Array.from(back), Uint8Array.from(data));
    } finally {
      await file.close();
    }
  });

  it('a direct file rejects an unaligned one with ERR_UNALIGNED_DIRECT_IO (a rejection, not a throw)', async () => {
    const file: RingFile = await ring!.open(`${dir}/direct`, { create: true, direct: true, sizeBytes: 4 * BLOCK_SIZE });
    try {
      const unaligned = sharedView(BLOCK_SIZE, 1);
      await rejectsWith(() => file.read(unaligned, 0), RangeError, 'ERR_UNALIGNED_DIRECT_IO');
      await rejectsWith(() => file.writev([unaligned], 0), RangeError, 'ERR_UNALIGNED_DIRECT_IO');
      await rejectsWith(() => file.writeDsync(unaligned, 0), RangeError, 'ERR_UNALIGNED_DIRECT_IO');
    } finally {
      await file.close();
    }
  });

  it('BlockStore stores and returns one as a binary value, of a few bytes and of more than half a block (an extent value, checksummed as given)', async () => {
    const store = await BlockStore.open('shared', { device: new SimulatedDevice({ sizeBytes: 8 << 20 }), create: true, encoding: 'binary' });
    try {
      for (const sizeBytes of [10, 3000, 100_000]) {
        const value = sharedView(sizeBytes, 0, sizeBytes);
        await store.put(`value-${sizeBytes}`, value);
        assert.deepEqual(Uint8Array.from((await store.get(`value-${sizeBytes}`)) as Uint8Array), Uint8Array.from(value), `${sizeBytes} bytes`);
      }
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });
});
