/**
 * The latency table on onnxruntime (the default `evaluation.latency.engine`): its id (engine build,
 * execution provider, host), its shape timer, and end-to-end latency of a model measured the way the
 * proxy evaluator measures it (BN folded, same session options, same batch and statistic).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Candidate } from '../core/space.js';
import { executionProviders, requireOnnxRuntime, withSession } from '../engine/onnxruntime.js';
import { sessionLatencyMs } from '../evaluators/onnx-proxy.js';
import type { Analysis } from '../model/analysis.js';
import { exportOnnxGraph } from '../model/onnx.js';
import { foldBatchNorm } from '../model/onnx-bn.js';
import { encodeOnnx } from '../model/onnx-proto.js';
import { pruneModel } from '../model/prune.js';
import type { LatencyTableId } from '../store/types.js';
import { measureShape } from './measure.js';
import type { ShapeTimer } from './table.js';
import { latencyHost } from './table.js';

/** The table of onnxruntime on this host: `onnxruntime-cuda` when the proxy would run on CUDA (untested here). */
export async function onnxTableId(threads: number, batch: number): Promise<LatencyTableId> {
  const ort = await requireOnnxRuntime();
  const version = ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown';
  const engine = executionProviders()[0] === 'cuda' ? 'onnxruntime-cuda' : 'onnxruntime';
  return { engine, engineVersion: version, host: latencyHost(), threads, batch };
}

export async function onnxShapeTimer(threads: number, batch: number, o: { copies?: number; repeats?: number } = {}): Promise<ShapeTimer> {
  const ort = await requireOnnxRuntime();
  return (s) => measureShape(ort, s, { threads, batch, ...o });
}

/** Milliseconds per image of `model` on onnxruntime (its BNs folded, as the proxy measures). */
export async function modelLatencyMs(model: tf.LayersModel, o: { threads: number; batch: number; runs: number }): Promise<number> {
  const graph = foldBatchNorm(exportOnnxGraph(model));
  const shape = graph.inputs[0].shape.slice(1) as [number, number, number];
  return withSession(encodeOnnx(graph), { threads: o.threads }, (s, ort) => sessionLatencyMs(s, ort, shape, { batchSize: o.batch, runs: o.runs }));
}

/** The same for a candidate cut from `base` (which channels are kept does not change the time). */
export async function candidateLatencyMs(
  base: tf.LayersModel,
  analysis: Analysis,
  c: Candidate,
  o: { threads: number; batch: number; runs: number },
): Promise<number> {
  const { model } = await pruneModel(base, analysis, c, 'l1');
  try {
    return await modelLatencyMs(model, o);
  } finally {
    model.dispose();
  }
}
