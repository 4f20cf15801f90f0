// A workload of large values for the labs (crash_large_values.test.ts):
// values of LARGE_VALUE_BYTES and more, in several IOs of
// LARGE_IO_CHUNK_BYTES, whose data writes are in flight beside the WAL
// write of their commit.
import { LARGE_IO_CHUNK_BYTES, LARGE_VALUE_BYTES } from '../../engine/grid.js';
import type { LabStore } from '../../tools/lab/lab_store.js';
import { runWorkload, type TracedWorkload } from '../../tools/lab/workload.js';

/** Two IOs a value: a whole chunk and a part of one. */
export const LARGE_BYTES = LARGE_IO_CHUNK_BYTES + (64 << 10);

function valueFor(label: string, sizeBytes: number): string {
  return `${label}:`.padEnd(sizeBytes, String.fromCharCode(97 + (label.length % 26)));
}

/** Large puts alone, beside small ones in one commit, overwritten and deleted (their blocks freed, trimmed and reused). */
async function largeValueWorkload(store: LabStore): Promise<void> {
  for (let round = 0; round < 4; round++) {
    await store.put(`large-${round}`, valueFor(`large-${round}`, LARGE_BYTES));
    // A large and a small put arriving together share a commit.
    await Promise.all([store.put(`shared-${round}`, valueFor(`shared-${round}`, LARGE_VALUE_BYTES)), store.put(`small-${round}`, valueFor(`small-${round}`, 100))]);
    if (round > 0) {
      await store.put(`large-${round - 1}`, valueFor(`again-${round}`, LARGE_BYTES));
      await store.delete(`shared-${round - 1}`);
    }
    if (round === 1) await store.checkpoint();
  }
}

/**
 * Runs the workload traced in `directory`: 8 MiB in 512-byte blocks (room
 * for the values, their overwrites and a checkpoint) with a 16 KiB WAL
 * (it laps often, and its zeroing at create is few sectors to tear).
 */
export function runLargeValueWorkload(directory: string): Promise<TracedWorkload> {
  return runWorkload(directory, largeValueWorkload, { sizeBytes: 8 << 20, blockSize: 512, walSizeBytes: 16 << 10, encoding: 'string', sync: true });
}
