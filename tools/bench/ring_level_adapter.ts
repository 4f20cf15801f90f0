// ringstore/level in bench:store: the same store as the `ringstore` row,
// driven through RingLevel (abstract-level 3) instead of the BlockStore API,
// so that the report shows what the adapter costs (the target: puts and gets
// within LEVEL_VS_BLOCK_STORE_MIN of the BlockStore row, store_targets.ts).
//
// Keys are 'utf8' and values 'view' (Uint8Array), abstract-level's cheapest
// encodings for what the workloads pass; writes are durable (sync: true, the
// store's default), on an actor with the store's own options.
import { join } from 'node:path';

import { IoUringActor, STORE_RING_OPTIONS } from '../../index.js';
import { RingLevel } from '../../level/index.js';
import { RINGSTORE_DEFAULT_SIZING, type KeyValue, type RingstoreSizing, type StoreAdapter, type StoreContender } from './store_adapter.js';

const RING_LEVEL_FILE_NAME = 'ring-level.db';

/** ringstore through `ringstore/level`'s RingLevel. */
export function ringLevelContender(sizing: RingstoreSizing = RINGSTORE_DEFAULT_SIZING): StoreContender {
  return {
    id: 'ringstore-level',
    label: 'ringstore/level (RingLevel)',
    durability: "sync: true (default): each write resolves after its commit's WAL write + fdatasync; keyEncoding 'utf8', valueEncoding 'view'",
    open: async (directory) => openRingLevel(join(directory, RING_LEVEL_FILE_NAME), sizing),
  };
}

async function openRingLevel(path: string, sizing: RingstoreSizing): Promise<StoreAdapter> {
  const ring = IoUringActor.start({ ...STORE_RING_OPTIONS });
  const db = new RingLevel<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view', sizeBytes: sizing.sizeBytes, walSizeBytes: sizing.walSizeBytes, ring });
  try {
    if (ring.backend !== 'io_uring') throw new Error(`ringstore's actor runs on the ${ring.backend} backend, not io_uring: the numbers would not be ringstore's`);
    await db.open();
  } catch (error) {
    await ring.close();
    throw error;
  }
  let commitsAtMark = 0;
  return {
    put: (key: string, value: Uint8Array) => db.put(key, value),
    batch: (entries: readonly KeyValue[]) => db.batch(entries.map(([key, value]) => ({ type: 'put' as const, key, value }))),
    get: (key: string) => db.get(key),
    getSync: undefined,
    scan: async (visit: (key: string, value: Uint8Array) => void) => {
      for await (const [key, value] of db.iterator()) visit(key, value);
    },
    close: async () => {
      try {
        await db.close();
      } finally {
        await ring.close();
      }
    },
    markPhaseStart: () => {
      commitsAtMark = db.store.stats().commits;
    },
    describe: () => `${db.store.stats().commits - commitsAtMark} commits`,
    walFill: () => db.store.stats().walFill,
  };
}
