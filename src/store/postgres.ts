/**
 * PostgreSQL backend (the `pg` client): the dialect of sql.ts for one database shared by the
 * driver and workers on several hosts, as Optuna users share an RDB storage. Same tables, rules and
 * statements as SQLite; what differs is how concurrent writers are kept apart: every
 * read-check-write locks the rows it checks (`SELECT ... FOR UPDATE`, the queue pop with SKIP
 * LOCKED), and the lease clock is the server's, shared by every host.
 * A connection lost before COMMIT (the database restarted, a network blip) is retried with backoff
 * for up to `retryMs`; one lost during COMMIT is reported, since the write may or may not have landed,
 * except where a retry can tell: artifact and latency puts (idempotent), heartbeats, claims (the
 * retry looks for its own claim first) and finishes (the retry recognises its own write by the
 * fencing token). Artifacts live in a table, so workers on other hosts read them without a shared
 * mount; artifactDir is this host's copy.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { AutopruneError, ErrorCodes, isAutopruneError, quote } from '../core/errors.js';
import { redactUrl } from '../core/location.js';
import { sha256Hex } from './artifacts.js';
import { type ArtifactPlace, type Dialect, type Op, row, rows, type Stmt, type WriteOptions } from './dialect.js';
import { pgMigrate } from './postgres-migrations.js';
import { checkStudyName, nowIso, storeErrors } from './shared.js';
import { SqlStore } from './sql.js';
import type { ArtifactInfo, StoreOptions } from './types.js';

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

/** `?` placeholders numbered `$1, $2, ...` (the store's statements have no `?` inside literals). */
const numbered = new Map<string, string>();
function numberPlaceholders(sql: string): string {
  let out = numbered.get(sql);
  if (out === undefined) {
    let i = 0;
    out = sql.replace(/\?/g, () => `$${++i}`);
    numbered.set(sql, out);
  }
  return out;
}

class PostgresDialect implements Dialect {
  readonly forUpdate = ' FOR UPDATE';
  readonly skipLocked = ' FOR UPDATE SKIP LOCKED';
  inInts(column: string): string {
    return `${column} = ANY(CAST(? AS INTEGER[]))`;
  }
  ints(values: readonly number[]): number[] {
    return [...values];
  }
  closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly label: string,
    private readonly retryMs: number,
    /** The injected lease clock (tests); undefined = the database server's clock. */
    private readonly clock: (() => number) | undefined,
  ) {}

  /**
   * One unit of work on one pooled connection: `read` (no transaction) or `tx` (BEGIN ... COMMIT).
   * Retried with backoff (100 ms doubling to 2 s, for up to `retryMs`) while the failure surely
   * left nothing committed: a lost connection during COMMIT is reported instead, unless the write
   * is `idempotent` (`onLostCommit` is told before such a retry).
   */
  async unit<T>(mode: 'read' | 'tx', f: (c: pg.PoolClient) => Promise<T>, o: WriteOptions = {}): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw storeErrors.closed();
      let client: pg.PoolClient | undefined;
      let committing = false;
      try {
        client = await this.pool.connect();
        client.on('error', ignore);
        const c = client;
        if (mode === 'tx') await c.query('BEGIN');
        const out = await f(c);
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

  /** Runs `op` on connection `c`, awaiting each statement it yields. */
  private async drive<T>(c: pg.PoolClient, op: Op<T>): Promise<T> {
    let r = op.next();
    while (!r.done) {
      const s: Stmt = r.value;
      r = op.next((await c.query(numberPlaceholders(s.sql), s.params as unknown[])).rows);
    }
    return r.value;
  }

  read<T>(op: () => Op<T>): Promise<T> {
    return this.unit('read', (c) => this.drive(c, op()));
  }

  write<T>(op: () => Op<T>, o: WriteOptions = {}): Promise<T> {
    return this.unit('tx', (c) => this.drive(c, op()), o);
  }

  *now(): Op<number> {
    if (this.clock !== undefined) return this.clock();
    const r = yield* row<{ now: number }>('SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now');
    return r!.now;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }
}

/** Artifacts in the `artifacts` table: any host of the database reads what another one put. */
class TablePlace implements ArtifactPlace {
  constructor(private readonly sql: PostgresDialect) {}

  put(id: number, _study: string, key: string, bytes: Uint8Array): Promise<ArtifactInfo> {
    const info = { key, sha256: sha256Hex(bytes), size: bytes.byteLength };
    // Idempotent (same key, same bytes): retried also when the connection drops during COMMIT.
    return this.sql.write(
      function* () {
        yield* rows(
          `INSERT INTO artifacts (study_id, key, sha256, size, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (study_id, key) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, bytes = excluded.bytes, created_at = excluded.created_at`,
          id,
          key,
          info.sha256,
          info.size,
          Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
          nowIso(),
        );
        return info;
      },
      { idempotent: true },
    );
  }

  get(id: number, _study: string, key: string): Promise<Uint8Array | null> {
    return this.sql.read(function* () {
      const r = yield* row<{ bytes: Buffer }>('SELECT bytes FROM artifacts WHERE study_id = ? AND key = ?', id, key);
      return r === undefined ? null : new Uint8Array(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
    });
  }

  list(id: number, _study: string, prefix: string): Promise<ArtifactInfo[]> {
    return this.sql.read(function* () {
      // starts_with, not LIKE: `_` in a key is a plain character.
      const all = yield* rows<ArtifactInfo>(
        'SELECT key, sha256, size FROM artifacts WHERE study_id = ? AND starts_with(key, ?) ORDER BY key COLLATE "C"',
        id,
        prefix,
      );
      return all.map((r) => ({ key: r.key, sha256: r.sha256, size: r.size }));
    });
  }

  /** The rows went with the study (ON DELETE CASCADE); this host's copies are left to the cache. */
  async drop(): Promise<void> {}
}

export class PostgresStore extends SqlStore {
  private readonly artifactRoot: string;

  private constructor(dialect: PostgresDialect, o: { clock?: () => number; artifacts: string; url: string }) {
    // The URL (with its password) is handed only to this process's own lease thread.
    super(dialect, new TablePlace(dialect), o.clock === undefined ? o.url : null);
    this.artifactRoot = o.artifacts;
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
    const dialect = new PostgresDialect(pool, label, options.retryMs ?? 60_000, options.clock);
    try {
      await dialect.unit('read', (c) => pgMigrate(c, label));
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw toStoreError(e, label);
    }
    return new PostgresStore(dialect, {
      clock: options.clock,
      artifacts: options.artifacts ?? process.env.AUTOPRUNE_ARTIFACTS ?? defaultArtifacts(url),
      url,
    });
  }

  artifactDir(study: string): string {
    checkStudyName(study);
    return join(this.artifactRoot, study);
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
