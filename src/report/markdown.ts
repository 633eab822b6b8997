/**
 * Markdown report (GitHub-flavoured tables). Cells escape `|` (it would end the cell), backslashes,
 * and `<`/`>`/`&` (many renderers pass raw HTML through); newlines become spaces.
 */

import { dataNotesLine } from '../study/data-notes.js';
import { latencyCheckLine } from '../study/latency-check.js';
import {
  baselinesAt,
  type CompareInfo,
  compareTable,
  failedTable,
  fidelityLine,
  finetunedOn,
  formatCount,
  formatMacs,
  formatSeconds,
  formatTau,
  infeasibleTable,
  keepRatioTable,
  type ReportInfo,
  rungAgreementLine,
  rungAgreementTable,
  rungTable,
  type TextTable,
  targetLabel,
  trialTable,
} from './data.js';

export function escapeMarkdownCell(value: unknown): string {
  return String(value)
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r?\n|\r/g, ' ');
}

/** Inline text outside tables: the same escapes, plus the characters that start emphasis or links. */
function escapeInline(value: unknown): string {
  return escapeMarkdownCell(value).replace(/([*_`[\]#])/g, '\\$1');
}

export function markdownTable(table: TextTable): string {
  const line = (cells: readonly string[]): string => `| ${cells.map(escapeMarkdownCell).join(' | ')} |`;
  const align = table.header.map((_, i) => (table.rows.some((r) => r[i]?.sort !== null) ? '---:' : ':---'));
  return [line(table.header), `| ${align.join(' | ')} |`, ...table.rows.map((r) => line(r.map((c) => c.text)))].join('\n');
}

const pctOrDash = (f: number | null): string => (f === null ? '–' : `${(f * 100).toFixed(2)}%`);

export function renderMarkdown(info: ReportInfo, imageFileNames: { readonly pareto: string; readonly progress: string }): string {
  const last = info.progress.byNumber[info.progress.byNumber.length - 1];
  const out = [
    `# autoprune report: ${escapeInline(info.study.name)}`,
    '',
    `- base model: ${formatMacs(info.base.macs)}MACs, ${formatCount(info.base.params)} params; proxy ${pctOrDash(info.base.proxyAccuracy)}, test ${pctOrDash(info.base.testAccuracy)}`,
    ...(info.data ? [`- ${escapeInline(dataNotesLine(info.data))}`] : []),
    ...(info.latencyCheck ? [`- ${escapeInline(latencyCheckLine(info.latencyCheck))}`] : []),
    `- trials: ${info.counts.total} (${info.counts.complete} complete, ${info.counts.failed} failed, ${info.counts.pending} pending, ${info.counts.finalists} fine-tuned${finetunedOn(info)})`,
    `- hypervolume: ${info.hypervolume.toFixed(4)} (FLOPs fraction x proxy accuracy, ref = (base, 0))`,
    `- wall time: ${formatSeconds(info.wallSeconds) || '–'}`,
    `- fidelities (rung: accuracy split): ${escapeInline(fidelityLine(info))}`,
    `- proxy vs fine-tuned rank agreement (Kendall tau over finalists): ${formatTau(info.proxyFinalTau)}`,
    `- rank agreement between consecutive rungs (Kendall tau): ${escapeInline(rungAgreementLine(info))}`,
    ...info.targets.map((t, k) => `- best proxy accuracy, ${targetLabel(t, info.window)}: ${pctOrDash(last?.bestAtTarget[k] ?? null)}${baselinesAt(info, k)}`),
    '',
    `![accuracy vs FLOPs](${encodeURI(imageFileNames.pareto)})`,
    '',
    `![search progress](${encodeURI(imageFileNames.progress)})`,
    '',
    '## Rungs',
    '',
    "Rung 0 is the proxy: validation accuracy after BN re-calibration. Rung k >= 1 fine-tunes the best of rung k - 1 longer: test accuracy. The chart draws each rung's front.",
    '',
    markdownTable(rungTable(info)),
    ...(info.rungAgreement.length > 0
      ? [
          '',
          'Kendall tau between the accuracies of rung k and rung k + 1 over the candidates that reached both (1: same order, -1: reversed):',
          '',
          markdownTable(rungAgreementTable(info)),
        ]
      : []),
    '',
    `## Trials (by FLOPs)`,
    '',
    'Proxy accuracy (rung 0): validation split after BN re-calibration. Fine-tuned accuracy: test split after the last rung (finalists only); top rung: the highest rung the candidate reached.',
    '',
    markdownTable(trialTable(info)),
    '',
    '## Keep ratios of front candidates',
    '',
    info.candidates.length > 0 ? markdownTable(keepRatioTable(info)) : 'No completed trials yet.',
  ];
  if (info.infeasible.length > 0) out.push('', `## Outside the FLOPs window (${info.infeasible.length})`, '', markdownTable(infeasibleTable(info)));
  if (info.failed.length > 0) out.push('', `## Failed trials (${info.failed.length})`, '', markdownTable(failedTable(info)));
  return `${out.join('\n')}\n`;
}

export function renderCompareMarkdown(info: CompareInfo, imageFileName: string): string {
  return [
    `# autoprune: compare ${info.studies.length} studies`,
    '',
    `![Pareto fronts](${encodeURI(imageFileName)})`,
    '',
    `Hypervolume on (FLOPs as a fraction of ${info.sameBase ? 'the common' : "each study's"} base model, proxy accuracy), reference point (1, 0).`,
    '',
    markdownTable(compareTable(info)),
    '',
  ].join('\n');
}
