/**
 * A study as a host opens it: config -> engine backend -> data and base model (checked against
 * each other and the search space) -> the inputs' hashes -> store -> study record. Everything that
 * can fail on bad input happens before the store is opened, so a typo never leaves an empty study.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ResolvedConfig } from '../config/index.js';
import { splitsHash } from '../data/fingerprint.js';
import { type BackendInfo, type BackendName, initBackend } from '../engine/backend.js';
import { engineAccuracy } from '../evaluators/engine.js';
import { loadBaseModel, loadSplits, type Splits } from '../evaluators/setup.js';
import { type Analysis, analyzeModel } from '../model/analysis.js';
import { modelHash } from '../model/fingerprint.js';
import { openStore, type Store, type StudyInputs } from '../store/index.js';
import { studySpace } from '../study/lifecycle.js';

/** What a host loaded for a study: its engine backend, data, base model and their hashes. */
export interface HostInputs {
  readonly cfg: ResolvedConfig;
  readonly backend: BackendInfo;
  readonly splits: Splits;
  readonly base: tf.LayersModel;
  readonly analysis: Analysis;
  /** sha256 of the base model and of the data as split: recorded in a new study, checked on resume and by workers. */
  readonly inputs: StudyInputs;
}

/** The hashes a study records of its base model and data (and a worker checks against). */
export function studyInputs(base: tf.LayersModel, splits: Splits): StudyInputs {
  return { baseModel: modelHash(base), data: splitsHash(splits) };
}

/**
 * Loads what the study's trials are evaluated on (`backend` overrides `run.backend`); validates
 * `space.skip` against the model's groups.
 */
export async function loadHostInputs(cfg: ResolvedConfig, o: { backend?: BackendName } = {}): Promise<HostInputs> {
  const backend = await initBackend(o.backend ?? cfg.run.backend);
  const splits = await loadSplits(cfg);
  const base = await loadBaseModel(cfg, splits);
  const analysis = analyzeModel(base);
  studySpace(cfg, analysis);
  return { cfg, backend, splits, base, analysis, inputs: studyInputs(base, splits) };
}

/** The base model's accuracy on the proxy's engine: validation (as trials are scored) and test. */
export async function baseAccuracy(h: HostInputs): Promise<{ proxy: number; test: number }> {
  return {
    proxy: await engineAccuracy(h.cfg, h.base, h.splits.validation, h.cfg.evaluation.validation.limit),
    test: await engineAccuracy(h.cfg, h.base, h.splits.test),
  };
}

/** The config's store (`run.store`), created and migrated when new. */
export function openStudyStore(cfg: ResolvedConfig): Promise<Store> {
  return openStore(cfg.run.store);
}
