/**
 * Channel padding of an exported `OnnxGraph` to onnxruntime's NCHWc block, for speed only: the
 * padded graph computes exactly the same outputs.
 *
 * onnxruntime's CPU provider runs a Conv in its blocked NCHWc layout (MLAS, 8 channels per block
 * with AVX2, 16 with AVX-512) only when the conv's input channels are a multiple of the block (or
 * fewer than one block); any other conv falls back to im2col + GEMM and forces layout reorders
 * around it. Pruned widths rarely are multiples (ResNet-20 at 48% MACs: 11/22/45 channels). In
 * probes here (CPU time per image, interleaved A/B, loaded host) padding 22 and 45 to 32 and 48
 * made that graph 10-40% cheaper and padding 8 to 16 made it dearer, so tensors narrower than one
 * block stay as they are; the quiet bench (docs/benchmarks.md "Proxy engines") measured +7% at channel step 1 and
 * -14% at step 8, one run each: the gain is not established.
 *
 * How: walking the nodes in order, a Conv's output channels C >= block are rounded up to a multiple
 * P with zero filters (and zero bias); ops that act per channel (BatchNormalization, activations,
 * pooling, Pad, and Add/Sum/Mul of equally padded tensors) carry the padding along; a Conv that
 * reads a padded tensor gets zero weights for the extra input channels (a depthwise Conv gets extra
 * zero groups). Any other reader (Flatten, Concat, Gemm, Softmax over channels, graph outputs)
 * reads a Slice of the first C channels, so nothing downstream ever sees a padded channel. Padded
 * channels hold zeros through a conv; whatever an activation makes of them meets only zero weights.
 * BatchNormalization statistics of padded channels are meaningless: callers truncate to C.
 */
import type { OnnxGraph, OnnxInitializer, OnnxNode } from './onnx.js';

interface Padded {
  /** Real channels (the first `logical` of the tensor's channel axis). */
  readonly logical: number;
  readonly physical: number;
}

const PER_CHANNEL_UNARY = new Set([
  'BatchNormalization',
  'Relu',
  'Clip',
  'LeakyRelu',
  'Elu',
  'Selu',
  'Sigmoid',
  'Tanh',
  'Softplus',
  'Softsign',
  'HardSigmoid',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'Pad',
]);
const ELEMENTWISE_BINARY = new Set(['Add', 'Sum', 'Mul']);

const roundUp = (c: number, block: number) => Math.ceil(c / block) * block;

/** Copies [o][rest] rows of `w` into a zeroed [oNew][restNew] array (rest = in-channels × kh × kw). */
function padConvWeight(w: Float32Array, dims: readonly number[], outTo: number, inTo: number): { data: Float32Array; dims: number[] } {
  const [co, ci, kh, kw] = dims;
  const k = kh * kw;
  const out = new Float32Array(outTo * inTo * k);
  for (let o = 0; o < co; o++) for (let i = 0; i < ci; i++) out.set(w.subarray((o * ci + i) * k, (o * ci + i + 1) * k), (o * inTo + i) * k);
  return { data: out, dims: [outTo, inTo, kh, kw] };
}

function padVector(v: Float32Array, to: number, fill: number): Float32Array {
  const out = new Float32Array(to).fill(fill);
  out.set(v);
  return out;
}

/** The graph with conv widths >= `block` padded to multiples of it (unchanged when `block` <= 1). */
export function padChannels(g: OnnxGraph, block: number): OnnxGraph {
  if (block <= 1) return g;
  const init = new Map(g.initializers.map((i) => [i.name, i]));
  const replaced = new Map<string, OnnxInitializer>();
  const added: OnnxInitializer[] = [];
  const padded = new Map<string, Padded>();
  const slices = new Map<string, string>();
  const nodes: OnnxNode[] = [];
  let changed = false;

  const setInit = (name: string, data: Float32Array, dims: readonly number[]) => {
    replaced.set(name, { name, dims, data });
    changed = true;
  };
  /** A reader that must not see padded channels reads this instead. */
  const unpadded = (t: string): string => {
    const p = padded.get(t);
    if (!p) return t;
    let s = slices.get(t);
    if (!s) {
      s = `${t}#unpad`;
      const k = (n: string, v: number) => ({ name: `${s}.${n}`, dims: [1], data: BigInt64Array.of(BigInt(v)) });
      added.push(k('starts', 0), k('ends', p.logical), k('axes', 1));
      nodes.push({ op: 'Slice', name: s, inputs: [t, `${s}.starts`, `${s}.ends`, `${s}.axes`], outputs: [s] });
      slices.set(t, s);
    }
    return s;
  };

  for (const n of g.nodes) {
    if (n.op === 'Conv') nodes.push(padConv(n));
    else if (PER_CHANNEL_UNARY.has(n.op) && padded.has(n.inputs[0]) && perChannelOk(n)) {
      const p = padded.get(n.inputs[0])!;
      if (n.op === 'BatchNormalization') {
        // scale 1, bias 0, mean 0, variance 1: a padded channel stays 0 in inference mode.
        n.inputs
          .slice(1, 5)
          .forEach((name, j) => setInit(name, padVector(init.get(name)!.data as Float32Array, p.physical, j === 0 || j === 3 ? 1 : 0), [p.physical]));
      }
      nodes.push(n);
      padded.set(n.outputs[0], p);
    } else if (ELEMENTWISE_BINARY.has(n.op) && sameBinaryPadding(n)) {
      nodes.push(n);
      padded.set(n.outputs[0], padded.get(n.inputs[0])!);
    } else nodes.push({ ...n, inputs: n.inputs.map(unpadded) }); // graph outputs included: the exporter ends in Identity
  }
  if (!changed) return g;
  return { ...g, nodes, initializers: [...g.initializers.map((i) => replaced.get(i.name) ?? i), ...added] };

  function perChannelOk(n: OnnxNode): boolean {
    if (n.op !== 'Pad') return true;
    const pads = init.get(n.inputs[1])?.data;
    return pads instanceof BigInt64Array && pads[1] === 0n && pads[5] === 0n && n.inputs.length === 2;
  }

  function sameBinaryPadding(n: OnnxNode): boolean {
    const ps = n.inputs.map((i) => padded.get(i));
    return ps.every((p) => p && p.physical === ps[0]!.physical && p.logical === ps[0]!.logical);
  }

  function padConv(n: OnnxNode): OnnxNode {
    const weight = init.get(n.inputs[1]);
    const group = n.attrs?.group && 'i' in n.attrs.group ? n.attrs.group.i : 1;
    if (weight?.dims.length !== 4 || !(weight.data instanceof Float32Array)) return { ...n, inputs: [unpadded(n.inputs[0]), ...n.inputs.slice(1)] };
    const [co, ciPerGroup] = weight.dims;
    const inP = padded.get(n.inputs[0]);
    const depthwise = ciPerGroup === 1 && group > 1 && co % group === 0;
    let inputs = [...n.inputs];
    if (inP && group === 1) {
      const w = padConvWeight(weight.data, weight.dims, co, inP.physical);
      setInit(weight.name, w.data, w.dims);
    } else if (inP && depthwise && group === inP.logical) {
      // Output channel c*mult+m reads input c: extra groups go at the end with zero filters.
      const physical = inP.physical * (co / group);
      const w = padConvWeight(weight.data, weight.dims, physical, 1);
      setInit(weight.name, w.data, w.dims);
      if (n.inputs[2]) setInit(n.inputs[2], padVector(init.get(n.inputs[2])!.data as Float32Array, physical, 0), [physical]);
      padded.set(n.outputs[0], { logical: co, physical });
      return { ...n, attrs: { ...n.attrs, group: { i: inP.physical } } };
    } else if (inP) {
      inputs = [unpadded(n.inputs[0]), ...n.inputs.slice(1)];
    }
    if (group === 1 && co >= block && co % block !== 0) {
      const physical = roundUp(co, block);
      const current = replaced.get(weight.name) ?? weight;
      const w = padConvWeight(current.data as Float32Array, current.dims, physical, current.dims[1]);
      setInit(weight.name, w.data, w.dims);
      if (n.inputs[2]) setInit(n.inputs[2], padVector(init.get(n.inputs[2])!.data as Float32Array, physical, 0), [physical]);
      padded.set(n.outputs[0], { logical: co, physical });
    }
    return { ...n, inputs };
  }
}
