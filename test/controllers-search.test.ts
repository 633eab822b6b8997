import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exactFront, makeProblem, type ProblemOptions } from '../bench/synthetic-problem.js';
import { type ControllerInput as ControllerSpec, resolveControllerSpec } from '../src/config/index.js';
import { channelLevels, inSpace, macsFraction } from '../src/controllers/common.js';
import { controllers } from '../src/controllers/registry.js';
import type { Proposal } from '../src/controllers/types.js';
import { crowdingDistance, nonDominatedSort, nonDominatedSortN, paretoFront } from '../src/core/pareto.js';
import { Rng } from '../src/core/rng.js';
import { type Candidate, candidateKey } from '../src/core/space.js';
import type { Json } from '../src/store/types.js';
import { type Op, playScript, type Scenario, session } from './controller-script.js';

const SMALL: ProblemOptions = { widths: [8, 16, 32], minKeepRatio: 0.25, channelStep: 4, skip: ['b1.2'] };
const OPS: Op[] = [
  { ask: 3 },
  { tell: 1 },
  { ask: 6 },
  { tell: 5 },
  { ask: 2 },
  { tell: 5 },
  { ask: 12 },
  { tell: 12 },
  { ask: 5 },
  { tell: 2 },
  { ask: 8 },
  { tell: 11 },
  { ask: 9 },
  { tell: 9 },
];

const SPECS: ControllerSpec[] = [
  { name: 'random' },
  { name: 'uniform', steps: 4 },
  { name: 'greedy', initialReduction: 0.08, decay: 0.9 },
  { name: 'greedy', initialReduction: 0.1, adapt: 'chosen' },
  { name: 'evolutionary', population: 6 },
  { name: 'evolutionary', population: 5, thirdObjective: 'params' },
  { name: 'evolutionary', population: 5, thirdObjective: 'latency' },
  { name: 'rl', warmup: 4, episodes: 30, hidden: 8, batchSize: 8 },
  { name: 'global', normalize: 'max' },
];

const scenario = (spec: ControllerSpec, seed = 3): Scenario => ({ spec, problem: SMALL, targets: [0.6, 0.35], window: 0.04, seed, ops: OPS });
const label = (spec: ControllerSpec): string => JSON.stringify(spec);
const trace = (ps: readonly Proposal[]): string[] => ps.map((p) => `${candidateKey(p.candidate)} ${JSON.stringify(p.meta)}`);

describe('every controller on the synthetic problem', () => {
  test('the registry has one entry per controller', () => {
    assert.deepEqual(Object.keys(controllers).sort(), ['evolutionary', 'global', 'greedy', 'random', 'rl', 'uniform']);
  });

  for (const spec of SPECS) {
    test(`${label(spec)}: same seed -> same proposals`, () => {
      const a = playScript(scenario(spec), session(scenario(spec))).proposals;
      const b = playScript(scenario(spec), session(scenario(spec))).proposals;
      assert.ok(a.length > 0);
      assert.deepEqual(trace(a), trace(b));
    });

    test(`${label(spec)}: every proposal is in the space, inside its window or constraint, and names its controller and step`, () => {
      const sc = scenario(spec);
      const sess = session(sc);
      const { proposals } = playScript(sc, sess);
      for (const p of proposals) {
        assert.ok(inSpace(sess.ctx.space, p.candidate), `outside the space: ${candidateKey(p.candidate)}`);
        assert.equal(p.candidate.channels[2], sess.ctx.space.groups[2].channels, 'the skipped group b1.2 stays full');
        assert.equal(p.meta.controller, spec.name);
        const step = p.meta.generation ?? p.meta.iteration ?? p.meta.episode ?? p.meta.ratio;
        assert.equal(typeof step, 'number', `no generation/iteration/episode in ${JSON.stringify(p.meta)}`);
        const f = macsFraction(sess.ctx, p.candidate);
        // rl's constraint (AMC's action wall): at or under the window's upper edge; under the window it says so.
        if (spec.name === 'rl')
          assert.ok(
            f <= p.meta.target! + sc.window + 1e-12 && (p.meta.windowExempt === true) === f < p.meta.target! - sc.window - 1e-12,
            `rl: ${f} for ${p.meta.target}`,
          );
        if (p.meta.target === undefined || p.meta.windowExempt) continue;
        assert.ok(Math.abs(f - p.meta.target) <= sc.window + 1e-12, `${f} outside ${p.meta.target} ± ${sc.window}`);
      }
    });

    test(`${label(spec)}: restored in a fresh process mid-search, it continues exactly like an uninterrupted run`, () => {
      const sc = scenario(spec);
      const whole = playScript(sc, session(sc));
      const split = 5; // after { ask: 2 }: proposals are still outstanding
      const sess = session(sc);
      const first = playScript(sc, sess, 0, split);
      const dir = mkdtempSync(join(tmpdir(), 'autoprune-ctl-'));
      const file = join(dir, 'input.json');
      writeFileSync(file, JSON.stringify({ scenario: sc, snapshot: sess.controller.snapshot(), outstanding: first.outstanding, from: split }));
      const child = fileURLToPath(new URL('./controller-child.ts', import.meta.url));
      const out = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', child, file], { encoding: 'utf8' })) as {
        proposals: Proposal[];
        snapshot: unknown;
      };
      assert.deepEqual(trace([...first.proposals, ...out.proposals]), trace(whole.proposals));
      const uninterrupted = session(sc);
      playScript(sc, uninterrupted);
      assert.deepEqual(out.snapshot, JSON.parse(JSON.stringify(uninterrupted.controller.snapshot())));
    });
  }
});

describe('greedy (NetAdapt)', () => {
  const run = (spec: ControllerSpec) => {
    const sc: Scenario = { ...scenario(spec), ops: Array.from({ length: 400 }, (_, i): Op => (i % 2 ? { tell: 100 } : { ask: 100 })) };
    const sess = session(sc);
    return { sess, proposals: playScript(sc, sess).proposals };
  };

  test('each iteration cuts one group per candidate by about ΔR_i, walks down to the smallest target, then stops', () => {
    const { sess, proposals } = run({ name: 'greedy', initialReduction: 0.05, decay: 0.9 });
    assert.ok(sess.controller.done());
    const byIteration = new Map<number, Proposal[]>();
    for (const p of proposals) byIteration.set(p.meta.iteration!, [...(byIteration.get(p.meta.iteration!) ?? []), p]);
    let start = sess.ctx.space.groups.map((g) => g.channels);
    const frac = (channels: number[]): number => macsFraction(sess.ctx, { channels });
    for (const [i, ps] of byIteration) {
      const next = [0.6, 0.35].find((t) => frac(start) > t + 0.04 + 1e-12)!;
      const goal = Math.max(frac(start) - 0.05 * 0.9 ** (i - 1), next);
      for (const p of ps) {
        const changed = p.candidate.channels.flatMap((n, g) => (n !== start[g] ? [g] : []));
        assert.equal(changed.length, 1, 'one group changes per candidate');
        const levels = channelLevels(sess.ctx.space, changed[0]);
        const at = levels.indexOf(p.candidate.channels[changed[0]]);
        assert.ok(frac([...p.candidate.channels]) <= goal + 1e-12 || at === 0, `iteration ${i}: above the goal ${goal} without reaching the minimum`);
        const oneLess = [...p.candidate.channels];
        oneLess[changed[0]] = levels[at + 1];
        assert.ok(at + 1 === levels.indexOf(start[changed[0]]) || frac(oneLess) > goal, `iteration ${i}: cut more than needed`);
      }
      const score = (q: Proposal): [number, number] => [sess.problem.accuracy(q.candidate), -macsFraction(sess.ctx, q.candidate)];
      const best = ps.reduce((a, b) => (score(b)[0] > score(a)[0] || (score(b)[0] === score(a)[0] && score(b)[1] > score(a)[1]) ? b : a));
      start = [...best.candidate.channels];
      assert.ok(i >= 1);
    }
    const last = macsFraction(sess.ctx, { channels: start });
    assert.ok(last <= 0.35 + 0.04 + 1e-12, `stopped at ${last}`);
  });

  test('`adapt: chosen` proposes the chosen model as a stage-adapt trial, and later candidates name it as parent', () => {
    const { proposals } = run({ name: 'greedy', initialReduction: 0.1, adapt: 'chosen' });
    const adapts = proposals.filter((p) => p.meta.stage === 'adapt');
    assert.ok(adapts.length >= 2);
    const after = proposals[proposals.indexOf(adapts[0]) + 1];
    assert.equal(after.meta.parent, candidateKey(adapts[0].candidate));
  });
});

describe('rl (AMC)', () => {
  test("snapshot: AMC's 300-unit networks in float32 bytes, the same size every episode, encoded once per told episode", () => {
    const sc: Scenario = { ...scenario({ name: 'rl', warmup: 10 }), ops: [] };
    const sess = session(sc);
    const snap = (): { heavy: string } & Record<string, unknown> => sess.controller.snapshot() as { heavy: string } & Record<string, unknown>;
    const sizes: number[] = [];
    let previous = snap().heavy;
    for (let i = 0; i < 6; i++) {
      const [p] = sess.controller.ask(1);
      const a = snap();
      assert.equal(a.heavy, previous, 'an ask leaves the learned state (and its cached text) alone');
      sess.controller.tell([
        { candidate: p.candidate, cost: sess.problem.costOf(p.candidate), meta: p.meta as Json, proxyAccuracy: sess.problem.accuracy(p.candidate) },
      ]);
      const b = snap();
      assert.notEqual(b.heavy, previous, 'a tell changes it');
      assert.equal(snap().heavy, b.heavy, 'encoded once, then cached until the next tell');
      previous = b.heavy;
      sizes.push(JSON.stringify(b).length);
    }
    // actor 11-300-300-1 and critic 12-300-300-1, each with Adam moments and a target copy, plus the replay.
    const floats = 4 * (11 * 300 + 300 + 300 * 300 + 300 + 301) + 4 * (12 * 300 + 300 + 300 * 300 + 300 + 301) + 100 * 11 * (2 * 11 + 3);
    assert.equal(Buffer.from(previous, 'base64').byteLength, 4 * floats);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) < 200, `sizes ${sizes.join(', ')}`);
    assert.ok(Math.max(...sizes) < 4.3e6, `${Math.max(...sizes)} characters`);
  });
});

describe('global (Torch-Pruning-style threshold)', () => {
  test('keeps per group the channels whose normalised score passes one threshold, nearest the target', () => {
    const sess = session(scenario({ name: 'global', normalize: 'max' }));
    const [p] = sess.controller.ask(1);
    const tau = p.meta.threshold as number;
    const imp = sess.ctx.importance!;
    p.candidate.channels.forEach((n, g) => {
      if (g === 2) return; // skipped
      const kept = imp[g].filter((x) => x / Math.max(...imp[g]) >= tau).length;
      assert.ok(n >= kept && n - kept < 4 + 2, `group ${g}: ${n} channels for ${kept} above the threshold`);
    });
  });

  test('without importance data it says what it needs', () => {
    const p = makeProblem(SMALL);
    assert.throws(
      () => controllers.global({ ...p, targets: [0.5], window: 0.03, rng: new Rng(1) }, resolveControllerSpec({ name: 'global' })),
      /needs channel importance for each of the 12 groups, got none/,
    );
  });
});

describe('crowding distance and N-objective sort (src/core/pareto.ts)', () => {
  /** Naive crowding: neighbours found by counting positions, no sorting. */
  function naiveCrowding(objs: number[][]): number[] {
    const n = objs.length;
    const d = new Array<number>(n).fill(0);
    for (let k = 0; k < (objs[0]?.length ?? 0); k++) {
      const pos = objs.map((o, i) => objs.filter((q, j) => q[k] < o[k] || (q[k] === o[k] && j < i)).length);
      const at = (r: number): number => pos.indexOf(r);
      const range = Math.max(...objs.map((o) => o[k])) - Math.min(...objs.map((o) => o[k]));
      for (let i = 0; i < n; i++) {
        if (pos[i] === 0 || pos[i] === n - 1) d[i] = Infinity;
        else if (range > 0) d[i] += (objs[at(pos[i] + 1)][k] - objs[at(pos[i] - 1)][k]) / range;
      }
    }
    return d;
  }

  test('matches the naive reference on random fronts and a table of edge cases', () => {
    const rng = new Rng(5);
    const cases: [string, number[][]][] = [
      ['empty', []],
      ['one point', [[1, 2]]],
      [
        'two points',
        [
          [1, 2],
          [2, 1],
        ],
      ],
      [
        'constant objective',
        [
          [1, 5],
          [2, 5],
          [3, 5],
          [4, 5],
        ],
      ],
      [
        'ties',
        [
          [1, 3],
          [1, 3],
          [2, 2],
          [3, 1],
        ],
      ],
      [
        'three objectives',
        [
          [0, 1, 2],
          [1, 0, 2],
          [2, 2, 0],
          [0.5, 0.5, 1],
        ],
      ],
    ];
    for (let r = 0; r < 20; r++)
      cases.push([`random ${r}`, Array.from({ length: 2 + rng.int(12) }, () => [rng.next(), rng.next(), rng.next()].slice(0, 2 + (r % 2)))]);
    for (const [name, objs] of cases) assert.deepEqual(crowdingDistance(objs), naiveCrowding(objs), name);
  });

  test('the worked example: boundaries infinite, an inner point sums its normalised neighbour gaps', () => {
    assert.deepEqual(
      crowdingDistance([
        [0, 4],
        [1, 2],
        [4, 0],
      ]),
      [Infinity, 4 / 4 + 4 / 4, Infinity],
    );
  });

  test('nonDominatedSortN equals peeling by brute force, and the 2-D sweep on two objectives', () => {
    const rng = new Rng(9);
    for (let r = 0; r < 30; r++) {
      const m = 2 + (r % 2);
      const pts = Array.from({ length: 1 + rng.int(25) }, () => Array.from({ length: m }, () => rng.int(5)));
      const dom = (a: number[], b: number[]): boolean => a.every((x, k) => x <= b[k]) && a.some((x, k) => x < b[k]);
      const left = new Set(pts.map((_, i) => i));
      const peeled: number[][] = [];
      while (left.size) {
        const f = [...left].filter((i) => ![...left].some((j) => dom(pts[j], pts[i])));
        peeled.push(f);
        f.forEach((i) => left.delete(i));
      }
      assert.deepEqual(nonDominatedSortN(pts), peeled);
      if (m === 2)
        assert.deepEqual(
          nonDominatedSort(pts.map(([a, b]) => ({ cost: a, value: -b }))).fronts.map((f) => [...f].sort((x, y) => x - y)),
          peeled,
        );
    }
  });
});

describe('synthetic benchmark problem', () => {
  test('the exact front equals brute force over every candidate of a small instance', () => {
    const p = makeProblem({ widths: [8, 8, 16], minKeepRatio: 0.25, channelStep: 4 });
    const levels = p.space.groups.map((g) => (g.channels === 8 ? [4, 8] : [4, 8, 12, 16]));
    const points: { cost: number; value: number }[] = [];
    const rec = (g: number, c: number[]): void => {
      if (g === levels.length) {
        const cand: Candidate = { channels: c };
        points.push({ cost: p.costOf(cand).macs / p.baseCost.macs, value: p.accuracy(cand) });
        return;
      }
      for (const n of levels[g]) rec(g + 1, [...c, n]);
    };
    rec(0, []);
    const brute = paretoFront(points);
    const exact = exactFront(p);
    assert.equal(exact.length, brute.length);
    exact.forEach((q, i) => {
      assert.ok(Math.abs(q.cost - brute[i].cost) < 1e-12 && Math.abs(q.value - brute[i].value) < 1e-12, `point ${i}`);
    });
  });

  test('ResNet-20 on 32x32: 40.8 MMACs by hand (stem, 18 block convs, 2 projections, dense)', () => {
    const p = makeProblem();
    const conv = (cin: number, cout: number, k: number, hw: number): number => k * k * cin * cout * hw * hw;
    const hand =
      conv(3, 16, 3, 32) +
      6 * conv(16, 16, 3, 32) +
      conv(16, 32, 3, 16) +
      5 * conv(32, 32, 3, 16) +
      conv(16, 32, 1, 16) +
      conv(32, 64, 3, 8) +
      5 * conv(64, 64, 3, 8) +
      conv(32, 64, 1, 8) +
      64 * 10;
    assert.equal(p.baseCost.macs, hand);
  });
});
