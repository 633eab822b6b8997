/**
 * Which engine runs the proxy stage, and the evaluator that goes with it (docs/engines.md):
 * `auto` = onnxruntime when it loads, else tfjs. A missing onnxruntime is never fatal under `auto`;
 * naming it explicitly when it cannot load is an error that says how to install it.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ResolvedConfig } from '../config/index.js';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { Split } from '../data/types.js';
import { initBackend } from '../engine/backend.js';
import { loadOnnxRuntime, nchwcBlock, requireOnnxRuntime, withSession } from '../engine/onnxruntime.js';
import type { ModelGraph } from '../model/ir/graph.js';
import { graphToOnnx } from '../model/ir/to-onnx.js';
import { graphToTfjs } from '../model/ir/to-tfjs.js';
import { exportOnnxGraph } from '../model/onnx.js';
import { padChannels } from '../model/onnx-pad.js';
import { encodeOnnx } from '../model/onnx-proto.js';
import { distillNeedsTorch } from './distill.js';
import { resolveTrainEngine } from './fit.js';
import { GraphEvaluator } from './graph.js';
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

/** The graph evaluator of the config's training stages: worker threads, or in-process when `run.workers` is `inline`. */
function graphEvaluator(cfg: ResolvedConfig, o: { splits: Splits; graph: ModelGraph }): Promise<Evaluator> {
  return cfg.run.workers === 'inline' ? GraphEvaluator.create(cfg, o) : WorkerPool.create(cfg, cfg.run.concurrency, { splits: o.splits });
}

type GraphSource = { readonly run: Pick<ResolvedConfig['run'], 'engine'>; readonly model: Pick<ResolvedConfig['model'], 'checkpoint'> };

/** The tfjs proxy takes a tfjs base model; a model imported as a graph (from ONNX) is refused in one line. */
export function refuseTfjsProxy(cfg: GraphSource): AutopruneError {
  return new AutopruneError(
    ErrorCodes.CONFIG_INVALID,
    `The proxy engine is tfjs (\`run.engine.proxy\`: ${cfg.run.engine.proxy}), which runs tfjs models only, and \`model.checkpoint\` ${quote(cfg.model.checkpoint)} is an ONNX model; expected \`run.engine.proxy\`: onnxruntime (or auto with onnxruntime-node installed)`,
  );
}

/**
 * Training a graph on tfjs builds its tfjs twin: a node without an exact tfjs layer is refused when
 * the search starts, naming the node (MODEL_UNSUPPORTED_LAYER), not as a failure of every trial
 * that trains. Nothing to check when the study never trains (no rungs, no NetAdapt adapt stage).
 */
export async function checkGraphTrainable(cfg: ResolvedConfig, graph: ModelGraph): Promise<void> {
  if (resolveTrainEngine(cfg.run.engine.train) !== 'tfjs') return;
  if (cfg.evaluation.rungs.length === 0 && cfg.search.controller.name !== 'greedy') return;
  await initBackend(cfg.run.backend);
  graphToTfjs(graph).dispose();
}

/**
 * The search's evaluator: proxy on the chosen engine; the training stages (adapt, finalists) on the
 * training engine, through the base model's own form: a tfjs model (`base`) or a graph (`graph`,
 * `base` null: an ONNX model).
 */
export async function createEvaluator(cfg: ResolvedConfig, o: { splits: Splits; base: tf.LayersModel | null; graph?: ModelGraph | null }): Promise<Evaluator> {
  // At start-up, not at the first fine-tune after the whole proxy rung.
  if (cfg.evaluation.finetune.distill && resolveTrainEngine(cfg.run.engine.train) === 'tfjs') throw distillNeedsTorch();
  const engine = await proxyEngine(cfg);
  if (o.base === null) {
    if (!o.graph) throw new Error('createEvaluator: neither a tfjs base model nor a graph');
    if (engine === 'tfjs') throw refuseTfjsProxy(cfg);
    const g = { splits: o.splits, graph: o.graph };
    return OnnxEvaluator.create(cfg, { ...g, finetuner: () => graphEvaluator(cfg, g) });
  }
  const t = { splits: o.splits, base: o.base };
  if (engine === 'tfjs') return tfjsEvaluator(cfg, t);
  return OnnxEvaluator.create(cfg, { ...t, finetuner: () => tfjsEvaluator(cfg, t) });
}

/** Top-1 of a graph on (the first `limit` images of) a split, on onnxruntime, in the graph's input layout. */
export async function graphAccuracy(cfg: GraphSource, graph: ModelGraph, split: Split, limit?: number): Promise<number> {
  if ((await proxyEngine(cfg)) === 'tfjs') throw refuseTfjsProxy(cfg);
  const bytes = encodeOnnx(padChannels(graphToOnnx(graph), nchwcBlock()));
  return withSession(bytes, {}, (s, ort) => sessionAccuracy(s, ort, split, { limit, layout: graph.inputLayout }));
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
