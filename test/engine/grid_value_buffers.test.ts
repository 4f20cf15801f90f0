// A large value's get reads into allocAligned memory, which reuses the
// mapping of a collected value buffer (engine/grid.ts valueBuffer,
// native/recycled_mappings.h); a small one into the JS heap. Run in a child
// process: it needs gc() and counts of its own.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { makeTempDir, PACKAGE_ENTRY_URL, removeTempDir } from '../native/helpers.js';

describe('value buffers of gets', function () {
  this.timeout(60_000);
  let dir: string | undefined;

  before(() => {
    dir = makeTempDir();
  });

  after(() => {
    removeTempDir(dir);
  });

  it('a 1 MiB get reuses the memory of the last one once it was collected, and reads the right bytes into it; a 4 KiB extent value does not take a mapping', () => {
    const script = `
      const { BlockStore } = await import(${JSON.stringify(PACKAGE_ENTRY_URL)});
      const { addon } = await import(${JSON.stringify(new URL('../../native/addon.js', import.meta.url).href)});
      const settle = async () => { for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((resolve) => setImmediate(resolve)); } };
      const store = await BlockStore.open(${JSON.stringify(`${dir}/store`)}, { create: true, sizeBytes: 64 << 20, encoding: 'binary' });
      const large = [Buffer.alloc(1 << 20, 0x11), Buffer.alloc(1 << 20, 0x22)];
      await store.put('a', large[0]);
      await store.put('b', large[1]);
      await store.put('small', Buffer.alloc(4096, 0x33));
      await settle();
      const before = addon.recycledMappingStats();
      let same = 0;
      for (let round = 0; round < 3; round++) {
        for (const [index, key] of ['a', 'b'].entries()) {
          const value = await store.get(key);
          if (Buffer.compare(value, large[index]) === 0) same++;
        }
        await settle();
      }
      const afterLarge = addon.recycledMappingStats();
      const small = await store.get('small');
      const afterSmall = addon.recycledMappingStats();
      await store.close();
      console.log(JSON.stringify({
        same,
        reused: afterLarge.reused - before.reused,
        smallMapped: afterSmall.mapped - afterLarge.mapped + afterSmall.reused - afterLarge.reused,
        smallRight: small.length === 4096 && small.every((byte) => byte === 0x33),
      }));
    `;
    const output = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const result = JSON.parse(output.trim().split('\n').pop()!) as { same: number; reused: number; smallMapped: number; smallRight: boolean };
    assert.equal(result.same, 6, output);
    // The first round's gets map fresh memory; later ones reuse what the
    // collector freed (not always every buffer at once: the last one read
    // may still be held when the round's collection runs).
    assert.ok(result.reused >= 2, output);
    assert.equal(result.smallMapped, 0, output);
    assert.equal(result.smallRight, true, output);
  });
});
