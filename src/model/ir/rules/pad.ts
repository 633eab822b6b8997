/** Constant padding of H and W: channels pass through. */
import type { PadNode } from '../graph.js';
import { featureMap, zeroCost } from './common.js';
import type { Rule } from './types.js';

export const pad: Rule<PadNode> = {
  op: 'Pad',
  shape(node, ins) {
    const [c, h, w] = featureMap(node, ins[0]);
    const [t, l, b, r] = node.pads;
    return [c, h + t + b, w + l + r];
  },
  channels(_node, [x], c) {
    if (x.flat) c.fail('reads the features of a Flatten; expected a feature map');
    return x;
  },
  owns: false,
  cost: () => zeroCost,
  cut: (node) => ({ ...node }),
  onnx(node, { b, ins }) {
    const [t, l, bt, r] = node.pads;
    const pads = b.int64s(`${node.name}.pads`, [0, 0, t, l, 0, 0, bt, r]);
    return b.one('Pad', node.name, [ins[0], pads, ...(node.value !== 0 ? [b.scalar(`${node.name}.value`, node.value)] : [])]);
  },
};
