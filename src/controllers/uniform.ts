import { type ControllerOptionsOf, controllerOptions } from '../config/sections/search.js';
import { type Candidate, candidateFromRatios, candidateKey } from '../core/space.js';
import type { Json } from '../core/types.js';
import { type BestOfTarget, badSnapshot, macsFraction, ResultLog, snapshotObject } from './common.js';
import type { Controller, ControllerContext, Observation, Proposal } from './types.js';

/** `search.controller` options (defaults in src/config/sections/search.ts). `steps`: extra evenly spaced ratios minKeepRatio + (1 - minKeepRatio) * j / steps, j = 0..steps-1. */
export type UniformOptions = ControllerOptionsOf<'uniform'>;

interface PlannedProposal {
  readonly candidate: Candidate;
  readonly meta: { readonly target?: number; readonly ratio: number; readonly windowExempt?: boolean };
}

/** Bisection steps on the ratio; 2^-50 is far below the gap between two rounding breakpoints. */
const RATIO_STEPS = 50;

/**
 * The uniform baseline: one keep ratio r for every prunable group (skipped groups stay full).
 * For each target, r is found by bisection, using that MACs grow monotonically with r: the search
 * brackets the rounding breakpoint where the cost crosses the target, and the nearer of the two
 * rounded candidates around it is the closest uniform candidate to the target (a target below the
 * all-minimum or above the full model gets that end). Then `steps` evenly spaced ratios follow.
 * Each distinct candidate is proposed once; `done()` when the sweep is exhausted. Deterministic:
 * the plan ignores the seed (the RNG is not used).
 */
export class UniformController implements Controller {
  readonly name = 'uniform';
  private readonly plan: readonly PlannedProposal[];
  private readonly log = new ResultLog();
  private readonly proposed = new Set<string>();
  private cursor = 0;

  constructor(
    private readonly ctx: ControllerContext,
    given: Partial<UniformOptions> = {},
  ) {
    const options = controllerOptions('uniform', given);
    const minKeep = ctx.space.options.minKeepRatio;
    const steps = options.steps;
    const perTarget = ctx.targets.map((target) => {
      const ratio = closestUniformRatio(ctx, target);
      const candidate = uniformCandidate(ctx, ratio);
      // The closest uniform candidate can miss a coarse window: then the proposal says so.
      const exempt = Math.abs(macsFraction(ctx, candidate) - target) > ctx.window + 1e-12 ? { windowExempt: true } : {};
      return { candidate, meta: { target, ratio, ...exempt } };
    });
    const swept = Array.from({ length: steps }, (_, j) => {
      const ratio = minKeep + ((1 - minKeep) * j) / steps;
      return { candidate: uniformCandidate(ctx, ratio), meta: { ratio } };
    });
    this.plan = [...perTarget, ...swept];
  }

  ask(n: number): Proposal[] {
    const out: Proposal[] = [];
    while (out.length < n && this.cursor < this.plan.length) {
      const p = this.plan[this.cursor++];
      const key = candidateKey(p.candidate);
      if (this.proposed.has(key)) continue;
      this.proposed.add(key);
      out.push({ candidate: p.candidate, meta: { ...p.meta, controller: this.name } });
    }
    return out;
  }

  tell(observations: readonly Observation[]): void {
    this.log.record(observations, this.ctx.baseCost.macs);
  }

  done(): boolean {
    return this.cursor >= this.plan.length;
  }

  bestByTarget(): readonly BestOfTarget[] {
    return this.log.best;
  }

  snapshot(): Json {
    return { version: 2, planLength: this.plan.length, cursor: this.cursor, ...this.log.toJson() };
  }

  /** The plan is a pure function of the config, so the cursor alone restores which keys were proposed. */
  restore(state: Json): void {
    const s = snapshotObject(state, this.name, 2);
    if (s.planLength !== this.plan.length || typeof s.cursor !== 'number') {
      throw badSnapshot(this.name, `its sweep had ${String(s.planLength)} steps, this config gives ${this.plan.length}`);
    }
    this.log.load(s, this.name);
    this.proposed.clear();
    for (const p of this.plan.slice(0, s.cursor)) this.proposed.add(candidateKey(p.candidate));
    this.cursor = s.cursor;
  }
}

function uniformCandidate(ctx: ControllerContext, ratio: number): Candidate {
  return candidateFromRatios(
    ctx.space,
    ctx.space.groups.map(() => ratio),
  );
}

/** The ratio in [minKeepRatio, 1] whose uniform candidate has MACs nearest `target` (ties: the cheaper). */
export function closestUniformRatio(ctx: ControllerContext, target: number): number {
  const cost = (r: number): number => macsFraction(ctx, uniformCandidate(ctx, r));
  let lo = ctx.space.options.minKeepRatio;
  let hi = 1;
  if (cost(lo) >= target) return lo;
  if (cost(hi) <= target) return hi;
  // Invariant: cost(lo) < target <= cost(hi).
  for (let i = 0; i < RATIO_STEPS && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (cost(mid) < target) lo = mid;
    else hi = mid;
  }
  return target - cost(lo) <= cost(hi) - target ? lo : hi;
}
