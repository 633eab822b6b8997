/**
 * PNG charts: chart.js drawing on an @napi-rs/canvas 2D context in Node (prebuilt, unlike `canvas`
 * under chartjs-node-canvas, which needs Cairo dev packages). Renderers read only report info
 * (src/report/data.ts); tests check that info, and only the PNG header here (never pixels).
 * The Pareto chart's layout follows Optuna's plot_pareto_front: all trials faded, the front drawn
 * over them.
 */
import { createCanvas } from '@napi-rs/canvas';
import {
  Chart,
  type ChartConfiguration,
  type ChartDataset,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  type Plugin,
  PointElement,
  ScatterController,
  Title,
} from 'chart.js';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { type CompareInfo, type ReportInfo, type ReportPoint, type RungPoint, rungLabel, targetLabel } from './data.js';

Chart.register(ScatterController, LineController, LineElement, PointElement, LinearScale, Legend, Title);

export interface ChartSize {
  /** Pixels; default 1000. */
  readonly width?: number;
  /** Pixels; default 600. */
  readonly height?: number;
}

const DEFAULT_WIDTH = 1000;
const DEFAULT_HEIGHT = 600;
const FONT = { family: 'DejaVu Sans, sans-serif', size: 14 } as const;
const TITLE_FONT = { ...FONT, size: 18, weight: 'bold' } as const;
/** Distinct, colour-blind-friendly (Okabe-Ito) colours for series and studies. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];

/** Rung k >= 1 uses RUNG_COLORS[k - 1]: apart from the proxy front's and the baselines' colours. */
const RUNG_COLORS = [PALETTE[1], PALETTE[4], PALETTE[5], PALETTE[7], PALETTE[6]];

const whiteBackground: Plugin = {
  id: 'autopruneWhiteBackground',
  beforeDraw(chart) {
    const { ctx } = chart;
    ctx.save();
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, chart.width, chart.height);
    ctx.restore();
  },
};

type XY = { x: number; y: number };
type Config = ChartConfiguration<'scatter' | 'line', XY[]>;

function render(config: Config, size: ChartSize): Buffer {
  const width = size.width ?? DEFAULT_WIDTH;
  const height = size.height ?? DEFAULT_HEIGHT;
  for (const [name, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(v) || v < 100 || v > 8000) {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected chart ${name} to be an integer in [100, 8000], got ${quote(v)}`);
    }
  }
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  const chart = new Chart(
    ctx as unknown as CanvasRenderingContext2D,
    {
      ...config,
      options: { ...config.options, responsive: false, animation: false, devicePixelRatio: 1 },
      plugins: [whiteBackground, ...(config.plugins ?? [])],
    } as ChartConfiguration,
  );
  try {
    return canvas.toBuffer('image/png');
  } finally {
    chart.destroy();
  }
}

const pct = (f: number): number => f * 100;
const xy = (p: ReportPoint, acc: number): XY => ({ x: pct(p.flopsFraction), y: pct(acc) });

function legendAndTitle(text: string) {
  return {
    legend: { position: 'bottom' as const, labels: { font: FONT, usePointStyle: true } },
    title: { display: true, text, font: TITLE_FONT },
  };
}

function axisTitle(text: string) {
  return { display: true, text, font: FONT };
}

/** Range of the accuracy axis (%), padded, from every plotted accuracy. */
function accuracyRange(values: number[]): { min: number; max: number } {
  if (values.length === 0) return { min: 0, max: 100 };
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const pad = Math.max(0.5, (hi - lo) * 0.08);
  return { min: Math.max(0, Math.floor(lo - pad)), max: Math.min(100, Math.ceil(hi + pad)) };
}

/**
 * Accuracy vs FLOPs: complete trials (dominated ones faded), the proxy (rung 0) front as a line, the
 * front of each fine-tune rung on test accuracy, the uniform and global baselines dashed, the base model. Bottom axis:
 * FLOPs as % of the base; top axis: the same positions in MMACs.
 */
export function renderParetoChart(info: ReportInfo, size: ChartSize = {}): Buffer {
  const datasets = paretoDatasets(info);
  const xs = datasets.flatMap((d) => d.data.map((q) => q.x));
  const xMax = Math.max(100, ...xs) * 1.03;
  const y = accuracyRange(datasets.flatMap((d) => d.data.map((q) => q.y)));
  const baseMacs = info.base.macs;
  return render(
    {
      type: 'scatter',
      data: { datasets },
      options: {
        plugins: legendAndTitle(`${info.study.name}: accuracy vs FLOPs`),
        scales: {
          x: {
            type: 'linear',
            min: 0,
            max: xMax,
            title: axisTitle(`FLOPs (% of base = ${(baseMacs / 1e6).toFixed(2)} MMACs)`),
            ticks: { font: FONT, includeBounds: false, callback: (v) => `${Number(v).toFixed(0)}%` },
          },
          mmacs: {
            type: 'linear',
            position: 'top',
            min: 0,
            max: xMax,
            grid: { display: false },
            title: axisTitle('MMACs'),
            ticks: { font: FONT, includeBounds: false, callback: (v) => ((Number(v) / 100) * (baseMacs / 1e6)).toFixed(baseMacs >= 1e8 ? 0 : 1) },
          },
          y: { type: 'linear', ...y, title: axisTitle('accuracy (%)'), ticks: { font: FONT, includeBounds: false } },
        },
      },
    },
    size,
  );
}

/** Hypervolume (left axis) and best proxy accuracy at each FLOPs target (right axis) vs trial number. */
export function renderProgressChart(info: ReportInfo, size: ChartSize = {}): Buffer {
  const steps = info.progress.byNumber;
  const datasets: ChartDataset<'line', XY[]>[] = [
    {
      type: 'line',
      label: 'hypervolume (proxy front)',
      data: steps.map((s) => ({ x: s.trial, y: s.hypervolume })),
      yAxisID: 'hv',
      borderColor: '#000000',
      backgroundColor: '#000000',
      borderWidth: 2.5,
      pointRadius: 0,
      stepped: 'before',
    },
    ...info.targets.map(
      (t, k): ChartDataset<'line', XY[]> => ({
        type: 'line',
        label: `best accuracy, ${targetLabel(t, info.window)}`,
        // Before any trial fits under the target there is no value: omit those steps (a best only
        // ever appears and then rises, so omitting is the same line as a gap).
        data: steps.flatMap((s) => {
          const v = s.bestAtTarget[k];
          return v === null ? [] : [{ x: s.trial, y: pct(v) }];
        }),
        yAxisID: 'acc',
        borderColor: PALETTE[(k + 1) % PALETTE.length],
        backgroundColor: PALETTE[(k + 1) % PALETTE.length],
        borderWidth: 2,
        pointRadius: 0,
        stepped: 'before',
      }),
    ),
  ];
  const accValues = steps.flatMap((s) => s.bestAtTarget.filter((v): v is number => v !== null).map(pct));
  const hvMax = Math.max(0, ...steps.map((s) => s.hypervolume));
  const lastTrial = steps.length > 0 ? steps[steps.length - 1].trial : 1;
  return render(
    {
      type: 'line',
      data: { datasets },
      options: {
        plugins: legendAndTitle(`${info.study.name}: search progress`),
        scales: {
          x: {
            type: 'linear',
            min: 0,
            max: Math.max(1, lastTrial),
            title: axisTitle('trial number'),
            ticks: { font: FONT, precision: 0 },
          },
          hv: {
            type: 'linear',
            position: 'left',
            min: 0,
            max: hvMax > 0 ? hvMax * 1.05 : 1,
            title: axisTitle('hypervolume (FLOPs fraction x accuracy, ref = base, 0)'),
            ticks: { font: FONT, includeBounds: false },
          },
          acc: {
            type: 'linear',
            position: 'right',
            ...accuracyRange(accValues),
            grid: { display: false },
            title: axisTitle('best proxy accuracy (%)'),
            ticks: { font: FONT, includeBounds: false },
          },
        },
      },
    },
    size,
  );
}

/** Proxy fronts of several studies on one axis (FLOPs % of each study's base), one colour each. */
export function renderCompareChart(info: CompareInfo, size: ChartSize = {}): Buffer {
  const datasets: ChartDataset<'line', XY[]>[] = info.studies.map((s, k) => ({
    type: 'line',
    label: `${s.name} (HV ${s.hypervolume.toFixed(4)})`,
    data: s.front.map((p) => ({ x: pct(p.flopsFraction), y: pct(p.accuracy) })),
    borderColor: PALETTE[k % PALETTE.length],
    backgroundColor: PALETTE[k % PALETTE.length],
    borderWidth: 2.5,
    pointRadius: 4,
    tension: 0,
  }));
  const xs = datasets.flatMap((d) => d.data.map((q) => q.x));
  return render(
    {
      type: 'line',
      data: { datasets },
      options: {
        plugins: legendAndTitle('Pareto fronts, rung 0 (proxy accuracy)'),
        scales: {
          x: {
            type: 'linear',
            min: 0,
            max: Math.max(100, ...xs) * 1.03,
            title: axisTitle(info.sameBase ? 'FLOPs (% of base)' : "FLOPs (% of each study's base)"),
            ticks: { font: FONT, includeBounds: false, callback: (v) => `${Number(v).toFixed(0)}%` },
          },
          y: {
            type: 'linear',
            ...accuracyRange(datasets.flatMap((d) => d.data.map((q) => q.y))),
            title: axisTitle('accuracy (%)'),
            ticks: { font: FONT, includeBounds: false },
          },
        },
      },
    },
    size,
  );
}

/** The Pareto chart's series (exported for tests: compute, then render). */
/** A baseline's points as a dashed line (uniform and global are read against the search's front). */
function baselineSeries(label: string, points: readonly ReportPoint[], color: string, dash: number[]): ChartDataset<'line', XY[]> {
  return {
    type: 'line',
    label,
    data: points.map((p) => xy(p, p.proxyAccuracy as number)),
    borderColor: color,
    backgroundColor: color,
    borderDash: dash,
    borderWidth: 2,
    pointRadius: 3,
    tension: 0,
  };
}

export function paretoDatasets(info: ReportInfo): ChartDataset<'scatter' | 'line', XY[]>[] {
  const dominated = info.rows.filter((p) => !p.onProxyFront);
  const datasets: ChartDataset<'scatter' | 'line', XY[]>[] = [
    {
      type: 'scatter',
      label: `trials, ${rungLabel(info, 0)}: validation accuracy`,
      data: dominated.map((p) => xy(p, p.proxyAccuracy as number)),
      backgroundColor: 'rgba(120,120,120,0.35)',
      borderColor: 'rgba(120,120,120,0.5)',
      pointRadius: 4,
    },
    {
      type: 'line',
      label: `Pareto front, ${rungLabel(info, 0)}`,
      data: info.proxyFront.map((p) => xy(p, p.proxyAccuracy as number)),
      borderColor: PALETTE[0],
      backgroundColor: PALETTE[0],
      borderWidth: 2.5,
      pointRadius: 5,
      tension: 0,
    },
    baselineSeries('uniform baseline', info.baseline, PALETTE[2], [8, 5]),
    baselineSeries('global threshold baseline', info.globalBaseline, PALETTE[3], [3, 4]),
    // One front per fine-tune rung, on test accuracy, with that rung's other candidates as points.
    ...info.rungs.slice(1).flatMap((r): ChartDataset<'scatter' | 'line', XY[]>[] => {
      const color = RUNG_COLORS[(r.rung - 1) % RUNG_COLORS.length];
      const onFront = new Set(r.front.map((p) => p.trial));
      const at = (p: RungPoint): XY => ({ x: pct(p.flopsFraction), y: pct(p.accuracy) });
      return [
        {
          type: 'line',
          label: `Pareto front, ${rungLabel(info, r.rung)}: test accuracy`,
          data: r.front.map(at),
          borderColor: color,
          backgroundColor: color,
          borderWidth: 2,
          pointStyle: 'triangle',
          pointRadius: 8,
          tension: 0,
        },
        {
          type: 'scatter',
          label: `other candidates, rung ${r.rung}`,
          data: r.points.filter((p) => !onFront.has(p.trial)).map(at),
          borderColor: color,
          backgroundColor: 'rgba(255,255,255,0)',
          pointStyle: 'triangle',
          pointRadius: 6,
        },
      ];
    }),
  ];
  const basePoints: XY[] = [];
  if (info.base.proxyAccuracy !== null) basePoints.push({ x: 100, y: pct(info.base.proxyAccuracy) });
  if (info.base.testAccuracy !== null) basePoints.push({ x: 100, y: pct(info.base.testAccuracy) });
  if (basePoints.length > 0) {
    datasets.push({
      type: 'scatter',
      label: 'base model',
      data: basePoints,
      borderColor: '#000000',
      backgroundColor: '#000000',
      pointStyle: 'star',
      pointRadius: 10,
      borderWidth: 2,
    });
  }
  return datasets;
}
