/** BatchNormalization (inference form): passes channels through, cut along them; its name keys re-calibrated statistics. */
import type { BatchNormNode } from '../graph.js';
import { gatherVector, unsupported } from './common.js';
import type { Rule } from './types.js';

export const batchNorm: Rule<BatchNormNode> = {
  op: 'BatchNormalization',
  shape(node, [x]) {
    if (!x || x[0] !== node.mean.length) throw unsupported(node, `normalises ${node.mean.length} channels of a tensor of shape [${x?.join(', ')}]`);
    return x;
  },
  channels: (_node, [x]) => x,
  owns: true,
  // Keras convention: moving mean and variance always, gamma and beta when learned.
  cost: (node, { cout }) => ({ macs: 0, params: cout * (2 + (node.affine?.scale === false ? 0 : 1) + (node.affine?.bias === false ? 0 : 1)) }),
  cut: (node, { outKeep }) => ({
    ...node,
    scale: gatherVector(node.scale, outKeep),
    bias: gatherVector(node.bias, outKeep),
    mean: gatherVector(node.mean, outKeep),
    variance: gatherVector(node.variance, outKeep),
  }),
  onnx(node, { b, ins }) {
    const c = node.mean.length;
    const inputs = (
      [
        ['scale', node.scale],
        ['bias', node.bias],
        ['mean', node.mean],
        ['var', node.variance],
      ] as const
    ).map(([n, d]) => b.floats(`${node.name}.${n}`, [c], d));
    return b.one('BatchNormalization', node.name, [ins[0], ...inputs], { epsilon: { f: node.epsilon } });
  },
  channelScale: (node) => (node.affine && !(node.affine.scale && node.affine.bias) ? null : node.scale),
};
