import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { isPostgresUrl, MEMORY_LOCATIONS } from '../core/location.js';
import { MemoryStore } from './memory.js';
import type { PostgresStoreOptions } from './postgres.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
import type { Store } from './types.js';

export { isPostgresUrl, redactUrl } from '../core/location.js';
export { checkStudyInputs } from './inputs.js';
export { MemoryStore } from './memory.js';
export { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
export type { PostgresStore, PostgresStoreOptions } from './postgres.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
export type * from './types.js';
export { SNAPSHOTS_KEPT } from './types.js';

export type OpenStoreOptions = SqliteStoreOptions & PostgresStoreOptions;

/**
 * Open the store at `location`: `:memory:` or `memory:` -> in-memory (gone when the process
 * exits); `postgres://…` or `postgresql://…` -> a PostgreSQL database (schema migrated; never a
 * file path); anything else is a SQLite file path (parent folders are created, the schema migrated).
 */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (typeof location !== 'string' || location.trim() === '') {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected a store location (a file path, \`:memory:\` or a postgres:// URL), got ${quote(location)}`);
  }
  if (MEMORY_LOCATIONS.includes(location)) return new MemoryStore(options);
  if (isPostgresUrl(location)) {
    // Loaded on demand: the `pg` client is needed only by PostgreSQL users.
    const { PostgresStore } = await import('./postgres.js');
    return PostgresStore.open(location, options);
  }
  const path = resolve(location);
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (e) {
    throw new AutopruneError(ErrorCodes.STORE_ERROR, `Cannot create the folder of store ${quote(path)}: ${(e as Error).message}`, { cause: e });
  }
  return SqliteStore.open(path, options);
}
