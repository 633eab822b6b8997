/**
 * `runStudy`: one search process = a driver plus local workers, all through the store (the queue).
 *   open/create study -> take the driver lease -> restore controller -> [driver: ask -> enqueue;
 *   workers: claim -> evaluate -> complete; driver: tell] -> finalists -> final state.
 * Each part lives in its own module (lifecycle, driver, worker, policy, progress, finalists); this
 * file only wires them. Other processes (`autoprune worker`) may claim the same trials.
 */
import type { ResolvedConfig } from '../config/index.js';
import { targetFractions } from '../config/sections/search.js';
import type { Controller, ControllerContext } from '../controllers/types.js';
import type { Evaluator } from '../evaluators/types.js';
import type { DriverLease, StudyRecord, TrialRecord } from '../store/types.js';
import type { Budget, StopReason } from './budget.js';
import { Driver } from './driver.js';
import { type LeaseKeeper, withLeaseKeeper } from './leases.js';
import { finalState, type OpenStudyOptions, openStudy, restoreController, type StudyLatency, spaceCost } from './lifecycle.js';
import { goneLocally, processName } from './liveness.js';
import { DriverLoop } from './loop.js';
import { FailurePolicy } from './policy.js';
import { ProgressTally, type StudyProgress } from './progress.js';
import { rungMetaOf } from './rungs.js';
import { Wakeup } from './signals.js';
import type { StudyView } from './view.js';
import { runWorker } from './worker.js';

export { studySpace } from './lifecycle.js';
export type { StudyProgress } from './progress.js';

/** What opening the study needs (lifecycle.ts: cfg, store, analysis, base accuracy, input hashes, log), and the run's own. */
export interface StudyRunOptions extends OpenStudyOptions {
  /** Created on first use, closed when the run ends (also when it fails). */
  readonly evaluator: () => Promise<Evaluator>;
  /** Local workers (claim loops feeding the evaluator). Default cfg.run.concurrency. */
  readonly localWorkers?: number;
  /**
   * The evaluator runs the engine on this (the main) thread (`run.workers: inline`): when leases are
   * renewed on this thread too (a store without a lease thread: memory), a synchronous evaluation
   * blocks them, so leases are made long (INLINE_LEASE_MS) instead of trusted.
   */
  readonly engineOnMainThread?: boolean;
  readonly budget: Budget;
  readonly fresh: boolean;
  /** Aborting stops asking and claiming; running evaluations finish and are stored (graceful stop). */
  readonly signal: AbortSignal;
  readonly onProgress?: (p: StudyProgress) => void;
  readonly now?: () => number;
  /** Plain data some controllers learn from: group descriptors (rl), channel importance (global). */
  readonly controllerData?: Pick<ControllerContext, 'groups' | 'importance'>;
  /** Latency prediction of the study (src/latency/study.ts), when it has a table. */
  readonly latency?: StudyLatency;
  /** Wraps the configured controller (a decorator with the same interface, e.g. the torture's stage mix). */
  readonly wrapController?: (c: Controller) => Controller;
  /** How often the driver looks at the store when nothing wakes it (other processes' results), ms. Default 1000. */
  readonly pollMs?: number;
}

export interface StudySummary {
  readonly study: StudyRecord;
  readonly reason: StopReason;
  readonly evaluated: number;
  readonly requeued: number[];
  readonly finalists: number[];
}

/** Lease of an inline run (engine on the main thread): a day; a crashed inline search is still resumed at once on its host (liveness.ts). */
export const INLINE_LEASE_MS = 24 * 3600 * 1000;

/** A run's options with the leases it holds: who renews them, and for how long each renewal holds. */
type Running = StudyRunOptions & { readonly leases: LeaseKeeper; readonly leaseMs: number };

function leaseMsOf(o: StudyRunOptions, leases: LeaseKeeper): number {
  return o.engineOnMainThread && !leases.offThread ? INLINE_LEASE_MS : o.cfg.run.leaseSeconds * 1000;
}

export function runStudy(o: StudyRunOptions): Promise<StudySummary> {
  return withLeaseKeeper(o.store, o.log, (leases) => runWithLeases(o, leases));
}

async function runWithLeases(o: StudyRunOptions, leases: LeaseKeeper): Promise<StudySummary> {
  const { store } = o;
  const leaseMs = leaseMsOf(o, leases);
  if (o.fresh) await deleteForFresh(o, leaseMs);
  const study = await openStudy({ ...o, latencyCheck: o.latency?.check });
  const lease = await store.acquireDriver(study.name, processName(), leaseMs, { stale: goneLocally });
  const lost = new AbortController();
  const renew = leases.keep({ kind: 'driver', lease }, leaseMs, Math.floor(leaseMs / 3), (e) => lost.abort(e));
  const evaluator = lazyEvaluator(o.evaluator);
  try {
    return await driveStudy({ ...o, leases, leaseMs }, study, lease, evaluator.get, lost.signal);
  } finally {
    renew.stop();
    await evaluator.close();
    await store.releaseDriver(lease).catch(() => undefined); // the lease expires anyway
  }
}

/** `--fresh`: delete the study, but only if no live driver holds it. */
async function deleteForFresh(o: StudyRunOptions, leaseMs: number): Promise<void> {
  if (!(await o.store.getStudy(o.cfg.name))) return;
  await o.store.acquireDriver(o.cfg.name, processName(), leaseMs, { stale: goneLocally });
  await o.store.deleteStudy(o.cfg.name);
  o.log(`--fresh: deleted the previous trials of study \`${o.cfg.name}\``);
}

async function driveStudy(o: Running, study: StudyRecord, lease: DriverLease, evaluator: () => Promise<Evaluator>, lost: AbortSignal): Promise<StudySummary> {
  const { cfg, store } = o;
  const { controller, told } = await restoreController(cfg, study, store, o.analysis, { wrap: o.wrapController, data: o.controllerData, latency: o.latency });
  // Only now, with the controller restored, does a resumed study change state.
  await store.setStudyState(study.name, 'running');
  const running = await store.listTrials(study.name, { state: 'running' });
  const gone = [...new Set(running.map((t) => t.worker ?? ''))].filter(goneLocally);
  const reaped = await store.reapExpired(study.name, { maxAttempts: cfg.run.maxAttempts, gone });
  if (reaped.requeued.length) o.log(`re-queued trial(s) ${reaped.requeued.join(', ')}: they were running when the previous process stopped`);
  const driver = new Driver({
    store,
    lease,
    controller,
    told,
    costOf: (c) => spaceCost(o.analysis, c),
    policy: new FailurePolicy({ consecutive: cfg.run.maxConsecutiveFailures, first: Math.max(3, cfg.run.concurrency) }, study.name),
    maxAttempts: cfg.run.maxAttempts,
    baseMacs: study.baseCost.macs,
    log: o.log,
    rungs: {
      schedule: cfg.evaluation.rungs,
      targetOf: bandOf(targetFractions(cfg.search.targets), cfg.search.window, latencyFraction(o) ?? ((t) => t.cost.macs / study.baseCost.macs)),
    },
  });
  const stop = eitherSignal(o.signal, lost);
  const { reason, evaluated } = await searchLoop(o, study, driver, evaluator, stop).catch(async (e: unknown) => {
    await store.setStudyState(study.name, 'stopped').catch(() => undefined); // resumable; the error says why
    throw e;
  });
  if (lost.aborted) throw lost.reason as Error;
  const finalists = driver.finalists();
  const final = o.signal.aborted ? 'interrupted' : reason;
  await store.setStudyState(study.name, finalState(final));
  return { study: (await store.getStudy(study.name))!, reason: final, evaluated, requeued: reaped.requeued, finalists };
}

/** The target whose band (target ± window) holds a trial's cost fraction, the nearest if several; null if none. */
function bandOf(targets: readonly number[], window: number, fractionOf: (t: TrialRecord) => number): (t: TrialRecord) => number | null {
  return (t) => {
    const f = fractionOf(t);
    let best: number | null = null;
    for (const target of targets) {
      if (Math.abs(f - target) <= window + 1e-12 && (best === null || Math.abs(f - target) < Math.abs(f - best))) best = target;
    }
    return best;
  };
}

/** Claim loops of this process: none when `autoprune worker` processes do all the evaluating. */
export function localWorkersOf(cfg: ResolvedConfig): number {
  return cfg.run.workers === 'none' ? 0 : cfg.run.workers === 'inline' ? 1 : cfg.run.concurrency;
}

/** Local workers and the driver loop, until the driver stops; then the workers finish what they hold. */
async function searchLoop(o: Running, study: StudyRecord, driver: Driver, evaluator: () => Promise<Evaluator>, stop: AbortSignal) {
  const stopClaiming = new AbortController();
  const work = new Wakeup();
  const finished = new Wakeup();
  const n = o.localWorkers ?? localWorkersOf(o.cfg);
  let evaluated = 0;
  let workerError: Error | null = null;
  const workers = Array.from({ length: n }, (_, i) =>
    startWorker(o, study.name, i, evaluator, { stop: stopClaiming.signal, work, onFinished: (t) => ((evaluated += t ? 1 : 0), finished.notify()) }).catch(
      (e: Error) => {
        workerError ??= e;
        finished.notify();
      },
    ),
  );
  const loop = new DriverLoop({
    driver,
    budget: o.budget,
    capacity: Math.max(1, n + o.cfg.run.remoteWorkers),
    work,
    finished,
    workerError: () => workerError,
    pollMs: o.pollMs,
    now: o.now,
    log: o.log,
    onProgress: o.onProgress && progressOf(o, study),
  });
  let reason: StopReason;
  try {
    reason = await loop.run(stop);
  } finally {
    stopClaiming.abort();
    work.notify();
    await Promise.all(workers);
  }
  if (workerError) throw workerError;
  await driver.sync(); // tell what the workers finished after the loop stopped
  return { reason, evaluated };
}

function startWorker(
  o: Running,
  study: string,
  slot: number,
  evaluator: () => Promise<Evaluator>,
  w: { stop: AbortSignal; work: Wakeup; onFinished: (t: TrialRecord | null) => void },
): Promise<void> {
  return runWorker({
    store: o.store,
    study,
    name: processName(slot),
    evaluator: { capacity: 1, evaluate: async (req) => (await evaluator()).evaluate(req), close: async () => undefined },
    leaseMs: o.leaseMs,
    leases: o.leases,
    stop: w.stop,
    work: w.work,
    pollMs: o.pollMs,
    onFinished: w.onFinished,
    log: o.log,
    now: o.now,
  });
}

function progressOf(o: StudyRunOptions, study: StudyRecord): (view: StudyView, finishedThisRun: number, seconds: number) => void {
  const tally = new ProgressTally({
    budget: o.budget.trials,
    baseMacs: study.baseCost.macs,
    targets: targetFractions(o.cfg.search.targets),
    window: o.cfg.search.window,
    fractionOf: latencyFraction(o),
  });
  const search = (t: TrialRecord) => rungMetaOf(t) === null;
  return (view, finishedThisRun, secondsThisRun) => {
    tally.add(view.finished.filter(search));
    const running = view.live.filter((t) => search(t) && t.state === 'running').length;
    o.onProgress!(tally.progress(running, { finishedThisRun, secondsThisRun }));
  };
}

/** A trial's predicted latency fraction when the study's targets are latency targets. */
function latencyFraction(o: StudyRunOptions): ((t: TrialRecord) => number) | undefined {
  const l = o.latency;
  return l?.targets ? (t) => l.fractionOf(t.candidate) : undefined;
}

/** Aborted when either is (AbortSignal.any is avoided: on Node 20 its result can stop firing once collected). */
function eitherSignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  const c = new AbortController();
  const abort = () => c.abort();
  if (a.aborted || b.aborted) abort();
  a.addEventListener('abort', abort, { once: true });
  b.addEventListener('abort', abort, { once: true });
  return c.signal;
}

/** One evaluator for the run, created on first use (concurrent first calls share it), closed once. */
function lazyEvaluator(make: () => Promise<Evaluator>): { get: () => Promise<Evaluator>; close: () => Promise<void> } {
  let p: Promise<Evaluator> | null = null;
  return {
    get: () => (p ??= make()),
    close: async () => {
      if (p) await (await p.catch(() => null))?.close();
    },
  };
}
