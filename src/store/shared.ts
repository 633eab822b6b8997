/**
 * Rules the Store backends share (validation, the trial state machine, fencing, record shapes, error
 * messages): SQLite (files and `:memory:`) and PostgreSQL cannot drift apart. Backends only store.
 */
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { type Cost, TRIAL_STAGES, type TrialMetrics, type TrialStage, type TrialState } from '../core/types.js';
import type { DriverLease, Json, NewTrial, StudyInputs, StudyRecord, TrialLease } from './types.js';

export type NewStudy = Omit<StudyRecord, 'createdAt' | 'updatedAt' | 'state' | 'inputs'> & { inputs?: StudyInputs | null };

export const STUDY_STATES = ['running', 'stopped', 'complete'] as const;

export function nowIso(): string {
  return new Date().toISOString();
}

export function isFinished(state: TrialState): boolean {
  return state === 'complete' || state === 'failed';
}

/**
 * The trial state machine: the one table every backend follows (sql.ts checks each move with
 * checkMove or checkLease on the row it read, and writes the WHERE and SET with fromSql/toSql).
 *   claim      waiting -> running    a worker takes it, under a new fencing token
 *   heartbeat  running -> running    its holder extends the lease
 *   complete   running -> complete   its holder's result
 *   fail       running -> failed     its holder's error
 *   requeue    running -> waiting    its lease ran out, attempts are left (reapExpired)
 *   expire     running -> failed     its lease ran out for the maxAttempts-th time (reapExpired)
 * A finished trial (complete, failed) accepts nothing: TRIAL_IMMUTABLE, also a trigger in both SQL
 * schemas, so a writer that bypasses the store cannot change it either.
 */
export const TRANSITIONS = {
  claim: { from: 'waiting', to: 'running' },
  heartbeat: { from: 'running', to: 'running' },
  complete: { from: 'running', to: 'complete' },
  fail: { from: 'running', to: 'failed' },
  requeue: { from: 'running', to: 'waiting' },
  expire: { from: 'running', to: 'failed' },
} as const satisfies Record<string, { readonly from: TrialState; readonly to: TrialState }>;

export type Transition = keyof typeof TRANSITIONS;

/** Whether a trial in `state` may take transition `t`. */
export function canMove(state: TrialState, t: Transition): boolean {
  return TRANSITIONS[t].from === state;
}

/**
 * The transition check every state change passes (sql.ts calls it on the row it read in the
 * writing transaction): TRIAL_IMMUTABLE from a finished state, STORE_ERROR from another state.
 */
export function checkMove(study: string, n: number, state: TrialState, t: Transition): void {
  if (isFinished(state)) throw storeErrors.immutable(study, n, state, t);
  if (!canMove(state, t))
    throw new AutopruneError(
      ErrorCodes.STORE_ERROR,
      `Cannot ${t} trial ${quote(n)} of study ${quote(study)}: it is ${quote(state)}, not ${quote(TRANSITIONS[t].from)}`,
    );
}

/** SQL: the row is in `t`'s from-state (`column` qualifies it, e.g. `t.state`). */
export function fromSql(t: Transition, column = 'state'): string {
  return `${column} = '${TRANSITIONS[t].from}'`;
}

/** SQL: the SET clause of `t`'s to-state. */
export function toSql(t: Transition): string {
  return `state = '${TRANSITIONS[t].to}'`;
}

export const storeErrors = {
  studyNotFound: (name: string) => new AutopruneError(ErrorCodes.STUDY_NOT_FOUND, `Study ${quote(name)} not found in the store`),
  studyExists: (name: string) =>
    new AutopruneError(ErrorCodes.STORE_ERROR, `Study ${quote(name)} already exists; resume it, choose another name, or delete it first (--fresh)`),
  trialNotFound: (study: string, n: number) => new AutopruneError(ErrorCodes.TRIAL_NOT_FOUND, `Trial ${quote(n)} of study ${quote(study)} not found`),
  immutable: (study: string, n: number, state: TrialState, action: string) =>
    new AutopruneError(
      ErrorCodes.TRIAL_IMMUTABLE,
      `Cannot ${action} trial ${quote(n)} of study ${quote(study)}: it is already ${quote(state)} and finished trials are immutable`,
    ),
  closed: () => new AutopruneError(ErrorCodes.STORE_ERROR, 'The store is closed'),
  leaseLost: (l: TrialLease, why: string) =>
    new AutopruneError(ErrorCodes.LEASE_LOST, `Lease ${l.token} on trial ${quote(l.number)} of study ${quote(l.study)} is lost: ${why}`),
  driverLost: (l: DriverLease, why: string) =>
    new AutopruneError(ErrorCodes.LEASE_LOST, `Driver ${quote(l.owner)} no longer holds study ${quote(l.study)}: ${why}`),
  busy: (study: string, owner: string, expiresMs: number, now: number) =>
    new AutopruneError(
      ErrorCodes.STUDY_BUSY,
      `Study ${quote(study)} is being searched by ${quote(owner)} (its lease runs ${Math.ceil((expiresMs - now) / 1000)} s more and is renewed while it lives); stop that search first, or wait for its lease to expire if it died`,
    ),
};

/** The lease columns of a trial, as both backends keep them. */
export interface LeaseState {
  readonly state: TrialState;
  readonly token: number;
  readonly expiresMs: number | null;
}

/**
 * Fencing: a holder's write is accepted only while the trial runs under its token and the lease has
 * not run out (`now` = the store's clock). A finished trial stays TRIAL_IMMUTABLE.
 */
export function checkLease(l: TrialLease, cur: LeaseState, now: number, action: Transition): void {
  if (isFinished(cur.state)) throw storeErrors.immutable(l.study, l.number, cur.state, action);
  if (!canMove(cur.state, action) || cur.token !== l.token)
    throw storeErrors.leaseLost(l, `the trial was re-queued or claimed again (now ${cur.state}, token ${cur.token})`);
  if (cur.expiresMs === null || cur.expiresMs < now) throw storeErrors.leaseLost(l, `it expired ${now - (cur.expiresMs ?? now)} ms ago`);
}

/** The driver's lease: `cur` is the study's driver row (null when none was ever taken). */
export function checkDriver(l: DriverLease, cur: { owner: string; token: number; expiresMs: number } | null, now: number): void {
  if (cur === null || cur.token !== l.token || cur.owner !== l.owner) throw storeErrors.driverLost(l, `${cur ? quote(cur.owner) : 'nobody'} holds it now`);
  if (cur.expiresMs < now) throw storeErrors.driverLost(l, `its lease expired ${now - cur.expiresMs} ms ago`);
}

export function checkLeaseMs(ms: unknown): void {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected a lease duration in ms > 0, got ${quote(ms)}`);
  }
}

/** Why a trial failed after its last lease ran out (stored as the trial's error). */
export function expiredReason(attempts: number, worker: string | null): string {
  return `lease expired ${attempts} time(s), last on worker ${worker ?? '?'} (the worker died or hung); not retried`;
}

function checkFinite(what: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected ${what} to be a finite number, got ${quote(v)}`);
  }
}

export function checkText(what: string, v: unknown): void {
  if (typeof v !== 'string' || v.length === 0) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected ${what} to be a non-empty string, got ${quote(v)}`);
  }
}

/** Artifact keys are relative paths of plain segments (no `..`, no leading `/`), so a folder backend stays inside its folder. */
export function checkArtifactKey(key: unknown, prefix = false): void {
  const ok =
    typeof key === 'string' &&
    (prefix ? key === '' || /^([\w.-]+\/)*[\w.-]*$/.test(key) : /^([\w.-]+\/)*[\w.-]+$/.test(key)) &&
    !key.split('/').some((seg) => seg === '.' || seg === '..');
  if (!ok) {
    throw new AutopruneError(
      ErrorCodes.INVALID_ARGUMENT,
      `Expected an artifact ${prefix ? 'key prefix' : 'key'} made of relative path segments (letters, digits, \`._-\`) such as \`trials/3/model/weights.bin\`, got ${quote(key)}`,
    );
  }
}

export function checkStudyName(name: unknown): void {
  checkText('study name', name);
}

export function checkTrialNumber(n: unknown): void {
  if (!Number.isInteger(n) || (n as number) < 0) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected a trial number (integer >= 0), got ${quote(n)}`);
  }
}

function checkCost(what: string, c: Cost): void {
  checkFinite(`${what}.macs`, c?.macs);
  checkFinite(`${what}.params`, c?.params);
}

export function checkNewStudy(s: NewStudy): void {
  checkStudyName(s.name);
  checkText('configHash', s.configHash);
  checkCost('baseCost', s.baseCost);
  if (s.baseProxyAccuracy !== null) checkFinite('baseProxyAccuracy', s.baseProxyAccuracy);
  if (s.baseTestAccuracy !== null) checkFinite('baseTestAccuracy', s.baseTestAccuracy);
  if (s.inputs != null) {
    for (const [k, v] of Object.entries({ 'inputs.baseModel': s.inputs.baseModel, 'inputs.data': s.inputs.data })) {
      if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) {
        throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected \`${k}\` to be a sha256 in hex (64 characters), got ${quote(v)}`);
      }
    }
  }
}

export function checkBaseAccuracy(acc: { proxy?: number; test?: number }): void {
  if (acc.proxy !== undefined) checkFinite('base proxy accuracy', acc.proxy);
  if (acc.test !== undefined) checkFinite('base test accuracy', acc.test);
}

export function checkStudyState(state: unknown): void {
  if (!(STUDY_STATES as readonly unknown[]).includes(state)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected study state to be one of ${STUDY_STATES.join(', ')}, got ${quote(state)}`);
  }
}

export function checkNewTrial(t: NewTrial): void {
  if (!Array.isArray(t.candidate?.channels)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected candidate.channels to be an array, got ${quote(t.candidate)}`);
  }
  t.candidate.channels.forEach((c, i) => checkFinite(`candidate.channels[${i}]`, c));
  checkText('trial key', t.key);
  checkText('controller name', t.controller);
  if (t.stage !== undefined && !(TRIAL_STAGES as readonly unknown[]).includes(t.stage)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected trial stage to be one of ${TRIAL_STAGES.join(', ')}, got ${quote(t.stage)}`);
  }
  if (t.parent !== undefined && t.parent !== null) checkTrialNumber(t.parent);
  checkCost('trial cost', t.cost);
}

export function stageOf(t: NewTrial): TrialStage {
  return t.stage ?? 'proxy';
}

/** A parent must be an earlier trial of the same study (so lineage has no cycles). */
export function checkParent(study: string, t: NewTrial, number: number, exists: (n: number) => boolean): void {
  if (t.parent === undefined || t.parent === null) return;
  if (t.parent >= number || !exists(t.parent)) {
    throw new AutopruneError(
      ErrorCodes.INVALID_ARGUMENT,
      `Parent trial ${quote(t.parent)} of new trial ${number} is not an earlier trial of study ${quote(study)}`,
    );
  }
}

export function checkMetrics(m: TrialMetrics): void {
  for (const k of ['proxyAccuracy', 'finalAccuracy', 'latencyMs'] as const) {
    if (m[k] !== undefined) checkFinite(`metrics.${k}`, m[k]);
  }
  if (m.timings !== undefined) {
    for (const [k, v] of Object.entries(m.timings)) checkFinite(`metrics.timings.${k}`, v);
  }
  checkMeasuredOn('metrics', m);
}

/** `latencyHost` / `latencyDevice`, when given, are non-empty strings. */
function checkMeasuredOn(what: string, m: { latencyHost?: string | null; latencyDevice?: string | null }): void {
  if (m.latencyHost != null) checkText(`${what}.latencyHost`, m.latencyHost);
  if (m.latencyDevice != null) checkText(`${what}.latencyDevice`, m.latencyDevice);
}

/** Metrics with only the fields that were measured (null/undefined columns are left out). */
export function metricsOf(
  proxyAccuracy: number | null | undefined,
  finalAccuracy: number | null | undefined,
  latencyMs: number | null | undefined,
  timings: Record<string, number> | null | undefined,
  latencyHost?: string | null,
  latencyDevice?: string | null,
): TrialMetrics {
  const m: { -readonly [K in keyof TrialMetrics]: TrialMetrics[K] } = {};
  if (proxyAccuracy != null) m.proxyAccuracy = proxyAccuracy;
  if (finalAccuracy != null) m.finalAccuracy = finalAccuracy;
  if (latencyMs != null) m.latencyMs = latencyMs;
  if (latencyHost != null) m.latencyHost = latencyHost;
  if (latencyDevice != null) m.latencyDevice = latencyDevice;
  if (timings != null) m.timings = timings as Record<string, number>;
  return m;
}

/** The canonical encoding of JSON values in both backends (drops `undefined` keys as JSON does). */
export function encodeJson(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected a JSON-serialisable value, got ${quote(String(v))}`);
  }
  return s;
}

export function decodeJson<T = Json>(s: string): T {
  return JSON.parse(s) as T;
}

/** Copy through the canonical encoding: what a backend keeps is never shared with the caller. */
export function copyJson<T>(v: T): T {
  return decodeJson<T>(encodeJson(v));
}

/** Deep-freeze a fresh record before it leaves a backend (readonly at run time too). */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}
