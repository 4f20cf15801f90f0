// Benchmark results drawn as an SVG: one bar chart per workload, a bar per
// contender, ringstore's bars set apart. Rendered with vega-lite and vega
// (development dependencies, loaded only when a chart is asked for), whose
// SVG renderer needs no browser or canvas.
import { writeFileSync } from 'node:fs';

export interface ChartBar {
  label: string;
  value: number;
  /** ringstore's own bars, drawn in the accent colour. */
  isRingstore: boolean;
}

export interface ChartPanel {
  title: string;
  /** The axis title: what a bar's length measures, with its unit. */
  unit: string;
  /** Durations: shorter bars are better, which the axis title says. */
  lowerIsBetter: boolean;
  bars: ChartBar[];
}

/** Width of one panel's plot area in pixels; the labels take room of their own. */
const PANEL_WIDTH_PX = 420;
/** Room for the contenders' labels, the same in every panel so that the plots line up. */
const LABEL_WIDTH_PX = 300;
/** Height of one bar's band in pixels. */
const BAR_BAND_PX = 18;
const RINGSTORE_COLOUR = '#d9480f';
const PEER_COLOUR = '#868e96';

/** The vega-lite specification of `panels`, stacked under `heading` (exported for tests). */
export function chartSpec(heading: string[], panels: readonly ChartPanel[]): Record<string, unknown> {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: heading[0], subtitle: heading.slice(1), anchor: 'start' },
    config: { view: { stroke: null }, font: 'sans-serif' },
    vconcat: panels.map((panel) => ({
      title: { text: panel.title, anchor: 'start', fontSize: 12 },
      width: PANEL_WIDTH_PX,
      height: { step: BAR_BAND_PX },
      // Failed runs (NaN) are left out rather than drawn as zero.
      data: { values: panel.bars.filter((bar) => Number.isFinite(bar.value)) },
      layer: [
        {
          mark: 'bar',
          encoding: {
            y: { field: 'label', type: 'nominal', sort: null, title: null, axis: { labelLimit: LABEL_WIDTH_PX, minExtent: LABEL_WIDTH_PX } },
            x: { field: 'value', type: 'quantitative', title: `${panel.unit}${panel.lowerIsBetter ? ' (lower is better)' : ''}` },
            color: {
              field: 'isRingstore',
              type: 'nominal',
              legend: null,
              scale: { domain: [true, false], range: [RINGSTORE_COLOUR, PEER_COLOUR] },
            },
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 3, fontSize: 10 },
          encoding: {
            y: { field: 'label', type: 'nominal', sort: null },
            x: { field: 'value', type: 'quantitative' },
            text: { field: 'value', type: 'quantitative', format: ',.4~r' },
          },
        },
      ],
    })),
  };
}

/** Renders `panels` as an SVG document. */
export async function renderChartSvg(heading: string[], panels: readonly ChartPanel[]): Promise<string> {
  let vega: typeof import('vega');
  let vegaLite: typeof import('vega-lite');
  try {
    [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  } catch (error) {
    throw new Error('--chart needs the development dependencies vega and vega-lite (npm install in the repository)', { cause: error });
  }
  const compiled = vegaLite.compile(chartSpec(heading, panels) as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function writeChartSvg(path: string, heading: string[], panels: readonly ChartPanel[]): Promise<void> {
  writeFileSync(path, await renderChartSvg(heading, panels));
}
