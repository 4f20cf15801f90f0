// The contenders of the benchmark and the results table they fill: per
// workload, per contender, every repeat and their median.
import type { RingSpinOptions } from './io_workloads.js';
import type { Measurement } from './measurement.js';
import type { WorkloadSpec } from './workload_spec.js';

export type ContenderKind = 'fio' | 'ringstore' | 'fs.promises';

export interface Contender {
  /** Stable name in the JSON output: 'fio', 'ringstore', 'ringstore-spin0', 'ringstore-nospin', 'fs.promises'. */
  id: string;
  kind: ContenderKind;
  /** The row's label in the text output. */
  label: string;
  /** The busy-wait windows, for ringstore contenders. */
  spin: RingSpinOptions | undefined;
  /** What a latency of this contender measures. */
  latencyKind: string;
  /** The workloads it runs, by id; all when undefined. */
  workloadIds?: readonly string[];
}

export interface ContenderResult {
  contender: Contender;
  /** One per repeat, in run order. */
  runs: Measurement[];
  /** Field by field median of `runs`. */
  median: Measurement;
}

export interface WorkloadResult {
  workload: WorkloadSpec;
  results: ContenderResult[];
}

/** The result of contender `id` in `workload`, if it ran. */
export function resultOf(workloadResults: readonly WorkloadResult[], workloadId: string, contenderId: string): Measurement | undefined {
  return workloadResults
    .find((result) => result.workload.id === workloadId)
    ?.results.find((result) => result.contender.id === contenderId)?.median;
}

/** The workload's headline number: IOPS or MiB/s. */
export function headlineOf(workload: WorkloadSpec, measurement: Measurement): number {
  return workload.headline === 'iops' ? measurement.iops : measurement.bandwidthMiBps;
}
