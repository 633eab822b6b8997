/**
 * The search loop in-process (runStudy with the in-memory store and a stand-in evaluator), for
 * what child-process tests cannot reach cheaply: the memo (a stored candidate is never evaluated
 * again, even when a controller re-proposes it) and budget accounting across runs.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { type ControllerInput as ControllerSpec, type ResolvedConfig, resolveControllerSpec } from '../src/config/index.js';
import type { Controller, Observation } from '../src/controllers/types.js';
import { AutopruneError } from '../src/core/errors.js';
import { type Candidate, candidateKey } from '../src/core/space.js';
import type { EvalRequest, EvalResult, Evaluator } from '../src/evaluators/types.js';
import type { Analysis } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { MemoryStore } from '../src/store/memory.js';
import type { Store } from '../src/store/types.js';
import { studyFinals } from '../src/study/finals.js';
import { runStudy } from '../src/study/run.js';
import { tinyStudy } from './tiny-study.js';

let analysis: Analysis;
let cfg: ResolvedConfig;

before(async () => {
  ({ analysis, cfg } = await tinyStudy('loop', 8));
});

/** Accuracy = a pure function of the candidate, so reruns are comparable; counts evaluations per key. */
class FakeEvaluator implements Evaluator {
  readonly capacity = 1;
  readonly evaluated: string[] = [];
  async evaluate(req: EvalRequest): Promise<EvalResult> {
    this.evaluated.push(candidateKey(req.candidate));
    const cost = costOf(analysis, req.candidate);
    return { proxyAccuracy: cost.macs / costOf(analysis, null).macs, latencyMs: 1, cost, timings: {}, worker: 'fake' };
  }
  async close(): Promise<void> {}
}

/** A store that loses every controller snapshot: as if the process died before each one was written. */
class ForgetfulStore extends MemoryStore {
  override async latestSnapshot(): Promise<null> {
    return null;
  }
}

/** Every evaluation throws, as with a model the engine cannot run. */
class BrokenEvaluator extends FakeEvaluator {
  closed = 0;
  override async evaluate(req: EvalRequest): Promise<EvalResult> {
    this.evaluated.push(candidateKey(req.candidate));
    throw new Error(`kernel X cannot run layer ${this.evaluated.length}\nstack line`);
  }
  override async close(): Promise<void> {
    this.closed++;
  }
}

async function run(store: Store, ev: FakeEvaluator, trials: number, controller: ControllerSpec = cfg.search.controller, base: ResolvedConfig = cfg) {
  return runStudy({
    cfg: { ...base, search: { ...base.search, controller: resolveControllerSpec(controller), budget: { ...base.search.budget, trials } } },
    configHash: 'h',
    store,
    analysis,
    baseAccuracy: async () => ({ proxy: 0.9, test: 0.9 }),
    evaluator: async () => ev,
    budget: { trials, deadline: null },
    fresh: false,
    signal: new AbortController().signal,
    log: () => undefined,
    // Channel importance for `global` (plain data, as search passes it), shaped differently per group
    // so its thresholds are not uniform's ratios.
    controllerData: { importance: analysis.groups.map((g, k) => Array.from({ length: g.channels }, (_, i) => (i + 1) ** (k + 1))) },
  });
}

test('memo: a controller that re-proposes stored candidates gets their results without re-evaluation', async () => {
  const store = new ForgetfulStore();
  const first = new FakeEvaluator();
  await run(store, first, 5);
  assert.equal(first.evaluated.length, 5);
  // No snapshot survived: the controller restarts from its seed and proposes the same 5 first.
  const second = new FakeEvaluator();
  const summary = await run(store, second, 8);
  const all = await store.listTrials('loop');
  assert.deepEqual(
    all.map((t) => t.number),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  assert.equal(new Set(all.map((t) => t.key)).size, 8, 'every stored candidate is distinct');
  assert.equal(second.evaluated.length, 3, 'only the 3 new candidates were evaluated');
  assert.ok(second.evaluated.every((k) => !first.evaluated.includes(k)));
  assert.equal(summary.evaluated, 3);
});

test('with snapshots kept, a resumed run continues the sequence an uninterrupted run would have produced', async () => {
  const whole = new MemoryStore();
  await run(whole, new FakeEvaluator(), 8);
  const split = new MemoryStore();
  await run(split, new FakeEvaluator(), 3);
  const rest = new FakeEvaluator();
  await run(split, rest, 8);
  assert.equal(rest.evaluated.length, 5);
  const keys = async (s: Store) => (await s.listTrials('loop')).map((t) => t.key);
  assert.deepEqual(await keys(split), await keys(whole));
  const baseline = (await whole.listTrials('loop')).slice(0, 2);
  assert.deepEqual(
    baseline.map((t) => t.controller),
    ['uniform', 'uniform'],
  );
  assert.deepEqual(
    baseline.map((t) => (t.meta as { target: number }).target),
    [0.5, 0.3],
  );
  const c: Candidate = baseline[0].candidate;
  assert.ok(Math.abs(costOf(analysis, c).macs / costOf(analysis, null).macs - 0.5) <= cfg.search.window);
});

test('a controller that waits for its results before proposing more (greedy) is asked again when they arrive, not given up on', async () => {
  // NetAdapt proposes one iteration at a time; with 2 workers the last proposal of an odd-sized
  // iteration runs alone, and an ask then returns nothing until its result is told. That empty
  // ask once ended the study after greedy's second iteration (23 of 96 trials, targets unreached).
  const store = new MemoryStore();
  // Evaluations that take a while, so the driver asks while the last one is still running.
  const ev = new (class extends FakeEvaluator {
    override async evaluate(req: EvalRequest): Promise<EvalResult> {
      await new Promise((r) => setTimeout(r, 5));
      return super.evaluate(req);
    }
  })();
  const greedy = {
    ...cfg,
    search: { ...cfg.search, controller: resolveControllerSpec({ name: 'greedy', initialReduction: 0.1 }), baseline: false, budget: { trials: 400 } },
  };
  const summary = await runStudy({
    cfg: greedy,
    configHash: 'h',
    store,
    analysis,
    baseAccuracy: async () => ({ proxy: 0.9, test: 0.9 }),
    evaluator: async () => ev,
    localWorkers: 2,
    budget: { trials: 400, deadline: null },
    fresh: false,
    signal: new AbortController().signal,
    log: () => undefined,
  });
  const trials = await store.listTrials('loop');
  const iterations = new Set(trials.map((t) => (t.meta as { iteration: number }).iteration));
  const smallest = Math.min(...trials.map((t) => t.cost.macs / costOf(analysis, null).macs));
  assert.equal(summary.reason, 'controller');
  assert.ok(iterations.size > 3, `only ${iterations.size} iterations`);
  assert.ok(smallest <= 0.3 + cfg.search.window, `greedy stopped at ${smallest} of the base MACs, short of the 30% target`);
});

test("a controller's long tell does not cost the driver its lease: renewals run between told trials", async () => {
  // Each told trial blocks the thread for 0.6 s (rl's DDPG updates do so for seconds); four finish
  // together, so one batched tell blocked 2.4 s, longer than the 2 s lease. Told one at a time,
  // a block ends at most 0.67 s (the renewal period) + 0.6 s after the last renewal.
  const store = new MemoryStore();
  const ev = new (class extends FakeEvaluator {
    override async evaluate(req: EvalRequest): Promise<EvalResult> {
      await new Promise((r) => setTimeout(r, 20));
      return super.evaluate(req);
    }
  })();
  const slow = (c: Controller): Controller =>
    Object.assign(Object.create(c) as Controller, {
      tell(obs: readonly Observation[]) {
        const until = Date.now() + 600 * obs.length;
        while (Date.now() < until);
        c.tell(obs);
      },
    });
  const summary = await runStudy({
    cfg: { ...cfg, run: { ...cfg.run, leaseSeconds: 2 }, search: { ...cfg.search, baseline: false, budget: { trials: 8 } } },
    configHash: 'h',
    store,
    analysis,
    baseAccuracy: async () => ({ proxy: 0.9, test: 0.9 }),
    evaluator: async () => ev,
    localWorkers: 4,
    wrapController: slow,
    budget: { trials: 8, deadline: null },
    fresh: false,
    signal: new AbortController().signal,
    log: () => undefined,
  });
  assert.equal(summary.reason, 'trials');
  assert.equal((await store.listTrials('loop')).filter((t) => t.state === 'complete').length, 8);
});

test('a run whose first trials all fail stops after 3, says why in one line, and keeps the failed trials', async () => {
  const store = new MemoryStore();
  const ev = new BrokenEvaluator();
  await assert.rejects(run(store, ev, 8), (e: unknown) => {
    assert.ok(e instanceof AutopruneError && e.code === 'TRIALS_FAILING');
    assert.equal(e.message.split('\n').length, 1);
    assert.match(e.message, /first 3 trials all failed \(last error: kernel X cannot run layer 3\)/);
    return true;
  });
  assert.equal(ev.evaluated.length, 3, 'no trial beyond the third was started');
  assert.equal(ev.closed, 1, 'the evaluator was closed');
  const trials = await store.listTrials('loop');
  assert.deepEqual(
    trials.map((t) => t.state),
    ['failed', 'failed', 'failed'],
  );
  assert.match(trials[2].error ?? '', /kernel X cannot run layer 3/);
  assert.equal((await store.getStudy('loop'))!.state, 'stopped');
});

test('failures after a completed trial do not stop the run', async () => {
  let n = 0;
  const flaky = new (class extends FakeEvaluator {
    override async evaluate(req: EvalRequest): Promise<EvalResult> {
      if (n++ % 2 === 1) throw new Error('flaky');
      return super.evaluate(req);
    }
  })();
  const summary = await run(new MemoryStore(), flaky, 8);
  assert.equal(summary.evaluated, 8);
});

test('every stored trial records the controller and the generation, iteration or episode that proposed it', async () => {
  const specs: ControllerSpec[] = [
    { name: 'random' },
    { name: 'greedy', initialReduction: 0.1 },
    { name: 'evolutionary', population: 4 },
    { name: 'rl', warmup: 2, episodes: 4, hidden: 8, batchSize: 4 },
    { name: 'global' },
  ];
  const step = { random: 'iteration', greedy: 'iteration', evolutionary: 'generation', rl: 'episode', global: 'iteration' } as const;
  for (const spec of specs) {
    const store = new MemoryStore();
    await run(store, new FakeEvaluator(), 6, spec);
    const trials = await store.listTrials('loop');
    assert.ok(trials.length >= 3, `${spec.name}: ${trials.length} trials`);
    const own = trials.filter((t) => t.controller !== 'uniform');
    assert.ok(own.length >= 1, `${spec.name}: no trial of its own`);
    for (const t of trials) {
      const meta = t.meta as Record<string, unknown>;
      const expected = t.controller === 'uniform' ? 'uniform' : spec.name;
      assert.equal(t.controller, expected, `trial ${t.number}`);
      assert.equal(meta.controller, expected, `trial ${t.number}: meta.controller`);
      const key = t.controller === 'uniform' ? 'ratio' : step[spec.name as keyof typeof step];
      assert.equal(typeof meta[key], 'number', `${spec.name} trial ${t.number}: no numeric \`${key}\` in ${JSON.stringify(meta)}`);
    }
  }
});

/** Each evaluation takes `ms` of a fake clock, so a time budget ends after a known number of trials. */
class ClockedEvaluator extends FakeEvaluator {
  readonly stages: string[] = [];
  constructor(
    private readonly clock: { ms: number },
    private readonly ms: number,
  ) {
    super();
  }
  override async evaluate(req: EvalRequest): Promise<EvalResult> {
    this.stages.push(`${req.stage}:${req.trial}`);
    this.clock.ms += this.ms;
    const r = await super.evaluate(req);
    return req.stage === 'finetune' ? { ...r, finalAccuracy: 0.5, trainEngine: 'libtorch' } : r;
  }
}

test('a time budget stops asking once the deadline passed: the trial in flight finishes, finalists still run, a resume continues the sequence', async () => {
  const clock = { ms: 0 };
  const store = new MemoryStore();
  const ev = new ClockedEvaluator(clock, 1000);
  const lines: string[] = [];
  const timed = {
    ...cfg,
    // One target, so the last rung's quarter of the 4 search trials is 1 finalist.
    search: { ...cfg.search, targets: [0.5], budget: { ...cfg.search.budget, trials: 1000 } },
    evaluation: { ...cfg.evaluation, rungs: [{ keep: 0.25, finetune: { epochs: 1 } }] },
  };
  const summary = await runStudy({
    cfg: timed,
    configHash: 'h',
    store,
    analysis,
    baseAccuracy: async () => ({ proxy: 0.9, test: 0.9 }),
    evaluator: async () => ev,
    budget: { trials: 1000, deadline: 3500 },
    fresh: false,
    signal: new AbortController().signal,
    log: (l) => lines.push(l),
    now: () => clock.ms,
  });
  // One worker, 1 s per trial: trials start at 0, 1, 2 and 3 s; at 4 s the deadline (3.5 s) has passed.
  assert.equal(summary.reason, 'time');
  assert.equal(summary.evaluated, 5, '4 search trials and the finalist');
  // The finalist is a rung trial in the queue (trial 4), continuing the best proxy trial after the deadline.
  assert.deepEqual(
    (await store.listTrials('loop')).map((t) => `${t.number}:${t.state}:${t.stage}:${t.parent}`),
    ['0:complete:proxy:null', '1:complete:proxy:null', '2:complete:proxy:null', '3:complete:proxy:null', `4:complete:finetune:${summary.finalists[0]}`],
  );
  assert.equal(summary.finalists.length, 1);
  assert.deepEqual(ev.stages, ['proxy:0', 'proxy:1', 'proxy:2', 'proxy:3', 'finetune:4']);
  assert.deepEqual(
    (await studyFinals(store, 'loop', await store.listTrials('loop'))).map((f) => f.trainEngine),
    ['libtorch'],
    'the final records the engine that fine-tuned it',
  );
  assert.ok(lines.some((l) => /the time budget is spent/.test(l)));
  assert.equal((await store.getStudy('loop'))!.state, 'stopped', 'resumable');

  // The resumed run (no deadline, 8 search trials) continues the search where the timed one stopped.
  const rest = new FakeEvaluator();
  await run(store, rest, 8, cfg.search.controller, timed);
  const whole = new MemoryStore();
  await run(whole, new FakeEvaluator(), 8, cfg.search.controller, timed);
  const keys = async (s: Store) => (await s.listTrials('loop')).filter((t) => t.stage === 'proxy').map((t) => t.key);
  assert.equal((await keys(store)).length, 8);
  assert.deepEqual(await keys(store), await keys(whole));
  // 4 more search trials, and the promotions the 8 results call for beyond the one already made (a quarter of 8 = 2).
  assert.equal(rest.evaluated.length, 4 + 1);
});
