/** Dense ([out, in] weights, ONNX Gemm with transB): a producer; reads features (after Flatten or global pooling). */
import type { DenseNode } from '../graph.js';
import { gather3, gatherVector, unsupported } from './common.js';
import type { Rule } from './types.js';

export const dense: Rule<DenseNode> = {
  op: 'Dense',
  shape(node, [x]) {
    if (x?.length !== 1) throw unsupported(node, `reads a tensor of shape [${x?.join(', ')}]; expected features [F] (Flatten or global pooling first)`);
    if (node.weight.length !== node.units * x[0]) throw unsupported(node, `has ${node.weight.length} weights; expected ${node.units} x ${x[0]}`);
    return [node.units];
  },
  channels(node, _ins, c) {
    return { segs: [c.newSet(node.units)], flat: null };
  },
  owns: true,
  cost(node, { cin, cout }) {
    const w = cin[0] * cout;
    return { macs: w, params: w + (node.bias ? cout : 0) };
  },
  cut(node, { inShapes, inKeep, outKeep }) {
    return {
      ...node,
      units: outKeep.length,
      weight: gather3(node.weight, inShapes[0][0], 1, outKeep, inKeep[0]),
      bias: node.bias ? gatherVector(node.bias, outKeep) : null,
    };
  },
  onnx(node, { b, ins, inShapes }) {
    const weight = b.floats(`${node.name}.weight`, [node.units, inShapes[0][0]], node.weight);
    const bias = node.bias ? [b.floats(`${node.name}.bias`, [node.units], node.bias)] : [];
    return b.one('Gemm', node.name, [ins[0], weight, ...bias], { transB: { i: 1 } });
  },
  filters: (node) => node.weight,
};
