/**
 * Scaling of the PostgreSQL store as a work queue:
 *  - `--real 1,2,4`: trials/min of 1, 2 and 4 `autoprune worker` processes (real proxy evaluations
 *    of a small synthetic-data CNN, one worker thread each) against one PostgreSQL on this machine;
 *  - `--fake 32`: 32 worker processes whose evaluator sleeps `--sleep-ms` (1000): the claim path
 *    must not be the bottleneck, i.e. throughput >= 0.9 x N / (sleep) of ideal.
 * Trials are enqueued up front, so what is measured is claim -> evaluate -> complete, not the
 * driver. Throughput is counted over `--window` seconds once every worker has finished a trial.
 *   node --import tsx bench/pg-scaling.ts [--real 1,2,4] [--fake 32] [--window 30] [--sleep-ms 1000]
 * Uses $AUTOPRUNE_BENCH_PG (a server URL), else starts the private cluster of scripts/pg-local.sh
 * on port 54331. Creates and drops its own database.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { Rng } from '../src/core/rng.js';
import { candidateFromRatios } from '../src/core/space.js';
import type { Json } from '../src/core/types.js';
import { initBackend } from '../src/engine/backend.js';
import { loadBaseModel, loadSplits } from '../src/evaluators/setup.js';
import { accuracy } from '../src/evaluators/train.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { type NewTrial, openStore, type Store } from '../src/store/index.js';
import { trialKey } from '../src/study/lineage.js';
import { studySpace } from '../src/study/run.js';

const ROOT = resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    real: { type: 'string', default: '1,2,4' },
    fake: { type: 'string', default: '32' },
    window: { type: 'string', default: '30' },
    'sleep-ms': { type: 'string', default: '1000' },
  },
});
const WINDOW_S = Number(opts.window);
const SLEEP_MS = Number(opts['sleep-ms']);
const list = (s: string) => (s === '' || s === 'none' ? [] : s.split(',').map(Number));

function serverUrl(): string {
  if (process.env.AUTOPRUNE_BENCH_PG) return process.env.AUTOPRUNE_BENCH_PG;
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'pg-local.sh'), 'start'], { encoding: 'utf8', env: { ...process.env, AUTOPRUNE_PG_PORT: '54331' } });
  if (r.status !== 0) throw new Error(`could not start PostgreSQL: ${r.stderr}`);
  return r.stdout.trim();
}

/** The queue filled as a driver fills it: under the study's driver lease, in batches of 500. */
async function enqueueAll(store: Store, study: string, trials: readonly NewTrial[]): Promise<void> {
  const d = await store.acquireDriver(study, 'bench-driver', 600_000);
  try {
    for (let i = 0; i < trials.length; i += 500) await store.enqueueTrials(d, trials.slice(i, i + 500), { told: 0, state: null });
  } finally {
    await store.releaseDriver(d);
  }
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Completed trials per worker name prefix (host:pid). */
async function completedBy(url: string, study: string): Promise<Map<string, number>> {
  const rows = await sql<{ w: string; n: string }>(
    url,
    `SELECT split_part(t.worker, ':', 2) AS w, count(*) AS n FROM trials t JOIN studies s ON s.id = t.study_id
     WHERE s.name = $1 AND t.state = 'complete' GROUP BY 1`,
    [study],
  );
  return new Map(rows.map((r) => [r.w, Number(r.n)]));
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/** Waits until `n` processes finished a trial each, then counts completions over the window. */
async function measure(url: string, study: string, procs: ChildProcess[], deadlineMs: number): Promise<{ perMin: number; done: number }> {
  const pids = new Set(procs.map((p) => String(p.pid)));
  for (const t0 = Date.now(); ; ) {
    const by = await completedBy(url, study);
    if ([...pids].every((p) => (by.get(p) ?? 0) > 0)) break;
    if (Date.now() - t0 > deadlineMs) throw new Error(`not every worker finished a trial within ${deadlineMs / 1000} s: ${JSON.stringify([...by])}`);
    await sleep(250);
  }
  const a = total(await completedBy(url, study));
  const t = Date.now();
  await sleep(WINDOW_S * 1000);
  const b = total(await completedBy(url, study));
  const secs = (Date.now() - t) / 1000;
  return { perMin: ((b - a) / secs) * 60, done: b - a };
}

/** Ends the study: waiting trials go, the state says complete, workers exit by themselves (bounded). */
async function finish(url: string, study: string, procs: ChildProcess[]): Promise<void> {
  await sql(url, `DELETE FROM trials t USING studies s WHERE s.id = t.study_id AND s.name = $1 AND t.state = 'waiting'`, [study]);
  await sql(url, `UPDATE studies SET state = 'complete' WHERE name = $1`, [study]);
  const exited = Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)))));
  const timer = setTimeout(() => procs.forEach((p) => p.kill('SIGKILL')), 30_000);
  await exited;
  clearTimeout(timer);
}

async function fakeRun(base: string, n: number): Promise<string> {
  const db = `bench_fake_${process.pid}_${n}`;
  await sql(base, `CREATE DATABASE ${db}`);
  const url = withDb(base, db);
  const store = await openStore(url);
  const study = 'fake';
  await store.createStudy({
    name: study,
    configHash: 'bench',
    config: {},
    space: { groups: [{ id: 'g', channels: 8, layers: ['g'] }], options: { minKeepRatio: 0.1, channelStep: 1, skip: [] } },
    baseCost: { macs: 2000, params: 10 },
    baseProxyAccuracy: null,
    baseTestAccuracy: null,
  });
  const needed = Math.ceil(n * (WINDOW_S + 60) * (1000 / SLEEP_MS) * 1.2);
  await enqueueAll(
    store,
    study,
    Array.from({ length: needed }, (_, i) => ({ candidate: { channels: [i] }, key: `k${i}`, cost: { macs: 1000 + i, params: 10 }, controller: 'bench' })),
  );
  await store.close();
  const procs = Array.from({ length: n }, () =>
    spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'pg-fake-worker.ts'), url, study, String(SLEEP_MS)], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  try {
    const m = await measure(url, study, procs, 180_000);
    const ideal = (n * 60_000) / SLEEP_MS;
    return `| ${n} (sleep ${SLEEP_MS} ms) | ${m.perMin.toFixed(0)} | ${ideal.toFixed(0)} | ${(m.perMin / ideal).toFixed(3)} |`;
  } finally {
    await finish(url, study, procs);
    await sql(base, `DROP DATABASE ${db} WITH (FORCE)`);
  }
}

/** A trained base model on synthetic data (seconds), and a study over it with trials enqueued. */
async function realStudy(store: Store, dir: string, url: string, trials: number): Promise<string> {
  const cfgPath = join(dir, 'bench.json');
  writeFileSync(
    cfgPath,
    JSON.stringify({
      name: 'real',
      data: { dataset: 'synthetic', validationSize: 256, synthetic: { shape: [28, 28, 1], classes: 10, train: 1024, test: 256 } },
      model: { zoo: 'plain-cnn', width: 0.5, checkpoint: join(dir, 'base', 'model.json') },
      train: { epochs: 1, batchSize: 32, learningRate: 0.003, out: join(dir, 'base') },
      evaluation: { calibration: { batches: 4, batchSize: 64 }, latency: { batchSize: 8, runs: 1 } },
      run: { store: url, workers: 'threads', concurrency: 1 },
    }),
  );
  const tr = spawnSync(process.execPath, ['bin/autoprune.js', 'train', cfgPath], { cwd: ROOT, encoding: 'utf8' });
  if (tr.status !== 0) throw new Error(tr.stderr);
  const { resolved: cfg, hash } = await loadConfig(cfgPath);
  await initBackend(cfg.run.backend);
  const splits = await loadSplits(cfg);
  const base = await loadBaseModel(cfg, splits);
  const analysis = analyzeModel(base);
  const space = studySpace(cfg, analysis);
  const proxy = accuracy(base, splits.validation, { limit: cfg.evaluation.validation.limit });
  await store.createStudy({
    name: 'real',
    configHash: hash,
    config: cfg as unknown as Json,
    space,
    baseCost: costOf(analysis, null),
    baseProxyAccuracy: proxy,
    baseTestAccuracy: null,
  });
  const rng = new Rng(7);
  const all: NewTrial[] = [];
  for (let i = 0; i < trials; i++) {
    const c = candidateFromRatios(
      space,
      space.groups.map(() => rng.uniform(0.3, 1)),
    );
    all.push({ candidate: c, key: `${trialKey(c)}#${i}`, cost: costOf(analysis, c), controller: 'bench' });
  }
  await enqueueAll(store, 'real', all);
  return 'real';
}

async function realRun(base: string, n: number, dir: string): Promise<string> {
  const db = `bench_real_${process.pid}_${n}`;
  await sql(base, `CREATE DATABASE ${db}`);
  const url = withDb(base, db);
  const store = await openStore(url);
  const study = await realStudy(store, dir, url, 4000);
  await store.close();
  const procs = Array.from({ length: n }, () =>
    spawn(process.execPath, ['bin/autoprune.js', 'worker', '--store', url, '--study', study], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] }),
  );
  try {
    const m = await measure(url, study, procs, 300_000);
    return `| ${n} | ${m.perMin.toFixed(1)} | ${m.done} in ${WINDOW_S} s |`;
  } finally {
    await finish(url, study, procs);
    await sql(base, `DROP DATABASE ${db} WITH (FORCE)`);
  }
}

const base = serverUrl();
const dir = mkdtempSync(join(tmpdir(), 'autoprune-pgbench-'));
try {
  const real = list(opts.real);
  if (real.length) {
    console.log(`\nReal proxy evaluations (plain-cnn width 0.5, synthetic 28x28, 4x64 calibration + 256 validation images), window ${WINDOW_S} s:\n`);
    console.log('| worker processes | trials/min | completed in window |\n|---:|---:|---:|');
    for (const n of real) console.log(await realRun(base, n, dir));
  }
  const fake = list(opts.fake);
  if (fake.length) {
    console.log(`\nFake evaluator (sleeps ${SLEEP_MS} ms), window ${WINDOW_S} s:\n`);
    console.log('| worker processes | trials/min | ideal | ratio |\n|---:|---:|---:|---:|');
    for (const n of fake) console.log(await fakeRun(base, n));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
