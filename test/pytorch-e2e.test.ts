/**
 * A PyTorch user's chain, end to end through the CLI on the default engines: torchvision's resnet18
 * and mobilenet_v2 exported by `torch.onnx.export` with its defaults (BN folded into the convs;
 * 3x32x32 input, 10 classes, seeded random weights; scripts/torch-fixtures.py --set large) go through
 * `inspect`, a 3-trial `search` (onnxruntime proxy, one finalist fine-tuned on libtorch, whose
 * artifact is a graph folder) and `export` of the finalist; the exported ONNX keeps the input's
 * name, NCHW layout and dynamic batch axis, comes with plan.json and apply_plan.py, and onnxruntime's
 * predictions on it equal those of the finalist's graph computed by the naive float64 evaluator.
 * A non-finalist's export scores the trial's proxy accuracy again on onnxruntime.
 *
 * Needs torch + torchvision in /usr/bin/python3 (to make the fixtures, unless already in
 * .tmp/torch-fixtures) and the libtorch binding; without them it skips with a message, except under
 * CI=true.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { studyConfig } from '../src/app/index.js';
import { Rng } from '../src/core/rng.js';
import { isRungTrial } from '../src/core/types.js';
import { requireOnnxRuntime, withSession } from '../src/engine/onnxruntime.js';
import { torchStatus } from '../src/engine/torch.js';
import { sessionAccuracy } from '../src/evaluators/onnx-proxy.js';
import { loadSplits } from '../src/evaluators/setup.js';
import { loadGraph } from '../src/model/ir/io.js';
import { toInputLayout } from '../src/model/ir/layout.js';
import { openStore } from '../src/store/index.js';
import { studyFinals } from '../src/study/finals.js';
import { referenceForward } from './graph-reference.js';
import { cli, oneLine } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, '.tmp/torch-fixtures');
const PYTHON = '/usr/bin/python3';
const CI = process.env.CI === 'true';
const MODELS = ['resnet18', 'mobilenet_v2'] as const;

/** Why the chain cannot run here (null: it can); under CI=true a missing part is a failure. */
function missing(): string | null {
  const why = (() => {
    if (!torchStatus().loaded) return 'the libtorch binding is not built (native/torch)';
    if (MODELS.every((m) => existsSync(join(FIXTURES, `${m}.onnx`)))) return null;
    if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status !== 0) {
      return `torch/torchvision not importable by ${PYTHON}, and no fixtures in ${FIXTURES}`;
    }
    const r = spawnSync('nice', ['-n', '10', PYTHON, 'scripts/torch-fixtures.py', '--set', 'large', '--out', FIXTURES], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`scripts/torch-fixtures.py failed:\n${r.stderr}`);
    return null;
  })();
  if (why !== null && CI) throw new Error(`CI=true but ${why}`);
  return why;
}

const skip = missing() ?? false;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoprune-pytorch-e2e-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = (name: string, checkpoint: string, store: string): string => `name: ${name}
data:
  dataset: synthetic
  validationSize: 40
  synthetic: { shape: [32, 32, 3], classes: 10, train: 200, test: 40 }
model:
  checkpoint: ${checkpoint}
search:
  controller: { name: random }
  targets: [0.5]
  budget: { trials: 3 }
evaluation:
  calibration: { batches: 1, batchSize: 16 }
  finalists: { count: 1, epochs: 1, batchSize: 16, batchesPerEpoch: 2 }
  latency: { batchSize: 2, runs: 1 }
run:
  concurrency: 1
  store: ${store}
`;

describe('PyTorch ONNX models through inspect, search and export', { skip }, () => {
  for (const model of MODELS) {
    test(`${model}: inspect, search (onnxruntime proxy, libtorch finalist), export as NCHW ONNX with the finalist's predictions`, async () => {
      const onnx = join(FIXTURES, `${model}.onnx`);
      const meta = JSON.parse(await readFile(join(FIXTURES, `${model}.json`), 'utf8')) as { input: string; shape: number[]; classes: number };

      const inspected = await cli('inspect', onnx);
      assert.equal(inspected.code, 0, inspected.stderr);
      assert.match(inspected.stdout, /total: [\d.]+ MMACs/);

      const store = join(dir, `${model}.db`);
      const cfgPath = join(dir, `${model}.yaml`);
      await writeFile(cfgPath, config(model, onnx, store));
      const searched = await cli('search', cfgPath);
      assert.equal(searched.code, 0, searched.stderr);
      assert.match(searched.stdout, /proxy engine: onnxruntime/);

      const s = await openStore(store);
      const [study, trials, finals] = await Promise.all([s.getStudy(model), s.listTrials(model)])
        .then(async ([st, ts]) => [st, ts, await studyFinals(s, model, ts)] as const)
        .finally(() => s.close());
      assert.equal(study?.state, 'complete');
      // The search's own trials; the finalist's fine-tune is a rung trial of its own.
      assert.equal(trials.filter((t) => !isRungTrial(t)).length, 3);
      for (const t of trials) assert.equal(t.state, 'complete', `trial ${t.number}: ${t.error}`);
      assert.ok(study!.inputs?.baseModel, 'the study records the graph hash');
      assert.equal(finals.length, 1);
      const fin = finals[0];
      assert.equal(fin.trainEngine, 'libtorch');
      assert.ok(fin.modelPath && existsSync(join(fin.modelPath, 'graph.json')), 'the finalist is saved as a graph folder');
      assert.ok(!existsSync(join(fin.modelPath, 'model.json')), 'no tfjs model of an ONNX base');

      const out = join(dir, `${model}-export`);
      const exported = await cli('export', model, '--trial', String(fin.trial), '--store', store, '--out', out, '--format', 'onnx');
      assert.equal(exported.code, 0, exported.stderr);
      for (const f of ['model.onnx', 'plan.json', 'apply_plan.py', 'card.json']) assert.ok(existsSync(join(out, f)), `${f} written`);
      const card = JSON.parse(await readFile(join(out, 'card.json'), 'utf8'));
      assert.equal(card.weights, 'fine-tuned');
      assert.deepEqual(card.onnxInput, { name: meta.input, layout: 'NCHW' });

      // Any other trial leaves as the proxy scored it: its validation accuracy on onnxruntime is the trial's.
      const other = trials.find((t) => t.number !== fin.trial)!;
      const out2 = join(dir, `${model}-export-${other.number}`);
      const proxied = await cli('export', model, '--trial', String(other.number), '--store', store, '--out', out2, '--format', 'onnx');
      assert.equal(proxied.code, 0, proxied.stderr);
      assert.equal(JSON.parse(await readFile(join(out2, 'card.json'), 'utf8')).weights, 'proxy');
      const cfg = studyConfig(study!);
      const splits = await loadSplits(cfg);
      const again = await withSession(await readFile(join(out2, 'model.onnx')), {}, (sess, o) =>
        sessionAccuracy(sess, o, splits.validation, { limit: cfg.evaluation.validation.limit, layout: 'NCHW' }),
      );
      // To two images: the statistics are measured again with another intra-op thread count (float sums in another order), which may flip a near-tied image.
      assert.ok(Math.abs(again - other.metrics.proxyAccuracy!) * splits.validation.count <= 2 + 1e-9, `${again} vs ${other.metrics.proxyAccuracy}`);

      const graph = await loadGraph(fin.modelPath);
      assert.equal(graph.inputLayout, 'NCHW');
      const ort = await requireOnnxRuntime();
      const session = await ort.InferenceSession.create(join(out, 'model.onnx'));
      try {
        assert.deepEqual(session.inputNames, [meta.input]);
        const rng = new Rng(7);
        const shape = [32, 32, 3] as const;
        // Two batch sizes through one session: the batch axis stayed dynamic.
        for (const n of [1, 3]) {
          const hwc = Float32Array.from({ length: n * 32 * 32 * 3 }, () => rng.next() * 2 - 1);
          const feeds = { [meta.input]: new ort.Tensor('float32', toInputLayout(hwc, shape, 'NCHW'), [n, 3, 32, 32]) };
          const got = (await session.run(feeds))[session.outputNames[0]];
          assert.deepEqual(got.dims, [n, meta.classes]);
          const logits = got.data as Float32Array;
          const want = referenceForward(graph, hwc, n);
          let scale = 0;
          for (const v of want) scale = Math.max(scale, Math.abs(v));
          for (let i = 0; i < n; i++) {
            const row = (a: ArrayLike<number>) => Array.from({ length: meta.classes }, (_, c) => a[i * meta.classes + c]);
            const argmax = (r: number[]) => r.indexOf(Math.max(...r));
            // Same prediction, unless the reference's top two are closer than the logits' tolerance (float32 vs float64).
            const ref = row(want);
            const got = argmax(row(logits));
            assert.ok(ref[argmax(ref)] - ref[got] <= 1e-3 * Math.max(1, scale), `image ${i} of ${n}: predicted ${got}, reference ${argmax(ref)}`);
            row(logits).forEach((v, c) =>
              assert.ok(Math.abs(v - row(want)[c]) <= 1e-3 * Math.max(1, scale), `logit ${c} of image ${i}: ${v} vs ${row(want)[c]}`),
            );
          }
        }
      } finally {
        await session.release();
      }
    });
  }

  test('the tfjs proxy engine is refused for an ONNX model in one line, before the store exists', async () => {
    const store = join(dir, 'refused.db');
    const cfgPath = join(dir, 'refused.yaml');
    await writeFile(cfgPath, config('refused', join(FIXTURES, 'mobilenet_v2.onnx'), store));
    const r = await cli('search', cfgPath, '--engine', 'tfjs');
    assert.match(oneLine(r), /proxy engine is tfjs .* is an ONNX model; expected `run\.engine\.proxy`: onnxruntime/);
    assert.ok(!existsSync(store));
  });
});
