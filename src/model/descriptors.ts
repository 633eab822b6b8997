/**
 * Plain-data facts per search-space group for learning controllers (AMC's layer embedding), so
 * src/controllers never imports the model. Each group is described by its first producer layer
 * (the group's id); params and MACs sum every layer the group owns, unpruned.
 */
import type { GroupDescriptor } from '../controllers/types.js';
import type { Analysis } from './analysis.js';
import { channelCounter, layerCosts } from './flops.js';

export function groupDescriptors(a: Analysis): GroupDescriptor[] {
  const costs = new Map(layerCosts(a, null).map((c) => [c.name, c]));
  const byName = new Map(a.layers.map((l) => [l.name, l]));
  const count = channelCounter(a, null);
  // Positions of the largest feature map: a layer's stride is reported as its downsampling
  // factor relative to it (the analysis keeps output positions, not the input's).
  const largest = Math.max(1, ...a.layers.filter((l) => l.kind === 'conv' || l.kind === 'depthwise' || l.kind === 'separable').map((l) => l.positions));
  return a.groups.map((g) => {
    const l = byName.get(g.id);
    const kind = l?.kind === 'depthwise' || l?.kind === 'separable' || l?.kind === 'dense' ? l.kind : 'conv';
    const own = g.layers.map((n) => costs.get(n)).filter((c) => c !== undefined);
    return {
      kind,
      inChannels: l?.input ? count(l.input) : 0,
      outChannels: g.channels,
      stride: l && l.kind !== 'dense' ? Math.round(Math.sqrt(largest / Math.max(1, l.positions))) : 1,
      kernel: l ? l.kernel[0] * l.kernel[1] : 1,
      params: own.reduce((s, c) => s + c.params, 0),
      macs: own.reduce((s, c) => s + c.macs, 0),
    };
  });
}
