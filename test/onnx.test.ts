/**
 * ONNX export and the onnxruntime proxy, against tfjs as the reference:
 * - logits of the exported graph on onnxruntime = tfjs logits (1e-4) for every zoo model and a
 *   mixed "user-style" model (Flatten -> Dense, Concat, separable, pooling with `same` borders),
 *   at keep-all and at a random pruned candidate;
 * - the calibration graph's BN statistics against a float64 reference and against tfjs's adaptive BN;
 * - proxy accuracy on onnxruntime = tfjs proxy accuracy on the same candidate and batches.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { type ResolvedConfig, resolveConfig } from '../src/config/index.js';
import { Rng } from '../src/core/rng.js';
import { candidateFromRatios } from '../src/core/space.js';
import { batches } from '../src/data/batch.js';
import { loadDataset } from '../src/data/index.js';
import type { Split } from '../src/data/types.js';
import { initBackend } from '../src/engine/backend.js';
import { nchwcBlock, openSessionCount } from '../src/engine/onnxruntime.js';
import { OnnxEvaluator } from '../src/evaluators/onnx.js';
import { onnxProxy } from '../src/evaluators/onnx-proxy.js';
import { buildBaseArchitecture, loadSplits, type Splits } from '../src/evaluators/setup.js';
import { TfjsEvaluator } from '../src/evaluators/tfjs.js';
import { accuracy, recalibrateBatchNorm } from '../src/evaluators/train.js';
import { latencyEngineOf } from '../src/evaluators/types.js';
import { analyzeModel } from '../src/model/analysis.js';
import { saveModel } from '../src/model/io.js';
import { exportOnnxGraph, type OnnxGraph, samePads } from '../src/model/onnx.js';
import { calibrationGraph, foldBatchNorm, statOutputs } from '../src/model/onnx-bn.js';
import { padChannels } from '../src/model/onnx-pad.js';
import { decodeOnnx, encodeOnnx } from '../src/model/onnx-proto.js';
import { pruneModel } from '../src/model/prune.js';
import { buildZooModel, ZOO_NAMES } from '../src/model/zoo.js';
import { oneLatencyEngine } from '../src/report/pick.js';
import { openStore } from '../src/store/index.js';
import type { FinalRecord, TrialRecord } from '../src/store/types.js';
import { userFixtures } from './fixtures/user-models.js';
import { cli } from './helpers.js';

before(async () => {
  await initBackend('wasm');
});

/** A full garbage collection, without needing `node --expose-gc`. */
function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Trained-looking BN layers (statistics far from 0/1), so that a wrong BN export shows in the logits. */
function randomizeBatchNorm(model: tf.LayersModel, seed: number): void {
  const rng = new Rng(seed);
  for (const l of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const ws = l.getWeights();
    const ranges: [number, number][] = [
      [0.5, 1.5],
      [-0.5, 0.5],
      [-0.5, 0.5],
      [0.5, 2],
    ].slice(4 - ws.length) as [number, number][];
    l.setWeights(
      ws.map((w, i) =>
        tf.tensor(
          Array.from({ length: w.size }, () => rng.uniform(...ranges[i])),
          w.shape,
        ),
      ),
    );
  }
}

async function onnxLogits(model: tf.LayersModel, x: tf.Tensor4D): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeOnnx(exportOnnxGraph(model)));
  try {
    const out = await s.run({ input: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
    return out.output.data as Float32Array;
  } finally {
    await s.release();
  }
}

async function assertSameLogits(model: tf.LayersModel, seed: number, tol = 1e-4): Promise<void> {
  const [h, w, c] = model.inputs[0].shape.slice(1) as number[];
  const x = tf.randomUniform([5, h, w, c], 0, 1, 'float32', seed) as tf.Tensor4D;
  const want = (model.predict(x) as tf.Tensor).dataSync();
  const got = await onnxLogits(model, x);
  x.dispose();
  assert.equal(got.length, want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst <= tol, `max |onnx - tfjs| = ${worst} > ${tol}`);
}

/**
 * A model written the way users write theirs: a 27x27 input (odd sizes make `same` padding
 * asymmetric), ZeroPadding2D, strided and depthwise convs, SeparableConv2D with a depth multiplier,
 * max and average pooling with `same` borders, a Concatenate, activations in layers and as layers,
 * a BN after a Dense, Flatten -> Dense (the NHWC feature order), Dropout and a softmax output.
 */
function userStyleModel(): tf.LayersModel {
  const seed = (() => {
    let s = 7;
    return () => tf.initializers.glorotUniform({ seed: s++ });
  })();
  const input = tf.input({ shape: [27, 27, 3], name: 'image' });
  let x = tf.layers
    .zeroPadding2d({
      padding: [
        [1, 0],
        [2, 1],
      ],
      name: 'pad',
    })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers
    .conv2d({ filters: 12, kernelSize: 3, strides: 2, padding: 'same', name: 'c1', activation: 'relu', kernelInitializer: seed() })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn1' }).apply(x) as tf.SymbolicTensor;
  const a = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'dw', depthwiseInitializer: seed() }).apply(x) as tf.SymbolicTensor;
  const a2 = tf.layers.reLU({ maxValue: 6, name: 'relu6' }).apply(tf.layers.batchNormalization({ name: 'dw.bn' }).apply(a)) as tf.SymbolicTensor;
  const b = tf.layers
    .separableConv2d({
      filters: 10,
      kernelSize: 3,
      depthMultiplier: 2,
      padding: 'same',
      name: 'sep',
      depthwiseInitializer: seed(),
      pointwiseInitializer: seed(),
    })
    .apply(x) as tf.SymbolicTensor;
  const b2 = tf.layers.activation({ activation: 'tanh', name: 'sep.tanh' }).apply(b) as tf.SymbolicTensor;
  x = tf.layers.concatenate({ name: 'cat' }).apply([a2, b2]) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'mp' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 16, kernelSize: 1, name: 'c2', kernelInitializer: seed() }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.leakyReLU({ alpha: 0.1, name: 'lrelu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.averagePooling2d({ poolSize: 2, strides: 2, padding: 'same', name: 'ap' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ activation: 'elu', name: 'elu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flat' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 20, name: 'fc1', activation: 'sigmoid', kernelInitializer: seed() }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'fc1.bn' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.5, name: 'drop' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 7, name: 'fc2', activation: 'softmax', kernelInitializer: seed() }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

/** A random candidate (seeded) of a model, with its keep ratios in [0.3, 1]. */
function randomCandidate(model: tf.LayersModel, seed: number) {
  const a = analyzeModel(model);
  const rng = new Rng(seed);
  const space = { groups: a.groups, options: { minKeepRatio: 0.1, channelStep: 1, skip: [] } };
  return {
    a,
    c: candidateFromRatios(
      space,
      a.groups.map(() => rng.uniform(0.3, 1)),
    ),
  };
}

describe('ONNX export: onnxruntime logits = tfjs logits (1e-4)', () => {
  const models: [string, () => tf.LayersModel][] = [
    ...ZOO_NAMES.map((n): [string, () => tf.LayersModel] => [n, () => buildZooModel(n, { inputShape: [28, 28, 1], numClasses: 10, width: 0.5, seed: 1 })]),
    ['user-style (Flatten -> Dense, Concat, separable, same pooling)', userStyleModel],
  ];
  for (const [name, build] of models) {
    test(`${name}: keep-all and a random pruned candidate`, async () => {
      const model = build();
      randomizeBatchNorm(model, 3);
      await assertSameLogits(model, 11);
      const { a, c } = randomCandidate(model, 5);
      const { model: pruned } = await pruneModel(model, a, c, 'l1');
      assert.ok(
        c.channels.some((n, i) => n < a.groups[i].channels),
        'the candidate prunes something',
      );
      await assertSameLogits(pruned, 12);
      pruned.dispose();
      model.dispose();
    });
  }

  // The user-style fixture family (test/fixtures/user-models.ts): Flatten -> Dense and
  // Concatenate are where NHWC vs NCHW order would show.
  for (const [i, fx] of userFixtures().entries()) {
    test(`fixture ${fx.name}: keep-all and a random pruned candidate`, async () => {
      const model = fx.build(i + 1);
      await assertSameLogits(model, 13);
      const { a, c } = randomCandidate(model, 100 + i);
      const { model: pruned } = await pruneModel(model, a, c, 'l1');
      await assertSameLogits(pruned, 14);
      pruned.dispose();
      model.dispose();
    });
  }

  // Channel padding (onnx-pad.ts) is for speed only: the padded graph must compute the same logits.
  const padCases: [string, () => tf.LayersModel][] = [
    ...ZOO_NAMES.map((n): [string, () => tf.LayersModel] => [n, () => buildZooModel(n, { inputShape: [28, 28, 1], numClasses: 10, width: 1, seed: 1 })]),
    ['user-style', userStyleModel],
    ...userFixtures().map((fx, i): [string, () => tf.LayersModel] => [`fixture ${fx.name}`, () => fx.build(i + 1)]),
  ];
  test('channel padding to the NCHWc block (8 and 16) keeps every logit (1e-5) of zoo models, the user-style model and every fixture', async () => {
    let paddedConvs = 0;
    for (const [i, [name, build]] of padCases.entries()) {
      const model = build();
      randomizeBatchNorm(model, 3);
      const { a, c } = randomCandidate(model, 40 + i);
      const { model: pruned } = await pruneModel(model, a, c, 'l1');
      const g = exportOnnxGraph(pruned);
      const [h, w, ch] = pruned.inputs[0].shape.slice(1) as number[];
      const x = new ort.Tensor(
        'float32',
        Float32Array.from({ length: 3 * h * w * ch }, (_, k) => ((k * 7) % 19) / 19),
        [3, h, w, ch],
      );
      const run = async (graph: OnnxGraph) => {
        const s = await ort.InferenceSession.create(encodeOnnx(graph));
        const y = (await s.run({ input: x })).output.data as Float32Array;
        await s.release();
        return y;
      };
      const want = await run(g);
      for (const block of [8, 16]) {
        const p = padChannels(g, block);
        const widths = new Map(p.initializers.map((t) => [t.name, t.dims]));
        for (const n of p.nodes.filter((n) => n.op === 'Conv')) {
          const out = widths.get(n.inputs[1])![0];
          assert.ok(
            out < block || out % block === 0 || (n.attrs?.group && 'i' in n.attrs.group && n.attrs.group.i > 1),
            `${name}: conv ${n.name} has ${out} outputs at block ${block}`,
          );
        }
        const dims = new Map(g.initializers.map((t) => [t.name, t.dims]));
        const unaligned = g.nodes.some(
          (n) =>
            n.op === 'Conv' &&
            !(n.attrs?.group && 'i' in n.attrs.group && n.attrs.group.i > 1) &&
            dims.get(n.inputs[1])![0] >= block &&
            dims.get(n.inputs[1])![0] % block !== 0,
        );
        assert.equal(p !== g, unaligned, `${name}, block ${block}: padded iff some plain conv has an unaligned width >= the block`);
        paddedConvs += p === g ? 0 : 1;
        const got = await run(p);
        want.forEach((v, k) => assert.ok(Math.abs(v - got[k]) <= 1e-5 * Math.max(1, Math.abs(v)), `${name}, block ${block}, logit ${k}: ${got[k]} vs ${v}`));
      }
      pruned.dispose();
      model.dispose();
    }
    assert.ok(paddedConvs >= 2 * ZOO_NAMES.length, `only ${paddedConvs} padded graphs`);
  });

  test('the NCHWc block comes from the CPU flags: 16 with AVX-512F, 8 with AVX2, else no padding', () => {
    assert.equal(
      nchwcBlock(() => 'processor: 0\nflags\t\t: fpu sse avx avx2 avx512f avx512bw\n'),
      16,
    );
    assert.equal(
      nchwcBlock(() => 'flags : fpu sse avx avx2 fma\n'),
      8,
    );
    assert.equal(
      nchwcBlock(() => 'flags : fpu sse sse2\n'),
      1,
    );
    assert.equal(
      nchwcBlock(() => {
        throw new Error('no /proc');
      }),
      1,
    );
  });

  test('BN folded into the convs gives the same logits as the unfolded graph', async () => {
    const model = buildZooModel('mobilenet-v2-tiny', { inputShape: [28, 28, 1], numClasses: 10, width: 0.5, seed: 2 });
    randomizeBatchNorm(model, 4);
    const g = exportOnnxGraph(model);
    const folded = foldBatchNorm(g);
    assert.equal(folded.nodes.filter((n) => n.op === 'BatchNormalization').length, 0);
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 3 * 784 }, (_, i) => (i % 17) / 17),
      [3, 28, 28, 1],
    );
    const run = async (bytes: Uint8Array) => {
      const s = await ort.InferenceSession.create(bytes);
      const y = (await s.run({ input: x })).output.data as Float32Array;
      await s.release();
      return y;
    };
    const [y0, y1] = [await run(encodeOnnx(g)), await run(encodeOnnx(folded))];
    y0.forEach((v, i) => assert.ok(Math.abs(v - y1[i]) <= 1e-4, `logit ${i}: ${v} vs ${y1[i]}`));
    model.dispose();
  });

  test('the encoded file is a ModelProto with the schema fields onnxruntime needs', () => {
    const model = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25 });
    const m = decodeOnnx(encodeOnnx(exportOnnxGraph(model))) as {
      ir_version: number;
      opset_import: { version: number }[];
      graph: { input: { name: string }[]; output: { name: string }[]; node: { op_type: string }[] };
    };
    assert.equal(m.ir_version, 8);
    assert.equal(m.opset_import[0].version, 13);
    assert.equal(
      (decodeOnnx(encodeOnnx(calibrationGraph(exportOnnxGraph(model)))) as { opset_import: { version: number }[] }).opset_import[0].version,
      15,
      'training-mode BN needs opset 15',
    );
    assert.deepEqual([m.graph.input[0].name, m.graph.output[0].name], ['input', 'output']);
    assert.equal(m.graph.node[0].op_type, 'Transpose');
    model.dispose();
  });

  test('`same` padding: TF puts the odd pixel at the end', () => {
    assert.deepEqual(samePads(28, 3, 1), [1, 1]);
    assert.deepEqual(samePads(28, 3, 2), [0, 1]);
    assert.deepEqual(samePads(27, 3, 2), [1, 1]);
    assert.deepEqual(samePads(28, 1, 2), [0, 0]);
    assert.deepEqual(samePads(7, 2, 2), [0, 1]);
  });
});

describe('adaptive BN on onnxruntime', () => {
  let data: { train: Split; validation: Split };
  before(async () => {
    const ds = await loadDataset({ name: 'synthetic', synthetic: { shape: [28, 28, 1], numClasses: 10, trainCount: 600, testCount: 300, seed: 4 } });
    data = { train: ds.train, validation: ds.test };
  });

  test('calibration statistics = a float64 reference (1e-4 relative) for the first BN', async () => {
    const model = buildZooModel('resnet-20', { inputShape: [28, 28, 1], numClasses: 10, width: 0.5, seed: 3 });
    const batch = batches(data.train, 64, { shuffle: new Rng(0), maxBatches: 1 }).next().value!;
    const x = tf.tensor4d(batch.images, [batch.count, 28, 28, 1]);
    const y = model.getLayer('stem.conv').apply(x) as tf.Tensor;
    const yd = y.dataSync();
    const c = y.shape[3]!;
    const n = yd.length / c;
    const mean = new Float64Array(c);
    const variance = new Float64Array(c);
    yd.forEach((v, i) => (mean[i % c] += v / n));
    yd.forEach((v, i) => (variance[i % c] += (v - mean[i % c]) ** 2 / n));
    tf.dispose([x, y]);
    const s = await ort.InferenceSession.create(encodeOnnx(calibrationGraph(exportOnnxGraph(model))));
    const o = statOutputs('stem.bn');
    const out = await s.run({ input: new ort.Tensor('float32', batch.images, [batch.count, 28, 28, 1]) }, [o.mean, o.variance]);
    await s.release();
    const m = out[o.mean].data as Float32Array;
    const v = out[o.variance].data as Float32Array;
    for (let i = 0; i < c; i++) {
      assert.ok(Math.abs(m[i] - mean[i]) <= 1e-4 * Math.sqrt(variance[i]), `mean ${i}: ${m[i]} vs ${mean[i]}`);
      assert.ok(Math.abs(v[i] - variance[i]) <= 1e-4 * variance[i], `variance ${i}: ${v[i]} vs ${variance[i]}`);
    }
    model.dispose();
  });

  test('proxy on onnxruntime = tfjs proxy on the same pruned candidate and batches (accuracy 0.5 pt, statistics)', async () => {
    const model = buildZooModel('resnet-20', { inputShape: [28, 28, 1], numClasses: 10, width: 0.5, seed: 3 });
    randomizeBatchNorm(model, 9);
    const { a, c } = randomCandidate(model, 8);
    const { model: pruned } = await pruneModel(model, a, c, 'l1');
    const calibration = { batches: 4, batchSize: 64, seed: 2 };
    const graph = exportOnnxGraph(pruned);
    const r = await onnxProxy(graph, data, { calibration, latency: { batchSize: 8, runs: 1 }, threads: 1 });
    // The same proxy on graphs padded to 8 and 16 channels: the same statistics and accuracy.
    for (const channelBlock of [8, 16]) {
      const p = await onnxProxy(graph, data, { calibration, latency: { batchSize: 8, runs: 1 }, threads: 1, channelBlock });
      assert.equal(p.accuracy, r.accuracy, `block ${channelBlock}`);
      for (const [name, s] of r.statistics) {
        const q = p.statistics.get(name)!;
        assert.equal(q.mean.length, s.mean.length, `${name}: statistics for the model's own channels only`);
        s.mean.forEach((m, i) =>
          assert.ok(
            Math.abs(q.mean[i] - m) <= 1e-5 * Math.sqrt(s.variance[i]) && Math.abs(q.variance[i] - s.variance[i]) <= 1e-5 * s.variance[i],
            `${name} channel ${i}, block ${channelBlock}`,
          ),
        );
      }
    }
    recalibrateBatchNorm(pruned, data.train, calibration);
    const want = accuracy(pruned, data.validation);
    assert.ok(Math.abs(r.accuracy - want) <= 0.005, `onnxruntime ${r.accuracy} vs tfjs ${want}`);
    assert.ok(r.latencyMs > 0);
    // tfjs-wasm's own float32 moments are ~2e-4 off a float64 reference (measured); onnxruntime's are
    // within 1e-4 of it (test above), so the two agree to a few 1e-4.
    let worstMean = 0;
    let worstVar = 0;
    for (const l of pruned.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
      const ws = l.getWeights();
      const [mean, variance] = [ws[ws.length - 2].dataSync(), ws[ws.length - 1].dataSync()];
      const got = r.statistics.get(l.name)!;
      for (let i = 0; i < mean.length; i++) {
        worstMean = Math.max(worstMean, Math.abs(got.mean[i] - mean[i]) / Math.sqrt(variance[i]));
        worstVar = Math.max(worstVar, Math.abs(got.variance[i] - variance[i]) / variance[i]);
      }
    }
    assert.ok(worstMean <= 1e-3 && worstVar <= 1e-3, `worst mean error ${worstMean} sd, variance ${worstVar} relative`);
    assert.equal(openSessionCount(), 0);
    pruned.dispose();
    model.dispose();
  });
});

describe('OnnxEvaluator', () => {
  let dir: string;
  let cfg: ResolvedConfig;
  let splits: Splits;
  let base: tf.LayersModel;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'autoprune-onnx-'));
    cfg = resolveConfig({
      name: 'ort',
      data: { dataset: 'synthetic', validationSize: 64, synthetic: { shape: [28, 28, 1], classes: 10, train: 256, test: 64 } },
      model: { zoo: 'resnet-20', width: 0.25, checkpoint: join(dir, 'base', 'model.json') },
      evaluation: { importance: 'random', calibration: { batches: 2, batchSize: 32 }, finalists: { count: 1, epochs: 0 }, latency: { batchSize: 4, runs: 1 } },
      run: { backend: 'wasm', store: join(dir, 'unused.db'), workers: 'inline' },
    });
    splits = await loadSplits(cfg);
    base = buildBaseArchitecture(cfg, splits);
    randomizeBatchNorm(base, 21);
    await saveModel(base, join(dir, 'base'));
  });
  after(() => base.dispose());

  const evaluator = () => OnnxEvaluator.create(cfg, { base, splits, finetuner: () => TfjsEvaluator.create(cfg, { splits }) });
  const candidates = (seed: number) => {
    const a = analyzeModel(base);
    const space = { groups: a.groups, options: { minKeepRatio: 0.25, channelStep: 1, skip: [] } };
    const rng = new Rng(seed);
    return {
      a,
      next: () =>
        candidateFromRatios(
          space,
          space.groups.map(() => rng.uniform(0.3, 1)),
        ),
    };
  };

  test('same trial as the tfjs evaluator: same cost, proxy accuracy within 0.5 pt; latency recorded as onnxruntime', async () => {
    const ort = evaluator();
    const ref = await TfjsEvaluator.create(cfg, { splits });
    const { next } = candidates(1);
    for (let trial = 0; trial < 3; trial++) {
      const c = next();
      const [a, b] = [await ort.evaluate({ trial, candidate: c, stage: 'proxy' }), await ref.evaluate({ trial, candidate: c, stage: 'proxy' })];
      assert.deepEqual(a.cost, b.cost);
      assert.ok(Math.abs(a.proxyAccuracy! - b.proxyAccuracy!) <= 0.005, `trial ${trial}: onnxruntime ${a.proxyAccuracy} vs tfjs ${b.proxyAccuracy}`);
      assert.equal(latencyEngineOf(a.timings), 'onnxruntime');
      assert.equal(latencyEngineOf(b.timings), 'tfjs');
      assert.ok(a.latencyMs > 0);
    }
    const fin = await ort.evaluate({ trial: 0, candidate: next(), stage: 'finetune' });
    assert.ok(fin.finalAccuracy! >= 0 && fin.finalAccuracy! <= 1, 'finetune goes to the tfjs evaluator');
    await ort.close();
    await ref.close();
  });

  test('capacity is run.concurrency: the finalists fine-tune that many at once on the worker pool', () => {
    for (const concurrency of [1, 2, 3]) {
      const ev = OnnxEvaluator.create({ ...cfg, run: { ...cfg.run, concurrency } }, { base, splits, finetuner: () => TfjsEvaluator.create(cfg, { splits }) });
      assert.equal(ev.capacity, concurrency);
    }
  });

  test("a proxy of a parent trial's adapted weights (NetAdapt's chain) is cut from those weights, as on tfjs", async () => {
    const ort = evaluator();
    const ref = await TfjsEvaluator.create(cfg, { splits });
    const { a, next } = candidates(3);
    // The parent: a pruned base with its own BN scales, saved where a worker would find it.
    const { model: parent } = await pruneModel(base, a, next(), 'l1');
    randomizeBatchNorm(parent, 77);
    const modelDir = join(dir, 'parent');
    await saveModel(parent, modelDir);
    const pa = analyzeModel(parent);
    const space = { groups: pa.groups, options: { minKeepRatio: 0.25, channelStep: 1, skip: [] } };
    const rng = new Rng(5);
    for (let trial = 10; trial < 13; trial++) {
      const c = candidateFromRatios(
        space,
        space.groups.map(() => rng.uniform(0.4, 1)),
      );
      const req = { trial, candidate: c, stage: 'proxy' as const, parent: { trial: 0, modelDir } };
      const [x, y] = [await ort.evaluate(req), await ref.evaluate(req)];
      assert.deepEqual(x.cost, y.cost);
      assert.ok(Math.abs(x.proxyAccuracy! - y.proxyAccuracy!) <= 0.005, `trial ${trial}: onnxruntime ${x.proxyAccuracy} vs tfjs ${y.proxyAccuracy}`);
    }
    await assert.rejects(
      ort.evaluate({ trial: 20, candidate: next(), stage: 'proxy', parent: { trial: 0, modelDir: join(dir, 'no-such-parent') } }),
      /no-such-parent/,
    );
    parent.dispose();
    await ort.close();
    await ref.close();
  });

  test('sessions released and memory flat over 200 proxy evaluations', async () => {
    const ev = evaluator();
    const { next } = candidates(2);
    const run = async (from: number, n: number) => {
      for (let i = from; i < from + n; i++) await ev.evaluate({ trial: i, candidate: next(), stage: 'proxy' });
    };
    await run(0, 20); // warm-up: onnxruntime's allocators and tfjs' wasm heap reach their working size
    gc();
    const m0 = process.memoryUsage();
    const tensors0 = tf.memory().numTensors;
    await run(20, 180);
    gc();
    const m1 = process.memoryUsage();
    assert.equal(openSessionCount(), 0);
    assert.equal(tf.memory().numTensors, tensors0);
    // Measured here over 270 evaluations: rss flat within ±15 MiB, the JS heap +7 MiB (~25 KB per evaluation, source not traced).
    const mib = (k: 'rss' | 'heapUsed') => (m1[k] - m0[k]) / 2 ** 20;
    assert.ok(mib('rss') < 40 && mib('heapUsed') < 16, `over 180 evaluations rss grew ${mib('rss').toFixed(1)} MiB, heap ${mib('heapUsed').toFixed(1)} MiB`);
    await ev.close();
  });
});

test('pick --max-latency never mixes engines: trials keep the latency of the chosen engine only', () => {
  const trial = (number: number, timings: Record<string, number>) =>
    ({ number, state: 'complete', metrics: { latencyMs: 1, timings } }) as unknown as TrialRecord;
  const trials = [
    trial(0, { 'latency@onnxruntime': 0.1 }),
    trial(1, { 'latency@onnxruntime': 0.1 }),
    trial(2, { 'latency@tfjs': 0.2 }),
    trial(3, { latency: 0.2 }),
  ];
  const finals = [{ trial: 0, latencyMs: 3 }] as unknown as FinalRecord[];
  const auto = oneLatencyEngine(trials, finals);
  assert.equal(auto.engine, 'onnxruntime');
  assert.deepEqual(
    auto.trials.map((t) => t.number),
    [0, 1],
  );
  assert.equal(auto.finals[0].latencyMs, null, "a finalist's tfjs latency does not stand in for onnxruntime's");
  const tfjs = oneLatencyEngine(trials, finals, 'tfjs');
  assert.deepEqual(
    tfjs.trials.map((t) => t.number),
    [2, 3],
    'a plain `latency` key is from before engines: tfjs',
  );
  assert.equal(tfjs.finals[0].latencyMs, 3);
});

test('a search runs its proxy on onnxruntime by default and on tfjs with --engine tfjs; same candidates, one engine each', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'autoprune-engine-'));
  const checkpoint = join(dir, 'base', 'model.json');
  const user = (name: string) => ({
    name,
    data: { dataset: 'synthetic', validationSize: 64, synthetic: { shape: [28, 28, 1], classes: 10, train: 256, test: 64 } },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint },
    search: { targets: [0.5], budget: { trials: 3 } },
    evaluation: { calibration: { batches: 2, batchSize: 32 }, finalists: { count: 0 }, latency: { batchSize: 4, runs: 1 } },
    run: { workers: 'inline', store: join(dir, 'studies.db') },
  });
  const base = buildBaseArchitecture(resolveConfig(user('x')), { shape: [28, 28, 1], numClasses: 10 });
  await saveModel(base, join(dir, 'base'));
  base.dispose();
  const path = async (name: string) => {
    const p = join(dir, `${name}.json`);
    await writeFile(p, JSON.stringify(user(name)));
    return p;
  };
  const auto = await cli('search', await path('auto'));
  assert.equal(auto.code, 0, auto.stderr);
  assert.match(auto.stdout, /proxy engine: onnxruntime/);
  const tfjs = await cli('search', await path('tfjs'), '--engine', 'tfjs');
  assert.equal(tfjs.code, 0, tfjs.stderr);
  assert.match(tfjs.stdout, /proxy engine: tfjs/);
  const store = await openStore(join(dir, 'studies.db'));
  const [a, b] = [await store.listTrials('auto'), await store.listTrials('tfjs')];
  const studies = [await store.getStudy('auto'), await store.getStudy('tfjs')];
  await store.close();
  // The base model is scored on the proxy's engine; both engines give the same top-1 (64 images each).
  assert.deepEqual(
    studies.map((s) => [s!.baseProxyAccuracy, s!.baseTestAccuracy]),
    Array(2).fill([studies[1]!.baseProxyAccuracy, studies[1]!.baseTestAccuracy]),
  );
  assert.equal(a.length, 3);
  assert.deepEqual(
    a.map((t) => t.candidate),
    b.map((t) => t.candidate),
  );
  assert.deepEqual(
    a.map((t) => latencyEngineOf(t.metrics.timings)),
    ['onnxruntime', 'onnxruntime', 'onnxruntime'],
  );
  assert.deepEqual(
    b.map((t) => latencyEngineOf(t.metrics.timings)),
    ['tfjs', 'tfjs', 'tfjs'],
  );
  a.forEach((t, i) =>
    assert.ok(
      Math.abs(t.metrics.proxyAccuracy! - b[i].metrics.proxyAccuracy!) <= 0.005,
      `trial ${i}: ${t.metrics.proxyAccuracy} vs ${b[i].metrics.proxyAccuracy}`,
    ),
  );
});
