// The bytes a put or a write stream stores are the bytes the caller's
// memory holds, measured by the memory itself: not by an own `length`
// property or a subclass getter that says otherwise, not re-read from a
// SharedArrayBuffer another thread may be writing, and not cut short by a
// buffer detached while a stream copies it (found by a review: each left a
// value whose checksum did not match its bytes, or a shorter value stored
// without an error).
import assert from 'node:assert/strict';
import { once } from 'node:events';

import { BlockStore } from '../../engine/block_store.js';
import { ownBytes } from '../../engine/key_codec.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { valueCodec } from '../../engine/value_codec.js';

const DEVICE_BYTES = 16 << 20;

function lyingLength(realBytes: number, claimedBytes: number, fill: number): Uint8Array {
  const bytes = new Uint8Array(realBytes).fill(fill);
  Object.defineProperty(bytes, 'length', { value: claimedBytes });
  return bytes;
}

class ThrowingLength extends Uint8Array {
  override get length(): number {
    throw new Error('length getter');
  }
}

async function openStore(): Promise<BlockStore<Uint8Array>> {
  return BlockStore.open<Uint8Array>('store', { device: new SimulatedDevice({ sizeBytes: DEVICE_BYTES }), create: true, encoding: 'binary' });
}

describe('BlockStore stores the bytes the caller’s memory holds', () => {
  it('stores a Uint8Array’s real bytes whatever its own length property or a subclass getter claims, and stays consistent', async () => {
    const store = await openStore();
    try {
      const cases: [string, Uint8Array, number][] = [
        ['10 bytes claiming 20', lyingLength(10, 20, 1), 10],
        ['10 bytes claiming 2', lyingLength(10, 2, 2), 10],
        ['10 bytes claiming 100 000 (an extent value by the claim)', lyingLength(10, 100_000, 3), 10],
        ['100 000 bytes claiming 10', lyingLength(100_000, 10, 4), 100_000],
        ['a subclass whose length getter throws', new ThrowingLength(4).fill(5), 4],
      ];
      for (const [label, value, realBytes] of cases) {
        await store.put(label, value);
        const back = await store.get(label);
        assert.ok(back !== undefined, label);
        assert.equal(back.length, realBytes, label);
        assert.ok(back.every((byte) => byte === back[0]), label);
      }
      await store.verifyIntegrity();
      // A key, a range bound and a prefix are their real bytes too.
      await store.put(lyingLength(3, 3000, 0x61), Uint8Array.of(1));
      assert.deepEqual(await store.get('aaa'), Buffer.of(1));
      const prefixed: unknown[] = [];
      for await (const key of store.keys({ prefix: new ThrowingLength(Buffer.from('aa')) })) prefixed.push(key);
      assert.deepEqual(prefixed, [Buffer.from('aaa')]);
    } finally {
      await store.close();
    }
  });

  it('copies a value in a SharedArrayBuffer before it is written and checksummed (another thread may change it)', () => {
    const shared = new Uint8Array(new SharedArrayBuffer(1 << 20)).fill(9);
    const encoded = valueCodec('binary').encode(shared);
    assert.ok(!(encoded.buffer instanceof SharedArrayBuffer), 'a copy of its own');
    assert.equal(encoded.length, 1 << 20);
    shared.fill(0);
    assert.equal(encoded[0], 9, 'later writes to the shared memory do not reach it');
    // Memory no other thread can write is not copied: a view of it.
    const plain = Buffer.alloc(8, 1);
    const view = ownBytes(plain);
    assert.equal(view.buffer, plain.buffer);
  });

  it('fails a write stream whose chunk’s buffer is detached while it is copied, storing nothing (it stored the first MiB and finished)', async () => {
    const store = await openStore();
    try {
      const chunk = new Uint8Array(2 << 20).fill(7);
      const stream = store.createWriteStream('streamed');
      const failed = once(stream, 'error');
      stream.write(chunk);
      structuredClone(chunk.buffer, { transfer: [chunk.buffer] });
      stream.end();
      const [error] = (await failed) as [Error & { code?: string }];
      assert.equal(error.code, 'ERR_INVALID_ARG', error.message);
      assert.equal(await store.get('streamed'), undefined);
      await store.verifyIntegrity();
    } finally {
      await store.close();
    }
  });
});
