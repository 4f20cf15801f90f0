// A workload of keys near the 1024-byte limit for the crash lab
// (crash_long_keys.test.ts): branches of three or four children, and
// batches of deletes of neighbouring keys that merge them, with the lab's
// small cache. Some deletes leave a branch with one child and no sibling in
// memory; the next checkpoint repairs it (PageTree.repairUnderflows), so
// crash states fall before, during and after such repairs.
import type { LabStore } from '../../tools/lab/lab_store.js';
import { seededRandom } from '../../tools/lab/seeded_random.js';
import { runWorkload, type TracedWorkload } from '../../tools/lab/workload.js';

/** Bytes keys are made of: few, so that keys share prefixes and bound each other closely. */
const ALPHABET = [0x00, 0x01, 0x41, 0x61, 0x62, 0x7f, 0xc3, 0xff];
/**
 * The one of seeds 0 to 30 whose deletes left a branch of one child with no
 * sibling in memory (a trace in PageTree's repair path showed it; the
 * others merged and borrowed from siblings in memory only).
 */
const WORKLOAD_SEED = Number(process.env.RINGSTORE_LONG_KEY_WORKLOAD_SEED ?? 5);

/** One key in six near the key limit (a run of one of three bytes, then a short tail), the rest 1 to 6 bytes. */
function keyOf(random: () => number): Buffer {
  const byte = (): number => ALPHABET[Math.floor(random() * ALPHABET.length)]!;
  const tail = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 3) }, byte));
  if (random() < 1 / 6) return Buffer.concat([Buffer.alloc(1000 + Math.floor(random() * 21), [0x00, 0x61, 0xff][Math.floor(random() * 3)]!), tail]);
  return Buffer.concat([Buffer.from(Array.from({ length: Math.floor(random() * 4) }, byte)), tail]);
}

async function longKeyWorkload(store: LabStore): Promise<void> {
  const random = seededRandom(WORKLOAD_SEED);
  const live = new Map<string, Buffer>();
  for (let batch = 0; batch < 12; batch++) {
    const keys = Array.from({ length: 50 }, () => keyOf(random));
    await store.batch(keys.map((key) => ({ type: 'put' as const, key, value: `v${batch}` })));
    for (const key of keys) live.set(key.toString('hex'), key);
  }
  await store.checkpoint();
  for (let round = 0; round < 10; round++) {
    // A run of neighbouring keys in one batch, as a range clear deletes them.
    const sorted = [...live.keys()].sort();
    const start = Math.floor(random() * sorted.length);
    const doomed = sorted.slice(start, start + 10 + Math.floor(random() * 20));
    await store.batch(doomed.map((key) => ({ type: 'del' as const, key: live.get(key)! })));
    for (const key of doomed) live.delete(key);
    if (round % 2 === 1) await store.checkpoint();
  }
}

/** Runs the workload traced in `directory`: 8 MiB in 4096-byte blocks, a 64 KiB WAL (it laps and checkpoints on its own too), a 16 KiB cache (three pages: siblings are seldom in memory). */
export function runLongKeyWorkload(directory: string): Promise<TracedWorkload> {
  return runWorkload(directory, longKeyWorkload, { sizeBytes: 8 << 20, blockSize: 4096, walSizeBytes: 64 << 10, encoding: 'string', sync: true, cacheSizeBytes: 16 << 10 });
}
