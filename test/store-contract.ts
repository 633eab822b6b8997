/**
 * The Store contract (STYLE.md principle 3): one suite, run against every backend by
 * test/store.test.ts. Each test gets a fresh, empty store from `make`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { type ErrorCode, isAutopruneError } from '../src/core/errors.js';
import { candidateKey, type SearchSpace } from '../src/core/space.js';
import type { TrialMetrics } from '../src/core/types.js';
import type { DriverLease, Json, NewTrial, Store, StoreOptions, StudyInputs, StudyRecord, TrialRecord } from '../src/store/types.js';
import { finalsOf } from '../src/study/finals.js';

export const SPACE: SearchSpace = {
  groups: [
    { id: 'conv1', channels: 32, layers: ['conv1', 'bn1'] },
    { id: 'stage2.conv1', channels: 64, layers: ['stage2.conv1', 'stage2.bn1', 'stage2.dw'] },
  ],
  options: { minKeepRatio: 0.25, channelStep: 8, skip: [] },
};

export function newStudy(name: string): Omit<StudyRecord, 'createdAt' | 'updatedAt' | 'state'> & { inputs: StudyInputs | null } {
  return {
    name,
    configHash: `hash-of-${name}`,
    // Values that a lossy encoding would damage: a non-terminating binary fraction, 2^53 - 1, nesting.
    config: { search: { controller: 'random', trials: 40, targets: [0.5, 0.3] }, lr: 0.1 + 0.2, big: 2 ** 53 - 1 },
    space: SPACE,
    baseCost: { macs: 22_413_312, params: 94_123 },
    baseProxyAccuracy: 0.9123456789012345,
    baseTestAccuracy: null,
    inputs: { baseModel: 'ab'.repeat(32), data: '0123456789abcdef'.repeat(4) },
  };
}

export function newTrial(channels: number[], extra: Partial<NewTrial> = {}): NewTrial {
  const candidate = { channels };
  return {
    candidate,
    key: candidateKey(candidate),
    cost: { macs: channels[0] * 1000 + channels[1] + 0.5, params: channels[0] + channels[1] },
    controller: 'random',
    meta: { target: 0.5, note: 'x' },
    ...extra,
  };
}

export async function rejectsWith(p: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isAutopruneError(e), `expected an AutopruneError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A lease long enough that no test's wall clock runs past it. */
export const LEASE = 600_000;

/** Claim trial `n` and complete it (what a worker does). */
export async function complete(s: Store, study: string, n: number, metrics: TrialMetrics): Promise<TrialRecord> {
  const c = await s.claimTrial(study, 'test-worker', { leaseMs: LEASE, number: n });
  assert.ok(c, `trial ${n} of ${study} is not waiting`);
  return s.completeTrial(c, metrics);
}

export async function fail(s: Store, study: string, n: number, error = 'x'): Promise<TrialRecord> {
  const c = await s.claimTrial(study, 'test-worker', { leaseMs: LEASE, number: n });
  assert.ok(c, `trial ${n} of ${study} is not waiting`);
  return s.failTrial(c, error);
}

/** The owner name of the tests' driver (enqueue); a lease it left behind is taken over at once. */
const TEST_DRIVER = 'test-driver';

/**
 * Adds trials as a driver does, the store's only way in: take the study's driver lease, enqueue
 * them with a controller snapshot (`{ told: 0, state: null }` unless given), let the lease go.
 * STUDY_BUSY when another driver holds the study.
 */
export async function enqueue(
  s: Store,
  study: string,
  trials: readonly NewTrial[],
  snapshot: { told: number; state: Json } = { told: 0, state: null },
): Promise<TrialRecord[]> {
  const d = await s.acquireDriver(study, TEST_DRIVER, LEASE, { stale: (h) => h === TEST_DRIVER });
  try {
    return await s.enqueueTrials(d, trials, snapshot);
  } finally {
    await s.releaseDriver(d);
  }
}

/**
 * One trial enqueued by driver `owner` among rival drivers (other processes doing the same): it
 * waits its turn for the study's driver lease (STUDY_BUSY while a rival holds it), enqueues, and
 * lets the lease go. Returns the trial's number.
 */
export async function enqueueContended(s: Store, study: string, owner: string, t: NewTrial): Promise<number> {
  for (;;) {
    let d: DriverLease;
    try {
      d = await s.acquireDriver(study, owner, LEASE);
    } catch (e) {
      if (!isAutopruneError(e) || e.code !== 'STUDY_BUSY') throw e;
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    try {
      return (await s.enqueueTrials(d, [t], { told: 0, state: null }))[0].number;
    } finally {
      await s.releaseDriver(d);
    }
  }
}

/** One waiting trial, added as the driver adds it (enqueue). */
export async function addTrial(s: Store, study: string, t: NewTrial): Promise<TrialRecord> {
  return (await enqueue(s, study, [t]))[0];
}

/** A controller snapshot saved as the driver saves one: with an enqueue (here of no trials). */
export async function saveSnapshot(s: Store, study: string, told: number, state: Json): Promise<void> {
  await enqueue(s, study, [], { told, state });
}

/** A fake store clock (ms) the test moves by hand. */
export interface FakeClock {
  t: number;
}

export function storeContract(name: string, make: (o?: StoreOptions) => Promise<Store>): void {
  /** A fresh store per test, closed afterwards even when the test fails (tests stay independent). */
  function withStore(title: string, body: (s: Store) => Promise<void>): void {
    test(title, async () => {
      const s = await make();
      try {
        await body(s);
      } finally {
        await s.close();
      }
    });
  }

  /** Like withStore, with the store's lease clock in the test's hands. */
  function clocked(title: string, body: (s: Store, clock: FakeClock) => Promise<void>): void {
    test(title, async () => {
      const clock = { t: 1_700_000_000_000 };
      const s = await make({ clock: () => clock.t });
      try {
        await body(s, clock);
      } finally {
        await s.close();
      }
    });
  }

  describe(`Store contract: ${name}`, () => {
    withStore('createStudy round-trips every field; getStudy and listStudies see it', async (s) => {
      const created = await s.createStudy(newStudy('a'));
      assert.deepEqual(
        { ...created, createdAt: 'x', updatedAt: 'x' },
        {
          ...newStudy('a'),
          state: 'running',
          createdAt: 'x',
          updatedAt: 'x',
        },
      );
      assert.match(created.createdAt, ISO);
      assert.equal(created.updatedAt, created.createdAt);
      assert.deepEqual(await s.getStudy('a'), created);
      assert.equal(await s.getStudy('nope'), null);
      await s.createStudy(newStudy('b'));
      assert.deepEqual(
        (await s.listStudies()).map((x) => x.name),
        ['a', 'b'],
      );
    });

    withStore('a study created without input hashes (or before they existed) reads back inputs null', async (s) => {
      const { inputs: _, ...old } = newStudy('old');
      assert.equal((await s.createStudy(old)).inputs, null);
      assert.equal((await s.createStudy({ ...newStudy('none'), inputs: null })).inputs, null);
      assert.deepEqual((await s.getStudy('old'))!.inputs, null);
    });

    withStore('a duplicate study name is rejected and the original is untouched', async (s) => {
      const first = await s.createStudy(newStudy('dup'));
      await rejectsWith(s.createStudy({ ...newStudy('dup'), configHash: 'other' }), 'STORE_ERROR', /`dup` already exists/);
      assert.deepEqual(await s.getStudy('dup'), first);
      assert.equal((await s.listStudies()).length, 1);
    });

    withStore('setStudyState and setBaseAccuracy update the study; unknown study -> STUDY_NOT_FOUND', async (s) => {
      const before = await s.createStudy(newStudy('a'));
      await s.setStudyState('a', 'stopped');
      await s.setBaseAccuracy('a', { test: 0.875 });
      let st = (await s.getStudy('a'))!;
      assert.equal(st.state, 'stopped');
      assert.equal(st.baseTestAccuracy, 0.875);
      assert.equal(st.baseProxyAccuracy, before.baseProxyAccuracy, 'a field not given is kept');
      assert.ok(st.updatedAt >= before.updatedAt);
      await s.setBaseAccuracy('a', { proxy: 0.5 });
      st = (await s.getStudy('a'))!;
      assert.deepEqual([st.baseProxyAccuracy, st.baseTestAccuracy], [0.5, 0.875]);
      await rejectsWith(s.setStudyState('zz', 'complete'), 'STUDY_NOT_FOUND', /`zz`/);
      await rejectsWith(s.setBaseAccuracy('zz', { proxy: 1 }), 'STUDY_NOT_FOUND');
      await rejectsWith(s.setStudyState('a', 'paused' as never), 'INVALID_ARGUMENT', /`paused`/);
    });

    withStore('trial numbers are dense 0..n-1 in creation order, per study', async (s) => {
      await s.createStudy(newStudy('a'));
      await s.createStudy(newStudy('b'));
      const nums: number[] = [];
      for (let i = 0; i < 5; i++) nums.push((await addTrial(s, 'a', newTrial([8 * (i + 1), 64]))).number);
      assert.deepEqual(nums, [0, 1, 2, 3, 4]);
      assert.equal((await addTrial(s, 'b', newTrial([8, 8]))).number, 0);
      const listed = await s.listTrials('a');
      assert.deepEqual(
        listed.map((t) => [t.number, t.candidate.channels[0]]),
        [
          [0, 8],
          [1, 16],
          [2, 24],
          [3, 32],
          [4, 40],
        ],
      );
    });

    withStore('an enqueued trial is waiting and round-trips its fields', async (s) => {
      await s.createStudy(newStudy('a'));
      const input = newTrial([24, 48], { meta: { target: 0.3, nested: [1, { x: 0.1 + 0.2 }] } });
      const t = await addTrial(s, 'a', input);
      assert.deepEqual(
        { ...t, createdAt: 'x' },
        {
          ...input,
          study: 'a',
          number: 0,
          state: 'waiting',
          stage: 'proxy',
          parent: null,
          attempts: 0,
          metrics: {},
          error: null,
          worker: null,
          createdAt: 'x',
          startedAt: null,
          finishedAt: null,
          finishSeq: null,
        },
      );
      assert.match(t.createdAt, ISO);
      assert.deepEqual(await s.getTrial('a', 0), t);
      const { meta: _drop, ...noMeta } = newTrial([8, 8]);
      const bare = await addTrial(s, 'a', noMeta);
      assert.equal('meta' in bare, false, 'a trial created without meta has none');
      await rejectsWith(addTrial(s, 'zz', input), 'STUDY_NOT_FOUND');
    });

    withStore('state transitions: waiting -> running (claimed) -> complete, and -> failed', async (s) => {
      await s.createStudy(newStudy('a'));
      await addTrial(s, 'a', newTrial([8, 8]));
      await addTrial(s, 'a', newTrial([16, 8]));
      const c0 = (await s.claimTrial('a', 'worker-1', { leaseMs: LEASE }))!;
      const running = c0.trial;
      assert.deepEqual([c0.number, running.state, running.worker, running.attempts], [0, 'running', 'worker-1', 1]);
      assert.match(running.startedAt!, ISO);
      const metrics = { proxyAccuracy: 0.8125, latencyMs: 1.25, timings: { prune: 0.1, calibrate: 2.3 } };
      const done = await s.completeTrial(c0, metrics);
      assert.equal(done.state, 'complete');
      assert.deepEqual(done.metrics, metrics);
      assert.match(done.finishedAt!, ISO);
      assert.equal(done.worker, 'worker-1');
      assert.deepEqual(await s.getTrial('a', 0), done);

      const c1 = (await s.claimTrial('a', 'worker-2', { leaseMs: LEASE }))!;
      const failed = await s.failTrial(c1, 'out of memory');
      assert.equal(failed.state, 'failed');
      assert.equal(failed.error, 'out of memory');
      assert.deepEqual(failed.metrics, {});
      assert.match(failed.finishedAt!, ISO);
      assert.equal(await s.claimTrial('a', 'worker-3', { leaseMs: LEASE }), null, 'nothing left to claim');
    });

    withStore('claims take the lowest waiting trial, never one twice; a named trial only if it waits', async (s) => {
      await s.createStudy(newStudy('a'));
      for (let i = 0; i < 3; i++) await addTrial(s, 'a', newTrial([8 * (i + 1), 8]));
      const two = (await s.claimTrial('a', 'w1', { leaseMs: LEASE, number: 2 }))!;
      assert.equal(two.number, 2);
      assert.equal(await s.claimTrial('a', 'w2', { leaseMs: LEASE, number: 2 }), null, 'a running trial cannot be claimed again');
      const claims = await Promise.all([0, 1, 2].map((i) => s.claimTrial('a', `w${i}`, { leaseMs: LEASE })));
      assert.deepEqual(
        claims.map((c) => c?.number ?? null),
        [0, 1, null],
      );
      assert.equal((await s.getTrial('a', 2))!.worker, 'w1');
      await rejectsWith(s.claimTrial('a', '', { leaseMs: LEASE }), 'INVALID_ARGUMENT');
      await rejectsWith(s.claimTrial('a', 'w', { leaseMs: 0 }), 'INVALID_ARGUMENT', /0/);
    });

    withStore('finished trials are immutable: every write throws TRIAL_IMMUTABLE and changes nothing', async (s) => {
      await s.createStudy(newStudy('a'));
      await addTrial(s, 'a', newTrial([8, 8]));
      await addTrial(s, 'a', newTrial([16, 8]));
      const c0 = (await s.claimTrial('a', 'w', { leaseMs: LEASE }))!;
      const c1 = (await s.claimTrial('a', 'w', { leaseMs: LEASE }))!;
      const done = await s.completeTrial(c0, { proxyAccuracy: 0.7 });
      const failed = await s.failTrial(c1, 'boom');

      await rejectsWith(s.completeTrial(c0, { proxyAccuracy: 0.99 }), 'TRIAL_IMMUTABLE', /`complete`/);
      await rejectsWith(s.failTrial(c0, 'late'), 'TRIAL_IMMUTABLE');
      await rejectsWith(s.heartbeat(c0, LEASE), 'TRIAL_IMMUTABLE');
      await rejectsWith(s.completeTrial(c1, { proxyAccuracy: 0.99 }), 'TRIAL_IMMUTABLE', /`failed`/);
      await rejectsWith(s.failTrial(c1, 'again'), 'TRIAL_IMMUTABLE');
      assert.equal(await s.claimTrial('a', 'w2', { leaseMs: LEASE, number: 0 }), null);
      assert.deepEqual(await s.reapExpired('a', { maxAttempts: 3 }), { requeued: [], failed: [] });

      assert.deepEqual(await s.getTrial('a', 0), done);
      assert.deepEqual(await s.getTrial('a', 1), failed);
    });

    withStore('unknown study -> STUDY_NOT_FOUND, unknown trial -> TRIAL_NOT_FOUND (getTrial -> null)', async (s) => {
      await s.createStudy(newStudy('a'));
      await addTrial(s, 'a', newTrial([8, 8]));
      await rejectsWith(s.claimTrial('zz', 'w', { leaseMs: LEASE }), 'STUDY_NOT_FOUND', /`zz`/);
      await rejectsWith(s.listTrials('zz'), 'STUDY_NOT_FOUND');
      await rejectsWith(s.getTrial('zz', 0), 'STUDY_NOT_FOUND');
      await rejectsWith(s.latestSnapshot('zz'), 'STUDY_NOT_FOUND');
      await rejectsWith(s.deleteStudy('zz'), 'STUDY_NOT_FOUND');
      await rejectsWith(s.acquireDriver('zz', 'd', LEASE), 'STUDY_NOT_FOUND');
      await rejectsWith(s.completeTrial({ study: 'a', number: 7, token: 1 }, {}), 'TRIAL_NOT_FOUND', /7/);
      await rejectsWith(s.failTrial({ study: 'a', number: 7, token: 1 }, 'x'), 'TRIAL_NOT_FOUND');
      assert.equal(await s.getTrial('a', 7), null);
    });

    clocked('fencing: a worker whose lease expired cannot heartbeat, complete or fail late', async (s, clock) => {
      await s.createStudy(newStudy('a'));
      await addTrial(s, 'a', newTrial([8, 8]));
      const c = (await s.claimTrial('a', 'slow', { leaseMs: 1000 }))!;
      clock.t += 900;
      await s.heartbeat(c, 1000); // renewed: now expires at +1900
      clock.t += 999;
      await s.heartbeat(c, 1000);
      clock.t += 1001;
      await rejectsWith(s.heartbeat(c, 1000), 'LEASE_LOST', /expired 1 ms ago/);
      await rejectsWith(s.completeTrial(c, { proxyAccuracy: 0.5 }), 'LEASE_LOST');
      await rejectsWith(s.failTrial(c, 'late'), 'LEASE_LOST');
      assert.equal((await s.getTrial('a', 0))!.state, 'running', 'an expired lease alone changes nothing until it is reaped');
      assert.deepEqual(await s.reapExpired('a', { maxAttempts: 3 }), { requeued: [0], failed: [] });
      const again = (await s.claimTrial('a', 'fast', { leaseMs: 1000 }))!;
      assert.notEqual(again.token, c.token, 'every claim gets a new fencing token');
      assert.equal(again.trial.attempts, 2);
      clock.t += 10;
      await rejectsWith(s.completeTrial(c, { proxyAccuracy: 0.1 }), 'LEASE_LOST', /claimed again/);
      const done = await s.completeTrial(again, { proxyAccuracy: 0.9 });
      assert.deepEqual([done.state, done.metrics.proxyAccuracy, done.worker], ['complete', 0.9, 'fast']);
      await rejectsWith(s.completeTrial(c, { proxyAccuracy: 0.1 }), 'TRIAL_IMMUTABLE');
      assert.equal((await s.getTrial('a', 0))!.metrics.proxyAccuracy, 0.9, 'completed once, by the live lease');
    });

    clocked(
      'finishSeq numbers finished trials 1, 2, ... per study in finishing order (complete, fail, expire); a refused write takes none',
      async (s, clock) => {
        await s.createStudy(newStudy('a'));
        await s.createStudy(newStudy('b'));
        for (let i = 0; i < 4; i++) await addTrial(s, 'a', newTrial([8 * (i + 1), 8]));
        await addTrial(s, 'b', newTrial([8, 8]));
        const c2 = (await s.claimTrial('a', 'w', { leaseMs: LEASE, number: 2 }))!;
        const c0 = (await s.claimTrial('a', 'w', { leaseMs: LEASE, number: 0 }))!;
        await s.claimTrial('a', 'w', { leaseMs: 100, number: 1 });
        assert.equal(c2.trial.finishSeq, null, 'running: no number yet');
        assert.equal((await s.completeTrial(c2, { proxyAccuracy: 0.5 })).finishSeq, 1);
        await rejectsWith(s.completeTrial(c2, {}), 'TRIAL_IMMUTABLE');
        await rejectsWith(s.completeTrial({ ...c0, token: c0.token + 7 }, {}), 'LEASE_LOST');
        assert.equal((await s.failTrial(c0, 'x')).finishSeq, 2, 'refused writes took no number');
        assert.equal((await complete(s, 'b', 0, {})).finishSeq, 1, 'each study has its own sequence');
        clock.t += 101;
        assert.deepEqual(await s.reapExpired('a', { maxAttempts: 1 }), { requeued: [], failed: [1] });
        assert.equal((await complete(s, 'a', 3, {})).finishSeq, 4);
        assert.deepEqual(
          (await s.listTrials('a')).map((t) => [t.number, t.state, t.finishSeq]),
          [
            [0, 'failed', 2],
            [1, 'failed', 3],
            [2, 'complete', 1],
            [3, 'complete', 4],
          ],
        );
      },
    );

    clocked('reapExpired re-queues expired leases up to maxAttempts, then fails them with the reason', async (s, clock) => {
      await s.createStudy(newStudy('a'));
      await s.createStudy(newStudy('b'));
      for (let i = 0; i < 3; i++) await addTrial(s, 'a', newTrial([8 * (i + 1), 8]));
      await addTrial(s, 'b', newTrial([8, 8]));
      const c0 = (await s.claimTrial('a', 'w0', { leaseMs: 100 }))!;
      await s.claimTrial('a', 'w1', { leaseMs: 5000 });
      await s.claimTrial('b', 'w', { leaseMs: 100 });
      clock.t += 101;
      assert.deepEqual(await s.reapExpired('a', { maxAttempts: 2 }), { requeued: [0], failed: [] });
      const t0 = (await s.getTrial('a', 0))!;
      assert.deepEqual([t0.state, t0.worker, t0.startedAt, t0.attempts], ['waiting', null, null, 1]);
      assert.equal((await s.getTrial('a', 1))!.state, 'running', 'a live lease is kept');
      assert.equal((await s.getTrial('b', 0))!.state, 'running', 'other studies are untouched');
      await rejectsWith(s.heartbeat(c0, 100), 'LEASE_LOST');
      await s.claimTrial('a', 'w2', { leaseMs: 100, number: 0 });
      clock.t += 101;
      assert.deepEqual(await s.reapExpired('a', { maxAttempts: 2 }), { requeued: [], failed: [0] });
      const dead = (await s.getTrial('a', 0))!;
      assert.equal(dead.state, 'failed');
      assert.match(dead.error!, /lease expired 2 time\(s\), last on worker w2/);
      const c2 = (await s.claimTrial('a', 'w3', { leaseMs: 100 }))!;
      assert.equal(c2.number, 2);
      assert.deepEqual(
        await s.reapExpired('a', { maxAttempts: 2, gone: ['w3'] }),
        { requeued: [2], failed: [] },
        'a worker known gone loses its trial before its lease runs out',
      );
      assert.equal((await s.claimTrial('a', 'w3', { leaseMs: 100, number: 2 }))!.token, c2.token + 1);
      await rejectsWith(s.heartbeat(c2, 100), 'LEASE_LOST');
      const c2b = { study: 'a', number: 2, token: c2.token + 1 };
      assert.deepEqual(await s.reapExpired('a', { maxAttempts: 3, gone: ['w3'] }), { requeued: [2], failed: [] });
      const back = (await s.getTrial('a', 2))!;
      assert.deepEqual([back.state, back.attempts], ['waiting', 2]);
      await rejectsWith(s.completeTrial(c2b, {}), 'LEASE_LOST', /re-queued/);
    });

    clocked('driver lease: one live driver per study; an expired one is taken over and fenced out', async (s, clock) => {
      await s.createStudy(newStudy('a'));
      await s.createStudy(newStudy('b'));
      const d1 = await s.acquireDriver('a', 'host:1', 1000);
      await rejectsWith(s.acquireDriver('a', 'host:2', 1000), 'STUDY_BUSY', /`host:1`/);
      const other = await s.acquireDriver('b', 'host:2', 1000);
      assert.equal(other.study, 'b', 'studies are independent');
      clock.t += 800;
      await s.renewDriver(d1, 1000);
      clock.t += 800;
      await rejectsWith(s.acquireDriver('a', 'host:2', 1000), 'STUDY_BUSY');
      clock.t += 201;
      const d2 = await s.acquireDriver('a', 'host:2', 1000);
      assert.ok(d2.token > d1.token);
      await rejectsWith(s.renewDriver(d1, 1000), 'LEASE_LOST', /`host:2` holds it/);
      await rejectsWith(s.enqueueTrials(d1, [newTrial([8, 8])], { told: 0, state: { from: 'd1' } }), 'LEASE_LOST');
      assert.deepEqual(await s.listTrials('a'), [], 'the fenced-out driver wrote nothing');
      assert.equal(await s.latestSnapshot('a'), null);
      await s.releaseDriver(d1); // a stale release does not free the new holder's study
      await rejectsWith(s.acquireDriver('a', 'host:3', 1000), 'STUDY_BUSY');
      await s.releaseDriver(d2);
      const d3 = await s.acquireDriver('a', 'host:3', 1000);
      assert.ok(d3.token > d2.token, 'tokens are never reused');
      const seen: string[] = [];
      const d4 = await s.acquireDriver('a', 'host:4', 1000, { stale: (h) => (seen.push(h), h === 'host:3') });
      assert.deepEqual([seen, d4.owner], [['host:3'], 'host:4'], 'a holder known dead is taken over at once');
      await rejectsWith(s.renewDriver(d3, 1000), 'LEASE_LOST');
    });

    withStore('enqueueTrials writes the trials and the controller snapshot together, with dense numbers', async (s) => {
      await s.createStudy(newStudy('a'));
      const d = await s.acquireDriver('a', 'drv', LEASE);
      const first = await s.enqueueTrials(d, [newTrial([8, 8]), newTrial([16, 8])], { told: 0, state: { rng: 1 } });
      assert.deepEqual(
        first.map((t) => [t.number, t.state, t.stage, t.parent, t.attempts]),
        [
          [0, 'waiting', 'proxy', null, 0],
          [1, 'waiting', 'proxy', null, 0],
        ],
      );
      assert.deepEqual((await s.latestSnapshot('a'))!.state, { rng: 1 });
      const bad = { ...newTrial([24, 8]), cost: { macs: Number.NaN, params: 1 } };
      await rejectsWith(s.enqueueTrials(d, [newTrial([32, 8]), bad], { told: 2, state: { rng: 2 } }), 'INVALID_ARGUMENT', /macs/);
      assert.equal((await s.listTrials('a')).length, 2, 'a refused batch adds no trial');
      assert.deepEqual((await s.latestSnapshot('a'))!.state, { rng: 1 }, 'nor its snapshot');
      const child = await s.enqueueTrials(d, [newTrial([8, 8], { stage: 'adapt', parent: 1, key: 'adapt:1:8,8' })], { told: 2, state: { rng: 3 } });
      assert.deepEqual([child[0].number, child[0].stage, child[0].parent], [2, 'adapt', 1]);
      await rejectsWith(s.enqueueTrials(d, [newTrial([8, 8], { parent: 9 })], { told: 2, state: {} }), 'INVALID_ARGUMENT', /Parent trial 9/);
      await rejectsWith(s.enqueueTrials(d, [newTrial([8, 8], { stage: 'bogus' as never })], { told: 2, state: {} }), 'INVALID_ARGUMENT', /`bogus`/);
    });

    withStore('a child trial is claimed only once its parent has finished', async (s) => {
      await s.createStudy(newStudy('a'));
      await addTrial(s, 'a', newTrial([32, 32], { stage: 'adapt', key: 'adapt:base:32,32' })); // 0
      await addTrial(s, 'a', newTrial([16, 16], { stage: 'adapt', parent: 0, key: 'adapt:0:16,16' })); // 1
      await addTrial(s, 'a', newTrial([8, 8])); // 2
      const p = (await s.claimTrial('a', 'w', { leaseMs: LEASE }))!;
      assert.equal(p.number, 0);
      assert.equal((await s.claimTrial('a', 'w', { leaseMs: LEASE }))!.number, 2, 'the child is skipped while its parent runs');
      assert.equal(await s.claimTrial('a', 'w', { leaseMs: LEASE }), null);
      assert.equal(await s.claimTrial('a', 'w', { leaseMs: LEASE, number: 1 }), null);
      await s.completeTrial(p, { proxyAccuracy: 0.5 });
      assert.equal((await s.claimTrial('a', 'w', { leaseMs: LEASE }))!.number, 1);
    });

    withStore('snapshots: none -> null, the last saved wins, state round-trips', async (s) => {
      await s.createStudy(newStudy('a'));
      await s.createStudy(newStudy('b'));
      assert.equal(await s.latestSnapshot('a'), null);
      await saveSnapshot(s, 'a', 10, { population: [[8, 16]], rng: 'abc' });
      await saveSnapshot(s, 'a', 20, {
        population: [
          [8, 16],
          [24, 32],
        ],
        rng: 'def',
        sigma: 0.1 + 0.2,
      });
      await saveSnapshot(s, 'b', 99, { other: true });
      const snap = await s.latestSnapshot('a');
      assert.deepEqual(
        { ...snap!, createdAt: 'x' },
        {
          study: 'a',
          told: 20,
          state: {
            population: [
              [8, 16],
              [24, 32],
            ],
            rng: 'def',
            sigma: 0.1 + 0.2,
          },
          createdAt: 'x',
        },
      );
      assert.match(snap!.createdAt, ISO);
      await saveSnapshot(s, 'a', 5, { older: true });
      assert.equal((await s.latestSnapshot('a'))!.told, 5, 'the last saved wins even with a smaller `told`');
    });

    withStore('a latency is stored with the host and device that measured it (trials and finals)', async (s) => {
      await s.createStudy(newStudy('a'));
      for (let i = 0; i < 2; i++) await addTrial(s, 'a', newTrial([8, 8 + i]));
      const c0 = (await s.claimTrial('a', 'gpu-box:1:0', { leaseMs: LEASE }))!;
      const done = await s.completeTrial(c0, {
        proxyAccuracy: 0.5,
        latencyMs: 0.25,
        latencyHost: 'gpu-box',
        latencyDevice: 'cuda:1',
        timings: { 'latency@onnxruntime': 0.1 },
      });
      assert.deepEqual(done.metrics, {
        proxyAccuracy: 0.5,
        latencyMs: 0.25,
        latencyHost: 'gpu-box',
        latencyDevice: 'cuda:1',
        timings: { 'latency@onnxruntime': 0.1 },
      });
      assert.deepEqual((await s.getTrial('a', 0))!.metrics, done.metrics);
      const c1 = (await s.claimTrial('a', 'w', { leaseMs: LEASE }))!;
      await rejectsWith(s.completeTrial(c1, { latencyMs: 1, latencyDevice: '' }), 'INVALID_ARGUMENT', /latencyDevice/);
      assert.deepEqual((await s.completeTrial(c1, { latencyMs: 1 })).metrics, { latencyMs: 1 }, 'not recorded: absent');
    });

    withStore("deleteStudy removes its trials and snapshots but not other studies'", async (s) => {
      for (const name of ['a', 'b']) {
        await s.createStudy(newStudy(name));
        await addTrial(s, name, newTrial([8, 8]));
        await addTrial(s, name, newTrial([16, 8]));
        await complete(s, name, 0, { proxyAccuracy: 0.5 });
        await saveSnapshot(s, name, 1, { name });
      }
      const bTrials = await s.listTrials('b');
      await s.deleteStudy('a');
      assert.equal(await s.getStudy('a'), null);
      await rejectsWith(s.listTrials('a'), 'STUDY_NOT_FOUND');
      assert.deepEqual(await s.listTrials('b'), bTrials);
      assert.deepEqual((await s.latestSnapshot('b'))!.state, { name: 'b' });

      // A study recreated under the same name starts empty.
      await s.createStudy(newStudy('a'));
      assert.deepEqual(await s.listTrials('a'), []);
      assert.equal(await s.latestSnapshot('a'), null);
      assert.equal((await addTrial(s, 'a', newTrial([8, 8]))).number, 0);
    });

    withStore('listTrials filters by state', async (s) => {
      await s.createStudy(newStudy('a'));
      for (let i = 0; i < 6; i++) await addTrial(s, 'a', newTrial([8 * (i + 1), 8]));
      await s.claimTrial('a', 'w', { leaseMs: LEASE, number: 1 });
      await s.claimTrial('a', 'w', { leaseMs: LEASE, number: 4 });
      await complete(s, 'a', 2, { proxyAccuracy: 0.1 });
      await complete(s, 'a', 5, { proxyAccuracy: 0.2 });
      await fail(s, 'a', 3);
      const nums = async (state: 'waiting' | 'running' | 'complete' | 'failed') => (await s.listTrials('a', { state })).map((t) => t.number);
      assert.deepEqual(await nums('waiting'), [0]);
      assert.deepEqual(await nums('running'), [1, 4]);
      assert.deepEqual(await nums('complete'), [2, 5]);
      assert.deepEqual(await nums('failed'), [3]);
      assert.equal((await s.listTrials('a')).length, 6);
      const picked = async (filter: Parameters<Store['listTrials']>[1]) => (await s.listTrials('a', filter)).map((t) => `${t.number}:${t.state}`);
      assert.deepEqual(await picked({ numbers: [5, 0, 4, 9] }), ['0:waiting', '4:running', '5:complete'], 'in number order; a missing number is no row');
      assert.deepEqual(await picked({ numbers: [] }), [], 'an empty list selects nothing');
      assert.deepEqual(await picked({ numbers: [1, 2, 3, 4], state: 'running' }), ['1:running', '4:running'], 'both filters');
      await rejectsWith(s.listTrials('a', { numbers: [1, -1] }), 'INVALID_ARGUMENT');
    });

    withStore('callers cannot change stored state through objects they passed in or got back', async (s) => {
      const input = newStudy('a') as { config: { search: { trials: number } } } & ReturnType<typeof newStudy>;
      await s.createStudy(input);
      input.config.search.trials = 1;
      const channels = [8, 16];
      const t = await addTrial(s, 'a', newTrial(channels));
      channels[0] = 999;
      const mutate = (f: () => void) => {
        try {
          f();
        } catch {
          // frozen: the write is refused, which is fine too
        }
      };
      mutate(() => ((t.candidate.channels as number[])[1] = 777));
      const st = (await s.getStudy('a'))!;
      mutate(() => ((st.space.groups[0] as { channels: number }).channels = 1));
      mutate(() => ((st.config as { lr: number }).lr = 5));

      assert.deepEqual((await s.getTrial('a', 0))!.candidate.channels, [8, 16]);
      const again = (await s.getStudy('a'))!;
      assert.deepEqual(again.config, newStudy('a').config);
      assert.equal(again.space.groups[0].channels, 32);
    });

    withStore('artifacts: put/get bytes by study and key, replace, list by prefix with sha256 and size, gone with the study', async (s) => {
      await s.createStudy(newStudy('a'));
      await s.createStudy(newStudy('b'));
      const weights = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 256); // every byte value, NUL included
      const info = await s.putArtifact('a', 'trials/3/model/weights.bin', weights);
      assert.deepEqual(info, { key: 'trials/3/model/weights.bin', sha256: createHash('sha256').update(weights).digest('hex'), size: 70_000 });
      await s.putArtifact('a', 'trials/3/model/model.json', new TextEncoder().encode('{"v":1}'));
      await s.putArtifact('a', 'trials/31/model/model.json', new TextEncoder().encode('{}'));
      await s.putArtifact('b', 'trials/3/model/model.json', new TextEncoder().encode('{"b":1}'));
      assert.deepEqual(await s.getArtifact('a', 'trials/3/model/weights.bin'), weights);
      assert.equal(await s.getArtifact('a', 'trials/4/model/weights.bin'), null);
      const replaced = await s.putArtifact('a', 'trials/3/model/model.json', new TextEncoder().encode('{"v":2}'));
      assert.equal(new TextDecoder().decode((await s.getArtifact('a', 'trials/3/model/model.json'))!), '{"v":2}');
      assert.deepEqual(await s.listArtifacts('a', 'trials/3/'), [replaced, info], 'by key; trials/31 is not under trials/3/');
      assert.deepEqual(
        (await s.listArtifacts('a')).map((x) => x.key),
        ['trials/3/model/model.json', 'trials/3/model/weights.bin', 'trials/31/model/model.json'],
      );
      await s.deleteStudy('a');
      await rejectsWith(s.getArtifact('a', 'trials/3/model/model.json'), 'STUDY_NOT_FOUND');
      await s.createStudy(newStudy('a'));
      assert.deepEqual(await s.listArtifacts('a'), [], 'a study created again under the name starts without artifacts');
      assert.equal(new TextDecoder().decode((await s.getArtifact('b', 'trials/3/model/model.json'))!), '{"b":1}');
      await rejectsWith(s.putArtifact('nope', 'x', weights), 'STUDY_NOT_FOUND');
      for (const bad of ['../escape', '/abs', 'a//b', 'a/../b', '', 'a b']) await rejectsWith(s.putArtifact('b', bad, weights), 'INVALID_ARGUMENT');
      await rejectsWith(s.listArtifacts('b', '../'), 'INVALID_ARGUMENT');
    });

    withStore('invalid arguments are refused with INVALID_ARGUMENT, quoting the value', async (s) => {
      await rejectsWith(s.createStudy({ ...newStudy('a'), name: '' }), 'INVALID_ARGUMENT');
      await rejectsWith(s.createStudy({ ...newStudy('a'), baseCost: { macs: Number.NaN, params: 1 } }), 'INVALID_ARGUMENT', /macs/);
      await rejectsWith(
        s.createStudy({ ...newStudy('a'), inputs: { baseModel: 'ab'.repeat(32), data: 'not-a-hash' } }),
        'INVALID_ARGUMENT',
        /inputs\.data.*not-a-hash/,
      );
      await s.createStudy(newStudy('a'));
      await addTrial(s, 'a', newTrial([8, 8]));
      const c = (await s.claimTrial('a', 'w', { leaseMs: LEASE }))!;
      await rejectsWith(s.completeTrial(c, { proxyAccuracy: Number.NaN }), 'INVALID_ARGUMENT', /proxyAccuracy/);
      await rejectsWith(s.completeTrial(c, { timings: { eval: Infinity } }), 'INVALID_ARGUMENT', /timings\.eval/);
      await rejectsWith(s.getTrial('a', 1.5), 'INVALID_ARGUMENT', /1\.5/);
      assert.equal((await s.getTrial('a', 0))!.state, 'running', 'a refused write changes nothing');
    });

    test('a closed store refuses calls with STORE_ERROR; closing twice is fine', async () => {
      const s = await make();
      await s.close();
      await s.close();
      await rejectsWith(s.listStudies(), 'STORE_ERROR', /closed/);
    });
  });
  describe(`Store contract: ${name}: latency tables`, () => {
    const table = { engine: 'onnxruntime', engineVersion: '1.30.0', host: 'h1/cpu:X', threads: 2, batch: 32 };
    const conv = { op: 'conv' as const, cin: 16, cout: 24, h: 28, w: 28, kh: 3, kw: 3, sh: 1, sw: 1, pad: 'same' as const, groups: 1 };

    withStore('entries round-trip, an upsert replaces one shape, and a table sees only its own entries', async (s) => {
      assert.deepEqual(await s.getLatencyEntries(table), []);
      await s.putLatencyEntries(table, [
        { ...conv, ms: 0.25 },
        { ...conv, cout: 32, ms: 0.5 },
        { op: 'dense', cin: 64, cout: 10, h: 1, w: 1, kh: 1, kw: 1, sh: 1, sw: 1, pad: 'valid', groups: 1, ms: 0.01 },
      ]);
      await s.putLatencyEntries(table, [{ ...conv, ms: 0.125 }]);
      const got = await s.getLatencyEntries(table);
      assert.equal(got.length, 3);
      for (const e of got) assert.match(e.measuredAt, ISO);
      const strip = <T extends { measuredAt: string }>(e: T): T => ({ ...e, measuredAt: 'x' });
      assert.deepEqual(
        got.map(strip).sort((a, b) => a.ms - b.ms),
        [
          { op: 'dense', cin: 64, cout: 10, h: 1, w: 1, kh: 1, kw: 1, sh: 1, sw: 1, pad: 'valid', groups: 1, ms: 0.01, measuredAt: 'x' },
          { ...conv, ms: 0.125, measuredAt: 'x' },
          { ...conv, cout: 32, ms: 0.5, measuredAt: 'x' },
        ],
      );
      // Another engine version, host, thread count or batch is another table.
      for (const other of [{ engineVersion: '1.29.0' }, { host: 'h2/cpu:X' }, { threads: 1 }, { batch: 1 }, { engine: 'onnxruntime-cuda' }]) {
        assert.deepEqual(await s.getLatencyEntries({ ...table, ...other }), [], JSON.stringify(other));
      }
    });

    withStore('a bad entry is refused with a line naming it, and nothing of its batch is written', async (s) => {
      await rejectsWith(
        s.putLatencyEntries(table, [
          { ...conv, ms: 1 },
          { ...conv, cin: 0, ms: 1 },
        ]),
        'STORE_ERROR',
        /cin .*0.*integer >= 1/,
      );
      await rejectsWith(s.putLatencyEntries(table, [{ ...conv, ms: Number.NaN }]), 'STORE_ERROR', /ms/);
      await rejectsWith(s.putLatencyEntries({ ...table, threads: 0 }, [{ ...conv, ms: 1 }]), 'STORE_ERROR', /threads/);
      assert.deepEqual(await s.getLatencyEntries(table), []);
    });
  });
}

/**
 * Rows as a store before the finish sequence held them (SQLite v7, PostgreSQL v6): study `old` has
 * trials finished out of number order and a tie in finished_at, study `other` one finished trial.
 * Plain SQL that both dialects read.
 */
export const BEFORE_FINISH_SEQ_SQL = (() => {
  const study = (name: string) =>
    `('${name}', '{}', 'h', '${JSON.stringify(SPACE)}', 10, 5, 'running', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z')`;
  const trial = (study: string, n: number, state: string, finished: string | null) =>
    `((SELECT id FROM studies WHERE name = '${study}'), ${n}, '${state}', '{"channels":[${8 * (n + 1)},8]}', '${8 * (n + 1)},8', 3, 2, 'random',
      '2024-01-01T00:00:00.000Z', ${finished === null ? 'NULL' : `'2024-01-01T00:00:${finished}.000Z'`})`;
  return `
    INSERT INTO studies (name, config, config_hash, space, base_macs, base_params, state, created_at, updated_at) VALUES ${study('old')}, ${study('other')};
    INSERT INTO trials (study_id, number, state, candidate, key, macs, params, controller, created_at, finished_at) VALUES
      ${trial('old', 0, 'complete', '03')}, ${trial('old', 1, 'failed', '01')}, ${trial('old', 2, 'waiting', null)},
      ${trial('old', 3, 'complete', '01')}, ${trial('other', 0, 'complete', '09')};`;
})();

/** After migrating BEFORE_FINISH_SEQ_SQL: numbered by (finished_at, number) per study; the next finish continues the sequence. */
export async function checkFinishSeqBackfill(s: Store): Promise<void> {
  assert.deepEqual(
    (await s.listTrials('old')).map((t) => [t.number, t.finishSeq]),
    [
      [0, 3],
      [1, 1],
      [2, null],
      [3, 2],
    ],
  );
  assert.deepEqual(
    (await s.listTrials('other')).map((t) => t.finishSeq),
    [1],
  );
  assert.equal((await complete(s, 'old', 2, { proxyAccuracy: 0.5 })).finishSeq, 4, 'the study counter starts after the backfill');
  await rejectsWith(s.completeTrial({ study: 'old', number: 0, token: 0 }, {}), 'TRIAL_IMMUTABLE');
}

/** Rows of the finals table (before finals were trials) for BEFORE_FINISH_SEQ_SQL's study `old`: trials 3 and 0 were finalists. */
export const OLD_FINALS_SQL = `
  INSERT INTO finals (study_id, trial, final_accuracy, latency_ms, latency_host, latency_device, train_engine, epochs, model_path, seconds, created_at) VALUES
    ((SELECT id FROM studies WHERE name = 'old'), 3, 0.91, 0.5, 'driver', 'cpu:x', 'libtorch', 3, '/models/trial-3', 12.5, '2024-01-01T00:01:00.000Z'),
    ((SELECT id FROM studies WHERE name = 'old'), 0, 0.88, NULL, NULL, NULL, NULL, 1, NULL, 4, '2024-01-01T00:02:00.000Z');`;

/** After migrating BEFORE_FINISH_SEQ_SQL + OLD_FINALS_SQL: each final is a complete last-rung trial, numbered and finished after the study's trials. */
export async function checkFinalsMigrated(s: Store): Promise<void> {
  const trials = await s.listTrials('old');
  assert.deepEqual(
    trials.filter((t) => t.stage === 'finetune').map((t) => [t.number, t.parent, t.key, t.state, t.finishSeq, t.metrics.finalAccuracy]),
    [
      [4, 3, 'finetune:3:32,8', 'complete', 4, 0.91],
      [5, 0, 'finetune:0:8,8', 'complete', 5, 0.88],
    ],
  );
  const finals = finalsOf('old', trials, '/art/old');
  assert.deepEqual(
    finals.map((f) => [f.trial, f.finalAccuracy, f.epochs, f.modelPath, f.latencyMs, f.latencyHost ?? null, f.trainEngine ?? null, f.seconds, f.fromTrial]),
    [
      [0, 0.88, 1, null, null, null, null, 4, 5],
      [3, 0.91, 3, '/models/trial-3', 0.5, 'driver', 'libtorch', 12.5, 4],
    ],
  );
  assert.equal((await complete(s, 'old', 2, { proxyAccuracy: 0.5 })).finishSeq, 6, 'the study counter continues after the migrated finals');
  assert.equal((await s.listTrials('other')).length, 1, 'another study is left alone');
}
