/**
 * PostgreSQL for tests: the server named by AUTOPRUNE_TEST_PG (default: the private loopback cluster
 * of scripts/pg-local.sh). Each test database is created here and dropped when the file ends.
 * Without a reachable server the PostgreSQL tests are skipped with a message, except under CI
 * (CI=true), where .ci/run starts the server and a missing one is a failure.
 */
import type pg from 'pg';

export const ADMIN_URL = process.env.AUTOPRUNE_TEST_PG ?? 'postgres://postgres@127.0.0.1:54329/postgres';

/** The `pg` module, loaded on demand (a checkout whose node_modules predate it still runs the other tests). */
async function pgModule(): Promise<typeof pg | null> {
  try {
    return (await import('pg')).default;
  } catch {
    return null;
  }
}

/** A client (not yet connected) for `url`; errors of a dropped connection are ignored. */
export async function pgClient(url: string, options: { connectionTimeoutMillis?: number } = {}): Promise<pg.Client> {
  const m = await pgModule();
  if (m === null) throw new Error('the npm package `pg` is not installed (run npm ci)');
  const c = new m.Client({ connectionString: url, ...options });
  c.on('error', () => undefined);
  return c;
}

/** Null when the server answers; else why not, with how to start it. */
export async function pgUnavailable(): Promise<string | null> {
  if ((await pgModule()) === null) {
    const why = 'the npm package `pg` is not installed here (run npm ci)';
    if (process.env.CI) throw new Error(`CI must run the PostgreSQL tests: ${why}`);
    return why;
  }
  const c = await pgClient(ADMIN_URL, { connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (e) {
    const why = `no PostgreSQL server at ${ADMIN_URL} (${(e as Error).message || (e as { code?: string }).code}); start one with \`bash scripts/pg-local.sh start\` or set AUTOPRUNE_TEST_PG`;
    if (process.env.CI) throw new Error(`CI must run the PostgreSQL tests: ${why}`);
    return why;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function admin<T>(f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await pgClient(ADMIN_URL);
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}

/** The URL of the same server with another database name. */
export function dbUrl(db: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

/**
 * One database per test file (created on first use, dropped by `dropAll`), and a fresh schema in it
 * per store: the URL selects it with `options=-c search_path=...`. Schemas because CREATE/DROP
 * DATABASE each take about a second (a checkpoint).
 */
export function testDatabases(prefix: string): { fresh: () => Promise<string>; dropAll: () => Promise<void> } {
  const db = `${prefix}_${process.pid}`;
  let created = false;
  let n = 0;
  return {
    async fresh() {
      if (!created) {
        await admin((c) => c.query(`CREATE DATABASE ${db}`));
        created = true;
      }
      const schema = `s${++n}`;
      const url = dbUrl(db);
      const c = await pgClient(url);
      await c.connect();
      try {
        await c.query(`CREATE SCHEMA ${schema}`);
      } finally {
        await c.end();
      }
      return `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    },
    async dropAll() {
      if (!created) return;
      created = false;
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
    },
  };
}

/**
 * A TCP proxy in front of the test server that can cut the next exchange on purpose, as a network
 * failure would: `cut('request')` drops the connection before the next client message reaches the
 * server (nothing happens there); `cut('response')` lets it through and drops the connection
 * instead of the server's answer (it happened, the client cannot know). `cuts` counts the cuts done.
 */
export async function cuttingProxy(
  url: string,
): Promise<{ url: string; cut: (where: 'request' | 'response') => void; readonly cuts: number; close: () => Promise<void> }> {
  const { createServer, connect } = await import('node:net');
  const target = new URL(url);
  let armed: 'request' | 'response' | null = null;
  let cuts = 0;
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => (sockets.delete(s), client.destroy(), upstream.destroy()));
    }
    client.on('data', (d) => {
      if (armed === 'request') {
        armed = null;
        cuts++;
        client.destroy();
        return;
      }
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (armed === 'response') {
        armed = null;
        cuts++;
        // The server has answered, so its work is done; the client never hears of it.
        upstream.destroy();
        return;
      }
      client.write(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const via = new URL(url);
  via.hostname = '127.0.0.1';
  via.port = String((server.address() as import('node:net').AddressInfo).port);
  return {
    url: via.toString(),
    cut: (where) => (armed = where),
    get cuts() {
      return cuts;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
