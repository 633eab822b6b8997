/**
 * Which proxy ranks a model whose BatchNormalization was folded into its convs (what
 * `torch.onnx.export` writes in eval mode)? Candidates in one FLOPs window of the quickstart
 * ResNet-20 are fine-tuned for one epoch (the reference ranking), then scored by three proxies:
 *   (a) no re-calibration: the pruned folded model as it is (pruning commutes with folding, so this
 *       is the pruned BN model with its trained statistics);
 *   (b) unfolded adaptive BN: each folded conv is unfolded into conv + BN whose statistics come from
 *       calibration data and whose affine reproduces the folded conv; then adaptive BN as usual;
 *   (c) the original model with its BNs kept, adaptive BN (EagleEye's proxy).
 * Kendall tau-b of each proxy against the fine-tuned test accuracy decides the default for BN-less
 * models.
 *
 *   node --import tsx bench/bnless-proxy.ts --phase finetune [--count 14] [--target 0.3] [--window 0.03]
 *   node --import tsx bench/bnless-proxy.ts --phase proxy
 *
 * Fine-tunes are appended to experiments/bnless-proxy/finetuned.jsonl as they finish, so a run that
 * dies keeps them and a rerun continues. Candidates are drawn with a fixed seed: per-group keep
 * ratios uniform in [minKeepRatio, 1], then scaled together until the candidate's MACs land in the
 * window.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type * as tf from '@tensorflow/tfjs';
import { loadConfig, type ResolvedConfig } from '../src/config/index.js';
import { Rng } from '../src/core/rng.js';
import { type Candidate, candidateFromRatios, type SearchSpace } from '../src/core/space.js';
import { kendallTauB, spearman } from '../src/core/stats.js';
import { initBackend } from '../src/engine/backend.js';
import { withSession } from '../src/engine/onnxruntime.js';
import { fit } from '../src/evaluators/fit.js';
import { proxyBase } from '../src/evaluators/onnx.js';
import { onnxProxy, sessionAccuracy } from '../src/evaluators/onnx-proxy.js';
import { prunedForTrial, pruningRng } from '../src/evaluators/plan-rng.js';
import type { Splits } from '../src/evaluators/setup.js';
import { loadBaseModel, loadSplits } from '../src/evaluators/setup.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { analyzeGraph } from '../src/model/ir/analyze.js';
import { cutGraph, makeGraphPlan } from '../src/model/ir/cut.js';
import { graphFromLayersModel } from '../src/model/ir/from-tfjs.js';
import type { ModelGraph } from '../src/model/ir/graph.js';
import { importOnnx } from '../src/model/ir/onnx-import.js';
import { graphToOnnx } from '../src/model/ir/to-onnx.js';
import { exportOnnxGraph } from '../src/model/onnx.js';
import { foldBatchNorm } from '../src/model/onnx-bn.js';
import { encodeOnnx } from '../src/model/onnx-proto.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'configs/quickstart.yaml' },
    phase: { type: 'string', default: 'finetune' },
    count: { type: 'string', default: '14' },
    target: { type: 'string', default: '0.3' },
    window: { type: 'string', default: '0.03' },
    out: { type: 'string', default: 'experiments/bnless-proxy' },
    'finetune-lr': { type: 'string', default: '0.01' },
  },
});

export interface Drawn {
  readonly index: number;
  readonly candidate: Candidate;
  readonly flops: number;
}

/** `count` candidates whose MACs fall in target ± window, drawn with a fixed seed. */
export function drawCandidates(space: SearchSpace, macsOf: (c: Candidate) => number, baseMacs: number, count: number, target: number, window: number): Drawn[] {
  const rng = new Rng('bnless-proxy');
  const out: Drawn[] = [];
  const lo = space.options.minKeepRatio;
  for (let tries = 0; out.length < count && tries < 100 * count; tries++) {
    const raw = space.groups.map(() => rng.uniform(lo, 1));
    // Bisection on one scale factor s: ratio_i = lo + s (raw_i - lo), s in [0, 1/(max-lo)] keeps each ratio in [lo, 1].
    let a = 0;
    let b = 1 / Math.max(...raw.map((r) => (r - lo) / (1 - lo)));
    let best: Candidate | null = null;
    for (let k = 0; k < 40; k++) {
      const s = (a + b) / 2;
      const c = candidateFromRatios(
        space,
        raw.map((r) => Math.min(1, lo + s * (r - lo))),
      );
      const f = macsOf(c) / baseMacs;
      if (Math.abs(f - target) <= window * 0.8) {
        best = c;
        break;
      }
      if (f < target) a = s;
      else b = s;
    }
    if (best && !out.some((d) => d.candidate.channels.join() === best.channels.join()))
      out.push({ index: out.length, candidate: best, flops: macsOf(best) / baseMacs });
  }
  return out;
}

async function main(): Promise<void> {
  const { resolved: cfg } = await loadConfig(values.config!);
  await initBackend(cfg.run.backend);
  const splits = await loadSplits(cfg);
  const base = await loadBaseModel(cfg, splits);
  const a = analyzeModel(base);
  const space: SearchSpace = { groups: a.groups, options: { ...cfg.space, channelStep: cfg.space.channelStep === 'auto' ? 1 : cfg.space.channelStep } };
  const baseMacs = costOf(a, null).macs;
  const drawn = drawCandidates(space, (c) => costOf(a, c).macs, baseMacs, Number(values.count), Number(values.target), Number(values.window));
  await mkdir(values.out!, { recursive: true });
  const file = join(values.out!, 'finetuned.jsonl');
  const done = new Set(
    (await readFile(file, 'utf8').catch(() => ''))
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => (JSON.parse(l) as { index: number }).index),
  );
  if (values.phase === 'proxy') return proxies(cfg, base, splits, file);
  if (values.phase !== 'finetune') throw new Error(`unknown --phase ${values.phase}; expected finetune or proxy`);
  for (const d of drawn) {
    if (done.has(d.index)) continue;
    const t0 = Date.now();
    const { model } = await prunedForTrial(cfg, base, a, d.candidate, 1000 + d.index, splits.train);
    await fit(
      model,
      splits.train,
      {
        epochs: 1,
        batchSize: 128,
        learningRate: Number(values['finetune-lr']),
        optimizer: 'sgd',
        momentum: 0.9,
        weightDecay: 5e-4,
        numClasses: splits.numClasses,
        seed: cfg.run.seed,
        augment: true,
      },
      { requested: 'auto' },
    );
    const bytes = encodeOnnx(exportOnnxGraph(model));
    model.dispose();
    const acc = await withSession(bytes, {}, (s, ort) => sessionAccuracy(s, ort, splits.test));
    const line = { index: d.index, trial: 1000 + d.index, channels: d.candidate.channels, flops: d.flops, finetuned: acc, seconds: (Date.now() - t0) / 1000 };
    await appendFile(file, `${JSON.stringify(line)}\n`);
    process.stdout.write(`${d.index}: ${(100 * d.flops).toFixed(1)}% FLOPs, 1-epoch fine-tune ${(100 * acc).toFixed(2)}% in ${line.seconds.toFixed(0)} s\n`);
  }
}

/**
 * The three proxies on the fine-tuned candidates. Every proxy scores the same pruned network: the
 * channels each group keeps are chosen once, on the BN model (as the fine-tunes were), and applied
 * to the folded graph too, so only the re-calibration differs.
 */
async function proxies(cfg: ResolvedConfig, base: tf.LayersModel, splits: Splits, file: string): Promise<void> {
  const rows = (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { index: number; trial: number; channels: number[]; flops: number; finetuned: number });
  const bnGraph = graphFromLayersModel(base);
  const bn = analyzeGraph(bnGraph);
  // What torch.onnx.export writes: the BNs folded into the convs; imported back as a graph.
  const folded = importOnnx(encodeOnnx(foldBatchNorm(graphToOnnx(bnGraph))), 'folded.onnx');
  const foldedBns = folded.nodes.filter((n) => n.op === 'BatchNormalization').length;
  const ev = cfg.evaluation;
  const calibration = { batches: ev.calibration.batches, batchSize: ev.calibration.batchSize, seed: cfg.run.seed };
  const data = { train: splits.train, validation: splits.validation };
  const unfolded = await proxyBase(folded, { unfold: 'auto', train: splits.train, calibration });
  const plain = analyzeGraph(folded);
  if (plain.groups.length !== bn.groups.length || plain.groups.some((g, i) => g.channels !== bn.groups[i].channels)) {
    throw new Error('the folded model has other channel groups than the BN model');
  }
  process.stdout.write(`folded model: ${foldedBns} BN nodes left, ${unfolded.unfolded.length} convs unfolded; ${rows.length} candidates\n`);
  const score = async (g: ModelGraph, layout: ModelGraph['inputLayout']) =>
    (await onnxProxy(graphToOnnx(g), data, { calibration, latency: { batchSize: 1, runs: 0 }, validationLimit: ev.validation.limit, layout })).accuracy;
  const out: { index: number; flops: number; finetuned: number; none: number; unfolded: number; kept: number }[] = [];
  for (const r of rows) {
    const plan = makeGraphPlan(bn, { channels: r.channels }, ev.importance, pruningRng(cfg, r.trial));
    const keep = plan.groups.map((g) => g.keep);
    const kept = await score(cutGraph(bnGraph, bn, keep), bnGraph.inputLayout);
    const none = await score(cutGraph(folded, plain, keep), folded.inputLayout);
    const unf = await score(cutGraph(unfolded.cutFrom.graph, unfolded.cutFrom, keep), folded.inputLayout);
    out.push({ index: r.index, flops: r.flops, finetuned: r.finetuned, none, unfolded: unf, kept });
    process.stdout.write(
      `${r.index}: ${(100 * r.flops).toFixed(1)}% FLOPs  fine-tuned ${pct(r.finetuned)}  (a) none ${pct(none)}  (b) unfolded ${pct(unf)}  (c) BN kept ${pct(kept)}\n`,
    );
  }
  const ft = out.map((o) => o.finetuned);
  const line = (name: string, xs: number[]) => `| ${name} | ${kendallTauB(xs, ft).toFixed(3)} | ${spearman(xs, ft).toFixed(3)} |`;
  const table = [
    `Kendall tau-b and Spearman of each proxy against 1-epoch fine-tuned test accuracy, ${out.length} candidates at ${(100 * Math.min(...out.map((o) => o.flops))).toFixed(1)}-${(100 * Math.max(...out.map((o) => o.flops))).toFixed(1)}% FLOPs:`,
    '',
    '| proxy | Kendall tau-b | Spearman |',
    '| --- | ---: | ---: |',
    line(
      '(a) no re-calibration (folded model as is)',
      out.map((o) => o.none),
    ),
    line(
      '(b) unfolded adaptive BN (folded model)',
      out.map((o) => o.unfolded),
    ),
    line(
      '(c) adaptive BN, BN kept',
      out.map((o) => o.kept),
    ),
    line(
      'FLOPs alone',
      out.map((o) => o.flops),
    ),
  ].join('\n');
  process.stdout.write(`\n${table}\n`);
  await writeFile(join(values.out!, 'proxies.json'), JSON.stringify({ rows: out, table }, null, 2));
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

if (import.meta.url === `file://${process.argv[1]}`) await main();
