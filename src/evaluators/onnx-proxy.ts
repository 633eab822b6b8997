/**
 * The proxy stage on onnxruntime, as functions over an exported `OnnxGraph`: adaptive BN (EagleEye,
 * Li et al. 2020) on a calibration session, then accuracy and latency on an evaluation session with
 * the new statistics folded into the convs. Same semantics as the tfjs path (train.ts): the same
 * seeded calibration batches in the same order, each BN normalising with its batch's own statistics,
 * and the running statistics the plain mean of the batch statistics (momentum k/(k+1)).
 */
import { Rng } from '../core/rng.js';
import { batches } from '../data/batch.js';
import type { Split } from '../data/types.js';
import { type OrtModule, type OrtSession, withSession } from '../engine/onnxruntime.js';
import type { Layout } from '../model/ir/graph.js';
import { batchDims, modelInput } from '../model/ir/layout.js';
import { ONNX_INPUT, ONNX_OUTPUT, type OnnxGraph } from '../model/onnx.js';
import { type BnStatistics, batchNormNodes, calibrationGraph, foldBatchNorm, statisticsProbe, statOutputs, withStatistics } from '../model/onnx-bn.js';
import { padChannels } from '../model/onnx-pad.js';
import { encodeOnnx } from '../model/onnx-proto.js';

export interface CalibrationOptions {
  readonly batches: number;
  readonly batchSize: number;
  readonly seed: number;
  /** Layout of the model's input (`ModelGraph.inputLayout`): HWC images are transposed for NCHW. Default NHWC. */
  readonly layout?: Layout;
}

export interface OnnxProxyOptions {
  readonly calibration: CalibrationOptions;
  /** Score the first `limit` validation images (default all). */
  readonly validationLimit?: number;
  /** Images per evaluation run. Default 500. */
  readonly evalBatchSize?: number;
  /** Latency: batch size and timed runs (median). `runs: 0` skips it. */
  readonly latency: { readonly batchSize: number; readonly runs: number };
  /** Intra-op threads per session. */
  readonly threads?: number;
  /**
   * Pad conv widths to this multiple for the calibration and accuracy sessions (onnx-pad.ts: the
   * same outputs, sometimes faster; docs/benchmarks.md "Proxy engines"); latency is measured on the unpadded graph,
   * the model `export` writes.
   * Default 1: no padding.
   */
  readonly channelBlock?: number;
  /** Wraps the latency measurement (the evaluator runs it with no other session computing). */
  readonly aloneForLatency?: (measure: () => Promise<number>) => Promise<number>;
  /** Layout of the model's input (`ModelGraph.inputLayout`): HWC images are transposed for NCHW. Default NHWC. */
  readonly layout?: Layout;
}

export interface OnnxProxyResult {
  readonly accuracy: number;
  readonly latencyMs: number;
  readonly statistics: BnStatistics;
  /** Seconds per phase: export, session (creation of both), calibrate, evaluate, latency. */
  readonly timings: Record<string, number>;
}

/** The image batch under the session's (first) input name, in the model's input layout. */
function input(session: OrtSession, ort: OrtModule, b: Split, layout: Layout = 'NHWC'): Record<string, InstanceType<OrtModule['Tensor']>> {
  const { data, dims } = modelInput(b.images, b.count, b.shape, layout);
  return { [session.inputNames[0] ?? ONNX_INPUT]: new ort.Tensor('float32', data, dims) };
}

/** BN nodes of a graph (all, or the named ones) with their channel counts. */
function bnChannels(graph: OnnxGraph, names?: readonly string[]): { name: string; channels: number }[] {
  return batchNormNodes(graph)
    .filter((n) => !names || names.includes(n.name))
    .map((n) => ({ name: n.name, channels: graph.initializers.find((i) => i.name === n.inputs[1])!.data.length }));
}

/**
 * Runs a graph with statistics outputs (`statOutputs`) over the seeded batches; returns the mean of
 * each BN's batch statistics. `graph` is the unpadded graph the statistics are for: a padded
 * graph's extra channels are dropped. A graph without BNs has none to measure (no session run).
 */
export async function calibrate(
  session: OrtSession,
  ort: OrtModule,
  graph: OnnxGraph,
  train: Split,
  o: CalibrationOptions,
  only?: readonly string[],
): Promise<BnStatistics> {
  const bns = bnChannels(graph, only).map((b) => ({ ...b, ...statOutputs(b.name) }));
  if (bns.length === 0) return new Map();
  const sums = new Map(bns.map((b) => [b.name, { mean: null as Float64Array | null, variance: null as Float64Array | null }]));
  const fetches = bns.flatMap((b) => [b.mean, b.variance]);
  let k = 0;
  for (const batch of batches(train, o.batchSize, { shuffle: new Rng(o.seed), maxBatches: o.batches })) {
    const out = await session.run(input(session, ort, batch, o.layout), fetches);
    for (const b of bns) {
      const s = sums.get(b.name)!;
      const m = out[b.mean].data as Float32Array;
      const v = out[b.variance].data as Float32Array;
      s.mean ??= new Float64Array(b.channels);
      s.variance ??= new Float64Array(b.channels);
      for (let i = 0; i < b.channels; i++) {
        s.mean[i] += m[i];
        s.variance[i] += v[i];
      }
    }
    for (const t of Object.values(out)) t.dispose();
    k++;
  }
  const stats = new Map<string, { mean: Float32Array; variance: Float32Array }>();
  if (k === 0) return stats;
  for (const [name, s] of sums) stats.set(name, { mean: Float32Array.from(s.mean!, (x) => x / k), variance: Float32Array.from(s.variance!, (x) => x / k) });
  return stats;
}

/** Top-1 accuracy of a session on (the first `limit` images of) a split. */
export async function sessionAccuracy(
  session: OrtSession,
  ort: OrtModule,
  split: Split,
  o: { limit?: number; batchSize?: number; layout?: Layout } = {},
): Promise<number> {
  const output = session.outputNames[0] ?? ONNX_OUTPUT;
  let correct = 0;
  let total = 0;
  for (const b of batches(split, o.batchSize ?? 500, { maxExamples: o.limit })) {
    const out = await session.run(input(session, ort, b, o.layout), [output]);
    const logits = out[output].data as Float32Array;
    const classes = logits.length / b.count;
    for (let i = 0; i < b.count; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
      if (best === b.labels[i]) correct++;
    }
    out[output].dispose();
    total += b.count;
  }
  return total === 0 ? NaN : correct / total;
}

/** Milliseconds per image for batched inference: median of `runs` after one warm-up. */
export async function sessionLatencyMs(
  session: OrtSession,
  ort: OrtModule,
  shape: readonly [number, number, number],
  o: { batchSize: number; runs: number; layout?: Layout },
): Promise<number> {
  const output = session.outputNames[0] ?? ONNX_OUTPUT;
  const x = {
    [session.inputNames[0] ?? ONNX_INPUT]: new ort.Tensor(
      'float32',
      new Float32Array(o.batchSize * shape[0] * shape[1] * shape[2]),
      batchDims(o.batchSize, shape, o.layout ?? 'NHWC'),
    ),
  };
  const run = async () => (await session.run(x, [output]))[output].dispose();
  await run();
  const times: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] / o.batchSize;
}

/** The graph a proxy evaluation scores: averaged statistics in, BNs folded into the convs. */
export function evaluationGraph(graph: OnnxGraph, stats: BnStatistics): OnnxGraph {
  return foldBatchNorm(withStatistics(graph, stats));
}

/**
 * Statistics of the named BNs' inputs on the model as it computes (its BNs in inference mode), over
 * the calibration batches: what unfolding (src/model/ir/unfold.ts) gives its new BNs.
 */
export async function measureStatistics(
  graph: OnnxGraph,
  names: readonly string[],
  train: Split,
  o: CalibrationOptions & { threads?: number },
): Promise<BnStatistics> {
  if (names.length === 0) return new Map();
  return withSession(encodeOnnx(statisticsProbe(graph, names)), { threads: o.threads }, (s, ort) => calibrate(s, ort, graph, train, o, names));
}

/** Adaptive BN, then validation accuracy and latency, all on onnxruntime; sessions are released. */
export async function onnxProxy(graph: OnnxGraph, data: { train: Split; validation: Split }, o: OnnxProxyOptions): Promise<OnnxProxyResult> {
  const timings: Record<string, number> = { session: 0 };
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = (timings[name] ?? 0) + Math.round(now - t) / 1000;
    t = now;
  };
  const sessionOptions = { threads: o.threads };
  const block = o.channelBlock ?? 1;
  let statistics: BnStatistics = new Map();
  if (batchNormNodes(graph).length > 0) {
    const calibBytes = encodeOnnx(calibrationGraph(padChannels(graph, block)));
    lap('export');
    statistics = await withSession(calibBytes, sessionOptions, async (s, ort) => {
      lap('session');
      return calibrate(s, ort, graph, data.train, { ...o.calibration, layout: o.layout });
    });
    lap('calibrate');
  }
  const evaluation = evaluationGraph(graph, statistics);
  const paddedEvaluation = padChannels(evaluation, block);
  const evalBytes = encodeOnnx(paddedEvaluation);
  lap('export');
  const shape = data.validation.shape as [number, number, number];
  const latencyOf = async (s: OrtSession, ort: OrtModule): Promise<number> => {
    const measure = () => sessionLatencyMs(s, ort, shape, { ...o.latency, layout: o.layout });
    const ms = await (o.aloneForLatency ? o.aloneForLatency(measure) : measure());
    lap('latency');
    return ms;
  };
  let latencyMs = NaN;
  const wantLatency = o.latency.runs > 0;
  const accuracy = await withSession(evalBytes, sessionOptions, async (s, ort) => {
    lap('session');
    const acc = await sessionAccuracy(s, ort, data.validation, { limit: o.validationLimit, batchSize: o.evalBatchSize, layout: o.layout });
    lap('evaluate');
    if (wantLatency && paddedEvaluation === evaluation) latencyMs = await latencyOf(s, ort);
    return acc;
  });
  lap('session');
  if (wantLatency && paddedEvaluation !== evaluation) {
    latencyMs = await withSession(encodeOnnx(evaluation), sessionOptions, async (s, ort) => {
      lap('session');
      return latencyOf(s, ort);
    });
    lap('session');
  }
  return { accuracy, latencyMs, statistics, timings };
}
