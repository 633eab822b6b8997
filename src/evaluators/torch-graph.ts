/**
 * A ModelGraph (src/model/ir/graph.ts) run and trained on libtorch. The graph's weights are already
 * in torch's own layouts (OIHW convs, [out, in] dense), so parameters are plain copies of its
 * Float32Arrays; activations are NCHW inside, and the forward pass walks the nodes in order through
 * the binding's ops. What each op does on this engine is one entry of `BUILDERS` (op -> builder),
 * so an op reaches the engine by adding one entry. `writeBack` returns a new graph holding the
 * trained weights and BN moving statistics. float32 by default; float64 is for reference
 * computations.
 */
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { TorchAttrs, TorchBinding, TorchFloatDtype, TorchTensor } from '../engine/torch.js';
import type { Activation, Layout, ModelGraph, Node, NodeOf, Op, PoolNode } from '../model/ir/graph.js';

/** Creates tensors and frees them together (tf.tidy's role, explicitly). */
export class TensorScope {
  private readonly owned: TorchTensor[] = [];
  constructor(readonly torch: TorchBinding) {}
  op(name: string, inputs: readonly (TorchTensor | null)[], attrs?: TorchAttrs): TorchTensor {
    return this.keep(this.torch.op(name, inputs, attrs));
  }
  keep(t: TorchTensor): TorchTensor {
    this.owned.push(t);
    return t;
  }
  dispose(): void {
    for (const t of this.owned) t.dispose();
    this.owned.length = 0;
  }
}

/** A weight of a node: the name of the node's field it comes from and goes back to. */
interface ParamSpec {
  readonly key: string;
  readonly data: Float32Array;
  readonly shape: readonly number[];
  /** Trained by the optimizer (BN moving statistics are not: the forward pass updates them). */
  readonly trainable: boolean;
  /** Coupled L2 applies (kernels only, as recipe.ts defines). */
  readonly decayed: boolean;
}

type Params = Readonly<Record<string, TorchTensor>>;

interface ForwardContext {
  readonly scope: TensorScope;
  readonly training: boolean;
  /** Keras' convention: the fraction of the moving statistics kept per training step, by BN node. */
  readonly bnMomentum: (node: string) => number;
}

interface Builder<O extends Op> {
  /** Channels (features, for a rank-2 output) of the node's output, from its inputs' channels; NaN when unknown. */
  readonly channels: (node: NodeOf<O>, inputs: readonly number[]) => number;
  /** The node's weights, checked against its input channels. */
  readonly params?: (node: NodeOf<O>, inputs: readonly number[]) => ParamSpec[];
  readonly forward: (c: ForwardContext, node: NodeOf<O>, xs: readonly TorchTensor[], p: Params) => TorchTensor;
}

const same = (_: Node, ins: readonly number[]) => ins[0];

/** libtorch's rendering of each graph op. */
const BUILDERS = {
  Input: { channels: (n) => n.shape[0], forward: (_c, _n, xs) => xs[0] },
  Conv: {
    channels: (n, ins) => convOut(n, ins[0]),
    params: (n, ins) => {
      const out = convOut(n, ins[0]);
      const shape = [out, ins[0] / n.groups, n.kernel[0], n.kernel[1]];
      const ps: ParamSpec[] = [{ key: 'weight', data: n.weight, shape, trainable: true, decayed: true }];
      if (n.bias) ps.push({ key: 'bias', data: checkLength(n, 'bias', n.bias, out), shape: [out], trainable: true, decayed: false });
      return ps;
    },
    forward: ({ scope }, n, xs, p) => {
      const [t, l, b, r] = n.pads;
      return scope.op('conv2d', [xs[0], p.weight, p.bias ?? null], {
        stride: [...n.strides],
        dilation: [...n.dilations],
        groups: n.groups,
        padding: [t, b, l, r],
      });
    },
  },
  BatchNormalization: {
    channels: same,
    params: (n, ins) =>
      (['scale', 'bias', 'mean', 'variance'] as const).map((key) => ({
        key,
        data: checkLength(n, key, n[key], ins[0]),
        shape: [ins[0]],
        // A BN without learned gamma/beta (Keras scale/center false) keeps them fixed.
        trainable: key === 'scale' ? (n.affine?.scale ?? true) : key === 'bias' ? (n.affine?.bias ?? true) : false,
        decayed: false,
      })),
    forward: ({ scope, training, bnMomentum }, n, xs, p) =>
      scope.op('batch_norm', [xs[0], p.scale, p.bias, p.mean, p.variance], { training, momentum: bnMomentum(n.name), epsilon: n.epsilon }),
  },
  Activation: { channels: same, forward: ({ scope }, n, xs) => ACTIVATIONS[n.fn.kind](scope, xs[0], n.fn as never) },
  Add: { channels: same, forward: ({ scope }, _n, xs) => scope.op('add', xs) },
  Mul: {
    channels: (_n, ins) => Math.max(...ins),
    forward: ({ scope }, _n, xs) => xs.slice(1).reduce((y, x) => scope.op('mul', [y, x]), xs[0]),
  },
  Concat: { channels: (_n, ins) => ins.reduce((a, c) => a + c, 0), forward: ({ scope }, _n, xs) => scope.op('cat', xs, { dim: 1 }) },
  Pool: { channels: same, forward: ({ scope }, n, xs) => pool(scope, n, xs[0]) },
  GlobalPool: {
    channels: same,
    forward: ({ scope }, n, xs) => scope.op(n.mode === 'avg' ? 'mean' : 'amax', [xs[0]], { dims: [2, 3], keepdim: n.keepDims }),
  },
  Pad: {
    channels: same,
    forward: ({ scope }, n, xs) => {
      const [t, l, b, r] = n.pads;
      return scope.op('pad', [xs[0]], { pads: [l, r, t, b], value: n.value });
    },
  },
  Flatten: {
    channels: () => NaN,
    forward: ({ scope }, n, xs) => {
      const x = xs[0];
      if (x.shape.length === 2) return x;
      // Keras' Flatten writes an NHWC map's features channels-last; the Dense after it expects that order.
      const src = n.order === 'hwc' ? scope.op('permute', [x], { dims: [0, 2, 3, 1] }) : x;
      return scope.op('reshape', [src], { shape: [x.shape[0], -1] });
    },
  },
  Dense: {
    channels: (n) => n.units,
    params: (n) => {
      if (!(n.units >= 1) || n.weight.length % n.units !== 0) {
        throw badNode(n, `weight of ${n.weight.length} values for ${quote(n.units)} units`, 'a multiple of units');
      }
      const ps: ParamSpec[] = [{ key: 'weight', data: n.weight, shape: [n.units, n.weight.length / n.units], trainable: true, decayed: true }];
      if (n.bias) ps.push({ key: 'bias', data: checkLength(n, 'bias', n.bias, n.units), shape: [n.units], trainable: true, decayed: false });
      return ps;
    },
    forward: ({ scope }, n, xs, p) => {
      if (xs[0].shape.length !== 2)
        throw badNode(n, `an input of shape ${quote(xs[0].shape)}`, 'a rank-2 [N, features] input (Flatten or GlobalPool before it)');
      return scope.op('linear', [xs[0], p.weight, p.bias ?? null]);
    },
  },
  Identity: { channels: same, forward: (_c, _n, xs) => xs[0] },
} as const satisfies { readonly [O in Op]: Builder<O> };

type ActivationOf<K extends Activation['kind']> = Extract<Activation, { kind: K }>;

/** Each activation from the binding's ops; compositions are exact in real arithmetic (ONNX's definitions). */
const ACTIVATIONS = {
  relu: (s, x) => s.op('relu', [x]),
  clip: (s, x, f) => s.op('clamp', [x], { min: f.min, max: f.max }),
  leakyRelu: (s, x, f) => s.op('leaky_relu', [x], { slope: f.alpha }),
  elu: (s, x, f) => s.op('elu', [x], { alpha: f.alpha }),
  sigmoid: (s, x) => s.op('sigmoid', [x]),
  hardSigmoid: (s, x, f) => hardSigmoid(s, x, f.alpha, f.beta),
  // ONNX HardSwish: x * max(0, min(1, x / 6 + 1 / 2)) (= PyTorch's x * relu6(x + 3) / 6).
  hardSwish: (s, x) => s.op('mul', [x, hardSigmoid(s, x, 1 / 6, 0.5)]),
  silu: (s, x) => s.op('silu', [x]),
  tanh: (s, x) => s.op('tanh', [x]),
  selu: (s, x) => s.op('selu', [x]),
  softplus: (s, x) => s.op('softplus', [x]),
  softsign: (s, x) => s.op('div', [x, s.op('scale', [s.op('abs', [x])], { add: 1 })]),
  softmax: (s, x) => s.op('softmax', [x], { dim: 1 }),
} as const satisfies { readonly [K in Activation['kind']]: (s: TensorScope, x: TorchTensor, f: ActivationOf<K>) => TorchTensor };

function hardSigmoid(s: TensorScope, x: TorchTensor, alpha: number, beta: number): TorchTensor {
  return s.op('clamp', [s.op('scale', [x], { mul: alpha, add: beta })], { min: 0, max: 1 });
}

function badNode(n: Node, got: string, expected: string): AutopruneError {
  return new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Node ${quote(n.name)} (${n.op}) has ${got}; expected ${expected}`);
}

function checkLength(n: Node, key: string, a: Float32Array, expected: number): Float32Array {
  if (a.length !== expected) throw badNode(n, `${key} of ${a.length} values`, `${expected} (one per channel)`);
  return a;
}

function convOut(n: NodeOf<'Conv'>, inChannels: number): number {
  const perOut = (inChannels / n.groups) * n.kernel[0] * n.kernel[1];
  if (!Number.isInteger(inChannels / n.groups) || !Number.isInteger(n.weight.length / perOut) || n.weight.length === 0) {
    throw badNode(
      n,
      `${inChannels} input channels, groups ${n.groups} and a weight of ${n.weight.length} values`,
      `[out, in / groups, ${n.kernel.join(', ')}] (OIHW)`,
    );
  }
  return n.weight.length / perOut;
}

/**
 * Max or average pooling with the graph's semantics (PyTorch's): pads [t, l, b, r], ceil mode with
 * the last window starting inside the input or its top/left padding, average over the whole
 * (clipped) window or over its real pixels. libtorch's own padding is symmetric and at most half
 * the window; other pads are applied explicitly (-inf for max, so padding never wins; zeros for an
 * average, divided by the count of real pixels unless padding counts).
 */
function pool(s: TensorScope, n: PoolNode, x: TorchTensor): TorchTensor {
  const [t, l, b, r] = n.pads;
  const kernel = [...n.kernel];
  const stride = [...n.strides];
  const op = n.mode === 'max' ? 'max_pool2d' : 'avg_pool2d';
  const attrs = { kernel, stride, ceilMode: n.ceilMode, countIncludePad: n.countIncludePad };
  if (t === b && l === r && 2 * t <= kernel[0] && 2 * l <= kernel[1]) return s.op(op, [x], { ...attrs, padding: [t, l] });
  if (n.ceilMode) {
    const [h, w] = x.shape.slice(2);
    if (
      ceilOut(h, kernel[0], stride[0], t, b) !== ceilOut(h + t + b, kernel[0], stride[0], 0, 0) ||
      ceilOut(w, kernel[1], stride[1], l, r) !== ceilOut(w + l + r, kernel[1], stride[1], 0, 0)
    ) {
      throw badNode(
        n,
        `ceil mode with pads ${quote(n.pads)} whose last window starts in the bottom/right padding`,
        'symmetric pads, or pads where that window does not occur',
      );
    }
  }
  const padded = (v: TorchTensor, value: number) => s.op('pad', [v], { pads: [l, r, t, b], value });
  if (n.mode === 'max') return s.op(op, [padded(x, -Infinity)], { ...attrs, padding: [0, 0] });
  const sum = s.op(op, [padded(x, 0)], { ...attrs, padding: [0, 0], countIncludePad: true });
  if (n.countIncludePad) return sum;
  const [h, w] = x.shape.slice(2);
  const ones = s.keep(s.torch.fromData(new Float32Array(h * w).fill(1), [1, 1, h, w], x.dtype as TorchFloatDtype));
  const frac = s.op(op, [padded(ones, 0)], { ...attrs, padding: [0, 0], countIncludePad: true });
  return s.op('div', [sum, frac]);
}

/** PyTorch's ceil-mode output size along one axis with pads (before, after). */
function ceilOut(size: number, k: number, stride: number, before: number, after: number): number {
  let out = Math.ceil((size + before + after - k) / stride) + 1;
  if ((out - 1) * stride >= size + before) out--;
  return out;
}

function checkMomentum<M extends number | Readonly<Record<string, number>>>(m: M): M {
  for (const v of typeof m === 'number' ? [m] : Object.values(m)) {
    if (!(v >= 0 && v <= 1)) throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected a BN momentum in [0, 1], got ${quote(v)}`);
  }
  return m;
}

interface Param extends ParamSpec {
  readonly node: string;
  readonly tensor: TorchTensor;
}

export interface TorchGraphOptions {
  /** Default float32. */
  readonly dtype?: TorchFloatDtype;
  /**
   * BN moving-average momentum in Keras' convention (moving = moving * m + batch * (1 - m), biased
   * batch variance), the trainers' convention on every engine: one for all, or by BN node name (a
   * tfjs model's per-layer momentum); nodes not listed get 0.99 (Keras' default).
   */
  readonly bnMomentum?: number | Readonly<Record<string, number>>;
}

const DEFAULT_BN_MOMENTUM = 0.99;

export class TorchGraphModel {
  private constructor(
    readonly torch: TorchBinding,
    readonly graph: ModelGraph,
    readonly dtype: TorchFloatDtype,
    private bnMomentum: number | Readonly<Record<string, number>>,
    private readonly params: readonly Param[],
    private readonly byNode: ReadonlyMap<string, Params>,
  ) {}

  static fromGraph(torch: TorchBinding, graph: ModelGraph, options: TorchGraphOptions = {}): TorchGraphModel {
    const dtype = options.dtype ?? 'float32';
    const bnMomentum = checkMomentum(options.bnMomentum ?? DEFAULT_BN_MOMENTUM);
    const channels = new Map<string, number>();
    const params: Param[] = [];
    const byNode = new Map<string, Params>();
    try {
      for (const node of graph.nodes) {
        const ins = node.inputs.map((i) => {
          const c = channels.get(i);
          if (c === undefined) throw badNode(node, `input ${quote(i)}`, 'inputs named by earlier nodes (topological order)');
          return c;
        });
        const b = BUILDERS[node.op] as unknown as Builder<Op>;
        if (!b) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_LAYER, `Node ${quote(node.name)}: op ${quote(node.op)} has no libtorch builder`);
        const own: Record<string, TorchTensor> = {};
        for (const spec of b.params?.(node, ins) ?? []) {
          const tensor = torch.fromData(spec.data, spec.shape, dtype);
          if (spec.trainable) tensor.requiresGrad(true);
          own[spec.key] = tensor;
          params.push({ ...spec, node: node.name, tensor });
        }
        byNode.set(node.name, own);
        channels.set(node.name, b.channels(node, ins));
      }
      if (!channels.has(graph.output)) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Graph output ${quote(graph.output)} names no node`);
    } catch (e) {
      for (const p of params) p.tensor.dispose();
      throw e;
    }
    return new TorchGraphModel(torch, graph, dtype, bnMomentum, params, byNode);
  }

  /** Sets the BN momentum of later training forwards (adaptive BN averages batches with k / (k + 1)). */
  setBnMomentum(m: number | Readonly<Record<string, number>>): void {
    this.bnMomentum = checkMomentum(m);
  }

  /** Trainable tensors split by whether the coupled weight decay applies. */
  parameterGroups(): { decayed: TorchTensor[]; other: TorchTensor[] } {
    const trainable = this.params.filter((p) => p.trainable);
    return { decayed: trainable.filter((p) => p.decayed).map((p) => p.tensor), other: trainable.filter((p) => !p.decayed).map((p) => p.tensor) };
  }

  /** A node's weight tensor by `node.key` (e.g. `conv1.weight`, `bn1.mean`). */
  parameter(name: string): TorchTensor {
    const p = this.params.find((q) => `${q.node}.${q.key}` === name);
    if (!p) {
      throw new AutopruneError(
        ErrorCodes.INVALID_ARGUMENT,
        `No weight named ${quote(name)}; expected one of: ${this.params.map((q) => `${q.node}.${q.key}`).join(', ')}`,
      );
    }
    return p.tensor;
  }

  /**
   * Images -> an NCHW tensor of the model's dtype owned by `scope`. `layout` is the data's (the data
   * pipeline's splits are NHWC), not the graph's: inside, every map is NCHW.
   */
  input(scope: TensorScope, images: Float32Array | Float64Array, shape: readonly number[], layout: Layout = 'NHWC'): TorchTensor {
    const x = scope.keep(this.torch.fromData(images, shape, this.dtype));
    return layout === 'NHWC' ? scope.op('permute', [x], { dims: [0, 3, 1, 2] }) : x;
  }

  /** The graph's output [N, K]; every intermediate is owned by `scope` and left in `values` by node name. BN updates its moving statistics when training. */
  forward(scope: TensorScope, x: TorchTensor, training: boolean, values = new Map<string, TorchTensor>()): TorchTensor {
    const m = this.bnMomentum;
    const c: ForwardContext = { scope, training, bnMomentum: typeof m === 'number' ? () => m : (name) => m[name] ?? DEFAULT_BN_MOMENTUM };
    for (const node of this.graph.nodes) {
      const xs = node.op === 'Input' ? [x] : node.inputs.map((i) => values.get(i)!);
      const b = BUILDERS[node.op] as unknown as Builder<Op>;
      values.set(node.name, b.forward(c, node, xs, this.byNode.get(node.name)!));
    }
    return values.get(this.graph.output)!;
  }

  /** A new graph: the input graph with this model's current weights and BN moving statistics (float32). */
  writeBack(): ModelGraph {
    const byNode = new Map<string, Record<string, Float32Array>>();
    for (const p of this.params) {
      const d = p.tensor.data();
      const values = d instanceof Float32Array ? d : Float32Array.from(d);
      byNode.set(p.node, { ...byNode.get(p.node), [p.key]: values });
    }
    return { ...this.graph, nodes: this.graph.nodes.map((n) => (byNode.has(n.name) ? ({ ...n, ...byNode.get(n.name) } as Node) : n)) };
  }

  dispose(): void {
    for (const p of this.params) p.tensor.dispose();
  }
}
