/**
 * The Store contract on PostgreSQL, plus what only a server backend has: concurrent writer
 * processes, reconnection after the server drops connections, the trigger, migrations.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import type { PoolClient } from 'pg';
import { resolveConfig } from '../src/config/index.js';
import { openStore } from '../src/store/index.js';
import { admin, pgClient, pgUnavailable, testDatabases } from './pg-helpers.js';
import {
  addTrial,
  BEFORE_FINISH_SEQ_SQL,
  checkFinalsMigrated,
  checkFinishSeqBackfill,
  complete,
  enqueueContended,
  LEASE,
  newStudy,
  newTrial,
  OLD_FINALS_SQL,
  rejectsWith,
  storeContract,
} from './store-contract.js';

const unavailable = await pgUnavailable();
const dbs = testDatabases('autoprune_test');
after(() => dbs.dropAll());

describe('store location', () => {
  test('a postgres:// or postgresql:// run.store is kept as a URL, a file path is resolved', () => {
    for (const url of ['postgres://u@127.0.0.1:5432/db', 'postgresql://127.0.0.1/db']) {
      assert.equal(resolveConfig({ name: 'x', model: { zoo: 'plain-cnn' }, run: { store: url } }, { cwd: '/work' }).run.store, url);
    }
    assert.equal(resolveConfig({ name: 'x', model: { zoo: 'plain-cnn' }, run: { store: 'a/b.db' } }, { cwd: '/work' }).run.store, '/work/a/b.db');
  });

  test('an unreachable server gives STORE_ERROR naming the URL without its password', {
    skip: unavailable?.startsWith('the npm package') ? unavailable : false,
  }, async () => {
    // Port 9 (discard) on loopback: nothing listens there, so the connection is refused at once.
    await rejectsWith(openStore('postgres://u:secret@127.0.0.1:9/db', { retryMs: 300 }), 'STORE_ERROR', /u:\*\*\*@127\.0\.0\.1:9\/db` is unreachable/);
  });
});

if (unavailable !== null) {
  test('PostgreSQL store', { skip: unavailable }, () => undefined);
} else {
  const { PG_MIGRATIONS, PG_SCHEMA_VERSION } = await import('../src/store/postgres-migrations.js');
  storeContract('postgres', async (o) => openStore(await dbs.fresh(), o));

  describe('PostgreSQL store', () => {
    test('data survives close and reopen; numbers are stored losslessly', async () => {
      const url = await dbs.fresh();
      const a = await openStore(url);
      await a.createStudy(newStudy('s'));
      await addTrial(a, 's', newTrial([8, 16]));
      const done = await complete(a, 's', 0, { proxyAccuracy: 0.1 + 0.7, timings: { eval: 1 / 3 } });
      await a.close();
      const b = await openStore(url);
      assert.deepEqual(await b.getTrial('s', 0), done);
      assert.equal((await b.getTrial('s', 0))!.metrics.proxyAccuracy, 0.1 + 0.7);
      assert.equal((await addTrial(b, 's', newTrial([8, 8]))).number, 1);
      await b.close();
    });

    test('rival drivers taking turns in several processes never collide on trial numbers', async () => {
      const url = await dbs.fresh();
      const s = await openStore(url);
      await s.createStudy(newStudy('s'));
      const perWriter = 100;
      const writers = 3;
      const mod = new URL('../src/store/postgres.ts', import.meta.url).href;
      const helpers = new URL('./store-contract.ts', import.meta.url).href;
      // Each child: rival drivers (one per lane) taking the study over and enqueueing.
      const code = `
        const { PostgresStore } = await import(${JSON.stringify(mod)});
        const { enqueueContended } = await import(${JSON.stringify(helpers)});
        const [url, id, n] = process.argv.slice(1);
        const s = await PostgresStore.open(url);
        // Several in flight at once from this process too (its pool has several connections).
        await Promise.all([0, 1, 2, 3].map(async (lane) => {
          for (let i = lane; i < Number(n); i += 4) {
            const ch = [8, 1000 * Number(id) + i];
            await enqueueContended(s, 's', 'w' + id + ':' + lane, { candidate: { channels: ch }, key: ch.join(','), cost: { macs: 1, params: 1 }, controller: 'w' + id });
          }
        }));
        await s.close();`;
      const child = (id: number) =>
        new Promise<void>((resolve, reject) => {
          const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, url, String(id), String(perWriter)], {
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let err = '';
          p.stderr.on('data', (d) => (err += String(d)));
          p.once('error', reject);
          p.once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`writer ${id} exited ${c}: ${err}`))));
        });
      const children = Promise.all([...Array(writers).keys()].map((i) => child(i + 1)));
      let finished = false;
      void children.then(
        () => (finished = true),
        () => (finished = true),
      );
      let mine = 0;
      while (!finished && mine < 5000) {
        await enqueueContended(s, 's', 'main', newTrial([8, mine++]));
        await new Promise((r) => setTimeout(r, 1));
      }
      await children;
      const trials = await s.listTrials('s');
      assert.equal(trials.length, writers * perWriter + mine);
      assert.deepEqual(
        trials.map((t) => t.number),
        [...Array(trials.length).keys()],
      );
      for (let i = 1; i <= writers; i++) assert.equal(trials.filter((t) => t.controller === `w${i}`).length, perWriter);
      assert.ok(mine > 0, 'this process wrote while the children did');
      await s.close();
    });

    test('claimers in several processes never get the same trial (FOR UPDATE SKIP LOCKED); leases use the server clock', async () => {
      const url = await dbs.fresh();
      const s = await openStore(url);
      await s.createStudy(newStudy('s'));
      const total = 240;
      for (let i = 0; i < total; i++) await addTrial(s, 's', newTrial([8, i]));
      const mod = new URL('../src/store/postgres.ts', import.meta.url).href;
      const code = `
        const { PostgresStore } = await import(${JSON.stringify(mod)});
        const [url, id] = process.argv.slice(1);
        const s = await PostgresStore.open(url);
        const mine = [];
        await Promise.all([0, 1, 2, 3].map(async (lane) => {
          for (;;) {
            const c = await s.claimTrial('s', 'w' + id + ':' + lane, { leaseMs: ${LEASE} });
            if (c === null) break;
            await s.completeTrial(c, { proxyAccuracy: 0.5 });
            mine.push(c.number);
          }
        }));
        await s.close();
        process.stdout.write(JSON.stringify(mine));`;
      const child = (id: number) =>
        new Promise<number[]>((resolve, reject) => {
          const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, url, String(id)], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          p.stdout.on('data', (d) => (out += String(d)));
          p.stderr.on('data', (d) => (err += String(d)));
          p.once('error', reject);
          p.once('exit', (c) => (c === 0 ? resolve(JSON.parse(out) as number[]) : reject(new Error(`claimer ${id} exited ${c}: ${err}`))));
        });
      const got = (await Promise.all([1, 2, 3].map(child))).flat();
      assert.deepEqual(
        [...got].sort((a, b) => a - b),
        [...Array(total).keys()],
        'every trial claimed and completed exactly once',
      );
      const trials = await s.listTrials('s');
      assert.ok(trials.every((t) => t.state === 'complete' && t.attempts === 1));
      assert.ok(new Set(trials.map((t) => t.worker)).size > 3, 'several claimers took part');
      // No injected clock: a lease's expiry is the server's now + leaseMs.
      await addTrial(s, 's', newTrial([16, 16]));
      const before = Date.now();
      const c = (await s.claimTrial('s', 'w', { leaseMs: 5000 }))!;
      await s.heartbeat(c, 5000);
      await s.close();
      const raw = await pgClient(url);
      await raw.connect();
      const [row] = (await raw.query<{ e: number }>('SELECT lease_expires_ms::float8 AS e FROM trials WHERE number = $1', [total])).rows;
      await raw.end();
      assert.ok(Math.abs(row.e - (before + 5000)) < 2000, `lease expiry ${row.e} is about now + 5 s (${before + 5000})`);
    });

    test('finishers in several processes: every listing holds a prefix of the finish sequence (sequence order = commit order)', async () => {
      const url = await dbs.fresh();
      const s = await openStore(url);
      await s.createStudy(newStudy('s'));
      const total = 240;
      for (let i = 0; i < total; i++) await addTrial(s, 's', newTrial([8, i]));
      const mod = new URL('../src/store/postgres.ts', import.meta.url).href;
      // Claim first, then finish all at once: 12 lanes (3 processes x 4 connections) commit finishes concurrently.
      const code = `
        const { PostgresStore } = await import(${JSON.stringify(mod)});
        const [url, id] = process.argv.slice(1);
        const s = await PostgresStore.open(url);
        const mine = [];
        for (let c; (c = await s.claimTrial('s', 'w' + id, { leaseMs: ${LEASE} })) !== null; ) mine.push(c);
        await Promise.all([0, 1, 2, 3].map(async (lane) => {
          for (let i = lane; i < mine.length; i += 4) {
            const c = mine[i];
            if (c.number % 3 === 0) await s.failTrial(c, 'x'); else await s.completeTrial(c, { proxyAccuracy: 0.5 });
          }
        }));
        await s.close();`;
      const child = (id: number) =>
        new Promise<void>((resolve, reject) => {
          const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, url, String(id)], { stdio: ['ignore', 'ignore', 'pipe'] });
          let err = '';
          p.stderr.on('data', (d) => (err += String(d)));
          p.once('error', reject);
          p.once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`finisher ${id} exited ${c}: ${err}`))));
        });
      const children = Promise.all([1, 2, 3].map(child));
      let done = false;
      void children.then(
        () => (done = true),
        () => (done = true),
      );
      const readers = [s, await openStore(url)];
      const sizes = new Set<number>();
      const look = async (r: (typeof readers)[number]) => {
        const seqs = (await r.listTrials('s')).flatMap((t) => (t.finishSeq === null ? [] : [t.finishSeq])).sort((a, b) => a - b);
        assert.deepEqual(
          seqs,
          seqs.map((_, i) => i + 1),
          `a listing of ${seqs.length} finished trials is not 1..${seqs.length}`,
        );
        sizes.add(seqs.length);
      };
      while (!done) await Promise.all(readers.map(look));
      await children;
      await look(s);
      assert.ok(sizes.has(total), 'all finished');
      assert.ok(sizes.size > 10, `readers looked while finishes committed (${sizes.size} distinct sizes)`);
      await readers[1].close();
      await s.close();
    });

    test('connections the server drops (as on a restart) are replaced and the next call succeeds', async () => {
      const url = await dbs.fresh();
      const s = await openStore(url);
      await s.createStudy(newStudy('s'));
      await addTrial(s, 's', newTrial([8, 8]));
      const db = new URL(url).pathname.slice(1);
      // Every connection to the test database: the store's pooled ones among them.
      const killed = await admin((c) => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]));
      assert.ok((killed.rowCount ?? 0) >= 1, 'the store had a pooled connection to drop');
      assert.equal((await addTrial(s, 's', newTrial([16, 8]))).number, 1);
      assert.equal((await s.listTrials('s')).length, 2);
      await s.close();
    });

    test('the trigger refuses a raw SQL UPDATE of a finished trial row', async () => {
      const url = await dbs.fresh();
      const s = await openStore(url);
      await s.createStudy(newStudy('s'));
      await addTrial(s, 's', newTrial([8, 8]));
      await addTrial(s, 's', newTrial([16, 8]));
      const done = await complete(s, 's', 0, { proxyAccuracy: 0.5 });
      const raw = await pgClient(url);
      await raw.connect();
      for (const sql of ['UPDATE trials SET proxy_accuracy = 0.99 WHERE number = 0', "UPDATE trials SET state = 'waiting' WHERE number = 0"]) {
        await assert.rejects(raw.query(sql), /TRIAL_IMMUTABLE/, sql);
      }
      const ok = await raw.query("UPDATE trials SET worker = 'x' WHERE state = 'waiting'");
      assert.equal(ok.rowCount, 1);
      await raw.end();
      assert.deepEqual(await s.getTrial('s', 0), done);
      await s.close();
    });

    test('migrations: a v6 database (before the finish sequence) gets its finished trials numbered by (finished_at, number)', async () => {
      const { pgMigrate } = await import('../src/store/postgres-migrations.js');
      const url = await dbs.fresh();
      const raw = await pgClient(url);
      await raw.connect();
      try {
        assert.deepEqual(await pgMigrate(raw as unknown as PoolClient, url, 6), { from: 0, to: 6 });
        await raw.query(BEFORE_FINISH_SEQ_SQL);
        await raw.query("UPDATE studies SET next_trial = 4 WHERE name = 'old'");
      } finally {
        await raw.end();
      }
      const s = await openStore(url);
      try {
        await checkFinishSeqBackfill(s);
      } finally {
        await s.close();
      }
    });

    test('migrations: a v7 database with finals rows gets them as last-rung trials, and no finals table', async () => {
      const { pgMigrate } = await import('../src/store/postgres-migrations.js');
      const url = await dbs.fresh();
      const raw = await pgClient(url);
      await raw.connect();
      try {
        assert.deepEqual(await pgMigrate(raw as unknown as PoolClient, url, 6), { from: 0, to: 6 });
        await raw.query(BEFORE_FINISH_SEQ_SQL);
        await raw.query("UPDATE studies SET next_trial = 4 WHERE name = 'old'");
        await raw.query(OLD_FINALS_SQL);
        assert.deepEqual(await pgMigrate(raw as unknown as PoolClient, url, 7), { from: 6, to: 7 });
      } finally {
        await raw.end();
      }
      const s = await openStore(url);
      try {
        await checkFinalsMigrated(s);
      } finally {
        await s.close();
      }
      const check = await pgClient(url);
      await check.connect();
      try {
        assert.equal((await check.query("SELECT to_regclass('finals')::text AS t")).rows[0].t, null, 'the finals table is gone');
      } finally {
        await check.end();
      }
    });

    test('migrations: applied once by concurrent openers; a newer database is refused', async () => {
      const url = await dbs.fresh();
      const stores = await Promise.all([0, 1, 2].map(() => openStore(url)));
      await Promise.all(stores.map((s) => s.close()));
      const raw = await pgClient(url);
      await raw.connect();
      const applied = (await raw.query<{ version: number }>('SELECT version FROM schema_version ORDER BY version')).rows.map((r) => r.version);
      assert.deepEqual(
        applied,
        PG_MIGRATIONS.map((m) => m.version),
      );
      await raw.query('INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)', [PG_SCHEMA_VERSION + 5, 'x']);
      await raw.end();
      await rejectsWith(openStore(url), 'STORE_ERROR', new RegExp(`schema version ${PG_SCHEMA_VERSION + 5}.*upgrade autoprune`));
    });
  });
}
