/** Search progress, computed from the stored trials (compute, then render: the CLI draws it). */
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
  /** Trials finished in this run and the seconds it has run (for the ETA). */
  readonly finishedThisRun: number;
  readonly secondsThisRun: number;
}

export function studyProgress(trials: readonly TrialRecord[], c: ProgressContext): StudyProgress {
  const done = trials.filter((t) => t.state === 'complete' || t.state === 'failed').length;
  const running = trials.filter((t) => t.state === 'running').length;
  const rate = c.finishedThisRun > 0 ? c.secondsThisRun / c.finishedThisRun : null;
  return {
    finished: done,
    budget: c.budget,
    running,
    etaSeconds: rate === null ? null : rate * Math.max(0, c.budget - done),
    best: c.targets.map((target) => {
      const ok = trials.filter(
        (t) =>
          t.state === 'complete' &&
          t.metrics.proxyAccuracy != null &&
          withinTarget(c.fractionOf ? c.fractionOf(t) : t.cost.macs / c.baseMacs, target, c.window),
      );
      return { target, accuracy: ok.length ? Math.max(...ok.map((t) => t.metrics.proxyAccuracy!)) : null };
    }),
  };
}
