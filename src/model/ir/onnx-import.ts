/**
 * ONNX model -> ModelGraph: what `torch.onnx.export` (opsets 9 to 17), tf2onnx and similar exporters
 * write for image classifiers, mapped onto the graph's typed nodes. Anything the graph cannot
 * represent is refused with one line naming the ONNX node, its op and what is expected, before any
 * study or store exists.
 *
 * - Constant subgraphs (shape arithmetic around a dynamic batch, opset-11 pad lists, Constant and
 *   Identity-of-initializer nodes) are evaluated here; `Shape` of a feature map yields NaN for the
 *   batch, so `x.view(x.size(0), -1)` folds to a Reshape to [NaN, -1], read as a flatten.
 * - Exporter idioms become the node they stand for: x*sigmoid(x) is SiLU, x*HardSigmoid(1/6, 1/2)(x)
 *   is HardSwish, Clip(0, 6) is ReLU6 (Clip), MatMul followed by Add of a constant is a Dense with
 *   bias, ReduceMean over H and W is global average pooling, Reshape/Squeeze to [N, features] is a
 *   flatten.
 * - Weights are copied per node (an exporter may share one initializer between several nodes, e.g.
 *   identical zero biases), so cutting one node never changes another.
 * - A graph input followed only by Transpose(0, 3, 1, 2) (tf2onnx's NHWC models) is recorded as an
 *   NHWC input, and Transpose(0, 2, 3, 1) right before a flatten is Keras' channels-last Flatten;
 *   any other Transpose, or a Reshape that is not a flatten, moves the channel axis in a way no
 *   channel rule follows (a channel shuffle) and is refused.
 *
 * `source.origin` maps every graph node to the ONNX node it came from (plan.json reports it).
 */
import { readFile } from 'node:fs/promises';
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import { decodeOnnxModel } from '../onnx-proto.js';
import type { Activation, ConvNode, DenseNode, Layout, ModelGraph, Node, Pads4, Pair } from './graph.js';

interface TensorProto {
  readonly name?: string;
  readonly dims?: readonly number[];
  readonly data_type?: number;
  readonly raw_data?: Uint8Array;
  readonly float_data?: readonly number[];
  readonly double_data?: readonly number[];
  readonly int32_data?: readonly number[];
  readonly int64_data?: readonly number[];
  readonly data_location?: number;
}
interface AttributeProto {
  readonly name: string;
  readonly type?: number;
  readonly f?: number;
  readonly i?: number;
  readonly s?: Uint8Array;
  readonly t?: TensorProto;
  readonly floats?: readonly number[];
  readonly ints?: readonly number[];
}
interface NodeProto {
  readonly op_type: string;
  readonly name?: string;
  readonly domain?: string;
  readonly input?: readonly string[];
  readonly output?: readonly string[];
  readonly attribute?: readonly AttributeProto[];
}
interface ValueInfoProto {
  readonly name: string;
  readonly type?: { readonly tensor_type?: { readonly elem_type?: number; readonly shape?: { readonly dim?: readonly Dim[] } } };
}
interface Dim {
  readonly dim_value?: number;
  readonly dim_param?: string;
}
interface GraphProto {
  readonly node?: readonly NodeProto[];
  readonly initializer?: readonly TensorProto[];
  readonly input?: readonly ValueInfoProto[];
  readonly output?: readonly ValueInfoProto[];
}
interface ModelProto {
  readonly graph?: GraphProto;
  readonly opset_import?: readonly { readonly domain?: string; readonly version?: number }[];
}

/** A constant tensor: float32 weights as read, everything else as float64 (NaN = the batch size). */
interface Const {
  readonly kind: 'const';
  readonly dims: readonly number[];
  readonly data: Float32Array | Float64Array;
}
/** One image's feature map, [C, H, W] or [features], the output of graph node `node`. */
interface Feature {
  readonly kind: 'feature';
  readonly node: string;
  readonly shape: readonly number[];
}
/** An NHWC graph input, usable only through its Transpose to NCHW. */
interface RawInput {
  readonly kind: 'rawInput';
}
/** A [C, H, W] map transposed to [H, W, C] (Keras' Flatten in a tf2onnx export): usable only by a flatten. */
interface ChannelsLast {
  readonly kind: 'channelsLast';
  readonly of: Feature;
}
type Value = Const | Feature | RawInput | ChannelsLast;

/** Ops this importer maps to graph nodes (listed in refusals). */
export const SUPPORTED_ONNX_OPS = [
  'Conv',
  'BatchNormalization',
  'Relu',
  'Clip',
  'LeakyRelu',
  'Elu',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'Softmax',
  'Add',
  'Sum',
  'Mul',
  'Concat',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'ReduceMean',
  'ReduceMax',
  'Pad',
  'Flatten',
  'Reshape',
  'Squeeze',
  'Gemm',
  'MatMul',
  'Dropout',
  'Identity',
  'Transpose',
] as const;

/** Ops evaluated when all their inputs are constants. */
const CONSTANT_OPS = [
  'Constant',
  'ConstantOfShape',
  'Identity',
  'Cast',
  'Shape',
  'Gather',
  'Unsqueeze',
  'Squeeze',
  'Concat',
  'Reshape',
  'Slice',
  'Transpose',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Neg',
];

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);
const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

/** Calls `f(outIndex, multiIndex)` for every element of a tensor of `dims`, in row-major order. */
function forEachIndex(dims: readonly number[], f: (flat: number, idx: readonly number[]) => void): void {
  const idx = new Array<number>(dims.length).fill(0);
  const n = prod(dims);
  for (let flat = 0; flat < n; flat++) {
    f(flat, idx);
    for (let a = dims.length - 1; a >= 0; a--) {
      if (++idx[a] < dims[a]) break;
      idx[a] = 0;
    }
  }
}

const TYPE = { FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;

export class OnnxImporter {
  private readonly nodes: Node[] = [];
  private readonly byName = new Map<string, Node>();
  private readonly values = new Map<string, Value>();
  private readonly uses = new Map<string, number>();
  private readonly origin: Record<string, string> = {};
  private opset = 13;
  private current: NodeProto | null = null;
  private currentIndex = 0;

  constructor(private readonly label: string) {}

  run(model: ModelProto): ModelGraph {
    const g = model.graph;
    if (!g) throw this.model('has no graph');
    this.opset = model.opset_import?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 13;
    const inits = new Set<string>();
    for (const t of g.initializer ?? []) {
      this.values.set(t.name ?? '', this.tensor(t, `initializer ${quote(t.name ?? '')}`));
      inits.add(t.name ?? '');
    }
    const inputs = (g.input ?? []).filter((i) => !inits.has(i.name));
    const outputs = g.output ?? [];
    if (inputs.length !== 1 || outputs.length !== 1) {
      throw this.model(
        `has inputs ${quote(inputs.map((i) => i.name))} and outputs ${quote(outputs.map((o) => o.name))}; expected one image input and one [batch, classes] output`,
      );
    }
    for (const n of g.node ?? []) for (const i of n.input ?? []) if (i) this.uses.set(i, (this.uses.get(i) ?? 0) + 1);
    const inputName = inputs[0].name;
    const outputName = outputs[0].name;
    const layout = this.addInput(inputs[0], g.node ?? []);
    (g.node ?? []).forEach((n, i) => {
      this.current = n;
      this.currentIndex = i;
      this.map(n);
    });
    this.current = null;
    const out = this.values.get(outputName);
    if (out?.kind !== 'feature' || out.shape.length !== 1) {
      const shape = out?.kind === 'feature' ? `[batch, ${out.shape.join(', ')}]` : 'a constant';
      throw this.model(`output ${quote(outputName)} is ${shape}; expected [batch, classes] logits or probabilities`);
    }
    const nodes = this.live(out.node);
    const origin = Object.fromEntries(nodes.map((n) => [n.name, this.origin[n.name]]));
    return {
      nodes,
      input: inputName,
      output: out.node,
      inputLayout: layout,
      source: { format: 'onnx', inputName, outputName, origin },
    };
  }

  // ---- errors

  private model(what: string): AutopruneError {
    return new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `ONNX model ${quote(this.label)} ${what}`);
  }

  /** One line: the node, its op and what is expected. */
  private refuse(what: string): AutopruneError {
    const n = this.current;
    const where = n ? `ONNX node ${quote(n.name || `#${this.currentIndex}`)} (op ${quote(n.op_type)})` : `ONNX model ${quote(this.label)}`;
    return new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_LAYER, `${where} in ${quote(this.label)} ${what}`);
  }

  // ---- reading

  private tensor(t: TensorProto, what: string): Const {
    const dims = (t.dims ?? []).map(Number);
    const n = prod(dims);
    const type = t.data_type ?? TYPE.FLOAT;
    if (t.data_location === 1) throw this.refuse(`reads ${what} from external data; expected the weights inside the .onnx file (save without external data)`);
    const raw = t.raw_data && t.raw_data.byteLength > 0 ? new Uint8Array(t.raw_data) : null; // a copy, so aligned
    const ints = (xs: ArrayLike<number | bigint>): Float64Array => Float64Array.from({ length: n }, (_, i) => Number(xs[i]));
    let data: Float32Array | Float64Array;
    switch (type) {
      case TYPE.FLOAT:
        data = raw ? new Float32Array(raw.buffer, 0, n) : Float32Array.from(t.float_data ?? []);
        break;
      case TYPE.DOUBLE:
        data = raw ? new Float64Array(raw.buffer, 0, n) : Float64Array.from(t.double_data ?? []);
        break;
      case TYPE.INT64:
        data = raw ? ints(new BigInt64Array(raw.buffer, 0, n)) : ints(t.int64_data ?? []);
        break;
      case TYPE.INT32:
        data = raw ? ints(new Int32Array(raw.buffer, 0, n)) : ints(t.int32_data ?? []);
        break;
      case TYPE.INT16:
        data = raw ? ints(new Int16Array(raw.buffer, 0, n)) : ints(t.int32_data ?? []);
        break;
      case TYPE.INT8:
        data = raw ? ints(new Int8Array(raw.buffer, 0, n)) : ints(t.int32_data ?? []);
        break;
      case TYPE.UINT8:
      case TYPE.BOOL:
        data = raw ? ints(raw) : ints(t.int32_data ?? []);
        break;
      default:
        throw this.refuse(`has ${what} of ONNX data type ${type}; expected float32, float64 or an integer type (convert float16 models to float32)`);
    }
    if (data.length !== n) throw this.refuse(`has ${what} with ${data.length} values for dims ${quote(dims)}`);
    return { kind: 'const', dims, data };
  }

  private attrs(n: NodeProto): Map<string, AttributeProto> {
    return new Map((n.attribute ?? []).map((a) => [a.name, a]));
  }
  private int(n: NodeProto, name: string, dflt: number): number {
    const a = this.attrs(n).get(name);
    return a === undefined ? dflt : Number(a.i ?? 0);
  }
  private float(n: NodeProto, name: string, dflt: number): number {
    const a = this.attrs(n).get(name);
    return a === undefined ? dflt : Number(a.f ?? 0);
  }
  private ints(n: NodeProto, name: string): number[] | undefined {
    const a = this.attrs(n).get(name);
    return a === undefined ? undefined : (a.ints ?? []).map(Number);
  }
  private str(n: NodeProto, name: string, dflt: string): string {
    const a = this.attrs(n).get(name);
    return a?.s === undefined ? dflt : new TextDecoder().decode(a.s);
  }

  private value(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw this.refuse(`reads ${quote(name)}, which no earlier node, initializer or input produces; expected nodes in topological order`);
    return v;
  }
  private feature(v: Value | undefined, what: string): Feature {
    if (v?.kind === 'feature') return v;
    if (v?.kind === 'rawInput') throw this.refuse(`reads the NHWC graph input directly; expected it only through Transpose(perm = [0, 3, 1, 2])`);
    if (v?.kind === 'channelsLast')
      throw this.refuse('reads a map transposed to channels-last; expected only a Flatten or Reshape to [batch, -1] after such a Transpose');
    throw this.refuse(`has a constant ${what}; expected a feature map`);
  }
  private constant(v: Value | undefined, what: string): Const {
    if (v?.kind === 'const') return v;
    throw this.refuse(`has a computed ${what}; expected a constant (an initializer or a constant subgraph)`);
  }
  private image(v: Value | undefined): Feature {
    const f = this.feature(v, 'input');
    if (f.shape.length !== 3) throw this.refuse(`has a [batch, ${f.shape.join(', ')}] input; expected an image tensor [batch, C, H, W]`);
    return f;
  }
  /** The output of node `n`'s first output must be the only one read. */
  private onlyFirstOutput(n: NodeProto): undefined {
    const extra = (n.output ?? []).slice(1).filter((o) => o && (this.uses.get(o) ?? 0) > 0);
    if (extra.length > 0) throw this.refuse(`has its output ${quote(extra[0])} read; expected only the first output to be used (inference)`);
  }

  // ---- input

  private addInput(v: ValueInfoProto, onnxNodes: readonly NodeProto[]): Layout {
    const dims = v.type?.tensor_type?.shape?.dim ?? [];
    const elem = v.type?.tensor_type?.elem_type ?? TYPE.FLOAT;
    const fixed = dims.slice(1).map((d) => d.dim_value);
    if (dims.length !== 4 || fixed.some((d) => d === undefined || d <= 0) || elem !== TYPE.FLOAT) {
      const shown = dims.map((d) => d.dim_param ?? d.dim_value ?? '?');
      throw this.model(`has input ${quote(v.name)} of shape ${quote(shown)}; expected float32 images [batch, C, H, W] with fixed C, H and W`);
    }
    const [d1, d2, d3] = fixed as number[];
    const readers = onnxNodes.filter((n) => n.input?.includes(v.name));
    const nhwc =
      readers.length > 0 && readers.every((n) => n.op_type === 'Transpose' && same(this.ints(n, 'perm') ?? [], [0, 3, 1, 2])) && !(d1 <= 4 && d3 > 4); // an NCHW image read by a transpose would have few leading channels
    const shape: [number, number, number] = nhwc ? [d3, d1, d2] : [d1, d2, d3];
    this.push({ op: 'Input', name: v.name, inputs: [], shape }, v.name, null);
    this.values.set(v.name, nhwc ? { kind: 'rawInput' } : { kind: 'feature', node: v.name, shape });
    return nhwc ? 'NHWC' : 'NCHW';
  }

  // ---- emitting

  private push(node: Node, origin: string, out: { name: string; shape: readonly number[] } | null): undefined {
    this.nodes.push(node);
    this.byName.set(node.name, node);
    this.origin[node.name] = origin;
    if (out) this.values.set(out.name, { kind: 'feature', node: node.name, shape: out.shape });
  }
  private nodeName(n: NodeProto): string {
    const base = n.name || `${n.op_type}_${this.currentIndex}`;
    let name = base;
    for (let i = 1; this.byName.has(name); i++) name = `${base}_${i}`;
    return name;
  }
  /** Emits a node built from its name; the ONNX node's first output becomes its feature map. */
  private emit(n: NodeProto, make: (name: string) => Node, shape: readonly number[]): undefined {
    const node = make(this.nodeName(n));
    this.push(node, n.name ?? '', { name: n.output?.[0] ?? '', shape });
  }
  private alias(n: NodeProto, v: Value): undefined {
    this.values.set(n.output?.[0] ?? '', v);
  }
  private act(n: NodeProto, x: Feature, fn: Activation, input = x.node): undefined {
    this.emit(n, (name) => ({ op: 'Activation', name, inputs: [input], fn }), x.shape);
  }

  /** Nodes the output depends on, in their order (exporter leftovers such as a fused sigmoid drop out). */
  private live(output: string): Node[] {
    const keep = new Set<string>([output]);
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (keep.has(n.name)) for (const x of n.inputs) keep.add(x);
    }
    return this.nodes.filter((n) => keep.has(n.name) || n.op === 'Input');
  }

  // ---- mapping

  private map(n: NodeProto): undefined {
    if (n.domain && n.domain !== 'ai.onnx') throw this.refuse(`is in domain ${quote(n.domain)}; expected the default ONNX domain`);
    const ins = (n.input ?? []).map((name) => (name ? this.value(name) : undefined));
    const present = ins.filter((v): v is Value => v !== undefined);
    if (n.op_type === 'Shape' && present[0]?.kind === 'feature') {
      const dims = [Number.NaN, ...present[0].shape];
      const start = this.int(n, 'start', 0);
      const end = this.int(n, 'end', dims.length);
      const s = start < 0 ? start + dims.length : start;
      const e = end < 0 ? end + dims.length : Math.min(end, dims.length);
      const picked = dims.slice(s, e);
      this.alias(n, { kind: 'const', dims: [picked.length], data: Float64Array.from(picked) });
      return;
    }
    if (present.every((v) => v.kind === 'const')) {
      if (!CONSTANT_OPS.includes(n.op_type)) {
        throw this.refuse(`computes on constants only; expected such subgraphs to use ${CONSTANT_OPS.join(', ')} (export with constant folding)`);
      }
      this.alias(n, this.fold(n, present as Const[]));
      return;
    }
    const x = ins[0];
    switch (n.op_type) {
      case 'Conv':
        return this.conv(n, ins);
      case 'BatchNormalization':
        return this.batchNorm(n, ins);
      case 'Relu':
        return this.act(n, this.feature(x, 'input'), { kind: 'relu' });
      case 'Clip':
        return this.clip(n, ins);
      case 'LeakyRelu':
        return this.act(n, this.feature(x, 'input'), { kind: 'leakyRelu', alpha: this.float(n, 'alpha', 0.01) });
      case 'Elu':
        return this.act(n, this.feature(x, 'input'), { kind: 'elu', alpha: this.float(n, 'alpha', 1) });
      case 'Sigmoid':
        return this.act(n, this.feature(x, 'input'), { kind: 'sigmoid' });
      case 'HardSigmoid':
        return this.act(n, this.feature(x, 'input'), { kind: 'hardSigmoid', alpha: this.float(n, 'alpha', 0.2), beta: this.float(n, 'beta', 0.5) });
      case 'HardSwish':
        return this.act(n, this.feature(x, 'input'), { kind: 'hardSwish' });
      case 'Tanh':
        return this.act(n, this.feature(x, 'input'), { kind: 'tanh' });
      case 'Softmax':
        return this.softmax(n, this.feature(x, 'input'));
      case 'Add':
      case 'Sum':
        return this.add(n, ins);
      case 'Mul':
        return this.mul(n, ins);
      case 'Concat':
        return this.concat(n, ins);
      case 'MaxPool':
      case 'AveragePool':
        return this.pool(n, this.image(x));
      case 'GlobalAveragePool':
      case 'GlobalMaxPool': {
        const f = this.image(x);
        const mode = n.op_type === 'GlobalMaxPool' ? 'max' : 'avg';
        return this.emit(n, (name) => ({ op: 'GlobalPool', name, inputs: [f.node], mode, keepDims: true }), [f.shape[0], 1, 1]);
      }
      case 'ReduceMean':
      case 'ReduceMax':
        return this.reduce(n, ins);
      case 'Pad':
        return this.pad(n, ins);
      case 'Flatten':
        return this.flatten(n, x);
      case 'Reshape':
        return this.reshape(n, x, this.constant(ins[1], 'shape'));
      case 'Squeeze':
        return this.squeeze(n, ins);
      case 'Gemm':
        return this.gemm(n, ins);
      case 'MatMul':
        return this.matmul(n, ins);
      case 'Dropout':
      case 'Identity': {
        this.onlyFirstOutput(n);
        const f = this.feature(x, 'input');
        return this.emit(n, (name) => ({ op: 'Identity', name, inputs: [f.node] }), f.shape);
      }
      case 'Transpose':
        return this.transpose(n, x);
      default:
        throw this.refuse(`is not supported; supported ops: ${SUPPORTED_ONNX_OPS.join(', ')}`);
    }
  }

  /** Explicit [t, l, b, r] pads from `pads` or `auto_pad` (SAME_* computed from the input size). */
  private padsOf(n: NodeProto, hw: readonly number[], kernel: Pair, strides: Pair, dilations: Pair): Pads4 {
    const auto = this.str(n, 'auto_pad', 'NOTSET');
    if (auto === 'NOTSET' || auto === '') {
      const p = this.ints(n, 'pads') ?? [0, 0, 0, 0];
      if (p.length !== 4 || p.some((v) => v < 0)) throw this.refuse(`has pads ${quote(p)}; expected four non-negative values [top, left, bottom, right]`);
      return [p[0], p[1], p[2], p[3]];
    }
    if (auto === 'VALID') return [0, 0, 0, 0];
    if (auto !== 'SAME_UPPER' && auto !== 'SAME_LOWER') throw this.refuse(`has auto_pad ${quote(auto)}; expected NOTSET, VALID, SAME_UPPER or SAME_LOWER`);
    const split = (size: number, k: number, s: number, d: number): [number, number] => {
      const total = Math.max((Math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0);
      const small = Math.floor(total / 2);
      return auto === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
    };
    const [t, b] = split(hw[0], kernel[0], strides[0], dilations[0]);
    const [l, r] = split(hw[1], kernel[1], strides[1], dilations[1]);
    return [t, l, b, r];
  }

  private pair(n: NodeProto, name: string, dflt: Pair): Pair {
    const v = this.ints(n, name) ?? dflt;
    if (v.length !== 2) throw this.refuse(`has ${name} ${quote(v)}; expected two values (a 2-D operation)`);
    return [v[0], v[1]];
  }

  private conv(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const x = this.image(ins[0]);
    const w = this.constant(ins[1], 'weight');
    if (w.dims.length !== 4) throw this.refuse(`has a weight of dims ${quote(w.dims)}; expected a 2-D convolution [out, in / groups, kh, kw]`);
    const [out, perGroup, kh, kw] = w.dims;
    const groups = this.int(n, 'group', 1);
    if (perGroup * groups !== x.shape[0] || out % groups !== 0) {
      throw this.refuse(`has ${x.shape[0]} input channels but a weight of dims ${quote(w.dims)} in ${groups} groups`);
    }
    const kernel = this.pair(n, 'kernel_shape', [kh, kw]);
    const strides = this.pair(n, 'strides', [1, 1]);
    const dilations = this.pair(n, 'dilations', [1, 1]);
    const pads = this.padsOf(n, x.shape.slice(1), kernel, strides, dilations);
    const b = ins[2] ? this.constant(ins[2], 'bias') : null;
    if (b && b.data.length !== out) throw this.refuse(`has a bias of ${b.data.length} values for ${out} output channels`);
    const size = (i: number, p0: number, p1: number): number => Math.floor((x.shape[i + 1] + p0 + p1 - dilations[i] * (kernel[i] - 1) - 1) / strides[i]) + 1;
    const shape = [out, size(0, pads[0], pads[2]), size(1, pads[1], pads[3])];
    this.emit(
      n,
      (name) => ({
        op: 'Conv',
        name,
        inputs: [x.node],
        kernel,
        strides,
        pads,
        dilations,
        groups,
        weight: Float32Array.from(w.data),
        bias: b ? Float32Array.from(b.data) : null,
      }),
      shape,
    );
  }

  private batchNorm(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const x = this.feature(ins[0], 'input');
    if (this.int(n, 'training_mode', 0) !== 0 || this.int(n, 'spatial', 1) !== 1) {
      throw this.refuse('is in training mode or not spatial; expected an inference BatchNormalization (export in eval mode)');
    }
    this.onlyFirstOutput(n);
    const c = x.shape[0];
    const [scale, bias, mean, variance] = ['scale', 'bias', 'mean', 'variance'].map((what, i) => {
      const t = this.constant(ins[i + 1], what);
      if (t.data.length !== c) throw this.refuse(`has a ${what} of ${t.data.length} values for ${c} channels`);
      return Float32Array.from(t.data);
    });
    const epsilon = this.float(n, 'epsilon', 1e-5);
    this.emit(n, (name) => ({ op: 'BatchNormalization', name, inputs: [x.node], epsilon, scale, bias, mean, variance }), x.shape);
  }

  private scalar(v: Value | undefined, what: string, dflt: number): number {
    if (v === undefined) return dflt;
    const t = this.constant(v, what);
    if (t.data.length !== 1) throw this.refuse(`has a ${what} of ${t.data.length} values; expected a scalar`);
    return t.data[0];
  }

  private clip(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const x = this.feature(ins[0], 'input');
    const [min, max] =
      this.opset < 11
        ? [this.float(n, 'min', Number.NEGATIVE_INFINITY), this.float(n, 'max', Number.POSITIVE_INFINITY)]
        : [this.scalar(ins[1], 'min', Number.NEGATIVE_INFINITY), this.scalar(ins[2], 'max', Number.POSITIVE_INFINITY)];
    this.act(n, x, min === 0 && max === Number.POSITIVE_INFINITY ? { kind: 'relu' } : { kind: 'clip', min, max });
  }

  private softmax(n: NodeProto, x: Feature): undefined {
    // Before opset 13 Softmax flattens from `axis` (default 1): over the channels only when H = W = 1.
    const rank = x.shape.length + 1;
    const dflt = this.opset < 13 ? 1 : -1;
    const axis = this.int(n, 'axis', dflt);
    const a = axis < 0 ? axis + rank : axis;
    const channelOnly = this.opset < 13 ? a === 1 && prod(x.shape.slice(1)) === 1 : a === 1;
    if (!channelOnly) throw this.refuse(`has axis ${axis} on a [batch, ${x.shape.join(', ')}] tensor; expected a softmax over the channel axis (1)`);
    this.act(n, x, { kind: 'softmax' });
  }

  private add(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const vs = ins.filter((v): v is Value => v !== undefined);
    const consts = vs.filter((v) => v.kind === 'const');
    if (consts.length > 0) return this.addBias(n, vs);
    const fs = vs.map((v) => this.feature(v, 'input'));
    if (!fs.every((f) => same(f.shape, fs[0].shape))) {
      throw this.refuse(`adds tensors of shapes ${fs.map((f) => `[${f.shape.join(', ')}]`).join(' and ')}; expected the same shape (no broadcasting)`);
    }
    this.emit(n, (name) => ({ op: 'Add', name, inputs: fs.map((f) => f.node) }), fs[0].shape);
  }

  /** Add of a constant: the bias of the Conv or bias-less Dense (MatMul) right before, read only here. */
  private addBias(n: NodeProto, vs: readonly Value[]): undefined {
    const f = vs.length === 2 ? vs.find((v): v is Feature => v.kind === 'feature') : undefined;
    const c = vs.find((v): v is Const => v.kind === 'const');
    const prev = f ? this.byName.get(f.node) : undefined;
    const producerOutput = f ? [...this.values.entries()].find(([, v]) => v === f)?.[0] : undefined;
    const single = producerOutput !== undefined && this.uses.get(producerOutput) === 1;
    const channels = f?.shape[0] ?? 0;
    const squeezed = (dims: readonly number[]): number[] => dims.slice(dims.findIndex((d) => d !== 1) === -1 ? dims.length : dims.findIndex((d) => d !== 1));
    const perChannel = c !== undefined && f !== undefined && same(squeezed(c.dims), f.shape.length === 1 ? [channels] : [channels, 1, 1]);
    if (f && c && prev && single && perChannel && (prev.op === 'Conv' || prev.op === 'Dense') && prev.bias === null) {
      const withBias = { ...prev, bias: Float32Array.from(c.data) } as ConvNode | DenseNode;
      this.nodes[this.nodes.indexOf(prev)] = withBias;
      this.byName.set(prev.name, withBias);
      this.alias(n, f);
      return;
    }
    throw this.refuse(
      'adds a constant; expected Add of feature maps of the same shape, or a per-channel constant added to the output of a bias-less Conv or MatMul read only by this Add',
    );
  }

  private mul(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const [a, b] = [this.feature(ins[0], 'factor'), this.feature(ins[1], 'factor')];
    for (const [x, g] of [
      [a, b],
      [b, a],
    ]) {
      const gate = this.byName.get(g.node);
      if (gate?.op !== 'Activation' || gate.inputs[0] !== x.node) continue;
      if (gate.fn.kind === 'sigmoid') return this.act(n, x, { kind: 'silu' });
      if (gate.fn.kind === 'hardSigmoid' && Math.abs(gate.fn.alpha - 1 / 6) < 1e-6 && Math.abs(gate.fn.beta - 0.5) < 1e-6) {
        return this.act(n, x, { kind: 'hardSwish' });
      }
    }
    const isGate = (g: Feature, x: Feature): boolean => x.shape.length === 3 && same(g.shape, [x.shape[0], 1, 1]);
    if (!same(a.shape, b.shape) && !isGate(a, b) && !isGate(b, a)) {
      throw this.refuse(
        `multiplies tensors of shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}]; expected the same shape or a per-channel gate [C, 1, 1] (squeeze-and-excitation)`,
      );
    }
    const shape = a.shape.length >= b.shape.length && prod(a.shape) >= prod(b.shape) ? a.shape : b.shape;
    this.emit(n, (name) => ({ op: 'Mul', name, inputs: [a.node, b.node] }), shape);
  }

  private concat(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const fs = ins.map((v) => this.feature(v, 'input'));
    const rank = fs[0].shape.length + 1;
    const axis = this.int(n, 'axis', 1);
    const a = axis < 0 ? axis + rank : axis;
    if (a !== 1 || !fs.every((f) => f.shape.length === fs[0].shape.length && same(f.shape.slice(1), fs[0].shape.slice(1)))) {
      throw this.refuse(
        `concatenates on axis ${axis} tensors of shapes ${fs.map((f) => `[${f.shape.join(', ')}]`).join(', ')}; expected the channel axis (1) and equal H and W`,
      );
    }
    const shape = [fs.reduce((s, f) => s + f.shape[0], 0), ...fs[0].shape.slice(1)];
    this.emit(n, (name) => ({ op: 'Concat', name, inputs: fs.map((f) => f.node) }), shape);
  }

  private pool(n: NodeProto, x: Feature): undefined {
    this.onlyFirstOutput(n);
    const kernel = this.pair(n, 'kernel_shape', [0, 0]);
    const strides = this.pair(n, 'strides', [1, 1]);
    const dilations = this.pair(n, 'dilations', [1, 1]);
    if (dilations[0] !== 1 || dilations[1] !== 1 || this.int(n, 'storage_order', 0) !== 0) {
      throw this.refuse(`has dilations ${quote(dilations)} or a column-major storage order; expected dilation 1 and the default storage order`);
    }
    const pads = this.padsOf(n, x.shape.slice(1), kernel, strides, dilations);
    const ceilMode = this.int(n, 'ceil_mode', 0) === 1;
    // PyTorch's and onnxruntime's rule: in ceil mode a last window that starts in the end padding is dropped.
    const size = (i: number, p0: number, p1: number): number => {
      const span = (x.shape[i + 1] + p0 + p1 - kernel[i]) / strides[i];
      let o = (ceilMode ? Math.ceil(span) : Math.floor(span)) + 1;
      if (ceilMode && (o - 1) * strides[i] >= x.shape[i + 1] + p0) o--;
      return o;
    };
    const shape = [x.shape[0], size(0, pads[0], pads[2]), size(1, pads[1], pads[3])];
    const mode = n.op_type === 'MaxPool' ? 'max' : 'avg';
    const countIncludePad = this.int(n, 'count_include_pad', 0) === 1;
    this.emit(n, (name) => ({ op: 'Pool', name, inputs: [x.node], mode, kernel, strides, pads, ceilMode, countIncludePad }), shape);
  }

  private reduce(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const x = this.image(ins[0]);
    const axes = (this.ints(n, 'axes') ?? (ins[1] ? [...this.constant(ins[1], 'axes').data] : [])).map((a) => (a < 0 ? a + 4 : a));
    const keepDims = this.int(n, 'keepdims', 1) === 1;
    if (!same([...axes].sort(), [2, 3])) throw this.refuse(`reduces axes ${quote(axes)}; expected H and W (axes [2, 3]), a global pooling`);
    const mode = n.op_type === 'ReduceMax' ? 'max' : 'avg';
    this.emit(n, (name) => ({ op: 'GlobalPool', name, inputs: [x.node], mode, keepDims }), keepDims ? [x.shape[0], 1, 1] : [x.shape[0]]);
  }

  private pad(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const x = this.image(ins[0]);
    const mode = this.str(n, 'mode', 'constant');
    const p = this.opset < 11 ? (this.ints(n, 'pads') ?? []) : [...this.constant(ins[1], 'pads').data];
    const value = this.opset < 11 ? this.float(n, 'value', 0) : this.scalar(ins[2], 'value', 0);
    if (mode !== 'constant' || ins[3] !== undefined || p.length !== 8 || p[0] || p[1] || p[4] || p[5] || p.some((v) => v < 0)) {
      throw this.refuse(`has mode ${quote(mode)} and pads ${quote(p)}; expected constant padding of H and W only, non-negative`);
    }
    const pads: Pads4 = [p[2], p[3], p[6], p[7]];
    if (pads.every((v) => v === 0)) return this.alias(n, x);
    const shape = [x.shape[0], x.shape[1] + pads[0] + pads[2], x.shape[2] + pads[1] + pads[3]];
    this.emit(n, (name) => ({ op: 'Pad', name, inputs: [x.node], pads, value }), shape);
  }

  /**
   * [C, H, W] -> [C*H*W] in ONNX's (channel-major) order, or in Keras' (channels-last) order for a
   * map transposed to [H, W, C] first; a rank-2 tensor passes through.
   */
  private toFeatures(n: NodeProto, v: Value | undefined): undefined {
    const order = v?.kind === 'channelsLast' ? 'hwc' : 'chw';
    const x = v?.kind === 'channelsLast' ? v.of : this.feature(v, 'input');
    if (x.shape.length === 1) return this.alias(n, x);
    this.emit(n, (name) => ({ op: 'Flatten', name, inputs: [x.node], order }), [prod(x.shape)]);
  }

  private flatten(n: NodeProto, v: Value | undefined): undefined {
    if (this.int(n, 'axis', 1) !== 1) throw this.refuse(`has axis ${this.int(n, 'axis', 1)}; expected 1 (keep the batch, flatten the rest)`);
    this.toFeatures(n, v);
  }

  private reshape(n: NodeProto, v: Value | undefined, target: Const): undefined {
    const x = v?.kind === 'channelsLast' ? v.of : this.feature(v, 'input');
    const t = [...target.data];
    const f = prod(x.shape);
    const batch = (v: number): boolean => Number.isNaN(v) || v === 0;
    const ok = t.length === 2 && ((batch(t[0]) && (t[1] === -1 || t[1] === f)) || (t[0] === -1 && t[1] === f));
    if (!ok) {
      const shown = t.map((v) => (Number.isNaN(v) ? 'batch' : v));
      throw this.refuse(
        `reshapes [batch, ${x.shape.join(', ')}] to ${quote(shown)}; expected a flatten to [batch, -1] (a reshape that moves the channel axis, such as a channel shuffle, is not supported)`,
      );
    }
    this.toFeatures(n, v);
  }

  private squeeze(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const x = this.feature(ins[0], 'input');
    const axes = (this.ints(n, 'axes') ?? (ins[1] ? [...this.constant(ins[1], 'axes').data] : [2, 3])).map((a) => (a < 0 ? a + 4 : a));
    if (x.shape.length !== 3 || x.shape[1] !== 1 || x.shape[2] !== 1 || !same([...axes].sort(), [2, 3])) {
      throw this.refuse(`squeezes axes ${quote(axes)} of [batch, ${x.shape.join(', ')}]; expected [batch, C, 1, 1] squeezed on axes [2, 3]`);
    }
    this.toFeatures(n, x);
  }

  private dense(n: NodeProto, x: Feature, weight: Float32Array, units: number, bias: Float32Array | null): undefined {
    this.emit(n, (name) => ({ op: 'Dense', name, inputs: [x.node], weight, bias, units }), [units]);
  }

  private gemm(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const x = this.feature(ins[0], 'input');
    const w = this.constant(ins[1], 'B');
    if (x.shape.length !== 1) throw this.refuse(`has an input of shape [batch, ${x.shape.join(', ')}]; expected [batch, features] (flatten first)`);
    if (this.int(n, 'transA', 0) !== 0 || w.dims.length !== 2)
      throw this.refuse('has transA = 1 or a B that is not a matrix; expected input x B with a constant 2-D B');
    const transB = this.int(n, 'transB', 0) === 1;
    const [units, inF] = transB ? w.dims : [w.dims[1], w.dims[0]];
    if (inF !== x.shape[0]) throw this.refuse(`has ${x.shape[0]} input features but B of dims ${quote(w.dims)}`);
    const alpha = this.float(n, 'alpha', 1);
    const beta = this.float(n, 'beta', 1);
    const weight = new Float32Array(units * inF);
    for (let o = 0; o < units; o++) for (let i = 0; i < inF; i++) weight[o * inF + i] = alpha * w.data[transB ? o * inF + i : i * units + o];
    let bias: Float32Array | null = null;
    if (ins[2]) {
      const c = this.constant(ins[2], 'C');
      if (c.data.length !== units && c.data.length !== 1) throw this.refuse(`has C of dims ${quote(c.dims)}; expected a bias of ${units} values`);
      bias = Float32Array.from({ length: units }, (_, o) => beta * c.data[c.data.length === 1 ? 0 : o]);
    }
    this.dense(n, x, weight, units, bias);
  }

  private matmul(n: NodeProto, ins: readonly (Value | undefined)[]): undefined {
    const x = this.feature(ins[0], 'input');
    const w = this.constant(ins[1], 'weight');
    if (x.shape.length !== 1 || w.dims.length !== 2 || w.dims[0] !== x.shape[0]) {
      throw this.refuse(`multiplies [batch, ${x.shape.join(', ')}] by a constant of dims ${quote(w.dims)}; expected [batch, features] x [features, units]`);
    }
    const [inF, units] = w.dims;
    const weight = new Float32Array(units * inF);
    for (let o = 0; o < units; o++) for (let i = 0; i < inF; i++) weight[o * inF + i] = w.data[i * units + o];
    this.dense(n, x, weight, units, null);
  }

  private transpose(n: NodeProto, x: Value | undefined): undefined {
    const perm = this.ints(n, 'perm') ?? [];
    if (x?.kind === 'rawInput' && same(perm, [0, 3, 1, 2])) {
      const input = this.nodes[0];
      return this.alias(n, { kind: 'feature', node: input.name, shape: (input as Extract<Node, { op: 'Input' }>).shape });
    }
    if (x?.kind === 'feature' && x.shape.length === 3 && same(perm, [0, 2, 3, 1])) return this.alias(n, { kind: 'channelsLast', of: x });
    throw this.refuse(
      `permutes axes ${quote(perm)}; expected no Transpose except Transpose(perm = [0, 3, 1, 2]) right after an NHWC input, or Transpose(perm = [0, 2, 3, 1]) right before a flatten (a transpose that moves the channel axis, such as a channel shuffle, is not supported)`,
    );
  }

  // ---- constant folding

  private fold(n: NodeProto, ins: readonly Const[]): Const {
    const c = (dims: readonly number[], data: ArrayLike<number>): Const => ({ kind: 'const', dims, data: Float64Array.from(data) });
    const x = ins[0];
    const axesOf = (i: number): number[] | undefined => this.ints(n, 'axes') ?? (ins[i] ? [...ins[i].data] : undefined);
    switch (n.op_type) {
      case 'Constant': {
        const a = n.attribute?.[0];
        if (a?.t) return this.tensor(a.t, 'its value');
        if (a?.name === 'value_float') return c([], [a.f ?? 0]);
        if (a?.name === 'value_floats') return c([a.floats?.length ?? 0], a.floats ?? []);
        if (a?.name === 'value_int') return c([], [Number(a.i ?? 0)]);
        if (a?.name === 'value_ints') return c([a.ints?.length ?? 0], (a.ints ?? []).map(Number));
        throw this.refuse(`has attribute ${quote(a?.name ?? '')}; expected value, value_float(s) or value_int(s)`);
      }
      case 'ConstantOfShape': {
        const a = this.attrs(n).get('value');
        const v = a?.t ? this.tensor(a.t, 'its value').data[0] : 0;
        const dims = [...x.data];
        return c(dims, new Float64Array(prod(dims)).fill(v));
      }
      case 'Identity':
        return x;
      case 'Cast': {
        const to = this.int(n, 'to', TYPE.FLOAT);
        if (to === TYPE.FLOAT) return { kind: 'const', dims: x.dims, data: Float32Array.from(x.data) };
        if (to === TYPE.DOUBLE) return c(x.dims, x.data);
        return c(
          x.dims,
          Array.from(x.data, (v) => (to === TYPE.BOOL ? Number(v !== 0) : Math.trunc(v))),
        );
      }
      case 'Shape':
        return c([x.dims.length], x.dims);
      case 'Gather': {
        const axis = this.int(n, 'axis', 0);
        const a = axis < 0 ? axis + x.dims.length : axis;
        const idx = ins[1];
        const dims = [...x.dims.slice(0, a), ...idx.dims, ...x.dims.slice(a + 1)];
        const xs = stridesOf(x.dims);
        const out = new Float64Array(prod(dims));
        forEachIndex(dims, (flat, i) => {
          const pick = Number(idx.data[idx.dims.length === 0 ? 0 : stridesOf(idx.dims).reduce((s, st, k) => s + st * i[a + k], 0)]);
          const src = [...i.slice(0, a), pick < 0 ? pick + x.dims[a] : pick, ...i.slice(a + idx.dims.length)];
          out[flat] = x.data[src.reduce((s, v, k) => s + v * xs[k], 0)];
        });
        return c(dims, out);
      }
      case 'Unsqueeze': {
        const axes = axesOf(1) ?? [];
        const rank = x.dims.length + axes.length;
        const norm = axes.map((a) => (a < 0 ? a + rank : a));
        const dims: number[] = [];
        for (let i = 0, j = 0; i < rank; i++) dims.push(norm.includes(i) ? 1 : x.dims[j++]);
        return { ...x, dims };
      }
      case 'Squeeze': {
        const axes = axesOf(1)?.map((a) => (a < 0 ? a + x.dims.length : a));
        return { ...x, dims: x.dims.filter((d, i) => (axes ? !axes.includes(i) : d !== 1)) };
      }
      case 'Concat': {
        const axis = this.int(n, 'axis', 0);
        const a = axis < 0 ? axis + x.dims.length : axis;
        const dims = [...x.dims];
        dims[a] = ins.reduce((s, t) => s + t.dims[a], 0);
        const out = new Float64Array(prod(dims));
        const outer = prod(dims.slice(0, a));
        let k = 0;
        for (let o = 0; o < outer; o++) {
          for (const t of ins) {
            const chunk = prod(t.dims.slice(a));
            for (let j = 0; j < chunk; j++) out[k++] = t.data[o * chunk + j];
          }
        }
        return c(dims, out);
      }
      case 'Reshape': {
        const target = [...ins[1].data];
        const dims = target.map((d, i) => (d === 0 ? x.dims[i] : d));
        const known = prod(dims.filter((d) => d !== -1));
        return { ...x, dims: dims.map((d) => (d === -1 ? x.data.length / known : d)) };
      }
      case 'Transpose': {
        const perm = this.ints(n, 'perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i);
        const dims = perm.map((p) => x.dims[p]);
        const xs = stridesOf(x.dims);
        const out = new Float64Array(x.data.length);
        forEachIndex(dims, (flat, i) => {
          out[flat] = x.data[perm.reduce((s, p, k) => s + i[k] * xs[p], 0)];
        });
        return c(dims, out);
      }
      case 'Slice':
        return this.slice(n, ins);
      case 'Neg':
        return c(
          x.dims,
          Array.from(x.data, (v) => -v),
        );
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div': {
        const f = {
          Add: (a: number, b: number) => a + b,
          Sub: (a: number, b: number) => a - b,
          Mul: (a: number, b: number) => a * b,
          Div: (a: number, b: number) => a / b,
        }[n.op_type]!;
        return this.broadcast(ins[0], ins[1], f);
      }
      default:
        throw this.refuse(`computes on constants only; expected such subgraphs to use ${CONSTANT_OPS.join(', ')}`);
    }
  }

  private slice(n: NodeProto, ins: readonly Const[]): Const {
    const x = ins[0];
    const list = (i: number, attr: string): number[] | undefined => (this.opset < 10 ? this.ints(n, attr) : ins[i] ? [...ins[i].data] : undefined);
    const starts = list(1, 'starts') ?? [];
    const ends = list(2, 'ends') ?? [];
    const axes = (list(3, 'axes') ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + x.dims.length : a));
    const steps = (this.opset < 10 ? undefined : ins[4] ? [...ins[4].data] : undefined) ?? starts.map(() => 1);
    const begin = x.dims.map(() => 0);
    const step = x.dims.map(() => 1);
    const dims = [...x.dims];
    axes.forEach((a, k) => {
      const d = x.dims[a];
      const s = steps[k];
      let st = starts[k] < 0 ? starts[k] + d : starts[k];
      let en = ends[k] < 0 ? ends[k] + d : ends[k];
      if (s > 0) {
        st = Math.min(Math.max(st, 0), d);
        en = Math.min(Math.max(en, 0), d);
      } else {
        st = Math.min(Math.max(st, 0), d - 1);
        en = Math.min(Math.max(en, -1), d - 1);
      }
      begin[a] = st;
      step[a] = s;
      dims[a] = Math.max(0, Math.ceil((en - st) / s));
    });
    const xs = stridesOf(x.dims);
    const out = new Float64Array(prod(dims));
    forEachIndex(dims, (flat, i) => {
      out[flat] = x.data[i.reduce((acc, v, k) => acc + (begin[k] + v * step[k]) * xs[k], 0)];
    });
    return { kind: 'const', dims, data: out };
  }

  private broadcast(a: Const, b: Const, f: (x: number, y: number) => number): Const {
    const rank = Math.max(a.dims.length, b.dims.length);
    const pa = [...new Array<number>(rank - a.dims.length).fill(1), ...a.dims];
    const pb = [...new Array<number>(rank - b.dims.length).fill(1), ...b.dims];
    const dims = pa.map((d, i) => Math.max(d, pb[i]));
    if (pa.some((d, i) => d !== dims[i] && d !== 1) || pb.some((d, i) => d !== dims[i] && d !== 1)) {
      throw this.refuse(`combines constants of dims ${quote(a.dims)} and ${quote(b.dims)}, which do not broadcast`);
    }
    const sa = stridesOf(pa);
    const sb = stridesOf(pb);
    const out = new Float64Array(prod(dims));
    forEachIndex(dims, (flat, i) => {
      let ia = 0;
      let ib = 0;
      for (let k = 0; k < rank; k++) {
        ia += (pa[k] === 1 ? 0 : i[k]) * sa[k];
        ib += (pb[k] === 1 ? 0 : i[k]) * sb[k];
      }
      out[flat] = f(a.data[ia], b.data[ib]);
    });
    const floats = a.data instanceof Float32Array && b.data instanceof Float32Array;
    return { kind: 'const', dims, data: floats ? Float32Array.from(out) : out };
  }
}

/** The graph of an ONNX model given as bytes; `label` names it in messages (a path). */
export function importOnnx(bytes: Uint8Array, label = 'model.onnx'): ModelGraph {
  let model: ModelProto;
  try {
    model = decodeOnnxModel(bytes) as ModelProto;
  } catch (e) {
    throw new AutopruneError(
      ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY,
      `${quote(label)} is not an ONNX model (${(e as Error).message.split('\n')[0]}); expected a ModelProto as written by torch.onnx.export`,
    );
  }
  return new OnnxImporter(label).run(model);
}

/** The graph of the ONNX model at `path`. */
export async function loadOnnxGraph(path: string): Promise<ModelGraph> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AutopruneError(ErrorCodes.MODEL_NOT_FOUND, `Cannot read ONNX model ${quote(path)} (${code ?? (e as Error).message}); expected a .onnx file`);
  }
  return importOnnx(bytes, path);
}

/** True when a model path names an ONNX model (by extension). */
export const isOnnxPath = (path: string): boolean => path.toLowerCase().endsWith('.onnx');
