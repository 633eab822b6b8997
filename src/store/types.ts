import type { Candidate, SearchSpace } from '../core/space.js';
import type { Cost, TrialMetrics, TrialState } from '../core/types.js';

/** JSON-serialisable value (what crosses the store boundary). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export type StudyState = 'running' | 'stopped' | 'complete';

export interface StudyRecord {
  readonly name: string;
  /** sha256 of the resolved config, to warn when a resumed study's config changed. */
  readonly configHash: string;
  /** The resolved config as JSON. */
  readonly config: Json;
  readonly space: SearchSpace;
  readonly baseCost: Cost;
  /** Base model accuracy on the validation split (proxy scale) and on test, when measured. */
  readonly baseProxyAccuracy: number | null;
  readonly baseTestAccuracy: number | null;
  readonly state: StudyState;
  readonly createdAt: string; // ISO 8601
  readonly updatedAt: string;
}

export interface NewTrial {
  readonly candidate: Candidate;
  /** candidateKey(candidate): identical vectors are evaluated once. */
  readonly key: string;
  readonly cost: Cost;
  /** Name of the controller that proposed it (`random`, `uniform`, ...). */
  readonly controller: string;
  /** Controller-specific data (e.g. { target: 0.5 }). */
  readonly meta?: Json;
}

export interface TrialRecord extends NewTrial {
  readonly study: string;
  /** 0-based, dense, unique within a study. */
  readonly number: number;
  readonly state: TrialState;
  readonly metrics: TrialMetrics;
  readonly error: string | null;
  readonly worker: string | null;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
}

/** Finalist result: fine-tuned and scored on the test split; stored beside (not inside) the trial. */
export interface FinalRecord {
  readonly study: string;
  readonly trial: number;
  readonly finalAccuracy: number;
  readonly latencyMs: number | null;
  readonly epochs: number;
  /** Where the fine-tuned model was saved (tfjs LayersModel folder), if it was. */
  readonly modelPath: string | null;
  readonly seconds: number;
  readonly createdAt: string;
}

export interface ControllerSnapshot {
  readonly study: string;
  /** Number of trials the controller had been told about when the snapshot was taken. */
  readonly told: number;
  readonly state: Json;
  readonly createdAt: string;
}

/** Controller snapshots kept per study: resume needs only the latest; a few more help debugging. */
export const SNAPSHOTS_KEPT = 3;

/**
 * The source of truth of a search (STYLE.md principle 2). Async so that a remote backend
 * (PostgreSQL) can implement it; the SQLite backend resolves synchronously underneath.
 * Finished trials (complete/failed) are immutable: any write to them throws TRIAL_IMMUTABLE.
 */
export interface Store {
  createStudy(s: Omit<StudyRecord, 'createdAt' | 'updatedAt' | 'state'>): Promise<StudyRecord>;
  getStudy(name: string): Promise<StudyRecord | null>;
  listStudies(): Promise<StudyRecord[]>;
  setStudyState(name: string, state: StudyState): Promise<void>;
  setBaseAccuracy(name: string, acc: { proxy?: number; test?: number }): Promise<void>;
  /** Removes the study and everything under it (for `--fresh`). */
  deleteStudy(name: string): Promise<void>;

  /** Adds a trial in state `waiting` with the next trial number (atomic). */
  createTrial(study: string, t: NewTrial): Promise<TrialRecord>;
  startTrial(study: string, number: number, worker: string): Promise<TrialRecord>;
  completeTrial(study: string, number: number, metrics: TrialMetrics): Promise<TrialRecord>;
  failTrial(study: string, number: number, error: string): Promise<TrialRecord>;
  /** Moves `running` trials back to `waiting` (a process died while evaluating them). Returns their numbers. */
  requeueRunning(study: string): Promise<number[]>;
  getTrial(study: string, number: number): Promise<TrialRecord | null>;
  listTrials(study: string, filter?: { state?: TrialState }): Promise<TrialRecord[]>;
  /** A trial with this candidate key, if any (complete first, then others). */
  findTrialByKey(study: string, key: string): Promise<TrialRecord | null>;

  /** Saves a controller snapshot; only the latest few (SNAPSHOTS_KEPT) are kept, older ones are dropped. */
  saveSnapshot(study: string, told: number, state: Json): Promise<void>;
  latestSnapshot(study: string): Promise<ControllerSnapshot | null>;

  saveFinal(f: Omit<FinalRecord, 'createdAt'>): Promise<FinalRecord>;
  listFinals(study: string): Promise<FinalRecord[]>;

  close(): Promise<void>;
}
