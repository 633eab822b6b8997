/**
 * Crash torture of the study loop (issue 7): SIGKILL the search at random points, again and again,
 * while 2 worker threads evaluate a study on SQLite; then let it finish and check that
 *   - every trial number exists once (0..budget-1), and the study is complete with its finalist;
 *   - no completed result was lost or changed (each complete trial seen between kills is identical
 *     at the end: same metrics, same finish time = completed once);
 *   - the controller continued its sequence: the trial keys equal an uninterrupted run's;
 *   - with --adapt-mix, stage-`adapt` trials and their children were in flight too, and every
 *     adapt trial's weights exist in the store's artifact folder.
 *   node --import tsx scripts/torture.ts [--kills 20] [--trials 40] [--adapt-mix] [--seed 1] [--keep]
 * Exit code 0 when every check passed; prints one line per kill and a summary.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Rng } from '../src/core/rng.js';

const ROOT = resolve(import.meta.dirname, '..');

interface Args {
  kills: number;
  trials: number;
  adaptMix: boolean;
  seed: number;
  keep: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { kills: 20, trials: 40, adaptMix: false, seed: 1, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--kills') a.kills = Number(argv[++i]);
    else if (v === '--trials') a.trials = Number(argv[++i]);
    else if (v === '--seed') a.seed = Number(argv[++i]);
    else if (v === '--adapt-mix') a.adaptMix = true;
    else if (v === '--keep') a.keep = true;
    else throw new Error(`unknown option ${v}`);
  }
  return a;
}

interface Row {
  number: number;
  state: string;
  stage: string;
  parent: number | null;
  key: string;
  proxy_accuracy: number | null;
  latency_ms: number | null;
  finished_at: string | null;
  attempts: number;
}

function rows(db: string): Row[] {
  if (!existsSync(db)) return [];
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    d.pragma('busy_timeout = 5000');
    return d.prepare('SELECT number, state, stage, parent, key, proxy_accuracy, latency_ms, finished_at, attempts FROM trials ORDER BY number').all() as Row[];
  } catch {
    return []; // schema not there yet
  } finally {
    d.close();
  }
}

function config(dir: string, name: string, trials: number, store: string): string {
  const cfg = {
    name,
    data: { dataset: 'synthetic', validationSize: 128, synthetic: { shape: [28, 28, 1], classes: 10, train: 512, test: 128 } },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint: join(dir, 'base', 'model.json') },
    train: { epochs: 1, batchSize: 32, learningRate: 0.003, out: join(dir, 'base') },
    search: { controller: { name: 'random' }, targets: [0.5, 0.3], budget: { trials } },
    evaluation: { calibration: { batches: 2, batchSize: 64 }, adapt: { epochs: 1, batchesPerEpoch: 3, batchSize: 32 }, finalists: { count: 1, epochs: 1, batchesPerEpoch: 2 }, latency: { batchSize: 8, runs: 1 } },
    // Kills come faster than trials finish, so one trial may be in flight at many kills; the retry
    // limit (run.maxAttempts, which would fail it) is tested in the store contract, not here.
    run: { concurrency: 2, workers: 'threads', store, leaseSeconds: 5, maxAttempts: 1000 },
  };
  const path = join(dir, `${name}-${store.endsWith('ref.db') ? 'ref' : 'run'}.json`);
  writeFileSync(path, JSON.stringify(cfg));
  return path;
}

function searchArgs(cfgPath: string, a: Args): string[] {
  return ['--import', 'tsx', join(ROOT, 'scripts', 'torture-search.ts'), cfgPath, ...(a.adaptMix ? ['--adapt-mix'] : [])];
}

/** Runs the search to its end; returns its output. */
function finish(cfgPath: string, a: Args): string {
  const r = spawnSync(process.execPath, searchArgs(cfgPath, a), { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `search failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Starts the search and SIGKILLs it after `ms`; resolves when it is dead. */
function killAfter(cfgPath: string, a: Args, ms: number): Promise<{ killed: boolean; output: string }> {
  const child = spawn(process.execPath, searchArgs(cfgPath, a), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((done) => child.on('close', (_code, signal) => (clearTimeout(timer), done({ killed: signal === 'SIGKILL', output }))));
}

/** Invariants that hold at every moment, also right after a kill. */
function checkMidway(now: Row[], completed: Map<number, Row>): void {
  assert.deepEqual(now.map((r) => r.number), now.map((_, i) => i), 'trial numbers are dense and unique');
  for (const [n, before] of completed) assert.deepEqual(now[n], before, `completed trial ${n} changed after a kill`);
  for (const r of now) if (r.state === 'complete' && !completed.has(r.number)) completed.set(r.number, r);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'autoprune-torture-'));
  const name = 'torture';
  const t0 = Date.now();
  const train = spawnSync(process.execPath, ['bin/autoprune.js', 'train', config(dir, name, a.trials, join(dir, 'ref.db'))], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(train.status, 0, train.stderr);
  const refCfg = config(dir, name, a.trials, join(dir, 'ref.db'));
  const refStarted = Date.now();
  finish(refCfg, a);
  const refSeconds = (Date.now() - refStarted) / 1000;
  const reference = rows(join(dir, 'ref.db'));
  console.log(`reference run: ${reference.length} trials in ${refSeconds.toFixed(1)} s`);

  const db = join(dir, 'run.db');
  const cfg = config(dir, name, a.trials, db);
  const rng = new Rng(a.seed);
  const completed = new Map<number, Row>();
  let killed = 0;
  let inFlightAtKill = 0;
  let adaptInFlightAtKill = 0;
  for (let k = 0; k < a.kills; k++) {
    // Kill anywhere from start-up (store open, migrations, base accuracy) to well into the search.
    const ms = Math.round(rng.uniform(300, Math.min(20_000, 1000 * refSeconds)));
    const r = await killAfter(cfg, a, ms);
    const now = rows(db);
    checkMidway(now, completed);
    const running = now.filter((x) => x.state === 'running');
    if (r.killed) killed++;
    inFlightAtKill += running.length;
    adaptInFlightAtKill += running.filter((x) => x.stage === 'adapt').length;
    console.log(`kill ${k + 1}/${a.kills} after ${ms} ms${r.killed ? '' : ' (had already exited)'}: ${now.length} trials, ${completed.size} complete, running ${running.map((x) => `${x.number}${x.stage === 'adapt' ? 'a' : ''}`).join(',') || '-'}`);
    if (!r.killed && !/done: complete/.test(r.output)) throw new Error(`the search exited on its own without finishing:\n${r.output}`);
  }
  const out = finish(cfg, a);
  const end = rows(db);
  checkMidway(end, completed);
  assert.equal(end.length, a.trials, 'the budget of trials, each number once');
  assert.deepEqual(end.filter((r) => r.state !== 'complete').map((r) => `${r.number}:${r.state}`), [], 'every trial complete');
  assert.deepEqual(end.map((r) => r.key), reference.map((r) => r.key), 'the controller continued its sequence (same keys as the uninterrupted run)');
  assert.match(out, /done: complete/);
  const d = new Database(db, { readonly: true });
  const finals = (d.prepare('SELECT COUNT(*) AS n FROM finals').get() as { n: number }).n;
  d.close();
  assert.equal(finals, 1, 'the finalist was fine-tuned and stored');
  if (a.adaptMix) {
    const adapt = end.filter((r) => r.stage === 'adapt');
    assert.ok(adapt.length > 0 && adapt.some((r) => r.parent !== null));
    for (const r of adapt) assert.ok(existsSync(join(`${db}.artifacts`, name, 'trials', String(r.number), 'model', 'model.json')), `weights of adapt trial ${r.number}`);
  }
  const retried = end.filter((r) => r.attempts > 1).length;
  console.log(
    `OK: ${killed} kills (${inFlightAtKill} trials in flight at the kills, ${adaptInFlightAtKill} of them adapt), ${end.length} trials each once, ${completed.size} complete results kept unchanged, ${retried} trials evaluated again after a kill, keys = uninterrupted run's; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  if (!a.keep) rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
}

await main();
