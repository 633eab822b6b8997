import { type ControllerOptionsOf, controllerOptions } from '../config/sections/search.js';
import type { Rng } from '../core/rng.js';
import { type Candidate, candidateKey, isSkipped } from '../core/space.js';
import type { Json } from '../core/types.js';
import { type BestOfTarget, badSnapshot, ResultLog, rngFromJson, rngJson, sameTargets, snapshotObject, steerToWindow, targetFeasible } from './common.js';
import type { Controller, ControllerContext, Observation, Proposal } from './types.js';

/** `search.controller` options (defaults in src/config/sections/search.ts), and a knob that is not one. */
export type RandomOptions = ControllerOptionsOf<'random'> & {
  /** Sampling tries per proposal before a target is declared saturated (an implementation limit, not a config option). Default 2000. */
  readonly maxTries?: number;
};

/** Why a target gets no more proposals. */
type TargetStatus = 'open' | 'full' | 'infeasible' | 'saturated';

/**
 * Random search inside FLOPs windows, after EagleEye (Li et al., ECCV 2020): sample per-group keep
 * ratios at random, reject any candidate whose MACs fall outside `target ± window` *before* it is
 * evaluated, and let the evaluator rank the survivors.
 *
 * Plain rejection almost never hits a low target (0.3 of the base MACs with ratios drawn in
 * [0.25, 1] is a tail event), so one try here is:
 *  1. draw a *shape* u_i ~ U[minKeepRatio, 1] per prunable group (skipped groups stay 1);
 *  2. draw an *aim* uniformly inside the window, so accepted candidates spread over it;
 *  3. scale the shape into the window (`steerToWindow`), taking the candidate nearest the aim that
 *     was never proposed before.
 * Targets are served round-robin. A target whose window cannot be reached even by the all-minimum
 * candidate is `infeasible`; one that yields no new candidate in `maxTries` tries is `saturated`.
 * Either status is permanent, so `ask()` never spins; `done()` is true once no target is open.
 *
 * Snapshot: the proposals depend on the seed alone (never on results), so the snapshot keeps the
 * initial RNG state and the number of proposals; restore replays them. A few numbers, however long
 * the study.
 */
export class RandomController implements Controller {
  readonly name = 'random';
  private seed: Json;
  private rng!: Rng;
  private readonly log = new ResultLog();
  private proposed!: Set<string>;
  private cursor!: number;
  private counts!: number[];
  private status!: TargetStatus[];

  private readonly options: RandomOptions;

  constructor(
    private readonly ctx: ControllerContext,
    given: Partial<RandomOptions> = {},
  ) {
    const { maxTries, ...spec } = given;
    this.options = { ...controllerOptions('random', spec), maxTries };
    this.seed = rngJson(ctx.rng);
    this.reset(ctx.rng);
  }

  ask(n: number): Proposal[] {
    const out: Proposal[] = [];
    while (out.length < n) {
      const t = this.nextOpenTarget();
      if (t === undefined) break;
      this.cursor = (t + 1) % this.ctx.targets.length;
      const target = this.ctx.targets[t];
      if (!targetFeasible(this.ctx, target)) {
        this.status[t] = 'infeasible';
        continue;
      }
      const candidate = this.sample(target);
      if (candidate === undefined) {
        this.status[t] = 'saturated';
        continue;
      }
      this.proposed.add(candidateKey(candidate));
      this.counts[t]++;
      if (this.options.perTarget !== null && this.counts[t] >= this.options.perTarget) this.status[t] = 'full';
      out.push({ candidate, meta: { target, controller: this.name, iteration: this.proposed.size } });
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
    return { version: 2, seed: this.seed, targets: [...this.ctx.targets], proposed: this.proposed.size, ...this.log.toJson() };
  }

  restore(state: Json): void {
    const s = snapshotObject(state, this.name, 2);
    sameTargets(s, this.ctx, this.name);
    if (typeof s.proposed !== 'number') throw badSnapshot(this.name, 'malformed `proposed`');
    this.log.load(s, this.name);
    this.seed = rngJson(rngFromJson(s.seed, this.name));
    this.reset(rngFromJson(s.seed, this.name));
    if (this.ask(s.proposed).length !== s.proposed) throw badSnapshot(this.name, `cannot replay ${s.proposed} proposals`);
  }

  private reset(rng: Rng): void {
    this.rng = rngFromJson(rngJson(rng), this.name);
    this.proposed = new Set();
    this.cursor = 0;
    this.counts = this.ctx.targets.map(() => 0);
    this.status = this.ctx.targets.map(() => 'open');
  }

  private nextOpenTarget(): number | undefined {
    const k = this.ctx.targets.length;
    for (let i = 0; i < k; i++) {
      const t = (this.cursor + i) % k;
      if (this.status[t] === 'open') return t;
    }
    return undefined;
  }

  private sample(target: number): Candidate | undefined {
    const { space, window } = this.ctx;
    const minKeep = space.options.minKeepRatio;
    const fresh = (c: Candidate): boolean => !this.proposed.has(candidateKey(c));
    for (let tryNo = 0; tryNo < (this.options.maxTries ?? 2000); tryNo++) {
      const shape = space.groups.map((_, i) => (isSkipped(space, i) ? 1 : this.rng.uniform(minKeep, 1)));
      const aim = target + this.rng.uniform(-window, window);
      const c = steerToWindow(this.ctx, shape, target, aim, fresh);
      if (c !== undefined) return c;
    }
    return undefined;
  }
}
