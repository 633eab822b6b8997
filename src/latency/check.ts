/**
 * How well a study's latency model predicts: candidates the table was not fitted on (random keep
 * ratios, seeded), each measured end to end and compared with its prediction.
 */
import type { Rng } from '../core/rng.js';
import { type Candidate, candidateFromRatios, candidateKey, type SearchSpace } from '../core/space.js';

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

/** Half-width of the band around a candidate's center keep ratio its groups' ratios are drawn from. */
const SPREAD = 0.2;

/**
 * `n` random candidates spread over the whole FLOPs range: each draws a center keep ratio c uniform
 * in [minKeepRatio, 1], then every group's ratio uniform in [c - 0.2, c + 0.2] (clipped to
 * [minKeepRatio, 1]). Ratios drawn independently per group would concentrate the FLOPs around the
 * mean (30-55% of the base's for the quickstart); with a center they run from about minKeepRatio^2
 * to the whole model. Held-out and calibration candidates come from two generators seeded apart
 * (`CHECK_SEED`, `CALIBRATION_SEED` offsets), and the check skips the calibration's keys
 * (`exclude`), so a check never measures a candidate the correction was fitted on. `accept` keeps
 * a draw or skips it (the studies keep `CHECK_MIN_FLOPS` and up).
 */
export function heldOutCandidates(
  space: SearchSpace,
  n: number,
  rng: Rng,
  exclude: ReadonlySet<string> = new Set(),
  accept: (c: Candidate) => boolean = () => true,
): Candidate[] {
  const min = space.options.minKeepRatio;
  const out: Candidate[] = [];
  // A small space can draw a calibration candidate again by chance: such draws are skipped (bounded, for a space smaller than n).
  for (let tries = 0; out.length < n && tries < 100 * n; tries++) {
    const c = rng.uniform(min, 1);
    const lo = Math.max(min, c - SPREAD);
    const hi = Math.min(1, c + SPREAD);
    const cand = candidateFromRatios(
      space,
      space.groups.map(() => rng.uniform(lo, hi)),
    );
    if (!exclude.has(candidateKey(cand)) && accept(cand)) out.push(cand);
  }
  return out;
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

/**
 * Calibration and held-out candidates keep at least this fraction of the base's MACs: the range
 * searches target (25-100%); below it the fixed costs dominate and are not what the correction is for.
 */
export const CHECK_MIN_FLOPS = 0.25;

/** Offsets of the check's and the calibration's generators from `run.seed`: two streams, never one candidate in both. */
export const CHECK_SEED = 1;
export const CALIBRATION_SEED = 7919;
