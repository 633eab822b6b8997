import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WithBaseline } from '../src/controllers/baseline.js';
import { RandomController } from '../src/controllers/random.js';
import { controllers, createController, createStudyController } from '../src/controllers/registry.js';
import type { Controller, ControllerContext, Observation, Proposal } from '../src/controllers/types.js';
import { closestUniformRatio, UniformController } from '../src/controllers/uniform.js';
import { Rng } from '../src/core/rng.js';
import { type Candidate, candidateFromRatios, candidateKey, fullCandidate, type SearchSpace, type SpaceOptions } from '../src/core/space.js';
import type { Cost } from '../src/core/types.js';
import type { Json } from '../src/store/types.js';

// A fake, pure cost model: a chain of 3x3 convs on 8x8 maps over 3 input channels, then a dense
// layer to 10 classes. macs = sum_i c_i * c_{i-1} * 9 * 64 + c_last * 10.
const CHANNELS = [16, 16, 32, 32, 64, 64];

function makeSpace(options: Partial<SpaceOptions> = {}, channels = CHANNELS): SearchSpace {
  return {
    groups: channels.map((c, i) => ({ id: `g${i}`, channels: c, layers: [`conv${i}`, `bn${i}`] })),
    options: { minKeepRatio: 0.25, channelStep: 1, skip: [], ...options },
  };
}

function fakeCost(c: Candidate): Cost {
  let macs = 0;
  let params = 0;
  let prev = 3;
  for (const ch of c.channels) {
    macs += ch * prev * 9 * 64;
    params += ch * prev * 9 + 4 * ch;
    prev = ch;
  }
  return { macs: macs + prev * 10, params: params + prev * 10 + 10 };
}

function makeCtx(over: { targets?: number[]; window?: number; seed?: number; space?: SearchSpace } = {}): ControllerContext {
  const space = over.space ?? makeSpace();
  return {
    space,
    costOf: fakeCost,
    baseCost: fakeCost(fullCandidate(space)),
    targets: over.targets ?? [0.7, 0.5, 0.3],
    window: over.window ?? 0.03,
    rng: new Rng(over.seed ?? 1),
  };
}

const frac = (ctx: ControllerContext, c: Candidate): number => ctx.costOf(c).macs / ctx.baseCost.macs;
const keysOf = (ps: readonly Proposal[]): string[] => ps.map((p) => candidateKey(p.candidate));

/** A deterministic fake evaluation so that tell() gets something. */
function observe(ctx: ControllerContext, ps: readonly Proposal[]): Observation[] {
  return ps.map((p) => ({
    candidate: p.candidate,
    cost: ctx.costOf(p.candidate),
    meta: p.meta as Json,
    proxyAccuracy: frac(ctx, p.candidate),
  }));
}

/** Every candidate of a (small) space, by brute force. */
function allCandidates(space: SearchSpace): Candidate[] {
  let vectors: number[][] = [[]];
  for (const g of space.groups) {
    const next: number[][] = [];
    for (const v of vectors) for (let n = 1; n <= g.channels; n++) next.push([...v, n]);
    vectors = next;
  }
  return vectors.map((channels) => ({ channels }));
}

describe('random controller (EagleEye-style)', () => {
  test('every proposal lies in its target window; targets round-robin; no repeated keys', () => {
    const ctx = makeCtx();
    const c = new RandomController(ctx);
    const ps = [...c.ask(7), ...c.ask(1), ...c.ask(22)];
    assert.equal(ps.length, 30);
    ps.forEach((p, i) => {
      assert.equal(p.meta.target, ctx.targets[i % 3]);
      const f = frac(ctx, p.candidate);
      assert.ok(Math.abs(f - p.meta.target!) <= ctx.window, `proposal ${i}: ${f} outside ${p.meta.target} ± ${ctx.window}`);
      const full = fullCandidate(ctx.space).channels;
      p.candidate.channels.forEach((n, g) => assert.ok(n >= Math.round(0.25 * full[g]) && n <= full[g]));
    });
    assert.equal(new Set(keysOf(ps)).size, ps.length);
    assert.equal(c.done(), false);
  });

  test('proposals spread over the window, not only its centre', () => {
    const ctx = makeCtx({ targets: [0.5], window: 0.05 });
    const fs = new RandomController(ctx).ask(60).map((p) => frac(ctx, p.candidate));
    assert.ok(Math.min(...fs) < 0.47 && Math.max(...fs) > 0.53, `range ${Math.min(...fs)}..${Math.max(...fs)}`);
  });

  test('skipped groups stay full; channelStep is respected', () => {
    const space = makeSpace({ skip: ['g1', 'g4'], channelStep: 8 });
    const ctx = makeCtx({ space, targets: [0.5] });
    for (const p of new RandomController(ctx).ask(20)) {
      assert.equal(p.candidate.channels[1], 16);
      assert.equal(p.candidate.channels[4], 64);
      assert.ok(
        p.candidate.channels.every((n) => n % 8 === 0),
        p.candidate.channels.join(','),
      );
    }
  });

  test('an impossible target gets no proposals, and does not hang', () => {
    // minKeepRatio 0.5 -> the cheapest candidate costs about 0.25 of the base: 0.05 is out of reach.
    const ctx = makeCtx({ space: makeSpace({ minKeepRatio: 0.5 }), targets: [0.05, 0.6] });
    const c = new RandomController(ctx);
    const ps = c.ask(10);
    assert.equal(ps.length, 10);
    assert.ok(ps.every((p) => p.meta.target === 0.6));
    assert.deepEqual(c.targetStatus()[0], { target: 0.05, status: 'infeasible', proposed: 0 });

    const only = new RandomController(makeCtx({ space: makeSpace({ minKeepRatio: 0.5 }), targets: [0.05] }));
    assert.deepEqual(only.ask(5), []);
    assert.equal(only.done(), true);
  });

  test('a saturated window stops after the try bound with what exists', () => {
    // Two groups of 4 channels: few candidates at all, so the window runs out.
    const space = makeSpace({}, [4, 4]);
    const ctx = makeCtx({ space, targets: [0.5], window: 0.1 });
    const inWindow = allCandidates(space).filter((c) => Math.abs(frac(ctx, c) - 0.5) <= 0.1);
    const c = new RandomController(ctx, { maxTries: 200 });
    const ps = c.ask(100);
    assert.ok(ps.length >= 1 && ps.length <= inWindow.length, `${ps.length} of ${inWindow.length}`);
    const allowed = new Set(inWindow.map(candidateKey));
    assert.ok(keysOf(ps).every((k) => allowed.has(k)));
    assert.equal(c.targetStatus()[0].status, 'saturated');
    assert.equal(c.done(), true);
    assert.deepEqual(c.ask(3), []);
  });

  test('perTarget caps proposals per target and then reports done', () => {
    const c = new RandomController(makeCtx({ targets: [0.5, 0.3] }), { perTarget: 3 });
    assert.equal(c.ask(100).length, 6);
    assert.equal(c.done(), true);
  });

  test('same seed -> identical proposals; different seed -> different', () => {
    const run = (seed: number): string[] => keysOf(new RandomController(makeCtx({ seed })).ask(12));
    assert.deepEqual(run(7), run(7));
    assert.notDeepEqual(run(7), run(8));
  });

  test('tell keeps the best proxy accuracy per target', () => {
    const ctx = makeCtx({ targets: [0.5, 0.3] });
    const c = new RandomController(ctx);
    const ps = c.ask(6);
    c.tell(observe(ctx, ps));
    c.tell([{ candidate: ps[0].candidate, cost: ctx.costOf(ps[0].candidate), meta: { target: 0.5 }, proxyAccuracy: null }]);
    const best = c.bestByTarget();
    assert.deepEqual(best.map((b) => b.target).sort(), [0.3, 0.5]);
    for (const b of best) {
      const mine = ps.filter((p) => p.meta.target === b.target).map((p) => frac(ctx, p.candidate));
      assert.equal(b.proxyAccuracy, Math.max(...mine));
    }
  });

  test('restoring a snapshot with other targets fails clearly', () => {
    const snap = new RandomController(makeCtx({ targets: [0.5] })).snapshot();
    const other = new RandomController(makeCtx({ targets: [0.3] }));
    assert.throws(() => other.restore(snap), /targets \[0.5\] differ from the config's \[0.3\]/);
  });
});

describe('uniform controller', () => {
  test('bisection picks the uniform ratio closest to each target (brute-force scan oracle)', () => {
    for (const space of [makeSpace(), makeSpace({ channelStep: 8 }), makeSpace({ skip: ['g2'], minKeepRatio: 0.1 })]) {
      const ctx = makeCtx({ space });
      // Channel counts here are <= 64, so breakpoints of the rounding are >= 1/8192 apart; a 1e-5
      // grid meets every distinct uniform candidate.
      const seen = new Map<string, number>();
      for (let r = space.options.minKeepRatio; r <= 1; r += 1e-5) {
        const c = candidateFromRatios(
          space,
          space.groups.map(() => Math.min(1, r)),
        );
        seen.set(candidateKey(c), frac(ctx, c));
      }
      for (const target of [0.05, 0.3, 0.42, 0.5, 0.7, 0.99]) {
        const bestMiss = Math.min(...[...seen.values()].map((f) => Math.abs(f - target)));
        const r = closestUniformRatio(ctx, target);
        const c = candidateFromRatios(
          space,
          space.groups.map(() => r),
        );
        assert.ok(Math.abs(Math.abs(frac(ctx, c) - target) - bestMiss) < 1e-12, `target ${target}: ratio ${r}`);
      }
    }
  });

  test('proposes one candidate per target, then the extra steps, then is done', () => {
    const ctx = makeCtx({ space: makeSpace({ skip: ['g0'] }), targets: [0.7, 0.5, 0.3] });
    const c = new UniformController(ctx, { steps: 4 });
    const first = c.ask(2);
    assert.deepEqual(
      first.map((p) => p.meta.target),
      [0.7, 0.5],
    );
    const rest = c.ask(100);
    assert.deepEqual(
      rest.map((p) => p.meta.target),
      [0.3, undefined, undefined, undefined, undefined],
    );
    assert.deepEqual(
      rest.slice(1).map((p) => p.meta.ratio),
      [0.25, 0.4375, 0.625, 0.8125],
    );
    for (const p of [...first, ...rest]) {
      assert.equal(p.candidate.channels[0], 16, 'skipped group stays full');
      const r = p.meta.ratio as number;
      assert.deepEqual(
        p.candidate,
        candidateFromRatios(
          ctx.space,
          ctx.space.groups.map(() => r),
        ),
      );
    }
    assert.equal(c.done(), true);
    assert.deepEqual(c.ask(5), []);
  });

  test('a candidate reached twice is proposed once', () => {
    // Both targets are below the all-minimum candidate: both map to it.
    const c = new UniformController(makeCtx({ space: makeSpace({ minKeepRatio: 0.5 }), targets: [0.1, 0.05] }));
    assert.equal(c.ask(10).length, 1);
    assert.equal(c.done(), true);
  });

  test('the seed does not matter (deterministic sweep)', () => {
    const run = (seed: number): string[] => keysOf(new UniformController(makeCtx({ seed }), { steps: 3 }).ask(10));
    assert.deepEqual(run(1), run(2));
  });
});

describe('both controllers', () => {
  const makers: ReadonlyArray<[string, (ctx: ControllerContext) => Controller]> = [
    ['random', (ctx) => createController({ name: 'random' }, ctx)],
    ['uniform', (ctx) => createController({ name: 'uniform', steps: 6 }, ctx)],
    ['random with the uniform baseline first', (ctx) => createStudyController({ name: 'random' }, ctx, true)],
  ];

  for (const [name, make] of makers) {
    test(`${name}: resume from a snapshot continues exactly like an uninterrupted run`, () => {
      const batches = [2, 3, 1, 4];
      const split = 2;

      const ctxA = makeCtx({ seed: 11 });
      const fresh = make(ctxA);
      const all: Proposal[][] = [];
      for (const n of batches) {
        const ps = fresh.ask(n);
        fresh.tell(observe(ctxA, ps));
        all.push(ps);
      }

      const ctxB = makeCtx({ seed: 11 });
      const before = make(ctxB);
      const resumedRun: Proposal[][] = [];
      for (const n of batches.slice(0, split)) {
        const ps = before.ask(n);
        before.tell(observe(ctxB, ps));
        resumedRun.push(ps);
      }
      const stored = JSON.parse(JSON.stringify(before.snapshot())) as Json;
      const ctxC = makeCtx({ seed: 999 }); // the restored RNG state must win over the new seed
      const after = make(ctxC);
      after.restore(stored);
      for (const n of batches.slice(split)) {
        const ps = after.ask(n);
        after.tell(observe(ctxC, ps));
        resumedRun.push(ps);
      }

      assert.deepEqual(resumedRun, all);
      assert.deepEqual(after.snapshot(), fresh.snapshot());
      assert.equal(after.done(), fresh.done());
    });

    test(`${name}: the snapshot is plain JSON`, () => {
      const c = make(makeCtx());
      c.ask(3);
      const snap = c.snapshot();
      assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap);
    });

    test(`${name}: restore rejects garbage`, () => {
      assert.throws(() => make(makeCtx()).restore({ version: 99 }), { name: 'AutopruneError', code: 'INVALID_ARGUMENT' });
    });
  }

  test('registry: createController builds the named controller', () => {
    assert.deepEqual(Object.keys(controllers), ['random', 'uniform', 'greedy', 'evolutionary', 'rl', 'global']);
    assert.throws(
      () => createController({ name: 'constructor' } as never, makeCtx()),
      /Unknown controller `constructor` \(expected one of: random, uniform, greedy/,
    );
    assert.ok(createController({ name: 'random', perTarget: 2 }, makeCtx()) instanceof RandomController);
    assert.ok(createController({ name: 'uniform' }, makeCtx()) instanceof UniformController);
  });
});

describe('the uniform baseline before the main controller', () => {
  test('proposes the uniform sweep first (one per target, source `uniform`), then the main controller', () => {
    const ctx = makeCtx({ targets: [0.7, 0.5, 0.3] });
    const c = createStudyController({ name: 'random' }, ctx, true);
    const ps = c.ask(1).concat(c.ask(1), c.ask(1), c.ask(2));
    assert.deepEqual(
      ps.map((p) => p.source),
      ['uniform', 'uniform', 'uniform', 'random', 'random'],
    );
    const sweep = keysOf(new UniformController(makeCtx({ targets: [0.7, 0.5, 0.3] })).ask(3));
    assert.deepEqual(keysOf(ps.slice(0, 3)), sweep);
    for (const p of ps.slice(3)) assert.ok(Math.abs(frac(ctx, p.candidate) - (p.meta.target as number)) <= ctx.window + 1e-12);
  });

  test('is left out when disabled or when the controller is uniform itself', () => {
    assert.equal(createStudyController({ name: 'random' }, makeCtx(), false).ask(1)[0].source, undefined);
    const u = createStudyController({ name: 'uniform' }, makeCtx(), true);
    assert.ok(u instanceof UniformController);
  });
});

describe('warm start from the baselines', () => {
  const warmCtx = (): ControllerContext => {
    const ctx = makeCtx({ targets: [0.5, 0.3] });
    const rng = new Rng(7);
    return { ...ctx, importance: ctx.space.groups.map((g) => Array.from({ length: g.channels }, () => rng.uniform(0, 1))) };
  };

  test('uniform then global are proposed, and the main controller waits until both are told', () => {
    const ctx = warmCtx();
    const c = createStudyController({ name: 'evolutionary', population: 4 }, ctx, true, 'baselines');
    const sweep = c.ask(10).concat(c.ask(10));
    assert.deepEqual(
      sweep.map((p) => p.source),
      ['uniform', 'uniform', 'global', 'global'],
    );
    // Held: nothing from the main controller while baseline results are out, and not done either.
    assert.deepEqual(c.ask(4), []);
    assert.equal(c.done(), false);
    c.tell(observe(ctx, sweep.slice(0, 3)));
    assert.deepEqual(c.ask(4), [], 'one baseline result still out');
    c.tell(observe(ctx, sweep.slice(3)));
    const first = c.ask(4);
    assert.equal(first.length, 4);
    assert.ok(first.every((p) => p.source === 'evolutionary'));
  });

  test("evolutionary's first generation is bred from the baselines, not drawn at random", () => {
    // Oracle: with a warm start every child is a variation of the four baseline candidates, so it
    // stays nearer to them (per-group keep ratios) than random shapes drawn by the same controller
    // without the hold, which breeds its first generation before hearing of any result.
    const ratios = (ctx: ControllerContext, c: Candidate) => c.channels.map((k, g) => k / ctx.space.groups[g].channels);
    const distance = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));
    const meanNearest = (hold: 'none' | 'baselines'): number => {
      const ctx = warmCtx();
      const c =
        hold === 'baselines'
          ? createStudyController({ name: 'evolutionary', population: 8 }, ctx, true, 'baselines')
          : new WithBaseline(
              [createController({ name: 'uniform' }, ctx), createController({ name: 'global' }, ctx)],
              createController({ name: 'evolutionary', population: 8 }, ctx),
            );
      const sweep = c.ask(2).concat(c.ask(2));
      const early = hold === 'none' ? c.ask(8) : [];
      c.tell(observe(ctx, sweep));
      const children = hold === 'none' ? early : c.ask(8);
      assert.equal(children.length, 8);
      const base = sweep.map((p) => ratios(ctx, p.candidate));
      return children.reduce((s, p) => s + Math.min(...base.map((b) => distance(ratios(ctx, p.candidate), b))), 0) / children.length;
    };
    const warm = meanNearest('baselines');
    const cold = meanNearest('none');
    assert.ok(warm < cold / 2, `children of the baselines lie nearer to them (${warm.toFixed(3)}) than random shapes (${cold.toFixed(3)})`);
  });

  test('the hold survives a snapshot and restore', () => {
    const ctx = warmCtx();
    const c = createStudyController({ name: 'evolutionary', population: 4 }, ctx, true, 'baselines');
    const sweep = c.ask(4).concat(c.ask(4));
    const snap = JSON.parse(JSON.stringify(c.snapshot()));
    const r = createStudyController({ name: 'evolutionary', population: 4 }, warmCtx(), true, 'baselines');
    r.restore(snap);
    assert.deepEqual(r.ask(4), []);
    r.tell(observe(ctx, sweep));
    assert.equal(r.ask(4).length, 4);
  });
});
