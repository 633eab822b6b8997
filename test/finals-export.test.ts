/**
 * A finalist is a trial with its weights in the store: a study searched and fine-tuned on one host
 * (PostgreSQL store, that host's artifact folder) is exported on a second host (same store, an
 * empty artifact folder of its own), and the exported weights are the ones the last rung saved
 * and scored. And finals derive from last-rung trials, with rows of the older finals table read
 * for candidates that have none.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { saveModel } from '../src/model/io.js';
import { openStore } from '../src/store/index.js';
import type { TrialRecord } from '../src/store/types.js';
import { finalsOf } from '../src/study/finals.js';
import { artifactPaths } from '../src/study/lineage.js';
import { type RungMeta, rungMetaOf } from '../src/study/rungs.js';
import { FIXTURE_CLASSES, FIXTURE_SHAPE, userFixtures } from './fixtures/user-models.js';
import { cli } from './helpers.js';
import { pgUnavailable, testDatabases } from './pg-helpers.js';

const unavailable = await pgUnavailable();
const dbs = testDatabases('autoprune_finals_export');
after(() => dbs.dropAll());

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'autoprune-finals-'));
});

/** Runs the CLI as a host whose artifact folder is `artifacts`. */
async function onHost(artifacts: string, ...args: string[]) {
  const before = process.env.AUTOPRUNE_ARTIFACTS;
  process.env.AUTOPRUNE_ARTIFACTS = artifacts;
  try {
    return await cli(...args);
  } finally {
    if (before === undefined) delete process.env.AUTOPRUNE_ARTIFACTS;
    else process.env.AUTOPRUNE_ARTIFACTS = before;
  }
}

test('export on a second host writes the weights the last rung saved and scored', { skip: unavailable ?? false }, async () => {
  const url = await dbs.fresh();
  const fx = userFixtures().find((f) => !f.spec)!;
  const modelDir = join(dir, 'base');
  await saveModel(fx.build(3), modelDir);
  const cfg = join(dir, 'hosts.yaml');
  await writeFile(
    cfg,
    `name: hosts
data:
  dataset: synthetic
  validationSize: 48
  synthetic: { shape: [${FIXTURE_SHAPE.join(', ')}], classes: ${FIXTURE_CLASSES}, train: 160, test: 48 }
model:
  checkpoint: ${join(modelDir, 'model.json')}
search:
  targets: [0.5]
  budget: { trials: 3 }
evaluation:
  calibration: { batches: 2, batchSize: 16 }
  finetune: { batchSize: 16, batchesPerEpoch: 2 }
  rungs:
    - { keep: 1, max: 2, finetune: { steps: 2 } }
    - { keep: 1, max: 1, finetune: { epochs: 1 } }
  latency: { batchSize: 2, runs: 1 }
run:
  workers: inline
  store: ${url}
`,
  );
  const hostA = join(dir, 'host-a');
  const hostB = join(dir, 'host-b');
  await mkdir(hostB, { recursive: true });
  const search = await onHost(hostA, 'search', cfg);
  assert.equal(search.code, 0, search.stderr);

  const store = await openStore(url, { artifacts: hostA });
  const trials = await store.listTrials('hosts');
  await store.close();
  const last = trials.find((t) => (rungMetaOf(t) as RungMeta | null)?.last && t.state === 'complete');
  assert.ok(last, `a last-rung trial: ${JSON.stringify(trials.map((t) => [t.number, t.stage, t.state, t.error]))}`);
  const origin = rungMetaOf(last)!.origin;
  const scored = artifactPaths.trialModel(join(hostA, 'hosts'), last.number);
  assert.ok(existsSync(join(scored, 'weights.bin')), 'host A saved the last rung’s weights');

  const out = join(dir, 'export-b');
  const exp = await onHost(hostB, 'export', 'hosts', '--trial', String(origin), '--out', out, '--store', url, '--format', 'tfjs');
  assert.equal(exp.code, 0, exp.stderr);
  // The bytes host A's last rung saved, fetched through the store: not a re-cut of the base model.
  assert.deepEqual(await readFile(join(out, 'weights.bin')), await readFile(join(scored, 'weights.bin')));
  const card = JSON.parse(await readFile(join(out, 'card.json'), 'utf8')) as { weights: string; finalAccuracy: number; finetuneEpochs: number };
  assert.equal(card.weights, 'fine-tuned');
  assert.equal(card.finalAccuracy, last.metrics.finalAccuracy);
  assert.ok(existsSync(join(hostB, 'hosts', 'trials', String(last.number), 'model', 'weights.bin')), 'host B pulled the model from the store');
});

describe('finalsOf', () => {
  const trial = (number: number, over: Partial<TrialRecord>): TrialRecord =>
    ({
      study: 's',
      number,
      key: String(number),
      candidate: { channels: [4] },
      cost: { macs: 10, params: 5 },
      controller: 'random',
      state: 'complete',
      stage: 'proxy',
      parent: null,
      metrics: { proxyAccuracy: 0.5 },
      createdAt: '2026-01-01T00:00:00.000Z',
      startedAt: null,
      finishedAt: `2026-01-01T00:00:0${number}.000Z`,
      attempts: 1,
      worker: null,
      error: null,
      ...over,
    }) as TrialRecord;
  const rung = (n: number, origin: number, r: number, last: boolean, finalAccuracy: number, weights: number | null, extra: object = {}) =>
    trial(n, {
      stage: 'finetune',
      parent: weights ?? origin,
      meta: { rung: r, origin, target: 0.5, weights, finetune: { epochs: r }, last, ...extra } as unknown as TrialRecord['meta'],
      metrics: { proxyAccuracy: 0.6, finalAccuracy, timings: { total: 3, 'train@libtorch': 2 } },
    });

  test('a last-rung trial is its origin’s final, with the chain’s epochs and its own saved model (a migrated one: where it was saved)', () => {
    const trials = [
      trial(0, {}),
      trial(1, {}),
      rung(2, 0, 1, false, 0.8, null),
      rung(3, 0, 2, true, 0.9, 2),
      rung(4, 1, 1, true, 0.7, null, { modelPath: '/old/trial-1' }),
    ];
    assert.deepEqual(
      finalsOf('s', trials, '/art/s').map((f) => [f.trial, f.finalAccuracy, f.epochs, f.modelPath, f.fromTrial, f.rung, f.trainEngine ?? null]),
      [
        [0, 0.9, 3, '/art/s/trials/3/model', 3, 2, 'libtorch'],
        [1, 0.7, 1, '/old/trial-1', 4, 1, 'libtorch'],
      ],
    );
  });

  test('a rung trial that is not the last, or not complete, is no final', () => {
    const trials = [trial(0, {}), rung(1, 0, 1, false, 0.8, null), { ...rung(2, 0, 2, true, 0.9, 1), state: 'running' } as TrialRecord];
    assert.deepEqual(finalsOf('s', trials, '/art/s'), []);
  });
});
