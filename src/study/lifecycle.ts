/**
 * Study lifecycle: create or resume the study (refusing a changed model/space), measure the base
 * once, rebuild the controller from its latest snapshot, and the final state.
 */
import { configHash, type ResolvedConfig, resolveConfig } from '../config/index.js';
import { targetFractions } from '../config/sections/search.js';
import { createStudyController } from '../controllers/registry.js';
import type { Controller, ControllerContext } from '../controllers/types.js';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import type { Candidate, SearchSpace } from '../core/space.js';
import type { Cost, Json } from '../core/types.js';
import type { Analysis } from '../model/analysis.js';
import { costOf } from '../model/flops.js';
import type { GraphAnalysis } from '../model/ir/analyze.js';
import { graphCost } from '../model/ir/cost.js';
import { checkStudyInputs } from '../store/inputs.js';
import type { Store, StudyInputs, StudyRecord, StudyState } from '../store/types.js';
import type { StopReason } from './budget.js';
import { type DataNotes, recordDataNotes } from './data-notes.js';
import { type SnapshotState, toldNumbers } from './driver.js';
import { type LatencyCheckSummary, recordLatencyCheck } from './latency-check.js';

/**
 * The base model's channel groups as a study reads them: a tfjs model's analysis (../model/analysis.ts)
 * or a graph's (../model/ir/analyze.ts, any source format). Both give the same groups for a tfjs model.
 */
export type SpaceAnalysis = Analysis | GraphAnalysis;

/** MACs and params of the base model pruned to `c` (null: unpruned). */
export function spaceCost(a: SpaceAnalysis, c: Candidate | null): Cost {
  return 'layers' in a ? costOf(a, c) : graphCost(a, c);
}

/**
 * The search space of a config's model. `space.channelStep: auto` must have been resolved
 * (src/latency/step.ts) into a config copy or `channelStep` before.
 */
export function studySpace(cfg: ResolvedConfig, analysis: SpaceAnalysis, channelStep?: number): SearchSpace {
  const step = cfg.space.channelStep === 'auto' ? channelStep : cfg.space.channelStep;
  if (step === undefined) {
    throw new AutopruneError(ErrorCodes.CONFIG_INVALID, '`space.channelStep` is `auto`, which only `search` and `latency` resolve (from the latency table)');
  }
  const ids = new Set(analysis.groups.map((g) => g.id));
  for (const s of cfg.space.skip) {
    if (!ids.has(s)) {
      throw new AutopruneError(
        ErrorCodes.CONFIG_INVALID,
        `\`space.skip\` names group \`${s}\`, which the model does not have; expected one of: ${[...ids].join(', ')}`,
      );
    }
  }
  return { groups: analysis.groups, options: { minKeepRatio: cfg.space.minKeepRatio, channelStep: step, skip: [...cfg.space.skip] } };
}

export interface OpenStudyOptions {
  readonly cfg: ResolvedConfig;
  readonly configHash: string;
  readonly store: Store;
  readonly analysis: SpaceAnalysis;
  readonly baseAccuracy: () => Promise<{ proxy: number; test: number }>;
  /** Hashes of the base model and data loaded here: recorded in a new study, checked on resume. */
  readonly inputs?: StudyInputs;
  /** What the data's hash does not say (files skipped as unreadable): recorded with the study. */
  readonly dataNotes?: DataNotes | null;
  /** The latency model's check on held-out candidates, measured as this run prepared it: recorded with the study. */
  readonly latencyCheck?: LatencyCheckSummary | null;
  readonly log: (line: string) => void;
}

/**
 * Whether a study's stored config is the one being resumed with. The stored hash was taken by the
 * schema of its day; options that gained a default since (the controllers' options moved into the
 * schema) fill in when the stored config is resolved again, so both sides are compared with
 * today's defaults filled, and an old study resumed with its own config is not reported as changed.
 */
export function sameConfig(study: Pick<StudyRecord, 'name' | 'config' | 'configHash'>, hash: string): boolean {
  if (study.configHash === hash) return true;
  try {
    return configHash(resolveConfig(study.config, { source: `config of study \`${study.name}\`` })) === hash;
  } catch {
    return false; // a stored config today's schema refuses differs from any config it accepts
  }
}

/** The existing study (checked against this config) or a new one with its base measured. */
export async function openStudy(o: OpenStudyOptions): Promise<StudyRecord> {
  const { cfg, store, log } = o;
  const space = studySpace(cfg, o.analysis);
  const existing = await store.getStudy(cfg.name);
  if (existing) {
    if (JSON.stringify(existing.space) !== JSON.stringify(space)) {
      throw new AutopruneError(
        ErrorCodes.CONFIG_INVALID,
        `Study \`${cfg.name}\` was started with a different model or search space; rerun with --fresh to start over, or give the study another name`,
      );
    }
    if (o.inputs) checkStudyInputs(existing, o.inputs, 'resume with the base model and data the study was started with, or rerun with --fresh');
    if (!sameConfig(existing, o.configHash))
      log(
        `note: the config of study \`${cfg.name}\` changed since it started (hash ${existing.configHash.slice(0, 12)} -> ${o.configHash.slice(0, 12)}); continuing with the new settings`,
      );
    if (existing.baseProxyAccuracy === null) await store.setBaseAccuracy(cfg.name, await o.baseAccuracy()); // a crash right after creation
    await recordDataNotes(store, cfg.name, o.dataNotes ?? null); // the same data (its hash was checked): the same notes
    await recordLatencyCheck(store, cfg.name, o.latencyCheck);
    return (await store.getStudy(cfg.name))!;
  }
  const baseCost = spaceCost(o.analysis, null);
  await store.createStudy({
    name: cfg.name,
    configHash: o.configHash,
    config: cfg as unknown as Json,
    space,
    baseCost,
    baseProxyAccuracy: null,
    baseTestAccuracy: null,
    inputs: o.inputs ?? null,
  });
  await recordDataNotes(store, cfg.name, o.dataNotes ?? null);
  await recordLatencyCheck(store, cfg.name, o.latencyCheck);
  const acc = await o.baseAccuracy();
  await store.setBaseAccuracy(cfg.name, acc);
  log(
    `study \`${cfg.name}\`: ${space.groups.length} groups, base ${(baseCost.macs / 1e6).toFixed(2)} MMACs, validation ${(100 * acc.proxy).toFixed(2)}%, test ${(100 * acc.test).toFixed(2)}%`,
  );
  return (await store.getStudy(cfg.name))!;
}

/** The configured controller, restored from the study's latest snapshot when there is one. */
export interface ControllerSetup {
  /** A decorator around the configured controller (tests, the torture's stage mix). */
  readonly wrap?: (c: Controller) => Controller;
  /** Plain data some controllers learn from: group descriptors (rl), channel importance (global). */
  readonly data?: Pick<ControllerContext, 'groups' | 'importance'>;
  /** Latency prediction (src/latency/): the targets' cost when they are latency targets, and each proposal's recorded prediction. */
  readonly latency?: StudyLatency;
}

/** What a study knows of latency when it has a table (src/latency/study.ts builds it). */
export interface StudyLatency {
  /** Predicted latency of a candidate as a fraction of the base model's measured one. */
  readonly fractionOf: (c: Candidate) => number;
  /** Predicted milliseconds per image. */
  readonly predictMs: (c: Candidate) => number;
  /** The table's label, recorded with each prediction. */
  readonly table: string;
  /** True when the targets are latency fractions (then `fractionOf` is the controllers' cost). */
  readonly targets: boolean;
  /** The prediction's check on held-out candidates (null: `evaluation.latency.check: 0`). */
  readonly check?: LatencyCheckSummary | null;
}

/** Each proposal's meta carries its predicted latency and the table it came from. */
function annotated(c: Controller, latency: StudyLatency): Controller {
  return {
    get name() {
      return c.name;
    },
    ask: (n) => c.ask(n).map((p) => ({ ...p, meta: { ...p.meta, predictedLatencyMs: round6(latency.predictMs(p.candidate)), latencyTable: latency.table } })),
    tell: (o) => c.tell(o),
    done: () => c.done(),
    snapshot: () => c.snapshot(),
    restore: (s) => c.restore(s),
  };
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

export async function restoreController(
  cfg: ResolvedConfig,
  study: StudyRecord,
  store: Store,
  analysis: SpaceAnalysis,
  setup: ControllerSetup = {},
): Promise<{ controller: Controller; told: number[] }> {
  const wrap = setup.wrap ?? ((c: Controller) => c);
  const latency = setup.latency;
  const annotate = (c: Controller): Controller => (latency ? annotated(c, latency) : c);
  const controller = wrap(
    annotate(
      createStudyController(
        cfg.search.controller,
        {
          space: study.space,
          costOf: (c: Candidate): Cost => spaceCost(analysis, c),
          baseCost: study.baseCost,
          targets: targetFractions(cfg.search.targets),
          window: cfg.search.window,
          rng: new Rng(cfg.run.seed),
          ...setup.data,
          ...(latency?.targets ? { fractionOf: latency.fractionOf } : {}),
        },
        cfg.search.baseline,
        cfg.search.warmStart,
      ),
    ),
  );
  const snap = await store.latestSnapshot(study.name);
  if (!snap) return { controller, told: [] };
  const s = snap.state as unknown as SnapshotState;
  try {
    controller.restore(s.controller);
  } catch (e) {
    throw new AutopruneError(
      ErrorCodes.CONFIG_INVALID,
      `Study \`${study.name}\` was searched with another controller setup than this config's (${(e as Error).message}); rerun with --fresh to start over, or give the study another name`,
    );
  }
  return { controller, told: toldNumbers(s.told) };
}

/** The study's state after a run: resumable (`stopped`) unless the search ran to its end. */
export function finalState(reason: StopReason): StudyState {
  return reason === 'trials' || reason === 'controller' ? 'complete' : 'stopped';
}
