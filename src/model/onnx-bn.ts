/**
 * BatchNorm rewrites of an exported `OnnxGraph`, for adaptive BN on onnxruntime (EagleEye's proxy):
 *
 * - `calibrationGraph`: every BN normalises with its input batch's own statistics (tfjs training
 *   mode: biased variance) and emits them as extra outputs: BatchNormalization in training mode
 *   (opset 15), one kernel per BN. Measured here, it cost 9% less CPU per image than the graph it
 *   replaced (ReduceMean and ReduceSumSquare for the statistics, then an inference-mode BN fed
 *   with them), whose statistics it matches to float32 rounding.
 * - `withStatistics` + `foldBatchNorm`: the evaluation graph with the averaged statistics, each BN
 *   that directly follows a Conv folded into that Conv's weights and bias (constant initializers,
 *   which onnxruntime pre-packs).
 */
import type { OnnxGraph, OnnxInitializer, OnnxNode } from './onnx.js';

/** Per BN node name (the tfjs layer's name): its running mean and (biased) variance, one value per channel. */
export type BnStatistics = ReadonlyMap<string, { readonly mean: Float32Array; readonly variance: Float32Array }>;

const isBn = (n: OnnxNode): boolean => n.op === 'BatchNormalization';

/** BatchNormalization's `training_mode` and its running-statistics outputs need opset 15. */
export const CALIBRATION_OPSET = 15;

/** Output names the calibration graph gives each BN's batch statistics. */
export const statOutputs = (bn: string): { mean: string; variance: string } => ({ mean: `${bn}#mean`, variance: `${bn}#var` });

function initializerMap(g: OnnxGraph): Map<string, OnnxInitializer> {
  return new Map(g.initializers.map((i) => [i.name, i]));
}

export function batchNormNodes(g: OnnxGraph): OnnxNode[] {
  return g.nodes.filter(isBn);
}

export function calibrationGraph(g: OnnxGraph): OnnxGraph {
  const init = initializerMap(g);
  const outputs = [...g.outputs];
  const nodes = g.nodes.map((n) => {
    if (!isBn(n)) return n;
    const channels = init.get(n.inputs[1])!.data.length;
    const { mean, variance } = statOutputs(n.name);
    outputs.push({ name: mean, shape: [channels] }, { name: variance, shape: [channels] });
    // Training mode normalises with the batch's statistics; with momentum 0 its running outputs
    // are exactly those statistics (the running inputs are multiplied by 0).
    return { ...n, outputs: [n.outputs[0], mean, variance], attrs: { ...n.attrs, momentum: { f: 0 }, training_mode: { i: 1 } } };
  });
  return { ...g, nodes, outputs, opset: CALIBRATION_OPSET };
}

/** The graph with each BN's running statistics replaced (BNs missing from `stats` keep theirs). */
export function withStatistics(g: OnnxGraph, stats: BnStatistics): OnnxGraph {
  const replace = new Map<string, Float32Array>();
  for (const n of batchNormNodes(g)) {
    const s = stats.get(n.name);
    if (!s) continue;
    replace.set(n.inputs[3], s.mean);
    replace.set(n.inputs[4], s.variance);
  }
  return { ...g, initializers: g.initializers.map((i) => (replace.has(i.name) ? { ...i, data: replace.get(i.name)! } : i)) };
}

/**
 * Folds every BN whose input is a Conv output read by nothing else into that Conv:
 * w' = w · γ/√(σ²+ε) per output channel, b' = (b − μ) · γ/√(σ²+ε) + β.
 */
export function foldBatchNorm(g: OnnxGraph): OnnxGraph {
  const init = initializerMap(g);
  const readers = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  const producer = new Map<string, OnnxNode>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);

  const folded = new Map<OnnxNode, OnnxNode>();
  const dropped = new Set<OnnxNode>();
  const newInit = new Map<string, OnnxInitializer>();
  const unused = new Set<string>();
  for (const bn of batchNormNodes(g)) {
    const conv = producer.get(bn.inputs[0]);
    if (conv?.op !== 'Conv' || readers.get(bn.inputs[0]) !== 1 || graphOutputs.has(bn.inputs[0]) || folded.has(conv)) continue;
    const [gamma, beta, mean, variance] = bn.inputs.slice(1).map((n) => init.get(n)?.data as Float32Array | undefined);
    const weight = init.get(conv.inputs[1]);
    if (!gamma || !beta || !mean || !variance || !weight) continue;
    const eps = bn.attrs?.epsilon && 'f' in bn.attrs.epsilon ? bn.attrs.epsilon.f : 1e-5;
    const co = gamma.length;
    const w = weight.data as Float32Array;
    const per = w.length / co;
    const oldBias = conv.inputs[2] ? (init.get(conv.inputs[2])!.data as Float32Array) : new Float32Array(co);
    const wOut = new Float32Array(w.length);
    const bOut = new Float32Array(co);
    for (let o = 0; o < co; o++) {
      const a = gamma[o] / Math.sqrt(variance[o] + eps);
      for (let k = 0; k < per; k++) wOut[o * per + k] = w[o * per + k] * a;
      bOut[o] = (oldBias[o] - mean[o]) * a + beta[o];
    }
    const wName = `${conv.inputs[1]}#folded`;
    const bName = `${conv.inputs[1]}#folded_bias`;
    newInit.set(wName, { name: wName, dims: weight.dims, data: wOut });
    newInit.set(bName, { name: bName, dims: [co], data: bOut });
    folded.set(conv, { ...conv, inputs: [conv.inputs[0], wName, bName], outputs: bn.outputs });
    dropped.add(bn);
    for (const i of [...bn.inputs.slice(1), ...conv.inputs.slice(1)]) unused.add(i);
  }
  const nodes = g.nodes.filter((n) => !dropped.has(n)).map((n) => folded.get(n) ?? n);
  const stillRead = new Set(nodes.flatMap((n) => n.inputs));
  const initializers = [...g.initializers.filter((i) => !unused.has(i.name) || stillRead.has(i.name)), ...newInit.values()];
  return { ...g, nodes, initializers };
}

/**
 * The graph with, beside each named BN, a training-mode twin reading the same input whose only use
 * is its batch-statistics outputs (`statOutputs(name)`): the model's own outputs are unchanged (its
 * BNs stay in inference mode), so the statistics are those of the model as it computes.
 */
export function statisticsProbe(g: OnnxGraph, names: readonly string[]): OnnxGraph {
  const wanted = new Set(names);
  const init = initializerMap(g);
  const outputs = [...g.outputs];
  const probes: OnnxNode[] = [];
  for (const n of batchNormNodes(g)) {
    if (!wanted.has(n.name)) continue;
    const { mean, variance } = statOutputs(n.name);
    outputs.push({ name: mean, shape: [init.get(n.inputs[1])!.data.length] }, { name: variance, shape: [init.get(n.inputs[1])!.data.length] });
    probes.push({
      ...n,
      name: `${n.name}#probe`,
      outputs: [`${n.name}#probe`, mean, variance],
      attrs: { ...n.attrs, momentum: { f: 0 }, training_mode: { i: 1 } },
    });
  }
  return { ...g, nodes: [...g.nodes, ...probes], outputs, opset: CALIBRATION_OPSET };
}
