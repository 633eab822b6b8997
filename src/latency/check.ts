/**
 * How well a study's latency model predicts: candidates the table was not fitted on (random keep
 * ratios, seeded), each measured end to end and compared with its prediction.
 */
import type { Rng } from '../core/rng.js';
import { type Candidate, candidateFromRatios, type SearchSpace } from '../core/space.js';

export interface CheckRow {
  readonly candidate: Candidate;
  /** MACs as a fraction of the base's. */
  readonly flopsFraction: number;
  readonly predictedMs: number;
  readonly measuredMs: number;
  /** (predicted - measured) / measured. */
  readonly error: number;
  /** The base model measured right before this candidate (a loaded host drifts between measurements). */
  readonly measuredBaseMs: number;
  /** Error of the predicted fraction of the base's latency against the measured one (paired with the base): what latency targets use. */
  readonly fractionError: number;
}

export interface CheckResult {
  readonly rows: readonly CheckRow[];
  /** Median of |error| over the rows. */
  readonly medianAbsError: number;
  readonly maxAbsError: number;
  /** Median of |fractionError|. */
  readonly medianAbsFractionError: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `n` held-out candidates: every group's keep ratio uniform in [minKeepRatio, 1]. */
export function heldOutCandidates(space: SearchSpace, n: number, rng: Rng): Candidate[] {
  const min = space.options.minKeepRatio;
  return Array.from({ length: n }, () =>
    candidateFromRatios(
      space,
      space.groups.map(() => rng.uniform(min, 1)),
    ),
  );
}

/** Predicted vs measured, in order; `measure` is the engine's end-to-end time (ms per image). */
export async function checkPredictions(
  candidates: readonly Candidate[],
  o: {
    predictMs: (c: Candidate | null) => number;
    /** End-to-end ms per image of a candidate (null: the base model). */
    measureMs: (c: Candidate | null) => Promise<number>;
    flopsFraction: (c: Candidate) => number;
  },
): Promise<CheckResult> {
  const rows: CheckRow[] = [];
  const predictedBase = o.predictMs(null);
  for (const c of candidates) {
    const predictedMs = o.predictMs(c);
    const measuredBaseMs = await o.measureMs(null);
    const measuredMs = await o.measureMs(c);
    const fractionError = predictedMs / predictedBase / (measuredMs / measuredBaseMs) - 1;
    rows.push({
      candidate: c,
      flopsFraction: o.flopsFraction(c),
      predictedMs,
      measuredMs,
      error: (predictedMs - measuredMs) / measuredMs,
      measuredBaseMs,
      fractionError,
    });
  }
  const abs = rows.map((r) => Math.abs(r.error));
  const absF = rows.map((r) => Math.abs(r.fractionError));
  return {
    rows,
    medianAbsError: abs.length ? median(abs) : Number.NaN,
    maxAbsError: abs.length ? Math.max(...abs) : Number.NaN,
    medianAbsFractionError: absF.length ? median(absF) : Number.NaN,
  };
}
