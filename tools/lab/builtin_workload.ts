// The built-in crash-test workload: what a store does, on a small store (a
// 16 KiB WAL, so it laps and checkpoints often) — single puts of inline and
// extent values, batches, concurrent writers sharing commits (group
// commit), overwrites and deletes (freed extents, trims), checkpoints, a
// clean reopen, then deferred flushes (sync: false) acknowledged by flush().
import type { LabStore } from './lab_store.js';
import { runWorkload, type TracedWorkload } from './workload.js';

/** 2 MiB of 512-byte blocks: each crash image is a copy of it. */
export const BUILTIN_STORE = { sizeBytes: 2 << 20, blockSize: 512, walSizeBytes: 16 << 10, encoding: 'string' as const };

function valueFor(label: string, index: number, sizeBytes: number): string {
  return `${label}/${index}:`.padEnd(sizeBytes, String.fromCharCode(97 + ((label.length + index) % 26)));
}

/** The workload itself; `scale` multiplies its rounds (1 = six). */
export function builtinWorkload(scale = 1): (store: LabStore) => Promise<void> {
  return async (store) => {
    const rounds = Math.max(1, Math.round(6 * scale));
    for (let round = 0; round < rounds; round++) {
      // One writer: inline and extent values (blockSize/2 = 256 B is the line).
      for (let i = 0; i < 3; i++) {
        const key = `put-${round}-${i}`;
        await store.put(key, valueFor(key, 0, i === 1 ? 1500 : 90));
      }
      // A batch mixing both kinds.
      const batch = `batch-${round}`;
      await store.batch([0, 1, 2].map((i) => ({ type: 'put' as const, key: `${batch}/${i}`, value: valueFor(batch, i, i === 2 ? 700 : 60) })));
      // Concurrent writers sharing commits.
      await Promise.all(
        [0, 1, 2].map(async (writer) => {
          for (let i = 0; i < 2; i++) {
            const key = `writer-${round}-${writer}-${i}`;
            await store.put(key, valueFor(key, 0, writer === 0 ? 800 : 120));
          }
        }),
      );
      if (round > 0) {
        // Overwrite an extent value with an inline one, and delete another:
        // their extents are freed, trimmed and later reused.
        await store.put(`put-${round - 1}-1`, valueFor(`again-${round}`, 0, 40));
        await store.delete(`writer-${round - 1}-0-1`);
      }
      if (round % 3 === 2) await store.checkpoint();
    }

    // Deferred flushes (sync: false): a write resolves once written, and only
    // flush() promises durability, so the acknowledgements come from flush().
    await store.reopen({ sync: false });
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < 4; i++) {
        const key = `deferred-${round}-${i}`;
        await store.batch([0, 1].map((part) => ({ type: 'put' as const, key: `${key}/${part}`, value: valueFor(key, part, i === 3 ? 900 : 70) })));
      }
      if (round > 0) await store.delete(`deferred-${round - 1}-3/1`);
      await store.flush();
    }
  };
}

export function runBuiltinWorkload(directory: string, scale = 1): Promise<TracedWorkload> {
  return runWorkload(directory, builtinWorkload(scale), BUILTIN_STORE);
}
