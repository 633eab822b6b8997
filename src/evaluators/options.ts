/**
 * What an evaluator reads of a config (evaluators get the options they use, not the whole
 * resolved config). Structural subsets, so a `ResolvedConfig` is one; an evaluator cannot reach the
 * search, the store or the space. `BaseSource` is the part a worker thread needs to load the data
 * and the base model itself.
 */
import type { ResolvedConfig } from '../config/index.js';

export interface EvaluatorOptions {
  /** Importance, calibration, validation, latency, adapt and finalist settings. */
  readonly evaluation: ResolvedConfig['evaluation'];
  /** The training recipe fine-tunes follow (optimizer, momentum, weight decay, augment). */
  readonly train: Pick<ResolvedConfig['train'], 'optimizer' | 'momentum' | 'weightDecay' | 'augment'>;
  readonly run: Pick<ResolvedConfig['run'], 'seed' | 'backend' | 'engine' | 'concurrency'>;
}

/** Where the data and the base model come from (worker threads load them themselves). */
export interface BaseSource {
  readonly data: ResolvedConfig['data'];
  readonly model: ResolvedConfig['model'];
  readonly train: Pick<ResolvedConfig['train'], 'bnMomentum'>;
  readonly run: Pick<ResolvedConfig['run'], 'seed'>;
}
