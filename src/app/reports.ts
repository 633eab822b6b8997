/**
 * The study-reading commands' work (list, show, report, compare, pick): open the store, read the
 * studies, compute report data and write report files; they return data and the CLI prints it.
 * Reads only, so each is safe while a search writes to the same store.
 */
import { join } from 'node:path';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import {
  buildCompareInfo,
  buildReportInfo,
  type CompareInfo,
  type CompareReportPaths,
  type PickConstraints,
  pickCandidates,
  type ReportInfo,
  type ReportPaths,
  type ReportPoint,
  type RungResult,
  writeCompareReport,
  writeReport,
} from '../report/index.js';
import { defaultLatencyEngine, type LatencySource, oneLatencyEngine, type PickedCandidate, picked } from '../report/pick.js';
import type { TrialRecord } from '../store/types.js';
import { studyFinals } from '../study/finals.js';
import { lastUpdate, loadStudyData, type StudyData, storeExists, withStore } from './studies.js';

// ---- list ----------------------------------------------------------------------------------------

export interface StudySummary {
  readonly name: string;
  readonly state: string;
  readonly trials: { readonly complete: number; readonly failed: number; readonly pending: number; readonly total: number };
  /** Best proxy accuracy over all completed trials (null when none completed). */
  readonly bestProxyAccuracy: number | null;
  /** Best proxy accuracy among trials with MACs <= target * base MACs, per FLOPs target (descending). */
  readonly bestAtTarget: readonly { readonly target: number; readonly accuracy: number | null }[];
  readonly baseProxyAccuracy: number | null;
  readonly createdAt: string;
  /** Latest of the study's own update and its trials' created/started/finished times. */
  readonly lastUpdate: string;
  readonly configHash: string;
}

/** Every study of the store at `location`, summarised; null when there is no store there yet. */
export async function studySummaries(location: string): Promise<StudySummary[] | null> {
  if (!storeExists(location)) return null;
  return withStore(location, async (store) => {
    const out: StudySummary[] = [];
    for (const study of await store.listStudies()) {
      const trials = await store.listTrials(study.name);
      const finals = studyFinals(store, study.name, trials);
      const r = buildReportInfo(study, trials, finals);
      const last = r.progress.byNumber.at(-1);
      out.push({
        name: study.name,
        state: study.state,
        trials: { complete: r.counts.complete, failed: r.counts.failed, pending: r.counts.pending, total: r.counts.total },
        bestProxyAccuracy: last?.bestProxyAccuracy ?? null,
        bestAtTarget: r.targets.map((target, k) => ({ target, accuracy: last?.bestAtTarget[k] ?? null })),
        baseProxyAccuracy: study.baseProxyAccuracy,
        createdAt: study.createdAt,
        lastUpdate: lastUpdate(study, trials),
        configHash: study.configHash,
      });
    }
    return out;
  });
}

// ---- show ----------------------------------------------------------------------------------------

export interface ShowTrial {
  readonly number: number;
  readonly state: string;
  readonly flopsFraction: number;
  readonly macs: number;
  readonly params: number;
  /** Rung 0 (proxy): validation accuracy after BN re-calibration. */
  readonly proxyAccuracy: number | null;
  /** Test accuracy after the last rung's fine-tune (`finalRung`). */
  readonly finalAccuracy: number | null;
  /** The rung `finalAccuracy` comes from; null without one. */
  readonly finalRung: number | null;
  /** The highest rung the trial's candidate reached (0: the proxy only). */
  readonly topRung: number;
  /** Its results at rungs k >= 1. */
  readonly rungs: readonly RungResult[];
  readonly latencyMs: number | null;
  /** Latency predicted from the latency table when the trial was proposed (docs/latency.md), and the table's label. */
  readonly predictedLatencyMs: number | null;
  readonly latencyTable: string | null;
  /** (predicted - measured) / measured, when both are known. */
  readonly latencyPredictionError: number | null;
  readonly controller: string;
  /** FLOPs target the controller aimed at, if any. */
  readonly target: number | null;
  /** Evaluation time, startedAt -> finishedAt (null while unfinished). */
  readonly seconds: number | null;
  readonly onProxyFront: boolean;
  readonly error: string | null;
}

export interface ShowData {
  readonly report: ReportInfo;
  /** Every search trial, in trial-number order. */
  readonly trials: readonly ShowTrial[];
  /** Proxy (rung 0) front, MACs ascending. */
  readonly proxyFront: readonly number[];
  /** Front of the finals (the last rung), MACs ascending. */
  readonly finalFront: readonly number[];
}

function seconds(t: TrialRecord | undefined): number | null {
  if (!t?.startedAt || !t.finishedAt) return null;
  const s = (Date.parse(t.finishedAt) - Date.parse(t.startedAt)) / 1000;
  return Number.isFinite(s) ? s : null;
}

/** A number or string field of a trial's meta, else null. */
function metaField<T extends 'number' | 'string'>(t: TrialRecord | undefined, key: string, type: T): (T extends 'number' ? number : string) | null {
  const m = t?.meta;
  const v = m !== null && typeof m === 'object' && !Array.isArray(m) ? m[key] : undefined;
  return typeof v === type ? (v as T extends 'number' ? number : string) : null;
}

function showTrial(p: ReportPoint, t: TrialRecord | undefined): ShowTrial {
  const predicted = metaField(t, 'predictedLatencyMs', 'number');
  return {
    number: p.trial,
    state: p.state,
    flopsFraction: p.flopsFraction,
    macs: p.macs,
    params: p.params,
    proxyAccuracy: p.proxyAccuracy,
    finalAccuracy: p.finalAccuracy,
    finalRung: p.finalRung,
    topRung: p.topRung,
    rungs: p.rungResults,
    latencyMs: p.latencyMs,
    predictedLatencyMs: predicted,
    latencyTable: metaField(t, 'latencyTable', 'string'),
    latencyPredictionError: predicted !== null && p.latencyMs !== null && p.latencyMs > 0 ? (predicted - p.latencyMs) / p.latencyMs : null,
    controller: p.controller,
    target: p.target,
    seconds: seconds(t),
    onProxyFront: p.onProxyFront,
    error: p.error,
  };
}

/** Search trials and rung trials together: report data computes each accuracy's rung from both. */
const allTrials = (d: StudyData): TrialRecord[] => [...d.trials, ...d.rungTrials];

/** The trials of study `name` and its fronts (`autoprune show`). */
export async function showStudy(location: string, name: string): Promise<ShowData> {
  const d = await withStore(location, (s) => loadStudyData(s, name));
  const report = buildReportInfo(d.study, allTrials(d), d.finals, d.dataNotes, d.latencyCheck);
  const byNumber = new Map(d.trials.map((t) => [t.number, t]));
  return {
    report,
    trials: report.points.map((p) => showTrial(p, byNumber.get(p.trial))),
    proxyFront: report.proxyFront.map((p) => p.trial),
    finalFront: report.finalFront.map((p) => p.trial),
  };
}

// ---- report and compare --------------------------------------------------------------------------

/** Writes the report of study `name` into `out` (default reports/<study>) (`autoprune report`). */
export async function reportStudy(location: string, name: string, out?: string): Promise<{ report: ReportInfo; paths: ReportPaths }> {
  const d = await withStore(location, (s) => loadStudyData(s, name));
  const report = buildReportInfo(d.study, allTrials(d), d.finals, d.dataNotes, d.latencyCheck);
  const paths = await writeReport(report, out ?? join('reports', d.study.name));
  return { report, paths };
}

/** Compares two or more distinct studies and writes the comparison into `out` (default reports/compare-<a>-<b>...). */
export async function compareStudies(location: string, names: readonly string[], out?: string): Promise<{ info: CompareInfo; paths: CompareReportPaths }> {
  if (names.length < 2) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected two or more studies to compare, got ${quote(names)}`);
  }
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected distinct studies to compare, got ${quote(dup)} twice`);
  const data = await withStore(location, async (s) => {
    const all: StudyData[] = [];
    for (const n of names) all.push(await loadStudyData(s, n));
    return all;
  });
  const info = buildCompareInfo(data.map((d) => ({ ...d, trials: allTrials(d) })));
  const paths = await writeCompareReport(info, out ?? join('reports', `compare-${names.join('-')}`));
  return { info, paths };
}

// ---- pick ----------------------------------------------------------------------------------------

export interface PickOptions {
  readonly constraints: PickConstraints;
  /** Show at most this many. */
  readonly top: number;
  /** With a latency constraint: the engine, host and device whose latencies count (defaults: see oneLatencyEngine). */
  readonly latencyEngine?: string;
  readonly latencyHost?: string;
  readonly latencyDevice?: string;
}

export interface PickOutcome {
  readonly study: string;
  readonly report: ReportInfo;
  /** The ranked candidates, at most `top`. */
  readonly rows: readonly PickedCandidate[];
  /** How many candidates meet the constraints (may exceed rows.length). */
  readonly matched: number;
  /** With a latency constraint: where the latencies that count were measured, and how many trials were left out. */
  readonly latency: (LatencySource & { readonly dropped: number }) | null;
}

/** Ranks the complete trials of study `name` that meet the constraints (`autoprune pick`). */
export async function pickTrials(location: string, name: string, o: PickOptions): Promise<PickOutcome> {
  const data = await withStore(location, (s) => loadStudyData(s, name));
  const { study } = data;
  let { trials, finals } = data;
  let latency: PickOutcome['latency'] = null;
  if (o.constraints.maxLatencyMs !== undefined) {
    const one = oneLatencyEngine(trials, finals, o.latencyEngine ?? defaultLatencyEngine(study, trials), o.latencyHost, o.latencyDevice);
    ({ trials, finals } = one);
    latency = { engine: one.engine, host: one.host, device: one.device, dropped: one.dropped };
  }
  // Latency filtering concerns the search's trials; rung trials only tell each accuracy's rung.
  const report = buildReportInfo(study, [...trials, ...data.rungTrials], finals);
  const all = pickCandidates(report, o.constraints);
  return { study: study.name, report, rows: all.slice(0, o.top).map(picked), matched: all.length, latency };
}
