/**
 * `autoprune serve` over HTTP (fetch, no browser): the token, the loopback rule, incremental trial
 * updates (rows per update counted), and the JSON the pages read, against SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Rng } from '../src/core/rng.js';
import { buildReportInfo, pickCandidates } from '../src/report/data.js';
import { MIN_REFRESH_MS } from '../src/serve/feed.js';
import { type RunningServer, startServer } from '../src/serve/server.js';
import { openStore } from '../src/store/index.js';
import type { Store } from '../src/store/types.js';
import { studyFinals } from '../src/study/finals.js';
import { ROOT, type Run } from './helpers.js';
import { pgUnavailable, testDatabases } from './pg-helpers.js';
import { seedFinal } from './seed-final.js';
import { addTrials, randomTrial, seedStudyTrials } from './serve-seed.js';

const TOKEN = 'correct-horse-battery';
const settle = () => new Promise((r) => setTimeout(r, MIN_REFRESH_MS + 100));

function cliWithEnv(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, ['bin/autoprune.js', ...args], { cwd: ROOT, env: { ...process.env, CI: '1', ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// biome-ignore lint/suspicious/noExplicitAny: the tests read the API's JSON field by field
async function getJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
}

describe('serve: the bind and token rules', () => {
  test('binding beyond loopback without a token exits non-zero at once with one line', async () => {
    const r = await cliWithEnv({ AUTOPRUNE_SERVE_TOKEN: '' }, 'serve', '--host', '0.0.0.0', '--port', '0', '--store', '/nonexistent/never.db');
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^autoprune: Refusing to serve on `0\.0\.0\.0` without a token/);
  });

  test('a short token is refused with one line', async () => {
    const r = await cliWithEnv({}, 'serve', '--token', 'abc', '--port', '0', '--store', '/nonexistent/never.db');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^autoprune: Expected a token of 8 or more characters, got one of 3\n$/);
  });

  test('a missing store is one line, not a created database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ap-serve-'));
    try {
      const r = await cliWithEnv({}, 'serve', '--port', '0', '--store', join(dir, 'typo.db'));
      assert.equal(r.code, 5, 'exit code 5: the store (docs/exit-codes.md)');
      assert.match(r.stderr, /^autoprune: No store at `.*typo\.db`/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('serve over SQLite', () => {
  let dir: string;
  let store: Store;
  let open: RunningServer;
  let locked: RunningServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ap-serve-'));
    store = await openStore(join(dir, 'studies.db'));
    await seedStudyTrials(store, 'demo', 60, { batch: 30 });
    await seedStudyTrials(store, `<script>alert('x')</script>"q"`, 5, { seed: 3 });
    open = await startServer({ store, port: 0 });
    locked = await startServer({ store, port: 0, token: TOKEN });
  });

  after(async () => {
    await open?.close();
    await locked?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('with a token, requests without it get 401; the header, ?token= and its cookie work', async () => {
    const api = `${locked.url}api/studies`;
    assert.equal((await fetch(api)).status, 401);
    assert.equal((await fetch(locked.url)).status, 401, 'the page itself is locked too');
    assert.equal((await fetch(`${locked.url}app.js`)).status, 401);
    assert.equal((await fetch(api, { headers: { Authorization: 'Bearer wrong-token-here' } })).status, 401);
    assert.equal((await fetch(api, { headers: { Authorization: `Bearer ${TOKEN}x` } })).status, 401);
    const ok = await getJson(api, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.studies.length, 2);

    const once = await fetch(`${locked.url}?token=${TOKEN}`, { redirect: 'manual' });
    assert.equal(once.status, 303);
    assert.equal(once.headers.get('location'), '/', 'the token leaves the address bar');
    const cookie = once.headers.get('set-cookie') ?? '';
    assert.match(cookie, /autoprune_token=/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const withCookie = await fetch(api, { headers: { Cookie: cookie.split(';')[0] } });
    assert.equal(withCookie.status, 200);
    assert.equal((await fetch(api, { headers: { Cookie: 'autoprune_token=nope' } })).status, 401);
  });

  test('without a token, only requests addressed to a loopback name are answered (DNS rebinding)', async () => {
    assert.equal((await fetch(`${open.url}api/studies`)).status, 200);
    const port = open.port;
    const foreign = await new Promise<number>((resolve, reject) => {
      import('node:http').then(({ request }) => {
        const req = request({ host: '127.0.0.1', port, path: '/api/studies', headers: { Host: `attacker.example:${port}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    });
    assert.equal(foreign, 403);
  });

  test('pages are static and locked down: CSP without inline scripts, no store data in the HTML', async () => {
    const res = await fetch(open.url);
    const html = await res.text();
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.doesNotMatch(html, /demo|alert/);
    assert.match(html, /<script src="\/vendor\/chart\.umd\.min\.js"/, 'chart.js from this server, not a CDN');
    assert.doesNotMatch(html, /https?:\/\//);
    const chart = await fetch(`${open.url}vendor/chart.umd.min.js`);
    assert.equal(chart.status, 200);
    assert.match(await chart.text(), /Chart\.js v4/);
  });

  test('trial rows arrive incrementally: only what changed after the version the page holds', async () => {
    const base = `${open.url}api/trials?study=demo`;
    const first = await getJson(`${base}&since=0`);
    assert.equal(first.status, 200);
    assert.equal(first.body.reset, true);
    assert.equal(first.body.rows.length, 60);
    assert.deepEqual(
      first.body.rows.map((r: { n: number }) => r.n),
      Array.from({ length: 60 }, (_, i) => i),
    );
    const { epoch, version } = first.body;

    // Nothing changed: no rows, same version.
    await settle();
    const idle = await getJson(`${base}&since=${version}&epoch=${encodeURIComponent(epoch)}`);
    assert.equal(idle.body.rows.length, 0);
    assert.equal(idle.body.version, version);

    // A writer beside the server: two trials complete, one waits.
    const rng = new Rng(99);
    const driver = await store.acquireDriver('demo', 'writer', 60_000, { stale: () => true });
    const added = await addTrials(
      store,
      'demo',
      driver,
      [
        { ...randomTrial(rng), outcome: { metrics: randomTrial(rng).metrics } },
        { ...randomTrial(rng), outcome: { error: 'boom' } },
        { ...randomTrial(rng), outcome: null },
      ],
      60,
    );
    assert.deepEqual(added, [60, 61, 62]);
    await settle();
    const d1 = await getJson(`${base}&since=${version}&epoch=${encodeURIComponent(epoch)}`);
    assert.equal(d1.body.reset, false);
    assert.deepEqual(
      d1.body.rows.map((r: { n: number; state: string }) => [r.n, r.state]),
      [
        [60, 'complete'],
        [61, 'failed'],
        [62, 'waiting'],
      ],
    );
    const feed = await open.feeds.get('demo');
    assert.ok(feed);
    assert.ok(feed.lastRead <= 3, `the poll read ${feed.lastRead} rows from the store, expected only the 3 new ones`);

    // The waiting trial runs, then completes: one row each time; the store read stays one row.
    const claim = await store.claimTrial('demo', 'w:1', { leaseMs: 60_000, number: 62 });
    assert.ok(claim);
    await settle();
    const d2 = await getJson(`${base}&since=${d1.body.version}&epoch=${encodeURIComponent(epoch)}`);
    assert.deepEqual(
      d2.body.rows.map((r: { n: number; state: string }) => [r.n, r.state]),
      [[62, 'running']],
    );
    await store.completeTrial(claim, { proxyAccuracy: 0.5 });
    await settle();
    const d3 = await getJson(`${base}&since=${d2.body.version}&epoch=${encodeURIComponent(epoch)}`);
    assert.deepEqual(
      d3.body.rows.map((r: { n: number; state: string; proxy: number }) => [r.n, r.state, r.proxy]),
      [[62, 'complete', 0.5]],
    );
    await settle();
    assert.equal((await open.feeds.get('demo'))?.lastRead, 0, 'nothing unfinished is left to watch: a poll reads no row');

    // A final for an old trial (its last-rung trial, 63) re-sends that trial with its final, and the new rung trial.
    await seedFinal(store, 'demo', 60, 0.77);
    await settle();
    const d4 = await getJson(`${base}&since=${d3.body.version}&epoch=${encodeURIComponent(epoch)}`);
    assert.deepEqual(
      d4.body.rows.map((r: { n: number; final: number | null }) => [r.n, r.final ?? null]),
      [
        [60, 0.77],
        [63, 0.77],
      ],
    );

    // A page from another server process (other epoch) starts over.
    const other = await getJson(`${base}&since=${d4.body.version}&epoch=elsewhere`);
    assert.equal(other.body.reset, true);
    assert.equal(other.body.rows.length, 64);
    await store.releaseDriver(driver).catch(() => undefined); // the final's enqueue took the driver lease over
  });

  test('the summary agrees with the report data', async () => {
    const { body: s } = await getJson(`${open.url}api/study?name=demo`);
    const study = await store.getStudy('demo');
    assert.ok(study);
    const info = buildReportInfo(study, await store.listTrials('demo'), studyFinals(store, 'demo', await store.listTrials('demo')));
    assert.deepEqual(
      s.proxyFront,
      info.proxyFront.map((p) => p.trial),
    );
    assert.equal(s.hypervolume, info.hypervolume);
    assert.equal(s.counts.complete, info.counts.complete);
    assert.equal(s.counts.failed, info.counts.failed);
    assert.deepEqual(s.targets, [0.5, 0.3]);
    // Best proxy at <= 50% FLOPs, by a naive scan.
    const best = Math.max(...info.rows.filter((p) => p.flopsFraction <= 0.5 + 1e-12).map((p) => p.proxyAccuracy as number));
    assert.equal(s.bestProxy[0], best);
    assert.ok(s.bestFinal[0] !== null, 'the seeded finalists count as fine-tuned');
  });

  test('pick ranks as the CLI does, and a bad constraint is one message naming the value', async () => {
    const { status, body } = await getJson(`${open.url}api/pick?study=demo&maxFlops=50%25&top=5`);
    assert.equal(status, 200);
    const study = await store.getStudy('demo');
    assert.ok(study);
    const info = buildReportInfo(study, await store.listTrials('demo'), studyFinals(store, 'demo', await store.listTrials('demo')));
    const want = pickCandidates(info, { maxFlops: 0.5 });
    assert.equal(body.matched, want.length);
    assert.deepEqual(
      body.rows.map((r: { trial: number }) => r.trial),
      want.slice(0, 5).map((r) => r.point.trial),
    );
    assert.match(body.rows[0].exportCommand, new RegExp(`^autoprune export demo ${want[0].point.trial} --store `));
    assert.match(body.command, /^autoprune pick demo --max-flops 50% --top 5 --store /);
    const badReq = await getJson(`${open.url}api/pick?study=demo&maxFlops=lots`);
    assert.equal(badReq.status, 400);
    assert.equal(badReq.body.error, "Expected --max-flops to be a fraction of the base model's MACs in (0, 1] such as 50% or 0.5, got `lots`");
  });

  test('a trial: its whole record, keep ratios per group, lineage; unknown ones are 404', async () => {
    const { body } = await getJson(`${open.url}api/trial?study=demo&n=9`);
    assert.equal(body.trial.state, 'failed');
    assert.equal(body.trial.error, 'evaluation failed: out of memory at trial 9');
    assert.equal(body.groups.length, 3);
    for (const g of body.groups) assert.equal(g.ratio, g.kept / g.channels);
    assert.equal(body.host, 'seed-host');
    const missing = await getJson(`${open.url}api/trial?study=demo&n=9999`);
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /^Trial 9999 of study `demo` not found$/);
    const noStudy = await getJson(`${open.url}api/study?name=nope`);
    assert.equal(noStudy.status, 404);
    assert.match(noStudy.body.error, /^Study `nope` not found; expected one of: /);
  });

  test('compare: hypervolume and fronts of the chosen studies', async () => {
    const { status, body } = await getJson(`${open.url}api/compare?s=demo&s=${encodeURIComponent(`<script>alert('x')</script>"q"`)}`);
    assert.equal(status, 200);
    assert.equal(body.studies.length, 2);
    const { body: s } = await getJson(`${open.url}api/study?name=demo`);
    assert.equal(body.studies[0].hypervolume, s.hypervolume);
  });

  test('a study deleted and created again under its name (search --fresh) starts pages over', async () => {
    const name = 'fresh';
    await seedStudyTrials(store, name, 4, { seed: 5, finals: 0 });
    const a = await getJson(`${open.url}api/trials?study=${name}&since=0`);
    assert.equal(a.body.rows.length, 4);
    await store.deleteStudy(name);
    await new Promise((r) => setTimeout(r, 5)); // createdAt must differ
    await seedStudyTrials(store, name, 2, { seed: 6, finals: 0 });
    await settle();
    const b = await getJson(`${open.url}api/trials?study=${name}&since=${a.body.version}&epoch=${encodeURIComponent(a.body.epoch)}`);
    assert.equal(b.body.reset, true);
    assert.notEqual(b.body.epoch, a.body.epoch);
    assert.equal(b.body.rows.length, 2);
  });
});

const pgWhy = await pgUnavailable();
describe('serve over PostgreSQL', { skip: pgWhy ?? false }, () => {
  const dbs = testDatabases('ap_serve');
  after(() => dbs.dropAll());

  test('the change reader returns only new, watched and unfinished trials; the server reads through it', async () => {
    const store = await openStore(await dbs.fresh());
    const server = await startServer({ store, port: 0 });
    try {
      await seedStudyTrials(store, 'pg', 20, { batch: 10 });
      const first = await getJson(`${server.url}api/trials?study=pg&since=0`);
      assert.equal(first.body.rows.length, 20);
      const rng = new Rng(4);
      const driver = await store.acquireDriver('pg', 'writer', 60_000, { stale: () => true });
      await addTrials(store, 'pg', driver, [{ ...randomTrial(rng), outcome: null }], 20);
      await settle();
      const d = await getJson(`${server.url}api/trials?study=pg&since=${first.body.version}&epoch=${encodeURIComponent(first.body.epoch)}`);
      assert.deepEqual(
        d.body.rows.map((r: { n: number; state: string }) => [r.n, r.state]),
        [[20, 'waiting']],
      );
      assert.equal((await server.feeds.get('pg'))?.lastRead, 1);
    } finally {
      await server.close();
      await store.close();
    }
  });
});
