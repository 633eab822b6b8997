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
  /** The base model timed in alternation with this candidate (a loaded host drifts between measurements). */
  readonly measuredBaseMs: number;
  /** Error of the predicted fraction of the base's latency against the measured one (the median per-pair ratio): what latency targets use. */
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

/**
 * `n` random candidates: every group's keep ratio uniform in [minKeepRatio, 1]. Held-out
 * candidates and calibration candidates come from two generators seeded apart (`CHECK_SEED`,
 * `CALIBRATION_SEED` offsets), so a check never measures a candidate the correction was fitted on.
 */
export function heldOutCandidates(space: SearchSpace, n: number, rng: Rng): Candidate[] {
  const min = space.options.minKeepRatio;
  return Array.from({ length: n }, () =>
    candidateFromRatios(
      space,
      space.groups.map(() => rng.uniform(min, 1)),
    ),
  );
}

/** A candidate and the base timed in alternation (onnx.ts `pairedLatencyMs`), ms per image. */
export interface PairedMeasurement {
  readonly baseMs: number;
  readonly candidateMs: number;
  /** Median of the per-pair ratios candidate / base. */
  readonly ratio: number;
}

/** Predicted vs measured, in order; `measure` times a candidate end to end in alternation with the base. */
export async function checkPredictions(
  candidates: readonly Candidate[],
  o: {
    predictMs: (c: Candidate | null) => number;
    measure: (c: Candidate) => Promise<PairedMeasurement>;
    flopsFraction: (c: Candidate) => number;
  },
): Promise<CheckResult> {
  const rows: CheckRow[] = [];
  const predictedBase = o.predictMs(null);
  for (const c of candidates) {
    const predictedMs = o.predictMs(c);
    const m = await o.measure(c);
    const measuredBaseMs = m.baseMs;
    const measuredMs = m.candidateMs;
    const fractionError = predictedMs / predictedBase / m.ratio - 1;
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

/** Offsets of the check's and the calibration's generators from `run.seed`: two streams, never one candidate in both. */
export const CHECK_SEED = 1;
export const CALIBRATION_SEED = 7919;
