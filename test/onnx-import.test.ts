/**
 * ONNX import (src/model/ir/onnx-import.ts), plan.json and apply_plan.py, with PyTorch as the reference:
 * - the fixtures exported by scripts/torch-fixtures.py reproduce PyTorch's logits in onnxruntime
 *   (the fixtures themselves are right, batch axis dynamic);
 * - every fixture imports; the same network exported at two opsets imports to the same graph;
 * - graphs built here in the patterns of tf2onnx and others compute onnxruntime's own logits after
 *   import and export; unsupported ops are refused with one line naming the node and the op;
 * - per fixture: keep-all cut = original logits, zero-filter cut = the zeroed model, costs of random
 *   candidates = a count from the cut arrays, the pruned ONNX keeps its input name and batch axis;
 * - PyTorch models sliced by apply_plan.py to a plan reproduce the pruned ONNX's logits;
 * - `autoprune inspect model.onnx` and loadBaseGraph.
 * The full-width torchvision fixtures (resnet18 is 45 MB) are generated into .tmp/torch-fixtures
 * when torch is present; without it those cases skip with a message, except under CI=true.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { AutopruneError, ErrorCodes } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import { proxyBase } from '../src/evaluators/onnx.js';
import { onnxProxy } from '../src/evaluators/onnx-proxy.js';
import type { BaseSource } from '../src/evaluators/options.js';
import { loadBaseGraph, loadBaseModel } from '../src/evaluators/setup.js';
import { analyzeGraph } from '../src/model/ir/analyze.js';
import { graphCost } from '../src/model/ir/cost.js';
import { cutGraph } from '../src/model/ir/cut.js';
import type { ModelGraph, Node } from '../src/model/ir/graph.js';
import { batchDims, toInputLayout } from '../src/model/ir/layout.js';
import { importOnnx } from '../src/model/ir/onnx-import.js';
import { buildPlan, torchModulePath, writePlan } from '../src/model/ir/plan.js';
import { graphToOnnx } from '../src/model/ir/to-onnx.js';
import type { OnnxGraph, OnnxNode } from '../src/model/onnx.js';
import { encodeOnnx } from '../src/model/onnx-proto.js';
import { cli, oneLine, ROOT } from './helpers.js';
import {
  CI,
  countCost,
  EXTRA,
  EXTRA_FIXTURES,
  type Fixture,
  LARGE,
  LARGE_FIXTURES,
  largeSkip,
  onnxSummary,
  PYTHON,
  randomKeep,
  range,
  readNpy,
  SMALL,
  SMALL_FIXTURES,
  torchAvailable,
  zeroDropped,
} from './torch-fixtures.js';

// No graph optimisation: for a batch of two images, onnxruntime's rewrites (constant folding, NCHWc
// layouts) cost more session set-up than they save (resnet18: 0.06 s instead of 0.3 s).
const sessionOpts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'disabled' };

async function run(model: Uint8Array | string, input: string, x: Float32Array, dims: readonly number[]): Promise<Float32Array> {
  const s = typeof model === 'string' ? await ort.InferenceSession.create(model, sessionOpts) : await ort.InferenceSession.create(model, sessionOpts);
  try {
    const out = await s.run({ [input]: new ort.Tensor('float32', x, dims) });
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

/** max |a - b| <= tol * max |ref| (relative to the largest logit). */
function assertClose(got: Float32Array, ref: Float32Array, tol: number, what: string): void {
  assert.equal(got.length, ref.length, `${what}: ${got.length} values, expected ${ref.length}`);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]));
    err = Math.max(err, Math.abs(got[i] - ref[i]));
  }
  assert.ok(scale > 0, `${what}: reference logits are all zero`);
  assert.ok(err <= tol * scale, `${what}: max |diff| ${err.toExponential(3)} > ${tol} x max|logit| ${scale.toExponential(3)}`);
}

const opCounts = (g: ModelGraph): Record<string, number> => {
  const c: Record<string, number> = {};
  for (const n of g.nodes) {
    const k = n.op === 'Activation' ? `Activation:${n.fn.kind}` : n.op;
    c[k] = (c[k] ?? 0) + 1;
  }
  return c;
};
const loadFixture = (f: Fixture): ModelGraph => importOnnx(readFileSync(join(f.dir, `${f.name}.onnx`)), `${f.name}.onnx`);

describe('PyTorch fixtures', () => {
  test('the fixture set is complete', { skip: largeSkip ?? false }, () => {
    assert.deepEqual(SMALL_FIXTURES.map((f) => f.name).sort(), [
      'mobilenet_v3_small-025-opset13',
      'mobilenet_v3_small-025-opset17',
      'tiny-opset11',
      'tiny-opset9',
    ]);
    assert.equal(LARGE_FIXTURES.length, 5);
  });

  for (const f of [...SMALL_FIXTURES, ...LARGE_FIXTURES]) {
    test(`${f.name}: onnxruntime reproduces PyTorch's logits at batch 2 (dynamic batch axis)`, async () => {
      const x = readNpy(join(f.dir, `${f.name}.input.npy`));
      const ref = readNpy(join(f.dir, `${f.name}.logits.npy`));
      assert.deepEqual(x.shape, [2, 3, 32, 32]);
      assertClose(await run(join(f.dir, `${f.name}.onnx`), 'input', x.data, x.shape), ref.data, 1e-4, f.name);
    });
  }
});

describe('ONNX import of PyTorch exports', () => {
  for (const f of [...SMALL_FIXTURES, ...LARGE_FIXTURES]) {
    test(`${f.name} imports as an NCHW graph with its source names`, () => {
      const t0 = performance.now();
      const g = loadFixture(f);
      assert.ok(performance.now() - t0 < 5000, `import took ${performance.now() - t0} ms`);
      assert.equal(g.inputLayout, 'NCHW');
      assert.deepEqual({ ...g.source, origin: undefined }, { format: 'onnx', inputName: 'input', outputName: 'logits', origin: undefined });
      const input = g.nodes.find((n) => n.name === g.input);
      assert.deepEqual(input?.op === 'Input' && input.shape, [3, 32, 32]);
      const origin = g.source.origin ?? {};
      for (const n of g.nodes) if (n.op !== 'Input') assert.match(origin[n.name], /^\//, `${n.name} has an ONNX node name`);
    });
  }

  test('the pattern net maps every idiom to its node (hand count)', () => {
    const g = loadFixture({ name: 'tiny-opset11', dir: SMALL });
    assert.deepEqual(opCounts(g), {
      Input: 1,
      Conv: 9,
      'Activation:clip': 1, // ReLU6
      'Activation:leakyRelu': 1,
      'Activation:elu': 1,
      Pad: 1, // ZeroPad2d (opset 11: pads from a constant subgraph)
      'Activation:tanh': 1,
      Concat: 1,
      Pool: 3, // MaxPool ceil mode, AvgPool2d count_include_pad=False, avg_pool2d
      'Activation:silu': 1, // x * sigmoid(x)
      GlobalPool: 1, // x.mean((2, 3), keepdim=True)
      'Activation:relu': 3,
      'Activation:sigmoid': 1, // the SE gate
      Mul: 1, // x * gate
      Add: 1,
      'Activation:hardSwish': 1, // x * HardSigmoid(x)
      Flatten: 1, // x.view(x.size(0), -1)
      Dense: 2,
    });
    const pool = g.nodes.find((n) => n.name === '/pool/MaxPool');
    assert.ok(pool?.op === 'Pool' && pool.ceilMode && pool.mode === 'max');
    const avg = g.nodes.find((n) => n.name === '/avg/AveragePool');
    assert.ok(avg?.op === 'Pool' && !avg.countIncludePad && avg.mode === 'avg');
    const dw = g.nodes.find((n) => n.name === '/dw/dw.0/Conv');
    assert.ok(dw?.op === 'Conv' && dw.groups === 8 && dw.weight.length === 8 * 9);
    const relu6 = g.nodes.find((n) => n.name === '/stem/stem.2/Clip');
    assert.deepEqual(relu6?.op === 'Activation' && relu6.fn, { kind: 'clip', min: 0, max: 6 });
    const pad = g.nodes.find((n) => n.op === 'Pad');
    assert.deepEqual(pad?.op === 'Pad' && pad.pads, [0, 0, 1, 1]);
  });

  /** Ops, attributes-free, and weights of the conv/dense nodes, in graph order. */
  const skeleton = (g: ModelGraph) =>
    g.nodes.map((n: Node) => ({
      op: n.op === 'Activation' ? `${n.op}:${n.fn.kind}` : n.op,
      w: n.op === 'Conv' || n.op === 'Dense' ? [Array.from(n.weight), n.bias ? Array.from(n.bias) : null] : null,
    }));

  test('one network exported at two opsets imports to the same graph (Clip attributes vs inputs, HardSwish op vs HardSigmoid*x)', () => {
    const a = loadFixture({ name: 'tiny-opset9', dir: SMALL });
    const b = loadFixture({ name: 'tiny-opset11', dir: SMALL });
    assert.deepEqual(skeleton(a), skeleton(b));
    const c = loadFixture({ name: 'mobilenet_v3_small-025-opset13', dir: SMALL });
    const d = loadFixture({ name: 'mobilenet_v3_small-025-opset17', dir: SMALL });
    assert.deepEqual(skeleton(c), skeleton(d));
    assert.equal(opCounts(d)['Activation:hardSwish'], 19);
  });

  test('weights shared between nodes in the ONNX file are copied per node', () => {
    // torch.onnx.export de-duplicates the identical (zero) SE biases of MobileNetV3 into Identity-of-initializer nodes.
    const g = loadFixture({ name: 'mobilenet_v3_small-025-opset13', dir: SMALL });
    const biases = g.nodes.flatMap((n) => (n.op === 'Conv' && n.bias ? [n.bias] : []));
    assert.equal(new Set(biases.map((b) => b.buffer)).size, biases.length);
  });
});

// ---- hand-built graphs in the patterns of tf2onnx and other exporters

const f32 = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.31 + i * 1.7) * 0.5);
interface Spec {
  readonly nodes: OnnxNode[];
  readonly inits: OnnxGraph['initializers'];
  readonly input: readonly (number | string)[];
  readonly classes: number;
  readonly opset?: number;
}
function model({ nodes, inits, input, classes, opset = 13 }: Spec): Uint8Array {
  return encodeOnnx(
    { name: 'hand', nodes, initializers: inits, inputs: [{ name: 'x', shape: input }], outputs: [{ name: 'y', shape: ['N', classes] }] },
    '0',
    opset,
  );
}
const node = (op: string, name: string, inputs: string[], attrs?: OnnxNode['attrs']): OnnxNode => ({ op, name, inputs, outputs: [name], attrs });

/** tf2onnx's way: NHWC input and a Transpose, SAME padding, an unfolded BN, ReLU6, ReduceMean, MatMul + Add. */
function tf2onnxStyle(): Uint8Array {
  return model({
    input: ['N', 8, 8, 3],
    classes: 5,
    nodes: [
      node('Transpose', 'nchw', ['x'], { perm: { ints: [0, 3, 1, 2] } }),
      node('Conv', 'conv1', ['nchw', 'w1'], { auto_pad: { s: 'SAME_UPPER' }, strides: { ints: [2, 2] }, kernel_shape: { ints: [3, 3] } }),
      node('BatchNormalization', 'bn1', ['conv1', 'g1', 'b1', 'm1', 'v1'], { epsilon: { f: 1e-3 } }),
      node('Clip', 'relu6', ['bn1', 'lo', 'hi']),
      node('Conv', 'dw', ['relu6', 'wdw', 'bdw'], { group: { i: 6 }, pads: { ints: [1, 1, 1, 1] } }),
      node('Relu', 'relu', ['dw']),
      node('Dropout', 'drop', ['relu']),
      node('ReduceMean', 'gap', ['drop'], { axes: { ints: [2, 3] }, keepdims: { i: 0 } }),
      node('MatMul', 'fc', ['gap', 'wfc']),
      node('Add', 'fc_bias', ['fc', 'bfc']),
      node('Softmax', 'y', ['fc_bias'], { axis: { i: -1 } }),
    ],
    inits: [
      { name: 'w1', dims: [6, 3, 3, 3], data: f32(162, 1) },
      { name: 'g1', dims: [6], data: f32(6, 2).map((v) => 1 + v) },
      { name: 'b1', dims: [6], data: f32(6, 3) },
      { name: 'm1', dims: [6], data: f32(6, 4) },
      { name: 'v1', dims: [6], data: f32(6, 5).map((v) => 1 + v) },
      { name: 'lo', dims: [], data: Float32Array.of(0) },
      { name: 'hi', dims: [], data: Float32Array.of(6) },
      { name: 'wdw', dims: [6, 1, 3, 3], data: f32(54, 6) },
      { name: 'bdw', dims: [6], data: f32(6, 7) },
      { name: 'wfc', dims: [6, 5], data: f32(30, 8) },
      { name: 'bfc', dims: [5], data: f32(5, 9) },
    ],
  });
}

/** Gemm without transB and with alpha/beta, Squeeze, Sum, GlobalMaxPool, a Conv's bias as a separate Add. */
function gemmStyle(): Uint8Array {
  return model({
    input: ['N', 2, 4, 4],
    classes: 3,
    nodes: [
      node('Conv', 'a', ['x', 'wa'], { kernel_shape: { ints: [1, 1] } }),
      node('Add', 'a_bias', ['a', 'ba']),
      node('Conv', 'b', ['x', 'wb'], { kernel_shape: { ints: [1, 1] } }),
      node('Sum', 'sum', ['a_bias', 'b']),
      node('GlobalMaxPool', 'gmp', ['sum']),
      node('Squeeze', 'sq', ['gmp', 'axes']),
      node('Gemm', 'y', ['sq', 'wg', 'bg'], { alpha: { f: 2 }, beta: { f: 0.5 } }),
    ],
    inits: [
      { name: 'wa', dims: [4, 2, 1, 1], data: f32(8, 1) },
      { name: 'ba', dims: [1, 4, 1, 1], data: f32(4, 2) },
      { name: 'wb', dims: [4, 2, 1, 1], data: f32(8, 3) },
      { name: 'axes', dims: [2], data: BigInt64Array.from([2n, 3n]) },
      { name: 'wg', dims: [4, 3], data: f32(12, 4) },
      { name: 'bg', dims: [3], data: f32(3, 5) },
    ],
  });
}

/** Keras' Flatten -> Dense as tf2onnx writes it: the NCHW map transposed back to NHWC, reshaped to [-1, H*W*C]. */
function kerasFlatten(): Uint8Array {
  return model({
    input: ['N', 5, 5, 2],
    classes: 4,
    nodes: [
      node('Transpose', 'nchw', ['x'], { perm: { ints: [0, 3, 1, 2] } }),
      node('Conv', 'conv', ['nchw', 'w', 'b'], { kernel_shape: { ints: [3, 3] } }),
      node('Relu', 'relu', ['conv']),
      node('Transpose', 'nhwc', ['relu'], { perm: { ints: [0, 2, 3, 1] } }),
      node('Reshape', 'flat', ['nhwc', 'shape']),
      node('MatMul', 'fc', ['flat', 'wfc']),
      node('Add', 'y', ['fc', 'bfc']),
    ],
    inits: [
      { name: 'w', dims: [3, 2, 3, 3], data: f32(54, 1) },
      { name: 'b', dims: [3], data: f32(3, 2) },
      { name: 'shape', dims: [2], data: BigInt64Array.from([-1n, 27n]) },
      { name: 'wfc', dims: [27, 4], data: f32(108, 3) },
      { name: 'bfc', dims: [4], data: f32(4, 4) },
    ],
  });
}

/** Opset 18: ReduceMean's axes as an input. */
function opset18(): Uint8Array {
  return model({
    input: ['N', 2, 4, 4],
    classes: 3,
    opset: 18,
    nodes: [
      node('Conv', 'conv', ['x', 'w'], { kernel_shape: { ints: [1, 1] } }),
      node('ReduceMean', 'gap', ['conv', 'axes'], { keepdims: { i: 0 } }),
      node('Gemm', 'y', ['gap', 'wg'], { transB: { i: 1 } }),
    ],
    inits: [
      { name: 'w', dims: [5, 2, 1, 1], data: f32(10, 1) },
      { name: 'axes', dims: [2], data: BigInt64Array.from([-2n, -1n]) },
      { name: 'wg', dims: [3, 5], data: f32(15, 2) },
    ],
  });
}

/** A channel shuffle (ShuffleNet): Reshape to [N, g, C/g, H, W], Transpose, Reshape back. */
function channelShuffle(): Uint8Array {
  return model({
    input: ['N', 4, 4, 4],
    classes: 4,
    nodes: [
      node('Conv', 'conv', ['x', 'w'], { kernel_shape: { ints: [1, 1] } }),
      node('Reshape', 'split', ['conv', 's1']),
      node('Transpose', 'shuffle', ['split'], { perm: { ints: [0, 2, 1, 3, 4] } }),
      node('Reshape', 'merge', ['shuffle', 's2']),
      node('GlobalAveragePool', 'gap', ['merge']),
      node('Flatten', 'y', ['gap']),
    ],
    inits: [
      { name: 'w', dims: [4, 4, 1, 1], data: f32(16, 1) },
      { name: 's1', dims: [5], data: BigInt64Array.from([0n, 2n, 2n, 4n, 4n]) },
      { name: 's2', dims: [4], data: BigInt64Array.from([0n, 4n, 4n, 4n]) },
    ],
  });
}

function refused(bytes: Uint8Array, pattern: RegExp): AutopruneError {
  try {
    importOnnx(bytes, 'hand.onnx');
  } catch (e) {
    assert.ok(e instanceof AutopruneError, `expected an AutopruneError, got ${e}`);
    assert.equal(e.code, ErrorCodes.MODEL_UNSUPPORTED_LAYER);
    assert.equal(e.message.split('\n').length, 1, e.message);
    assert.match(e.message, pattern);
    return e;
  }
  assert.fail('expected the import to be refused');
}

describe('more torchvision architectures (when generated)', { skip: EXTRA_FIXTURES.length === 0 ? `none in ${EXTRA}` : false }, () => {
  for (const f of EXTRA_FIXTURES) {
    test(`${f.name}: imports and reproduces PyTorch's logits after export, or is refused in one line (channel shuffle)`, async () => {
      const bytes = readFileSync(join(f.dir, `${f.name}.onnx`));
      if (f.name.startsWith('shufflenet')) {
        assert.throws(
          () => importOnnx(bytes, f.name),
          (e: Error) => e instanceof AutopruneError && /\(op `Reshape`\).*channel shuffle/.test(e.message) && !e.message.includes('\n'),
        );
        return;
      }
      const x = readNpy(join(f.dir, `${f.name}.input.npy`));
      const g = importOnnx(bytes, f.name);
      assert.ok(analyzeGraph(g).groups.length > 0);
      assertClose(await graphLogits(g, x), readNpy(join(f.dir, `${f.name}.logits.npy`)).data, 1e-4, f.name);
    });
  }
});

describe('ONNX import of other exporters', () => {
  test('tf2onnx style: NHWC input, SAME padding, unfolded BN, Clip(0, 6), ReduceMean, MatMul + Add, Softmax', () => {
    const g = importOnnx(tf2onnxStyle(), 'hand.onnx');
    assert.equal(g.inputLayout, 'NHWC');
    const input = g.nodes[0];
    assert.deepEqual(input.op === 'Input' && input.shape, [3, 8, 8]);
    const conv = g.nodes.find((n) => n.name === 'conv1');
    assert.deepEqual(conv?.op === 'Conv' && conv.pads, [0, 0, 1, 1]); // 8 -> 4 with a 3x3 stride 2: the odd pixel at the end
    assert.deepEqual(conv?.op === 'Conv' && conv.inputs, ['x']);
    const fc = g.nodes.find((n) => n.op === 'Dense');
    assert.ok(fc?.op === 'Dense' && fc.bias !== null && fc.units === 5);
    assert.equal(fc?.weight[1], f32(30, 8)[5]); // [in, out] -> [out, in]: w[o=0][i=1] = B[i=1][o=0]
    assert.deepEqual(
      g.nodes.map((n) => n.op),
      ['Input', 'Conv', 'BatchNormalization', 'Activation', 'Conv', 'Activation', 'Identity', 'GlobalPool', 'Dense', 'Activation'],
    );
    const gap = g.nodes.find((n) => n.op === 'GlobalPool');
    assert.ok(gap?.op === 'GlobalPool' && !gap.keepDims);
  });

  test('Gemm without transB and with alpha/beta; Squeeze of [C, 1, 1]; Sum; GlobalMaxPool; Conv + Add of a constant bias', () => {
    const bytes = gemmStyle();
    const g = importOnnx(bytes, 'hand.onnx');
    assert.deepEqual(
      g.nodes.map((n) => n.op),
      ['Input', 'Conv', 'Conv', 'Add', 'GlobalPool', 'Flatten', 'Dense'],
    );
    const a = g.nodes[1];
    assert.deepEqual(a.op === 'Conv' && Array.from(a.bias ?? []), Array.from(f32(4, 2)));
    const d = g.nodes[6];
    assert.ok(d.op === 'Dense');
    assert.equal(d.weight[1 * 4 + 2], 2 * f32(12, 4)[2 * 3 + 1]); // alpha * B[i=2][o=1]
    assert.equal(d.bias?.[2], Math.fround(0.5 * f32(3, 5)[2]));
  });

  test('a Transpose to channels-last before a flatten is a Flatten in Keras order', () => {
    const g = importOnnx(kerasFlatten(), 'hand.onnx');
    const flat = g.nodes.find((n) => n.op === 'Flatten');
    assert.ok(flat?.op === 'Flatten' && flat.order === 'hwc');
  });

  test('the hand-built graphs compute the same logits as imported, exported and run again (NHWC input, SAME pads, alpha/beta, Keras flatten, opset 18)', async () => {
    const rng = new Rng(5);
    for (const [bytes, dims] of [
      [tf2onnxStyle(), [3, 8, 8, 3]],
      [gemmStyle(), [3, 2, 4, 4]],
      [kerasFlatten(), [3, 5, 5, 2]],
      [opset18(), [3, 2, 4, 4]],
    ] as const) {
      const x = Float32Array.from({ length: dims.reduce((p, q) => p * q, 1) }, () => rng.uniform(-1, 1));
      const want = await run(bytes, 'x', x, dims);
      const g = importOnnx(bytes, 'hand.onnx');
      assertClose(await graphLogits(g, { data: x, shape: [...dims] }), want, 1e-5, g.nodes.map((n) => n.op).join(' '));
    }
  });

  test('a channel shuffle is refused with one line naming the node and op', () => {
    refused(channelShuffle(), /^ONNX node `split` \(op `Reshape`\) in `hand\.onnx` reshapes \[batch, 4, 4, 4\] to \[0,2,2,4,4\]; expected a flatten/);
  });

  test('an unknown op is refused with the list of supported ops', () => {
    const bytes = model({
      input: ['N', 3, 4, 4],
      classes: 3,
      nodes: [node('LRN', 'lrn', ['x'], { size: { i: 3 } }), node('GlobalAveragePool', 'gap', ['lrn']), node('Flatten', 'y', ['gap'])],
      inits: [],
    });
    refused(bytes, /^ONNX node `lrn` \(op `LRN`\) in `hand\.onnx` is not supported; supported ops: Conv, BatchNormalization, .*Transpose$/);
  });

  test('a Mul by a constant and a Transpose in the body are refused', () => {
    const mulConst = model({
      input: ['N', 3, 4, 4],
      classes: 3,
      nodes: [node('Mul', 'scale', ['x', 'k']), node('GlobalAveragePool', 'gap', ['scale']), node('Flatten', 'y', ['gap'])],
      inits: [{ name: 'k', dims: [], data: Float32Array.of(2) }],
    });
    refused(mulConst, /`scale` \(op `Mul`\).*has a constant factor; expected a feature map/);
    const transpose = model({
      input: ['N', 3, 4, 4],
      classes: 4,
      nodes: [node('Transpose', 't', ['x'], { perm: { ints: [0, 2, 1, 3] } }), node('GlobalAveragePool', 'gap', ['t']), node('Flatten', 'y', ['gap'])],
      inits: [],
    });
    refused(transpose, /`t` \(op `Transpose`\).*permutes axes \[0,2,1,3\]/);
  });

  test('a model that is not ONNX, or not an image classifier, is refused in one line', () => {
    assert.throws(() => importOnnx(new TextEncoder().encode('{"modelTopology": 1}'), 'model.json'), /`model\.json` is not an ONNX model/);
    const noImage = encodeOnnx(
      { name: 'v', nodes: [node('Relu', 'y', ['x'])], initializers: [], inputs: [{ name: 'x', shape: ['N', 10] }], outputs: [{ name: 'y', shape: ['N', 10] }] },
      '0',
    );
    assert.throws(
      () => importOnnx(noImage, 'vec.onnx'),
      (e: Error) => e instanceof AutopruneError && /expected float32 images \[batch, C, H, W\]/.test(e.message),
    );
  });
});

describe('helpers', () => {
  test('toInputLayout: HWC images to CHW for an NCHW model, unchanged for NHWC', () => {
    const hwc = Float32Array.from({ length: 2 * 2 * 3 * 2 }, (_, i) => i); // 2 images of 2x3 pixels, 2 channels
    const chw = toInputLayout(hwc, [2, 3, 2], 'NCHW');
    // image 0, channel 1, pixel (y=1, x=2): HWC index (1*3+2)*2+1 = 11; CHW index 1*6 + 1*3+2 = 11
    assert.equal(chw[6 + 5], hwc[11]);
    assert.equal(chw[12 + 0], hwc[12]); // image 1, channel 0, pixel 0
    assert.equal(chw[12 + 6], hwc[13]); // image 1, channel 1, pixel 0
    assert.deepEqual(batchDims(2, [2, 3, 2], 'NCHW'), [2, 2, 2, 3]);
    assert.equal(toInputLayout(hwc, [2, 3, 2], 'NHWC'), hwc);
  });
});

// ---- with analysis, cut and export

const ALL_FIXTURES = [...SMALL_FIXTURES, ...LARGE_FIXTURES];

async function graphLogits(g: ModelGraph, x: { data: Float32Array; shape: number[] }): Promise<Float32Array> {
  return run(encodeOnnx(graphToOnnx(g)), g.source.inputName, x.data, x.shape);
}

describe('import, analysis, cut and export of the PyTorch fixtures', () => {
  for (const f of ALL_FIXTURES) {
    test(`${f.name}: keep-all, zero-filter and random cuts; the pruned ONNX keeps its input name and batch axis`, async () => {
      const t0 = performance.now();
      const x = readNpy(join(f.dir, `${f.name}.input.npy`));
      const ref = await run(join(f.dir, `${f.name}.onnx`), 'input', x.data, x.shape);
      const g = loadFixture(f);
      const a = analyzeGraph(g);
      assert.ok(a.groups.length > 0, 'has prunable groups');

      const all = a.groups.map((gr) => range(gr.channels));
      assertClose(await graphLogits(cutGraph(g, a, all), x), ref, 1e-4, `${f.name} keep-all`);

      const rng = new Rng(`${f.name}-cut`);
      // At least half of each group, so that the zeroed model still has non-zero logits to compare.
      const keep = randomKeep(a, rng, 0.5);
      const zeroed = zeroDropped(a, keep);
      const zeroedLogits = await graphLogits(zeroed, x);
      const cut = cutGraph(g, a, keep);
      const cutLogits = await graphLogits(cut, x);
      assertClose(cutLogits, zeroedLogits, 1e-5, `${f.name} zero-filter cut`);

      for (const [i, k] of [keep, randomKeep(a, rng)].entries()) {
        const c = { channels: k.map((v) => v.length) };
        assert.deepEqual(graphCost(a, c), countCost(i === 0 ? cut : cutGraph(g, a, k)), `${f.name} cost of random candidate ${i}`);
      }
      assert.deepEqual(graphCost(a, null), countCost(g));

      const bytes = encodeOnnx(graphToOnnx(cut));
      const pruned = onnxSummary(bytes);
      const base = onnxSummary(readFileSync(join(f.dir, `${f.name}.onnx`)));
      assert.ok(pruned.params < base.params, `${pruned.params} params, base ${base.params}`);
      assert.equal(pruned.params, graphCost(a, { channels: keep.map((v) => v.length) }).params);
      assert.equal(pruned.input, 'input');
      assert.equal(pruned.inDims[0].dim_param, 'batch');
      assert.ok(pruned.outDims[0].dim_param, 'output batch axis is symbolic');
      // The exported pruned model imports again, to a graph that computes the same logits.
      const again = importOnnx(bytes, 'pruned.onnx');
      assertClose(await graphLogits(again, x), cutLogits, 1e-5, `${f.name} pruned re-import`);
      const ms = performance.now() - t0;
      assert.ok(ms < 20_000, `${f.name} took ${ms.toFixed(0)} ms`);
    });
  }

  test('squeeze-and-excitation: the gate convolution and the gated channels are one group', () => {
    const g = loadFixture({ name: 'mobilenet_v3_small-025-opset13', dir: SMALL });
    const a = analyzeGraph(g);
    const se = a.groups.find((gr) => gr.layers.includes('/features/features.1/block/block.1/fc2/Conv'));
    assert.ok(se, 'the SE expand conv is prunable');
    assert.ok(se.layers.includes('/features/features.1/block/block.0/block.0.0/Conv'), se.layers.join(' '));
  });

  test("squeezenet's classifier conv reaches the output through global pooling: its inputs are cut, its outputs never", { skip: largeSkip ?? false }, () => {
    const g = loadFixture({ name: 'squeezenet1_1', dir: LARGE });
    const a = analyzeGraph(g);
    const name = '/classifier/classifier.1/Conv';
    assert.ok(!a.groups.some((gr) => gr.layers.includes(name)));
    const cut = cutGraph(
      g,
      a,
      a.groups.map((gr) => range(Math.ceil(gr.channels / 2))),
    );
    const before = g.nodes.find((n) => n.name === name);
    const after = cut.nodes.find((n) => n.name === name);
    assert.ok(before?.op === 'Conv' && after?.op === 'Conv');
    assert.equal(before.weight.length, 10 * 512);
    assert.equal(after.weight.length, 10 * 256);
    assert.equal(after.bias?.length, 10);
  });
});

describe('plan.json and apply_plan.py: the cut back in PyTorch', () => {
  const skip = torchAvailable() ? false : CI ? false : `torch/torchvision not importable by ${PYTHON}`;
  const cases = [
    { name: 'tiny-opset11', dir: SMALL },
    { name: 'mobilenet_v3_small-025-opset13', dir: SMALL },
    ...LARGE_FIXTURES.filter((f) => ['resnet18', 'mobilenet_v2', 'squeezenet1_1', 'efficientnet_b0'].includes(f.name)),
  ];
  if (!largeSkip) assert.equal(cases.length, 6);
  test(`${cases.map((f) => f.name).join(', ')}: the PyTorch models sliced by apply_plan.py reproduce the pruned ONNX logits`, { skip }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plan-'));
    const args: string[] = [];
    const want: Float32Array[] = [];
    for (const [i, f] of cases.entries()) {
      const x = readNpy(join(f.dir, `${f.name}.input.npy`));
      const g = loadFixture(f);
      const a = analyzeGraph(g);
      const keep = randomKeep(a, new Rng(`${f.name}-plan`));
      want.push(await graphLogits(cutGraph(g, a, keep), x));
      const plan = buildPlan(a, keep);
      assert.ok(plan.nodes.length > 0);
      for (const n of plan.nodes) assert.ok(n.module, `${n.source} has a module path`);
      const sub = join(dir, String(i));
      await mkdir(sub);
      assert.deepEqual(await writePlan(sub, plan), ['plan.json', 'apply_plan.py']);
      args.push('--apply', join(sub, 'plan.json'), '--fixture', join(f.dir, f.name), '--logits-out', join(sub, 'logits.npy'));
    }
    // One Python process for all models: importing torch costs seconds.
    const r = spawnSync(PYTHON, ['scripts/torch-fixtures.py', ...args], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    cases.forEach((f, i) => assertClose(readNpy(join(dir, String(i), 'logits.npy')).data, want[i], 1e-4, `${f.name}: PyTorch vs pruned ONNX`));
  });

  test('plan.json names each cut node by its ONNX node and module path, with kept indices', () => {
    const g = loadFixture({ name: 'tiny-opset11', dir: SMALL });
    const a = analyzeGraph(g);
    const keep = a.groups.map((gr) => range(gr.channels).filter((i) => i % 2 === 0));
    const plan = buildPlan(a, keep);
    const fc1 = plan.nodes.find((n) => n.source === '/fc1/Gemm');
    assert.ok(fc1);
    assert.equal(fc1.module, 'fc1');
    // fc1 reads the 12 channels x 2 x 2 of the flattened map: channel c is features 4c..4c+3.
    const kept = keep[a.groups.findIndex((gr) => gr.layers.includes('/res/res.0/Conv'))];
    assert.deepEqual(
      fc1.keepIn,
      kept.flatMap((c) => [4 * c, 4 * c + 1, 4 * c + 2, 4 * c + 3]),
    );
    assert.deepEqual(fc1.keepOut, keep[a.groups.findIndex((gr) => gr.id === '/fc1/Gemm')]);
    const dw = plan.nodes.find((n) => n.source === '/dw/dw.0/Conv');
    assert.deepEqual(dw?.keepIn, dw?.keepOut);
  });

  test('torchModulePath reads the module path from torch.onnx.export node names', () => {
    assert.equal(torchModulePath('/layer1/layer1.0/conv1/Conv'), 'layer1.0.conv1');
    assert.equal(torchModulePath('/features/features.0/features.0.0/Conv'), 'features.0.0');
    assert.equal(torchModulePath('/features/features.1/block/block.1/fc1/Conv'), 'features.1.block.1.fc1');
    assert.equal(torchModulePath('/fc/Gemm'), 'fc');
    assert.equal(torchModulePath('/Flatten'), null);
    assert.equal(torchModulePath('conv1'), null);
  });
});

describe('autoprune inspect model.onnx', () => {
  test('prints the groups and costs of the graph (JSON), the same as the analysis', async () => {
    const path = 'test/fixtures/onnx/mobilenet_v3_small-025-opset13.onnx';
    const r = await cli('inspect', path, '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { input: unknown; groups: { id: string; channels: number }[]; total: { macs: number; params: number } };
    const a = analyzeGraph(importOnnx(readFileSync(join(ROOT, path))));
    assert.deepEqual(out.input, { name: 'input', layout: 'NCHW', shape: [3, 32, 32] });
    assert.deepEqual(
      out.groups.map((g) => [g.id, g.channels]),
      a.groups.map((g) => [g.id, g.channels]),
    );
    assert.deepEqual(out.total, countCost(a.graph));
  });

  test('a model with an unsupported op fails in one line naming the node and op', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inspect-'));
    const bytes = model({
      input: ['N', 3, 4, 4],
      classes: 3,
      nodes: [
        node('LRN', '/features/lrn/LRN', ['x'], { size: { i: 3 } }),
        node('GlobalAveragePool', 'gap', ['/features/lrn/LRN']),
        node('Flatten', 'y', ['gap']),
      ],
      inits: [],
    });
    await writeFile(join(dir, 'lrn.onnx'), bytes);
    const line = oneLine(await cli('inspect', join(dir, 'lrn.onnx')));
    assert.match(line, /ONNX node `\/features\/lrn\/LRN` \(op `LRN`\) in `.*lrn\.onnx` is not supported; supported ops: Conv, /);
  });
});

describe('model.checkpoint naming a .onnx', () => {
  const cfg = (checkpoint: string): BaseSource => ({ model: { checkpoint, width: 1 } }) as unknown as BaseSource;
  const data = { name: 'cifar-like', shape: [32, 32, 3] as [number, number, number], numClasses: 10 };

  test('loadBaseGraph reads it, checking the HxWxC data shape against the NCHW model and the classes', async () => {
    const path = join(SMALL, 'tiny-opset11.onnx');
    const g = await loadBaseGraph(cfg(path), data);
    assert.equal(g.source.format, 'onnx');
    await assert.rejects(
      loadBaseGraph(cfg(path), { ...data, shape: [3, 32, 32] }),
      /takes 32x32x3 images \(HxWxC\) into 10 classes, but `data` \(cifar-like\) has 3x32x32 images/,
    );
    await assert.rejects(
      loadBaseGraph(cfg(path), { ...data, numClasses: 100 }),
      /into 10 classes, but `data` \(cifar-like\) has 32x32x3 images and 100 classes/,
    );
  });

  test('the tfjs-model path says in one line that it takes a model.json', async () => {
    await assert.rejects(
      loadBaseModel(cfg(join(SMALL, 'tiny-opset11.onnx'))),
      (e: Error) => e instanceof AutopruneError && e.code === ErrorCodes.CONFIG_INVALID && !e.message.includes('\n'),
    );
  });
});

describe('the onnxruntime proxy on an NCHW graph', () => {
  test('scores the HWC data as the NHWC twin of the graph does: same unfolded BN statistics, same accuracy', async () => {
    const g = loadFixture({ name: 'tiny-opset11', dir: SMALL });
    const twin: ModelGraph = { ...g, inputLayout: 'NHWC' }; // the same body, fed through a Transpose
    const rng = new Rng(11);
    const count = 48;
    const data = {
      images: Float32Array.from({ length: count * 32 * 32 * 3 }, () => rng.next()),
      labels: Uint8Array.from({ length: count }, () => rng.int(10)),
      count,
      shape: [32, 32, 3] as const,
    };
    const calibration = { batches: 2, batchSize: 16, seed: 3 };
    const opts = { unfold: 'auto' as const, train: data, calibration, threads: 1 };
    const [nchw, nhwc] = [await proxyBase(g, opts), await proxyBase(twin, opts)];
    assert.ok(nchw.unfolded.length > 0, 'the folded convs are unfolded');
    const bn = (p: typeof nchw) =>
      p.cutFrom.graph.nodes.flatMap((n) => (n.op === 'BatchNormalization' ? [[n.name, Array.from(n.mean), Array.from(n.variance)]] : []));
    assert.deepEqual(bn(nchw), bn(nhwc));
    const proxy = { calibration, latency: { batchSize: 4, runs: 1 }, threads: 1 };
    const splits = { train: data, validation: data };
    const a = await onnxProxy(graphToOnnx(nchw.cutFrom.graph), splits, { ...proxy, layout: 'NCHW' });
    const b = await onnxProxy(graphToOnnx(nhwc.cutFrom.graph), splits, proxy);
    assert.equal(a.accuracy, b.accuracy);
    assert.deepEqual(a.statistics, b.statistics);
    assert.ok(Number.isFinite(a.latencyMs));
    // Fed as if NHWC, the NCHW model's input does not fit: the layout is what makes it run.
    await assert.rejects(onnxProxy(graphToOnnx(nchw.cutFrom.graph), splits, proxy));
  });
});
