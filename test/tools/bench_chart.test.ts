// Benchmark charts (tools/bench/chart.ts): result tables drawn as an SVG,
// a bar per contender, failed runs left out rather than drawn as zero.
import assert from 'node:assert/strict';

import { chartSpec, renderChartSvg, type ChartPanel } from '../../tools/bench/chart.js';

const PANELS: ChartPanel[] = [
  {
    title: '1 durable writer, 100 B puts',
    unit: 'puts/s',
    lowerIsBetter: false,
    bars: [
      { label: 'ringstore', value: 5321, isRingstore: true },
      { label: 'lmdb-js', value: 2150, isRingstore: false },
      { label: 'classic-level', value: Number.NaN, isRingstore: false },
    ],
  },
  {
    title: 'open of 1 M keys',
    unit: 'ms',
    lowerIsBetter: true,
    bars: [{ label: 'ringstore', value: 4.5, isRingstore: true }],
  },
];

describe('benchmark charts', function () {
  this.timeout(30_000);

  it('draws every panel and bar as an SVG with the heading, titles, labels and values', async () => {
    const svg = await renderChartSvg(['ringstore bench:store, test', 'node v20, 2 × test CPU'], PANELS);
    assert.match(svg, /^<svg/);
    for (const text of ['ringstore bench:store, test', 'node v20, 2 × test CPU', '1 durable writer, 100 B puts', 'open of 1 M keys', 'lmdb-js', '5,321', '2,150', 'ms (lower is better)']) {
      assert.ok(svg.includes(text), `the chart shows ${text}`);
    }
  });

  it('leaves a failed run (NaN) out instead of drawing it as zero', () => {
    const spec = chartSpec(['heading'], PANELS) as { vconcat: { data: { values: { label: string }[] } }[] };
    assert.deepEqual(
      spec.vconcat[0].data.values.map((bar) => bar.label),
      ['ringstore', 'lmdb-js'],
    );
  });
});
