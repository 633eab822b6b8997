import type { Rng } from '../core/rng.js';
import type { Candidate, SearchSpace } from '../core/space.js';
import type { Cost, Json } from '../core/types.js';

/** Where a trial sits in a lineage : `proxy` = adaptive BN, `adapt` = short fine-tune. */
export type ProposalStage = 'proxy' | 'adapt';

/**
 * A proposal's bookkeeping, stored with its trial. Every built-in controller sets `controller` and
 * the step that produced it (`generation`, `iteration` or `episode`). `target` names the FLOPs target
 * whose window the candidate lies in; `windowExempt` marks a candidate that walks toward a target
 * without being inside any window (NetAdapt's intermediate steps). `stage` and `parent` (the
 * candidate key of the trial whose weights to start from) ask the loop for lineage.
 */
export interface ProposalMeta {
  readonly target?: number;
  readonly controller?: string;
  readonly generation?: number;
  readonly iteration?: number;
  readonly episode?: number;
  readonly windowExempt?: boolean;
  readonly stage?: ProposalStage;
  readonly parent?: string;
  readonly [k: string]: Json | undefined;
}

/** What a controller proposes: a candidate plus its own bookkeeping (stored with the trial). */
export interface Proposal {
  readonly candidate: Candidate;
  /** Which controller proposed it, when a composite controller delegates (stored with the trial). */
  readonly source?: string;
  readonly meta: ProposalMeta;
}

/** What a controller is told after an evaluation. */
export interface Observation {
  readonly candidate: Candidate;
  readonly cost: Cost;
  readonly meta?: Json;
  /** Validation accuracy after BN re-calibration; null when the evaluation failed. */
  readonly proxyAccuracy: number | null;
  /** Milliseconds per image, when the evaluator measured it. */
  readonly latencyMs?: number;
  /** Weights of the pruned model (also in `cost.params`; here when the loop reports it apart). */
  readonly params?: number;
  /** The stage that produced `proxyAccuracy`. Default `proxy`. */
  readonly stage?: ProposalStage | 'finetune';
  /** The trial's number in the store. */
  readonly trial?: number;
  /** The trial whose weights it started from (null: the base model). */
  readonly parent?: number | null;
}

/**
 * Per-group description for learning controllers (AMC's layer embedding), plain data derived from
 * the model analysis by the caller (controllers never import src/model). One per search-space group,
 * describing the group's first producer layer.
 */
export interface GroupDescriptor {
  readonly kind: 'conv' | 'depthwise' | 'separable' | 'dense';
  readonly inChannels: number;
  readonly outChannels: number;
  readonly stride: number;
  /** Kernel height × width. */
  readonly kernel: number;
  /** Weights of the group's layers (unpruned). */
  readonly params: number;
  /** MACs of the group's layers (unpruned). */
  readonly macs: number;
}

/** Everything a controller may know of the world: pure data and pure functions, nothing that does IO. */
export interface ControllerContext {
  readonly space: SearchSpace;
  /** MACs/params of a candidate from topology alone (src/model/flops.ts). */
  readonly costOf: (c: Candidate) => Cost;
  readonly baseCost: Cost;
  /** Targets as fractions of the base model's MACs (or of its latency, with `fractionOf`), e.g. [0.5, 0.3]. */
  readonly targets: readonly number[];
  /**
   * The constrained cost of a candidate as a fraction of the base model's: its predicted latency
   * over the base's for latency targets (src/latency/). Absent: MACs over base MACs.
   */
  readonly fractionOf?: (c: Candidate) => number;
  /** Half-width of the accepted FLOPs window around a target, as a fraction of base MACs (e.g. 0.03). */
  readonly window: number;
  readonly rng: Rng;
  /** One descriptor per group (rl's state embedding); derived from costOf when absent. */
  readonly groups?: readonly GroupDescriptor[];
  /** Channel importance per group, `importance[g][i]` for channel i (global's threshold). */
  readonly importance?: readonly (readonly number[])[];
}

/**
 * Ask/tell search controller : never evaluates, never does IO, no clock.
 * Its state snapshots to JSON so a resumed study continues the same sequence.
 *
 * Contract with the loop: `ask(n)` may return fewer than `n` (none while a generation, iteration or
 * episode waits for its results) without being `done()`. Controllers match observations to their
 * proposals by candidate key, so a proposal whose candidate was evaluated before must be told
 * again (with the stored result) or it is never resolved.
 */
export interface Controller {
  readonly name: string;
  /** Up to `n` new proposals; fewer (or none) when waiting for results or exhausted. */
  ask(n: number): Proposal[];
  tell(observations: readonly Observation[]): void;
  /** True when the controller has nothing more to propose (e.g. a finished uniform sweep). */
  done(): boolean;
  snapshot(): Json;
  restore(state: Json): void;
}
