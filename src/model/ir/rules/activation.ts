/** Element-wise activations: channels pass through; ONNX operators per kind (HardSwish and SiLU spelled out for opset 13). */
import type { ActivationNode } from '../graph.js';
import { sameShape, zeroCost } from './common.js';
import type { Rule } from './types.js';

export const activation: Rule<ActivationNode> = {
  op: 'Activation',
  shape: sameShape,
  channels: (_node, [x]) => x,
  owns: false,
  cost: () => zeroCost,
  cut: (node) => ({ ...node }),
  onnx(node, { b, ins, inShapes }) {
    const x = ins[0];
    const fn = node.fn;
    const one = (op: string, attrs?: Parameters<typeof b.one>[3], extra: string[] = []) => b.one(op, node.name, [x, ...extra], attrs);
    switch (fn.kind) {
      case 'relu':
        return one('Relu');
      case 'clip':
        return one('Clip', undefined, [b.scalar(`${node.name}.min`, fn.min), b.scalar(`${node.name}.max`, fn.max)]);
      case 'leakyRelu':
        return one('LeakyRelu', { alpha: { f: fn.alpha } });
      case 'elu':
        return one('Elu', { alpha: { f: fn.alpha } });
      case 'sigmoid':
        return one('Sigmoid');
      case 'hardSigmoid':
        return one('HardSigmoid', { alpha: { f: fn.alpha }, beta: { f: fn.beta } });
      case 'hardSwish':
        // x · relu6(x + 3) / 6 = x · HardSigmoid(x; 1/6, 1/2) (ONNX HardSwish needs opset 14).
        return b.one('Mul', node.name, [x, b.one('HardSigmoid', node.name, [x], { alpha: { f: 1 / 6 }, beta: { f: 0.5 } })]);
      case 'silu':
        return b.one('Mul', node.name, [x, b.one('Sigmoid', node.name, [x])]);
      case 'tanh':
        return one('Tanh');
      case 'selu':
        return one('Selu', { alpha: { f: 1.6732632423543772 }, gamma: { f: 1.0507009873554805 } });
      case 'softplus':
        return one('Softplus');
      case 'softsign':
        return one('Softsign');
      case 'softmax':
        // Over the channel (feature) axis, which is axis 1 in NCHW and [N, F] alike.
        return one('Softmax', { axis: { i: inShapes[0].length === 1 ? -1 : 1 } });
    }
  },
};
