/**
 * In-memory backend: the same semantics as SQLite (shared.ts holds the rules), for tests and
 * throw-away runs. Everything is copied in through the canonical JSON encoding and copied out as
 * fresh frozen records, so a caller can never reach the store's state through an object it holds.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrialMetrics, TrialState } from '../core/types.js';
import { FolderArtifacts } from './artifacts.js';
import {
  canMove,
  checkBaseAccuracy,
  checkDriver,
  checkFinal,
  checkLease,
  checkLeaseMs,
  checkMetrics,
  checkNewStudy,
  checkNewTrial,
  checkParent,
  checkStudyName,
  checkStudyState,
  checkText,
  checkTrialNumber,
  copyJson,
  deepFreeze,
  expiredReason,
  isFinished,
  metricsOf,
  type NewFinal,
  type NewStudy,
  nowIso,
  stageOf,
  storeErrors,
  TRANSITIONS,
  type Transition,
} from './shared.js';
import type {
  ArtifactInfo,
  Claim,
  ControllerSnapshot,
  DriverLease,
  FinalRecord,
  Json,
  NewTrial,
  Reaped,
  Store,
  StoreOptions,
  StudyRecord,
  StudyState,
  TrialLease,
  TrialRecord,
} from './types.js';
import { SNAPSHOTS_KEPT } from './types.js';

/** Internal records are never handed out: `out` copies them. */
interface StudyData {
  study: StudyRecord;
  trials: TrialRecord[]; // index === number (dense)
  snapshots: ControllerSnapshot[]; // in save order
  finals: Map<number, FinalRecord>;
  /** Lease columns by trial number (token 0 = never claimed). */
  leases: Map<number, { token: number; expiresMs: number | null }>;
  driver: { owner: string; token: number; expiresMs: number } | null;
}

function out<T>(v: T): T {
  return deepFreeze(structuredClone(v));
}

export class MemoryStore implements Store {
  readonly location = null;
  private readonly studies = new Map<string, StudyData>();
  private closed = false;
  private readonly clock: () => number;
  /** Artifacts of an in-memory store live in a temporary folder of its own. */
  private readonly artifacts = join(tmpdir(), `autoprune-memory-${process.pid}-${randomBytes(6).toString('hex')}`);

  constructor(options: StoreOptions = {}) {
    this.clock = options.clock ?? Date.now;
  }

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
        inputs: s.inputs == null ? null : { baseModel: s.inputs.baseModel, data: s.inputs.data },
        state: 'running',
        createdAt: now,
        updatedAt: now,
      };
      this.studies.set(s.name, { study, trials: [], snapshots: [], finals: new Map(), leases: new Map(), driver: null });
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

  async deleteStudy(name: string): Promise<void> {
    await this.run(() => {
      this.data(name);
      this.studies.delete(name);
    });
    await rm(this.artifactDir(name), { recursive: true, force: true });
  }

  private insertTrial(study: string, d: StudyData, t: NewTrial): TrialRecord {
    checkNewTrial(t);
    const number = d.trials.length;
    checkParent(study, t, number, (p) => d.trials[p] !== undefined);
    const rec: TrialRecord = {
      study,
      number,
      state: 'waiting',
      candidate: { channels: copyJson(t.candidate.channels) },
      key: t.key,
      cost: { macs: t.cost.macs, params: t.cost.params },
      controller: t.controller,
      ...(t.meta === undefined ? {} : { meta: copyJson(t.meta) }),
      stage: stageOf(t),
      parent: t.parent ?? null,
      attempts: 0,
      metrics: {},
      error: null,
      worker: null,
      createdAt: nowIso(),
      startedAt: null,
      finishedAt: null,
    };
    d.trials.push(rec);
    return out(rec);
  }

  enqueueTrials(driver: DriverLease, trials: readonly NewTrial[], snapshot: { told: number; state: Json }): Promise<TrialRecord[]> {
    return this.run(() => {
      const d = this.data(driver.study);
      checkDriver(driver, d.driver, this.clock());
      checkTrialNumber(snapshot.told);
      trials.forEach(checkNewTrial); // all or nothing, like the SQLite transaction
      const recs = trials.map((t) => this.insertTrial(driver.study, d, t));
      this.pushSnapshot(d, driver.study, snapshot.told, snapshot.state);
      return recs;
    });
  }

  claimTrial(study: string, worker: string, o: { leaseMs: number; number?: number }): Promise<Claim | null> {
    return this.run(() => {
      checkLeaseMs(o.leaseMs);
      checkText('worker name', worker);
      const d = this.data(study);
      if (o.number !== undefined) checkTrialNumber(o.number);
      const ready = (x: TrialRecord) => x.parent === null || isFinished(d.trials[x.parent].state);
      const t = d.trials.find((x) => canMove(x.state, 'claim') && (o.number === undefined || x.number === o.number) && ready(x));
      if (t === undefined) return null;
      const token = (d.leases.get(t.number)?.token ?? 0) + 1;
      d.leases.set(t.number, { token, expiresMs: this.clock() + o.leaseMs });
      d.trials[t.number] = { ...t, state: TRANSITIONS.claim.to, worker, startedAt: nowIso(), attempts: t.attempts + 1 };
      return out({ study, number: t.number, token, trial: d.trials[t.number] });
    });
  }

  private leased(l: TrialLease, action: Transition): { d: StudyData; t: TrialRecord } {
    const { d, t } = this.trial(l.study, l.number);
    const lease = d.leases.get(l.number) ?? { token: 0, expiresMs: null };
    checkLease(l, { state: t.state, token: lease.token, expiresMs: lease.expiresMs }, this.clock(), action);
    return { d, t };
  }

  heartbeat(l: TrialLease, leaseMs: number): Promise<void> {
    return this.run(() => {
      checkLeaseMs(leaseMs);
      const { d } = this.leased(l, 'heartbeat');
      d.leases.set(l.number, { token: l.token, expiresMs: this.clock() + leaseMs });
    });
  }

  completeTrial(l: TrialLease, metrics: TrialMetrics): Promise<TrialRecord> {
    return this.run(() => {
      checkMetrics(metrics);
      const { d, t } = this.leased(l, 'complete');
      const timings = metrics.timings === undefined ? undefined : copyJson(metrics.timings);
      const m = metricsOf(metrics.proxyAccuracy, metrics.finalAccuracy, metrics.latencyMs, timings, metrics.latencyHost, metrics.latencyDevice);
      d.trials[l.number] = { ...t, state: TRANSITIONS.complete.to, metrics: m, finishedAt: nowIso() };
      d.leases.set(l.number, { token: l.token, expiresMs: null });
      return out(d.trials[l.number]);
    });
  }

  failTrial(l: TrialLease, error: string): Promise<TrialRecord> {
    return this.run(() => {
      const { d, t } = this.leased(l, 'fail');
      return out(this.finish(d, t, String(error), 'fail'));
    });
  }

  private finish(d: StudyData, t: TrialRecord, error: string, how: 'fail' | 'expire'): TrialRecord {
    d.trials[t.number] = { ...t, state: TRANSITIONS[how].to, error, finishedAt: nowIso() };
    d.leases.set(t.number, { token: d.leases.get(t.number)?.token ?? 0, expiresMs: null });
    return d.trials[t.number];
  }

  private requeue(d: StudyData, t: TrialRecord): void {
    d.trials[t.number] = { ...t, state: TRANSITIONS.requeue.to, worker: null, startedAt: null };
    d.leases.set(t.number, { token: d.leases.get(t.number)?.token ?? 0, expiresMs: null });
  }

  reapExpired(study: string, o: { maxAttempts: number; gone?: readonly string[] }): Promise<Reaped> {
    return this.run(() => {
      const d = this.data(study);
      const now = this.clock();
      const reaped = { requeued: [] as number[], failed: [] as number[] };
      for (const t of d.trials) {
        const expired = (d.leases.get(t.number)?.expiresMs ?? 0) < now || (t.worker !== null && (o.gone ?? []).includes(t.worker));
        if (!canMove(t.state, 'requeue') || !expired) continue;
        if (t.attempts >= o.maxAttempts) {
          this.finish(d, t, expiredReason(t.attempts, t.worker), 'expire');
          reaped.failed.push(t.number);
        } else {
          this.requeue(d, t);
          reaped.requeued.push(t.number);
        }
      }
      return reaped;
    });
  }

  acquireDriver(study: string, owner: string, leaseMs: number, o: { stale?: (holder: string) => boolean } = {}): Promise<DriverLease> {
    return this.run(() => {
      checkLeaseMs(leaseMs);
      checkText('driver owner', owner);
      const d = this.data(study);
      const now = this.clock();
      if (d.driver !== null && d.driver.expiresMs >= now && !o.stale?.(d.driver.owner)) throw storeErrors.busy(study, d.driver.owner, d.driver.expiresMs, now);
      d.driver = { owner, token: (d.driver?.token ?? 0) + 1, expiresMs: now + leaseMs };
      return out({ study, owner, token: d.driver.token });
    });
  }

  renewDriver(l: DriverLease, leaseMs: number): Promise<void> {
    return this.run(() => {
      checkLeaseMs(leaseMs);
      const d = this.data(l.study);
      checkDriver(l, d.driver, this.clock());
      d.driver = { ...d.driver!, expiresMs: this.clock() + leaseMs };
    });
  }

  releaseDriver(l: DriverLease): Promise<void> {
    return this.run(() => {
      const d = this.data(l.study);
      if (d.driver !== null && d.driver.token === l.token) d.driver = { ...d.driver, expiresMs: 0 };
    });
  }

  artifactDir(study: string): string {
    checkStudyName(study);
    return join(this.artifacts, study);
  }

  private readonly files = new FolderArtifacts((study) => this.artifactDir(study));

  async putArtifact(study: string, key: string, bytes: Uint8Array): Promise<ArtifactInfo> {
    await this.run(() => this.data(study));
    return this.files.put(study, key, bytes);
  }

  async getArtifact(study: string, key: string): Promise<Uint8Array | null> {
    await this.run(() => this.data(study));
    return this.files.get(study, key);
  }

  async listArtifacts(study: string, prefix = ''): Promise<ArtifactInfo[]> {
    await this.run(() => this.data(study));
    return this.files.list(study, prefix);
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

  private pushSnapshot(d: StudyData, study: string, told: number, state: Json): void {
    d.snapshots.push({ study, told, state: copyJson(state), createdAt: nowIso() });
    if (d.snapshots.length > SNAPSHOTS_KEPT) d.snapshots.splice(0, d.snapshots.length - SNAPSHOTS_KEPT);
  }

  latestSnapshot(study: string): Promise<ControllerSnapshot | null> {
    return this.run(() => {
      const s = this.data(study).snapshots;
      return s.length === 0 ? null : out(s[s.length - 1]);
    });
  }

  saveFinal(f: NewFinal): Promise<FinalRecord> {
    return this.run(() => {
      checkFinal(f);
      const { d } = this.trial(f.study, f.trial);
      const rec: FinalRecord = {
        study: f.study,
        trial: f.trial,
        finalAccuracy: f.finalAccuracy,
        latencyMs: f.latencyMs,
        ...(f.latencyHost == null ? {} : { latencyHost: f.latencyHost }),
        ...(f.latencyDevice == null ? {} : { latencyDevice: f.latencyDevice }),
        ...(f.trainEngine == null ? {} : { trainEngine: f.trainEngine }),
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
