/**
 * Self-contained HTML report: charts embedded as data: URIs, no external assets. Every string that
 * comes from the user or the store (study name, group ids, controllers, errors, config) goes through
 * `escapeHtml`; the tables are built from plain-text cells (data.ts) and escaped here, in one place.
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

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escape text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

function pngDataUri(png: Buffer): string {
  return `data:image/png;base64,${png.toString('base64')}`;
}

const STYLE = `
body { font-family: system-ui, -apple-system, "DejaVu Sans", sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
td.text, th.text { text-align: left; white-space: normal; }
th.sortable { cursor: pointer; background: #f4f4f4; } th.sortable:hover { background: #e8e8e8; }
tr.front td { background: #eef5fb; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dt { font-weight: bold; } dd { margin: 0; }
pre { background: #f7f7f7; padding: 0.75rem; overflow: auto; }
`;

/** Click a header to sort by its column (numeric keys in data-sort, else text); click again to reverse. */
const SORT_SCRIPT = `
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.classList.add('sortable');
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var asc = th.dataset.dir !== 'asc';
      th.dataset.dir = asc ? 'asc' : 'desc';
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col];
        var kx = x.dataset.sort, ky = y.dataset.sort;
        var r;
        if (kx !== undefined || ky !== undefined) {
          if (kx === undefined) return 1;
          if (ky === undefined) return -1;
          r = Number(kx) - Number(ky);
        } else {
          r = x.textContent.localeCompare(y.textContent);
        }
        return asc ? r : -r;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
`;

/** Render a text table; cells with a numeric sort key get `data-sort`, text cells align left. */
export function htmlTable(table: TextTable, opts: { sortable?: boolean; rowClass?: (i: number) => string } = {}): string {
  const head = table.header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = table.rows
    .map((row, i) => {
      const cls = opts.rowClass?.(i) ?? '';
      const cells = row
        .map((c) =>
          c.sort !== null && Number.isFinite(c.sort)
            ? `<td data-sort="${escapeHtml(c.sort)}">${escapeHtml(c.text)}</td>`
            : `<td class="text">${escapeHtml(c.text)}</td>`,
        )
        .join('');
      return `<tr${cls ? ` class="${escapeHtml(cls)}"` : ''}>${cells}</tr>`;
    })
    .join('\n');
  return `<table${opts.sortable ? ' class="sortable"' : ''}><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
<script>${SORT_SCRIPT}</script>
</body>
</html>
`;
}

const pctOrDash = (f: number | null): string => (f === null ? '–' : `${(f * 100).toFixed(2)}%`);

function summary(info: ReportInfo): string {
  const last = info.progress.byNumber[info.progress.byNumber.length - 1];
  const items: [string, string][] = [
    ['study', info.study.name],
    ['state', info.study.state],
    ['base model', `${formatMacs(info.base.macs)}MACs, ${formatCount(info.base.params)} params`],
    ['base accuracy', `proxy ${pctOrDash(info.base.proxyAccuracy)}, test ${pctOrDash(info.base.testAccuracy)}`],
    ...(info.data ? [['data', dataNotesLine(info.data).replace(/^data: /, '')] as [string, string]] : []),
    ...(info.latencyCheck ? [['latency prediction', latencyCheckLine(info.latencyCheck).replace(/^latency prediction: /, '')] as [string, string]] : []),
    [
      'trials',
      `${info.counts.total} (${info.counts.complete} complete, ${info.counts.failed} failed, ${info.counts.pending} pending, ${info.counts.finalists} fine-tuned${finetunedOn(info)})`,
    ],
    ['hypervolume', `${info.hypervolume.toFixed(4)} (FLOPs fraction x proxy accuracy, ref = (base, 0))`],
    ['wall time', formatSeconds(info.wallSeconds) || '–'],
    ['fidelities (rung: accuracy split)', fidelityLine(info)],
    ['proxy vs fine-tuned rank agreement (Kendall tau over finalists)', formatTau(info.proxyFinalTau)],
    ['rank agreement between consecutive rungs (Kendall tau)', rungAgreementLine(info)],
    [
      'FLOPs targets',
      `${info.targets.map((t) => `${(t * 100).toFixed(0)}%`).join(', ')}${info.targetsFromConfig ? '' : ' (defaults)'}` +
        (info.window !== null ? `, window ±${(info.window * 100).toFixed(1)}%` : ''),
    ],
  ];
  info.targets.forEach((t, k) => {
    items.push([`best proxy, ${targetLabel(t, info.window)}`, `${pctOrDash(last?.bestAtTarget[k] ?? null)}${baselinesAt(info, k)}`]);
  });
  return `<dl>${items.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`;
}

export function renderHtml(info: ReportInfo, images: { readonly pareto: Buffer; readonly progress: Buffer }): string {
  const trials = trialTable(info);
  const parts = [
    `<h1>autoprune report: ${escapeHtml(info.study.name)}</h1>`,
    summary(info),
    `<h2>Accuracy vs FLOPs</h2>`,
    `<img alt="Pareto chart" src="${pngDataUri(images.pareto)}">`,
    `<h2>Search progress</h2>`,
    `<img alt="Progress chart" src="${pngDataUri(images.progress)}">`,
    `<h2>Rungs</h2>`,
    `<p>Rung 0 is the proxy: validation accuracy after BN re-calibration. Rung k &ge; 1 fine-tunes the best of rung k &minus; 1 longer: test accuracy. The chart draws each rung's front.</p>`,
    htmlTable(rungTable(info)),
    ...(info.rungAgreement.length > 0
      ? [
          `<h3>Rank agreement between consecutive rungs</h3>`,
          `<p>Kendall tau between the accuracies of rung k and rung k + 1 over the candidates that reached both (1: same order, &minus;1: reversed).</p>`,
          htmlTable(rungAgreementTable(info)),
        ]
      : []),
    `<h2>Trials (${info.rows.length} complete, by FLOPs)</h2>`,
    `<p>Proxy accuracy (rung 0): validation split after BN re-calibration. Fine-tuned accuracy: test split after the last rung (finalists only); top rung: the highest rung the candidate reached. Click a column to sort.</p>`,
    htmlTable(trials, { sortable: true, rowClass: (i) => (info.rows[i].onProxyFront ? 'front' : '') }),
    `<h2>Keep ratios of front candidates</h2>`,
    info.candidates.length > 0 ? htmlTable(keepRatioTable(info)) : '<p>No completed trials yet.</p>',
  ];
  if (info.infeasible.length > 0) {
    parts.push(`<h2>Outside the FLOPs window (${info.infeasible.length})</h2>`, htmlTable(infeasibleTable(info), { sortable: true }));
  }
  if (info.failed.length > 0) {
    parts.push(`<h2>Failed trials (${info.failed.length})</h2>`, htmlTable(failedTable(info), { sortable: true }));
  }
  parts.push(
    `<h2>Configuration</h2>`,
    `<details><summary>resolved config (hash ${escapeHtml(info.study.configHash)})</summary><pre>${escapeHtml(
      JSON.stringify(info.study.config, null, 2),
    )}</pre></details>`,
  );
  return page(`autoprune: ${info.study.name}`, parts.join('\n'));
}

export function renderCompareHtml(info: CompareInfo, image: Buffer): string {
  return page(
    'autoprune: compare studies',
    [
      `<h1>autoprune: compare ${info.studies.length} studies</h1>`,
      `<img alt="Pareto fronts" src="${pngDataUri(image)}">`,
      `<p>Hypervolume on (FLOPs as a fraction of ${info.sameBase ? 'the common' : "each study's"} base model, proxy accuracy), reference point (1, 0).</p>`,
      htmlTable(compareTable(info), { sortable: true }),
    ].join('\n'),
  );
}
