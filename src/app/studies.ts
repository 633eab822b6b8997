/**
 * Reading the studies of a store (list, show, report, compare, pick, export, worker): opening an
 * existing store without creating one, and looking a study up with an error that lists the names
 * that do exist. Reads only, so it is safe while a search writes to the same SQLite file (WAL).
 */

import { existsSync } from 'node:fs';
import { type ResolvedConfig, resolveConfig } from '../config/index.js';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { isFileLocation } from '../core/location.js';
import { isRungTrial } from '../core/types.js';
import { type FinalRecord, openStore, type Store, type StudyRecord, type TrialRecord } from '../store/index.js';
import { type DataNotes, readDataNotes } from '../study/data-notes.js';
import { studyFinals } from '../study/finals.js';
import { type LatencyCheckSummary, readLatencyCheck } from '../study/latency-check.js';

/** The store of the study-reading commands when none is named (`run.store`'s default). */
export const DEFAULT_STORE = 'experiments/autoprune.db';

/** In-memory and database-URL stores always "exist"; a file store only once a search made it. */
export function storeExists(location: string): boolean {
  return !isFileLocation(location) || existsSync(location);
}

/** Open a store that must already exist (a typo in --store must not create an empty database). */
export async function openExistingStore(location: string): Promise<Store> {
  if (!storeExists(location)) {
    throw new AutopruneError(
      ErrorCodes.STORE_ERROR,
      `No store at ${quote(location)}; expected the SQLite file of a search (run \`autoprune search <config>\` first, or pass --store <path>)`,
    );
  }
  return openStore(location);
}

/** Run `fn` with the store open; always closes it. */
export async function withStore<T>(location: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openExistingStore(location);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The study, or STUDY_NOT_FOUND naming the studies the store does hold. */
export async function requireStudy(store: Store, name: string): Promise<StudyRecord> {
  const study = await store.getStudy(name);
  if (study !== null) return study;
  const names = (await store.listStudies()).map((s) => s.name);
  const known = names.length === 0 ? 'the store has no studies' : `expected one of: ${names.join(', ')}`;
  throw new AutopruneError(ErrorCodes.STUDY_NOT_FOUND, `Study ${quote(name)} not found; ${known}`);
}

export interface StudyData {
  readonly study: StudyRecord;
  readonly trials: TrialRecord[];
  readonly finals: FinalRecord[];
  /** The rung trials (docs/rungs.md): each accuracy's fidelity in reports, `show`, `pick`, `compare`. */
  readonly rungTrials: TrialRecord[];
  /** What the study recorded about its data besides its hash (skipped files), or null. */
  readonly dataNotes: DataNotes | null;
  /** The latency prediction's last check (src/study/latency-check.ts), or null. */
  readonly latencyCheck: LatencyCheckSummary | null;
}

export async function loadStudyData(store: Store, name: string): Promise<StudyData> {
  const study = await requireStudy(store, name);
  const [trials, dataNotes, latencyCheck] = await Promise.all([store.listTrials(name), readDataNotes(store, name), readLatencyCheck(store, name)]);
  const finals = studyFinals(store, name, trials);
  // The search's trials apart: the last rung reaches the commands as the finals of their origin.
  return { study, trials: trials.filter((t) => !isRungTrial(t)), finals, rungTrials: trials.filter(isRungTrial), dataNotes, latencyCheck };
}

/** The study's stored (already resolved) config, validated again so commands get a typed config. */
export function studyConfig(study: StudyRecord): ResolvedConfig {
  return resolveConfig(study.config, { source: `config of study ${quote(study.name)}` });
}

/** Last time anything happened in a study (state change, trial created or finished), ISO 8601. */
export function lastUpdate(study: StudyRecord, trials: readonly TrialRecord[]): string {
  let last = study.updatedAt;
  for (const t of trials) {
    for (const ts of [t.createdAt, t.startedAt, t.finishedAt]) if (ts !== null && ts > last) last = ts;
  }
  return last;
}
