/**
 * The dashboard's one read that the Store interface does not offer: "the trials that may have changed
 * since I last looked". Finished trials (complete, failed) never change (the store's contract, also a
 * trigger in SQLite), so a reader that knows the highest trial number it holds and which of its trials
 * were unfinished sees every change by asking for: trials numbered above that, trials it watches (its
 * unfinished ones, which may have finished since), and trials unfinished now (a requeued trial).
 * That costs O(new + unfinished) rows per poll instead of the whole study.
 *
 * SQLite and PostgreSQL are read directly over a connection of our own (read-only for SQLite, a small
 * pool for PostgreSQL), by the table layout the stores share (src/store/rows.ts); a store that lives
 * only in its object (memory) is read through `listTrials` and filtered here.
 */
import Database from 'better-sqlite3';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { isPostgresUrl, redactUrl } from '../core/location.js';
import { type TrialRow, trialFromRow } from '../store/rows.js';
import type { Store, TrialRecord } from '../store/types.js';

export interface ChangeReader {
  /** How it reads: its own SQL connection, or the Store's listTrials. */
  readonly kind: 'sqlite' | 'postgres' | 'store';
  /**
   * Trials of `study` numbered above `after`, or numbered in `watch`, or not finished now; by number.
   * An unknown study has none.
   */
  changedTrials(study: string, after: number, watch: readonly number[]): Promise<TrialRecord[]>;
  close(): Promise<void>;
}

const COLUMNS = `t.number, t.state, t.candidate, t.key, t.macs, t.params, t.controller, t.meta, t.proxy_accuracy, t.final_accuracy,
  t.latency_ms, t.latency_host, t.latency_device, t.timings, t.error, t.worker, t.created_at, t.started_at, t.finished_at, t.finish_seq, t.stage,
  t.parent, t.attempts, t.lease_token, t.lease_expires_ms`;

const UNFINISHED = `t.state IN ('waiting', 'running')`;

class SqliteChanges implements ChangeReader {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly stmt: Database.Statement;

  constructor(path: string) {
    try {
      // Read-only: the dashboard never writes, and a read-only handle cannot take the write lock a
      // running search needs. WAL lets it read while the search writes.
      this.db = new Database(path, { readonly: true, fileMustExist: true });
      this.db.pragma('busy_timeout = 5000');
      this.stmt = this.db.prepare(
        `SELECT ${COLUMNS} FROM trials t JOIN studies s ON s.id = t.study_id
         WHERE s.name = ? AND (t.number > ? OR ${UNFINISHED} OR t.number IN (SELECT value FROM json_each(?)))
         ORDER BY t.number`,
      );
    } catch (e) {
      throw new AutopruneError(ErrorCodes.STORE_ERROR, `Cannot read the store ${quote(path)}: ${(e as Error).message}`, { cause: e });
    }
  }

  changedTrials(study: string, after: number, watch: readonly number[]): Promise<TrialRecord[]> {
    const rows = this.stmt.all(study, after, JSON.stringify(watch)) as TrialRow[];
    return Promise.resolve(rows.map((r) => trialFromRow(study, r)));
  }

  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }
}

class PostgresChanges implements ChangeReader {
  readonly kind = 'postgres' as const;
  // biome-ignore lint/suspicious/noExplicitAny: pg is loaded on demand (only PostgreSQL users need it)
  private constructor(private readonly pool: any) {}

  static async open(url: string): Promise<PostgresChanges> {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: url,
      max: 2,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      application_name: 'autoprune-serve',
      // BIGINT (lease times in ms) as a JS number, as the store reads it.
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
      },
    });
    pool.on('error', () => undefined);
    try {
      await pool.query('SELECT 1');
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw new AutopruneError(ErrorCodes.STORE_ERROR, `Cannot read the store ${quote(redactUrl(url))}: ${(e as Error).message}`, { cause: e });
    }
    return new PostgresChanges(pool);
  }

  async changedTrials(study: string, after: number, watch: readonly number[]): Promise<TrialRecord[]> {
    const client = await this.pool.connect();
    let res: { rows: unknown[] };
    try {
      // Every transaction of our connections is read-only: a statement of ours can never write. (Set
      // per connection, not in the URL's options, which may already select a schema.)
      if (!client.autopruneReadOnly) {
        await client.query('SET default_transaction_read_only = on');
        client.autopruneReadOnly = true;
      }
      res = await client.query(
        `SELECT ${COLUMNS} FROM trials t JOIN studies s ON s.id = t.study_id
       WHERE s.name = $1 AND (t.number > $2 OR ${UNFINISHED} OR t.number = ANY($3::int[]))
       ORDER BY t.number`,
        [study, after, watch],
      );
    } finally {
      client.release();
    }
    return (res.rows as TrialRow[]).map((r) => trialFromRow(study, r));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

class StoreChanges implements ChangeReader {
  readonly kind = 'store' as const;
  constructor(private readonly store: Store) {}

  async changedTrials(study: string, after: number, watch: readonly number[]): Promise<TrialRecord[]> {
    const w = new Set(watch);
    const all = await this.store.listTrials(study).catch(() => []);
    return all.filter((t) => t.number > after || t.state === 'waiting' || t.state === 'running' || w.has(t.number));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A change reader over the same data as `store`: its own connection when the store has a location. */
export async function openChangeReader(store: Store): Promise<ChangeReader> {
  const loc = store.location;
  if (loc === null) return new StoreChanges(store);
  if (isPostgresUrl(loc)) return PostgresChanges.open(loc);
  return new SqliteChanges(loc);
}
