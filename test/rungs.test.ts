import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng } from '../src/core/rng.js';
import { duePromotions, type Promotion, promotions, type RungResult, type RungSpec, type RungTrial, rungTraining } from '../src/study/rungs.js';

const proxy = (trial: number, score: number, target: number | null = 0.5): RungResult => ({ trial, rung: 0, target, score, origin: trial });
const none = new Map<number, Set<number>>();
const open = () => false;
const closed = () => true;
const halving: RungSpec[] = [
  { keep: 0.5, finetune: { steps: 200 } },
  { keep: 0.5, finetune: { epochs: 1 } },
];

/**
 * An asynchronous ASHA run on a synthetic scorer: candidates arrive one at a time (rung 0), every
 * due promotion is "evaluated" at once with the scorer, and closing happens when nothing is left.
 * Returns the promotions in the order they were made.
 */
function simulate(
  schedule: readonly RungSpec[],
  arrivals: readonly { origin: number; target: number | null }[],
  score: (origin: number, rung: number) => number,
) {
  const results: RungResult[] = [];
  const promoted = new Map<number, Set<number>>();
  const made: Promotion[] = [];
  let next = arrivals.length; // rung trials are numbered after the proxy trials
  let proxyClosed = false;
  const drain = () => {
    for (;;) {
      const due = promotions(schedule, {
        results,
        promoted,
        // A rung is closed when the proxy rung is and nothing promoted to the rungs up to it is unfinished (all finish at once here).
        closed: () => proxyClosed,
      });
      if (due.length === 0) return;
      for (const p of due) {
        made.push(p);
        let set = promoted.get(p.rung);
        if (!set) promoted.set(p.rung, (set = new Set()));
        set.add(p.origin);
        results.push({ trial: next++, rung: p.rung, target: p.target, score: score(p.origin, p.rung), origin: p.origin });
      }
    }
  };
  for (const a of arrivals) {
    results.push({ trial: a.origin, rung: 0, target: a.target, score: score(a.origin, 0), origin: a.origin });
    drain();
  }
  proxyClosed = true;
  drain();
  return { made, results };
}

describe('promotions (asynchronous successive halving)', () => {
  test('with n results at a rung the top floor(n·keep) are promotable, each promoted once, as results arrive', () => {
    const scores = [0.1, 0.5, 0.3, 0.9, 0.7, 0.2];
    const seen: string[] = [];
    const promoted = new Map<number, Set<number>>([[1, new Set<number>()]]);
    const results: RungResult[] = [];
    for (let i = 0; i < scores.length; i++) {
      results.push(proxy(i, scores[i]));
      const due = promotions(halving, { results, promoted, closed: open });
      for (const p of due) promoted.get(1)!.add(p.origin);
      seen.push(due.map((p) => `${p.from}->${p.rung}`).join(' '));
    }
    // n=1: 0 promotable; n=2: top 1 = trial 1 (0.5); n=3: top 1 still 1; n=4: top 2 = 3, 1 -> 3;
    // n=5: top 2 = 3, 4 -> 4; n=6: top 3 = 3, 4, 1 -> nothing new.
    assert.deepEqual(seen, ['', '1->1', '', '3->1', '4->1', '']);
  });

  test('hand-worked schedule: promotion order and counts at each rung', () => {
    // Rung scores keep the proxy order except that trial 2 overtakes trial 3 after fine-tuning.
    const base = [0.2, 0.4, 0.6, 0.8, 0.1, 0.3, 0.5, 0.7];
    const score = (o: number, rung: number) => (rung >= 1 && o === 2 ? 0.95 : base[o]);
    const { made } = simulate(
      halving,
      base.map((_, origin) => ({ origin, target: 0.5 })),
      score,
    );
    assert.deepEqual(
      made.map((p) => `${p.origin}@${p.rung}`),
      // Proxy n=2: top 1 = 1. n=3: top 1 = 2; rung 1 then holds 1, 2: top 1 = 2 -> rung 2.
      // n=4: top 2 = 3, 2 -> 3; rung 1 (n=3) top 1 = 2, done. n=5, n=6: top 2, 3 = 3, 2, 1, done.
      // n=7: top 3 = 3, 2, 6 -> 6; rung 1 (n=4) top 2 = 2, 3 -> 3 to rung 2. n=8: top 4 = 3, 7, 2, 6 -> 7.
      ['1@1', '2@1', '2@2', '3@1', '6@1', '3@2', '7@1'],
    );
    const counts = [1, 2].map((k) => made.filter((p) => p.rung === k).length);
    assert.deepEqual(counts, [5, 2]);
  });

  test('promotion is per target: a target’s pool never admits another target’s trials', () => {
    const results = [proxy(0, 0.9, 0.5), proxy(1, 0.8, 0.5), proxy(2, 0.1, 0.3), proxy(3, 0.2, 0.3)];
    const due = promotions([{ keep: 0.5, finetune: { epochs: 1 } }], { results, promoted: none, closed: open });
    assert.deepEqual(
      due.map((p) => [p.from, p.target]),
      [
        [3, 0.3],
        [0, 0.5],
      ],
    );
  });

  test('ties go to the lower trial number; the same results in any order give the same promotions', () => {
    const results = [proxy(5, 0.5), proxy(2, 0.5), proxy(9, 0.5), proxy(1, 0.2)];
    const due = promotions([{ keep: 0.5, finetune: { epochs: 1 } }], { results, promoted: none, closed: open });
    assert.deepEqual(
      due.map((p) => p.from),
      [2, 5],
    );
    const rng = new Rng(7);
    for (let i = 0; i < 10; i++) {
      const shuffled = rng.shuffle([...results]);
      assert.deepEqual(promotions([{ keep: 0.5, finetune: { epochs: 1 } }], { results: shuffled, promoted: none, closed: open }), due);
    }
  });

  test('a capped rung waits for the rung before it to close, then admits its top min(max, floor(n·keep)) per target', () => {
    const spec: RungSpec[] = [{ keep: 1, max: 2, finetune: { epochs: 1 } }];
    const results = [proxy(0, 0.3), proxy(1, 0.9), proxy(2, 0.6), proxy(3, 0.1, 0.3)];
    assert.deepEqual(promotions(spec, { results, promoted: none, closed: open }), []);
    const due = promotions(spec, { results, promoted: none, closed });
    assert.deepEqual(
      due.map((p) => p.from),
      [3, 1, 2],
    );
    // Already promoted ones count against the cap: nothing more.
    const promoted = new Map([[1, new Set([1, 2, 3])]]);
    assert.deepEqual(promotions(spec, { results, promoted, closed }), []);
  });

  test('baselines are in the pool like any other trial', () => {
    // The pool does not know controllers: a uniform baseline with the best proxy score is promoted first.
    const results = [proxy(0, 0.7), proxy(1, 0.4), proxy(2, 0.6), proxy(3, 0.5)];
    const due = promotions([{ keep: 0.25, finetune: { epochs: 1 } }], { results, promoted: none, closed: open });
    assert.deepEqual(
      due.map((p) => p.from),
      [0],
    );
  });

  test('on a synthetic scorer whose fidelities agree, the top keep fraction reaches the last rung, per target', () => {
    const rng = new Rng(3);
    const n = 64;
    const quality = Array.from({ length: n }, () => rng.next());
    const arrivals = Array.from({ length: n }, (_, origin) => ({ origin, target: origin % 2 === 0 ? 0.5 : 0.3 }));
    const schedule: RungSpec[] = [
      { keep: 0.5, finetune: { steps: 100 } },
      { keep: 0.5, finetune: { steps: 400 } },
      { keep: 0.5, max: 2, finetune: { epochs: 1 } },
    ];
    const a = simulate(schedule, arrivals, (o) => quality[o]);
    for (const target of [0.5, 0.3]) {
      const mine = arrivals.filter((x) => x.target === target).map((x) => x.origin);
      const best = [...mine].sort((x, y) => quality[y] - quality[x] || x - y);
      const last = a.made.filter((p) => p.rung === 3 && p.target === target).map((p) => p.origin);
      // 32 per target -> rung 3 admits min(2, floor(n3 / 2)) = 2: the best two candidates.
      assert.deepEqual(new Set(last), new Set(best.slice(0, 2)));
      // Asynchronous promotion may admit more than floor(n·keep) early, never fewer at the end.
      assert.ok(a.made.filter((p) => p.rung === 1 && p.target === target).length >= 16);
    }
    // Deterministic: the same run again gives the same promotions in the same order.
    assert.deepEqual(simulate(schedule, arrivals, (o) => quality[o]).made, a.made);
  });
});

describe('duePromotions', () => {
  test('replays results in the store’s finish sequence, not by finish time (clocks differ; commits land late)', () => {
    // By finishSeq: 1 (.5), 2 (.9) -> promote 1 of 2 = trial 2; then 0 (.1) -> 1 of 3, already made.
    // By finishedAt (0 first) it would promote trial 1 after two results, then trial 2 as well.
    const t = (number: number, score: number, finishSeq: number, at: string): RungTrial & { finishedAt: string } => ({
      number,
      state: 'complete',
      stage: 'proxy',
      parent: null,
      metrics: { proxyAccuracy: score },
      finishSeq,
      finishedAt: `2024-01-01T00:00:0${at}.000Z`,
    });
    const trials = [t(0, 0.1, 3, '1'), t(1, 0.5, 1, '2'), t(2, 0.9, 2, '3')];
    const due = duePromotions([{ keep: 0.5, finetune: { steps: 10 } }], trials, { targetOf: () => 0.5, searchClosed: false });
    assert.deepEqual(
      due.map((p) => [p.rung, p.origin]),
      [[1, 2]],
    );
  });
});

describe('rungTraining', () => {
  test('epochs are whole epochs; steps round up to whole epochs of equal length', () => {
    assert.deepEqual(rungTraining({ epochs: 3 }, 429), { epochs: 3, batchesPerEpoch: 429 });
    assert.deepEqual(rungTraining({ steps: 200 }, 429), { epochs: 1, batchesPerEpoch: 200 });
    assert.deepEqual(rungTraining({ steps: 1000 }, 429), { epochs: 3, batchesPerEpoch: 334 });
    assert.deepEqual(rungTraining({ epochs: 0 }, 429), { epochs: 0, batchesPerEpoch: 429 });
  });
});

describe('duePromotions (the driver’s replay of the store)', () => {
  /** A driver on a store: looks, enqueues what is due, lets every live trial finish with the scorer, looks again. */
  function drive(schedule: readonly RungSpec[], proxies: readonly number[], score: (origin: number, rung: number) => number) {
    const trials: RungTrial[] = proxies.map((s, i) => ({
      number: i,
      state: 'complete',
      stage: 'proxy',
      parent: null,
      metrics: { proxyAccuracy: s },
      finishSeq: i + 1,
    }));
    const made: Promotion[] = [];
    for (let look = 0; look < 20; look++) {
      const due = duePromotions(schedule, trials, { targetOf: () => 0.3, searchClosed: true });
      if (due.length === 0) break;
      for (const p of due) {
        made.push(p);
        const n = trials.length;
        trials.push({
          number: n,
          state: 'complete',
          stage: 'finetune',
          parent: p.from,
          meta: { rung: p.rung, origin: p.origin, target: p.target, weights: p.from, finetune: schedule[p.rung - 1].finetune },
          metrics: { proxyAccuracy: score(p.origin, p.rung) },
          finishSeq: n + 1,
        });
      }
    }
    return made;
  }

  test('two capped rungs: the best 4 proxies get rung 1, then the best of those (by rung 1) gets rung 2, once each', () => {
    // Rung 1 reverses the proxy's order among the four it admits: origin 3 (4th by proxy) is best after rung 1.
    const proxies = [0.1, 0.9, 0.8, 0.7, 0.6, 0.2, 0.3];
    const made = drive(
      [
        { keep: 1, max: 4, finetune: { epochs: 1 } },
        { keep: 1, max: 1, finetune: { epochs: 2 } },
      ],
      proxies,
      (origin, rung) => (rung === 1 ? 1 - proxies[origin] : 0.5),
    );
    assert.deepEqual(
      made.map((p) => [p.rung, p.origin]),
      [
        [1, 1],
        [1, 2],
        [1, 3],
        [1, 4],
        [2, 4],
      ],
    );
  });

  test('promotions already in the store are not returned again', () => {
    const schedule: RungSpec[] = [{ keep: 0.5, finetune: { epochs: 1 } }];
    const trials: RungTrial[] = [0.4, 0.6].map((s, i) => ({
      number: i,
      state: 'complete',
      stage: 'proxy',
      parent: null,
      metrics: { proxyAccuracy: s },
      finishSeq: i + 1,
    }));
    assert.deepEqual(duePromotions(schedule, trials, { targetOf: () => 0.3, searchClosed: false }), [{ from: 1, origin: 1, rung: 1, target: 0.3 }]);
    trials.push({
      number: 2,
      state: 'waiting',
      stage: 'finetune',
      parent: 1,
      meta: { rung: 1, origin: 1, target: 0.3, weights: null, finetune: { epochs: 1 } },
      metrics: {},
      finishSeq: null,
    });
    assert.deepEqual(duePromotions(schedule, trials, { targetOf: () => 0.3, searchClosed: false }), []);
  });

  test('a promotion found in this look keeps its rung open: the capped rung above waits for its result', () => {
    const schedule: RungSpec[] = [
      { keep: 0.5, finetune: { epochs: 1 } },
      { keep: 1, max: 1, finetune: { epochs: 2 } },
    ];
    const proxy = (number: number, score: number, finishSeq: number): RungTrial => ({
      number,
      state: 'complete',
      stage: 'proxy',
      parent: null,
      metrics: { proxyAccuracy: score },
      finishSeq,
    });
    const rung1 = (number: number, origin: number, score: number, finishSeq: number): RungTrial => ({
      number,
      state: 'complete',
      stage: 'finetune',
      parent: origin,
      meta: { rung: 1, origin, target: 0.3, weights: null, finetune: { epochs: 1 } },
      metrics: { proxyAccuracy: score },
      finishSeq,
    });
    // Looked last after trial 2 (rung 1 of trial 0); trials 3 and 4 finished since, and the search closed.
    const trials = [proxy(0, 0.9, 1), proxy(1, 0.1, 2), rung1(2, 0, 0.5, 3), proxy(3, 0.8, 4), proxy(4, 0.2, 5)];
    const o = { targetOf: () => 0.3, searchClosed: true };
    assert.deepEqual(
      duePromotions(schedule, trials, o).map((p) => [p.rung, p.origin]),
      [[1, 3]],
      'trial 3 enters rung 1; rung 2 does not pick among rung 1 yet',
    );
    trials.push(rung1(5, 3, 0.7, 6));
    assert.deepEqual(
      duePromotions(schedule, trials, o).map((p) => [p.rung, p.origin]),
      [[2, 3]],
    );
  });
});
