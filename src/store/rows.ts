/**
 * Row shapes of the SQL stores (SQLite and PostgreSQL share one schema) and their conversion to
 * immutable records.
 */
import type { Candidate, SearchSpace } from '../core/space.js';
import type { TrialStage, TrialState } from '../core/types.js';
import { decodeJson, deepFreeze, metricsOf } from './shared.js';
import type { StudyRecord, StudyState, TrialRecord } from './types.js';

export interface StudyRow {
  id: number;
  name: string;
  config: string;
  config_hash: string;
  space: string;
  base_macs: number;
  base_params: number;
  base_proxy_accuracy: number | null;
  base_test_accuracy: number | null;
  base_hash: string | null;
  data_hash: string | null;
  state: StudyState;
  created_at: string;
  updated_at: string;
}

export interface TrialRow {
  number: number;
  state: TrialState;
  candidate: string;
  key: string;
  macs: number;
  params: number;
  controller: string;
  meta: string | null;
  proxy_accuracy: number | null;
  final_accuracy: number | null;
  latency_ms: number | null;
  latency_host: string | null;
  latency_device: string | null;
  timings: string | null;
  error: string | null;
  worker: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  finish_seq: number | null;
  stage: TrialStage;
  parent: number | null;
  attempts: number;
  lease_token: number;
  lease_expires_ms: number | null;
}

export function studyFromRow(r: StudyRow): StudyRecord {
  return deepFreeze({
    name: r.name,
    configHash: r.config_hash,
    config: decodeJson(r.config),
    space: decodeJson<SearchSpace>(r.space),
    baseCost: { macs: r.base_macs, params: r.base_params },
    baseProxyAccuracy: r.base_proxy_accuracy,
    baseTestAccuracy: r.base_test_accuracy,
    inputs: r.base_hash === null || r.data_hash === null ? null : { baseModel: r.base_hash, data: r.data_hash },
    state: r.state,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });
}

export function trialFromRow(study: string, r: TrialRow): TrialRecord {
  const rec: TrialRecord = {
    study,
    number: r.number,
    state: r.state,
    candidate: decodeJson<Candidate>(r.candidate),
    key: r.key,
    cost: { macs: r.macs, params: r.params },
    controller: r.controller,
    ...(r.meta === null ? {} : { meta: decodeJson(r.meta) }),
    stage: r.stage,
    parent: r.parent,
    attempts: r.attempts,
    metrics: metricsOf(
      r.proxy_accuracy,
      r.final_accuracy,
      r.latency_ms,
      r.timings === null ? null : decodeJson<Record<string, number>>(r.timings),
      r.latency_host,
      r.latency_device,
    ),
    error: r.error,
    worker: r.worker,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    finishSeq: r.finish_seq,
  };
  return deepFreeze(rec);
}
