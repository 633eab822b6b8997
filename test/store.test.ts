import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { MemoryStore, openStore, SNAPSHOTS_KEPT, SqliteStore } from '../src/store/index.js';
import { MIGRATIONS, migrate, SCHEMA_VERSION, schemaVersion } from '../src/store/migrations.js';
import {
  addTrial,
  BEFORE_FINISH_SEQ_SQL,
  checkFinalsMigrated,
  checkFinishSeqBackfill,
  complete,
  enqueueContended,
  fail,
  newStudy,
  newTrial,
  OLD_FINALS_SQL,
  rejectsWith,
  saveSnapshot,
  storeContract,
} from './store-contract.js';

const root = mkdtempSync(join(tmpdir(), 'autoprune-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let fileCount = 0;
/** A fresh database path in its own folder. */
function freshPath(): string {
  const dir = join(root, `case-${++fileCount}`);
  mkdirSync(dir);
  return join(dir, 'studies.db');
}

storeContract('memory', (o) => openStore(':memory:', o));
storeContract('sqlite', (o) => openStore(freshPath(), o));

describe('openStore', () => {
  test('memory locations give a MemoryStore, a path gives a SqliteStore with its folder created', async () => {
    for (const loc of [':memory:', 'memory:']) {
      const s = await openStore(loc);
      assert.ok(s instanceof MemoryStore, loc);
      await s.close();
    }
    const path = join(root, 'not', 'yet', 'there', 'studies.db');
    const s = await openStore(path);
    assert.ok(s instanceof SqliteStore);
    assert.ok(existsSync(path));
    await s.close();
    await rejectsWith(openStore(''), 'INVALID_ARGUMENT');
  });

  test('a file that is not SQLite gives STORE_ERROR naming it', async () => {
    const path = join(root, 'not-a-db.txt');
    writeFileSync(path, 'hello, this is not a database file at all, just some text. '.repeat(20));
    await rejectsWith(openStore(path), 'STORE_ERROR', /not-a-db\.txt/);
  });
});

describe('SQLite store', () => {
  test('data survives close and reopen', async () => {
    const path = freshPath();
    const a = await openStore(path);
    await a.createStudy(newStudy('s'));
    await addTrial(a, 's', newTrial([8, 16]));
    const done = await complete(a, 's', 0, { proxyAccuracy: 0.1 + 0.7, timings: { eval: 1 / 3 } });
    await saveSnapshot(a, 's', 1, { x: [1, 2, 3] });
    const study = await a.getStudy('s');
    await a.close();

    const b = await openStore(path);
    assert.deepEqual(await b.getStudy('s'), study);
    assert.deepEqual(await b.getTrial('s', 0), done);
    assert.equal((await b.getTrial('s', 0))!.metrics.proxyAccuracy, 0.1 + 0.7, 'numbers are stored losslessly');
    assert.deepEqual((await b.latestSnapshot('s'))!.state, { x: [1, 2, 3] });
    assert.equal((await addTrial(b, 's', newTrial([8, 8]))).number, 1);
    await b.close();
  });

  test('WAL is on, foreign keys are on, busy_timeout is set', async () => {
    const s = SqliteStore.open(freshPath(), { busyTimeoutMs: 1234 });
    assert.equal(s.connection.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(s.connection.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(s.connection.pragma('busy_timeout', { simple: true }), 1234);
    await s.close();
  });

  test('two instances on one file interleaving enqueues get distinct, dense numbers', async () => {
    const path = freshPath();
    const a = await openStore(path);
    const b = await openStore(path);
    await a.createStudy(newStudy('s'));
    const got: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s = i % 3 === 0 ? a : b;
      got.push((await addTrial(s, 's', newTrial([8, 8 + i]))).number);
    }
    assert.deepEqual(got, [...Array(20).keys()]);
    assert.deepEqual(
      (await a.listTrials('s')).map((t) => t.cost.params),
      [...Array(20).keys()].map((i) => 16 + i),
    );
    await a.close();
    await b.close();
  });

  test('rival drivers taking turns in several processes never collide on trial numbers', async () => {
    const path = freshPath();
    const s = await openStore(path);
    await s.createStudy(newStudy('s'));
    const perWriter = 150;
    const url = new URL('../src/store/sqlite.ts', import.meta.url).href;
    const helpers = new URL('./store-contract.ts', import.meta.url).href;
    // Each child is another process with its own connection: a rival driver taking the study over
    // and enqueueing as fast as it can.
    const code = `
      const { SqliteStore } = await import(${JSON.stringify(url)});
      const { enqueueContended } = await import(${JSON.stringify(helpers)});
      const [path, id, n] = process.argv.slice(1);
      const s = SqliteStore.open(path);
      for (let i = 0; i < Number(n); i++) {
        const ch = [8, 1000 * Number(id) + i];
        await enqueueContended(s, 's', 'w' + id, { candidate: { channels: ch }, key: ch.join(','), cost: { macs: 1, params: 1 }, controller: 'w' + id });
      }
      await s.close();`;
    const child = (id: number) =>
      new Promise<void>((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, path, String(id), String(perWriter)], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let err = '';
        p.stderr.on('data', (d) => (err += String(d)));
        p.once('error', reject);
        p.once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`writer ${id} exited ${c}: ${err}`))));
      });
    const children = Promise.all([child(1), child(2)]);
    // Keep writing from this process until both children are done, so the writes really interleave.
    let finished = false;
    void children.then(
      () => (finished = true),
      () => (finished = true),
    );
    let mine = 0;
    while (!finished) {
      await enqueueContended(s, 's', 'main', newTrial([8, mine++]));
      await new Promise((r) => setTimeout(r, 1));
    }
    await children;
    const trials = await s.listTrials('s');
    assert.equal(trials.length, 2 * perWriter + mine);
    assert.deepEqual(
      trials.map((t) => t.number),
      [...Array(trials.length).keys()],
    );
    for (const c of ['w1', 'w2']) assert.equal(trials.filter((t) => t.controller === c).length, perWriter, c);
    await s.close();
  });

  test('a reader instance sees what a writer instance wrote while the writer is open', async () => {
    const path = freshPath();
    const writer = await openStore(path);
    await writer.createStudy(newStudy('s'));
    const reader = await openStore(path);
    assert.deepEqual(await reader.listTrials('s'), []);
    await addTrial(writer, 's', newTrial([8, 8]));
    await addTrial(writer, 's', newTrial([16, 8]));
    await complete(writer, 's', 1, { proxyAccuracy: 0.75 });
    const seen = await reader.listTrials('s');
    assert.deepEqual(
      seen.map((t) => [t.number, t.state]),
      [
        [0, 'waiting'],
        [1, 'complete'],
      ],
    );
    assert.deepEqual(seen, await writer.listTrials('s'));
    await reader.close();
    await writer.close();
  });

  test('only the latest SNAPSHOTS_KEPT snapshots of a study stay on disk', async () => {
    const s = (await openStore(freshPath())) as SqliteStore;
    await s.createStudy(newStudy('a'));
    await s.createStudy(newStudy('b'));
    await saveSnapshot(s, 'b', 1, { b: true });
    for (let i = 0; i < 10; i++) await saveSnapshot(s, 'a', i, { i });
    const rows = s.connection.prepare('SELECT s.name, n.told FROM snapshots n JOIN studies s ON s.id = n.study_id ORDER BY n.id').all() as {
      name: string;
      told: number;
    }[];
    assert.equal(SNAPSHOTS_KEPT, 3);
    assert.deepEqual(rows, [
      { name: 'b', told: 1 },
      { name: 'a', told: 7 },
      { name: 'a', told: 8 },
      { name: 'a', told: 9 },
    ]);
    assert.deepEqual((await s.latestSnapshot('a'))!.state, { i: 9 });
    await s.close();
  });

  test('the trigger refuses a raw SQL UPDATE of a finished trial row', async () => {
    const path = freshPath();
    const s = await openStore(path);
    await s.createStudy(newStudy('s'));
    await addTrial(s, 's', newTrial([8, 8]));
    await addTrial(s, 's', newTrial([16, 8]));
    const done = await complete(s, 's', 0, { proxyAccuracy: 0.5 });
    const failed = await fail(s, 's', 1, 'boom');

    const raw = new Database(path); // another "process" that bypasses the Store
    for (const sql of [
      'UPDATE trials SET proxy_accuracy = 0.99 WHERE number = 0',
      "UPDATE trials SET state = 'waiting' WHERE number = 0",
      "UPDATE trials SET error = NULL, state = 'complete' WHERE number = 1",
    ]) {
      assert.throws(() => raw.prepare(sql).run(), /TRIAL_IMMUTABLE/, sql);
    }
    raw.prepare("UPDATE trials SET worker = 'x' WHERE state = 'waiting'").run(); // touches no finished row
    raw.close();
    assert.deepEqual(await s.getTrial('s', 0), done);
    assert.deepEqual(await s.getTrial('s', 1), failed);
    await s.close();
  });

  test('migrations: an empty database (version 0) is upgraded to the newest schema', async () => {
    const path = freshPath();
    const raw = new Database(path);
    assert.equal(schemaVersion(raw), 0);
    raw.close();

    const s = SqliteStore.open(path);
    assert.equal(schemaVersion(s.connection), SCHEMA_VERSION);
    const tables = (s.connection.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(tables, ['drivers', 'latency_entries', 'schema_version', 'snapshots', 'studies', 'trials']);
    const applied = (s.connection.prepare('SELECT version FROM schema_version ORDER BY version').all() as { version: number }[]).map((r) => r.version);
    assert.deepEqual(
      applied,
      MIGRATIONS.map((m) => m.version),
    );
    await s.close();
  });

  test('migrations: a database at an older version is upgraded and keeps its data', async () => {
    const path = freshPath();
    const raw = new Database(path);
    raw.pragma('foreign_keys = ON');
    assert.deepEqual(migrate(raw, path, 1), { from: 0, to: 1 });
    raw.exec(`
      INSERT INTO studies (name, config, config_hash, space, base_macs, base_params, state, created_at, updated_at)
      VALUES ('old', '{}', 'h', '{"groups":[],"options":{"minKeepRatio":0.25,"channelStep":1,"skip":[]}}', 10, 5, 'running', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z');
      INSERT INTO trials (study_id, number, state, candidate, key, macs, params, controller, created_at)
      VALUES (1, 0, 'complete', '{"channels":[8]}', '8', 3, 2, 'random', '2024-01-01T00:00:00.000Z');`);
    raw.close();

    const s = SqliteStore.open(path);
    assert.equal(schemaVersion(s.connection), SCHEMA_VERSION);
    assert.equal((await s.getTrial('old', 0))!.state, 'complete');
    await rejectsWith(s.completeTrial({ study: 'old', number: 0, token: 0 }, { proxyAccuracy: 1 }), 'TRIAL_IMMUTABLE');
    assert.deepEqual([(await s.getTrial('old', 0))!.stage, (await s.getTrial('old', 0))!.parent], ['proxy', null], 'v3 defaults for old rows');
    assert.throws(() => s.connection.prepare("UPDATE trials SET key = 'x'").run(), /TRIAL_IMMUTABLE/, 'v2 trigger installed');
    await s.close();
  });

  test('migrations: a v7 store (before the finish sequence) gets its finished trials numbered by (finished_at, number)', async () => {
    const path = freshPath();
    const raw = new Database(path);
    raw.pragma('foreign_keys = ON');
    assert.deepEqual(migrate(raw, path, 7), { from: 0, to: 7 });
    raw.exec(BEFORE_FINISH_SEQ_SQL);
    raw.close();
    const s = SqliteStore.open(path);
    try {
      assert.equal(schemaVersion(s.connection), SCHEMA_VERSION);
      await checkFinishSeqBackfill(s);
      assert.throws(() => s.connection.prepare('UPDATE trials SET finish_seq = 9 WHERE finish_seq = 1').run(), /TRIAL_IMMUTABLE/, 'trigger put back');
    } finally {
      await s.close();
    }
  });

  test('migrations: a v8 store with finals rows gets them as last-rung trials, and no finals table', async () => {
    const path = freshPath();
    const raw = new Database(path);
    raw.pragma('foreign_keys = ON');
    assert.deepEqual(migrate(raw, path, 7), { from: 0, to: 7 });
    raw.exec(BEFORE_FINISH_SEQ_SQL);
    raw.exec(OLD_FINALS_SQL);
    assert.deepEqual(migrate(raw, path, 8), { from: 7, to: 8 });
    raw.close();
    const s = SqliteStore.open(path);
    try {
      assert.equal(schemaVersion(s.connection), 9);
      assert.equal(s.connection.prepare("SELECT 1 FROM sqlite_master WHERE name = 'finals'").get(), undefined, 'the finals table is gone');
      await checkFinalsMigrated(s);
    } finally {
      await s.close();
    }
  });

  test('migrations: a database newer than this code is refused with STORE_ERROR', async () => {
    const path = freshPath();
    const s = SqliteStore.open(path);
    s.connection.prepare('INSERT INTO schema_version (version, applied_at) VALUES (?, ?)').run(SCHEMA_VERSION + 5, new Date().toISOString());
    await s.close();
    await rejectsWith(openStore(path), 'STORE_ERROR', new RegExp(`schema version ${SCHEMA_VERSION + 5}.*upgrade autoprune`));
  });
});
