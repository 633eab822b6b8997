/**
 * Conv (OIHW weights, `groups`). Channel coupling by its grouping:
 * - groups 1: a producer, its output channels a new set;
 * - depthwise (groups = input channels = output channels): passes its input's channels through,
 *   cut along them (one filter per channel);
 * - any other grouping (a depthwise multiplier > 1, grouped convs): input and output channels are
 *   fixed, since a cut would have to keep whole groups.
 */
import type { ConvNode } from '../graph.js';
import { featureMap, gather3, gatherRows, gatherVector, isAll, unsupported, windowOut } from './common.js';
import type { Channels, Rule } from './types.js';

const outChannels = (node: ConvNode, cin: number): number => node.weight.length / ((cin / node.groups) * node.kernel[0] * node.kernel[1]);

/** Depthwise with multiplier 1: one filter per channel, channels pass through. */
function isChannelwise(node: ConvNode, cin: number): boolean {
  return node.groups > 1 && node.groups === cin && outChannels(node, cin) === cin;
}

export const conv: Rule<ConvNode> = {
  op: 'Conv',
  shape(node, ins) {
    const [c, h, w] = featureMap(node, ins[0]);
    if (c % node.groups !== 0) throw unsupported(node, `has ${node.groups} groups for ${c} input channels; expected a divisor`);
    const o = outChannels(node, c);
    if (!Number.isInteger(o) || o % node.groups !== 0) throw unsupported(node, `has ${node.weight.length} weights, which do not fit ${c} input channels`);
    const [t, l, b, r] = node.pads;
    return [o, windowOut(h, node.kernel[0], node.strides[0], t, b, node.dilations[0]), windowOut(w, node.kernel[1], node.strides[1], l, r, node.dilations[1])];
  },
  channels(node, [x], c, shapes): Channels {
    if (x.flat) c.fail('reads the features of a Flatten; expected a feature map');
    const cin = shapes.ins[0][0];
    const out = shapes.out[0];
    if (node.groups === 1) return { segs: [c.newSet(out)], flat: null };
    if (isChannelwise(node, cin)) return x;
    c.fix(x.segs);
    const seg = c.newSet(out);
    c.fix([seg]);
    return { segs: [seg], flat: null };
  },
  owns: true,
  cost(node, { inShapes, outShape, cin, cout }) {
    const positions = outShape[1] * outShape[2];
    const k = node.kernel[0] * node.kernel[1];
    // A depthwise conv reads one input channel per output channel, at any kept width.
    const perGroupIn = node.groups === 1 ? cin[0] : node.groups === inShapes[0][0] ? 1 : cin[0] / node.groups;
    const w = k * perGroupIn * cout;
    return { macs: positions * w, params: w + (node.bias ? cout : 0) };
  },
  cut(node, { inShapes, outShape, inKeep, outKeep }) {
    const cin = inShapes[0][0];
    const cout = outShape[0];
    const k = node.kernel[0] * node.kernel[1];
    const bias = node.bias ? gatherVector(node.bias, outKeep) : null;
    if (node.groups === 1) return { ...node, weight: gather3(node.weight, cin, k, outKeep, inKeep[0]), bias };
    if (isAll(inKeep[0], cin) && isAll(outKeep, cout)) return { ...node, weight: node.weight.slice(), bias };
    // Depthwise (channel-wise): one [1, kh, kw] filter per kept channel, one group each.
    return { ...node, weight: gatherRows(node.weight, k, outKeep), bias, groups: outKeep.length };
  },
  onnx(node, { b, ins, inShapes, outShape }) {
    const cin = inShapes[0][0];
    const co = outShape[0];
    const weight = b.floats(`${node.name}.weight`, [co, cin / node.groups, node.kernel[0], node.kernel[1]], node.weight);
    const bias = node.bias ? [b.floats(`${node.name}.bias`, [co], node.bias)] : [];
    return b.one('Conv', node.name, [ins[0], weight, ...bias], {
      kernel_shape: { ints: node.kernel },
      strides: { ints: node.strides },
      pads: { ints: node.pads },
      dilations: { ints: node.dilations },
      group: { i: node.groups },
    });
  },
  filters: (node) => (node.groups === 1 ? node.weight : null),
};
