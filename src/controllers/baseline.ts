/**
 * A composite controller: the baseline sweep first (uniform, the baseline every report compares
 * against; with a warm start also global), then the main controller. Every part is told every
 * observation, so a learning controller also learns from the baseline's trials. With `hold`, the
 * main controller is not asked until every baseline result is in, so it starts from the incumbents
 * rather than only hearing of them later (a warm start, as NSGA-II variants seed their first
 * population with known good solutions). Pure ask/tell like its parts.
 */
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { candidateKey } from '../core/space.js';
import type { Json } from '../core/types.js';
import type { Controller, Observation, Proposal } from './types.js';

export class WithBaseline implements Controller {
  readonly name: string;
  private readonly baselines: readonly Controller[];
  /** Baseline proposals asked and not yet told (only tracked with `hold`). */
  private waiting = new Set<string>();

  constructor(
    baseline: Controller | readonly Controller[],
    private readonly main: Controller,
    private readonly hold = false,
  ) {
    this.name = main.name;
    this.baselines = Array.isArray(baseline) ? baseline : [baseline as Controller];
  }

  ask(n: number): Proposal[] {
    for (const b of this.baselines) {
      if (b.done()) continue;
      const ps = b.ask(n);
      if (ps.length === 0) continue;
      if (this.hold) for (const p of ps) this.waiting.add(candidateKey(p.candidate));
      return ps.map((p) => ({ ...p, source: b.name }));
    }
    // Nothing now, not done: the driver asks again once a result comes in.
    if (this.waiting.size > 0) return [];
    return this.main.ask(n).map((p) => ({ ...p, source: p.source ?? this.main.name }));
  }

  tell(observations: readonly Observation[]): void {
    for (const o of observations) this.waiting.delete(candidateKey(o.candidate));
    for (const b of this.baselines) b.tell(observations);
    this.main.tell(observations);
  }

  done(): boolean {
    return this.baselines.every((b) => b.done()) && this.waiting.size === 0 && this.main.done();
  }

  snapshot(): Json {
    const parts = this.baselines.map((b) => b.snapshot());
    // One baseline keeps the snapshot shape stores written before the warm start hold.
    return { baseline: parts.length === 1 ? parts[0] : parts, main: this.main.snapshot(), ...(this.hold ? { waiting: [...this.waiting] } : {}) };
  }

  restore(state: Json): void {
    const s = state as { baseline?: Json; main?: Json; waiting?: Json } | null;
    if (!s || typeof s !== 'object' || s.baseline === undefined || s.main === undefined) {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected a { baseline, main } controller snapshot, got ${JSON.stringify(state)?.slice(0, 80)}`);
    }
    const parts = this.baselines.length === 1 ? [s.baseline] : s.baseline;
    if (!Array.isArray(parts) || parts.length !== this.baselines.length) {
      throw new AutopruneError(
        ErrorCodes.INVALID_ARGUMENT,
        `Expected ${this.baselines.length} baseline snapshots, got ${JSON.stringify(s.baseline)?.slice(0, 80)}`,
      );
    }
    this.baselines.forEach((b, i) => b.restore(parts[i]));
    this.main.restore(s.main);
    this.waiting = new Set(Array.isArray(s.waiting) ? s.waiting.map(String) : []);
  }
}
