// The benchmark's workload loops for the two contenders that run inside this
// process: ringstore's IoUringActor and Node's fs.promises FileHandle, both
// with O_DIRECT and aligned buffers.
//
// Everything is driven from this one JS thread. Queue depth N means N async
// loops, each awaiting its own operation before issuing the next; an
// operation's latency is process.hrtime.bigint() around that await, so it is
// end to end: argument checks, the hop to the actor (or libuv's thread pool),
// the kernel, and the promise resolving back in JS.
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { constants as fsConstants, promises as fsPromises } from 'node:fs';

import { allocAligned, IoUringActor, type SpinSetting } from '../../index.js';
import { LatencyRecorder } from './latency_recorder.js';
import type { Measurement } from './measurement.js';
import { RandomOffsets } from './random_offsets.js';
import type { WorkloadSpec } from './workload_spec.js';

/** The file every contender works on. */
export interface BenchFile {
  path: string;
  sizeBytes: number;
}

export interface RunTiming {
  /** Run untimed first, so threads, rings and the device are awake. */
  warmupSeconds: number;
  measureSeconds: number;
}

/** Random blocks read through both contenders and compared before any timing. */
export const VERIFY_BLOCK_COUNT = 64;
/** Base of the PRNG seeds; each run takes the next one so runs do not repeat offsets. */
const SEED_BASE = 0x9e3779b9;
const MiB = 1024 * 1024;

let runCount = 0;

/** Issues one operation of the workload for loop `loopIndex` at `offset`. */
type IssueOp = (loopIndex: number, offset: number) => Promise<unknown>;

/** The two busy-wait windows of a ringstore handle; everything else is the default. */
export interface RingSpinOptions {
  /** The actor thread's busy-poll window (IoUringActorOptions.spinUs). */
  spinUs: SpinSetting;
  /** This JS thread's busy-wait for completions (IoUringActorOptions.completionSpinUs). */
  completionSpinUs: SpinSetting;
  /** writeDsync through the JS thread's own ring (IoUringActorOptions.directDsync); default false. */
  directDsync?: boolean;
  /** A read alone in flight through the JS thread's own ring (IoUringActorOptions.directReads); default true. */
  directReads?: boolean;
}

/**
 * Times the workload through a fresh actor started with `spin`. The actor's
 * stats cover its whole life, so its queued/kernel percentiles include the
 * warm-up operations.
 */
export async function runRingstore(spec: WorkloadSpec, benchFile: BenchFile, timing: RunTiming, spin: RingSpinOptions): Promise<Measurement> {
  const ring = IoUringActor.start({
    spinUs: spin.spinUs,
    completionSpinUs: spin.completionSpinUs,
    directDsync: spin.directDsync ?? false,
    directReads: spin.directReads ?? true,
  });
  try {
    assert.equal(ring.backend, 'io_uring');
    const file = await ring.open(benchFile.path, { direct: true });
    const buffers = loopBuffers(spec);
    let issue: IssueOp;
    switch (spec.operation) {
      case 'read':
        issue = (loopIndex, offset) => file.read(buffers[loopIndex], offset);
        break;
      case 'write':
        issue = (loopIndex, offset) => file.write(buffers[loopIndex], offset);
        break;
      case 'writeAndSync':
        issue = (loopIndex, offset) => file.writeAndSync(buffers[loopIndex], offset);
        break;
      case 'writeDsync':
        issue = (loopIndex, offset) => file.writeDsync(buffers[loopIndex], offset);
        break;
    }
    const measurement = await warmUpAndMeasure(spec, benchFile, timing, issue);
    const stats = ring.stats();
    if (stats.actorSpin.adaptive || stats.completionSpin.adaptive) {
      const describe = (name: string, spin: typeof stats.actorSpin): string =>
        `${name} ${spin.spinning ? 'spinning' : 'sleeping'} (spin won ${spin.spinWinCount} of ${spin.probeCount} probes)`;
      const route = stats.loneReadRoute;
      const lone = `lone reads ${route.direct ? 'through the JS thread\'s ring' : 'through the actor'} (actor won ${route.actorWinCount} of ${route.probeCount} probes)`;
      process.stderr.write(`bench:io: ${spec.id} 'auto' at the end: ${describe('actor', stats.actorSpin)}, ${describe('JS', stats.completionSpin)}, ${lone}\n`);
    }
    await file.close();
    // With directDsync the durable writes bypass the actor, and with
    // directReads the reads at QD1: it has no figures of its own for them,
    // and zeros would read as measured.
    if (stats.submitted === 0) return measurement;
    return {
      ...measurement,
      actor: {
        queuedUs: { p50: stats.queuedUs.p50, p99: stats.queuedUs.p99 },
        kernelUs: { p50: stats.kernelUs.p50, p99: stats.kernelUs.p99 },
        meanBatchSize: stats.meanBatchSize,
        waitCount: stats.waits,
      },
    };
  } finally {
    await ring.close();
  }
}

/**
 * Times the workload through an fs.promises FileHandle opened with O_DIRECT.
 * Its operations run on libuv's thread pool (UV_THREADPOOL_SIZE threads,
 * default 4), so at most that many are in the kernel at once.
 */
export async function runFsPromises(spec: WorkloadSpec, benchFile: BenchFile, timing: RunTiming): Promise<Measurement> {
  // fs.promises has no per-write RWF_DSYNC: the durable-write workload opens the file O_DSYNC.
  const dsyncFlag = spec.operation === 'writeDsync' ? fsConstants.O_DSYNC : 0;
  const handle = await fsPromises.open(benchFile.path, fsConstants.O_RDWR | fsConstants.O_DIRECT | dsyncFlag);
  try {
    const buffers = loopBuffers(spec);
    const length = spec.blockSize;
    let issue: IssueOp;
    switch (spec.operation) {
      case 'read':
        issue = (loopIndex, offset) => handle.read(buffers[loopIndex], 0, length, offset);
        break;
      case 'write':
      case 'writeDsync':
        issue = (loopIndex, offset) => handle.write(buffers[loopIndex], 0, length, offset);
        break;
      case 'writeAndSync':
        issue = async (loopIndex, offset) => {
          await handle.write(buffers[loopIndex], 0, length, offset);
          await handle.datasync();
        };
        break;
    }
    return await warmUpAndMeasure(spec, benchFile, timing, issue);
  } finally {
    await handle.close();
  }
}

/**
 * A pair check before anything is timed: a block written through ringstore
 * reads back the same through fs.promises, and random blocks read the same
 * through both. Throws if they disagree: a benchmark of wrong data means
 * nothing.
 */
export async function verifyReadsAgree(benchFile: BenchFile, blockSize: number): Promise<void> {
  const ring = IoUringActor.start();
  const handle = await fsPromises.open(benchFile.path, fsConstants.O_RDWR | fsConstants.O_DIRECT);
  try {
    const file = await ring.open(benchFile.path, { direct: true });
    const viaRing = allocAligned(blockSize);
    const viaFs = allocAligned(blockSize);
    const offsets = new RandomOffsets(SEED_BASE, benchFile.sizeBytes, blockSize);

    const written = allocAligned(blockSize);
    randomFillSync(written);
    const writtenOffset = offsets.next();
    assert.equal(await file.writeAndSync(written, writtenOffset), blockSize);
    const { bytesRead } = await handle.read(viaFs, 0, blockSize, writtenOffset);
    if (bytesRead !== blockSize || !viaFs.equals(written)) {
      throw new Error(`ringstore writeAndSync at offset ${writtenOffset} did not read back the same through fs.promises`);
    }

    for (let i = 0; i < VERIFY_BLOCK_COUNT; i++) {
      const offset = offsets.next();
      const ringBytesRead = await file.read(viaRing, offset);
      const fsBytesRead = (await handle.read(viaFs, 0, blockSize, offset)).bytesRead;
      if (ringBytesRead !== blockSize || fsBytesRead !== blockSize || !viaRing.equals(viaFs)) {
        throw new Error(
          `ringstore and fs.promises disagree at offset ${offset}: ` +
            `ringstore read ${ringBytesRead} bytes, fs.promises ${fsBytesRead}, contents ${viaRing.equals(viaFs) ? 'equal' : 'different'}`,
        );
      }
    }
    await file.close();
  } finally {
    await handle.close();
    await ring.close();
  }
}

async function warmUpAndMeasure(
  spec: WorkloadSpec,
  benchFile: BenchFile,
  timing: RunTiming,
  issue: IssueOp,
): Promise<Measurement> {
  await driveLoops(spec, benchFile, timing.warmupSeconds, issue, new LatencyRecorder());
  const recorder = new LatencyRecorder();
  const cpuBefore = process.cpuUsage();
  const elapsedNs = await driveLoops(spec, benchFile, timing.measureSeconds, issue, recorder);
  const cpu = process.cpuUsage(cpuBefore);
  const elapsedSeconds = elapsedNs / 1e9;
  const latency = recorder.percentilesUs();
  return {
    opCount: recorder.opCount,
    elapsedSeconds,
    iops: recorder.opCount / elapsedSeconds,
    bandwidthMiBps: (recorder.opCount * spec.blockSize) / MiB / elapsedSeconds,
    latencyUs: { p50: latency.p50, p99: latency.p99, mean: latency.mean },
    cpuPercent: ((cpu.user + cpu.system) / 1e6 / elapsedSeconds) * 100,
    actor: undefined,
    fio: undefined,
  };
}

/**
 * Runs queueDepth loops until `seconds` have passed; operations started
 * before the deadline finish and count. Returns the elapsed time until the
 * last of them finished, in nanoseconds.
 */
async function driveLoops(
  spec: WorkloadSpec,
  benchFile: BenchFile,
  seconds: number,
  issue: IssueOp,
  recorder: LatencyRecorder,
): Promise<number> {
  assert.ok(benchFile.sizeBytes % spec.blockSize === 0);
  const blockCount = benchFile.sizeBytes / spec.blockSize;
  const random = new RandomOffsets(SEED_BASE + ++runCount, benchFile.sizeBytes, spec.blockSize);
  let sequentialIndex = 0;
  const nextOffset =
    spec.pattern === 'random'
      ? () => random.next()
      : () => {
          const offset = (sequentialIndex % blockCount) * spec.blockSize;
          sequentialIndex++;
          return offset;
        };

  const startedNs = process.hrtime.bigint();
  const deadlineNs = startedNs + BigInt(Math.round(seconds * 1e9));
  const loop = async (loopIndex: number): Promise<void> => {
    for (;;) {
      const offset = nextOffset();
      const opStartedNs = process.hrtime.bigint();
      if (opStartedNs >= deadlineNs) return;
      await issue(loopIndex, offset);
      recorder.record(Number(process.hrtime.bigint() - opStartedNs));
    }
  };
  const loops: Promise<void>[] = [];
  for (let loopIndex = 0; loopIndex < spec.queueDepth; loopIndex++) loops.push(loop(loopIndex));
  await Promise.all(loops);
  return Number(process.hrtime.bigint() - startedNs);
}

/** One aligned buffer per loop; write workloads write random bytes. */
function loopBuffers(spec: WorkloadSpec): Buffer[] {
  const buffers: Buffer[] = [];
  for (let i = 0; i < spec.queueDepth; i++) {
    const buffer = allocAligned(spec.blockSize);
    if (spec.operation !== 'read') randomFillSync(buffer);
    buffers.push(buffer);
  }
  return buffers;
}
