/**
 * Knowledge distillation on libtorch (src/evaluators/distill.ts): the loss against hand-computed
 * values and gradients; a short fine-tune with it moves the student's logits toward the teacher's
 * (KL measured by independent evaluators: the float64 graph reference and tfjs), for a graph and for
 * a tfjs model, further than cross entropy alone; the tfjs trainer and a search training on tfjs
 * refuse it; through the tfjs and graph evaluators' finetune and adapt stages, alpha = 0 trains
 * exactly as no distillation does and alpha > 0 differently. Skips without the libtorch binding,
 * fails under CI.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { type ResolvedConfig, resolveConfig } from '../src/config/index.js';
import { isAutopruneError } from '../src/core/errors.js';
import { makeSynthetic } from '../src/data/synthetic.js';
import type { Split } from '../src/data/types.js';
import { torchStatus } from '../src/engine/torch.js';
import { distillationLoss } from '../src/evaluators/distill.js';
import { createEvaluator } from '../src/evaluators/engine.js';
import { fit, fitGraph } from '../src/evaluators/fit.js';
import { GraphEvaluator } from '../src/evaluators/graph.js';
import type { TrainOptions } from '../src/evaluators/recipe.js';
import { buildBaseArchitecture, loadSplits } from '../src/evaluators/setup.js';
import { TfjsEvaluator } from '../src/evaluators/tfjs.js';
import { TensorScope } from '../src/evaluators/torch-graph.js';
import { trainTorch } from '../src/evaluators/train-torch.js';
import { analyzeModel } from '../src/model/analysis.js';
import { loadModel, saveModel } from '../src/model/io.js';
import { graphFromLayersModel } from '../src/model/ir/from-tfjs.js';
import type { ModelGraph } from '../src/model/ir/graph.js';
import { loadGraph } from '../src/model/ir/io.js';
import { graphToTfjs } from '../src/model/ir/to-tfjs.js';
import { GraphBuilder, referenceForward } from './graph-reference.js';

const status = torchStatus();
const ci = process.env.CI === 'true';
const skip = status.loaded || ci ? false : `libtorch binding not available: ${status.reason}`;
const torch = status.loaded ? status.binding : (undefined as never);
if (status.loaded) torch.setThreads(1);

/** A float64 tensor of `rows` (owned by `s`). */
const matrix = (s: TensorScope, rows: number[][]) => s.keep(torch.fromData(Float64Array.from(rows.flat()), [rows.length, rows[0].length]));
const labels = (s: TensorScope, ys: number[]) => s.keep(torch.fromData(Int32Array.from(ys), [ys.length]));

// Teacher logits T·[ln 3, 0] at T = 4 soften to p = (3/4, 1/4); zero student logits to q = (1/2, 1/2).
// KL(p ‖ q) = 3/4 ln(3/2) + 1/4 ln(1/2), by hand.
const T = 4;
const KL = 0.75 * Math.log(1.5) + 0.25 * Math.log(0.5);
const teacherRows = [
  [T * Math.log(3), 0],
  [0, T * Math.log(3)],
];
const studentRows = [
  [0, 0],
  [0, 0],
];

test('distillation loss: alpha = 0 is the cross entropy exactly; alpha = 1 is T²·KL at a hand-computed value; between, the mix', { skip }, () => {
  const s = new TensorScope(torch);
  try {
    const student = matrix(s, [
      [1.5, -0.25, 0.5],
      [-1, 2, 0.125],
    ]);
    const teacher = matrix(s, [
      [0.5, 0.5, 3],
      [2, -2, 1],
    ]);
    const y = labels(s, [0, 1]);
    const ce = s.op('cross_entropy', [student, y]).item();
    assert.equal(distillationLoss(s, student, teacher, y, { temperature: 3, alpha: 0 }).item(), ce);

    const st = matrix(s, studentRows);
    const te = matrix(s, teacherRows);
    const y2 = labels(s, [0, 0]);
    // Both rows have the same KL (mirror images), so the batch mean is KL itself.
    assert.ok(Math.abs(distillationLoss(s, st, te, y2, { temperature: T, alpha: 1 }).item() - T * T * KL) < 1e-12);
    const mixed = distillationLoss(s, st, te, y2, { temperature: T, alpha: 0.25 }).item();
    assert.ok(Math.abs(mixed - (0.75 * Math.log(2) + 0.25 * T * T * KL)) < 1e-12, `${mixed}`);
  } finally {
    s.dispose();
  }
});

test('distillation loss: the gradient on the student logits is T·(q − p) / N (alpha = 1), none reaches the teacher', { skip }, () => {
  const s = new TensorScope(torch);
  try {
    const student = matrix(s, studentRows).requiresGrad(true);
    const teacher = matrix(s, teacherRows);
    distillationLoss(s, student, teacher, labels(s, [0, 0]), { temperature: T, alpha: 1 }).backward();
    const g = s.keep(student.grad!).data();
    const expected = [(T * (0.5 - 0.75)) / 2, (T * (0.5 - 0.25)) / 2, (T * (0.5 - 0.25)) / 2, (T * (0.5 - 0.75)) / 2];
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(g[i] - expected[i]) < 1e-12, `grad ${i}: ${g[i]} vs ${expected[i]}`);
    assert.equal(teacher.grad, null);
  } finally {
    s.dispose();
  }
});

/** A small classifier for [12, 12, 1] images: conv-BN-relu, pool, conv-BN-relu, global pool, dense to 4 classes. */
function smallNet(seed: number): ModelGraph {
  const g = new GraphBuilder([1, 12, 12], seed);
  let x = g.act('a1', g.bn('b1', g.conv('c1', 'input', 6, { pads: [1, 1, 1, 1] })), { kind: 'relu' });
  x = g.pool('p', x, { mode: 'max', kernel: [2, 2], strides: [2, 2] });
  x = g.act('a2', g.bn('b2', g.conv('c2', x, 8, { pads: [1, 1, 1, 1] })), { kind: 'relu' });
  g.dense('fc', g.globalPool('gp', x, 'avg', false), 4);
  return g.graph('fc');
}

/** Mean over rows of KL(softmax(t / T) ‖ softmax(s / T)), logits [n, k] row-major, in float64. */
function meanKl(teacher: ArrayLike<number>, student: ArrayLike<number>, n: number, temperature: number): number {
  const k = teacher.length / n;
  const logSoftmax = (v: ArrayLike<number>, r: number) => {
    const row = Array.from({ length: k }, (_, j) => v[r * k + j] / temperature);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
    return row.map((x) => x - lse);
  };
  let sum = 0;
  for (let r = 0; r < n; r++) {
    const lp = logSoftmax(teacher, r);
    const lq = logSoftmax(student, r);
    for (let j = 0; j < k; j++) sum += Math.exp(lp[j]) * (lp[j] - lq[j]);
  }
  return sum / n;
}

const ds = makeSynthetic({ shape: [12, 12, 1], numClasses: 4, trainCount: 256, testCount: 128, seed: 4 });
const recipe: TrainOptions = { epochs: 8, batchSize: 32, learningRate: 0.1, optimizer: 'sgd', momentum: 0.9, numClasses: 4, seed: 1, augment: true };
// BN moving statistics that follow the batches within these few steps, so that inference-mode
// logits (the teacher's, and the ones measured) reflect the training.
const bnMomentum = 0.5;
const klAtT = (teacher: ArrayLike<number>, student: ArrayLike<number>) => meanKl(teacher, student, ds.test.count, T);

/** The teacher: a small net trained on the labels with cross entropy (confident logits, BN statistics of the data). */
let trainedTeacher: Promise<ModelGraph> | undefined;
const teacherGraph = () =>
  (trainedTeacher ??= fitGraph(smallNet(8), ds.train, { ...recipe, epochs: 10 }, { requested: 'libtorch' }, { bnMomentum }).then((r) => r.graph));

test('a graph fine-tuned with distillation on libtorch moves toward its teacher: KL falls, below what cross entropy alone reaches', { skip }, async () => {
  const teacher = await teacherGraph();
  const student = smallNet(9);
  const distill = { temperature: T, alpha: 1, teacher: { graph: teacher } };
  const withKd = await fitGraph(student, ds.train, { ...recipe, distill }, { requested: 'libtorch' }, { bnMomentum });
  const withCe = await fitGraph(student, ds.train, recipe, { requested: 'libtorch' }, { bnMomentum });
  assert.equal(withKd.result.engine, 'libtorch');
  const t = referenceForward(teacher, ds.test.images, ds.test.count);
  const kl = (g: ModelGraph) => klAtT(t, referenceForward(g, ds.test.images, ds.test.count));
  const [before, afterKd, afterCe] = [kl(student), kl(withKd.graph), kl(withCe.graph)];
  assert.ok(afterKd < 0.25 * before, `KL to the teacher: before ${before}, after distilling ${afterKd}`);
  assert.ok(afterKd < afterCe, `KL after distilling ${afterKd} vs after cross entropy alone ${afterCe}`);
});

/** Logits of a tfjs model on a split (tfjs, an engine independent of libtorch). */
function tfjsLogits(model: tf.LayersModel, split: Split): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor4d(split.images, [split.count, ...split.shape])) as tf.Tensor).dataSync() as Float32Array);
}

test('a tfjs model fine-tuned with distillation (fit on libtorch, graph and layer-by-layer trainers) moves toward its tfjs teacher', { skip }, async () => {
  await tf.setBackend('cpu');
  const teacher = graphToTfjs(await teacherGraph());
  const distill = { temperature: T, alpha: 1, teacher: { model: teacher } };
  try {
    const t = tfjsLogits(teacher, ds.test);
    for (const trainer of ['fit', 'trainTorch'] as const) {
      const klAfter = async (o: TrainOptions) => {
        const student = graphToTfjs(smallNet(9), { bnMomentum });
        try {
          const r = trainer === 'fit' ? await fit(student, ds.train, o, { requested: 'libtorch' }) : await trainTorch(torch, student, ds.train, o);
          assert.equal(r.engine, 'libtorch');
          return klAtT(t, tfjsLogits(student, ds.test));
        } finally {
          student.dispose();
        }
      };
      const untrained = graphToTfjs(smallNet(9));
      const before = klAtT(t, tfjsLogits(untrained, ds.test));
      untrained.dispose();
      const [afterKd, afterCe] = [await klAfter({ ...recipe, distill }), await klAfter(recipe)];
      assert.ok(afterKd < 0.25 * before, `${trainer}: KL to the teacher before ${before}, after distilling ${afterKd}`);
      assert.ok(afterKd < afterCe, `${trainer}: KL after distilling ${afterKd} vs after cross entropy alone ${afterCe}`);
    }
  } finally {
    teacher.dispose();
  }
});

test('the tfjs trainer refuses distillation in one line rather than training without it', async () => {
  await tf.setBackend('cpu');
  const graph = smallNet(9);
  const o = { ...recipe, epochs: 1, distill: { temperature: T, alpha: 0.9, teacher: { graph } } };
  await assert.rejects(fitGraph(graph, ds.train, o, { requested: 'tfjs' }), (e) => {
    assert.ok(isAutopruneError(e) && e.code === 'BACKEND_UNAVAILABLE');
    assert.match(e.message, /^`evaluation\.finetune\.distill` trains on libtorch, not tfjs/);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
});

test('a search whose fine-tunes would distil on tfjs fails at start-up, before any trial', async () => {
  const c = resolveConfig({
    name: 'kd',
    data: { dataset: 'synthetic', validationSize: 100 },
    model: { zoo: 'plain-cnn' },
    evaluation: { finetune: { distill: {} } },
  });
  // Resolved configs refuse `run.engine.train: tfjs` with distill; a config built in code can still reach the evaluator.
  const onTfjs = { ...c, run: { ...c.run, engine: { proxy: 'auto', train: 'tfjs' } } } as ResolvedConfig;
  await assert.rejects(createEvaluator(onTfjs, { splits: undefined as never, base: null, graph: null }), (e) => {
    assert.ok(isAutopruneError(e) && e.code === 'BACKEND_UNAVAILABLE');
    assert.match(e.message, /^`evaluation\.finetune\.distill` trains on libtorch, not tfjs/);
    return true;
  });
});

let dir: string;
let cfg: ResolvedConfig;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoprune-distill-'));
  cfg = resolveConfig({
    name: 'kd',
    data: { dataset: 'synthetic', validationSize: 64, synthetic: { shape: [28, 28, 1], classes: 10, train: 256, test: 64 } },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint: join(dir, 'base', 'model.json') },
    evaluation: { calibration: { batches: 2, batchSize: 32 }, finalists: { count: 1, epochs: 1, batchesPerEpoch: 3 }, latency: { batchSize: 4, runs: 1 } },
    run: { backend: 'cpu', store: join(dir, 'unused.db'), engine: { train: 'libtorch' } },
  });
  const base = buildBaseArchitecture(cfg, { shape: [28, 28, 1], numClasses: 10 });
  await saveModel(base, join(dir, 'base'));
  base.dispose();
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

for (const kind of ['tfjs', 'graph'] as const) {
  test(`through the ${kind} evaluator (finetune and adapt stages): alpha = 0 trains exactly as no distillation, alpha = 0.9 differently`, {
    skip,
  }, async () => {
    const base = await loadModel(cfg.model.checkpoint!);
    const { groups } = analyzeModel(base);
    const graph = graphFromLayersModel(base);
    base.dispose();
    const splits = await loadSplits(cfg);
    const candidate = { channels: groups.map((g) => Math.max(1, Math.ceil(g.channels / 2))) };
    const weightsOf = async (distill: object | undefined, stage: 'finetune' | 'adapt') => {
      const c = (
        distill === undefined ? cfg : { ...cfg, evaluation: { ...cfg.evaluation, finetune: { ...cfg.evaluation.finetune, distill } } }
      ) as ResolvedConfig;
      const ev = kind === 'tfjs' ? await TfjsEvaluator.create(c, { splits }) : await GraphEvaluator.create(c, { splits, graph });
      try {
        const saveTo = join(dir, `${kind}-${stage}-${JSON.stringify(distill)}`);
        const r = await ev.evaluate({ trial: 3, candidate, stage, saveTo });
        assert.equal(r.trainEngine, 'libtorch');
        return (await loadGraph(saveTo)).nodes.flatMap((n) => ('weight' in n ? [...n.weight] : []));
      } finally {
        await ev.close();
      }
    };
    for (const stage of ['finetune', 'adapt'] as const) {
      const plain = await weightsOf(undefined, stage);
      assert.deepEqual(await weightsOf({ temperature: 4, alpha: 0 }, stage), plain, `${stage}: alpha 0`);
      assert.notDeepEqual(await weightsOf({ temperature: 4, alpha: 0.9 }, stage), plain, `${stage}: alpha 0.9`);
    }
  });
}
