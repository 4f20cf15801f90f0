// The built-in crash-test workload: what a store does, on a small store (a
// 16 KiB WAL, so it laps and checkpoints often) — single puts of inline and
// extent values, batches, concurrent writers sharing commits (group
// commit), writers whose commits are pipelined, overwrites and deletes
// (freed extents, trims), checkpoints (the first followed by a lap of the
// WAL in single inline puts), a clean reopen, then deferred flushes
// (sync: false) acknowledged by flush().
import type { LabStore } from './lab_store.js';
import { runWorkload, type TracedWorkload, type WorkloadStoreOptions } from './workload.js';

/**
 * The built-in workload's store: 4096 blocks with a 32-block WAL (so it laps
 * and checkpoints often) — 2 MiB at the default 512-byte blocks, where every
 * block is one sector; larger blocks make every structure tearable inside.
 */
export const BUILTIN_BLOCK_COUNT = 4096;
export const BUILTIN_WAL_BLOCK_COUNT = 32;
/** Single inline puts after a checkpoint: one WAL block each at every block size, so more than the WAL holds. */
const WAL_LAP_PUTS = BUILTIN_WAL_BLOCK_COUNT + 8;

export function builtinStore(blockSize = 512): WorkloadStoreOptions {
  return {
    sizeBytes: BUILTIN_BLOCK_COUNT * blockSize,
    blockSize,
    walSizeBytes: BUILTIN_WAL_BLOCK_COUNT * blockSize,
    encoding: 'string',
    sync: true,
  };
}

function valueFor(label: string, index: number, sizeBytes: number): string {
  return `${label}/${index}:`.padEnd(sizeBytes, String.fromCharCode(97 + ((label.length + index) % 26)));
}

/**
 * The workload itself; `scale` multiplies its rounds (1 = six). Value sizes
 * follow the block size: values up to half a page (max(blockSize, 4096)
 * bytes) are stored inline in the WAL, larger ones in extents. `size` gives
 * an inline value, `extentSize` one that many bytes past the inline limit
 * at 512-byte blocks scaled as `size` scales (one to three blocks past it).
 */
export function builtinWorkload(scale = 1, blockSize = 512): (store: LabStore) => Promise<void> {
  const size = (bytesAt512: number): number => Math.round((bytesAt512 * blockSize) / 512);
  const inlineMax = Math.max(blockSize, 4096) / 2;
  const extentSize = (bytesAt512: number): number => inlineMax + size(bytesAt512 - 256);
  return async (store) => {
    const rounds = Math.max(1, Math.round(6 * scale));
    for (let round = 0; round < rounds; round++) {
      // One writer: inline and extent values.
      for (let i = 0; i < 3; i++) {
        const key = `put-${round}-${i}`;
        await store.put(key, valueFor(key, 0, i === 1 ? extentSize(1500) : size(90)));
      }
      // A batch mixing both kinds.
      const batch = `batch-${round}`;
      await store.batch([0, 1, 2].map((i) => ({ type: 'put' as const, key: `${batch}/${i}`, value: valueFor(batch, i, i === 2 ? extentSize(700) : size(60)) })));
      // Concurrent writers sharing commits.
      await Promise.all(
        [0, 1, 2].map(async (writer) => {
          for (let i = 0; i < 2; i++) {
            const key = `writer-${round}-${writer}-${i}`;
            await store.put(key, valueFor(key, 0, writer === 0 ? extentSize(800) : size(120)));
          }
        }),
      );
      // Writers arriving while a commit is in flight (one and two event-loop
      // turns late): their commits are submitted beside it (pipelined), so a
      // crash can keep a later commit without an earlier one.
      await Promise.all(
        [0, 1, 2].map(async (writer) => {
          for (let turn = 0; turn < writer; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
          for (let i = 0; i < 2; i++) {
            const key = `pipelined-${round}-${writer}-${i}`;
            await store.put(key, valueFor(key, 0, writer === 1 ? extentSize(600) : size(100)));
          }
        }),
      );
      if (round > 0) {
        // Overwrite an extent value with an inline one, and delete another:
        // their extents are freed, trimmed and later reused.
        await store.put(`put-${round - 1}-1`, valueFor(`again-${round}`, 0, size(40)));
        await store.delete(`writer-${round - 1}-0-1`);
      }
      if (round % 3 === 2) await store.checkpoint();
      if (round === 2) {
        // After the first checkpoint, inline puts one at a time until the WAL
        // laps: each commit one RWF_DSYNC write and no fdatasync, so nothing
        // but the checkpoint's own flush makes its superblock durable before
        // the WAL blocks it lets go are written again (found by a review:
        // with an fdatasync always coming first, a checkpoint whose
        // superblock was never flushed passed every crash state). Once: the
        // trace, and so each state's image, grows with every lap.
        for (let i = 0; i < WAL_LAP_PUTS; i++) {
          const key = `lap-${round}-${i % 8}`;
          await store.put(key, valueFor(key, i, size(60)));
        }
      }
    }

    // Deferred flushes (sync: false): a write resolves once written, and only
    // flush() promises durability, so the acknowledgements come from flush().
    await store.reopen({ sync: false });
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < 4; i++) {
        const key = `deferred-${round}-${i}`;
        await store.batch([0, 1].map((part) => ({ type: 'put' as const, key: `${key}/${part}`, value: valueFor(key, part, i === 3 ? extentSize(900) : size(70)) })));
      }
      if (round > 0) await store.delete(`deferred-${round - 1}-3/1`);
      await store.flush();
    }
  };
}

/**
 * Runs the built-in workload ({@link builtinWorkload}) traced, in `directory`,
 * on a store of `blockSize`-byte blocks: what `ringstore crash-test` checks
 * without --module.
 */
export function runBuiltinWorkload(directory: string, scale = 1, blockSize = 512): Promise<TracedWorkload> {
  return runWorkload(directory, builtinWorkload(scale, blockSize), builtinStore(blockSize));
}
