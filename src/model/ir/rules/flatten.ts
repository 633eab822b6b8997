/**
 * Flatten [C, H, W] -> [C·H·W] in the node's `order`: the channels become features, each channel
 * H·W of them, so a Dense after it is cut along the features of the kept channels.
 */
import type { FlattenNode } from '../graph.js';
import { zeroCost } from './common.js';
import type { Rule } from './types.js';

export const flatten: Rule<FlattenNode> = {
  op: 'Flatten',
  shape: (_node, [x]) => [x.reduce((a, d) => a * d, 1)],
  channels(node, [x], c, shapes) {
    if (shapes.ins[0].length === 1) return x;
    if (x.flat) c.fail('flattens the features of a Flatten again');
    return { segs: x.segs, flat: { spatial: shapes.ins[0][1] * shapes.ins[0][2], order: node.order } };
  },
  owns: false,
  cost: () => zeroCost,
  cut: (node) => ({ ...node }),
  onnx(node, { b, ins, inShapes }) {
    const x = inShapes[0].length === 3 && node.order === 'hwc' ? b.one('Transpose', `${node.name}.nhwc`, ins, { perm: { ints: [0, 2, 3, 1] } }) : ins[0];
    return b.one('Flatten', node.name, [x], { axis: { i: 1 } });
  },
};
