/**
 * NetAdapt's chain end to end through `autoprune search` (issues 8 and 10): greedy with
 * `adapt: chosen` short-fine-tunes each iteration's chosen model as a stage-`adapt` trial, and the
 * next iteration's candidates are pruned from those adapted weights (their `parent`), with their
 * proxies on onnxruntime. A tiny synthetic model, real engines, real store.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { resolveConfig } from '../src/config/index.js';
import { candidateKey } from '../src/core/space.js';
import { initBackend } from '../src/engine/backend.js';
import { buildBaseArchitecture } from '../src/evaluators/setup.js';
import { latencyEngineOf } from '../src/evaluators/types.js';
import { saveModel } from '../src/model/io.js';
import { openStore } from '../src/store/index.js';
import { cli } from './helpers.js';

before(async () => {
  await initBackend('wasm');
});

test('greedy with adapt: chosen fine-tunes each chosen model and prunes the next candidates from it, to the target', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'autoprune-netadapt-'));
  const checkpoint = join(dir, 'base', 'model.json');
  const user = {
    name: 'netadapt',
    data: { dataset: 'synthetic', validationSize: 64, synthetic: { shape: [16, 16, 1], classes: 4, train: 256, test: 64 } },
    model: { zoo: 'plain-cnn', width: 0.5, checkpoint },
    search: { controller: { name: 'greedy', initialReduction: 0.2, adapt: 'chosen' }, baseline: false, targets: [0.5], budget: { trials: 200 } },
    evaluation: {
      calibration: { batches: 2, batchSize: 32 },
      adapt: { epochs: 1, batchesPerEpoch: 2 },
      finetune: { batchSize: 32 },
      finalists: { count: 0 },
      latency: { batchSize: 4, runs: 1 },
    },
    run: { store: join(dir, 'studies.db'), concurrency: 2 },
  };
  const base = buildBaseArchitecture(resolveConfig(user), { shape: [16, 16, 1], numClasses: 4 });
  await saveModel(base, join(dir, 'base'));
  base.dispose();
  const path = join(dir, 'netadapt.json');
  await writeFile(path, JSON.stringify(user));
  const r = await cli('search', path);
  assert.equal(r.code, 0, r.stderr);
  const store = await openStore(user.run.store);
  const trials = await store.listTrials('netadapt');
  await store.close();
  assert.ok(
    trials.every((t) => t.state === 'complete'),
    trials
      .filter((t) => t.state !== 'complete')
      .map((t) => `${t.number}: ${t.error}`)
      .join('; '),
  );
  const adapts = trials.filter((t) => t.stage === 'adapt');
  assert.ok(adapts.length >= 2, `${adapts.length} adapt trials`);
  // After the first adapt, every proxy names the latest adapted model as its parent, by trial number.
  const firstAdapt = adapts[0].number;
  const children = trials.filter((t) => t.stage === 'proxy' && t.number > firstAdapt);
  assert.ok(children.length >= 4, `${children.length} children of adapted parents`);
  for (const c of children) {
    const parent = trials[c.parent!];
    assert.equal(parent?.stage, 'adapt', `trial ${c.number}: parent ${c.parent}`);
    assert.ok(parent.number < c.number);
    assert.equal(latencyEngineOf(c.metrics.timings), 'onnxruntime', `trial ${c.number} ran its proxy on onnxruntime`);
  }
  // Each adapt trial is the best proxy of the iteration before it (NetAdapt's choice).
  for (const a of adapts) {
    const iteration = (a.meta as { iteration: number }).iteration;
    const candidates = trials.filter((t) => t.stage === 'proxy' && (t.meta as { iteration: number }).iteration === iteration - 1);
    if (!candidates.length) continue;
    const best = Math.max(...candidates.map((t) => t.metrics.proxyAccuracy!));
    assert.ok(
      candidates.some((t) => candidateKey(t.candidate) === candidateKey(a.candidate) && t.metrics.proxyAccuracy === best),
      `adapt trial ${a.number} is the best of iteration ${iteration - 1}`,
    );
  }
  const smallest = Math.min(...trials.map((t) => t.cost.macs / trials[0].cost.macs));
  assert.ok(
    trials.some((t) => (t.meta as { target?: number }).target === 0.5),
    `the walk reached the 50% window (smallest ${smallest.toFixed(3)} of the first trial's MACs)`,
  );
});
