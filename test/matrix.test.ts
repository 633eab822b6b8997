/**
 * Every fixture on every engine. Rows: the user-style tfjs family (every member, and every member
 * without its BatchNormalization layers), the zoo at a small width, and the ONNX files exported by
 * torch.onnx.export (the committed small ones; resnet18, mobilenet_v2, squeezenet1_1 and
 * mobilenet_v3_small, which has squeeze-and-excitation, when torch can generate them). Columns, one
 * subtest each:
 * 1. keep-all cut: onnxruntime and libtorch give the reference logits (tfjs `cpu` on the LayersModel,
 *    onnxruntime on the original file for an ONNX row) within 1e-4 x max |logit|;
 * 2. zero-filter cut: the channels a cut drops are made to contribute nothing in the full graph
 *    (their readers' weights zeroed); cutting exactly them gives the same logits on both engines;
 * 3. costs of random candidates = an independent count (the tfjs analysis, or a count over the cut
 *    graph's own arrays);
 * 4. a proxy trial on the default engine (OnnxEvaluator as the search builds it) completes with a
 *    finite accuracy; every conv without a BN is unfolded for re-calibration, and a row without BN has some;
 * 5. one SGD step on libtorch on the cut graph: finite loss, weights changed;
 * 6. the exported pruned ONNX has fewer parameters than the original and its onnxruntime logits are
 *    the pruned graph's by the naive float64 evaluator (test/graph-reference.ts).
 * Inputs are tiny (12x12 to 32x32, two to eight images). libtorch checks skip with the reason when
 * the binding is absent; under CI=true they, and the generated ONNX fixtures, are required.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { resolveConfig } from '../src/config/index.js';
import { Rng } from '../src/core/rng.js';
import type { Split } from '../src/data/types.js';
import { initBackend } from '../src/engine/backend.js';
import { torchStatus } from '../src/engine/torch.js';
import { OnnxEvaluator } from '../src/evaluators/onnx.js';
import type { Splits } from '../src/evaluators/setup.js';
import { TensorScope, TorchGraphModel } from '../src/evaluators/torch-graph.js';
import { makeTorchOptimizer, torchStep } from '../src/evaluators/train-torch.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { analyzeGraph, type GraphAnalysis, nodeIndex } from '../src/model/ir/analyze.js';
import { graphCost } from '../src/model/ir/cost.js';
import { cutGraph } from '../src/model/ir/cut.js';
import { graphFromLayersModel } from '../src/model/ir/from-tfjs.js';
import type { ModelGraph } from '../src/model/ir/graph.js';
import { importOnnx } from '../src/model/ir/onnx-import.js';
import { graphToOnnx } from '../src/model/ir/to-onnx.js';
import { convsWithoutBatchNorm } from '../src/model/ir/unfold.js';
import { encodeOnnx } from '../src/model/onnx-proto.js';
import { buildZooModel } from '../src/model/zoo.js';
import { randomiseBatchNorm, userFixtures, withoutBatchNorm } from './fixtures/user-models.js';
import { referenceForward } from './graph-reference.js';
import { CI, countCost, LARGE, LARGE_FIXTURES, largeSkip, onnxSummary, randomKeep, range, readNpy, SMALL_FIXTURES, zeroDropped } from './torch-fixtures.js';

const status = torchStatus();
const torchSkip = status.loaded || CI ? false : `libtorch binding not available: ${status.loaded ? '' : status.reason}`;
const torch = status.loaded ? status.binding : (undefined as never);
if (status.loaded) torch.setThreads(1);

test('the libtorch binding is built (required under CI)', { skip: !CI && 'only checked when CI=true' }, () => {
  assert.ok(status.loaded, `libtorch binding not available: ${status.loaded ? '' : status.reason}`);
});

const t0 = performance.now();
before(async () => {
  // tfjs' reference backend: plain JavaScript, no kernels shared with the engines under test.
  await initBackend('cpu');
});
after(() => {
  console.log(`matrix: ${ROWS.length} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});

/** One fixture: its graph, images (NHWC, as the data pipeline holds them) and reference logits. */
interface Row {
  readonly graph: ModelGraph;
  readonly analysis: GraphAnalysis;
  /** n images [n, h, w, c]. */
  readonly images: Float32Array;
  readonly n: number;
  readonly shape: readonly [number, number, number];
  readonly classes: number;
  readonly reference: Float32Array;
  /** The original model's parameters as ONNX (the source file for an ONNX row). */
  readonly originalParams: number;
  /** The tfjs model a tfjs row came from (its analysis is the cost oracle). */
  readonly model?: tf.LayersModel;
}

interface RowSpec {
  readonly name: string;
  /** The row has convs without a BN after them, which the proxy must unfold. */
  readonly bnLess: boolean;
  /** The row's model has no BatchNormalization at all. */
  readonly noBn?: boolean;
  readonly load: () => Promise<Row>;
}

const images = (n: number, shape: readonly number[], seed: string): Float32Array => {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, () => rng.uniform(-1, 1));
};

/** [n, c, h, w] -> [n, h, w, c]. */
function toNhwc(x: Float32Array, [n, c, h, w]: readonly number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) out[((i * h + y) * w + z) * c + k] = x[((i * c + k) * h + y) * w + z];
  return out;
}
/** [n, h, w, c] -> [n, c, h, w]. */
function toNchw(x: Float32Array, [n, h, w, c]: readonly number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) out[((i * c + k) * h + y) * w + z] = x[((i * h + y) * w + z) * c + k];
  return out;
}

const sessionOpts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'disabled' };

/** Logits of an ONNX model (bytes or path) for NHWC images, fed in the model's own layout. */
async function ortLogits(model: Uint8Array | string, layout: ModelGraph['inputLayout'], row: Pick<Row, 'images' | 'n' | 'shape'>): Promise<Float32Array> {
  const s = typeof model === 'string' ? await ort.InferenceSession.create(model, sessionOpts) : await ort.InferenceSession.create(model, sessionOpts);
  try {
    const [h, w, c] = row.shape;
    const x =
      layout === 'NHWC'
        ? new ort.Tensor('float32', row.images, [row.n, h, w, c])
        : new ort.Tensor('float32', toNchw(row.images, [row.n, h, w, c]), [row.n, c, h, w]);
    const out = await s.run({ [s.inputNames[0]]: x });
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

const graphLogits = (g: ModelGraph, row: Row): Promise<Float32Array> => ortLogits(encodeOnnx(graphToOnnx(g)), g.inputLayout, row);

function torchLogits(g: ModelGraph, row: Row): Float32Array {
  const m = TorchGraphModel.fromGraph(torch, g);
  const s = new TensorScope(torch);
  try {
    const d = m.forward(s, m.input(s, row.images, [row.n, ...row.shape]), false).data();
    return d instanceof Float32Array ? d : Float32Array.from(d);
  } finally {
    s.dispose();
    m.dispose();
  }
}

/** max |got - ref| <= tol * max |ref|. */
function assertClose(got: ArrayLike<number>, ref: ArrayLike<number>, tol: number, what: string): void {
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

function tfjsRow(build: () => tf.LayersModel, seed: string): () => Promise<Row> {
  return async () => {
    const model = build();
    const graph = graphFromLayersModel(model);
    const shape = model.inputs[0].shape.slice(1) as [number, number, number];
    const n = 2;
    const x = images(n, shape, seed);
    const reference = tf.tidy(() => (model.predict(tf.tensor4d(x, [n, ...shape])) as tf.Tensor).dataSync() as Float32Array);
    const classes = model.outputs[0].shape[1] as number;
    return {
      graph,
      analysis: analyzeGraph(graph),
      images: x,
      n,
      shape,
      classes,
      reference,
      originalParams: onnxSummary(encodeOnnx(graphToOnnx(graph))).params,
      model,
    };
  };
}

function onnxRow(dir: string, name: string): () => Promise<Row> {
  return async () => {
    const path = join(dir, `${name}.onnx`);
    const graph = importOnnx(readFileSync(path), `${name}.onnx`);
    const x = readNpy(join(dir, `${name}.input.npy`));
    const [n, c, h, w] = x.shape;
    const shape = [h, w, c] as const;
    const nhwc = toNhwc(x.data, x.shape);
    const reference = await ortLogits(path, 'NCHW', { images: nhwc, n, shape });
    const a = analyzeGraph(graph);
    const classes = a.shapes[nodeIndex(graph, graph.output)][0];
    return { graph, analysis: a, images: nhwc, n, shape, classes, reference, originalParams: onnxSummary(readFileSync(path)).params };
  };
}

const users = userFixtures();
const ZOO_SHAPE = [16, 16, 3] as const;
const ROWS: RowSpec[] = [
  // Every member's stem is a Conv2D with an in-layer relu and no BN after it.
  ...users.map((fx, i) => ({ name: fx.name, bnLess: true, noBn: fx.spec?.bn === 'none', load: tfjsRow(() => fx.build(i + 1), fx.name) })),
  // Every member without BN (the generated ones with `bn: 'none'` are already in the list above).
  ...users
    .map((fx, i) => [withoutBatchNorm(fx), i] as const)
    .filter(([fx], i) => fx !== users[i])
    .map(([fx, i]) => ({ name: fx.name, bnLess: true, noBn: true, load: tfjsRow(() => fx.build(i + 1), fx.name) })),
  ...(['plain-cnn', 'resnet-20', 'mobilenet-v2-tiny'] as const).map((name, i) => ({
    name,
    bnLess: false,
    load: tfjsRow(() => {
      const m = buildZooModel(name, { inputShape: ZOO_SHAPE, numClasses: 5, width: 0.25, seed: i + 1 });
      randomiseBatchNorm(m, i + 1);
      return m;
    }, name),
  })),
  // torch.onnx.export folds every BN into its conv: these rows have no BN at all.
  ...SMALL_FIXTURES.map((f) => ({ name: `onnx ${f.name}`, bnLess: true, noBn: true, load: onnxRow(f.dir, f.name) })),
  ...LARGE_FIXTURES.filter((f) => ['resnet18', 'mobilenet_v2', 'squeezenet1_1', 'mobilenet_v3_small'].includes(f.name)).map((f) => ({
    name: `onnx ${f.name}`,
    bnLess: true,
    noBn: true,
    load: onnxRow(f.dir, f.name),
  })),
];

test('the matrix has every row: each user-style member also without BN, the zoo, the ONNX fixtures', () => {
  const names = new Set(ROWS.map((r) => r.name));
  assert.equal(names.size, ROWS.length, 'row names are unique');
  for (const fx of users) assert.ok(names.has(withoutBatchNorm(fx).name), `${fx.name} has a row without BN`);
  assert.ok(SMALL_FIXTURES.length >= 4, 'the committed ONNX fixtures');
  if (largeSkip) return void console.log(`matrix: ${largeSkip}`);
  assert.equal(ROWS.filter((r) => r.name.startsWith('onnx ')).length, SMALL_FIXTURES.length + 4, `ONNX rows, the generated ones from ${LARGE}`);
});

/** The search's resolved config: the default engine and calibration, tiny batches. */
const cfg = resolveConfig({
  name: 'matrix',
  data: { dataset: 'synthetic', validationSize: 16, synthetic: { shape: [...ZOO_SHAPE], classes: 5, train: 64, test: 16 } },
  model: { zoo: 'plain-cnn' },
  evaluation: { calibration: { batches: 2, batchSize: 4 }, finalists: { count: 0 }, latency: { batchSize: 2, runs: 1 } },
  run: { backend: 'cpu', workers: 'inline', store: ':memory:' },
});

function split(row: Row, count: number, seed: string): Split {
  return {
    images: images(count, row.shape, seed),
    labels: Uint8Array.from({ length: count }, (_, i) => i % Math.min(row.classes, 5)),
    count,
    shape: [...row.shape],
  };
}

for (const spec of ROWS) {
  describe(spec.name, () => {
    let row: Row;
    let keep: number[][];
    let cut: ModelGraph;
    before(async () => {
      row = await spec.load();
      // At least half of each group, so that the zero-filter logits stay informative.
      keep = randomKeep(row.analysis, new Rng(`${spec.name}-keep`), 0.5);
      // A cut that drops nothing proves nothing: then the widest group loses its last channel.
      if (keep.every((k, g) => k.length === row.analysis.groups[g].channels)) {
        const widest = keep.reduce((w, k, g) => (k.length > keep[w].length ? g : w), 0);
        keep[widest] = keep[widest].slice(0, -1);
      }
      cut = cutGraph(row.graph, row.analysis, keep);
    });
    after(() => row?.model?.dispose());

    test('1. keep-all cut = reference: onnxruntime', async () => {
      const all = cutGraph(
        row.graph,
        row.analysis,
        row.analysis.groups.map((g) => range(g.channels)),
      );
      assertClose(await graphLogits(all, row), row.reference, 1e-4, 'onnxruntime keep-all');
    });

    test('1. keep-all cut = reference: libtorch', { skip: torchSkip }, () => {
      const all = cutGraph(
        row.graph,
        row.analysis,
        row.analysis.groups.map((g) => range(g.channels)),
      );
      assertClose(torchLogits(all, row), row.reference, 1e-4, 'libtorch keep-all');
    });

    test('2. zero-filter cut = the zeroed model: onnxruntime and libtorch', async (t) => {
      const zeroed = await graphLogits(zeroDropped(row.analysis, keep), row);
      assertClose(await graphLogits(cut, row), zeroed, 1e-4, 'onnxruntime zero-filter cut');
      if (torchSkip) return void t.diagnostic(`libtorch part skipped: ${torchSkip}`);
      assertClose(torchLogits(cut, row), zeroed, 1e-4, 'libtorch zero-filter cut');
    });

    test('3. costs of random candidates = an independent count', () => {
      const rng = new Rng(`${spec.name}-cost`);
      const old = row.model ? analyzeModel(row.model) : null;
      for (const k of [keep, randomKeep(row.analysis, rng), randomKeep(row.analysis, rng)]) {
        const c = { channels: k.map((v) => v.length) };
        // The tfjs analysis names its groups as the graph's; the ONNX rows count the cut graph's arrays.
        if (old) assert.deepEqual(graphCost(row.analysis, c), costOf(old, c), `candidate ${c.channels}`);
        else assert.deepEqual(graphCost(row.analysis, c), countCost(cutGraph(row.graph, row.analysis, k)), `candidate ${c.channels}`);
      }
    });

    test('4. a proxy trial on the default engine completes, re-calibrated', async () => {
      assert.equal(cfg.evaluation.calibration.unfold, 'auto', 'the default re-calibrates models without BN');
      if (spec.noBn) assert.ok(!row.graph.nodes.some((n) => n.op === 'BatchNormalization'), 'the row has no BN');
      const splits: Splits = {
        name: 'matrix',
        shape: row.shape,
        numClasses: row.classes,
        train: split(row, 8, `${spec.name}-train`),
        validation: split(row, 4, `${spec.name}-validation`),
        test: split(row, 4, `${spec.name}-test`),
      } as Splits;
      const ev = OnnxEvaluator.create(cfg, {
        graph: row.graph,
        splits,
        finetuner: () => Promise.reject(new Error('no training stage here')),
      });
      try {
        const r = await ev.evaluate({ trial: 0, candidate: { channels: keep.map((k) => k.length) }, stage: 'proxy' });
        assert.ok(Number.isFinite(r.proxyAccuracy) && r.proxyAccuracy! >= 0 && r.proxyAccuracy! <= 1, `accuracy ${r.proxyAccuracy}`);
        const unfolded = await ev.unfoldedConvs();
        assert.deepEqual(unfolded, convsWithoutBatchNorm(row.graph), 'every conv without a BN is unfolded');
        if (spec.bnLess) assert.ok(unfolded.length > 0, 'a model without BN is re-calibrated through unfolded BNs');
        else assert.equal(unfolded.length, 0, 'every conv has its own BN');
      } finally {
        await ev.close();
      }
    });

    test('5. one fine-tune step on libtorch on the cut graph: finite loss, weights changed', { skip: torchSkip }, () => {
      const m = TorchGraphModel.fromGraph(torch, cut);
      try {
        const opt = makeTorchOptimizer(torch, m, {
          epochs: 1,
          batchSize: 4,
          learningRate: 0.05,
          optimizer: 'sgd',
          momentum: 0,
          numClasses: row.classes,
          seed: 0,
        });
        const loss = torchStep(m, opt, split(row, 4, `${spec.name}-step`), 0.05);
        assert.ok(Number.isFinite(loss), `loss ${loss}`);
        const tuned = m.writeBack();
        let changed = 0;
        cut.nodes.forEach((n, i) => {
          const t = tuned.nodes[i];
          if ((n.op === 'Conv' || n.op === 'Dense') && t.op === n.op) changed += n.weight.reduce((s, v, j) => s + Math.abs(v - t.weight[j]), 0);
        });
        assert.ok(changed > 0, 'the step changed the weights');
      } finally {
        m.dispose();
      }
    });

    test('6. the exported pruned ONNX: fewer parameters, the pruned graph’s logits', async () => {
      const bytes = encodeOnnx(graphToOnnx(cut));
      const params = onnxSummary(bytes).params;
      assert.ok(params < row.originalParams, `${params} params, original ${row.originalParams}`);
      const want = referenceForward(cut, row.images, row.n);
      assertClose(await ortLogits(bytes, cut.inputLayout, row), want, 1e-4, 'pruned ONNX in onnxruntime vs the float64 reference');
    });
  });
}
