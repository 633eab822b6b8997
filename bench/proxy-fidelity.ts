/**
 * Does the cheap proxy rank candidates like a short fine-tune does? EagleEye (Li et al. 2020)
 * claims that adaptive-BN accuracy correlates with accuracy after fine-tuning; this measures it on
 * the quickstart's base model: N random candidates around a FLOPs ratio, each scored by
 *   proxy    = prune + BN re-calibration (what `search` uses), and
 *   tuned    = the same + B batches of fine-tuning (Adam 1e-3),
 * both on the first 2000 validation images, then Kendall's tau between the two rankings.
 *
 *   node --import tsx bench/proxy-fidelity.ts [--config configs/quickstart.yaml] [--candidates 8] [--batches 30]
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/index.js';
import { Rng } from '../src/core/rng.js';
import { kendallTau } from '../src/core/stats.js';
import { candidateFromRatios } from '../src/core/space.js';
import { initBackend } from '../src/engine/backend.js';
import { prunedForTrial } from '../src/evaluators/plan-rng.js';
import { loadBaseModel, loadSplits } from '../src/evaluators/setup.js';
import { accuracy, train } from '../src/evaluators/train.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', default: 'configs/quickstart.yaml' }, candidates: { type: 'string', default: '8' }, batches: { type: 'string', default: '30' } } });
  const n = Number(values.candidates);
  const batches = Number(values.batches);
  const { resolved: cfg } = await loadConfig(values.config!);
  await initBackend(cfg.run.backend);
  const splits = await loadSplits(cfg);
  const base = await loadBaseModel(cfg);
  const analysis = analyzeModel(base);
  const space = { groups: analysis.groups, options: { ...cfg.space, skip: [...cfg.space.skip] } };
  const baseMacs = costOf(analysis, null).macs;
  const rng = new Rng(`${cfg.run.seed}:proxy-fidelity`);
  const limit = { limit: cfg.evaluation.validation.limit ?? 2000 };
  const rows: { flops: number; proxy: number; tuned: number }[] = [];
  for (let i = 0; i < n; i++) {
    const candidate = candidateFromRatios(space, space.groups.map(() => rng.uniform(0.55, 0.95)));
    const { model } = await prunedForTrial(cfg, base, analysis, candidate, i, splits.train);
    const proxy = accuracy(model, splits.validation, limit);
    await train(model, splits.train, { epochs: 1, maxBatchesPerEpoch: batches, batchSize: 64, learningRate: 1e-3, optimizer: 'adam', momentum: 0.9, numClasses: splits.numClasses, seed: cfg.run.seed });
    const tuned = accuracy(model, splits.validation, limit);
    model.dispose();
    rows.push({ flops: costOf(analysis, candidate).macs / baseMacs, proxy, tuned });
    console.error(`candidate ${i + 1}/${n}: ${(100 * rows[i].flops).toFixed(1)}% FLOPs, proxy ${(100 * proxy).toFixed(2)}%, after ${batches} batches ${(100 * tuned).toFixed(2)}%`);
  }
  console.log('| candidate | FLOPs | proxy (BN re-calibrated) | after fine-tuning |');
  console.log('| ---: | ---: | ---: | ---: |');
  rows.forEach((r, i) => console.log(`| ${i} | ${(100 * r.flops).toFixed(1)}% | ${(100 * r.proxy).toFixed(2)}% | ${(100 * r.tuned).toFixed(2)}% |`));
  console.log(`\nKendall tau (proxy vs ${batches}-batch fine-tune ranking), ${n} candidates: ${kendallTau(rows.map((r) => r.proxy), rows.map((r) => r.tuned)).toFixed(3)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
