/**
 * The evaluator contract (DESIGN.md "Evaluator"): a candidate in, metrics out. Behind this
 * interface sit the in-process tfjs evaluator, a pool of worker threads, and later the
 * onnxruntime proxy and remote workers.
 */
import type { Candidate } from '../core/space.js';
import type { Cost, TrialStage } from '../core/types.js';

/**
 * `proxy`: prune + BN re-calibration + accuracy on the validation split (EagleEye's proxy).
 * `adapt`: prune + BN re-calibration + short fine-tune + accuracy on the validation split (NetAdapt).
 * `finetune`: prune + fine-tune + accuracy on the test split (finalists only).
 */
export type Stage = TrialStage;

export interface EvalRequest {
  readonly trial: number;
  readonly candidate: Candidate;
  readonly stage: Stage;
  /** adapt/finetune: save the tuned model (tfjs LayersModel) into this folder. */
  readonly saveTo?: string;
  /**
   * Start from this trial's adapted weights (a tfjs LayersModel folder in the study's artifacts)
   * instead of the base model; the candidate's channels are then cut from that model.
   */
  readonly parent?: { readonly trial: number; readonly modelDir: string };
}

export interface EvalResult {
  /** Validation accuracy: after BN re-calibration (proxy stage) or after the short fine-tune (adapt stage). */
  readonly proxyAccuracy?: number;
  /** Test accuracy after fine-tuning (finetune stage). */
  readonly finalAccuracy?: number;
  readonly latencyMs: number;
  /** Where latencyMs was measured: the host, and `cpu:<model name>` or `cuda:<n>` (stamped by src/app/evaluators.ts when absent). */
  readonly latencyHost?: string;
  readonly latencyDevice?: string;
  /** Cost counted on the physically pruned model (must equal the predicted one). */
  readonly cost: Cost;
  /** Seconds per phase. */
  readonly timings: Record<string, number>;
  /** Which worker ran it (`main`, `worker-0`, ...). */
  readonly worker: string;
  readonly modelPath?: string;
  /** finetune only: the engine that fine-tuned (`libtorch` or a tfjs backend name). */
  readonly trainEngine?: string;
}

/** Engines that run a stage. tfjs is the reference and the fallback. */
export type EngineName = 'onnxruntime' | 'tfjs';

/**
 * The timings key of the latency phase names the engine that measured the latency
 * (`latency@onnxruntime`), so a trial records its latency's engine without a store change; trials
 * from before engines existed have a plain `latency` key and were measured on tfjs.
 */
export const latencyTimingKey = (engine: EngineName): string => `latency@${engine}`;

export function latencyEngineOf(timings: Readonly<Record<string, number>> | undefined): string | null {
  if (!timings) return null;
  for (const k of Object.keys(timings)) if (k.startsWith('latency@')) return k.slice('latency@'.length);
  return 'latency' in timings ? 'tfjs' : null;
}

export interface Evaluator {
  /** How many evaluations it can run at once. */
  readonly capacity: number;
  evaluate(req: EvalRequest): Promise<EvalResult>;
  close(): Promise<void>;
}
