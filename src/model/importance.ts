/**
 * Channel importance per group (Torch-Pruning's `Importance(group) -> scores`, summed over the
 * group's members so coupled channels are judged together).
 *   l1       — sum |w| of each output filter of every producer in the group (Li et al. 2017)
 *   l2       — sqrt(sum w^2), summed over producers
 *   bn-gamma — sum |gamma| of every BN on the group's channels (Liu et al. 2017, Network Slimming);
 *              groups without a BN fall back to l1
 *   random   — seeded uniform scores (the ablation baseline)
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.js';
import type { Analysis } from './analysis.js';
import type { ImportanceName } from './ir/importance.js';

export { IMPORTANCE_CRITERIA, type ImportanceName, topChannels } from './ir/importance.js';

/** Scores per group: scores[g][i] for channel i of group g (higher = more important). */
export function groupScores(model: tf.LayersModel, a: Analysis, criterion: ImportanceName, rng?: Rng): Float64Array[] {
  const scores = a.groups.map((g) => new Float64Array(g.channels));
  if (criterion === 'random') {
    if (!rng) throw new Error('random importance needs an Rng');
    for (const s of scores) for (let i = 0; i < s.length; i++) s[i] = rng.next();
    return scores;
  }
  const hasBn = new Set<number>();
  if (criterion === 'bn-gamma') {
    for (const l of a.layers) {
      if (l.kind !== 'bn' || l.bnPerChannel < 4) continue; // needs gamma (scale=true)
      const gamma = model.getLayer(l.name).getWeights()[0].dataSync();
      let offset = 0;
      for (const seg of l.output.segs) {
        const g = a.setGroup[seg.set];
        if (g >= 0) {
          hasBn.add(g);
          for (let i = 0; i < seg.size; i++) scores[g][i] += Math.abs(gamma[offset + i]);
        }
        offset += seg.size;
      }
    }
  }
  const norm = criterion === 'l2' ? 'l2' : 'l1';
  for (const l of a.layers) {
    if (l.kind !== 'conv' && l.kind !== 'dense' && l.kind !== 'separable') continue;
    const g = a.setGroup[l.output.segs[0].set];
    if (g < 0 || (criterion === 'bn-gamma' && hasBn.has(g))) continue;
    const weights = model.getLayer(l.name).getWeights();
    const kernel = l.kind === 'separable' ? weights[1] : weights[0];
    const perFilter = filterNorms(kernel, norm);
    for (let i = 0; i < perFilter.length; i++) scores[g][i] += perFilter[i];
  }
  return scores;
}

/** Norm of each output filter (last axis) of a kernel. */
function filterNorms(kernel: tf.Tensor, norm: 'l1' | 'l2'): Float32Array {
  return tf.tidy(() => {
    const out = kernel.shape[kernel.rank - 1];
    const flat = kernel.reshape([-1, out]);
    const r = norm === 'l1' ? flat.abs().sum(0) : flat.square().sum(0).sqrt();
    return r.dataSync() as Float32Array;
  });
}
