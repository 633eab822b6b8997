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
import { type RungLength, rungMetaOf } from '../study/rungs.js';

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
  /** The rung `finalAccuracy` comes from (the study's last rung); null when there is none. */
  readonly finalRung: number | null;
  /** The highest rung this candidate has a result at (0: the proxy only). */
  readonly topRung: number;
  /** Its results at rungs k >= 1, rung ascending (docs/rungs.md). */
  readonly rungResults: readonly RungResult[];
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

/** A candidate's result at a rung k >= 1: the rung trial's validation and test accuracy. */
export interface RungResult {
  readonly rung: number;
  /** The rung trial; null when only a final record holds the result (stores from before rung trials). */
  readonly trial: number | null;
  /** Validation accuracy after this rung's fine-tune (what promotion ranks by); null when not recorded. */
  readonly validationAccuracy: number | null;
  /** Test accuracy after this rung's fine-tune: the rung's reported accuracy. */
  readonly testAccuracy: number | null;
}

/** One point of a rung: a candidate (its proxy trial's number) and its accuracy at that rung. */
export interface RungPoint {
  /** The proxy trial the candidate started from (the origin of its rung trials). */
  readonly trial: number;
  /** The trial that holds the result: the proxy trial at rung 0, the rung trial above (null: a final record only). */
  readonly resultTrial: number | null;
  readonly macs: number;
  readonly flopsFraction: number;
  /** Rung 0: proxy (validation) accuracy; rung k >= 1: test accuracy after that rung's fine-tune. */
  readonly accuracy: number;
}

/** A fidelity: rung 0 is the proxy, rung k >= 1 the k-th configured fine-tune (docs/rungs.md). */
export interface RungInfo {
  readonly rung: number;
  /** This rung's own training, e.g. `200 steps`, `1 epoch`; null for rung 0 or when not recorded. */
  readonly training: string | null;
  /** The split its accuracy is measured on. */
  readonly split: 'validation' | 'test';
  /** Candidates with a result at this rung, MACs ascending (ties: trial). */
  readonly points: readonly RungPoint[];
  /** Pareto front of `points` on (MACs, accuracy), MACs ascending. */
  readonly front: readonly RungPoint[];
}

/** Kendall's tau between the accuracies of rung `from` and rung `from + 1` over the candidates with both. */
export interface RungAgreement {
  readonly from: number;
  readonly to: number;
  /** Candidates with a result at both rungs. */
  readonly n: number;
  /** null with fewer than 3 candidates. */
  readonly tau: number | null;
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
  /** Rung 0 (proxy) up to the last rung (the finalists' fine-tune). */
  readonly rungs: readonly RungInfo[];
  /**
   * Rank agreement between consecutive rungs (k, k + 1), k ascending, each on the rung's reported
   * accuracy (rung 0: validation, rung k >= 1: test), so with one rung it equals `proxyFinalTau`.
   */
  readonly rungAgreement: readonly RungAgreement[];
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
  const ladder = rungLadder(study.config, trials, finalByTrial);
  const draft = sortedTrials.map((t) => {
    const fin = finalByTrial.get(t.number);
    const rungResults = ladder.results.get(t.number) ?? [];
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
      finalRung: finalAcc !== null && ladder.last > 0 ? ladder.last : null,
      topRung: rungResults.at(-1)?.rung ?? 0,
      rungResults,
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
    ...rungViews(rows, points, ladder),
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

// ---- rungs (fidelities) ---------------------------------------------------------------------------

interface Ladder {
  /** The last rung (0: no rung after the proxy). */
  readonly last: number;
  /** Training of rungs 1..last (index k - 1), as text; null when unknown. */
  readonly training: readonly (string | null)[];
  /** Results at rungs >= 1 by origin, rung ascending. */
  readonly results: ReadonlyMap<number, RungResult[]>;
}

function lengthText(l: unknown): string | null {
  const o = l !== null && typeof l === 'object' ? (l as Partial<Record<'steps' | 'epochs', unknown>>) : null;
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (typeof o?.steps === 'number') return plural(o.steps, 'step');
  if (typeof o?.epochs === 'number') return plural(o.epochs, 'epoch');
  return null;
}

/**
 * The rungs of a study and every candidate's results at them: from the rung trials (their meta
 * names rung and origin), and from the final records, which hold the last rung's test accuracy
 * (the only record of it in stores from before rung trials). The last rung is the highest of the
 * config's `evaluation.rungs`, the rung trials' and, when finals exist, 1.
 */
function rungLadder(config: Json, trials: readonly TrialRecord[], finals: ReadonlyMap<number, FinalRecord>): Ladder {
  const cfgRungs = jsonObject(jsonObject(config)?.evaluation)?.rungs;
  const configured = Array.isArray(cfgRungs) ? cfgRungs.map((r) => lengthText(jsonObject(r)?.finetune)) : [];
  const metas = trials.flatMap((t) => {
    const m = rungMetaOf(t);
    return m ? [{ t, m }] : [];
  });
  const last = Math.max(configured.length, ...metas.map((x) => x.m.rung), finals.size > 0 ? 1 : 0);
  const training = Array.from({ length: last }, (_, i) => {
    const fromTrial = metas.find((x) => x.m.rung === i + 1)?.m.finetune as RungLength | undefined;
    return configured[i] ?? lengthText(fromTrial) ?? null;
  });
  const byOrigin = new Map<number, Map<number, RungResult>>();
  const put = (origin: number, r: RungResult) => {
    let m = byOrigin.get(origin);
    if (!m) byOrigin.set(origin, (m = new Map()));
    m.set(r.rung, r);
  };
  // A re-run rung trial (a later number for the same origin and rung) replaces the earlier result.
  for (const { t, m } of metas.sort((a, b) => a.t.number - b.t.number)) {
    if (t.state !== 'complete') continue;
    put(m.origin, { rung: m.rung, trial: t.number, validationAccuracy: t.metrics.proxyAccuracy ?? null, testAccuracy: t.metrics.finalAccuracy ?? null });
  }
  if (last > 0) {
    for (const [origin, f] of finals) {
      const had = byOrigin.get(origin)?.get(last);
      put(origin, { rung: last, trial: had?.trial ?? null, validationAccuracy: had?.validationAccuracy ?? null, testAccuracy: f.finalAccuracy });
    }
    if (training[last - 1] === null) {
      const epochs = [...finals.values()].find((f) => f.epochs > 0)?.epochs;
      if (epochs !== undefined) (training as (string | null)[])[last - 1] = lengthText({ epochs });
    }
  }
  const results = new Map([...byOrigin].map(([o, m]) => [o, [...m.values()].sort((a, b) => a.rung - b.rung)]));
  return { last, training, results };
}

function rungViews(rows: readonly ReportPoint[], points: readonly ReportPoint[], ladder: Ladder): Pick<ReportInfo, 'rungs' | 'rungAgreement'> {
  const at = (k: number): RungPoint[] => {
    const src = k === 0 ? rows : points;
    return src
      .flatMap((p) => {
        if (k === 0)
          return p.proxyAccuracy === null
            ? []
            : [{ trial: p.trial, resultTrial: p.trial, macs: p.macs, flopsFraction: p.flopsFraction, accuracy: p.proxyAccuracy }];
        const r = p.rungResults.find((x) => x.rung === k);
        return r?.testAccuracy == null
          ? []
          : [{ trial: p.trial, resultTrial: r.trial, macs: p.macs, flopsFraction: p.flopsFraction, accuracy: r.testAccuracy }];
      })
      .sort((a, b) => a.macs - b.macs || a.trial - b.trial);
  };
  const rungs: RungInfo[] = [];
  for (let k = 0; k <= ladder.last; k++) {
    const pts = at(k);
    const onFront = new Set(paretoFront(pts.map((p) => ({ cost: p.macs, value: p.accuracy, id: p.trial }))).map((s) => s.id));
    rungs.push({
      rung: k,
      training: k === 0 ? null : ladder.training[k - 1],
      split: k === 0 ? 'validation' : 'test',
      points: pts,
      front: pts.filter((p) => onFront.has(p.trial)),
    });
  }
  const rungAgreement = rungs.slice(1).map((hi, i): RungAgreement => {
    const lo = new Map(rungs[i].points.map((p) => [p.trial, p.accuracy]));
    const both = hi.points.filter((p) => lo.has(p.trial));
    return {
      from: i,
      to: i + 1,
      n: both.length,
      tau:
        both.length < 3
          ? null
          : kendallTau(
              both.map((p) => lo.get(p.trial)!),
              both.map((p) => p.accuracy),
            ),
    };
  });
  return { rungs, rungAgreement };
}

/** The study's last rung (where finals come from), null when there is none after the proxy. */
export function finalRungOf(info: Pick<ReportInfo, 'rungs'>): number | null {
  return info.rungs.length > 1 ? info.rungs.length - 1 : null;
}

/** `rung 0 (proxy)`, `rung 2 (fine-tune, 1 epoch)`: how every output names the fidelity of an accuracy. */
export function rungLabel(info: Pick<ReportInfo, 'rungs'>, rung: number): string {
  if (rung === 0) return 'rung 0 (proxy)';
  const training = info.rungs[rung]?.training ?? null;
  return `rung ${rung} (fine-tune${training === null ? '' : `, ${training}`})`;
}

/** `rung 0 → 1: tau 0.33 (n = 6)`; `–` for tau when fewer than 3 candidates reached both rungs. */
export function formatRungAgreement(a: RungAgreement): string {
  return `rung ${a.from} → ${a.to}: tau ${a.tau === null ? '–' : a.tau.toFixed(2)} (n = ${a.n})`;
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
  /** Best proxy (rung 0, validation) accuracy, aligned with `CompareInfo.targets`. */
  readonly bestAtTarget: readonly (number | null)[];
  readonly wallSeconds: number | null;
  /** Rank agreement between consecutive rungs of this study (ReportInfo.rungAgreement). */
  readonly rungAgreement: readonly RungAgreement[];
  /** Proxy (rung 0) front as (MACs / base MACs, proxy accuracy), cost ascending. */
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
      rungAgreement: info.rungAgreement,
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
  /** The rung `accuracy` comes from: 0 for the proxy, the last rung for a final; null when unknown. */
  readonly rung: number | null;
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
      rung: p.finalAccuracy !== null ? p.finalRung : 0,
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

/** `rung 0 (proxy): validation; rung 1 (fine-tune, 200 steps): test`: what each rung's accuracy is. */
export function fidelityLine(info: ReportInfo): string {
  return info.rungs.map((r) => `${rungLabel(info, r.rung)}: ${r.split}`).join('; ');
}

/** Per-rung rank agreement for the summaries; `–` when the study has no rung after the proxy. */
export function rungAgreementLine(info: ReportInfo): string {
  return info.rungAgreement.length === 0 ? '– (no rung after the proxy)' : info.rungAgreement.map(formatRungAgreement).join('; ');
}

/** One row per rung: its training, split, candidates, front and best accuracy. */
export function rungTable(info: ReportInfo): TextTable {
  return {
    header: ['rung', 'fidelity', 'accuracy on', 'candidates', 'front (MACs ascending)', 'best accuracy'],
    rows: info.rungs.map((r) => {
      const best = r.points.length ? Math.max(...r.points.map((p) => p.accuracy)) : null;
      return [
        cell(String(r.rung), r.rung),
        cell(rungLabel(info, r.rung)),
        cell(r.split),
        cell(String(r.points.length), r.points.length),
        cell(r.front.map((p) => `#${p.trial}`).join(' ')),
        cell(fmtPct(best), best),
      ];
    }),
  };
}

/** Kendall tau between consecutive rungs over the candidates that reached both. */
export function rungAgreementTable(info: ReportInfo): TextTable {
  return {
    header: ['rungs', 'candidates at both (n)', 'Kendall tau'],
    rows: info.rungAgreement.map((a) => [cell(`${a.from} → ${a.to}`), cell(String(a.n), a.n), cell(a.tau === null ? '– (n < 3)' : a.tau.toFixed(2), a.tau)]),
  };
}

/** The trial table: completed trials by MACs ascending. Δ is fine-tuned vs base test when available, else proxy vs base proxy. */
export function trialTable(info: ReportInfo): TextTable {
  return {
    header: [
      'trial',
      'FLOPs',
      'MMACs',
      'speed-up',
      'params',
      'proxy acc (rung 0)',
      finalRungOf(info) === null ? 'fine-tuned test acc' : `fine-tuned test acc (rung ${finalRungOf(info)})`,
      'top rung',
      'Δ vs base',
      'latency',
      'controller',
      'front',
    ],
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
        cell(String(p.topRung), p.topRung),
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
    header: [
      'study',
      'trials',
      'complete',
      'hypervolume',
      ...info.targets.map((t) => `best proxy (rung 0) @ ${fmtPct(t, 0)} target`),
      'rank agreement between rungs (Kendall tau)',
      'wall time',
    ],
    rows: info.studies.map((s) => [
      cell(s.name),
      cell(String(s.trials), s.trials),
      cell(String(s.complete), s.complete),
      cell(s.hypervolume.toFixed(4), s.hypervolume),
      ...s.bestAtTarget.map((b) => cell(fmtPct(b), b)),
      cell(s.rungAgreement.map(formatRungAgreement).join('; ')),
      cell(formatSeconds(s.wallSeconds), s.wallSeconds),
    ]),
  };
}
