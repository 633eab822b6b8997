import type { Candidate, SearchSpace } from '../core/space.js';
import type { Cost } from '../core/types.js';
import type { Rng } from '../core/rng.js';
import type { Json } from '../store/types.js';

/** What a controller proposes: a candidate plus its own bookkeeping (stored with the trial). */
export interface Proposal {
  readonly candidate: Candidate;
  /** Which controller proposed it, when a composite controller delegates (stored with the trial). */
  readonly source?: string;
  readonly meta: { readonly target?: number; readonly [k: string]: Json | undefined };
}

/** What a controller is told after an evaluation. */
export interface Observation {
  readonly candidate: Candidate;
  readonly cost: Cost;
  readonly meta?: Json;
  /** Validation accuracy after BN re-calibration; null when the evaluation failed. */
  readonly proxyAccuracy: number | null;
}

/** Everything a controller may know of the world: pure data and pure functions, nothing that does IO. */
export interface ControllerContext {
  readonly space: SearchSpace;
  /** MACs/params of a candidate from topology alone (src/model/flops.ts). */
  readonly costOf: (c: Candidate) => Cost;
  readonly baseCost: Cost;
  /** FLOPs targets as fractions of the base model's MACs, e.g. [0.5, 0.3]. */
  readonly targets: readonly number[];
  /** Half-width of the accepted FLOPs window around a target, as a fraction of base MACs (e.g. 0.03). */
  readonly window: number;
  readonly rng: Rng;
}

/**
 * Ask/tell search controller (STYLE.md principle 1): never evaluates, never does IO, no clock.
 * Its state snapshots to JSON so a resumed study continues the same sequence.
 */
export interface Controller {
  readonly name: string;
  /** Up to `n` new proposals; fewer (or none) when the controller is exhausted. */
  ask(n: number): Proposal[];
  tell(observations: readonly Observation[]): void;
  /** True when the controller has nothing more to propose (e.g. a finished uniform sweep). */
  done(): boolean;
  snapshot(): Json;
  restore(state: Json): void;
}
