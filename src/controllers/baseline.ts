/**
 * A composite controller: the uniform sweep first (the baseline every report compares against),
 * then the main controller. Both are told every observation, so a learning controller also learns
 * from the baseline's trials. Pure ask/tell like its parts.
 */
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import type { Json } from '../core/types.js';
import type { Controller, Observation, Proposal } from './types.js';

export class WithBaseline implements Controller {
  readonly name: string;

  constructor(
    private readonly baseline: Controller,
    private readonly main: Controller,
  ) {
    this.name = main.name;
  }

  ask(n: number): Proposal[] {
    if (!this.baseline.done()) {
      const ps = this.baseline.ask(n);
      if (ps.length) return ps.map((p) => ({ ...p, source: this.baseline.name }));
    }
    return this.main.ask(n).map((p) => ({ ...p, source: p.source ?? this.main.name }));
  }

  tell(observations: readonly Observation[]): void {
    this.baseline.tell(observations);
    this.main.tell(observations);
  }

  done(): boolean {
    return this.baseline.done() && this.main.done();
  }

  snapshot(): Json {
    return { baseline: this.baseline.snapshot(), main: this.main.snapshot() };
  }

  restore(state: Json): void {
    const s = state as { baseline?: Json; main?: Json } | null;
    if (!s || typeof s !== 'object' || s.baseline === undefined || s.main === undefined) {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected a { baseline, main } controller snapshot, got ${JSON.stringify(state)?.slice(0, 80)}`);
    }
    this.baseline.restore(s.baseline);
    this.main.restore(s.main);
  }
}
