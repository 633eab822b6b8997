/**
 * The graph representation (src/model/ir) against the tfjs-layers path it replaces, as oracles:
 * - analysis: the same groups (ids, channel counts, owners) as src/model/analysis.ts for every zoo
 *   model and every user-style fixture, and the same costs for random candidates;
 * - costs: a tiny graph's MACs and params worked out by hand;
 * - export: the graph's ONNX logits = tfjs predict of the model it came from (1e-4 x max |logit|);
 * - cutting: keep-all gives identical logits; cutting filters that are exactly zero gives the same
 *   logits; a random candidate cut on the graph = the same candidate cut by the tfjs pruner;
 * - shared initializers: a cut leaves every node its own arrays.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { Rng } from '../src/core/rng.js';
import { candidateFromRatios } from '../src/core/space.js';
import { initBackend } from '../src/engine/backend.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { groupScores } from '../src/model/importance.js';
import { saveModel } from '../src/model/io.js';
import { analyzeGraph, type GraphAnalysis, keptIndices } from '../src/model/ir/analyze.js';
import { graphCost, nodeCosts } from '../src/model/ir/cost.js';
import { cutGraph, makeGraphPlan, pruneGraph } from '../src/model/ir/cut.js';
import { graphFromLayersModel, graphFromTfjsFiles } from '../src/model/ir/from-tfjs.js';
import type { ConvNode, ModelGraph, Node } from '../src/model/ir/graph.js';
import { graphGroupScores } from '../src/model/ir/importance.js';
import { graphToOnnx } from '../src/model/ir/to-onnx.js';
import { graphToTfjs, graphWithTfjsWeights } from '../src/model/ir/to-tfjs.js';
import { encodeOnnx } from '../src/model/onnx-proto.js';
import { makePlan, pruneModel } from '../src/model/prune.js';
import { buildZooModel, ZOO_NAMES } from '../src/model/zoo.js';
import { kerasConverted, randomiseBatchNorm, userFixtures } from './fixtures/user-models.js';

before(async () => {
  await initBackend('wasm');
});

interface Case {
  readonly name: string;
  build(): tf.LayersModel;
}

const CASES: Case[] = [
  ...ZOO_NAMES.map((n) => ({
    name: n,
    build: () => {
      const m = buildZooModel(n, { inputShape: [28, 28, 1], numClasses: 10, width: 0.5, seed: 1 });
      randomiseBatchNorm(m, 3);
      return m;
    },
  })),
  ...userFixtures().map((fx, i) => ({ name: `fixture ${fx.name}`, build: () => fx.build(i + 1) })),
];

/** A fixed NHWC batch for a model's input. */
function inputBatch(model: tf.LayersModel, n: number, seed: number): { data: Float32Array; shape: number[] } {
  const [h, w, c] = model.inputs[0].shape.slice(1) as number[];
  const rng = new Rng(seed);
  return { data: Float32Array.from({ length: n * h * w * c }, () => rng.uniform(0, 1)), shape: [n, h, w, c] };
}

async function graphLogits(g: ModelGraph, x: { data: Float32Array; shape: number[] }): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeOnnx(graphToOnnx(g)));
  try {
    const out = await s.run({ [g.source.inputName]: new ort.Tensor('float32', x.data, x.shape) });
    return out[g.source.outputName].data as Float32Array;
  } finally {
    await s.release();
  }
}

function tfjsLogits(model: tf.LayersModel, x: { data: Float32Array; shape: number[] }): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor(x.data, x.shape)) as tf.Tensor).dataSync() as Float32Array);
}

function assertClose(got: Float32Array, want: Float32Array, rel: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: output sizes`);
  const scale = Math.max(1e-6, ...Array.from(want, Math.abs));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst <= rel * scale, `${what}: max |diff| ${worst} > ${rel} x max |logit| ${scale}`);
}

function randomCandidates(a: { groups: GraphAnalysis['groups'] }, seed: number, n: number) {
  const rng = new Rng(seed);
  const space = { groups: a.groups, options: { minKeepRatio: 0.1, channelStep: 1, skip: [] } };
  return Array.from({ length: n }, () =>
    candidateFromRatios(
      space,
      a.groups.map(() => rng.uniform(0.1, 1)),
    ),
  );
}

describe('graph analysis = tfjs analysis', () => {
  for (const c of CASES) {
    test(`${c.name}: same groups, same costs of the unpruned model and of 20 random candidates`, () => {
      const model = c.build();
      const old = analyzeModel(model);
      const a = analyzeGraph(graphFromLayersModel(model));
      assert.deepEqual(
        a.groups.map((g) => [g.id, g.channels]),
        old.groups.map((g) => [g.id, g.channels]),
      );
      // The depthwise half of a SeparableConv2D is a node of its own, cut along its input's group.
      const separable = new Set(old.layers.filter((l) => l.kind === 'separable').map((l) => l.name));
      a.groups.forEach((g, i) => {
        const halves = g.layers.filter((n) => n.endsWith('/depthwise'));
        assert.ok(
          halves.every((n) => separable.has(n.slice(0, -'/depthwise'.length))),
          `${g.id}: ${halves}`,
        );
        assert.deepEqual(
          g.layers.filter((n) => !n.endsWith('/depthwise')),
          old.groups[i].layers,
          `owners of group ${g.id}`,
        );
      });
      assert.deepEqual(graphCost(a, null), costOf(old, null));
      assert.equal(graphCost(a, null).params, model.countParams());
      for (const cand of randomCandidates(old, 7, 20)) assert.deepEqual(graphCost(a, cand), costOf(old, cand), `candidate ${cand.channels}`);
      model.dispose();
    });
  }

  test('importance scores per group = the tfjs criteria (l1, l2, bn-gamma: 1e-5 relative; random: identical)', () => {
    for (const c of CASES.slice(0, 6)) {
      const model = c.build();
      const old = analyzeModel(model);
      const a = analyzeGraph(graphFromLayersModel(model));
      for (const criterion of ['l1', 'l2', 'bn-gamma', 'random'] as const) {
        const want = groupScores(model, old, criterion, new Rng(1));
        const got = graphGroupScores(a, criterion, new Rng(1));
        want.forEach((w, g) =>
          w.forEach((v, i) => assert.ok(Math.abs(got[g][i] - v) <= 1e-5 * Math.max(1, Math.abs(v)), `${c.name} ${criterion} group ${g} channel ${i}`)),
        );
        // The same plan: the same channels kept.
        const [cand] = randomCandidates(old, 3, 1);
        assert.deepEqual(makeGraphPlan(a, cand, criterion, new Rng(2)), makePlan(model, old, cand, criterion, new Rng(2)), `${c.name} ${criterion}`);
      }
      model.dispose();
    }
  });
});

test('tfjs import: an unsupported class or a Dense on a feature map is a one-line error naming the layer', () => {
  const input = tf.input({ shape: [8, 8, 3] });
  const up = tf.layers.upSampling2d({ name: 'up', size: [2, 2] }).apply(input) as tf.SymbolicTensor;
  const a = tf.model({ inputs: input, outputs: tf.layers.dense({ name: 'fc', units: 2 }).apply(tf.layers.flatten().apply(up)) as tf.SymbolicTensor });
  assert.throws(
    () => graphFromLayersModel(a),
    (e: Error & { code?: string }) =>
      e.code === 'MODEL_UNSUPPORTED_LAYER' && /^Layer `up` of class `UpSampling2D` is not supported[^\n]*Conv2D/.test(e.message),
  );
  const b = tf.model({ inputs: input, outputs: tf.layers.dense({ name: 'fc', units: 2 }).apply(input) as tf.SymbolicTensor });
  assert.throws(
    () => graphFromLayersModel(b),
    (e: Error & { code?: string }) =>
      e.code === 'MODEL_UNSUPPORTED_LAYER' && /^Layer `fc` of class `Dense` has an input of shape \[3, 8, 8\]; expected features/.test(e.message),
  );
  a.dispose();
  b.dispose();
});

test('tfjs files: model.json + weights (as saved, and as the Keras converter writes them) import to the same graph without a LayersModel', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'autoprune-ir-'));
  for (const [i, c] of CASES.filter((_, k) => k % 3 === 0).entries()) {
    const model = c.build();
    const want = graphFromLayersModel(model);
    await saveModel(model, join(dir, `m${i}`));
    assert.deepEqual(await graphFromTfjsFiles(join(dir, `m${i}`, 'model.json')), want, c.name);
    // Keras-converted: other layer names, the same function.
    const { json, weights } = await kerasConverted(model);
    await mkdir(join(dir, `k${i}`));
    await writeFile(join(dir, `k${i}`, 'model.json'), JSON.stringify(json));
    await writeFile(join(dir, `k${i}`, 'group1-shard1of1.bin'), new Uint8Array(weights));
    const keras = await graphFromTfjsFiles(join(dir, `k${i}`, 'model.json'));
    const x = inputBatch(model, 2, 9);
    assertClose(await graphLogits(keras, x), tfjsLogits(model, x), 1e-4, `${c.name}, Keras-converted`);
    model.dispose();
  }
  await rm(dir, { recursive: true, force: true });
});

describe('graph costs by hand', () => {
  const conv = (name: string, input: string, o: Partial<ConvNode> & { weight: Float32Array }): ConvNode => ({
    op: 'Conv',
    name,
    inputs: [input],
    kernel: [3, 3],
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
    groups: 1,
    bias: null,
    ...o,
  });
  const f = (n: number) => new Float32Array(n).fill(0.1);
  const tiny: ModelGraph = {
    nodes: [
      { op: 'Input', name: 'x', inputs: [], shape: [3, 8, 8] },
      conv('c1', 'x', { weight: f(4 * 3 * 9), bias: f(4) }),
      { op: 'BatchNormalization', name: 'bn', inputs: ['c1'], epsilon: 1e-3, scale: f(4), bias: f(4), mean: f(4), variance: f(4).fill(1) },
      { op: 'Activation', name: 'relu', inputs: ['bn'], fn: { kind: 'relu' } },
      conv('dw', 'relu', { weight: f(4 * 9), groups: 4, strides: [2, 2], pads: [0, 0, 1, 1] }),
      conv('pw', 'dw', { weight: f(6 * 4), kernel: [1, 1], pads: [0, 0, 0, 0] }),
      { op: 'GlobalPool', name: 'gap', inputs: ['pw'], mode: 'avg', keepDims: false },
      { op: 'Dense', name: 'fc', inputs: ['gap'], units: 5, weight: f(5 * 6), bias: f(5) },
    ],
    input: 'x',
    output: 'fc',
    inputLayout: 'NCHW',
    source: { format: 'onnx', inputName: 'x', outputName: 'y' },
  };

  test('conv 3->4 (3x3, bias) + BN + depthwise (stride 2, pads 0/1) + pointwise 4->6 + GAP + dense 6->5', () => {
    const a = analyzeGraph(tiny);
    assert.deepEqual(
      a.groups.map((g) => [g.id, g.channels, g.layers]),
      [
        ['c1', 4, ['c1', 'bn', 'dw']],
        ['pw', 6, ['pw']],
      ],
    );
    assert.deepEqual(a.shapes[4], [4, 4, 4], 'depthwise: floor((8 + 0 + 1 - 3) / 2) + 1 = 4');
    // c1: 8·8·9·3·4 = 6912 MACs, 108 + 4 params; bn: 4·4; dw: 4·4·9·4 = 576, 36; pw: 4·4·4·6 = 384, 24; fc: 30, 35.
    assert.deepEqual(graphCost(a, null), { macs: 6912 + 576 + 384 + 30, params: 112 + 16 + 36 + 24 + 35 });
    // Keep 2 of c1's channels and 3 of pw's: c1 8·8·9·3·2 = 3456, 54 + 2; bn 8; dw 4·4·9·2 = 288, 18; pw 4·4·2·3 = 96, 6; fc 15, 20.
    assert.deepEqual(graphCost(a, { channels: [2, 3] }), { macs: 3456 + 288 + 96 + 15, params: 56 + 8 + 18 + 6 + 20 });
    assert.deepEqual(
      nodeCosts(a, { channels: [2, 3] }).map((n) => [n.name, n.inChannels, n.outChannels]),
      [
        ['x', 0, 3],
        ['c1', 3, 2],
        ['bn', 2, 2],
        ['relu', 2, 2],
        ['dw', 2, 2],
        ['pw', 2, 3],
        ['gap', 3, 3],
        ['fc', 3, 5],
      ],
    );
    const cut = cutGraph(tiny, a, [
      [1, 3],
      [0, 2, 5],
    ]);
    const after = analyzeGraph(cut);
    assert.deepEqual(graphCost(after, null), graphCost(a, { channels: [2, 3] }), 'the cut graph costs what the candidate was predicted to');
    assert.equal((cut.nodes[4] as ConvNode).groups, 2, 'the depthwise conv keeps one group per kept channel');
  });

  test('flattened features: hwc and chw orders map kept channels to the right Dense columns', () => {
    const a = analyzeGraph(tiny);
    const ch = { segs: [{ set: 1, size: 3 }], flat: { spatial: 2, order: 'hwc' as const } };
    const group = a.setGroup.indexOf(0);
    const keep = a.groups.map((g) => (g.id === a.sets[group].producer ? [0, 2] : Array.from({ length: g.channels }, (_, i) => i)));
    const set = { ...ch, segs: [{ set: group, size: 4 }] };
    assert.deepEqual(keptIndices(a, set, keep), [0, 2, 4, 6], 'hwc: feature = s·C + c');
    assert.deepEqual(keptIndices(a, { ...set, flat: { spatial: 2, order: 'chw' } }, keep), [0, 1, 4, 5], 'chw: feature = c·S + s');
  });
});

describe('graph -> ONNX and cutting, run on onnxruntime', () => {
  for (const c of CASES) {
    test(`${c.name}: logits = tfjs; keep-all cut identical; zero filters cut identical; a random candidate = the tfjs cut`, async () => {
      const model = c.build();
      const x = inputBatch(model, 4, 5);
      const g = graphFromLayersModel(model);
      const a = analyzeGraph(g);
      const base = await graphLogits(g, x);
      assertClose(base, tfjsLogits(model, x), 1e-4, 'graph on onnxruntime vs tfjs');

      const all = cutGraph(
        g,
        a,
        a.groups.map((gr) => Array.from({ length: gr.channels }, (_, i) => i)),
      );
      assert.deepEqual(await graphLogits(all, x), base, 'keep-all cut');

      // Zero some filters of every group, then cut exactly those: the logits must not move.
      const rng = new Rng(17);
      const keep = a.groups.map((gr) => Array.from({ length: gr.channels }, (_, i) => i).filter((i) => i === 0 || rng.next() < 0.6));
      const zeroed = zeroFilters(g, a, keep);
      const want = await graphLogits(zeroed, x);
      const za = analyzeGraph(zeroed);
      assertClose(await graphLogits(cutGraph(zeroed, za, keep), x), want, 1e-5, 'cut of zeroed filters');

      // A random pruned candidate: the graph's cut = the tfjs pruner's model.
      const old = analyzeModel(model);
      const [cand] = randomCandidates(old, 11, 1);
      const { model: pruned } = await pruneModel(model, old, cand, 'l1');
      const { graph: cut } = pruneGraph(a, cand, 'l1');
      assertClose(await graphLogits(cut, x), tfjsLogits(pruned, x), 1e-4, 'pruned graph vs tfjs-pruned model');
      assert.equal(graphCost(analyzeGraph(cut), null).params, pruned.countParams());
      pruned.dispose();
      model.dispose();
    });
  }

  test('shared initializers: two convs reading one weight array are cut into nodes that own their arrays', async () => {
    const w = Float32Array.from({ length: 4 * 4 * 9 }, (_, i) => Math.sin(i));
    const conv = (name: string, input: string): ConvNode => ({
      op: 'Conv',
      name,
      inputs: [input],
      kernel: [3, 3],
      strides: [1, 1],
      pads: [1, 1, 1, 1],
      dilations: [1, 1],
      groups: 1,
      weight: w,
      bias: null,
    });
    const nodes: Node[] = [
      { op: 'Input', name: 'x', inputs: [], shape: [4, 6, 6] },
      {
        op: 'Conv',
        name: 'stem',
        inputs: ['x'],
        kernel: [1, 1],
        strides: [1, 1],
        pads: [0, 0, 0, 0],
        dilations: [1, 1],
        groups: 1,
        weight: Float32Array.from({ length: 16 }, (_, i) => (i % 5) - 2),
        bias: null,
      },
      conv('a', 'stem'),
      conv('b', 'stem'),
      { op: 'Add', name: 'sum', inputs: ['a', 'b'] },
      { op: 'GlobalPool', name: 'gap', inputs: ['sum'], mode: 'avg', keepDims: false },
      { op: 'Dense', name: 'fc', inputs: ['gap'], units: 3, weight: Float32Array.from({ length: 12 }, (_, i) => i / 12), bias: null },
    ];
    const g: ModelGraph = { nodes, input: 'x', output: 'fc', inputLayout: 'NCHW', source: { format: 'onnx', inputName: 'x', outputName: 'y' } };
    const a = analyzeGraph(g);
    assert.deepEqual(
      a.groups.map((gr) => gr.id),
      ['stem', 'a'],
    );
    const keep = [
      [0, 1, 3],
      [1, 2],
    ];
    const cut = cutGraph(g, a, keep);
    const [ca, cb] = [cut.nodes[2] as ConvNode, cut.nodes[3] as ConvNode];
    assert.notEqual(ca.weight, cb.weight, 'each node owns its weights after the cut');
    assert.notEqual(ca.weight, w);
    assert.deepEqual(ca.weight, cb.weight);
    ca.weight[0] += 1;
    assert.notEqual(ca.weight[0], cb.weight[0]);
    assert.equal(w[0], Math.sin(0), 'the source array is untouched');
    const full = cutGraph(
      g,
      a,
      a.groups.map((gr) => Array.from({ length: gr.channels }, (_, i) => i)),
    );
    const x = { data: Float32Array.from({ length: 2 * 4 * 36 }, (_, i) => Math.cos(i)), shape: [2, 4, 6, 6] };
    assert.deepEqual(await graphLogits(full, x), await graphLogits(g, x));
  });
});

describe('an NCHW graph as ONNX importers write it: squeeze-and-excitation Mul, Concat, Pad, pooling, Flatten chw', () => {
  const rng = new Rng(23);
  const r = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-0.5, 0.5));
  const conv = (name: string, input: string, cin: number, cout: number, k: number, o: Partial<ConvNode> = {}): ConvNode => ({
    op: 'Conv',
    name,
    inputs: [input],
    kernel: [k, k],
    strides: [1, 1],
    pads: [(k - 1) / 2, (k - 1) / 2, (k - 1) / 2, (k - 1) / 2],
    dilations: [1, 1],
    groups: 1,
    weight: r((cout * cin * k * k) / (o.groups ?? 1)),
    bias: r(cout),
    ...o,
  });
  const g: ModelGraph = {
    nodes: [
      { op: 'Input', name: 'x', inputs: [], shape: [3, 9, 9] },
      { op: 'Pad', name: 'pad', inputs: ['x'], pads: [1, 0, 0, 1], value: 0 },
      conv('c1', 'pad', 3, 8, 3, { strides: [2, 2] }),
      { op: 'Activation', name: 'c1.relu', inputs: ['c1'], fn: { kind: 'relu' } },
      { op: 'GlobalPool', name: 'se.pool', inputs: ['c1.relu'], mode: 'avg', keepDims: true },
      conv('se.reduce', 'se.pool', 8, 4, 1),
      { op: 'Activation', name: 'se.relu', inputs: ['se.reduce'], fn: { kind: 'relu' } },
      conv('se.expand', 'se.relu', 4, 8, 1),
      { op: 'Activation', name: 'se.gate', inputs: ['se.expand'], fn: { kind: 'hardSigmoid', alpha: 0.2, beta: 0.5 } },
      { op: 'Mul', name: 'se.mul', inputs: ['c1.relu', 'se.gate'] },
      conv('dw', 'se.mul', 8, 8, 3, { groups: 8 }),
      { op: 'Activation', name: 'dw.act', inputs: ['dw'], fn: { kind: 'hardSwish' } },
      conv('side', 'se.mul', 8, 6, 1),
      { op: 'Concat', name: 'cat', inputs: ['dw.act', 'side'] },
      { op: 'Pool', name: 'avg', inputs: ['cat'], mode: 'avg', kernel: [2, 2], strides: [2, 2], pads: [0, 0, 1, 1], ceilMode: false, countIncludePad: true },
      { op: 'Pool', name: 'max', inputs: ['avg'], mode: 'max', kernel: [2, 2], strides: [1, 1], pads: [0, 0, 0, 0], ceilMode: true, countIncludePad: false },
      { op: 'Flatten', name: 'flat', inputs: ['max'], order: 'chw' },
      { op: 'Dense', name: 'hidden', inputs: ['flat'], units: 7, weight: r(7 * 14 * 4), bias: r(7) },
      { op: 'Activation', name: 'hidden.silu', inputs: ['hidden'], fn: { kind: 'silu' } },
      { op: 'Dense', name: 'fc', inputs: ['hidden.silu'], units: 4, weight: r(4 * 7), bias: r(4) },
    ],
    input: 'x',
    output: 'fc',
    inputLayout: 'NCHW',
    source: { format: 'onnx', inputName: 'images', outputName: 'logits' },
  };
  const x = { data: Float32Array.from({ length: 2 * 3 * 81 }, (_, i) => Math.sin(i * 0.37)), shape: [2, 3, 9, 9] };

  test('groups: the SE gate joins its block, the depthwise conv follows it; keep-all and zero-filter cuts keep the logits', async () => {
    const a = analyzeGraph(g);
    assert.deepEqual(
      a.groups.map((gr) => [gr.id, gr.channels, gr.layers]),
      [
        ['c1', 8, ['c1', 'se.expand', 'dw']],
        ['se.reduce', 4, ['se.reduce']],
        ['side', 6, ['side']],
        ['hidden', 7, ['hidden']],
      ],
    );
    assert.deepEqual(a.shapes.at(-5), [14, 2, 2], 'pools: 5x5 -> avg (pads 0/1) 3x3 -> max (ceil) 2x2');
    const base = await graphLogits(g, x);
    const all = cutGraph(
      g,
      a,
      a.groups.map((gr) => Array.from({ length: gr.channels }, (_, i) => i)),
    );
    assert.deepEqual(await graphLogits(all, x), base);
    const keep = [
      [0, 2, 3, 6],
      [1, 3],
      [0, 4, 5],
      [0, 1, 2, 5],
    ];
    const zeroed = zeroFilters(g, a, keep);
    const want = await graphLogits(zeroed, x);
    const cut = cutGraph(zeroed, analyzeGraph(zeroed), keep);
    assertClose(await graphLogits(cut, x), want, 1e-5, 'cut of zeroed filters');
    assert.deepEqual(graphCost(analyzeGraph(cut), null), graphCost(a, { channels: keep.map((k) => k.length) }));
    const onnx = graphToOnnx(g);
    assert.deepEqual(onnx.inputs, [{ name: 'images', shape: ['batch', 3, 9, 9] }], 'an NCHW graph takes NCHW under its own input name');
    assert.deepEqual(onnx.outputs, [{ name: 'logits', shape: ['batch', 4] }]);
    assert.ok(!onnx.nodes.some((n) => n.op === 'Transpose'), 'no layout change in an NCHW graph with a chw Flatten');
  });
});

/** The graph with every channel outside `keep` producing exactly 0 wherever it is read. */
function zeroFilters(g: ModelGraph, a: GraphAnalysis, keep: readonly (readonly number[])[]): ModelGraph {
  const dead = (i: number): Set<number> => {
    const out = new Set<number>();
    let offset = 0;
    for (const s of a.channels[i].segs) {
      const gi = a.setGroup[s.set];
      if (gi >= 0) for (let c = 0; c < s.size; c++) if (!keep[gi].includes(c)) out.add(offset + c);
      offset += s.size;
    }
    return out;
  };
  const zeroRows = (v: Float32Array, rows: Set<number>, per: number): Float32Array => {
    const out = v.slice();
    for (const r of rows) out.fill(0, r * per, (r + 1) * per);
    return out;
  };
  const nodes = g.nodes.map((n, i): Node => {
    const d = dead(i);
    if (d.size === 0) return n;
    switch (n.op) {
      case 'Conv': {
        const per = n.weight.length / a.shapes[i][0];
        return { ...n, weight: zeroRows(n.weight, d, per), bias: n.bias && zeroRows(n.bias, d, 1) };
      }
      case 'Dense':
        return { ...n, weight: zeroRows(n.weight, d, n.weight.length / n.units), bias: n.bias && zeroRows(n.bias, d, 1) };
      case 'BatchNormalization':
        // BN(x) = bias + scale·(x − mean)/√(var + ε) = 0 whatever x when scale = bias = 0.
        return { ...n, scale: zeroRows(n.scale, d, 1), bias: zeroRows(n.bias, d, 1) };
      default:
        return n;
    }
  });
  return { ...g, nodes };
}

test('node names as torch.onnx.export writes them (`/layer1/conv/Conv`) build a tfjs model, and its weights map back to the same nodes', async () => {
  await initBackend('cpu');
  const m = buildZooModel('resnet-20', { inputShape: [16, 16, 3], numClasses: 10, width: 0.25 });
  const g = graphFromLayersModel(m);
  m.dispose();
  const onnxName = (s: string) => `/${s.replace(/_/g, '.')}/Conv:0`;
  const names = new Map(g.nodes.map((n) => [n.name, onnxName(n.name)]));
  const renamed: ModelGraph = {
    ...g,
    nodes: g.nodes.map((n) => ({ ...n, name: names.get(n.name)!, inputs: n.inputs.map((i) => names.get(i) ?? i) }) as Node),
    input: names.get(g.input)!,
    output: names.get(g.output)!,
  };
  const model = graphToTfjs(renamed);
  try {
    const back = graphWithTfjsWeights(renamed, model);
    for (const [a, b] of renamed.nodes.map((n, i) => [n, back.nodes[i]] as const)) {
      assert.equal(b.name, a.name, 'the graph keeps its own names');
      if (a.op === 'Conv' && b.op === 'Conv') assert.deepEqual(b.weight, a.weight, a.name);
    }
  } finally {
    model.dispose();
  }
});
