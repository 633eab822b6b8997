/**
 * When to stop (Ray Tune's split: the controller decides *what* to try, this decides *when* to
 * stop). Pure: the clock is passed in.
 */
export interface Budget {
  /** Total trials of the study (across resumed runs). */
  readonly trials: number;
  /** Absolute deadline (ms since epoch) from `--time-budget` / `--until`, whichever is first. */
  readonly deadline: number | null;
}

/** A study whose trials keep failing does not stop with a reason: it throws TRIALS_FAILING (policy.ts). */
export type StopReason = 'trials' | 'time' | 'controller' | 'interrupted';

export function budgetLeft(b: Budget, usedTrials: number, nowMs: number): StopReason | null {
  if (usedTrials >= b.trials) return 'trials';
  if (b.deadline !== null && nowMs >= b.deadline) return 'time';
  return null;
}

export function earliest(...deadlines: (number | null | undefined)[]): number | null {
  const ds = deadlines.filter((d): d is number => typeof d === 'number');
  return ds.length ? Math.min(...ds) : null;
}
