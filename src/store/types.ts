import type { Candidate, SearchSpace } from '../core/space.js';
import type { Cost, Json, TrialMetrics, TrialStage, TrialState } from '../core/types.js';

export type { Json } from '../core/types.js';

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
  /** Hashes of the base model and dataset the driver created the study with (null: older studies). */
  readonly inputs: StudyInputs | null;
  readonly state: StudyState;
  readonly createdAt: string; // ISO 8601
  readonly updatedAt: string;
}

/**
 * What a study's results depend on besides its config: every host that evaluates its trials must
 * load exactly these (sha256, hex). A worker compares before it claims anything.
 */
export interface StudyInputs {
  /** The base model: topology and weight bytes, layer by layer (src/model/fingerprint.ts). */
  readonly baseModel: string;
  /** The dataset as split for the search: train, validation and test images and labels (src/data/fingerprint.ts). */
  readonly data: string;
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
  /** What the trial evaluates. Default `proxy`. */
  readonly stage?: TrialStage;
  /** The trial whose weights this one starts from (an `adapt` trial); null/absent = the base model. */
  readonly parent?: number | null;
}

export interface TrialRecord extends NewTrial {
  readonly study: string;
  /** 0-based, dense, unique within a study. */
  readonly number: number;
  readonly state: TrialState;
  readonly stage: TrialStage;
  readonly parent: number | null;
  /** How many times a worker claimed it (a lease that expired counts; see `reapExpired`). */
  readonly attempts: number;
  readonly metrics: TrialMetrics;
  readonly error: string | null;
  readonly worker: string | null;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  /**
   * 1, 2, ... within the study, in the order trials finished (complete, failed, expired): given by
   * the transaction that finishes the trial, so it is the order those transactions committed, on
   * every host's clock alike. Any listing holds a prefix of it: a trial that another reader sees
   * finished has every smaller number finished too. Null while unfinished.
   */
  readonly finishSeq: number | null;
}

/** A finalist's result: its last-rung trial's test accuracy, listed under its origin (src/study/finals.ts derives it from the trials). */
export interface FinalRecord {
  readonly study: string;
  readonly trial: number;
  readonly finalAccuracy: number;
  readonly latencyMs: number | null;
  /** Where `latencyMs` was measured (see TrialMetrics); absent when not recorded. */
  readonly latencyHost?: string;
  readonly latencyDevice?: string;
  /** The engine that fine-tuned it (`libtorch` or a tfjs backend's name); absent when not recorded. */
  readonly trainEngine?: string;
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

/**
 * A worker's hold on a running trial. `token` is the fencing token: it changes on every claim, and
 * every write of the holder names it, so a worker whose lease expired (and whose trial may have been
 * claimed again) cannot complete it late (Kleppmann's fencing tokens).
 */
export interface TrialLease {
  readonly study: string;
  readonly number: number;
  readonly token: number;
}

export interface Claim extends TrialLease {
  readonly trial: TrialRecord;
}

/** The driver's hold on a study: one live driver per study; its writes (enqueue, snapshots) are fenced too. */
export interface DriverLease {
  readonly study: string;
  readonly owner: string;
  readonly token: number;
}

/** What `reapExpired` did: trials whose lease ran out went back to `waiting`, or failed after the retry limit. */
export interface Reaped {
  readonly requeued: number[];
  readonly failed: number[];
}

/** A file of a study's artifacts: its key (a relative path like `trials/3/model/weights.bin`), sha256 (hex) and size in bytes. */
export interface ArtifactInfo {
  readonly key: string;
  readonly sha256: string;
  readonly size: number;
}

/** Controller snapshots kept per study: resume needs only the latest; a few more help debugging. */
export const SNAPSHOTS_KEPT = 3;

/**
 * The source of truth of a search, and its work queue. Async so that a
 * remote backend (PostgreSQL) can implement it; the SQLite backend resolves synchronously underneath.
 * Finished trials (complete/failed) are immutable: any write to them throws TRIAL_IMMUTABLE.
 *
 * Queue contract (every backend; test/store-contract.ts checks it):
 *  - `enqueueTrials` appends waiting trials with dense numbers AND saves the controller snapshot
 *    in one transaction, fenced by the driver's lease: a crash leaves both or neither.
 *  - `claimTrial` moves the lowest-numbered waiting trial whose parent (if any) has finished to
 *    running atomically (two workers never get the same one; a child never starts before the weights
 *    it starts from exist), gives it a new fencing token and a lease until `now + leaseMs`.
 *    PostgreSQL pops the queue with `SELECT ... ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED`.
 *  - `heartbeat`, `completeTrial`, `failTrial` succeed only while the trial is running
 *    under that token and its lease has not expired; otherwise LEASE_LOST (or TRIAL_IMMUTABLE when
 *    it is already finished).
 *  - `reapExpired` moves running trials whose lease ran out back to waiting, or fails them with the
 *    reason once they were claimed `maxAttempts` times.
 *  - Finishing a trial (complete, fail, expire) gives it the study's next `finishSeq` in the same
 *    transaction; every listing holds a prefix of that sequence.
 *  - Trials enter only through `enqueueTrials`, and move only as TRANSITIONS (shared.ts) allows,
 *    checked on the row read in the writing transaction (sql.ts).
 *  - The clock of leases is the store's (`StoreOptions.clock`, injectable for tests).
 */
/**
 * Which trials `listTrials` returns (both when both are given). `numbers`: only trials with these
 * numbers (those that exist; an empty list gives none). The driver re-reads just the trials it last
 * saw waiting or running, so each look costs what is in flight, not the whole study.
 */
export interface TrialFilter {
  readonly state?: TrialState;
  readonly numbers?: readonly number[];
}

export interface StoreOptions {
  /** Milliseconds since the epoch, for leases. Default Date.now (tests inject a fake clock). */
  readonly clock?: () => number;
}

export interface Store extends LatencyTables {
  /**
   * Where another connection (a thread of this process, another process) can open this same store: a
   * file path or a postgres:// URL; null when the store lives only in this object (memory, or a test
   * clock injected that another connection would not share).
   */
  readonly location: string | null;
  createStudy(s: Omit<StudyRecord, 'createdAt' | 'updatedAt' | 'state' | 'inputs'> & { inputs?: StudyInputs | null }): Promise<StudyRecord>;
  getStudy(name: string): Promise<StudyRecord | null>;
  listStudies(): Promise<StudyRecord[]>;
  setStudyState(name: string, state: StudyState): Promise<void>;
  setBaseAccuracy(name: string, acc: { proxy?: number; test?: number }): Promise<void>;
  /** Removes the study and everything under it (for `--fresh`). */
  deleteStudy(name: string): Promise<void>;

  /** Waiting trials and the controller snapshot that proposed them, in one transaction (fenced by `driver`). */
  enqueueTrials(driver: DriverLease, trials: readonly NewTrial[], snapshot: { told: number; state: Json }): Promise<TrialRecord[]>;
  /** The lowest waiting trial (or trial `number`, if it is waiting), now running under a new lease; null when none waits. */
  claimTrial(study: string, worker: string, o: { leaseMs: number; number?: number }): Promise<Claim | null>;
  /** Extends the lease to now + leaseMs; LEASE_LOST when it already expired or was taken over. */
  heartbeat(lease: TrialLease, leaseMs: number): Promise<void>;
  completeTrial(lease: TrialLease, metrics: TrialMetrics): Promise<TrialRecord>;
  failTrial(lease: TrialLease, error: string): Promise<TrialRecord>;
  /**
   * Running trials whose lease expired, or whose worker is in `gone` (known dead, e.g. a process of
   * this host that no longer exists): back to waiting, or failed once claimed `maxAttempts` times.
   */
  reapExpired(study: string, o: { maxAttempts: number; gone?: readonly string[] }): Promise<Reaped>;

  /**
   * Takes the study for one driver until now + leaseMs; STUDY_BUSY when another driver holds an
   * unexpired lease, unless `stale(owner)` says that holder is known dead (checked in the transaction).
   */
  acquireDriver(study: string, owner: string, leaseMs: number, o?: { stale?: (holder: string) => boolean }): Promise<DriverLease>;
  /** Extends the driver's lease; LEASE_LOST when it expired and another driver took the study. */
  renewDriver(lease: DriverLease, leaseMs: number): Promise<void>;
  releaseDriver(lease: DriverLease): Promise<void>;
  /**
   * This process's folder of the study's artifacts (adapted weights, finalist models), laid out by
   * key: SQLite keeps the artifacts themselves there (beside its file; a temporary folder for `:memory:`); PostgreSQL
   * keeps them in the database and this folder is only a local copy (see src/store/artifacts.ts).
   */
  artifactDir(study: string): string;
  /**
   * Stores bytes under `key` in the study (replacing what was there), where every process of this
   * store can read them: the folder for SQLite, a table for PostgreSQL. Idempotent.
   */
  putArtifact(study: string, key: string, bytes: Uint8Array): Promise<ArtifactInfo>;
  /** The bytes under `key`, or null when there are none. */
  getArtifact(study: string, key: string): Promise<Uint8Array | null>;
  /** The study's artifacts whose key starts with `prefix` (default all), by key. */
  listArtifacts(study: string, prefix?: string): Promise<ArtifactInfo[]>;
  getTrial(study: string, number: number): Promise<TrialRecord | null>;
  /** The study's trials in number order; `filter` keeps those in `state` and/or those numbered in `numbers`. */
  listTrials(study: string, filter?: TrialFilter): Promise<TrialRecord[]>;
  latestSnapshot(study: string): Promise<ControllerSnapshot | null>;

  close(): Promise<void>;
}

// ---- Latency tables (src/latency/): per-layer latencies measured on one engine and host ----

/**
 * Which table an entry belongs to: latencies of one engine build on one host, at one intra-op thread
 * count and batch size. Entries of another version or host are never mixed in (they do not compare).
 */
export interface LatencyTableId {
  /** `onnxruntime` or `onnxruntime-cuda`. */
  readonly engine: string;
  /** The engine's version (onnxruntime-node's). */
  readonly engineVersion: string;
  /** `<hostname>/<cpu model name>`. */
  readonly host: string;
  readonly threads: number;
  readonly batch: number;
}

/** A layer shape a search can produce (HALP's table key, plus padding). */
export interface LatencyShape {
  /** `conv` (grouped when `groups` > 1; depthwise when groups = cin = cout) or `dense`. */
  readonly op: 'conv' | 'dense';
  readonly cin: number;
  readonly cout: number;
  /** Input feature map height and width (1 × 1 for dense). */
  readonly h: number;
  readonly w: number;
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  readonly pad: 'same' | 'valid';
  readonly groups: number;
}

export interface NewLatencyEntry extends LatencyShape {
  /** Milliseconds per call of `batch` images, per-call overhead excluded (the slope of a k-copy model). */
  readonly ms: number;
}

export interface LatencyEntry extends NewLatencyEntry {
  readonly measuredAt: string; // ISO 8601
}

/** Kept by every store beside the studies: a table is shared by every study and worker on its host. */
export interface LatencyTables {
  /** Inserts or replaces (same table and shape) the entries, in one transaction. */
  putLatencyEntries(table: LatencyTableId, entries: readonly NewLatencyEntry[]): Promise<void>;
  /** Every entry of exactly this table (engine, version, host, threads, batch). */
  getLatencyEntries(table: LatencyTableId): Promise<LatencyEntry[]>;
}
