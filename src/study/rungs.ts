/**
 * Successive halving over fidelities (rungs), asynchronous as in ASHA (Li et al., "A System for
 * Massively Parallel Hyperparameter Tuning", MLSys 2020; Optuna's SuccessiveHalvingPruner, Ray
 * Tune's ASHA scheduler). Rung 0 is the proxy (adaptive BN); rung k >= 1 is `rungs[k - 1]` of the
 * config, a longer fine-tune continuing from the trial's rung k - 1 weights.
 *
 * The rule, per target: with n results at rung k, the top floor(n · keep) of them (keep of rung
 * k + 1) are promotable, and every promotable trial not yet promoted is promoted now. A rung with
 * `max` waits until rung k is closed (nothing more can arrive there) and then admits its top
 * min(max, floor(n · keep)), so it takes the best rather than the first. Ranking: higher score
 * first, then the lower trial number, so the same results always give the same promotions in the
 * same order. Baselines (uniform, global trials) are in the pool like any other trial. Pure.
 */

import { isRungTrial, type TrialStage } from '../core/types.js';

/** A rung's training length as configured. */
export type RungLength = { readonly steps: number } | { readonly epochs: number };

/** One rung after the proxy rung (a resolved `evaluation.rungs` entry). */
export interface RungSpec {
  /** Fraction of the rung before that is promotable, in (0, 1]. */
  readonly keep: number;
  /** At most this many per target, admitted once the rung before is closed. */
  readonly max?: number;
  readonly finetune: RungLength;
}

/** A finished result at a rung, as the promotion rule sees it. */
export interface RungResult {
  /** The trial that holds this result (for rung 0 the proxy trial, else the rung trial). */
  readonly trial: number;
  /** 0 = proxy, k = `rungs[k - 1]`. */
  readonly rung: number;
  /** Which target (or band) the candidate belongs to; promotion never mixes targets. null = none. */
  readonly target: number | null;
  /** Higher is better (validation accuracy at this rung). */
  readonly score: number;
  /** The rung-0 trial this chain started from: one candidate is promoted at most once per rung. */
  readonly origin: number;
}

/** A promotion to enqueue: continue `from` (a result at rung `rung - 1`) at rung `rung`. */
export interface Promotion {
  readonly from: number;
  readonly origin: number;
  readonly rung: number;
  readonly target: number | null;
}

export interface PromotionState {
  /** Every finished result so far, at every rung. */
  readonly results: readonly RungResult[];
  /** Origins already promoted (queued, running or finished) at each rung k >= 1: `promoted.get(k)`. */
  readonly promoted: ReadonlyMap<number, ReadonlySet<number>>;
  /**
   * Rungs closed to new results: rung 0 closes when the search stops proposing, rung k when rung k
   * is closed and every trial promoted to it has finished. Capped rungs (`max`) promote only from a
   * closed rung.
   */
  readonly closed: (rung: number) => boolean;
}

/** Best first: higher score, then the lower trial number. */
function byRank(a: RungResult, b: RungResult): number {
  return b.score - a.score || a.trial - b.trial;
}

/**
 * The promotions due now, in the order to enqueue them: rung ascending, then target in order of
 * first appearance sorted ascending (null last), then rank. Deterministic in its input.
 */
export function promotions(schedule: readonly RungSpec[], state: PromotionState): Promotion[] {
  const out: Promotion[] = [];
  for (let k = 1; k <= schedule.length; k++) {
    const spec = schedule[k - 1];
    const below = state.results.filter((r) => r.rung === k - 1);
    const done = state.promoted.get(k) ?? new Set<number>();
    // A rung with promotions still due into it is not closed, whatever the caller says.
    if (spec.max !== undefined && (!state.closed(k - 1) || out.some((p) => p.rung === k - 1))) continue;
    for (const target of targetsOf(below)) {
      const pool = below.filter((r) => r.target === target).sort(byRank);
      let n = Math.floor(pool.length * spec.keep + 1e-9);
      if (spec.max !== undefined) n = Math.min(n, spec.max);
      // A capped rung admits exactly its top n: those already promoted count against the cap.
      const top = pool.slice(0, n);
      for (const r of top) {
        if (done.has(r.origin)) continue;
        out.push({ from: r.trial, origin: r.origin, rung: k, target });
      }
    }
  }
  return out;
}

/** What a rung trial records in its meta (the worker on any host reads its fine-tune from here). */
export interface RungMeta {
  readonly rung: number;
  /** The proxy trial the chain started from. */
  readonly origin: number;
  readonly target: number | null;
  /** The trial whose saved weights it continues from; null = the base model cut (rung 1 of a proxy trial of the base). */
  readonly weights: number | null;
  readonly finetune: RungLength;
  /** The schedule's last rung: this trial's result is its origin's final (src/study/finals.ts). Absent in stores written before it was recorded. */
  readonly last?: boolean;
}

/** A trial as the replay needs it (a subset of TrialRecord). */
export interface RungTrial {
  readonly number: number;
  readonly state: string;
  readonly stage: string;
  readonly parent: number | null;
  readonly meta?: unknown;
  readonly metrics: { readonly proxyAccuracy?: number | null };
  /** The store's finish sequence (TrialRecord.finishSeq): every listing holds a prefix of it. */
  readonly finishSeq: number | null;
}

/** The rung meta of a rung trial, else null (proxy and adapt trials are rung 0). */
export function rungMetaOf(t: Pick<RungTrial, 'stage' | 'meta'>): RungMeta | null {
  return isRungTrial(t as { stage?: TrialStage; meta?: unknown }) ? (t.meta as RungMeta) : null;
}

const finishedFirst = (a: RungTrial, b: RungTrial) => (a.finishSeq ?? Infinity) - (b.finishSeq ?? Infinity) || a.number - b.number;

/**
 * Every promotion a study's trials call for, in the order they become due: finished results are
 * replayed one at a time in finishing order (the store's finish sequence), promoting what is due
 * after each, and once more at the end with the rungs' closed state. So the promotions depend on
 * the results and their order only, not on when the driver looked: every listing holds a prefix of
 * the sequence, so a later look only extends the replay, and a driver restarted mid-rung makes the
 * same promotions in the same order. Finish times would not do: a trial finished earlier by one
 * worker's clock can commit after the driver looked, and hosts' clocks differ. Promotions already
 * in `trials` (rung trials) are not returned again. `targetOf` gives a rung-0 trial's target (or null: not
 * in any target's band, never promoted).
 */
export function duePromotions(
  schedule: readonly RungSpec[],
  trials: readonly RungTrial[],
  o: { targetOf: (t: RungTrial) => number | null; searchClosed: boolean },
): Promotion[] {
  const results: RungResult[] = [];
  const promoted = new Map<number, Set<number>>();
  const out: Promotion[] = [];
  const mark = (rung: number, origin: number): boolean => {
    let set = promoted.get(rung);
    if (!set) promoted.set(rung, (set = new Set()));
    if (set.has(origin)) return false;
    set.add(origin);
    return true;
  };
  const take = (due: readonly Promotion[]) => {
    for (const p of due) if (mark(p.rung, p.origin)) out.push(p);
  };
  // Promotions already made are facts, whenever they were made: the replay cannot tell when a
  // capped rung's rung below closed, so without them it would re-derive a capped rung's
  // promotions at every look and the rung above it would never see its rung below closed.
  for (const t of trials) {
    const m = rungMetaOf(t);
    if (m) mark(m.rung, m.origin);
  }
  const never = () => false;
  const finished = trials.filter((t) => t.state === 'complete' || t.state === 'failed').sort(finishedFirst);
  for (const t of finished) {
    const m = rungMetaOf(t);
    const score = t.metrics.proxyAccuracy;
    if (t.state !== 'complete' || score == null) continue;
    const target = m ? m.target : o.targetOf(t);
    if (target === null) continue;
    results.push({ trial: t.number, rung: m ? m.rung : 0, target, score, origin: m ? m.origin : t.number });
    take(promotions(schedule, { results, promoted, closed: never }));
  }
  // Rung k is closed once the search is and nothing at rungs <= k waits, runs or is yet to be
  // promoted: the promotions this replay found (not in the store yet) are trials to come.
  const live = trials.filter((t) => t.state === 'waiting' || t.state === 'running').map((t) => rungMetaOf(t)?.rung ?? 0);
  const closed = (k: number) => o.searchClosed && live.every((r) => r > k) && out.every((p) => p.rung > k);
  take(promotions(schedule, { results, promoted, closed }));
  return out;
}

function targetsOf(results: readonly RungResult[]): (number | null)[] {
  const set = new Set(results.map((r) => r.target));
  return [...set].sort((a, b) => (a === null ? 1 : b === null ? -1 : a - b));
}

/**
 * Epochs and batches per epoch of a rung's own fine-tune. `{ epochs: e }`: e epochs of
 * `stepsPerEpoch` batches. `{ steps: s }`: ceil(s / stepsPerEpoch) epochs of equal length, at least
 * s steps in all (rounded up to whole epochs of equal length, so the schedule stays one cosine).
 */
export function rungTraining(length: RungLength, stepsPerEpoch: number): { epochs: number; batchesPerEpoch: number } {
  const per = Math.max(1, Math.floor(stepsPerEpoch));
  if ('epochs' in length) return { epochs: length.epochs, batchesPerEpoch: per };
  const epochs = Math.ceil(length.steps / per);
  return { epochs, batchesPerEpoch: Math.ceil(length.steps / epochs) };
}
