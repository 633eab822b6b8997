/**
 * The latency table on tfjs's wasm backend (XNNPACK), the engine the tfjs proxy and the browser run:
 * its id (`tfjs-wasm`, the backend's version, host, XNNPACK threads, batch), its shape timer (the
 * same slope of 1- and k-copy models as onnxruntime's, measure.ts), and end-to-end latency of a
 * model, alone or in alternation with the base. The process's tfjs backend must be `wasm`
 * (src/engine/backend.ts): the models are built and run on whatever backend is active.
 */
import * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import type { Candidate } from '../core/space.js';
import type { Analysis } from '../model/analysis.js';
import type { LatencyShape, LatencyTableId } from '../store/types.js';
import { measureSlope } from './measure.js';
import { type PairedLatency, withCandidateModel } from './onnx.js';
import type { ShapeTimer } from './table.js';
import { latencyHost } from './table.js';

export const TFJS_WASM_ENGINE = 'tfjs-wasm';

async function requireWasm(): Promise<typeof import('@tensorflow/tfjs-backend-wasm')> {
  if (tf.getBackend() !== 'wasm') {
    throw new AutopruneError(
      ErrorCodes.BACKEND_UNAVAILABLE,
      `A tfjs-wasm latency table expected the tfjs backend \`wasm\`, got \`${tf.getBackend()}\`; run with --backend wasm`,
    );
  }
  return import('@tensorflow/tfjs-backend-wasm');
}

/** The table of tfjs-wasm on this host: another backend version, host or thread count never shares it. */
export async function tfjsWasmTableId(batch: number): Promise<LatencyTableId> {
  const wasm = await requireWasm();
  return { engine: TFJS_WASM_ENGINE, engineVersion: wasm.version_wasm, host: latencyHost(), threads: wasm.getThreadsCount(), batch };
}

/** `copies` copies of the shape's layer reading one NHWC input, each followed by Relu (fused by XNNPACK) and a global average pool as its sink. */
export function fanOutModel(s: LatencyShape, copies: number): tf.LayersModel {
  const depthwise = s.groups > 1 && s.groups === s.cin && s.cin === s.cout;
  if (s.groups > 1 && !depthwise) {
    throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `tfjs has no grouped conv for a latency entry with groups=${s.groups}`);
  }
  const input = tf.input({ shape: s.op === 'dense' ? [s.cin] : [s.h, s.w, s.cin] });
  const outputs: tf.SymbolicTensor[] = [];
  for (let i = 0; i < copies; i++) {
    if (s.op === 'dense') {
      outputs.push(tf.layers.dense({ units: s.cout }).apply(input) as tf.SymbolicTensor);
      continue;
    }
    const k = { kernelSize: [s.kh, s.kw] as [number, number], strides: [s.sh, s.sw] as [number, number], padding: s.pad, activation: 'relu' as const };
    const conv = depthwise ? tf.layers.depthwiseConv2d(k) : tf.layers.conv2d({ ...k, filters: s.cout });
    outputs.push(tf.layers.globalAveragePooling2d({}).apply(conv.apply(input)) as tf.SymbolicTensor);
  }
  return tf.model({ inputs: input, outputs });
}

/** Times each shape on tfjs-wasm: ms per call of `batch` images, per-call overhead excluded. */
export async function tfjsWasmShapeTimer(batch: number, o: { copies?: number; repeats?: number } = {}): Promise<ShapeTimer> {
  await requireWasm();
  return (s) =>
    measureSlope(async (copies) => {
      const model = fanOutModel(s, copies);
      const x = tf.ones(s.op === 'dense' ? [batch, s.cin] : [batch, s.h, s.w, s.cin]);
      return {
        run: async () => {
          const y = model.predict(x) as tf.Tensor | tf.Tensor[];
          const ys = Array.isArray(y) ? y : [y];
          await ys[ys.length - 1].data(); // wasm computes synchronously; this waits for nothing but the read
          tf.dispose(ys);
        },
        release: async () => {
          x.dispose();
          model.dispose();
        },
      };
    }, o);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function call(model: tf.LayersModel, x: tf.Tensor): Promise<number> {
  const t = performance.now();
  const y = model.predict(x) as tf.Tensor;
  await y.data();
  const ms = performance.now() - t;
  y.dispose();
  return ms;
}

/** Milliseconds per image of `base` and `candidate` on tfjs-wasm, called in alternation (as onnx.ts `pairedLatencyMs`). */
export async function pairedTfjsLatencyMs(base: tf.LayersModel, candidate: tf.LayersModel, o: { batch: number; runs: number }): Promise<PairedLatency> {
  await requireWasm();
  const shape = base.inputs[0].shape.slice(1).map((d) => d ?? 1);
  const x = tf.ones([o.batch, ...shape]);
  try {
    for (let i = 0; i < 3; i++) {
      await call(base, x);
      await call(candidate, x);
    }
    const tb: number[] = [];
    const tc: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      tb.push(await call(base, x));
      tc.push(await call(candidate, x));
      ratios.push(tc[i] / tb[i]);
    }
    return { baseMs: median(tb) / o.batch, candidateMs: median(tc) / o.batch, ratio: median(ratios) };
  } finally {
    x.dispose();
  }
}

/** Milliseconds per image of `model` alone on tfjs-wasm (median of `runs` calls after three warm-up calls). */
export async function tfjsModelLatencyMs(model: tf.LayersModel, o: { batch: number; runs: number }): Promise<number> {
  await requireWasm();
  const x = tf.ones([o.batch, ...model.inputs[0].shape.slice(1).map((d) => d ?? 1)]);
  try {
    for (let i = 0; i < 3; i++) await call(model, x);
    const ts: number[] = [];
    for (let i = 0; i < o.runs; i++) ts.push(await call(model, x));
    return median(ts) / o.batch;
  } finally {
    x.dispose();
  }
}

/** `pairedTfjsLatencyMs` of the base and a candidate cut from it. */
export function pairedTfjsCandidateLatencyMs(
  base: tf.LayersModel,
  analysis: Analysis,
  c: Candidate,
  o: { batch: number; runs: number },
): Promise<PairedLatency> {
  return withCandidateModel(base, analysis, c, (model) => pairedTfjsLatencyMs(base, model, o));
}
