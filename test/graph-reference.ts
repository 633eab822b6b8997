/**
 * Test helpers for ModelGraphs: a builder of small graphs with seeded random weights, and a naive
 * float64 evaluator written from the op definitions in src/model/ir/graph.ts (loops, no engine), the
 * oracle the engines are checked against. Pooling follows PyTorch's definition: ceil mode keeps a
 * last window only when it starts inside the input or its top/left padding; an average divides by
 * the window clipped to the padded input (countIncludePad) or by its real pixels.
 */
import { Rng } from '../src/core/rng.js';
import type { Activation, Layout, ModelGraph, Node, Pads4, Pair } from '../src/model/ir/graph.js';

interface T {
  readonly data: Float64Array;
  /** [N, C, H, W] or [N, F]. */
  readonly shape: readonly number[];
}

/** Builds a graph node by node; weights uniform in [-scale, scale] from a seeded Rng. */
export class GraphBuilder {
  readonly nodes: Node[] = [];
  private readonly ch = new Map<string, number>();
  private readonly rng: Rng;
  constructor(
    readonly shape: readonly [number, number, number],
    seed: number,
    readonly inputLayout: Layout = 'NHWC',
  ) {
    this.rng = new Rng(seed);
    this.push({ op: 'Input', name: 'input', inputs: [], shape }, shape[0]);
  }
  private push(n: Node, channels: number): string {
    this.nodes.push(n);
    this.ch.set(n.name, channels);
    return n.name;
  }
  channels(x: string): number {
    return this.ch.get(x)!;
  }
  random(n: number, scale: number, offset = 0): Float32Array {
    return Float32Array.from({ length: n }, () => offset + (2 * this.rng.next() - 1) * scale);
  }
  conv(
    name: string,
    x: string,
    out: number,
    o: { kernel?: Pair; strides?: Pair; pads?: Pads4; dilations?: Pair; groups?: number; bias?: boolean } = {},
  ): string {
    const kernel = o.kernel ?? [3, 3];
    const groups = o.groups ?? 1;
    const fanIn = (this.channels(x) / groups) * kernel[0] * kernel[1];
    return this.push(
      {
        op: 'Conv',
        name,
        inputs: [x],
        kernel,
        strides: o.strides ?? [1, 1],
        pads: o.pads ?? [0, 0, 0, 0],
        dilations: o.dilations ?? [1, 1],
        groups,
        weight: this.random(out * fanIn, Math.sqrt(3 / fanIn)),
        bias: o.bias === false ? null : this.random(out, 0.1),
      },
      out,
    );
  }
  /** `affine` as a Keras BN without gamma or beta has it (the missing one is ones / zeros). */
  bn(name: string, x: string, affine?: { scale: boolean; bias: boolean }): string {
    const c = this.channels(x);
    const scale = affine?.scale === false ? new Float32Array(c).fill(1) : this.random(c, 0.3, 1);
    const bias = affine?.bias === false ? new Float32Array(c) : this.random(c, 0.2);
    const node: Node = { op: 'BatchNormalization', name, inputs: [x], epsilon: 1e-3, scale, bias, mean: this.random(c, 0.2), variance: this.random(c, 0.3, 1) };
    return this.push(affine ? { ...node, affine } : node, c);
  }
  act(name: string, x: string, fn: Activation): string {
    return this.push({ op: 'Activation', name, inputs: [x], fn }, this.channels(x));
  }
  add(name: string, xs: string[]): string {
    return this.push({ op: 'Add', name, inputs: xs }, this.channels(xs[0]));
  }
  mul(name: string, xs: string[]): string {
    return this.push({ op: 'Mul', name, inputs: xs }, Math.max(...xs.map((x) => this.channels(x))));
  }
  concat(name: string, xs: string[]): string {
    return this.push(
      { op: 'Concat', name, inputs: xs },
      xs.reduce((a, x) => a + this.channels(x), 0),
    );
  }
  pool(name: string, x: string, o: { mode: 'max' | 'avg'; kernel: Pair; strides: Pair; pads?: Pads4; ceilMode?: boolean; countIncludePad?: boolean }): string {
    return this.push(
      {
        op: 'Pool',
        name,
        inputs: [x],
        mode: o.mode,
        kernel: o.kernel,
        strides: o.strides,
        pads: o.pads ?? [0, 0, 0, 0],
        ceilMode: o.ceilMode ?? false,
        countIncludePad: o.countIncludePad ?? false,
      },
      this.channels(x),
    );
  }
  globalPool(name: string, x: string, mode: 'max' | 'avg', keepDims: boolean): string {
    return this.push({ op: 'GlobalPool', name, inputs: [x], mode, keepDims }, this.channels(x));
  }
  pad(name: string, x: string, pads: Pads4): string {
    return this.push({ op: 'Pad', name, inputs: [x], pads, value: 0 }, this.channels(x));
  }
  flatten(name: string, x: string, order: 'chw' | 'hwc', features: number): string {
    return this.push({ op: 'Flatten', name, inputs: [x], order }, features);
  }
  dense(name: string, x: string, units: number, bias = true): string {
    const fanIn = this.channels(x);
    return this.push(
      { op: 'Dense', name, inputs: [x], units, weight: this.random(units * fanIn, Math.sqrt(3 / fanIn)), bias: bias ? this.random(units, 0.1) : null },
      units,
    );
  }
  identity(name: string, x: string): string {
    return this.push({ op: 'Identity', name, inputs: [x] }, this.channels(x));
  }
  graph(output: string): ModelGraph {
    return {
      nodes: [...this.nodes],
      input: 'input',
      output,
      inputLayout: this.inputLayout,
      source: { format: 'onnx', inputName: 'input', outputName: output },
    };
  }
}

const at4 = (s: readonly number[], n: number, c: number, y: number, x: number) => ((n * s[1] + c) * s[2] + y) * s[3] + x;

function conv(x: T, n: Extract<Node, { op: 'Conv' }>): T {
  const [N, C, H, W] = x.shape;
  const [kh, kw] = n.kernel;
  const [sh, sw] = n.strides;
  const [dh, dw] = n.dilations;
  const [t, l, b, r] = n.pads;
  const cin = C / n.groups;
  const O = n.weight.length / (cin * kh * kw);
  const oh = Math.floor((H + t + b - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((W + l + r - dw * (kw - 1) - 1) / sw) + 1;
  const shape = [N, O, oh, ow];
  const out = new Float64Array(N * O * oh * ow);
  for (let i = 0; i < N; i++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / (O / n.groups));
      for (let y = 0; y < oh; y++)
        for (let z = 0; z < ow; z++) {
          let s = n.bias ? n.bias[o] : 0;
          for (let c = 0; c < cin; c++)
            for (let u = 0; u < kh; u++)
              for (let v = 0; v < kw; v++) {
                const iy = y * sh - t + u * dh;
                const ix = z * sw - l + v * dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                s += n.weight[((o * cin + c) * kh + u) * kw + v] * x.data[at4(x.shape, i, g * cin + c, iy, ix)];
              }
          out[at4(shape, i, o, y, z)] = s;
        }
    }
  return { data: out, shape };
}

function poolSize(size: number, k: number, s: number, before: number, after: number, ceil: boolean): number {
  let out = (ceil ? Math.ceil : Math.floor)((size + before + after - k) / s) + 1;
  if (ceil && (out - 1) * s >= size + before) out--;
  return out;
}

function pool(x: T, n: Extract<Node, { op: 'Pool' }>): T {
  const [N, C, H, W] = x.shape;
  const [kh, kw] = n.kernel;
  const [sh, sw] = n.strides;
  const [t, l, b, r] = n.pads;
  const oh = poolSize(H, kh, sh, t, b, n.ceilMode);
  const ow = poolSize(W, kw, sw, l, r, n.ceilMode);
  const shape = [N, C, oh, ow];
  const out = new Float64Array(N * C * oh * ow);
  for (let i = 0; i < N; i++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < oh; y++)
        for (let z = 0; z < ow; z++) {
          const y0 = y * sh - t;
          const x0 = z * sw - l;
          const y1 = Math.min(y0 + kh, H + b);
          const x1 = Math.min(x0 + kw, W + r);
          const full = (y1 - y0) * (x1 - x0);
          let m = -Infinity;
          let s = 0;
          let real = 0;
          for (let u = Math.max(y0, 0); u < Math.min(y1, H); u++)
            for (let v = Math.max(x0, 0); v < Math.min(x1, W); v++) {
              const a = x.data[at4(x.shape, i, c, u, v)];
              m = Math.max(m, a);
              s += a;
              real++;
            }
          out[at4(shape, i, c, y, z)] = n.mode === 'max' ? m : s / (n.countIncludePad ? full : real);
        }
  return { data: out, shape };
}

function activation(x: T, f: Activation): T {
  const hs = (v: number, a: number, b: number) => Math.max(0, Math.min(1, a * v + b));
  const map = (fn: (v: number) => number): T => ({ data: x.data.map(fn), shape: x.shape });
  switch (f.kind) {
    case 'relu':
      return map((v) => Math.max(0, v));
    case 'clip':
      return map((v) => Math.min(f.max, Math.max(f.min, v)));
    case 'leakyRelu':
      return map((v) => (v >= 0 ? v : f.alpha * v));
    case 'elu':
      return map((v) => (v >= 0 ? v : f.alpha * (Math.exp(v) - 1)));
    case 'sigmoid':
      return map((v) => 1 / (1 + Math.exp(-v)));
    case 'hardSigmoid':
      return map((v) => hs(v, f.alpha, f.beta));
    case 'hardSwish':
      return map((v) => v * hs(v, 1 / 6, 0.5));
    case 'silu':
      return map((v) => v / (1 + Math.exp(-v)));
    case 'tanh':
      return map(Math.tanh);
    case 'selu':
      return map((v) => 1.0507009873554805 * (v >= 0 ? v : 1.6732632423543772 * (Math.exp(v) - 1)));
    case 'softplus':
      return map((v) => Math.log1p(Math.exp(v)));
    case 'softsign':
      return map((v) => v / (1 + Math.abs(v)));
    case 'softmax': {
      const [N, C] = x.shape;
      const inner = x.data.length / (N * C);
      const out = new Float64Array(x.data.length);
      for (let i = 0; i < N; i++)
        for (let p = 0; p < inner; p++) {
          const idx = (c: number) => (i * C + c) * inner + p;
          let m = -Infinity;
          for (let c = 0; c < C; c++) m = Math.max(m, x.data[idx(c)]);
          let s = 0;
          for (let c = 0; c < C; c++) s += Math.exp(x.data[idx(c)] - m);
          for (let c = 0; c < C; c++) out[idx(c)] = Math.exp(x.data[idx(c)] - m) / s;
        }
      return { data: out, shape: x.shape };
    }
  }
}

/** Element-wise with broadcasting of size-1 axes (same rank). */
function broadcast(a: T, b: T, f: (x: number, y: number) => number): T {
  const shape = a.shape.map((d, i) => Math.max(d, b.shape[i]));
  const size = shape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(size);
  const index = (s: readonly number[], flat: number) => {
    let k = 0;
    let rest = flat;
    let stride = 1;
    for (let i = shape.length - 1; i >= 0; i--) {
      const c = rest % shape[i];
      rest = Math.floor(rest / shape[i]);
      if (s[i] !== 1) k += c * stride;
      stride *= s[i];
    }
    return k;
  };
  for (let i = 0; i < size; i++) out[i] = f(a.data[index(a.shape, i)], b.data[index(b.shape, i)]);
  return { data: out, shape };
}

function evalNode(n: Node, xs: T[]): T {
  const x = xs[0];
  switch (n.op) {
    case 'Input':
    case 'Identity':
      return x;
    case 'Conv':
      return conv(x, n);
    case 'BatchNormalization': {
      const [N, C] = x.shape;
      const inner = x.data.length / (N * C);
      return {
        data: x.data.map((v, i) => {
          const c = Math.floor(i / inner) % C;
          return ((v - n.mean[c]) / Math.sqrt(n.variance[c] + n.epsilon)) * n.scale[c] + n.bias[c];
        }),
        shape: x.shape,
      };
    }
    case 'Activation':
      return activation(x, n.fn);
    case 'Add':
      return xs.slice(1).reduce((a, b) => broadcast(a, b, (p, q) => p + q), x);
    case 'Mul':
      return xs.slice(1).reduce((a, b) => broadcast(a, b, (p, q) => p * q), x);
    case 'Concat': {
      const [N, , H, W] = x.shape;
      const C = xs.reduce((a, t) => a + t.shape[1], 0);
      const out = new Float64Array(N * C * H * W);
      let base = 0;
      for (const t of xs) {
        for (let i = 0; i < N; i++)
          for (let c = 0; c < t.shape[1]; c++) for (let p = 0; p < H * W; p++) out[(i * C + base + c) * H * W + p] = t.data[(i * t.shape[1] + c) * H * W + p];
        base += t.shape[1];
      }
      return { data: out, shape: [N, C, H, W] };
    }
    case 'Pool':
      return pool(x, n);
    case 'GlobalPool': {
      const [N, C, H, W] = x.shape;
      const out = new Float64Array(N * C);
      for (let i = 0; i < N * C; i++) {
        const win = x.data.subarray(i * H * W, (i + 1) * H * W);
        out[i] = n.mode === 'max' ? Math.max(...win) : win.reduce((a, v) => a + v, 0) / (H * W);
      }
      return { data: out, shape: n.keepDims ? [N, C, 1, 1] : [N, C] };
    }
    case 'Pad': {
      const [N, C, H, W] = x.shape;
      const [t, l, b, r] = n.pads;
      const shape = [N, C, H + t + b, W + l + r];
      const out = new Float64Array(shape.reduce((p, d) => p * d, 1)).fill(n.value);
      for (let i = 0; i < N; i++)
        for (let c = 0; c < C; c++)
          for (let y = 0; y < H; y++) for (let z = 0; z < W; z++) out[at4(shape, i, c, y + t, z + l)] = x.data[at4(x.shape, i, c, y, z)];
      return { data: out, shape };
    }
    case 'Flatten': {
      if (x.shape.length === 2) return x;
      const [N, C, H, W] = x.shape;
      const out = new Float64Array(x.data.length);
      for (let i = 0; i < N; i++)
        for (let c = 0; c < C; c++)
          for (let p = 0; p < H * W; p++) out[i * C * H * W + (n.order === 'chw' ? c * H * W + p : p * C + c)] = x.data[(i * C + c) * H * W + p];
      return { data: out, shape: [N, C * H * W] };
    }
    case 'Dense': {
      const [N, F] = x.shape;
      const out = new Float64Array(N * n.units);
      for (let i = 0; i < N; i++)
        for (let o = 0; o < n.units; o++) {
          let s = n.bias ? n.bias[o] : 0;
          for (let f = 0; f < F; f++) s += n.weight[o * F + f] * x.data[i * F + f];
          out[i * n.units + o] = s;
        }
      return { data: out, shape: [N, n.units] };
    }
  }
}

/** The graph's output for NHWC images [N, H, W, C], in float64, by the definitions alone. */
export function referenceForward(graph: ModelGraph, images: Float32Array, n: number): Float64Array {
  const input = graph.nodes.find((x) => x.op === 'Input')! as Extract<Node, { op: 'Input' }>;
  const [C, H, W] = input.shape;
  const nchw = new Float64Array(images.length);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) nchw[((i * C + c) * H + y) * W + x] = images[((i * H + y) * W + x) * C + c];
  const values = new Map<string, T>();
  for (const node of graph.nodes) {
    values.set(node.name, evalNode(node, node.op === 'Input' ? [{ data: nchw, shape: [n, C, H, W] }] : node.inputs.map((i) => values.get(i)!)));
  }
  return values.get(graph.output)!.data;
}
