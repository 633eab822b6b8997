/**
 * `autoprune worker`'s own parts: choosing the study, refusing a host whose base model or data is
 * not the study's, and the claim loops riding out dropped database connections (PostgreSQL).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { checkSameBase, pickStudy, serveStudy } from '../src/cli/commands/worker.js';
import type { Evaluator } from '../src/evaluators/types.js';
import { openStore } from '../src/store/index.js';
import { admin, pgUnavailable, testDatabases } from './pg-helpers.js';
import { newStudy, newTrial, rejectsWith, SPACE } from './store-contract.js';

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
    for (let i = 0; i < total; i++) await s.createTrial('s', newTrial([8, 8 + i]));
    const db = new URL(url).pathname.slice(1);
    let evaluated = 0;
    const evaluator: Evaluator = {
      capacity: 2,
      evaluate: async (req) => {
        evaluated++;
        // Halfway through, the server drops every connection of the database (as a restart does).
        if (evaluated === total / 2) await admin((c) => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]));
        await new Promise((r) => setTimeout(r, 20));
        const t = (await s.getTrial('s', req.trial))!;
        return { proxyAccuracy: 0.5, latencyMs: 1, cost: t.cost, timings: {}, worker: 'fake' };
      },
      close: async () => undefined,
    };
    const logs: string[] = [];
    // A short lease: a claim whose write was cut off by the drop is re-claimed after it expires.
    const served = serveStudy({ store: s, study: 's', evaluator, concurrency: 2, leaseMs: 3_000, stop: new AbortController().signal, giveUpMs: 30_000, pollMs: 50, watchMs: 100, log: (l) => logs.push(l) });
    for (let i = 0; i < 400 && (await s.listTrials('s', { state: 'complete' })).length < total; i++) await new Promise((r) => setTimeout(r, 100));
    await s.setStudyState('s', 'complete');
    // Every trial completes exactly once (a finished trial is immutable); a claim cut off by the
    // drop may be evaluated a second time after its lease expired, never more.
    assert.ok((await served) >= total);
    const trials = await s.listTrials('s');
    assert.deepEqual(trials.map((t) => t.state), trials.map(() => 'complete'));
    assert.ok(trials.every((t) => t.attempts <= 2), JSON.stringify(trials.map((t) => t.attempts)));
    assert.ok(logs.some((l) => /is complete; no more trials/.test(l)), logs.join('\n'));
    await s.close();
  });
});
