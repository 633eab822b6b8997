/**
 * The libtorch engine against tfjs (`cpu`, the reference implementation) and against itself in
 * float64: same weights and batch -> same loss, gradients, optimizer steps and BN moving statistics;
 * float32 gradients within 1e-4 of float64 ones, whose backward is checked by finite differences;
 * the trainer reaches tfjs's accuracy; tensor handles do not leak; `autoprune train` resumes after
 * a kill. Tests that need the binding skip with the reason when it is not built (`bash
 * scripts/setup.sh` builds it).
 */

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/core/rng.js';
import { makeSynthetic } from '../src/data/synthetic.js';
import { toTensors } from '../src/data/tensors.js';
import type { Split } from '../src/data/types.js';
import { type TorchFloatDtype, torchStatus, torchThreads } from '../src/engine/torch.js';
import { augment, cropPadding, isDecayed, learningRateAt, stepsPerEpoch, type TrainOptions } from '../src/evaluators/recipe.js';
import { TensorScope, TorchModel } from '../src/evaluators/torch-model.js';
import { ADAM_EPSILON, accuracy, lossFn, train } from '../src/evaluators/train.js';
import { accuracyTorch, makeTorchOptimizer, torchLoss, torchStep, trainTorch } from '../src/evaluators/train-torch.js';
import { buildZooModel, ZOO_NAMES } from '../src/model/zoo.js';
import { cliSpawn, ROOT, waitFor } from './helpers.js';

const status = torchStatus();
const skip = status.loaded || process.env.CI === 'true' ? false : `libtorch binding not available: ${status.reason}`;
const torch = status.loaded ? status.binding : (undefined as never);
if (status.loaded) torch.setThreads(1);

/**
 * Random images and labels. Random, not balanced, labels: with balanced ones and the near-uniform
 * predictions of a fresh model, the gradients of the classifier's bias and of a BN beta before
 * global pooling are sums over the batch of (p - y) that cancel to ~1e-3 of the other weights'
 * gradients, and float32 then misses them by up to 3.4e-4 of their own norm (measured against
 * float64, any float32 engine): a property of the data, not of a layer.
 */
function batchOf(shape: [number, number, number], n: number, classes: number, seed: number): Split {
  const rng = new Rng(seed);
  const images = new Float32Array(n * shape[0] * shape[1] * shape[2]).map(() => rng.next());
  const labels = Uint8Array.from({ length: n }, () => rng.int(classes));
  return { images, labels, count: n, shape };
}

/** ||a - b|| / ||b||. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-30);
}

/** tfjs gradients of the mean cross entropy, by the variables' original names. */
function tfjsGradients(model: tf.LayersModel, batch: Split, classes: number, training: boolean): { loss: number; grads: Map<string, Float32Array> } {
  let out: { loss: number; grads: Map<string, Float32Array> } | undefined;
  tf.tidy(() => {
    const { xs, ys } = toTensors(batch, classes);
    const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const { value, grads } = tf.variableGrads(() => lossFn(model, xs, ys, training), vars);
    const byName = new Map(
      model.trainableWeights.map((w) => [w.originalName, grads[(w as unknown as { val: tf.Variable }).val.name].dataSync() as Float32Array]),
    );
    out = { loss: value.dataSync()[0], grads: byName };
  });
  return out!;
}

type Gradients = Map<string, ArrayLike<number>>;

/** Loss and gradients through the binding, with the model's weights in `dtype`. */
function torchGradients(model: tf.LayersModel, batch: Split, training: boolean, dtype: TorchFloatDtype): { loss: number; grads: Gradients } {
  const tm = TorchModel.fromLayersModel(torch, model, { dtype });
  const s = new TensorScope(torch);
  try {
    const loss = torchLoss(s, tm, batch, training);
    loss.backward();
    return { loss: loss.item(), grads: new Map([...tm.gradients()].map(([k, g]) => [k, g!])) };
  } finally {
    s.dispose();
    tm.dispose();
  }
}

function norm(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) n += a[i] ** 2;
  return Math.sqrt(n);
}

/**
 * How far `got` is from the float64 reference `ref`: the largest ||got - ref|| / ||ref|| over the
 * weights, and the weight it was at. A weight whose reference gradient is below 1e-9 of the whole
 * gradient's norm is zero in exact arithmetic (e.g. the beta of a BN whose output reaches the loss
 * only through training-mode BNs, which remove any per-channel shift); its float32 gradient is pure
 * rounding, so it is measured against the whole gradient's norm instead (`zeroNoise`). `exact`
 * (default `ref`) is the float64 gradient that says which weights those are.
 */
function distance(got: Gradients, ref: Gradients, exact = ref): { worst: number; at: string; zeroNoise: number } {
  const total = Math.sqrt([...exact.values()].reduce((a, g) => a + norm(g) ** 2, 0));
  let worst = 0;
  let at = '';
  let zeroNoise = 0;
  assert.deepEqual([...got.keys()].sort(), [...ref.keys()].sort(), 'trainable weights');
  for (const [name, r] of ref) {
    const g = got.get(name)!;
    if (norm(exact.get(name)!) <= 1e-9 * total) {
      zeroNoise = Math.max(zeroNoise, norm(g) / total);
      continue;
    }
    const e = relErr(g, r);
    if (e > worst) [worst, at] = [e, name];
  }
  return { worst, at, zeroNoise };
}

function assertWithin(d: ReturnType<typeof distance>, tol: number, what: string): void {
  assert.ok(d.worst <= tol, `${what}: gradient of ${d.at} is ${d.worst.toExponential(2)} of its norm away`);
  assert.ok(d.zeroNoise <= tol, `${what}: a gradient that is zero in exact arithmetic is ${d.zeroNoise.toExponential(2)} of the whole gradient's norm`);
}

const fmt = (d: ReturnType<typeof distance>) => `${d.worst.toExponential(1)} (${d.at}; exact-zero gradients ${d.zeroNoise.toExponential(1)} of the total)`;

function assertSameGradients(model: tf.LayersModel, batch: Split, classes: number, training: boolean, what: string): void {
  const ref = tfjsGradients(model, batch, classes, training);
  const tm = TorchModel.fromLayersModel(torch, model);
  const s = new TensorScope(torch);
  try {
    const loss = torchLoss(s, tm, batch, training);
    loss.backward();
    assert.ok(Math.abs(loss.item() - ref.loss) <= 1e-5 * Math.max(1, Math.abs(ref.loss)), `${what}: loss ${loss.item()} vs tfjs ${ref.loss}`);
    const grads = tm.gradients();
    assert.deepEqual([...grads.keys()].sort(), [...ref.grads.keys()].sort(), `${what}: trainable weights`);
    for (const [name, g] of grads) {
      const e = relErr(g!, ref.grads.get(name)!);
      assert.ok(e <= 1e-4, `${what}: gradient of ${name} differs from tfjs by ${e.toExponential(2)} of its norm`);
    }
  } finally {
    s.dispose();
    tm.dispose();
  }
}

/** One small model per layer kind of SUPPORTED_LAYERS (and the tfjs options that change the math). */
const LAYER_CASES: Record<string, (x: tf.SymbolicTensor) => tf.SymbolicTensor> = {
  'Conv2D same stride 2 (odd padding at the bottom/right), bias, relu': (x) =>
    tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }).apply(x) as tf.SymbolicTensor,
  'Conv2D valid 2x3 kernel, no bias': (x) =>
    tf.layers.conv2d({ filters: 5, kernelSize: [2, 3], padding: 'valid', useBias: false }).apply(x) as tf.SymbolicTensor,
  'DepthwiseConv2D multiplier 2, stride 2 same': (x) =>
    tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same' }).apply(x) as tf.SymbolicTensor,
  'SeparableConv2D multiplier 2, bias, tanh': (x) =>
    tf.layers.separableConv2d({ filters: 4, kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'tanh' }).apply(x) as tf.SymbolicTensor,
  // No conv bias: BN removes it, so its gradient is 0 in exact arithmetic and rounding noise on either engine.
  'BatchNormalization (training: batch statistics)': (x) =>
    tf.layers.batchNormalization({ momentum: 0.9 }).apply(tf.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false }).apply(x)) as tf.SymbolicTensor,
  'Add and Concatenate': (x) => {
    const a = tf.layers.conv2d({ filters: 3, kernelSize: 1 }).apply(x) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
    const sum = tf.layers.add().apply([a, b]) as tf.SymbolicTensor;
    return tf.layers.concatenate().apply([sum, a]) as tf.SymbolicTensor;
  },
  // AveragePooling2D 'valid' only: tfjs's AvgPoolGrad divides by the whole window at 'same'
  // borders, where its forward pass averages the real pixels only, so its gradient there is not a
  // reference (the 'same' forward is compared in its own test below).
  'MaxPooling2D same 3/2 and AveragePooling2D valid 2/1': (x) => {
    const c = tf.layers.conv2d({ filters: 3, kernelSize: 1 }).apply(x) as tf.SymbolicTensor;
    const m = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(c) as tf.SymbolicTensor;
    return tf.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: 'valid' }).apply(m) as tf.SymbolicTensor;
  },
  'MaxPooling2D valid, ZeroPadding2D asymmetric': (x) => {
    const c = tf.layers.conv2d({ filters: 3, kernelSize: 1 }).apply(x) as tf.SymbolicTensor;
    const p = tf.layers
      .zeroPadding2d({
        padding: [
          [1, 2],
          [0, 1],
        ],
      })
      .apply(c) as tf.SymbolicTensor;
    return tf.layers.maxPooling2d({ poolSize: 2 }).apply(p) as tf.SymbolicTensor;
  },
  'Flatten (channels-last order) then Dense': (x) => {
    const c = tf.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2 }).apply(x) as tf.SymbolicTensor;
    return tf.layers.dense({ units: 7 }).apply(tf.layers.flatten().apply(c)) as tf.SymbolicTensor;
  },
  'Dense on an image (per pixel), GlobalMaxPooling2D': (x) => tf.layers.dense({ units: 4 }).apply(x) as tf.SymbolicTensor,
  'ReLU max 6, LeakyReLU, ELU, Activation sigmoid/softplus/selu': (x) => {
    let y = tf.layers.conv2d({ filters: 4, kernelSize: 1 }).apply(x) as tf.SymbolicTensor;
    y = tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.conv2d({ filters: 4, kernelSize: 1 }).apply(y)) as tf.SymbolicTensor;
    y = tf.layers.leakyReLU({ alpha: 0.2 }).apply(tf.layers.conv2d({ filters: 4, kernelSize: 1 }).apply(y)) as tf.SymbolicTensor;
    y = tf.layers.elu().apply(y) as tf.SymbolicTensor;
    y = tf.layers.activation({ activation: 'sigmoid' }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.activation({ activation: 'softplus' }).apply(y) as tf.SymbolicTensor;
    return tf.layers.activation({ activation: 'selu' }).apply(y) as tf.SymbolicTensor;
  },
  'Softmax, Dropout (rate 0: deterministic)': (x) => {
    const pooled = tf.layers.globalAveragePooling2d({}).apply(tf.layers.conv2d({ filters: 4, kernelSize: 1 }).apply(x)) as tf.SymbolicTensor;
    const y = tf.layers.softmax().apply(pooled) as tf.SymbolicTensor;
    return tf.layers.dropout({ rate: 0 }).apply(y) as tf.SymbolicTensor;
  },
};

/**
 * Layer kinds whose tfjs gradient is not a reference: tfjs's AvgPoolGrad divides by the whole
 * window at 'same' borders, where its forward averages the real pixels only. Checked against
 * float64 and finite differences instead (odd padding: bottom/right only; even: both sides).
 */
const FLOAT64_ONLY_CASES: Record<string, (x: tf.SymbolicTensor) => tf.SymbolicTensor> = {
  "AveragePooling2D 'same' 2/2 (odd padding)": (x) =>
    tf.layers
      .averagePooling2d({ poolSize: 2, strides: 2, padding: 'same' })
      .apply(tf.layers.conv2d({ filters: 3, kernelSize: 1 }).apply(x)) as tf.SymbolicTensor,
  "AveragePooling2D 'same' 3/1 (even padding)": (x) =>
    tf.layers
      .averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' })
      .apply(tf.layers.conv2d({ filters: 3, kernelSize: 1 }).apply(x)) as tf.SymbolicTensor,
};
const ALL_CASES = { ...LAYER_CASES, ...FLOAT64_ONLY_CASES };

/**
 * Wraps a body into a classifier: body -> GAP (or GlobalMax) -> Dense(classes). The layers are
 * built without seeds (tfjs then draws from Math.random), so every kernel is replaced by seeded
 * LeCun-uniform values: each case is the same model on every run.
 */
function caseModel(name: string, body: (x: tf.SymbolicTensor) => tf.SymbolicTensor, seed = 7): tf.LayersModel {
  const input = tf.input({ shape: [7, 7, 3] });
  const y = body(input);
  const pooled = (
    y.shape.length === 2 ? y : name.includes('GlobalMax') ? tf.layers.globalMaxPooling2d({}).apply(y) : tf.layers.globalAveragePooling2d({}).apply(y)
  ) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3 }).apply(pooled) as tf.SymbolicTensor });
  const rng = new Rng(seed);
  for (const w of model.weights.filter((v) => v.originalName.endsWith('kernel'))) {
    const limit = Math.sqrt(3 / w.shape.slice(0, -1).reduce((a, b) => a! * b!, 1)!);
    const t = tf.tensor(
      Float32Array.from({ length: w.shape.reduce((a, b) => a! * b!, 1)! }, () => (2 * rng.next() - 1) * limit),
      w.shape as number[],
    );
    w.write(t);
    t.dispose();
  }
  return model;
}

test('recipe: full batches only, cosine per step, decay on kernels only, crop+flip oracle', () => {
  assert.equal(stepsPerEpoch(1000, { batchSize: 64 }), 15);
  assert.equal(stepsPerEpoch(1000, { batchSize: 64, maxBatchesPerEpoch: 4 }), 4);
  assert.throws(() => stepsPerEpoch(10, { batchSize: 64 }), /at least one full batch/);
  assert.equal(learningRateAt(0.1, 0, 100), 0.1);
  assert.ok(Math.abs(learningRateAt(0.1, 50, 100) - 0.05) < 1e-12);
  const table: [string, boolean][] = [
    ['stem.conv/kernel', true],
    ['ir1.0.dw/depthwise_kernel', true],
    ['sep/pointwise_kernel', true],
    ['classifier/kernel', true],
    ['classifier/bias', false],
    ['stem.bn/gamma', false],
    ['stem.bn/beta', false],
    ['stem.bn/moving_mean', false],
  ];
  for (const [name, decayed] of table) assert.equal(isDecayed(name), decayed, name);
  // A 16x16 image whose pixel value is its index: with shift (dy, dx) and flip, pixel (y, x)
  // comes from (y + dy, (flip ? 15 - x : x) + dx), zero outside.
  const shape = [16, 16, 1] as const;
  assert.equal(cropPadding(shape), 2);
  const img = Float32Array.from({ length: 256 }, (_, i) => i + 1);
  const rng = new Rng(3);
  const probe = new Rng(3);
  const out = augment(img, 1, shape, rng);
  const dy = probe.int(5) - 2;
  const dx = probe.int(5) - 2;
  const flip = probe.next() < 0.5;
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 16; x++) {
      const sy = y + dy;
      const sx = (flip ? 15 - x : x) + dx;
      const want = sy < 0 || sy >= 16 || sx < 0 || sx >= 16 ? 0 : img[sy * 16 + sx];
      assert.equal(out[y * 16 + x], want, `pixel (${y}, ${x})`);
    }
  }
});

test('torchThreads: workers x threads <= cores, at least 1', () => {
  assert.equal(torchThreads(1, 2), 2);
  assert.equal(torchThreads(2, 2), 1);
  assert.equal(torchThreads(3, 2), 1);
  assert.equal(torchThreads(2, 8), 4);
});

test('float64 tensors: created from Float64Array or converted on creation or by `to`, read back as Float64Array', { skip }, () => {
  const third = Float64Array.from([1 / 3, -2 / 7, 1e-300, 5]);
  const x = torch.fromData(third, [2, 2]);
  assert.equal(x.dtype, 'float64');
  assert.deepEqual(x.data(), third);
  const narrowed = torch.op('to', [x], { dtype: 'float32' });
  assert.equal(narrowed.dtype, 'float32');
  assert.deepEqual(narrowed.data(), Float32Array.from(third));
  const widened = torch.fromData(Float32Array.from(third), [4], 'float64');
  assert.equal(widened.dtype, 'float64');
  assert.deepEqual(widened.data(), Float64Array.from(Float32Array.from(third)));
  assert.equal(torch.fromData(new Float32Array(2), [2]).dtype, 'float32', 'float32 stays the default');
  assert.throws(() => torch.fromData(third, [4], 'float16' as never), /Expected dtype `float32` or `float64`, got `float16`/);
  for (const t of [x, narrowed, widened]) t.dispose();
});

test('gradients equal tfjs for each layer kind', { skip }, async () => {
  await tf.setBackend('cpu');
  for (const [name, body] of Object.entries(LAYER_CASES)) {
    const model = caseModel(name, body);
    assertSameGradients(model, batchOf([7, 7, 3], 6, 3, 1), 3, true, name);
    model.dispose();
  }
});

test("AveragePooling2D 'same' (odd and even padding) averages real pixels only, as tfjs does", { skip }, async () => {
  await tf.setBackend('cpu');
  for (const poolSize of [2, 3]) {
    const input = tf.input({ shape: [7, 7, 2] });
    const model = tf.model({ inputs: input, outputs: tf.layers.averagePooling2d({ poolSize, strides: 2, padding: 'same' }).apply(input) as tf.SymbolicTensor });
    const data = batchOf([7, 7, 2], 2, 2, 9);
    const ref = tf.tidy(() => (model.predict(tf.tensor4d(data.images, [2, 7, 7, 2])) as tf.Tensor).dataSync());
    const tm = TorchModel.fromLayersModel(torch, model);
    const s = new TensorScope(torch);
    const y = tm.forward(s, tm.input(s, data.images, [2, 7, 7, 2]), false);
    const got = s.op('permute', [y], { dims: [0, 2, 3, 1] }).data();
    assert.ok(relErr(got, ref) < 1e-6, `pool ${poolSize}: ${relErr(got, ref)}`);
    s.dispose();
    tm.dispose();
    model.dispose();
  }
});

test('gradients equal tfjs for each zoo model (BN in inference mode)', { skip }, async () => {
  await tf.setBackend('cpu');
  for (const zoo of ZOO_NAMES) {
    const model = buildZooModel(zoo, { inputShape: [12, 12, 1], numClasses: 10, width: 0.25 });
    assertSameGradients(model, batchOf([12, 12, 1], 8, 10, 2), 10, false, zoo);
    model.dispose();
  }
});

test('float32 gradients are within 1e-4 of float64 gradients for each layer kind', { skip }, async (t) => {
  await tf.setBackend('cpu');
  let worst = { d: 0, name: '' };
  for (const [name, body] of Object.entries(ALL_CASES)) {
    const model = caseModel(name, body);
    const batch = batchOf([7, 7, 3], 6, 3, 1);
    const ref = torchGradients(model, batch, true, 'float64');
    const f32 = torchGradients(model, batch, true, 'float32');
    assert.ok(Math.abs(f32.loss - ref.loss) <= 1e-6 * Math.max(1, Math.abs(ref.loss)), `${name}: loss ${f32.loss} vs float64 ${ref.loss}`);
    const d = distance(f32.grads, ref.grads);
    assertWithin(d, 1e-4, name);
    if (d.worst > worst.d) worst = { d: d.worst, name: `${name}, ${d.at}` };
    model.dispose();
  }
  t.diagnostic(`largest float32 vs float64 distance over the layer kinds: ${worst.d.toExponential(1)} (${worst.name})`);
});

test('the float64 backward equals central finite differences for each layer kind', { skip }, async (t) => {
  await tf.setBackend('cpu');
  let worst = 0;
  const rng = new Rng(11);
  const h = 1e-5;
  for (const [name, body] of Object.entries(ALL_CASES)) {
    const model = caseModel(name, body);
    const batch = batchOf([7, 7, 3], 6, 3, 1);
    const tm = TorchModel.fromLayersModel(torch, model, { dtype: 'float64' });
    const lossAt = (): number => {
      const s = new TensorScope(torch);
      try {
        return torchLoss(s, tm, batch, true).item();
      } finally {
        s.dispose();
      }
    };
    const s = new TensorScope(torch);
    torchLoss(s, tm, batch, true).backward();
    s.dispose();
    const weights = model.trainableWeights.map((w) => w.originalName);
    // Three coordinates per layer kind (torch layout): one of the first weight, whose gradient
    // passes back through every layer of the case, then two of random trainable weights.
    for (let k = 0; k < 3; k++) {
      const w = tm.parameter(weights[k === 0 ? 0 : rng.int(weights.length)]);
      const grad = w.grad!;
      const g = grad.data() as Float64Array;
      grad.dispose();
      const values = w.data() as Float64Array;
      const i = rng.int(values.length);
      const at = (v: number): number => {
        const t = torch.fromData(
          Float64Array.from(values, (x, j) => (j === i ? v : x)),
          w.shape,
        );
        w.assign(t);
        t.dispose();
        return lossAt();
      };
      const fd = (at(values[i] + h) - at(values[i] - h)) / (2 * h);
      at(values[i]);
      const e = Math.abs(fd - g[i]) / Math.max(norm(g), 1e-30);
      worst = Math.max(worst, e);
      assert.ok(
        e <= 1e-6,
        `${name}: d loss / d ${w.shape}[${i}] = ${g[i]} by autograd, ${fd} by finite differences (${e.toExponential(2)} of the gradient's norm)`,
      );
    }
    tm.dispose();
    model.dispose();
  }
  t.diagnostic(`largest |finite difference - autograd| over the coordinates: ${worst.toExponential(1)} of the weight's gradient norm`);
});

test('each zoo model with BN in training mode: libtorch float32 and tfjs gradients against float64', { skip }, async (t) => {
  await tf.setBackend('cpu');
  for (const zoo of ZOO_NAMES) {
    const model = buildZooModel(zoo, { inputShape: [12, 12, 1], numClasses: 10, width: 0.25 });
    const batch = batchOf([12, 12, 1], 8, 10, 2);
    const ref = torchGradients(model, batch, true, 'float64').grads;
    const f32 = torchGradients(model, batch, true, 'float32').grads;
    const tfjsGrads = tfjsGradients(model, batch, 10, true).grads;
    const binding = distance(f32, ref);
    const tfjs = distance(tfjsGrads, ref);
    const between = distance(f32, tfjsGrads, ref);
    t.diagnostic(`${zoo}: libtorch float32 ${fmt(binding)}; tfjs cpu ${fmt(tfjs)}; libtorch vs tfjs ${fmt(between)}`);
    assertWithin(binding, 1e-4, `${zoo} libtorch float32 vs float64`);
    assertWithin(tfjs, 1e-4, `${zoo} tfjs vs float64`);
    assertWithin(between, 1e-4, `${zoo} libtorch vs tfjs`);
    model.dispose();
  }
});

const stepOptions = (optimizer: 'sgd' | 'adam'): TrainOptions => ({
  epochs: 1,
  batchSize: 8,
  learningRate: optimizer === 'sgd' ? 0.1 : 0.01,
  optimizer,
  momentum: 0.9,
  weightDecay: 0.01,
  numClasses: 3,
  seed: 0,
});

for (const optimizer of ['sgd', 'adam'] as const) {
  test(`one ${optimizer} step (weight decay on kernels) and the BN moving statistics equal tfjs's`, { skip }, async () => {
    await tf.setBackend('cpu');
    const body = LAYER_CASES['BatchNormalization (training: batch statistics)'];
    const a = caseModel('bn', body);
    const b = caseModel('bn', body);
    b.setWeights(a.getWeights());
    const data = batchOf([7, 7, 3], 8, 3, 5);
    const before = a.getWeights().map((w) => w.dataSync().slice());
    const o = { ...stepOptions(optimizer), epochs: 1 };
    // 8 images, batch 8: exactly one step at the peak learning rate (cosine starts at the peak).
    await train(a, data, o);
    await trainTorch(torch, b, data, o);
    const wa = a.getWeights();
    const wb = b.getWeights();
    a.weights.forEach((w, i) => {
      const da = Float32Array.from(wa[i].dataSync(), (v, j) => v - before[i][j]);
      const db = Float32Array.from(wb[i].dataSync(), (v, j) => v - before[i][j]);
      const e = relErr(db, da);
      assert.ok(e <= 1e-4, `${w.originalName}: update differs from tfjs by ${e.toExponential(2)} of its norm`);
    });
    assert.ok(ADAM_EPSILON > 0);
    a.dispose();
    b.dispose();
  });
}

test('a few epochs on the smoke data reach the accuracy tfjs reaches', { skip }, async () => {
  await tf.setBackend('cpu');
  const ds = makeSynthetic({ shape: [12, 12, 1], numClasses: 4, trainCount: 512, testCount: 256, seed: 4 });
  const o: TrainOptions = {
    epochs: 4,
    batchSize: 32,
    learningRate: 0.05,
    optimizer: 'sgd',
    momentum: 0.9,
    weightDecay: 5e-4,
    numClasses: 4,
    seed: 1,
    augment: false,
  };
  const build = () => buildZooModel('plain-cnn', { inputShape: [12, 12, 1], numClasses: 4, width: 0.25, seed: 2 });
  const a = build();
  const b = build();
  await train(a, ds.train, o);
  await trainTorch(torch, b, ds.train, o);
  const accTfjs = accuracy(a, ds.test);
  const accTorch = accuracy(b, ds.test);
  assert.ok(accTfjs > 0.5, `tfjs learned the smoke data (${accTfjs})`);
  assert.ok(accTorch >= accTfjs - 0.03, `libtorch ${accTorch} vs tfjs ${accTfjs}`);
  assert.ok(Math.abs(accuracyTorch(torch, b, ds.test) - accTorch) < 1e-9, 'libtorch inference scores the written-back model as tfjs does');
  a.dispose();
  b.dispose();
});

test('both engines stop a diverging run at the same step with the one-line hint (the shared epoch loop, recipe.ts)', { skip }, async () => {
  await tf.setBackend('cpu');
  const ds = makeSynthetic({ shape: [12, 12, 1], numClasses: 4, trainCount: 256, testCount: 16, seed: 4 });
  const o: TrainOptions = { epochs: 2, batchSize: 32, learningRate: 1e38, optimizer: 'sgd', momentum: 0.9, numClasses: 4, seed: 1 };
  const build = () => buildZooModel('plain-cnn', { inputShape: [12, 12, 1], numClasses: 4, width: 0.25, seed: 2 });
  const steps: string[] = [];
  for (const run of [(m: tf.LayersModel) => train(m, ds.train, o), (m: tf.LayersModel) => trainTorch(torch, m, ds.train, o)]) {
    const m = build();
    const e = await run(m).then(
      () => null,
      (x: Error) => x,
    );
    m.dispose();
    assert.match(e?.message ?? 'it trained on', /^Training diverged at step (\d+) \(loss (NaN|-?Infinity)\); lower the learning rate \(got 1e\+38\)$/);
    steps.push(/step (\d+)/.exec(e!.message)![1]);
  }
  assert.equal(steps[0], steps[1], `tfjs stopped at step ${steps[0]}, libtorch at ${steps[1]}`);
});

test('no tensor or memory growth over 500 steps', { skip }, async () => {
  await tf.setBackend('cpu');
  const model = buildZooModel('plain-cnn', { inputShape: [8, 8, 1], numClasses: 4, width: 0.125 });
  const tm = TorchModel.fromLayersModel(torch, model);
  const optimizer = makeTorchOptimizer(torch, tm, { ...stepOptions('sgd'), numClasses: 4 });
  const data = batchOf([8, 8, 1], 8, 4, 6);
  for (let i = 0; i < 50; i++) torchStep(tm, optimizer, data, 0.01);
  const live = torch.liveTensors();
  const rss = process.memoryUsage().rss;
  for (let i = 0; i < 500; i++) torchStep(tm, optimizer, data, 0.01);
  assert.equal(torch.liveTensors(), live, 'tensor handles alive before and after');
  const grown = (process.memoryUsage().rss - rss) / 2 ** 20;
  assert.ok(grown < 16, `RSS grew by ${grown.toFixed(1)} MiB over 500 steps`);
  tm.dispose();
  model.dispose();
});

test('`autoprune train` killed mid-epoch resumes from its checkpoint and ends where an uninterrupted run ends', { skip, timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'autoprune-resume-'));
  try {
    const config = (out: string) =>
      [
        'name: resume',
        'data: { dataset: synthetic, validationSize: 100, synthetic: { shape: [12, 12, 1], classes: 4, train: 900, test: 100 } }',
        'model: { zoo: plain-cnn, width: 0.25 }',
        `train: { epochs: 3, batchSize: 16, optimizer: sgd, learningRate: 0.05, weightDecay: 0.0005, augment: true, out: ${out} }`,
        'run: { engine: { train: libtorch }, seed: 1 }',
      ].join('\n');
    await writeFile(join(dir, 'a.yaml'), config(join(dir, 'a')));
    await writeFile(join(dir, 'b.yaml'), config(join(dir, 'b')));
    const whole = cliSpawn('train', join(dir, 'a.yaml'));
    assert.equal((await whole.done).code, 0, 'uninterrupted run');

    const first = cliSpawn('train', join(dir, 'b.yaml'));
    let stderr = '';
    first.child.stderr!.on('data', (d) => (stderr += d));
    await waitFor(() => /epoch 1\/3 done/.test(stderr), 120_000, 'the first checkpoint');
    await new Promise((r) => setTimeout(r, 300)); // into epoch 2
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.signal, 'SIGKILL');
    assert.doesNotMatch(killed.stderr, /epoch 3\/3 done/, 'killed before the end');

    const second = cliSpawn('train', join(dir, 'b.yaml'));
    const resumed = await second.done;
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout + resumed.stderr, /resuming from the checkpoint after epoch [12]\/3/);
    const wa = await readFile(join(dir, 'a', 'weights.bin'));
    const wb = await readFile(join(dir, 'b', 'weights.bin'));
    const fa = new Float32Array(wa.buffer, wa.byteOffset, wa.byteLength / 4);
    const fb = new Float32Array(wb.buffer, wb.byteOffset, wb.byteLength / 4);
    assert.ok(relErr(fb, fa) < 1e-4, `resumed weights vs uninterrupted: ${relErr(fb, fa)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.ok(ROOT);
});
