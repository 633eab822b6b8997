/**
 * The latency table on onnxruntime (the default `evaluation.latency.engine`): its id (engine build,
 * execution provider, host), its shape timer, and end-to-end latency of a model measured the way the
 * proxy evaluator measures it (BN folded, same session options, same batch and statistic).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Candidate } from '../core/space.js';
import { executionProviders, requireOnnxRuntime, withSession } from '../engine/onnxruntime.js';
import type { Analysis } from '../model/analysis.js';
import { exportOnnxGraph, ONNX_INPUT, ONNX_OUTPUT } from '../model/onnx.js';
import { foldBatchNorm } from '../model/onnx-bn.js';
import { encodeOnnx } from '../model/onnx-proto.js';
import { pruneModel } from '../model/prune.js';
import type { LatencyTableId } from '../store/types.js';
import { measureShape } from './measure.js';
import type { ShapeTimer } from './table.js';
import { latencyHost } from './table.js';

/**
 * Which clock times the table and the base: `wall` (elapsed time, what a user waits) or `cpu` (the
 * process's CPU time: the engine's work, all threads summed, without the time spent waiting for a
 * core). On a host shared with other work the wall clock measures the neighbours as much as the
 * model (docs/latency.md); CPU time does not, at the price of measuring work rather than latency.
 */
export type LatencyClock = 'wall' | 'cpu';

export function clockOf(c: LatencyClock): () => number {
  if (c === 'wall') return () => performance.now();
  return () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
}

/** The table of onnxruntime on this host: `onnxruntime-cuda` when the proxy would run on CUDA (untested); `:cpu` for CPU-time tables. */
export async function onnxTableId(threads: number, batch: number, clock: LatencyClock = 'wall'): Promise<LatencyTableId> {
  const ort = await requireOnnxRuntime();
  const version = ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown';
  const engine = `${executionProviders()[0] === 'cuda' ? 'onnxruntime-cuda' : 'onnxruntime'}${clock === 'cpu' ? ':cpu' : ''}`;
  return { engine, engineVersion: version, host: latencyHost(), threads, batch };
}

export async function onnxShapeTimer(threads: number, batch: number, o: { copies?: number; repeats?: number; clock?: LatencyClock } = {}): Promise<ShapeTimer> {
  const ort = await requireOnnxRuntime();
  const now = clockOf(o.clock ?? 'wall');
  return (s) => measureShape(ort, s, { threads, batch, copies: o.copies, repeats: o.repeats, now });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Milliseconds per image of `model` on onnxruntime, its BNs folded, as the proxy measures it
 * (onnx-proxy.ts sessionLatencyMs: same session options, batch and median), on the given clock,
 * after three warm-up calls.
 */
export async function modelLatencyMs(model: tf.LayersModel, o: { threads: number; batch: number; runs: number; clock?: LatencyClock }): Promise<number> {
  const graph = foldBatchNorm(exportOnnxGraph(model));
  const shape = graph.inputs[0].shape.slice(1) as number[];
  const now = clockOf(o.clock ?? 'wall');
  return withSession(encodeOnnx(graph), { threads: o.threads }, async (s, ort) => {
    const x = { [ONNX_INPUT]: new ort.Tensor('float32', new Float32Array(o.batch * shape.reduce((a, b) => a * b, 1)), [o.batch, ...shape]) };
    const run = async () => (await s.run(x, [ONNX_OUTPUT]))[ONNX_OUTPUT].dispose();
    for (let i = 0; i < 3; i++) await run();
    const times: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      const t = now();
      await run();
      times.push(now() - t);
    }
    return median(times) / o.batch;
  });
}

/** The same for a candidate cut from `base` (which channels are kept does not change the time). */
export async function candidateLatencyMs(
  base: tf.LayersModel,
  analysis: Analysis,
  c: Candidate,
  o: { threads: number; batch: number; runs: number; clock?: LatencyClock },
): Promise<number> {
  const { model } = await pruneModel(base, analysis, c, 'l1');
  try {
    return await modelLatencyMs(model, o);
  } finally {
    model.dispose();
  }
}
