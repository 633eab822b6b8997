/**
 * Rung trials through the queue on the tiny study (test/tiny-study.ts) with a fake evaluator:
 * promotions are ordinary `finetune` trials whose parent is the trial they continue and whose meta
 * records the rung; the last rung's results are the finals; a driver killed mid-rung and restarted
 * re-queues the trial it was running and makes the same promotions in the same order.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { ResolvedConfig } from '../src/config/index.js';
import { candidateKey } from '../src/core/space.js';
import type { Cost, TrialMetrics } from '../src/core/types.js';
import type { EvalRequest, EvalResult, Evaluator } from '../src/evaluators/types.js';
import type { Analysis } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { buildReportInfo } from '../src/report/data.js';
import { openStore } from '../src/store/index.js';
import { MemoryStore } from '../src/store/memory.js';
import type { Store, TrialLease, TrialRecord } from '../src/store/types.js';
import { studyFinals } from '../src/study/finals.js';
import { artifactPaths } from '../src/study/lineage.js';
import { runStudy } from '../src/study/run.js';
import { type RungMeta, rungMetaOf } from '../src/study/rungs.js';
import { pgUnavailable, testDatabases } from './pg-helpers.js';
import { tinyStudy } from './tiny-study.js';

let analysis: Analysis;
let cfg: ResolvedConfig;
before(async () => {
  const tiny = await tinyStudy('rungs', 12);
  analysis = tiny.analysis;
  cfg = {
    ...tiny.cfg,
    evaluation: {
      ...tiny.cfg.evaluation,
      rungs: [
        { keep: 0.5, finetune: { steps: 5 } },
        { keep: 0.5, max: 1, finetune: { epochs: 1 } },
      ],
    },
  };
});

/** A score in [0, 1) from a string: the synthetic scorer (rung scores reorder the proxy's). */
const score = (s: string) => createHash('sha256').update(s).digest().readUInt32BE(0) / 2 ** 32;

class FakeEvaluator implements Evaluator {
  readonly capacity = 1;
  readonly requests: EvalRequest[] = [];
  constructor(private readonly clock: { t: number }) {}
  async evaluate(req: EvalRequest): Promise<EvalResult> {
    this.requests.push(req);
    this.clock.t += 1000; // each evaluation takes 1 s of store time, so finishing order is evaluation order
    const cost: Cost = costOf(analysis, req.candidate);
    const key = candidateKey(req.candidate);
    const base = { latencyMs: 1, cost, timings: {}, worker: 'fake' };
    if (req.stage !== 'finetune') return { ...base, proxyAccuracy: score(key) };
    const rung = 'steps' in req.length! ? 1 : 2;
    return { ...base, proxyAccuracy: score(`${key}@${rung}`), finalAccuracy: score(`${key}@test`), trainEngine: 'libtorch' };
  }
  async close(): Promise<void> {}
}

/** Dies (throws, leaving the trial running) when asked to complete trial `at`, as a killed process would. */
class DyingStore extends MemoryStore {
  constructor(
    clock: { t: number },
    private readonly at: (n: number) => boolean,
  ) {
    super({ clock: () => clock.t });
  }
  dead = false;
  override async completeTrial(l: TrialLease, m: TrialMetrics): Promise<TrialRecord> {
    if (!this.dead && this.at(l.number)) {
      this.dead = true;
      throw new Error('killed');
    }
    return super.completeTrial(l, m);
  }
}

async function run(store: Store, ev: Evaluator, log: string[] = []) {
  return runStudy({
    cfg,
    configHash: 'h',
    store,
    analysis,
    baseAccuracy: async () => ({ proxy: 0.9, test: 0.9 }),
    evaluator: async () => ev,
    budget: { trials: 12, deadline: null },
    fresh: false,
    signal: new AbortController().signal,
    log: (l) => log.push(l),
  });
}

const rungTrials = async (store: Store) =>
  (await store.listTrials('rungs')).flatMap((t) => {
    const m = rungMetaOf(t);
    return m === null ? [] : [{ number: t.number, parent: t.parent, state: t.state, ...m }];
  });

const unavailable = await pgUnavailable();
const dbs = testDatabases('autoprune_rungs');
after(() => dbs.dropAll());
const backends: [name: string, open: (clock: () => number) => Promise<Store>, skip: string | false][] = [
  ['memory', async (clock) => new MemoryStore({ clock }), false],
  ['postgres', async (clock) => openStore(await dbs.fresh(), { clock }), unavailable ?? false],
];

for (const [backend, open, skip] of backends)
  test(`${backend}: promotions are finetune trials in the queue: parent, rung, weights and length recorded; the last rung makes the finals`, {
    skip,
  }, async () => {
    const clock = { t: 1e12 };
    const store = await open(() => clock.t);
    try {
      const ev = new FakeEvaluator(clock);
      const summary = await run(store, ev);
      const trials = await store.listTrials('rungs');
      const search = trials.filter((t) => rungMetaOf(t) === null);
      const rungs = await rungTrials(store);
      assert.equal(search.length, 12, 'rung trials do not count against the trial budget');
      const byNumber = new Map(trials.map((t) => [t.number, t]));
      const dir = store.artifactDir('rungs');
      for (const r of rungs) {
        const parent = byNumber.get(r.parent!)!;
        const t = byNumber.get(r.number)!;
        assert.equal(t.stage, 'finetune');
        assert.equal(t.state, 'complete');
        assert.deepEqual(t.candidate, parent.candidate, 'a rung continues its parent’s candidate');
        if (r.rung === 1) {
          assert.equal(rungMetaOf(parent), null, 'rung 1 continues a search trial');
          assert.equal(r.origin, parent.number);
          assert.equal(r.weights, null, 'a proxy trial of the base model has no saved weights: rung 1 cuts the base');
          assert.deepEqual(r.finetune, { steps: 5 });
        } else {
          assert.equal((parent.meta as unknown as RungMeta).rung, r.rung - 1);
          assert.equal(r.weights, parent.number, 'rung 2 continues rung 1’s saved weights');
          assert.deepEqual(r.finetune, { epochs: 1 });
        }
        // The worker's request: continue the weights the meta names, save this rung's own.
        const req = ev.requests.find((q) => q.trial === r.number)!;
        assert.equal(req.saveTo, artifactPaths.trialModel(dir, r.number));
        assert.equal(req.parent?.modelDir, r.weights === null ? undefined : artifactPaths.trialModel(dir, r.weights));
        assert.deepEqual(req.length, r.finetune);
      }
      // Per target: rung 1 holds at least half of that target's search trials, rung 2 exactly one (max 1).
      const targets = [...new Set(rungs.map((r) => r.target))];
      assert.equal(targets.length, 2);
      for (const target of targets) {
        const last = rungs.filter((r) => r.target === target && r.rung === 2);
        assert.equal(last.length, 1, `target ${target}`);
        // The one admitted is the best rung-1 score of its target (validation, never test).
        const first = rungs.filter((r) => r.target === target && r.rung === 1);
        const best = first.map((r) => byNumber.get(r.number)!).sort((a, b) => b.metrics.proxyAccuracy! - a.metrics.proxyAccuracy! || a.number - b.number)[0];
        assert.equal(last[0].parent, best.number);
      }
      // The finals are recorded under the origin, from the last rung's trial.
      const finals = await studyFinals(store, 'rungs', await store.listTrials('rungs'));
      assert.deepEqual(
        finals.map((f) => f.trial).sort(),
        rungs
          .filter((r) => r.rung === 2)
          .map((r) => r.origin)
          .sort(),
      );
      assert.deepEqual(summary.finalists.slice().sort(), finals.map((f) => f.trial).sort());
      for (const f of finals) {
        const t = rungs.find((r) => r.rung === 2 && r.origin === f.trial)!;
        assert.equal(f.finalAccuracy, byNumber.get(t.number)!.metrics.finalAccuracy);
        assert.equal(f.modelPath, artifactPaths.trialModel(dir, t.number));
        assert.equal(f.trainEngine, 'libtorch');
        assert.equal(f.fromTrial, t.number, 'a final is its last-rung trial');
      }
      // Reports see the search's 12 trials, the finals on their origins (not the rung trials as points).
      const info = buildReportInfo((await store.getStudy('rungs'))!, trials, finals);
      assert.deepEqual([info.counts.total, info.counts.finalists], [12, 2]);
    } finally {
      await store.close();
    }
  });

for (const when of ['during rung 1', 'during rung 2'] as const) {
  test(`a driver killed ${when} re-queues the trial it held and, restarted, makes the same promotions in the same order`, async () => {
    const reference = async () => {
      const clock = { t: 1e12 };
      const store = new MemoryStore({ clock: () => clock.t });
      await run(store, new FakeEvaluator(clock));
      return { rungs: await rungTrials(store), finals: await studyFinals(store, 'rungs', await store.listTrials('rungs')) };
    };
    const whole = await reference();
    // The second rung-1 trial (more rung-1 promotions follow it), or the first rung-2 trial (another waits).
    const killAt = when === 'during rung 1' ? whole.rungs.filter((r) => r.rung === 1)[1].number : whole.rungs.find((r) => r.rung === 2)!.number;
    const killedRung = when === 'during rung 1' ? 1 : 2;
    assert.ok(
      whole.rungs.some((r) => r.rung === killedRung && r.number > killAt),
      'the kill lands mid-rung',
    );

    const clock = { t: 1e12 };
    const store = new DyingStore(clock, (n) => n === killAt);
    await assert.rejects(run(store, new FakeEvaluator(clock)), /killed/);
    assert.equal((await store.listTrials('rungs')).find((t) => t.number === killAt)!.state, 'running');
    const left = await rungTrials(store);
    if (killedRung === 1) assert.ok(left.length < whole.rungs.length, 'promotions were still to come');
    else
      assert.ok(
        left.some((r) => r.state === 'waiting'),
        'the other rung-2 trial was still waiting',
      );
    clock.t += 3600 * 1000; // its lease expires
    const log: string[] = [];
    await run(store, new FakeEvaluator(clock), log);
    assert.ok(
      log.some((l) => new RegExp(`re-queued trial\\(s\\) ${killAt}\\b`).test(l)),
      log.join('\n'),
    );
    const strip = (rs: Awaited<ReturnType<typeof rungTrials>>) =>
      rs.map(({ number, parent, rung, origin, target, weights, state }) => ({ number, parent, rung, origin, target, weights, state }));
    assert.deepEqual(strip(await rungTrials(store)), strip(whole.rungs));
    assert.deepEqual(
      (await studyFinals(store, 'rungs', await store.listTrials('rungs'))).map((f) => [f.trial, f.finalAccuracy]),
      whole.finals.map((f) => [f.trial, f.finalAccuracy]),
    );
  });
}
