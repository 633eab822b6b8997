/**
 * The parts of the study loop, each on its own: the driver with a fake worker, a worker against a
 * fake store clock (lease expiry, fencing), the failure policy, lineage keys, and runStudy's
 * promise that neither a failing evaluator nor a failing store leaves the evaluator open.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { ResolvedConfig } from '../src/config/index.js';
import type { Controller, Observation, Proposal } from '../src/controllers/types.js';
import { isAutopruneError } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import { type Candidate, withinTarget } from '../src/core/space.js';
import type { Json, TrialState } from '../src/core/types.js';
import type { EvalRequest, EvalResult, Evaluator } from '../src/evaluators/types.js';
import type { Analysis } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { MemoryStore } from '../src/store/memory.js';
import type { Store, TrialLease, TrialRecord } from '../src/store/types.js';
import { Driver, toldNumbers, toldRuns } from '../src/study/driver.js';
import { ancestors, trialKey } from '../src/study/lineage.js';
import { DriverLoop } from '../src/study/loop.js';
import { FailurePolicy, firstLine } from '../src/study/policy.js';
import { ProgressTally } from '../src/study/progress.js';
import { runStudy, studySpace } from '../src/study/run.js';
import { Wakeup } from '../src/study/signals.js';
import { NumberRuns, TrialIndex } from '../src/study/view.js';
import { evalRequest, evaluateClaim, runWorker } from '../src/study/worker.js';
import { addTrial, newStudy, newTrial, rejectsWith } from './store-contract.js';
import { tinyStudy } from './tiny-study.js';

let analysis: Analysis;
let cfg: ResolvedConfig;

before(async () => {
  ({ analysis, cfg } = await tinyStudy('parts', 6, { maxConsecutiveFailures: 3 }));
});

/** Proposes the candidates of `plan` in order (with their stage/parent); remembers what it was told. */
class ScriptedController implements Controller {
  readonly name = 'scripted';
  private next = 0;
  readonly told: Observation[] = [];
  constructor(private readonly plan: readonly (Omit<Proposal, 'meta'> & { meta?: Proposal['meta'] })[]) {}
  ask(n: number): Proposal[] {
    const out = this.plan.slice(this.next, this.next + n).map((p, k) => ({ ...p, meta: { ...p.meta, i: this.next + k } }));
    this.next += out.length;
    return out;
  }
  tell(o: readonly Observation[]): void {
    this.told.push(...o);
  }
  done(): boolean {
    return this.next >= this.plan.length;
  }
  snapshot(): Json {
    return { next: this.next };
  }
  restore(s: Json): void {
    this.next = (s as { next: number }).next;
  }
}

const cand = (...channels: number[]): Candidate => ({ channels });
const fakeCost = (c: Candidate) => ({ macs: c.channels.reduce((a, b) => a + b, 0), params: c.channels.length });

describe('lineage keys', () => {
  test('a proxy trial of the base model keeps the plain candidate key; stage and parent make distinct keys', () => {
    const c = cand(8, 16);
    assert.equal(trialKey(c), '8,16');
    assert.equal(trialKey(c, 'proxy', null), '8,16');
    assert.equal(trialKey(c, 'adapt', null), 'adapt:base:8,16');
    assert.equal(trialKey(c, 'adapt', 3), 'adapt:3:8,16');
    assert.equal(trialKey(c, 'proxy', 3), 'proxy:3:8,16');
    const keys = new Set([trialKey(c), trialKey(c, 'adapt'), trialKey(c, 'adapt', 3), trialKey(c, 'adapt', 4), trialKey(c, 'proxy', 3)]);
    assert.equal(keys.size, 5);
  });

  test('ancestors walks parents nearest first', () => {
    const t = (number: number, parent: number | null) => ({ number, parent }) as TrialRecord;
    const all = new Map([t(0, null), t(1, 0), t(2, 1), t(3, null)].map((x) => [x.number, x]));
    assert.deepEqual(ancestors(all.get(2)!, all), [1, 0]);
    assert.deepEqual(ancestors(all.get(3)!, all), []);
  });
});

describe('failure policy', () => {
  const f = (number: number, error: string | null) => ({ number, state: error === null ? 'complete' : 'failed', error }) as TrialRecord;
  const stops = (p: FailurePolicy, trials: TrialRecord[], message: string) =>
    assert.throws(
      () => p.observe(trials),
      (e: unknown) => isAutopruneError(e) && e.code === 'TRIALS_FAILING' && e.message === message,
    );

  test("N failures in a row stop with the last error's first line; a success in between resets the count", () => {
    const p = new FailurePolicy({ consecutive: 3 }, 's');
    p.observe([f(0, null), f(1, 'a'), f(2, 'b'), f(3, null), f(4, 'c'), f(5, 'd')]);
    assert.equal(p.consecutiveFailures, 2);
    stops(p, [f(6, 'engine exploded\n    at foo (x.ts:1)')], 'Study `s` stopped: 3 trials failed in a row (last, trial 6: engine exploded)');
  });

  test('a run whose first trials all fail stops early, before the consecutive limit', () => {
    const p = new FailurePolicy({ consecutive: 5, first: 3 }, 's');
    p.observe([f(0, 'x'), f(1, 'y')]);
    stops(
      p,
      [f(2, 'kernel X\nstack')],
      'Study `s` stopped: its first 3 trials all failed (last error: kernel X); check the model with `autoprune inspect` and a 2-trial search before a long run',
    );
    const q = new FailurePolicy({ consecutive: 5, first: 3 }, 's');
    q.observe([f(0, null), f(1, 'x'), f(2, 'y'), f(3, 'z'), f(4, 'w')]);
    assert.equal(q.consecutiveFailures, 4, 'after a success only the consecutive rule applies');
  });

  test('firstLine keeps the first line, shortened', () => {
    assert.equal(firstLine('a\n  b'), 'a');
    assert.equal(firstLine('x'.repeat(10), 5), 'xxxx…');
  });
});

describe('driver (fake worker)', () => {
  async function setup(plan: ConstructorParameters<typeof ScriptedController>[0], budget = 10) {
    const store = new MemoryStore();
    await store.createStudy(newStudy('a'));
    const lease = await store.acquireDriver('a', 'drv', 60_000);
    const controller = new ScriptedController(plan);
    const driver = new Driver({
      store,
      lease,
      controller,
      told: [],
      costOf: fakeCost,
      policy: new FailurePolicy({ consecutive: 3 }),
      maxAttempts: 2,
      baseMacs: 100,
    });
    const work = new Wakeup();
    const finished = new Wakeup();
    const loop = new DriverLoop({ driver, budget: { trials: budget, deadline: null }, capacity: 2, work, finished, workerError: () => null, pollMs: 5 });
    return { store, controller, driver, loop, work, finished };
  }

  /** Completes every trial it can claim, accuracy = channel sum / 100; failures for keys in `bad`. */
  async function fakeWorker(store: Store, finished: Wakeup, stop: AbortSignal, bad: string[] = []) {
    while (!stop.aborted) {
      const c = await store.claimTrial('a', 'fake', { leaseMs: 60_000 });
      if (c === null) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      if (bad.includes(c.trial.key)) await store.failTrial(c, `bad ${c.trial.key}`);
      else await store.completeTrial(c, { proxyAccuracy: fakeCost(c.trial.candidate).macs / 100, latencyMs: 2 });
      finished.notify();
    }
  }

  test('enqueues each proposal once as a waiting trial with its snapshot; tells each finished trial once', async () => {
    const plan = [{ candidate: cand(8, 8) }, { candidate: cand(16, 8) }, { candidate: cand(8, 8) }, { candidate: cand(24, 8) }];
    const { store, controller, loop, finished } = await setup(plan);
    const stop = new AbortController();
    const w = fakeWorker(store, finished, stop.signal);
    const reason = await loop.run(new AbortController().signal);
    stop.abort();
    await w;
    assert.equal(reason, 'controller');
    const trials = await store.listTrials('a');
    assert.deepEqual(
      trials.map((t) => [t.number, t.key, t.state]),
      [
        [0, '8,8', 'complete'],
        [1, '16,8', 'complete'],
        [2, '24,8', 'complete'],
      ],
      'the repeated candidate was not enqueued again',
    );
    assert.deepEqual(controller.told.map((o) => o.trial).sort(), [0, 0, 1, 2], 'trial 0 again for the repeated proposal');
    assert.deepEqual(
      controller.told.filter((o) => o.trial === 0).map((o) => (o.meta as { i: number }).i),
      [0, 2],
      "each time with the proposal's own meta",
    );
    const o = controller.told.find((x) => x.trial === 1)!;
    assert.deepEqual([o.proxyAccuracy, o.latencyMs, o.params, o.stage, o.parent], [0.24, 2, 2, 'proxy', null]);
    const snap = (await store.latestSnapshot('a'))!.state as { controller: { next: number }; told: number[][] };
    // Written with the last enqueue (the controller's state then, told trials as runs, not a list
    // that grows with the study); trial 2 finished after it, so a resume re-tells it.
    assert.deepEqual(snap, { controller: { next: 4 }, told: [[0, 1]] });
  });

  test('after its first look the driver re-reads only the trials it saw in flight, however many have finished', async () => {
    const plan = Array.from({ length: 12 }, (_, i) => ({ candidate: cand(8 + i, 8) }));
    const { store, controller, loop, finished } = await setup(plan, 12);
    const looks: (readonly number[] | undefined)[] = [];
    const list = store.listTrials.bind(store);
    store.listTrials = (study, filter) => {
      looks.push(filter?.numbers);
      return list(study, filter);
    };
    const stop = new AbortController();
    const w = fakeWorker(store, finished, stop.signal);
    const reason = await loop.run(new AbortController().signal).finally(() => stop.abort());
    await w;
    assert.equal(reason, 'trials');
    assert.equal(looks[0], undefined, 'the first look reads the whole study');
    assert.ok(looks.length > 6, `${looks.length} looks`);
    for (const numbers of looks.slice(1)) assert.ok(numbers !== undefined && numbers.length <= 2, `a later look read ${JSON.stringify(numbers)}`);
    assert.deepEqual(
      controller.told.map((o) => o.trial ?? -1).sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, i) => i),
      'every trial told once',
    );
    assert.ok((await store.listTrials('a')).every((t) => t.state === 'complete'));
  });

  test('the trial budget bounds how many trials are created; at most `capacity` are in flight', async () => {
    const plan = Array.from({ length: 20 }, (_, i) => ({ candidate: cand(8 + i, 8) }));
    const { store, loop, finished } = await setup(plan, 5);
    let maxLive = 0;
    const probe = setInterval(async () => {
      const live = (await store.listTrials('a')).filter((t) => t.state === 'waiting' || t.state === 'running').length;
      maxLive = Math.max(maxLive, live);
    }, 1);
    const stop = new AbortController();
    const w = fakeWorker(store, finished, stop.signal);
    assert.equal(await loop.run(new AbortController().signal), 'trials');
    clearInterval(probe);
    stop.abort();
    await w;
    assert.equal((await store.listTrials('a')).length, 5);
    assert.ok(maxLive <= 2, `${maxLive} in flight`);
  });

  test('a proposal with stage adapt and a parent (by candidate key) becomes such a trial; same channels from the base are another trial', async () => {
    const plan = [
      { candidate: cand(16, 16), meta: { stage: 'adapt' as const } },
      { candidate: cand(8, 8), meta: { stage: 'adapt' as const, parent: '16,16' } },
      { candidate: cand(8, 8) },
    ];
    const { store, controller, loop, finished } = await setup(plan);
    const stop = new AbortController();
    const w = fakeWorker(store, finished, stop.signal);
    await loop.run(new AbortController().signal);
    stop.abort();
    await w;
    const trials = await store.listTrials('a');
    assert.deepEqual(
      trials.map((t) => [t.key, t.stage, t.parent]),
      [
        ['adapt:base:16,16', 'adapt', null],
        ['adapt:0:8,8', 'adapt', 0],
        ['8,8', 'proxy', null],
      ],
    );
    assert.deepEqual(controller.told.find((o) => o.trial === 1)!.parent, 0);
  });

  test('the failure policy stops the loop when trials keep failing', async () => {
    const plan = Array.from({ length: 10 }, (_, i) => ({ candidate: cand(8 + i, 8) }));
    const { store, loop, finished } = await setup(plan);
    const stop = new AbortController();
    const w = fakeWorker(
      store,
      finished,
      stop.signal,
      plan.map((p) => p.candidate.channels.join(',')),
    );
    await assert.rejects(loop.run(new AbortController().signal), /its first \d+ trials all failed \(last error: bad \d+,8\)/);
    stop.abort();
    await w;
  });
});

describe('worker (fake store clock)', () => {
  function instant(advance: () => void = () => undefined): Evaluator & { closed: boolean } {
    return {
      capacity: 1,
      closed: false,
      async evaluate(req: EvalRequest): Promise<EvalResult> {
        advance();
        return { proxyAccuracy: 0.5, latencyMs: 1, cost: fakeCost(req.candidate), timings: { eval: 0.1 }, worker: 'fake' };
      },
      async close() {
        this.closed = true;
      },
    };
  }

  async function storeWith(clock: { t: number }) {
    const store = new MemoryStore({ clock: () => clock.t });
    await store.createStudy(newStudy('a'));
    await addTrial(store, 'a', newTrial([8, 8], { cost: fakeCost(cand(8, 8)) }));
    return store;
  }

  test('a worker completes its claim under its token', async () => {
    const clock = { t: 1e12 };
    const store = await storeWith(clock);
    const claim = (await store.claimTrial('a', 'w', { leaseMs: 1000 }))!;
    const done = await evaluateClaim({ store, study: 'a', name: 'w', evaluator: instant(), leaseMs: 1000, stop: new AbortController().signal }, claim);
    assert.deepEqual([done?.state, done?.metrics.proxyAccuracy], ['complete', 0.5]);
  });

  test('a worker whose lease expired while it evaluated cannot complete late; the trial is re-queued, then done once', async () => {
    const clock = { t: 1e12 };
    const store = await storeWith(clock);
    const logs: string[] = [];
    const claim = (await store.claimTrial('a', 'slow', { leaseMs: 1000 }))!;
    const slow = instant(() => (clock.t += 5000)); // no heartbeat fires: the evaluation "took" 5 s of store time
    const late = await evaluateClaim(
      { store, study: 'a', name: 'slow', evaluator: slow, leaseMs: 1000, heartbeatMs: 60_000, stop: new AbortController().signal, log: (l) => logs.push(l) },
      claim,
    );
    assert.equal(late, null);
    assert.match(logs.join('\n'), /trial 0: result dropped, the lease was lost .*expired 4000 ms ago/);
    assert.equal((await store.getTrial('a', 0))!.state, 'running');
    assert.deepEqual(await store.reapExpired('a', { maxAttempts: 3 }), { requeued: [0], failed: [] });
    const stop = new AbortController();
    const finished: (TrialRecord | null)[] = [];
    await runWorker({
      store,
      study: 'a',
      name: 'fast',
      evaluator: instant(),
      leaseMs: 1000,
      stop: stop.signal,
      pollMs: 1,
      onFinished: (t) => (finished.push(t), stop.abort()),
    });
    const t = (await store.getTrial('a', 0))!;
    assert.deepEqual([t.state, t.worker, t.attempts, finished.length], ['complete', 'fast', 2, 1]);
  });

  test("heartbeats from the main thread keep a long evaluation's lease alive", async () => {
    const store = await storeWith({ t: 0 }).then(async () => {
      const s = new MemoryStore(); // real clock
      await s.createStudy(newStudy('a'));
      await addTrial(s, 'a', newTrial([8, 8], { cost: fakeCost(cand(8, 8)) }));
      return s;
    });
    const claim = (await store.claimTrial('a', 'w', { leaseMs: 150 }))!;
    const beats: TrialLease[] = [];
    const spy = Object.assign(Object.create(store) as Store, { heartbeat: (l: TrialLease, ms: number) => (beats.push(l), store.heartbeat(l, ms)) });
    const slow: Evaluator = {
      capacity: 1,
      close: async () => undefined,
      evaluate: async (req) => (await new Promise((r) => setTimeout(r, 600)), instant().evaluate(req)),
    };
    const done = await evaluateClaim(
      { store: spy, study: 'a', name: 'w', evaluator: slow, leaseMs: 150, heartbeatMs: 40, stop: new AbortController().signal },
      claim,
    );
    assert.equal(done?.state, 'complete', 'the lease (150 ms) outlived the 600 ms evaluation');
    assert.ok(beats.length >= 5, `${beats.length} heartbeats`);
  });

  test('an evaluator error fails the trial with its message', async () => {
    const store = await storeWith({ t: 1e12 });
    const claim = (await store.claimTrial('a', 'w', { leaseMs: 1e9 }))!;
    const broken: Evaluator = {
      capacity: 1,
      close: async () => undefined,
      evaluate: async () => {
        throw new Error('out of memory\n  at x');
      },
    };
    const t = await evaluateClaim({ store, study: 'a', name: 'w', evaluator: broken, leaseMs: 1e9, stop: new AbortController().signal }, claim);
    assert.deepEqual([t?.state, t?.error], ['failed', 'out of memory\n  at x']);
  });

  test("requests name the parent's weights and where to save, inside the store's study folder", async () => {
    const store = new MemoryStore();
    const t = { study: 'a', number: 4, candidate: cand(8), stage: 'adapt', parent: 2 } as TrialRecord;
    const r = evalRequest(store, t);
    const dir = store.artifactDir('a');
    assert.deepEqual(r, {
      trial: 4,
      candidate: cand(8),
      stage: 'adapt',
      parent: { trial: 2, modelDir: `${dir}/trials/2/model` },
      saveTo: `${dir}/trials/4/model`,
    });
    assert.deepEqual(evalRequest(store, { ...t, stage: 'proxy', parent: null }), { trial: 4, candidate: cand(8), stage: 'proxy' });
  });
});

describe('runStudy closes its evaluator whatever stops it', () => {
  class Tracked implements Evaluator {
    readonly capacity = 1;
    closed = 0;
    constructor(private readonly fail: boolean) {}
    async evaluate(req: EvalRequest): Promise<EvalResult> {
      if (this.fail) throw new Error('engine says no');
      const cost = costOf(analysis, req.candidate);
      return { proxyAccuracy: 0.5, latencyMs: 1, cost, timings: {}, worker: 'fake' };
    }
    async close(): Promise<void> {
      this.closed++;
    }
  }
  const run = (store: Store, ev: Evaluator) =>
    runStudy({
      cfg,
      configHash: 'h',
      store,
      analysis,
      baseAccuracy: async () => ({ proxy: 0.9, test: 0.9 }),
      evaluator: async () => ev,
      budget: { trials: 6, deadline: null },
      fresh: false,
      signal: new AbortController().signal,
      log: () => undefined,
      pollMs: 5,
    });

  test('N consecutive failed trials stop the study (TRIALS_FAILING, last error in one line); the study is resumable', async () => {
    const store = new MemoryStore();
    const ev = new Tracked(true);
    await rejectsWith(run(store, ev), 'TRIALS_FAILING', /^Study `parts` stopped: its first 3 trials all failed \(last error: engine says no\)/);
    assert.equal(ev.closed, 1);
    assert.equal((await store.listTrials('parts', { state: 'failed' })).length, 3);
    assert.equal((await store.getStudy('parts'))!.state, 'stopped');
  });

  test('a store error during a completion ends the run with that error and the evaluator closed', async () => {
    class Broken extends MemoryStore {
      override async completeTrial(): Promise<TrialRecord> {
        throw Object.assign(new Error('disk full'), { code: 'SQLITE_FULL' });
      }
    }
    const ev = new Tracked(false);
    await assert.rejects(run(new Broken(), ev), /disk full/);
    assert.equal(ev.closed, 1);
  });

  test('a second driver of the same study is refused while the first holds it', async () => {
    const store = new MemoryStore();
    await store.createStudy({
      ...newStudy('parts'),
      space: {
        groups: analysis.groups,
        options: { minKeepRatio: cfg.space.minKeepRatio, channelStep: studySpace(cfg, analysis).options.channelStep, skip: [] },
      },
      baseCost: costOf(analysis, null),
    });
    await store.acquireDriver('parts', 'another-host:1', 60_000);
    await rejectsWith(run(store, new Tracked(false)), 'STUDY_BUSY', /`another-host:1`/);
  });
});

test('told trials are stored as runs and read back, from runs or from the plain list older snapshots hold', () => {
  const cases: [string, number[], [number, number][]][] = [
    ['none', [], []],
    ['one', [4], [[4, 4]]],
    ['contiguous', [0, 1, 2, 3], [[0, 3]]],
    [
      'gaps, unsorted',
      [7, 0, 2, 1, 5, 8, 9],
      [
        [0, 2],
        [5, 5],
        [7, 9],
      ],
    ],
  ];
  for (const [name, told, runs] of cases) {
    assert.deepEqual(toldRuns(told), runs, name);
    assert.deepEqual(
      toldNumbers(runs),
      [...told].sort((a, b) => a - b),
      name,
    );
  }
  assert.deepEqual(toldNumbers([0, 1, 3]), [0, 1, 3], 'the plain list of older snapshots');
  assert.equal(JSON.stringify(toldRuns(Array.from({ length: 10_000 }, (_, i) => i))), '[[0,9999]]');
});

test('number runs hold the same numbers as a set, in a few runs', () => {
  const rng = new Rng(7);
  const runs = new NumberRuns();
  const set = new Set<number>();
  for (let i = 0; i < 3000; i++) {
    const n = rng.int(400);
    runs.add(n);
    set.add(n);
    assert.equal(runs.size, set.size);
  }
  for (let n = -1; n <= 401; n++) assert.equal(runs.has(n), set.has(n), `${n}`);
  assert.deepEqual(runs.runs(), toldRunsNaive(set));
  const inOrder = new NumberRuns([0, 1, 2, 4, 3, 6]);
  assert.deepEqual(inOrder.runs(), [
    [0, 4],
    [6, 6],
  ]);
});

/** The reference: sort, then cut where a number is not the one before plus 1. */
function toldRunsNaive(numbers: Iterable<number>): [number, number][] {
  const out: [number, number][] = [];
  for (const n of [...numbers].sort((a, b) => a - b)) {
    const last = out.at(-1);
    if (last && last[1] + 1 === n) last[1] = n;
    else out.push([n, n]);
  }
  return out;
}

test("a proposal's parent is the latest adapt trial of its channels, a complete one first, then the batch being planned", () => {
  const rec = (number: number, channels: number[], state: TrialState, stage: 'adapt' | 'proxy' = 'adapt') =>
    ({
      number,
      key: `${stage}:${number}`,
      candidate: cand(...channels),
      stage,
      state,
      parent: null,
      meta: null,
      metrics: {},
      finishedAt: null,
    }) as unknown as TrialRecord;
  const index = new TrialIndex(null);
  for (const t of [
    rec(0, [8, 8], 'complete'),
    rec(1, [8, 8], 'running'),
    rec(2, [8, 8], 'failed'),
    rec(3, [4, 4], 'waiting'),
    rec(4, [4, 4], 'complete', 'proxy'),
  ]) {
    index.add(t);
  }
  const planned = [{ ...rec(5, [4, 4], 'waiting'), number: 5 }];
  assert.equal(index.parentOf('8,8', planned), 0, 'the complete one, though a later one runs');
  assert.equal(index.parentOf('4,4', []), 3, 'none complete: the latest that has not failed');
  assert.equal(index.parentOf('4,4', planned), 5, 'a trial of the batch comes after every stored one');
  assert.equal(index.parentOf('2,2', planned), null, 'none: the base model');
  assert.deepEqual(index.liveNumbers(), [1, 3]);
  const done = index.update([rec(1, [8, 8], 'complete'), rec(3, [4, 4], 'failed')]);
  assert.deepEqual(
    done.map((t) => t.number),
    [1, 3],
  );
  assert.equal(index.parentOf('8,8', []), 1, 'the latest complete one');
  assert.equal(index.parentOf('4,4', []), null, 'its only adapt trial failed');
  assert.deepEqual(index.liveNumbers(), []);
  assert.deepEqual([index.count, index.searchCount, index.numberOfKey('adapt:2')], [5, 5, 2]);
});

test('progress counted as trials finish equals the count over all trials', () => {
  const rng = new Rng(3);
  const c = { budget: 60, baseMacs: 100, targets: [0.3, 0.5, 0.7], window: 0.05 };
  const trials = Array.from(
    { length: 50 },
    (_, i) =>
      ({
        number: i,
        state: rng.int(5) === 0 ? 'failed' : 'complete',
        cost: { macs: 20 + rng.int(60), params: 1 },
        metrics: { proxyAccuracy: rng.next() },
      }) as unknown as TrialRecord,
  );
  const tally = new ProgressTally(c);
  for (let i = 0; i < trials.length; i += 7) tally.add(trials.slice(i, i + 7));
  const p = tally.progress(2, { finishedThisRun: 10, secondsThisRun: 20 });
  const best = c.targets.map((target) => {
    const ok = trials.filter((t) => t.state === 'complete' && withinTarget(t.cost.macs / c.baseMacs, target, c.window)).map((t) => t.metrics.proxyAccuracy!);
    return { target, accuracy: ok.length ? Math.max(...ok) : null };
  });
  assert.deepEqual(p, { finished: 50, budget: 60, running: 2, etaSeconds: 20, best });
  assert.ok(best.some((b) => b.accuracy !== null) && best[0].accuracy !== best[2].accuracy, 'the targets differ');
});
