/**
 * The search loop (Optuna's `optimize()` is only a loop over ask/tell; so is this):
 *   ask -> store trial -> evaluate (p-limit, pool of workers) -> store result -> tell -> snapshot.
 * The store is the source of truth: a resumed study restores the controller from its latest
 * snapshot, tells it the trials it had not yet been told, re-queues trials that were running when a
 * process died, and never re-runs a completed trial. Then the Pareto finalists are fine-tuned and
 * scored on the test split.
 */
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import pLimit from 'p-limit';
import type { ResolvedConfig } from '../config/index.js';
import { createStudyController } from '../controllers/registry.js';
import type { Controller, ControllerContext, Observation } from '../controllers/types.js';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type Candidate, candidateKey, type SearchSpace, withinTarget } from '../core/space.js';
import type { Cost } from '../core/types.js';
import type { Evaluator } from '../evaluators/types.js';
import type { Analysis } from '../model/analysis.js';
import { costOf } from '../model/flops.js';
import type { Json, Store, StudyRecord, TrialRecord } from '../store/types.js';
import { type Budget, budgetLeft, type StopReason } from './budget.js';
import { chooseFinalists } from './finalists.js';

export interface StudyProgress {
  readonly finished: number;
  readonly budget: number;
  readonly running: number;
  readonly etaSeconds: number | null;
  /** Best proxy accuracy per target (fraction of base MACs) among trials at or under it. */
  readonly best: readonly { target: number; accuracy: number | null }[];
}

export interface StudyRunOptions {
  readonly cfg: ResolvedConfig;
  readonly configHash: string;
  readonly store: Store;
  readonly analysis: Analysis;
  /** Base model accuracies, measured by the caller only when the study is new. */
  readonly baseAccuracy: () => Promise<{ proxy: number; test: number }>;
  readonly evaluator: () => Promise<Evaluator>;
  readonly budget: Budget;
  readonly fresh: boolean;
  /** Aborting stops asking; running evaluations finish and are stored (graceful stop). */
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
  readonly onProgress?: (p: StudyProgress) => void;
  readonly now?: () => number;
  /** Plain data some controllers learn from: group descriptors (rl), channel importance (global). */
  readonly controllerData?: Pick<ControllerContext, 'groups' | 'importance'>;
}

export interface StudySummary {
  readonly study: StudyRecord;
  readonly reason: StopReason;
  readonly evaluated: number;
  readonly requeued: number[];
  readonly finalists: number[];
}

interface SnapshotState {
  controller: Json;
  told: number[];
}

export function studySpace(cfg: ResolvedConfig, analysis: Analysis): SearchSpace {
  const ids = new Set(analysis.groups.map((g) => g.id));
  for (const s of cfg.space.skip) {
    if (!ids.has(s)) {
      throw new AutopruneError(ErrorCodes.CONFIG_INVALID, `\`space.skip\` names group \`${s}\`, which the model does not have; expected one of: ${[...ids].join(', ')}`);
    }
  }
  return { groups: analysis.groups, options: { minKeepRatio: cfg.space.minKeepRatio, channelStep: cfg.space.channelStep, skip: [...cfg.space.skip] } };
}

function sameSpace(a: SearchSpace, b: SearchSpace): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export async function runStudy(o: StudyRunOptions): Promise<StudySummary> {
  const { cfg, store, analysis, log } = o;
  const now = o.now ?? Date.now;
  const name = cfg.name;
  const space = studySpace(cfg, analysis);
  const baseCost = costOf(analysis, null);

  let study = await store.getStudy(name);
  if (study && o.fresh) {
    await store.deleteStudy(name);
    log(`--fresh: deleted the previous trials of study \`${name}\``);
    study = null;
  }
  if (study) {
    if (!sameSpace(study.space, space)) {
      throw new AutopruneError(ErrorCodes.CONFIG_INVALID, `Study \`${name}\` was started with a different model or search space; rerun with --fresh to start over, or give the study another name`);
    }
    if (study.baseProxyAccuracy === null) await store.setBaseAccuracy(name, await o.baseAccuracy()); // a crash right after creation
    if (study.configHash !== o.configHash) log(`note: the config of study \`${name}\` changed since it started (hash ${study.configHash.slice(0, 12)} -> ${o.configHash.slice(0, 12)}); continuing with the new settings`);
  } else {
    study = await store.createStudy({ name, configHash: o.configHash, config: cfg as unknown as Json, space, baseCost, baseProxyAccuracy: null, baseTestAccuracy: null });
    const acc = await o.baseAccuracy();
    await store.setBaseAccuracy(name, acc);
    log(`study \`${name}\`: ${space.groups.length} groups, base ${(baseCost.macs / 1e6).toFixed(2)} MMACs, validation ${(100 * acc.proxy).toFixed(2)}%, test ${(100 * acc.test).toFixed(2)}%`);
  }

  const controller: Controller = createStudyController(cfg.search.controller, {
    space,
    costOf: (c: Candidate): Cost => costOf(analysis, c),
    baseCost,
    targets: cfg.search.targets,
    window: cfg.search.window,
    rng: new Rng(cfg.run.seed),
    ...o.controllerData,
  }, cfg.search.baseline);
  const told = new Set<number>();
  const snap = await store.latestSnapshot(name);
  if (snap) {
    const s = snap.state as unknown as SnapshotState;
    try {
      controller.restore(s.controller);
    } catch (e) {
      throw new AutopruneError(
        ErrorCodes.CONFIG_INVALID,
        `Study \`${name}\` was searched with another controller setup than this config's (${(e as Error).message}); rerun with --fresh to start over, or give the study another name`,
      );
    }
    s.told.forEach((n) => told.add(n));
  }
  // Only now, with the controller restored, does a resumed study change state.
  await store.setStudyState(name, 'running');
  const requeued = await store.requeueRunning(name);
  if (requeued.length) log(`re-queued trial(s) ${requeued.join(', ')}: they were running when the previous process stopped`);

  const observation = (t: TrialRecord): Observation => ({ candidate: t.candidate, cost: t.cost, meta: t.meta ?? null, proxyAccuracy: t.state === 'complete' ? (t.metrics.proxyAccuracy ?? null) : null, latencyMs: t.metrics?.latencyMs, params: t.cost.params });
  const saveSnapshot = () => store.saveSnapshot(name, told.size, { controller: controller.snapshot(), told: [...told].sort((a, b) => a - b) });

  let trials = await store.listTrials(name);
  const untold = trials.filter((t) => (t.state === 'complete' || t.state === 'failed') && !told.has(t.number));
  if (untold.length) {
    controller.tell(untold.map(observation));
    untold.forEach((t) => told.add(t.number));
    await saveSnapshot();
  }
  const queue: TrialRecord[] = trials.filter((t) => t.state === 'waiting');
  let total = trials.length;
  let evaluated = 0;
  // Until one trial of this run completes, count failures: if the first ones all fail, every later
  // trial would too (a model the engine cannot run), so the study stops and says why.
  let completedThisRun = 0;
  let lastError = '';
  const firstFailuresLimit = Math.max(3, cfg.run.concurrency);
  const runStarted = now();
  const worker = `${hostname()}:${process.pid}`;

  const progress = (running: number) => {
    if (!o.onProgress) return;
    const done = trials.filter((t) => t.state === 'complete' || t.state === 'failed').length;
    const rate = evaluated > 0 ? (now() - runStarted) / 1000 / evaluated : null;
    const remaining = Math.max(0, o.budget.trials - done);
    o.onProgress({
      finished: done,
      budget: o.budget.trials,
      running,
      etaSeconds: rate === null ? null : rate * remaining,
      best: cfg.search.targets.map((target) => {
        const ok = trials.filter((t) => t.state === 'complete' && withinTarget(t.cost.macs / baseCost.macs, target, cfg.search.window));
        return { target, accuracy: ok.length ? Math.max(...ok.map((t) => t.metrics.proxyAccuracy ?? 0)) : null };
      }),
    });
  };
  const refresh = async () => {
    trials = await store.listTrials(name);
  };

  /** Ask the controller for one new trial; memo: an already-stored candidate is not evaluated twice. */
  const askOne = async (): Promise<TrialRecord | null | 'exhausted'> => {
    if (controller.done()) return 'exhausted';
    const [p] = controller.ask(1);
    if (!p) return 'exhausted';
    const key = candidateKey(p.candidate);
    const existing = await store.findTrialByKey(name, key);
    if (existing) {
      // Told again even if told before: controllers match results to their proposals by key.
      if (existing.state === 'complete' || existing.state === 'failed') {
        controller.tell([{ ...observation(existing), meta: p.meta as Json }]);
        told.add(existing.number);
      }
      await saveSnapshot();
      return null;
    }
    const t = await store.createTrial(name, { candidate: p.candidate, key, cost: costOf(analysis, p.candidate), controller: p.source ?? controller.name, meta: p.meta as Json });
    total++;
    await saveSnapshot();
    return t;
  };

  // One evaluator for the whole run, created on first use (concurrent first calls share it).
  let evaluator: Promise<Evaluator> | null = null;
  const getEvaluator = (): Promise<Evaluator> => (evaluator ??= o.evaluator());
  const closeEvaluator = async (): Promise<void> => {
    if (evaluator) await (await evaluator).close();
  };

  const evaluateTrial = async (t: TrialRecord): Promise<void> => {
    const ev = await getEvaluator();
    await store.startTrial(name, t.number, worker);
    const started = now();
    let done: TrialRecord;
    try {
      const r = await ev.evaluate({ trial: t.number, candidate: t.candidate, stage: 'proxy' });
      if (r.cost.macs !== t.cost.macs || r.cost.params !== t.cost.params) {
        throw new Error(`pruned model has ${r.cost.macs} MACs / ${r.cost.params} params, predicted ${t.cost.macs} / ${t.cost.params} (a bug in the cost model)`);
      }
      done = await store.completeTrial(name, t.number, { proxyAccuracy: r.proxyAccuracy, latencyMs: r.latencyMs, timings: { ...r.timings, total: (now() - started) / 1000 } });
      completedThisRun++;
      log(`trial ${t.number}: ${(100 * (t.cost.macs / baseCost.macs)).toFixed(1)}% FLOPs (${(t.cost.macs / 1e6).toFixed(2)} MMACs), proxy ${(100 * r.proxyAccuracy!).toFixed(2)}% in ${((now() - started) / 1000).toFixed(1)} s [${r.worker}]`);
    } catch (e) {
      lastError = (e as Error).message.split('\n')[0];
      done = await store.failTrial(name, t.number, (e as Error).message);
      log(`trial ${t.number} failed: ${(e as Error).message}`);
    }
    evaluated++;
    controller.tell([observation(done)]);
    told.add(t.number);
    await saveSnapshot();
  };

  const limit = pLimit(Math.max(1, cfg.run.concurrency));
  const inflight = new Set<Promise<void>>();
  const aborted = new Promise<void>((resolve) => (o.signal.aborted ? resolve() : o.signal.addEventListener('abort', () => resolve(), { once: true })));
  let reason: StopReason = 'trials';
  progress(0);
  for (;;) {
    if (o.signal.aborted) {
      reason = 'interrupted';
      break;
    }
    if (completedThisRun === 0 && evaluated >= firstFailuresLimit) {
      reason = 'failing';
      break;
    }
    const timeUp = budgetLeft({ trials: Infinity, deadline: o.budget.deadline }, 0, now());
    let exhausted = false;
    while (!timeUp && !o.signal.aborted && limit.activeCount + limit.pendingCount < limit.concurrency) {
      let t: TrialRecord | null | 'exhausted' = queue.shift() ?? null;
      if (!t) {
        if (total >= o.budget.trials) break;
        t = await askOne();
        if (t === 'exhausted') {
          exhausted = true;
          break;
        }
        if (t === null) continue;
      }
      const trial = t;
      const p: Promise<void> = limit(() => evaluateTrial(trial)).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    if (inflight.size === 0) {
      reason = timeUp ?? (exhausted ? 'controller' : 'trials');
      break;
    }
    progress(inflight.size);
    // Evaluations and SQLite calls are synchronous underneath: yield a macrotask so that signal
    // handlers (Ctrl-C) and worker messages get to run between trials.
    await new Promise<void>((r) => setImmediate(r));
    if (inflight.size) await Promise.race([...inflight, aborted]);
    await refresh();
    progress(inflight.size);
  }
  if (inflight.size) {
    log(`waiting for ${inflight.size} running trial(s) to finish…`);
    await Promise.allSettled([...inflight]);
  }
  await refresh();
  progress(0);

  if (reason === 'failing') {
    await closeEvaluator();
    await store.setStudyState(name, 'stopped');
    throw new AutopruneError(
      ErrorCodes.TRIALS_FAILING,
      `Study \`${name}\` stopped: its first ${evaluated} trials all failed (last error: ${lastError}); check the model with \`autoprune inspect\` and a 2-trial search before a long run`,
    );
  }

  let finalists: number[] = [];
  if (!o.signal.aborted && cfg.evaluation.finalists.count > 0) {
    finalists = await runFinalists();
  }
  async function runFinalists(): Promise<number[]> {
    const chosen = chooseFinalists(trials, { count: cfg.evaluation.finalists.count, baseMacs: baseCost.macs, targets: cfg.search.targets, window: cfg.search.window });
    const have = new Set((await store.listFinals(name)).map((f) => f.trial));
    const todo = chosen.filter((n) => !have.has(n));
    if (todo.length) {
      log(`fine-tuning ${todo.length} finalist(s) (${cfg.evaluation.finalists.epochs} epoch(s) each): trial ${todo.join(', ')}`);
      // The time budget bounds the search; finalists come after it. Say so when it ran out.
      if (reason === 'time') log('the time budget is spent; Ctrl-C skips the finalists still to come (the study stays resumable)');
    }
    const ev = await getEvaluator();
    await Promise.all(
      todo.map((n) =>
        limit(async () => {
          if (o.signal.aborted) return;
          const t = trials.find((x) => x.number === n)!;
          const saveTo = join(dirname(cfg.run.store), name, 'finalists', `trial-${n}`);
          const started = now();
          try {
            const r = await ev.evaluate({ trial: n, candidate: t.candidate, stage: 'finetune', saveTo });
            await store.saveFinal({ study: name, trial: n, finalAccuracy: r.finalAccuracy!, latencyMs: r.latencyMs, epochs: cfg.evaluation.finalists.epochs, modelPath: r.modelPath ?? null, seconds: (now() - started) / 1000 });
            log(`finalist trial ${n}: test ${(100 * r.finalAccuracy!).toFixed(2)}% after fine-tuning (proxy ${(100 * (t.metrics.proxyAccuracy ?? NaN)).toFixed(2)}%)`);
          } catch (e) {
            log(`finalist trial ${n} failed: ${(e as Error).message}`);
          }
        }),
      ),
    );
    return chosen;
  }

  await closeEvaluator();
  if (o.signal.aborted) reason = 'interrupted';
  await store.setStudyState(name, reason === 'interrupted' || reason === 'time' ? 'stopped' : 'complete');
  return { study: (await store.getStudy(name))!, reason, evaluated, requeued, finalists };
}
