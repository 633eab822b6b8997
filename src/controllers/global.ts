/**
 * Global pruning, the baseline Torch-Pruning users know (Fang et al., CVPR 2023, `global_pruning`):
 * channel importance is normalised within each group (by its mean, max or sum, so groups of
 * different scale compare), one threshold τ is applied across all groups, and τ is bisected so the
 * candidate's MACs come nearest each FLOPs target. A group keeps its channels scoring >= τ, rounded
 * up to the space's next allowed count (never under its minimum; skipped groups stay full). One
 * proposal per target; deterministic (no RNG). Needs `importance` in the context (per-group
 * channel scores, computed by the study with the configured criterion).
 */
import { type ControllerOptionsOf, controllerOptions } from '../config/sections/search.js';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { type Candidate, candidateKey } from '../core/space.js';
import type { Json } from '../core/types.js';
import { badSnapshot, channelLevels, macsFraction, ResultLog, snapshotObject } from './common.js';
import type { Controller, ControllerContext, Observation, Proposal } from './types.js';

/** `search.controller` options (defaults in src/config/sections/search.ts). */
export type GlobalOptions = ControllerOptionsOf<'global'>;

export class GlobalController implements Controller {
  readonly name = 'global';
  private readonly plan: Proposal[] = [];
  private readonly log = new ResultLog();
  private cursor = 0;

  constructor(
    private readonly ctx: ControllerContext,
    given: Partial<GlobalOptions> = {},
  ) {
    const options = controllerOptions('global', given);
    const scores = normalisedScores(ctx, options.normalize);
    const thresholds = [...new Set(scores.flat())].sort((a, b) => a - b);
    const seen = new Set<string>();
    for (const target of ctx.targets) {
      const { candidate, threshold } = nearestTarget(ctx, scores, thresholds, target);
      if (seen.has(candidateKey(candidate))) continue;
      seen.add(candidateKey(candidate));
      // The nearest threshold can still miss a coarse window: then the proposal says so.
      const exempt = Math.abs(macsFraction(ctx, candidate) - target) > ctx.window + 1e-12 ? { windowExempt: true } : {};
      this.plan.push({ candidate, meta: { target, controller: this.name, iteration: this.plan.length, threshold, ...exempt } });
    }
  }

  ask(n: number): Proposal[] {
    const out = this.plan.slice(this.cursor, this.cursor + Math.max(0, n));
    this.cursor += out.length;
    return out;
  }

  tell(observations: readonly Observation[]): void {
    this.log.record(observations, this.ctx.baseCost.macs);
  }

  done(): boolean {
    return this.cursor >= this.plan.length;
  }

  snapshot(): Json {
    return { version: 1, planLength: this.plan.length, cursor: this.cursor, ...this.log.toJson() };
  }

  restore(state: Json): void {
    const s = snapshotObject(state, this.name, 1);
    if (s.planLength !== this.plan.length || typeof s.cursor !== 'number')
      throw badSnapshot(this.name, `its plan had ${String(s.planLength)} proposals, this config gives ${this.plan.length}`);
    this.log.load(s, this.name);
    this.cursor = s.cursor;
  }
}

function normalisedScores(ctx: ControllerContext, how: 'mean' | 'max' | 'sum'): number[][] {
  const imp = ctx.importance;
  if (imp === undefined || imp.length !== ctx.space.groups.length) {
    throw new AutopruneError(
      ErrorCodes.INVALID_ARGUMENT,
      `The \`global\` controller needs channel importance for each of the ${ctx.space.groups.length} groups, got ${imp?.length ?? 'none'}`,
    );
  }
  return imp.map((s, g) => {
    if (s.length !== ctx.space.groups[g].channels) {
      throw new AutopruneError(
        ErrorCodes.INVALID_ARGUMENT,
        `Expected ${ctx.space.groups[g].channels} importance scores for group \`${ctx.space.groups[g].id}\`, got ${s.length}`,
      );
    }
    const sum = s.reduce((a, b) => a + b, 0);
    const d = how === 'max' ? Math.max(...s) : how === 'sum' ? sum : sum / s.length;
    return s.map((x) => (d > 0 ? x / d : 1));
  });
}

/** Channels kept per group at threshold τ: scores >= τ, rounded up to an allowed count. */
function atThreshold(ctx: ControllerContext, scores: readonly number[][], tau: number): Candidate {
  return {
    channels: scores.map((s, g) => {
      const keep = s.filter((x) => x >= tau).length;
      const levels = channelLevels(ctx.space, g);
      return levels.find((n) => n >= keep) ?? levels[levels.length - 1];
    }),
  };
}

/** Bisection over the sorted distinct scores (MACs fall as τ rises), then the nearer neighbour. */
function nearestTarget(
  ctx: ControllerContext,
  scores: readonly number[][],
  thresholds: readonly number[],
  target: number,
): { candidate: Candidate; threshold: number } {
  const frac = (i: number): number => macsFraction(ctx, atThreshold(ctx, scores, thresholds[i]));
  let lo = 0; // frac(lo) is the largest
  let hi = thresholds.length - 1;
  if (frac(hi) >= target) lo = hi;
  else {
    // Invariant: frac(lo) >= target > frac(hi).
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (frac(mid) >= target) lo = mid;
      else hi = mid;
    }
    if (Math.abs(frac(hi) - target) < Math.abs(frac(lo) - target)) lo = hi;
  }
  return { candidate: atThreshold(ctx, scores, thresholds[lo]), threshold: thresholds[lo] };
}
