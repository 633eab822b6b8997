/**
 * How a trial's pruned model is rebuilt, in one place, so that the model `autoprune export` writes
 * is exactly the one the proxy stage scored: same channels chosen (same importance criterion and,
 * for `random`, the same seeded stream per trial), same BN re-calibration.
 */
import type * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.js';
import type { Candidate } from '../core/space.js';
import type { Split } from '../data/types.js';
import type { Analysis } from '../model/analysis.js';
import { type PruningPlan, pruneModel } from '../model/prune.js';
import type { EvaluatorOptions } from './options.js';
import { recalibrateBatchNorm } from './train.js';

/** The Rng that chooses a trial's channels (used by the `random` importance criterion). */
export function pruningRng(cfg: { readonly run: Pick<EvaluatorOptions['run'], 'seed'> }, trialNumber: number): Rng {
  return new Rng(`${cfg.run.seed}:trial:${trialNumber}`);
}

/**
 * Prune `base` to `candidate` as trial `trialNumber` does, then re-calibrate BN on `train` (the
 * proxy stage's adaptive BN). The caller owns (and disposes) the returned model; `base` is untouched.
 */
export async function prunedForTrial(
  cfg: Pick<EvaluatorOptions, 'evaluation' | 'run'>,
  base: tf.LayersModel,
  analysis: Analysis,
  candidate: Candidate,
  trialNumber: number,
  train: Split,
): Promise<{ model: tf.LayersModel; plan: PruningPlan }> {
  const pruned = await pruneModel(base, analysis, candidate, cfg.evaluation.importance, pruningRng(cfg, trialNumber));
  recalibrateBatchNorm(pruned.model, train, {
    batches: cfg.evaluation.calibration.batches,
    batchSize: cfg.evaluation.calibration.batchSize,
    seed: cfg.run.seed,
  });
  return pruned;
}
