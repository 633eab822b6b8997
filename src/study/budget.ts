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

/** `failing`: the run's first trials all failed (see runStudy). */
export type StopReason = 'trials' | 'time' | 'controller' | 'interrupted' | 'failing';

export function budgetLeft(b: Budget, usedTrials: number, nowMs: number): StopReason | null {
  if (usedTrials >= b.trials) return 'trials';
  if (b.deadline !== null && nowMs >= b.deadline) return 'time';
  return null;
}

export function earliest(...deadlines: (number | null | undefined)[]): number | null {
  const ds = deadlines.filter((d): d is number => typeof d === 'number');
  return ds.length ? Math.min(...ds) : null;
}
