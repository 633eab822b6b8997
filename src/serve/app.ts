/**
 * The dashboard's HTTP application (Hono: a maintained, dependency-free router whose app is a plain
 * `fetch` handler, so tests call it without a socket and @hono/node-server serves it). Read-only: the
 * only routes are GETs of static assets and JSON over the store. Pages are static files; every value
 * from the store reaches the browser as JSON and is put into the page as text, never as markup.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type Context, Hono } from 'hono';
import { compress } from 'hono/compress';
import { getCookie, setCookie } from 'hono/cookie';
import { secureHeaders } from 'hono/secure-headers';
import { AutopruneError, ErrorCodes, isAutopruneError, quote } from '../core/errors.js';
import { isPostgresUrl, redactUrl } from '../core/location.js';
import { keepRatios } from '../core/space.js';
import { isRungTrial } from '../core/types.js';
import { latencyEngineOf } from '../evaluators/types.js';
import { buildCompareInfo, buildReportInfo, pickCandidates } from '../report/data.js';
import { bad, measuringHost, oneLatencyEngine, type PickConstraintText, pickConstraints, picked } from '../report/pick.js';
import type { Store } from '../store/types.js';
import { downsample, Feeds } from './feed.js';
import type { ChangeReader } from './queries.js';

export interface AppOptions {
  readonly store: Store;
  readonly reader: ChangeReader;
  /** When set, every request must carry it (Authorization: Bearer, the cookie, or ?token=). */
  readonly token?: string | null;
  /** The store as the export command shown on the pick page names it (a password is never shown). */
  readonly storeLabel: string;
}

export const TOKEN_COOKIE = 'autoprune_token';
/** The progress chart gets at most this many steps (a 10,000-trial study needs no more to draw). */
const PROGRESS_POINTS = 600;

const PUBLIC = join(import.meta.dirname, 'public');
const ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: join(PUBLIC, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: join(PUBLIC, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: join(PUBLIC, 'app.css'), type: 'text/css; charset=utf-8' },
  // chart.js's own UMD build from node_modules: pages load nothing from other hosts.
  '/vendor/chart.umd.min.js': {
    file: join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
};

function sameToken(given: string | undefined | null, token: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Loopback names: without a token the server answers only requests addressed to one (DNS rebinding). */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function hostName(host: string | undefined): string {
  if (!host) return '';
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
}

/** `a b` -> `'a b'`: an argument a POSIX shell passes through unchanged. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function jsonError(c: Context, e: unknown) {
  if (isAutopruneError(e)) {
    const status = e.code === ErrorCodes.STUDY_NOT_FOUND || e.code === ErrorCodes.TRIAL_NOT_FOUND ? 404 : e.code === ErrorCodes.STORE_ERROR ? 503 : 400;
    return c.json({ error: e.message, code: e.code }, status);
  }
  throw e;
}

function param(c: Context, name: string): string {
  const v = c.req.query(name);
  if (v === undefined || v === '') throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected the query parameter \`${name}\``);
  return v;
}

function intParam(c: Context, name: string, dflt?: number): number {
  const raw = c.req.query(name);
  if ((raw === undefined || raw === '') && dflt !== undefined) return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0)
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected \`${name}\` to be an integer >= 0, got ${quote(raw ?? '')}`);
  return v;
}

export function createApp(o: AppOptions): { app: Hono; feeds: Feeds } {
  const feeds = new Feeds(o.store, o.reader);
  const token = o.token ?? null;
  const app = new Hono();

  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // chart.js sizes its canvas through style properties.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
      },
      referrerPolicy: 'no-referrer',
    }),
  );

  app.use(async (c, next) => {
    if (token === null) {
      if (!LOOPBACK_HOSTS.has(hostName(c.req.header('host')))) return c.text('This dashboard answers only on a loopback address (127.0.0.1, localhost)\n', 403);
      return next();
    }
    const auth = c.req.header('authorization');
    const bearer = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length).trim() : null;
    if (sameToken(bearer, token) || sameToken(getCookie(c, TOKEN_COOKIE), token)) return next();
    const q = c.req.query('token');
    if (sameToken(q, token)) {
      // Once: the cookie carries it from now on, and the address bar (and history) lose it.
      setCookie(c, TOKEN_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/' });
      if (c.req.method === 'GET' && !c.req.path.startsWith('/api/')) {
        const url = new URL(c.req.url);
        url.searchParams.delete('token');
        return c.redirect(`${url.pathname}${url.search}`, 303);
      }
      return next();
    }
    return c.json({ error: 'A token is required: send `Authorization: Bearer <token>`, or open the dashboard once with ?token=<token>' }, 401, {
      'WWW-Authenticate': 'Bearer realm="autoprune"',
    });
  });

  app.use('/api/*', compress());
  app.use('/api/*', async (c, next) => {
    await next();
    c.header('Cache-Control', 'no-store');
  });

  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, (c) => {
      const body = readFileSync(asset.file);
      return c.body(body, 200, { 'Content-Type': asset.type, 'Cache-Control': path.startsWith('/vendor/') ? 'max-age=3600' : 'no-cache' });
    });
  }

  const feedOf = async (name: string) => {
    const f = await feeds.get(name);
    if (f === null) {
      const names = (await o.store.listStudies()).map((s) => s.name);
      throw new AutopruneError(
        ErrorCodes.STUDY_NOT_FOUND,
        `Study ${quote(name)} not found; ${names.length ? `expected one of: ${names.map((n) => quote(n)).join(', ')}` : 'the store has no studies'}`,
      );
    }
    return f;
  };

  const api = (path: string, fn: (c: Context) => Promise<unknown>) =>
    app.get(path, async (c) => {
      try {
        return c.json(await fn(c));
      } catch (e) {
        return jsonError(c, e);
      }
    });

  api('/api/studies', async () => ({
    store: o.storeLabel,
    studies: (await feeds.all()).map((f) => f.summary()),
  }));

  api('/api/study', async (c) => (await feedOf(param(c, 'name'))).summary());

  /** Incremental trial rows: `since` = the version the page holds (0: everything), `epoch` = the epoch it holds. */
  api('/api/trials', async (c) => {
    const f = await feedOf(param(c, 'study'));
    return f.since(intParam(c, 'since', 0), c.req.query('epoch') ?? null);
  });

  api('/api/trial', async (c) => {
    const f = await feedOf(param(c, 'study'));
    const n = intParam(c, 'n');
    const t = await o.store.getTrial(f.study.name, n);
    if (t === null) throw new AutopruneError(ErrorCodes.TRIAL_NOT_FOUND, `Trial ${n} of study ${quote(f.study.name)} not found`);
    const space = f.study.space;
    const ratios = t.candidate.channels.length === space.groups.length ? keepRatios(space, t.candidate) : [];
    const final = f.final(n) ?? null;
    const children = f
      .trials()
      .filter((x) => x.parent === n)
      .map((x) => x.number);
    const artifacts = await o.store.listArtifacts(f.study.name, `trials/${n}/`);
    return {
      study: f.study.name,
      base: { macs: f.study.baseCost.macs, params: f.study.baseCost.params, proxyAccuracy: f.study.baseProxyAccuracy, testAccuracy: f.study.baseTestAccuracy },
      trial: t,
      groups: space.groups.map((g, i) => ({ id: g.id, channels: g.channels, kept: t.candidate.channels[i] ?? null, ratio: ratios[i] ?? null })),
      final,
      /** The rung `final` comes from (the study's last), null when none. */
      finalRung: final === null ? null : f.summary().finalRung,
      host: measuringHost(t),
      latencyEngine: latencyEngineOf(t.metrics.timings),
      children,
      artifacts,
      onProxyFront: f.summary().proxyFront.includes(n),
      exportCommand: t.state === 'complete' ? `autoprune export ${shellQuote(f.study.name)} ${n} --store ${shellQuote(o.storeLabel)}` : null,
    };
  });

  api('/api/progress', async (c) => {
    const f = await feedOf(param(c, 'study'));
    const info = f.reportInfo();
    return {
      version: f.summary().version,
      targets: info.targets,
      window: info.window,
      steps: downsample(info.progress.byTime, PROGRESS_POINTS),
    };
  });

  api('/api/compare', async (c) => {
    const names = c.req.queries('s') ?? [];
    if (names.length < 1) throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, 'Expected one or more studies to compare (?s=a&s=b)');
    const data = [];
    for (const n of names) {
      const f = await feedOf(n);
      data.push({ study: f.study, trials: f.trials(), finals: f.finalRecords() });
    }
    return buildCompareInfo(data);
  });

  api('/api/pick', async (c) => {
    const f = await feedOf(param(c, 'study'));
    const text: PickConstraintText = {};
    for (const k of ['maxFlops', 'maxParams', 'maxLatency', 'minAcc'] as const) {
      const v = c.req.query(k)?.trim();
      if (v) text[k] = v;
    }
    const constraints = pickConstraints(text);
    const top = intParam(c, 'top', 10);
    if (top < 1) throw bad('top', String(top), 'an integer >= 1');
    // As `autoprune pick`: latencies of the search's trials count; rung trials only tell each accuracy's rung.
    const rungTrials = f.trials().filter(isRungTrial);
    let trials = f.trials().filter((t) => !isRungTrial(t));
    let finals = f.finalRecords();
    let latency: { engine: string | null; host: string | null; device: string | null; dropped: number } | null = null;
    if (constraints.maxLatencyMs !== undefined) {
      const one = oneLatencyEngine(trials, finals);
      ({ trials, finals } = one);
      latency = { engine: one.engine, host: one.host, device: one.device, dropped: one.dropped };
    }
    const info = buildReportInfo(f.study, [...trials, ...rungTrials], finals);
    const all = pickCandidates(info, constraints);
    const cli = [
      `autoprune pick ${shellQuote(f.study.name)}`,
      ...Object.entries({ maxFlops: '--max-flops', maxParams: '--max-params', maxLatency: '--max-latency', minAcc: '--min-acc' }).flatMap(([k, flag]) => {
        const v = text[k as keyof PickConstraintText];
        return v === undefined ? [] : [`${flag} ${shellQuote(v)}`];
      }),
      `--top ${top}`,
      `--store ${shellQuote(o.storeLabel)}`,
    ].join(' ');
    return {
      complete: info.counts.complete,
      matched: all.length,
      latency,
      command: cli,
      rows: all.slice(0, top).map((r) => ({
        ...picked(r),
        exportCommand: `autoprune export ${shellQuote(f.study.name)} ${r.point.trial} --store ${shellQuote(o.storeLabel)}`,
      })),
    };
  });

  app.get('/favicon.ico', (c) => c.body(null, 204));
  app.all('/api/*', (c) => c.json({ error: `No such API route: ${c.req.path}` }, 404));
  app.notFound((c) => c.text('Not found\n', 404));
  return { app, feeds };
}

/** How pages name the store: the path, or the URL without its password. */
export function storeLabel(location: string): string {
  return isPostgresUrl(location) ? redactUrl(location) : location;
}
