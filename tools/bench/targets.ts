// The performance targets of ringstore's IO layer, and whether a run met
// them. Each compares a ringstore contender with a reference measured in the
// same run (the machine is too noisy for absolute numbers), on medians.
import type { Measurement } from './measurement.js';
import { resultOf, type Contender, type WorkloadResult } from './results.js';
import type { WorkloadId } from './workload_spec.js';

/** QD32 random reads keep up with fio: at least this fraction of its IOPS. */
export const QD32_READ_IOPS_VS_FIO_MIN = 0.9;
/** QD1 random reads add at most this much to fio's p50 total latency. */
export const QD1_READ_P50_OVER_FIO_US_MAX = 10;
/** QD32 random reads beat Node's own path by at least this factor. */
export const QD32_READ_IOPS_VS_FS_MIN = 3;
/** Durable 4 KiB writes keep up with fio: at least this fraction of its IOPS. */
export const WRITE_FDATASYNC_IOPS_VS_FIO_MIN = 0.9;

export interface TargetCheck {
  target: string;
  contenderId: string;
  /** What ringstore achieved, in `unit`. */
  actual: number;
  /** The bound it had to meet, in `unit`: a minimum, or for latency a maximum. */
  bound: number;
  unit: 'IOPS' | 'µs';
  met: boolean;
}

interface TargetDefinition {
  target: string;
  workloadId: WorkloadId;
  referenceId: 'fio' | 'fs.promises';
  unit: TargetCheck['unit'];
  /** The bound derived from the reference's median. */
  bound(reference: Measurement): number;
  actual(ringstore: Measurement): number;
  isMet(actual: number, bound: number): boolean;
}

const TARGETS: readonly TargetDefinition[] = [
  {
    target: `QD32 4 KiB random read IOPS ≥ ${QD32_READ_IOPS_VS_FIO_MIN} × fio`,
    workloadId: 'randread-qd32',
    referenceId: 'fio',
    unit: 'IOPS',
    bound: (fio) => QD32_READ_IOPS_VS_FIO_MIN * fio.iops,
    actual: (ringstore) => ringstore.iops,
    isMet: (actual, bound) => actual >= bound,
  },
  {
    target: `QD1 4 KiB random read p50 ≤ fio p50 (lat) + ${QD1_READ_P50_OVER_FIO_US_MAX} µs`,
    workloadId: 'randread-qd1',
    referenceId: 'fio',
    unit: 'µs',
    bound: (fio) => fio.latencyUs.p50 + QD1_READ_P50_OVER_FIO_US_MAX,
    actual: (ringstore) => ringstore.latencyUs.p50,
    isMet: (actual, bound) => actual <= bound,
  },
  {
    target: `QD32 4 KiB random read IOPS ≥ ${QD32_READ_IOPS_VS_FS_MIN} × fs.promises`,
    workloadId: 'randread-qd32',
    referenceId: 'fs.promises',
    unit: 'IOPS',
    bound: (fs) => QD32_READ_IOPS_VS_FS_MIN * fs.iops,
    actual: (ringstore) => ringstore.iops,
    isMet: (actual, bound) => actual >= bound,
  },
  {
    target: `4 KiB write + fdatasync QD1 IOPS ≥ ${WRITE_FDATASYNC_IOPS_VS_FIO_MIN} × fio`,
    workloadId: 'write-fdatasync-qd1',
    referenceId: 'fio',
    unit: 'IOPS',
    bound: (fio) => WRITE_FDATASYNC_IOPS_VS_FIO_MIN * fio.iops,
    actual: (ringstore) => ringstore.iops,
    isMet: (actual, bound) => actual >= bound,
  },
];

/**
 * Every target for every ringstore contender, skipping those whose workload
 * or reference did not run (--workloads).
 */
export function checkTargets(workloadResults: readonly WorkloadResult[], contenders: readonly Contender[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const definition of TARGETS) {
    const reference = resultOf(workloadResults, definition.workloadId, definition.referenceId);
    if (reference === undefined) continue;
    for (const contender of contenders) {
      if (contender.kind !== 'ringstore') continue;
      const ringstore = resultOf(workloadResults, definition.workloadId, contender.id);
      if (ringstore === undefined) continue;
      const actual = definition.actual(ringstore);
      const bound = definition.bound(reference);
      checks.push({
        target: definition.target,
        contenderId: contender.id,
        actual,
        bound,
        unit: definition.unit,
        met: definition.isMet(actual, bound),
      });
    }
  }
  return checks;
}
