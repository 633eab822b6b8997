/** Search progress, counted as trials finish (compute, then render: the CLI draws it). */
import { withinTarget } from '../core/space.js';
import type { TrialRecord } from '../store/types.js';

export interface StudyProgress {
  readonly finished: number;
  readonly budget: number;
  readonly running: number;
  readonly etaSeconds: number | null;
  /** Best proxy accuracy per target (fraction of base MACs) among trials at or under it. */
  readonly best: readonly { target: number; accuracy: number | null }[];
}

export interface ProgressContext {
  readonly budget: number;
  readonly baseMacs: number;
  readonly targets: readonly number[];
  readonly window: number;
  /** A trial's cost as a fraction of the base's, when the targets are not MACs (latency targets). */
  readonly fractionOf?: (t: TrialRecord) => number;
}

/**
 * The progress of a search, fed each finished trial once (as the driver's looks find them), so it
 * costs what changed and holds a few numbers however long the study.
 */
export class ProgressTally {
  private done = 0;
  private readonly best: (number | null)[];

  constructor(private readonly c: ProgressContext) {
    this.best = c.targets.map(() => null);
  }

  /** Counts search trials that finished (each exactly once over the tally's life). */
  add(finished: Iterable<TrialRecord>): void {
    for (const t of finished) {
      this.done++;
      const acc = t.metrics.proxyAccuracy;
      if (t.state !== 'complete' || acc == null) continue;
      const f = this.c.fractionOf ? this.c.fractionOf(t) : t.cost.macs / this.c.baseMacs;
      this.c.targets.forEach((target, i) => {
        if (withinTarget(f, target, this.c.window)) this.best[i] = Math.max(this.best[i] ?? acc, acc);
      });
    }
  }

  /** `running`: search trials running now; the ETA extrapolates this run's pace (trials finished, seconds). */
  progress(running: number, run: { readonly finishedThisRun: number; readonly secondsThisRun: number }): StudyProgress {
    const rate = run.finishedThisRun > 0 ? run.secondsThisRun / run.finishedThisRun : null;
    return {
      finished: this.done,
      budget: this.c.budget,
      running,
      etaSeconds: rate === null ? null : rate * Math.max(0, this.c.budget - this.done),
      best: this.c.targets.map((target, i) => ({ target, accuracy: this.best[i] })),
    };
  }
}
