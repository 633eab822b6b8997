/**
 * `autoprune worker --store URL [--study NAME]`: evaluate a study's trials on this host, for a
 * driver (`autoprune search`) that runs elsewhere. The claim -> evaluate -> heartbeat -> complete
 * loop is src/study/worker.ts, the same one the search's own worker threads run; this command adds
 * what a separate host needs: choosing the study, checking that this host's base model and data are
 * the study's before claiming anything, and riding out database restarts.
 */
import type * as tf from '@tensorflow/tfjs';
import type { CommandModule } from 'yargs';
import { type ResolvedConfig, resolveConfig } from '../../config/index.js';
import { AutopruneError, ErrorCodes, isAutopruneError, quote } from '../../core/errors.js';
import { splitsHash } from '../../data/fingerprint.js';
import { initBackend } from '../../engine/backend.js';
import { createEvaluator, proxyEngine } from '../../evaluators/engine.js';
import type { Splits } from '../../evaluators/setup.js';
import { loadBaseModel, loadSplits } from '../../evaluators/setup.js';
import { accuracy } from '../../evaluators/train.js';
import type { Evaluator } from '../../evaluators/types.js';
import { analyzeModel } from '../../model/analysis.js';
import { modelHash } from '../../model/fingerprint.js';
import { checkStudyInputs, type Store, type StudyInputs, type StudyRecord, type TrialRecord } from '../../store/index.js';
import { type LeaseKeeper, withLeaseKeeper } from '../../study/leases.js';
import { processName } from '../../study/liveness.js';
import { studySpace } from '../../study/run.js';
import { Wakeup } from '../../study/signals.js';
import { runWorker } from '../../study/worker.js';
import { handler, info, note } from '../output.js';
import { type BackendArg, backendOption } from './common.js';
import { openExistingStore, storeOption, studyConfig } from './store-args.js';
import { studyEvaluator } from './worker-evaluator.js';

interface Args extends BackendArg {
  store: string;
  study?: string;
  concurrency: number;
  model?: string;
  data?: string;
  'give-up': number;
}

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

/** The hashes a study records of its base model and data (and a worker checks against). */
export function studyInputs(base: tf.LayersModel, splits: Splits): StudyInputs {
  return { baseModel: modelHash(base), data: splitsHash(splits) };
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

export const workerCommand: CommandModule<object, Args> = {
  command: 'worker',
  describe: "Evaluate a study's trials on this host, for a search driven elsewhere (shared PostgreSQL store)",
  builder: (y) =>
    y
      .option(...storeOption)
      .option('study', { type: 'string', describe: 'Study to work for (default: the only running one)' })
      .option('concurrency', { type: 'number', default: 1, describe: 'Trials evaluated at once on this host (worker threads)' })
      .option('model', { type: 'string', describe: "This host's copy of the study's base model (model.json), when its path differs from the driver's" })
      .option('data', { type: 'string', describe: "This host's dataset folder, when its path differs from the driver's" })
      .option('give-up', { type: 'number', default: 600, describe: 'Seconds of continuous database outage after which the worker exits' })
      .option(...backendOption),
  handler: handler(async (args) => {
    const store = await openExistingStore(args.store);
    try {
      const study = await pickStudy(store, args.study);
      const cfg = hostConfig(study, { model: args.model, data: args.data, concurrency: args.concurrency });
      const backend = await initBackend(args.backend ?? cfg.run.backend);
      const splits = await loadSplits(cfg);
      const base = await loadBaseModel(cfg, splits);
      const inputs = studyInputs(base, splits);
      checkStudyInputs(study, inputs, INPUTS_HINT);
      if (study.inputs === null) {
        const acc = accuracy(base, splits.validation, { limit: cfg.evaluation.validation.limit });
        checkSameBase(
          study,
          studySpace(cfg, analyzeModel(base), study.space.options.channelStep),
          acc,
          Math.min(splits.validation.count, cfg.evaluation.validation.limit ?? Infinity),
        );
      }
      info(
        `worker ${processName()}: study \`${study.name}\`, ${args.concurrency} at once, proxy engine ${await proxyEngine(cfg)}, tfjs backend ${backend.name}; base model (sha256 ${inputs.baseModel.slice(0, 16)}…) and data (${inputs.data.slice(0, 16)}…) match the study`,
      );
      const evaluator: Evaluator = studyEvaluator(await createEvaluator(cfg, { splits, base }), store, study.name);
      const stop = new AbortController();
      const onSignal = () => {
        if (stop.signal.aborted) process.exit(130);
        note('\nstopping: no new trials; the ones in hand finish and are stored (Ctrl-C again to stop now)');
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const n = await serveStudy({
          store,
          study: study.name,
          evaluator,
          concurrency: args.concurrency,
          leaseMs: cfg.run.leaseSeconds * 1000,
          stop: stop.signal,
          giveUpMs: args['give-up'] * 1000,
          log: info,
        });
        info(`worker ${processName()}: ${n} trial(s) evaluated`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await evaluator.close();
      }
    } finally {
      await store.close();
    }
  }),
};
