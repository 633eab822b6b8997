/**
 * A worker: claim a waiting trial -> evaluate it while a heartbeat holds the lease -> complete or
 * fail it with the lease's fencing token. The worker threads of `autoprune search` are workers like
 * any other: each loop here runs on the main thread and hands the engine work to an Evaluator; the
 * heartbeats run on the lease thread (leases.ts), so even an evaluator that runs its engine
 * synchronously on this thread (onnxruntime-node's session.run) never delays one.
 */
import { ErrorCodes, isAutopruneError } from '../core/errors.js';
import { type EvalRequest, type EvalResult, type Evaluator, trainTimingKey } from '../evaluators/types.js';
import type { Claim, Store, TrialRecord } from '../store/types.js';
import { type LeaseKeeper, timerLeases } from './leases.js';
import { artifactPaths } from './lineage.js';
import { rungMetaOf } from './rungs.js';
import type { Wakeup } from './signals.js';

export interface WorkerOptions {
  readonly store: Store;
  readonly study: string;
  /** Unique among the study's workers, e.g. `host:pid:0`. */
  readonly name: string;
  readonly evaluator: Evaluator;
  readonly leaseMs: number;
  /** Default leaseMs / 3. */
  readonly heartbeatMs?: number;
  /** Who renews the lease (openLeaseKeeper: a thread of its own); default timers on this thread. */
  readonly leases?: LeaseKeeper;
  /** Stop claiming new trials (the one in hand finishes). */
  readonly stop: AbortSignal;
  /** Wakes the worker when trials are enqueued; it also polls every `pollMs` (default 1000). */
  readonly work?: Wakeup;
  readonly pollMs?: number;
  /** Told after every trial this worker finished (or whose lease it lost: `null`). */
  readonly onFinished?: (t: TrialRecord | null) => void;
  readonly log?: (line: string) => void;
  readonly now?: () => number;
}

/** Claims and evaluates until `stop` is aborted; store errors other than a lost lease end it (rethrown). */
export async function runWorker(o: WorkerOptions): Promise<void> {
  while (!o.stop.aborted) {
    const claim = await o.store.claimTrial(o.study, o.name, { leaseMs: o.leaseMs });
    if (claim === null) {
      await (o.work?.wait(o.pollMs ?? 1000, o.stop) ?? new Promise((r) => setTimeout(r, o.pollMs ?? 1000)));
      continue;
    }
    o.onFinished?.(await evaluateClaim(o, claim));
    // A macrotask between trials: an in-process engine and SQLite resolve without one, and timers
    // (heartbeats), signals (Ctrl-C) and worker messages must get their turn.
    await new Promise<void>((r) => setImmediate(r));
  }
}

/** The request a claimed trial makes of the evaluator, with artifacts addressed through the store. */
export function evalRequest(store: Store, t: TrialRecord): EvalRequest {
  const dir = store.artifactDir(t.study);
  const rung = rungMetaOf(t);
  if (rung !== null) {
    // A rung continues the weights its meta names, for the length its meta records (docs/rungs.md).
    return {
      trial: t.number,
      candidate: t.candidate,
      stage: 'finetune',
      saveTo: artifactPaths.trialModel(dir, t.number),
      length: rung.finetune,
      ...(rung.weights === null ? {} : { parent: { trial: rung.weights, modelDir: artifactPaths.trialModel(dir, rung.weights) } }),
    };
  }
  return {
    trial: t.number,
    candidate: t.candidate,
    stage: t.stage,
    ...(t.parent === null ? {} : { parent: { trial: t.parent, modelDir: artifactPaths.trialModel(dir, t.parent) } }),
    ...(t.stage === 'adapt' ? { saveTo: artifactPaths.trialModel(dir, t.number) } : {}),
    ...(t.stage === 'finetune' ? { saveTo: artifactPaths.finalistModel(dir, t.number) } : {}),
  };
}

/**
 * Evaluates one claimed trial and writes its result under the claim's token. Returns the finished
 * trial, or null when the lease was lost (the result is dropped: another worker owns the trial now).
 */
export async function evaluateClaim(o: WorkerOptions, claim: Claim): Promise<TrialRecord | null> {
  const now = o.now ?? Date.now;
  let lost: Error | null = null;
  const leases = o.leases ?? timerLeases(o.store);
  const beat = leases.keep({ kind: 'trial', lease: claim }, o.leaseMs, o.heartbeatMs ?? Math.max(1, Math.floor(o.leaseMs / 3)), (e) => (lost = e));
  const started = now();
  let outcome: { result: EvalResult } | { error: Error };
  try {
    outcome = { result: checked(claim.trial, await o.evaluator.evaluate(evalRequest(o.store, claim.trial))) };
  } catch (e) {
    outcome = { error: e as Error };
  } finally {
    beat.stop();
  }
  try {
    if (lost) throw lost;
    if ('error' in outcome) {
      return await o.store.failTrial(claim, outcome.error.message);
    }
    const r = outcome.result;
    const metrics = {
      proxyAccuracy: r.proxyAccuracy,
      finalAccuracy: r.finalAccuracy,
      latencyMs: r.latencyMs,
      latencyHost: r.latencyHost,
      latencyDevice: r.latencyDevice,
      timings: {
        ...r.timings,
        ...(r.trainEngine === undefined ? {} : { [trainTimingKey(r.trainEngine)]: r.timings.finetune ?? r.timings.adapt ?? 0 }),
        total: (now() - started) / 1000,
      },
    };
    return await o.store.completeTrial(claim, metrics);
  } catch (e) {
    if (isAutopruneError(e) && e.code === ErrorCodes.LEASE_LOST) {
      o.log?.(`trial ${claim.number}: result dropped, the lease was lost (${e.message})`);
      return null;
    }
    throw e;
  }
}

/** The pruned model must cost what the cost model predicted: otherwise the search is steering blind. */
function checked(t: TrialRecord, r: EvalResult): EvalResult {
  if (r.cost.macs !== t.cost.macs || r.cost.params !== t.cost.params) {
    throw new Error(`pruned model has ${r.cost.macs} MACs / ${r.cost.params} params, predicted ${t.cost.macs} / ${t.cost.params} (a bug in the cost model)`);
  }
  return r;
}
