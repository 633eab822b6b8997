/**
 * Crash torture of the study loop: SIGKILL the search at random points, again and again,
 * while 2 worker threads evaluate a study on SQLite; then let it finish and check that
 *   - every trial number exists once, the budget of search trials plus the finalist's fine-tune, and the study is complete with its finalist;
 *   - no completed result was lost or changed (each complete trial seen between kills is identical
 *     at the end: same metrics, same finish time = completed once);
 *   - the controller continued its sequence: the trial keys equal an uninterrupted run's;
 *   - with --adapt-mix, stage-`adapt` trials and their children were in flight too (every second
 *     kill is aimed at a running adapt trial; at least one kill must hit one), and every adapt
 *     trial's weights exist in the store's artifact folder;
 *   - all --kills kills happened: each run is killed before it can finish more than its share of
 *     the trials left (killPlan), and a study that finishes early fails the torture.
 *   node --import tsx scripts/torture.ts [--kills 20] [--trials 4*kills, > 2*kills] [--adapt-mix] [--seed 1] [--keep]
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
  const a: Args = { kills: 20, trials: NaN, adaptMix: false, seed: 1, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--kills') a.kills = Number(argv[++i]);
    else if (v === '--trials') a.trials = Number(argv[++i]);
    else if (v === '--seed') a.seed = Number(argv[++i]);
    else if (v === '--adapt-mix') a.adaptMix = true;
    else if (v === '--keep') a.keep = true;
    else throw new Error(`unknown option ${v}`);
  }
  if (Number.isNaN(a.trials)) a.trials = 4 * a.kills;
  if (!(a.trials > 2 * a.kills)) throw new Error(`--trials ${a.trials} is too few for --kills ${a.kills}: it takes more than 2 trials per kill (see killPlan)`);
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
  /** `host:pid:slot` of the worker that holds or held it. */
  worker: string | null;
}

/** The trials as stored; none while the store or its schema does not exist yet (polls race the search's start-up). */
function rows(db: string): Row[] {
  if (!existsSync(db)) return [];
  let d: Database.Database | null = null;
  try {
    d = new Database(db, { readonly: true, fileMustExist: true });
    d.pragma('busy_timeout = 5000');
    return d
      .prepare('SELECT number, state, stage, parent, key, proxy_accuracy, latency_ms, finished_at, attempts, worker FROM trials ORDER BY number')
      .all() as Row[];
  } catch {
    return [];
  } finally {
    d?.close();
  }
}

function config(dir: string, name: string, trials: number, store: string): string {
  const cfg = {
    name,
    data: { dataset: 'synthetic', validationSize: 128, synthetic: { shape: [28, 28, 1], classes: 10, train: 512, test: 128 } },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint: join(dir, 'base', 'model.json') },
    train: { epochs: 1, batchSize: 32, learningRate: 0.003, out: join(dir, 'base') },
    search: { controller: { name: 'random' }, targets: [0.5, 0.3], budget: { trials } },
    evaluation: {
      calibration: { batches: 2, batchSize: 64 },
      adapt: { epochs: 1, batchesPerEpoch: 3 },
      finetune: { batchSize: 32 },
      finalists: { count: 1, epochs: 1, batchesPerEpoch: 2 },
      latency: { batchSize: 8, runs: 1 },
    },
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

/** Trial states as a poll sees them. */
interface Progress {
  complete: number;
  running: Row[];
}

function progressOf(db: string): Progress {
  const now = rows(db);
  return { complete: now.filter((r) => r.state === 'complete').length, running: now.filter((r) => r.state === 'running') };
}

/** Running trials held by process `pid` (a killed process's trials stay `running` until the next run re-queues them). */
const heldBy = (running: readonly Row[], pid: number | undefined) => running.filter((r) => r.worker?.split(':')[1] === String(pid));

interface Watched {
  /** Killed by us (false: it exited by itself). */
  killed: boolean;
  output: string;
  /** When the first complete trial was seen, ms after the start (null: never seen). */
  firstDoneMs: number | null;
  ms: number;
  pid: number | undefined;
}

const POLL_MS = 100;

/**
 * Starts the search and polls the store every POLL_MS; SIGKILLs it when `killNow(progress, ms,
 * pid)` says so. Resolves when the process is gone.
 */
function watch(cfgPath: string, a: Args, db: string, killNow: (p: Progress, ms: number, pid: number | undefined) => boolean): Promise<Watched> {
  const child = spawn(process.execPath, searchArgs(cfgPath, a), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const started = Date.now();
  let output = '';
  let firstDoneMs: number | null = null;
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const timer = setInterval(() => {
    const p = progressOf(db);
    const ms = Date.now() - started;
    if (firstDoneMs === null && p.complete > 0) firstDoneMs = ms;
    if (killNow(p, ms, child.pid)) child.kill('SIGKILL');
  }, POLL_MS);
  return new Promise((done) =>
    child.on('close', (_code, signal) => {
      clearInterval(timer);
      done({ killed: signal === 'SIGKILL', output, firstDoneMs, ms: Date.now() - started, pid: child.pid });
    }),
  );
}

/** Runs the search to its end; asserts it finished. */
async function finish(cfgPath: string, a: Args, db: string): Promise<Watched> {
  const r = await watch(cfgPath, a, db, () => false);
  assert.match(r.output, /study `\w+` complete/, `the search did not finish:\n${r.output}`);
  return r;
}

/** The uninterrupted run's pace: when its first trial completed, then wall time per completed trial (2 workers). */
interface Pace {
  firstDoneMs: number;
  perTrialMs: number;
}

/**
 * When one kill comes:
 *  - `start-up`: `ms` after the start (store, migrations, driver lease, base model, first claims);
 *  - `mid-search`: `delayMs` after the run's `after`-th completed trial, so mostly mid-evaluation;
 *  - `adapt`: `delayMs` after this process is seen running a stage-`adapt` trial (a fine-tune),
 *    once it completed `after` trials.
 * Whatever the kind, a run is killed as soon as it completed more than `cap` trials.
 */
type KillPlan = { cap: number } & ({ kind: 'start-up'; ms: number } | { kind: 'mid-search' | 'adapt'; after: number; delayMs: number });

/**
 * The plan of one kill, scaled to the work left so that the study cannot finish before the last
 * kill. A poll can see at most ~2 completions beyond the cap (one per worker), so holding back 2
 * trials per kill still to come plus one keeps `left.trials >= 2 * left.kills + 1` from kill to
 * kill, and the last kill still finds work (hence --trials > 2 x --kills).
 */
function killPlan(rng: Rng, pace: Pace, left: { trials: number; kills: number }, aimAtAdapt: boolean): KillPlan {
  const cap = Math.max(0, Math.floor((left.trials - 2 * left.kills - 1) / left.kills));
  // After a completed trial when the cap allows it: the evaluator is warm, so the kill lands in the fine-tune itself.
  if (aimAtAdapt) return { cap, kind: 'adapt', after: Math.min(1, cap), delayMs: Math.round(rng.uniform(0, pace.perTrialMs)) };
  if (rng.uniform(0, 1) < 1 / 3) return { cap, kind: 'start-up', ms: Math.round(rng.uniform(300, pace.firstDoneMs)) };
  return { cap, kind: 'mid-search', after: Math.floor(rng.uniform(0, cap + 1)), delayMs: Math.round(rng.uniform(0, pace.perTrialMs)) };
}

/** The kill decision of one run under `plan`; `before` = complete trials when it started. */
function killer(plan: KillPlan, before: number): (p: Progress, ms: number, pid: number | undefined) => boolean {
  let armedAt: number | null = null;
  return (p, ms, pid) => {
    const done = p.complete - before;
    if (done > plan.cap) return true;
    if (plan.kind === 'start-up') return ms >= plan.ms;
    const ready = done >= plan.after && (plan.kind === 'mid-search' || heldBy(p.running, pid).some((r) => r.stage === 'adapt'));
    if (ready) armedAt ??= ms;
    return armedAt !== null && ms >= armedAt + plan.delayMs;
  };
}

function describePlan(plan: KillPlan): string {
  if (plan.kind === 'start-up') return `start-up, planned at ${plan.ms} ms`;
  if (plan.kind === 'adapt') return `${plan.delayMs} ms into an adapt trial${plan.after ? ` after ${plan.after} completed` : ''}`;
  return plan.after === 0 ? `${plan.delayMs} ms after its first poll` : `${plan.delayMs} ms after its ${plan.after}. completed trial`;
}

/** Invariants that hold at every moment, also right after a kill. */
function checkMidway(now: Row[], completed: Map<number, Row>): void {
  assert.deepEqual(
    now.map((r) => r.number),
    now.map((_, i) => i),
    'trial numbers are dense and unique',
  );
  for (const [n, before] of completed) assert.deepEqual(now[n], before, `completed trial ${n} changed after a kill`);
  for (const r of now) if (r.state === 'complete' && !completed.has(r.number)) completed.set(r.number, r);
}

interface KillTally {
  killed: number;
  inFlight: number;
  adaptInFlight: number;
  completed: Map<number, Row>;
}

/**
 * SIGKILLs the search `a.kills` times (see killPlan); in an --adapt-mix run every second kill is
 * aimed at a running `adapt` trial. Stops early only when a run finished the study by itself,
 * which finalChecks turns into a failure.
 */
async function killRepeatedly(cfg: string, a: Args, db: string, pace: Pace): Promise<KillTally> {
  const rng = new Rng(a.seed);
  const t: KillTally = { killed: 0, inFlight: 0, adaptInFlight: 0, completed: new Map() };
  while (t.killed < a.kills) {
    const before = progressOf(db).complete;
    const plan = killPlan(rng, pace, { trials: a.trials - before, kills: a.kills - t.killed }, a.adaptMix && t.killed % 2 === 1);
    const r = await watch(cfg, a, db, killer(plan, before));
    const now = rows(db);
    checkMidway(now, t.completed);
    const held = heldBy(
      now.filter((x) => x.state === 'running'),
      r.pid,
    );
    const what = `${now.length} trials, ${t.completed.size} complete, in flight ${held.map((x) => `${x.number}${x.stage === 'adapt' ? 'a' : ''}`).join(',') || '-'}`;
    if (!r.killed) {
      if (!/study `\w+` complete/.test(r.output)) throw new Error(`the search exited on its own without finishing:\n${r.output}`);
      console.log(`run ${t.killed + 1}/${a.kills} finished the study before its kill: ${what}`);
      break;
    }
    t.killed++;
    t.inFlight += held.length;
    t.adaptInFlight += held.filter((x) => x.stage === 'adapt').length;
    console.log(`kill ${t.killed}/${a.kills} after ${r.ms} ms (${describePlan(plan)}; cap ${plan.cap}): ${what}`);
  }
  return t;
}

/** Everything the torture promises, on the finished study. */
function finalChecks(a: Args, db: string, name: string, reference: Row[], t: KillTally): Row[] {
  const end = rows(db);
  checkMidway(end, t.completed);
  assert.ok(t.killed >= a.kills, `only ${t.killed} of ${a.kills} kills happened: the study finished first`);
  assert.deepEqual(
    end.map((r) => r.number),
    [...end.keys()],
    'each trial number once',
  );
  // The finalist's fine-tune is a trial of its own (stage `finetune`), outside the search budget.
  assert.equal(end.filter((r) => r.stage !== 'finetune').length, a.trials, 'the budget of search trials');
  assert.deepEqual(
    end.filter((r) => r.state !== 'complete').map((r) => `${r.number}:${r.state}`),
    [],
    'every trial complete',
  );
  assert.deepEqual(
    end.map((r) => r.key),
    reference.map((r) => r.key),
    'the controller continued its sequence (same keys as the uninterrupted run)',
  );
  const d = new Database(db, { readonly: true });
  // A final is its last-rung trial (src/study/finals.ts): complete, with a test accuracy.
  const finals = (
    d.prepare("SELECT COUNT(*) AS n FROM trials WHERE stage = 'finetune' AND state = 'complete' AND final_accuracy IS NOT NULL").get() as { n: number }
  ).n;
  d.close();
  // finalists.count 1 over 2 targets is one final rung admitting ceil(1 / 2) = 1 per target.
  const finetuned = end.filter((r) => r.stage === 'finetune').length;
  assert.ok(finetuned >= 1, 'a finalist was fine-tuned');
  assert.equal(finals, finetuned, 'every finalist fine-tune holds its final');
  if (a.adaptMix) {
    const adapt = end.filter((r) => r.stage === 'adapt');
    assert.ok(adapt.length > 0 && adapt.some((r) => r.parent !== null));
    for (const r of adapt)
      assert.ok(existsSync(join(`${db}.artifacts`, name, 'trials', String(r.number), 'model', 'model.json')), `weights of adapt trial ${r.number}`);
    assert.ok(t.adaptInFlight > 0, 'an adapt trial was in flight at one kill at least');
  }
  return end;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'autoprune-torture-'));
  const name = 'torture';
  const t0 = Date.now();
  const train = spawnSync(process.execPath, ['bin/autoprune.js', 'train', config(dir, name, a.trials, join(dir, 'ref.db'))], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(train.status, 0, train.stderr);
  const refDb = join(dir, 'ref.db');
  const ref = await finish(config(dir, name, a.trials, refDb), a, refDb);
  const reference = rows(refDb);
  const firstDoneMs = ref.firstDoneMs ?? ref.ms;
  const pace: Pace = { firstDoneMs, perTrialMs: (ref.ms - firstDoneMs) / a.trials };
  console.log(
    `reference run: ${reference.length} trials in ${(ref.ms / 1000).toFixed(1)} s (first complete after ${(firstDoneMs / 1000).toFixed(1)} s, then ${(pace.perTrialMs / 1000).toFixed(2)} s per trial)`,
  );

  const db = join(dir, 'run.db');
  const cfg = config(dir, name, a.trials, db);
  const tally = await killRepeatedly(cfg, a, db, pace);
  await finish(cfg, a, db);
  const end = finalChecks(a, db, name, reference, tally);
  const retried = end.filter((r) => r.attempts > 1).length;
  console.log(
    `OK: ${tally.killed} kills (${tally.inFlight} trials in flight at the kills, ${tally.adaptInFlight} of them adapt), ${end.filter((r) => r.stage !== 'finetune').length} search trials and ${end.filter((r) => r.stage === 'finetune').length} finalist fine-tunes each once, ${tally.completed.size} complete results kept unchanged, ${retried} trials evaluated again after a kill, keys = uninterrupted run's; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  if (!a.keep) rmSync(dir, { recursive: true, force: true });
  else console.log(`kept ${dir}`);
}

await main();
