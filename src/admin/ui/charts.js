/**
 * Charts of an app's live figures (uPlot, served from /_supervisor/vendor/): the detail view's
 * five charts over the last hour with a text summary of the latest values beside them, and
 * `sparkline` for a list's small charts.
 */

import { h, replace } from './dom.js';
import uPlot from './vendor/uplot/uPlot.esm.js';

/**
 * @typedef {{
 *   at: string, rps: number, p50Ms: number | null, p95Ms: number | null, errorRate: number,
 *   openConnections: number, memoryMb?: number | null,
 * }} FigurePoint
 * @typedef {{
 *   app: string, stepSeconds: number, points: FigurePoint[], replicas?: string[], unreachable?: string[],
 * }} FigureSeries
 */

// Light-theme colours with at least 4.5:1 contrast on white (the lines are the data).
const BLUE = '#1d4ed8';
const ORANGE = '#b45309';
const RED = '#b91c1c';
const GREEN = '#15803d';
const PURPLE = '#6d28d9';
const AXIS = '#57606a';
const GRID = '#eaedf0';

/**
 * The figures add up every live replica's; a line naming those that did not answer (their
 * requests are not counted), or '' when every replica answered.
 *
 * @param {FigureSeries} series
 */
export function missingReplicas(series) {
  const missing = series.unreachable ?? [];
  if (missing.length === 0) return '';
  const counted = series.replicas?.length ?? 1;
  const of = `${counted} of ${counted + missing.length} replicas`;
  const them =
    missing.length === 1
      ? `replica ${missing[0]} did not answer; its`
      : `replicas ${missing.join(', ')} did not answer; their`;
  return `Figures of ${of} only: ${them} requests are not counted.`;
}

/** Times on the x axis: hours and minutes (the chart spans an hour). */
const clockTimes = (/** @type {unknown} */ _u, /** @type {number[]} */ splits) =>
  splits.map((s) => new Date(s * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));

/**
 * The charts: one per figure; latency has p50 and p95 on one chart. `value` is what the summary
 * says of the latest point; `memory` only shows for an app that reports memory (isolated).
 *
 * @type {{
 *   key: string, title: string, unit: string,
 *   series: {key: keyof FigurePoint, label: string, stroke: string, scale?: number}[],
 *   memory?: true, gaps?: true,
 * }[]}
 */
const CHARTS = [
  { key: 'rps', title: 'Requests', unit: 'req/s', series: [{ key: 'rps', label: 'req/s', stroke: BLUE }] },
  {
    key: 'latency',
    title: 'Latency',
    unit: 'ms',
    gaps: true,
    series: [
      { key: 'p50Ms', label: 'p50 ms', stroke: BLUE },
      { key: 'p95Ms', label: 'p95 ms', stroke: ORANGE },
    ],
  },
  {
    key: 'errors',
    title: '5xx answers',
    unit: '%',
    series: [{ key: 'errorRate', label: '% 5xx', stroke: RED, scale: 100 }],
  },
  {
    key: 'open',
    title: 'Open connections',
    unit: '',
    series: [{ key: 'openConnections', label: 'open', stroke: GREEN }],
  },
  {
    key: 'memory',
    title: 'Memory',
    unit: 'MiB',
    series: [{ key: 'memoryMb', label: 'MiB', stroke: PURPLE }],
    memory: true,
    gaps: true,
  },
];

const CHART_WIDTH = 300;
const CHART_HEIGHT = 140;

/**
 * A number for people: up to 3 significant decimals, no trailing zeros.
 *
 * @param {number | null | undefined} value
 */
export function formatFigure(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return String(Number(value.toFixed(digits)));
}

/**
 * The detail view's charts of one app over the last hour: five small uPlot charts and, next to
 * them, the latest values as text (for screen readers and a quick look). Each chart's box
 * carries `data-latest` and `data-max` (the hour's highest), for tests and tools.
 */
export class FigureCharts {
  #root;
  #summary;
  #note;
  /** Says whose figures are missing (replicas that did not answer); empty when none are. */
  #replicas;
  #grid;
  /** @type {Map<string, {plot: uPlot, box: HTMLElement}>} */
  #plots = new Map();

  /** @param {HTMLElement} root where the charts go (emptied) */
  constructor(root) {
    this.#root = root;
    this.#summary = h('dl', { class: 'figure-summary', 'aria-label': 'Latest figures' });
    this.#note = h('p', { class: 'muted figure-note' });
    this.#replicas = h('p', { class: 'figure-note figure-replicas', role: 'status' });
    this.#grid = h('div', { class: 'figure-charts' });
    replace(root, this.#summary, this.#note, this.#replicas, this.#grid);
  }

  /**
   * Draws `series` (the figures route's answer), making the charts on the first call.
   *
   * @param {FigureSeries} series
   */
  render(series) {
    const points = series.points;
    const times = points.map((p) => Date.parse(p.at) / 1000);
    const hasMemory = points.some((p) => p.memoryMb !== undefined);
    /** @type {HTMLElement[]} */
    const summary = [];
    for (const chart of CHARTS) {
      if (chart.memory && !hasMemory) continue;
      const columns = chart.series.map((s) =>
        points.map((p) => {
          const v = /** @type {number | null | undefined} */ (p[s.key]);
          return v === null || v === undefined ? null : v * (s.scale ?? 1);
        }),
      );
      const { box } = this.#plot(chart, [times, ...columns]);
      const latest = columns.map((c) => c[c.length - 1] ?? null);
      box.dataset.latest = latest.map((v) => (v === null ? '' : String(v))).join(',');
      box.dataset.max = String(Math.max(0, ...columns.flat().map((v) => v ?? 0)));
      const text = latest.map(formatFigure).join(' / ');
      const unit = chart.unit && latest.some((v) => v !== null) ? ` ${chart.unit}` : '';
      const which =
        chart.series.length > 1 ? ` (${chart.series.map((s) => s.key.replace(/Ms$/, '')).join(' / ')})` : '';
      summary.push(
        h(
          'div',
          { class: 'figure', dataset: { figure: chart.key } },
          h('dt', {}, chart.title, which),
          h('dd', {}, text + unit),
        ),
      );
    }
    replace(this.#summary, summary);
    const latest = points[points.length - 1];
    const step =
      series.stepSeconds >= 60 ? `${series.stepSeconds / 60}-minute` : `${series.stepSeconds}-second`;
    this.#note.textContent = latest
      ? `Latest: the ${step} slot under way since ${new Date(latest.at).toLocaleTimeString()}.`
      : '';
    this.#replicas.textContent = missingReplicas(series);
    this.#replicas.hidden = this.#replicas.textContent === '';
  }

  /** Frees the charts. */
  destroy() {
    for (const { plot } of this.#plots.values()) plot.destroy();
    this.#plots.clear();
    replace(this.#root);
  }

  /**
   * The chart for `chart`, made once, then given new data.
   *
   * @param {(typeof CHARTS)[number]} chart
   * @param {(number | null)[][]} data
   */
  #plot(chart, data) {
    const made = this.#plots.get(chart.key);
    if (made !== undefined) {
      made.plot.setData(/** @type {uPlot.AlignedData} */ (data));
      return made;
    }
    // Two lines on one chart: the caption says which colour is which (class names, no inline styles).
    const key =
      chart.series.length > 1
        ? chart.series.flatMap((s) => [' ', h('span', { class: `chart-key chart-key-${s.key}` }, s.label)])
        : null;
    const box = h(
      'figure',
      { class: 'figure-chart', dataset: { chart: chart.key } },
      h('figcaption', {}, chart.title, chart.unit ? ` (${chart.unit})` : '', key),
    );
    this.#grid.append(box);
    const plot = new uPlot(
      {
        width: CHART_WIDTH,
        height: CHART_HEIGHT,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, 1) * 1.1] } },
        axes: [
          { stroke: AXIS, grid: { stroke: GRID }, ticks: { stroke: GRID }, values: clockTimes },
          { stroke: AXIS, grid: { stroke: GRID }, ticks: { stroke: GRID }, size: 44 },
        ],
        series: [
          {},
          // Latency and memory have gaps (slots without requests or reports): points show a
          // value between two gaps, which has no line to draw.
          ...chart.series.map((s) => ({
            label: s.label,
            stroke: s.stroke,
            width: 2,
            spanGaps: false,
            points: chart.gaps ? { show: true, size: 5, fill: s.stroke } : { show: false },
          })),
        ],
      },
      /** @type {uPlot.AlignedData} */ (data),
      box,
    );
    const entry = { plot, box };
    this.#plots.set(chart.key, entry);
    return entry;
  }
}

/**
 * A small chart of `values` (oldest first; null for a gap) in `container`, for a list row: no
 * axes, no legend, named for assistive technology by `label` and its latest value. Call
 * `update` with new values, `destroy` when the row goes.
 *
 * @param {HTMLElement} container
 * @param {(number | null)[]} values
 * @param {{label: string, width?: number, height?: number, stroke?: string}} options
 * @returns {{update(values: (number | null)[]): void, destroy(): void}}
 */
export function sparkline(container, values, { label, width = 96, height = 24, stroke = BLUE }) {
  const box = h('span', { class: 'sparkline', role: 'img' });
  container.append(box);
  const xs = (/** @type {(number | null)[]} */ v) => v.map((_, i) => i);
  const name = (/** @type {(number | null)[]} */ v) => {
    box.setAttribute('aria-label', `${label}: latest ${formatFigure(v[v.length - 1])}`);
    box.dataset.latest = String(v[v.length - 1] ?? '');
  };
  name(values);
  const plot = new uPlot(
    {
      width,
      height,
      pxAlign: false,
      legend: { show: false },
      cursor: { show: false },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, 1e-9) * 1.1] } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke, width: 1.5, points: { show: false } }],
    },
    /** @type {uPlot.AlignedData} */ ([xs(values), values]),
    box,
  );
  return {
    update(next) {
      name(next);
      plot.setData(/** @type {uPlot.AlignedData} */ ([xs(next), next]));
    },
    destroy() {
      plot.destroy();
      box.remove();
    },
  };
}
