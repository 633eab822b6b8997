import type { CommandModule } from 'yargs';
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import { latencyEngineOf } from '../../evaluators/types.js';
import { buildReportInfo, type PickConstraints, type PickRow, pickCandidates } from '../../report/data.js';
import type { FinalRecord, StudyRecord, TrialRecord } from '../../store/types.js';
import { handler, info, mmacs, pct, table } from '../output.js';
import { loadStudyData, type StoreArg, storeOption, withStore } from './store-args.js';

interface Args extends StoreArg {
  study: string;
  maxFlops?: string;
  maxParams?: string;
  maxLatency?: string;
  latencyEngine?: string;
  latencyHost?: string;
  latencyDevice?: string;
  minAcc?: string;
  top: number;
  json: boolean;
}

const bad = (flag: string, raw: string, expected: string): AutopruneError =>
  new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected --${flag} to be ${expected}, got ${quote(raw)}`);

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** `50%` or `0.5` -> 0.5; `lowOpen` excludes 0 from the accepted range. */
export function parseFraction(flag: string, raw: string, expected: string, lowOpen: boolean): number {
  const s = String(raw).trim();
  const m = /^(.*?)\s*%$/.exec(s);
  const body = m ? m[1] : s;
  if (!NUMBER.test(body)) throw bad(flag, s, expected);
  const v = Number(body) / (m ? 100 : 1);
  if (!(Number.isFinite(v) && (lowOpen ? v > 0 : v >= 0) && v <= 1)) throw bad(flag, s, expected);
  return v;
}

const SUFFIX: Readonly<Record<string, number>> = { '': 1, k: 1e3, m: 1e6 };

/** `120000`, `120k`, `1.2M` -> a count > 0. */
export function parseCount(flag: string, raw: string): number {
  const s = String(raw).trim();
  const expected = 'a parameter count > 0 such as 120000, 120k or 1.2M';
  const m = /^(.*?)\s*([kKmM]?)$/.exec(s);
  if (!m || !NUMBER.test(m[1])) throw bad(flag, s, expected);
  const v = Math.round(Number(m[1]) * SUFFIX[m[2].toLowerCase()]);
  if (!(Number.isFinite(v) && v > 0)) throw bad(flag, s, expected);
  return v;
}

/** `2`, `2ms`, `0.5 ms` -> milliseconds per image, > 0. */
export function parseMs(flag: string, raw: string): number {
  const s = String(raw).trim();
  const expected = 'milliseconds per image > 0 such as 2 or 0.5ms';
  const body = s.replace(/\s*ms$/i, '');
  if (!NUMBER.test(body)) throw bad(flag, s, expected);
  const v = Number(body);
  if (!(Number.isFinite(v) && v > 0)) throw bad(flag, s, expected);
  return v;
}

/** The constraints of the pick flags (each one optional). */
export function pickConstraints(a: Pick<Args, 'maxFlops' | 'maxParams' | 'maxLatency' | 'minAcc'>): PickConstraints {
  return {
    ...(a.maxFlops !== undefined
      ? { maxFlops: parseFraction('max-flops', a.maxFlops, "a fraction of the base model's MACs in (0, 1] such as 50% or 0.5", true) }
      : {}),
    ...(a.maxParams !== undefined ? { maxParams: parseCount('max-params', a.maxParams) } : {}),
    ...(a.maxLatency !== undefined ? { maxLatencyMs: parseMs('max-latency', a.maxLatency) } : {}),
    ...(a.minAcc !== undefined ? { minAccuracy: parseFraction('min-acc', a.minAcc, 'an accuracy in [0, 1] such as 0.9 or 90%', false) } : {}),
  };
}

/**
 * The host that measured a trial's latency: the one it recorded, else the host of its worker's name
 * (`host:pid[:slot]`, studies from before hosts were recorded); null when neither says.
 */
export function measuringHost(t: Pick<TrialRecord, 'worker'> & { metrics?: Pick<TrialRecord['metrics'], 'latencyHost'> }): string | null {
  if (t.metrics?.latencyHost !== undefined) return t.metrics.latencyHost;
  return typeof t.worker === 'string' && t.worker.includes(':') ? t.worker.slice(0, t.worker.indexOf(':')) : null;
}

/** Where a latency was measured: engine, host and device (null when not recorded). */
export interface LatencySource {
  readonly engine: string | null;
  readonly host: string | null;
  readonly device: string | null;
}

/**
 * Latencies are comparable only when one engine on one host and device measured them (a study
 * shared by several hosts mixes machines): keep the trials whose latency was measured so (default:
 * the source that measured most of them; onnxruntime on a tie), or as `wanted*` ask. Finalists'
 * latencies come from their fine-tuning engine (tfjs), so they count only when that is the chosen
 * engine and they were measured on the same host and device.
 */
export function oneLatencyEngine(
  trials: readonly TrialRecord[],
  finals: readonly FinalRecord[],
  wanted?: string,
  wantedHost?: string,
  wantedDevice?: string,
): LatencySource & { trials: TrialRecord[]; finals: FinalRecord[]; dropped: number } {
  const sourceOf = (t: TrialRecord): LatencySource | null => {
    const engine = t.state === 'complete' ? latencyEngineOf(t.metrics.timings) : null;
    return engine === null ? null : { engine, host: measuringHost(t), device: t.metrics.latencyDevice ?? null };
  };
  const keyOf = (s: LatencySource): string => [s.engine, s.host ?? '', s.device ?? ''].join('\u0000');
  const counts = new Map<string, LatencySource & { n: number }>();
  for (const t of trials) {
    const s = sourceOf(t);
    if (
      !s ||
      (wanted !== undefined && s.engine !== wanted) ||
      (wantedHost !== undefined && s.host !== wantedHost) ||
      (wantedDevice !== undefined && s.device !== wantedDevice)
    )
      continue;
    counts.set(keyOf(s), { ...s, n: (counts.get(keyOf(s))?.n ?? 0) + 1 });
  }
  const best = [...counts.values()].sort((a, b) => b.n - a.n || (a.engine === 'onnxruntime' ? -1 : b.engine === 'onnxruntime' ? 1 : 0))[0];
  const chosen: LatencySource = best
    ? { engine: best.engine, host: best.host, device: best.device }
    : { engine: wanted ?? null, host: wantedHost ?? null, device: wantedDevice ?? null };
  const kept = trials.filter((t) => {
    const s = t.state === 'complete' ? sourceOf(t) : null;
    return t.state !== 'complete' || (s !== null && keyOf(s) === keyOf(chosen));
  });
  const finalSame = (f: FinalRecord) => chosen.engine === 'tfjs' && (f.latencyHost ?? null) === chosen.host && (f.latencyDevice ?? null) === chosen.device;
  return { ...chosen, trials: kept, finals: finals.map((f) => (finalSame(f) ? f : { ...f, latencyMs: null })), dropped: trials.length - kept.length };
}

/**
 * The engine the study's config names for latency (`evaluation.latency.engine`), the one its latency
 * targets and table refer to; undefined for studies whose config predates it.
 */
export function configuredLatencyEngine(study: Pick<StudyRecord, 'config'>): string | undefined {
  const c = study.config as { evaluation?: { latency?: { engine?: unknown } } } | null;
  const e = c?.evaluation?.latency?.engine;
  return typeof e === 'string' ? e : undefined;
}

/** One ranked candidate, as `--json` prints it. */
export interface PickedCandidate {
  readonly rank: number;
  readonly trial: number;
  readonly flopsFraction: number;
  readonly speedup: number;
  readonly macs: number;
  readonly params: number;
  /** The ranking accuracy: fine-tuned test accuracy for finalists, else proxy (validation) accuracy. */
  readonly accuracy: number;
  readonly accuracySource: 'final' | 'proxy';
  readonly proxyAccuracy: number | null;
  readonly finalAccuracy: number | null;
  readonly latencyMs: number | null;
  readonly controller: string;
}

function picked(r: PickRow): PickedCandidate {
  const p = r.point;
  return {
    rank: r.rank,
    trial: p.trial,
    flopsFraction: p.flopsFraction,
    speedup: p.speedup,
    macs: p.macs,
    params: p.params,
    accuracy: r.accuracy,
    accuracySource: r.accuracySource,
    proxyAccuracy: p.proxyAccuracy,
    finalAccuracy: p.finalAccuracy,
    latencyMs: p.latencyMs,
    controller: p.controller,
  };
}

export const pickCommand: CommandModule<object, Args> = {
  command: 'pick <study>',
  describe:
    'Rank the completed trials of a study that meet constraints: by accuracy (fine-tuned test accuracy for finalists, else proxy), then fewer MACs, then trial number',
  builder: (y) =>
    y
      .positional('study', { type: 'string', demandOption: true, describe: 'Study name (see `autoprune list`)' })
      .option('max-flops', { type: 'string', describe: 'Max MACs as a fraction of the base model: 50% or 0.5' })
      .option('max-params', { type: 'string', describe: 'Max parameters: 120000, 120k or 1.2M' })
      .option('max-latency', { type: 'string', describe: 'Max measured latency, ms per image (trials without one are dropped)' })
      .option('latency-engine', {
        type: 'string',
        describe:
          "With --max-latency: the engine whose latencies count (default: the study's `evaluation.latency.engine` when it measured any trial, else the one that measured most trials)",
      })
      .option('latency-host', {
        type: 'string',
        describe: 'With --max-latency: the host whose latencies count, for studies evaluated on several hosts (default: the one that measured most trials)',
      })
      .option('latency-device', {
        type: 'string',
        describe: 'With --max-latency: the device whose latencies count, e.g. `cuda:0` or `cpu:<model name>` (default: the one that measured most trials)',
      })
      .option('min-acc', { type: 'string', describe: 'Min accuracy: 0.9 or 90%' })
      .option('top', { type: 'number', default: 10, describe: 'Show at most this many' })
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON array (for scripts)' })
      .option(...storeOption),
  handler: handler(async (args) => {
    const constraints = pickConstraints(args);
    if (!(Number.isInteger(args.top) && args.top >= 1)) throw bad('top', String(args.top), 'an integer >= 1');
    const data = await withStore(args.store, (s) => loadStudyData(s, args.study));
    const { study } = data;
    let { trials, finals } = data;
    let latencyNote = '';
    if (constraints.maxLatencyMs !== undefined) {
      const configured = configuredLatencyEngine(study);
      // The configured engine counts when it measured any trial (a study run on tfjs alone keeps tfjs's).
      const fallback =
        configured !== undefined && trials.some((t) => t.state === 'complete' && latencyEngineOf(t.metrics.timings) === configured) ? configured : undefined;
      const one = oneLatencyEngine(trials, finals, args.latencyEngine ?? fallback, args.latencyHost, args.latencyDevice);
      ({ trials, finals } = one);
      const where = `${one.engine ?? 'no engine'}${one.host === null ? '' : ` on host ${one.host}`}${one.device === null ? '' : ` (${one.device})`}`;
      latencyNote = ` (latencies measured by ${where}${one.dropped ? `; ${one.dropped} trial(s) measured by another engine, host or device left out` : ''})`;
    }
    const r = buildReportInfo(study, trials, finals);
    const all = pickCandidates(r, constraints);
    const rows = all.slice(0, args.top).map(picked);
    if (args.json) {
      info(JSON.stringify(rows, null, 2));
      return;
    }
    info(
      `${all.length} of ${r.counts.complete} complete trials of ${study.name} meet the constraints${latencyNote}${all.length > rows.length ? ` (showing the top ${rows.length})` : ''}`,
    );
    if (rows.length === 0) return;
    info(
      table(
        ['rank', 'trial', 'FLOPs', 'MMACs', 'params', 'accuracy', 'measured on', 'latency'],
        rows.map((c) => [
          c.rank,
          c.trial,
          pct(c.flopsFraction, 1),
          mmacs(c.macs),
          c.params,
          pct(c.accuracy),
          c.accuracySource === 'final' ? 'test (fine-tuned)' : 'validation (proxy)',
          c.latencyMs === null ? '-' : `${c.latencyMs.toFixed(3)} ms`,
        ]),
      ),
    );
  }),
};
