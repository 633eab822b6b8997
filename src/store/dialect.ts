/**
 * The seam between the one implementation of the store's queries (sql.ts) and a SQL backend. The
 * queries are generator functions that yield statements (`?` placeholders, SQL both SQLite and
 * PostgreSQL accept) and get back their rows, so one body serves both: SQLite runs it synchronously
 * inside BEGIN IMMEDIATE (nothing else runs on the connection until it commits: the single writer),
 * PostgreSQL awaits each statement on one pooled connection inside BEGIN ... COMMIT, retried while
 * the failure surely left nothing committed. What the two spell differently is here: row locks, the
 * clock of leases, where artifacts live, placeholders (numbered by the PostgreSQL dialect).
 */
import type { ArtifactInfo } from './types.js';

/** One statement with `?` placeholders and its parameters. */
export interface Stmt {
  readonly sql: string;
  readonly params: readonly unknown[];
}

/** A unit of work: yields statements, receives each one's rows, returns T. */
export type Op<T> = Generator<Stmt, T, unknown[]>;

/** The rows of one statement (none for a statement without RETURNING). */
export function* rows<R>(sql: string, ...params: unknown[]): Op<R[]> {
  return (yield { sql, params }) as R[];
}

/** The first row of one statement, or undefined. */
export function* row<R>(sql: string, ...params: unknown[]): Op<R | undefined> {
  return (yield { sql, params })[0] as R | undefined;
}

/** How a write may be retried after the connection was lost while it committed (PostgreSQL). */
export interface WriteOptions {
  /** Applying it twice is applying it once, or the op checks what landed: retry even then. */
  readonly idempotent?: boolean;
  /** Told before such a retry, so the op can look for its own landed write first. */
  readonly onLostCommit?: () => void;
}

/** Where a backend keeps a study's artifacts (a folder beside SQLite's file; a table in PostgreSQL). */
export interface ArtifactPlace {
  put(studyId: number, study: string, key: string, bytes: Uint8Array): Promise<ArtifactInfo>;
  get(studyId: number, study: string, key: string): Promise<Uint8Array | null>;
  list(studyId: number, study: string, prefix: string): Promise<ArtifactInfo[]>;
  /** After the study's rows were deleted. */
  drop(study: string): Promise<void>;
}

export interface Dialect {
  /** Appended to a SELECT that the write transaction must hold until COMMIT: ` FOR UPDATE`, or nothing where the transaction holds the whole database (SQLite). */
  readonly forUpdate: string;
  /** Like `forUpdate`, for a queue pop that passes rows other writers hold: ` FOR UPDATE SKIP LOCKED`. */
  readonly skipLocked: string;
  /** SQL true when integer `column` is one of the list passed as one parameter (`ints` encodes it), so one statement serves any count. */
  inInts(column: string): string;
  ints(values: readonly number[]): unknown;
  /** Reads: one statement sees one snapshot; no transaction. */
  read<T>(op: () => Op<T>): Promise<T>;
  /** One write transaction (rolled back if it throws). `op` is run again from the start on a retry. */
  write<T>(op: () => Op<T>, o?: WriteOptions): Promise<T>;
  /** The store's clock in ms (leases): an injected clock, else the database server's, else this host's. */
  now(): Op<number>;
  close(): Promise<void>;
}
