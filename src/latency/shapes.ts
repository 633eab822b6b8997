/**
 * Layer shapes for the latency table, read from the channel analysis (src/model/analysis.ts). This is
 * the one place that knows the model representation: `layerShapes` (a candidate's shapes) and
 * `shapeSpace` (every shape a study can produce on a channel grid) are all the table needs.
 */
import { channelLevels } from '../controllers/common.js';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import type { Candidate, SearchSpace } from '../core/space.js';
import type { Analysis, LayerInfo, TensorChannels } from '../model/analysis.js';
import { channelCounter } from '../model/flops.js';
import { pair } from '../model/topology.js';
import { latencyShapeKey } from '../store/latency.js';
import type { LatencyShape } from '../store/types.js';

/** One timed unit of a model: a layer, or half of a separable conv. */
export interface LayerShape {
  readonly layer: string;
  readonly shape: LatencyShape;
}

/** What a convolution-like layer needs besides its channels: input size, kernel, stride, padding. */
interface Geometry {
  readonly h: number;
  readonly w: number;
  readonly outH: number;
  readonly outW: number;
  readonly stride: [number, number];
  readonly pad: 'same' | 'valid';
}

const SPATIAL_OPS = new Set(['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'MaxPooling2D', 'AveragePooling2D']);

/** Input and output spatial size of every conv-like layer, propagated from the input shape (Keras's rules). */
function geometries(a: Analysis): Map<string, Geometry> {
  const size = new Map<string, [number, number] | null>();
  const out = new Map<string, Geometry>();
  for (const node of a.graph.nodes) {
    const cfg = node.config;
    if (node.className === 'InputLayer') {
      const s = cfg.batch_input_shape as (number | null)[] | undefined;
      size.set(node.name, s && s.length === 4 ? [Number(s[1]), Number(s[2])] : null);
      continue;
    }
    const input = size.get(node.inputs[0]) ?? null;
    if (SPATIAL_OPS.has(node.className) && input) {
      const pool = node.className.endsWith('Pooling2D');
      const k = pool ? pair(cfg.pool_size, 2) : pair(cfg.kernel_size, 1);
      const stride = pool ? pair(cfg.strides ?? cfg.pool_size, 2) : pair(cfg.strides, 1);
      const pad = cfg.padding === 'same' ? 'same' : 'valid';
      const o = (n: number, i: 0 | 1) => (pad === 'same' ? Math.ceil(n / stride[i]) : Math.floor((n - k[i]) / stride[i]) + 1);
      const g: Geometry = { h: input[0], w: input[1], outH: o(input[0], 0), outW: o(input[1], 1), stride, pad };
      out.set(node.name, g);
      size.set(node.name, [g.outH, g.outW]);
    } else if (node.className === 'ZeroPadding2D' && input) {
      const [[t, b], [l, r]] = cfg.padding as [number, number][];
      size.set(node.name, [input[0] + t + b, input[1] + l + r]);
    } else if (node.className === 'Flatten' || node.className.startsWith('Global') || node.className === 'Dense') {
      size.set(node.name, null);
    } else {
      size.set(node.name, input);
    }
  }
  return out;
}

function geometryOf(geo: Map<string, Geometry>, l: LayerInfo): Geometry {
  const g = geo.get(l.name);
  // The analysis counts MACs at Ho*Wo positions: a disagreement means the propagation above is wrong.
  if (!g || g.outH * g.outW !== l.positions) {
    throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Cannot tell the feature-map size of layer \`${l.name}\` for the latency table`);
  }
  return g;
}

/** The timed units of `l` at `cin` input and `cout` output channels (none for layers the table does not time). */
function unitsOf(l: LayerInfo, geo: Map<string, Geometry>, cin: number, cout: number): LatencyShape[] {
  const unit = { kh: 1, kw: 1, sh: 1, sw: 1, pad: 'valid' as const, groups: 1 };
  switch (l.kind) {
    case 'conv': {
      const g = geometryOf(geo, l);
      return [{ op: 'conv', cin, cout, h: g.h, w: g.w, kh: l.kernel[0], kw: l.kernel[1], sh: g.stride[0], sw: g.stride[1], pad: g.pad, groups: 1 }];
    }
    case 'depthwise': {
      const g = geometryOf(geo, l);
      const k = { kh: l.kernel[0], kw: l.kernel[1], sh: g.stride[0], sw: g.stride[1], pad: g.pad };
      return [{ op: 'conv', cin, cout: cin * l.depthMultiplier, h: g.h, w: g.w, ...k, groups: cin }];
    }
    case 'separable': {
      const g = geometryOf(geo, l);
      const mid = cin * l.depthMultiplier;
      const k = { kh: l.kernel[0], kw: l.kernel[1], sh: g.stride[0], sw: g.stride[1], pad: g.pad };
      return [
        { op: 'conv', cin, cout: mid, h: g.h, w: g.w, ...k, groups: cin },
        { op: 'conv', cin: mid, cout, h: g.outH, w: g.outW, ...unit },
      ];
    }
    case 'dense':
      return [{ op: 'dense', cin: cin * (l.input?.spatial ?? 1), cout, h: 1, w: 1, ...unit }];
    default:
      return [];
  }
}

/** Geometry depends on the model only; predictions ask for it thousands of times per proposal batch. */
const geometryCache = new WeakMap<Analysis, Map<string, Geometry>>();

/** The timed units of a candidate (null: the unpruned model), in layer order. */
export function layerShapes(a: Analysis, c: Candidate | null): LayerShape[] {
  const geo = geometryCache.get(a) ?? geometries(a);
  geometryCache.set(a, geo);
  const ch = channelCounter(a, c);
  return a.layers.flatMap((l) => unitsOf(l, geo, l.input ? ch(l.input) : 0, ch(l.output)).map((shape) => ({ layer: l.name, shape })));
}

/**
 * Channel counts of group `g` on the table's grid: the space's levels that are its minimum, its full
 * count or a multiple of `step`. Counts between grid points are interpolated (table.ts).
 */
export function gridLevels(space: SearchSpace, g: number, step: number): number[] {
  const levels = channelLevels(space, g);
  return levels.filter((n, i) => i === 0 || i === levels.length - 1 || n % step === 0);
}

/**
 * Channel counts of group `g` on the grid of a layer's input side: `gridLevels`, and, for an engine
 * with a channel block (`align` > 1), the widths 1, 2 and 4 below each multiple of `step`, so that
 * every input kind of table.ts `inputKind` (odd, even, multiple of 4) has grid points to be
 * interpolated from: the NCHW conv's time depends on the input width's alignment, not only on its size.
 */
export function inputGridLevels(space: SearchSpace, g: number, step: number, align: number): number[] {
  const levels = channelLevels(space, g);
  if (align <= 1) return gridLevels(space, g, step);
  const near = (n: number) => [0, 1, 2, 4].some((d) => (n + d) % step === 0);
  return levels.filter((n, i) => i === 0 || i === levels.length - 1 || near(n));
}

/** Most channel-count combinations one layer may contribute (a guard against concat-heavy models). */
const MAX_COMBINATIONS = 100_000;

/**
 * Every shape a study can produce with each group on its grid levels (`gridLevels`; `inputGridLevels`
 * where the group is a layer's input), deduplicated:
 * what the table must hold before a search predicts latencies.
 */
export function shapeSpace(a: Analysis, space: SearchSpace, step: number, align = 1): LatencyShape[] {
  const geo = geometries(a);
  const seen = new Map<string, LatencyShape>();
  const outLevels = space.groups.map((_, g) => gridLevels(space, g, step));
  const inLevels = space.groups.map((_, g) => inputGridLevels(space, g, step, align));
  const groupsOf = (t: TensorChannels | null): number[] => (t ? t.segs.map((s) => a.setGroup[s.set]).filter((g) => g >= 0) : []);
  for (const l of a.layers) {
    if (unitsOf(l, geo, 1, 1).length === 0) continue;
    const inputs = new Set(groupsOf(l.input));
    const involved = [...new Set([...inputs, ...groupsOf(l.output)])];
    const levels = (g: number) => (inputs.has(g) ? inLevels[g] : outLevels[g]);
    const count = involved.reduce((n, g) => n * levels(g).length, 1);
    if (count > MAX_COMBINATIONS) {
      throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Layer \`${l.name}\` has ${count} channel combinations, too many for a latency table`);
    }
    const channels = space.groups.map((gr) => gr.channels);
    const visit = (i: number): void => {
      if (i === involved.length) {
        const ch = channelCounter(a, { channels });
        for (const s of unitsOf(l, geo, l.input ? ch(l.input) : 0, ch(l.output))) seen.set(latencyShapeKey(s), s);
        return;
      }
      for (const n of levels(involved[i])) {
        channels[involved[i]] = n;
        visit(i + 1);
      }
    };
    visit(0);
  }
  return [...seen.values()];
}
