/**
 * `autoprune worker`'s own parts: choosing the study, refusing a host whose base model or data is
 * not the study's, and the claim loops riding out dropped database connections (PostgreSQL).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkSameBase, pickStudy, serveStudy, studyEvaluator } from '../src/app/index.js';
import type { EvalRequest, Evaluator } from '../src/evaluators/types.js';
import { openStore, type Store } from '../src/store/index.js';
import { evaluateClaim } from '../src/study/worker.js';
import { admin, cuttingProxy, pgUnavailable, testDatabases } from './pg-helpers.js';
import { addTrial, newStudy, newTrial, rejectsWith, SPACE } from './store-contract.js';

describe('worker: study and base checks', () => {
  test('pickStudy: the named study, else the only running one; none or several -> an error naming them', async () => {
    const s = await openStore(':memory:');
    await rejectsWith(pickStudy(s), 'INVALID_ARGUMENT', /No running study/);
    await s.createStudy(newStudy('a'));
    assert.equal((await pickStudy(s)).name, 'a');
    await s.createStudy(newStudy('b'));
    await rejectsWith(pickStudy(s), 'INVALID_ARGUMENT', /Several running studies \(a, b\)/);
    await s.setStudyState('a', 'complete');
    assert.equal((await pickStudy(s)).name, 'b');
    assert.equal((await pickStudy(s, 'a')).name, 'a');
    await rejectsWith(pickStudy(s, 'zz'), 'STUDY_NOT_FOUND', /`zz`.*a, b/);
    await s.close();
  });

  test('checkSameBase: other groups or another base accuracy (by more than one image) are refused', async () => {
    const s = await openStore(':memory:');
    const study = await s.createStudy({ ...newStudy('a'), baseProxyAccuracy: 0.75 });
    checkSameBase(study, SPACE, 0.75, 1000);
    checkSameBase(study, SPACE, 0.751, 1000); // one image of 1000
    assert.throws(() => checkSameBase(study, SPACE, 0.753, 1000), /scores 75\.30%.*recorded 75\.00%/);
    const other = { ...SPACE, groups: [{ ...SPACE.groups[0], channels: 16 }, SPACE.groups[1]] };
    assert.throws(() => checkSameBase(study, other, 0.75, 1000), /other channel groups/);
    await s.close();
  });
});

const unavailable = await pgUnavailable();
const dbs = testDatabases('autoprune_worker');
after(() => dbs.dropAll());

describe('worker: claim loops on PostgreSQL', { skip: unavailable ?? false }, () => {
  test('serveStudy evaluates every trial once although the server drops its connections, then stops with the study', async () => {
    const url = await dbs.fresh();
    const s = await openStore(url);
    await s.createStudy(newStudy('s'));
    const total = 24;
    for (let i = 0; i < total; i++) await addTrial(s, 's', newTrial([8, 8 + i]));
    const db = new URL(url).pathname.slice(1);
    let evaluated = 0;
    const evaluator: Evaluator = {
      capacity: 2,
      evaluate: async (req) => {
        evaluated++;
        // Halfway through, the server drops every connection of the database (as a restart does).
        if (evaluated === total / 2)
          await admin((c) => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]));
        await new Promise((r) => setTimeout(r, 20));
        const t = (await s.getTrial('s', req.trial))!;
        return { proxyAccuracy: 0.5, latencyMs: 1, cost: t.cost, timings: {}, worker: 'fake' };
      },
      close: async () => undefined,
    };
    const logs: string[] = [];
    // A short lease: a claim whose write was cut off by the drop is re-claimed after it expires.
    const served = serveStudy({
      store: s,
      study: 's',
      evaluator,
      concurrency: 2,
      leaseMs: 3_000,
      stop: new AbortController().signal,
      giveUpMs: 30_000,
      pollMs: 50,
      watchMs: 100,
      log: (l) => logs.push(l),
    });
    for (let i = 0; i < 400 && (await s.listTrials('s', { state: 'complete' })).length < total; i++) await new Promise((r) => setTimeout(r, 100));
    await s.setStudyState('s', 'complete');
    // Every trial completes exactly once (a finished trial is immutable).
    assert.ok((await served) >= total);
    const trials = await s.listTrials('s');
    assert.deepEqual(
      trials.map((t) => t.state),
      trials.map(() => 'complete'),
    );
    // A write cut off by the drop is sent again with its token (sql.ts: finishLeased, claimNow), so
    // no trial waits out a lease to be claimed a second time.
    assert.ok(
      trials.every((t) => t.attempts === 1),
      JSON.stringify(trials.map((t) => t.attempts)),
    );
    assert.ok(
      logs.some((l) => /is complete; no more trials/.test(l)),
      logs.join('\n'),
    );
    await s.close();
  });

  test("a worker on another host's artifact folder gets an adapt parent's weights through the database", async () => {
    const url = await dbs.fresh();
    const [dirA, dirB] = [await mkdtemp(join(tmpdir(), 'autoprune-host-a-')), await mkdtemp(join(tmpdir(), 'autoprune-host-b-'))];
    const hostA = await openStore(url, { artifacts: dirA });
    const hostB = await openStore(url, { artifacts: dirB });
    try {
      await hostA.createStudy(newStudy('s'));
      await addTrial(hostA, 's', newTrial([8, 8], { stage: 'adapt' }));
      await addTrial(hostA, 's', newTrial([8, 16], { stage: 'proxy', parent: 0 }));
      const weights = Uint8Array.from({ length: 50_000 }, (_, i) => (i * 31) % 251);
      const result = async (req: EvalRequest, store: Store) => ({
        proxyAccuracy: 0.5,
        latencyMs: 1,
        cost: (await store.getTrial('s', req.trial))!.cost,
        timings: {},
        worker: 'fake',
      });
      // Host A adapts trial 0 and saves its weights into its own folder, as the tfjs evaluator does.
      const adapt: Evaluator = {
        capacity: 1,
        close: async () => undefined,
        evaluate: async (req) => {
          assert.ok(req.saveTo!.startsWith(dirA));
          await mkdir(req.saveTo!, { recursive: true });
          await writeFile(join(req.saveTo!, 'model.json'), '{"parent":0}');
          await writeFile(join(req.saveTo!, 'weights.bin'), weights);
          return result(req, hostA);
        },
      };
      const o = (store: Store, evaluator: Evaluator) => ({
        store,
        study: 's',
        name: 'w',
        evaluator: studyEvaluator(evaluator, store, 's'),
        leaseMs: 60_000,
        stop: new AbortController().signal,
      });
      const claimA = (await hostA.claimTrial('s', 'a:1:0', { leaseMs: 60_000 }))!;
      assert.equal(claimA.number, 0);
      assert.equal((await evaluateClaim(o(hostA, adapt), claimA))!.state, 'complete');
      // Host B evaluates the child: the parent's folder is fetched into B's own folder first.
      let seen: { dir: string; json: string; weights: Uint8Array } | null = null;
      const child: Evaluator = {
        capacity: 1,
        close: async () => undefined,
        evaluate: async (req) => {
          const dir = req.parent!.modelDir;
          seen = { dir, json: await readFile(join(dir, 'model.json'), 'utf8'), weights: new Uint8Array(await readFile(join(dir, 'weights.bin'))) };
          return result(req, hostB);
        },
      };
      const claimB = (await hostB.claimTrial('s', 'b:1:0', { leaseMs: 60_000 }))!;
      assert.equal(claimB.number, 1);
      assert.equal((await evaluateClaim(o(hostB, child), claimB))!.state, 'complete');
      assert.ok(seen, 'the child was evaluated');
      const got = seen as { dir: string; json: string; weights: Uint8Array };
      assert.ok(got.dir.startsWith(dirB), got.dir);
      assert.equal(got.json, '{"parent":0}');
      assert.deepEqual(got.weights, weights);
      assert.deepEqual(
        (await hostB.listArtifacts('s')).map((a) => [a.key, a.size]),
        [
          ['trials/0/model/model.json', 12],
          ['trials/0/model/weights.bin', 50_000],
        ],
      );
    } finally {
      await hostA.close();
      await hostB.close();
      await rm(dirA, { recursive: true, force: true });
      await rm(dirB, { recursive: true, force: true });
    }
  });

  test('a completion, failure or claim whose connection drops is sent again with the same token: applied once, never lost', async () => {
    const proxy = await cuttingProxy(await dbs.fresh());
    const s = await openStore(proxy.url);
    try {
      await s.createStudy(newStudy('s'));
      for (let i = 0; i < 4; i++) await addTrial(s, 's', newTrial([8, 8 + i]));
      const metrics = { proxyAccuracy: 0.625, latencyMs: 2, timings: { eval: 1 } };
      // The server completes trial 0 but its answer is lost: the retry finds its own write.
      const c0 = (await s.claimTrial('s', 'w:1:0', { leaseMs: 60_000 }))!;
      proxy.cut('response');
      const t0 = await s.completeTrial(c0, metrics);
      assert.equal(proxy.cuts, 1);
      assert.deepEqual([t0.state, t0.metrics, t0.attempts], ['complete', metrics, 1]);
      // The request for trial 1 never reaches the server: the retry applies it.
      const c1 = (await s.claimTrial('s', 'w:1:0', { leaseMs: 60_000 }))!;
      proxy.cut('request');
      assert.equal((await s.completeTrial(c1, metrics)).state, 'complete');
      assert.equal(proxy.cuts, 2);
      // A claim whose answer is lost: the retry returns that claim, it does not take a second trial.
      proxy.cut('response');
      const c2 = (await s.claimTrial('s', 'w:1:0', { leaseMs: 60_000 }))!;
      assert.equal(proxy.cuts, 3);
      assert.deepEqual([c2.number, c2.trial.attempts], [2, 1]);
      assert.deepEqual(
        (await s.listTrials('s', { state: 'running' })).map((t) => t.number),
        [2],
      );
      proxy.cut('response');
      assert.equal((await s.failTrial(c2, 'boom')).state, 'failed');
      assert.equal(proxy.cuts, 4);
      // Once finished, the same token cannot write again (and a late duplicate is refused).
      await rejectsWith(s.completeTrial(c0, { proxyAccuracy: 0.1 }), 'TRIAL_IMMUTABLE');
      const trials = await s.listTrials('s');
      assert.deepEqual(
        trials.map((t) => [t.state, t.attempts]),
        [
          ['complete', 1],
          ['complete', 1],
          ['failed', 1],
          ['waiting', 0],
        ],
      );
      assert.deepEqual(trials[0].metrics, metrics);
    } finally {
      await s.close();
      await proxy.close();
    }
  });
});
