/**
 * A search as `autoprune search` runs it: open the study's inputs and store (study.ts), build the
 * host's evaluator (evaluators.ts), then the driver and local workers (src/study/run.ts) until a
 * budget, the controller or the caller's signal ends it; then finalists. The crash tortures run
 * this same function, so what they kill is the product's wiring.
 */
import { deadlineFromUntil, type LoadedConfig, parseDuration, type ResolvedConfig } from '../config/index.js';
import type { Controller, GroupDescriptor } from '../controllers/types.js';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import type { BackendInfo } from '../engine/backend.js';
import { checkGraphTrainable, proxyEngine } from '../evaluators/engine.js';
import { needsLatencyTable, type PreparedLatency, prepareLatency, resolveChannelStep } from '../latency/study.js';
import { groupDescriptors } from '../model/descriptors.js';
import { groupScores } from '../model/importance.js';
import { graphGroupDescriptors } from '../model/ir/descriptors.js';
import { graphGroupScores } from '../model/ir/importance.js';
import { buildReportInfo, type ReportInfo } from '../report/data.js';
import { checkStoreLocation } from '../store/index.js';
import { earliest } from '../study/budget.js';
import { studyFinals } from '../study/finals.js';
import { studySpace } from '../study/lifecycle.js';
import { runStudy, type StudyProgress, type StudySummary } from '../study/run.js';
import { hostEvaluator } from './evaluators.js';
import { baseAccuracy, type HostInputs, hostDataNotes, loadHostInputs, openStudyStore } from './study.js';

export type { StudyProgress } from '../study/progress.js';

export interface SearchOptions {
  readonly loaded: LoadedConfig;
  /** Delete the study of the same name first. Default false. */
  readonly fresh?: boolean;
  /** Aborting stops asking and claiming; what runs finishes and is stored. */
  readonly signal?: AbortSignal;
  readonly log: (line: string) => void;
  /** Draw progress bars (own data's decoding) on a terminal. Default false. */
  readonly progress?: boolean;
  /** Told once the inputs are loaded, before the store is opened (the CLI prints its header). */
  readonly onStart?: (s: { cfg: ResolvedConfig; backend: BackendInfo }) => void;
  /** Told the proxy engine when the first trial needs it. */
  readonly onEngine?: (engine: string) => void;
  readonly onProgress?: (p: StudyProgress) => void;
  /** Told after each latency-table shape measured (done of missing). */
  readonly onTableProgress?: (done: number, missing: number) => void;
  /** Wraps the configured controller (the crash torture's stage mix). */
  readonly wrapController?: (c: Controller) => Controller;
  /** How often the driver looks at the store for other processes' results, ms. Default 250 with remote workers, else 1000. */
  readonly pollMs?: number;
  /** Milliseconds since the epoch; the budget's clock. Default Date.now. */
  readonly now?: () => number;
}

export interface SearchOutcome {
  readonly cfg: ResolvedConfig;
  readonly summary: StudySummary;
  /** The study as `autoprune report` sees it after the run. */
  readonly report: ReportInfo;
}

/** The deadline of `search.budget.time` / `.until` counted from `started`, whichever comes first (ms since the epoch; null: none). */
export function searchDeadline(cfg: ResolvedConfig, started: number): number | null {
  return earliest(
    cfg.search.budget.time ? started + parseDuration(cfg.search.budget.time) : null,
    cfg.search.budget.until ? deadlineFromUntil(cfg.search.budget.until, new Date(started)).getTime() : null,
  );
}

/** What learning controllers read of the base model: group descriptors, and channel importance for `global`. */
function controllerData(cfg: ResolvedConfig, host: HostInputs): { groups: GroupDescriptor[]; importance?: number[][] } {
  const rng = new Rng(cfg.run.seed);
  const criterion = cfg.evaluation.importance;
  const global = cfg.search.controller.name === 'global' || cfg.search.warmStart === 'baselines';
  if ('layers' in host.analysis && host.base) {
    const importance = global ? groupScores(host.base, host.analysis, criterion, rng).map((s) => [...s]) : undefined;
    return { groups: groupDescriptors(host.analysis), importance };
  }
  if ('layers' in host.analysis) throw new Error('controllerData: a tfjs analysis without its model');
  const importance = global ? graphGroupScores(host.analysis, criterion, rng).map((s) => [...s]) : undefined;
  return { groups: graphGroupDescriptors(host.analysis), importance };
}

export async function runSearch(o: SearchOptions): Promise<SearchOutcome> {
  let cfg = o.loaded.resolved;
  const deadline = searchDeadline(cfg, (o.now ?? Date.now)());
  checkStoreLocation(cfg.run.store); // before the seconds of loading: a bad --store is told at once
  const host = await loadHostInputs(cfg, { log: o.log, progress: o.progress });
  o.onStart?.({ cfg, backend: host.backend });
  // Tables read layer shapes from a tfjs model's analysis: a graph base model (ONNX) has none yet.
  const tfjsBase = 'layers' in host.analysis && host.base ? { analysis: host.analysis, base: host.base } : null;
  if ((cfg.space.channelStep === 'auto' || needsLatencyTable(cfg)) && !tfjsBase) {
    throw new AutopruneError(
      ErrorCodes.CONFIG_INVALID,
      'Latency targets, `evaluation.latency.predict` and `space.channelStep: auto` expected a tfjs base model (model.json); an ONNX model takes FLOPs targets and a numeric channel step for now',
    );
  }
  if (host.graph) await checkGraphTrainable(cfg, host.graph);
  const store = await openStudyStore(cfg);
  try {
    // `space.channelStep: auto` from the latency table; a resumed study keeps the step it started with.
    let latency: PreparedLatency | undefined;
    if (tfjsBase) {
      const existing = o.fresh ? null : await store.getStudy(cfg.name);
      const tableOptions = { store, analysis: tfjsBase.analysis, log: o.log, onProgress: o.onTableProgress };
      cfg = await resolveChannelStep(cfg, { ...tableOptions, known: existing?.space.options.channelStep });
      latency = needsLatencyTable(cfg)
        ? await prepareLatency({ ...tableOptions, cfg, space: studySpace(cfg, tfjsBase.analysis), base: tfjsBase.base })
        : undefined;
    }
    const inlineTfjs = cfg.run.workers === 'inline' && cfg.run.engine.proxy !== 'onnxruntime';
    const summary = await runStudy({
      cfg,
      configHash: o.loaded.hash,
      store,
      inputs: host.inputs,
      dataNotes: hostDataNotes(host),
      analysis: host.analysis,
      latency,
      controllerData: controllerData(cfg, host),
      budget: { trials: cfg.search.budget.trials, deadline },
      fresh: o.fresh ?? false,
      signal: o.signal ?? new AbortController().signal,
      baseAccuracy: () => baseAccuracy(host),
      // The engine is chosen (onnxruntime loaded) when the first trial needs it, not before the budget's clock.
      evaluator: async () => {
        o.onEngine?.(await proxyEngine(cfg));
        return hostEvaluator(cfg, host, store, cfg.name);
      },
      // Leases are trusted only when the engine runs off the main thread (see runStudy); the
      // engine is not known yet, so inline tfjs is assumed unless onnxruntime was named.
      localWorkers: cfg.run.workers === 'none' ? 0 : inlineTfjs ? 1 : cfg.run.concurrency,
      // Other processes' results are seen by polling: poll faster when they do the work.
      pollMs: o.pollMs ?? (cfg.run.remoteWorkers > 0 ? 250 : undefined),
      engineOnMainThread: inlineTfjs,
      wrapController: o.wrapController,
      log: o.log,
      onProgress: o.onProgress,
      now: o.now,
    });
    const s = summary.study;
    const trials = await store.listTrials(s.name);
    const report = buildReportInfo(s, trials, studyFinals(store, s.name, trials), hostDataNotes(host), latency?.check ?? null);
    return { cfg, summary, report };
  } finally {
    await store.close();
  }
}
