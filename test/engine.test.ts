/**
 * Engine tests: backend choice, and every wasm training kernel checked against tfjs `cpu` (the
 * reference implementation) through real gradients of a scalar loss.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { ErrorCodes, isAutopruneError } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import { type BindingLoader, initBackend, type NodeBinding, TENSORFLOW_UNAVAILABLE_MESSAGE } from '../src/engine/backend.js';
import { WASM_TRAINING_KERNELS, wasmKernelTuning } from '../src/engine/wasm-kernels.js';

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
interface Arr {
  shape: number[];
  values: Float32Array;
}

function randArr(rng: Rng, shape: number[]): Arr {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = rng.uniform(-1, 1);
  return { shape, values };
}

/** Gradients of `loss` w.r.t. each input, computed on `backend`, as plain arrays. */
async function gradsOn(backend: string, loss: (ts: tf.Tensor[]) => tf.Scalar, inputs: Arr[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const ts = inputs.map((a) => tf.tensor(a.values, a.shape));
    return tf
      .grads((...xs: tf.Tensor[]) => loss(xs))(ts)
      .map((g) => g.dataSync() as Float32Array);
  });
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 1;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  assert.ok(worst < 1e-4 * scale, `${what}: max abs diff ${worst} (scale ${scale})`);
}

async function compareGrads(what: string, loss: (ts: tf.Tensor[]) => tf.Scalar, inputs: Arr[]): Promise<void> {
  const ref = await gradsOn('cpu', loss, inputs);
  const got = await gradsOn('wasm', loss, inputs);
  ref.forEach((r, i) => assertClose(got[i], r, `${what} grad #${i}`));
}

/** Loss = sum(y * r) so that dy = r, a dense non-trivial upstream gradient. */
function weighted(y: tf.Tensor, r: tf.Tensor): tf.Scalar {
  return tf.sum(tf.mul(y, r));
}

const rng = new Rng('engine-test');

/** Binding loaders that stand in for this host's node_modules, so the backend tests do not depend on it. */
const notFound = (pkg: string) => Object.assign(new Error(`Cannot find package '${pkg}'`), { code: 'ERR_MODULE_NOT_FOUND' });
function fakeLoader(outcome: Partial<Record<NodeBinding, 'broken' | 'registers'>>): BindingLoader & { asked: NodeBinding[] } {
  const asked: NodeBinding[] = [];
  const load = async (pkg: NodeBinding) => {
    asked.push(pkg);
    if (outcome[pkg] === 'broken') throw new Error('libtensorflow.so.2: cannot open shared object file\n    at dlopen');
    if (outcome[pkg] !== 'registers') throw notFound(pkg);
    // What tfjs-node does on import: register backend `tensorflow` (here the cpu backend under that name).
    tf.registerBackend('tensorflow', tf.findBackendFactory('cpu'));
  };
  return Object.assign(load, { asked });
}

test('initBackend: tensorflow without a binding installed says how to fix it; both bindings were tried, GPU first', async () => {
  const load = fakeLoader({});
  await assert.rejects(initBackend('tensorflow', { loadBinding: load }), (e: unknown) => {
    assert.ok(isAutopruneError(e));
    assert.equal(e.code, ErrorCodes.BACKEND_UNAVAILABLE);
    assert.equal(e.message, TENSORFLOW_UNAVAILABLE_MESSAGE);
    return true;
  });
  assert.deepEqual(load.asked, ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
});

test('initBackend: an installed binding that fails to load is named with the first line of its error', async () => {
  await assert.rejects(initBackend('tensorflow', { loadBinding: fakeLoader({ '@tensorflow/tfjs-node': 'broken' }) }), (e: unknown) => {
    assert.ok(isAutopruneError(e));
    assert.equal(e.message, '@tensorflow/tfjs-node is installed but failed to load: libtensorflow.so.2: cannot open shared object file; use --backend wasm');
    return true;
  });
});

test('initBackend: auto without a binding picks wasm, with SIMD and the training kernels', async () => {
  const info = await initBackend('auto', { loadBinding: fakeLoader({ '@tensorflow/tfjs-node-gpu': 'broken' }) });
  assert.equal(info.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(info.requested, 'auto');
  assert.equal(info.tfjsVersion, tf.version.tfjs);
  assert.equal(info.nodeBinding, null);
  assert.equal(typeof info.wasmSimd, 'boolean');
  for (const k of WASM_TRAINING_KERNELS) assert.ok(tf.getKernel(k, 'wasm'), `${k} registered`);
});

test('initBackend: auto picks tensorflow when a binding loads, and names it', async () => {
  const load = fakeLoader({ '@tensorflow/tfjs-node': 'registers' });
  try {
    const info = await initBackend('auto', { loadBinding: load });
    assert.equal(info.name, 'tensorflow');
    assert.equal(tf.getBackend(), 'tensorflow');
    assert.equal(info.nodeBinding, '@tensorflow/tfjs-node');
    assert.deepEqual(load.asked, ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
  } finally {
    tf.removeBackend('tensorflow');
    await initBackend('wasm');
  }
  assert.equal(tf.getBackend(), 'wasm');
});

interface ConvCase {
  n: number;
  h: number;
  w: number;
  cin: number;
  kh: number;
  kw: number;
  cout: number;
  stride: number | [number, number];
  pad: Pad;
}

const CONV_CASES: ConvCase[] = [
  { n: 1, h: 5, w: 5, cin: 2, kh: 3, kw: 3, cout: 3, stride: 1, pad: 'same' },
  { n: 3, h: 7, w: 6, cin: 3, kh: 3, kw: 3, cout: 4, stride: 2, pad: 'same' },
  { n: 3, h: 7, w: 7, cin: 2, kh: 3, kw: 3, cout: 5, stride: 2, pad: 'valid' },
  { n: 1, h: 8, w: 8, cin: 4, kh: 1, kw: 1, cout: 6, stride: 1, pad: 'valid' },
  { n: 2, h: 9, w: 9, cin: 3, kh: 5, kw: 5, cout: 2, stride: 1, pad: 'same' },
  { n: 2, h: 6, w: 6, cin: 3, kh: 2, kw: 2, cout: 3, stride: 2, pad: 'same' },
  { n: 2, h: 7, w: 5, cin: 3, kh: 5, kw: 3, cout: 4, stride: [1, 2], pad: 'same' },
  { n: 3, h: 6, w: 7, cin: 5, kh: 3, kw: 3, cout: 2, stride: 1, pad: 'valid' },
  { n: 1, h: 5, w: 6, cin: 2, kh: 3, kw: 3, cout: 3, stride: 1, pad: 1 },
  { n: 2, h: 2, w: 3, cin: 2, kh: 5, kw: 5, cout: 3, stride: 1, pad: 'same' },
  { n: 3, h: 1, w: 1, cin: 3, kh: 3, kw: 3, cout: 2, stride: 1, pad: 'same' },
  {
    n: 2,
    h: 5,
    w: 6,
    cin: 2,
    kh: 3,
    kw: 3,
    cout: 3,
    stride: 1,
    pad: [
      [0, 0],
      [2, 0],
      [0, 1],
      [0, 0],
    ],
  },
  {
    n: 2,
    h: 6,
    w: 6,
    cin: 2,
    kh: 3,
    kw: 3,
    cout: 3,
    stride: 2,
    pad: [
      [0, 0],
      [1, 1],
      [0, 1],
      [0, 0],
    ],
  },
];

function caseName(c: ConvCase): string {
  return `${c.n}x${c.h}x${c.w}x${c.cin} k${c.kh}x${c.kw} ->${c.cout} s${JSON.stringify(c.stride)} ${JSON.stringify(c.pad)}`;
}

function outShapeOf(c: ConvCase, depthwise: boolean, filterShape: number[]): number[] {
  return tf.backend_util.computeConv2DInfo([c.n, c.h, c.w, c.cin], filterShape as [number, number, number, number], c.stride, 1, c.pad, undefined, depthwise)
    .outShape;
}

test('Conv2D gradients (Conv2DBackpropFilter, Conv2DBackpropInput) match cpu', async () => {
  await initBackend('wasm');
  for (const c of CONV_CASES) {
    const fShape = [c.kh, c.kw, c.cin, c.cout];
    const x = randArr(rng, [c.n, c.h, c.w, c.cin]);
    const f = randArr(rng, fShape);
    const r = randArr(rng, outShapeOf(c, false, fShape));
    await compareGrads(caseName(c), ([xt, ft, rt]) => weighted(tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, c.stride, c.pad), rt), [x, f, r]);
  }
});

test('Conv2DBackpropFilter: chunked im2col gives the same gradient', async () => {
  await initBackend('wasm');
  const saved = wasmKernelTuning.im2colChunkFloats;
  try {
    for (const c of [CONV_CASES[1], CONV_CASES[4], CONV_CASES[7]]) {
      // One image per chunk at most (and fewer than one: the floor is one image).
      wasmKernelTuning.im2colChunkFloats = 1;
      const fShape = [c.kh, c.kw, c.cin, c.cout];
      const x = randArr(rng, [c.n, c.h, c.w, c.cin]);
      const f = randArr(rng, fShape);
      const r = randArr(rng, outShapeOf(c, false, fShape));
      await compareGrads(`chunked ${caseName(c)}`, ([xt, ft, rt]) => weighted(tf.conv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, c.stride, c.pad), rt), [x, f, r]);
    }
  } finally {
    wasmKernelTuning.im2colChunkFloats = saved;
  }
});

test('fused conv2d (as tfjs-layers uses it) gradients match cpu', async () => {
  await initBackend('wasm');
  const c = CONV_CASES[1];
  const fShape = [c.kh, c.kw, c.cin, c.cout];
  const x = randArr(rng, [c.n, c.h, c.w, c.cin]);
  const f = randArr(rng, fShape);
  const b = randArr(rng, [c.cout]);
  const r = randArr(rng, outShapeOf(c, false, fShape));
  await compareGrads(
    'fused conv2d + bias + relu',
    ([xt, ft, bt, rt]) =>
      weighted(tf.fused.conv2d({ x: xt as tf.Tensor4D, filter: ft as tf.Tensor4D, strides: c.stride, pad: c.pad as 'same', bias: bt, activation: 'relu' }), rt),
    [x, f, b, r],
  );
});

test('DepthwiseConv2dNative gradients (BackpropFilter, BackpropInput) match cpu', async () => {
  await initBackend('wasm');
  const cases: Array<ConvCase & { mult: number }> = [
    { n: 1, h: 5, w: 5, cin: 3, kh: 3, kw: 3, cout: 3, stride: 1, pad: 'same', mult: 1 },
    { n: 3, h: 7, w: 6, cin: 4, kh: 3, kw: 3, cout: 4, stride: 2, pad: 'same', mult: 1 },
    { n: 3, h: 7, w: 7, cin: 2, kh: 3, kw: 3, cout: 4, stride: 2, pad: 'valid', mult: 2 },
    { n: 2, h: 6, w: 5, cin: 3, kh: 3, kw: 3, cout: 9, stride: 1, pad: 'same', mult: 3 },
    { n: 2, h: 9, w: 8, cin: 5, kh: 5, kw: 5, cout: 5, stride: 1, pad: 'valid', mult: 1 },
    {
      n: 2,
      h: 6,
      w: 6,
      cin: 2,
      kh: 3,
      kw: 3,
      cout: 2,
      stride: 2,
      pad: [
        [0, 0],
        [1, 1],
        [0, 1],
        [0, 0],
      ],
      mult: 1,
    },
  ];
  for (const c of cases) {
    const fShape = [c.kh, c.kw, c.cin, c.mult];
    const x = randArr(rng, [c.n, c.h, c.w, c.cin]);
    const f = randArr(rng, fShape);
    const r = randArr(rng, outShapeOf(c, true, fShape));
    await compareGrads(
      `depthwise ${caseName(c)} mult ${c.mult}`,
      ([xt, ft, rt]) => weighted(tf.depthwiseConv2d(xt as tf.Tensor4D, ft as tf.Tensor4D, c.stride, c.pad), rt),
      [x, f, r],
    );
  }
});

test('depthwise backprop rejects dilations other than 1 with a clear error', async () => {
  await initBackend('wasm');
  const x = tf.zeros([1, 5, 5, 2]);
  const dy = tf.zeros([1, 5, 5, 2]);
  assert.throws(
    () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dilations: [2, 2], filterShape: [3, 3, 2, 1] }),
    /dilations 1/,
  );
  tf.dispose([x, dy]);
});

test('Tile (fast row-repeat path and the generic fallback) and BatchNorm gradients match cpu', async () => {
  await initBackend('wasm');
  const row = randArr(rng, [1, 1, 1, 5]);
  const rowR = randArr(rng, [3, 4, 2, 5]);
  await compareGrads('tile row repeat', ([t, r]) => weighted(tf.tile(t, [3, 4, 2, 1]), r), [row, rowR]);
  const gen = randArr(rng, [2, 3]);
  const genR = randArr(rng, [4, 3]);
  await compareGrads('tile generic', ([t, r]) => weighted(tf.tile(t, [2, 1]), r), [gen, genR]);

  await tf.setBackend('wasm');
  const tiled = tf.tile(tf.tensor([1, 2, 3], [1, 3], 'int32'), [2, 1]);
  assert.deepEqual(Array.from(tiled.dataSync()), [1, 2, 3, 1, 2, 3]);
  tiled.dispose();

  const x = randArr(rng, [3, 4, 5, 6]);
  const mean = randArr(rng, [6]);
  const variance = { shape: [6], values: new Float32Array(6).map((_, i) => 0.5 + i / 10) };
  const scale = randArr(rng, [6]);
  const offset = randArr(rng, [6]);
  const r = randArr(rng, [3, 4, 5, 6]);
  await compareGrads('batchNorm', ([xt, m, v, s, o, rt]) => weighted(tf.batchNorm(xt, m, v, o, s, 1e-3), rt), [x, mean, variance, scale, offset, r]);
});

test('MaxPoolGrad matches cpu, ties included', async () => {
  await initBackend('wasm');
  const cases: Array<{ shape: number[]; size: number | [number, number]; stride: number | [number, number]; pad: 'same' | 'valid' }> = [
    { shape: [3, 6, 6, 4], size: 2, stride: 2, pad: 'valid' },
    { shape: [2, 7, 5, 3], size: 2, stride: 2, pad: 'same' },
    { shape: [2, 7, 7, 2], size: 3, stride: 2, pad: 'same' },
    { shape: [1, 6, 7, 3], size: 3, stride: 1, pad: 'valid' },
    { shape: [2, 5, 6, 2], size: [3, 2], stride: [1, 2], pad: 'same' },
  ];
  for (const c of cases) {
    const x = randArr(rng, c.shape);
    // Quantised values make ties inside windows common (as after a ReLU).
    x.values = x.values.map((v) => Math.round(v * 2) / 2);
    const outShape = tf.backend_util.computePool2DInfo(c.shape as [number, number, number, number], c.size, c.stride, 1, c.pad).outShape;
    const r = randArr(rng, outShape);
    await compareGrads(`maxPool ${JSON.stringify(c)}`, ([xt, rt]) => weighted(tf.maxPool(xt as tf.Tensor4D, c.size, c.stride, c.pad), rt), [x, r]);
  }
});

test('Sum over leading axes (fast path) and other axes (fallback) match cpu', async () => {
  await initBackend('wasm');
  const x = randArr(rng, [3, 4, 5, 6]);
  const cases: Array<{ axis: number | number[]; keepDims: boolean }> = [
    { axis: [0, 1, 2], keepDims: false },
    { axis: [2, 0, 1], keepDims: true },
    { axis: [-4, -3, -2], keepDims: false },
    { axis: [1, 2], keepDims: false },
    { axis: 3, keepDims: true },
    { axis: [0, 1, 2, 3], keepDims: false },
  ];
  for (const c of cases) {
    const ref = await gradsOn('cpu', ([t]) => tf.sum(tf.square(tf.sum(t, c.axis, c.keepDims))), [x]);
    const got = await gradsOn('wasm', ([t]) => tf.sum(tf.square(tf.sum(t, c.axis, c.keepDims))), [x]);
    assertClose(got[0], ref[0], `sum ${JSON.stringify(c)}`);
    await tf.setBackend('wasm');
    const shape = tf.tidy(() => tf.sum(tf.tensor(x.values, x.shape), c.axis, c.keepDims).shape);
    await tf.setBackend('cpu');
    const refShape = tf.tidy(() => tf.sum(tf.tensor(x.values, x.shape), c.axis, c.keepDims).shape);
    assert.deepEqual(shape, refShape);
  }
  await tf.setBackend('wasm');
  const ints = tf.tensor(
    [
      [1, 2],
      [3, 4],
    ],
    [2, 2],
    'int32',
  );
  const s = tf.sum(ints, 0);
  assert.equal(s.dtype, 'int32');
  assert.deepEqual(Array.from(s.dataSync()), [4, 6]);
  tf.dispose([ints, s]);
});

function buildModel(): tf.LayersModel {
  const inp = tf.input({ shape: [9, 9, 3] });
  let x = tf.layers.zeroPadding2d({ padding: 1 }).apply(inp) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ momentum: 0.9 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ maxValue: 6 }).apply(x) as tf.SymbolicTensor;
  const d = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
  const p = tf.layers.conv2d({ filters: 8, kernelSize: 1, activation: 'relu' }).apply(d) as tf.SymbolicTensor;
  let y = tf.layers.add().apply([x, p]) as tf.SymbolicTensor;
  const s2 = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2 }).apply(y) as tf.SymbolicTensor;
  const mp = tf.layers.maxPooling2d({ poolSize: 2, padding: 'same' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.concatenate().apply([s2, mp]) as tf.SymbolicTensor;
  y = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.averagePooling2d({ poolSize: 1 }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.globalAveragePooling2d({}).apply(y) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 4, activation: 'softmax' }).apply(y) as tf.SymbolicTensor;
  return tf.model({ inputs: inp, outputs: out });
}

async function trainOneStep(backend: 'cpu' | 'wasm', weights: Arr[], xs: Arr, labels: number[]): Promise<Float32Array[]> {
  await initBackend(backend);
  const model = buildModel();
  model.setWeights(weights.map((w) => tf.tensor(w.values, w.shape)));
  model.compile({ optimizer: tf.train.sgd(0.5), loss: 'categoricalCrossentropy' });
  const x = tf.tensor(xs.values, xs.shape);
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 4);
  await model.fit(x, y, { epochs: 1, batchSize: labels.length, shuffle: false, verbose: 0 });
  const out = model.getWeights().map((w) => w.dataSync() as Float32Array);
  tf.dispose([x, y]);
  model.dispose();
  return out;
}

test('one training step of conv+bn+depthwise+add+concat+dense gives the same weights on wasm and cpu', async () => {
  await initBackend('cpu');
  const probe = buildModel();
  const weights = probe.getWeights().map((w) => randArr(rng, w.shape));
  // BN moving variance must stay positive.
  probe.weights.forEach((w, i) => {
    if (w.name.includes('moving_variance')) weights[i].values = weights[i].values.map((v) => 1 + Math.abs(v));
  });
  probe.dispose();
  const xs = randArr(rng, [3, 9, 9, 3]);
  const labels = [0, 3, 1];
  const before = weights.map((w) => w.values);
  const onCpu = await trainOneStep('cpu', weights, xs, labels);
  const onWasm = await trainOneStep('wasm', weights, xs, labels);
  let moved = 0;
  onCpu.forEach((ref, i) => {
    assertClose(onWasm[i], ref, `weight #${i}`);
    if (ref.some((v, j) => Math.abs(v - before[i][j]) > 1e-6)) moved++;
  });
  assert.ok(moved >= onCpu.length / 2, `training changed ${moved} of ${onCpu.length} weight tensors`);
});

test('no leaked tensors or wasm buffers after 20 gradient computations', async () => {
  await initBackend('wasm');
  const backend = tf.backend() as BackendWasm;
  const x = tf.tensor(randArr(rng, [2, 9, 9, 3]).values, [2, 9, 9, 3]);
  const f = tf.variable(tf.tensor(randArr(rng, [3, 3, 3, 4]).values, [3, 3, 3, 4]));
  const dw = tf.variable(tf.tensor(randArr(rng, [3, 3, 4, 1]).values, [3, 3, 4, 1]));
  const f2 = tf.variable(tf.tensor(randArr(rng, [3, 3, 4, 4]).values, [3, 3, 4, 4]));
  const gamma = tf.variable(tf.ones([4]));
  const beta = tf.variable(tf.zeros([4]));
  const loss = (): tf.Scalar =>
    tf.tidy(() => {
      const a = tf.relu(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, 'same'));
      const m = tf.moments(a, [0, 1, 2]);
      const b = tf.batchNorm(a, m.mean, m.variance, beta, gamma, 1e-3);
      const c = tf.depthwiseConv2d(b as tf.Tensor4D, dw as tf.Tensor4D, 1, 'same');
      const d = tf.conv2d(c, f2 as tf.Tensor4D, 1, 'same');
      return tf.mean(tf.square(d));
    });
  const once = (): void => {
    const { value, grads } = tf.variableGrads(loss);
    tf.dispose([value, ...Object.values(grads)]);
  };
  once();
  const tensors = tf.memory().numTensors;
  const buffers = backend.numDataIds();
  for (let i = 0; i < 20; i++) once();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), buffers);
  tf.dispose([x, f, dw, f2, gamma, beta]);
});
