/**
 * The study loop end to end, as users run it (`autoprune search` in a child process) on a tiny
 * synthetic config: seeded determinism, SIGKILL + resume, SIGINT graceful stop, and bad configs
 * that must leave the store untouched.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { cli, cliSpawn, oneLine, waitFor } from './helpers.js';

let dir: string;
let checkpoint: string;

/** The smoke config with every path in the test's own folder. */
function config(name: string, over: { trials?: number; seed?: number; store?: string; extra?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    name,
    data: { dataset: 'synthetic', validationSize: 128, synthetic: { shape: [28, 28, 1], classes: 10, train: 512, test: 256 } },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint },
    train: { epochs: 3, batchSize: 32, learningRate: 0.003, out: join(dir, 'base') },
    search: { controller: { name: 'random' }, targets: [0.5, 0.3], budget: { trials: over.trials ?? 8 } },
    evaluation: { calibration: { batches: 2, batchSize: 64 }, finalists: { count: 1, epochs: 1 }, latency: { batchSize: 8, runs: 2 } },
    run: { concurrency: 1, workers: 'inline', seed: over.seed ?? 0, store: over.store ?? join(dir, `${name}.db`) },
    ...over.extra,
  };
}

async function writeConfig(name: string, cfg: Record<string, unknown>): Promise<string> {
  const path = join(dir, `${name}.json`);
  await writeFile(path, JSON.stringify(cfg));
  return path;
}

interface Row {
  number: number;
  state: string;
  key: string;
  proxy_accuracy: number | null;
  finished_at: string | null;
}

/** The search trials (rung trials, stage `finetune`, are the finalists; test/rungs-study.test.ts checks them). */
function rows(db: string, study: string, stage = "t.stage != 'finetune'"): Row[] {
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return d
      .prepare(
        `SELECT t.number, t.state, t.key, t.proxy_accuracy, t.finished_at FROM trials t JOIN studies s ON s.id = t.study_id WHERE s.name = ? AND ${stage} ORDER BY t.number`,
      )
      .all(study) as Row[];
  } finally {
    d.close();
  }
}

function tryRows(db: string, study: string): Row[] {
  try {
    return existsSync(db) ? rows(db, study) : [];
  } catch {
    return []; // schema not there yet
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoprune-study-'));
  checkpoint = join(dir, 'base', 'model.json');
  const r = await cli('train', await writeConfig('base', config('base')));
  assert.equal(r.code, 0, r.stderr);
});

describe('search', () => {
  let reference: Row[];

  test('a fresh search evaluates the budget, then fine-tunes a finalist; the same seed gives the same candidates', async () => {
    const a = await cli('search', await writeConfig('ref', config('ref')));
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /finalist trial \d+: test/);
    reference = rows(join(dir, 'ref.db'), 'ref');
    assert.deepEqual(
      reference.map((r) => r.number),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    assert.ok(reference.every((r) => r.state === 'complete' && r.proxy_accuracy !== null));
    // finalists { count: 1 } over 2 targets: one rung of the best per target, two trials after the search's.
    assert.deepEqual(
      rows(join(dir, 'ref.db'), 'ref', "t.stage = 'finetune'").map((r) => [r.number, r.state]),
      [
        [8, 'complete'],
        [9, 'complete'],
      ],
    );

    const b = await cli('search', await writeConfig('same', { ...config('ref', { store: join(dir, 'same.db') }) }));
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(
      rows(join(dir, 'same.db'), 'ref').map((r) => [r.key, r.proxy_accuracy]),
      reference.map((r) => [r.key, r.proxy_accuracy]),
    );

    const c = await cli('search', await writeConfig('other', config('ref', { seed: 1, store: join(dir, 'other.db') })));
    assert.equal(c.code, 0, c.stderr);
    assert.notDeepEqual(
      rows(join(dir, 'other.db'), 'ref').map((r) => r.key),
      reference.map((r) => r.key),
    );
  });

  test('SIGKILL during an evaluation, then the same command: every trial once, none re-run, the controller continues', async () => {
    const db = join(dir, 'killed.db');
    const path = await writeConfig('killed', config('ref', { store: db }));
    const first = cliSpawn('search', path);
    // Kill while a trial is running and at least three are complete.
    await waitFor(
      () => {
        const r = tryRows(db, 'ref');
        return r.filter((x) => x.state === 'complete').length >= 3 && r.some((x) => x.state === 'running');
      },
      60_000,
      'a running trial after three complete ones',
    );
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.signal, 'SIGKILL');
    const before = rows(db, 'ref');
    const wasRunning = before.filter((r) => r.state === 'running').map((r) => r.number);
    assert.ok(wasRunning.length >= 1);

    const second = await cli('search', path);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`re-queued trial\\(s\\) ${wasRunning.join(', ')}`));
    const after = rows(db, 'ref');
    assert.deepEqual(
      after.map((r) => r.number),
      [0, 1, 2, 3, 4, 5, 6, 7],
      'every trial number present once',
    );
    for (const b of before.filter((r) => r.state === 'complete')) {
      const a = after.find((r) => r.number === b.number)!;
      assert.deepEqual(a, b, `completed trial ${b.number} was not re-run`);
    }
    // The resumed controller continued its sequence: the same candidates as the uninterrupted run.
    assert.deepEqual(
      after.map((r) => r.key),
      reference.map((r) => r.key),
    );
    assert.ok(after.every((r) => r.state === 'complete'));
  });

  test('report and pick work while the search writes; SIGINT then stops gracefully: running trials finish, nothing left running, a line says how to resume', async () => {
    const db = join(dir, 'interrupted.db');
    const path = await writeConfig('interrupted', config('int', { store: db, trials: 1000 }));
    const run = cliSpawn('search', path);
    await waitFor(() => tryRows(db, 'int').filter((x) => x.state === 'complete').length >= 2, 60_000, 'two complete trials');
    // Reports and pick read the store while the search is writing to it (SQLite WAL).
    const out = join(dir, 'live-report');
    const [pick, report] = await Promise.all([
      cli('pick', 'int', '--store', db, '--max-flops', '60%', '--json'),
      cli('report', 'int', '--store', db, '--out', out),
    ]);
    assert.equal(pick.code, 0, pick.stderr);
    const picked = JSON.parse(pick.stdout) as unknown[];
    assert.ok(Array.isArray(picked) && picked.length >= 1);
    assert.equal(report.code, 0, report.stderr);
    assert.ok(existsSync(join(out, 'index.html')) && existsSync(join(out, 'pareto.png')));
    assert.equal(run.child.exitCode, null, 'the search was still running');
    // A second search of the same study is refused while the first runs (it would steal its trials).
    const second = await cli('search', path);
    assert.match(oneLine(second), new RegExp(`Study \`int\` is being searched by \`[^:\`]+:${run.child.pid}\``));
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /stopping: no new trials/);
    assert.match(r.stdout, /resume with: autoprune search /);
    const left = rows(db, 'int');
    assert.ok(left.length < 1000);
    assert.deepEqual(
      left.filter((x) => x.state !== 'complete'),
      [],
      'no trial left running or waiting',
    );
    const d = new Database(db, { readonly: true });
    assert.equal((d.prepare('SELECT expires_ms FROM drivers').get() as { expires_ms: number }).expires_ms, 0, 'the driver lease is released');
    assert.equal((d.prepare('SELECT state FROM studies WHERE name = ?').get('int') as { state: string }).state, 'stopped');
    d.close();
  });
});

// How many trials fit in the budget depends on this host's speed; test/loop.test.ts counts them
// exactly on a fake clock. Here: the flag reaches the loop, and what must hold at any speed.
test('--time-budget stops the search with reason time; finalists still run; the study is resumable', async () => {
  const db = join(dir, 'timed.db');
  const noFinalists = config('timed', { store: db, trials: 2 });
  noFinalists.evaluation = { ...(noFinalists.evaluation as object), finalists: { count: 0 } };
  const first = await cli('search', await writeConfig('timed-2', noFinalists));
  assert.equal(first.code, 0, first.stderr);
  // 1 s from the process start: spent during start-up or after a few trials, never after 1000.
  const r = await cli('search', await writeConfig('timed', config('timed', { store: db, trials: 1000 })), '--time-budget', '1s');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /study `timed` stopped \(time\)/);
  assert.match(r.stdout, /the time budget is spent/);
  assert.match(r.stdout, /finalist trial \d+: test/);
  assert.match(r.stdout, /resume with: autoprune search /);
  const done = rows(db, 'timed');
  assert.ok(done.length >= 2 && done.length < 1000, `${done.length} trials`);
  assert.ok(done.every((t) => t.state === 'complete'));
});

test('resuming with another controller setup (baseline switched off) is refused in one line, trials kept', async () => {
  const db = join(dir, 'switched.db');
  const first = await cli('search', await writeConfig('switch-a', config('sw', { store: db, trials: 3 })));
  assert.equal(first.code, 0, first.stderr);
  const before = rows(db, 'sw');
  const changed = config('sw', { store: db, trials: 5 });
  (changed.search as Record<string, unknown>).baseline = false;
  const r = await cli('search', await writeConfig('switch-b', changed));
  assert.match(oneLine(r), /Study `sw` was searched with another controller setup .*--fresh/);
  assert.deepEqual(rows(db, 'sw'), before);
  const d = new Database(db, { readonly: true });
  assert.equal((d.prepare('SELECT state FROM studies WHERE name = ?').get('sw') as { state: string }).state, 'complete');
  d.close();
});

describe('bad configs: one clear line, non-zero exit, store untouched', () => {
  const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
  const cases: [string, (c: Record<string, unknown>) => Record<string, unknown>, RegExp][] = [
    ['wrong type', (c) => ({ ...c, search: { ...(c.search as object), targets: 'half' } }), /`search\.targets`.*"half"|`search\.targets`.*half/],
    ['unknown key', (c) => ({ ...c, run: { ...(c.run as object), concurency: 2 } }), /unknown key `run\.concurency`/],
    ['ratio > 1', (c) => ({ ...c, space: { minKeepRatio: 1.3 } }), /`space\.minKeepRatio`.*\(0, 1\].*1\.3/],
    [
      'missing dataset',
      (c) => ({ ...c, data: { dataset: 'mnist', dir: join(dir, 'no-such-folder'), validationSize: 100 } }),
      /MNIST not found in .*no-such-folder/,
    ],
    [
      'unknown group in space.skip',
      (c) => ({ ...c, space: { skip: ['no.such.group'] } }),
      /`space\.skip` names group `no\.such\.group`.*expected one of: block1\.0\.conv/,
    ],
    [
      'base model trained on other data',
      (c) => ({ ...c, data: { dataset: 'synthetic', validationSize: 128, synthetic: { shape: [32, 32, 3], classes: 10, train: 512, test: 256 } } }),
      /`model\.checkpoint` takes 28x28x1 images into 10 classes, but `data` \(synthetic\) has 32x32x3 images/,
    ],
    [
      'missing model file',
      (c) => ({ ...c, model: { zoo: 'plain-cnn', checkpoint: join(dir, 'nope', 'model.json') } }),
      /Model file .*nope\/model\.json.* not found/,
    ],
  ];
  for (const [name, mutate, message] of cases) {
    test(name, async () => {
      const db = join(dir, 'ref.db'); // a store with a finished study in it
      const hash = sha(db);
      const r = await cli('search', await writeConfig(`bad-${name.replace(/\W+/g, '-')}`, mutate(config('ref', { store: db }))));
      assert.match(oneLine(r), message);
      assert.equal(sha(db), hash);
      assert.equal(existsSync(`${db}-wal`) ? readFileSync(`${db}-wal`).length : 0, 0);
    });
  }
});
