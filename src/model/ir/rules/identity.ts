/** Identity (Dropout at inference): its output is its input, in ONNX too. */
import type { IdentityNode } from '../graph.js';
import { sameShape, zeroCost } from './common.js';
import type { Rule } from './types.js';

export const identity: Rule<IdentityNode> = {
  op: 'Identity',
  shape: sameShape,
  channels: (_node, [x]) => x,
  owns: false,
  cost: () => zeroCost,
  cut: (node) => ({ ...node }),
  onnx: (_node, { ins }) => ins[0],
};
