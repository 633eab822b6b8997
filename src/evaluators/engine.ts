/**
 * Which engine runs the proxy stage, and the evaluator that goes with it (docs/engines.md):
 * `auto` = onnxruntime when it loads, else tfjs. A missing onnxruntime is never fatal under `auto`;
 * naming it explicitly when it cannot load is an error that says how to install it.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ResolvedConfig } from '../config/index.js';
import type { Split } from '../data/types.js';
import { loadOnnxRuntime, nchwcBlock, requireOnnxRuntime, withSession } from '../engine/onnxruntime.js';
import { exportOnnxGraph } from '../model/onnx.js';
import { padChannels } from '../model/onnx-pad.js';
import { encodeOnnx } from '../model/onnx-proto.js';
import { OnnxEvaluator } from './onnx.js';
import { sessionAccuracy } from './onnx-proxy.js';
import { WorkerPool } from './pool.js';
import type { Splits } from './setup.js';
import { TfjsEvaluator } from './tfjs.js';
import { accuracy } from './train.js';
import type { EngineName, Evaluator } from './types.js';

export async function proxyEngine(cfg: { readonly run: Pick<ResolvedConfig['run'], 'engine'> }): Promise<EngineName> {
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

/**
 * Top-1 of a model on (the first `limit` images of) a split, on the proxy's engine. The search
 * scores its base model this way at start-up: onnxruntime takes seconds for the width-1 ResNet-20's
 * 10,000 test images, where tfjs-wasm took minutes. Both agree to the logit (1e-4, test/onnx.test.ts).
 */
export async function engineAccuracy(
  cfg: { readonly run: Pick<ResolvedConfig['run'], 'engine'> },
  model: tf.LayersModel,
  split: Split,
  limit?: number,
): Promise<number> {
  if ((await proxyEngine(cfg)) === 'tfjs') return accuracy(model, split, { limit });
  const bytes = encodeOnnx(padChannels(exportOnnxGraph(model), nchwcBlock()));
  return withSession(bytes, {}, (s, ort) => sessionAccuracy(s, ort, split, { limit }));
}
