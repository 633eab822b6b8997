/**
 * Failure policy: a study whose trials keep failing stops, saying why in one line, instead of
 * turning every evaluator exception into yet another failed trial. Two rules, fed finished trials
 * in the order they finished:
 *  - the first `first` trials of a run all failed (nothing completed yet): the model or engine
 *    cannot run at all, so stop early and say how to check it;
 *  - `consecutive` trials failed in a row (no success between them).
 */
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import type { TrialRecord } from '../store/types.js';

export interface FailureLimits {
  /** Failed trials in a row that stop the study (run.maxConsecutiveFailures). */
  readonly consecutive: number;
  /** Failed trials before any success in this run that stop it (default: `consecutive`). */
  readonly first?: number;
}

export class FailurePolicy {
  private streak = 0;
  private completed = 0;
  private failed = 0;
  private last: { trial: number; error: string } | null = null;

  constructor(
    private readonly limits: FailureLimits,
    private readonly study = 'the study',
  ) {}

  /** Records finished trials; throws TRIALS_FAILING when a limit is reached. */
  observe(finished: readonly TrialRecord[]): void {
    for (const t of finished) {
      if (t.state === 'complete') {
        this.streak = 0;
        this.completed++;
      } else if (t.state === 'failed') {
        this.streak++;
        this.failed++;
        this.last = { trial: t.number, error: firstLine(t.error ?? 'unknown error') };
      }
    }
    if (!this.last) return;
    const first = Math.min(this.limits.first ?? this.limits.consecutive, this.limits.consecutive);
    if (this.completed === 0 && this.failed >= first) {
      throw new AutopruneError(
        ErrorCodes.TRIALS_FAILING,
        `Study \`${this.study}\` stopped: its first ${this.failed} trials all failed (last error: ${this.last.error}); check the model with \`autoprune inspect\` and a 2-trial search before a long run`,
      );
    }
    if (this.streak >= this.limits.consecutive) {
      throw new AutopruneError(
        ErrorCodes.TRIALS_FAILING,
        `Study \`${this.study}\` stopped: ${this.streak} trials failed in a row (last, trial ${this.last.trial}: ${this.last.error})`,
      );
    }
  }

  get consecutiveFailures(): number {
    return this.streak;
  }
}

/** The first line of an error message (engine messages and stack traces follow on later lines), shortened. */
export function firstLine(message: string, max = 300): string {
  const line = message.split('\n')[0].trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
