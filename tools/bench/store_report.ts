// The human-readable report of bench:store: one table per phase, the
// stores' own counters under it, then the targets.
import type { ChartPanel } from './chart.js';
import { formatCount, formatTable } from './report.js';
import type { StoreTargetCheck } from './store_targets.js';
import type { PhaseSpec, StoreMeasurement } from './store_workloads.js';

export interface PhaseRow {
  contenderId: string;
  label: string;
  /** undefined when the store failed this phase; `error` says why. */
  measurement: StoreMeasurement | undefined;
  error: string | undefined;
}

const RINGSTORE_ID = 'ringstore';

function headlineOf(phase: PhaseSpec, measurement: StoreMeasurement): number {
  switch (phase.headline) {
    case 'rate':
      return measurement.opsPerSecond;
    case 'bandwidth':
      return measurement.bandwidthMiBps ?? Number.NaN;
    case 'duration':
      return measurement.elapsedSeconds * 1000;
  }
}

export function formatPhase(phase: PhaseSpec, rows: readonly PhaseRow[]): string {
  const ringstore = rows.find((row) => row.contenderId === RINGSTORE_ID)?.measurement;
  const ratio = (measurement: StoreMeasurement): string =>
    ringstore === undefined ? '' : (headlineOf(phase, ringstore) / headlineOf(phase, measurement)).toFixed(2);
  const lines = [`== ${phase.title} ==`];
  if (phase.headline === 'duration') {
    lines.push(
      formatTable(
        ['store', 'ms', 'ring ÷ store'],
        rows.map(({ label, measurement, error }) =>
          measurement === undefined ? [label, `FAILED: ${error}`, ''] : [label, (measurement.elapsedSeconds * 1000).toFixed(1), ratio(measurement)],
        ),
      ),
    );
    lines.push('ring ÷ store: ringstore\'s time over the store\'s (lower is better).');
  } else {
    const header = ['store', phase.rateUnit];
    if (phase.headline === 'bandwidth') header.push('MiB/s');
    header.push('p50 µs', 'p99 µs', 'max µs', 'CPU %', 'ring ÷ store');
    lines.push(
      formatTable(
        header,
        rows.map(({ label, measurement, error }) => {
          if (measurement === undefined) return [label, `FAILED: ${error}`, ...header.slice(2).map(() => '')];
          const cells = [label, formatCount(measurement.opsPerSecond)];
          if (phase.headline === 'bandwidth') cells.push((measurement.bandwidthMiBps ?? Number.NaN).toFixed(1));
          const latency = measurement.latencyUs;
          cells.push(
            latency === undefined ? '' : latency.p50.toFixed(1),
            latency === undefined ? '' : latency.p99.toFixed(1),
            latency === undefined ? '' : latency.max.toFixed(0),
            measurement.cpuPercent.toFixed(0),
            ratio(measurement),
          );
          return cells;
        }),
      ),
    );
    lines.push(`ring ÷ store: ringstore's ${phase.headline === 'bandwidth' ? 'MiB/s' : phase.rateUnit} over the store's.`);
  }
  for (const { label, measurement } of rows) {
    if (measurement?.note !== undefined) lines.push(`${label}: ${measurement.note}`);
  }
  return lines.join('\n');
}

/** One phase's table as a chart panel: the headline column, a bar per store (failed runs left out). */
export function phaseChart(phase: PhaseSpec, rows: readonly PhaseRow[]): ChartPanel {
  const unit = phase.headline === 'duration' ? 'ms' : phase.headline === 'bandwidth' ? 'MiB/s' : phase.rateUnit;
  return {
    title: phase.title,
    unit,
    lowerIsBetter: phase.headline === 'duration',
    bars: rows.map(({ contenderId, label, measurement }) => ({
      label,
      value: measurement === undefined ? Number.NaN : headlineOf(phase, measurement),
      isRingstore: contenderId.startsWith(RINGSTORE_ID),
    })),
  };
}

export function formatStoreTargets(checks: readonly StoreTargetCheck[], title = 'Targets'): string {
  const number = (value: number, unit: string): string => (unit === 'µs' || unit === 'ms' || unit === 'MiB/s' || unit === 'MiB' ? value.toFixed(1) : unit === '×' ? value.toFixed(2) : formatCount(value));
  const rows = checks.map((check) => [
    check.target,
    check.reference,
    `${number(check.actual, check.unit)} ${check.unit}`,
    `${check.kind === 'min' ? '≥' : check.strict === true ? '<' : '≤'} ${number(check.bound, check.unit)} ${check.unit}`,
    check.informational === true ? (check.met ? '(yes)' : '(no)') : check.met ? 'yes' : 'NO',
  ]);
  return [`== ${title} ==`, formatTable(['target', 'reference', 'ringstore', 'needed', 'met'], rows)].join('\n');
}
