/**
 * A study's finals: the fine-tuned results that reports, `pick`, `compare` and `export` read.
 * A final is a trial: the last rung's trial of a candidate (docs/rungs.md), listed under its
 * origin (the proxy trial the chain started from), with the weights that trial saved as an
 * artifact in the store, so any host reads the same weights the score came from. Finals of stores
 * written before finalists were rung trials were migrated into such trials (SQLite v9, PostgreSQL
 * v8), their model where the driver saved it (`meta.modelPath`).
 */
import { trainEngineOf } from '../evaluators/types.js';
import type { FinalRecord, Store, TrialRecord } from '../store/types.js';
import { artifactPaths } from './lineage.js';
import { type RungMeta, rungMetaOf } from './rungs.js';

/** A final, with the trial that produced it. */
export interface StudyFinal extends FinalRecord {
  readonly fromTrial: number;
  /** The rung it comes from. */
  readonly rung: number;
}

/** Total epochs of the chain that ends at `t` (each rung's own; steps count as their fraction of no epoch). */
function chainEpochs(t: TrialRecord, byNumber: ReadonlyMap<number, TrialRecord>): number {
  let epochs = 0;
  for (let cur: TrialRecord | undefined = t; cur; ) {
    const m: RungMeta | null = rungMetaOf(cur);
    if (!m) break;
    if ('epochs' in m.finetune) epochs += m.finetune.epochs;
    cur = m.weights === null ? undefined : byNumber.get(m.weights);
  }
  return epochs;
}

/**
 * The finals of a study from its trials: every complete last-rung trial, under its origin.
 * `artifactDir` is this host's `store.artifactDir(study)`: where the final's saved model is (or is
 * pulled to).
 */
export function finalsOf(study: string, trials: readonly TrialRecord[], artifactDir: string): StudyFinal[] {
  const byNumber = new Map(trials.map((t) => [t.number, t]));
  const out: StudyFinal[] = [];
  for (const t of trials) {
    const m = rungMetaOf(t);
    if (!m?.last || t.state !== 'complete' || t.metrics.finalAccuracy == null) continue;
    out.push({
      study,
      trial: m.origin,
      finalAccuracy: t.metrics.finalAccuracy,
      latencyMs: t.metrics.latencyMs ?? null,
      ...(t.metrics.latencyHost === undefined ? {} : { latencyHost: t.metrics.latencyHost }),
      ...(t.metrics.latencyDevice === undefined ? {} : { latencyDevice: t.metrics.latencyDevice }),
      ...(trainEngineOf(t.metrics.timings) === undefined ? {} : { trainEngine: trainEngineOf(t.metrics.timings) }),
      epochs: chainEpochs(t, byNumber),
      // A migrated final's model stays where the driver saved it.
      modelPath: 'modelPath' in m ? ((m as { modelPath?: string | null }).modelPath ?? null) : artifactPaths.trialModel(artifactDir, t.number),
      seconds: t.metrics.timings?.total ?? 0,
      createdAt: t.finishedAt ?? t.createdAt,
      fromTrial: t.number,
      rung: m.rung,
    });
  }
  return out.sort((a, b) => a.trial - b.trial || a.createdAt.localeCompare(b.createdAt));
}

/** The finals of `study` in `store` (see finalsOf). */
export function studyFinals(store: Pick<Store, 'artifactDir'>, study: string, trials: readonly TrialRecord[]): StudyFinal[] {
  return finalsOf(study, trials, store.artifactDir(study));
}
