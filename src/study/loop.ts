/**
 * The driver's loop: tell what finished, stop when a budget says so, keep the queue as full as the
 * workers are many, then sleep until a worker finishes (or `pollMs`, for other processes' workers).
 */

import type { Budget, StopReason } from './budget.js';
import { budgetLeft } from './budget.js';
import type { Driver, StudyView } from './driver.js';
import { rungMetaOf } from './rungs.js';
import type { Wakeup } from './signals.js';

export interface DriverLoopOptions {
  readonly driver: Driver;
  readonly budget: Budget;
  /** Trials kept waiting or running at once (the workers' number). */
  readonly capacity: number;
  /** Notified when trials were enqueued. */
  readonly work: Wakeup;
  /** Notified when a worker finished a trial. */
  readonly finished: Wakeup;
  /** A worker's fatal (store) error, which ends the loop. */
  readonly workerError: () => Error | null;
  readonly pollMs?: number;
  readonly now?: () => number;
  readonly log?: (line: string) => void;
  /** After each look: what it found (each finished trial is in exactly one view's `finished`). */
  readonly onProgress?: (view: StudyView, finishedThisRun: number, seconds: number) => void;
}

export class DriverLoop {
  /** Set when the deadline passed: nothing more is asked, what is in flight is finished. */
  private timeUp: StopReason | null = null;
  /** Set when the search stopped proposing (budget, deadline, controller): rung 0 is closed, promotions finish. */
  private searchDone: StopReason | null = null;

  constructor(private readonly o: DriverLoopOptions) {}

  /** Runs until the budget, the controller or `stop` ends the search; returns why. */
  async run(stop: AbortSignal): Promise<StopReason> {
    const now = this.o.now ?? Date.now;
    const started = now();
    for (;;) {
      await new Promise<void>((r) => setImmediate(r)); // let timers and signals run (see worker.ts)
      const err = this.o.workerError();
      if (err) throw err;
      const view = await this.o.driver.sync();
      this.o.onProgress?.(view, this.o.driver.toldThisRun, (now() - started) / 1000);
      if (stop.aborted) return 'interrupted';
      this.timeUp ??= budgetLeft({ trials: Infinity, deadline: this.o.budget.deadline }, 0, now());
      const inFlight = view.live.length;
      // Rung trials (promotions) count against neither the trial budget nor the time budget: the search does.
      const searchInFlight = view.live.filter((t) => rungMetaOf(t) === null).length;
      if (!this.searchDone) {
        const room = Math.min(this.o.capacity - inFlight, this.o.budget.trials - view.searchCount);
        if (room > 0 && !this.timeUp) {
          const added = await this.o.driver.fill(room);
          // A controller with nothing to propose may still propose once it hears what is in flight
          // (NetAdapt's next iteration): it is done only when nothing is.
          if (added === 'exhausted' && searchInFlight === 0) this.searchDone = 'controller';
          if (added !== 'exhausted') {
            this.o.work.notify();
            continue; // re-read: the enqueued trials are live now
          }
        } else if (searchInFlight === 0 && (this.timeUp || view.searchCount >= this.o.budget.trials)) {
          this.searchDone = this.timeUp ?? 'trials';
          if (this.timeUp) this.o.log?.('the time budget is spent; promoted trials still finish (Ctrl-C stops them, the study stays resumable)');
        }
      }
      if ((await this.o.driver.promote(this.searchDone !== null)) > 0) {
        this.o.work.notify();
        continue;
      }
      if (inFlight === 0 && this.searchDone) return this.searchDone;
      if (inFlight === 0) return this.timeUp ?? 'trials';
      await this.o.finished.wait(this.o.pollMs ?? 1000, stop);
    }
  }
}
