/**
 * Rules both Store backends share (validation, state transitions, record shapes, error messages), so
 * that the memory and SQLite backends cannot drift apart. Backends only do the storage.
 */
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { Cost, TrialMetrics, TrialState } from '../core/types.js';
import type { FinalRecord, Json, NewTrial, StudyRecord } from './types.js';

export type NewStudy = Omit<StudyRecord, 'createdAt' | 'updatedAt' | 'state'>;

export const STUDY_STATES = ['running', 'stopped', 'complete'] as const;

/** findTrialByKey: a complete trial wins, then one in flight, then a queued one; a failed one last. */
export const KEY_PREFERENCE: Readonly<Record<TrialState, number>> = { complete: 0, running: 1, waiting: 2, failed: 3 };

export function nowIso(): string {
  return new Date().toISOString();
}

export function isFinished(state: TrialState): boolean {
  return state === 'complete' || state === 'failed';
}

export const storeErrors = {
  studyNotFound: (name: string) =>
    new AutopruneError(ErrorCodes.STUDY_NOT_FOUND, `Study ${quote(name)} not found in the store`),
  studyExists: (name: string) =>
    new AutopruneError(
      ErrorCodes.STORE_ERROR,
      `Study ${quote(name)} already exists; resume it, choose another name, or delete it first (--fresh)`,
    ),
  trialNotFound: (study: string, n: number) =>
    new AutopruneError(ErrorCodes.TRIAL_NOT_FOUND, `Trial ${quote(n)} of study ${quote(study)} not found`),
  immutable: (study: string, n: number, state: TrialState, action: string) =>
    new AutopruneError(
      ErrorCodes.TRIAL_IMMUTABLE,
      `Cannot ${action} trial ${quote(n)} of study ${quote(study)}: it is already ${quote(state)} and finished trials are immutable`,
    ),
  closed: () => new AutopruneError(ErrorCodes.STORE_ERROR, 'The store is closed'),
};

/**
 * The one transition table: waiting -> running (a worker claims it), waiting|running -> complete|failed.
 * A finished trial accepts nothing. Claiming a trial that is already running is refused, so two workers
 * never evaluate the same trial.
 */
export function checkTransition(
  study: string,
  n: number,
  from: TrialState,
  to: 'running' | 'complete' | 'failed',
  currentWorker: string | null,
): void {
  const action = to === 'running' ? 'start' : to === 'complete' ? 'complete' : 'fail';
  if (isFinished(from)) throw storeErrors.immutable(study, n, from, action);
  if (to === 'running' && from === 'running') {
    throw new AutopruneError(
      ErrorCodes.STORE_ERROR,
      `Cannot start trial ${quote(n)} of study ${quote(study)}: it is already running on worker ${quote(currentWorker)}`,
    );
  }
}

function checkFinite(what: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected ${what} to be a finite number, got ${quote(v)}`);
  }
}

function checkText(what: string, v: unknown): void {
  if (typeof v !== 'string' || v.length === 0) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected ${what} to be a non-empty string, got ${quote(v)}`);
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
}

export function checkBaseAccuracy(acc: { proxy?: number; test?: number }): void {
  if (acc.proxy !== undefined) checkFinite('base proxy accuracy', acc.proxy);
  if (acc.test !== undefined) checkFinite('base test accuracy', acc.test);
}

export function checkFinal(f: Omit<FinalRecord, 'createdAt'>): void {
  checkStudyName(f.study);
  checkTrialNumber(f.trial);
  checkFinite('finalAccuracy', f.finalAccuracy);
  if (f.latencyMs !== null) checkFinite('latencyMs', f.latencyMs);
  if (!Number.isInteger(f.epochs) || f.epochs < 0) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected epochs to be an integer >= 0, got ${quote(f.epochs)}`);
  }
  checkFinite('seconds', f.seconds);
  if (f.modelPath !== null && typeof f.modelPath !== 'string') {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected modelPath to be a string or null, got ${quote(f.modelPath)}`);
  }
}

export function checkStudyState(state: unknown): void {
  if (!(STUDY_STATES as readonly unknown[]).includes(state)) {
    throw new AutopruneError(
      ErrorCodes.INVALID_ARGUMENT,
      `Expected study state to be one of ${STUDY_STATES.join(', ')}, got ${quote(state)}`,
    );
  }
}

export function checkNewTrial(t: NewTrial): void {
  if (!Array.isArray(t.candidate?.channels)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected candidate.channels to be an array, got ${quote(t.candidate)}`);
  }
  t.candidate.channels.forEach((c, i) => checkFinite(`candidate.channels[${i}]`, c));
  checkText('trial key', t.key);
  checkText('controller name', t.controller);
  checkCost('trial cost', t.cost);
}

export function checkMetrics(m: TrialMetrics): void {
  for (const k of ['proxyAccuracy', 'finalAccuracy', 'latencyMs'] as const) {
    if (m[k] !== undefined) checkFinite(`metrics.${k}`, m[k]);
  }
  if (m.timings !== undefined) {
    for (const [k, v] of Object.entries(m.timings)) checkFinite(`metrics.timings.${k}`, v);
  }
}

/** Metrics with only the fields that were measured (null/undefined columns are left out). */
export function metricsOf(
  proxyAccuracy: number | null | undefined,
  finalAccuracy: number | null | undefined,
  latencyMs: number | null | undefined,
  timings: Record<string, number> | null | undefined,
): TrialMetrics {
  const m: { proxyAccuracy?: number; finalAccuracy?: number; latencyMs?: number; timings?: Record<string, number> } = {};
  if (proxyAccuracy != null) m.proxyAccuracy = proxyAccuracy;
  if (finalAccuracy != null) m.finalAccuracy = finalAccuracy;
  if (latencyMs != null) m.latencyMs = latencyMs;
  if (timings != null) m.timings = timings;
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
