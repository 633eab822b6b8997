/**
 * Engines built from a ModelGraph: libtorch (TorchGraphModel) and tfjs (graphToTfjs) against a naive
 * float64 evaluator of the graph's definitions (test/graph-reference.ts) and against each other, on
 * hand-built graphs that use every op kind; one SGD step lowers the loss; writeBack of an untrained
 * model gives the input graph back; BN's moving statistics follow the trainers' momentum rule.
 * Tests that need the libtorch binding skip with the reason when it is not built, and fail under CI.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/core/rng.js';
import { batches } from '../src/data/batch.js';
import { makeSynthetic } from '../src/data/synthetic.js';
import type { Split } from '../src/data/types.js';
import { loadOnnxRuntime } from '../src/engine/onnxruntime.js';
import { torchStatus } from '../src/engine/torch.js';
import { fit, fitGraph } from '../src/evaluators/fit.js';
import { tuneGraph } from '../src/evaluators/graph-tune.js';
import { TensorScope, TorchGraphModel } from '../src/evaluators/torch-graph.js';
import { accuracy } from '../src/evaluators/train.js';
import {
  accuracyTorchGraph,
  makeTorchOptimizer,
  recalibrateBatchNormTorch,
  torchLoss,
  torchStep,
  trainTorch,
  trainTorchGraph,
} from '../src/evaluators/train-torch.js';
import { analyzeGraph } from '../src/model/ir/analyze.js';
import { graphFromLayersModel } from '../src/model/ir/from-tfjs.js';
import type { ModelGraph } from '../src/model/ir/graph.js';
import { decodeGraph, encodeGraph, GRAPH_BIN, GRAPH_FORMAT_VERSION, hasGraph, loadGraph, saveGraph } from '../src/model/ir/io.js';
import { graphToOnnx } from '../src/model/ir/to-onnx.js';
import { graphToTfjs, graphWithTfjsWeights, writeGraphIntoLayersModel } from '../src/model/ir/to-tfjs.js';
import { encodeOnnx } from '../src/model/onnx-proto.js';
import { buildZooModel, ZOO_NAMES } from '../src/model/zoo.js';
import { GraphBuilder, referenceForward } from './graph-reference.js';
import { ROOT } from './helpers.js';

const status = torchStatus();
const ci = process.env.CI === 'true';
const skip = status.loaded || ci ? false : `libtorch binding not available: ${status.reason}`;
const torch = status.loaded ? status.binding : (undefined as never);
if (status.loaded) torch.setThreads(1);

test('the libtorch binding is built (required under CI)', { skip: !ci && 'only checked when CI=true' }, () => {
  assert.ok(status.loaded, `libtorch binding not available: ${status.loaded ? '' : status.reason}`);
});

/** Every op kind of graph.ts, including what tfjs cannot express (groups, ceil mode adding a window, asymmetric pool pads, HardSwish). */
function everyOp(seed = 1): GraphBuilder {
  const g = new GraphBuilder([3, 10, 10], seed);
  let x = g.act('a1', g.bn('b1', g.conv('c1', 'input', 8, { pads: [1, 1, 1, 1] })), { kind: 'relu' });
  // Depthwise with multiplier 2, stride 2, asymmetric (TensorFlow 'same'-like) pads: 10 -> 5.
  x = g.act('a2', g.bn('b2', g.conv('dw', x, 16, { groups: 8, strides: [2, 2], pads: [0, 0, 1, 1], bias: false }), { scale: false, bias: true }), {
    kind: 'clip',
    min: 0,
    max: 6,
  });
  x = g.act('a3', g.conv('gc', x, 8, { groups: 2, dilations: [2, 2], pads: [2, 2, 2, 2] }), { kind: 'leakyRelu', alpha: 0.1 });
  // Squeeze-and-excitation gate.
  const gate = g.act(
    'sg',
    g.conv('s2', g.act('sa', g.conv('s1', g.globalPool('gp', x, 'avg', true), 4, { kernel: [1, 1] }), { kind: 'relu' }), 8, { kernel: [1, 1] }),
    {
      kind: 'hardSigmoid',
      alpha: 0.2,
      beta: 0.5,
    },
  );
  x = g.add('res', [x, g.mul('se', [x, gate])]);
  const e = g.act('a4', x, { kind: 'elu', alpha: 1 });
  x = g.act('a6', g.concat('cat', [e, g.act('a5', e, { kind: 'silu' })]), { kind: 'hardSwish' });
  x = g.pool('p1', x, { mode: 'max', kernel: [2, 2], strides: [2, 2], ceilMode: true }); // 5 -> 3 (floor: 2)
  x = g.act('a8', g.act('a7', x, { kind: 'sigmoid' }), { kind: 'tanh' });
  x = g.act('a11', g.act('a10', g.act('a9', x, { kind: 'selu' }), { kind: 'softplus' }), { kind: 'softsign' });
  x = g.pad('pd', x, [1, 0, 0, 1]); // 3 -> 4
  x = g.pool('p2', x, { mode: 'avg', kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true }); // 4 -> 3 (floor: 2)
  x = g.pool('p3', x, { mode: 'avg', kernel: [2, 2], strides: [1, 1], pads: [0, 0, 1, 1], countIncludePad: true });
  x = g.pool('p4', x, { mode: 'avg', kernel: [2, 2], strides: [1, 1], pads: [0, 0, 1, 1] });
  x = g.pool('p5', x, { mode: 'max', kernel: [2, 2], strides: [1, 1], pads: [1, 1, 0, 0] });
  x = g.identity('id', g.globalPool('gm', x, 'max', false));
  g.act('sm', g.dense('fc', x, 5), { kind: 'softmax' });
  return g;
}

/** The same families of ops, restricted to what tfjs layers compute exactly. */
function tfjsExpressible(seed = 2): GraphBuilder {
  const g = new GraphBuilder([3, 10, 10], seed);
  let x = g.act('a1', g.bn('b1', g.conv('c1', 'input', 8, { pads: [1, 1, 1, 1] })), { kind: 'relu' });
  x = g.act('a2', g.bn('b2', g.conv('dw', x, 16, { groups: 8, strides: [2, 2], pads: [0, 0, 1, 1], bias: false }), { scale: false, bias: true }), {
    kind: 'clip',
    min: 0,
    max: 6,
  });
  x = g.act('a3', g.conv('c3', x, 8, { dilations: [2, 2], pads: [2, 2, 2, 2] }), { kind: 'leakyRelu', alpha: 0.1 });
  const gate = g.act(
    'sg',
    g.conv('s2', g.act('sa', g.conv('s1', g.globalPool('gp', x, 'avg', true), 4, { kernel: [1, 1] }), { kind: 'relu' }), 8, { kernel: [1, 1] }),
    {
      kind: 'hardSigmoid',
      alpha: 0.2,
      beta: 0.5,
    },
  );
  x = g.add('res', [x, g.mul('se', [x, gate])]);
  const e = g.act('a4', x, { kind: 'elu', alpha: 1 });
  x = g.concat('cat', [e, g.act('a5', e, { kind: 'silu' })]);
  x = g.pool('p1', x, { mode: 'max', kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }); // TensorFlow 'same': 5 -> 3
  x = g.act('a8', g.act('a7', x, { kind: 'sigmoid' }), { kind: 'tanh' });
  x = g.act('a11', g.act('a10', g.act('a9', x, { kind: 'selu' }), { kind: 'softplus' }), { kind: 'softsign' });
  x = g.pad('pd', x, [1, 0, 0, 1]); // 3 -> 4
  x = g.pool('p2', x, { mode: 'avg', kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], countIncludePad: true }); // 4 -> 2
  x = g.pool('p3', x, { mode: 'avg', kernel: [2, 2], strides: [1, 1], pads: [0, 0, 1, 1] }); // 'same', real pixels only
  x = g.pool('p4', x, { mode: 'max', kernel: [2, 2], strides: [2, 2], ceilMode: true }); // ceil adds no window: 2 -> 1
  x = g.identity('id', g.globalPool('gm', x, 'max', false));
  g.act('sm', g.dense('fc', x, 5), { kind: 'softmax' });
  return g;
}

/** Flatten in either order before a Dense, on an NCHW-input graph. */
function flattened(order: 'chw' | 'hwc'): GraphBuilder {
  const g = new GraphBuilder([2, 4, 4], 3, 'NCHW');
  const x = g.act('a', g.conv('c', 'input', 3, { pads: [1, 1, 1, 1] }), { kind: 'relu' });
  g.dense('fc', g.flatten('fl', x, order, 48), 4);
  return g;
}

function images(g: GraphBuilder, n: number, seed: number): Float32Array {
  const [c, h, w] = g.shape;
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * c * h * w }, () => 2 * rng.next() - 1);
}

function torchForward(graph: ModelGraph, x: Float32Array, n: number, training = false, model?: TorchGraphModel): Float32Array {
  const tm = model ?? TorchGraphModel.fromGraph(torch, graph);
  const s = new TensorScope(torch);
  try {
    const [c, h, w] = (graph.nodes[0] as unknown as { shape: [number, number, number] }).shape;
    return tm.forward(s, tm.input(s, x, [n, h, w, c]), training).data() as Float32Array;
  } finally {
    s.dispose();
    if (!model) tm.dispose();
  }
}

function tfjsForward(graph: ModelGraph, x: Float32Array, n: number): Float32Array {
  const model = graphToTfjs(graph);
  const [c, h, w] = (graph.nodes[0] as unknown as { shape: [number, number, number] }).shape;
  try {
    return tf.tidy(() => (model.predict(tf.tensor4d(x, [n, h, w, c])) as tf.Tensor).dataSync() as Float32Array);
  } finally {
    model.dispose();
  }
}

/** max |a - b| <= 1e-4 * max |b|. */
function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  assert.ok(m > 0, `${what}: reference output is all zeros`);
  assert.ok(d <= 1e-4 * m, `${what}: max |diff| ${d} > 1e-4 x ${m}`);
}

const N = 3;

test('libtorch: eval-mode output of a graph with every op kind equals the naive reference', { skip }, () => {
  const g = everyOp();
  for (const out of ['fc', 'sm']) {
    const graph = g.graph(out);
    const x = images(g, N, 10);
    assertClose(torchForward(graph, x, N), referenceForward(graph, x, N), `output ${out}`);
  }
});

for (const zoo of ZOO_NAMES) {
  test(`libtorch and tfjs from the graph of zoo model ${zoo} (tfjs importer) equal the tfjs model's logits`, () => {
    const model = buildZooModel(zoo, { inputShape: [16, 16, 3], numClasses: 10, width: 0.5, seed: 1 });
    try {
      const graph = graphFromLayersModel(model);
      const rng = new Rng(40);
      const x = Float32Array.from({ length: N * 16 * 16 * 3 }, () => 2 * rng.next() - 1);
      const ref = tf.tidy(() => (model.predict(tf.tensor4d(x, [N, 16, 16, 3])) as tf.Tensor).dataSync() as Float32Array);
      assertClose(tfjsForward(graph, x, N), ref, `${zoo} on tfjs from the graph`);
      if (!status.loaded) return; // the libtorch half: skipped with the reason by the tests above, required under CI
      assertClose(torchForward(graph, x, N), ref, `${zoo} on libtorch`);
      const tm = TorchGraphModel.fromGraph(torch, graph);
      try {
        assert.deepStrictEqual(tm.writeBack(), graph);
      } finally {
        tm.dispose();
      }
    } finally {
      model.dispose();
    }
  });
}

test('libtorch: Flatten in chw and hwc order feeds the Dense the columns it expects', { skip }, () => {
  for (const order of ['chw', 'hwc'] as const) {
    const g = flattened(order);
    const graph = g.graph('fc');
    const x = images(g, N, 11);
    assertClose(torchForward(graph, x, N), referenceForward(graph, x, N), order);
  }
  // The two orders differ on the same weights (so the test above can tell them apart).
  const chw = flattened('chw').graph('fc');
  const hwc = flattened('hwc').graph('fc');
  const x = images(flattened('chw'), N, 11);
  assert.notDeepEqual(Array.from(referenceForward(chw, x, N)), Array.from(referenceForward(hwc, x, N)));
});

test('libtorch: a grouped conv equals the full conv with a block-diagonal weight', { skip }, () => {
  const g = new GraphBuilder([4, 5, 5], 4);
  g.conv('gc', 'input', 6, { groups: 2, pads: [1, 1, 1, 1] });
  const grouped = g.graph('gc');
  const node = grouped.nodes[1] as Extract<ModelGraph['nodes'][number], { op: 'Conv' }>;
  const full = new Float32Array(6 * 4 * 9);
  for (let o = 0; o < 6; o++)
    for (let i = 0; i < 2; i++) for (let k = 0; k < 9; k++) full[(o * 4 + Math.floor(o / 3) * 2 + i) * 9 + k] = node.weight[(o * 2 + i) * 9 + k];
  const dense: ModelGraph = { ...grouped, nodes: [grouped.nodes[0], { ...node, groups: 1, weight: full }] };
  const x = images(g, 2, 12);
  assertClose(torchForward(grouped, x, 2), torchForward(dense, x, 2), 'grouped vs block-diagonal');
});

test('tfjs from the graph: predict equals the naive reference (and libtorch)', () => {
  const g = tfjsExpressible();
  for (const out of ['fc', 'sm']) {
    const graph = g.graph(out);
    const x = images(g, N, 13);
    const ref = referenceForward(graph, x, N);
    assertClose(tfjsForward(graph, x, N), ref, `tfjs ${out}`);
    if (status.loaded) assertClose(torchForward(graph, x, N), ref, `libtorch ${out}`);
  }
  for (const order of ['chw', 'hwc'] as const) {
    const graph = flattened(order).graph('fc');
    const x = images(flattened(order), N, 14);
    assertClose(tfjsForward(graph, x, N), referenceForward(graph, x, N), `tfjs flatten ${order}`);
  }
});

test('tfjs from the graph: nodes without an exact tfjs layer are refused by name', () => {
  const all = everyOp().graph('fc');
  assert.throws(() => graphToTfjs(all), /Node `gc` \(Conv\): grouped convolution \(groups 2 of 16 channels\) has no exact tfjs layer/);
  const g = new GraphBuilder([3, 5, 5], 5);
  g.pool('p', 'input', { mode: 'max', kernel: [2, 2], strides: [2, 2], ceilMode: true });
  assert.throws(() => graphToTfjs(g.graph('p')), /Node `p` \(Pool\): ceil-mode pooling that adds a window/);
  const h = new GraphBuilder([3, 5, 5], 5);
  h.act('hs', 'input', { kind: 'hardSwish' });
  assert.throws(() => graphToTfjs(h.graph('hs')), /Node `hs` \(Activation\): hardSwish/);
});

function batchOf(g: GraphBuilder, n: number, classes: number, seed: number): Split {
  const [c, h, w] = g.shape;
  const rng = new Rng(seed);
  return { images: images(g, n, seed), labels: Uint8Array.from({ length: n }, () => rng.int(classes)), count: n, shape: [h, w, c] };
}

test('libtorch: one SGD step changes the weights and lowers the loss on a fixed batch', { skip }, () => {
  const g = everyOp();
  const tm = TorchGraphModel.fromGraph(torch, g.graph('fc'));
  try {
    const batch = batchOf(g, 8, 5, 20);
    const opt = makeTorchOptimizer(torch, tm, { epochs: 1, batchSize: 8, learningRate: 0.05, optimizer: 'sgd', momentum: 0, numClasses: 5, seed: 0 });
    const before = tm.writeBack();
    const loss0 = torchStep(tm, opt, batch, 0.05);
    const after = tm.writeBack();
    for (const name of ['c1', 'dw', 'gc', 's1', 'fc']) {
      const w = (graph: ModelGraph) => (graph.nodes.find((n) => n.name === name) as { weight: Float32Array }).weight;
      assert.notDeepEqual(w(after), w(before), `${name}.weight changed`);
    }
    const bn = (graph: ModelGraph, name: string) => graph.nodes.find((n) => n.name === name) as { scale: Float32Array; bias: Float32Array };
    assert.notDeepEqual(bn(after, 'b1').scale, bn(before, 'b1').scale, 'a learned gamma trains');
    assert.deepEqual(bn(after, 'b2').scale, bn(before, 'b2').scale, 'a BN without learned gamma (affine.scale false) keeps it');
    assert.notDeepEqual(bn(after, 'b2').bias, bn(before, 'b2').bias);
    const s = new TensorScope(torch);
    try {
      const loss1 = torchLoss(s, tm, batch, true).item();
      assert.ok(loss1 < loss0, `loss ${loss0} -> ${loss1}`);
    } finally {
      s.dispose();
    }
  } finally {
    tm.dispose();
  }
});

test('libtorch: writeBack of an untrained model reproduces the graph; after training, the written graph runs as the trained model', { skip }, () => {
  const graph = everyOp().graph('fc');
  const tm = TorchGraphModel.fromGraph(torch, graph);
  try {
    assert.deepStrictEqual(tm.writeBack(), graph);
    const x = images(everyOp(), 4, 21);
    torchForward(graph, x, 4, true, tm); // training mode: BN moving statistics move
    const trained = tm.writeBack();
    const bn = (gr: ModelGraph) => gr.nodes.find((n) => n.name === 'b1') as { mean: Float32Array };
    assert.notDeepEqual(bn(trained).mean, bn(graph).mean);
    assert.deepEqual(torchForward(trained, x, 4), torchForward(graph, x, 4, false, tm));
  } finally {
    tm.dispose();
  }
});

test("libtorch: BN moving statistics follow Keras' momentum rule with the biased batch variance", { skip }, () => {
  const g = new GraphBuilder([2, 3, 3], 6);
  g.globalPool('gp', g.bn('bn', 'input'), 'avg', false);
  const graph = g.graph('gp');
  const n = 4;
  const x = images(g, n, 22);
  const tm = TorchGraphModel.fromGraph(torch, graph, { bnMomentum: 0.9 });
  try {
    torchForward(graph, x, n, true, tm);
    const bn = graph.nodes[1] as { mean: Float32Array; variance: Float32Array };
    const out = tm.writeBack().nodes[1] as { mean: Float32Array; variance: Float32Array };
    for (let c = 0; c < 2; c++) {
      const v: number[] = [];
      for (let i = 0; i < n * 9; i++) v.push(x[i * 2 + c]); // NHWC: channel c of every pixel
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
      assert.ok(Math.abs(out.mean[c] - (0.9 * bn.mean[c] + 0.1 * mean)) < 1e-6, `mean ${c}`);
      assert.ok(Math.abs(out.variance[c] - (0.9 * bn.variance[c] + 0.1 * variance)) < 1e-5, `variance ${c}`);
    }
  } finally {
    tm.dispose();
  }
});

test('libtorch: a weight that does not fit its node is one line naming the node', { skip }, () => {
  const g = new GraphBuilder([3, 4, 4], 7);
  g.bn('bn', g.conv('c', 'input', 4));
  const graph = g.graph('bn');
  const bad: ModelGraph = { ...graph, nodes: graph.nodes.map((n) => (n.op === 'Conv' ? { ...n, weight: n.weight.subarray(1) } : n)) };
  assert.throws(
    () => TorchGraphModel.fromGraph(torch, bad),
    /^AutopruneError: Node `c` \(Conv\) has 3 input channels, groups 1 and a weight of 107 values; expected \[out, in \/ groups, 3, 3\] \(OIHW\)$/,
  );
  const badBn: ModelGraph = { ...graph, nodes: graph.nodes.map((n) => (n.op === 'BatchNormalization' ? { ...n, mean: new Float32Array(3) } : n)) };
  assert.throws(() => TorchGraphModel.fromGraph(torch, badBn), /Node `bn` \(BatchNormalization\) has mean of 3 values; expected 4 \(one per channel\)/);
});

test('binding: lengths and arity are checked (a JS error, not a crash)', { skip }, () => {
  assert.throws(() => torch.fromData(new Float32Array(3), [2, 2]), /fromData: shape \[2,2\] holds 4 elements, the array has 3/);
  const x = torch.fromData(new Float32Array(16), [1, 1, 4, 4]);
  try {
    assert.throws(() => torch.op('linear', [x]), /Op `linear` expected a tensor as input 1, got 1 input\(s\)/);
    assert.throws(() => torch.op('max_pool2d', [x], { kernel: [2] }), /Expected `kernel` to be 2 integers, got 1/);
    assert.deepEqual(torch.op('max_pool2d', [x], { kernel: [3, 3], stride: [2, 2], ceilMode: true }).shape, [1, 1, 2, 2]);
    assert.deepEqual(torch.op('max_pool2d', [x], { kernel: [3, 3], stride: [2, 2] }).shape, [1, 1, 1, 1]);
  } finally {
    x.dispose();
  }
});

test('graph files: save and load give the graph back exactly; bad files are one line', async () => {
  const graph = everyOp().graph('sm');
  const dir = await mkdtemp(join(tmpdir(), 'graph-io-'));
  try {
    await saveGraph(graph, dir);
    assert.ok(hasGraph(dir));
    assert.deepStrictEqual(await loadGraph(dir), graph);
    const { json, bin } = encodeGraph(graph);
    const file = JSON.parse(json);
    assert.equal(file.version, GRAPH_FORMAT_VERSION);
    assert.equal(bin.byteLength, 4 * graph.nodes.reduce((a, n) => a + Object.values(n).reduce((b, v) => b + (v instanceof Float32Array ? v.length : 0), 0), 0));
    assert.throws(
      () => decodeGraph(JSON.stringify({ ...file, version: GRAPH_FORMAT_VERSION + 1 }), bin, 'g.json'),
      /^AutopruneError: Graph g.json: version 2; this autoprune reads versions 1 to 1$/,
    );
    const unknown = { ...file, nodes: file.nodes.map((n: { op: string }, i: number) => (i === 2 ? { ...n, op: 'Gemm' } : n)) };
    assert.throws(() => decodeGraph(JSON.stringify(unknown), bin, 'g.json'), /node 2 \(`b1`\) has op `Gemm`; expected one of Input, Conv/);
    assert.throws(() => decodeGraph(json, bin.subarray(0, 100), 'g.json'), /`c1.weight` at byte 0 with 216 values lies outside graph.bin \(100 bytes\)/);
    await rm(join(dir, GRAPH_BIN));
    await assert.rejects(loadGraph(dir), /graph.bin is missing next to it/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A small classifier for [12, 12, 1] images: conv-BN-relu, pool, conv-BN-relu, global pool, dense. */
function smallNet(seed: number): ModelGraph {
  const g = new GraphBuilder([1, 12, 12], seed);
  let x = g.act('a1', g.bn('b1', g.conv('c1', 'input', 6, { pads: [1, 1, 1, 1] })), { kind: 'relu' });
  x = g.pool('p', x, { mode: 'max', kernel: [2, 2], strides: [2, 2] });
  x = g.act('a2', g.bn('b2', g.conv('c2', x, 8, { pads: [1, 1, 1, 1] })), { kind: 'relu' });
  g.dense('fc', g.globalPool('gp', x, 'avg', false), 4);
  return g.graph('fc');
}

const recipe = { epochs: 1, batchSize: 32, learningRate: 0.05, optimizer: 'sgd', momentum: 0.9, numClasses: 4, seed: 1 } as const;

test('libtorch trains a graph into a new graph that scores like its tfjs twin', { skip }, async () => {
  const ds = makeSynthetic({ shape: [12, 12, 1], numClasses: 4, trainCount: 256, testCount: 128, seed: 4 });
  const graph = smallNet(8);
  const saved: number[] = [];
  const { result, graph: trained } = await trainTorchGraph(torch, graph, ds.train, recipe, { onEpochEnd: async (e) => void saved.push(e) });
  assert.equal(result.engine, 'libtorch');
  assert.equal(result.steps, 8);
  assert.deepEqual(saved, [0]);
  const conv = (gr: ModelGraph) => (gr.nodes.find((n) => n.name === 'c1') as { weight: Float32Array }).weight;
  assert.notDeepEqual(conv(trained), conv(graph));
  assert.equal(conv(smallNet(8)).join(), conv(graph).join(), 'the input graph is not changed');
  const model = graphToTfjs(trained);
  try {
    const onTorch = accuracyTorchGraph(torch, trained, ds.test);
    assert.ok(Math.abs(onTorch - accuracy(model, ds.test)) <= 1 / 128, `libtorch ${onTorch} vs tfjs ${accuracy(model, ds.test)}`);
  } finally {
    model.dispose();
  }
});

test('fitGraph on tfjs: trains through graphToTfjs and reads the weights back exactly', async () => {
  const ds = makeSynthetic({ shape: [12, 12, 1], numClasses: 4, trainCount: 64, testCount: 16, seed: 4 });
  const graph = smallNet(9);
  const model = graphToTfjs(graph);
  try {
    assert.deepStrictEqual(graphWithTfjsWeights(graph, model), graph, 'untrained: the same weights come back');
  } finally {
    model.dispose();
  }
  const { result, graph: trained } = await fitGraph(graph, ds.train, recipe, { requested: 'tfjs' });
  assert.notEqual(result.engine, 'libtorch');
  const bn = (gr: ModelGraph) => gr.nodes.find((n) => n.name === 'b1') as { scale: Float32Array; mean: Float32Array };
  assert.notDeepEqual(bn(trained).scale, bn(graph).scale);
  assert.notDeepEqual(bn(trained).mean, bn(graph).mean);
});

test('adaptive BN on libtorch: moving statistics become the plain average of the batches', { skip }, () => {
  const g = new GraphBuilder([2, 3, 3], 6);
  g.globalPool('gp', g.bn('bn', 'input'), 'avg', false);
  const graph = g.graph('gp');
  const rng = new Rng(30);
  const split: Split = { images: Float32Array.from({ length: 40 * 18 }, () => rng.next() * 4 - 1), labels: new Uint8Array(40), count: 40, shape: [3, 3, 2] };
  const o = { batches: 3, batchSize: 8, seed: 5 };
  const { graph: out, batches: used } = recalibrateBatchNormTorch(torch, graph, split, o);
  assert.equal(used, 3);
  const sums = [0, 0];
  for (const b of batches(split, o.batchSize, { shuffle: new Rng(o.seed), maxBatches: o.batches })) {
    for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let i = 0; i < b.count * 9; i++) s += b.images[i * 2 + c];
      sums[c] += s / (b.count * 9) / o.batches;
    }
  }
  const mean = (out.nodes[1] as { mean: Float32Array }).mean;
  for (let c = 0; c < 2; c++) assert.ok(Math.abs(mean[c] - sums[c]) < 1e-5, `channel ${c}: ${mean[c]} vs ${sums[c]}`);
});

test('fit on libtorch trains the model through its graph: the same weights as the LayersModel trainer', { skip }, async () => {
  const ds = makeSynthetic({ shape: [12, 12, 1], numClasses: 4, trainCount: 256, testCount: 16, seed: 4 });
  const o = { ...recipe, weightDecay: 5e-4, maxBatchesPerEpoch: 4 };
  for (const zoo of ['resnet-20', 'mobilenet-v2-tiny'] as const) {
    const build = () => buildZooModel(zoo, { inputShape: [12, 12, 1], numClasses: 4, width: 0.25, seed: 2 });
    const viaGraph = build();
    const viaLayers = build();
    try {
      const epochs: number[] = [];
      await fit(viaGraph, ds.train, { ...o, onEpochEnd: async (e) => void epochs.push(e) }, { requested: 'libtorch' });
      assert.deepEqual(epochs, [0]);
      await trainTorch(torch, viaLayers, ds.train, o);
      const a = viaGraph.getWeights();
      const b = viaLayers.getWeights();
      assert.equal(a.length, b.length);
      const before = build().getWeights();
      a.forEach((t, i) => {
        const name = viaGraph.weights[i].originalName;
        const x = t.dataSync();
        const y = b[i].dataSync();
        const scale = Math.max(...Array.from(y, Math.abs), 1e-6);
        const diff = Math.max(...Array.from(x, (v, j) => Math.abs(v - y[j])));
        assert.ok(diff <= 1e-4 * scale, `${zoo} ${name}: max |diff| ${diff} vs scale ${scale}`);
        if (/kernel|moving_mean/.test(name)) assert.notDeepEqual(x, before[i].dataSync(), `${zoo} ${name} trained`);
      });
    } finally {
      viaGraph.dispose();
      viaLayers.dispose();
    }
  }
});

test('writeGraphIntoLayersModel puts a graph back into the tfjs model it came from (conv, depthwise, separable, BN, dense)', () => {
  const input = tf.input({ shape: [6, 6, 2] });
  let y = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'c' }).apply(input) as tf.SymbolicTensor;
  y = tf.layers.batchNormalization({ center: false, name: 'bn' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, name: 'dw' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.separableConv2d({ filters: 4, kernelSize: 3, depthMultiplier: 2, padding: 'same', name: 'sep' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.dense({ units: 3, name: 'fc' }).apply(tf.layers.globalAveragePooling2d({}).apply(y)) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: y });
  try {
    const graph = graphFromLayersModel(model);
    const rng = new Rng(50);
    const changed: ModelGraph = {
      ...graph,
      nodes: graph.nodes.map(
        (n) => Object.fromEntries(Object.entries(n).map(([k, v]) => [k, v instanceof Float32Array ? v.map(() => rng.next()) : v])) as never,
      ),
    };
    writeGraphIntoLayersModel(model, changed);
    assert.deepStrictEqual(graphFromLayersModel(model), {
      ...changed,
      nodes: changed.nodes.map((n) => (n.name === 'bn' ? { ...n, bias: new Float32Array(3) } : n)),
    });
  } finally {
    model.dispose();
  }
});

for (const engine of ['libtorch', 'tfjs'] as const) {
  test(`tuneGraph on ${engine}: cut to the candidate, calibrate, fine-tune, score and save the graph`, {
    skip: engine === 'libtorch' ? skip : false,
  }, async () => {
    const ds = makeSynthetic({ shape: [12, 12, 1], numClasses: 4, trainCount: 256, testCount: 64, seed: 4 });
    const model = buildZooModel('resnet-20', { inputShape: [12, 12, 1], numClasses: 4, width: 0.25, seed: 2 });
    const base = graphFromLayersModel(model);
    model.dispose();
    const analysis = analyzeGraph(base);
    const candidate = { channels: analysis.groups.map((g) => Math.max(1, Math.floor(g.channels / 2))) };
    const dir = await mkdtemp(join(tmpdir(), 'graph-tune-'));
    try {
      const r = await tuneGraph({
        analysis,
        candidate,
        importance: 'l1',
        train: ds.train,
        score: ds.test,
        calibration: { batches: 2, batchSize: 32, seed: 1 },
        recipe: { ...recipe, maxBatchesPerEpoch: 3 },
        engine: { requested: engine },
        saveTo: dir,
      });
      assert.equal(r.engine, engine);
      assert.equal(r.train?.steps, 3);
      assert.deepEqual(
        analyzeGraph(r.graph).groups.map((g) => g.channels),
        candidate.channels,
        'the tuned graph has the candidate widths',
      );
      assert.ok(r.accuracy >= 0 && r.accuracy <= 1);
      assert.deepStrictEqual(await loadGraph(dir), r.graph);
      const twin = graphToTfjs(r.graph);
      try {
        assert.ok(Math.abs(accuracy(twin, ds.test) - r.accuracy) <= 1 / 64, 'the score is the saved graph’s');
      } finally {
        twin.dispose();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('onnxruntime on the graph’s ONNX export agrees with the reference (and libtorch) on every op kind', async () => {
  const ort = await loadOnnxRuntime();
  if (!ort) {
    assert.ok(!ci, 'onnxruntime-node is a dependency: it must load under CI');
    return;
  }
  const g = everyOp();
  for (const out of ['fc', 'sm']) {
    const graph = g.graph(out);
    const x = images(g, N, 15);
    const [c, h, w] = g.shape;
    const s = await ort.InferenceSession.create(encodeOnnx(graphToOnnx(graph)));
    try {
      const y = (await s.run({ [graph.source.inputName]: new ort.Tensor('float32', x, [N, h, w, c]) }))[graph.source.outputName].data as Float32Array;
      const ref = referenceForward(graph, x, N);
      assertClose(y, ref, `onnxruntime ${out}`);
      if (status.loaded) assertClose(torchForward(graph, x, N), y, `libtorch vs onnxruntime ${out}`);
    } finally {
      await s.release();
    }
  }
});

test('libtorch graph training holds no tensors between steps; dispose frees the parameters', { skip }, () => {
  const live0 = torch.liveTensors();
  const tm = TorchGraphModel.fromGraph(torch, everyOp().graph('fc'));
  const opt = makeTorchOptimizer(torch, tm, { ...recipe, numClasses: 5 });
  const batch = batchOf(everyOp(), 4, 5, 60);
  torchStep(tm, opt, batch, 0.01);
  const live = torch.liveTensors();
  for (let i = 0; i < 20; i++) torchStep(tm, opt, batch, 0.01);
  recalibrateBatchNormTorch(torch, tm.writeBack(), batch, { batches: 1, batchSize: 4, seed: 1 });
  accuracyTorchGraph(torch, tm.writeBack(), batch);
  assert.equal(torch.liveTensors(), live, 'handles alive after 20 more steps, a calibration and a scoring');
  tm.dispose();
  assert.equal(torch.liveTensors(), live0, 'all parameters freed');
});

test('libtorch graph gradients (float64) match central finite differences of the loss', { skip }, () => {
  const g = everyOp();
  const tm = TorchGraphModel.fromGraph(torch, g.graph('fc'), { dtype: 'float64' });
  const batch = batchOf(g, 4, 5, 70);
  // Eval-mode BN: the loss is a fixed function of the weights (no moving-statistics update between evaluations).
  const loss = (): number => {
    const s = new TensorScope(torch);
    try {
      return torchLoss(s, tm, batch, false).item();
    } finally {
      s.dispose();
    }
  };
  try {
    const s = new TensorScope(torch);
    torchLoss(s, tm, batch, false).backward();
    s.dispose();
    const rng = new Rng(71);
    for (const name of ['c1.weight', 'dw.weight', 'gc.weight', 's1.bias', 'b1.scale', 'b2.bias', 'fc.weight']) {
      const w = tm.parameter(name);
      const grad = w.grad!;
      const gv = grad.data() as Float64Array;
      grad.dispose();
      const values = w.data() as Float64Array;
      for (let k = 0; k < 2; k++) {
        const i = rng.int(values.length);
        const at = (v: number): number => {
          const t = torch.fromData(
            values.map((x, j) => (j === i ? v : x)),
            w.shape,
          );
          w.assign(t);
          t.dispose();
          return loss();
        };
        const eps = 1e-6;
        const fd = (at(values[i] + eps) - at(values[i] - eps)) / (2 * eps);
        at(values[i]);
        assert.ok(Math.abs(fd - gv[i]) <= 1e-5 * Math.max(1e-3, Math.abs(fd)) + 1e-9, `${name}[${i}]: finite difference ${fd} vs autograd ${gv[i]}`);
      }
    }
  } finally {
    tm.dispose();
  }
});

/**
 * PyTorch exports (ONNX, NCHW, BN folded) through the ONNX importer, run on libtorch, against
 * onnxruntime on the original file. Runs where the importer and its fixtures are in the tree.
 */
const onnxImporter = join(ROOT, 'src/model/ir/onnx-import.ts');
const onnxFixtures = join(ROOT, 'test/fixtures/onnx');
test('libtorch runs imported PyTorch ONNX exports as onnxruntime does', {
  skip: skip || (!existsSync(onnxImporter) && 'the ONNX importer (src/model/ir/onnx-import.ts) is not in this tree'),
}, async () => {
  const ort = await loadOnnxRuntime();
  assert.ok(ort, 'onnxruntime-node loads');
  const { importOnnx } = (await import(onnxImporter)) as { importOnnx: (bytes: Uint8Array, label?: string) => ModelGraph };
  const names = readdirSync(onnxFixtures)
    .filter((f) => f.endsWith('.onnx'))
    .map((f) => f.slice(0, -5));
  assert.ok(names.length > 0, `ONNX fixtures in ${onnxFixtures}`);
  for (const name of names) {
    const bytes = new Uint8Array(readFileSync(join(onnxFixtures, `${name}.onnx`)));
    const meta = JSON.parse(readFileSync(join(onnxFixtures, `${name}.json`), 'utf8')) as { shape: [number, number, number]; input: string; output: string };
    const graph = importOnnx(bytes, name);
    const [c, h, w] = meta.shape;
    const rng = new Rng(80);
    const x = Float32Array.from({ length: N * c * h * w }, () => 2 * rng.next() - 1);
    const s = await ort.InferenceSession.create(bytes);
    let ref: Float32Array;
    try {
      ref = (await s.run({ [meta.input]: new ort.Tensor('float32', x, [N, c, h, w]) }))[meta.output].data as Float32Array;
    } finally {
      await s.release();
    }
    const tm = TorchGraphModel.fromGraph(torch, graph);
    const scope = new TensorScope(torch);
    try {
      assertClose(tm.forward(scope, tm.input(scope, x, [N, c, h, w], 'NCHW'), false).data(), ref, name);
    } finally {
      scope.dispose();
      tm.dispose();
    }
  }
});
