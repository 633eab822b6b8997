/**
 * Store locations: a SQLite file path, `:memory:`, or a PostgreSQL URL. Shared by the config (which
 * resolves file paths but must leave URLs alone) and the store factory.
 */

/** `postgres://…` and `postgresql://…` name a PostgreSQL database, never a file. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** Locations that mean "keep it in this process only". */
export const MEMORY_LOCATIONS: readonly string[] = [':memory:', 'memory:'];

/** True when the location is a file path (neither in-memory nor a database URL). */
export function isFileLocation(location: string): boolean {
  return !MEMORY_LOCATIONS.includes(location) && !isPostgresUrl(location);
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}
