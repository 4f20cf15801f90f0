// The built-in crash-test workload: a small store on a real file through the
// io_uring actor, traced, doing what a store does — single puts of inline
// and extent values, batches, concurrent writers (group commit), WAL laps
// and checkpoints (a tiny WAL), a clean close, then a reopen with deferred
// flushes (sync: false) acknowledged by flush().
import { join } from 'node:path';

import { BlockStore } from '../../engine/block_store.js';
import { IoUringActor } from '../../native/io_uring_actor.js';
import type { WorkloadOperation } from './crash_explorer.js';
import { WriteTrace } from './write_trace.js';

export const WORKLOAD_STORE_BYTES = 2 << 20;
export const WORKLOAD_BLOCK_SIZE = 512;
export const WORKLOAD_WAL_BYTES = 16 << 10;

export interface TracedWorkload {
  trace: WriteTrace;
  /** The device before the trace began (a new file: zeros). */
  base: Uint8Array;
  operations: WorkloadOperation[];
}

function valueFor(label: string, index: number, sizeBytes: number): string {
  return `${label}/${index}:`.padEnd(sizeBytes, String.fromCharCode(97 + ((label.length + index) % 26)));
}

export async function runBuiltinWorkload(directory: string, scale = 1): Promise<TracedWorkload> {
  const path = join(directory, 'crash-lab.ringstore');
  const ring = IoUringActor.start({ fallback: 'threads' });
  const trace = new WriteTrace(path);
  ring.observer = trace;
  const operations: WorkloadOperation[] = [];
  try {
    const store = await BlockStore.open(path, {
      create: true,
      sizeBytes: WORKLOAD_STORE_BYTES,
      blockSize: WORKLOAD_BLOCK_SIZE,
      walSizeBytes: WORKLOAD_WAL_BYTES,
      cacheSizeBytes: 64 << 10,
      encoding: 'string',
      ring,
    });
    const run = async (label: string, entries: [string, string][]): Promise<void> => {
      operations.push({ label, entries });
      if (entries.length === 1) await store.put(entries[0][0], entries[0][1]);
      else await store.batch(entries.map(([key, value]) => ({ type: 'put' as const, key, value })));
      trace.acknowledge(label, null);
    };
    const rounds = Math.max(1, Math.round(6 * scale));
    for (let round = 0; round < rounds; round++) {
      // One writer: inline and extent values (blockSize/2 = 256 B is the line).
      for (let i = 0; i < 3; i++) {
        const label = `put-${round}-${i}`;
        await run(label, [[label, valueFor(label, 0, i === 1 ? 1500 : 90)]]);
      }
      // A batch mixing both kinds.
      const batch = `batch-${round}`;
      await run(batch, [0, 1, 2].map((i): [string, string] => [`${batch}/${i}`, valueFor(batch, i, i === 2 ? 700 : 60)]));
      // Concurrent writers sharing commits.
      await Promise.all(
        [0, 1, 2].map(async (writer) => {
          for (let i = 0; i < 2; i++) {
            const label = `writer-${round}-${writer}-${i}`;
            await run(label, [[label, valueFor(label, 0, writer === 0 ? 800 : 120)]]);
          }
        }),
      );
      if (round % 3 === 2) await store.checkpoint();
    }
    await store.close();

    // Deferred flushes (sync: false): a write resolves once written, and only
    // flush() promises durability, so the acknowledgements come from flush().
    const deferred = await BlockStore.open(path, { cacheSizeBytes: 64 << 10, encoding: 'string', sync: false, ring });
    let unflushed: string[] = [];
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < 4; i++) {
        const label = `deferred-${round}-${i}`;
        const entries: [string, string][] = [0, 1].map((part) => [`${label}/${part}`, valueFor(label, part, i === 3 ? 900 : 70)]);
        operations.push({ label, entries });
        await deferred.batch(entries.map(([key, value]) => ({ type: 'put' as const, key, value })));
        unflushed.push(label);
      }
      await deferred.flush();
      for (const label of unflushed) trace.acknowledge(label, null);
      unflushed = [];
    }
    await deferred.close();
  } finally {
    ring.observer = undefined;
    await ring.close();
  }
  return { trace, base: new Uint8Array(WORKLOAD_STORE_BYTES), operations };
}
