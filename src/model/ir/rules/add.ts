/** Element-wise sum: its inputs' channels are one channel each, index by index (union-find). */
import type { AddNode } from '../graph.js';
import { describeChannels, sameStructure, unsupported, zeroCost } from './common.js';
import type { Channels, Coupling, Rule, Shape } from './types.js';

/** Joins the channel sets of element-wise operands index by index. */
export function joinElementwise(ins: readonly Channels[], c: Coupling): Channels {
  const [first, ...rest] = ins;
  for (const other of rest) {
    if (!sameStructure(first, other)) {
      c.fail(
        `joins tensors whose channels come from differently split sources (${describeChannels(first)} vs ${describeChannels(other)}); expected inputs with aligned channel segments`,
      );
    }
    first.segs.forEach((s, i) => c.union(s.set, other.segs[i].set));
  }
  return first;
}

export function sameShapes(node: AddNode, ins: readonly Shape[]): Shape {
  for (const s of ins)
    if (s.length !== ins[0].length || s.some((d, i) => d !== ins[0][i]))
      throw unsupported(node, `adds tensors of shapes ${ins.map((x) => `[${x.join(', ')}]`).join(' and ')}; expected equal shapes`);
  return ins[0];
}

export const add: Rule<AddNode> = {
  op: 'Add',
  shape: sameShapes,
  channels: (_node, ins, c) => joinElementwise(ins, c),
  owns: false,
  cost: () => zeroCost,
  cut: (node) => ({ ...node }),
  onnx: (node, { b, ins }) => b.one(ins.length === 2 ? 'Add' : 'Sum', node.name, ins),
};
