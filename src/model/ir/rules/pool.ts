/** Max or average pooling over windows: channels pass through. */
import type { PoolNode } from '../graph.js';
import { featureMap, windowOut, zeroCost } from './common.js';
import type { Rule } from './types.js';

export const pool: Rule<PoolNode> = {
  op: 'Pool',
  shape(node, ins) {
    const [c, h, w] = featureMap(node, ins[0]);
    const [t, l, b, r] = node.pads;
    return [c, windowOut(h, node.kernel[0], node.strides[0], t, b, 1, node.ceilMode), windowOut(w, node.kernel[1], node.strides[1], l, r, 1, node.ceilMode)];
  },
  channels(_node, [x], c) {
    if (x.flat) c.fail('reads the features of a Flatten; expected a feature map');
    return x;
  },
  owns: false,
  cost: () => zeroCost,
  cut: (node) => ({ ...node }),
  onnx(node, { b, ins }) {
    const attrs = { kernel_shape: { ints: node.kernel }, strides: { ints: node.strides }, pads: { ints: node.pads }, ceil_mode: { i: node.ceilMode ? 1 : 0 } };
    if (node.mode === 'max') return b.one('MaxPool', node.name, ins, attrs);
    return b.one('AveragePool', node.name, ins, { ...attrs, count_include_pad: { i: node.countIncludePad ? 1 : 0 } });
  },
};
