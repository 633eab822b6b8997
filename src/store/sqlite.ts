/**
 * SQLite backend (better-sqlite3). One file holds any number of studies; several processes may
 * share it: WAL lets a report read while a search writes, busy_timeout makes writers queue instead
 * of failing, and every read-check-write runs in a BEGIN IMMEDIATE transaction so two writers never
 * allocate the same trial number or both claim one trial. The immutability of finished trials is
 * also a trigger (migrations.ts), so a writer that bypasses this class cannot change them either.
 * Table layout inspired by Optuna's RDB storage (studies / trials / per-trial values).
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { AutopruneError, ErrorCodes, isAutopruneError, quote } from '../core/errors.js';
import type { TrialMetrics } from '../core/types.js';
import { FolderArtifacts } from './artifacts.js';
import { checkLatencyEntry, checkLatencyTable, LATENCY_KEY_COLUMNS, type LatencyRow, latencyFromRow, latencyRowValues } from './latency.js';
import { migrate } from './migrations.js';
import { type FinalRow, finalFromRow, type StudyRow, studyFromRow, type TrialRow, trialFromRow } from './rows.js';
import {
  checkBaseAccuracy,
  checkDriver,
  checkFinal,
  checkLease,
  checkLeaseMs,
  checkMetrics,
  checkNewStudy,
  checkNewTrial,
  checkParent,
  checkStudyName,
  checkStudyState,
  checkText,
  checkTrialNumber,
  decodeJson,
  deepFreeze,
  encodeJson,
  expiredReason,
  fromSql,
  type NewFinal,
  type NewStudy,
  nowIso,
  stageOf,
  storeErrors,
  type Transition,
  toSql,
} from './shared.js';
import type {
  ArtifactInfo,
  Claim,
  ControllerSnapshot,
  DriverLease,
  FinalRecord,
  Json,
  LatencyEntry,
  LatencyTableId,
  NewLatencyEntry,
  NewTrial,
  Reaped,
  Store,
  StoreOptions,
  StudyRecord,
  StudyState,
  TrialFilter,
  TrialLease,
  TrialRecord,
} from './types.js';
import { SNAPSHOTS_KEPT } from './types.js';

export interface SqliteStoreOptions extends StoreOptions {
  /** How long a writer waits for another process's write lock before failing, in ms. Default 10000. */
  readonly busyTimeoutMs?: number;
}

interface SnapshotRow {
  told: number;
  state: string;
  created_at: string;
}

const TRIAL_COLUMNS = `number, state, candidate, key, macs, params, controller, meta, proxy_accuracy, final_accuracy,
  latency_ms, latency_host, latency_device, timings, error, worker, created_at, started_at, finished_at, stage, parent, attempts, lease_token, lease_expires_ms`;

export class SqliteStore implements Store {
  readonly path: string;
  readonly location: string | null;
  private readonly db: Database.Database;
  private closed = false;
  /** Runs its argument inside BEGIN IMMEDIATE ... COMMIT (rolled back if it throws). */
  private readonly tx: { immediate: (f: () => unknown) => unknown };

  private readonly clock: () => number;

  /** This process's folder of artifacts: beside the file, or a temporary folder of its own for `:memory:`. */
  private readonly artifacts: string;

  /** Opens (creating if needed) and migrates; `:memory:` is a database of this connection only. */
  protected constructor(path: string, options: SqliteStoreOptions = {}) {
    const busy = options.busyTimeoutMs ?? 10_000;
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: busy });
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busy))}`);
      // WAL persists in the file; on ':memory:' it stays 'memory', which is fine.
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db, path);
    } catch (e) {
      db?.close();
      throw toStoreError(e, path);
    }
    const memory = path === ':memory:';
    this.path = path;
    this.location = memory || options.clock !== undefined ? null : path;
    this.db = db;
    this.clock = options.clock ?? Date.now;
    this.tx = db.transaction((f: () => unknown) => f());
    this.artifacts = memory
      ? join(tmpdir(), `autoprune-memory-${process.pid}-${randomBytes(6).toString('hex')}`)
      : join(dirname(path), `${basename(path)}.artifacts`);
  }

  /** Open (creating if needed) and migrate. The parent folder must exist (openStore creates it). */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    return new SqliteStore(path, options);
  }

  /** The underlying connection, for diagnostics and tests (pragma checks, raw SQL). */
  get connection(): Database.Database {
    return this.db;
  }

  private run<T>(f: () => T): Promise<T> {
    try {
      if (this.closed) throw storeErrors.closed();
      return Promise.resolve(f());
    } catch (e) {
      return Promise.reject(toStoreError(e, this.path));
    }
  }

  private write<T>(f: () => T): Promise<T> {
    return this.run(() => this.tx.immediate(f) as T);
  }

  private studyRow(name: string): StudyRow | undefined {
    return this.db.prepare('SELECT * FROM studies WHERE name = ?').get(name) as StudyRow | undefined;
  }

  private studyId(name: string): number {
    checkStudyName(name);
    const r = this.db.prepare('SELECT id FROM studies WHERE name = ?').get(name) as { id: number } | undefined;
    if (r === undefined) throw storeErrors.studyNotFound(name);
    return r.id;
  }

  private trialRow(studyId: number, n: number): TrialRow | undefined {
    return this.db.prepare(`SELECT ${TRIAL_COLUMNS} FROM trials WHERE study_id = ? AND number = ?`).get(studyId, n) as TrialRow | undefined;
  }

  private existingTrial(study: string, studyId: number, n: number): TrialRow {
    checkTrialNumber(n);
    const r = this.trialRow(studyId, n);
    if (r === undefined) throw storeErrors.trialNotFound(study, n);
    return r;
  }

  createStudy(s: NewStudy): Promise<StudyRecord> {
    return this.write(() => {
      checkNewStudy(s);
      if (this.studyRow(s.name) !== undefined) throw storeErrors.studyExists(s.name);
      const now = nowIso();
      this.db
        .prepare(
          `INSERT INTO studies (name, config, config_hash, space, base_macs, base_params, base_proxy_accuracy,
             base_test_accuracy, base_hash, data_hash, state, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)`,
        )
        .run(
          s.name,
          encodeJson(s.config),
          s.configHash,
          encodeJson(s.space),
          s.baseCost.macs,
          s.baseCost.params,
          s.baseProxyAccuracy,
          s.baseTestAccuracy,
          s.inputs?.baseModel ?? null,
          s.inputs?.data ?? null,
          now,
          now,
        );
      return studyFromRow(this.studyRow(s.name)!);
    });
  }

  getStudy(name: string): Promise<StudyRecord | null> {
    return this.run(() => {
      const r = this.studyRow(name);
      return r === undefined ? null : studyFromRow(r);
    });
  }

  listStudies(): Promise<StudyRecord[]> {
    return this.run(() => (this.db.prepare('SELECT * FROM studies ORDER BY id').all() as StudyRow[]).map(studyFromRow));
  }

  setStudyState(name: string, state: StudyState): Promise<void> {
    return this.write(() => {
      checkStudyState(state);
      const id = this.studyId(name);
      this.db.prepare('UPDATE studies SET state = ?, updated_at = ? WHERE id = ?').run(state, nowIso(), id);
    });
  }

  setBaseAccuracy(name: string, acc: { proxy?: number; test?: number }): Promise<void> {
    return this.write(() => {
      checkBaseAccuracy(acc);
      const id = this.studyId(name);
      this.db
        .prepare(
          `UPDATE studies SET base_proxy_accuracy = COALESCE(?, base_proxy_accuracy),
             base_test_accuracy = COALESCE(?, base_test_accuracy), updated_at = ? WHERE id = ?`,
        )
        .run(acc.proxy ?? null, acc.test ?? null, nowIso(), id);
    });
  }

  async deleteStudy(name: string): Promise<void> {
    // Trials, finals and snapshots go with it (ON DELETE CASCADE); then its artifacts.
    await this.write(() => {
      this.db.prepare('DELETE FROM studies WHERE id = ?').run(this.studyId(name));
    });
    await rm(this.artifactDir(name), { recursive: true, force: true });
  }

  /** Inserts one waiting trial with the next number; call inside a write transaction. */
  private insertTrial(study: string, id: number, t: NewTrial): TrialRecord {
    checkNewTrial(t);
    // MAX+1 inside the write transaction: no other connection can insert in between.
    const { n } = this.db.prepare('SELECT COALESCE(MAX(number) + 1, 0) AS n FROM trials WHERE study_id = ?').get(id) as { n: number };
    checkParent(study, t, n, (p) => this.trialRow(id, p) !== undefined);
    this.db
      .prepare(
        `INSERT INTO trials (study_id, number, state, candidate, key, macs, params, controller, meta, created_at, stage, parent)
         VALUES (?, ?, 'waiting', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        n,
        encodeJson({ channels: t.candidate.channels }),
        t.key,
        t.cost.macs,
        t.cost.params,
        t.controller,
        t.meta === undefined ? null : encodeJson(t.meta),
        nowIso(),
        stageOf(t),
        t.parent ?? null,
      );
    return trialFromRow(study, this.trialRow(id, n)!);
  }

  enqueueTrials(driver: DriverLease, trials: readonly NewTrial[], snapshot: { told: number; state: Json }): Promise<TrialRecord[]> {
    return this.write(() => {
      const id = this.studyId(driver.study);
      this.checkDriverRow(id, driver);
      const out = trials.map((t) => this.insertTrial(driver.study, id, t));
      this.insertSnapshot(id, snapshot.told, snapshot.state);
      return out;
    });
  }

  claimTrial(study: string, worker: string, o: { leaseMs: number; number?: number }): Promise<Claim | null> {
    return this.write(() => {
      checkLeaseMs(o.leaseMs);
      checkText('worker name', worker);
      const id = this.studyId(study);
      if (o.number !== undefined) checkTrialNumber(o.number);
      const pick = this.db
        .prepare(
          `SELECT number FROM trials t WHERE study_id = ? AND ${fromSql('claim')} AND (? IS NULL OR number = ?)
             AND (parent IS NULL OR EXISTS (SELECT 1 FROM trials p WHERE p.study_id = t.study_id AND p.number = t.parent AND p.state IN ('complete', 'failed')))
           ORDER BY number LIMIT 1`,
        )
        .get(id, o.number ?? null, o.number ?? null) as { number: number } | undefined;
      if (pick === undefined) return null;
      this.db
        .prepare(
          `UPDATE trials SET ${toSql('claim')}, worker = ?, started_at = ?, attempts = attempts + 1,
             lease_token = lease_token + 1, lease_expires_ms = ? WHERE study_id = ? AND number = ?`,
        )
        .run(worker, nowIso(), this.clock() + o.leaseMs, id, pick.number);
      const trial = trialFromRow(study, this.trialRow(id, pick.number)!);
      const { lease_token } = this.trialRow(id, pick.number)!;
      return deepFreeze({ study, number: pick.number, token: lease_token, trial });
    });
  }

  /** The trial's row after the fencing check (inside a write transaction). */
  private leased(l: TrialLease, action: Transition): { id: number; row: TrialRow } {
    const id = this.studyId(l.study);
    const row = this.existingTrial(l.study, id, l.number);
    checkLease(l, { state: row.state, token: row.lease_token, expiresMs: row.lease_expires_ms }, this.clock(), action);
    return { id, row };
  }

  heartbeat(l: TrialLease, leaseMs: number): Promise<void> {
    return this.write(() => {
      checkLeaseMs(leaseMs);
      const { id } = this.leased(l, 'heartbeat');
      this.db.prepare('UPDATE trials SET lease_expires_ms = ? WHERE study_id = ? AND number = ?').run(this.clock() + leaseMs, id, l.number);
    });
  }

  completeTrial(l: TrialLease, metrics: TrialMetrics): Promise<TrialRecord> {
    return this.write(() => {
      checkMetrics(metrics);
      const { id } = this.leased(l, 'complete');
      this.db
        .prepare(
          `UPDATE trials SET ${toSql('complete')}, proxy_accuracy = ?, final_accuracy = ?, latency_ms = ?, latency_host = ?, latency_device = ?,
             timings = ?, finished_at = ?, lease_expires_ms = NULL WHERE study_id = ? AND number = ?`,
        )
        .run(
          metrics.proxyAccuracy ?? null,
          metrics.finalAccuracy ?? null,
          metrics.latencyMs ?? null,
          metrics.latencyHost ?? null,
          metrics.latencyDevice ?? null,
          metrics.timings === undefined ? null : encodeJson(metrics.timings),
          nowIso(),
          id,
          l.number,
        );
      return trialFromRow(l.study, this.trialRow(id, l.number)!);
    });
  }

  failTrial(l: TrialLease, error: string): Promise<TrialRecord> {
    return this.write(() => {
      const { id } = this.leased(l, 'fail');
      this.finish(id, l.number, String(error), 'fail');
      return trialFromRow(l.study, this.trialRow(id, l.number)!);
    });
  }

  private finish(id: number, n: number, error: string, how: 'fail' | 'expire'): void {
    this.db
      .prepare(`UPDATE trials SET ${toSql(how)}, error = ?, finished_at = ?, lease_expires_ms = NULL WHERE study_id = ? AND number = ?`)
      .run(error, nowIso(), id, n);
  }

  private requeue(id: number, n: number): void {
    this.db
      .prepare(`UPDATE trials SET ${toSql('requeue')}, worker = NULL, started_at = NULL, lease_expires_ms = NULL WHERE study_id = ? AND number = ?`)
      .run(id, n);
  }

  reapExpired(study: string, o: { maxAttempts: number; gone?: readonly string[] }): Promise<Reaped> {
    return this.write(() => {
      const id = this.studyId(study);
      const gone = new Set(o.gone ?? []);
      const rows = (
        this.db
          .prepare(`SELECT number, attempts, worker, lease_expires_ms FROM trials WHERE study_id = ? AND ${fromSql('requeue')} ORDER BY number`)
          .all(id) as {
          number: number;
          attempts: number;
          worker: string | null;
          lease_expires_ms: number | null;
        }[]
      ).filter((r) => (r.lease_expires_ms ?? 0) < this.clock() || (r.worker !== null && gone.has(r.worker)));
      const reaped = { requeued: [] as number[], failed: [] as number[] };
      for (const r of rows) {
        if (r.attempts >= o.maxAttempts) {
          this.finish(id, r.number, expiredReason(r.attempts, r.worker), 'expire');
          reaped.failed.push(r.number);
        } else {
          this.requeue(id, r.number);
          reaped.requeued.push(r.number);
        }
      }
      return reaped;
    });
  }

  private driverRow(id: number): { owner: string; token: number; expiresMs: number } | null {
    const r = this.db.prepare('SELECT owner, token, expires_ms FROM drivers WHERE study_id = ?').get(id) as
      | { owner: string; token: number; expires_ms: number }
      | undefined;
    return r === undefined ? null : { owner: r.owner, token: r.token, expiresMs: r.expires_ms };
  }

  private checkDriverRow(id: number, l: DriverLease): void {
    checkDriver(l, this.driverRow(id), this.clock());
  }

  acquireDriver(study: string, owner: string, leaseMs: number, o: { stale?: (holder: string) => boolean } = {}): Promise<DriverLease> {
    return this.write(() => {
      checkLeaseMs(leaseMs);
      checkText('driver owner', owner);
      const id = this.studyId(study);
      const cur = this.driverRow(id);
      const now = this.clock();
      if (cur !== null && cur.expiresMs >= now && !o.stale?.(cur.owner)) throw storeErrors.busy(study, cur.owner, cur.expiresMs, now);
      const token = (cur?.token ?? 0) + 1;
      this.db
        .prepare(
          'INSERT INTO drivers (study_id, owner, token, expires_ms) VALUES (?, ?, ?, ?) ON CONFLICT (study_id) DO UPDATE SET owner = excluded.owner, token = excluded.token, expires_ms = excluded.expires_ms',
        )
        .run(id, owner, token, now + leaseMs);
      return deepFreeze({ study, owner, token });
    });
  }

  renewDriver(l: DriverLease, leaseMs: number): Promise<void> {
    return this.write(() => {
      checkLeaseMs(leaseMs);
      const id = this.studyId(l.study);
      this.checkDriverRow(id, l);
      this.db.prepare('UPDATE drivers SET expires_ms = ? WHERE study_id = ?').run(this.clock() + leaseMs, id);
    });
  }

  releaseDriver(l: DriverLease): Promise<void> {
    return this.write(() => {
      const id = this.studyId(l.study);
      const cur = this.driverRow(id);
      if (cur !== null && cur.token === l.token) this.db.prepare('UPDATE drivers SET expires_ms = 0 WHERE study_id = ?').run(id);
    });
  }

  artifactDir(study: string): string {
    checkStudyName(study);
    return join(this.artifacts, study);
  }

  private readonly files = new FolderArtifacts((study) => this.artifactDir(study));

  async putArtifact(study: string, key: string, bytes: Uint8Array): Promise<ArtifactInfo> {
    await this.run(() => this.studyId(study));
    return this.files.put(study, key, bytes);
  }

  async getArtifact(study: string, key: string): Promise<Uint8Array | null> {
    await this.run(() => this.studyId(study));
    return this.files.get(study, key);
  }

  async listArtifacts(study: string, prefix = ''): Promise<ArtifactInfo[]> {
    await this.run(() => this.studyId(study));
    return this.files.list(study, prefix);
  }

  getTrial(study: string, number: number): Promise<TrialRecord | null> {
    return this.run(() => {
      const id = this.studyId(study);
      checkTrialNumber(number);
      const r = this.trialRow(id, number);
      return r === undefined ? null : trialFromRow(study, r);
    });
  }

  listTrials(study: string, filter: TrialFilter = {}): Promise<TrialRecord[]> {
    return this.run(() => {
      const id = this.studyId(study);
      filter.numbers?.forEach(checkTrialNumber);
      // The numbers travel as one JSON array parameter (json_each), so the statement is the same for any count.
      const rows = this.db
        .prepare(
          `SELECT ${TRIAL_COLUMNS} FROM trials WHERE study_id = @id AND (@state IS NULL OR state = @state)
             AND (@numbers IS NULL OR number IN (SELECT value FROM json_each(@numbers))) ORDER BY number`,
        )
        .all({ id, state: filter.state ?? null, numbers: filter.numbers ? JSON.stringify(filter.numbers) : null }) as TrialRow[];
      return rows.map((r) => trialFromRow(study, r));
    });
  }

  private insertSnapshot(id: number, told: number, state: Json): void {
    checkTrialNumber(told);
    this.db.prepare('INSERT INTO snapshots (study_id, told, state, created_at) VALUES (?, ?, ?, ?)').run(id, told, encodeJson(state), nowIso());
    // One snapshot per ask and per tell would otherwise grow quadratically over a long study.
    this.db
      .prepare('DELETE FROM snapshots WHERE study_id = ? AND id NOT IN (SELECT id FROM snapshots WHERE study_id = ? ORDER BY id DESC LIMIT ?)')
      .run(id, id, SNAPSHOTS_KEPT);
  }

  latestSnapshot(study: string): Promise<ControllerSnapshot | null> {
    // "Latest" is the last saved (highest id), not the highest `told` nor the clock.
    return this.run(() => {
      const id = this.studyId(study);
      const r = this.db.prepare('SELECT told, state, created_at FROM snapshots WHERE study_id = ? ORDER BY id DESC LIMIT 1').get(id) as SnapshotRow | undefined;
      if (r === undefined) return null;
      return deepFreeze({ study, told: r.told, state: decodeJson(r.state), createdAt: r.created_at });
    });
  }

  saveFinal(f: NewFinal): Promise<FinalRecord> {
    return this.write(() => {
      checkFinal(f);
      const id = this.studyId(f.study);
      this.existingTrial(f.study, id, f.trial);
      // Saving a finalist again (re-run) replaces the earlier result.
      this.db
        .prepare(
          `INSERT INTO finals (study_id, trial, final_accuracy, latency_ms, latency_host, latency_device, train_engine, epochs, model_path, seconds, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (study_id, trial) DO UPDATE SET final_accuracy = excluded.final_accuracy,
             latency_ms = excluded.latency_ms, latency_host = excluded.latency_host, latency_device = excluded.latency_device, train_engine = excluded.train_engine,
             epochs = excluded.epochs, model_path = excluded.model_path, seconds = excluded.seconds, created_at = excluded.created_at`,
        )
        .run(
          id,
          f.trial,
          f.finalAccuracy,
          f.latencyMs,
          f.latencyHost ?? null,
          f.latencyDevice ?? null,
          f.trainEngine ?? null,
          f.epochs,
          f.modelPath,
          f.seconds,
          nowIso(),
        );
      const r = this.db.prepare('SELECT * FROM finals WHERE study_id = ? AND trial = ?').get(id, f.trial) as FinalRow;
      return finalFromRow(f.study, r);
    });
  }

  listFinals(study: string): Promise<FinalRecord[]> {
    return this.run(() => {
      const id = this.studyId(study);
      const rows = this.db.prepare('SELECT * FROM finals WHERE study_id = ? ORDER BY trial').all(id) as FinalRow[];
      return rows.map((r) => finalFromRow(study, r));
    });
  }

  // ---- Latency tables (types.ts LatencyTables) ----

  putLatencyEntries(table: LatencyTableId, entries: readonly NewLatencyEntry[]): Promise<void> {
    return this.write(() => {
      checkLatencyTable(table);
      entries.forEach(checkLatencyEntry);
      const cols = [...LATENCY_KEY_COLUMNS, 'ms', 'measured_at'];
      const insert = this.db.prepare(
        `INSERT INTO latency_entries (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})
         ON CONFLICT (${LATENCY_KEY_COLUMNS.join(', ')}) DO UPDATE SET ms = excluded.ms, measured_at = excluded.measured_at`,
      );
      const now = nowIso();
      for (const e of entries) insert.run(...latencyRowValues(table, e), e.ms, now);
    });
  }

  getLatencyEntries(table: LatencyTableId): Promise<LatencyEntry[]> {
    return this.run(() => {
      checkLatencyTable(table);
      const rows = this.db
        .prepare(
          'SELECT * FROM latency_entries WHERE engine = ? AND engine_version = ? AND host = ? AND threads = ? AND batch = ? ORDER BY op, cin, cout, h, w',
        )
        .all(table.engine, table.engineVersion, table.host, table.threads, table.batch) as LatencyRow[];
      return rows.map(latencyFromRow);
    });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }
}

/** Every failure leaves as an AutopruneError; the trigger's refusal keeps its own code. */
function toStoreError(e: unknown, path: string): AutopruneError {
  if (isAutopruneError(e)) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as { code?: unknown }).code;
  if (err.message.includes('TRIAL_IMMUTABLE')) {
    return new AutopruneError(ErrorCodes.TRIAL_IMMUTABLE, err.message, { cause: e });
  }
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new AutopruneError(ErrorCodes.STORE_ERROR, `Database ${quote(path)} stayed locked by another writer past the busy timeout: ${err.message}`, {
      cause: e,
    });
  }
  return new AutopruneError(ErrorCodes.STORE_ERROR, `Store ${quote(path)}: ${err.message}`, { cause: e });
}
