import { candidateFromRatios, candidateKey, type Candidate } from '../core/space.js';
import type { Json } from '../store/types.js';
import { ProposalLog, badSnapshot, macsFraction, type BestOfTarget } from './common.js';
import type { Controller, ControllerContext, Observation, Proposal } from './types.js';

export interface UniformOptions {
  /** Extra evenly spaced ratios minKeepRatio + (1 - minKeepRatio) * j / steps, j = 0..steps-1. Default 0. */
  readonly steps?: number;
}

interface PlannedProposal {
  readonly candidate: Candidate;
  readonly meta: { readonly target?: number; readonly ratio: number };
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
  private readonly log = new ProposalLog();
  private cursor = 0;

  constructor(
    private readonly ctx: ControllerContext,
    options: UniformOptions = {},
  ) {
    const minKeep = ctx.space.options.minKeepRatio;
    const steps = options.steps ?? 0;
    const perTarget = ctx.targets.map((target) => {
      const ratio = closestUniformRatio(ctx, target);
      return { candidate: uniformCandidate(ctx, ratio), meta: { target, ratio } };
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
      if (this.log.proposed.has(key)) continue;
      this.log.proposed.add(key);
      out.push({ candidate: p.candidate, meta: { ...p.meta } });
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
    return { version: 1, planLength: this.plan.length, cursor: this.cursor, ...this.log.toJson() };
  }

  restore(state: Json): void {
    if (state === null || typeof state !== 'object' || Array.isArray(state) || state.version !== 1) {
      throw badSnapshot(this.name, 'expected a version 1 snapshot object');
    }
    if (state.planLength !== this.plan.length || typeof state.cursor !== 'number') {
      throw badSnapshot(this.name, `its sweep had ${String(state.planLength)} steps, this config gives ${this.plan.length}`);
    }
    this.log.load(state, this.name);
    this.cursor = state.cursor;
  }
}

function uniformCandidate(ctx: ControllerContext, ratio: number): Candidate {
  return candidateFromRatios(ctx.space, ctx.space.groups.map(() => ratio));
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
