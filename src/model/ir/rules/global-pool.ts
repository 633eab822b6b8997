/** Global average/max pooling: channels pass through, [C, H, W] -> [C] (or [C, 1, 1] with keepDims). */
import type { GlobalPoolNode } from '../graph.js';
import { featureMap, zeroCost } from './common.js';
import type { Rule } from './types.js';

export const globalPool: Rule<GlobalPoolNode> = {
  op: 'GlobalPool',
  shape(node, ins) {
    const [c] = featureMap(node, ins[0]);
    return node.keepDims ? [c, 1, 1] : [c];
  },
  channels(_node, [x], c) {
    if (x.flat) c.fail('reads the features of a Flatten; expected a feature map');
    return x;
  },
  owns: false,
  cost: () => zeroCost,
  cut: (node) => ({ ...node }),
  onnx(node, { b, ins }) {
    const pooled = b.one(node.mode === 'max' ? 'GlobalMaxPool' : 'GlobalAveragePool', node.name, ins);
    return node.keepDims ? pooled : b.one('Flatten', `${node.name}.flat`, [pooled], { axis: { i: 1 } });
  },
};
