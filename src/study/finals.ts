/**
 * A study's finals: the fine-tuned results that reports, `pick`, `compare` and `export` read.
 * A final is a trial: the last rung's trial of a candidate (docs/rungs.md), listed under its
 * origin (the proxy trial the chain started from), with the weights that trial saved as an
 * artifact in the store, so any host reads the same weights the score came from. Rows of the
 * older finals table (driver-side fine-tunes, before finalists were rung trials) are still read
 * for candidates that have no last-rung trial.
 */
import { trainEngineOf } from '../evaluators/types.js';
import type { FinalRecord, Store, TrialRecord } from '../store/types.js';
import { artifactPaths } from './lineage.js';
import { type RungMeta, rungMetaOf } from './rungs.js';

/** A final, with the trial that produced it (null: a row of the older finals table). */
export interface StudyFinal extends FinalRecord {
  readonly fromTrial: number | null;
  /** The rung it comes from (null: older finals, one fine-tune). */
  readonly rung: number | null;
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
 * The finals of a study from its trials: every complete last-rung trial, under its origin; the
 * older finals table's rows for origins without one. `artifactDir` is this host's
 * `store.artifactDir(study)`: where the final's saved model is (or is pulled to).
 */
export function finalsOf(study: string, trials: readonly TrialRecord[], older: readonly FinalRecord[], artifactDir: string): StudyFinal[] {
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
      modelPath: artifactPaths.trialModel(artifactDir, t.number),
      seconds: t.metrics.timings?.total ?? 0,
      createdAt: t.finishedAt ?? t.createdAt,
      fromTrial: t.number,
      rung: m.rung,
    });
  }
  const have = new Set(out.map((f) => f.trial));
  for (const f of older) if (!have.has(f.trial)) out.push({ ...f, fromTrial: null, rung: null });
  return out.sort((a, b) => a.trial - b.trial || a.createdAt.localeCompare(b.createdAt));
}

/** The finals of `study` in `store` (see finalsOf). */
export async function studyFinals(store: Pick<Store, 'listFinals' | 'artifactDir'>, study: string, trials: readonly TrialRecord[]): Promise<StudyFinal[]> {
  return finalsOf(study, trials, await store.listFinals(study), store.artifactDir(study));
}
