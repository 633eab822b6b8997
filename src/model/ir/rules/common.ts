/** Array and shape helpers shared by the rules. */
import { AutopruneError, ErrorCodes, quote } from '../../../core/errors.js';
import type { Node } from '../graph.js';
import type { Channels, Shape } from './types.js';

export const zeroCost = { macs: 0, params: 0 } as const;

export function unsupported(node: Node, what: string): AutopruneError {
  return new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Node \`${node.name}\` (${node.op}) ${what}`);
}

/** The input as a feature map [C, H, W]; anything else is an error naming the node. */
export function featureMap(node: Node, s: Shape | undefined): readonly [number, number, number] {
  if (s?.length !== 3) throw unsupported(node, `reads a tensor of shape ${quote(s)}; expected a feature map [C, H, W]`);
  return s as readonly [number, number, number];
}

/** Output size of a sliding window (floor, or ceil with `ceil`). */
export function windowOut(size: number, kernel: number, stride: number, padBegin: number, padEnd: number, dilation = 1, ceil = false): number {
  const span = size + padBegin + padEnd - dilation * (kernel - 1) - 1;
  return (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
}

export const isAll = (idx: readonly number[], n: number): boolean => idx.length === n && idx.every((v, i) => v === i);

/** Rows `keep` of a [rows, rowSize] array, as a fresh array. */
export function gatherRows(data: Float32Array, rowSize: number, keep: readonly number[]): Float32Array {
  const out = new Float32Array(keep.length * rowSize);
  keep.forEach((r, i) => out.set(data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return out;
}

/** [O, I, inner] -> [outKeep, inKeep, inner], as a fresh array. */
export function gather3(data: Float32Array, i: number, inner: number, outKeep: readonly number[], inKeep: readonly number[]): Float32Array {
  const out = new Float32Array(outKeep.length * inKeep.length * inner);
  let at = 0;
  for (const o of outKeep) {
    for (const c of inKeep) {
      const from = (o * i + c) * inner;
      out.set(data.subarray(from, from + inner), at);
      at += inner;
    }
  }
  return out;
}

export const gatherVector = (v: Float32Array, keep: readonly number[]): Float32Array => Float32Array.from(keep, (k) => v[k]);

/** Same channel structure: the same segment sizes and the same flattening. */
export function sameStructure(a: Channels, b: Channels): boolean {
  return (
    (a.flat === null) === (b.flat === null) &&
    (a.flat === null || (a.flat.spatial === b.flat!.spatial && a.flat.order === b.flat!.order)) &&
    a.segs.length === b.segs.length &&
    a.segs.every((s, i) => s.size === b.segs[i].size)
  );
}

export const describeChannels = (t: Channels): string => `[${t.segs.map((s) => s.size).join('+')}]`;

/** A pass-through node: same shape as its first input. */
export const sameShape = (_node: Node, ins: readonly Shape[]): Shape => ins[0];
