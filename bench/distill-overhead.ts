/**
 * What `evaluation.finetune.distill` costs per fine-tune step: the config's base model pruned
 * uniformly to about `--macs` of its MACs (the student) is fine-tuned on libtorch for `--steps`
 * steps of the config's recipe, with and without distillation from the unpruned base (the teacher,
 * one inference forward per step). Runs alternate plain / distilled so that a change of the host's
 * load hits both; the median of `--rounds` per arm counts, in CPU time (the work) and wall time.
 * Each run starts from the same pruned, re-calibrated model.
 *
 *   node --import tsx bench/distill-overhead.ts [--config configs/quickstart.yaml] [--steps 100] [--rounds 2] [--macs 0.5]
 */
import { parseArgs } from 'node:util';
import type * as tf from '@tensorflow/tfjs';
import { loadConfig } from '../src/config/index.js';
import { candidateFromRatios } from '../src/core/space.js';
import { initBackend } from '../src/engine/backend.js';
import { initTorch } from '../src/engine/torch.js';
import { fit } from '../src/evaluators/fit.js';
import { prunedForTrial } from '../src/evaluators/plan-rng.js';
import { finetuneOptions, type TrainOptions } from '../src/evaluators/recipe.js';
import { loadBaseModel, loadSplits } from '../src/evaluators/setup.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { median } from './models.js';

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'configs/quickstart.yaml' },
    steps: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '2' },
    macs: { type: 'string', default: '0.5' },
  },
});

const { resolved: cfg } = await loadConfig(values.config);
await initBackend(cfg.run.backend);
const workers = cfg.run.concurrency;
const torch = initTorch({ workers });
const splits = await loadSplits(cfg);
const base = await loadBaseModel(cfg);
const analysis = analyzeModel(base);
// A uniform keep ratio r costs about r² of the MACs (both sides of most convs shrink).
const ratio = Math.sqrt(Number(values.macs));
const candidate = candidateFromRatios(
  { groups: analysis.groups, options: { minKeepRatio: cfg.space.minKeepRatio, channelStep: 1, skip: [] } },
  analysis.groups.map(() => ratio),
);
const macs = costOf(analysis, candidate).macs / costOf(analysis, null).macs;
const f = cfg.evaluation.finetune;
const steps = Number(values.steps);
// Without a teacher: distillation is added per run below.
const recipe: TrainOptions = finetuneOptions(f, { epochs: 1, maxBatchesPerEpoch: steps, numClasses: splits.numClasses, seed: cfg.run.seed });
const distill = { temperature: f.distill?.temperature ?? 4, alpha: f.distill?.alpha ?? 0.9, teacher: { model: base } };

/** Wall and CPU seconds per step of one fine-tune. CPU time (this process, all threads) is the work done, which other processes on a shared host do not inflate. */
async function perStep(withDistill: boolean): Promise<{ wall: number; cpu: number }> {
  const { model } = await prunedForTrial(cfg, base, analysis, candidate, 0, splits.train);
  try {
    const cpu0 = process.cpuUsage();
    const r = await fit(model as tf.LayersModel, splits.train, withDistill ? { ...recipe, distill } : recipe, { requested: 'libtorch', workers });
    const cpu = process.cpuUsage(cpu0);
    return { wall: r.seconds / r.steps, cpu: (cpu.user + cpu.system) / 1e6 / r.steps };
  } finally {
    model.dispose();
  }
}

const plain: { wall: number; cpu: number }[] = [];
const distilled: { wall: number; cpu: number }[] = [];
for (let round = 0; round < Number(values.rounds); round++) {
  plain.push(await perStep(false));
  distilled.push(await perStep(true));
  const [p, d] = [plain.at(-1)!, distilled.at(-1)!];
  console.error(`round ${round}: s/step wall ${p.wall.toFixed(4)} -> ${d.wall.toFixed(4)}, cpu ${p.cpu.toFixed(4)} -> ${d.cpu.toFixed(4)}`);
}
const perEpoch = Math.min(Math.floor(splits.train.count / f.batchSize), f.batchesPerEpoch ?? Infinity);
const med = (xs: { wall: number; cpu: number }[], k: 'wall' | 'cpu') => median(xs.map((x) => x[k]));
const arm = (xs: { wall: number; cpu: number }[]) => ({
  wallSecondsPerStep: Number(med(xs, 'wall').toFixed(4)),
  cpuSecondsPerStep: Number(med(xs, 'cpu').toFixed(4)),
  cpuSecondsPerEpoch: Math.round(med(xs, 'cpu') * perEpoch),
});
console.log(
  JSON.stringify({
    config: values.config,
    studentMacs: Number(macs.toFixed(3)),
    batchSize: f.batchSize,
    augment: f.augment,
    steps,
    rounds: plain.length,
    libtorchThreads: torch.getThreads(),
    stepsPerEpoch: perEpoch,
    plain: arm(plain),
    distilled: arm(distilled),
    cpuRatio: Number((med(distilled, 'cpu') / med(plain, 'cpu')).toFixed(3)),
    wallRatio: Number((med(distilled, 'wall') / med(plain, 'wall')).toFixed(3)),
  }),
);
base.dispose();
