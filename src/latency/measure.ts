/**
 * Timing one layer shape on onnxruntime without counting the per-call overhead once per layer.
 *
 * A call of a tiny model costs a fixed overhead (binding, scheduling, output transfer) comparable to
 * a small conv. So each shape is timed in two models: one copy of the layer and `copies` copies, and
 * the entry is the slope (T(k) - T(1)) / (k - 1), which the overhead cancels out of (NetAdapt's
 * and HALP's tables time layers alone; the slope is this project's way to do it on a CPU where
 * the call overhead is not negligible).
 *
 * The copies fan out from one input instead of being chained: a chain needs each copy's output to
 * be a valid input of the next, which a layer that changes channels (cin != cout), strides or pads
 * is not. Every copy has its own weights (as layers of a network do). Convs are followed by Relu,
 * which onnxruntime fuses into the conv as in an exported model (BN folded, then Conv+Relu), and
 * then by a GlobalAveragePool as the copy's sink: a conv output that were a graph output would be
 * converted from onnxruntime's blocked NCHWc layout back to NCHW once per copy, a cost a layer
 * inside a network does not pay (its output stays blocked for the next conv); the pool runs in the
 * blocked layout and reads the output once, as the next layer would. The pooled outputs are
 * written into buffers allocated once (pre-allocated outputs), so no copy to JavaScript is timed.
 *
 * Statistic: three warm-up calls, then `repeats` alternating calls of both models; the median of each. A
 * layer too cheap for `copies` copies to stand above the jitter is timed again with more copies.
 */
import { createSession, type OrtModule, type OrtSession, releaseSession } from '../engine/onnxruntime.js';
import type { OnnxGraph, OnnxInitializer, OnnxNode } from '../model/onnx.js';
import { samePads } from '../model/onnx.js';
import { encodeOnnx } from '../model/onnx-proto.js';
import type { LatencyShape } from '../store/types.js';

export interface MeasureOptions {
  readonly threads: number;
  readonly batch: number;
  /** Copies in the large model, >= 2. Default 8. */
  readonly copies?: number;
  /** Timed calls of each model after the warm-up (the median counts). Default 9. */
  readonly repeats?: number;
  /** Milliseconds clock (injectable). Default performance.now. */
  readonly now?: () => number;
}

/** Deterministic small weights: timing does not depend on their values (no denormals, no zeros). */
function weights(n: number, seed: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = (((i * 7 + seed * 13) % 17) - 8) / 64;
  return w;
}

/** An ONNX model with `copies` copies of the shape's layer, each reading the one input. */
export function fanOutGraph(s: LatencyShape, batch: number, copies: number): OnnxGraph {
  const nodes: OnnxNode[] = [];
  const initializers: OnnxInitializer[] = [];
  const outputs = [];
  const outShape = layerOutputShape(s, batch);
  for (let i = 0; i < copies; i++) {
    const out = `y${i}`;
    if (s.op === 'dense') {
      initializers.push({ name: `w${i}`, dims: [s.cin, s.cout], data: weights(s.cin * s.cout, i) });
      initializers.push({ name: `b${i}`, dims: [s.cout], data: weights(s.cout, i + 1) });
      nodes.push({ op: 'Gemm', name: `gemm${i}`, inputs: ['x', `w${i}`, `b${i}`], outputs: [out] });
    } else {
      const cinPerGroup = s.cin / s.groups;
      initializers.push({ name: `w${i}`, dims: [s.cout, cinPerGroup, s.kh, s.kw], data: weights(s.cout * cinPerGroup * s.kh * s.kw, i) });
      initializers.push({ name: `b${i}`, dims: [s.cout], data: weights(s.cout, i + 1) });
      const pads = s.pad === 'same' ? padsOf(s) : [0, 0, 0, 0];
      nodes.push({
        op: 'Conv',
        name: `conv${i}`,
        inputs: ['x', `w${i}`, `b${i}`],
        outputs: [`c${i}`],
        attrs: { kernel_shape: { ints: [s.kh, s.kw] }, strides: { ints: [s.sh, s.sw] }, pads: { ints: pads }, group: { i: s.groups } },
      });
      nodes.push({ op: 'Relu', name: `relu${i}`, inputs: [`c${i}`], outputs: [`r${i}`] });
      nodes.push({ op: 'GlobalAveragePool', name: `sink${i}`, inputs: [`r${i}`], outputs: [out] });
    }
    outputs.push({ name: out, shape: outShape });
  }
  const inShape = s.op === 'dense' ? [batch, s.cin] : [batch, s.cin, s.h, s.w];
  return { name: 'latency-probe', nodes, initializers, inputs: [{ name: 'x', shape: inShape }], outputs };
}

function padsOf(s: LatencyShape): number[] {
  const [t, b] = samePads(s.h, s.kh, s.sh);
  const [l, r] = samePads(s.w, s.kw, s.sw);
  return [t, l, b, r];
}

/** The probe's output per copy: the layer's output pooled to [batch, cout, 1, 1] (a conv), or [batch, cout] (dense). */
export function layerOutputShape(s: LatencyShape, batch: number): number[] {
  return s.op === 'dense' ? [batch, s.cout] : [batch, s.cout, 1, 1];
}

interface Probe {
  readonly session: OrtSession;
  readonly run: () => Promise<void>;
}

async function probe(ort: OrtModule, s: LatencyShape, o: MeasureOptions, copies: number): Promise<Probe> {
  const session = await createSession(encodeOnnx(fanOutGraph(s, o.batch, copies)), { threads: o.threads });
  const inShape = s.op === 'dense' ? [o.batch, s.cin] : [o.batch, s.cin, s.h, s.w];
  const x = new ort.Tensor(
    'float32',
    weights(
      inShape.reduce((a, b) => a * b, 1),
      5,
    ),
    inShape,
  );
  const outShape = layerOutputShape(s, o.batch);
  const size = outShape.reduce((a, b) => a * b, 1);
  const fetches = Object.fromEntries(Array.from({ length: copies }, (_, i) => [`y${i}`, new ort.Tensor('float32', new Float32Array(size), outShape)]));
  return { session, run: async () => void (await session.run({ x }, fetches)) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const WARMUP = 3;

/** A model of `copies` copies of one layer, ready to be called (and released afterwards). */
export interface CopiesProbe {
  readonly run: () => Promise<void>;
  readonly release: () => Promise<void>;
}

/** Medians of `repeats` alternating calls of the one-copy and the k-copy model, after a warm-up each. */
async function timePair(make: (copies: number) => Promise<CopiesProbe>, o: SlopeOptions, copies: number): Promise<{ t1: number; tk: number }> {
  const repeats = Math.max(1, o.repeats ?? 9);
  const now = o.now ?? (() => performance.now());
  const one = await make(1);
  try {
    const many = await make(copies);
    try {
      // A fresh session's first calls are slow (thread pool, first-touch pages): 3 warm-up calls each.
      for (let w = 0; w < WARMUP; w++) {
        await one.run();
        await many.run();
      }
      const t1: number[] = [];
      const tk: number[] = [];
      for (let r = 0; r < repeats; r++) {
        let t = now();
        await one.run();
        t1.push(now() - t);
        t = now();
        await many.run();
        tk.push(now() - t);
      }
      return { t1: median(t1), tk: median(tk) };
    } finally {
      await many.release();
    }
  } finally {
    await one.release();
  }
}

/** The k-copy model should run at least this much longer than the one-copy model, ms (else more copies). */
const MIN_SPAN_MS = 2;
const MAX_COPIES = 64;

export type SlopeOptions = Pick<MeasureOptions, 'copies' | 'repeats' | 'now'>;

/**
 * Milliseconds per call of one layer, per-call overhead excluded: the slope (T(k) - T(1)) / (k - 1)
 * of models with 1 and k copies of it, whatever the engine (`make` builds them). A layer so cheap
 * that k copies add under MIN_SPAN_MS is timed again with more copies, so the slope stands above
 * the timer's and the host's jitter.
 */
export async function measureSlope(make: (copies: number) => Promise<CopiesProbe>, o: SlopeOptions): Promise<number> {
  let copies = Math.max(2, o.copies ?? 8);
  let { t1, tk } = await timePair(make, o, copies);
  if (tk - t1 < MIN_SPAN_MS && copies < MAX_COPIES) {
    const perCopy = Math.max((tk - t1) / (copies - 1), MIN_SPAN_MS / MAX_COPIES);
    copies = Math.min(MAX_COPIES, Math.max(copies + 1, Math.ceil(MIN_SPAN_MS / perCopy) + 1));
    ({ t1, tk } = await timePair(make, o, copies));
  }
  // Noise can still make the difference negative for a layer far cheaper than the jitter: it costs ~0.
  return Math.max(0, (tk - t1) / (copies - 1));
}

/** Milliseconds per call of one layer of shape `s` on onnxruntime at `o.batch` images (`measureSlope`). */
export async function measureShape(ort: OrtModule, s: LatencyShape, o: MeasureOptions): Promise<number> {
  return measureSlope(async (copies) => {
    const p = await probe(ort, s, o, copies);
    return { run: p.run, release: () => releaseSession(p.session) };
  }, o);
}
