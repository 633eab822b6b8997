/**
 * Report data: plain objects computed from store records, no rendering (compute, then render; after
 * Optuna's visualization module: compute an "info" object, then render it; tests check the info).
 *
 * Units: accuracies and deltas are fractions (0.912, -0.004), renderers turn them into %.
 * `flopsFraction` is MACs / base MACs; `speedup` is base MACs / pruned MACs (a FLOPs ratio, not a
 * measured latency ratio).
 *
 * Hypervolume (search progress, compare) is computed on (cost = MACs / base MACs, value = proxy
 * accuracy) with the reference point (1, 0): the area of the region a front dominates among models
 * no larger than the base model and no worse than accuracy 0. Normalising cost makes the number
 * comparable across studies; for studies sharing a base model it is the raw-MACs hypervolume divided
 * by base MACs, so the ranking is the same either way. Trials larger than the base contribute nothing.
 */
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { hypervolume2d, paretoFront } from '../core/pareto.js';
import { withinTarget } from '../core/space.js';
import { kendallTau } from '../core/stats.js';

export { withinTarget };

import { keepRatios } from '../core/space.js';
import { isRungTrial, type TrialState } from '../core/types.js';
import { latencyEngineOf } from '../evaluators/types.js';
import type { FinalRecord, Json, StudyRecord, TrialRecord } from '../store/types.js';
import type { DataNotes } from '../study/data-notes.js';
import type { LatencyCheckSummary } from '../study/latency-check.js';

/** Targets used for "best accuracy at target" when the study config names none. */
export const DEFAULT_REPORT_TARGETS: readonly number[] = [0.75, 0.5, 0.25];

export const HYPERVOLUME_REF = { cost: 1, value: 0 } as const;

export interface ReportPoint {
  readonly trial: number;
  readonly state: TrialState;
  readonly controller: string;
  /** FLOPs target fraction from the trial's meta, if the controller set one. */
  readonly target: number | null;
  readonly macs: number;
  /** MACs / base MACs. */
  readonly flopsFraction: number;
  /** Base MACs / pruned MACs. */
  readonly speedup: number;
  readonly params: number;
  /** Params / base params. */
  readonly paramsFraction: number;
  readonly proxyAccuracy: number | null;
  /** Fine-tuned test accuracy (finalists only). */
  readonly finalAccuracy: number | null;
  /** proxyAccuracy - study.baseProxyAccuracy. */
  readonly deltaProxy: number | null;
  /** finalAccuracy - study.baseTestAccuracy. */
  readonly deltaFinal: number | null;
  /** Latency of the fine-tuned model when measured, else the trial's. */
  readonly latencyMs: number | null;
  /**
   * Within the FLOPs window: |flopsFraction - t| <= window for the trial's own target, or for any
   * configured target when the trial has none. null when the config has no targets/window.
   */
  readonly feasible: boolean | null;
  readonly finalist: boolean;
  readonly onProxyFront: boolean;
  readonly onFinalFront: boolean;
  /** Realised keep ratio per group, in the order of `ReportInfo.groups`. */
  readonly keepRatios: readonly number[];
  readonly error: string | null;
  readonly createdAt: string;
  readonly finishedAt: string | null;
}

export interface ProgressStep {
  /** 1-based count of completed trials so far. */
  readonly completed: number;
  /** The trial that just completed. */
  readonly trial: number;
  /** Seconds from the first trial's creation to this trial's finish (null when timestamps are missing). */
  readonly seconds: number | null;
  /** Hypervolume of the proxy front so far (see module comment for units). */
  readonly hypervolume: number;
  readonly bestProxyAccuracy: number;
  /** Best proxy accuracy among trials with MACs <= target * base, aligned with `ReportInfo.targets`. */
  readonly bestAtTarget: readonly (number | null)[];
}

export interface ReportInfo {
  readonly study: {
    readonly name: string;
    readonly state: string;
    readonly createdAt: string;
    readonly updatedAt: string;
    readonly configHash: string;
    /** The resolved config, shown verbatim (escaped) in the HTML report. */
    readonly config: Json;
  };
  readonly base: {
    readonly macs: number;
    readonly params: number;
    readonly proxyAccuracy: number | null;
    readonly testAccuracy: number | null;
  };
  /** What the study recorded about its data besides its hash (src/study/data-notes.ts); null when nothing. */
  readonly data: DataNotes | null;
  /** The latency prediction's check on held-out candidates, as the study recorded it (src/study/latency-check.ts); null when none. */
  readonly latencyCheck: LatencyCheckSummary | null;
  readonly groups: readonly { readonly id: string; readonly channels: number }[];
  /** FLOPs targets (fractions of base) for "best at target"; the config's, else DEFAULT_REPORT_TARGETS. */
  readonly targets: readonly number[];
  /** Whether `targets` came from the study config (false: defaults). */
  readonly targetsFromConfig: boolean;
  /** Half-width of the FLOPs window (fraction of base), when configured. */
  readonly window: number | null;
  /** Every trial, in trial-number order. */
  readonly points: readonly ReportPoint[];
  /** Completed trials sorted by MACs ascending (ties: trial number). */
  readonly rows: readonly ReportPoint[];
  /** Pareto front of completed trials on (MACs, proxy accuracy), MACs ascending. */
  readonly proxyFront: readonly ReportPoint[];
  /** Pareto front of finalists on (MACs, fine-tuned test accuracy), MACs ascending. */
  readonly finalFront: readonly ReportPoint[];
  /** Completed trials of the `uniform` controller, MACs ascending. */
  readonly baseline: readonly ReportPoint[];
  /** Completed trials of the `global` controller (Torch-Pruning's one-threshold baseline), MACs ascending. */
  readonly globalBaseline: readonly ReportPoint[];
  /** Best proxy accuracy of each baseline per target (aligned with `targets`; null: none there): the bar a search must clear. */
  readonly baselineBest: { readonly uniform: readonly (number | null)[]; readonly global: readonly (number | null)[] };
  /** Completed trials outside the FLOPs window (only when targets/window are configured). */
  readonly infeasible: readonly ReportPoint[];
  readonly failed: readonly ReportPoint[];
  /** Proxy-front members and finalists, MACs ascending (their keep ratios make the per-group table). */
  readonly candidates: readonly ReportPoint[];
  readonly progress: {
    /** One step per completed trial, in trial-number order. */
    readonly byNumber: readonly ProgressStep[];
    /** One step per completed trial, in finishedAt order (trials without finishedAt last, by number). */
    readonly byTime: readonly ProgressStep[];
  };
  readonly hypervolume: number;
  /**
   * Kendall's tau between the finalists' proxy accuracy and their fine-tuned test accuracy: does
   * the proxy rank like fine-tuning? null with fewer than 3 finalists.
   */
  readonly proxyFinalTau: number | null;
  readonly counts: {
    readonly total: number;
    readonly complete: number;
    readonly failed: number;
    readonly pending: number;
    readonly finalists: number;
  };
  /** The engines that fine-tuned the finalists (`libtorch`, a tfjs backend), as recorded; empty when none was. */
  readonly finetuneEngines: readonly string[];
  /** First trial createdAt to last trial finishedAt, seconds; null when unknown. */
  readonly wallSeconds: number | null;
}

// ---- config access (the config schema lives elsewhere; read defensively) ---------------------------

function jsonObject(v: Json | undefined): { [k: string]: Json } | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
}

function configTargets(config: Json): { targets: number[] | null; window: number | null } {
  const search = jsonObject(jsonObject(config)?.search);
  const rawTargets = search?.targets;
  const targets = Array.isArray(rawTargets) ? rawTargets.filter((t): t is number => typeof t === 'number' && Number.isFinite(t) && t > 0) : null;
  const w = search?.window;
  const window = typeof w === 'number' && Number.isFinite(w) && w >= 0 ? w : null;
  return { targets: targets && targets.length > 0 ? targets : null, window };
}

function metaTarget(meta: Json | undefined): number | null {
  const t = jsonObject(meta)?.target;
  return typeof t === 'number' && Number.isFinite(t) ? t : null;
}

function time(iso: string | null): number | null {
  if (iso === null) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

function wallSeconds(trials: readonly TrialRecord[]): number | null {
  const starts = trials.map((t) => time(t.createdAt)).filter((t): t is number => t !== null);
  const ends = trials.map((t) => time(t.finishedAt)).filter((t): t is number => t !== null);
  if (starts.length === 0 || ends.length === 0) return null;
  return (Math.max(...ends) - Math.min(...starts)) / 1000;
}

const isComplete = (p: ReportPoint): boolean => p.state === 'complete' && p.proxyAccuracy !== null;
const byMacs = (a: ReportPoint, b: ReportPoint): number => a.macs - b.macs || a.trial - b.trial;

function frontOf(points: readonly ReportPoint[], value: (p: ReportPoint) => number | null): ReportPoint[] {
  const scored = points.flatMap((p) => {
    const v = value(p);
    return v === null ? [] : [{ cost: p.macs, value: v, id: p.trial, p }];
  });
  return paretoFront(scored).map((s) => s.p);
}

function proxyHypervolume(points: readonly ReportPoint[]): number {
  return hypervolume2d(
    points.map((p) => ({ cost: p.flopsFraction, value: p.proxyAccuracy ?? 0 })),
    HYPERVOLUME_REF,
  );
}

/** How every renderer names a target's "best" column, e.g. `70% target (<= 73% FLOPs)`. */
export function targetLabel(target: number, window: number | null): string {
  const pctText = (f: number) => `${+(f * 100).toFixed(1)}%`;
  return window ? `${pctText(target)} target (<= ${pctText(target + window)} FLOPs)` : `<= ${pctText(target)} FLOPs`;
}

/** One progress step per completed point, in the given order; hypervolume and bests are running values. */
function progressSteps(ordered: readonly ReportPoint[], targets: readonly number[], window: number | null, t0: number | null): ProgressStep[] {
  // Hypervolume depends only on the front, so keep just the running front (O(front) per step).
  let front: ReportPoint[] = [];
  let hypervolume = 0;
  let completed = 0;
  const best = targets.map((): number | null => null);
  let bestAll = -Infinity;
  return ordered.map((p) => {
    completed++;
    const acc = p.proxyAccuracy ?? 0;
    // A point some member dominates leaves the front (and its hypervolume) as it was: front members
    // dominate none of each other, so it cannot dominate one either. Most trials of a long search are
    // such points, which keeps a 10,000-trial study fast. The front is sorted by MACs with accuracy
    // non-decreasing, so the member with the most MACs <= p's is the one that dominates p if any does.
    let lo = 0;
    let hi = front.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (front[mid].macs <= p.macs) lo = mid + 1;
      else hi = mid;
    }
    const q = lo > 0 ? front[lo - 1] : null;
    const qv = q?.proxyAccuracy ?? 0;
    const dominated = q !== null && qv >= acc && (q.macs < p.macs || qv > acc);
    if (!dominated) {
      front = frontOf([...front, p], (q) => q.proxyAccuracy ?? 0);
      hypervolume = proxyHypervolume(front);
    }
    bestAll = Math.max(bestAll, acc);
    targets.forEach((t, k) => {
      if (withinTarget(p.flopsFraction, t, window) && (best[k] === null || acc > (best[k] as number))) best[k] = acc;
    });
    const end = time(p.finishedAt);
    return {
      completed,
      trial: p.trial,
      seconds: t0 !== null && end !== null ? (end - t0) / 1000 : null,
      hypervolume,
      bestProxyAccuracy: bestAll,
      bestAtTarget: best.slice(),
    };
  });
}

export function buildReportInfo(
  study: StudyRecord,
  trials: readonly TrialRecord[],
  finals: readonly FinalRecord[],
  data: DataNotes | null = null,
  latencyCheck: LatencyCheckSummary | null = null,
): ReportInfo {
  const base = study.baseCost;
  if (!(base.macs > 0)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected the base model of study ${quote(study.name)} to have MACs > 0, got ${quote(base.macs)}`);
  }
  const { targets: cfgTargets, window } = configTargets(study.config);
  const targets = [...(cfgTargets ?? DEFAULT_REPORT_TARGETS)].sort((a, b) => b - a);

  // The latest final per trial wins (a finalist re-run replaces the earlier number).
  const finalByTrial = new Map<number, FinalRecord>();
  for (const f of [...finals].sort((a, b) => a.createdAt.localeCompare(b.createdAt))) {
    finalByTrial.set(f.trial, f);
  }

  // Rung trials are not search points: the last rung's results come in as finals of their origin.
  const sortedTrials = trials.filter((t) => !isRungTrial(t)).sort((a, b) => a.number - b.number);
  const draft = sortedTrials.map((t) => {
    const fin = finalByTrial.get(t.number);
    const target = metaTarget(t.meta);
    const flopsFraction = t.cost.macs / base.macs;
    const proxy = t.metrics.proxyAccuracy ?? null;
    const finalAcc = fin?.finalAccuracy ?? t.metrics.finalAccuracy ?? null;
    let feasible: boolean | null = null;
    if (window !== null && (target !== null || cfgTargets !== null)) {
      const ts = target !== null ? [target] : (cfgTargets as number[]);
      feasible = ts.some((x) => Math.abs(flopsFraction - x) <= window + 1e-12);
    }
    return {
      trial: t.number,
      state: t.state,
      controller: t.controller,
      target,
      macs: t.cost.macs,
      flopsFraction,
      speedup: t.cost.macs > 0 ? base.macs / t.cost.macs : Infinity,
      params: t.cost.params,
      paramsFraction: base.params > 0 ? t.cost.params / base.params : NaN,
      proxyAccuracy: proxy,
      finalAccuracy: finalAcc,
      deltaProxy: proxy !== null && study.baseProxyAccuracy !== null ? proxy - study.baseProxyAccuracy : null,
      deltaFinal: finalAcc !== null && study.baseTestAccuracy !== null ? finalAcc - study.baseTestAccuracy : null,
      // A finalist's latency is measured on tfjs (its fine-tune stage): it replaces the trial's only
      // when that was measured on tfjs too, so the column never mixes engines.
      latencyMs: (latencyEngineOf(t.metrics.timings) === 'onnxruntime' ? null : fin?.latencyMs) ?? t.metrics.latencyMs ?? null,
      feasible,
      finalist: finalAcc !== null,
      onProxyFront: false,
      onFinalFront: false,
      keepRatios: safeKeepRatios(study, t),
      error: t.error,
      createdAt: t.createdAt,
      finishedAt: t.finishedAt,
    } satisfies ReportPoint;
  });

  const complete = draft.filter(isComplete);
  const proxyFrontIds = new Set(frontOf(complete, (p) => p.proxyAccuracy).map((p) => p.trial));
  const finalFrontIds = new Set(frontOf(draft, (p) => p.finalAccuracy).map((p) => p.trial));
  const points: ReportPoint[] = draft.map((p) => ({
    ...p,
    onProxyFront: proxyFrontIds.has(p.trial),
    onFinalFront: finalFrontIds.has(p.trial),
  }));

  const done = points.filter(isComplete);
  const rows = [...done].sort(byMacs);
  const t0 = Math.min(...sortedTrials.map((t) => time(t.createdAt) ?? Infinity));
  const byTime = [...done].sort((a, b) => {
    const ta = time(a.finishedAt) ?? Infinity;
    const tb = time(b.finishedAt) ?? Infinity;
    return ta === tb ? a.trial - b.trial : ta - tb;
  });

  return {
    study: {
      name: study.name,
      state: study.state,
      createdAt: study.createdAt,
      updatedAt: study.updatedAt,
      configHash: study.configHash,
      config: study.config,
    },
    base: {
      macs: base.macs,
      params: base.params,
      proxyAccuracy: study.baseProxyAccuracy,
      testAccuracy: study.baseTestAccuracy,
    },
    data,
    latencyCheck,
    groups: study.space.groups.map((g) => ({ id: g.id, channels: g.channels })),
    targets,
    targetsFromConfig: cfgTargets !== null,
    window,
    points,
    rows,
    proxyFront: rows.filter((p) => p.onProxyFront),
    finalFront: points.filter((p) => p.onFinalFront).sort(byMacs),
    baseline: rows.filter((p) => p.controller === 'uniform'),
    globalBaseline: rows.filter((p) => p.controller === 'global'),
    baselineBest: {
      uniform: targets.map((t) =>
        bestAt(
          rows.filter((p) => p.controller === 'uniform'),
          t,
          window,
        ),
      ),
      global: targets.map((t) =>
        bestAt(
          rows.filter((p) => p.controller === 'global'),
          t,
          window,
        ),
      ),
    },
    infeasible: rows.filter((p) => p.feasible === false),
    failed: points.filter((p) => p.state === 'failed'),
    candidates: points.filter((p) => p.onProxyFront || p.finalist).sort(byMacs),
    progress: {
      byNumber: progressSteps(done, targets, window, Number.isFinite(t0) ? t0 : null),
      byTime: progressSteps(byTime, targets, window, Number.isFinite(t0) ? t0 : null),
    },
    hypervolume: proxyHypervolume(done),
    proxyFinalTau: proxyFinalTau(points),
    counts: {
      total: points.length,
      complete: done.length,
      failed: points.filter((p) => p.state === 'failed').length,
      pending: points.filter((p) => p.state === 'waiting' || p.state === 'running').length,
      finalists: points.filter((p) => p.finalist).length,
    },
    finetuneEngines: [...new Set(finals.map((f) => f.trainEngine).filter((e): e is string => e !== undefined))].sort(),
    wallSeconds: wallSeconds(sortedTrials),
  };
}

/** ` on libtorch` (the engines that fine-tuned the finalists, both renderers); empty when not recorded. */
export function finetunedOn(info: Pick<ReportInfo, 'finetuneEngines'>): string {
  return info.finetuneEngines.length ? ` on ${info.finetuneEngines.join(' and ')}` : '';
}

/** ` (baselines: uniform x%, global y%)` for target k, naming only the baselines the study ran (both renderers). */
export function baselinesAt(info: ReportInfo, k: number): string {
  const pct = (f: number | null): string => (f === null ? '–' : `${(f * 100).toFixed(2)}%`);
  const parts = [
    info.baseline.length ? `uniform ${pct(info.baselineBest.uniform[k])}` : '',
    info.globalBaseline.length ? `global ${pct(info.baselineBest.global[k])}` : '',
  ].filter(Boolean);
  return parts.length ? ` (baselines: ${parts.join(', ')})` : '';
}

/** The rank-agreement line both renderers show. */
export function formatTau(tau: number | null): string {
  return tau === null ? '– (needs 3+ finalists)' : tau.toFixed(2);
}

function proxyFinalTau(points: readonly ReportPoint[]): number | null {
  const both = points.filter((p) => p.proxyAccuracy !== null && p.finalAccuracy !== null);
  return both.length < 3
    ? null
    : kendallTau(
        both.map((p) => p.proxyAccuracy!),
        both.map((p) => p.finalAccuracy!),
      );
}

/** Keep ratios per group; a candidate that does not match the space (corrupt row) yields []. */
function safeKeepRatios(study: StudyRecord, t: TrialRecord): number[] {
  if (t.candidate.channels.length !== study.space.groups.length) return [];
  return keepRatios(study.space, t.candidate);
}

// ---- compare -----------------------------------------------------------------------------------------

export interface CompareStudy {
  readonly name: string;
  readonly baseMacs: number;
  readonly trials: number;
  readonly complete: number;
  /** Normalised proxy hypervolume (ref (1, 0) on MACs / base MACs). */
  readonly hypervolume: number;
  /** Aligned with `CompareInfo.targets`. */
  readonly bestAtTarget: readonly (number | null)[];
  readonly wallSeconds: number | null;
  /** Proxy front as (MACs / base MACs, proxy accuracy), cost ascending. */
  readonly front: readonly { readonly flopsFraction: number; readonly accuracy: number; readonly trial: number }[];
}

export interface CompareInfo {
  /** Union of all studies' targets, descending. */
  readonly targets: readonly number[];
  /** True when every study has the same base MACs (then hypervolumes compare raw MACs up to one constant). */
  readonly sameBase: boolean;
  readonly studies: readonly CompareStudy[];
}

export function buildCompareInfo(
  studies: readonly {
    readonly study: StudyRecord;
    readonly trials: readonly TrialRecord[];
    readonly finals: readonly FinalRecord[];
  }[],
): CompareInfo {
  const infos = studies.map((s) => buildReportInfo(s.study, s.trials, s.finals));
  const targets = [...new Set(infos.flatMap((i) => i.targets))].sort((a, b) => b - a);
  return {
    targets,
    sameBase: new Set(infos.map((i) => i.base.macs)).size <= 1,
    studies: infos.map((info) => ({
      name: info.study.name,
      baseMacs: info.base.macs,
      trials: info.counts.total,
      complete: info.counts.complete,
      hypervolume: info.hypervolume,
      bestAtTarget: targets.map((t) => bestAt(info.rows, t, info.window)),
      wallSeconds: info.wallSeconds,
      front: info.proxyFront.map((p) => ({
        flopsFraction: p.flopsFraction,
        accuracy: p.proxyAccuracy as number,
        trial: p.trial,
      })),
    })),
  };
}

function bestAt(rows: readonly ReportPoint[], target: number, window: number | null): number | null {
  let best: number | null = null;
  for (const p of rows) {
    if (withinTarget(p.flopsFraction, target, window) && p.proxyAccuracy !== null && (best === null || p.proxyAccuracy > best)) {
      best = p.proxyAccuracy;
    }
  }
  return best;
}

// ---- pick ------------------------------------------------------------------------------------------

export interface PickConstraints {
  /** Max MACs as a fraction of the base model's, e.g. 0.5. */
  readonly maxFlops?: number;
  /** Max parameter count (absolute). */
  readonly maxParams?: number;
  /** Max latency, ms per image; rows without a measured latency are excluded when this is set. */
  readonly maxLatencyMs?: number;
  /** Min accuracy as a fraction, applied to the ranking accuracy (fine-tuned if present, else proxy). */
  readonly minAccuracy?: number;
}

export interface PickRow {
  /** 1-based. */
  readonly rank: number;
  readonly accuracy: number;
  readonly accuracySource: 'final' | 'proxy';
  readonly point: ReportPoint;
}

function checkConstraint(name: string, v: number | undefined, max?: number): void {
  if (v === undefined) return;
  if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0 && (max === undefined || v <= max))) {
    const range = max === undefined ? 'a number >= 0' : `a fraction in [0, ${max}]`;
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected \`${name}\` to be ${range}, got ${quote(v)}`);
  }
}

/**
 * Completed trials meeting every constraint, ranked by accuracy (fine-tuned test accuracy when the
 * trial is a finalist, else proxy accuracy) descending, ties by fewer MACs, then trial number.
 */
export function pickCandidates(info: ReportInfo, constraints: PickConstraints): PickRow[] {
  checkConstraint('maxFlops', constraints.maxFlops);
  checkConstraint('maxParams', constraints.maxParams);
  checkConstraint('maxLatencyMs', constraints.maxLatencyMs);
  checkConstraint('minAccuracy', constraints.minAccuracy, 1);
  const { maxFlops, maxParams, maxLatencyMs, minAccuracy } = constraints;
  return info.rows
    .map((p) => ({
      point: p,
      accuracy: p.finalAccuracy ?? (p.proxyAccuracy as number),
      accuracySource: p.finalAccuracy !== null ? ('final' as const) : ('proxy' as const),
    }))
    .filter(
      ({ point: p, accuracy }) =>
        (maxFlops === undefined || p.flopsFraction <= maxFlops + 1e-12) &&
        (maxParams === undefined || p.params <= maxParams) &&
        (maxLatencyMs === undefined || (p.latencyMs !== null && p.latencyMs <= maxLatencyMs)) &&
        (minAccuracy === undefined || accuracy >= minAccuracy),
    )
    .sort((a, b) => b.accuracy - a.accuracy || a.point.macs - b.point.macs || a.point.trial - b.point.trial)
    .map((r, i) => ({ rank: i + 1, ...r }));
}

// ---- text tables shared by the HTML and Markdown renderers (cells are unescaped plain text) ---------

export interface TextCell {
  readonly text: string;
  /** Numeric sort key (HTML column sorting); null sorts last. */
  readonly sort: number | null;
}

export interface TextTable {
  readonly header: readonly string[];
  readonly rows: readonly (readonly TextCell[])[];
}

const cell = (text: string, sort: number | null = null): TextCell => ({ text, sort });
const fmtPct = (f: number | null, digits = 2): string => (f === null ? '' : `${(f * 100).toFixed(digits)}%`);
const fmtDelta = (d: number): string => `${d >= 0 ? '+' : ''}${(d * 100).toFixed(2)} pp`;

export function formatMacs(macs: number): string {
  return `${(macs / 1e6).toFixed(2)} M`;
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

export function formatSeconds(s: number | null): string {
  if (s === null) return '';
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(2)} h`;
}

/** The trial table: completed trials by MACs ascending. Δ is fine-tuned vs base test when available, else proxy vs base proxy. */
export function trialTable(info: ReportInfo): TextTable {
  return {
    header: ['trial', 'FLOPs', 'MMACs', 'speed-up', 'params', 'proxy acc', 'fine-tuned test acc', 'Δ vs base', 'latency', 'controller', 'front'],
    rows: info.rows.map((p) => {
      const delta = p.deltaFinal !== null ? `${fmtDelta(p.deltaFinal)} (test)` : p.deltaProxy !== null ? `${fmtDelta(p.deltaProxy)} (proxy)` : '';
      const front = [p.onProxyFront ? 'proxy' : '', p.onFinalFront ? 'final' : ''].filter(Boolean).join(', ');
      return [
        cell(String(p.trial), p.trial),
        cell(fmtPct(p.flopsFraction, 1), p.flopsFraction),
        cell((p.macs / 1e6).toFixed(2), p.macs),
        cell(`${p.speedup.toFixed(2)}x`, p.speedup),
        cell(formatCount(p.params), p.params),
        cell(fmtPct(p.proxyAccuracy), p.proxyAccuracy),
        cell(fmtPct(p.finalAccuracy), p.finalAccuracy),
        cell(delta, p.deltaFinal ?? p.deltaProxy),
        cell(p.latencyMs === null ? '' : `${p.latencyMs.toFixed(3)} ms`, p.latencyMs),
        cell(p.controller),
        cell(front),
      ];
    }),
  };
}

/** Keep ratio per group (rows) for each front candidate (columns). */
export function keepRatioTable(info: ReportInfo): TextTable {
  const cands = info.candidates;
  return {
    header: ['group', 'channels', ...cands.map((p) => `#${p.trial} (${fmtPct(p.flopsFraction, 0)})`)],
    rows: info.groups.map((g, gi) => [
      cell(g.id),
      cell(String(g.channels), g.channels),
      ...cands.map((p) => {
        const r = p.keepRatios[gi];
        return r === undefined ? cell('') : cell(r.toFixed(2), r);
      }),
    ]),
  };
}

export function failedTable(info: ReportInfo): TextTable {
  return {
    header: ['trial', 'controller', 'FLOPs', 'error'],
    rows: info.failed.map((p) => [cell(String(p.trial), p.trial), cell(p.controller), cell(fmtPct(p.flopsFraction, 1), p.flopsFraction), cell(p.error ?? '')]),
  };
}

export function infeasibleTable(info: ReportInfo): TextTable {
  return {
    header: ['trial', 'controller', 'FLOPs', 'target', 'proxy acc'],
    rows: info.infeasible.map((p) => [
      cell(String(p.trial), p.trial),
      cell(p.controller),
      cell(fmtPct(p.flopsFraction, 1), p.flopsFraction),
      cell(p.target === null ? 'any' : fmtPct(p.target, 0), p.target),
      cell(fmtPct(p.proxyAccuracy), p.proxyAccuracy),
    ]),
  };
}

export function compareTable(info: CompareInfo): TextTable {
  return {
    header: ['study', 'trials', 'complete', 'hypervolume', ...info.targets.map((t) => `best @ ${fmtPct(t, 0)} target`), 'wall time'],
    rows: info.studies.map((s) => [
      cell(s.name),
      cell(String(s.trials), s.trials),
      cell(String(s.complete), s.complete),
      cell(s.hypervolume.toFixed(4), s.hypervolume),
      ...s.bestAtTarget.map((b) => cell(fmtPct(b), b)),
      cell(formatSeconds(s.wallSeconds), s.wallSeconds),
    ]),
  };
}
