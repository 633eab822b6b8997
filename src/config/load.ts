import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve as resolvePath } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { isFileLocation } from '../core/location.js';
import { configSchema, engineStages, type FinetuneRecipe, type ParsedConfig, type ResolvedConfig, type Rung, syntheticSchema } from './schema.js';

export interface ResolveOptions {
  /** Names the config in error messages (the file path as the user gave it). Default `config`. */
  readonly source?: string;
  /** Relative paths in the config resolve against this folder. Default `process.cwd()`. */
  readonly cwd?: string;
}

export interface LoadedConfig {
  /** The parsed file exactly as written (what `autoprune` stores beside the resolved config). */
  readonly user: unknown;
  readonly resolved: ResolvedConfig;
  /** sha256 (hex) of the canonical JSON of `resolved` (see configHash). */
  readonly hash: string;
}

/**
 * Read, parse, validate and resolve a config file: YAML for `.yaml`/`.yml`, JSON for `.json`.
 * Relative paths inside it resolve against the current working directory (like a shell command's
 * arguments), not against the config file's folder. Throws CONFIG_NOT_FOUND for a missing file and
 * CONFIG_INVALID (one line: file, field path, bad value, expectation) for everything else.
 */
export async function loadConfig(path: string, options: Omit<ResolveOptions, 'source'> = {}): Promise<LoadedConfig> {
  const format = formatOf(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new AutopruneError(ErrorCodes.CONFIG_NOT_FOUND, `Config file not found: ${path}`, { cause: e });
    }
    if (code === 'EISDIR') {
      throw new AutopruneError(ErrorCodes.CONFIG_INVALID, `${path}: is a folder, expected a .yaml, .yml or .json file`);
    }
    throw new AutopruneError(ErrorCodes.CONFIG_INVALID, `${path}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  const user = format === 'yaml' ? parseYaml(path, text) : parseJson(path, text);
  const resolved = resolveConfig(user, { ...options, source: path });
  return { user, resolved, hash: configHash(resolved) };
}

/**
 * The one place where a user config becomes a resolved config (vitest's resolveConfig idea):
 * validate against the strict schema, fill defaults, derive `train.out`, fill `data.synthetic`
 * for synthetic data, make paths absolute against `cwd` (data files and the data cache folder
 * included), and freeze the result.
 */
export function resolveConfig(user: unknown, options: ResolveOptions = {}): ResolvedConfig {
  const source = options.source ?? 'config';
  const cwd = options.cwd ?? process.cwd();
  refuseMovedKeys(user, source);
  const parsed = configSchema.safeParse(user, { error: expectationOf });
  if (!parsed.success) throw new AutopruneError(ErrorCodes.CONFIG_INVALID, describeIssues(source, user, parsed.error.issues));
  const c: ParsedConfig = parsed.data;
  checkWarmStart(c.search, source);
  const abs = (p: string): string => resolvePath(cwd, p);
  // `autoprune train` saves where `autoprune search` reads: the folder of model.checkpoint, unless train.out says otherwise.
  const out = c.train.out ?? (c.model.checkpoint !== undefined ? dirname(c.model.checkpoint) : `experiments/${c.name}/base`);
  const resolved = {
    ...c,
    data: resolveData(c.data, abs),
    model: { ...c.model, ...(c.model.checkpoint !== undefined ? { checkpoint: abs(c.model.checkpoint) } : {}) },
    train: { ...c.train, out: abs(out) },
    evaluation: resolveEvaluation(c, user, source),
    // A postgres:// URL is not a path.
    run: { ...c.run, store: isFileLocation(c.run.store) ? abs(c.run.store) : c.run.store, engine: engineStages(c.run.engine) },
  };
  return deepFreeze(resolved);
}

/** `search.warmStart: baselines` starts the controller from the baseline sweep's results: it needs the sweep, and a controller that can use them. */
function checkWarmStart(s: ParsedConfig['search'], source: string): void {
  if (s.warmStart === 'none') return;
  const why = !s.baseline
    ? '`search.baseline: false` (there is no baseline sweep to start from)'
    : s.controller.name === 'greedy' || s.controller.name === 'uniform' || s.controller.name === 'global'
      ? `controller ${quote(s.controller.name)} (it does not start from other candidates)`
      : null;
  if (why)
    throw new AutopruneError(
      ErrorCodes.CONFIG_INVALID,
      `${source}: \`search.warmStart: baselines\` cannot be used with ${why}; expected random, evolutionary or rl, with the baseline sweep on`,
    );
}

/** Keys that moved, with where they live now: one line naming the new key instead of "unknown key". */
const MOVED_KEYS: readonly (readonly [path: readonly string[], now: string])[] = [
  [['evaluation', 'adapt', 'learningRate'], 'evaluation.finetune.learningRate'],
  [['evaluation', 'adapt', 'batchSize'], 'evaluation.finetune.batchSize'],
];

function refuseMovedKeys(user: unknown, source: string): void {
  for (const [path, now] of MOVED_KEYS) {
    const parent = valueAt(user, path.slice(0, -1));
    if (parent !== null && typeof parent === 'object' && path.at(-1)! in parent) {
      throw new AutopruneError(
        ErrorCodes.CONFIG_INVALID,
        `${source}: \`${path.join('.')}\` is gone: every fine-tune (rungs, finalists, the adapt stage) follows \`${now}\``,
      );
    }
  }
}

/**
 * The evaluation section with one fine-tune recipe and rungs only. The rule for the old keys:
 * `evaluation.finalists.{batchSize,learningRate,batchesPerEpoch}` are read as
 * `evaluation.finetune.<key>` (both written is an error), and the recipe's unwritten optimizer,
 * momentum, weightDecay and augment are `train`'s; `finalists: { count, epochs }` becomes a
 * single rung (docs/rungs.md).
 */
function resolveEvaluation(c: ParsedConfig, user: unknown, source: string): ResolvedConfig['evaluation'] {
  const { finalists, rungs, finetune, ...rest } = c.evaluation;
  const moved: Record<string, unknown> = {};
  for (const key of ['batchSize', 'learningRate', 'batchesPerEpoch'] as const) {
    const old = finalists?.[key];
    if (old === undefined) continue;
    if (valueAt(user, ['evaluation', 'finetune', key]) !== undefined) {
      throw new AutopruneError(
        ErrorCodes.CONFIG_INVALID,
        `${source}: \`evaluation.finalists.${key}\` and \`evaluation.finetune.${key}\` both given: write only \`evaluation.finetune.${key}\``,
      );
    }
    moved[key] = old;
  }
  const recipe: FinetuneRecipe = {
    ...finetune,
    ...moved,
    optimizer: finetune.optimizer ?? c.train.optimizer,
    momentum: finetune.momentum ?? c.train.momentum,
    weightDecay: finetune.weightDecay ?? c.train.weightDecay,
    augment: finetune.augment ?? c.train.augment,
  };
  if (rungs !== undefined && finalists !== undefined) {
    throw new AutopruneError(
      ErrorCodes.CONFIG_INVALID,
      `${source}: \`evaluation.finalists\` and \`evaluation.rungs\` both given: \`finalists\` is shorthand for a single rung, write it as the last of \`rungs\``,
    );
  }
  if (finetune.distill !== undefined) {
    throw new AutopruneError(ErrorCodes.CONFIG_INVALID, `${source}: \`evaluation.finetune.distill\` is not implemented by the fine-tune yet; remove it`);
  }
  const f = finalists ?? { count: 3, epochs: 1 };
  const resolvedRungs: Rung[] =
    rungs ?? (f.count === 0 ? [] : [{ keep: 1, max: Math.ceil(f.count / c.search.targets.length), finetune: { epochs: f.epochs } }]);
  return { ...rest, finetune: recipe, rungs: resolvedRungs };
}

/** The data section with absolute paths and, for synthetic data, its defaults. */
function resolveData(d: ParsedConfig['data'], abs: (p: string) => string): ParsedConfig['data'] {
  switch (d.format) {
    case undefined:
      return {
        ...d,
        ...(d.dir !== undefined ? { dir: abs(d.dir) } : {}),
        ...(d.dataset === 'synthetic' ? { synthetic: d.synthetic ?? syntheticSchema.parse({}) } : {}),
      };
    case 'imagefolder':
      return { ...d, train: abs(d.train), ...(d.test !== undefined ? { test: abs(d.test) } : {}), cache: abs(d.cache) };
    case 'npy': {
      const pair = (p: { images: string; labels: string }) => ({ images: abs(p.images), labels: abs(p.labels) });
      return { ...d, train: pair(d.train), ...(d.test !== undefined ? { test: pair(d.test) } : {}) };
    }
  }
}

/** sha256 (hex) of the canonical JSON of a resolved config: stable under key order. */
export function configHash(resolved: ResolvedConfig): string {
  return createHash('sha256').update(canonicalJson(resolved)).digest('hex');
}

/** JSON with object keys sorted at every level and `undefined` members dropped. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Parsing

function formatOf(path: string): 'yaml' | 'json' {
  const ext = extname(path).toLowerCase();
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  if (ext === '.json') return 'json';
  throw new AutopruneError(ErrorCodes.CONFIG_INVALID, `${path}: unsupported config format ${quote(ext || '(no extension)')} (expected .yaml, .yml or .json)`);
}

function parseYaml(path: string, text: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err !== undefined) {
    const pos = err.linePos?.[0];
    // The message's first line, without yaml's own " at line X, column Y:" tail (we put it up front).
    const what = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    const where = pos ? `:${pos.line}:${pos.col}` : '';
    throw new AutopruneError(ErrorCodes.CONFIG_INVALID, `${path}${where}: YAML syntax error: ${what}`, { cause: err });
  }
  return doc.toJS();
}

function parseJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const at = /position (\d+)/.exec(msg);
    let where = '';
    if (at) {
      const before = text.slice(0, Number(at[1]));
      const line = before.split('\n').length;
      const col = Number(at[1]) - before.lastIndexOf('\n');
      where = `:${line}:${col}`;
    }
    const what = msg.replace(/ in JSON at position \d+.*$/, '');
    throw new AutopruneError(ErrorCodes.CONFIG_INVALID, `${path}${where}: JSON syntax error: ${what}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------
// Error messages: "<file>: `<field.path>` expected <expectation>, got <value>"

/** Per-parse error map: the expectation half of the message for issues the schema did not word itself. */
const expectationOf: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'unrecognized_keys':
      // The allowed keys; describeIssues() builds the sentence around them.
      return iss.inst instanceof z.ZodObject ? Object.keys(iss.inst.shape).join(', ') : undefined;
    case 'invalid_type':
      return TYPE_WORDS[iss.expected] ?? `a ${iss.expected}`;
    case 'invalid_value':
      return `one of ${iss.values.map((v) => quote(v)).join(', ')}`;
    case 'invalid_union':
      return 'options' in iss && Array.isArray(iss.options) ? `one of ${iss.options.map((v) => quote(v)).join(', ')}` : undefined;
    default:
      return undefined;
  }
};

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  int: 'an integer',
};

/** One line naming the first issue (unknown keys first: a typo explains the rest) and how many more. */
export function describeIssues(source: string, user: unknown, issues: readonly z.core.$ZodIssue[]): string {
  const lines: string[] = [];
  const ordered = [...issues.filter((i) => i.code === 'unrecognized_keys'), ...issues.filter((i) => i.code !== 'unrecognized_keys')];
  for (const iss of ordered) {
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) {
        lines.push(`${source}: unknown key \`${fieldPath([...iss.path, key])}\` (expected one of: ${iss.message})`);
      }
      continue;
    }
    const value = valueAt(user, iss.path);
    // A cross-field check can fail on a default the user never wrote; it passes that value along.
    const defaulted = iss.code === 'custom' && value === undefined ? iss.params?.resolvedValue : undefined;
    if (defaulted !== undefined) {
      lines.push(`${source}: \`${fieldPath(iss.path)}\` (default) expected ${iss.message}, got ${shortQuote(defaulted)}`);
    } else if (iss.path.length === 0) {
      lines.push(`${source}: expected ${iss.message}, got ${shortQuote(value)}`);
    } else if (value === undefined) {
      lines.push(`${source}: missing \`${fieldPath(iss.path)}\` (expected ${iss.message})`);
    } else {
      lines.push(`${source}: \`${fieldPath(iss.path)}\` expected ${iss.message}, got ${shortQuote(value)}`);
    }
  }
  if (lines.length === 0) return `${source}: invalid config`;
  return lines.length === 1 ? lines[0] : `${lines[0]} (and ${lines.length - 1} more)`;
}

function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function shortQuote(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = quote(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
