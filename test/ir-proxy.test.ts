/**
 * The onnxruntime proxy on the graph path:
 * - the graph path (cut as arrays, exported from the graph) scores a candidate exactly as the old
 *   path did (tfjs-layers prune, export of the LayersModel): same accuracy (1e-6), same statistics;
 * - models without BatchNorm: every conv without a BN is unfolded into conv + BN; unfolded, the
 *   unpruned model computes the same logits; a proxy trial completes on onnxruntime and is
 *   re-calibrated (it differs from scoring the raw cut, which `unfold: off` does).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { resolveConfig } from '../src/config/index.js';
import { Rng } from '../src/core/rng.js';
import { candidateFromRatios } from '../src/core/space.js';
import { loadDataset } from '../src/data/index.js';
import type { Split } from '../src/data/types.js';
import { initBackend } from '../src/engine/backend.js';
import { openSessionCount, withSession } from '../src/engine/onnxruntime.js';
import { OnnxEvaluator, proxyBase } from '../src/evaluators/onnx.js';
import { onnxProxy, sessionAccuracy } from '../src/evaluators/onnx-proxy.js';
import { loadSplits } from '../src/evaluators/setup.js';
import { TfjsEvaluator } from '../src/evaluators/tfjs.js';
import { analyzeModel } from '../src/model/analysis.js';
import { analyzeGraph } from '../src/model/ir/analyze.js';
import { applyGraphPlan, makeGraphPlan, pruneGraph } from '../src/model/ir/cut.js';
import { graphFromLayersModel } from '../src/model/ir/from-tfjs.js';
import type { ModelGraph } from '../src/model/ir/graph.js';
import { graphToOnnx } from '../src/model/ir/to-onnx.js';
import { convsWithoutBatchNorm, unfoldedName } from '../src/model/ir/unfold.js';
import { exportOnnxGraph } from '../src/model/onnx.js';
import { encodeOnnx } from '../src/model/onnx-proto.js';
import { pruneModel } from '../src/model/prune.js';
import { buildZooModel } from '../src/model/zoo.js';
import { randomiseBatchNorm, userFixtures } from './fixtures/user-models.js';

before(async () => {
  await initBackend('wasm');
});

let data: { train: Split; validation: Split };
before(async () => {
  const ds = await loadDataset({ name: 'synthetic', synthetic: { shape: [28, 28, 1], numClasses: 10, trainCount: 600, testCount: 300, seed: 4 } });
  data = { train: ds.train, validation: ds.test };
});

const calibration = { batches: 4, batchSize: 64, seed: 2 };
const proxyOptions = { calibration, latency: { batchSize: 8, runs: 1 }, threads: 1 };

function candidate(groups: readonly { id: string; channels: number }[], seed: number, low = 0.3) {
  const rng = new Rng(seed);
  return candidateFromRatios(
    { groups: groups.map((g) => ({ ...g, layers: [] })), options: { minKeepRatio: 0.1, channelStep: 1, skip: [] } },
    groups.map(() => rng.uniform(low, 1)),
  );
}

test('graph path = old tfjs-layers path: the same proxy accuracy (1e-6) and statistics for zoo candidates', async () => {
  for (const [name, seed] of [
    ['resnet-20', 1],
    ['mobilenet-v2-tiny', 2],
  ] as const) {
    const model = buildZooModel(name, { inputShape: [28, 28, 1], numClasses: 10, width: 0.5, seed });
    randomiseBatchNorm(model, 9);
    const old = analyzeModel(model);
    const c = candidate(old.groups, 8);
    const { model: pruned } = await pruneModel(model, old, c, 'l1');
    const before = await onnxProxy(exportOnnxGraph(pruned), data, proxyOptions);
    const { graph } = pruneGraph(analyzeGraph(graphFromLayersModel(model)), c, 'l1');
    const after = await onnxProxy(graphToOnnx(graph), data, proxyOptions);
    assert.ok(Math.abs(after.accuracy - before.accuracy) <= 1e-6, `${name}: graph path ${after.accuracy} vs old path ${before.accuracy}`);
    assert.deepEqual([...after.statistics.keys()].sort(), [...before.statistics.keys()].sort());
    for (const [bn, s] of before.statistics) {
      const t = after.statistics.get(bn)!;
      s.mean.forEach((m, i) => assert.ok(Math.abs(t.mean[i] - m) <= 1e-4 * Math.sqrt(s.variance[i]) + 1e-6, `${name} ${bn} mean ${i}`));
      s.variance.forEach((v, i) => assert.ok(Math.abs(t.variance[i] - v) <= 1e-4 * v + 1e-6, `${name} ${bn} variance ${i}`));
    }
    pruned.dispose();
    model.dispose();
  }
});

/** Keras-style without BN: two convs with bias + ReLU, global average pooling, Dense. */
function twoConvModel(seed: number): tf.LayersModel {
  let k = 0;
  const init = () => ({
    kernelInitializer: tf.initializers.heNormal({ seed: seed * 100 + k++ }),
    biasInitializer: tf.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed: seed * 100 + k++ }),
  });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 12, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1', ...init() }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'c2', ...init() }),
      tf.layers.globalAveragePooling2d({ name: 'gap' }),
      tf.layers.dense({ units: 10, name: 'fc', ...init() }),
    ],
  });
}

/** SeparableConv2D without BN (a depthwise and a pointwise conv, neither followed by a BN). */
function separableModel(seed: number): tf.LayersModel {
  let k = 0;
  const init = () => tf.initializers.glorotUniform({ seed: seed * 100 + k++ });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, activation: 'relu', name: 'stem', kernelInitializer: init() }),
      tf.layers.separableConv2d({
        filters: 12,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        name: 'sep',
        depthwiseInitializer: init(),
        pointwiseInitializer: init(),
      }),
      tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
      tf.layers.flatten({ name: 'flat' }),
      tf.layers.dense({ units: 10, name: 'fc', kernelInitializer: init() }),
    ],
  });
}

async function logits(g: ModelGraph, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeOnnx(graphToOnnx(g)));
  try {
    return (await s.run({ [g.source.inputName]: new ort.Tensor('float32', x, shape) }))[g.source.outputName].data as Float32Array;
  } finally {
    await s.release();
  }
}

describe('models without BatchNorm: unfolded convs', () => {
  const bnLess = userFixtures().filter((fx) => fx.spec?.bn === 'none');
  const cases: [string, () => tf.LayersModel, readonly number[]][] = [
    ['two convs + GAP + Dense', () => twoConvModel(1), [28, 28, 1]],
    ['SeparableConv2D', () => separableModel(2), [28, 28, 1]],
    ...bnLess.map((fx, i): [string, () => tf.LayersModel, readonly number[]] => [`fixture ${fx.name}`, () => fx.build(i + 1), fx.shape]),
  ];

  test('every conv without a BN directly after it gets one; the unpruned model keeps its logits (1e-5 x max |logit|)', async () => {
    assert.ok(bnLess.length >= 3, 'the fixture family has BN-less members');
    for (const [name, build, shape] of cases) {
      const model = build();
      const g = graphFromLayersModel(model);
      const convs = g.nodes.filter((n) => n.op === 'Conv').map((n) => n.name);
      const train = shape[2] === 1 ? data.train : syntheticSplit(shape, 256);
      const base = await proxyBase(g, { unfold: 'auto', train, calibration });
      const readers = (n: string) => g.nodes.filter((m) => m.inputs.includes(n));
      const withBn = convs.filter((c) => readers(c).length === 1 && readers(c)[0].op === 'BatchNormalization');
      assert.deepEqual(
        base.unfolded,
        convs.filter((c) => !withBn.includes(c)),
        name,
      );
      assert.ok(base.unfolded.length > 0, `${name}: something to unfold`);
      const bns = base.cutFrom.graph.nodes.filter((n) => n.op === 'BatchNormalization');
      for (const c of base.unfolded) {
        const bn = bns.find((n) => n.name === unfoldedName(c));
        assert.ok(bn && bn.op === 'BatchNormalization' && bn.inputs[0] === c, `${name}: ${c} is read by its BN`);
        assert.ok(
          bn.variance.some((v) => Math.abs(v - 1) > 1e-3),
          `${name}: ${c}'s statistics are measured`,
        );
      }
      const rng = new Rng(3);
      const x = Float32Array.from({ length: 4 * shape[0] * shape[1] * shape[2] }, () => rng.uniform(0, 1));
      const want = await logits(g, x, [4, ...shape]);
      const got = await logits(base.cutFrom.graph, x, [4, ...shape]);
      const scale = Math.max(...Array.from(want, Math.abs));
      want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) <= 1e-5 * scale, `${name} logit ${i}: ${got[i]} vs ${v}`));
      // Costs and channel choice come from the original graph: the groups are the same.
      assert.deepEqual(
        base.cutFrom.groups.map((gr) => [gr.id, gr.channels]),
        base.analysis.groups.map((gr) => [gr.id, gr.channels]),
      );
      model.dispose();
    }
  });

  test('a zoo model (a BN after every conv) is not unfolded', () => {
    const model = buildZooModel('mobilenet-v2-tiny', { inputShape: [28, 28, 1], numClasses: 10, width: 0.5 });
    assert.deepEqual(convsWithoutBatchNorm(graphFromLayersModel(model)), []);
    model.dispose();
  });

  test('a pruned BN-less model is re-calibrated: every unfolded BN gets statistics and the score is not the raw cut', async () => {
    const model = twoConvModel(1);
    const g = graphFromLayersModel(model);
    const base = await proxyBase(g, { unfold: 'auto', train: data.train, calibration });
    const c = candidate(base.analysis.groups, 4, 0.2);
    const plan = makeGraphPlan(base.analysis, c, 'l1');
    const r = await onnxProxy(graphToOnnx(applyGraphPlan(base.cutFrom.graph, base.cutFrom, plan)), data, proxyOptions);
    assert.deepEqual([...r.statistics.keys()].sort(), base.unfolded.map(unfoldedName).sort());
    const off = await proxyBase(g, { unfold: 'off', train: data.train, calibration });
    assert.deepEqual(off.unfolded, []);
    const raw = await onnxProxy(graphToOnnx(applyGraphPlan(off.cutFrom.graph, off.cutFrom, plan)), data, proxyOptions);
    assert.equal(raw.statistics.size, 0, 'off: nothing to re-calibrate, the cut is scored as it is');
    const rawDirect = await withSession(encodeOnnx(graphToOnnx(applyGraphPlan(g, analyzeGraph(g), plan))), {}, (s, o) =>
      sessionAccuracy(s, o, data.validation),
    );
    assert.equal(raw.accuracy, rawDirect);
    assert.notEqual(r.accuracy, raw.accuracy, 're-calibration changes the score of this cut');
    assert.equal(openSessionCount(), 0);
    model.dispose();
  });

  test('OnnxEvaluator: a BN-less model completes proxy trials on onnxruntime, re-calibrated by default and raw with unfold off', async () => {
    const user = (unfold: 'auto' | 'off') =>
      resolveConfig({
        name: 'bnless',
        data: { dataset: 'synthetic', validationSize: 128, synthetic: { shape: [28, 28, 1], classes: 10, train: 512, test: 64 } },
        model: { zoo: 'plain-cnn' },
        evaluation: { calibration: { batches: 2, batchSize: 64, unfold }, finalists: { count: 0 }, latency: { batchSize: 4, runs: 1 } },
        run: { backend: 'wasm', workers: 'inline', store: ':memory:' },
      });
    const cfg = user('auto');
    const splits = await loadSplits(cfg);
    const model = twoConvModel(5);
    await fitBriefly(model, splits.train);
    const finetuner = () => TfjsEvaluator.create(cfg, { splits });
    const old = analyzeModel(model);
    const scores: number[][] = [];
    for (const unfold of ['auto', 'off'] as const) {
      const ev = OnnxEvaluator.create(user(unfold), { base: model, splits, finetuner });
      const row: number[] = [];
      for (let trial = 0; trial < 3; trial++) {
        const r = await ev.evaluate({ trial, candidate: candidate(old.groups, 20 + trial, 0.2), stage: 'proxy' });
        assert.ok(r.proxyAccuracy! >= 0 && r.proxyAccuracy! <= 1);
        row.push(r.proxyAccuracy!);
      }
      await ev.close();
      scores.push(row);
    }
    // The same trials scored by hand: re-calibrated after unfolding (auto), raw (off).
    const g = graphFromLayersModel(model);
    const o = { calibration: { batches: 2, batchSize: 64, seed: cfg.run.seed }, latency: { batchSize: 4, runs: 1 }, threads: 1 };
    for (const [i, unfold] of (['auto', 'off'] as const).entries()) {
      const base = await proxyBase(g, { unfold, train: splits.train, calibration: o.calibration });
      for (let trial = 0; trial < 3; trial++) {
        const plan = makeGraphPlan(base.analysis, candidate(old.groups, 20 + trial, 0.2), 'l1');
        const r = await onnxProxy(graphToOnnx(applyGraphPlan(base.cutFrom.graph, base.cutFrom, plan)), splits, o);
        assert.equal(scores[i][trial], r.accuracy, `${unfold} trial ${trial}`);
      }
    }
    assert.notDeepEqual(scores[0], scores[1], 'unfolded trials are re-calibrated, not scored raw');
    model.dispose();
  });
});

/** A few epochs of Adam, so the model's predictions carry information a cut can lose. */
async function fitBriefly(model: tf.LayersModel, train: Split): Promise<void> {
  const x = tf.tensor(train.images, [train.count, ...train.shape]);
  const y = tf.oneHot(tf.tensor1d(Array.from(train.labels), 'int32'), 10);
  model.compile({ optimizer: tf.train.adam(0.01), loss: (t: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(t, p) });
  await model.fit(x, y, { epochs: 3, batchSize: 64, shuffle: false, verbose: 0 });
  tf.dispose([x, y]);
}

function syntheticSplit(shape: readonly number[], count: number): Split {
  const rng = new Rng(9);
  const size = shape[0] * shape[1] * shape[2];
  return {
    images: Float32Array.from({ length: count * size }, () => rng.uniform(0, 1)),
    labels: Uint8Array.from({ length: count }, (_, i) => i % 5),
    count,
    shape: [shape[0], shape[1], shape[2]],
  };
}
