/**
 * The study-reading commands (list, show, report, compare, pick, export, config show) run as the
 * user runs them: `node bin/autoprune.js ...` in a child process, against a SQLite store built here
 * through the Store API with real search spaces and costs (a small plain-cnn) and made-up accuracies.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { parse as parseYaml } from 'yaml';
import { configHash, type ResolvedConfig, resolveConfig } from '../src/config/index.js';
import { isAutopruneError } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import { type Candidate, candidateFromRatios, candidateKey, type SearchSpace } from '../src/core/space.js';
import { sessionAccuracy } from '../src/evaluators/onnx-proxy.js';
import { loadSplits } from '../src/evaluators/setup.js';
import { accuracy, recalibrateBatchNorm } from '../src/evaluators/train.js';
import { type Analysis, analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { fileLoader, loadModel, saveModel } from '../src/model/io.js';
import { applyPlan, makePlan } from '../src/model/prune.js';
import { buildZooModel } from '../src/model/zoo.js';
import { parseCount, parseFraction, parseMs } from '../src/report/pick.js';
import { artifactKeyOf, pushFolder } from '../src/store/artifacts.js';
import { type Json, openStore, type Store } from '../src/store/index.js';
import { artifactPaths } from '../src/study/lineage.js';
import { cli, oneLine } from './helpers.js';
import { seedFinal } from './seed-final.js';
import { addTrial } from './store-contract.js';

const SEED = 7;

let dir: string;
let db: string;
let cfg: ResolvedConfig;
let space: SearchSpace;
let analysis: Analysis;
let baseMacs: number;

interface Planned {
  ratio: number;
  proxy?: number;
  target?: number;
  fail?: string;
}

/** Trials of study `cnn-a`, in trial-number order. */
const PLAN_A: Planned[] = [
  { ratio: 0.9, proxy: 0.88, target: 0.75 },
  { ratio: 0.7, proxy: 0.85, target: 0.5 },
  { ratio: 0.6, proxy: 0.86, target: 0.5 },
  { ratio: 0.5, fail: 'Out of memory while calibrating\n    at recalibrateBatchNorm (train.ts:140)' },
  { ratio: 0.5, proxy: 0.8, target: 0.25 },
  { ratio: 0.4, proxy: 0.8, target: 0.25 },
];
/** Trial 1 of cnn-a is a finalist (fine-tuned test accuracy 0.87, saved model); trial 2 one without a saved model. */
const FINALIST = 1;
const FINALIST_NO_MODEL = 2;

const uniform = (r: number): Candidate =>
  candidateFromRatios(
    space,
    space.groups.map(() => r),
  );

async function addStudy(store: Store, config: ResolvedConfig, plan: readonly Planned[]): Promise<Candidate[]> {
  await store.createStudy({
    name: config.name,
    configHash: configHash(config),
    config: config as unknown as Json,
    space,
    baseCost: costOf(analysis, null),
    baseProxyAccuracy: 0.9,
    baseTestAccuracy: 0.89,
  });
  const cands: Candidate[] = [];
  for (const p of plan) {
    const c = uniform(p.ratio);
    cands.push(c);
    const t = await addTrial(store, config.name, {
      candidate: c,
      key: candidateKey(c),
      cost: costOf(analysis, c),
      controller: p.target === undefined ? 'uniform' : 'random',
      meta: p.target === undefined ? {} : { target: p.target },
    });
    const claim = (await store.claimTrial(config.name, 'main', { leaseMs: 600_000, number: t.number }))!;
    if (p.fail) await store.failTrial(claim, p.fail);
    else await store.completeTrial(claim, { proxyAccuracy: p.proxy, latencyMs: 0.1 + p.ratio });
  }
  return cands;
}

/** The proxy stage's model of a trial, built here the way the evaluator builds it. */
async function proxyModel(c: Candidate, trial: number): Promise<tf.LayersModel> {
  const base = await loadModel(cfg.model.checkpoint!);
  const a = analyzeModel(base);
  const plan = makePlan(base, a, c, cfg.evaluation.importance, new Rng(`${cfg.run.seed}:trial:${trial}`));
  const model = await applyPlan(base, a, plan);
  base.dispose();
  const splits = await loadSplits(cfg);
  recalibrateBatchNorm(model, splits.train, {
    batches: cfg.evaluation.calibration.batches,
    batchSize: cfg.evaluation.calibration.batchSize,
    seed: cfg.run.seed,
  });
  return model;
}

let candsA: Candidate[];

before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'autoprune-cli-'));
  db = join(dir, 'store.db');
  const base = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25, seed: 3 });
  await saveModel(base, join(dir, 'base'));
  analysis = analyzeModel(base);
  space = { groups: analysis.groups, options: { minKeepRatio: 0.25, channelStep: 1, skip: [] } };
  baseMacs = costOf(analysis, null).macs;
  const user = (name: string, importance: string) => ({
    name,
    data: { dataset: 'synthetic', validationSize: 40, synthetic: { train: 160, test: 40 } },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint: join(dir, 'base', 'model.json') },
    search: { targets: [0.5, 0.25] },
    evaluation: { importance, calibration: { batches: 3, batchSize: 16 } },
    run: { seed: SEED, store: db, backend: 'cpu' },
  });
  cfg = resolveConfig(user('cnn-a', 'random'));
  const store = await openStore(db);
  try {
    candsA = await addStudy(store, cfg, PLAN_A);
    await addStudy(store, resolveConfig(user('cnn-b', 'l1')), [
      { ratio: 0.8, proxy: 0.87 },
      { ratio: 0.5, proxy: 0.83 },
    ]);
    // A "fine-tuned" finalist model: the proxy model with its last dense bias shifted, so export must take this file.
    const ft = await proxyModel(candsA[FINALIST], FINALIST);
    const dense = ft.layers.at(-1)!;
    const [k, b] = dense.getWeights();
    dense.setWeights([k, b.add(0.5)]);
    // The last rung saves its model under its own trial, into the store (src/study/finals.ts).
    const fin = await seedFinal(store, 'cnn-a', FINALIST, 0.87, { latencyMs: 0.5 });
    const finDir = artifactPaths.trialModel(store.artifactDir('cnn-a'), fin.number);
    await saveModel(ft, finDir);
    await saveModel(ft, join(dir, 'finetuned-1')); // the copy the export test compares with
    ft.dispose();
    await pushFolder(store, 'cnn-a', artifactKeyOf(store, 'cnn-a', finDir)!, finDir);
    await seedFinal(store, 'cnn-a', FINALIST_NO_MODEL, 0.84);
  } finally {
    await store.close();
  }
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('list and show', () => {
  test('list --json summarises every study', async () => {
    const r = await cli('list', '--json', '--store', db);
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as {
      name: string;
      state: string;
      trials: Record<string, number>;
      bestProxyAccuracy: number;
      bestAtTarget: { target: number; accuracy: number | null }[];
    }[];
    assert.deepEqual(
      list.map((s) => s.name),
      ['cnn-a', 'cnn-b'],
    );
    const a = list[0];
    assert.equal(a.state, 'running');
    assert.deepEqual(a.trials, { complete: 5, failed: 1, pending: 0, total: 6 });
    assert.equal(a.bestProxyAccuracy, 0.88);
    const bestAt = (t: number) => Math.max(...PLAN_A.map((p, i) => (p.proxy !== undefined && candsFlops(i) <= t ? p.proxy : -1)));
    assert.deepEqual(
      a.bestAtTarget,
      [0.5, 0.25].map((t) => ({ target: t, accuracy: bestAt(t) === -1 ? null : bestAt(t) })),
    );
  });

  test('show --json lists every trial and the proxy front', async () => {
    const r = await cli('show', 'cnn-a', '--json', '--store', db);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      study: string;
      trials: {
        number: number;
        state: string;
        macs: number;
        proxyAccuracy: number | null;
        finalAccuracy: number | null;
        error: string | null;
        target: number | null;
        seconds: number | null;
      }[];
      proxyFront: number[];
    };
    assert.equal(s.study, 'cnn-a');
    assert.deepEqual(
      s.trials.map((t) => t.state),
      PLAN_A.map((p) => (p.fail ? 'failed' : 'complete')),
    );
    assert.deepEqual(
      s.trials.map((t) => t.proxyAccuracy),
      PLAN_A.map((p) => p.proxy ?? null),
    );
    assert.deepEqual(
      s.trials.map((t) => t.target),
      PLAN_A.map((p) => p.target ?? null),
    );
    assert.equal(s.trials[FINALIST].finalAccuracy, 0.87);
    assert.match(s.trials[3].error ?? '', /^Out of memory/);
    assert.ok(s.trials.every((t) => t.seconds !== null && t.seconds >= 0));
    // Front (MACs ascending): ratio 0.4 (0.80) dominates ratio 0.5 (0.80); 0.6 (0.86) dominates 0.7 (0.85); then 0.9 (0.88).
    assert.deepEqual(s.proxyFront, [5, 2, 0]);
  });

  test('show of an unknown study fails with one line naming the studies that exist', async () => {
    const line = oneLine(await cli('show', 'nope', '--store', db));
    assert.match(line, /`nope`/);
    assert.match(line, /cnn-a, cnn-b/);
  });

  test('a store path that does not exist is an error for show, not a new empty store', async () => {
    const missing = join(dir, 'missing.db');
    const line = oneLine(await cli('show', 'cnn-a', '--store', missing));
    assert.match(line, /missing\.db/);
    await assert.rejects(stat(missing));
  });

  test('list with no store yet says there are no studies and exits 0, creating nothing', async () => {
    const missing = join(dir, 'not-yet.db');
    const r = await cli('list', '--store', missing);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no studies yet \(no store at .*not-yet\.db/);
    const j = await cli('list', '--json', '--store', missing);
    assert.deepEqual(JSON.parse(j.stdout), []);
    await assert.rejects(stat(missing));
  });
});

/** MACs / base MACs of cnn-a's trial i. */
function candsFlops(i: number): number {
  return costOf(analysis, candsA[i]).macs / baseMacs;
}

describe('pick', () => {
  test('--max-flops 50% returns only trials at or under half the base MACs, ranked by accuracy then MACs', async () => {
    const r = await cli('pick', 'cnn-a', '--max-flops', '50%', '--json', '--store', db);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { rank: number; trial: number; macs: number; accuracy: number; accuracySource: string }[];
    const expected = PLAN_A.map((p, i) => ({ i, p, f: candsFlops(i) }))
      .filter(({ p, f }) => p.proxy !== undefined && f <= 0.5)
      .map(({ i, p }) => ({
        trial: i,
        accuracy: i === FINALIST ? 0.87 : i === FINALIST_NO_MODEL ? 0.84 : (p.proxy as number),
        macs: costOf(analysis, candsA[i]).macs,
      }))
      .sort((a, b) => b.accuracy - a.accuracy || a.macs - b.macs || a.trial - b.trial);
    assert.deepEqual(
      expected.map((x) => x.trial),
      [2, 5, 4],
      'fixture: 0.6/0.5/0.4 keep ratios are under 50% FLOPs, 0.7 is not',
    );
    assert.deepEqual(
      rows.map((x) => x.trial),
      expected.map((x) => x.trial),
    );
    assert.deepEqual(
      rows.map((x) => x.rank),
      expected.map((_, k) => k + 1),
    );
    assert.ok(rows.every((x) => x.macs <= 0.5 * baseMacs));
    assert.equal(rows.find((x) => x.trial === FINALIST_NO_MODEL)?.accuracySource, 'final');
  });

  test('--min-acc and --max-params combine, accuracy is the fine-tuned one for finalists; --top limits', async () => {
    // Fixture: trial 0 has 7388 params; 1 (final 0.87), 2 (final 0.84), 5 (0.80, fewer MACs), 4 (0.80) fit 5k.
    const r = await cli('pick', 'cnn-a', '--min-acc', '0.8', '--max-params', '5k', '--top', '3', '--json', '--store', db);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { trial: number; params: number; accuracy: number }[];
    assert.deepEqual(
      rows.map((x) => [x.trial, x.accuracy]),
      [
        [1, 0.87],
        [2, 0.84],
        [5, 0.8],
      ],
    );
    assert.ok(rows.every((x) => x.params <= 5000));
  });

  test('--max-flops 150% fails with one line naming the flag and the value', async () => {
    const line = oneLine(await cli('pick', 'cnn-a', '--max-flops', '150%', '--store', db));
    assert.match(line, /--max-flops/);
    assert.match(line, /`150%`/);
  });

  const FRACTIONS: [string, number | null][] = [
    ['50%', 0.5],
    ['0.5', 0.5],
    ['100%', 1],
    ['12.5 %', 0.125],
    ['.25', 0.25],
    ['150%', null],
    ['1.5', null],
    ['0', null],
    ['-0.5', null],
    ['half', null],
    ['50%%', null],
    ['', null],
    ['0x1', null],
  ];
  for (const [raw, want] of FRACTIONS) {
    test(`parseFraction(${JSON.stringify(raw)}) for --max-flops -> ${want ?? 'error'}`, () => {
      if (want === null) {
        assert.throws(
          () => parseFraction('max-flops', raw, 'a fraction', true),
          (e) => isAutopruneError(e) && e.message.includes('--max-flops') && e.message.includes(`\`${raw.trim()}\``),
        );
      } else {
        assert.equal(parseFraction('max-flops', raw, 'a fraction', true), want);
      }
    });
  }
  test('parseFraction for --min-acc accepts 0', () => assert.equal(parseFraction('min-acc', '0%', 'an accuracy', false), 0));

  const COUNTS: [string, number | null][] = [
    ['120000', 120000],
    ['120k', 120000],
    ['120K', 120000],
    ['1.2M', 1200000],
    ['0', null],
    ['12x', null],
    ['k', null],
  ];
  for (const [raw, want] of COUNTS) {
    test(`parseCount(${JSON.stringify(raw)}) -> ${want ?? 'error'}`, () => {
      if (want === null)
        assert.throws(
          () => parseCount('max-params', raw),
          (e) => isAutopruneError(e) && e.message.includes('--max-params'),
        );
      else assert.equal(parseCount('max-params', raw), want);
    });
  }

  test('parseMs accepts 2, 0.5ms and rejects 0 and words', () => {
    assert.equal(parseMs('max-latency', '2'), 2);
    assert.equal(parseMs('max-latency', '0.5ms'), 0.5);
    assert.throws(() => parseMs('max-latency', '0'), /--max-latency/);
    assert.throws(() => parseMs('max-latency', 'fast'), /`fast`/);
  });
});

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

describe('report and compare', () => {
  test('report writes index.html, report.md and two PNGs', async () => {
    const out = join(dir, 'report-a');
    const r = await cli('report', 'cnn-a', '--out', out, '--store', db);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /proxy front 3 trials/);
    for (const f of ['index.html', 'report.md']) assert.ok((await stat(join(out, f))).size > 0, f);
    for (const f of ['pareto.png', 'progress.png']) assert.deepEqual([...(await readFile(join(out, f))).subarray(0, 8)], PNG, f);
  });

  test('compare writes the chart and prints one row per study', async () => {
    const out = join(dir, 'compare');
    const r = await cli('compare', 'cnn-a', 'cnn-b', '--out', out, '--json', '--store', db);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout) as { studies: { name: string; trials: number; hypervolume: number }[]; targets: number[] };
    assert.deepEqual(
      c.studies.map((s) => [s.name, s.trials]),
      [
        ['cnn-a', 6],
        ['cnn-b', 2],
      ],
    );
    assert.ok(c.studies.every((s) => s.hypervolume > 0 && s.hypervolume < 1));
    assert.deepEqual([...(await readFile(join(out, 'compare.png'))).subarray(0, 8)], PNG);
    assert.ok((await stat(join(out, 'compare.html'))).size > 0);
  });
});

interface Card {
  files: string[];
  trial: number;
  weights: string;
  macs: number;
  params: number;
  proxyAccuracy: number;
  finalAccuracy: number | null;
  finalRung: number | null;
  configHash: string;
  command: string;
  groups: { id: string; baseChannels: number; keptChannels: number; ratio: number }[];
}

async function exported(out: string): Promise<{ model: tf.LayersModel; card: Card }> {
  const json = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  assert.ok(json.modelTopology, 'model.json has modelTopology');
  assert.deepEqual(
    json.weightsManifest.map((g) => g.paths),
    [['weights.bin']],
  );
  const model = await tf.loadLayersModel(fileLoader(join(out, 'model.json')));
  const card = JSON.parse(await readFile(join(out, 'card.json'), 'utf8')) as Card;
  assert.ok((await stat(join(out, 'card.md'))).size > 0);
  return { model, card };
}

function maxDiff(a: tf.LayersModel, b: tf.LayersModel): number {
  return tf.tidy(() => {
    const x = tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 11);
    return (a.predict(x) as tf.Tensor)
      .sub(b.predict(x) as tf.Tensor)
      .abs()
      .max()
      .dataSync()[0];
  });
}

describe('export', () => {
  test('a non-finalist trial is rebuilt as the proxy stage scored it (pruned + BN re-calibrated)', async () => {
    const n = 5;
    const out = join(dir, 'export-5');
    const r = await cli('export', 'cnn-a', '--trial', String(n), '--out', out, '--store', db, '--backend', 'cpu');
    assert.equal(r.code, 0, r.stderr);
    const { model, card } = await exported(out);
    const cost = costOf(analysis, candsA[n]);
    assert.equal(card.trial, n);
    assert.equal(card.weights, 'proxy');
    assert.equal(model.countParams(), card.params);
    assert.equal(card.params, cost.params);
    assert.equal(costOf(analyzeModel(model), null).macs, card.macs);
    assert.equal(card.macs, cost.macs);
    assert.equal(card.proxyAccuracy, 0.8);
    assert.equal(card.finalAccuracy, null);
    assert.equal(card.finalRung, null);
    assert.equal(card.configHash, configHash(cfg));
    assert.deepEqual(
      card.groups.map((g) => g.keptChannels),
      [...candsA[n].channels],
    );
    assert.equal(card.command, `autoprune export cnn-a --trial 5 --out ${out} --store ${db} --backend cpu`);
    // plan.json holds the channels the proxy stage kept (same criterion, same per-trial seed).
    const plan = JSON.parse(await readFile(join(out, 'plan.json'), 'utf8')) as { groups: { id: string; keep: number[] }[] };
    const base = await loadModel(cfg.model.checkpoint!);
    const want = makePlan(base, analysis, candsA[n], cfg.evaluation.importance, new Rng(`${cfg.run.seed}:trial:${n}`));
    base.dispose();
    assert.deepEqual(
      plan.groups.map((g) => ({ id: g.id, keep: g.keep })),
      want.groups.map((g) => ({ id: g.id, keep: [...g.keep] })),
    );
    const reference = await proxyModel(candsA[n], n);
    assert.ok(maxDiff(model, reference) <= 1e-5, `exported predictions differ from the scored model by ${maxDiff(model, reference)}`);
    // The seed matters: another trial number picks other (random-importance) channels.
    const other = await proxyModel(candsA[n], n + 1);
    assert.ok(maxDiff(model, other) > 1e-3, 'a different pruning seed should give a different model');
    for (const m of [model, reference, other]) m.dispose();
  });

  test('a finalist with a saved fine-tuned model is exported as that model', async () => {
    const out = join(dir, 'export-1');
    const r = await cli('export', 'cnn-a', '--trial', String(FINALIST), '--out', out, '--store', db, '--backend', 'cpu');
    assert.equal(r.code, 0, r.stderr);
    const { model, card } = await exported(out);
    assert.equal(card.weights, 'fine-tuned');
    assert.equal(card.finalAccuracy, 0.87);
    // The study's config resolves to one rung (the default finalists): the final is rung 1's.
    assert.equal(card.finalRung, 1);
    assert.match(r.stdout, /fine-tuned test acc 87\.00% \(rung 1\)/);
    assert.match(await readFile(join(out, 'card.md'), 'utf8'), /\| fine-tuned test accuracy \| 87\.00% \(rung 1, fine-tuned 1 epoch/);
    assert.equal(model.countParams(), card.params);
    const ft = await loadModel(join(dir, 'finetuned-1', 'model.json'));
    assert.equal(maxDiff(model, ft), 0);
    for (const m of [model, ft]) m.dispose();
  });

  test('model.onnx loads in plain onnxruntime-node and scores the test split as the tfjs export does', async () => {
    const out = join(dir, 'export-5-both');
    const r = await cli('export', 'cnn-a', '--trial', '5', '--out', out, '--store', db, '--backend', 'cpu');
    assert.equal(r.code, 0, r.stderr);
    const { model, card } = await exported(out);
    assert.deepEqual(card.files, ['model.json', 'weights.bin', 'model.onnx', 'plan.json']);
    const splits = await loadSplits(cfg);
    const session = await ort.InferenceSession.create(join(out, 'model.onnx'));
    const onnxTop1 = await sessionAccuracy(session, ort, splits.test);
    await session.release();
    assert.equal(onnxTop1, accuracy(model, splits.test));
    model.dispose();
    const only = await cli('export', 'cnn-a', '--trial', '5', '--out', join(dir, 'export-5-onnx'), '--store', db, '--format', 'onnx');
    assert.equal(only.code, 0, only.stderr);
    await stat(join(dir, 'export-5-onnx', 'model.onnx'));
    await assert.rejects(stat(join(dir, 'export-5-onnx', 'model.json')));
  });

  test('a failed trial cannot be exported (one line)', async () => {
    const line = oneLine(await cli('export', 'cnn-a', '--trial', '3', '--out', join(dir, 'export-3'), '--store', db));
    assert.match(line, /Trial 3 .*`failed`.*expected a complete trial/);
    await assert.rejects(stat(join(dir, 'export-3')));
  });
});

describe('config show', () => {
  test('prints the resolved YAML with defaults; it re-resolves to the printed hash', async () => {
    const file = join(dir, 'tiny.yaml');
    await writeFile(file, `name: tiny\nmodel:\n  zoo: plain-cnn\ndata:\n  dataset: synthetic\n  validationSize: 100\n`);
    const r = await cli('config', 'show', file);
    assert.equal(r.code, 0, r.stderr);
    const hash = /config hash: ([0-9a-f]{64})/.exec(r.stdout)?.[1];
    assert.ok(hash, r.stdout);
    const printed = parseYaml(r.stdout) as { evaluation: { calibration: { batches: number } }; search: { targets: number[] } };
    assert.equal(printed.evaluation.calibration.batches, 10);
    assert.deepEqual(printed.search.targets, [0.5]);
    assert.equal(configHash(resolveConfig(printed)), hash);
  });

  test('a bad config is one line', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, `name: bad\nmodel:\n  zoo: plain-cnn\nspace:\n  minKeepRatio: 1.3\n`);
    const line = oneLine(await cli('config', 'show', file));
    assert.match(line, /minKeepRatio.*1\.3/);
  });
});
