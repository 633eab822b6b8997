import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ChartSize, renderCompareChart, renderParetoChart, renderProgressChart } from './chart.js';
import type { CompareInfo, ReportInfo } from './data.js';
import { renderCompareHtml, renderHtml } from './html.js';
import { renderCompareMarkdown, renderMarkdown } from './markdown.js';

export { type ChartSize, PALETTE, paretoDatasets, renderCompareChart, renderParetoChart, renderProgressChart } from './chart.js';
export * from './data.js';
export { escapeHtml, renderCompareHtml, renderHtml } from './html.js';
export { escapeMarkdownCell, renderCompareMarkdown, renderMarkdown } from './markdown.js';

export interface ReportPaths {
  readonly html: string;
  readonly markdown: string;
  readonly pareto: string;
  readonly progress: string;
}

/** Write index.html (self-contained), report.md, pareto.png and progress.png into `dir` (created if missing). */
export async function writeReport(info: ReportInfo, dir: string, size: ChartSize = {}): Promise<ReportPaths> {
  await mkdir(dir, { recursive: true });
  const images = { pareto: renderParetoChart(info, size), progress: renderProgressChart(info, size) };
  const paths: ReportPaths = {
    html: join(dir, 'index.html'),
    markdown: join(dir, 'report.md'),
    pareto: join(dir, 'pareto.png'),
    progress: join(dir, 'progress.png'),
  };
  await Promise.all([
    writeFile(paths.pareto, images.pareto),
    writeFile(paths.progress, images.progress),
    writeFile(paths.html, renderHtml(info, images), 'utf8'),
    writeFile(paths.markdown, renderMarkdown(info, { pareto: 'pareto.png', progress: 'progress.png' }), 'utf8'),
  ]);
  return paths;
}

export interface CompareReportPaths {
  readonly html: string;
  readonly markdown: string;
  readonly chart: string;
}

/** Write compare.html, compare.md and compare.png into `dir`. */
export async function writeCompareReport(info: CompareInfo, dir: string, size: ChartSize = {}): Promise<CompareReportPaths> {
  await mkdir(dir, { recursive: true });
  const png = renderCompareChart(info, size);
  const paths: CompareReportPaths = {
    html: join(dir, 'compare.html'),
    markdown: join(dir, 'compare.md'),
    chart: join(dir, 'compare.png'),
  };
  await Promise.all([
    writeFile(paths.chart, png),
    writeFile(paths.html, renderCompareHtml(info, png), 'utf8'),
    writeFile(paths.markdown, renderCompareMarkdown(info, 'compare.png'), 'utf8'),
  ]);
  return paths;
}
