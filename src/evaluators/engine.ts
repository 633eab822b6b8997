/**
 * Which engine runs the proxy stage, and the evaluator that goes with it (DESIGN.md "Engines"):
 * `auto` = onnxruntime when it loads, else tfjs. A missing onnxruntime is never fatal under `auto`;
 * naming it explicitly when it cannot load is an error that says how to install it.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ResolvedConfig } from '../config/index.js';
import { loadOnnxRuntime, requireOnnxRuntime } from '../engine/onnxruntime.js';
import { OnnxEvaluator } from './onnx.js';
import { WorkerPool } from './pool.js';
import type { Splits } from './setup.js';
import { TfjsEvaluator } from './tfjs.js';
import type { EngineName, Evaluator } from './types.js';

export async function proxyEngine(cfg: ResolvedConfig): Promise<EngineName> {
  switch (cfg.run.engine.proxy) {
    case 'tfjs':
      return 'tfjs';
    case 'onnxruntime':
      await requireOnnxRuntime();
      return 'onnxruntime';
    case 'auto':
      return (await loadOnnxRuntime()) ? 'onnxruntime' : 'tfjs';
  }
}

/** The tfjs evaluator of the config: worker threads, or in-process when `run.workers` is `inline`. */
function tfjsEvaluator(cfg: ResolvedConfig, o: { splits: Splits; base: tf.LayersModel }): Promise<Evaluator> {
  return cfg.run.workers === 'inline' ? TfjsEvaluator.create(cfg, o) : WorkerPool.create(cfg, cfg.run.concurrency, { splits: o.splits });
}

/** The search's evaluator: proxy on the chosen engine; finalists (training) on tfjs. */
export async function createEvaluator(cfg: ResolvedConfig, o: { splits: Splits; base: tf.LayersModel }): Promise<Evaluator> {
  if ((await proxyEngine(cfg)) === 'tfjs') return tfjsEvaluator(cfg, o);
  return OnnxEvaluator.create(cfg, { ...o, finetuner: () => tfjsEvaluator(cfg, o) });
}
