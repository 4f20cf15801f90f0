// The performance targets of ringstore's IO layer, and whether a run met
// them. Each compares ringstore with its default options (the contender
// DEFAULT_CONTENDER_ID) with a reference measured in the same run (the
// machine is too noisy for absolute numbers), on medians: fio, fs.promises,
// or the best of the ringstore contenders with fixed busy-wait windows
// (whose best varies from host to host, which is why the default is 'auto').
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
/** Durable 1 MiB writes and 1 MiB reads keep up with fio: at least this fraction of its rate. */
export const LARGE_IO_VS_FIO_MIN = 0.9;
/** 'auto' busy-waiting comes this close to the best fixed setting: IOPS at least (1 − this) × best. */
export const AUTO_SPIN_IOPS_VS_BEST_FIXED_MIN = 0.95;
/** …and QD1 p50 at most (1 + this) × best. */
export const AUTO_SPIN_P50_VS_BEST_FIXED_MAX = 1.05;
/** The contender the targets judge: ringstore as shipped (every option default). */
export const DEFAULT_CONTENDER_ID = 'ringstore';
/** The reference made of every other ringstore contender: the best of them on the target's measure. */
const BEST_FIXED_SPIN = 'best fixed spin';

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
  referenceId: 'fio' | 'fs.promises' | typeof BEST_FIXED_SPIN;
  unit: TargetCheck['unit'];
  /** The bound derived from the reference's median. */
  bound(reference: Measurement): number;
  actual(ringstore: Measurement): number;
  isMet(actual: number, bound: number): boolean;
}

const atLeast = (actual: number, bound: number): boolean => actual >= bound;
const atMost = (actual: number, bound: number): boolean => actual <= bound;

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
  {
    target: `4 KiB durable write (O_DSYNC) QD1 IOPS ≥ ${WRITE_FDATASYNC_IOPS_VS_FIO_MIN} × fio`,
    workloadId: 'write-dsync-qd1',
    referenceId: 'fio',
    unit: 'IOPS',
    bound: (fio) => WRITE_FDATASYNC_IOPS_VS_FIO_MIN * fio.iops,
    actual: (ringstore) => ringstore.iops,
    isMet: atLeast,
  },
  {
    target: `1 MiB write + fdatasync QD1 IOPS ≥ ${LARGE_IO_VS_FIO_MIN} × fio`,
    workloadId: 'write-fdatasync-1m-qd1',
    referenceId: 'fio',
    unit: 'IOPS',
    bound: (fio) => LARGE_IO_VS_FIO_MIN * fio.iops,
    actual: (ringstore) => ringstore.iops,
    isMet: atLeast,
  },
  {
    target: `1 MiB direct read QD8 IOPS ≥ ${LARGE_IO_VS_FIO_MIN} × fio`,
    workloadId: 'seqread-1m-qd8',
    referenceId: 'fio',
    unit: 'IOPS',
    bound: (fio) => LARGE_IO_VS_FIO_MIN * fio.iops,
    actual: (ringstore) => ringstore.iops,
    isMet: atLeast,
  },
  {
    target: `QD1 4 KiB random read p50 ≤ ${AUTO_SPIN_P50_VS_BEST_FIXED_MAX} × best fixed spin`,
    workloadId: 'randread-qd1',
    referenceId: BEST_FIXED_SPIN,
    unit: 'µs',
    bound: (best) => AUTO_SPIN_P50_VS_BEST_FIXED_MAX * best.latencyUs.p50,
    actual: (ringstore) => ringstore.latencyUs.p50,
    isMet: atMost,
  },
  {
    target: `QD32 4 KiB random read IOPS ≥ ${AUTO_SPIN_IOPS_VS_BEST_FIXED_MIN} × best fixed spin`,
    workloadId: 'randread-qd32',
    referenceId: BEST_FIXED_SPIN,
    unit: 'IOPS',
    bound: (best) => AUTO_SPIN_IOPS_VS_BEST_FIXED_MIN * best.iops,
    actual: (ringstore) => ringstore.iops,
    isMet: atLeast,
  },
];

/**
 * Every target for the default ringstore contender, skipping those whose
 * workload or reference did not run (--workloads).
 */
export function checkTargets(workloadResults: readonly WorkloadResult[], contenders: readonly Contender[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const definition of TARGETS) {
    const ringstore = resultOf(workloadResults, definition.workloadId, DEFAULT_CONTENDER_ID);
    if (ringstore === undefined) continue;
    const reference = referenceOf(definition, workloadResults, contenders);
    if (reference === undefined) continue;
    const actual = definition.actual(ringstore);
    const bound = definition.bound(reference);
    checks.push({
      target: definition.target,
      contenderId: DEFAULT_CONTENDER_ID,
      actual,
      bound,
      unit: definition.unit,
      met: definition.isMet(actual, bound),
    });
  }
  return checks;
}

/** The reference's median; for BEST_FIXED_SPIN, the other ringstore contender that does best on the target's measure. */
function referenceOf(
  definition: TargetDefinition,
  workloadResults: readonly WorkloadResult[],
  contenders: readonly Contender[],
): Measurement | undefined {
  if (definition.referenceId !== BEST_FIXED_SPIN) return resultOf(workloadResults, definition.workloadId, definition.referenceId);
  let best: Measurement | undefined;
  for (const contender of contenders) {
    if (contender.kind !== 'ringstore' || contender.id === DEFAULT_CONTENDER_ID) continue;
    const measurement = resultOf(workloadResults, definition.workloadId, contender.id);
    if (measurement === undefined) continue;
    // The better of two is the one whose own value would meet a bound set by the other.
    if (best === undefined || definition.isMet(definition.actual(measurement), definition.actual(best))) best = measurement;
  }
  return best;
}
