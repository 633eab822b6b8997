/**
 * What the driver knows of its study's trials between looks, kept as trials are enqueued and
 * finish rather than re-read: the trials in flight in full (a few, however long the study), and of
 * each finished trial only what a later decision needs: its key (a re-proposed candidate is not
 * evaluated again), the state of `adapt` trials (parents of later proposals) and, only when rungs
 * are configured, the few fields the rung promotions replay. A look at the store then reads only
 * the trials that were in flight (`listTrials` with `numbers`): finished trials never change, and
 * new trials come only from the driver holding the study (the driver lease).
 */
import { candidateKey } from '../core/space.js';
import type { TrialState } from '../core/types.js';
import type { NewTrial, TrialRecord } from '../store/types.js';
import { type RungTrial, rungMetaOf } from './rungs.js';

/**
 * Trial numbers as sorted, disjoint, inclusive [first, last] runs: a few pairs when trials finish
 * about in number order, where a set would hold every number of the study.
 */
export class NumberRuns {
  private readonly list: [number, number][] = [];
  private count = 0;

  constructor(numbers: Iterable<number> = []) {
    for (const n of numbers) this.add(n);
  }

  get size(): number {
    return this.count;
  }

  has(n: number): boolean {
    const run = this.list[this.after(n) - 1];
    return run !== undefined && n <= run[1];
  }

  add(n: number): void {
    const i = this.after(n);
    const prev = this.list[i - 1];
    if (prev !== undefined && n <= prev[1]) return;
    this.count++;
    const next = this.list[i];
    const joinsPrev = prev !== undefined && prev[1] + 1 === n;
    const joinsNext = next !== undefined && next[0] - 1 === n;
    if (joinsPrev && joinsNext) {
      prev[1] = next[1];
      this.list.splice(i, 1);
    } else if (joinsPrev) prev[1] = n;
    else if (joinsNext) next[0] = n;
    else this.list.splice(i, 0, [n, n]);
  }

  /** The runs, ascending (copies). */
  runs(): [number, number][] {
    return this.list.map(([a, b]) => [a, b]);
  }

  /** Index of the first run starting after n (binary search). */
  private after(n: number): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.list[mid][0] <= n) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** A trial as the rung promotions replay it (duePromotions), its target resolved once. */
export interface RungEntry extends RungTrial {
  readonly target: number | null;
}

/** What one look at the store found. */
export interface StudyView {
  /** Trials in the study: the next trial's number. */
  readonly count: number;
  /** Trials that are not rung trials (what the trial budget counts). */
  readonly searchCount: number;
  /** Waiting or running trials, by number. */
  readonly live: readonly TrialRecord[];
  /**
   * Trials seen finished for the first time at this look, in finishing order; at the first look of
   * a run, every finished trial of the study.
   */
  readonly finished: readonly TrialRecord[];
}

export const isFinished = (t: { readonly state: TrialState }): boolean => t.state === 'complete' || t.state === 'failed';

/** A proposal of the batch being asked for, with the number it will get. */
export type Planned = NewTrial & { readonly number: number };

export class TrialIndex {
  /** Trials in the study: the next trial's number. */
  count = 0;
  /** Trials that are not rung trials. */
  searchCount = 0;
  /** Waiting or running at the last look, by number (insertion order is number order). */
  private readonly inFlight = new Map<number, TrialRecord>();
  /** Trial key -> the latest trial with it. */
  private readonly keys = new Map<string, number>();
  /** Candidate key -> its `adapt` trials, in number order. */
  private readonly adapts = new Map<string, { readonly number: number; state: TrialState }[]>();
  /** Every trial by number, as promotions need it; null when the study has no rungs. */
  private readonly rungEntries: RungEntry[] | null;

  /** `targetOf`: a search trial's target for the rung promotions; null: no rungs, nothing kept for them. */
  constructor(private readonly targetOf: ((t: TrialRecord) => number | null) | null) {
    this.rungEntries = targetOf ? [] : null;
  }

  /** A trial new to the index (from the first look, or just enqueued), in number order. */
  add(t: TrialRecord): void {
    this.count = Math.max(this.count, t.number + 1);
    if (rungMetaOf(t) === null) this.searchCount++;
    this.keys.set(t.key, t.number);
    if (t.stage === 'adapt') {
      const k = candidateKey(t.candidate);
      const list = this.adapts.get(k) ?? [];
      list.push({ number: t.number, state: t.state });
      this.adapts.set(k, list);
    }
    if (!isFinished(t)) this.inFlight.set(t.number, t);
    this.keepForRungs(t);
  }

  /** Numbers of the trials in flight at the last look: the only ones that can have changed since. */
  liveNumbers(): number[] {
    return [...this.inFlight.keys()];
  }

  /** Takes the current records of trials that were in flight; returns those that finished since, by number. */
  update(current: readonly TrialRecord[]): TrialRecord[] {
    const finished: TrialRecord[] = [];
    for (const t of current) {
      if (!this.inFlight.has(t.number)) continue;
      if (isFinished(t)) {
        this.inFlight.delete(t.number);
        finished.push(t);
      } else this.inFlight.set(t.number, t);
      if (t.stage === 'adapt') {
        const a = this.adapts.get(candidateKey(t.candidate))?.find((x) => x.number === t.number);
        if (a) a.state = t.state;
      }
      this.keepForRungs(t);
    }
    return finished;
  }

  live(): TrialRecord[] {
    return [...this.inFlight.values()];
  }

  isLive(n: number): boolean {
    return this.inFlight.has(n);
  }

  /** The latest trial with this key, if any. */
  numberOfKey(key: string): number | undefined {
    return this.keys.get(key);
  }

  /**
   * A proposal names its parent by candidate key (controllers know candidates, not trial numbers):
   * the latest `adapt` trial with those channels, a complete one first, counting the batch being
   * planned (waiting, after every stored trial). None: the base model.
   */
  parentOf(key: string, planned: readonly Planned[]): number | null {
    const stored = (this.adapts.get(key) ?? []).filter((a) => a.state !== 'failed');
    const complete = stored.filter((a) => a.state === 'complete').at(-1);
    if (complete) return complete.number;
    const batch = planned.filter((p) => p.stage === 'adapt' && candidateKey(p.candidate) === key).at(-1);
    return batch?.number ?? stored.at(-1)?.number ?? null;
  }

  /** Every trial, by number, as the rung promotions replay them; null when the study has no rungs. */
  rungTrials(): readonly RungEntry[] | null {
    return this.rungEntries;
  }

  private keepForRungs(t: TrialRecord): void {
    if (this.rungEntries === null || this.targetOf === null) return;
    const m = rungMetaOf(t);
    this.rungEntries[t.number] = {
      number: t.number,
      state: t.state,
      stage: t.stage,
      parent: t.parent,
      meta: m ?? undefined,
      metrics: { proxyAccuracy: t.metrics.proxyAccuracy ?? null },
      finishSeq: t.finishSeq,
      target: m ? m.target : (this.rungEntries[t.number]?.target ?? this.targetOf(t)),
    };
  }
}
