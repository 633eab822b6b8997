/**
 * The image input: its channels are a fixed set (never pruned). In ONNX it is the graph input,
 * transposed to NCHW when the model takes NHWC, so the exported model takes what the source took.
 */
import type { InputNode } from '../graph.js';
import { zeroCost } from './common.js';
import type { Rule } from './types.js';

export const input: Rule<InputNode> = {
  op: 'Input',
  shape: (node) => node.shape,
  channels(node, _ins, c) {
    const seg = c.newSet(node.shape[0]);
    c.fix([seg]);
    return { segs: [seg], flat: null };
  },
  owns: false,
  cost: () => zeroCost,
  cut: (node) => ({ ...node }),
  onnx(_node, { b, graph }) {
    const name = graph.source.inputName;
    return graph.inputLayout === 'NHWC' ? b.one('Transpose', `${name}.nchw`, [name], { perm: { ints: [0, 3, 1, 2] } }) : name;
  },
};
