// The IO workloads of the benchmark, described once so that fio's job,
// ringstore's loops and fs.promises' loops all run the same thing.
import assert from 'node:assert/strict';

export type WorkloadId =
  | 'randread-qd1'
  | 'randread-qd32'
  | 'write-fdatasync-qd1'
  | 'write-dsync-qd1'
  | 'seqwrite-1m-qd8'
  | 'write-fdatasync-1m-qd1'
  | 'seqread-1m-qd8';

export interface WorkloadSpec {
  id: WorkloadId;
  title: string;
  /** 'random': block-aligned uniform offsets; 'sequential': ascending, wrapping at the end of the file. */
  pattern: 'random' | 'sequential';
  /**
   * 'writeAndSync': each operation is a write followed by fdatasync, complete
   * when both are. 'writeDsync': each write is durable when it completes
   * (ringstore: RWF_DSYNC, writeDsync; fio: O_DSYNC, --sync=dsync).
   */
  operation: 'read' | 'write' | 'writeAndSync' | 'writeDsync';
  blockSize: number;
  /** Operations in flight at once: one async loop each (fio: iodepth). */
  queueDepth: number;
  /** What the workload is judged by: operations per second or bytes per second. */
  headline: 'iops' | 'bandwidth';
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const WORKLOADS: readonly WorkloadSpec[] = [
  {
    id: 'randread-qd1',
    title: '4 KiB random direct read, QD1',
    pattern: 'random',
    operation: 'read',
    blockSize: 4 * KiB,
    queueDepth: 1,
    headline: 'iops',
  },
  {
    id: 'randread-qd32',
    title: '4 KiB random direct read, QD32',
    pattern: 'random',
    operation: 'read',
    blockSize: 4 * KiB,
    queueDepth: 32,
    headline: 'iops',
  },
  {
    id: 'write-fdatasync-qd1',
    title: '4 KiB random direct write + fdatasync, QD1',
    pattern: 'random',
    operation: 'writeAndSync',
    blockSize: 4 * KiB,
    queueDepth: 1,
    headline: 'iops',
  },
  {
    id: 'write-dsync-qd1',
    title: '4 KiB random direct write, durable (O_DSYNC / RWF_DSYNC), QD1',
    pattern: 'random',
    operation: 'writeDsync',
    blockSize: 4 * KiB,
    queueDepth: 1,
    headline: 'iops',
  },
  {
    id: 'seqwrite-1m-qd8',
    title: '1 MiB sequential direct write, QD8',
    pattern: 'sequential',
    operation: 'write',
    blockSize: 1 * MiB,
    queueDepth: 8,
    headline: 'bandwidth',
  },
  {
    id: 'write-fdatasync-1m-qd1',
    title: '1 MiB sequential direct write + fdatasync, QD1',
    pattern: 'sequential',
    operation: 'writeAndSync',
    blockSize: 1 * MiB,
    queueDepth: 1,
    headline: 'bandwidth',
  },
  {
    id: 'seqread-1m-qd8',
    title: '1 MiB sequential direct read, QD8',
    pattern: 'sequential',
    operation: 'read',
    blockSize: 1 * MiB,
    queueDepth: 8,
    headline: 'bandwidth',
  },
];

/** The largest block any workload moves; the bench file must be a multiple of it. */
export const BLOCK_SIZE_MAX = Math.max(...WORKLOADS.map((workload) => workload.blockSize));

for (const workload of WORKLOADS) {
  assert.ok(BLOCK_SIZE_MAX % workload.blockSize === 0, `${workload.id}: block sizes must divide each other`);
  assert.ok(workload.queueDepth >= 1);
}
