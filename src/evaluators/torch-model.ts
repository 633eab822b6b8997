/**
 * A tfjs LayersModel run on libtorch: the model's own topology (src/model/topology.ts) drives the
 * forward pass, layer by layer, through the binding's ops; its weights are copied into libtorch
 * tensors (converted to torch layouts) and copied back with `writeBack`. Activations are NCHW
 * inside (libtorch's native layout); tfjs's NHWC meaning is kept at the edges: channel axes are
 * mapped, Flatten and Dense-on-images permute to channels-last first, and 'same' padding puts the
 * odd pixel at the bottom/right as TensorFlow does. float32 by default; a float64 model (same
 * weights, widened) is the reference the gradient tests measure float32 rounding against.
 */
import * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { TorchAttrs, TorchBinding, TorchFloatDtype, TorchTensor } from '../engine/torch.js';
import { SUPPORTED_LAYERS } from '../model/analysis.js';
import { type GraphNode, type JsonDict, modelTopology, pair, parseTopology } from '../model/topology.js';
import { isDecayed } from './recipe.js';
import { TensorScope } from './torch-graph.js';

export { TensorScope };

/** How a tfjs weight maps to its torch tensor. */
type Layout = 'conv' | 'depthwise' | 'dense' | 'vector';

interface Param {
  readonly name: string;
  readonly variable: tf.LayerVariable;
  readonly layout: Layout;
  readonly tensor: TorchTensor;
  readonly trainable: boolean;
  readonly decayed: boolean;
}

export class TorchModel {
  private constructor(
    readonly torch: TorchBinding,
    readonly dtype: TorchFloatDtype,
    private readonly nodes: readonly GraphNode[],
    private readonly outputName: string,
    private readonly params: readonly Param[],
    private readonly byLayer: ReadonlyMap<string, ReadonlyMap<string, TorchTensor>>,
  ) {}

  static fromLayersModel(torch: TorchBinding, model: tf.LayersModel, options: { dtype?: TorchFloatDtype } = {}): TorchModel {
    const dtype = options.dtype ?? 'float32';
    const graph = parseTopology(modelTopology(model));
    if (graph.inputNames.length !== 1 || graph.outputNames.length !== 1) {
      throw new AutopruneError(
        ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY,
        `Expected one input and one output, got ${quote({ inputs: graph.inputNames, outputs: graph.outputNames })}`,
      );
    }
    for (const n of graph.nodes) {
      if (!Object.hasOwn(SUPPORTED_LAYERS, n.className)) {
        throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_LAYER, `Layer \`${n.name}\` of class \`${n.className}\` has no libtorch forward`);
      }
    }
    const params: Param[] = [];
    const byLayer = new Map<string, Map<string, TorchTensor>>();
    for (const layer of model.layers) {
      const kinds = new Map<string, TorchTensor>();
      for (const v of layer.weights) {
        const kind = weightKind(v.originalName);
        const layout = layoutOf(layer.getClassName(), kind);
        const tensor = toTorch(torch, v.read(), layout, dtype);
        const trainable = layer.trainable && v.trainable;
        if (trainable) tensor.requiresGrad(true);
        kinds.set(kind, tensor);
        params.push({ name: v.originalName, variable: v, layout, tensor, trainable, decayed: isDecayed(v.originalName) });
      }
      byLayer.set(layer.name, kinds);
    }
    return new TorchModel(torch, dtype, graph.nodes, graph.outputNames[0], params, byLayer);
  }

  /** Trainable tensors split by whether the coupled weight decay applies. */
  parameterGroups(): { decayed: TorchTensor[]; other: TorchTensor[] } {
    const trainable = this.params.filter((p) => p.trainable);
    return { decayed: trainable.filter((p) => p.decayed).map((p) => p.tensor), other: trainable.filter((p) => !p.decayed).map((p) => p.tensor) };
  }

  /**
   * Gradients of the trainable weights in tfjs layout, by tfjs weight name (null before a
   * backward); Float64Array for a float64 model.
   */
  gradients(): Map<string, Float32Array | Float64Array | null> {
    return new Map(
      this.params
        .filter((p) => p.trainable)
        .map((p) => {
          const g = p.tensor.grad;
          const values = g ? fromTorch(this.torch, g, p.layout, p.variable.shape as number[]) : null;
          g?.dispose();
          return [p.name, values];
        }),
    );
  }

  /** The torch tensor (torch layout, the model's dtype) of a weight by its tfjs name, e.g. `conv/kernel`. */
  parameter(name: string): TorchTensor {
    const p = this.params.find((q) => q.name === name);
    if (!p)
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `No weight named ${quote(name)}; expected one of: ${this.params.map((q) => q.name).join(', ')}`);
    return p.tensor;
  }

  /** NHWC float images (tfjs layout) -> an NCHW tensor of the model's dtype, owned by `scope`. */
  input(scope: TensorScope, images: Float32Array | Float64Array, shape: readonly number[]): TorchTensor {
    const x = scope.keep(this.torch.fromData(images, shape, this.dtype));
    return shape.length === 4 ? scope.op('permute', [x], { dims: [0, 3, 1, 2] }) : x;
  }

  /**
   * Logits [N, K]; every intermediate tensor is owned by `scope` (and left in `values` by layer
   * name, NCHW). BN updates its moving statistics when training.
   */
  forward(scope: TensorScope, x: TorchTensor, training: boolean, values = new Map<string, TorchTensor>()): TorchTensor {
    for (const node of this.nodes) {
      const ins = node.inputs.map((n) => values.get(n)!);
      values.set(node.name, node.className === 'InputLayer' ? x : this.layer(scope, node, ins, training));
    }
    return values.get(this.outputName)!;
  }

  /** Copies every weight (trained ones and BN moving statistics) back into the tfjs model. */
  writeBack(): void {
    for (const p of this.params) {
      const shape = p.variable.shape as number[];
      const values = fromTorch(this.torch, p.tensor, p.layout, shape);
      const t = tf.tensor(values, shape, 'float32');
      p.variable.write(t);
      t.dispose();
    }
  }

  /** Copies the tfjs model's current weights into the torch tensors (same model). */
  readBack(): void {
    for (const p of this.params) {
      const t = toTorch(this.torch, p.variable.read(), p.layout, this.dtype);
      p.tensor.assign(t);
      t.dispose();
    }
  }

  dispose(): void {
    for (const p of this.params) p.tensor.dispose();
  }

  private w(layer: string, kind: string): TorchTensor | null {
    return this.byLayer.get(layer)?.get(kind) ?? null;
  }

  private layer(s: TensorScope, node: GraphNode, ins: TorchTensor[], training: boolean): TorchTensor {
    const cfg = node.config;
    const x = ins[0];
    const name = node.name;
    switch (node.className as keyof typeof SUPPORTED_LAYERS) {
      case 'InputLayer':
        return x;
      case 'Conv2D': {
        const y = s.op('conv2d', [x, this.w(name, 'kernel'), this.w(name, 'bias')], convAttrs(cfg, x, Number(cfg.groups ?? 1)));
        return activation(s, y, cfg.activation, node);
      }
      case 'DepthwiseConv2D': {
        const y = s.op('conv2d', [x, this.w(name, 'depthwise_kernel'), this.w(name, 'bias')], convAttrs(cfg, x, x.shape[1]));
        return activation(s, y, cfg.activation, node);
      }
      case 'SeparableConv2D': {
        const d = s.op('conv2d', [x, this.w(name, 'depthwise_kernel'), null], convAttrs(cfg, x, x.shape[1]));
        const y = s.op('conv2d', [d, this.w(name, 'pointwise_kernel'), this.w(name, 'bias')], {});
        return activation(s, y, cfg.activation, node);
      }
      case 'Dense': {
        const rank = x.shape.length;
        const inp = rank === 4 ? s.op('permute', [x], { dims: [0, 2, 3, 1] }) : x;
        const y = s.op('linear', [inp, this.w(name, 'kernel'), this.w(name, 'bias')]);
        const out = rank === 4 ? s.op('permute', [y], { dims: [0, 3, 1, 2] }) : y;
        return activation(s, out, cfg.activation, node);
      }
      case 'BatchNormalization':
        return s.op('batch_norm', [x, this.w(name, 'gamma'), this.w(name, 'beta'), this.w(name, 'moving_mean'), this.w(name, 'moving_variance')], {
          training,
          momentum: Number(cfg.momentum ?? 0.99),
          epsilon: Number(cfg.epsilon ?? 1e-3),
        });
      case 'Add':
        return s.op('add', ins);
      case 'Concatenate':
        return s.op('cat', ins, { dim: torchAxis(Number(cfg.axis ?? -1), x.shape.length) });
      case 'Flatten': {
        const inp = x.shape.length === 4 ? s.op('permute', [x], { dims: [0, 2, 3, 1] }) : x;
        return x.shape.length === 2 ? x : s.op('reshape', [inp], { shape: [x.shape[0], -1] });
      }
      case 'GlobalAveragePooling2D':
        return s.op('mean', [x], { dims: [2, 3], keepdim: cfg.keepdims === true });
      case 'GlobalMaxPooling2D':
        return s.op('amax', [x], { dims: [2, 3], keepdim: cfg.keepdims === true });
      case 'MaxPooling2D':
      case 'AveragePooling2D':
        return pool(s, node, x);
      case 'ZeroPadding2D': {
        const [[t, b], [l, r]] = zeroPadding(cfg.padding);
        return s.op('pad', [x], { pads: [l, r, t, b] });
      }
      case 'Activation':
        return activation(s, x, cfg.activation, node);
      case 'ReLU': {
        if (Number(cfg.threshold ?? 0) !== 0) throw unsupported(node, `threshold ${quote(cfg.threshold)}`);
        const slope = Number(cfg.negative_slope ?? 0);
        const y = slope === 0 ? s.op('relu', [x]) : s.op('leaky_relu', [x], { slope });
        return cfg.max_value == null ? y : s.op('clamp', [y], { max: Number(cfg.max_value) });
      }
      case 'LeakyReLU':
        return s.op('leaky_relu', [x], { slope: Number(cfg.alpha ?? 0.3) });
      case 'ELU':
        return s.op('elu', [x], { alpha: Number(cfg.alpha ?? 1) });
      case 'Softmax':
        return s.op('softmax', [x], { dim: torchAxis(Number(cfg.axis ?? -1), x.shape.length) });
      case 'Dropout':
        return s.op('dropout', [x], { rate: Number(cfg.rate ?? 0), training });
    }
  }
}

function unsupported(node: GraphNode, what: string): AutopruneError {
  return new AutopruneError(
    ErrorCodes.MODEL_UNSUPPORTED_LAYER,
    `Layer \`${node.name}\` of class \`${node.className}\` has ${what}, which the libtorch engine does not run`,
  );
}

/** `conv/kernel` -> `kernel` (tfjs may suffix duplicates as `kernel_1`). */
function weightKind(originalName: string): string {
  return originalName.slice(originalName.lastIndexOf('/') + 1).replace(/_\d+$/, '');
}

function layoutOf(className: string, kind: string): Layout {
  if (kind === 'depthwise_kernel') return 'depthwise';
  if (kind === 'kernel' || kind === 'pointwise_kernel') return className === 'Dense' ? 'dense' : 'conv';
  return 'vector';
}

/** tfjs [kh, kw, in, out] -> torch [out, in, kh, kw]; depthwise [kh, kw, c, m] -> [c*m, 1, kh, kw]; dense [in, out] -> [out, in]. */
function toTorch(torch: TorchBinding, v: tf.Tensor, layout: Layout, dtype: TorchFloatDtype): TorchTensor {
  const raw = torch.fromData(v.dataSync() as Float32Array, v.shape, dtype);
  const perm = { conv: [3, 2, 0, 1], depthwise: [2, 3, 0, 1], dense: [1, 0], vector: null }[layout];
  if (!perm) return raw;
  const p = torch.op('permute', [raw], { dims: perm });
  raw.dispose();
  if (layout !== 'depthwise') return p;
  const [c, m, kh, kw] = p.shape;
  const r = torch.op('reshape', [p], { shape: [c * m, 1, kh, kw] });
  p.dispose();
  return r;
}

/** Float32Array, or Float64Array for a float64 tensor. */
function fromTorch(torch: TorchBinding, t: TorchTensor, layout: Layout, tfShape: number[]): Float32Array | Float64Array {
  if (layout === 'vector') return t.data() as Float32Array | Float64Array;
  let src = t;
  if (layout === 'depthwise') {
    const [kh, kw, c, m] = tfShape;
    src = torch.op('reshape', [t], { shape: [c, m, kh, kw] });
  }
  const perm = { conv: [2, 3, 1, 0], depthwise: [2, 3, 0, 1], dense: [1, 0] }[layout];
  const p = torch.op('permute', [src], { dims: perm });
  const data = p.data() as Float32Array | Float64Array;
  p.dispose();
  if (src !== t) src.dispose();
  return data;
}

/** A tfjs axis of a channels-last tensor -> the torch axis of its NCHW twin (rank 4 only differs). */
function torchAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (rank !== 4) return a;
  return [0, 2, 3, 1][a];
}

/** TensorFlow's padding [top, bottom, left, right] for 'same' / 'valid' on an NCHW input. */
function samePadding(padding: unknown, inHW: readonly number[], kernel: [number, number], stride: [number, number], dilation: [number, number]): number[] {
  if (padding !== 'same') return [0, 0, 0, 0];
  const out: number[] = [];
  for (let i = 0; i < 2; i++) {
    const k = (kernel[i] - 1) * dilation[i] + 1;
    const total = Math.max((Math.ceil(inHW[i] / stride[i]) - 1) * stride[i] + k - inHW[i], 0);
    out.push(Math.floor(total / 2), total - Math.floor(total / 2));
  }
  return out;
}

function convAttrs(cfg: JsonDict, x: TorchTensor, groups: number): TorchAttrs {
  const kernel = pair(cfg.kernel_size, 1);
  const stride = pair(cfg.strides, 1);
  const dilation = pair(cfg.dilation_rate, 1);
  if (cfg.padding !== 'same' && cfg.padding !== 'valid' && cfg.padding !== undefined) {
    throw new AutopruneError(
      ErrorCodes.MODEL_UNSUPPORTED_LAYER,
      `Padding ${quote(cfg.padding)} is not supported by the libtorch engine; expected same or valid`,
    );
  }
  return { stride, dilation, groups, padding: samePadding(cfg.padding, x.shape.slice(2), kernel, stride, dilation) };
}

function pool(s: TensorScope, node: GraphNode, x: TorchTensor): TorchTensor {
  const cfg = node.config;
  const kernel = pair(cfg.pool_size, 2);
  const stride = cfg.strides == null ? kernel : pair(cfg.strides, 1);
  const [t, b, l, r] = samePadding(cfg.padding, x.shape.slice(2), kernel, stride, [1, 1]);
  const isMax = node.className === 'MaxPooling2D';
  const op = isMax ? 'max_pool2d' : 'avg_pool2d';
  if (t + b + l + r === 0) return s.op(op, [x], { kernel, stride });
  if (isMax) return s.op(op, [s.op('pad', [x], { pads: [l, r, t, b], value: -Infinity })], { kernel, stride });
  // TensorFlow's 'same' average counts only real pixels: average the zero-padded input, then divide
  // by the fraction of real pixels in each window.
  const sum = s.op(op, [s.op('pad', [x], { pads: [l, r, t, b] })], { kernel, stride });
  const [h, w] = x.shape.slice(2);
  const ones = s.keep(s.torch.fromData(new Float32Array(h * w).fill(1), [1, 1, h, w], x.dtype as TorchFloatDtype));
  const frac = s.op(op, [s.op('pad', [ones], { pads: [l, r, t, b] })], { kernel, stride });
  return s.op('div', [sum, frac]);
}

function zeroPadding(p: unknown): [[number, number], [number, number]] {
  if (typeof p === 'number')
    return [
      [p, p],
      [p, p],
    ];
  if (Array.isArray(p) && Array.isArray(p[0])) return [pair(p[0], 0), pair(p[1], 0)];
  if (Array.isArray(p))
    return [
      [Number(p[0]), Number(p[0])],
      [Number(p[1]), Number(p[1])],
    ];
  return [
    [1, 1],
    [1, 1],
  ];
}

/** Keras activation by name (layers' `activation` option and the Activation layer). */
function activation(s: TensorScope, x: TorchTensor, name: unknown, node: GraphNode): TorchTensor {
  switch (name ?? 'linear') {
    case 'linear':
      return x;
    case 'relu':
      return s.op('relu', [x]);
    case 'relu6':
      return s.op('clamp', [x], { min: 0, max: 6 });
    case 'sigmoid':
      return s.op('sigmoid', [x]);
    case 'hard_sigmoid':
      return s.op('clamp', [s.op('scale', [x], { mul: 0.2, add: 0.5 })], { min: 0, max: 1 });
    case 'tanh':
      return s.op('tanh', [x]);
    case 'elu':
      return s.op('elu', [x], { alpha: 1 });
    case 'selu':
      return s.op('selu', [x]);
    case 'softplus':
      return s.op('softplus', [x]);
    case 'softsign':
      return s.op('div', [x, s.op('scale', [s.op('abs', [x])], { add: 1 })]);
    case 'swish':
      return s.op('silu', [x]);
    case 'gelu':
      return s.op('gelu', [x]);
    case 'gelu_new':
      return s.op('gelu', [x], { tanh: true });
    case 'mish':
      return s.op('mul', [x, s.op('tanh', [s.op('softplus', [x])])]);
    case 'softmax':
      return s.op('softmax', [x], { dim: x.shape.length === 4 ? 1 : -1 });
    default:
      throw unsupported(node, `activation ${quote(name)}`);
  }
}
