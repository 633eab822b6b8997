/**
 * The in-process tfjs evaluator: base model and data loaded once, then per candidate:
 * plan (importance) -> physically smaller model -> BN re-calibration -> [fine-tune] -> metrics.
 * Stages: proxy (validation), adapt (short fine-tune, validation, weights saved), finetune (test).
 */
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { initBackend } from '../engine/backend.js';
import { type Analysis, analyzeModel } from '../model/analysis.js';
import { costOf } from '../model/flops.js';
import { loadModel, saveModel } from '../model/io.js';
import { rungTraining } from '../study/rungs.js';
import { fit } from './fit.js';
import { saveGraphOf } from './graph-tune.js';
import type { BaseSource, EvaluatorOptions } from './options.js';
import { prunedForTrial } from './plan-rng.js';
import { finetuneOptions } from './recipe.js';
import { loadBaseModel, loadSplits, type Splits } from './setup.js';
import { accuracy, latencyMs } from './train.js';
import { type EvalRequest, type EvalResult, type Evaluator, latencyTimingKey } from './types.js';

export class TfjsEvaluator implements Evaluator {
  readonly capacity = 1;

  private constructor(
    private readonly cfg: EvaluatorOptions,
    private readonly base: tf.LayersModel,
    private readonly analysis: Analysis,
    private readonly splits: Splits,
    private readonly worker: string,
  ) {}

  /** Loads backend, data and base model. `splits`/`base` may be passed in when the caller has them. */
  static async create(cfg: EvaluatorOptions & BaseSource, options: { worker?: string; splits?: Splits; base?: tf.LayersModel } = {}): Promise<TfjsEvaluator> {
    await initBackend(cfg.run.backend);
    const splits = options.splits ?? (await loadSplits(cfg));
    const base = options.base ?? (await loadBaseModel(cfg));
    return new TfjsEvaluator(cfg, base, analyzeModel(base), splits, options.worker ?? 'main');
  }

  async evaluate(req: EvalRequest): Promise<EvalResult> {
    const timings: Record<string, number> = {};
    let t = performance.now();
    const lap = (name: string) => {
      const now = performance.now();
      timings[name] = Math.round(now - t) / 1000;
      t = now;
    };
    const { model } = await this.pruned(req);
    lap('prune+calibrate');
    try {
      const scored = await this.score(model, req, lap);
      const latency = latencyMs(model, this.splits.shape, this.cfg.evaluation.latency);
      lap(latencyTimingKey('tfjs'));
      const cost = costOf(analyzeModel(model), null);
      return { ...scored, latencyMs: latency, cost, timings, worker: this.worker };
    } finally {
      model.dispose();
    }
  }

  /** The candidate cut from the base model, or from its parent trial's adapted weights (NetAdapt's chain). */
  private async pruned(req: EvalRequest): Promise<{ model: tf.LayersModel }> {
    if (!req.parent) return prunedForTrial(this.cfg, this.base, this.analysis, req.candidate, req.trial, this.splits.train);
    const parent = await loadModel(join(req.parent.modelDir, 'model.json'));
    try {
      return await prunedForTrial(this.cfg, parent, analyzeModel(parent), req.candidate, req.trial, this.splits.train);
    } finally {
      parent.dispose();
    }
  }

  private async score(
    model: tf.LayersModel,
    req: EvalRequest,
    lap: (phase: string) => void,
  ): Promise<Pick<EvalResult, 'proxyAccuracy' | 'finalAccuracy' | 'modelPath' | 'trainEngine'>> {
    const { cfg, splits } = this;
    switch (req.stage) {
      case 'proxy': {
        const proxyAccuracy = accuracy(model, splits.validation, { limit: cfg.evaluation.validation.limit });
        lap('validate');
        return { proxyAccuracy };
      }
      case 'adapt': {
        // NetAdapt's short-term fine-tune, scored on validation; its weights seed the trial's children.
        const a = cfg.evaluation.adapt;
        const trainEngine = await this.tune(model, req.trial, { epochs: a.epochs, batchesPerEpoch: a.batchesPerEpoch });
        lap('adapt');
        const proxyAccuracy = accuracy(model, splits.validation, { limit: cfg.evaluation.validation.limit });
        lap('validate');
        return { proxyAccuracy, modelPath: await this.save(model, req.saveTo), trainEngine };
      }
      case 'finetune': {
        // The rung's own length (the request's, else the last rung's), in the one fine-tune recipe.
        const length = req.length ?? cfg.evaluation.rungs.at(-1)?.finetune ?? { epochs: 0 };
        const f = cfg.evaluation.finetune;
        const perEpoch = Math.min(Math.floor(splits.train.count / f.batchSize), f.batchesPerEpoch ?? Number.POSITIVE_INFINITY);
        const run = rungTraining(length, perEpoch);
        let trainEngine: string | undefined;
        if (run.epochs > 0) {
          trainEngine = await this.tune(model, req.trial, run);
          lap('finetune');
        }
        // Validation ranks the rungs (promotion never sees the test split); test is the reported number.
        const proxyAccuracy = accuracy(model, splits.validation, { limit: cfg.evaluation.validation.limit });
        lap('validate');
        const finalAccuracy = accuracy(model, splits.test);
        lap('test');
        return { proxyAccuracy, finalAccuracy, modelPath: await this.save(model, req.saveTo), trainEngine };
      }
    }
  }

  /** libtorch when built (run.engine train: auto), the weights written back into `model`; returns the engine. */
  private async tune(model: tf.LayersModel, trial: number, o: { epochs: number; batchesPerEpoch?: number }): Promise<string> {
    const { cfg, splits } = this;
    const f = cfg.evaluation.finetune;
    const r = await fit(
      model,
      splits.train,
      finetuneOptions(f, {
        epochs: o.epochs,
        maxBatchesPerEpoch: o.batchesPerEpoch ?? f.batchesPerEpoch,
        numClasses: splits.numClasses,
        seed: cfg.run.seed + trial,
        // The teacher is the unpruned base model, also for a trial cut from its parent's adapted weights.
        teacher: { model: this.base },
      }),
      { requested: cfg.run.engine.train, workers: cfg.run.concurrency },
    );
    return r.engine;
  }

  /** model.json + weights.bin for the tfjs-side readers, and the model's graph (graph.json + graph.bin). */
  private async save(model: tf.LayersModel, dir: string | undefined): Promise<string | undefined> {
    if (!dir) return undefined;
    await saveModel(model, dir);
    await saveGraphOf(model, dir);
    return dir;
  }

  async close(): Promise<void> {
    this.base.dispose();
  }
}
