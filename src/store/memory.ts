/**
 * In-memory backend: the same semantics as SQLite (shared.ts holds the rules), for tests and
 * throw-away runs. Everything is copied in through the canonical JSON encoding and copied out as
 * fresh frozen records, so a caller can never reach the store's state through an object it holds.
 */
import type { TrialMetrics, TrialState } from '../core/types.js';
import {
  KEY_PREFERENCE,
  checkBaseAccuracy,
  checkFinal,
  checkMetrics,
  checkNewStudy,
  checkNewTrial,
  checkStudyName,
  checkStudyState,
  checkTransition,
  checkTrialNumber,
  copyJson,
  deepFreeze,
  metricsOf,
  nowIso,
  storeErrors,
  type NewStudy,
} from './shared.js';
import { SNAPSHOTS_KEPT } from './types.js';
import type {
  ControllerSnapshot,
  FinalRecord,
  Json,
  NewTrial,
  Store,
  StudyRecord,
  StudyState,
  TrialRecord,
} from './types.js';

/** Internal records are never handed out: `out` copies them. */
interface StudyData {
  study: StudyRecord;
  trials: TrialRecord[]; // index === number (dense)
  snapshots: ControllerSnapshot[]; // in save order
  finals: Map<number, FinalRecord>;
}

function out<T>(v: T): T {
  return deepFreeze(structuredClone(v));
}

export class MemoryStore implements Store {
  private readonly studies = new Map<string, StudyData>();
  private closed = false;

  private run<T>(f: () => T): Promise<T> {
    try {
      if (this.closed) throw storeErrors.closed();
      return Promise.resolve(f());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private data(name: string): StudyData {
    checkStudyName(name);
    const d = this.studies.get(name);
    if (d === undefined) throw storeErrors.studyNotFound(name);
    return d;
  }

  private trial(study: string, n: number): { d: StudyData; t: TrialRecord } {
    const d = this.data(study);
    checkTrialNumber(n);
    const t = d.trials[n];
    if (t === undefined) throw storeErrors.trialNotFound(study, n);
    return { d, t };
  }

  createStudy(s: NewStudy): Promise<StudyRecord> {
    return this.run(() => {
      checkNewStudy(s);
      if (this.studies.has(s.name)) throw storeErrors.studyExists(s.name);
      const now = nowIso();
      const study: StudyRecord = {
        name: s.name,
        configHash: s.configHash,
        config: copyJson(s.config),
        space: copyJson(s.space),
        baseCost: { macs: s.baseCost.macs, params: s.baseCost.params },
        baseProxyAccuracy: s.baseProxyAccuracy,
        baseTestAccuracy: s.baseTestAccuracy,
        state: 'running',
        createdAt: now,
        updatedAt: now,
      };
      this.studies.set(s.name, { study, trials: [], snapshots: [], finals: new Map() });
      return out(study);
    });
  }

  getStudy(name: string): Promise<StudyRecord | null> {
    return this.run(() => {
      const d = this.studies.get(name);
      return d === undefined ? null : out(d.study);
    });
  }

  listStudies(): Promise<StudyRecord[]> {
    return this.run(() => [...this.studies.values()].map((d) => out(d.study)));
  }

  setStudyState(name: string, state: StudyState): Promise<void> {
    return this.run(() => {
      checkStudyState(state);
      const d = this.data(name);
      d.study = { ...d.study, state, updatedAt: nowIso() };
    });
  }

  setBaseAccuracy(name: string, acc: { proxy?: number; test?: number }): Promise<void> {
    return this.run(() => {
      checkBaseAccuracy(acc);
      const d = this.data(name);
      d.study = {
        ...d.study,
        baseProxyAccuracy: acc.proxy ?? d.study.baseProxyAccuracy,
        baseTestAccuracy: acc.test ?? d.study.baseTestAccuracy,
        updatedAt: nowIso(),
      };
    });
  }

  deleteStudy(name: string): Promise<void> {
    return this.run(() => {
      this.data(name);
      this.studies.delete(name);
    });
  }

  createTrial(study: string, t: NewTrial): Promise<TrialRecord> {
    return this.run(() => {
      checkNewTrial(t);
      const d = this.data(study);
      const rec: TrialRecord = {
        study,
        number: d.trials.length,
        state: 'waiting',
        candidate: { channels: copyJson(t.candidate.channels) },
        key: t.key,
        cost: { macs: t.cost.macs, params: t.cost.params },
        controller: t.controller,
        ...(t.meta === undefined ? {} : { meta: copyJson(t.meta) }),
        metrics: {},
        error: null,
        worker: null,
        createdAt: nowIso(),
        startedAt: null,
        finishedAt: null,
      };
      d.trials.push(rec);
      return out(rec);
    });
  }

  private update(
    study: string,
    n: number,
    to: 'running' | 'complete' | 'failed',
    patch: (t: TrialRecord) => TrialRecord,
  ): Promise<TrialRecord> {
    return this.run(() => {
      const { d, t } = this.trial(study, n);
      checkTransition(study, n, t.state, to, t.worker);
      d.trials[n] = patch(t);
      return out(d.trials[n]);
    });
  }

  startTrial(study: string, number: number, worker: string): Promise<TrialRecord> {
    return this.update(study, number, 'running', (t) => ({ ...t, state: 'running', worker, startedAt: nowIso() }));
  }

  completeTrial(study: string, number: number, metrics: TrialMetrics): Promise<TrialRecord> {
    return this.run(() => checkMetrics(metrics)).then(() =>
      this.update(study, number, 'complete', (t) => ({
        ...t,
        state: 'complete',
        metrics: metricsOf(
          metrics.proxyAccuracy,
          metrics.finalAccuracy,
          metrics.latencyMs,
          metrics.timings === undefined ? undefined : copyJson(metrics.timings),
        ),
        finishedAt: nowIso(),
      })),
    );
  }

  failTrial(study: string, number: number, error: string): Promise<TrialRecord> {
    return this.update(study, number, 'failed', (t) => ({
      ...t,
      state: 'failed',
      error: String(error),
      finishedAt: nowIso(),
    }));
  }

  requeueRunning(study: string): Promise<number[]> {
    return this.run(() => {
      const d = this.data(study);
      const moved: number[] = [];
      d.trials = d.trials.map((t) => {
        if (t.state !== 'running') return t;
        moved.push(t.number);
        return { ...t, state: 'waiting', worker: null, startedAt: null };
      });
      return moved;
    });
  }

  getTrial(study: string, number: number): Promise<TrialRecord | null> {
    return this.run(() => {
      const d = this.data(study);
      checkTrialNumber(number);
      const t = d.trials[number];
      return t === undefined ? null : out(t);
    });
  }

  listTrials(study: string, filter: { state?: TrialState } = {}): Promise<TrialRecord[]> {
    return this.run(() =>
      this.data(study)
        .trials.filter((t) => filter.state === undefined || t.state === filter.state)
        .map(out),
    );
  }

  findTrialByKey(study: string, key: string): Promise<TrialRecord | null> {
    return this.run(() => {
      let best: TrialRecord | null = null;
      for (const t of this.data(study).trials) {
        if (t.key === key && (best === null || KEY_PREFERENCE[t.state] < KEY_PREFERENCE[best.state])) best = t;
      }
      return best === null ? null : out(best);
    });
  }

  saveSnapshot(study: string, told: number, state: Json): Promise<void> {
    return this.run(() => {
      checkTrialNumber(told);
      const snapshots = this.data(study).snapshots;
      snapshots.push({ study, told, state: copyJson(state), createdAt: nowIso() });
      if (snapshots.length > SNAPSHOTS_KEPT) snapshots.splice(0, snapshots.length - SNAPSHOTS_KEPT);
    });
  }

  latestSnapshot(study: string): Promise<ControllerSnapshot | null> {
    return this.run(() => {
      const s = this.data(study).snapshots;
      return s.length === 0 ? null : out(s[s.length - 1]);
    });
  }

  saveFinal(f: Omit<FinalRecord, 'createdAt'>): Promise<FinalRecord> {
    return this.run(() => {
      checkFinal(f);
      const { d } = this.trial(f.study, f.trial);
      const rec: FinalRecord = {
        study: f.study,
        trial: f.trial,
        finalAccuracy: f.finalAccuracy,
        latencyMs: f.latencyMs,
        epochs: f.epochs,
        modelPath: f.modelPath,
        seconds: f.seconds,
        createdAt: nowIso(),
      };
      d.finals.set(f.trial, rec);
      return out(rec);
    });
  }

  listFinals(study: string): Promise<FinalRecord[]> {
    return this.run(() => [...this.data(study).finals.values()].sort((a, b) => a.trial - b.trial).map(out));
  }

  close(): Promise<void> {
    this.closed = true;
    this.studies.clear();
    return Promise.resolve();
  }
}
