/**
 * `node --import tsx bench/controllers-real.ts [--config configs/quickstart.yaml] [--budget 96]
 *   [--finetune-epochs 1] [--best-epochs 3] [--finetune-batches N] [--controllers uniform,global,...]
 *   [--out experiments/controllers-real]`
 *
 * The controllers on a real model : every controller gets the same budget of
 * proxy evaluations (onnxruntime, the config's calibration and validation settings) on the
 * config's base model at its FLOPs targets; uniform and global are the baselines. Then, for the best
 * candidate of each controller at each target: validation proxy accuracy, test accuracy after the
 * same BN re-calibration, and test accuracy after the same fine-tune (recipe.ts on the fastest
 * training engine). Over every fine-tuned candidate (the bests plus extra points spread over the
 * fronts, at least 15), the rank correlation (Spearman and Kendall) between proxy and fine-tuned
 * accuracy. With `--best-epochs E`, each target's best candidates also get an E-epoch fine-tune
 * (a longer fine-tune), after every 1-epoch one. Writes `results.json` and prints Markdown
 * tables. Scores go to `scored.jsonl` as they finish; a rerun with the same fine-tune settings
 * reuses them (an overnight run that dies keeps its finished fine-tunes); `--scored-only` trains
 * nothing and reports what scored.jsonl holds (a candidate not yet scored is left blank). The long
 * fine-tunes run in order of interest: at each target the best proxy first, then the baselines.
 *
 * Each controller runs as a real study (`autoprune search` on a config derived from `--config`,
 * written to `--out`, one SQLite store), so `autoprune compare ctrl-uniform ctrl-global ...
 * --store <out>/controllers.db` reports them side by side. The uniform baseline sweep is off in
 * the derived configs: uniform is its own study.
 */
import { spawnSync } from 'node:child_process';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { parse as parseYaml } from 'yaml';
import type { ControllerInput as ControllerSpec } from '../src/config/index.js';
import { loadConfig, type ResolvedConfig } from '../src/config/index.js';
import { targetFractions } from '../src/config/sections/search.js';
import { type Candidate, withinTarget } from '../src/core/space.js';
import { kendallTauB, spearman } from '../src/core/stats.js';
import { initBackend } from '../src/engine/backend.js';
import { withSession } from '../src/engine/onnxruntime.js';
import { fit } from '../src/evaluators/fit.js';
import { onnxProxy, sessionAccuracy } from '../src/evaluators/onnx-proxy.js';
import { prunedForTrial, pruningRng } from '../src/evaluators/plan-rng.js';
import { loadBaseModel, loadSplits, type Splits } from '../src/evaluators/setup.js';
import { type Analysis, analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { exportOnnxGraph } from '../src/model/onnx.js';
import { encodeOnnx } from '../src/model/onnx-proto.js';
import { pruneModel } from '../src/model/prune.js';
import { openStore } from '../src/store/index.js';

interface Point {
  readonly controller: string;
  readonly trial: number;
  readonly candidate: Candidate;
  readonly flops: number;
  readonly proxy: number;
}

interface Scored extends Point {
  readonly target: number | null;
  testAfterBn?: number;
  finetuned?: number;
  /** Test accuracy after the longer `--best-epochs` fine-tune (target bests only). */
  finetunedLong?: number;
}

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'configs/quickstart.yaml' },
    budget: { type: 'string', default: '96' },
    'finetune-epochs': { type: 'string', default: '1' },
    'finetune-lr': { type: 'string', default: '0.01' },
    'min-correlation-points': { type: 'string', default: '16' },
    'finetune-batches': { type: 'string' },
    'best-epochs': { type: 'string' },
    'scored-only': { type: 'boolean', default: false },
    controllers: { type: 'string', default: 'uniform,global,random,greedy,evolutionary,rl' },
    out: { type: 'string', default: 'experiments/controllers-real' },
  },
});
const budget = Number(values.budget);

/** The searching controllers (same budget) and the two baselines (their own few points). */
function specs(): ControllerSpec[] {
  return [
    { name: 'uniform' },
    { name: 'global' },
    { name: 'random' },
    // NetAdapt's schedule sized so that its iterations reach the smallest target within the budget.
    { name: 'greedy', initialReduction: 0.1, decay: 0.96 },
    // A smaller population than the default 40, so that the budget holds several generations.
    { name: 'evolutionary', population: 16 },
    // AMC's actor-critic; with ~100 episodes the warm-up is shortened to a third of the budget (AMC: 100 of 400).
    { name: 'rl', warmup: Math.round(budget / 3) },
  ] as ControllerSpec[];
}

/** Runs one controller as a study through the CLI; returns its complete trials as points. */
async function search(userConfig: Record<string, unknown>, spec: ControllerSpec, baseMacs: number): Promise<Point[]> {
  const name = `ctrl-${spec.name}`;
  const store = join(values.out!, 'controllers.db');
  const cfg = {
    ...userConfig,
    name,
    search: { ...(userConfig.search as object), controller: spec, baseline: false, budget: { trials: budget } },
    evaluation: { ...(userConfig.evaluation as object), finalists: { count: 0 } },
    run: { ...(userConfig.run as object), store },
  };
  const path = join(values.out!, `${name}.json`);
  await writeFile(path, JSON.stringify(cfg, null, 1));
  const t0 = Date.now();
  // No --fresh: running the bench again resumes each study (a finished one returns at once).
  const r = spawnSync(process.execPath, ['bin/autoprune.js', 'search', path], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`search ${name} exited ${r.status}`);
  const s = await openStore(store);
  const trials = await s.listTrials(name, { state: 'complete' });
  await s.close();
  process.stderr.write(`${name}: ${trials.length} complete trials in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  return trials.map((t) => ({
    controller: spec.name,
    trial: t.number,
    candidate: t.candidate,
    flops: t.cost.macs / baseMacs,
    proxy: t.metrics.proxyAccuracy!,
  }));
}

/** Test accuracy after the proxy's BN re-calibration (same channels, same calibration batches). */
async function testAfterBn(cfg: ResolvedConfig, base: tf.LayersModel, a: Analysis, splits: Splits, p: Point): Promise<number> {
  const { model } = await pruneModel(base, a, p.candidate, cfg.evaluation.importance, pruningRng(cfg, p.trial));
  const graph = exportOnnxGraph(model);
  model.dispose();
  const ev = cfg.evaluation;
  const r = await onnxProxy(
    graph,
    { train: splits.train, validation: splits.test },
    { calibration: { batches: ev.calibration.batches, batchSize: ev.calibration.batchSize, seed: cfg.run.seed }, latency: { batchSize: 1, runs: 0 } },
  );
  return r.accuracy;
}

/** The same fine-tune for every candidate: recipe.ts, SGD momentum 0.9, cosine from `lr`, crop+flip. */
async function finetuned(cfg: ResolvedConfig, base: tf.LayersModel, a: Analysis, splits: Splits, p: Point, epochs: number): Promise<number> {
  const { model } = await prunedForTrial(cfg, base, a, p.candidate, p.trial, splits.train);
  await fit(
    model,
    splits.train,
    {
      epochs,
      batchSize: 128,
      learningRate: Number(values['finetune-lr']),
      optimizer: 'sgd',
      momentum: 0.9,
      weightDecay: 5e-4,
      numClasses: splits.numClasses,
      seed: cfg.run.seed,
      augment: true,
      maxBatchesPerEpoch: values['finetune-batches'] === undefined ? undefined : Number(values['finetune-batches']),
    },
    { requested: 'auto' },
  );
  const bytes = encodeOnnx(exportOnnxGraph(model));
  model.dispose();
  return withSession(bytes, {}, (s, ort) => sessionAccuracy(s, ort, splits.test));
}

/** Target bests in order of interest: each target's best proxy, then the baselines, then the rest by proxy. */
function byInterest(bests: readonly Scored[]): Scored[] {
  const top = new Map<number, number>();
  for (const s of bests) top.set(s.target!, Math.max(top.get(s.target!) ?? -1, s.proxy));
  const rank = (s: Scored) => (s.proxy === top.get(s.target!) ? 0 : s.controller === 'uniform' || s.controller === 'global' ? 1 : 2);
  return [...bests].sort((p, q) => rank(p) - rank(q) || q.target! - p.target! || q.proxy - p.proxy);
}

/** What makes two fine-tune scores the same measurement: candidate, epochs, learning rate, batch cap. */
function scoreKey(controller: string, trial: number, epochs: number): string {
  return [controller, trial, epochs, values['finetune-lr'], values['finetune-batches'] ?? 'all'].join('/');
}

/** Scores a previous run of this command finished (scored.jsonl), by scoreKey. */
async function finishedScores(): Promise<Map<string, Scored>> {
  const path = join(values.out!, 'scored.jsonl');
  const text = await readFile(path, 'utf8').catch(() => '');
  const out = new Map<string, Scored>();
  for (const line of text.split('\n').filter(Boolean)) {
    const r = JSON.parse(line) as Scored & { epochs?: number; lr?: string; batches?: string };
    // Lines written before the key fields existed carry no epochs: they never match.
    if (r.epochs !== undefined && r.lr === values['finetune-lr'] && r.batches === (values['finetune-batches'] ?? 'all'))
      out.set(scoreKey(r.controller, r.trial, r.epochs), r);
  }
  return out;
}

async function appendScore(s: Scored, epochs: number, t0: number): Promise<void> {
  const line = { ...s, epochs, lr: values['finetune-lr'], batches: values['finetune-batches'] ?? 'all', seconds: (Date.now() - t0) / 1000 };
  await appendFile(join(values.out!, 'scored.jsonl'), `${JSON.stringify(line)}\n`);
  process.stderr.write(
    `${s.controller} trial ${s.trial} (${(100 * s.flops).toFixed(1)}% FLOPs): proxy ${(100 * s.proxy).toFixed(2)}%, test after BN ${(100 * s.testAfterBn!).toFixed(2)}%, ${epochs}-epoch fine-tune ${(100 * s.finetuned!).toFixed(2)}% in ${line.seconds.toFixed(0)} s\n`,
  );
}

/** Best proxy point of a controller inside a target's window (or at MACs <= target for rl's wall). */
function bestAt(points: readonly Point[], target: number, window: number): Point | null {
  const ok = points.filter((p) => withinTarget(p.flops, target, window) || (p.flops <= target && p.flops >= target - 2 * window));
  return ok.length ? ok.reduce((b, p) => (p.proxy > b.proxy ? p : b)) : null;
}

async function main(): Promise<void> {
  const cfg = (await loadConfig(values.config!)).resolved;
  await initBackend(cfg.run.backend);
  const splits = await loadSplits(cfg);
  const base = await loadBaseModel(cfg, splits);
  const a = analyzeModel(base);
  const baseCost = costOf(a, null);
  const userConfig = parseYaml(await readFile(values.config!, 'utf8')) as Record<string, unknown>;
  await mkdir(values.out!, { recursive: true });
  const started = Date.now();
  const all: Point[] = [];
  const chosen = specs().filter((s) => values.controllers!.split(',').includes(s.name));
  for (const spec of chosen) all.push(...(await search(userConfig, spec, baseCost.macs)));
  const searchSeconds = (Date.now() - started) / 1000;

  const scored: Scored[] = [];
  for (const spec of chosen) {
    for (const target of targetFractions(cfg.search.targets)) {
      const b = bestAt(
        all.filter((p) => p.controller === spec.name),
        target,
        cfg.search.window,
      );
      if (b) scored.push({ ...b, target });
    }
  }
  // Extra points for the correlation: spread over FLOPs among the other evaluated candidates.
  const extra = all.filter((p) => !scored.some((s) => s.controller === p.controller && s.trial === p.trial)).sort((p, q) => p.flops - q.flops);
  const want = Math.max(0, Number(values['min-correlation-points']) - scored.length);
  for (let k = 0; k < want && extra.length; k++) scored.push({ ...extra[Math.floor(((k + 0.5) * extra.length) / want)], target: null });

  process.stderr.write(`candidates to fine-tune: ${scored.map((s) => `${s.controller}#${s.trial}`).join(' ')}\n`);
  const epochs = Number(values['finetune-epochs']);
  const bestEpochs = values['best-epochs'] === undefined ? null : Number(values['best-epochs']);
  const done = await finishedScores();
  const train = !values['scored-only'];
  for (const s of scored) {
    const t0 = Date.now();
    const prior = done.get(scoreKey(s.controller, s.trial, epochs));
    if (!prior && !train) continue;
    s.testAfterBn = prior?.testAfterBn ?? (await testAfterBn(cfg, base, a, splits, s));
    s.finetuned = prior?.finetuned ?? (await finetuned(cfg, base, a, splits, s, epochs));
    if (!prior) await appendScore(s, epochs, t0);
  }
  if (bestEpochs !== null) {
    for (const s of byInterest(scored.filter((x) => x.target !== null))) {
      const t0 = Date.now();
      const prior = done.get(scoreKey(s.controller, s.trial, bestEpochs));
      if (!prior && !train) continue;
      s.finetunedLong = prior?.finetuned ?? (await finetuned(cfg, base, a, splits, s, bestEpochs));
      if (!prior) await appendScore({ ...s, finetuned: s.finetunedLong, finetunedLong: undefined }, bestEpochs, t0);
    }
  }
  const both = scored.filter((s) => s.finetuned !== undefined);
  const rho = spearman(
    both.map((s) => s.proxy),
    both.map((s) => s.finetuned!),
  );
  const tau = kendallTauB(
    both.map((s) => s.proxy),
    both.map((s) => s.finetuned!),
  );

  await writeFile(
    join(values.out!, 'results.json'),
    JSON.stringify(
      {
        config: values.config,
        budget,
        searchSeconds,
        finetuneEpochs: epochs,
        bestEpochs,
        finetuneBatches: values['finetune-batches'] === undefined ? null : Number(values['finetune-batches']),
        points: all,
        scored,
        spearman: rho,
        kendall: tau,
      },
      null,
      1,
    ),
  );
  const pct = (x: number | undefined) => (x === undefined ? '' : `${(100 * x).toFixed(2)}%`);
  const lines = [
    `Base: ${(baseCost.macs / 1e6).toFixed(2)} MMACs; ${budget} proxy evaluations per searching controller (${searchSeconds.toFixed(0)} s of search in all); fine-tune: ${values['finetune-batches'] === undefined ? `${values['finetune-epochs']} epoch(s)` : `${values['finetune-batches']} batches of 128 per epoch, ${values['finetune-epochs']} epoch(s)`}, SGD ${values['finetune-lr']} cosine.`,
    '',
    `| target | controller | trial | FLOPs | proxy (val) | test after BN | test after ${epochs}-epoch fine-tune |${bestEpochs === null ? '' : ` after ${bestEpochs} epochs |`}`,
    `|---|---|---|---|---|---|---|${bestEpochs === null ? '' : '---|'}`,
    ...scored
      .filter((s) => s.target !== null)
      .sort((p, q) => q.target! - p.target! || p.controller.localeCompare(q.controller))
      .map(
        (s) =>
          `| ${s.target} | ${s.controller} | ${s.trial} | ${pct(s.flops)} | ${pct(s.proxy)} | ${pct(s.testAfterBn)} | ${pct(s.finetuned)} |${bestEpochs === null ? '' : ` ${pct(s.finetunedLong)} |`}`,
      ),
    '',
    `Rank correlation between proxy and fine-tuned accuracy over ${both.length} candidates: Spearman ${rho.toFixed(3)}, Kendall ${tau.toFixed(3)}.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  tf.disposeVariables();
}

await main();
