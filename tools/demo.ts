// The main job: open (or create) a store in a file under the repository,
// write records and blobs durably through the io_uring actor, close, reopen,
// read everything back, verify it, and print what it cost.
//
//   npm start                          # data/demo.ringstore
//   node dist/tools/demo.js PATH [RECORDS]
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BlockStore } from '../index.js';

const DEFAULT_RECORD_COUNT = 2000;
const WRITER_COUNT = 64;
const BLOB_COUNT = 16;
const BLOB_SIZE_BYTES = 1 << 20;

function percentileUs(sorted: number[], quantile: number): string {
  if (sorted.length === 0) return '-';
  return sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))].toFixed(0);
}

function elapsedUs(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1000;
}

async function main(): Promise<void> {
  const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const path = process.argv[2] ?? join(repoRoot, 'data', 'demo.ringstore');
  const recordCount = Number(process.argv[3] ?? DEFAULT_RECORD_COUNT);
  if (!Number.isInteger(recordCount) || recordCount < 1) throw new RangeError('RECORDS must be a positive integer');
  mkdirSync(dirname(path), { recursive: true });

  const openStarted = process.hrtime.bigint();
  let db = await BlockStore.open(path, { create: true, sizeBytes: 256 << 20 });
  console.log(`ringstore demo: ${path} (opened in ${(elapsedUs(openStarted) / 1000).toFixed(1)} ms, ${db.stats().keys} keys already there)`);
  // The same keys every run: a rerun overwrites them (exercising frees and
  // trims) rather than growing the store without end.
  const run = 'v1';

  // 1. One writer, durable puts: each resolves after its commit's fdatasync.
  const singleUs: number[] = [];
  for (let i = 0; i < Math.min(recordCount, 200); i++) {
    const started = process.hrtime.bigint();
    await db.put(`demo/${run}/single/${i}`, { i, at: Date.now() });
    singleUs.push(elapsedUs(started));
  }

  // 2. 64 concurrent writers: their puts share commits (group commit).
  const concurrentStarted = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: WRITER_COUNT }, async (_, writer) => {
      while (next < recordCount) {
        const i = next++;
        await db.put(`demo/${run}/record/${String(i).padStart(6, '0')}`, { i, writer, text: `record ${i}` });
      }
    }),
  );
  const concurrentSeconds = elapsedUs(concurrentStarted) / 1e6;

  // 3. Blobs of 1 MiB in data extents.
  const blobs = Array.from({ length: BLOB_COUNT }, () => randomBytes(BLOB_SIZE_BYTES));
  const blobStarted = process.hrtime.bigint();
  await Promise.all(blobs.map((blob, i) => db.put(`demo/${run}/blob/${i}`, blob)));
  const blobSeconds = elapsedUs(blobStarted) / 1e6;
  const stats = db.stats();
  await db.close();

  // 4. Reopen (recovery: superblock, checkpoint, WAL) and verify everything.
  const reopenStarted = process.hrtime.bigint();
  db = await BlockStore.open(path);
  const reopenMs = elapsedUs(reopenStarted) / 1000;
  let verified = 0;
  for (let i = 0; i < recordCount; i++) {
    const value = (await db.get(`demo/${run}/record/${String(i).padStart(6, '0')}`)) as { i: number; text: string } | undefined;
    if (value?.i !== i || value.text !== `record ${i}`) throw new Error(`record ${i} read back as ${JSON.stringify(value)}`);
    verified++;
  }
  for (let i = 0; i < BLOB_COUNT; i++) {
    const value = (await db.get(`demo/${run}/blob/${i}`)) as Buffer | undefined;
    if (value === undefined || !blobs[i].equals(value)) throw new Error(`blob ${i} read back different bytes`);
    verified++;
  }
  let scanned = 0;
  for await (const [key] of db.range({ gte: `demo/${run}/record/`, lt: `demo/${run}/record0`, values: false })) {
    if (key !== `demo/${run}/record/${String(scanned).padStart(6, '0')}`) throw new Error(`range out of order at ${String(key)}`);
    scanned++;
  }
  if (scanned !== recordCount) throw new Error(`range found ${scanned} of ${recordCount} records`);
  const integrity = await db.verifyIntegrity();
  await db.close();

  singleUs.sort((a, b) => a - b);
  console.log(`  1 writer, durable puts:   p50 ${percentileUs(singleUs, 0.5)} µs, p99 ${percentileUs(singleUs, 0.99)} µs`);
  console.log(`  ${WRITER_COUNT} writers, durable puts: ${(recordCount / concurrentSeconds).toFixed(0)} puts/s, ${stats.meanRecordsPerCommit.toFixed(1)} records per commit on average`);
  console.log(`  ${BLOB_COUNT} × 1 MiB blobs, durable: ${((BLOB_COUNT * BLOB_SIZE_BYTES) / (1 << 20) / blobSeconds).toFixed(0)} MiB/s`);
  console.log(`  reopen: ${reopenMs.toFixed(1)} ms; verified ${verified} values and an ordered range of ${scanned} keys`);
  console.log(`  store: ${integrity.keys} keys, ${integrity.referencedBlocks} data blocks referenced, ${integrity.freeBlocks} free; checksums and space accounting verified`);
  console.log('ok: everything read back as written');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
