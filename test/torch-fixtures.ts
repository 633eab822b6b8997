/**
 * The PyTorch fixtures (ONNX files exported by torch.onnx.export with their inputs and logits) and
 * the graph oracles the tests that use them share: where the fixtures are, generating the
 * full-width torchvision ones when torch is present, reading .npy files, random kept channels, the
 * zero-filter model of a cut and a cost count of its own over a graph's arrays.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Rng } from '../src/core/rng.js';
import { type GraphAnalysis, keptIndices } from '../src/model/ir/analyze.js';
import type { ModelGraph, Node } from '../src/model/ir/graph.js';
import { decodeOnnxModel } from '../src/model/onnx-proto.js';
import { ROOT } from './helpers.js';

export const SMALL = join(ROOT, 'test/fixtures/onnx');
export const LARGE = join(ROOT, '.tmp/torch-fixtures');
/** More architectures, only when generated (`scripts/torch-fixtures.py --set extra --out .tmp/torch-fixtures-extra`). */
export const EXTRA = join(ROOT, '.tmp/torch-fixtures-extra');
export const PYTHON = '/usr/bin/python3';
export const CI = process.env.CI === 'true';

export function torchAvailable(): boolean {
  return existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
}

/** The large fixtures, generated once when torch is present; null (with the reason) when not. */
export function largeFixtures(): string | null {
  const want = ['resnet18', 'mobilenet_v2', 'squeezenet1_1', 'mobilenet_v3_small', 'efficientnet_b0'];
  if (want.every((n) => existsSync(join(LARGE, `${n}.logits.npy`)))) return null;
  if (!torchAvailable()) {
    if (CI) throw new Error(`CI=true but ${PYTHON} cannot import torch and torchvision (Debian: python3-torchvision)`);
    return `torch/torchvision not importable by ${PYTHON}: full-width torchvision fixtures skipped`;
  }
  const r = spawnSync('nice', ['-n', '10', PYTHON, 'scripts/torch-fixtures.py', '--set', 'large', '--out', LARGE], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/torch-fixtures.py failed:\n${r.stderr}`);
  return null;
}
export const largeSkip = largeFixtures();

export interface Fixture {
  readonly name: string;
  readonly dir: string;
}
export const fixtureNames = (dir: string): Fixture[] =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.onnx'))
        .map((f) => ({ name: f.slice(0, -5), dir }))
    : [];
export const SMALL_FIXTURES = fixtureNames(SMALL);
export const LARGE_FIXTURES = largeSkip ? [] : fixtureNames(LARGE);
export const EXTRA_FIXTURES = fixtureNames(EXTRA);

/** A float32 .npy file (numpy's format: magic, header length, a Python-dict header, raw data). */
export function readNpy(path: string): { shape: number[]; data: Float32Array } {
  const b = readFileSync(path);
  assert.equal(b.toString('latin1', 1, 6), 'NUMPY');
  const major = b[6];
  const headerLen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + headerLen);
  assert.match(header, /'descr': '<f4'/);
  assert.match(header, /'fortran_order': False/);
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const raw = b.subarray(start + headerLen);
  return { shape, data: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) };
}

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Random kept channels per group: between `minRatio` of them (at least 1) and all, a random subset, ascending. */
export function randomKeep(a: GraphAnalysis, rng: Rng, minRatio = 0): number[][] {
  return a.groups.map((g) => {
    const lo = Math.max(1, Math.ceil(minRatio * g.channels));
    const n = lo + rng.int(g.channels - lo + 1);
    const order = range(g.channels);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order.slice(0, n).sort((p, q) => p - q);
  });
}

/**
 * The graph with every weight that reads a channel `keep` drops set to zero (Conv with groups 1 and
 * Dense input columns): the dropped channels then contribute nothing, so cutting them must not
 * change the logits beyond rounding.
 */
export function zeroDropped(a: GraphAnalysis, keep: readonly (readonly number[])[]): ModelGraph {
  const all = a.groups.map((g) => range(g.channels));
  const nodes = a.graph.nodes.map((n, i): Node => {
    if (!((n.op === 'Conv' && n.groups === 1) || n.op === 'Dense')) return n;
    const ch = a.channels[a.inputs[i][0]];
    const kept = new Set(keptIndices(a, ch, keep));
    const dropped = keptIndices(a, ch, all).filter((k) => !kept.has(k));
    const cin = keptIndices(a, ch, all).length;
    const per = n.weight.length / (a.shapes[i][0] * cin); // kh*kw for a conv, 1 for a dense
    const w = Float32Array.from(n.weight);
    const out = n.op === 'Dense' ? n.units : a.shapes[i][0];
    for (let o = 0; o < out; o++) for (const k of dropped) w.fill(0, (o * cin + k) * per, (o * cin + k + 1) * per);
    return { ...n, weight: w };
  });
  return { ...a.graph, nodes };
}

/** MACs and params counted from the cut graph's arrays and a spatial walk of its own (docs/flops.md's convention). */
export function countCost(g: ModelGraph): { macs: number; params: number } {
  const hw = new Map<string, [number, number]>();
  let macs = 0;
  let params = 0;
  const out = (size: number, k: number, s: number, p0: number, p1: number, d: number, ceil: boolean): number => {
    const span = (size + p0 + p1 - d * (k - 1) - 1) / s;
    let o = (ceil ? Math.ceil(span) : Math.floor(span)) + 1;
    if (ceil && (o - 1) * s >= size + p0) o--;
    return o;
  };
  for (const n of g.nodes) {
    // The largest input map (a squeeze-and-excitation Mul may read its [C, 1, 1] gate first).
    const [h, w] = n.op === 'Input' ? [n.shape[1], n.shape[2]] : n.inputs.map((i) => hw.get(i) ?? [1, 1]).reduce((p, q) => (q[0] * q[1] > p[0] * p[1] ? q : p));
    let next: [number, number] = [h, w];
    if (n.op === 'Conv' || n.op === 'Pool') {
      const d = n.op === 'Conv' ? n.dilations : ([1, 1] as const);
      const ceil = n.op === 'Pool' && n.ceilMode;
      next = [out(h, n.kernel[0], n.strides[0], n.pads[0], n.pads[2], d[0], ceil), out(w, n.kernel[1], n.strides[1], n.pads[1], n.pads[3], d[1], ceil)];
    }
    if (n.op === 'Pad') next = [h + n.pads[0] + n.pads[2], w + n.pads[1] + n.pads[3]];
    if (n.op === 'GlobalPool' || n.op === 'Flatten' || n.op === 'Dense') next = [1, 1];
    hw.set(n.name, next);
    if (n.op === 'Conv') {
      macs += n.weight.length * next[0] * next[1];
      params += n.weight.length + (n.bias?.length ?? 0);
    }
    if (n.op === 'Dense') {
      macs += n.weight.length;
      params += n.weight.length + (n.bias?.length ?? 0);
    }
    if (n.op === 'BatchNormalization') params += 4 * n.scale.length;
  }
  return { macs, params };
}

export interface DecodedDim {
  readonly dim_param?: string;
  readonly dim_value?: number;
}
/** An ONNX model's input name, input and output dims, and parameter count (float initializers with a shape). */
export function onnxSummary(bytes: Uint8Array): { input: string; inDims: DecodedDim[]; outDims: DecodedDim[]; params: number } {
  const m = decodeOnnxModel(bytes) as {
    graph: {
      input: { name: string; type: { tensor_type: { shape: { dim: DecodedDim[] } } } }[];
      output: { type: { tensor_type: { shape: { dim: DecodedDim[] } } } }[];
      initializer: { dims?: number[]; data_type: number }[];
    };
  };
  const params = m.graph.initializer
    .filter((t) => t.data_type === 1 && (t.dims?.length ?? 0) > 0)
    .reduce((s, t) => s + (t.dims ?? []).reduce((p, d) => p * d, 1), 0);
  return { input: m.graph.input[0].name, inDims: m.graph.input[0].type.tensor_type.shape.dim, outDims: m.graph.output[0].type.tensor_type.shape.dim, params };
}
