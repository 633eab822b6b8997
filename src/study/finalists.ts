/**
 * Which trials become finalists: the proxy Pareto front (accuracy vs MACs), at most `count` of
 * them. First the best front point for each FLOPs target (within target + window), then the
 * remaining front points by proxy accuracy. Pure: trials in, trial numbers out. Then runFinalists
 * fine-tunes them (stage `finetune`) and stores the test accuracy beside the trial.
 */
import pLimit from 'p-limit';
import { paretoFront } from '../core/pareto.js';
import { withinTarget } from '../core/space.js';
import type { EvalRequest, EvalResult, Evaluator } from '../evaluators/types.js';
import type { Store, StudyRecord, TrialRecord } from '../store/types.js';
import { artifactPaths } from './lineage.js';
import { firstLine } from './policy.js';
import type { RungLength } from './rungs.js';

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

export interface FinalistRunOptions {
  readonly store: Store;
  readonly study: StudyRecord;
  readonly trials: readonly TrialRecord[];
  readonly evaluator: Evaluator;
  readonly count: number;
  /** Recorded with each final (0 for a rung counted in steps). */
  readonly epochs: number;
  /** The final rung's own training length. */
  readonly length?: RungLength;
  readonly targets: readonly number[];
  readonly window: number;
  /** A trial's cost as a fraction of the base's, when the targets are not MACs (latency targets). */
  readonly fractionOf?: (t: TrialRecord) => number;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
  readonly now?: () => number;
}

/** The fine-tune request of a finalist: it starts from its own adapted weights, or its parent's. */
export function finalistRequest(store: Store, t: TrialRecord, length?: RungLength): EvalRequest {
  const dir = store.artifactDir(t.study);
  const from = t.stage === 'adapt' ? t.number : t.parent;
  return {
    trial: t.number,
    candidate: t.candidate,
    stage: 'finetune',
    saveTo: artifactPaths.finalistModel(dir, t.number),
    ...(length === undefined ? {} : { length }),
    ...(from === null ? {} : { parent: { trial: from, modelDir: artifactPaths.trialModel(dir, from) } }),
  };
}

/** Fine-tunes the chosen finalists not yet done (at most `evaluator.capacity` at once); returns the chosen numbers. */
export async function runFinalists(o: FinalistRunOptions): Promise<number[]> {
  const name = o.study.name;
  const chosen = chooseFinalists(o.trials, { count: o.count, baseMacs: o.study.baseCost.macs, targets: o.targets, window: o.window, fractionOf: o.fractionOf });
  const have = new Set((await o.store.listFinals(name)).map((f) => f.trial));
  const todo = chosen.filter((n) => !have.has(n));
  if (todo.length) o.log(`fine-tuning ${todo.length} finalist(s) (${o.epochs} epoch(s) each): trial ${todo.join(', ')}`);
  const limit = pLimit(Math.max(1, o.evaluator.capacity));
  await Promise.all(todo.map((n) => limit(() => (o.signal.aborted ? undefined : runFinalist(o, o.trials.find((x) => x.number === n)!)))));
  return chosen;
}

async function runFinalist(o: FinalistRunOptions, t: TrialRecord): Promise<void> {
  const now = o.now ?? Date.now;
  const started = now();
  let r: EvalResult;
  try {
    r = await o.evaluator.evaluate(finalistRequest(o.store, t, o.length));
  } catch (e) {
    o.log(`finalist trial ${t.number} failed: ${firstLine((e as Error).message)}`);
    return;
  }
  // A store error here is not swallowed: the caller closes the evaluator and reports it.
  await o.store.saveFinal({
    study: t.study,
    trial: t.number,
    finalAccuracy: r.finalAccuracy!,
    latencyMs: r.latencyMs,
    latencyHost: r.latencyHost,
    latencyDevice: r.latencyDevice,
    trainEngine: r.trainEngine,
    epochs: o.epochs,
    modelPath: r.modelPath ?? null,
    seconds: (now() - started) / 1000,
  });
  o.log(
    `finalist trial ${t.number}: test ${(100 * r.finalAccuracy!).toFixed(2)}% after fine-tuning (proxy ${(100 * (t.metrics.proxyAccuracy ?? NaN)).toFixed(2)}%)`,
  );
}
