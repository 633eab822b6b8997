/** Concatenation along channels: the output's channel segments are its inputs', in order. */
import type { ConcatNode } from '../graph.js';
import { featureMap, unsupported, zeroCost } from './common.js';
import type { Rule } from './types.js';

export const concat: Rule<ConcatNode> = {
  op: 'Concat',
  shape(node, ins) {
    const maps = ins.map((s) => featureMap(node, s));
    for (const [, h, w] of maps) {
      if (h !== maps[0][1] || w !== maps[0][2])
        throw unsupported(node, `joins maps of sizes ${maps.map((m) => `${m[1]}x${m[2]}`).join(', ')}; expected equal H and W`);
    }
    return [maps.reduce((n, m) => n + m[0], 0), maps[0][1], maps[0][2]];
  },
  channels(_node, ins, c) {
    if (ins.some((t) => t.flat)) c.fail('joins the features of a Flatten; expected feature maps');
    return { segs: ins.flatMap((t) => t.segs), flat: null };
  },
  owns: false,
  cost: () => zeroCost,
  cut: (node) => ({ ...node }),
  onnx: (node, { b, ins }) => b.one('Concat', node.name, ins, { axis: { i: 1 } }),
};
