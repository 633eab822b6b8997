/**
 * tfjs LayersModel -> graph. Every class the tfjs analysis supports (../analysis.ts
 * SUPPORTED_LAYERS) maps to nodes: an in-layer activation becomes an Activation node after the
 * layer's node (`<layer>/<activation>`), SeparableConv2D a depthwise Conv (`<layer>/depthwise`)
 * plus the pointwise Conv that keeps the layer's name, Keras `same` padding explicit pads (TF's rule:
 * the odd pixel at the bottom/right), Dropout an Identity, Flatten of NHWC the order `hwc`. Weights
 * are transposed to the graph's layouts (HWIO -> OIHW, [in, out] -> [out, in]).
 */
import type * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import { fileLoader } from '../io.js';
import { hwioToOihw, ONNX_INPUT, ONNX_OUTPUT, samePads } from '../onnx.js';
import { type GraphNode, type JsonDict, modelTopology, pair, parseTopology, type SerializedModel } from '../topology.js';
import type { Activation, ModelGraph, Node, Pads4 } from './graph.js';
import { ruleOf, type Shape } from './rules/index.js';

type Weights = readonly { readonly data: Float32Array; readonly shape: readonly number[] }[];

interface Ctx {
  readonly node: GraphNode;
  readonly cfg: JsonDict;
  /** Graph node names the layer reads. */
  readonly ins: readonly string[];
  readonly inShapes: readonly Shape[];
  readonly weights: Weights;
  /** Appends a node; returns its name. */
  emit(node: Node): string;
}

/** Keras activation names (`activation` of a layer or an Activation layer); `linear` is none. */
const KERAS_ACTIVATIONS: Record<string, Activation | null> = {
  linear: null,
  relu: { kind: 'relu' },
  relu6: { kind: 'clip', min: 0, max: 6 },
  sigmoid: { kind: 'sigmoid' },
  tanh: { kind: 'tanh' },
  elu: { kind: 'elu', alpha: 1 },
  selu: { kind: 'selu' },
  softplus: { kind: 'softplus' },
  softsign: { kind: 'softsign' },
  // tfjs: clip(0.2 x + 0.5, 0, 1)
  hardSigmoid: { kind: 'hardSigmoid', alpha: 0.2, beta: 0.5 },
  hard_sigmoid: { kind: 'hardSigmoid', alpha: 0.2, beta: 0.5 },
  swish: { kind: 'silu' },
  softmax: { kind: 'softmax' },
};

function unsupported(node: GraphNode, what: string): AutopruneError {
  return new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_LAYER, `Layer \`${node.name}\` of class \`${node.className}\` has ${what}`);
}

function kerasActivation(node: GraphNode, name: unknown): Activation | null {
  const key = name === undefined || name === null ? 'linear' : String(name);
  const fn = KERAS_ACTIVATIONS[key];
  if (fn === undefined) throw unsupported(node, `activation ${quote(key)}; expected one of ${Object.keys(KERAS_ACTIVATIONS).join(', ')}`);
  return fn;
}

/** The layer's node, then its in-layer activation (if any) named `<layer>/<activation>`. */
function withActivation(ctx: Ctx, name: string): string {
  const fn = kerasActivation(ctx.node, ctx.cfg.activation);
  return fn ? ctx.emit({ op: 'Activation', name: `${ctx.node.name}/${fn.kind}`, inputs: [name], fn }) : name;
}

function requireChannelsLast(node: GraphNode): void {
  const f = node.config.data_format;
  if (f !== undefined && f !== null && f !== 'channels_last') throw unsupported(node, `data_format ${quote(f)}; expected channels_last`);
}

/** Explicit pads of Keras padding `valid`/`same` for a window on a [C, H, W] input. */
function kerasPads(
  node: GraphNode,
  inShape: Shape,
  kernel: readonly [number, number],
  strides: readonly [number, number],
  dilations: readonly [number, number] = [1, 1],
): Pads4 {
  const padding = String(node.config.padding ?? 'valid');
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding !== 'same') throw unsupported(node, `padding ${quote(padding)}; expected \`same\` or \`valid\``);
  const [t, b] = samePads(inShape[1], dilations[0] * (kernel[0] - 1) + 1, strides[0]);
  const [l, r] = samePads(inShape[2], dilations[1] * (kernel[1] - 1) + 1, strides[1]);
  return [t, l, b, r];
}

function convNode(
  ctx: Ctx,
  name: string,
  input: string,
  inShape: Shape,
  o: { weight: Float32Array; bias: Float32Array | null; kernel: [number, number]; groups: number; pointwise?: boolean },
): string {
  const strides = o.pointwise ? ([1, 1] as const) : pair(ctx.cfg.strides, 1);
  const dilations = o.pointwise ? ([1, 1] as const) : pair(ctx.cfg.dilation_rate, 1);
  const pads = o.pointwise ? ([0, 0, 0, 0] as const) : kerasPads(ctx.node, inShape, o.kernel, strides, dilations);
  return ctx.emit({ op: 'Conv', name, inputs: [input], kernel: o.kernel, strides, pads, dilations, groups: o.groups, weight: o.weight, bias: o.bias });
}

const bias = (ctx: Ctx, i: number): Float32Array | null => (ctx.cfg.use_bias === false ? null : ctx.weights[i].data);

/** One importer per layer class; returns the graph node holding the layer's output. */
const IMPORTERS: Record<string, (ctx: Ctx) => string> = {
  Conv2D(ctx) {
    requireChannelsLast(ctx.node);
    const k = ctx.weights[0];
    const [kh, kw, ci, co] = k.shape;
    if (Number(ctx.cfg.groups ?? 1) !== 1) throw unsupported(ctx.node, `groups ${quote(ctx.cfg.groups)}; expected 1`);
    const name = convNode(ctx, ctx.node.name, ctx.ins[0], ctx.inShapes[0], {
      weight: hwioToOihw(k.data, [kh, kw, ci, co]),
      bias: bias(ctx, 1),
      kernel: [kh, kw],
      groups: 1,
    });
    return withActivation(ctx, name);
  },
  DepthwiseConv2D(ctx) {
    requireChannelsLast(ctx.node);
    const [kh, kw, ci, m] = ctx.weights[0].shape;
    // Output channel c·m + j reads input c, as in tfjs: a grouped conv with one group per input channel.
    const weight = hwioToOihw(ctx.weights[0].data, [kh, kw, 1, ci * m]);
    const name = convNode(ctx, ctx.node.name, ctx.ins[0], ctx.inShapes[0], { weight, bias: bias(ctx, 1), kernel: [kh, kw], groups: ci });
    return withActivation(ctx, name);
  },
  SeparableConv2D(ctx) {
    requireChannelsLast(ctx.node);
    const [kh, kw, ci, m] = ctx.weights[0].shape;
    const [, , mid, co] = ctx.weights[1].shape;
    const depthwise = convNode(ctx, `${ctx.node.name}/depthwise`, ctx.ins[0], ctx.inShapes[0], {
      weight: hwioToOihw(ctx.weights[0].data, [kh, kw, 1, ci * m]),
      bias: null,
      kernel: [kh, kw],
      groups: ci,
    });
    const pointwise = convNode(ctx, ctx.node.name, depthwise, [], {
      weight: hwioToOihw(ctx.weights[1].data, [1, 1, mid, co]),
      bias: bias(ctx, 2),
      kernel: [1, 1],
      groups: 1,
      pointwise: true,
    });
    return withActivation(ctx, pointwise);
  },
  Dense(ctx) {
    if (ctx.inShapes[0].length !== 1)
      throw unsupported(ctx.node, `an input of shape [${ctx.inShapes[0].join(', ')}]; expected features (Flatten or global pooling before Dense)`);
    const k = ctx.weights[0];
    const [fin, units] = k.shape;
    const weight = new Float32Array(k.data.length);
    for (let i = 0; i < fin; i++) for (let o = 0; o < units; o++) weight[o * fin + i] = k.data[i * units + o];
    return withActivation(ctx, ctx.emit({ op: 'Dense', name: ctx.node.name, inputs: ctx.ins, weight, bias: bias(ctx, 1), units }));
  },
  BatchNormalization(ctx) {
    const axis = Number(ctx.cfg.axis ?? -1);
    const rank = ctx.inShapes[0].length + 1;
    if (axis !== -1 && axis !== rank - 1) throw unsupported(ctx.node, `axis ${axis}; expected the channel axis (-1)`);
    const c = ctx.inShapes[0][0];
    const scaled = ctx.cfg.scale !== false;
    const centered = ctx.cfg.center !== false;
    let i = 0;
    const scale = scaled ? ctx.weights[i++].data : new Float32Array(c).fill(1);
    const shift = centered ? ctx.weights[i++].data : new Float32Array(c);
    return ctx.emit({
      op: 'BatchNormalization',
      name: ctx.node.name,
      inputs: ctx.ins,
      epsilon: Number(ctx.cfg.epsilon ?? 1e-3),
      scale,
      bias: shift,
      mean: ctx.weights[i++].data,
      variance: ctx.weights[i++].data,
      ...(scaled && centered ? {} : { affine: { scale: scaled, bias: centered } }),
    });
  },
  Add: (ctx) => ctx.emit({ op: 'Add', name: ctx.node.name, inputs: ctx.ins }),
  Concatenate(ctx) {
    const axis = Number(ctx.cfg.axis ?? -1);
    if (axis !== -1 && axis !== 3) throw unsupported(ctx.node, `axis ${axis}; expected the channel axis (-1)`);
    return ctx.emit({ op: 'Concat', name: ctx.node.name, inputs: ctx.ins });
  },
  Flatten: (ctx) => ctx.emit({ op: 'Flatten', name: ctx.node.name, inputs: ctx.ins, order: 'hwc' }),
  GlobalAveragePooling2D: (ctx) => globalPool(ctx, 'avg'),
  GlobalMaxPooling2D: (ctx) => globalPool(ctx, 'max'),
  MaxPooling2D: (ctx) => pool(ctx, 'max'),
  AveragePooling2D: (ctx) => pool(ctx, 'avg'),
  Activation(ctx) {
    const fn = kerasActivation(ctx.node, ctx.cfg.activation);
    return fn ? ctx.emit({ op: 'Activation', name: ctx.node.name, inputs: ctx.ins, fn }) : ctx.emit({ op: 'Identity', name: ctx.node.name, inputs: ctx.ins });
  },
  ReLU(ctx) {
    if (Number(ctx.cfg.negative_slope ?? 0) !== 0 || Number(ctx.cfg.threshold ?? 0) !== 0)
      throw unsupported(ctx.node, 'a negative slope or threshold; expected a plain ReLU');
    const max = ctx.cfg.max_value;
    const fn: Activation = max === undefined || max === null ? { kind: 'relu' } : { kind: 'clip', min: 0, max: Number(max) };
    return ctx.emit({ op: 'Activation', name: ctx.node.name, inputs: ctx.ins, fn });
  },
  LeakyReLU: (ctx) => ctx.emit({ op: 'Activation', name: ctx.node.name, inputs: ctx.ins, fn: { kind: 'leakyRelu', alpha: Number(ctx.cfg.alpha ?? 0.3) } }),
  ELU: (ctx) => ctx.emit({ op: 'Activation', name: ctx.node.name, inputs: ctx.ins, fn: { kind: 'elu', alpha: Number(ctx.cfg.alpha ?? 1) } }),
  Softmax(ctx) {
    const axis = Number(ctx.cfg.axis ?? -1);
    if (axis !== -1 && axis !== ctx.inShapes[0].length) throw unsupported(ctx.node, `softmax axis ${axis}; expected the channel axis (-1)`);
    return ctx.emit({ op: 'Activation', name: ctx.node.name, inputs: ctx.ins, fn: { kind: 'softmax' } });
  },
  Dropout: (ctx) => ctx.emit({ op: 'Identity', name: ctx.node.name, inputs: ctx.ins }),
  SpatialDropout2D: (ctx) => ctx.emit({ op: 'Identity', name: ctx.node.name, inputs: ctx.ins }),
  ZeroPadding2D(ctx) {
    // tfjs serializes every form of `padding` as [[top, bottom], [left, right]].
    const p = ctx.cfg.padding;
    if (!Array.isArray(p) || !Array.isArray(p[0]) || !Array.isArray(p[1]))
      throw unsupported(ctx.node, `padding ${quote(p)}; expected [[top, bottom], [left, right]]`);
    const [[t, b], [l, r]] = p as [number, number][];
    return ctx.emit({ op: 'Pad', name: ctx.node.name, inputs: ctx.ins, pads: [t, l, b, r], value: 0 });
  },
};

function globalPool(ctx: Ctx, mode: 'avg' | 'max'): string {
  return ctx.emit({ op: 'GlobalPool', name: ctx.node.name, inputs: ctx.ins, mode, keepDims: ctx.cfg.keepdims === true });
}

function pool(ctx: Ctx, mode: 'avg' | 'max'): string {
  requireChannelsLast(ctx.node);
  const kernel = pair(ctx.cfg.pool_size, 2);
  const strides = pair(ctx.cfg.strides ?? ctx.cfg.pool_size, 2);
  // tfjs (like TF) averages over the real pixels only at a `same` border.
  const pads = kerasPads(ctx.node, ctx.inShapes[0], kernel, strides);
  return ctx.emit({ op: 'Pool', name: ctx.node.name, inputs: ctx.ins, mode, kernel, strides, pads, ceilMode: false, countIncludePad: false });
}

/** Classes this importer reads (the tfjs analysis' supported classes). */
export const TFJS_CLASSES = ['InputLayer', ...Object.keys(IMPORTERS)];

/** The model as a graph (NHWC input; ONNX names `input`/`output` as the tfjs exporter wrote them). Reads the weights once. */
export function graphFromLayersModel(model: tf.LayersModel): ModelGraph {
  const topology = parseTopology(modelTopology(model));
  const weightsOf = (name: string): Weights =>
    model
      .getLayer(name)
      .getWeights()
      .map((t) => ({ data: new Float32Array(t.dataSync() as Float32Array), shape: t.shape }));
  return graphFromTopology(topology, weightsOf);
}

/**
 * A parsed tfjs topology plus a weight reader (per layer, tfjs' weight order) as a graph: the JSON
 * form of a model can be imported without building it.
 */
export function graphFromTopology(topology: ReturnType<typeof parseTopology>, weightsOf: (layer: string) => Weights): ModelGraph {
  if (topology.inputNames.length !== 1 || topology.outputNames.length !== 1) {
    throw new AutopruneError(
      ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY,
      `Expected a model with one input and one output, got inputs ${quote(topology.inputNames)} and outputs ${quote(topology.outputNames)}`,
    );
  }
  const nodes: Node[] = [];
  const shapes = new Map<string, Shape>();
  /** Graph node that holds each layer's output. */
  const alias = new Map<string, string>();
  const emit = (n: Node): string => {
    shapes.set(
      n.name,
      ruleOf(n).shape(
        n,
        n.inputs.map((i) => shapes.get(i)!),
      ),
    );
    nodes.push(n);
    return n.name;
  };
  let input = '';
  for (const node of topology.nodes) {
    if (node.className === 'InputLayer') {
      const s = node.config.batch_input_shape;
      if (!Array.isArray(s) || s.length !== 4 || s.slice(1).some((d) => !(Number(d) > 0))) {
        throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Expected an image input [H, W, C], got ${quote(Array.isArray(s) ? s.slice(1) : s)}`);
      }
      const [h, w, c] = s.slice(1).map(Number);
      input = emit({ op: 'Input', name: node.name, inputs: [], shape: [c, h, w] });
      alias.set(node.name, input);
      continue;
    }
    const importer = IMPORTERS[node.className];
    if (!importer) {
      throw new AutopruneError(
        ErrorCodes.MODEL_UNSUPPORTED_LAYER,
        `Layer \`${node.name}\` of class \`${node.className}\` is not supported for channel pruning; supported classes: ${TFJS_CLASSES.join(', ')}`,
      );
    }
    const ins = node.inputs.map((n) => {
      const a = alias.get(n);
      if (!a) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Layer \`${node.name}\` reads \`${n}\`, which is not defined before it`);
      return a;
    });
    alias.set(node.name, importer({ node, cfg: node.config, ins, inShapes: ins.map((n) => shapes.get(n)!), weights: weightsOf(node.name), emit }));
  }
  const output = alias.get(topology.outputNames[0])!;
  if (shapes.get(output)!.length !== 1) {
    throw new AutopruneError(
      ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY,
      `Expected a [batch, classes] output, got shape ${quote(['batch', ...shapes.get(output)!])}`,
    );
  }
  return { nodes, input, output, inputLayout: 'NHWC', source: { format: 'tfjs', inputName: ONNX_INPUT, outputName: ONNX_OUTPUT } };
}

/** Order of a layer's weights as tfjs-layers keeps them (kernels, bias, then BN's four), by local name. */
const WEIGHT_ORDER = ['kernel', 'depthwise_kernel', 'pointwise_kernel', 'bias', 'gamma', 'beta', 'moving_mean', 'moving_variance'];

/**
 * A tfjs `model.json` (+ its weight files) as a graph, without building a LayersModel: the topology
 * is read as JSON (a Keras converter's `model_config` wrapper too) and the float32 weights are
 * grouped by layer from their manifest names (`<layer>/<weight>`).
 */
export async function graphFromTfjsFiles(modelJsonPath: string): Promise<ModelGraph> {
  const artifacts = await fileLoader(modelJsonPath).load!();
  const raw = artifacts.modelTopology as { model_config?: unknown } | undefined;
  const topology = (raw?.model_config ?? raw) as SerializedModel;
  const buffer = artifacts.weightData
    ? Array.isArray(artifacts.weightData)
      ? concat(artifacts.weightData)
      : (artifacts.weightData as ArrayBuffer)
    : new ArrayBuffer(0);
  const byLayer = new Map<string, { local: string; data: Float32Array; shape: number[] }[]>();
  let offset = 0;
  for (const spec of artifacts.weightSpecs ?? []) {
    const size = spec.shape.reduce((a, d) => a * d, 1);
    if (spec.dtype !== 'float32' || spec.quantization) {
      throw new AutopruneError(
        ErrorCodes.MODEL_UNSUPPORTED_LAYER,
        `Weight \`${spec.name}\` is ${spec.quantization ? 'quantized' : spec.dtype}; expected float32 weights`,
      );
    }
    const data = new Float32Array(buffer.slice(offset, offset + size * 4));
    offset += size * 4;
    const cut = spec.name.lastIndexOf('/');
    const layer = spec.name.slice(0, cut);
    const local = spec.name.slice(cut + 1).replace(/_\d+$/, '');
    byLayer.set(layer, [...(byLayer.get(layer) ?? []), { local, data, shape: spec.shape }]);
  }
  const rank = (local: string) => {
    const i = WEIGHT_ORDER.indexOf(local);
    return i < 0 ? WEIGHT_ORDER.length : i;
  };
  return graphFromTopology(parseTopology(topology), (layer) => [...(byLayer.get(layer) ?? [])].sort((a, b) => rank(a.local) - rank(b.local)));
}

function concat(parts: ArrayBuffer[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), at);
    at += p.byteLength;
  }
  return out.buffer;
}
