/** Cost of a model or candidate, a pure function of topology + candidate (src/model/flops.ts). */
export interface Cost {
  /** Multiply-accumulates of conv/dense layers for one image (see docs/flops.md). */
  readonly macs: number;
  /** All weights, trainable and not (Keras `countParams` convention). */
  readonly params: number;
}

export type TrialState = 'waiting' | 'running' | 'complete' | 'failed';

/** Metrics an evaluator reports. Accuracies are fractions in [0, 1]. */
export interface TrialMetrics {
  /** Accuracy on the validation split after BN re-calibration (the search objective). */
  readonly proxyAccuracy?: number;
  /** Accuracy on the test split after fine-tuning (finalists only). */
  readonly finalAccuracy?: number;
  /** Milliseconds per image, batch inference on the evaluating backend. */
  readonly latencyMs?: number;
  /** Seconds spent per phase, e.g. { prune: 0.1, calibrate: 2.3, eval: 1.1 }. */
  readonly timings?: Readonly<Record<string, number>>;
}
