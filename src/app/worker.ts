/**
 * Serving a study as a worker host (`autoprune worker`), for a driver (`autoprune search`) that runs
 * elsewhere. The claim -> evaluate -> heartbeat -> complete loop is src/study/worker.ts, the same
 * one the search's own worker threads run; this module adds what a separate host needs: choosing the study, checking that this host's base model and data are
 * the study's before claiming anything, and riding out database restarts.
 */
import { type ResolvedConfig, resolveConfig } from '../config/index.js';
import { AutopruneError, ErrorCodes, isAutopruneError, quote } from '../core/errors.js';
import type { BackendInfo, BackendName } from '../engine/backend.js';
import { graphAccuracy, proxyEngine } from '../evaluators/engine.js';
import { accuracy } from '../evaluators/train.js';
import type { Evaluator } from '../evaluators/types.js';
import { checkStudyInputs, type Store, type StudyInputs, type StudyRecord, type TrialRecord } from '../store/index.js';
import { type LeaseKeeper, withLeaseKeeper } from '../study/leases.js';
import { studySpace } from '../study/lifecycle.js';
import { processName } from '../study/liveness.js';
import { Wakeup } from '../study/signals.js';
import { runWorker } from '../study/worker.js';
import { hostEvaluator } from './evaluators.js';
import { openExistingStore, studyConfig } from './studies.js';
import { loadHostInputs } from './study.js';

/** The named study, or the only running one; else an error listing what the store holds. */
export async function pickStudy(store: Store, name?: string): Promise<StudyRecord> {
  const studies = await store.listStudies();
  if (name !== undefined) {
    const s = studies.find((x) => x.name === name);
    if (s) return s;
    throw new AutopruneError(
      ErrorCodes.STUDY_NOT_FOUND,
      `Study ${quote(name)} not found; expected one of: ${studies.map((x) => x.name).join(', ') || '(none yet: start `autoprune search` first)'}`,
    );
  }
  const running = studies.filter((s) => s.state === 'running');
  if (running.length === 1) return running[0];
  throw new AutopruneError(
    ErrorCodes.INVALID_ARGUMENT,
    running.length === 0
      ? `No running study in the store; start \`autoprune search <config> --store ...\` on the driver host first, or name one with --study`
      : `Several running studies (${running.map((s) => s.name).join(', ')}); choose one with --study`,
  );
}

/**
 * The study's config as this host runs it: its own paths for the base model and the data when they
 * differ from the driver's, `concurrency` evaluations at once, always off the main thread (a
 * heartbeat must never wait on a synchronous engine call).
 */
export function hostConfig(study: StudyRecord, o: { model?: string; data?: string; concurrency: number }): ResolvedConfig {
  const cfg = studyConfig(study);
  return resolveConfig(
    {
      ...cfg,
      model: o.model === undefined ? cfg.model : { ...cfg.model, checkpoint: o.model },
      data: o.data === undefined ? cfg.data : { ...cfg.data, dir: o.data },
      run: { ...cfg.run, concurrency: o.concurrency, workers: 'threads' },
    },
    { source: `config of study ${quote(study.name)} on this host` },
  );
}

/** What a worker tells its user when its inputs are not the study's. */
export const INPUTS_HINT = "point --model and --data at this host's copies of the study's base model and dataset";

/**
 * Studies created before hashes were recorded: this host's base model and data must be the study's: the same channel groups (topology) and the
 * same base validation accuracy as the driver measured (weights and validation images), to one image.
 */
export function checkSameBase(study: StudyRecord, space: unknown, baseAccuracy: number, validationSize: number): void {
  if (JSON.stringify(space) !== JSON.stringify(study.space)) {
    throw new AutopruneError(
      ErrorCodes.CONFIG_INVALID,
      `This host's base model has other channel groups than study ${quote(study.name)}'s; point --model at the study's base model`,
    );
  }
  const want = study.baseProxyAccuracy;
  if (want !== null && Math.abs(want - baseAccuracy) * validationSize > 1 + 1e-9) {
    throw new AutopruneError(
      ErrorCodes.CONFIG_INVALID,
      `This host's base model scores ${(100 * baseAccuracy).toFixed(2)}% on its validation split, study ${quote(study.name)} recorded ${(100 * want).toFixed(2)}%: the model weights or the data differ (check --model and --data)`,
    );
  }
}

export interface ServeOptions {
  readonly store: Store;
  readonly study: string;
  readonly evaluator: Evaluator;
  /** Claim loops (trials evaluated at once). */
  readonly concurrency: number;
  readonly leaseMs: number;
  /** Stops claiming; what is in hand finishes. */
  readonly stop: AbortSignal;
  /** Give up after the store has been unreachable this long, in ms. */
  readonly giveUpMs: number;
  /** How often to look whether the study still runs, in ms. Default 2000. */
  readonly watchMs?: number;
  readonly pollMs?: number;
  readonly log: (line: string) => void;
  readonly onFinished?: (t: TrialRecord | null) => void;
}

/** A store that cannot be reached: worth waiting for; every other error ends the worker. */
function isOutage(e: unknown): boolean {
  return isAutopruneError(e) && e.code === ErrorCodes.STORE_ERROR && /unreachable|connection|COMMIT/i.test(e.message);
}

/**
 * Runs `concurrency` claim loops until `stop`, or until the study is no longer running and nothing
 * of it waits. A database outage ends the loops; they are started again with backoff (1 s doubling
 * to 30 s) until the store answers, for at most `giveUpMs` of continuous outage. Returns the number
 * of trials this process finished.
 */
export function serveStudy(o: ServeOptions): Promise<number> {
  return withLeaseKeeper(o.store, o.log, (leases) => serveWith(o, leases));
}

async function serveWith(o: ServeOptions, leases: LeaseKeeper): Promise<number> {
  const done = new AbortController();
  const stop = AbortSignal.any([o.stop, done.signal]);
  const watcher = watchStudy(o, done);
  let finished = 0;
  let outageSince: number | null = null;
  try {
    for (let attempt = 0; !stop.aborted; ) {
      try {
        await Promise.all(
          Array.from({ length: o.concurrency }, (_, slot) =>
            runWorker({
              store: o.store,
              study: o.study,
              name: processName(slot),
              evaluator: o.evaluator,
              leaseMs: o.leaseMs,
              leases,
              stop,
              work: new Wakeup(),
              pollMs: o.pollMs ?? 500,
              onFinished: (t) => ((finished += t ? 1 : 0), (outageSince = null), (attempt = 0), o.onFinished?.(t)),
              log: o.log,
            }),
          ),
        );
      } catch (e) {
        if (!isOutage(e)) throw e;
        outageSince ??= Date.now();
        if (Date.now() - outageSince > o.giveUpMs) throw e;
        const wait = Math.min(30_000, 1000 * 2 ** attempt++);
        o.log(`the store is unreachable (${(e as Error).message}); trying again in ${wait / 1000} s`);
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  } finally {
    done.abort();
    await watcher;
  }
  return finished;
}

/** Aborts `done` once the study is complete or stopped and none of its trials waits (errors: keep looking). */
async function watchStudy(o: ServeOptions, done: AbortController): Promise<void> {
  while (!done.signal.aborted && !o.stop.aborted) {
    await new Promise((r) => setTimeout(r, o.watchMs ?? 2000));
    try {
      const s = await o.store.getStudy(o.study);
      // Only once the driver has let go: listing the queue on every look would cost more than claiming.
      const ended = s === null || (s.state !== 'running' && (await o.store.listTrials(o.study, { state: 'waiting' })).length === 0);
      if (ended) {
        o.log(s === null ? `study ${quote(o.study)} was deleted` : `study ${quote(o.study)} is ${s.state}; no more trials to claim`);
        done.abort();
      }
    } catch {
      // an outage: the claim loops report it
    }
  }
}

export interface WorkerHostOptions {
  /** The store's location (a postgres:// URL, or a SQLite file another process drives). */
  readonly store: string;
  /** The study to work for; default the only running one. */
  readonly study?: string;
  /** Trials evaluated at once on this host (worker threads). */
  readonly concurrency: number;
  /** This host's copy of the base model (model.json or .onnx) and dataset folder, when their paths differ from the driver's. */
  readonly model?: string;
  readonly data?: string;
  /** Seconds of continuous store outage after which the worker gives up. */
  readonly giveUpSeconds: number;
  readonly backend?: BackendName;
  /** Stops claiming; what is in hand finishes. */
  readonly stop: AbortSignal;
  readonly log: (line: string) => void;
  /** Told once this host's inputs were checked against the study's, before the first claim. */
  readonly onReady?: (r: { study: string; name: string; engine: string; backend: BackendInfo; inputs: StudyInputs }) => void;
}

/**
 * `autoprune worker`: pick the study, load this host's base model and data, refuse them unless
 * they are the study's, then serve the study until it ends or `stop`. Returns the trials evaluated.
 */
export async function runWorkerHost(o: WorkerHostOptions): Promise<number> {
  const store = await openExistingStore(o.store);
  try {
    const study = await pickStudy(store, o.study);
    const cfg = hostConfig(study, { model: o.model, data: o.data, concurrency: o.concurrency });
    const host = await loadHostInputs(cfg, { backend: o.backend });
    checkStudyInputs(study, host.inputs, INPUTS_HINT);
    if (study.inputs === null) {
      const limit = cfg.evaluation.validation.limit;
      const acc = host.base ? accuracy(host.base, host.splits.validation, { limit }) : await graphAccuracy(cfg, host.graph!, host.splits.validation, limit);
      const size = Math.min(host.splits.validation.count, cfg.evaluation.validation.limit ?? Infinity);
      checkSameBase(study, studySpace(cfg, host.analysis, study.space.options.channelStep), acc, size);
    }
    o.onReady?.({ study: study.name, name: processName(), engine: await proxyEngine(cfg), backend: host.backend, inputs: host.inputs });
    const evaluator = await hostEvaluator(cfg, host, store, study.name);
    try {
      return await serveStudy({
        store,
        study: study.name,
        evaluator,
        concurrency: o.concurrency,
        leaseMs: cfg.run.leaseSeconds * 1000,
        stop: o.stop,
        giveUpMs: o.giveUpSeconds * 1000,
        log: o.log,
      });
    } finally {
      await evaluator.close();
    }
  } finally {
    await store.close();
  }
}
