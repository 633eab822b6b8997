/**
 * MACs and parameter counts from topology + candidate, without building anything (docs/flops.md:
 * controllers respect a FLOPs budget before evaluation). One counter per layer kind, looked up in a
 * table (Torch-Pruning's ops-counter idea). Convention (docs/flops.md):
 *   - MACs = multiply-accumulates for ONE image, counted for Conv2D, DepthwiseConv2D,
 *     SeparableConv2D (depthwise + pointwise) and Dense only. Bias adds, BatchNorm, Add,
 *     pooling and activations count 0 (they are memory-bound and fold into the convs at deploy).
 *   - params = every weight, trainable or not (Keras `countParams`): BN counts gamma, beta,
 *     moving mean and moving variance, so a pruned model's `countParams()` equals this number.
 */
import type { Candidate } from '../core/space.js';
import type { Cost } from '../core/types.js';
import type { Analysis, LayerInfo, LayerKind, TensorChannels } from './analysis.js';

export interface LayerCost extends Cost {
  readonly name: string;
  readonly className: string;
  readonly inChannels: number;
  readonly outChannels: number;
}

type ChannelCount = (t: TensorChannels) => number;
type Counter = (l: LayerInfo, cin: number, cout: number, ch: ChannelCount) => Cost;

const zero: Counter = () => ({ macs: 0, params: 0 });
const bias = (l: LayerInfo, n: number): number => (l.useBias ? n : 0);

const COUNTERS: Record<LayerKind, Counter> = {
  conv: (l, cin, cout) => {
    const k = l.kernel[0] * l.kernel[1] * cin * cout;
    return { macs: l.positions * k, params: k + bias(l, cout) };
  },
  separable: (l, cin, cout) => {
    const dw = l.kernel[0] * l.kernel[1] * cin * l.depthMultiplier;
    const pw = cin * l.depthMultiplier * cout;
    return { macs: l.positions * (dw + pw), params: dw + pw + bias(l, cout) };
  },
  depthwise: (l, cin) => {
    const dw = l.kernel[0] * l.kernel[1] * cin * l.depthMultiplier;
    return { macs: l.positions * dw, params: dw + bias(l, cin * l.depthMultiplier) };
  },
  dense: (l, cin, cout) => {
    const features = cin * (l.input?.spatial ?? 1);
    return { macs: l.positions * features * cout, params: features * cout + bias(l, cout) };
  },
  bn: (l, _cin, cout) => ({ macs: 0, params: l.bnPerChannel * cout }),
  input: zero,
  add: zero,
  concat: zero,
  passthrough: zero,
  flatten: zero,
  gap: zero,
};

/** Channels kept per set for a candidate (fixed sets keep all). */
export function channelCounter(a: Analysis, c: Candidate | null): ChannelCount {
  return (t) => {
    let n = 0;
    for (const s of t.segs) {
      const g = a.setGroup[s.set];
      n += c && g >= 0 ? c.channels[g] : s.size;
    }
    return n;
  };
}

export function layerCosts(a: Analysis, c: Candidate | null): LayerCost[] {
  const ch = channelCounter(a, c);
  return a.layers.map((l) => {
    const cin = l.input ? ch(l.input) : 0;
    const cout = ch(l.output);
    const cost = COUNTERS[l.kind](l, cin, cout, ch);
    return { name: l.name, className: l.className, inChannels: cin, outChannels: cout, ...cost };
  });
}

/** Total cost of the model pruned to `c` (null = the unpruned model). */
export function costOf(a: Analysis, c: Candidate | null): Cost {
  let macs = 0;
  let params = 0;
  for (const lc of layerCosts(a, c)) {
    macs += lc.macs;
    params += lc.params;
  }
  return { macs, params };
}
