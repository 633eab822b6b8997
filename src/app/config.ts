/**
 * The config a command runs: the file, plus the command line's overrides written into the user's
 * config and validated by the same schema (`--concurrency 100` is refused like
 * `run.concurrency: 100` in the file would be).
 */
import { configHash, type LoadedConfig, loadConfig, type PROXY_ENGINES, resolveConfig } from '../config/index.js';
import type { BackendName } from '../engine/backend.js';

/** What `autoprune search` lets the command line override (undefined: the file's value). */
export interface SearchOverrides {
  readonly trials?: number;
  readonly timeBudget?: string;
  readonly until?: string;
  readonly concurrency?: number;
  readonly workers?: 'threads' | 'inline' | 'none';
  readonly store?: string;
  readonly engine?: (typeof PROXY_ENGINES)[number];
  readonly backend?: BackendName;
}

type Mapping = Record<string, unknown>;
const section = (v: unknown): Mapping => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Mapping) : {});
const defined = (o: Mapping): Mapping => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

export function withOverrides(loaded: LoadedConfig, a: SearchOverrides, source: string): LoadedConfig {
  const budget = defined({ trials: a.trials, time: a.timeBudget, until: a.until });
  const run = defined({ concurrency: a.concurrency, workers: a.workers, backend: a.backend, store: a.store, engine: a.engine });
  if (Object.keys(budget).length === 0 && Object.keys(run).length === 0) return loaded;
  const u = section(loaded.user);
  const search = section(u.search);
  const user = { ...u, search: { ...search, budget: { ...section(search.budget), ...budget } }, run: { ...section(u.run), ...run } };
  const resolved = resolveConfig(user, { source: `${source} with command-line options` });
  return { user, resolved, hash: configHash(resolved) };
}

/** The config file at `path` with `overrides` applied. */
export async function loadSearchConfig(path: string, overrides: SearchOverrides = {}): Promise<LoadedConfig> {
  return withOverrides(await loadConfig(path), overrides, path);
}
