/**
 * PostgreSQL backend (the `pg` client): one database shared by the driver and workers on several
 * hosts, as Optuna users share an RDB storage. Same tables and rules as the SQLite store
 * (sqlite.ts); what differs is how concurrent writers are kept apart:
 *  - trial numbers come from a per-study counter row (`studies.next_trial`) bumped in the inserting
 *    transaction, so concurrent writers queue on that row and numbers stay dense and unique (a
 *    rolled-back insert rolls the counter back too);
 *  - every read-check-write locks the rows it checks (`SELECT ... FOR UPDATE`);
 *  - finished trials are immutable by a trigger, as in SQLite.
 * A connection lost before COMMIT (the database restarted, a network blip) is retried with backoff
 * for up to `retryMs`; one lost during COMMIT is reported, since the write may or may not have landed,
 * except where a retry can tell: artifact puts (idempotent), claims (the retry looks for its own
 * claim first) and fenced trial writes (the retry recognises its own write by the fencing token).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { AutopruneError, ErrorCodes, isAutopruneError, quote } from '../core/errors.js';
import { redactUrl } from '../core/location.js';
import type { TrialMetrics } from '../core/types.js';
import { sha256Hex } from './artifacts.js';
import { checkLatencyEntry, checkLatencyTable, LATENCY_KEY_COLUMNS, type LatencyRow, latencyFromRow, latencyRowValues } from './latency.js';
import { pgMigrate } from './postgres-migrations.js';
import { type FinalRow, finalFromRow, type StudyRow, studyFromRow, type TrialRow, trialFromRow } from './rows.js';
import {
  checkArtifactKey,
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
  TRANSITIONS,
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

export interface PostgresStoreOptions extends StoreOptions {
  /**
   * This host's folder for copies of the studies' artifacts (the artifacts themselves live in the
   * database, see putArtifact); default $AUTOPRUNE_ARTIFACTS, else
   * ~/.cache/autoprune/artifacts/<host>_<port>_<database>.
   */
  readonly artifacts?: string;
  /** How long to keep retrying while the database is unreachable, in ms. Default 60000. */
  readonly retryMs?: number;
  /** Connections this process keeps open at most. Default 4. */
  readonly poolSize?: number;
}

const TRIAL_COLUMNS = `number, state, candidate, key, macs, params, controller, meta, proxy_accuracy, final_accuracy,
  latency_ms, latency_host, latency_device, timings, error, worker, created_at, started_at, finished_at, stage, parent, attempts, lease_token, lease_expires_ms`;

const FINAL_COLUMNS = 'trial, final_accuracy, latency_ms, latency_host, latency_device, train_engine, epochs, model_path, seconds, created_at';

const STUDY_COLUMNS = `id, name, config, config_hash, space, base_macs, base_params, base_proxy_accuracy,
  base_test_accuracy, base_hash, data_hash, state, created_at, updated_at`;

/** The lease clock in SQL: parameter $k if given (an injected clock), else the server's now, in ms. */
const nowSql = (k: number): string => `COALESCE($${k}::bigint, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)`;
const NOW1 = nowSql(1);
const NOW4 = nowSql(4);

/** Runs one statement on the connection of the current unit of work; returns its rows. */
type Query = <R>(sql: string, params?: readonly unknown[]) => Promise<R[]>;

/** BIGINT (lease times in ms) as a JS number: every value the store writes is below 2^53. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/** SQLSTATE classes and socket errors after which the transaction surely did not commit and can be retried. */
const RETRY_SQLSTATES = new Set(['57P01', '57P02', '57P03', '40001', '40P01', '53300']);
const RETRY_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT']);

/** True when `e` means "the database is (momentarily) unreachable or asked us to try again". */
export function isTransient(e: unknown): boolean {
  if (isAutopruneError(e)) return false;
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && (RETRY_SQLSTATES.has(code) || RETRY_ERRNOS.has(code) || code.startsWith('08'))) return true;
  const msg = e instanceof Error ? e.message : String(e);
  return /Connection terminated|not queryable|timeout exceeded when trying to connect|the database system is (starting up|shutting down)/i.test(msg);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class PostgresStore implements Store {
  /** The database URL without its password. */
  readonly label: string;
  /** The URL (with its password: it is handed only to this process's own lease thread). */
  readonly location: string | null;
  private readonly pool: pg.Pool;
  private readonly retryMs: number;
  /** The injected lease clock (tests); undefined = the database server's clock. */
  private readonly clock: (() => number) | undefined;
  private readonly artifacts: string;
  /** The tail of this process's claims (see claimTrial). */
  private claims: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(pool: pg.Pool, label: string, o: { retryMs: number; clock?: () => number; artifacts: string; url: string }) {
    this.pool = pool;
    this.location = o.clock === undefined ? o.url : null;
    this.label = label;
    this.retryMs = o.retryMs;
    this.clock = o.clock;
    this.artifacts = o.artifacts;
  }

  /** Connect (retrying while the server starts) and migrate the schema. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const label = redactUrl(url);
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 4,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      types: TYPES,
      application_name: 'autoprune',
    });
    // An idle connection that the server drops (restart) emits here; the next checkout reconnects.
    pool.on('error', () => undefined);
    const store = new PostgresStore(pool, label, {
      retryMs: options.retryMs ?? 60_000,
      clock: options.clock,
      artifacts: options.artifacts ?? process.env.AUTOPRUNE_ARTIFACTS ?? defaultArtifacts(url),
      url,
    });
    try {
      await store.unit('read', async (_q, c) => {
        await pgMigrate(c, label);
      });
      return store;
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw toStoreError(e, label);
    }
  }

  /**
   * One unit of work on one pooled connection: `read` (no transaction), `tx` (BEGIN ... COMMIT) or
   * `statement` (one autocommitted write, then only reads). Retried with backoff (100 ms doubling to
   * 2 s, for up to `retryMs`) while the failure surely left nothing committed: a lost connection
   * during COMMIT, or during a `statement`, is reported instead, unless the write is `idempotent`
   * (applying it twice is applying it once, or the caller checks what landed: `onLostCommit` is
   * told before such a retry).
   */
  private async unit<T>(
    mode: 'read' | 'tx' | 'statement',
    f: (q: Query, c: pg.PoolClient) => Promise<T>,
    o: { idempotent?: boolean; onLostCommit?: () => void } = {},
  ): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw storeErrors.closed();
      let client: pg.PoolClient | undefined;
      let committing = false;
      try {
        client = await this.pool.connect();
        client.on('error', ignore);
        const c = client;
        const q: Query = async <R>(sql: string, params?: readonly unknown[]) => (await c.query(sql, params as unknown[] | undefined)).rows as R[];
        if (mode === 'tx') await c.query('BEGIN');
        committing = mode === 'statement';
        const out = await f(q, c);
        if (mode === 'tx') {
          committing = true;
          await c.query('COMMIT');
        }
        c.off('error', ignore);
        c.release();
        return out;
      } catch (e) {
        if (client !== undefined) await discard(client, mode === 'tx' && !committing, e);
        const retry = isTransient(e) && (!committing || o.idempotent === true) && !this.closed && Date.now() - started < this.retryMs;
        if (!retry) throw toStoreError(e, this.label, committing);
        if (committing) o.onLostCommit?.();
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  }

  private read<T>(f: (q: Query) => Promise<T>): Promise<T> {
    return this.unit('read', f);
  }

  private write<T>(f: (q: Query) => Promise<T>): Promise<T> {
    return this.unit('tx', f);
  }

  private nowParam(): number | null {
    return this.clock === undefined ? null : this.clock();
  }

  private async studyId(q: Query, name: string, lock = false): Promise<number> {
    checkStudyName(name);
    const rows = await q<{ id: number }>(`SELECT id FROM studies WHERE name = $1${lock ? ' FOR UPDATE' : ''}`, [name]);
    if (rows.length === 0) throw storeErrors.studyNotFound(name);
    return rows[0].id;
  }

  private async trialRow(q: Query, studyId: number, n: number, lock = false): Promise<TrialRow | undefined> {
    const rows = await q<TrialRow>(`SELECT ${TRIAL_COLUMNS} FROM trials WHERE study_id = $1 AND number = $2${lock ? ' FOR UPDATE' : ''}`, [studyId, n]);
    return rows[0];
  }

  private async existingTrial(q: Query, study: string, studyId: number, n: number, lock = false): Promise<TrialRow> {
    checkTrialNumber(n);
    const r = await this.trialRow(q, studyId, n, lock);
    if (r === undefined) throw storeErrors.trialNotFound(study, n);
    return r;
  }

  createStudy(s: NewStudy): Promise<StudyRecord> {
    return this.write(async (q) => {
      checkNewStudy(s);
      const now = nowIso();
      const rows = await q<StudyRow>(
        `INSERT INTO studies (name, config, config_hash, space, base_macs, base_params, base_proxy_accuracy,
           base_test_accuracy, base_hash, data_hash, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $11, 'running', $9, $9)
         ON CONFLICT (name) DO NOTHING RETURNING ${STUDY_COLUMNS}`,
        [
          s.name,
          encodeJson(s.config),
          s.configHash,
          encodeJson(s.space),
          s.baseCost.macs,
          s.baseCost.params,
          s.baseProxyAccuracy,
          s.baseTestAccuracy,
          now,
          s.inputs?.baseModel ?? null,
          s.inputs?.data ?? null,
        ],
      );
      if (rows.length === 0) throw storeErrors.studyExists(s.name);
      return studyFromRow(rows[0]);
    });
  }

  getStudy(name: string): Promise<StudyRecord | null> {
    return this.read(async (q) => {
      const rows = await q<StudyRow>(`SELECT ${STUDY_COLUMNS} FROM studies WHERE name = $1`, [name]);
      return rows.length === 0 ? null : studyFromRow(rows[0]);
    });
  }

  listStudies(): Promise<StudyRecord[]> {
    return this.read(async (q) => (await q<StudyRow>(`SELECT ${STUDY_COLUMNS} FROM studies ORDER BY id`)).map(studyFromRow));
  }

  setStudyState(name: string, state: StudyState): Promise<void> {
    return this.write(async (q) => {
      checkStudyState(state);
      const id = await this.studyId(q, name);
      await q('UPDATE studies SET state = $1, updated_at = $2 WHERE id = $3', [state, nowIso(), id]);
    });
  }

  setBaseAccuracy(name: string, acc: { proxy?: number; test?: number }): Promise<void> {
    return this.write(async (q) => {
      checkBaseAccuracy(acc);
      const id = await this.studyId(q, name);
      await q(
        `UPDATE studies SET base_proxy_accuracy = COALESCE($1, base_proxy_accuracy),
           base_test_accuracy = COALESCE($2, base_test_accuracy), updated_at = $3 WHERE id = $4`,
        [acc.proxy ?? null, acc.test ?? null, nowIso(), id],
      );
    });
  }

  deleteStudy(name: string): Promise<void> {
    // Trials, finals, snapshots and the driver row go with it (ON DELETE CASCADE).
    return this.write(async (q) => {
      const id = await this.studyId(q, name);
      await q('DELETE FROM studies WHERE id = $1', [id]);
    });
  }

  /** Inserts one waiting trial with the next number from the study's counter; call inside a write. */
  private async insertTrial(q: Query, study: string, t: NewTrial): Promise<TrialRecord> {
    checkNewTrial(t);
    checkStudyName(study);
    // The counter row stays locked until COMMIT: concurrent inserts into one study queue here.
    const bumped = await q<{ id: number; n: number }>('UPDATE studies SET next_trial = next_trial + 1 WHERE name = $1 RETURNING id, next_trial - 1 AS n', [
      study,
    ]);
    if (bumped.length === 0) throw storeErrors.studyNotFound(study);
    const { id, n } = bumped[0];
    // Numbers are dense and trials are only deleted with their study: every number below n exists.
    checkParent(study, t, n, (p) => p < n);
    const rows = await q<TrialRow>(
      `INSERT INTO trials (study_id, number, state, candidate, key, macs, params, controller, meta, created_at, stage, parent)
       VALUES ($1, $2, 'waiting', $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${TRIAL_COLUMNS}`,
      [
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
      ],
    );
    return trialFromRow(study, rows[0]);
  }

  /** The store's clock in ms: the injected one (tests), else the database server's, shared by every host. */
  private async now(q: Query): Promise<number> {
    if (this.clock !== undefined) return this.clock();
    const rows = await q<{ now: number }>(`SELECT ${NOW1} AS now`, [null]);
    return rows[0].now;
  }

  enqueueTrials(driver: DriverLease, trials: readonly NewTrial[], snapshot: { told: number; state: Json }): Promise<TrialRecord[]> {
    return this.write(async (q) => {
      // Study row, then driver row: the order acquireDriver locks them in, so an enqueue and a rival's
      // acquire queue instead of deadlocking; it also orders snapshot writers ("latest" = last committed).
      const id = await this.studyId(q, driver.study, true);
      await this.checkDriverRow(q, id, driver);
      const out: TrialRecord[] = [];
      for (const t of trials) out.push(await this.insertTrial(q, driver.study, t));
      await this.insertSnapshot(q, id, snapshot.told, snapshot.state);
      return out;
    });
  }

  /**
   * Claims of this process run one at a time, in call order (as in SQLite); claims of other
   * processes and hosts pass each other by FOR UPDATE SKIP LOCKED.
   */
  claimTrial(study: string, worker: string, o: { leaseMs: number; number?: number }): Promise<Claim | null> {
    const next = this.claims.then(() => this.claimNow(study, worker, o));
    this.claims = next.catch(() => undefined);
    return next;
  }

  private async claimNow(study: string, worker: string, o: { leaseMs: number; number?: number }): Promise<Claim | null> {
    checkStudyName(study);
    checkLeaseMs(o.leaseMs);
    checkText('worker name', worker);
    if (o.number !== undefined) checkTrialNumber(o.number);
    // The queue pop, in one round trip: concurrent claimers skip each other's locked rows instead
    // of waiting on them; a child waits until its parent has finished. A claim whose connection
    // was lost may have landed: the retry first looks for it (this worker's name and start time).
    const startedAt = nowIso();
    let lostCommit = false;
    const claimed = await this.unit(
      'statement',
      async (q) => {
        if (lostCommit) {
          const mine = await q<TrialRow>(
            `SELECT ${TRIAL_COLUMNS} FROM trials WHERE study_id = (SELECT id FROM studies WHERE name = $1)
             AND state = '${TRANSITIONS.claim.to}' AND worker = $2 AND started_at = $3`,
            [study, worker, startedAt],
          );
          if (mine.length === 1) return mine[0];
        }
        const rows = await q<TrialRow>(
          `UPDATE trials SET ${toSql('claim')}, worker = $3, started_at = $4, attempts = attempts + 1,
           lease_token = lease_token + 1, lease_expires_ms = ${nowSql(5)} + $6
         WHERE id = (SELECT t.id FROM trials t JOIN studies s ON s.id = t.study_id
                     WHERE s.name = $1 AND ${fromSql('claim', 't.state')} AND ($2::integer IS NULL OR t.number = $2)
                       AND (t.parent IS NULL OR EXISTS (SELECT 1 FROM trials p WHERE p.study_id = t.study_id
                                                        AND p.number = t.parent AND p.state IN ('complete', 'failed')))
                     ORDER BY t.number LIMIT 1 FOR UPDATE OF t SKIP LOCKED)
         RETURNING ${TRIAL_COLUMNS}`,
          [study, o.number ?? null, worker, startedAt, this.nowParam(), o.leaseMs],
        );
        return rows[0];
      },
      { idempotent: true, onLostCommit: () => (lostCommit = true) },
    );
    if (claimed === undefined) {
      await this.read((q) => this.studyId(q, study)); // STUDY_NOT_FOUND, or simply nothing waits
      return null;
    }
    return deepFreeze({ study, number: claimed.number, token: claimed.lease_token, trial: trialFromRow(study, claimed) });
  }

  /**
   * Applies `set` to the leased trial only while the lease holds: one fenced UPDATE, autocommitted.
   * When it matches nothing, reads the row to say why (LEASE_LOST, TRIAL_IMMUTABLE, TRIAL_NOT_FOUND).
   * $1..$4 are taken ($4 = the lease clock's parameter; use NOW4 for its value).
   *
   * A connection lost while the UPDATE ran leaves it unknown whether it landed, so it is sent again
   * with the same token once the database answers (the unit's backoff). The token makes that safe:
   * if the first one landed, the trial is now in state `lands` under this very token (a later claim
   * would have changed the token), which is our own write, returned as such; the trigger on finished
   * trials rules out applying it twice. So a completion is neither lost nor applied twice.
   */
  private async fenced(l: TrialLease, action: Transition, set: string, params: readonly unknown[]): Promise<TrialRecord> {
    const lands = TRANSITIONS[action].to;
    checkStudyName(l.study);
    checkTrialNumber(l.number);
    let lostCommit = false;
    const rows = await this.unit(
      'statement',
      (q) =>
        q<TrialRow>(
          `UPDATE trials SET ${set} WHERE study_id = (SELECT id FROM studies WHERE name = $1) AND number = $2
           AND ${fromSql(action)} AND lease_token = $3 AND lease_expires_ms >= ${NOW4} RETURNING ${TRIAL_COLUMNS}`,
          [l.study, l.number, l.token, this.nowParam(), ...params],
        ),
      { idempotent: true, onLostCommit: () => (lostCommit = true) },
    );
    if (rows.length === 1) return trialFromRow(l.study, rows[0]);
    return this.read(async (q) => {
      const id = await this.studyId(q, l.study);
      const cur = await this.existingTrial(q, l.study, id, l.number);
      if (lostCommit && cur.lease_token === l.token && cur.state === lands) return trialFromRow(l.study, cur);
      const [{ now }] = await q<{ now: number }>(`SELECT ${NOW1} AS now`, [this.nowParam()]);
      checkLease(l, { state: cur.state, token: cur.lease_token, expiresMs: cur.lease_expires_ms }, now, action);
      throw storeErrors.leaseLost(l, 'it changed while being written');
    });
  }

  async heartbeat(l: TrialLease, leaseMs: number): Promise<void> {
    checkLeaseMs(leaseMs);
    await this.fenced(l, 'heartbeat', `lease_expires_ms = ${NOW4} + $5`, [leaseMs]);
  }

  completeTrial(l: TrialLease, metrics: TrialMetrics): Promise<TrialRecord> {
    try {
      checkMetrics(metrics);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.fenced(
      l,
      'complete',
      `${toSql('complete')}, proxy_accuracy = $5, final_accuracy = $6, latency_ms = $7, timings = $8, finished_at = $9, lease_expires_ms = NULL,
         latency_host = $10, latency_device = $11`,
      [
        metrics.proxyAccuracy ?? null,
        metrics.finalAccuracy ?? null,
        metrics.latencyMs ?? null,
        metrics.timings === undefined ? null : encodeJson(metrics.timings),
        nowIso(),
        metrics.latencyHost ?? null,
        metrics.latencyDevice ?? null,
      ],
    );
  }

  failTrial(l: TrialLease, error: string): Promise<TrialRecord> {
    return this.fenced(l, 'fail', `${toSql('fail')}, error = $5, finished_at = $6, lease_expires_ms = NULL`, [String(error), nowIso()]);
  }

  reapExpired(study: string, o: { maxAttempts: number; gone?: readonly string[] }): Promise<Reaped> {
    return this.write(async (q) => {
      const id = await this.studyId(q, study);
      const now = await this.now(q);
      const rows = await q<{ number: number; attempts: number; worker: string | null }>(
        `SELECT number, attempts, worker FROM trials WHERE study_id = $1 AND ${fromSql('requeue')}
           AND (COALESCE(lease_expires_ms, 0) < $2 OR worker = ANY($3::text[])) ORDER BY number FOR UPDATE`,
        [id, now, [...(o.gone ?? [])]],
      );
      const reaped = { requeued: [] as number[], failed: [] as number[] };
      for (const r of rows) {
        if (r.attempts >= o.maxAttempts) {
          await q(`UPDATE trials SET ${toSql('expire')}, error = $3, finished_at = $4, lease_expires_ms = NULL WHERE study_id = $1 AND number = $2`, [
            id,
            r.number,
            expiredReason(r.attempts, r.worker),
            nowIso(),
          ]);
          reaped.failed.push(r.number);
        } else {
          await q(`UPDATE trials SET ${toSql('requeue')}, worker = NULL, started_at = NULL, lease_expires_ms = NULL WHERE study_id = $1 AND number = $2`, [
            id,
            r.number,
          ]);
          reaped.requeued.push(r.number);
        }
      }
      return reaped;
    });
  }

  private async driverRow(q: Query, id: number, lock = false): Promise<{ owner: string; token: number; expiresMs: number } | null> {
    const rows = await q<{ owner: string; token: number; expires_ms: number }>(
      `SELECT owner, token, expires_ms FROM drivers WHERE study_id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
    );
    return rows.length === 0 ? null : { owner: rows[0].owner, token: rows[0].token, expiresMs: rows[0].expires_ms };
  }

  /** Fences a driver write: the driver row stays locked until COMMIT, so a takeover waits for it. */
  private async checkDriverRow(q: Query, id: number, l: DriverLease): Promise<void> {
    checkDriver(l, await this.driverRow(q, id, true), await this.now(q));
  }

  acquireDriver(study: string, owner: string, leaseMs: number, o: { stale?: (holder: string) => boolean } = {}): Promise<DriverLease> {
    return this.write(async (q) => {
      checkLeaseMs(leaseMs);
      checkText('driver owner', owner);
      // Locking the study row serialises acquirers, also when no driver row exists yet.
      const id = await this.studyId(q, study, true);
      const cur = await this.driverRow(q, id, true);
      const now = await this.now(q);
      if (cur !== null && cur.expiresMs >= now && !o.stale?.(cur.owner)) throw storeErrors.busy(study, cur.owner, cur.expiresMs, now);
      const token = (cur?.token ?? 0) + 1;
      await q(
        `INSERT INTO drivers (study_id, owner, token, expires_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (study_id) DO UPDATE SET owner = excluded.owner, token = excluded.token, expires_ms = excluded.expires_ms`,
        [id, owner, token, now + leaseMs],
      );
      return deepFreeze({ study, owner, token });
    });
  }

  renewDriver(l: DriverLease, leaseMs: number): Promise<void> {
    return this.write(async (q) => {
      checkLeaseMs(leaseMs);
      const id = await this.studyId(q, l.study);
      await this.checkDriverRow(q, id, l);
      await q('UPDATE drivers SET expires_ms = $2 WHERE study_id = $1', [id, (await this.now(q)) + leaseMs]);
    });
  }

  releaseDriver(l: DriverLease): Promise<void> {
    return this.write(async (q) => {
      const id = await this.studyId(q, l.study);
      await q('UPDATE drivers SET expires_ms = 0 WHERE study_id = $1 AND token = $2', [id, l.token]);
    });
  }

  artifactDir(study: string): string {
    checkStudyName(study);
    return join(this.artifacts, study);
  }

  async putArtifact(study: string, key: string, bytes: Uint8Array): Promise<ArtifactInfo> {
    checkArtifactKey(key);
    const info = { key, sha256: sha256Hex(bytes), size: bytes.byteLength };
    // Idempotent (same key, same bytes): retried also when the connection drops during COMMIT.
    return this.unit(
      'tx',
      async (q) => {
        const id = await this.studyId(q, study);
        await q(
          `INSERT INTO artifacts (study_id, key, sha256, size, bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (study_id, key) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, bytes = excluded.bytes, created_at = excluded.created_at`,
          [id, key, info.sha256, info.size, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), nowIso()],
        );
        return info;
      },
      { idempotent: true },
    );
  }

  async getArtifact(study: string, key: string): Promise<Uint8Array | null> {
    checkArtifactKey(key);
    return this.read(async (q) => {
      const id = await this.studyId(q, study);
      const rows = await q<{ bytes: Buffer }>('SELECT bytes FROM artifacts WHERE study_id = $1 AND key = $2', [id, key]);
      return rows.length === 0 ? null : new Uint8Array(rows[0].bytes.buffer, rows[0].bytes.byteOffset, rows[0].bytes.byteLength);
    });
  }

  async listArtifacts(study: string, prefix = ''): Promise<ArtifactInfo[]> {
    checkArtifactKey(prefix, true);
    return this.read(async (q) => {
      const id = await this.studyId(q, study);
      // starts_with, not LIKE: `_` in a key is a plain character.
      const rows = await q<{ key: string; sha256: string; size: number }>(
        'SELECT key, sha256, size FROM artifacts WHERE study_id = $1 AND starts_with(key, $2) ORDER BY key COLLATE "C"',
        [id, prefix],
      );
      return rows.map((r) => ({ key: r.key, sha256: r.sha256, size: r.size }));
    });
  }

  getTrial(study: string, number: number): Promise<TrialRecord | null> {
    return this.read(async (q) => {
      const id = await this.studyId(q, study);
      checkTrialNumber(number);
      const r = await this.trialRow(q, id, number);
      return r === undefined ? null : trialFromRow(study, r);
    });
  }

  listTrials(study: string, filter: TrialFilter = {}): Promise<TrialRecord[]> {
    return this.read(async (q) => {
      filter.numbers?.forEach(checkTrialNumber);
      const id = await this.studyId(q, study);
      const rows = await q<TrialRow>(
        `SELECT ${TRIAL_COLUMNS} FROM trials WHERE study_id = $1 AND ($2::text IS NULL OR state = $2)
           AND ($3::int[] IS NULL OR number = ANY($3::int[])) ORDER BY number`,
        [id, filter.state ?? null, filter.numbers ? [...filter.numbers] : null],
      );
      return rows.map((r) => trialFromRow(study, r));
    });
  }

  private async insertSnapshot(q: Query, id: number, told: number, state: Json): Promise<void> {
    checkTrialNumber(told);
    await q('INSERT INTO snapshots (study_id, told, state, created_at) VALUES ($1, $2, $3, $4)', [id, told, encodeJson(state), nowIso()]);
    // One snapshot per ask and per tell would otherwise grow quadratically over a long study.
    await q('DELETE FROM snapshots WHERE study_id = $1 AND id NOT IN (SELECT id FROM snapshots WHERE study_id = $1 ORDER BY id DESC LIMIT $2)', [
      id,
      SNAPSHOTS_KEPT,
    ]);
  }

  latestSnapshot(study: string): Promise<ControllerSnapshot | null> {
    // "Latest" is the last saved (highest id), not the highest `told` nor the clock.
    return this.read(async (q) => {
      const id = await this.studyId(q, study);
      const rows = await q<{ told: number; state: string; created_at: string }>(
        'SELECT told, state, created_at FROM snapshots WHERE study_id = $1 ORDER BY id DESC LIMIT 1',
        [id],
      );
      if (rows.length === 0) return null;
      const r = rows[0];
      return deepFreeze({ study, told: r.told, state: decodeJson(r.state), createdAt: r.created_at });
    });
  }

  saveFinal(f: NewFinal): Promise<FinalRecord> {
    return this.write(async (q) => {
      checkFinal(f);
      const id = await this.studyId(q, f.study);
      await this.existingTrial(q, f.study, id, f.trial);
      // Saving a finalist again (re-run) replaces the earlier result.
      const rows = await q<FinalRow>(
        `INSERT INTO finals (study_id, trial, final_accuracy, latency_ms, epochs, model_path, seconds, created_at, latency_host, latency_device, train_engine)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (study_id, trial) DO UPDATE SET final_accuracy = excluded.final_accuracy,
           latency_ms = excluded.latency_ms, latency_host = excluded.latency_host, latency_device = excluded.latency_device, train_engine = excluded.train_engine,
           epochs = excluded.epochs, model_path = excluded.model_path, seconds = excluded.seconds, created_at = excluded.created_at
         RETURNING ${FINAL_COLUMNS}`,
        [
          id,
          f.trial,
          f.finalAccuracy,
          f.latencyMs,
          f.epochs,
          f.modelPath,
          f.seconds,
          nowIso(),
          f.latencyHost ?? null,
          f.latencyDevice ?? null,
          f.trainEngine ?? null,
        ],
      );
      return finalFromRow(f.study, rows[0]);
    });
  }

  listFinals(study: string): Promise<FinalRecord[]> {
    return this.read(async (q) => {
      const id = await this.studyId(q, study);
      const rows = await q<FinalRow>(`SELECT ${FINAL_COLUMNS} FROM finals WHERE study_id = $1 ORDER BY trial`, [id]);
      return rows.map((r) => finalFromRow(study, r));
    });
  }

  // ---- Latency tables (types.ts LatencyTables) ----

  putLatencyEntries(table: LatencyTableId, entries: readonly NewLatencyEntry[]): Promise<void> {
    // An upsert of the same values: applying it twice is applying it once.
    return this.unit(
      'tx',
      async (q) => {
        checkLatencyTable(table);
        entries.forEach(checkLatencyEntry);
        const cols = [...LATENCY_KEY_COLUMNS, 'ms', 'measured_at'];
        const now = nowIso();
        for (const e of entries) {
          await q(
            `INSERT INTO latency_entries (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})
             ON CONFLICT (${LATENCY_KEY_COLUMNS.join(', ')}) DO UPDATE SET ms = excluded.ms, measured_at = excluded.measured_at`,
            [...latencyRowValues(table, e), e.ms, now],
          );
        }
      },
      { idempotent: true },
    );
  }

  getLatencyEntries(table: LatencyTableId): Promise<LatencyEntry[]> {
    return this.read(async (q) => {
      checkLatencyTable(table);
      const rows = await q<LatencyRow>(
        'SELECT * FROM latency_entries WHERE engine = $1 AND engine_version = $2 AND host = $3 AND threads = $4 AND batch = $5 ORDER BY op, cin, cout, h, w',
        [table.engine, table.engineVersion, table.host, table.threads, table.batch],
      );
      return rows.map(latencyFromRow);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }
}

function ignore(): void {}

/** A per-host default for artifacts, one folder per database (see PostgresStoreOptions.artifacts). */
function defaultArtifacts(url: string): string {
  let key = 'db';
  try {
    const u = new URL(url);
    key = `${u.hostname}_${u.port || '5432'}_${u.pathname.slice(1) || 'postgres'}`;
  } catch {
    // keep the generic name
  }
  return join(homedir(), '.cache', 'autoprune', 'artifacts', key.replace(/[^\w.-]/g, '_'));
}

/** Gives a connection back to the pool, rolled back; a broken one is destroyed instead. */
async function discard(client: pg.PoolClient, rollback: boolean, cause: unknown): Promise<void> {
  let broken = isTransient(cause);
  if (rollback && !broken) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true;
    }
  }
  client.off('error', ignore);
  client.release(broken ? (cause instanceof Error ? cause : new Error(String(cause))) : undefined);
}

/** Every failure leaves as an AutopruneError; the trigger's refusal keeps its own code. */
function toStoreError(e: unknown, label: string, committing = false): AutopruneError {
  if (isAutopruneError(e)) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  if (err.message.includes('TRIAL_IMMUTABLE')) {
    return new AutopruneError(ErrorCodes.TRIAL_IMMUTABLE, err.message, { cause: e });
  }
  if (committing && isTransient(e)) {
    return new AutopruneError(
      ErrorCodes.STORE_ERROR,
      `Database ${quote(label)}: the connection was lost while a write was committing, so it may or may not have been applied: ${err.message}`,
      { cause: e },
    );
  }
  if (isTransient(e)) {
    return new AutopruneError(ErrorCodes.STORE_ERROR, `Database ${quote(label)} is unreachable: ${err.message || String((e as { code?: unknown }).code)}`, {
      cause: e,
    });
  }
  return new AutopruneError(ErrorCodes.STORE_ERROR, `Database ${quote(label)}: ${err.message}`, { cause: e });
}
