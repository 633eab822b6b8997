/**
 * Users' own models: the generated fixture family (test/fixtures/user-models.ts) on both
 * tfjs backends the tool runs without a native binding. Oracles per fixture:
 *   - keep-all pruning gives identical logits;
 *   - pruning exactly-zero filters gives the same logits (and L1 picks exactly those filters);
 *   - random candidates build, predict, and count exactly the predicted MACs/params;
 *   - a proxy trial completes, and the model `export` writes reloads with tfjs's own loader and
 *     predicts what the scored model predicted.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig } from '../src/config/index.js';
import { Rng } from '../src/core/rng.js';
import { candidateFromRatios, type SearchSpace } from '../src/core/space.js';
import { initBackend } from '../src/engine/backend.js';
import { prunedForTrial } from '../src/evaluators/plan-rng.js';
import { loadSplits, type Splits } from '../src/evaluators/setup.js';
import { TfjsEvaluator } from '../src/evaluators/tfjs.js';
import { accuracy } from '../src/evaluators/train.js';
import { analyzeModel, SUPPORTED_LAYERS } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { saveModel } from '../src/model/io.js';
import { applyPlan, makePlan } from '../src/model/prune.js';
import { FIXTURE_CLASSES, FIXTURE_SHAPE, userFixtures, zeroGroupChannels } from './fixtures/user-models.js';

const FIXTURES = userFixtures();
const maxDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
const predict = (m: tf.LayersModel, x: tf.Tensor): tf.Tensor => m.predict(x) as tf.Tensor;
const spaceOf = (groups: SearchSpace['groups']): SearchSpace => ({ groups, options: { minKeepRatio: 0.2, channelStep: 1, skip: [] } });

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoprune-user-models-'));
});

test('the family covers every pair of conv kind x bias x activation x BN placement, and every secondary option', () => {
  const specs = FIXTURES.flatMap((x) => (x.spec ? [x.spec] : []));
  const seen = (f: (s: (typeof specs)[number]) => unknown) => new Set(specs.map((x) => String(f(x))));
  assert.deepEqual([...seen((s) => s.conv)].sort(), ['conv', 'depthwise', 'depthwise-x2', 'separable', 'separable-x2']);
  assert.deepEqual([...seen((s) => `${s.conv}/${s.bias}`)].length, 10);
  assert.deepEqual([...seen((s) => s.activation)].length, 5);
  assert.deepEqual([...seen((s) => s.bn)].length, 3);
  assert.deepEqual([...seen((s) => s.padding)].sort(), ['same', 'valid']);
  assert.deepEqual([...seen((s) => s.stride)].sort(), ['1', '2']);
  assert.deepEqual([...seen((s) => s.zeroPadding)].sort(), ['false', 'true']);
  assert.deepEqual([...seen((s) => s.join)].sort(), ['add', 'concat', 'none']);
  assert.deepEqual([...seen((s) => s.pool)].sort(), ['avg', 'max', 'none']);
  assert.deepEqual([...seen((s) => s.head)].sort(), ['flatten-dense', 'flatten-hidden-dropout-dense', 'gap']);
  // Pairwise: every (conv, activation) and (activation, bn) combination that can exist is present.
  assert.equal(seen((s) => `${s.conv}/${s.activation}`).size, 25);
  assert.equal(seen((s) => `${s.activation}/${s.bn}`).size, 13);
});

test('every layer class the analysis supports appears in some fixture, and every option of the table', async () => {
  await tf.setBackend('cpu');
  const used = new Set<string>();
  const options = new Set<string>();
  for (const [i, fx] of FIXTURES.entries()) {
    const m = fx.build(i + 1);
    for (const l of m.layers) {
      used.add(l.getClassName());
      const c = l.getConfig() as Record<string, unknown>;
      if (c.use_bias === true || c.useBias === true) options.add(`${l.getClassName()}:bias`);
      if (c.depthMultiplier === 2 || (l as unknown as { depthMultiplier?: number }).depthMultiplier === 2) options.add(`${l.getClassName()}:x2`);
      if (c.strides && JSON.stringify(c.strides) === '[2,2]') options.add(`${l.getClassName()}:stride2`);
      if (c.padding === 'valid') options.add(`${l.getClassName()}:valid`);
    }
    m.dispose();
  }
  assert.deepEqual(
    Object.keys(SUPPORTED_LAYERS).filter((c) => !used.has(c)),
    [],
  );
  for (const o of [
    'Conv2D:bias',
    'DepthwiseConv2D:bias',
    'SeparableConv2D:bias',
    'DepthwiseConv2D:x2',
    'SeparableConv2D:x2',
    'Conv2D:stride2',
    'DepthwiseConv2D:stride2',
    'SeparableConv2D:stride2',
    'Conv2D:valid',
    'DepthwiseConv2D:valid',
    'SeparableConv2D:valid',
  ]) {
    assert.ok(options.has(o), `no fixture has ${o}`);
  }
});

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`user-style fixtures on ${backend}`, () => {
    let x: tf.Tensor;
    let splits: Splits;
    before(async () => {
      await initBackend(backend);
      x = tf.randomNormal([4, ...FIXTURE_SHAPE], 0, 1, 'float32', 11);
      splits = await loadSplits(fixtureConfig('unused'));
    });
    after(() => x.dispose());

    for (const [i, fx] of FIXTURES.entries()) {
      describe(fx.name, () => {
        let model: tf.LayersModel;
        before(() => {
          model = fx.build(i + 1);
        });
        after(() => model.dispose());

        test('keep-all gives identical logits', async () => {
          const a = analyzeModel(model);
          const plan = makePlan(model, a, { channels: a.groups.map((g) => g.channels) }, 'l1');
          const pruned = await applyPlan(model, a, plan);
          assert.equal(maxDiff(predict(model, x), predict(pruned, x)), 0);
          pruned.dispose();
        });

        test('pruning exactly-zero filters gives the same logits; L1 chooses exactly those', async () => {
          const a = analyzeModel(model);
          const zeroed = fx.build(i + 1);
          const rng = new Rng(`zero:${fx.name}`);
          const dead = a.groups.map((g) => pick(rng, g.channels, Math.floor(g.channels / 3)));
          dead.forEach((d, g) => zeroGroupChannels(zeroed, a, g, d));
          const keep = a.groups.map((g, gi) => [...Array(g.channels).keys()].filter((c) => !dead[gi].includes(c)));
          const plan = makePlan(zeroed, a, { channels: keep.map((k) => k.length) }, 'l1');
          assert.deepEqual(
            plan.groups.map((g) => g.keep),
            keep,
          );
          const pruned = await applyPlan(zeroed, a, plan);
          const diff = maxDiff(predict(zeroed, x), predict(pruned, x));
          assert.ok(diff < 1e-5, `max |logit difference| ${diff}`);
          pruned.dispose();
          zeroed.dispose();
        });

        test('random candidates build, predict, and count exactly the predicted MACs and params', async () => {
          const a = analyzeModel(model);
          const rng = new Rng(`random:${fx.name}`);
          for (let k = 0; k < 3; k++) {
            const c = candidateFromRatios(
              spaceOf(a.groups),
              a.groups.map(() => rng.uniform(0.2, 1)),
            );
            const pruned = await applyPlan(model, a, makePlan(model, a, c, 'l1'));
            const y = predict(pruned, x);
            assert.deepEqual(y.shape, [4, FIXTURE_CLASSES]);
            assert.ok(tf.tidy(() => y.isFinite().all().dataSync()[0]) === 1, 'finite logits');
            assert.deepEqual(costOf(analyzeModel(pruned), null), costOf(a, c));
            assert.equal(pruned.countParams(), costOf(a, c).params);
            pruned.dispose();
          }
        });

        test('a proxy trial completes; the exported model reloads with tfjs and predicts as scored', async () => {
          const cfg = fixtureConfig(fx.name);
          const ev = await TfjsEvaluator.create(cfg, { splits, base: model });
          const a = analyzeModel(model);
          const c = candidateFromRatios(
            spaceOf(a.groups),
            a.groups.map((_, g) => (g % 2 === 0 ? 0.5 : 0.75)),
          );
          const r = await ev.evaluate({ trial: 3, candidate: c, stage: 'proxy' });
          assert.deepEqual(r.cost, costOf(a, c));
          // export rebuilds the trial exactly as the proxy built it (evaluators/plan-rng.ts).
          const { model: scored } = await prunedForTrial(cfg, model, a, c, 3, splits.train);
          assert.equal(accuracy(scored, splits.validation), r.proxyAccuracy);
          const out = join(dir, `${backend}-${fx.name}`);
          await saveModel(scored, out);
          const reloaded = await loadWithTfjs(out);
          assert.equal(maxDiff(predict(scored, x), predict(reloaded, x)), 0);
          scored.dispose();
          reloaded.dispose();
        });
      });
    }
  });
}

/** `k` distinct channel indices of `n`, ascending, seeded. */
function pick(rng: Rng, n: number, k: number): number[] {
  const all = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, k).sort((p, q) => p - q);
}

function fixtureConfig(name: string) {
  return resolveConfig({
    name: 'user-models',
    data: { dataset: 'synthetic', validationSize: 48, synthetic: { shape: [...FIXTURE_SHAPE], classes: FIXTURE_CLASSES, train: 160, test: 32 } },
    model: { checkpoint: join(dir ?? tmpdir(), name, 'model.json') },
    evaluation: { calibration: { batches: 2, batchSize: 16 }, latency: { batchSize: 2, runs: 1 } },
    run: { store: ':memory:' },
  });
}

/** tfjs's own loader on the files as written (no autoprune code between them and the model). */
async function loadWithTfjs(folder: string): Promise<tf.LayersModel> {
  const json = JSON.parse(await readFile(join(folder, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const bin = await readFile(join(folder, json.weightsManifest[0].paths[0]));
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer,
    }),
  );
}
