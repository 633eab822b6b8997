/**
 * How well a study's latency model predicted end-to-end latency on held-out candidates, measured
 * when the study prepared it (src/latency/study.ts). Kept as a small JSON artifact of the study,
 * like the data notes (the study row has no free-form field), and shown by `report` and `show`.
 */
import type { Store } from '../store/types.js';

export const LATENCY_CHECK_KEY = 'latency/check.json';

export interface LatencyCheckSummary {
  /** The table's label (engine, version, host, threads, batch). */
  readonly table: string;
  /** Held-out candidates measured (none of them a calibration candidate). */
  readonly candidates: number;
  /** Calibration candidates the correction was fitted on (0: overhead fitted on the base alone). */
  readonly calibration: number;
  /** Median |predicted - measured| / measured, ms per image. */
  readonly medianAbsError: number;
  readonly maxAbsError: number;
  /** Median error of the predicted fraction of the base's latency against the measured per-pair ratio. */
  readonly medianAbsFractionError: number;
  /** The host's 1-minute load average when the check ran. */
  readonly load: number;
  /** ISO 8601. */
  readonly measuredAt: string;
}

/** Stores the summary (replacing an earlier one: each start of the study measures again). */
export async function recordLatencyCheck(store: Store, study: string, s: LatencyCheckSummary | null | undefined): Promise<void> {
  if (!s) return;
  await store.putArtifact(study, LATENCY_CHECK_KEY, new TextEncoder().encode(`${JSON.stringify(s)}\n`));
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The study's last check; null when it has none (no latency model, `check: 0`, or an older study). */
export async function readLatencyCheck(store: Store, study: string): Promise<LatencyCheckSummary | null> {
  const bytes = await store.getArtifact(study, LATENCY_CHECK_KEY);
  if (bytes === null) return null;
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as Partial<LatencyCheckSummary>;
    const nums = [v.candidates, v.calibration, v.medianAbsError, v.maxAbsError, v.medianAbsFractionError, v.load];
    return typeof v.table === 'string' && typeof v.measuredAt === 'string' && nums.every(isNum) ? (v as LatencyCheckSummary) : null;
  } catch {
    return null; // an unreadable record is not worth failing a report over
  }
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** The line reports and `show` print. */
export function latencyCheckLine(s: LatencyCheckSummary): string {
  return (
    `latency prediction: median |error| ${pct(s.medianAbsError)} (max ${pct(s.maxAbsError)}) on ${s.candidates} held-out candidates, ` +
    `${pct(s.medianAbsFractionError)} on the fraction of the base; ${s.calibration} calibration candidates; ${s.table}; load ${s.load.toFixed(1)}, ${s.measuredAt.slice(0, 16)}Z`
  );
}
