/**
 * The in-process tfjs evaluator: base model and data loaded once, then per candidate:
 * plan (importance) -> physically smaller model -> BN re-calibration -> [fine-tune] -> metrics.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ResolvedConfig } from '../config/index.js';
import { initBackend } from '../engine/backend.js';
import { type Analysis, analyzeModel } from '../model/analysis.js';
import { costOf } from '../model/flops.js';
import { saveModel } from '../model/io.js';
import { prunedForTrial } from './plan-rng.js';
import { loadBaseModel, loadSplits, type Splits } from './setup.js';
import { fit } from './fit.js';
import { accuracy, latencyMs } from './train.js';
import { type EvalRequest, type EvalResult, type Evaluator, latencyTimingKey } from './types.js';

export class TfjsEvaluator implements Evaluator {
  readonly capacity = 1;

  private constructor(
    private readonly cfg: ResolvedConfig,
    private readonly base: tf.LayersModel,
    private readonly analysis: Analysis,
    private readonly splits: Splits,
    private readonly worker: string,
  ) {}

  /** Loads backend, data and base model. `splits`/`base` may be passed in when the caller has them. */
  static async create(cfg: ResolvedConfig, options: { worker?: string; splits?: Splits; base?: tf.LayersModel } = {}): Promise<TfjsEvaluator> {
    await initBackend(cfg.run.backend);
    const splits = options.splits ?? (await loadSplits(cfg));
    const base = options.base ?? (await loadBaseModel(cfg));
    return new TfjsEvaluator(cfg, base, analyzeModel(base), splits, options.worker ?? 'main');
  }

  async evaluate(req: EvalRequest): Promise<EvalResult> {
    const { cfg, splits } = this;
    const ev = cfg.evaluation;
    const timings: Record<string, number> = {};
    let t = performance.now();
    const lap = (name: string) => {
      const now = performance.now();
      timings[name] = Math.round(now - t) / 1000;
      t = now;
    };
    const { model } = await prunedForTrial(cfg, this.base, this.analysis, req.candidate, req.trial, splits.train);
    lap('prune+calibrate');
    try {
      let proxyAccuracy: number | undefined;
      let finalAccuracy: number | undefined;
      let modelPath: string | undefined;
      let trainEngine: string | undefined;
      if (req.stage === 'proxy') {
        proxyAccuracy = accuracy(model, splits.validation, { limit: ev.validation.limit });
        lap('validate');
      } else {
        const f = ev.finalists;
        if (f.epochs > 0) {
          // libtorch when built (run.engine train: auto), the weights written back into `model`.
          const r = await fit(
            model,
            splits.train,
            {
              epochs: f.epochs,
              batchSize: f.batchSize,
              learningRate: f.learningRate,
              optimizer: cfg.train.optimizer,
              momentum: cfg.train.momentum,
              weightDecay: cfg.train.weightDecay,
              numClasses: splits.numClasses,
              seed: cfg.run.seed + req.trial,
              augment: cfg.train.augment,
              maxBatchesPerEpoch: f.batchesPerEpoch,
            },
            { requested: cfg.run.engine.train, workers: cfg.run.concurrency },
          );
          lap('finetune');
          trainEngine = r.engine;
        }
        finalAccuracy = accuracy(model, splits.test);
        lap('test');
        if (req.saveTo) {
          await saveModel(model, req.saveTo);
          modelPath = req.saveTo;
        }
      }
      const latency = latencyMs(model, splits.shape, ev.latency);
      lap(latencyTimingKey('tfjs'));
      const cost = costOf(analyzeModel(model), null);
      return { proxyAccuracy, finalAccuracy, latencyMs: latency, cost, timings, worker: this.worker, modelPath, trainEngine };
    } finally {
      model.dispose();
    }
  }

  async close(): Promise<void> {
    this.base.dispose();
  }
}
