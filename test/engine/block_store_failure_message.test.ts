// What a failed store's message says stopped it: the kernel's error, found
// corruption (tested with forged key counts), a bug — or a ring the caller
// passed in and then closed under the store, which is neither.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BlockStore, IoUringActor } from '../../index.js';
import { StoreError } from '../../engine/store_error.js';

describe('BlockStore failure messages', () => {
  it("names a caller's ring closed under the store, not an internal error (found by a review)", async () => {
    const directory = await mkdtemp(join(tmpdir(), 'ringstore-failure-'));
    const ring = IoUringActor.start({ fallback: 'threads' });
    try {
      const store = await BlockStore.open(join(directory, 'store'), { create: true, sizeBytes: 16 << 20, encoding: 'string', ring });
      await store.put('a', 'b');
      const closing = ring.close();
      const refusal = await store.put('c', 'd').then(
        () => undefined,
        (error: unknown) => error,
      );
      await closing;
      assert.ok(refusal instanceof StoreError && refusal.code === 'ERR_STORE_FAILED', String(refusal));
      assert.match(refusal.message, /after its ring or file was closed/);
      assert.doesNotMatch(refusal.message, /internal error/);
      // The store's own name, not the temporary one it was made under.
      assert.ok(refusal.message.includes(`'${join(directory, 'store')}' is closed`), refusal.message);
      await store.close().catch(() => undefined);
    } finally {
      await ring.close().catch(() => undefined);
      await rm(directory, { recursive: true, force: true });
    }
  });
});
