/**
 * Crash torture of a study shared through PostgreSQL: one driver (`autoprune search`,
 * with no local workers) and 3 `autoprune worker` processes run a study; SIGKILL one of the four at
 * random, again and again (each is started again after a moment), and restart the database once
 * half-way. Then let the study finish and check that
 *   - every trial number exists once, the budget of search trials plus the finalist's fine-tune, all complete, and the finalist was stored;
 *   - no completed result was lost or changed (each complete trial seen between kills is identical
 *     at the end: same metrics, worker and finish time = completed once);
 *   - the controller continued its sequence: the trial keys equal an uninterrupted run's (on SQLite);
 *   - the driver and the workers all exited by themselves.
 * Each process has an artifact folder of its own (AUTOPRUNE_ARTIFACTS), as separate hosts would.
 * With --adapt-mix the driver (scripts/torture-search.ts: `autoprune search`'s own code path plus a decorator) turns some proposals into stage-`adapt`
 * trials and children of earlier ones, so adapted weights pass between workers through the database;
 * then every adapt trial's weights must be in the database too.
 *   node --import tsx scripts/torture-pg.ts [--kills 20] [--trials 60] [--adapt-mix] [--gap 2000-7000]
 *     [--seed 1] [--pg-port N] [--no-reference] [--keep]
 * Uses its own PostgreSQL cluster (scripts/pg-local.sh; --pg-port, default a free port), stopped and
 * removed at the end. Exit code 0 when every check passed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Rng } from '../src/core/rng.js';

const ROOT = resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    kills: { type: 'string', default: '20' },
    trials: { type: 'string', default: '60' },
    seed: { type: 'string', default: '1' },
    gap: { type: 'string', default: '2000-7000' },
    'adapt-mix': { type: 'boolean', default: false },
    'pg-port': { type: 'string' },
    'no-reference': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const KILLS = Number(opts.kills);
const TRIALS = Number(opts.trials);
const ADAPT = opts['adapt-mix'];
const [GAP_MIN, GAP_MAX] = opts.gap.split('-').map(Number);

/** A TCP port nobody listens on now (the cluster takes it a moment later). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

const PG_PORT = opts['pg-port'] ?? String(await freePort());
const PG_DIR = join(tmpdir(), `autoprune-pg-torture-${PG_PORT}`);
const PG_ENV = { ...process.env, AUTOPRUNE_PG_PORT: PG_PORT, AUTOPRUNE_PG_DIR: PG_DIR };
const STUDY = 'torture';

interface Row {
  number: number;
  state: string;
  key: string;
  proxy_accuracy: number | null;
  worker: string | null;
  finished_at: string | null;
  attempts: number;
  stage: string;
  parent: number | null;
}

function pgCluster(cmd: 'start' | 'restart' | 'stop'): string {
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'pg-local.sh'), cmd], { encoding: 'utf8', env: PG_ENV });
  if (r.status !== 0) throw new Error(`pg-local.sh ${cmd}: ${r.stderr}`);
  return r.stdout.trim();
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The study's trials, or [] while the schema or the server is not there. */
async function rows(url: string): Promise<Row[] | null> {
  try {
    return await sql<Row>(url, 'SELECT number, state, key, proxy_accuracy, worker, finished_at, attempts, stage, parent FROM trials ORDER BY number');
  } catch (e) {
    return /does not exist/.test((e as Error).message) ? [] : null;
  }
}

function config(dir: string, store: string, ref: boolean): string {
  const cfg = {
    name: STUDY,
    // Evaluations of ~1 s, so that kills find trials in flight.
    data: { dataset: 'synthetic', validationSize: 1024, synthetic: { shape: [28, 28, 1], classes: 10, train: 2048, test: 128 } },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint: join(dir, 'base', 'model.json') },
    train: { epochs: 1, batchSize: 32, learningRate: 0.003, out: join(dir, 'base') },
    search: { controller: { name: 'random' }, targets: [0.5, 0.3], budget: { trials: TRIALS } },
    evaluation: {
      calibration: { batches: 8, batchSize: 64 },
      adapt: { epochs: 1, batchesPerEpoch: 3 },
      finetune: { batchSize: 32 },
      finalists: { count: 1, epochs: 1, batchesPerEpoch: 2 },
      latency: { batchSize: 8, runs: 1 },
    },
    run: ref
      ? { concurrency: 2, workers: 'threads', store, leaseSeconds: 5, maxAttempts: 10 }
      : { concurrency: 1, workers: 'none', remoteWorkers: 3, store, leaseSeconds: 5, maxAttempts: 10 },
  };
  const path = join(dir, ref ? 'ref.json' : 'run.json');
  writeFileSync(path, JSON.stringify(cfg));
  return path;
}

interface Proc {
  readonly role: string;
  child: ChildProcess;
  output: string;
  exit: Promise<number | null>;
}

/** The driver's command line: `autoprune search`, or the same search with the adapt-mix decorator. */
const driverArgs = (cfg: string): string[] =>
  ADAPT ? ['--import', 'tsx', 'scripts/torture-search.ts', cfg, '--adapt-mix'] : ['bin/autoprune.js', 'search', cfg];

/** A process with an artifact folder of its own, as if on a host of its own. */
function start(role: string, args: string[], artifacts: string): Proc {
  mkdirSync(artifacts, { recursive: true });
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AUTOPRUNE_ARTIFACTS: artifacts } });
  const p: Proc = { role, child, output: '', exit: new Promise((r) => child.once('exit', (code) => r(code))) };
  child.stdout!.on('data', (d) => (p.output += d));
  child.stderr!.on('data', (d) => (p.output += d));
  return p;
}

/** Invariants at every moment, also right after a kill: dense numbers, completed results unchanged. */
function checkMidway(now: Row[], completed: Map<number, Row>): void {
  assert.deepEqual(
    now.map((r) => r.number),
    now.map((_, i) => i),
    'trial numbers are dense and unique',
  );
  for (const [n, before] of completed) assert.deepEqual(now[n], before, `completed trial ${n} changed`);
  for (const r of now) if (r.state === 'complete' && !completed.has(r.number)) completed.set(r.number, r);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the driver has created the study (its start-up takes seconds on a loaded machine). */
async function studyCreated(url: string, driver: Proc): Promise<void> {
  for (const until = Date.now() + 5 * 60_000; Date.now() < until; await sleep(250)) {
    if (driver.child.exitCode !== null) throw new Error(`the driver exited ${driver.child.exitCode} before creating the study:\n${driver.output}`);
    const found = await sql<{ n: string }>(url, 'SELECT count(*) AS n FROM studies WHERE name = $1', [STUDY]).catch(() => [{ n: '0' }]);
    if (Number(found[0].n) > 0) return;
  }
  throw new Error(`the driver did not create the study within 5 min:\n${driver.output}`);
}

/** An uninterrupted run of the same config on SQLite: the keys the controller must produce. */
function referenceKeys(dir: string): string[] {
  const db = join(dir, 'ref.db');
  const r = spawnSync(process.execPath, driverArgs(config(dir, db, true)), { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `reference search failed:\n${r.stdout}\n${r.stderr}`);
  const d = new Database(db, { readonly: true });
  const keys = (d.prepare('SELECT key FROM trials ORDER BY number').all() as { key: string }[]).map((x) => x.key);
  d.close();
  return keys;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'autoprune-torture-pg-'));
  const server = pgCluster('start');
  const db = `torture_${process.pid}`;
  await sql(server, `CREATE DATABASE ${db}`);
  const url = (() => {
    const u = new URL(server);
    u.pathname = `/${db}`;
    return u.toString();
  })();
  const cfg = config(dir, url, false);
  const train = spawnSync(process.execPath, ['bin/autoprune.js', 'train', cfg], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(train.status, 0, train.stderr);
  const reference = opts['no-reference'] ? null : referenceKeys(dir);
  if (reference) console.log(`reference run on SQLite: ${reference.length} trials`);

  const roles = ['driver', 'worker-1', 'worker-2', 'worker-3'];
  const host = (role: string) => join(dir, 'hosts', role);
  const launch = (role: string) =>
    role === 'driver'
      ? start(role, driverArgs(cfg), host(role))
      : start(role, ['bin/autoprune.js', 'worker', '--store', url, '--study', STUDY, '--give-up', '120'], host(role));
  const procs = new Map<string, Proc>();
  procs.set('driver', launch('driver'));
  await studyCreated(url, procs.get('driver')!); // a worker started before it would find none
  for (const r of roles.slice(1)) procs.set(r, launch(r));

  const rng = new Rng(Number(opts.seed));
  const completed = new Map<number, Row>();
  const killedBy = new Map<string, number>();
  let restarted = false;
  let heldAtKills = 0;
  for (let k = 0; k < KILLS; k++) {
    await sleep(Math.round(rng.uniform(GAP_MIN, GAP_MAX)));
    const role = roles[rng.int(roles.length)];
    const victim = procs.get(role)!;
    const alive = victim.child.exitCode === null && victim.child.signalCode === null;
    const held = ((await rows(url)) ?? []).filter((r) => r.state === 'running' && r.worker?.split(':')[1] === String(victim.child.pid));
    heldAtKills += held.length;
    victim.child.kill('SIGKILL');
    await victim.exit;
    killedBy.set(role, (killedBy.get(role) ?? 0) + 1);
    if (!restarted && k >= KILLS / 2) {
      pgCluster('restart');
      restarted = true;
      console.log('database restarted');
    }
    const now = await rows(url);
    if (now) checkMidway(now, completed);
    console.log(
      `kill ${k + 1}/${KILLS}: ${role}${alive ? '' : ' (had already exited)'}${held.length ? ` holding trial ${held.map((r) => r.number).join(',')}` : ''}; ${now?.length ?? '?'} trials, ${completed.size} complete, running ${
        now
          ?.filter((x) => x.state === 'running')
          .map((x) => x.number)
          .join(',') || '-'
      }`,
    );
    if (!alive && role === 'driver' && /study `torture` complete/.test(victim.output))
      throw new Error('the study finished before the kills were done; raise --trials');
    if (!alive) console.log(`  ${role} had exited with ${victim.child.exitCode}: ${victim.output.trim().split('\n').slice(-3).join(' | ')}`);
    await sleep(Math.round(rng.uniform(200, 1500)));
    procs.set(role, launch(role));
  }

  // Let it finish: every process must exit by itself (bounded); the driver cannot finish without workers.
  const deadline = Date.now() + 15 * 60_000;
  const exited = (p: Proc) => p.child.exitCode !== null || p.child.signalCode !== null;
  let settled = false; // ends the watch loop, which would otherwise keep this process alive until the deadline
  const codes = await Promise.race([
    Promise.all([...procs.values()].map((p) => p.exit)),
    (async () => {
      let orphanedSince: number | null = null;
      while (Date.now() < deadline && !settled) {
        await sleep(1000);
        const orphaned = !exited(procs.get('driver')!) && roles.slice(1).every((r) => exited(procs.get(r)!));
        orphanedSince = orphaned ? (orphanedSince ?? Date.now()) : null;
        if (orphanedSince !== null && Date.now() - orphanedSince > 60_000) return 'orphaned' as const;
      }
      return settled ? 'settled' : null;
    })(),
  ]);
  settled = true;
  if (codes === null || codes === 'orphaned') {
    for (const p of procs.values()) p.child.kill('SIGKILL');
    const why = codes === null ? 'not every process exited within 15 min' : 'every worker exited while the driver still waited for trials';
    throw new Error(`${why}:\n${[...procs.values()].map((p) => `${p.role}: ${p.output.slice(-2000)}`).join('\n')}`);
  }
  for (const p of procs.values()) assert.equal(await p.exit, 0, `${p.role} exited ${await p.exit}:\n${p.output.slice(-3000)}`);
  const driver = procs.get('driver')!;
  assert.match(driver.output, /study `torture` complete/);

  const end = (await rows(url))!;
  checkMidway(end, completed);
  assert.deepEqual(
    end.map((r) => r.number),
    [...end.keys()],
    'each trial number once',
  );
  // The finalist's fine-tune is a trial of its own (stage `finetune`), outside the search budget.
  assert.equal(end.filter((r) => r.stage !== 'finetune').length, TRIALS, 'the budget of search trials');
  assert.deepEqual(
    end.filter((r) => r.state !== 'complete').map((r) => `${r.number}:${r.state}`),
    [],
    'every trial complete',
  );
  if (reference)
    assert.deepEqual(
      end.map((r) => r.key),
      reference,
      'the controller continued its sequence (same keys as an uninterrupted run)',
    );
  // A final is its last-rung trial (src/study/finals.ts): complete, with a test accuracy.
  const [{ n: finals }] = await sql<{ n: string }>(
    url,
    "SELECT count(*) AS n FROM trials WHERE stage = 'finetune' AND state = 'complete' AND final_accuracy IS NOT NULL",
  );
  // finalists.count 1 over 2 targets is one final rung admitting ceil(1 / 2) = 1 per target.
  const finetuned = end.filter((r) => r.stage === 'finetune').length;
  assert.ok(finetuned >= 1, 'a finalist was fine-tuned');
  assert.equal(Number(finals), finetuned, 'every finalist fine-tune holds its final');
  const adapt = end.filter((r) => r.stage === 'adapt');
  if (ADAPT) {
    assert.ok(adapt.length > 0 && adapt.some((r) => r.parent !== null), 'adapt trials, some with a parent');
    const keys = new Set((await sql<{ key: string }>(url, 'SELECT key FROM artifacts')).map((r) => r.key));
    for (const r of adapt)
      assert.ok(
        keys.has(`trials/${r.number}/model/model.json`) && keys.has(`trials/${r.number}/model/weights.bin`),
        `weights of adapt trial ${r.number} in the database`,
      );
  }
  const byWorker = new Map<string, number>();
  for (const r of end) byWorker.set((r.worker ?? '?').split(':')[1] ?? '?', (byWorker.get((r.worker ?? '?').split(':')[1] ?? '?') ?? 0) + 1);
  const retried = end.filter((r) => r.attempts > 1).length;
  console.log(
    `OK: ${KILLS} kills (${[...killedBy].map(([r, n]) => `${r} ${n}`).join(', ')}; ${heldAtKills} trials held by the killed workers), 1 database restart; ${end.filter((r) => r.stage !== 'finetune').length} search trials and ${end.filter((r) => r.stage === 'finetune').length} finalist fine-tunes each once, all complete, ` +
      `${completed.size} complete results seen between kills kept unchanged, ${retried} trials claimed again after a kill, ` +
      `evaluated by ${byWorker.size} worker processes${ADAPT ? `, ${adapt.length} adapt trials (${adapt.filter((r) => r.parent !== null).length} children) with weights in the database` : ''}${reference ? ", keys = uninterrupted run's" : ''}; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  await sql(server, `DROP DATABASE ${db} WITH (FORCE)`);
  if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
}

try {
  await main();
} finally {
  pgCluster('stop');
  rmSync(PG_DIR, { recursive: true, force: true });
  rmSync(`${PG_DIR}.initdb.log`, { force: true });
}
