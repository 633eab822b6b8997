/**
 * The store's queries, once, for every SQL backend (dialect.ts): SQLite (files and `:memory:`) and
 * PostgreSQL share the tables (rows.ts), the rules (shared.ts) and these statements. Every change
 * of a trial's state is a read-check-write in one write transaction: the trial row is read (locked
 * on PostgreSQL), the transition is checked in code (checkMove, checkLease), then written; so the
 * rules are enforced here, the same for every backend, and the trigger on finished trials (both
 * schemas) guards writers that bypass the store.
 *
 * Lock order on PostgreSQL, to queue instead of deadlocking: a transaction that locks trial rows
 * takes them before the study row (finishing a trial, reaping); one that locks the study row
 * (enqueue, acquireDriver) takes no existing trial row; driver row after study row.
 * Table layout inspired by Optuna's RDB storage (studies / trials / per-trial values).
 */
import type { TrialMetrics } from '../core/types.js';
import { type ArtifactPlace, type Dialect, type Op, row, rows, type WriteOptions } from './dialect.js';
import { checkLatencyEntry, checkLatencyTable, LATENCY_KEY_COLUMNS, type LatencyRow, latencyFromRow, latencyRowValues } from './latency.js';
import { type StudyRow, studyFromRow, type TrialRow, trialFromRow } from './rows.js';
import {
  checkArtifactKey,
  checkBaseAccuracy,
  checkDriver,
  checkLease,
  checkLeaseMs,
  checkMetrics,
  checkMove,
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
  type NewStudy,
  nowIso,
  stageOf,
  storeErrors,
  TRANSITIONS,
  type Transition,
  toSql,
} from './shared.js';
import type {
  ArtifactInfo,
  Claim,
  ControllerSnapshot,
  DriverLease,
  Json,
  LatencyEntry,
  LatencyTableId,
  NewLatencyEntry,
  NewTrial,
  Reaped,
  Store,
  StudyRecord,
  StudyState,
  TrialFilter,
  TrialLease,
  TrialRecord,
} from './types.js';
import { SNAPSHOTS_KEPT } from './types.js';

const TRIAL_COLUMNS = `number, state, candidate, key, macs, params, controller, meta, proxy_accuracy, final_accuracy,
  latency_ms, latency_host, latency_device, timings, error, worker, created_at, started_at, finished_at, finish_seq, stage, parent, attempts, lease_token, lease_expires_ms`;

const STUDY_COLUMNS = `id, name, config, config_hash, space, base_macs, base_params, base_proxy_accuracy,
  base_test_accuracy, base_hash, data_hash, state, created_at, updated_at`;

/** The id of the study named by the next parameter, as a subquery (saves a round trip where a missing study is told apart afterwards). */
const STUDY_ID = 'SELECT id FROM studies WHERE name = ?';

type DriverRow = { owner: string; token: number; expiresMs: number };

export abstract class SqlStore implements Store {
  /** The tail of this process's claims (see claimTrial). */
  private claims: Promise<unknown> = Promise.resolve();

  protected constructor(
    protected readonly sql: Dialect,
    private readonly artifacts: ArtifactPlace,
    readonly location: string | null,
  ) {}

  abstract artifactDir(study: string): string;

  /** `op` as one write transaction of the dialect, with `this` the store. */
  private write<T>(op: (this: SqlStore) => Op<T>, o?: WriteOptions): Promise<T> {
    return this.sql.write(() => op.call(this), o);
  }

  /** `op` as reads of the dialect, with `this` the store. */
  private read<T>(op: (this: SqlStore) => Op<T>): Promise<T> {
    return this.sql.read(() => op.call(this));
  }

  private *studyId(name: string, lock = false): Op<number> {
    checkStudyName(name);
    const r = yield* row<{ id: number }>(`SELECT id FROM studies WHERE name = ?${lock ? this.sql.forUpdate : ''}`, name);
    if (r === undefined) throw storeErrors.studyNotFound(name);
    return r.id;
  }

  private *trialRow(studyId: number, n: number, lock = false): Op<TrialRow | undefined> {
    return yield* row<TrialRow>(`SELECT ${TRIAL_COLUMNS} FROM trials WHERE study_id = ? AND number = ?${lock ? this.sql.forUpdate : ''}`, studyId, n);
  }

  createStudy(s: NewStudy): Promise<StudyRecord> {
    return this.write(function* () {
      checkNewStudy(s);
      const now = nowIso();
      const r = yield* row<StudyRow>(
        `INSERT INTO studies (name, config, config_hash, space, base_macs, base_params, base_proxy_accuracy,
             base_test_accuracy, base_hash, data_hash, state, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)
           ON CONFLICT (name) DO NOTHING RETURNING ${STUDY_COLUMNS}`,
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
      if (r === undefined) throw storeErrors.studyExists(s.name);
      return studyFromRow(r);
    });
  }

  getStudy(name: string): Promise<StudyRecord | null> {
    return this.read(function* () {
      const r = yield* row<StudyRow>(`SELECT ${STUDY_COLUMNS} FROM studies WHERE name = ?`, name);
      return r === undefined ? null : studyFromRow(r);
    });
  }

  listStudies(): Promise<StudyRecord[]> {
    return this.read(function* () {
      return (yield* rows<StudyRow>(`SELECT ${STUDY_COLUMNS} FROM studies ORDER BY id`)).map(studyFromRow);
    });
  }

  setStudyState(name: string, state: StudyState): Promise<void> {
    return this.write(function* () {
      checkStudyState(state);
      const id = yield* this.studyId(name);
      yield* rows('UPDATE studies SET state = ?, updated_at = ? WHERE id = ?', state, nowIso(), id);
    });
  }

  setBaseAccuracy(name: string, acc: { proxy?: number; test?: number }): Promise<void> {
    return this.write(function* () {
      checkBaseAccuracy(acc);
      const id = yield* this.studyId(name);
      yield* rows(
        `UPDATE studies SET base_proxy_accuracy = COALESCE(?, base_proxy_accuracy),
             base_test_accuracy = COALESCE(?, base_test_accuracy), updated_at = ? WHERE id = ?`,
        acc.proxy ?? null,
        acc.test ?? null,
        nowIso(),
        id,
      );
    });
  }

  async deleteStudy(name: string): Promise<void> {
    // Trials, snapshots, the driver row and artifact rows go with it (ON DELETE CASCADE).
    await this.write(function* () {
      yield* rows('DELETE FROM studies WHERE id = ?', yield* this.studyId(name));
    });
    await this.artifacts.drop(name);
  }

  /**
   * Inserts one waiting trial with the next number; inside a write that holds the study row (the
   * enqueue locks it on PostgreSQL; SQLite's writer holds the database), so MAX + 1 is not raced.
   * Numbers are dense and trials are only deleted with their study: every number below it exists.
   */
  private *insertTrial(study: string, id: number, t: NewTrial): Op<TrialRecord> {
    checkNewTrial(t);
    const next = yield* row<{ n: number }>('SELECT COALESCE(MAX(number) + 1, 0) AS n FROM trials WHERE study_id = ?', id);
    const n = next!.n;
    checkParent(study, t, n, (p) => p < n);
    const r = yield* row<TrialRow>(
      `INSERT INTO trials (study_id, number, state, candidate, key, macs, params, controller, meta, created_at, stage, parent)
       VALUES (?, ?, 'waiting', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${TRIAL_COLUMNS}`,
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
    return trialFromRow(study, r!);
  }

  enqueueTrials(driver: DriverLease, trials: readonly NewTrial[], snapshot: { told: number; state: Json }): Promise<TrialRecord[]> {
    return this.write(function* () {
      // Study row, then driver row: the order acquireDriver locks them in. The study row lock
      // also orders snapshot writers ("latest" = last committed) and trial numbers.
      const id = yield* this.studyId(driver.study, true);
      yield* this.checkDriverRow(id, driver);
      const out: TrialRecord[] = [];
      for (const t of trials) out.push(yield* this.insertTrial(driver.study, id, t));
      yield* this.insertSnapshot(id, snapshot.told, snapshot.state);
      return out;
    });
  }

  /**
   * Claims of this process run one at a time, in call order; claims of other processes and hosts
   * pass each other by SKIP LOCKED (PostgreSQL) or queue for the writer (SQLite).
   */
  claimTrial(study: string, worker: string, o: { leaseMs: number; number?: number }): Promise<Claim | null> {
    const next = this.claims.then(() => this.claimNow(study, worker, o));
    this.claims = next.catch(() => undefined);
    return next;
  }

  private claimNow(study: string, worker: string, o: { leaseMs: number; number?: number }): Promise<Claim | null> {
    // A claim whose COMMIT was lost may have landed: the retry first looks for it (this worker's
    // name and start time), so the trial is not left running under a claim nobody holds.
    const startedAt = nowIso();
    let lostCommit = false;
    return this.write(
      function* () {
        checkLeaseMs(o.leaseMs);
        checkText('worker name', worker);
        if (o.number !== undefined) checkTrialNumber(o.number);
        checkStudyName(study);
        if (lostCommit) {
          const mine = yield* rows<TrialRow>(
            `SELECT ${TRIAL_COLUMNS} FROM trials WHERE study_id = (${STUDY_ID}) AND state = '${TRANSITIONS.claim.to}' AND worker = ? AND started_at = ?`,
            study,
            worker,
            startedAt,
          );
          if (mine.length === 1) return claimOf(study, mine[0]);
        }
        // The queue pop: a child waits until the trial whose weights it starts from has finished.
        const pick = yield* row<TrialRow & { study_id: number }>(
          `SELECT ${TRIAL_COLUMNS}, study_id FROM trials t WHERE study_id = (${STUDY_ID}) AND ${fromSql('claim')} AND (CAST(? AS INTEGER) IS NULL OR number = ?)
             AND (parent IS NULL OR EXISTS (SELECT 1 FROM trials p WHERE p.study_id = t.study_id AND p.number = t.parent AND p.state IN ('complete', 'failed')))
           ORDER BY number LIMIT 1${this.sql.skipLocked}`,
          study,
          o.number ?? null,
          o.number ?? null,
        );
        if (pick === undefined) {
          yield* this.studyId(study); // STUDY_NOT_FOUND, or simply nothing waits
          return null;
        }
        const id = pick.study_id;
        checkMove(study, pick.number, pick.state, 'claim');
        const now = yield* this.sql.now();
        const r = yield* row<TrialRow>(
          `UPDATE trials SET ${toSql('claim')}, worker = ?, started_at = ?, attempts = attempts + 1, lease_token = lease_token + 1,
             lease_expires_ms = ? WHERE study_id = ? AND number = ? RETURNING ${TRIAL_COLUMNS}`,
          worker,
          startedAt,
          now + o.leaseMs,
          id,
          pick.number,
        );
        return claimOf(study, r!);
      },
      { idempotent: true, onLostCommit: () => (lostCommit = true) },
    );
  }

  /**
   * The leased trial's row, locked, after the fencing check (LEASE_LOST, TRIAL_IMMUTABLE,
   * TRIAL_NOT_FOUND); `landed` (a retry after a lost COMMIT) when it already shows this holder's
   * write: still under its token and in the state the write leaves, which only that write can
   * have done (a later claim changes the token; the trigger rules out a second finish).
   */
  private *leased(l: TrialLease, action: Transition, lostCommit: boolean): Op<{ id: number; row: TrialRow; landed: boolean; now: number }> {
    checkStudyName(l.study);
    checkTrialNumber(l.number);
    // One round trip for study and trial; which one is missing is asked only when one is.
    const cur = yield* row<TrialRow & { study_id: number }>(
      `SELECT ${TRIAL_COLUMNS}, study_id FROM trials WHERE study_id = (${STUDY_ID}) AND number = ?${this.sql.forUpdate}`,
      l.study,
      l.number,
    );
    if (cur === undefined) {
      yield* this.studyId(l.study);
      throw storeErrors.trialNotFound(l.study, l.number);
    }
    const id = cur.study_id;
    const now = yield* this.sql.now();
    if (lostCommit && cur.lease_token === l.token && cur.state === TRANSITIONS[action].to) return { id, row: cur, landed: true, now };
    checkLease(l, { state: cur.state, token: cur.lease_token, expiresMs: cur.lease_expires_ms }, now, action);
    return { id, row: cur, landed: false, now };
  }

  heartbeat(l: TrialLease, leaseMs: number): Promise<void> {
    // Extending a lease twice is extending it once: retried also after a lost COMMIT.
    return this.write(
      function* () {
        checkLeaseMs(leaseMs);
        const { id, now } = yield* this.leased(l, 'heartbeat', false);
        yield* rows('UPDATE trials SET lease_expires_ms = ? WHERE study_id = ? AND number = ?', now + leaseMs, id, l.number);
      },
      { idempotent: true },
    );
  }

  completeTrial(l: TrialLease, metrics: TrialMetrics): Promise<TrialRecord> {
    return this.finishLeased(l, 'complete', () => {
      checkMetrics(metrics);
      return {
        proxy_accuracy: metrics.proxyAccuracy ?? null,
        final_accuracy: metrics.finalAccuracy ?? null,
        latency_ms: metrics.latencyMs ?? null,
        latency_host: metrics.latencyHost ?? null,
        latency_device: metrics.latencyDevice ?? null,
        timings: metrics.timings === undefined ? null : encodeJson(metrics.timings),
      };
    });
  }

  failTrial(l: TrialLease, error: string): Promise<TrialRecord> {
    return this.finishLeased(l, 'fail', () => ({ error: String(error) }));
  }

  /**
   * Finishes the leased trial: lease checked on the locked row, then the study's next finish
   * sequence number and the write, in one transaction. A retry after a lost COMMIT returns its own
   * landed write, so a result is neither lost nor applied twice.
   */
  private finishLeased(l: TrialLease, action: 'complete' | 'fail', values: () => Record<string, unknown>): Promise<TrialRecord> {
    let lostCommit = false;
    return this.write(
      function* () {
        const set = values();
        const { id, row: cur, landed } = yield* this.leased(l, action, lostCommit);
        if (landed) return trialFromRow(l.study, cur);
        return yield* this.finish(l.study, id, l.number, action, set);
      },
      { idempotent: true, onLostCommit: () => (lostCommit = true) },
    );
  }

  /**
   * Moves a running trial to its finished state with `set` and the study's next finish sequence
   * number (TrialRecord.finishSeq). The counter's row stays locked until COMMIT (PostgreSQL) or the
   * writer holds the database (SQLite): finishing transactions of a study commit in sequence order,
   * so every reader's snapshot holds a prefix of the sequence.
   */
  private *finish(study: string, id: number, n: number, how: 'complete' | 'fail' | 'expire', set: Record<string, unknown>): Op<TrialRecord> {
    const seq = yield* row<{ finish_seq: number }>('UPDATE studies SET finish_seq = finish_seq + 1 WHERE id = ? RETURNING finish_seq', id);
    const cols = Object.keys(set);
    const r = yield* row<TrialRow>(
      `UPDATE trials SET ${toSql(how)}, ${cols.map((c) => `${c} = ?`).join(', ')}, finished_at = ?, finish_seq = ?, lease_expires_ms = NULL
       WHERE study_id = ? AND number = ? RETURNING ${TRIAL_COLUMNS}`,
      ...cols.map((c) => set[c]),
      nowIso(),
      seq!.finish_seq,
      id,
      n,
    );
    return trialFromRow(study, r!);
  }

  reapExpired(study: string, o: { maxAttempts: number; gone?: readonly string[] }): Promise<Reaped> {
    return this.write(function* () {
      const id = yield* this.studyId(study);
      const gone = new Set(o.gone ?? []);
      const running = yield* rows<TrialRow>(
        `SELECT ${TRIAL_COLUMNS} FROM trials WHERE study_id = ? AND ${fromSql('requeue')} ORDER BY number${this.sql.forUpdate}`,
        id,
      );
      const now = yield* this.sql.now();
      const reaped = { requeued: [] as number[], failed: [] as number[] };
      for (const r of running) {
        if (!((r.lease_expires_ms ?? 0) < now || (r.worker !== null && gone.has(r.worker)))) continue;
        if (r.attempts >= o.maxAttempts) {
          checkMove(study, r.number, r.state, 'expire');
          yield* this.finish(study, id, r.number, 'expire', { error: expiredReason(r.attempts, r.worker) });
          reaped.failed.push(r.number);
        } else {
          checkMove(study, r.number, r.state, 'requeue');
          yield* rows(
            `UPDATE trials SET ${toSql('requeue')}, worker = NULL, started_at = NULL, lease_expires_ms = NULL WHERE study_id = ? AND number = ?`,
            id,
            r.number,
          );
          reaped.requeued.push(r.number);
        }
      }
      return reaped;
    });
  }

  private *driverRow(id: number): Op<DriverRow | null> {
    const r = yield* row<{ owner: string; token: number; expires_ms: number }>(
      `SELECT owner, token, expires_ms FROM drivers WHERE study_id = ?${this.sql.forUpdate}`,
      id,
    );
    return r === undefined ? null : { owner: r.owner, token: r.token, expiresMs: r.expires_ms };
  }

  /** Fences a driver write: the driver row stays locked until COMMIT, so a takeover waits for it. */
  private *checkDriverRow(id: number, l: DriverLease): Op<void> {
    const cur = yield* this.driverRow(id);
    checkDriver(l, cur, yield* this.sql.now());
  }

  acquireDriver(study: string, owner: string, leaseMs: number, o: { stale?: (holder: string) => boolean } = {}): Promise<DriverLease> {
    return this.write(function* () {
      checkLeaseMs(leaseMs);
      checkText('driver owner', owner);
      // Locking the study row serialises acquirers, also when no driver row exists yet.
      const id = yield* this.studyId(study, true);
      const cur = yield* this.driverRow(id);
      const now = yield* this.sql.now();
      if (cur !== null && cur.expiresMs >= now && !o.stale?.(cur.owner)) throw storeErrors.busy(study, cur.owner, cur.expiresMs, now);
      const token = (cur?.token ?? 0) + 1;
      yield* rows(
        `INSERT INTO drivers (study_id, owner, token, expires_ms) VALUES (?, ?, ?, ?)
           ON CONFLICT (study_id) DO UPDATE SET owner = excluded.owner, token = excluded.token, expires_ms = excluded.expires_ms`,
        id,
        owner,
        token,
        now + leaseMs,
      );
      return deepFreeze({ study, owner, token });
    });
  }

  renewDriver(l: DriverLease, leaseMs: number): Promise<void> {
    return this.write(function* () {
      checkLeaseMs(leaseMs);
      const id = yield* this.studyId(l.study);
      yield* this.checkDriverRow(id, l);
      yield* rows('UPDATE drivers SET expires_ms = ? WHERE study_id = ?', (yield* this.sql.now()) + leaseMs, id);
    });
  }

  releaseDriver(l: DriverLease): Promise<void> {
    return this.write(function* () {
      const id = yield* this.studyId(l.study);
      yield* rows('UPDATE drivers SET expires_ms = 0 WHERE study_id = ? AND token = ?', id, l.token);
    });
  }

  private study(name: string): Promise<number> {
    return this.sql.read(() => this.studyId(name));
  }

  async putArtifact(study: string, key: string, bytes: Uint8Array): Promise<ArtifactInfo> {
    checkArtifactKey(key);
    return this.artifacts.put(await this.study(study), study, key, bytes);
  }

  async getArtifact(study: string, key: string): Promise<Uint8Array | null> {
    checkArtifactKey(key);
    return this.artifacts.get(await this.study(study), study, key);
  }

  async listArtifacts(study: string, prefix = ''): Promise<ArtifactInfo[]> {
    checkArtifactKey(prefix, true);
    return this.artifacts.list(await this.study(study), study, prefix);
  }

  getTrial(study: string, number: number): Promise<TrialRecord | null> {
    return this.read(function* () {
      const id = yield* this.studyId(study);
      checkTrialNumber(number);
      const r = yield* this.trialRow(id, number);
      return r === undefined ? null : trialFromRow(study, r);
    });
  }

  listTrials(study: string, filter: TrialFilter = {}): Promise<TrialRecord[]> {
    // One statement: one snapshot, so the finished trials listed are a prefix of the finish sequence.
    return this.read(function* () {
      filter.numbers?.forEach(checkTrialNumber);
      const where = ['study_id = ?'];
      const params: unknown[] = [yield* this.studyId(study)];
      if (filter.state !== undefined) {
        where.push('state = ?');
        params.push(filter.state);
      }
      if (filter.numbers !== undefined) {
        where.push(this.sql.inInts('number'));
        params.push(this.sql.ints(filter.numbers));
      }
      const all = yield* rows<TrialRow>(`SELECT ${TRIAL_COLUMNS} FROM trials WHERE ${where.join(' AND ')} ORDER BY number`, ...params);
      return all.map((r) => trialFromRow(study, r));
    });
  }

  private *insertSnapshot(id: number, told: number, state: Json): Op<void> {
    checkTrialNumber(told);
    yield* rows('INSERT INTO snapshots (study_id, told, state, created_at) VALUES (?, ?, ?, ?)', id, told, encodeJson(state), nowIso());
    // One snapshot per ask and per tell would otherwise grow quadratically over a long study.
    yield* rows(
      'DELETE FROM snapshots WHERE study_id = ? AND id NOT IN (SELECT id FROM snapshots WHERE study_id = ? ORDER BY id DESC LIMIT ?)',
      id,
      id,
      SNAPSHOTS_KEPT,
    );
  }

  latestSnapshot(study: string): Promise<ControllerSnapshot | null> {
    // "Latest" is the last saved (highest id), not the highest `told` nor the clock.
    return this.read(function* () {
      const id = yield* this.studyId(study);
      const r = yield* row<{ told: number; state: string; created_at: string }>(
        'SELECT told, state, created_at FROM snapshots WHERE study_id = ? ORDER BY id DESC LIMIT 1',
        id,
      );
      if (r === undefined) return null;
      return deepFreeze({ study, told: r.told, state: decodeJson(r.state), createdAt: r.created_at });
    });
  }

  // ---- Latency tables (types.ts LatencyTables) ----

  putLatencyEntries(table: LatencyTableId, entries: readonly NewLatencyEntry[]): Promise<void> {
    // An upsert of the same values: applying it twice is applying it once.
    return this.write(
      function* () {
        checkLatencyTable(table);
        entries.forEach(checkLatencyEntry);
        const cols = [...LATENCY_KEY_COLUMNS, 'ms', 'measured_at'];
        const now = nowIso();
        for (const e of entries) {
          yield* rows(
            `INSERT INTO latency_entries (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})
             ON CONFLICT (${LATENCY_KEY_COLUMNS.join(', ')}) DO UPDATE SET ms = excluded.ms, measured_at = excluded.measured_at`,
            ...latencyRowValues(table, e),
            e.ms,
            now,
          );
        }
      },
      { idempotent: true },
    );
  }

  getLatencyEntries(table: LatencyTableId): Promise<LatencyEntry[]> {
    return this.read(function* () {
      checkLatencyTable(table);
      const all = yield* rows<LatencyRow>(
        'SELECT * FROM latency_entries WHERE engine = ? AND engine_version = ? AND host = ? AND threads = ? AND batch = ? ORDER BY op, cin, cout, h, w',
        table.engine,
        table.engineVersion,
        table.host,
        table.threads,
        table.batch,
      );
      return all.map(latencyFromRow);
    });
  }

  close(): Promise<void> {
    return this.sql.close();
  }
}

function claimOf(study: string, r: TrialRow): Claim {
  return deepFreeze({ study, number: r.number, token: r.lease_token, trial: trialFromRow(study, r) });
}
