/**
 * What the dashboard knows of each study, kept up to date by polling the store, and handed to pages
 * incrementally. Each trial row carries the feed's version at which it last changed; a page that
 * holds version V asks for `since=V` and gets only the rows that changed after it (optuna-dashboard
 * polls the same way, with an `after` trial number). The version is the server's own counter, so the
 * clocks of the hosts that write trials never matter; `epoch` changes when a study was deleted and
 * created again under the same name (`search --fresh`), and then a page starts over.
 */
import { withinTarget } from '../core/space.js';
import { buildReportInfo, finalRungOf, type ReportInfo } from '../report/data.js';
import type { FinalRecord, Json, Store, StudyRecord, TrialRecord } from '../store/types.js';
import { finalsOf } from '../study/finals.js';
import { rungMetaOf } from '../study/rungs.js';
import type { ChangeReader } from './queries.js';

/** A trial as pages list it (the trial page reads the whole record). Accuracies are fractions. */
export interface TrialRow {
  readonly n: number;
  readonly state: TrialRecord['state'];
  readonly stage: TrialRecord['stage'];
  readonly controller: string;
  readonly parent: number | null;
  /** The FLOPs target of the controller (meta.target), if any. */
  readonly target: number | null;
  readonly macs: number;
  readonly params: number;
  /** The trial's fidelity: 0 for a search trial (proxy), k for a rung-k fine-tune trial (docs/rungs.md). */
  readonly rung: number;
  /** Validation accuracy at `rung` (rung 0: the proxy's). */
  readonly proxy: number | null;
  /** Fine-tuned test accuracy (the finalist's record, else the trial's metrics). */
  readonly final: number | null;
  /** ms per image: the trial's measurement, else its finalist's. */
  readonly latency: number | null;
  readonly worker: string | null;
  readonly attempts: number;
  readonly created: string;
  readonly started: string | null;
  readonly finished: string | null;
  /** The first ERROR_CHARS characters of the error; the trial page shows all of it. */
  readonly error: string | null;
  /** Feed version at which this row last changed. */
  readonly v: number;
}

const ERROR_CHARS = 300;

/** Polls of one study closer together than this reuse the last answer (many pages, one store read). */
export const MIN_REFRESH_MS = 500;

function metaTarget(meta: Json | undefined): number | null {
  const m = meta !== null && typeof meta === 'object' && !Array.isArray(meta) ? meta : null;
  const t = m?.target;
  return typeof t === 'number' && Number.isFinite(t) ? t : null;
}

function toRow(t: TrialRecord, fin: FinalRecord | undefined, v: number): TrialRow {
  return {
    n: t.number,
    state: t.state,
    stage: t.stage,
    controller: t.controller,
    parent: t.parent,
    target: metaTarget(t.meta),
    macs: t.cost.macs,
    params: t.cost.params,
    rung: rungMetaOf(t)?.rung ?? 0,
    proxy: t.metrics.proxyAccuracy ?? null,
    final: fin?.finalAccuracy ?? t.metrics.finalAccuracy ?? null,
    latency: t.metrics.latencyMs ?? fin?.latencyMs ?? null,
    worker: t.worker,
    attempts: t.attempts,
    created: t.createdAt,
    started: t.startedAt,
    finished: t.finishedAt,
    error: t.error === null ? null : t.error.length > ERROR_CHARS ? `${t.error.slice(0, ERROR_CHARS)}…` : t.error,
    v,
  };
}

/** Equal rows (ignoring the version) need not be sent again. */
function sameRow(a: TrialRow, b: TrialRow): boolean {
  for (const k of Object.keys(a) as (keyof TrialRow)[]) if (k !== 'v' && a[k] !== b[k]) return false;
  return true;
}

export interface Delta {
  readonly epoch: string;
  readonly version: number;
  /** True when the page must drop what it holds (first request, or the study was re-created). */
  readonly reset: boolean;
  readonly rows: readonly TrialRow[];
}

/** Best accuracy among trials within each target (aligned with `targets`); null where none is. */
export interface StudySummary {
  readonly name: string;
  readonly state: StudyRecord['state'];
  readonly epoch: string;
  readonly version: number;
  readonly createdAt: string;
  /** Latest of the study's update and its trials' created/started/finished times (ISO 8601). */
  readonly lastActivity: string;
  readonly counts: { total: number; complete: number; failed: number; running: number; waiting: number; finalists: number };
  readonly base: ReportInfo['base'];
  readonly groups: ReportInfo['groups'];
  readonly targets: readonly number[];
  readonly window: number | null;
  /** Best proxy (validation) accuracy at each target. */
  readonly bestProxy: readonly (number | null)[];
  /** Best fine-tuned (test) accuracy at each target. */
  readonly bestFinal: readonly (number | null)[];
  readonly baselineBest: ReportInfo['baselineBest'];
  readonly hypervolume: number;
  readonly proxyFront: readonly number[];
  readonly finalFront: readonly number[];
  readonly proxyFinalTau: number | null;
  /** The rung finals come from (the last), null when the study has none after the proxy. */
  readonly finalRung: number | null;
  /** Kendall tau between consecutive rungs (ReportInfo.rungAgreement). */
  readonly rungAgreement: ReportInfo['rungAgreement'];
  /** Whether any complete trial recorded a latency (the study page then also plots accuracy vs latency). */
  readonly hasLatency: boolean;
  /** Best proxy accuracy so far after each of up to SPARK_POINTS evenly spaced completed trials. */
  readonly spark: readonly number[];
}

const SPARK_POINTS = 40;

function bestWithin(info: ReportInfo, target: number, acc: (p: ReportInfo['points'][number]) => number | null): number | null {
  let best: number | null = null;
  for (const p of info.points) {
    const a = acc(p);
    if (a !== null && withinTarget(p.flopsFraction, target, info.window) && (best === null || a > best)) best = a;
  }
  return best;
}

/** Evenly spaced samples of `xs` (at most `k`, always the last). */
export function downsample<T>(xs: readonly T[], k: number): T[] {
  if (xs.length <= k) return [...xs];
  const out: T[] = [];
  for (let i = 1; i <= k; i++) out.push(xs[Math.round((i * xs.length) / k) - 1]);
  return out;
}

export class StudyFeed {
  study: StudyRecord;
  private epochKey: string;
  private version = 0;
  private readonly rows = new Map<number, TrialRow>();
  private readonly records = new Map<number, TrialRecord>();
  private finals = new Map<number, FinalRecord>();
  private maxNumber = -1;
  /** Numbers of the trials that were unfinished at the last poll. */
  private open = new Set<number>();
  private lastPoll = 0;
  private polling: Promise<void> | null = null;
  private info: { version: number; info: ReportInfo } | null = null;
  /** Rows the last poll read from the store (for tests and the server log). */
  lastRead = 0;
  /** The study is no longer in the store. */
  gone = false;

  constructor(
    private readonly store: Store,
    private readonly reader: ChangeReader,
    study: StudyRecord,
    /** Distinguishes this server process's versions from another's (a page outlives a restart). */
    private readonly instance: string,
    private readonly now: () => number = Date.now,
  ) {
    this.study = study;
    this.epochKey = `${instance}/${study.createdAt}`;
  }

  get epoch(): string {
    return this.epochKey;
  }

  /** Brings the feed up to date with the store, at most once per MIN_REFRESH_MS (concurrent callers share one poll). */
  refresh(): Promise<void> {
    if (this.polling) return this.polling;
    if (this.now() - this.lastPoll < MIN_REFRESH_MS && this.lastPoll > 0) return Promise.resolve();
    this.polling = this.poll().finally(() => {
      this.lastPoll = this.now();
      this.polling = null;
    });
    return this.polling;
  }

  private async poll(): Promise<void> {
    const study = await this.store.getStudy(this.study.name);
    if (study === null) {
      this.gone = true;
      return;
    }
    if (study.createdAt !== this.study.createdAt) this.clear(study);
    const studyChanged = JSON.stringify(study) !== JSON.stringify(this.study);
    this.study = study;
    const changed = await this.reader.changedTrials(study.name, this.maxNumber, [...this.open]);
    this.lastRead = changed.length;
    for (const t of changed) this.records.set(t.number, t);
    // Finals are last-rung trials (src/study/finals.ts): derived from every trial the feed holds.
    const finals = finalsOf(study.name, [...this.records.values()], this.store.artifactDir(study.name));
    const finalByTrial = new Map<number, FinalRecord>();
    for (const f of [...finals].sort((a, b) => a.createdAt.localeCompare(b.createdAt))) finalByTrial.set(f.trial, f);
    const next = this.version + 1;
    let bumped = studyChanged;
    const touched = new Set<number>(changed.map((t) => t.number));
    for (const [n, f] of finalByTrial) if (JSON.stringify(this.finals.get(n)) !== JSON.stringify(f)) touched.add(n);
    for (const n of touched) {
      const t = this.records.get(n);
      if (!t) continue;
      const row = toRow(t, finalByTrial.get(n), next);
      const old = this.rows.get(n);
      if (old && sameRow(old, row)) continue;
      this.rows.set(n, row);
      bumped = true;
    }
    this.finals = finalByTrial;
    for (const t of changed) this.maxNumber = Math.max(this.maxNumber, t.number);
    this.open = new Set(changed.filter((t) => t.state === 'waiting' || t.state === 'running').map((t) => t.number));
    if (bumped) this.version = next;
  }

  private clear(study: StudyRecord): void {
    this.study = study;
    this.epochKey = `${this.instance}/${study.createdAt}`;
    this.rows.clear();
    this.records.clear();
    this.finals.clear();
    this.maxNumber = -1;
    this.open.clear();
    this.info = null;
  }

  /** Rows changed after version `since` of epoch `epoch` (all rows, with reset, when the epoch differs or since <= 0). */
  since(since: number, epoch: string | null): Delta {
    const reset = since <= 0 || epoch !== this.epochKey || since > this.version;
    const rows = [...this.rows.values()].filter((r) => reset || r.v > since).sort((a, b) => a.n - b.n);
    return { epoch: this.epochKey, version: this.version, reset, rows };
  }

  trials(): TrialRecord[] {
    return [...this.records.values()].sort((a, b) => a.number - b.number);
  }

  finalRecords(): FinalRecord[] {
    return [...this.finals.values()];
  }

  record(n: number): TrialRecord | undefined {
    return this.records.get(n);
  }

  final(n: number): FinalRecord | undefined {
    return this.finals.get(n);
  }

  /** The report data of the study as the feed holds it (recomputed only when the feed changed). */
  reportInfo(): ReportInfo {
    if (this.info?.version !== this.version) this.info = { version: this.version, info: buildReportInfo(this.study, this.trials(), this.finalRecords()) };
    return this.info.info;
  }

  summary(): StudySummary {
    const info = this.reportInfo();
    let last = this.study.updatedAt;
    let running = 0;
    let waiting = 0;
    for (const r of this.rows.values()) {
      for (const ts of [r.created, r.started, r.finished]) if (ts !== null && ts > last) last = ts;
      if (r.state === 'running') running++;
      else if (r.state === 'waiting') waiting++;
    }
    const spark = downsample(info.progress.byNumber, SPARK_POINTS).map((s) => s.bestProxyAccuracy);
    return {
      name: this.study.name,
      state: this.study.state,
      epoch: this.epochKey,
      version: this.version,
      createdAt: this.study.createdAt,
      lastActivity: last,
      counts: { total: info.counts.total, complete: info.counts.complete, failed: info.counts.failed, running, waiting, finalists: info.counts.finalists },
      base: info.base,
      groups: info.groups,
      targets: info.targets,
      window: info.window,
      bestProxy: info.targets.map((t) => bestWithin(info, t, (p) => (p.state === 'complete' ? p.proxyAccuracy : null))),
      bestFinal: info.targets.map((t) => bestWithin(info, t, (p) => p.finalAccuracy)),
      baselineBest: info.baselineBest,
      hypervolume: info.hypervolume,
      proxyFront: info.proxyFront.map((p) => p.trial),
      finalFront: info.finalFront.map((p) => p.trial),
      proxyFinalTau: info.proxyFinalTau,
      finalRung: finalRungOf(info),
      rungAgreement: info.rungAgreement,
      hasLatency: info.rows.some((p) => p.latencyMs !== null),
      spark,
    };
  }
}

/** One feed per study, created on first use; the list of studies is read again at most every MIN_REFRESH_MS. */
export class Feeds {
  private readonly feeds = new Map<string, StudyFeed>();
  private readonly instance: string;

  constructor(
    readonly store: Store,
    private readonly reader: ChangeReader,
    now: () => number = Date.now,
  ) {
    this.instance = now().toString(36);
  }

  /** The feed of `name`, up to date; null when the store has no such study. */
  async get(name: string): Promise<StudyFeed | null> {
    let feed = this.feeds.get(name);
    if (!feed) {
      const study = await this.store.getStudy(name);
      if (study === null) return null;
      feed = new StudyFeed(this.store, this.reader, study, this.instance);
      this.feeds.set(name, feed);
    }
    await feed.refresh();
    if (feed.gone) {
      this.feeds.delete(name);
      return null;
    }
    return feed;
  }

  /** Feeds of every study, up to date, by name. Studies deleted from the store are dropped. */
  async all(): Promise<StudyFeed[]> {
    const studies = await this.store.listStudies();
    const names = new Set(studies.map((s) => s.name));
    for (const n of [...this.feeds.keys()]) if (!names.has(n)) this.feeds.delete(n);
    const out: StudyFeed[] = [];
    for (const s of studies.sort((a, b) => a.name.localeCompare(b.name))) {
      const f = await this.get(s.name);
      if (f) out.push(f);
    }
    return out;
  }

  close(): Promise<void> {
    return this.reader.close();
  }
}
