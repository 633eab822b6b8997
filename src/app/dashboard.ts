/**
 * `autoprune serve`: the dashboard over an existing store (src/serve), read-only. The bind is
 * checked before the store is touched, and the store closes with the server.
 */
import { checkServeOptions, startServer } from '../serve/server.js';
import { openExistingStore } from './studies.js';

export { DEFAULT_HOST, DEFAULT_PORT } from '../serve/server.js';

export interface DashboardOptions {
  /** The store as the user named it (SQLite file or postgres:// URL): the commands the pages show use it. */
  readonly store: string;
  readonly port: number;
  readonly host: string;
  /** Secret every request must carry; null: none (loopback only). */
  readonly token: string | null;
}

export interface Dashboard {
  readonly url: string;
  /** Stops the server, then closes the store. */
  close(): Promise<void>;
}

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  // Refuse a bad bind before touching the store.
  checkServeOptions({ port: o.port, host: o.host, token: o.token });
  const store = await openExistingStore(o.store);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({ store, port: o.port, host: o.host, token: o.token, label: o.store });
  } catch (e) {
    await store.close();
    throw e;
  }
  return {
    url: server.url,
    close: async () => {
      await server.close();
      await store.close();
    },
  };
}
