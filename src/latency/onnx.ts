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

/** Milliseconds per image of two models timed in alternation, and the median of their per-pair ratios. */
export interface PairedLatency {
  readonly baseMs: number;
  readonly candidateMs: number;
  /** Median over the pairs of candidate time / base time: what a latency target's fraction is checked against. */
  readonly ratio: number;
}

/**
 * `base` and `candidate` (BN folded, as the proxy runs them) timed call by call in alternation, each
 * after three warm-up calls: on a host shared with other work the load moves within seconds, and two
 * calls a few milliseconds apart see about the same load, so the median of the per-pair ratios holds
 * still where either model's own median moves (docs/latency.md).
 */
export async function pairedLatencyMs(
  base: tf.LayersModel,
  candidate: tf.LayersModel,
  o: { threads: number; batch: number; runs: number; clock?: LatencyClock },
): Promise<PairedLatency> {
  const graph = foldBatchNorm(exportOnnxGraph(candidate));
  const shape = graph.inputs[0].shape.slice(1) as number[];
  const gb = encodeOnnx(foldBatchNorm(exportOnnxGraph(base)));
  const gc = encodeOnnx(graph);
  const now = clockOf(o.clock ?? 'wall');
  return withSession(gb, { threads: o.threads }, (sb, ort) =>
    withSession(gc, { threads: o.threads }, async (sc) => {
      const x = { [ONNX_INPUT]: new ort.Tensor('float32', new Float32Array(o.batch * shape.reduce((a, b) => a * b, 1)), [o.batch, ...shape]) };
      const call = async (s: typeof sb) => (await s.run(x, [ONNX_OUTPUT]))[ONNX_OUTPUT].dispose();
      for (let i = 0; i < 3; i++) {
        await call(sb);
        await call(sc);
      }
      const tb: number[] = [];
      const tc: number[] = [];
      const ratios: number[] = [];
      for (let i = 0; i < o.runs; i++) {
        let t = now();
        await call(sb);
        tb.push(now() - t);
        t = now();
        await call(sc);
        tc.push(now() - t);
        ratios.push(tc[i] / tb[i]);
      }
      return { baseMs: median(tb) / o.batch, candidateMs: median(tc) / o.batch, ratio: median(ratios) };
    }),
  );
}

/**
 * `measure` of a candidate cut from `base` (l1 channels: which channels are kept does not change
 * the time), the cut model disposed after.
 */
export async function withCandidateModel<T>(
  base: tf.LayersModel,
  analysis: Analysis,
  c: Candidate,
  measure: (model: tf.LayersModel) => Promise<T>,
): Promise<T> {
  const { model } = await pruneModel(base, analysis, c, 'l1');
  try {
    return await measure(model);
  } finally {
    model.dispose();
  }
}

/** `pairedLatencyMs` of the base and a candidate cut from it. */
export function pairedCandidateLatencyMs(
  base: tf.LayersModel,
  analysis: Analysis,
  c: Candidate,
  o: { threads: number; batch: number; runs: number; clock?: LatencyClock },
): Promise<PairedLatency> {
  return withCandidateModel(base, analysis, c, (model) => pairedLatencyMs(base, model, o));
}

/** The same for a candidate cut from `base`. */
export function candidateLatencyMs(
  base: tf.LayersModel,
  analysis: Analysis,
  c: Candidate,
  o: { threads: number; batch: number; runs: number; clock?: LatencyClock },
): Promise<number> {
  return withCandidateModel(base, analysis, c, (model) => modelLatencyMs(model, o));
}
