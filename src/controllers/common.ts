/** Bookkeeping shared by the built-in controllers (pure: no IO, no clock). */
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { candidateKey, type Candidate } from '../core/space.js';
import type { Json } from '../store/types.js';
import type { ControllerContext, Observation } from './types.js';

/** MACs of a candidate as a fraction of the base model's. */
export function macsFraction(ctx: ControllerContext, c: Candidate): number {
  return ctx.costOf(c).macs / ctx.baseCost.macs;
}

/** Best proxy accuracy seen per target (for logging; neither built-in controller learns from it). */
export interface BestOfTarget {
  readonly target: number;
  readonly key: string;
  readonly proxyAccuracy: number;
  readonly macsFraction: number;
}

/** Bookkeeping shared by the controllers: which keys were proposed and the best result per target. */
export class ProposalLog {
  readonly proposed = new Set<string>();
  best: BestOfTarget[] = [];
  told = 0;

  record(observations: readonly Observation[], baseMacs: number): void {
    for (const o of observations) {
      this.told++;
      const target = metaTarget(o.meta);
      if (target === undefined || o.proxyAccuracy === null) continue;
      const i = this.best.findIndex((b) => b.target === target);
      if (i >= 0 && this.best[i].proxyAccuracy >= o.proxyAccuracy) continue;
      const entry = { target, key: candidateKey(o.candidate), proxyAccuracy: o.proxyAccuracy, macsFraction: o.cost.macs / baseMacs };
      if (i >= 0) this.best[i] = entry;
      else this.best.push(entry);
    }
  }

  toJson(): { proposed: Json; best: Json; told: Json } {
    return { proposed: [...this.proposed], best: this.best.map((b) => ({ ...b })), told: this.told };
  }

  load(state: { proposed?: unknown; best?: unknown; told?: unknown }, controller: string): void {
    if (!Array.isArray(state.proposed) || !Array.isArray(state.best) || typeof state.told !== 'number') {
      throw badSnapshot(controller, 'missing `proposed`, `best` or `told`');
    }
    this.proposed.clear();
    for (const k of state.proposed) this.proposed.add(String(k));
    this.best = state.best.map((b) => ({ ...(b as BestOfTarget) }));
    this.told = state.told;
  }
}

function metaTarget(meta: Json | undefined): number | undefined {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return undefined;
  return typeof meta.target === 'number' ? meta.target : undefined;
}

export function badSnapshot(controller: string, why: string): AutopruneError {
  return new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Cannot restore the \`${controller}\` controller: ${why}`);
}
