// The child of the kill -9 test: writes batches to a store until it is
// killed, printing "ack N" on stdout (synchronously) as each batch N is
// acknowledged. Usage: node kill_child.js PATH FIRST_BATCH
import { writeSync } from 'node:fs';

import { BlockStore } from '../../engine/block_store.js';

export const KILL_STORE_BYTES = 128 << 20;
export const KILL_BATCH_KEYS = 3;

export function killBatchEntries(batch: number): [string, string][] {
  return Array.from({ length: KILL_BATCH_KEYS }, (_, i): [string, string] => [
    `batch-${batch}/${i}`,
    `${batch}:${i}:`.padEnd(i === 2 ? 2100 : 80, String.fromCharCode(97 + (batch % 26))),
  ]);
}

async function main(): Promise<void> {
  const [path, firstText] = process.argv.slice(2);
  const first = Number(firstText);
  const store = await BlockStore.open(path, { create: true, sizeBytes: KILL_STORE_BYTES, walSizeBytes: 256 << 10, encoding: 'string' });
  writeSync(1, 'ready\n');
  // Several writers at once, so a kill lands with commits, data writes,
  // trims and checkpoints in flight.
  let next = first;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (;;) {
        const batch = next++;
        await store.batch(killBatchEntries(batch).map(([key, value]) => ({ type: 'put' as const, key, value })));
        writeSync(1, `ack ${batch}\n`);
        // Overwrite an older batch now and then: frees, trims, reuse.
        if (batch % 5 === 0 && batch - 3 >= first) {
          await store.batch(killBatchEntries(batch - 3).map(([key, value]) => ({ type: 'put' as const, key, value })));
        }
      }
    }),
  );
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
