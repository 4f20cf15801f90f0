// The human-readable report: one table per workload, then the targets.
import type { ChartPanel } from './chart.js';
import { headlineOf, type ContenderResult, type WorkloadResult } from './results.js';
import type { TargetCheck } from './targets.js';

/** Renders rows under a header; columns after the first are right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

export function formatWorkload(workloadResult: WorkloadResult, repeatCount: number): string {
  const { workload, results } = workloadResult;
  const fio = results.find((result) => result.contender.id === 'fio');
  const fs = results.find((result) => result.contender.id === 'fs.promises');
  const header = [
    'contender',
    'IOPS',
    'MiB/s',
    'p50 µs',
    'p99 µs',
    'mean µs',
    'CPU %',
    'ring/fio',
    'ring/fs',
    'queued p50 µs',
    'kernel p50 µs',
    'batch',
  ];
  const rows = results.map((result) => {
    const median = result.median;
    const isRingstore = result.contender.kind === 'ringstore';
    const ratio = (reference: ContenderResult | undefined): string =>
      isRingstore && reference !== undefined
        ? (headlineOf(workload, median) / headlineOf(workload, reference.median)).toFixed(2)
        : '';
    return [
      result.contender.label,
      formatCount(median.iops),
      median.bandwidthMiBps.toFixed(1),
      median.latencyUs.p50.toFixed(1),
      median.latencyUs.p99.toFixed(1),
      median.latencyUs.mean.toFixed(1),
      median.cpuPercent.toFixed(0),
      ratio(fio),
      ratio(fs),
      median.actor !== undefined ? median.actor.queuedUs.p50.toFixed(1) : '',
      median.actor !== undefined ? median.actor.kernelUs.p50.toFixed(1) : '',
      median.actor !== undefined ? median.actor.meanBatchSize.toFixed(1) : '',
    ];
  });
  const lines = [
    `== ${workload.title} (${repeatCount > 1 ? `median of ${repeatCount} runs` : '1 run'}) ==`,
    formatTable(header, rows),
  ];
  const ratioName = workload.headline === 'iops' ? 'IOPS' : 'MiB/s';
  lines.push(`ring/fio, ring/fs: ringstore's ${ratioName} over fio's and fs.promises'.`);
  if (fio?.median.fio !== undefined) {
    const { clatUs, syncLatencyUs } = fio.median.fio;
    let note = `fio latency is lat_ns (submit + completion); its clat_ns alone: p50 ${clatUs.p50.toFixed(1)}, p99 ${clatUs.p99.toFixed(1)} µs.`;
    if (workload.operation === 'writeAndSync') {
      note += ' fio times the write and its fdatasync separately: the row is the write alone;';
      note +=
        syncLatencyUs !== undefined
          ? ` sync (fdatasync) p50 ${syncLatencyUs.p50.toFixed(1)}, p99 ${syncLatencyUs.p99.toFixed(1)} µs;` +
            ` write p50 + sync p50 = ${(fio.median.latencyUs.p50 + syncLatencyUs.p50).toFixed(1)} µs.`
          : ' fio reported no sync section.';
    }
    lines.push(note);
  }
  return lines.join('\n');
}

/**
 * One workload as chart panels: the headline (IOPS or MiB/s) per contender,
 * and at queue depth 1, where latency is the point, p50 latency too.
 */
export function workloadCharts({ workload, results }: WorkloadResult): ChartPanel[] {
  const bars = (value: (result: ContenderResult) => number): ChartPanel['bars'] =>
    results.map((result) => ({ label: result.contender.label, value: value(result), isRingstore: result.contender.kind === 'ringstore' }));
  const panels: ChartPanel[] = [
    { title: workload.title, unit: workload.headline === 'iops' ? 'IOPS' : 'MiB/s', lowerIsBetter: false, bars: bars((result) => headlineOf(workload, result.median)) },
  ];
  if (workload.queueDepth === 1) {
    // fio times a write and its fdatasync apart: its bar is their sum, as
    // ringstore's is one linked write + fdatasync.
    const p50Us = (result: ContenderResult): number => result.median.latencyUs.p50 + (result.median.fio?.syncLatencyUs?.p50 ?? 0);
    panels.push({ title: `${workload.title}: p50 latency`, unit: 'µs', lowerIsBetter: true, bars: bars(p50Us) });
  }
  return panels;
}

export function formatTargets(checks: readonly TargetCheck[], labelOf: (contenderId: string) => string): string {
  const rows = checks.map((check) => [
    check.target,
    labelOf(check.contenderId),
    check.unit === 'IOPS' ? formatCount(check.actual) : `${check.actual.toFixed(1)} µs`,
    check.unit === 'IOPS' ? `≥ ${formatCount(check.bound)}` : `≤ ${check.bound.toFixed(1)} µs`,
    check.met ? 'yes' : 'NO',
  ]);
  return ['== Targets (medians) ==', formatTable(['target', 'contender', 'actual', 'needed', 'met'], rows)].join('\n');
}

export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
