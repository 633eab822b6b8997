/**
 * A study as a host opens it: config -> engine backend -> data and base model (checked against
 * each other and the search space) -> the inputs' hashes -> store -> study record. Everything that
 * can fail on bad input happens before the store is opened, so a typo never leaves an empty study.
 */
import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import type { ResolvedConfig } from '../config/index.js';
import { splitsHash } from '../data/fingerprint.js';
import { type BackendInfo, type BackendName, initBackend } from '../engine/backend.js';
import { engineAccuracy, graphAccuracy, refuseTfjsProxy } from '../evaluators/engine.js';
import { type LoadSplitsOptions, loadBaseGraph, loadBaseModel, loadSplits, type Splits } from '../evaluators/setup.js';
import { analyzeModel } from '../model/analysis.js';
import { modelHash } from '../model/fingerprint.js';
import { analyzeGraph } from '../model/ir/analyze.js';
import type { ModelGraph } from '../model/ir/graph.js';
import { encodeGraph } from '../model/ir/io.js';
import { isOnnxPath } from '../model/ir/onnx-import.js';
import { openStore, type Store, type StudyInputs } from '../store/index.js';
import type { DataNotes } from '../study/data-notes.js';
import { type SpaceAnalysis, studySpace } from '../study/lifecycle.js';

/**
 * What a host loaded for a study: its engine backend, data, base model and their hashes. The base
 * model is a tfjs model (`base`, with its analysis) when `model.checkpoint` is a model.json, else a
 * graph imported from ONNX (`graph`, `base` null, analysis of the graph).
 */
export interface HostInputs {
  readonly cfg: ResolvedConfig;
  readonly backend: BackendInfo;
  readonly splits: Splits;
  readonly base: tf.LayersModel | null;
  readonly graph: ModelGraph | null;
  readonly analysis: SpaceAnalysis;
  /** sha256 of the base model and of the data as split: recorded in a new study, checked on resume and by workers. */
  readonly inputs: StudyInputs;
}

/**
 * The hashes a study records of its base model and data (and a worker checks against): a tfjs
 * model's hash (src/model/fingerprint.ts), or a graph's (its graph file's bytes, src/model/ir/io.ts).
 */
export function studyInputs(base: tf.LayersModel | ModelGraph, splits: Splits): StudyInputs {
  return { baseModel: 'nodes' in base ? graphHash(base) : modelHash(base), data: splitsHash(splits) };
}

/** sha256 of the graph as saved (graph.json + graph.bin): the same for two imports of one file. */
export function graphHash(graph: ModelGraph): string {
  const { json, bin } = encodeGraph(graph);
  return createHash('sha256').update(json).update('\u0000').update(bin).digest('hex');
}

/**
 * Loads what the study's trials are evaluated on (`backend` overrides `run.backend`); validates
 * `space.skip` against the model's groups.
 */
export async function loadHostInputs(cfg: ResolvedConfig, o: { backend?: BackendName } & LoadSplitsOptions = {}): Promise<HostInputs> {
  const backend = await initBackend(o.backend ?? cfg.run.backend);
  const splits = await loadSplits(cfg, { log: o.log, progress: o.progress });
  // The step may be `auto` until the latency table resolves it: 1 here only validates space.skip.
  if (cfg.model.checkpoint !== undefined && isOnnxPath(cfg.model.checkpoint)) {
    if (cfg.run.engine.proxy === 'tfjs') throw refuseTfjsProxy(cfg);
    const graph = await loadBaseGraph(cfg, splits);
    const analysis = analyzeGraph(graph);
    studySpace(cfg, analysis, 1);
    return { cfg, backend, splits, base: null, graph, analysis, inputs: studyInputs(graph, splits) };
  }
  const base = await loadBaseModel(cfg, splits);
  const analysis = analyzeModel(base);
  studySpace(cfg, analysis, 1);
  return { cfg, backend, splits, base, graph: null, analysis, inputs: studyInputs(base, splits) };
}

/** The base model's accuracy on the proxy's engine: validation (as trials are scored) and test. */
export async function baseAccuracy(h: HostInputs): Promise<{ proxy: number; test: number }> {
  if (h.base === null) {
    return {
      proxy: await graphAccuracy(h.cfg, h.graph!, h.splits.validation, h.cfg.evaluation.validation.limit),
      test: await graphAccuracy(h.cfg, h.graph!, h.splits.test),
    };
  }
  return {
    proxy: await engineAccuracy(h.cfg, h.base, h.splits.validation, h.cfg.evaluation.validation.limit),
    test: await engineAccuracy(h.cfg, h.base, h.splits.test),
  };
}

/** The notes a study records about its data (src/study/data-notes.ts), or null when there is nothing to say. */
export function hostDataNotes(h: Pick<HostInputs, 'splits'>): DataNotes | null {
  const n = h.splits.skippedFiles ?? 0;
  return n > 0 ? { skippedFiles: n, onCorrupt: 'skip' } : null;
}

/** The config's store (`run.store`), created and migrated when new. */
export function openStudyStore(cfg: ResolvedConfig): Promise<Store> {
  return openStore(cfg.run.store);
}
