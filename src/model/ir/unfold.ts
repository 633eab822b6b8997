/**
 * Unfolding: the adaptive-BN proxy (EagleEye) re-calibrates BatchNorm statistics after a cut, which
 * a conv without a BN after it (Keras models without BN, PyTorch exports whose BNs are folded into
 * the convs) does not have. Each such conv y = W∗x + b becomes Conv(W, no bias) followed by a BN
 * whose statistics (μ, σ²) are those of W∗x on the unpruned model and whose affine is
 * scale = √(σ² + ε), bias = b + μ, so that BN(W∗x) = W∗x + b: the unpruned model computes exactly
 * what it did. After a cut, re-calibration measures the pruned conv's own statistics and the BN
 * maps them back onto the unpruned model's distribution per channel, as a kept BN would.
 * (This is "BN folding" run backwards, BN fusion as in Jacob et al. 2018, for calibration only.)
 */
import { inferShapes } from './analyze.js';
import type { BatchNormNode, ConvNode, ModelGraph, Node } from './graph.js';

/** Epsilon of the BNs unfolding adds (PyTorch's default). */
export const UNFOLD_EPSILON = 1e-5;

/** Name of the BN unfolded from conv `conv`. */
export const unfoldedName = (conv: string): string => `${conv}/bn`;

/** Convs whose output is not read by exactly one BatchNormalization (and nothing else): these get a BN. */
export function convsWithoutBatchNorm(graph: ModelGraph): string[] {
  const readers = new Map<string, Node[]>();
  for (const n of graph.nodes) for (const i of n.inputs) readers.set(i, [...(readers.get(i) ?? []), n]);
  return graph.nodes
    .filter((n) => {
      if (n.op !== 'Conv') return false;
      const r = readers.get(n.name) ?? [];
      return !(r.length === 1 && r[0].op === 'BatchNormalization' && n.name !== graph.output);
    })
    .map((n) => n.name);
}

export interface Statistics {
  readonly mean: Float32Array;
  readonly variance: Float32Array;
}

/**
 * The graph with each named conv unfolded into Conv (no bias) + BN. With `stats` (per conv name:
 * the statistics of its bias-free output) the BNs get them; without, mean 0 and variance 1, which
 * computes the same function (any statistics do: the affine undoes them) and serves to measure them.
 */
export function unfoldConvs(graph: ModelGraph, convs: readonly string[], stats?: ReadonlyMap<string, Statistics>): ModelGraph {
  const chosen = new Set(convs);
  const renamed = new Map<string, string>();
  const shapes = inferShapes(graph);
  const nodes: Node[] = [];
  for (const [k, n] of graph.nodes.entries()) {
    const inputs = n.inputs.map((i) => renamed.get(i) ?? i);
    if (n.op !== 'Conv' || !chosen.has(n.name)) {
      nodes.push({ ...n, inputs } as Node);
      continue;
    }
    const c = shapes[k][0];
    const s = stats?.get(n.name);
    const mean = s ? s.mean.slice() : new Float32Array(c);
    const variance = s ? s.variance.slice() : new Float32Array(c).fill(1);
    const bias = n.bias ?? new Float32Array(c);
    const conv: ConvNode = { ...n, inputs, bias: null };
    const bn: BatchNormNode = {
      op: 'BatchNormalization',
      name: unfoldedName(n.name),
      inputs: [n.name],
      epsilon: UNFOLD_EPSILON,
      scale: Float32Array.from(variance, (v) => Math.sqrt(v + UNFOLD_EPSILON)),
      bias: Float32Array.from(mean, (m, i) => bias[i] + m),
      mean,
      variance,
    };
    nodes.push(conv, bn);
    renamed.set(n.name, bn.name);
  }
  const output = renamed.get(graph.output) ?? graph.output;
  return { ...graph, nodes, output };
}
