import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { AutopruneError } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { loadModel, saveModel } from '../src/model/io.js';
import { applyPlan, makePlan, pruneModel } from '../src/model/prune.js';
import { buildZooModel, ZOO_NAMES } from '../src/model/zoo.js';

before(async () => {
  await tf.setBackend('cpu');
});

const maxDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
const predict = (m: tf.LayersModel, x: tf.Tensor): tf.Tensor => m.predict(x) as tf.Tensor;

/** Randomise BN statistics so "identical logits" tests exercise real BN slicing, not identity BNs. */
function randomiseBn(model: tf.LayersModel, seed: number): void {
  const rng = new Rng(seed);
  for (const l of model.layers) {
    if (l.getClassName() !== 'BatchNormalization') continue;
    const ws = l.getWeights();
    const fresh = ws.map((w, i) => {
      const vals = Float32Array.from({ length: w.size }, () => (i === 3 ? 0.5 + rng.next() : rng.normal() * 0.3 + (i === 0 ? 1 : 0)));
      return tf.tensor(vals, w.shape);
    });
    l.setWeights(fresh);
    tf.dispose(fresh);
  }
}

// Hand-computed MACs and params (conv: Ho*Wo*kh*kw*Cin*Cout; BN: 4 params per channel; dense: in*out + out).
const conv = (hw: number, k: number, cin: number, cout: number) => ({ macs: hw * hw * k * k * cin * cout, params: k * k * cin * cout + 4 * cout });
const dw = (hw: number, c: number) => ({ macs: hw * hw * 9 * c, params: 9 * c + 4 * c });
const dense = (i: number, o: number) => ({ macs: i * o, params: i * o + o });
const sum = (xs: { macs: number; params: number }[]) => xs.reduce((a, b) => ({ macs: a.macs + b.macs, params: a.params + b.params }), { macs: 0, params: 0 });

function plainCnnCost(s: number, cin: number, w: [number, number, number, number, number]) {
  return sum([
    conv(s, 3, cin, w[0]),
    conv(s, 3, w[0], w[1]),
    conv(s / 2, 3, w[1], w[2]),
    conv(s / 2, 3, w[2], w[3]),
    conv(s / 4, 3, w[3], w[4]),
    dense(w[4], 10),
  ]);
}

function resnet20Cost(s: number, cin: number) {
  const h2 = s / 2;
  const h3 = Math.ceil(s / 4);
  return sum([
    conv(s, 3, cin, 16),
    ...Array(6).fill(conv(s, 3, 16, 16)),
    conv(h2, 3, 16, 32),
    conv(h2, 3, 32, 32),
    conv(h2, 1, 16, 32),
    ...Array(4).fill(conv(h2, 3, 32, 32)),
    conv(h3, 3, 32, 64),
    conv(h3, 3, 64, 64),
    conv(h3, 1, 32, 64),
    ...Array(4).fill(conv(h3, 3, 64, 64)),
    dense(64, 10),
  ]);
}

function mobilenetCost(s: number, cin: number) {
  const a = s;
  const b = Math.ceil(s / 2);
  const c = Math.ceil(b / 2);
  const d = Math.ceil(c / 2);
  const ir = (hin: number, hout: number, i: number, o: number, t: number) =>
    sum([...(t === 1 ? [] : [conv(hin, 1, i, i * t)]), dw(hout, i * t), conv(hout, 1, i * t, o)]);
  return sum([
    conv(a, 3, cin, 16),
    ir(a, a, 16, 16, 1),
    ir(a, b, 16, 24, 4),
    ir(b, b, 24, 24, 4),
    ir(b, c, 24, 32, 4),
    ir(c, c, 32, 32, 4),
    ir(c, d, 32, 64, 4),
    ir(d, d, 64, 64, 4),
    conv(d, 1, 64, 128),
    dense(128, 10),
  ]);
}

describe('FLOPs and params against hand-computed values', () => {
  const cases = [
    { name: 'plain-cnn', shape: [28, 28, 1], want: plainCnnCost(28, 1, [32, 32, 64, 64, 128]) },
    { name: 'plain-cnn', shape: [32, 32, 3], want: plainCnnCost(32, 3, [32, 32, 64, 64, 128]) },
    { name: 'resnet-20', shape: [28, 28, 1], want: resnet20Cost(28, 1) },
    { name: 'resnet-20', shape: [32, 32, 3], want: resnet20Cost(32, 3) },
    { name: 'mobilenet-v2-tiny', shape: [28, 28, 1], want: mobilenetCost(28, 1) },
    { name: 'mobilenet-v2-tiny', shape: [32, 32, 3], want: mobilenetCost(32, 3) },
  ] as const;
  for (const c of cases) {
    test(`${c.name} ${c.shape.join('x')}`, () => {
      const m = buildZooModel(c.name, { inputShape: c.shape, numClasses: 10 });
      const got = costOf(analyzeModel(m), null);
      assert.deepEqual(got, c.want);
      assert.equal(m.countParams(), c.want.params);
      m.dispose();
    });
  }

  test('pruned plain-cnn candidate: predicted = hand-computed = built model', async () => {
    const m = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 10 });
    const a = analyzeModel(m);
    const cand = { channels: [8, 16, 40, 24, 100] };
    const want = plainCnnCost(28, 1, [8, 16, 40, 24, 100]);
    assert.deepEqual(costOf(a, cand), want);
    const { model: p } = await pruneModel(m, a, cand, 'l1');
    assert.equal(p.countParams(), want.params);
    assert.deepEqual(costOf(analyzeModel(p), null), want);
    m.dispose();
    p.dispose();
  });

  for (const name of ZOO_NAMES) {
    test(`${name}: the pruned model's own count equals the predicted count`, async () => {
      const m = buildZooModel(name, { inputShape: [32, 32, 3], numClasses: 10, width: 0.5 });
      const a = analyzeModel(m);
      const rng = new Rng(7);
      const cand = { channels: a.groups.map((g) => 1 + rng.int(g.channels)) };
      const { model: p } = await pruneModel(m, a, cand, 'l2');
      assert.deepEqual(costOf(analyzeModel(p), null), costOf(a, cand));
      assert.equal(p.countParams(), costOf(a, cand).params);
      m.dispose();
      p.dispose();
    });
  }
});

describe('pruning oracles', () => {
  for (const name of ZOO_NAMES) {
    test(`${name}: keep-all pruning gives identical logits`, async () => {
      const m = buildZooModel(name, { inputShape: [28, 28, 1], numClasses: 10, width: 0.5, seed: 3 });
      randomiseBn(m, 1);
      const a = analyzeModel(m);
      const { model: p } = await pruneModel(m, a, { channels: a.groups.map((g) => g.channels) }, 'l1');
      const x = tf.randomNormal([3, 28, 28, 1], 0, 1, 'float32', 5);
      assert.equal(maxDiff(predict(m, x), predict(p, x)), 0);
      m.dispose();
      p.dispose();
    });
  }

  test('pruning channels whose filters are exactly zero gives identical logits (resnet-20, coupled groups)', async () => {
    const m = buildZooModel('resnet-20', { inputShape: [28, 28, 1], numClasses: 10, width: 0.5, seed: 4 });
    randomiseBn(m, 2);
    const a = analyzeModel(m);
    // Zero the chosen channels in every producer of each group and their BN affine terms; a zero
    // channel then stays zero through BN (gamma=beta=mean=0), ReLU and the residual adds.
    const dead = a.groups.map((g) => new Set(Array.from({ length: Math.floor(g.channels / 3) }, (_, i) => 3 * i + 1)));
    for (const l of a.layers) {
      const g = a.setGroup[l.output.segs[0].set];
      if (g < 0 || (l.kind !== 'conv' && l.kind !== 'bn')) continue;
      const layer = m.getLayer(l.name);
      const ws = layer.getWeights();
      const fresh = ws.map((w, wi) => {
        const v = w.dataSync().slice();
        const out = w.shape[w.rank - 1];
        if (l.kind === 'bn' && wi === 3) return tf.tensor(v, w.shape);
        for (let i = 0; i < v.length; i++) if (dead[g].has(i % out)) v[i] = 0;
        return tf.tensor(v, w.shape);
      });
      layer.setWeights(fresh);
      tf.dispose(fresh);
    }
    const cand = { channels: a.groups.map((g, i) => g.channels - dead[i].size) };
    const { model: p, plan } = await pruneModel(m, a, cand, 'l1');
    plan.groups.forEach((g, i) => g.keep.forEach((k) => assert.ok(!dead[i].has(k), `group ${g.id} kept dead channel ${k}`)));
    const x = tf.randomNormal([4, 28, 28, 1], 0, 1, 'float32', 6);
    assert.ok(maxDiff(predict(m, x), predict(p, x)) < 1e-4);
    assert.ok(costOf(a, cand).macs < costOf(a, null).macs * 0.6);
    m.dispose();
    p.dispose();
  });

  test('importance criteria: l1 keeps the largest filters; random is seeded', async () => {
    const m = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25 });
    const a = analyzeModel(m);
    const cand = { channels: a.groups.map((g) => Math.ceil(g.channels / 2)) };
    const plan = makePlan(m, a, cand, 'l1');
    const k = m.getLayer(a.groups[0].id).getWeights()[0];
    const norms = tf.tidy(() => Array.from(k.reshape([-1, k.shape[3]!]).abs().sum(0).dataSync()));
    const threshold = [...norms].sort((x, y) => y - x)[cand.channels[0] - 1];
    for (const i of plan.groups[0].keep) assert.ok(norms[i] >= threshold);
    const r1 = makePlan(m, a, cand, 'random', new Rng(1));
    const r2 = makePlan(m, a, cand, 'random', new Rng(1));
    const r3 = makePlan(m, a, cand, 'random', new Rng(2));
    assert.deepEqual(r1, r2);
    assert.notDeepEqual(r1, r3);
    const bn = makePlan(m, a, cand, 'bn-gamma');
    assert.equal(bn.groups[0].keep.length, cand.channels[0]);
    m.dispose();
  });

  test('tf.memory().numTensors is flat across 50 prune + evaluate cycles', async () => {
    const m = buildZooModel('mobilenet-v2-tiny', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25 });
    const a = analyzeModel(m);
    const x = tf.randomNormal([2, 28, 28, 1]);
    const rng = new Rng(9);
    const cycle = async () => {
      const cand = { channels: a.groups.map((g) => 1 + rng.int(g.channels)) };
      const { model: p } = await pruneModel(m, a, cand, 'l1');
      tf.tidy(() => predict(p, x).dataSync());
      p.dispose();
    };
    await cycle();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) await cycle();
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
    m.dispose();
  });
});

describe('group analysis on fixtures', () => {
  test('residual: channels joined by an add are one group; output never pruned', () => {
    const inp = tf.input({ shape: [8, 8, 3] });
    const a1 = tf.layers.conv2d({ name: 'a', filters: 6, kernelSize: 3, padding: 'same' }).apply(inp) as tf.SymbolicTensor;
    const b1 = tf.layers.conv2d({ name: 'b', filters: 6, kernelSize: 3, padding: 'same' }).apply(a1) as tf.SymbolicTensor;
    const c1 = tf.layers.conv2d({ name: 'c', filters: 6, kernelSize: 1 }).apply(inp) as tf.SymbolicTensor;
    const s = tf.layers.add({ name: 'add' }).apply([b1, c1]) as tf.SymbolicTensor;
    const mid = tf.layers.conv2d({ name: 'mid', filters: 5, kernelSize: 3, padding: 'same' }).apply(s) as tf.SymbolicTensor;
    const out = tf.layers.conv2d({ name: 'out', filters: 4, kernelSize: 1 }).apply(mid) as tf.SymbolicTensor;
    const an = analyzeModel(tf.model({ inputs: inp, outputs: out }));
    assert.deepEqual(
      an.groups.map((g) => [g.id, g.channels, [...g.layers].sort()]),
      [
        ['a', 6, ['a']],
        ['b', 6, ['b', 'c']],
        ['mid', 5, ['mid']],
      ],
    );
  });

  test('depthwise follows its producer; its BN too', () => {
    const inp = tf.input({ shape: [8, 8, 3] });
    let x = tf.layers.conv2d({ name: 'pw', filters: 8, kernelSize: 1 }).apply(inp) as tf.SymbolicTensor;
    x = tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization({ name: 'bn' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.dense({ name: 'fc', units: 3 }).apply(x) as tf.SymbolicTensor;
    const an = analyzeModel(tf.model({ inputs: inp, outputs: x }));
    assert.deepEqual(
      an.groups.map((g) => [g.id, g.channels, [...g.layers].sort()]),
      [['pw', 8, ['bn', 'dw', 'pw']]],
    );
  });

  test('concat maps index ranges to the groups that produced them; pruning it keeps logits for keep-all', async () => {
    const inp = tf.input({ shape: [6, 6, 2] });
    const p = tf.layers.conv2d({ name: 'p', filters: 4, kernelSize: 3, padding: 'same' }).apply(inp) as tf.SymbolicTensor;
    const q = tf.layers.conv2d({ name: 'q', filters: 3, kernelSize: 1 }).apply(inp) as tf.SymbolicTensor;
    const cat = tf.layers.concatenate({ name: 'cat' }).apply([p, q]) as tf.SymbolicTensor;
    const f = tf.layers.flatten({ name: 'flat' }).apply(cat) as tf.SymbolicTensor;
    const o = tf.layers.dense({ name: 'fc', units: 2 }).apply(f) as tf.SymbolicTensor;
    const model = tf.model({ inputs: inp, outputs: o });
    const an = analyzeModel(model);
    assert.deepEqual(
      an.groups.map((g) => [g.id, g.channels]),
      [
        ['p', 4],
        ['q', 3],
      ],
    );
    const cat2 = an.layers.find((l) => l.name === 'cat')!;
    assert.deepEqual(
      cat2.output.segs.map((s) => [an.sets[s.set].producer, s.size]),
      [
        ['p', 4],
        ['q', 3],
      ],
    );
    // Flatten of a 6x6x7 concat feeding a dense of 2: rows 36*7; pruning q to 1 keeps 36*5 rows.
    const cand = { channels: [4, 1] };
    assert.equal(costOf(an, cand).macs, 36 * (9 * 2 * 4 + 2 * 1) + 36 * 5 * 2);
    const pruned = await applyPlan(model, an, {
      groups: [
        { id: 'p', keep: [0, 1, 2, 3] },
        { id: 'q', keep: [2] },
      ],
    });
    // Zero q's channels 0 and 1 in the base: then it must equal the pruned model exactly.
    const qLayer = model.getLayer('q');
    const [k, b] = qLayer.getWeights();
    const mask = tf.tensor1d([0, 0, 1]);
    const zeroed = [k.mul(mask), b.mul(mask)];
    qLayer.setWeights(zeroed);
    const x = tf.randomNormal([2, 6, 6, 2]);
    assert.ok(maxDiff(predict(model, x), predict(pruned, x)) < 1e-5);
  });

  test('SeparableConv2D: its pointwise half produces a group; pruning keeps counts exact and keep-all logits identical', async () => {
    const inp = tf.input({ shape: [10, 10, 3] });
    let x = tf.layers.conv2d({ name: 'c1', filters: 6, kernelSize: 3, padding: 'same' }).apply(inp) as tf.SymbolicTensor;
    x = tf.layers.separableConv2d({ name: 'sep', filters: 8, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization({ name: 'bn' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.separableConv2d({ name: 'sep2', filters: 5, kernelSize: 3, strides: 2, depthMultiplier: 2 }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.dense({ name: 'fc', units: 3 }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: inp, outputs: x });
    randomiseBn(model, 4);
    const an = analyzeModel(model);
    // sep2 has depth multiplier 2: its input channels (group `sep`) are fixed, so only c1 and sep2 remain.
    assert.deepEqual(
      an.groups.map((g) => [g.id, g.channels]),
      [
        ['c1', 6],
        ['sep2', 5],
      ],
    );
    // Hand count for c1 -> 4, sep2 -> 3: c1 10*10*9*3*4; sep 10*10*(9*4 + 4*8); sep2 4*4*(9*8*2 + 16*3); fc 3*3.
    const cand = { channels: [4, 3] };
    assert.equal(costOf(an, cand).macs, 100 * 9 * 3 * 4 + 100 * (9 * 4 + 4 * 8) + 16 * (9 * 8 * 2 + 16 * 3) + 3 * 3);
    const { model: p } = await pruneModel(model, an, cand, 'l1');
    assert.equal(p.countParams(), costOf(an, cand).params);
    const { model: same } = await pruneModel(model, an, { channels: [6, 5] }, 'l1');
    const xs = tf.randomNormal([2, 10, 10, 3], 0, 1, 'float32', 8);
    assert.equal(maxDiff(predict(model, xs), predict(same, xs)), 0);
  });

  test('an unsupported layer gives the coded error naming layer and class', () => {
    const inp = tf.input({ shape: [8, 8, 3] });
    const x = tf.layers.conv2d({ name: 'c', filters: 4, kernelSize: 3 }).apply(inp) as tf.SymbolicTensor;
    const y = tf.layers.upSampling2d({ name: 'up' }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: inp, outputs: y });
    assert.throws(
      () => analyzeModel(model),
      (e: unknown) => e instanceof AutopruneError && e.code === 'MODEL_UNSUPPORTED_LAYER' && /`up`/.test(e.message) && /UpSampling2D/.test(e.message),
    );
  });

  test('a Sequential model is analysed like a chain', () => {
    const m = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, name: 's1' }),
        tf.layers.flatten({ name: 'f' }),
        tf.layers.dense({ units: 5, name: 'h' }),
        tf.layers.dense({ units: 2, name: 'o' }),
      ],
    });
    const an = analyzeModel(m);
    assert.deepEqual(
      an.groups.map((g) => [g.id, g.channels]),
      [
        ['s1', 4],
        ['h', 5],
      ],
    );
    assert.equal(costOf(an, { channels: [2, 3] }).macs, 36 * 9 * 2 + 36 * 2 * 3 + 3 * 2);
  });
});

test('save + load round trip keeps the predictions', async () => {
  const m = buildZooModel('resnet-20', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25 });
  randomiseBn(m, 3);
  const dir = await mkdtemp(join(tmpdir(), 'autoprune-io-'));
  await saveModel(m, dir);
  const back = await loadModel(join(dir, 'model.json'));
  const x = tf.randomNormal([2, 28, 28, 1]);
  assert.equal(maxDiff(predict(m, x), predict(back, x)), 0);
  await assert.rejects(loadModel(join(dir, 'nope.json')), (e: unknown) => e instanceof AutopruneError && e.code === 'MODEL_NOT_FOUND');
});

test('zoo models are reproducible for every seed, 0 included; seeds >= 1 build what they always built', () => {
  const weights = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));
  const opts = { inputShape: [12, 12, 1] as const, numClasses: 10, width: 0.25 };
  for (const name of ZOO_NAMES) {
    const [a, b, c] = [0, 0, 1].map((seed) => buildZooModel(name, { ...opts, seed }));
    assert.deepEqual(weights(a), weights(b), `${name}: two builds with seed 0`);
    assert.notDeepEqual(weights(a), weights(c), `${name}: seed 0 vs seed 1`);
    // Oracle for seed 1: the first conv's kernel is heNormal with seed 1000, as before seed 0 was fixed.
    const first = c.layers.find((l) => l.getClassName() === 'Conv2D')!.getWeights()[0];
    const want = tf.initializers.heNormal({ seed: 1000 }).apply(first.shape);
    assert.equal(maxDiff(first, want), 0, `${name}: seed 1's first kernel`);
    for (const m of [a, b, c]) m.dispose();
  }
});
