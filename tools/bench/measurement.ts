// What one timed run of one workload by one contender produced, and the
// median of several such runs.
import assert from 'node:assert/strict';

import { median } from './latency_recorder.js';

export interface PercentilesUs {
  p50: number;
  p99: number;
}

export interface LatencyUs extends PercentilesUs {
  /** With one operation in flight, 1e6 / mean is the rate: a p50 far below the mean means a slow minority. */
  mean: number;
}

/** Where the actor's time went, from ring.stats() (counted from the actor's start, warm-up included). */
export interface ActorBreakdown {
  /** Time a command waited between the JS submit and the actor's io_uring_enter. */
  queuedUs: PercentilesUs;
  /** Time from io_uring_enter to the CQE (the kernel and the device). */
  kernelUs: PercentilesUs;
  meanBatchSize: number;
  /** Times the actor thread went to sleep. */
  waitCount: number;
}

/** fio's own latency sections, beside the total latency it reports in `latencyUs`. */
export interface FioBreakdown {
  /** Completion latency: from submission to completion, without fio's submit path. */
  clatUs: PercentilesUs;
  /** The fdatasync issued after each write (fio --fdatasync=1), when fio reports it. */
  syncLatencyUs: PercentilesUs | undefined;
}

export interface Measurement {
  /** Operations counted (for write + fdatasync: pairs). */
  opCount: number;
  elapsedSeconds: number;
  iops: number;
  bandwidthMiBps: number;
  /** Per operation; what exactly is timed is said by the contender's latencyKind. */
  latencyUs: LatencyUs;
  /** Process CPU (all threads) over the run; 100 is one core. */
  cpuPercent: number;
  actor: ActorBreakdown | undefined;
  fio: FioBreakdown | undefined;
}

/** Every numeric field is the median of that field over the runs, taken independently. */
export function medianMeasurement(runs: readonly Measurement[]): Measurement {
  assert.ok(runs.length > 0);
  const of = (pick: (run: Measurement) => number): number => median(runs.map(pick));
  const ofPercentiles = (pick: (run: Measurement) => PercentilesUs | undefined): PercentilesUs | undefined =>
    runs.every((run) => pick(run) !== undefined)
      ? { p50: of((run) => pick(run)!.p50), p99: of((run) => pick(run)!.p99) }
      : undefined;
  return {
    opCount: of((run) => run.opCount),
    elapsedSeconds: of((run) => run.elapsedSeconds),
    iops: of((run) => run.iops),
    bandwidthMiBps: of((run) => run.bandwidthMiBps),
    latencyUs: { ...ofPercentiles((run) => run.latencyUs)!, mean: of((run) => run.latencyUs.mean) },
    cpuPercent: of((run) => run.cpuPercent),
    actor: runs.every((run) => run.actor !== undefined)
      ? {
          queuedUs: ofPercentiles((run) => run.actor!.queuedUs)!,
          kernelUs: ofPercentiles((run) => run.actor!.kernelUs)!,
          meanBatchSize: of((run) => run.actor!.meanBatchSize),
          waitCount: of((run) => run.actor!.waitCount),
        }
      : undefined,
    fio: runs.every((run) => run.fio !== undefined)
      ? {
          clatUs: ofPercentiles((run) => run.fio!.clatUs)!,
          syncLatencyUs: ofPercentiles((run) => run.fio!.syncLatencyUs),
        }
      : undefined,
  };
}
