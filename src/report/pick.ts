/**
 * The pure part of `autoprune pick`, shared by the CLI and the dashboard (src/serve): parsing the
 * constraint values (`50%`, `120k`, `2ms`), keeping latencies of one engine, host and device, and the
 * JSON shape of a ranked candidate. Ranking itself is `pickCandidates` in ./data.ts.
 */
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { latencyEngineOf } from '../evaluators/types.js';
import type { FinalRecord, StudyRecord, TrialRecord } from '../store/types.js';
import type { PickConstraints, PickRow } from './data.js';

/** The raw constraint values, as the CLI flags and the dashboard's form give them (each optional). */
export interface PickConstraintText {
  maxFlops?: string;
  maxParams?: string;
  maxLatency?: string;
  minAcc?: string;
}

export const bad = (flag: string, raw: string, expected: string): AutopruneError =>
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
export function pickConstraints(a: PickConstraintText): PickConstraints {
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
  /** The rung (fidelity) `accuracy` comes from: 0 = proxy, k = the k-th fine-tune rung (docs/rungs.md); null when unknown. */
  readonly rung: number | null;
  readonly proxyAccuracy: number | null;
  readonly finalAccuracy: number | null;
  readonly latencyMs: number | null;
  readonly controller: string;
}

export function picked(r: PickRow): PickedCandidate {
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
    rung: r.rung,
    proxyAccuracy: p.proxyAccuracy,
    finalAccuracy: p.finalAccuracy,
    latencyMs: p.latencyMs,
    controller: p.controller,
  };
}

/**
 * The engine whose latencies `--max-latency` compares by default: the study's
 * `evaluation.latency.engine` (the one its latency targets and table refer to) when it measured any
 * complete trial, else undefined (then the engine that measured most trials counts).
 */
export function defaultLatencyEngine(study: Pick<StudyRecord, 'config'>, trials: readonly TrialRecord[]): string | undefined {
  const c = study.config as { evaluation?: { latency?: { engine?: unknown } } } | null;
  const e = c?.evaluation?.latency?.engine;
  if (typeof e !== 'string') return undefined;
  return trials.some((t) => t.state === 'complete' && latencyEngineOf(t.metrics.timings) === e) ? e : undefined;
}
