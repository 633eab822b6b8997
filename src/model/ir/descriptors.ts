/**
 * The graph form of ../descriptors.ts: plain-data facts per search-space group for learning
 * controllers (AMC's layer embedding), read from the group's first producer node (the group's id).
 * A producer's stride is its downsampling relative to the graph input (input H·W / output H·W).
 */
import type { GroupDescriptor } from '../../controllers/types.js';
import type { GraphAnalysis } from './analyze.js';
import { nodeCosts } from './cost.js';

export function graphGroupDescriptors(a: GraphAnalysis): GroupDescriptor[] {
  const costs = new Map(nodeCosts(a, null).map((c) => [c.name, c]));
  const index = new Map(a.graph.nodes.map((n, i) => [n.name, i]));
  const input = a.graph.nodes[index.get(a.graph.input) ?? 0];
  const inPositions = input.op === 'Input' ? input.shape[1] * input.shape[2] : 1;
  return a.groups.map((g) => {
    const i = index.get(g.id);
    const node = i === undefined ? undefined : a.graph.nodes[i];
    const cost = node && costs.get(node.name);
    const own = g.layers.map((n) => costs.get(n)).filter((c) => c !== undefined);
    const shape = i === undefined ? [] : a.shapes[i];
    const positions = shape.length === 3 ? shape[1] * shape[2] : 1;
    const depthwise = node?.op === 'Conv' && node.groups > 1 && node.groups === cost?.inChannels;
    return {
      kind: node?.op === 'Dense' ? 'dense' : depthwise ? 'depthwise' : 'conv',
      inChannels: cost?.inChannels ?? 0,
      outChannels: g.channels,
      stride: node?.op === 'Dense' ? 1 : Math.max(1, Math.round(Math.sqrt(inPositions / Math.max(1, positions)))),
      kernel: node?.op === 'Conv' ? node.kernel[0] * node.kernel[1] : 1,
      params: own.reduce((s, c) => s + c.params, 0),
      macs: own.reduce((s, c) => s + c.macs, 0),
    };
  });
}
