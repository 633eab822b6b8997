import { Rng } from '../core/rng.js';
import { candidateFromRatios, candidateKey, isSkipped, type Candidate } from '../core/space.js';
import type { Json } from '../store/types.js';
import { badSnapshot, macsFraction, ProposalLog, type BestOfTarget } from './common.js';
import type { Controller, ControllerContext, Observation, Proposal } from './types.js';

export interface RandomOptions {
  /** Stop proposing for a target after this many proposals. Default: no limit. */
  readonly perTarget?: number;
  /** Sampling tries per proposal before a target is declared saturated. Default 2000. */
  readonly maxTries?: number;
}

/** Why a target gets no more proposals. */
type TargetStatus = 'open' | 'full' | 'infeasible' | 'saturated';

/** Bisection steps on the common scale factor; 2^-40 of the range is far below one channel. */
const SCALE_STEPS = 40;

/**
 * Random search inside FLOPs windows, after EagleEye (Li et al., ECCV 2020): sample per-group keep
 * ratios at random, reject any candidate whose MACs fall outside `target ± window` *before* it is
 * evaluated, and let the evaluator rank the survivors.
 *
 * Plain rejection almost never hits a low target (0.3 of the base MACs with ratios drawn in
 * [0.25, 1] is a tail event), so one try here is:
 *  1. draw a *shape* u_i ~ U[minKeepRatio, 1] per prunable group (skipped groups stay 1);
 *  2. draw an *aim* uniformly inside the window, so accepted candidates spread over it;
 *  3. bisect a common scale s in [0, 1/minKeepRatio] on ratios clamp(s * u_i, minKeepRatio, 1):
 *     MACs grow monotonically with s, from all-minimum to the full model;
 *  4. of the rounded candidates met on the way, accept the one nearest the aim that lies in the
 *     window and was never proposed before.
 * The relative layer-to-layer pattern stays EagleEye's uniform draw; only its overall level is
 * steered. Targets are served round-robin. A target whose window cannot be reached even by the
 * all-minimum candidate is `infeasible`; one that yields no new candidate in `maxTries` tries is
 * `saturated` (its window is exhausted or unreachable by rounding). Either status is permanent and
 * kept in the snapshot, so `ask()` never spins; `done()` is true once no target is open.
 */
export class RandomController implements Controller {
  readonly name = 'random';
  private rng: Rng;
  private readonly log = new ProposalLog();
  private cursor = 0;
  private counts: number[];
  private status: TargetStatus[];

  constructor(
    private readonly ctx: ControllerContext,
    private readonly options: RandomOptions = {},
  ) {
    this.rng = ctx.rng;
    this.counts = ctx.targets.map(() => 0);
    this.status = ctx.targets.map(() => 'open');
  }

  ask(n: number): Proposal[] {
    const out: Proposal[] = [];
    while (out.length < n) {
      const t = this.nextOpenTarget();
      if (t === undefined) break;
      this.cursor = (t + 1) % this.ctx.targets.length;
      const target = this.ctx.targets[t];
      if (!this.feasible(target)) {
        this.status[t] = 'infeasible';
        continue;
      }
      const candidate = this.sample(target);
      if (candidate === undefined) {
        this.status[t] = 'saturated';
        continue;
      }
      this.log.proposed.add(candidateKey(candidate));
      this.counts[t]++;
      if (this.options.perTarget !== undefined && this.counts[t] >= this.options.perTarget) this.status[t] = 'full';
      out.push({ candidate, meta: { target } });
    }
    return out;
  }

  tell(observations: readonly Observation[]): void {
    this.log.record(observations, this.ctx.baseCost.macs);
  }

  done(): boolean {
    return this.nextOpenTarget() === undefined;
  }

  /** Best proxy accuracy per target so far, for logs. */
  bestByTarget(): readonly BestOfTarget[] {
    return this.log.best;
  }

  /** Per target: `open`, `full` (perTarget reached), `infeasible` or `saturated`. */
  targetStatus(): readonly { target: number; status: TargetStatus; proposed: number }[] {
    return this.ctx.targets.map((target, i) => ({ target, status: this.status[i], proposed: this.counts[i] }));
  }

  snapshot(): Json {
    return {
      version: 1,
      rng: [...this.rng.snapshot().s],
      targets: [...this.ctx.targets],
      cursor: this.cursor,
      counts: [...this.counts],
      status: [...this.status],
      ...this.log.toJson(),
    };
  }

  restore(state: Json): void {
    if (state === null || typeof state !== 'object' || Array.isArray(state) || state.version !== 1) {
      throw badSnapshot(this.name, 'expected a version 1 snapshot object');
    }
    const { rng, targets, cursor, counts, status } = state;
    if (JSON.stringify(targets) !== JSON.stringify(this.ctx.targets)) {
      throw badSnapshot(this.name, `its targets ${JSON.stringify(targets)} differ from the config's ${JSON.stringify(this.ctx.targets)}`);
    }
    if (!isNumbers(rng, 4) || typeof cursor !== 'number' || !isNumbers(counts, this.ctx.targets.length)) {
      throw badSnapshot(this.name, 'malformed `rng`, `cursor` or `counts`');
    }
    if (!Array.isArray(status) || status.length !== this.ctx.targets.length) {
      throw badSnapshot(this.name, 'malformed `status`');
    }
    this.log.load(state, this.name);
    this.rng = new Rng({ s: [rng[0], rng[1], rng[2], rng[3]] });
    this.cursor = cursor;
    this.counts = [...counts];
    this.status = status.map((s) => String(s) as TargetStatus);
  }

  private nextOpenTarget(): number | undefined {
    const k = this.ctx.targets.length;
    for (let i = 0; i < k; i++) {
      const t = (this.cursor + i) % k;
      if (this.status[t] === 'open') return t;
    }
    return undefined;
  }

  /** Can any candidate land in the window? The cheapest one is all groups at their minimum. */
  private feasible(target: number): boolean {
    const cheapest = candidateFromRatios(this.ctx.space, this.ctx.space.groups.map(() => this.ctx.space.options.minKeepRatio));
    return macsFraction(this.ctx, cheapest) <= target + this.ctx.window;
  }

  private sample(target: number): Candidate | undefined {
    const { space, window } = this.ctx;
    const minKeep = space.options.minKeepRatio;
    const maxTries = this.options.maxTries ?? 2000;
    for (let tryNo = 0; tryNo < maxTries; tryNo++) {
      const shape = space.groups.map((_, i) => (isSkipped(space, i) ? 1 : this.rng.uniform(minKeep, 1)));
      const aim = target + this.rng.uniform(-window, window);
      let lo = 0;
      let hi = 1 / minKeep;
      let best: { c: Candidate; miss: number } | undefined;
      for (let step = 0; step < SCALE_STEPS; step++) {
        const s = (lo + hi) / 2;
        const c = candidateFromRatios(
          space,
          shape.map((u) => Math.min(1, Math.max(minKeep, s * u))),
        );
        const f = macsFraction(this.ctx, c);
        if (Math.abs(f - target) <= window && !this.log.proposed.has(candidateKey(c))) {
          const miss = Math.abs(f - aim);
          if (best === undefined || miss < best.miss) best = { c, miss };
        }
        if (f < aim) lo = s;
        else hi = s;
      }
      if (best !== undefined) return best.c;
    }
    return undefined;
  }
}

function isNumbers(v: Json | undefined, length: number): v is number[] {
  return Array.isArray(v) && v.length === length && v.every((x) => typeof x === 'number');
}
