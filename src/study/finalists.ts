/**
 * A Pareto-front choice of finalists: at most `count` proxy front points (accuracy vs MACs), first
 * the best for each FLOPs target (within target + window), then the rest by proxy accuracy. Pure:
 * trials in, trial numbers out. The study's finalists are the last rung's trials (rungs.ts); this
 * is the front-based alternative, kept for comparisons.
 */
import { paretoFront } from '../core/pareto.js';
import { withinTarget } from '../core/space.js';
import type { TrialRecord } from '../store/types.js';

export function chooseFinalists(
  trials: readonly TrialRecord[],
  o: { count: number; baseMacs: number; targets: readonly number[]; window: number; fractionOf?: (t: TrialRecord) => number },
): number[] {
  const complete = trials.filter((t) => t.state === 'complete' && t.metrics.proxyAccuracy != null);
  // The cost axis is the targets' own: MACs, or predicted latency for latency targets (both as fractions of the base).
  const fraction = o.fractionOf ?? ((t: TrialRecord) => t.cost.macs / o.baseMacs);
  const front = paretoFront(complete.map((t) => ({ cost: fraction(t), value: t.metrics.proxyAccuracy!, id: t.number })));
  const chosen: number[] = [];
  for (const target of o.targets) {
    if (chosen.length >= o.count) break;
    const ok = front.filter((p) => withinTarget(p.cost, target, o.window) && !chosen.includes(p.id));
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
