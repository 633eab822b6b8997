/**
 * The Store contract (STYLE.md principle 3): one suite, run against every backend by
 * test/store.test.ts. Each test gets a fresh, empty store from `make`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isAutopruneError, type ErrorCode } from '../src/core/errors.js';
import { candidateKey, type SearchSpace } from '../src/core/space.js';
import type { NewTrial, Store, StudyRecord } from '../src/store/types.js';

export const SPACE: SearchSpace = {
  groups: [
    { id: 'conv1', channels: 32, layers: ['conv1', 'bn1'] },
    { id: 'stage2.conv1', channels: 64, layers: ['stage2.conv1', 'stage2.bn1', 'stage2.dw'] },
  ],
  options: { minKeepRatio: 0.25, channelStep: 8, skip: [] },
};

export function newStudy(name: string): Omit<StudyRecord, 'createdAt' | 'updatedAt' | 'state'> {
  return {
    name,
    configHash: `hash-of-${name}`,
    // Values that a lossy encoding would damage: a non-terminating binary fraction, 2^53 - 1, nesting.
    config: { search: { controller: 'random', trials: 40, targets: [0.5, 0.3] }, lr: 0.1 + 0.2, big: 2 ** 53 - 1 },
    space: SPACE,
    baseCost: { macs: 22_413_312, params: 94_123 },
    baseProxyAccuracy: 0.9123456789012345,
    baseTestAccuracy: null,
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

export function storeContract(name: string, make: () => Promise<Store>): void {
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

  describe(`Store contract: ${name}`, () => {
    withStore('createStudy round-trips every field; getStudy and listStudies see it', async (s) => {
      const created = await s.createStudy(newStudy('a'));
      assert.deepEqual({ ...created, createdAt: 'x', updatedAt: 'x' }, {
        ...newStudy('a'),
        state: 'running',
        createdAt: 'x',
        updatedAt: 'x',
      });
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
      for (let i = 0; i < 5; i++) nums.push((await s.createTrial('a', newTrial([8 * (i + 1), 64]))).number);
      assert.deepEqual(nums, [0, 1, 2, 3, 4]);
      assert.equal((await s.createTrial('b', newTrial([8, 8]))).number, 0);
      const listed = await s.listTrials('a');
      assert.deepEqual(
        listed.map((t) => [t.number, t.candidate.channels[0]]),
        [[0, 8], [1, 16], [2, 24], [3, 32], [4, 40]],
      );
    });

    withStore('createTrial stores a waiting trial and round-trips its fields', async (s) => {
      await s.createStudy(newStudy('a'));
      const input = newTrial([24, 48], { meta: { target: 0.3, nested: [1, { x: 0.1 + 0.2 }] } });
      const t = await s.createTrial('a', input);
      assert.deepEqual(
        { ...t, createdAt: 'x' },
        {
          ...input,
          study: 'a',
          number: 0,
          state: 'waiting',
          metrics: {},
          error: null,
          worker: null,
          createdAt: 'x',
          startedAt: null,
          finishedAt: null,
        },
      );
      assert.match(t.createdAt, ISO);
      assert.deepEqual(await s.getTrial('a', 0), t);
      const { meta: _drop, ...noMeta } = newTrial([8, 8]);
      const bare = await s.createTrial('a', noMeta);
      assert.equal('meta' in bare, false, 'a trial created without meta has none');
      await rejectsWith(s.createTrial('zz', input), 'STUDY_NOT_FOUND');
    });

    withStore('state transitions: waiting -> running -> complete, and -> failed', async (s) => {
      await s.createStudy(newStudy('a'));
      await s.createTrial('a', newTrial([8, 8]));
      await s.createTrial('a', newTrial([16, 8]));
      const running = await s.startTrial('a', 0, 'worker-1');
      assert.equal(running.state, 'running');
      assert.equal(running.worker, 'worker-1');
      assert.match(running.startedAt!, ISO);
      const metrics = { proxyAccuracy: 0.8125, latencyMs: 1.25, timings: { prune: 0.1, calibrate: 2.3 } };
      const done = await s.completeTrial('a', 0, metrics);
      assert.equal(done.state, 'complete');
      assert.deepEqual(done.metrics, metrics);
      assert.match(done.finishedAt!, ISO);
      assert.equal(done.worker, 'worker-1');
      assert.deepEqual(await s.getTrial('a', 0), done);

      await s.startTrial('a', 1, 'worker-2');
      const failed = await s.failTrial('a', 1, 'out of memory');
      assert.equal(failed.state, 'failed');
      assert.equal(failed.error, 'out of memory');
      assert.deepEqual(failed.metrics, {});
      assert.match(failed.finishedAt!, ISO);
    });

    withStore('a waiting trial may complete or fail without a start; a running one cannot be claimed again', async (s) => {
      await s.createStudy(newStudy('a'));
      for (let i = 0; i < 3; i++) await s.createTrial('a', newTrial([8 * (i + 1), 8]));
      const c = await s.completeTrial('a', 0, { proxyAccuracy: 0.5 });
      assert.deepEqual([c.state, c.startedAt], ['complete', null]);
      assert.equal((await s.failTrial('a', 1, 'bad')).state, 'failed');
      await s.startTrial('a', 2, 'w1');
      await rejectsWith(s.startTrial('a', 2, 'w2'), 'STORE_ERROR', /already running on worker `w1`/);
      assert.equal((await s.getTrial('a', 2))!.worker, 'w1');
    });

    withStore('finished trials are immutable: every write throws TRIAL_IMMUTABLE and changes nothing', async (s) => {
      await s.createStudy(newStudy('a'));
      await s.createTrial('a', newTrial([8, 8]));
      await s.createTrial('a', newTrial([16, 8]));
      await s.startTrial('a', 0, 'w');
      const done = await s.completeTrial('a', 0, { proxyAccuracy: 0.7 });
      const failed = await s.failTrial('a', 1, 'boom');

      await rejectsWith(s.completeTrial('a', 0, { proxyAccuracy: 0.99 }), 'TRIAL_IMMUTABLE', /`complete`/);
      await rejectsWith(s.failTrial('a', 0, 'late'), 'TRIAL_IMMUTABLE');
      await rejectsWith(s.startTrial('a', 0, 'w2'), 'TRIAL_IMMUTABLE');
      await rejectsWith(s.completeTrial('a', 1, { proxyAccuracy: 0.99 }), 'TRIAL_IMMUTABLE', /`failed`/);
      await rejectsWith(s.failTrial('a', 1, 'again'), 'TRIAL_IMMUTABLE');
      await rejectsWith(s.startTrial('a', 1, 'w2'), 'TRIAL_IMMUTABLE');
      assert.deepEqual(await s.requeueRunning('a'), []);

      assert.deepEqual(await s.getTrial('a', 0), done);
      assert.deepEqual(await s.getTrial('a', 1), failed);
    });

    withStore('unknown study -> STUDY_NOT_FOUND, unknown trial -> TRIAL_NOT_FOUND (getTrial -> null)', async (s) => {
      await s.createStudy(newStudy('a'));
      await s.createTrial('a', newTrial([8, 8]));
      await rejectsWith(s.startTrial('zz', 0, 'w'), 'STUDY_NOT_FOUND', /`zz`/);
      await rejectsWith(s.listTrials('zz'), 'STUDY_NOT_FOUND');
      await rejectsWith(s.getTrial('zz', 0), 'STUDY_NOT_FOUND');
      await rejectsWith(s.findTrialByKey('zz', 'k'), 'STUDY_NOT_FOUND');
      await rejectsWith(s.latestSnapshot('zz'), 'STUDY_NOT_FOUND');
      await rejectsWith(s.listFinals('zz'), 'STUDY_NOT_FOUND');
      await rejectsWith(s.deleteStudy('zz'), 'STUDY_NOT_FOUND');
      await rejectsWith(s.startTrial('a', 7, 'w'), 'TRIAL_NOT_FOUND', /7/);
      await rejectsWith(s.completeTrial('a', 7, {}), 'TRIAL_NOT_FOUND');
      await rejectsWith(s.failTrial('a', 7, 'x'), 'TRIAL_NOT_FOUND');
      assert.equal(await s.getTrial('a', 7), null);
    });

    withStore('requeueRunning moves only running trials back to waiting and returns their numbers', async (s) => {
      await s.createStudy(newStudy('a'));
      await s.createStudy(newStudy('b'));
      for (let i = 0; i < 5; i++) await s.createTrial('a', newTrial([8 * (i + 1), 8]));
      await s.createTrial('b', newTrial([8, 8]));
      await s.startTrial('a', 1, 'w');
      await s.startTrial('a', 2, 'w');
      await s.startTrial('a', 3, 'w');
      await s.completeTrial('a', 2, { proxyAccuracy: 0.5 });
      await s.startTrial('b', 0, 'w');
      assert.deepEqual(await s.requeueRunning('a'), [1, 3]);
      assert.deepEqual(
        (await s.listTrials('a')).map((t) => t.state),
        ['waiting', 'waiting', 'complete', 'waiting', 'waiting'],
      );
      const requeued = (await s.getTrial('a', 1))!;
      assert.deepEqual([requeued.worker, requeued.startedAt], [null, null]);
      assert.equal((await s.getTrial('b', 0))!.state, 'running', 'other studies are untouched');
      assert.deepEqual(await s.requeueRunning('a'), []);
      assert.equal((await s.startTrial('a', 1, 'w2')).state, 'running', 'a requeued trial can be claimed again');
    });

    withStore('findTrialByKey prefers a complete trial, else any other, else null', async (s) => {
      await s.createStudy(newStudy('a'));
      const k = newTrial([16, 16]);
      await s.createTrial('a', k); // 0: failed
      await s.createTrial('a', k); // 1: complete
      await s.createTrial('a', k); // 2: waiting
      await s.failTrial('a', 0, 'x');
      await s.completeTrial('a', 1, { proxyAccuracy: 0.6 });
      const hit = await s.findTrialByKey('a', k.key);
      assert.deepEqual([hit?.number, hit?.state], [1, 'complete']);

      const other = newTrial([24, 8]);
      await s.createTrial('a', other); // 3: failed
      await s.createTrial('a', other); // 4: waiting
      await s.failTrial('a', 3, 'x');
      assert.equal((await s.findTrialByKey('a', other.key))?.number, 4, 'a live trial beats a failed one');
      const onlyFailed = newTrial([32, 8]);
      await s.createTrial('a', onlyFailed); // 5
      await s.failTrial('a', 5, 'x');
      assert.equal((await s.findTrialByKey('a', onlyFailed.key))?.state, 'failed');
      assert.equal(await s.findTrialByKey('a', 'no-such-key'), null);
    });

    withStore('snapshots: none -> null, the last saved wins, state round-trips', async (s) => {
      await s.createStudy(newStudy('a'));
      await s.createStudy(newStudy('b'));
      assert.equal(await s.latestSnapshot('a'), null);
      await s.saveSnapshot('a', 10, { population: [[8, 16]], rng: 'abc' });
      await s.saveSnapshot('a', 20, { population: [[8, 16], [24, 32]], rng: 'def', sigma: 0.1 + 0.2 });
      await s.saveSnapshot('b', 99, { other: true });
      const snap = await s.latestSnapshot('a');
      assert.deepEqual({ ...snap!, createdAt: 'x' }, {
        study: 'a',
        told: 20,
        state: { population: [[8, 16], [24, 32]], rng: 'def', sigma: 0.1 + 0.2 },
        createdAt: 'x',
      });
      assert.match(snap!.createdAt, ISO);
      await s.saveSnapshot('a', 5, { older: true });
      assert.equal((await s.latestSnapshot('a'))!.told, 5, 'the last saved wins even with a smaller `told`');
    });

    withStore('finals are saved and listed by trial; saving again replaces; unknown trial refused', async (s) => {
      await s.createStudy(newStudy('a'));
      for (let i = 0; i < 3; i++) await s.createTrial('a', newTrial([8 * (i + 1), 8]));
      const f2 = { study: 'a', trial: 2, finalAccuracy: 0.91, latencyMs: 0.5, epochs: 3, modelPath: '/tmp/m2', seconds: 12.5 };
      const f0 = { study: 'a', trial: 0, finalAccuracy: 0.88, latencyMs: null, epochs: 3, modelPath: null, seconds: 11 };
      const saved = await s.saveFinal(f2);
      assert.deepEqual({ ...saved, createdAt: 'x' }, { ...f2, createdAt: 'x' });
      assert.match(saved.createdAt, ISO);
      await s.saveFinal(f0);
      assert.deepEqual(
        (await s.listFinals('a')).map((f) => [f.trial, f.finalAccuracy, f.modelPath]),
        [[0, 0.88, null], [2, 0.91, '/tmp/m2']],
      );
      await s.saveFinal({ ...f0, finalAccuracy: 0.89 });
      assert.deepEqual((await s.listFinals('a')).map((f) => f.finalAccuracy), [0.89, 0.91]);
      await rejectsWith(s.saveFinal({ ...f0, trial: 9 }), 'TRIAL_NOT_FOUND');
      await rejectsWith(s.saveFinal({ ...f0, study: 'zz' }), 'STUDY_NOT_FOUND');
    });

    withStore('deleteStudy removes its trials, snapshots and finals but not other studies\'', async (s) => {
      for (const name of ['a', 'b']) {
        await s.createStudy(newStudy(name));
        await s.createTrial(name, newTrial([8, 8]));
        await s.createTrial(name, newTrial([16, 8]));
        await s.completeTrial(name, 0, { proxyAccuracy: 0.5 });
        await s.saveSnapshot(name, 1, { name });
        await s.saveFinal({ study: name, trial: 0, finalAccuracy: 0.6, latencyMs: null, epochs: 1, modelPath: null, seconds: 1 });
      }
      const bTrials = await s.listTrials('b');
      await s.deleteStudy('a');
      assert.equal(await s.getStudy('a'), null);
      await rejectsWith(s.listTrials('a'), 'STUDY_NOT_FOUND');
      assert.deepEqual(await s.listTrials('b'), bTrials);
      assert.deepEqual((await s.latestSnapshot('b'))!.state, { name: 'b' });
      assert.equal((await s.listFinals('b')).length, 1);

      // A study recreated under the same name starts empty.
      await s.createStudy(newStudy('a'));
      assert.deepEqual(await s.listTrials('a'), []);
      assert.equal(await s.latestSnapshot('a'), null);
      assert.deepEqual(await s.listFinals('a'), []);
      assert.equal((await s.createTrial('a', newTrial([8, 8]))).number, 0);
    });

    withStore('listTrials filters by state', async (s) => {
      await s.createStudy(newStudy('a'));
      for (let i = 0; i < 6; i++) await s.createTrial('a', newTrial([8 * (i + 1), 8]));
      await s.startTrial('a', 1, 'w');
      await s.startTrial('a', 4, 'w');
      await s.completeTrial('a', 2, { proxyAccuracy: 0.1 });
      await s.completeTrial('a', 5, { proxyAccuracy: 0.2 });
      await s.failTrial('a', 3, 'x');
      const nums = async (state: 'waiting' | 'running' | 'complete' | 'failed') =>
        (await s.listTrials('a', { state })).map((t) => t.number);
      assert.deepEqual(await nums('waiting'), [0]);
      assert.deepEqual(await nums('running'), [1, 4]);
      assert.deepEqual(await nums('complete'), [2, 5]);
      assert.deepEqual(await nums('failed'), [3]);
      assert.equal((await s.listTrials('a')).length, 6);
    });

    withStore('callers cannot change stored state through objects they passed in or got back', async (s) => {
      const input = newStudy('a') as { config: { search: { trials: number } } } & ReturnType<typeof newStudy>;
      await s.createStudy(input);
      input.config.search.trials = 1;
      const channels = [8, 16];
      const t = await s.createTrial('a', newTrial(channels));
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

    withStore('invalid arguments are refused with INVALID_ARGUMENT, quoting the value', async (s) => {
      await rejectsWith(s.createStudy({ ...newStudy('a'), name: '' }), 'INVALID_ARGUMENT');
      await rejectsWith(s.createStudy({ ...newStudy('a'), baseCost: { macs: Number.NaN, params: 1 } }), 'INVALID_ARGUMENT', /macs/);
      await s.createStudy(newStudy('a'));
      await s.createTrial('a', newTrial([8, 8]));
      await rejectsWith(s.completeTrial('a', 0, { proxyAccuracy: Number.NaN }), 'INVALID_ARGUMENT', /proxyAccuracy/);
      await rejectsWith(s.completeTrial('a', 0, { timings: { eval: Infinity } }), 'INVALID_ARGUMENT', /timings\.eval/);
      await rejectsWith(s.getTrial('a', 1.5), 'INVALID_ARGUMENT', /1\.5/);
      assert.equal((await s.getTrial('a', 0))!.state, 'waiting', 'a refused write changes nothing');
    });

    test('a closed store refuses calls with STORE_ERROR; closing twice is fine', async () => {
      const s = await make();
      await s.close();
      await s.close();
      await rejectsWith(s.listStudies(), 'STORE_ERROR', /closed/);
    });
  });
}
