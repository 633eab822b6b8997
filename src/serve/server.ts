/**
 * `autoprune serve`: the dashboard over a store, on a socket. Binding to an address other than
 * loopback exposes the store's studies to the network, so it is refused without a token.
 */
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { serve } from '@hono/node-server';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { Store } from '../store/types.js';
import { createApp, storeLabel } from './app.js';
import type { Feeds } from './feed.js';
import { openChangeReader } from './queries.js';

export interface ServeOptions {
  readonly store: Store;
  /** Default 8080; 0 picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly token?: string | null;
  /** How pages name the store in the commands they show (default: its location); a password is never shown. */
  readonly label?: string;
}

export interface RunningServer {
  /** http://host:port/ as a browser on this machine reaches it. */
  readonly url: string;
  readonly port: number;
  readonly feeds: Feeds;
  close(): Promise<void>;
}

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '127.0.0.1';

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The one-line refusals, checked before anything is opened. */
export function checkServeOptions(o: { port: number; host: string; token: string | null }): void {
  if (!(Number.isInteger(o.port) && o.port >= 0 && o.port <= 65535)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected --port to be an integer in [0, 65535], got ${quote(o.port)}`);
  }
  if (o.host.trim() === '') throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, 'Expected --host to be an address such as 127.0.0.1, got an empty string');
  if (o.token !== null && o.token.length < 8) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected a token of 8 or more characters, got one of ${o.token.length}`);
  }
  if (!isLoopback(o.host) && o.token === null) {
    throw new AutopruneError(
      ErrorCodes.INVALID_ARGUMENT,
      `Refusing to serve on ${quote(o.host)} without a token: pass --token <secret> (or set AUTOPRUNE_SERVE_TOKEN), or bind to 127.0.0.1 and use an SSH tunnel`,
    );
  }
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const port = o.port ?? DEFAULT_PORT;
  const host = o.host ?? DEFAULT_HOST;
  const token = o.token ?? null;
  checkServeOptions({ port, host, token });
  const reader = await openChangeReader(o.store);
  const { app, feeds } = createApp({ store: o.store, reader, token, storeLabel: storeLabel(o.label ?? o.store.location ?? ':memory:') });
  const server = serve({ fetch: app.fetch, port, hostname: host });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  } catch (e) {
    await reader.close();
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'EADDRINUSE' ? 'the port is in use (pick another with --port)' : err.message;
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Cannot listen on ${host}:${port}: ${why}`, { cause: e });
  }
  const actual = (server.address() as AddressInfo).port;
  // Bound to every address: name this machine, as another machine would reach it.
  const shown = host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${actual}/`,
    port: actual,
    feeds,
    close: async () => {
      await new Promise<void>((r) => {
        server.close(() => r());
        // Pages keep connections alive; close them so the process can exit.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await feeds.close();
    },
  };
}
