/**
 * Fidelity per cost of the adaptive-BN proxy: how the proxy's ranking changes
 * with 10, 20 and 50 calibration batches of 128 images, against the 50-batch proxy and against
 * accuracy after a 1-epoch fine-tune. EagleEye (Li et al. 2020) ranks by this proxy; how many
 * calibration batches it needs is the cost knob.
 *
 *   node --import tsx bench/proxy-fidelity.ts [--config configs/quickstart.yaml]
 *     [--scored experiments/controllers-real/scored.jsonl] [--store experiments/controllers-real/controllers.db]
 *     [--study ctrl-random] [--extra 20] [--batches 10,20,50] [--out experiments/proxy-fidelity.json]
 *
 * Candidates: the fine-tuned ones of `bench/controllers-real.ts` (its scored.jsonl: each with test
 * accuracy after the same 1-epoch fine-tune), plus `--extra` trials of one of its studies spread
 * over FLOPs (proxy-only, for the proxy-vs-proxy ranking). Every proxy here runs on onnxruntime on
 * the whole validation split (5,000 images) with the same seeded batches; seconds per proxy are the
 * cost. Prints Markdown tables and writes the numbers to `--out`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/index.js';
import type { Candidate } from '../src/core/space.js';
import { kendallTauB, spearman } from '../src/core/stats.js';
import { initBackend } from '../src/engine/backend.js';
import { nchwcBlock } from '../src/engine/onnxruntime.js';
import { onnxProxy } from '../src/evaluators/onnx-proxy.js';
import { pruningRng } from '../src/evaluators/plan-rng.js';
import { loadBaseModel, loadSplits } from '../src/evaluators/setup.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { exportOnnxGraph } from '../src/model/onnx.js';
import { pruneModel } from '../src/model/prune.js';
import { openStore } from '../src/store/index.js';

interface Row {
  readonly source: string;
  readonly trial: number;
  readonly candidate: Candidate;
  readonly flops: number;
  readonly finetuned: number | null;
  proxy: Record<number, number>;
  seconds: Record<number, number>;
}

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'configs/quickstart.yaml' },
    scored: { type: 'string', default: 'experiments/controllers-real/scored.jsonl' },
    store: { type: 'string', default: 'experiments/controllers-real/controllers.db' },
    study: { type: 'string', default: 'ctrl-random' },
    extra: { type: 'string', default: '20' },
    batches: { type: 'string', default: '10,20,50' },
    'batch-size': { type: 'string', default: '128' },
    out: { type: 'string', default: 'experiments/proxy-fidelity.json' },
  },
});

/** `n` items spread evenly over a list sorted by FLOPs. */
function spread<T extends { flops: number }>(xs: readonly T[], n: number): T[] {
  const sorted = [...xs].sort((p, q) => p.flops - q.flops);
  if (sorted.length <= n) return sorted;
  return Array.from({ length: n }, (_, k) => sorted[Math.floor(((k + 0.5) * sorted.length) / n)]);
}

async function candidates(baseMacs: number): Promise<Row[]> {
  const scored = (await readFile(values.scored!, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { controller: string; trial: number; candidate: Candidate; flops: number; finetuned: number });
  const rows: Row[] = scored.map((s) => ({
    source: `ctrl-${s.controller}`,
    trial: s.trial,
    candidate: s.candidate,
    flops: s.flops,
    finetuned: s.finetuned,
    proxy: {},
    seconds: {},
  }));
  const store = await openStore(values.store!);
  const trials = await store.listTrials(values.study!, { state: 'complete' });
  await store.close();
  const seen = new Set(rows.map((r) => JSON.stringify(r.candidate.channels)));
  const fresh = trials
    .filter((t) => !seen.has(JSON.stringify(t.candidate.channels)))
    .map((t) => ({ source: values.study!, trial: t.number, candidate: t.candidate, flops: t.cost.macs / baseMacs, finetuned: null, proxy: {}, seconds: {} }));
  return [...rows, ...spread(fresh, Number(values.extra))];
}

function correlations(rows: readonly Row[], x: (r: Row) => number, y: (r: Row) => number) {
  return { n: rows.length, spearman: spearman(rows.map(x), rows.map(y)), kendall: kendallTauB(rows.map(x), rows.map(y)) };
}

async function main(): Promise<void> {
  const { resolved: cfg } = await loadConfig(values.config!);
  await initBackend(cfg.run.backend);
  const splits = await loadSplits(cfg);
  const base = await loadBaseModel(cfg, splits);
  const a = analyzeModel(base);
  const baseMacs = costOf(a, null).macs;
  const ks = values.batches!.split(',').map(Number);
  const batchSize = Number(values['batch-size']);
  const rows = await candidates(baseMacs);
  const block = nchwcBlock();
  for (const [i, r] of rows.entries()) {
    const { model } = await pruneModel(base, a, r.candidate, cfg.evaluation.importance, pruningRng(cfg, r.trial));
    const graph = exportOnnxGraph(model);
    model.dispose();
    for (const k of ks) {
      const t0 = performance.now();
      const p = await onnxProxy(graph, splits, {
        calibration: { batches: k, batchSize, seed: cfg.run.seed },
        latency: { batchSize: 1, runs: 0 },
        channelBlock: block,
      });
      r.seconds[k] = (performance.now() - t0) / 1000;
      r.proxy[k] = p.accuracy;
    }
    process.stderr.write(
      `${i + 1}/${rows.length} ${r.source} trial ${r.trial} (${(100 * r.flops).toFixed(1)}% FLOPs): ${ks.map((k) => `${k}: ${(100 * r.proxy[k]).toFixed(2)}%`).join(', ')}${r.finetuned === null ? '' : `; fine-tuned ${(100 * r.finetuned).toFixed(2)}%`}\n`,
    );
  }
  const top = Math.max(...ks);
  const tuned = rows.filter((r) => r.finetuned !== null);
  const table = ks.map((k) => ({
    batches: k,
    seconds: rows.reduce((s, r) => s + r.seconds[k], 0) / rows.length,
    vsTop: correlations(
      rows,
      (r) => r.proxy[k],
      (r) => r.proxy[top],
    ),
    vsFinetuned: correlations(
      tuned,
      (r) => r.proxy[k],
      (r) => r.finetuned!,
    ),
  }));
  await writeFile(values.out!, JSON.stringify({ config: values.config, batchSize, rows, table }, null, 1));
  const f = (x: number) => x.toFixed(3);
  process.stdout.write(
    `${[
      `${rows.length} candidates (${tuned.length} with a 1-epoch fine-tune), ${(100 * Math.min(...rows.map((r) => r.flops))).toFixed(0)}–${(100 * Math.max(...rows.map((r) => r.flops))).toFixed(0)}% FLOPs; calibration batches of ${batchSize}; proxy on all ${splits.validation.count} validation images.`,
      '',
      `| calibration batches | seconds per proxy | vs ${top}-batch proxy: Kendall τ-b / Spearman (n=${rows.length}) | vs 1-epoch fine-tuned test: Kendall τ-b / Spearman (n=${tuned.length}) |`,
      '|---|---|---|---|',
      ...table.map(
        (t) =>
          `| ${t.batches} | ${t.seconds.toFixed(2)} | ${f(t.vsTop.kendall)} / ${f(t.vsTop.spearman)} | ${f(t.vsFinetuned.kendall)} / ${f(t.vsFinetuned.spearman)} |`,
      ),
    ].join('\n')}\n`,
  );
}

await main();
