/**
 * Element-wise product, one side possibly a per-channel gate [C, 1, 1] (squeeze-and-excitation):
 * its operands' channels are one channel each, index by index, like Add's.
 */
import type { MulNode } from '../graph.js';
import { joinElementwise } from './add.js';
import { unsupported, zeroCost } from './common.js';
import type { Rule } from './types.js';

export const mul: Rule<MulNode> = {
  op: 'Mul',
  shape(node, ins) {
    const out = ins.reduce((a, s) => (s.length === a.length && s.every((d, i) => d >= a[i]) ? s : a));
    for (const s of ins) {
      if (s.length !== out.length || s[0] !== out[0] || s.some((d, i) => i > 0 && d !== out[i] && d !== 1)) {
        throw unsupported(
          node,
          `multiplies shapes ${ins.map((x) => `[${x.join(', ')}]`).join(' and ')}; expected equal shapes or a per-channel [C, 1, 1] gate`,
        );
      }
    }
    return out;
  },
  channels: (_node, ins, c) => joinElementwise(ins, c),
  owns: false,
  cost: () => zeroCost,
  cut: (node) => ({ ...node }),
  onnx: (node, { b, ins }) => ins.slice(1).reduce((acc, x) => b.one('Mul', node.name, [acc, x]), ins[0]),
};
