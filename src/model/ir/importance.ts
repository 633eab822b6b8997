/**
 * Channel importance per group over a graph, the criteria of ../importance.ts (same scores, same
 * order of random draws): l1/l2 sum each producer's per-filter norms; bn-gamma sums |scale| of the
 * learned-affine BNs on the group's channels and falls back to l1 for groups without one; random
 * draws one number per channel, group by group.
 */
import type { Rng } from '../../core/rng.js';
import type { GraphAnalysis } from './analyze.js';
import { ruleOf } from './rules/index.js';

export const IMPORTANCE_CRITERIA = ['l1', 'l2', 'bn-gamma', 'random'] as const;
export type ImportanceName = (typeof IMPORTANCE_CRITERIA)[number];

/** The `keep` most important channel indices, ascending (stable: ties keep the lower index). */
export function topChannels(scores: Float64Array, keep: number): number[] {
  const order = Array.from(scores.keys()).sort((i, j) => scores[j] - scores[i] || i - j);
  return order.slice(0, keep).sort((i, j) => i - j);
}

export function graphGroupScores(a: GraphAnalysis, criterion: ImportanceName, rng?: Rng): Float64Array[] {
  const scores = a.groups.map((g) => new Float64Array(g.channels));
  if (criterion === 'random') {
    if (!rng) throw new Error('random importance needs an Rng');
    for (const s of scores) for (let i = 0; i < s.length; i++) s[i] = rng.next();
    return scores;
  }
  const hasScale = new Set<number>();
  if (criterion === 'bn-gamma') {
    a.graph.nodes.forEach((node, n) => {
      const gamma = ruleOf(node).channelScale?.(node);
      if (!gamma) return;
      let offset = 0;
      for (const seg of a.channels[n].segs) {
        const g = a.setGroup[seg.set];
        if (g >= 0) {
          hasScale.add(g);
          for (let i = 0; i < seg.size; i++) scores[g][i] += Math.abs(gamma[offset + i]);
        }
        offset += seg.size;
      }
    });
  }
  a.producers.forEach((nodes, g) => {
    if (criterion === 'bn-gamma' && hasScale.has(g)) return;
    for (const n of nodes) {
      const node = a.graph.nodes[n];
      const w = ruleOf(node).filters?.(node);
      if (!w) continue;
      const per = w.length / scores[g].length;
      for (let o = 0; o < scores[g].length; o++) {
        let s = 0;
        for (let k = o * per; k < (o + 1) * per; k++) s += criterion === 'l2' ? w[k] * w[k] : Math.abs(w[k]);
        scores[g][o] += criterion === 'l2' ? Math.sqrt(s) : s;
      }
    }
  });
  return scores;
}
