/**
 * A tfjs LayersModel (NHWC, as every tfjs model is) from a ModelGraph: the reference engine and
 * `export --format tfjs`. Every node becomes the tfjs layer that computes exactly what the graph
 * means; explicit pads become a ZeroPadding2D before a 'valid' layer. A node tfjs cannot compute
 * exactly (grouped convolution, ceil-mode pooling that adds a window, max pooling with pads other
 * than TensorFlow's 'same', HardSwish, ...) is refused with one line naming the node and op.
 * Layers are named after nodes, so weights and messages map back.
 */
import * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import type { ActivationNode, ModelGraph, Node, NodeOf, Pads4 } from './graph.js';

type Sym = tf.SymbolicTensor;

interface Built {
  readonly y: Sym;
  /** Weights to set once the model exists, in the layer's own order. */
  readonly weights?: readonly { readonly layer: tf.layers.Layer; readonly values: readonly tf.Tensor[] }[];
}

function refuse(n: Node, what: string): AutopruneError {
  return new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_LAYER, `Node ${quote(n.name)} (${n.op}): ${what} has no exact tfjs layer`);
}

/** [N, H, W, C] -> C (or the feature count of a rank-2 tensor). */
function channels(x: Sym): number {
  return x.shape[x.shape.length - 1]!;
}

function spatial(x: Sym): [number, number] {
  return [x.shape[1]!, x.shape[2]!];
}

function zeroPad(x: Sym, pads: Pads4, name: string): Sym {
  const [t, l, b, r] = pads;
  if (t + l + b + r === 0) return x;
  return tf.layers
    .zeroPadding2d({
      padding: [
        [t, b],
        [l, r],
      ],
      name,
    })
    .apply(x) as Sym;
}

/** TensorFlow's 'same' pads [t, l, b, r] of a window on an input (the odd pixel at the bottom/right). */
function samePads(hw: readonly [number, number], kernel: readonly [number, number], strides: readonly [number, number]): Pads4 {
  const p = [0, 1].map((i) => {
    const total = Math.max((Math.ceil(hw[i] / strides[i]) - 1) * strides[i] + kernel[i] - hw[i], 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  });
  return [p[0][0], p[1][0], p[0][1], p[1][1]];
}

function samePadsEqual(a: Pads4, b: Pads4): boolean {
  return a.every((v, i) => v === b[i]);
}

/** Output size along one axis, floor and (PyTorch's) ceil mode. */
function poolOut(size: number, k: number, s: number, before: number, after: number, ceil: boolean): number {
  if (!ceil) return Math.floor((size + before + after - k) / s) + 1;
  let out = Math.ceil((size + before + after - k) / s) + 1;
  if ((out - 1) * s >= size + before) out--;
  return out;
}

function activationLayer(n: ActivationNode): tf.layers.Layer {
  const f = n.fn;
  const name = n.name;
  switch (f.kind) {
    case 'relu':
    case 'sigmoid':
    case 'tanh':
    case 'selu':
    case 'softplus':
    case 'softsign':
      return tf.layers.activation({ activation: f.kind, name });
    case 'silu':
      return tf.layers.activation({ activation: 'swish', name });
    case 'softmax':
      return tf.layers.softmax({ axis: -1, name });
    case 'clip':
      if (f.min === 0 && f.max === 6) return tf.layers.activation({ activation: 'relu6', name });
      if (f.min === 0) return tf.layers.reLU({ maxValue: f.max, name });
      throw refuse(n, `clip(${f.min}, ${f.max})`);
    case 'leakyRelu':
      return tf.layers.leakyReLU({ alpha: f.alpha, name });
    case 'elu':
      return tf.layers.elu({ alpha: f.alpha, name });
    case 'hardSigmoid':
      // tfjs' hardSigmoid is clip(0.2 x + 0.5, 0, 1) (Keras').
      if (Math.fround(f.alpha) === Math.fround(0.2) && f.beta === 0.5) return tf.layers.activation({ activation: 'hardSigmoid', name });
      throw refuse(n, `hardSigmoid(alpha ${f.alpha}, beta ${f.beta})`);
    case 'hardSwish':
      throw refuse(n, 'hardSwish');
  }
}

interface BuildOptions {
  /** Keras BN momentum of the BN layers, one or by node name (training only); default 0.99. */
  readonly bnMomentum?: number | Readonly<Record<string, number>>;
}

type TfjsBuilder<O extends Node['op']> = (n: NodeOf<O>, xs: readonly Sym[], o: BuildOptions) => Built;

const TFJS = {
  Input: () => {
    throw new Error('Input is built by graphToTfjs');
  },
  Conv: (n, [x]) => {
    const c = channels(x);
    const perOut = (c / n.groups) * n.kernel[0] * n.kernel[1];
    const out = n.weight.length / perOut;
    if (n.dilations.some((d) => d > 1) && n.strides.some((s) => s > 1)) throw refuse(n, 'dilation with stride');
    const common = {
      kernelSize: [...n.kernel] as [number, number],
      strides: [...n.strides] as [number, number],
      dilationRate: [...n.dilations] as [number, number],
      padding: 'valid' as const,
      useBias: n.bias !== null,
      name: n.name,
    };
    const input = zeroPad(x, n.pads, `${n.name}_pad`);
    const [kh, kw] = n.kernel;
    const bias = n.bias ? [tf.tensor1d(n.bias)] : [];
    if (n.groups === 1) {
      const layer = tf.layers.conv2d({ ...common, filters: out });
      // OIHW -> HWIO.
      const kernel = tf.tidy(() => tf.tensor4d(n.weight, [out, c, kh, kw]).transpose([2, 3, 1, 0]));
      return { y: layer.apply(input) as Sym, weights: [{ layer, values: [kernel, ...bias] }] };
    }
    if (n.groups === c && out % c === 0) {
      const m = out / c;
      const layer = tf.layers.depthwiseConv2d({ ...common, depthMultiplier: m });
      // [c * m, 1, kh, kw] -> [kh, kw, c, m] (output channel c * m + j reads input channel c).
      const kernel = tf.tidy(() => tf.tensor4d(n.weight, [c, m, kh, kw]).transpose([2, 3, 0, 1]));
      return { y: layer.apply(input) as Sym, weights: [{ layer, values: [kernel, ...bias] }] };
    }
    throw refuse(n, `grouped convolution (groups ${n.groups} of ${c} channels)`);
  },
  BatchNormalization: (n, [x], o) => {
    const m = o.bnMomentum;
    const momentum = (typeof m === 'number' ? m : m?.[n.name]) ?? 0.99;
    const scale = n.affine?.scale ?? true;
    const center = n.affine?.bias ?? true;
    const layer = tf.layers.batchNormalization({ axis: -1, epsilon: n.epsilon, momentum, scale, center, name: n.name });
    const values = [...(scale ? [n.scale] : []), ...(center ? [n.bias] : []), n.mean, n.variance];
    return { y: layer.apply(x) as Sym, weights: [{ layer, values: values.map((a) => tf.tensor1d(a)) }] };
  },
  Activation: (n, [x]) => ({ y: activationLayer(n).apply(x) as Sym }),
  Add: (n, xs) => ({ y: tf.layers.add({ name: n.name }).apply([...xs]) as Sym }),
  Mul: (n, xs) => ({ y: tf.layers.multiply({ name: n.name }).apply([...xs]) as Sym }),
  Concat: (n, xs) => ({ y: tf.layers.concatenate({ axis: -1, name: n.name }).apply([...xs]) as Sym }),
  Pool: (n, [x]) => {
    const hw = spatial(x);
    const [t, l, b, r] = n.pads;
    const sizes = (ceil: boolean) => [poolOut(hw[0], n.kernel[0], n.strides[0], t, b, ceil), poolOut(hw[1], n.kernel[1], n.strides[1], l, r, ceil)];
    const [oh, ow] = sizes(n.ceilMode);
    const floor = sizes(false);
    if (oh !== floor[0] || ow !== floor[1]) throw refuse(n, 'ceil-mode pooling that adds a window');
    const args = { poolSize: [...n.kernel] as [number, number], strides: [...n.strides] as [number, number], name: n.name };
    const pool = n.mode === 'max' ? tf.layers.maxPooling2d : tf.layers.averagePooling2d;
    const none = t + l + b + r === 0;
    // TensorFlow's 'same' ignores its padding: exact for max, and for an average over real pixels.
    const same = samePadsEqual(n.pads, samePads(hw, n.kernel, n.strides)) && oh === Math.ceil(hw[0] / n.strides[0]) && ow === Math.ceil(hw[1] / n.strides[1]);
    if (none) return { y: pool({ ...args, padding: 'valid' }).apply(x) as Sym };
    if (n.mode === 'avg' && n.countIncludePad) return { y: pool({ ...args, padding: 'valid' }).apply(zeroPad(x, n.pads, `${n.name}_pad`)) as Sym };
    if (same) return { y: pool({ ...args, padding: 'same' }).apply(x) as Sym };
    throw refuse(n, `${n.mode} pooling with pads ${quote(n.pads)}${n.mode === 'avg' ? ' not counted' : ''} (other than TensorFlow's 'same')`);
  },
  GlobalPool: (n, [x]) => {
    const pooled = (n.mode === 'avg' ? tf.layers.globalAveragePooling2d : tf.layers.globalMaxPooling2d)({
      name: n.keepDims ? `${n.name}_flat` : n.name,
    }).apply(x) as Sym;
    if (!n.keepDims) return { y: pooled };
    return { y: tf.layers.reshape({ targetShape: [1, 1, channels(x)], name: n.name }).apply(pooled) as Sym };
  },
  Pad: (n, [x]) => {
    if (n.value !== 0) throw refuse(n, `padding with ${n.value}`);
    const [t, l, b, r] = n.pads;
    return {
      y: tf.layers
        .zeroPadding2d({
          padding: [
            [t, b],
            [l, r],
          ],
          name: n.name,
        })
        .apply(x) as Sym,
    };
  },
  Flatten: (n, [x]) => {
    if (x.shape.length === 2) return { y: x };
    // Keras' Flatten reads NHWC channels-last (hwc); chw needs the channels first.
    const src = n.order === 'chw' ? (tf.layers.permute({ dims: [3, 1, 2], name: `${n.name}_chw` }).apply(x) as Sym) : x;
    return { y: tf.layers.flatten({ name: n.name }).apply(src) as Sym };
  },
  Dense: (n, [x]) => {
    if (x.shape.length !== 2) throw refuse(n, `Dense on a rank-${x.shape.length} input`);
    const inputs = n.weight.length / n.units;
    const layer = tf.layers.dense({ units: n.units, useBias: n.bias !== null, name: n.name });
    const kernel = tf.tidy(() => tf.tensor2d(n.weight, [n.units, inputs]).transpose());
    return { y: layer.apply(x) as Sym, weights: [{ layer, values: [kernel, ...(n.bias ? [tf.tensor1d(n.bias)] : [])] }] };
  },
  Identity: (_n, [x]) => ({ y: x }),
} as const satisfies { readonly [O in Node['op']]: TfjsBuilder<O> };

/**
 * Layer names tfjs accepts for a graph's nodes (a letter or digit first, then letters, digits and
 * `-._/`): ONNX names such as `/layer1/layer1.0/conv1/Conv` lose their leading `/`; clashes get a
 * suffix. Deterministic in the graph, so the model built and the weights read back agree.
 */
export function tfjsLayerNames(graph: ModelGraph): Map<string, string> {
  const names = new Map<string, string>();
  const used = new Set<string>();
  for (const n of graph.nodes) {
    const base = n.name.replace(/[^-A-Za-z0-9._/]/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'node';
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    names.set(n.name, name);
  }
  return names;
}

function withTfjsNames(graph: ModelGraph): ModelGraph {
  const names = tfjsLayerNames(graph);
  const rename = (x: string): string => names.get(x) ?? x;
  const nodes = graph.nodes.map((n) => ({ ...n, name: rename(n.name), inputs: n.inputs.map(rename) }));
  return { ...graph, nodes, input: rename(graph.input), output: rename(graph.output) };
}

/**
 * The graph as a tfjs LayersModel taking NHWC images and giving the graph's output; layers are
 * named after nodes (tfjsLayerNames). BN momentum options are keyed by the graph's own node names.
 */
export function graphToTfjs(original: ModelGraph, options: BuildOptions = {}): tf.LayersModel {
  const names = tfjsLayerNames(original);
  const graph = withTfjsNames(original);
  const m = options.bnMomentum;
  if (m !== undefined && typeof m !== 'number')
    options = { ...options, bnMomentum: Object.fromEntries(Object.entries(m).map(([k, v]) => [names.get(k) ?? k, v])) };
  const values = new Map<string, Sym>();
  const pending: { layer: tf.layers.Layer; values: readonly tf.Tensor[] }[] = [];
  let input: Sym | undefined;
  try {
    for (const node of graph.nodes) {
      if (node.op === 'Input') {
        const [c, h, w] = node.shape;
        input = tf.input({ shape: [h, w, c], name: node.name });
        values.set(node.name, input);
        continue;
      }
      const xs = node.inputs.map((i) => {
        const v = values.get(i);
        if (!v) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Node ${quote(node.name)} reads ${quote(i)}, which no earlier node produces`);
        return v;
      });
      const built = (TFJS[node.op] as TfjsBuilder<typeof node.op>)(node as never, xs, options);
      values.set(node.name, built.y);
      pending.push(...(built.weights ?? []));
    }
    const output = values.get(graph.output);
    if (!input || !output)
      throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Graph needs an Input node and an output node named ${quote(graph.output)}`);
    const model = tf.model({ inputs: input, outputs: output, name: 'graph' });
    for (const p of pending) p.layer.setWeights([...p.values]);
    return model;
  } finally {
    for (const p of pending) for (const t of p.values) t.dispose();
  }
}

/**
 * The graph with the weights of `model`, a model `graphToTfjs(graph)` built (possibly trained since):
 * each weighted node reads the layer of its name, transposed back to the graph's layouts.
 */
export function graphWithTfjsWeights(graph: ModelGraph, model: tf.LayersModel): ModelGraph {
  const names = tfjsLayerNames(graph);
  const read = (n: Node): tf.Tensor[] => {
    try {
      return model.getLayer(names.get(n.name) ?? n.name).getWeights();
    } catch {
      throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `The tfjs model has no layer ${quote(n.name)} for the graph's ${n.op} node`);
    }
  };
  const data = (t: tf.Tensor) => t.dataSync() as Float32Array;
  const flat = (t: tf.Tensor, perm: number[]) => tf.tidy(() => Float32Array.from(t.transpose(perm).dataSync()));
  return {
    ...graph,
    nodes: graph.nodes.map((n): Node => {
      switch (n.op) {
        case 'Conv': {
          const [k, b] = read(n);
          // HWIO -> OIHW; depthwise [kh, kw, c, m] -> [c * m, 1, kh, kw].
          const weight = flat(k, n.groups === 1 ? [3, 2, 0, 1] : [2, 3, 0, 1]);
          return { ...n, weight, bias: n.bias ? Float32Array.from(data(b)) : null };
        }
        case 'BatchNormalization': {
          const w = read(n).map((t) => Float32Array.from(data(t)));
          const scale = (n.affine?.scale ?? true) ? w.shift()! : n.scale;
          const bias = (n.affine?.bias ?? true) ? w.shift()! : n.bias;
          const [mean, variance] = w;
          return { ...n, scale, bias, mean, variance };
        }
        case 'Dense': {
          const [k, b] = read(n);
          return { ...n, weight: flat(k, [1, 0]), bias: n.bias ? Float32Array.from(data(b)) : null };
        }
        default:
          return n;
      }
    }),
  };
}

/**
 * Copies a graph's weights into the tfjs model it was imported from (graphFromLayersModel: Conv,
 * Dense and BN nodes named after their layers, a SeparableConv2D's depthwise half `<layer>/depthwise`),
 * transposed back to tfjs layouts: the trained graph's weights reach a model the tfjs-side code
 * (scoring, saving, NetAdapt's chain) keeps using. Shapes must match (the same pruned model).
 */
export function writeGraphIntoLayersModel(model: tf.LayersModel, graph: ModelGraph): void {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const nodeOf = (layer: string, op: Node['op']) => {
    const n = byName.get(layer);
    if (!n || n.op !== op)
      throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `The graph has no ${op} node ${quote(layer)} for the tfjs layer of that name`);
    return n as never;
  };
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    for (const v of layer.weights) {
      const kind = v.originalName.slice(v.originalName.lastIndexOf('/') + 1).replace(/_\d+$/, '');
      const shape = v.shape as number[];
      const values = tf.tidy((): tf.Tensor => {
        switch (kind) {
          case 'kernel': {
            if (cls === 'Dense') {
              const n: NodeOf<'Dense'> = nodeOf(layer.name, 'Dense');
              return tf.tensor2d(n.weight, [shape[1], shape[0]]).transpose();
            }
            const n: NodeOf<'Conv'> = nodeOf(layer.name, 'Conv');
            return tf.tensor4d(n.weight, [shape[3], shape[2], shape[0], shape[1]]).transpose([2, 3, 1, 0]);
          }
          case 'pointwise_kernel': {
            const n: NodeOf<'Conv'> = nodeOf(layer.name, 'Conv');
            return tf.tensor4d(n.weight, [shape[3], shape[2], shape[0], shape[1]]).transpose([2, 3, 1, 0]);
          }
          case 'depthwise_kernel': {
            const n: NodeOf<'Conv'> = nodeOf(cls === 'SeparableConv2D' ? `${layer.name}/depthwise` : layer.name, 'Conv');
            // [c * m, 1, kh, kw] -> [kh, kw, c, m]
            return tf.tensor4d(n.weight, [shape[2], shape[3], shape[0], shape[1]]).transpose([2, 3, 0, 1]);
          }
          case 'bias': {
            const n: { bias: Float32Array | null } = nodeOf(layer.name, cls === 'Dense' ? 'Dense' : 'Conv');
            if (!n.bias) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Graph node ${quote(layer.name)} has no bias for the tfjs layer's`);
            return tf.tensor1d(n.bias);
          }
          case 'gamma':
          case 'beta':
          case 'moving_mean':
          case 'moving_variance': {
            const n: NodeOf<'BatchNormalization'> = nodeOf(layer.name, 'BatchNormalization');
            return tf.tensor1d({ gamma: n.scale, beta: n.bias, moving_mean: n.mean, moving_variance: n.variance }[kind]);
          }
          default:
            throw new AutopruneError(
              ErrorCodes.MODEL_UNSUPPORTED_LAYER,
              `Weight ${quote(v.originalName)} of layer ${quote(layer.name)} has no graph counterpart`,
            );
        }
      });
      try {
        if (values.shape.join() !== shape.join()) {
          throw new AutopruneError(
            ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY,
            `Weight ${quote(v.originalName)} has shape ${quote(shape)} in the tfjs model and ${quote(values.shape)} in the graph`,
          );
        }
        v.write(values);
      } finally {
        values.dispose();
      }
    }
  }
}
