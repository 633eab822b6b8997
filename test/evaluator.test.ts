/**
 * The in-process tfjs evaluator on a tiny synthetic setup: tensor memory stays flat over many
 * proxy evaluations (STYLE.md principle 11), the built model's cost equals the predicted one, and a
 * finalist's saved model reloads with the reported test accuracy.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { type ResolvedConfig, resolveConfig } from '../src/config/index.js';
import { Rng } from '../src/core/rng.js';
import { candidateFromRatios } from '../src/core/space.js';
import { initBackend } from '../src/engine/backend.js';
import { buildBaseArchitecture, loadSplits } from '../src/evaluators/setup.js';
import { TfjsEvaluator } from '../src/evaluators/tfjs.js';
import { accuracy } from '../src/evaluators/train.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { loadModel, saveModel } from '../src/model/io.js';
import { loadGraph } from '../src/model/ir/io.js';
import { graphToTfjs } from '../src/model/ir/to-tfjs.js';

let dir: string;
let cfg: ResolvedConfig;

before(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'autoprune-evaluator-'));
  cfg = resolveConfig({
    name: 'ev',
    data: { dataset: 'synthetic', validationSize: 64, synthetic: { shape: [28, 28, 1], classes: 10, train: 256, test: 64 } },
    model: { zoo: 'resnet-20', width: 0.25, checkpoint: join(dir, 'base', 'model.json') },
    evaluation: { calibration: { batches: 2, batchSize: 32 }, finalists: { count: 1, epochs: 1, batchesPerEpoch: 2 }, latency: { batchSize: 4, runs: 1 } },
    run: { backend: 'wasm', store: join(dir, 'unused.db') },
  });
  const base = buildBaseArchitecture(cfg, { shape: [28, 28, 1], numClasses: 10 });
  await saveModel(base, join(dir, 'base'));
  base.dispose();
});

test('tf.memory().numTensors is flat across 20 proxy evaluations; built cost = predicted cost', async () => {
  const ev = await TfjsEvaluator.create(cfg);
  const base = await loadModel(cfg.model.checkpoint!);
  const a = analyzeModel(base);
  base.dispose();
  const space = { groups: a.groups, options: { minKeepRatio: 0.25, channelStep: 1, skip: [] } };
  const rng = new Rng(3);
  const candidate = () =>
    candidateFromRatios(
      space,
      space.groups.map(() => rng.uniform(0.3, 1)),
    );
  await ev.evaluate({ trial: 0, candidate: candidate(), stage: 'proxy' }); // warm-up (kernels, caches)
  const baseline = tf.memory().numTensors;
  for (let i = 1; i <= 20; i++) {
    const c = candidate();
    const r = await ev.evaluate({ trial: i, candidate: c, stage: 'proxy' });
    assert.deepEqual(r.cost, costOf(a, c));
    assert.ok(r.proxyAccuracy! >= 0 && r.proxyAccuracy! <= 1);
  }
  assert.equal(tf.memory().numTensors, baseline);
  await ev.close();
});

test('a finalist is fine-tuned, scored on the test split and saved; the saved model scores the same', async () => {
  const ev = await TfjsEvaluator.create(cfg);
  const splits = await loadSplits(cfg);
  const base = await loadModel(cfg.model.checkpoint!);
  const a = analyzeModel(base);
  base.dispose();
  const c = { channels: a.groups.map((g) => Math.max(1, Math.ceil(g.channels / 2))) };
  const saveTo = join(dir, 'finalist');
  const r = await ev.evaluate({ trial: 5, candidate: c, stage: 'finetune', saveTo });
  assert.equal(r.modelPath, saveTo);
  assert.ok(r.timings.finetune !== undefined, 'fine-tuning ran');
  const saved = await loadModel(join(saveTo, 'model.json'));
  assert.equal(accuracy(saved, splits.test), r.finalAccuracy);
  assert.equal(saved.countParams(), costOf(a, c).params);
  saved.dispose();
  const twin = graphToTfjs(await loadGraph(saveTo));
  assert.ok(Math.abs(accuracy(twin, splits.test) - r.finalAccuracy!) <= 1 / splits.test.count, 'the saved graph scores as the saved model');
  twin.dispose();
  await ev.close();
});
