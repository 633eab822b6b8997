/**
 * What a study reads of a base model held as a graph (an ONNX model): the learning controllers' group
 * descriptors agree with the tfjs analysis' for the zoo models the two analyses share; the inputs
 * hash is the same for two imports of one file and changes with any weight; a study's space and
 * costs from the graph are the graph analysis' own.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { graphHash } from '../src/app/study.js';
import { analyzeModel } from '../src/model/analysis.js';
import { groupDescriptors } from '../src/model/descriptors.js';
import { analyzeGraph } from '../src/model/ir/analyze.js';
import { graphCost } from '../src/model/ir/cost.js';
import { graphGroupDescriptors } from '../src/model/ir/descriptors.js';
import { graphFromLayersModel } from '../src/model/ir/from-tfjs.js';
import { loadOnnxGraph } from '../src/model/ir/onnx-import.js';
import { buildZooModel } from '../src/model/zoo.js';
import { spaceCost } from '../src/study/lifecycle.js';

before(async () => {
  await tf.setBackend('cpu');
});

for (const zoo of ['plain-cnn', 'resnet-20'] as const) {
  test(`${zoo}: graph group descriptors equal the tfjs analysis' (kind, channels, stride, kernel, params, MACs)`, () => {
    const m = buildZooModel(zoo, { inputShape: [28, 28, 1], numClasses: 10, width: 0.5, seed: 1 });
    try {
      const a = analyzeGraph(graphFromLayersModel(m));
      assert.deepEqual(graphGroupDescriptors(a), groupDescriptors(analyzeModel(m)));
    } finally {
      m.dispose();
    }
  });
}

test('the graph hash is one per file: two imports agree, one changed weight differs', async () => {
  const path = 'test/fixtures/onnx/mobilenet_v3_small-025-opset13.onnx';
  const [a, b] = await Promise.all([loadOnnxGraph(path), loadOnnxGraph(path)]);
  assert.equal(graphHash(a), graphHash(b));
  const i = b.nodes.findIndex((n) => n.op === 'Conv');
  const conv = b.nodes[i] as Extract<(typeof b.nodes)[number], { op: 'Conv' }>;
  const weight = conv.weight.slice();
  weight[0] += 1e-3;
  const changed = { ...b, nodes: b.nodes.map((n, j) => (j === i ? { ...conv, weight } : n)) };
  assert.notEqual(graphHash(changed), graphHash(a));
});

test("a study's costs on a graph are the graph analysis' own, unpruned and pruned", async () => {
  const a = analyzeGraph(await loadOnnxGraph('test/fixtures/onnx/mobilenet_v3_small-025-opset13.onnx'));
  assert.deepEqual(spaceCost(a, null), graphCost(a, null));
  const half = { channels: a.groups.map((g) => Math.max(1, Math.floor(g.channels / 2))) };
  assert.deepEqual(spaceCost(a, half), graphCost(a, half));
  assert.ok(spaceCost(a, half).macs < spaceCost(a, null).macs);
});
