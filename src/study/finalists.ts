/**
 * Which trials become finalists: the proxy Pareto front (accuracy vs MACs), at most `count` of
 * them. First the best front point for each FLOPs target (within target + window), then the
 * remaining front points by proxy accuracy. Pure: trials in, trial numbers out.
 */
import { paretoFront } from '../core/pareto.js';
import { withinTarget } from '../core/space.js';
import type { TrialRecord } from '../store/types.js';

export function chooseFinalists(trials: readonly TrialRecord[], o: { count: number; baseMacs: number; targets: readonly number[]; window: number }): number[] {
  const complete = trials.filter((t) => t.state === 'complete' && t.metrics.proxyAccuracy != null);
  const front = paretoFront(complete.map((t) => ({ cost: t.cost.macs, value: t.metrics.proxyAccuracy!, id: t.number })));
  const chosen: number[] = [];
  for (const target of o.targets) {
    if (chosen.length >= o.count) break;
    const ok = front.filter((p) => withinTarget(p.cost / o.baseMacs, target, o.window) && !chosen.includes(p.id));
    const best = ok.sort((a, b) => b.value - a.value || a.cost - b.cost)[0];
    if (best) chosen.push(best.id);
  }
  const rest = front.filter((p) => !chosen.includes(p.id)).sort((a, b) => b.value - a.value || a.cost - b.cost);
  for (const p of rest) {
    if (chosen.length >= o.count) break;
    chosen.push(p.id);
  }
  return chosen;
}
