/**
 * SQLite backend (better-sqlite3): the dialect of sql.ts for one file (or `:memory:`). One file
 * holds any number of studies; several processes may share it: WAL lets a report read while a
 * search writes, busy_timeout makes writers queue instead of failing, and every write runs
 * synchronously inside BEGIN IMMEDIATE, so this connection runs nothing else until it commits and
 * other connections wait for the write lock: two writers never allocate the same trial number or
 * both claim one trial. Artifacts are files in a folder beside the database.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { AutopruneError, ErrorCodes, isAutopruneError, quote } from '../core/errors.js';
import { FolderArtifacts } from './artifacts.js';
import type { ArtifactPlace, Dialect, Op, Stmt } from './dialect.js';
import { migrate } from './migrations.js';
import { checkStudyName, storeErrors } from './shared.js';
import { SqlStore } from './sql.js';
import type { StoreOptions } from './types.js';

export interface SqliteStoreOptions extends StoreOptions {
  /** How long a writer waits for another process's write lock before failing, in ms. Default 10000. */
  readonly busyTimeoutMs?: number;
}

class SqliteDialect implements Dialect {
  readonly forUpdate = '';
  readonly skipLocked = '';
  inInts(column: string): string {
    return `${column} IN (SELECT value FROM json_each(?))`;
  }
  ints(values: readonly number[]): string {
    return JSON.stringify(values);
  }
  private closed = false;
  private readonly statements = new Map<string, Database.Statement>();
  /** Runs its argument inside BEGIN IMMEDIATE ... COMMIT (rolled back if it throws). */
  private readonly tx: { immediate: (f: () => unknown) => unknown };

  constructor(
    readonly db: Database.Database,
    private readonly path: string,
    private readonly clock: () => number,
  ) {
    this.tx = db.transaction((f: () => unknown) => f());
  }

  private exec(s: Stmt): unknown[] {
    let st = this.statements.get(s.sql);
    if (st === undefined) this.statements.set(s.sql, (st = this.db.prepare(s.sql)));
    if (st.reader) return st.all(...s.params);
    st.run(...s.params);
    return [];
  }

  /** Runs `op` to its end, synchronously: no other work of this process interleaves. */
  private drive<T>(op: Op<T>): T {
    let r = op.next();
    while (!r.done) r = op.next(this.exec(r.value));
    return r.value;
  }

  private run<T>(f: () => T): Promise<T> {
    try {
      if (this.closed) throw storeErrors.closed();
      return Promise.resolve(f());
    } catch (e) {
      return Promise.reject(toStoreError(e, this.path));
    }
  }

  read<T>(op: () => Op<T>): Promise<T> {
    return this.run(() => this.drive(op()));
  }

  write<T>(op: () => Op<T>): Promise<T> {
    return this.run(() => this.tx.immediate(() => this.drive(op())) as T);
  }

  // biome-ignore lint/correctness/useYield: this host's clock, no statement to run; an Op like the other dialects' now
  *now(): Op<number> {
    return this.clock();
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }
}

/** A study's artifacts as files under `dirOf(study)`. */
class FolderPlace implements ArtifactPlace {
  private readonly files: FolderArtifacts;
  constructor(private readonly dirOf: (study: string) => string) {
    this.files = new FolderArtifacts(dirOf);
  }
  put(_id: number, study: string, key: string, bytes: Uint8Array) {
    return this.files.put(study, key, bytes);
  }
  get(_id: number, study: string, key: string) {
    return this.files.get(study, key);
  }
  list(_id: number, study: string, prefix: string) {
    return this.files.list(study, prefix);
  }
  async drop(study: string): Promise<void> {
    await rm(this.dirOf(study), { recursive: true, force: true });
  }
}

export class SqliteStore extends SqlStore {
  readonly path: string;
  /** This process's folder of artifacts: beside the file, or a temporary folder of its own for `:memory:`. */
  private readonly artifactRoot: string;
  private readonly dialect: SqliteDialect;

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
    const root = memory
      ? join(tmpdir(), `autoprune-memory-${process.pid}-${randomBytes(6).toString('hex')}`)
      : join(dirname(path), `${basename(path)}.artifacts`);
    const dialect = new SqliteDialect(db, path, options.clock ?? Date.now);
    super(dialect, new FolderPlace((study) => join(root, study)), memory || options.clock !== undefined ? null : path);
    this.path = path;
    this.artifactRoot = root;
    this.dialect = dialect;
  }

  /** Open (creating if needed) and migrate. The parent folder must exist (openStore creates it). */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    return new SqliteStore(path, options);
  }

  /** The underlying connection, for diagnostics and tests (pragma checks, raw SQL). */
  get connection(): Database.Database {
    return this.dialect.db;
  }

  artifactDir(study: string): string {
    checkStudyName(study);
    return join(this.artifactRoot, study);
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
