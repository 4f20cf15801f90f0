// ValueCopySlab (engine/value_copy_slab.ts): a write's copies of its inline
// values carved from shared slabs — never two copies over the same bytes,
// each zeroed when taken — and the one place that keeps such an entry
// beyond its commit, a leaf in array form, keeping a copy of its own
// instead, so that it neither shares the caller's bytes nor keeps a slab
// alive.
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { PageTree } from '../../engine/page_tree.js';
import type { IndexEntry } from '../../engine/store_index.js';
import { SLAB_COPY_BYTES_MAX, VALUE_COPY_SLAB_BYTES, ValueCopySlab } from '../../engine/value_copy_slab.js';
import { FakePageStore, treeOptions } from './page_tree_fakes.js';

describe('ValueCopySlab', () => {
  it('hands out zeroed copies that never share a byte, however their sizes fall', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: SLAB_COPY_BYTES_MAX + 64 }), { minLength: 1, maxLength: 200 }), (sizes) => {
        const slab = new ValueCopySlab();
        const copies = sizes.map((size, index) => {
          const copy = slab.take(size);
          assert.equal(copy.length, size);
          assert.ok(copy.every((byte) => byte === 0), `copy ${index} (${size} bytes) is zeroed when taken`);
          copy.fill((index % 255) + 1);
          return copy;
        });
        // Each copy still holds what was written into it: no later copy overlapped it.
        copies.forEach((copy, index) => assert.ok(copy.every((byte) => byte === (index % 255) + 1), `copy ${index} kept its bytes`));
      }),
    );
  });

  it('carves small copies from one slab until it is full, and gives a large one memory of its own', () => {
    const slab = new ValueCopySlab();
    const first = slab.take(100);
    const second = slab.take(100);
    assert.equal(first.buffer, second.buffer, 'two small copies share a slab');
    assert.equal(first.buffer.byteLength, VALUE_COPY_SLAB_BYTES);
    assert.equal(second.byteOffset, first.byteOffset + 100);
    const large = slab.take(SLAB_COPY_BYTES_MAX + 1);
    assert.equal(large.buffer.byteLength, SLAB_COPY_BYTES_MAX + 1, 'a copy above SLAB_COPY_BYTES_MAX is not carved');
    // Fill the rest of the slab, then one more copy starts a new one.
    const rest = VALUE_COPY_SLAB_BYTES - 200;
    for (let taken = 0; taken + SLAB_COPY_BYTES_MAX <= rest; taken += SLAB_COPY_BYTES_MAX) assert.equal(slab.take(SLAB_COPY_BYTES_MAX).buffer, first.buffer);
    const next = slab.take(SLAB_COPY_BYTES_MAX);
    assert.notEqual(next.buffer, first.buffer, 'a copy that does not fit the slab starts a new one');
  });

  it('refuses a size that is not a byte count (a bug in the caller)', () => {
    const slab = new ValueCopySlab();
    for (const size of [-1, 1.5, Number.NaN]) assert.throws(() => slab.take(size), RangeError);
  });
});

describe('PageTree leaves in array form and shared value bytes', () => {
  it('keep copies of their own of inline values, not views of the memory the write handed over', async () => {
    // FakePageStore makes no pages (no leafPageOf): every leaf is in array form.
    const tree = new PageTree(treeOptions(new FakePageStore()), undefined, 0);
    // A Buffer, as callers and a read's buffers are: its own slice() is a view, not a copy.
    const shared = Buffer.alloc(VALUE_COPY_SLAB_BYTES);
    const keys = Array.from({ length: 300 }, (_, index) => `key${String(index).padStart(4, '0')}`);
    for (const [index, key] of keys.entries()) {
      const bytes = shared.subarray(index * 8, index * 8 + 8).fill(index & 0xff);
      tree.set(key, { isString: true, value: bytes });
    }
    // The write's memory is reused (as a slab never is, but a caller's may be): the tree must not see it.
    shared.fill(0xee);
    for (const [index, key] of keys.entries()) {
      const entry = (await tree.get(key)) as IndexEntry;
      const value = entry.value as Uint8Array;
      assert.deepEqual([...value], new Array(8).fill(index & 0xff), `${key} holds the bytes it was set to`);
      assert.notEqual(value.buffer, shared.buffer, `${key} does not keep the shared memory alive`);
    }
    // Replacing a key keeps a copy too.
    const replacement = shared.subarray(0, 8).fill(0x42);
    tree.set(keys[0]!, { isString: true, value: replacement });
    shared.fill(0);
    assert.deepEqual([...((await tree.get(keys[0]!)) as IndexEntry).value as Uint8Array], new Array(8).fill(0x42));
  });
});
