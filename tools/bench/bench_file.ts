// The benchmark's data file: created once, fully written (never sparse), and
// reused by later runs while it has the right size.
//
// A sparse or merely fallocated file would make the read tests lie: ext4
// answers reads of holes and unwritten extents with zeros without touching
// the disk. So the file is written sequentially with random bytes (random,
// not zeros, in case the virtual disk skips zero writes too).
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { constants as fsConstants, promises as fsPromises } from 'node:fs';
import { dirname } from 'node:path';

import { allocAligned, type IoUringActor } from '../../index.js';
import type { BenchFile } from './io_workloads.js';

/** Size of each write while filling the file: 1 MiB, one large direct IO. */
const FILL_CHUNK_SIZE = 1 << 20;
/** st_blocks counts 512-byte units whatever the file system's block size. */
const STAT_BLOCK_SIZE = 512;

export type PrepareOutcome = 'reused' | 'created';

/**
 * Makes `benchFile` a fully written regular file of exactly its size.
 * REQUIRES: sizeBytes is a positive multiple of FILL_CHUNK_SIZE.
 * Refuses anything that exists and is not a regular file (a block device
 * passed by mistake would be overwritten).
 */
export async function prepareBenchFile(benchFile: BenchFile, log: (line: string) => void): Promise<PrepareOutcome> {
  assert.ok(benchFile.sizeBytes > 0 && benchFile.sizeBytes % FILL_CHUNK_SIZE === 0);
  const existing = await fsPromises.stat(benchFile.path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (existing !== undefined) {
    if (!existing.isFile()) throw new Error(`${benchFile.path} exists and is not a regular file; refusing to overwrite it`);
    if (existing.size === benchFile.sizeBytes && existing.blocks * STAT_BLOCK_SIZE >= benchFile.sizeBytes) {
      if (await holdsWrittenData(benchFile)) return 'reused';
      log(`${benchFile.path}: ${benchFile.sizeBytes} B allocated but reading zeros (fallocated, never written?); rewriting it`);
    } else {
      log(
        `${benchFile.path}: size ${existing.size} B with ${existing.blocks * STAT_BLOCK_SIZE} B allocated, ` +
          `want ${benchFile.sizeBytes} B fully written; rewriting it`,
      );
    }
  }

  await fsPromises.mkdir(dirname(benchFile.path), { recursive: true });
  log(`writing ${benchFile.sizeBytes / FILL_CHUNK_SIZE} MiB of random data to ${benchFile.path} (once; later runs reuse it)`);
  const handle = await fsPromises.open(
    benchFile.path,
    fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_DIRECT,
    0o644,
  );
  try {
    const chunk = allocAligned(FILL_CHUNK_SIZE);
    for (let offset = 0; offset < benchFile.sizeBytes; offset += FILL_CHUNK_SIZE) {
      randomFillSync(chunk);
      const { bytesWritten } = await handle.write(chunk, 0, FILL_CHUNK_SIZE, offset);
      // A short direct write means a full disk or a quota: an operating error.
      if (bytesWritten !== FILL_CHUNK_SIZE) throw new Error(`short write at offset ${offset}: ${bytesWritten} of ${FILL_CHUNK_SIZE} B`);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  const written = await fsPromises.stat(benchFile.path);
  assert.equal(written.size, benchFile.sizeBytes);
  return 'created';
}

/** Samples read across the file: each must hold the random data the fill writes. */
const WRITTEN_SAMPLE_COUNT = 16;
const WRITTEN_SAMPLE_BYTES = 4096;

/**
 * Whether the file holds written data, by samples across it: a file whose
 * space was allocated and never written (fallocate: ext4's unwritten
 * extents) has the blocks stat counts but reads zeros without touching the
 * disk, and every read row measured the kernel instead (found by a review:
 * fio's QD32 read rose from 45.6 k to 104 k IOPS on such a file).
 */
async function holdsWrittenData(benchFile: BenchFile): Promise<boolean> {
  const handle = await fsPromises.open(benchFile.path, 'r');
  try {
    const sample = Buffer.alloc(WRITTEN_SAMPLE_BYTES);
    const stride = Math.floor(benchFile.sizeBytes / WRITTEN_SAMPLE_COUNT);
    for (let index = 0; index < WRITTEN_SAMPLE_COUNT; index++) {
      const { bytesRead } = await handle.read(sample, 0, WRITTEN_SAMPLE_BYTES, index * stride);
      if (bytesRead !== WRITTEN_SAMPLE_BYTES || sample.every((byte) => byte === 0)) return false;
    }
    return true;
  } finally {
    await handle.close();
  }
}

/**
 * Makes `benchFile` a new file of its size whose space is allocated and
 * never written, as a store file's new space is: made through `ring` with
 * `sizeBytes` (fallocate), which is how a store file is made and grown. On
 * ext4 such blocks are unwritten extents, and the first write to each also
 * converts its extent, which the next fdatasync commits to the journal
 * (docs/benchmarks.md, session 24: a 1 MiB write + fdatasync at QD1 took
 * ~2 × as long as into written blocks). Any earlier file of that name goes.
 */
export async function prepareFreshSpaceFile(benchFile: BenchFile, ring: IoUringActor): Promise<void> {
  assert.ok(benchFile.sizeBytes > 0 && benchFile.sizeBytes % FILL_CHUNK_SIZE === 0);
  await fsPromises.mkdir(dirname(benchFile.path), { recursive: true });
  await fsPromises.rm(benchFile.path, { force: true });
  const file = await ring.open(benchFile.path, { create: true, sizeBytes: benchFile.sizeBytes });
  await file.close();
  const made = await fsPromises.stat(benchFile.path);
  assert.equal(made.size, benchFile.sizeBytes);
}
