/** JSON-serialisable value (what crosses the store boundary and controller snapshots). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Cost of a model or candidate, a pure function of topology + candidate (src/model/flops.ts). */
export interface Cost {
  /** Multiply-accumulates of conv/dense layers for one image (see docs/flops.md). */
  readonly macs: number;
  /** All weights, trainable and not (Keras `countParams` convention). */
  readonly params: number;
}

export type TrialState = 'waiting' | 'running' | 'complete' | 'failed';

/**
 * What a trial evaluates: `proxy` = prune + BN re-calibration, scored on
 * validation (EagleEye); `adapt` = prune + short fine-tune, scored on validation (NetAdapt), its
 * weights kept as an artifact so children can start from them; `finetune` = finalist, scored on test.
 */
export type TrialStage = 'proxy' | 'adapt' | 'finetune';
export const TRIAL_STAGES: readonly TrialStage[] = ['proxy', 'adapt', 'finetune'];

/**
 * A trial of a rung after the proxy (docs/rungs.md): stage `finetune` with `meta.rung`. Views of the
 * search (fronts, progress, picks) leave these out; the last rung's results are the study's finals.
 */
export function isRungTrial(t: { readonly stage?: TrialStage; readonly meta?: unknown }): boolean {
  const m = t.meta as { rung?: unknown } | null | undefined;
  return t.stage === 'finetune' && m != null && typeof m.rung === 'number';
}

/** Metrics an evaluator reports. Accuracies are fractions in [0, 1]. */
export interface TrialMetrics {
  /** Accuracy on the validation split after BN re-calibration (the search objective). */
  readonly proxyAccuracy?: number;
  /** Accuracy on the test split after fine-tuning (finalists only). */
  readonly finalAccuracy?: number;
  /** Milliseconds per image, batch inference on the evaluating backend. */
  readonly latencyMs?: number;
  /** The host that measured `latencyMs` (os.hostname()); latencies of different hosts do not compare. */
  readonly latencyHost?: string;
  /** The device that measured it: `cpu:<CPU model name>` or `cuda:<n>`. */
  readonly latencyDevice?: string;
  /** Seconds spent per phase, e.g. { prune: 0.1, calibrate: 2.3, eval: 1.1 }. */
  readonly timings?: Readonly<Record<string, number>>;
}
