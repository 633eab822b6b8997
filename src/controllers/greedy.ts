/**
 * Greedy layer-wise simplification after NetAdapt (Yang et al., ECCV 2018, Algorithm 1). Starting
 * from the full model, iteration i proposes, per group, the candidate that removes just enough
 * channels from that group alone to cut MACs by ΔR_i = initialReduction · decay^(i-1) (a fraction of
 * the base MACs; never past the next target); the candidate with the best proxy accuracy becomes the
 * next start. It stops once the smallest target is reached, so its trajectory is itself a front.
 * Candidates between targets walk toward them: they carry `windowExempt: true`; a candidate inside a
 * target's window carries that `target`.
 *
 * Deviation from the paper, by default (`adapt: 'off'`): candidates are ranked by the adaptive-BN
 * proxy (EagleEye) rather than after a short fine-tune each. `adapt: 'candidates'` is the paper's
 * way: every candidate is proposed as a stage-`adapt` trial. `adapt: 'chosen'` fine-tunes only the
 * chosen one (an extra stage-`adapt` proposal of the same candidate), and the next iteration's
 * candidates name it as `parent` (its candidate key) so they start from its weights, as the paper's
 * long-term fine-tune chain does. Stage and parent are requests to the loop (lineage).
 */
import { type ControllerOptionsOf, controllerOptions } from '../config/sections/search.js';
import { candidateKey } from '../core/space.js';
import type { Json } from '../core/types.js';
import { accuracyOf, badSnapshot, channelLevels, inWindow, macsFraction, sameTargets, snapshotObject } from './common.js';
import type { Controller, ControllerContext, Observation, Proposal, ProposalMeta } from './types.js';

/** `search.controller` options (defaults in src/config/sections/search.ts). */
export type GreedyOptions = ControllerOptionsOf<'greedy'>;

interface Result {
  readonly channels: number[];
  readonly accuracy: number;
  readonly fraction: number;
}

type Phase = 'propose' | 'wait' | 'adapt' | 'wait-adapt' | 'finished';

export class GreedyController implements Controller {
  readonly name = 'greedy';
  private current: number[];
  private iteration = 1;
  private phase: Phase = 'propose';
  private planned: number[][] = [];
  private pending = new Set<string>();
  private results: Result[] = [];
  /** Candidate key of the fine-tuned model the next candidates start from (`adapt: 'chosen'`). */
  private parent: string | null = null;
  private readonly targets: number[];

  private readonly options: GreedyOptions;

  constructor(
    private readonly ctx: ControllerContext,
    given: Partial<GreedyOptions> = {},
  ) {
    this.options = controllerOptions('greedy', given);
    this.current = ctx.space.groups.map((g) => g.channels);
    this.targets = [...ctx.targets].sort((a, b) => b - a);
  }

  ask(n: number): Proposal[] {
    if (n <= 0) return [];
    if (this.phase === 'propose') this.proposeIteration();
    if (this.phase === 'adapt') {
      this.phase = 'wait-adapt';
      this.planned = [[...this.current]];
      this.pending = new Set([this.current.join(',')]);
    }
    return this.planned.splice(0, n).map((c) => ({ candidate: { channels: c }, meta: this.meta(c) }));
  }

  tell(observations: readonly Observation[]): void {
    for (const o of observations) {
      const key = candidateKey(o.candidate);
      if (!this.pending.delete(key)) continue;
      if (this.phase === 'wait')
        this.results.push({ channels: [...o.candidate.channels], accuracy: accuracyOf(o), fraction: macsFraction(this.ctx, o.candidate) });
    }
    if (this.pending.size > 0) return;
    if (this.phase === 'wait') this.choose();
    else if (this.phase === 'wait-adapt') {
      this.parent = this.current.join(',');
      this.phase = this.nextTarget() === undefined ? 'finished' : 'propose';
    }
  }

  done(): boolean {
    return this.phase === 'finished';
  }

  snapshot(): Json {
    return {
      version: 1,
      targets: [...this.ctx.targets],
      current: [...this.current],
      iteration: this.iteration,
      phase: this.phase,
      planned: this.planned.map((c) => [...c]),
      pending: [...this.pending],
      results: this.results.map((r) => ({ c: r.channels, a: r.accuracy, f: r.fraction })),
      parent: this.parent,
    };
  }

  restore(state: Json): void {
    const s = snapshotObject(state, this.name, 1);
    sameTargets(s, this.ctx, this.name);
    const { current, iteration, phase, planned, pending, results, parent } = s;
    if (!Array.isArray(current) || current.length !== this.ctx.space.groups.length || typeof iteration !== 'number') {
      throw badSnapshot(this.name, 'malformed `current` or `iteration`');
    }
    if (!Array.isArray(planned) || !Array.isArray(pending) || !Array.isArray(results) || typeof phase !== 'string')
      throw badSnapshot(this.name, 'malformed `pending` or `results`');
    this.current = current as number[];
    this.iteration = iteration;
    this.phase = phase as Phase;
    this.planned = planned as number[][];
    this.pending = new Set(pending.map(String));
    this.results = (results as { c: number[]; a: number; f: number }[]).map((r) => ({ channels: r.c, accuracy: r.a, fraction: r.f }));
    this.parent = typeof parent === 'string' ? parent : null;
  }

  /** The largest target not yet reached by the current model (its window's upper edge not met). */
  private nextTarget(): number | undefined {
    const f = macsFraction(this.ctx, { channels: this.current });
    return this.targets.find((t) => f > t + this.ctx.window + 1e-12);
  }

  private meta(channels: readonly number[]): ProposalMeta {
    const f = macsFraction(this.ctx, { channels });
    const target = this.targets.find((t) => inWindow(this.ctx, f, t));
    const adapt = this.phase === 'wait-adapt' || this.options.adapt === 'candidates';
    return {
      controller: this.name,
      iteration: this.iteration,
      ...(target === undefined ? { windowExempt: true } : { target }),
      ...(adapt ? { stage: 'adapt' as const } : {}),
      ...(this.parent === null ? {} : { parent: this.parent }),
    };
  }

  /** One candidate per group: that group alone cut until MACs drop to the iteration's goal. */
  private proposeIteration(): void {
    const next = this.nextTarget();
    if (next === undefined) {
      this.phase = 'finished';
      return;
    }
    const reduction = this.options.initialReduction * this.options.decay ** (this.iteration - 1);
    const goal = Math.max(macsFraction(this.ctx, { channels: this.current }) - reduction, next);
    const keys = new Set<string>();
    this.planned = [];
    this.ctx.space.groups.forEach((_, g) => {
      const c = this.cutGroup(g, goal);
      if (c === undefined || keys.has(c.join(','))) return;
      keys.add(c.join(','));
      this.planned.push(c);
    });
    this.pending = keys;
    this.results = [];
    this.phase = this.planned.length ? 'wait' : 'finished';
  }

  /** Fewest channels removed from group g alone to reach `goal`; its minimum if it cannot; undefined if it is already there. */
  private cutGroup(g: number, goal: number): number[] | undefined {
    const levels = channelLevels(this.ctx.space, g);
    let i = levels.indexOf(this.current[g]);
    if (i <= 0) return undefined;
    const c = [...this.current];
    while (i > 0) {
      c[g] = levels[--i];
      if (macsFraction(this.ctx, { channels: c }) <= goal) break;
    }
    return c;
  }

  private choose(): void {
    const best = this.results.reduce((a, b) => (b.accuracy > a.accuracy || (b.accuracy === a.accuracy && b.fraction < a.fraction) ? b : a));
    this.current = [...best.channels];
    this.results = [];
    this.iteration++;
    if (this.options.adapt === 'chosen') this.phase = 'adapt';
    else this.phase = this.nextTarget() === undefined ? 'finished' : 'propose';
  }
}
