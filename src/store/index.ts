import { accessSync, constants, mkdirSync, statfsSync, statSync } from 'node:fs';
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
 * File systems that are not storage: the kernel's views (proc, sysfs, cgroup, debugfs, ...). Under
 * /proc, Node 20's mkdirSync(recursive) never returns, so such a location is refused before any
 * folder is made. Magic numbers of statfs(2) (linux/magic.h).
 */
const SPECIAL_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x1cd1, 'devpts'],
]);

const unwritable = (path: string, why: string) =>
  new AutopruneError(
    ErrorCodes.LOCATION_UNWRITABLE,
    `Cannot keep a store at ${quote(path)}: ${why}; expected a path in a writable folder (or a postgres:// URL)`,
  );

/**
 * Refuses, at once, a SQLite location that cannot be written: its nearest existing folder must be
 * a writable folder on a storage file system. Memory and PostgreSQL locations pass.
 */
export function checkStoreLocation(location: string): void {
  if (MEMORY_LOCATIONS.includes(location) || isPostgresUrl(location)) return;
  const path = resolve(location);
  let dir = dirname(path);
  for (;;) {
    try {
      if (!statSync(dir).isDirectory()) throw unwritable(path, `${quote(dir)} is not a folder`);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR')
        throw e instanceof AutopruneError ? e : unwritable(path, (e as Error).message);
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  const fs = SPECIAL_FS.get(Number(statfsSync(dir).type));
  if (fs !== undefined) throw unwritable(path, `${quote(dir)} is on the ${fs} file system, which holds no files`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw unwritable(path, `${quote(dir)} is not writable by this user`);
  }
}

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
  checkStoreLocation(path);
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (e) {
    throw new AutopruneError(ErrorCodes.STORE_ERROR, `Cannot create the folder of store ${quote(path)}: ${(e as Error).message}`, { cause: e });
  }
  return SqliteStore.open(path, options);
}
