/**
 * ONNX export of a (pruned) tfjs LayersModel: one exporter for the proxy evaluator, `autoprune
 * export --format onnx` and the tests. The graph is first built as plain data (`OnnxGraph`, below),
 * so the BN passes in onnx-bn.ts can rewrite it; onnx-proto.ts encodes it with the ONNX schema.
 *
 * Layout: the graph input is NHWC like the tfjs model's (`[batch, H, W, C]`); a Transpose right after
 * it makes the body NCHW, which is what ONNX Conv and pooling want. Before a Flatten the tensor is
 * transposed back to NHWC, so the flattened feature order (and with it every Dense weight) is
 * exactly tfjs's. 2-D tensors (after Flatten or global pooling) are the same in both.
 */
import type * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { analyzeModel, type LayerInfo } from './analysis.js';
import { type GraphNode, pair } from './topology.js';

export type OnnxAttr = { readonly i: number } | { readonly f: number } | { readonly ints: readonly number[] } | { readonly s: string };

export interface OnnxNode {
  readonly op: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs?: Readonly<Record<string, OnnxAttr>>;
}

export interface OnnxInitializer {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array | BigInt64Array;
}

export interface OnnxValue {
  readonly name: string;
  /** A string is a symbolic dimension (the batch). */
  readonly shape: readonly (number | string)[];
}

/** An ONNX graph as plain data (float32 everywhere except int64 shape/pad constants). */
export interface OnnxGraph {
  readonly name: string;
  readonly nodes: readonly OnnxNode[];
  readonly initializers: readonly OnnxInitializer[];
  readonly inputs: readonly OnnxValue[];
  readonly outputs: readonly OnnxValue[];
  /** Opset of the default domain when not `OPSET` (a rewrite that needs a newer operator version). */
  readonly opset?: number;
}

/** ONNX operator set the exporter writes (Clip with min/max inputs, Pad with pads input: >= 11). */
export const OPSET = 13;

type Shape = readonly (number | null)[];

interface Tensor {
  readonly name: string;
  /** 4-D tensors are NCHW in the graph; rank 2 is [N, features]. */
  readonly rank: number;
}

/** Builds an `OnnxGraph`'s nodes and initializers with unique value and node names. */
export class OnnxBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxInitializer[] = [];
  private readonly used = new Set<string>();
  private readonly nodeNames = new Set<string>();

  /** A fresh value (tensor) name. */
  unique(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
  /** Node names: the layer's name for its first node (BN statistics are keyed by it), then `name/Op`. */
  private nodeName(base: string, op: string): string {
    let name = this.nodeNames.has(base) ? `${base}/${op}` : base;
    for (let i = 1; this.nodeNames.has(name); i++) name = `${base}/${op}_${i}`;
    this.nodeNames.add(name);
    return name;
  }
  node(op: string, name: string, inputs: readonly string[], attrs?: Record<string, OnnxAttr>, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, (_, i) => this.unique(outputs === 1 ? name : `${name}:${i}`));
    this.nodes.push({ op, name: this.nodeName(name, op), inputs, outputs: outs, attrs });
    return outs;
  }
  one(op: string, name: string, inputs: readonly string[], attrs?: Record<string, OnnxAttr>): string {
    return this.node(op, name, inputs, attrs)[0];
  }
  floats(name: string, dims: readonly number[], data: Float32Array): string {
    const n = this.unique(name);
    this.initializers.push({ name: n, dims, data });
    return n;
  }
  int64s(name: string, values: readonly number[]): string {
    const n = this.unique(name);
    this.initializers.push({ name: n, dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });
    return n;
  }
  scalar(name: string, v: number): string {
    const n = this.unique(name);
    this.initializers.push({ name: n, dims: [], data: Float32Array.of(v) });
    return n;
  }
}

/** [kh, kw, in, out] (tfjs) -> [out, in, kh, kw] (ONNX). */
export function hwioToOihw(w: Float32Array, [kh, kw, ci, co]: readonly number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = w[((y * kw + x) * ci + i) * co + o];
  return out;
}

/** Depthwise [kh, kw, in, mult] -> grouped-conv weight [in*mult, 1, kh, kw]; output channel c*mult+m as in tfjs. */
function depthwiseToOihw(w: Float32Array, [kh, kw, ci, m]: readonly number[]): Float32Array {
  return hwioToOihw(w, [kh, kw, 1, ci * m]);
}

/** Explicit begin/end pads of tfjs padding `same` (TF's rule: the odd pixel goes at the end). */
export function samePads(inSize: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + kernel - inSize, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function convPads(node: GraphNode, inShape: Shape, kernel: [number, number], strides: [number, number]): number[] {
  const padding = String(node.config.padding ?? 'valid');
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding !== 'same') throw unsupported(node, `padding ${quote(padding)}; expected \`same\` or \`valid\``);
  const [t, b] = samePads(Number(inShape[1]), kernel[0], strides[0]);
  const [l, r] = samePads(Number(inShape[2]), kernel[1], strides[1]);
  return [t, l, b, r];
}

function unsupported(node: GraphNode, what: string): AutopruneError {
  return new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_LAYER, `Layer \`${node.name}\` of class \`${node.className}\` has ${what} (ONNX export)`);
}

interface LayerContext {
  readonly b: OnnxBuilder;
  readonly node: GraphNode;
  readonly info: LayerInfo;
  readonly ins: readonly Tensor[];
  readonly inShape: Shape;
  readonly weights: readonly { data: Float32Array; shape: number[] }[];
}

/** Keras activation names (`activation` of Activation/Conv/Dense layers) to ONNX. */
function activation(b: OnnxBuilder, node: GraphNode, x: Tensor, name: string): Tensor {
  const out = (op: string, attrs?: Record<string, OnnxAttr>, extra: string[] = []): Tensor => ({
    name: b.one(op, node.name, [x.name, ...extra], attrs),
    rank: x.rank,
  });
  switch (name) {
    case 'linear':
      return x;
    case 'relu':
      return out('Relu');
    case 'relu6':
      return out('Clip', undefined, [b.scalar(`${node.name}.min`, 0), b.scalar(`${node.name}.max`, 6)]);
    case 'sigmoid':
      return out('Sigmoid');
    case 'tanh':
      return out('Tanh');
    case 'elu':
      return out('Elu', { alpha: { f: 1 } });
    case 'selu':
      return out('Selu', { alpha: { f: 1.6732632423543772 }, gamma: { f: 1.0507009873554805 } });
    case 'softplus':
      return out('Softplus');
    case 'softsign':
      return out('Softsign');
    case 'hardSigmoid':
    case 'hard_sigmoid':
      // tfjs: clip(0.2 x + 0.5, 0, 1), ONNX HardSigmoid's defaults.
      return out('HardSigmoid', { alpha: { f: 0.2 }, beta: { f: 0.5 } });
    case 'swish':
      return { name: b.one('Mul', node.name, [x.name, b.one('Sigmoid', node.name, [x.name])]), rank: x.rank };
    case 'softmax':
      return out('Softmax', { axis: { i: x.rank === 4 ? 1 : -1 } });
    default:
      throw unsupported(
        node,
        `activation ${quote(name)}; expected one of linear, relu, relu6, sigmoid, tanh, elu, selu, softplus, softsign, hard_sigmoid, swish, softmax`,
      );
  }
}

function withActivation(ctx: LayerContext, y: Tensor): Tensor {
  const a = ctx.node.config.activation;
  return a === undefined || a === null ? y : activation(ctx.b, ctx.node, y, String(a));
}

function convLike(ctx: LayerContext, weight: string, bias: string | null, group: number, kernel: [number, number]): Tensor {
  const { b, node, ins, inShape } = ctx;
  if (ins[0].rank !== 4) throw unsupported(node, 'a rank-2 input; expected an image tensor');
  const strides = pair(node.config.strides, 1);
  const attrs: Record<string, OnnxAttr> = {
    kernel_shape: { ints: kernel },
    strides: { ints: strides },
    pads: { ints: convPads(node, inShape, kernel, strides) },
    group: { i: group },
  };
  return { name: b.one('Conv', node.name, [ins[0].name, weight, ...(bias ? [bias] : [])], attrs), rank: 4 };
}

function poolAttrs(ctx: LayerContext): Record<string, OnnxAttr> {
  const kernel = pair(ctx.node.config.pool_size, 2);
  const strides = pair(ctx.node.config.strides ?? ctx.node.config.pool_size, 2);
  return { kernel_shape: { ints: kernel }, strides: { ints: strides }, pads: { ints: convPads(ctx.node, ctx.inShape, kernel, strides) } };
}

type LayerExporter = (ctx: LayerContext) => Tensor;

const w = (ctx: LayerContext, i: number) => ctx.weights[i];

/** One export rule per layer class (like prune.ts's slicers), in a table. */
const EXPORTERS: Record<string, LayerExporter> = {
  Conv2D: (ctx) => {
    const k = w(ctx, 0);
    const weight = ctx.b.floats(`${ctx.node.name}.weight`, [k.shape[3], k.shape[2], k.shape[0], k.shape[1]], hwioToOihw(k.data, k.shape));
    const bias = ctx.info.useBias ? ctx.b.floats(`${ctx.node.name}.bias`, [k.shape[3]], w(ctx, 1).data) : null;
    return withActivation(ctx, convLike(ctx, weight, bias, 1, [k.shape[0], k.shape[1]]));
  },
  DepthwiseConv2D: (ctx) => {
    const k = w(ctx, 0);
    const out = k.shape[2] * k.shape[3];
    const weight = ctx.b.floats(`${ctx.node.name}.weight`, [out, 1, k.shape[0], k.shape[1]], depthwiseToOihw(k.data, k.shape));
    const bias = ctx.info.useBias ? ctx.b.floats(`${ctx.node.name}.bias`, [out], w(ctx, 1).data) : null;
    return withActivation(ctx, convLike(ctx, weight, bias, k.shape[2], [k.shape[0], k.shape[1]]));
  },
  SeparableConv2D: (ctx) => {
    const { b, node } = ctx;
    const dw = w(ctx, 0);
    const pw = w(ctx, 1);
    const mid = dw.shape[2] * dw.shape[3];
    const dwWeight = b.floats(`${node.name}.depthwise`, [mid, 1, dw.shape[0], dw.shape[1]], depthwiseToOihw(dw.data, dw.shape));
    const depthwise = convLike(ctx, dwWeight, null, dw.shape[2], [dw.shape[0], dw.shape[1]]);
    const pwWeight = b.floats(`${node.name}.pointwise`, [pw.shape[3], mid, 1, 1], hwioToOihw(pw.data, pw.shape));
    const bias = ctx.info.useBias ? b.floats(`${node.name}.bias`, [pw.shape[3]], w(ctx, 2).data) : null;
    const y = b.one('Conv', node.name, [depthwise.name, pwWeight, ...(bias ? [bias] : [])], { kernel_shape: { ints: [1, 1] } });
    return withActivation(ctx, { name: y, rank: 4 });
  },
  Dense: (ctx) => {
    const { b, node, ins } = ctx;
    if (ins[0].rank !== 2) throw unsupported(node, 'an image-shaped input; expected Dense after Flatten or global pooling');
    const k = w(ctx, 0);
    const weight = b.floats(`${node.name}.weight`, k.shape, k.data);
    const bias = ctx.info.useBias ? b.floats(`${node.name}.bias`, [k.shape[1]], w(ctx, 1).data) : null;
    const y = bias ? b.one('Gemm', node.name, [ins[0].name, weight, bias]) : b.one('MatMul', node.name, [ins[0].name, weight]);
    return withActivation(ctx, { name: y, rank: 2 });
  },
  BatchNormalization: (ctx) => {
    const { b, node, info } = ctx;
    const c = info.output.segs.reduce((n, s) => n + s.size, 0);
    let i = 0;
    const scale = node.config.scale === false ? new Float32Array(c).fill(1) : w(ctx, i++).data;
    const center = node.config.center === false ? new Float32Array(c) : w(ctx, i++).data;
    const inputs = [
      ctx.ins[0].name,
      ...[
        ['scale', scale],
        ['bias', center],
        ['mean', w(ctx, i++).data],
        ['var', w(ctx, i++).data],
      ].map(([n, d]) => b.floats(`${node.name}.${n as string}`, [c], d as Float32Array)),
    ];
    return { name: b.one('BatchNormalization', node.name, inputs, { epsilon: { f: Number(node.config.epsilon ?? 1e-3) } }), rank: ctx.ins[0].rank };
  },
  Activation: (ctx) => activation(ctx.b, ctx.node, ctx.ins[0], String(ctx.node.config.activation ?? 'linear')),
  ReLU: (ctx) => {
    const { b, node } = ctx;
    const max = node.config.max_value;
    if (Number(node.config.negative_slope ?? 0) !== 0 || Number(node.config.threshold ?? 0) !== 0)
      throw unsupported(node, 'a negative slope or threshold; expected a plain ReLU');
    if (max === undefined || max === null) return activation(b, node, ctx.ins[0], 'relu');
    return {
      name: b.one('Clip', node.name, [ctx.ins[0].name, b.scalar(`${node.name}.min`, 0), b.scalar(`${node.name}.max`, Number(max))]),
      rank: ctx.ins[0].rank,
    };
  },
  LeakyReLU: (ctx) => ({
    name: ctx.b.one('LeakyRelu', ctx.node.name, [ctx.ins[0].name], { alpha: { f: Number(ctx.node.config.alpha ?? 0.3) } }),
    rank: ctx.ins[0].rank,
  }),
  ELU: (ctx) => ({ name: ctx.b.one('Elu', ctx.node.name, [ctx.ins[0].name], { alpha: { f: Number(ctx.node.config.alpha ?? 1) } }), rank: ctx.ins[0].rank }),
  Softmax: (ctx) => {
    const axis = Number(ctx.node.config.axis ?? -1);
    const x = ctx.ins[0];
    if (axis !== -1 && axis !== x.rank - 1) throw unsupported(ctx.node, `softmax axis ${axis}; expected the channel axis (-1)`);
    return { name: ctx.b.one('Softmax', ctx.node.name, [x.name], { axis: { i: x.rank === 4 ? 1 : -1 } }), rank: x.rank };
  },
  Dropout: (ctx) => ctx.ins[0],
  SpatialDropout2D: (ctx) => ctx.ins[0],
  MaxPooling2D: (ctx) => ({ name: ctx.b.one('MaxPool', ctx.node.name, [ctx.ins[0].name], poolAttrs(ctx)), rank: 4 }),
  // tfjs (like TF) averages over the real pixels only at a `same` border: count_include_pad = 0.
  AveragePooling2D: (ctx) => ({
    name: ctx.b.one('AveragePool', ctx.node.name, [ctx.ins[0].name], { ...poolAttrs(ctx), count_include_pad: { i: 0 } }),
    rank: 4,
  }),
  GlobalAveragePooling2D: (ctx) => globalPool(ctx, 'GlobalAveragePool'),
  GlobalMaxPooling2D: (ctx) => globalPool(ctx, 'GlobalMaxPool'),
  ZeroPadding2D: (ctx) => {
    // tfjs serializes every form of `padding` as [[top, bottom], [left, right]].
    const p = ctx.node.config.padding;
    if (!Array.isArray(p) || !Array.isArray(p[0]) || !Array.isArray(p[1]))
      throw unsupported(ctx.node, `padding ${quote(p)}; expected [[top, bottom], [left, right]]`);
    const [[t, bt], [l, r]] = p as [number, number][];
    const pads = ctx.b.int64s(`${ctx.node.name}.pads`, [0, 0, t, l, 0, 0, bt, r]);
    return { name: ctx.b.one('Pad', ctx.node.name, [ctx.ins[0].name, pads]), rank: 4 };
  },
  Flatten: (ctx) => {
    const x = ctx.ins[0];
    const nhwc = x.rank === 4 ? ctx.b.one('Transpose', `${ctx.node.name}.nhwc`, [x.name], { perm: { ints: [0, 2, 3, 1] } }) : x.name;
    return { name: ctx.b.one('Flatten', ctx.node.name, [nhwc], { axis: { i: 1 } }), rank: 2 };
  },
  Add: (ctx) => ({
    name: ctx.b.one(
      ctx.ins.length === 2 ? 'Add' : 'Sum',
      ctx.node.name,
      ctx.ins.map((t) => t.name),
    ),
    rank: ctx.ins[0].rank,
  }),
  Concatenate: (ctx) => ({
    name: ctx.b.one(
      'Concat',
      ctx.node.name,
      ctx.ins.map((t) => t.name),
      { axis: { i: 1 } },
    ),
    rank: ctx.ins[0].rank,
  }),
};

function globalPool(ctx: LayerContext, op: string): Tensor {
  if (ctx.node.config.keepdims === true) throw unsupported(ctx.node, 'keepdims true; expected the pooled [N, C] output');
  const pooled = ctx.b.one(op, ctx.node.name, [ctx.ins[0].name]);
  return { name: ctx.b.one('Flatten', `${ctx.node.name}.flat`, [pooled], { axis: { i: 1 } }), rank: 2 };
}

/** Names of the graph's input and output (fixed, so sessions and users can rely on them). */
export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'output';

/** The model as an ONNX graph (NHWC input, see the module comment). Reads the weights once. */
export function exportOnnxGraph(model: tf.LayersModel): OnnxGraph {
  const analysis = analyzeModel(model);
  const { graph } = analysis;
  if (graph.inputNames.length !== 1 || graph.outputNames.length !== 1) {
    throw new AutopruneError(
      ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY,
      `ONNX export expects one input and one output, got inputs ${quote(graph.inputNames)} and outputs ${quote(graph.outputNames)}`,
    );
  }
  const infos = new Map(analysis.layers.map((l) => [l.name, l]));
  const shapes = new Map<string, Shape>(model.layers.map((l) => [l.name, l.outputShape as Shape]));
  const b = new OnnxBuilder();
  const tensors = new Map<string, Tensor>();
  let inputShape: Shape = [];
  for (const node of graph.nodes) {
    if (node.className === 'InputLayer') {
      inputShape = (shapes.get(node.name) ?? (node.config.batch_input_shape as Shape)) as Shape;
      if (inputShape.length !== 4)
        throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `ONNX export expects an image input [H, W, C], got ${quote(inputShape.slice(1))}`);
      b.unique(ONNX_INPUT);
      b.unique(ONNX_OUTPUT);
      tensors.set(node.name, { name: b.one('Transpose', 'input.nchw', [ONNX_INPUT], { perm: { ints: [0, 3, 1, 2] } }), rank: 4 });
      continue;
    }
    const exporter = EXPORTERS[node.className];
    if (!exporter) throw unsupported(node, `no ONNX export rule; supported classes: ${Object.keys(EXPORTERS).join(', ')}`);
    const layer = model.getLayer(node.name);
    const weights = layer.getWeights().map((t) => ({ data: t.dataSync() as Float32Array, shape: t.shape as number[] }));
    const ins = node.inputs.map((n) => tensors.get(n)!);
    const inShape = (shapes.get(node.inputs[0]) ?? inputShape) as Shape;
    tensors.set(node.name, exporter({ b, node, info: infos.get(node.name)!, ins, inShape, weights }));
  }
  const last = tensors.get(graph.outputNames[0])!;
  const outShape = shapes.get(graph.outputNames[0])!;
  if (last.rank !== 2)
    throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `ONNX export expects a [batch, classes] output, got shape ${quote(outShape)}`);
  b.nodes.push({ op: 'Identity', name: 'output/Identity', inputs: [last.name], outputs: [ONNX_OUTPUT] });
  return {
    name: model.name,
    nodes: b.nodes,
    initializers: b.initializers,
    inputs: [{ name: ONNX_INPUT, shape: ['batch', ...inputShape.slice(1).map(Number)] }],
    outputs: [{ name: ONNX_OUTPUT, shape: ['batch', Number(outShape[outShape.length - 1])] }],
  };
}
