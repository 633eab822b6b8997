/**
 * A study's latency model: the table for every shape its space can produce (built or completed
 * once, shared through the store), the per-model overhead fitted on the base, and the prediction
 * the controllers, the finalists and each trial's record use.
 */
import { availableParallelism, loadavg } from 'node:os';
import type * as tf from '@tensorflow/tfjs';
import type { ResolvedConfig } from '../config/index.js';
import { targetMetric } from '../config/sections/search.js';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type Candidate, candidateKey, fullCandidate, type SearchSpace } from '../core/space.js';
import { nchwcBlock } from '../engine/onnxruntime.js';
import type { Analysis } from '../model/analysis.js';
import { costOf } from '../model/flops.js';
import type { LatencyTableId, LatencyTables } from '../store/types.js';
import type { LatencyCheckSummary } from '../study/latency-check.js';
import type { StudyLatency } from '../study/lifecycle.js';
import { CALIBRATION_SEED, CHECK_MIN_FLOPS, CHECK_SEED, type CheckResult, checkPredictions, heldOutCandidates, type PairedMeasurement } from './check.js';
import { type LatencyClock, modelLatencyMs, onnxShapeTimer, onnxTableId, pairedCandidateLatencyMs } from './onnx.js';
import { layerShapes, shapeSpace } from './shapes.js';
import { autoChannelStep } from './step.js';
import { ensureTable, fitCalibration, fitOverhead, type LatencyModel, predictMs, type ShapeTimer, tableLabel } from './table.js';
import { pairedTfjsCandidateLatencyMs, TFJS_WASM_ENGINE, tfjsModelLatencyMs, tfjsWasmShapeTimer, tfjsWasmTableId } from './tfjs.js';

/** Whether a study needs the table: latency targets, or predictions asked for. */
export function needsLatencyTable(cfg: ResolvedConfig): boolean {
  return targetMetric(cfg.search.targets) === 'latency' || cfg.evaluation.latency.predict;
}

export interface PrepareLatencyOptions {
  readonly cfg: ResolvedConfig;
  readonly store: LatencyTables;
  readonly analysis: Analysis;
  readonly space: SearchSpace;
  readonly base: tf.LayersModel;
  /** Intra-op threads (the proxy's: every core). */
  readonly threads?: number;
  /** Images per call. Default `evaluation.latency.batchSize` (the proxy's). */
  readonly batch?: number;
  readonly log: (line: string) => void;
  /** Called after each measured shape (a progress line). */
  readonly onProgress?: (done: number, missing: number) => void;
  /** Injected by tests: the table id, the shape timer and the base's end-to-end latency (ms/image). */
  readonly tableId?: LatencyTableId;
  readonly timer?: ShapeTimer;
  readonly baseLatencyMs?: () => Promise<number>;
  /** Injected by tests: a candidate timed in alternation with the base (calibration and check). */
  readonly measure?: (c: Candidate) => Promise<PairedMeasurement>;
  /** Calibration and held-out candidates (default `evaluation.latency.calibration` and `.check`). */
  readonly calibration?: number;
  readonly check?: number;
  /** The engine's channel block (table.ts `align`). Default: onnxruntime's NCHWc block on this CPU. */
  readonly align?: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The table's id and shape timer of the config's `evaluation.latency.engine`. */
async function engineTable(engine: string, threads: number, batch: number, clock: LatencyClock): Promise<{ id: LatencyTableId; timer: ShapeTimer }> {
  if (engine === TFJS_WASM_ENGINE) {
    if (clock !== 'wall') {
      throw new AutopruneError(
        ErrorCodes.CONFIG_INVALID,
        `Expected evaluation.latency.clock \`wall\` for the tfjs-wasm table, got \`${clock}\` (CPU time is onnxruntime's only)`,
      );
    }
    return { id: await tfjsWasmTableId(batch), timer: await tfjsWasmShapeTimer(batch) };
  }
  return { id: await onnxTableId(threads, batch, clock), timer: await onnxShapeTimer(threads, batch, { clock }) };
}

/** `evaluation.latency.tableStep`, `auto` resolved: half the engine's channel block, so the grid holds widths on both kernel paths; 8 when there is no block. */
export function tableStepOf(step: number | 'auto', block: number): number {
  if (step !== 'auto') return step;
  return block > 1 ? Math.max(1, block / 2) : 8;
}

export interface PreparedLatency extends StudyLatency {
  readonly model: LatencyModel;
  readonly tableId: LatencyTableId;
  /** The base model's measured end-to-end latency, ms per image: alone, or the median of that and its times beside the calibration candidates. */
  readonly baseMs: number;
  /** Shapes measured now (0: the table was complete). */
  readonly measured: number;
  readonly seconds: number;
  /** The fitted share of the base's latency that moves with the entries (null: overhead fitted on the base alone). */
  readonly calibrationA: number | null;
  /** The check on held-out candidates, rows included (null: none asked for). */
  readonly checkResult: CheckResult | null;
  /** Keys of the calibration candidates: a check elsewhere must not measure them. */
  readonly calibrationKeys: ReadonlySet<string>;
}

/**
 * The config with `space.channelStep: auto` replaced by the step the table shows (step.ts); the
 * config itself when the step is a number.
 */
export async function resolveChannelStep(
  cfg: ResolvedConfig,
  o: Pick<PrepareLatencyOptions, 'store' | 'analysis' | 'threads' | 'batch' | 'log' | 'onProgress' | 'tableId' | 'timer'> & {
    /** The step an existing study was started with: kept, not measured again. */
    known?: number;
  },
): Promise<ResolvedConfig> {
  if (cfg.space.channelStep !== 'auto') return cfg;
  if (o.known !== undefined) return { ...cfg, space: { ...cfg.space, channelStep: o.known } };
  const threads = o.threads ?? availableParallelism();
  const batch = o.batch ?? cfg.evaluation.latency.batchSize;
  const clock = cfg.evaluation.latency.clock;
  const parts = o.tableId && o.timer ? null : await engineTable(cfg.evaluation.latency.engine, threads, batch, clock);
  const tableId = o.tableId ?? parts!.id;
  const timer = o.timer ?? parts!.timer;
  const choice = await autoChannelStep({
    store: o.store,
    analysis: o.analysis,
    tableId,
    timer,
    minKeepRatio: cfg.space.minKeepRatio,
    onProgress: o.onProgress,
  });
  const step = choice?.step ?? 1;
  if (choice) {
    const r = [...choice.latency].map(([n, v]) => `${n}:${(v * 1000).toFixed(0)}`).join(' ');
    o.log(
      `space.channelStep auto: ${step} (${choice.flat ? '' : 'no step was flat; '}layer \`${choice.layer}\` latency per added channel spread ${choice.spread.toFixed(2)}x between multiples of ${step}; µs per call by width: ${r})`,
    );
  } else {
    o.log('space.channelStep auto: 1 (the model has no prunable conv to measure)');
  }
  return { ...cfg, space: { ...cfg.space, channelStep: step } };
}

export async function prepareLatency(o: PrepareLatencyOptions): Promise<PreparedLatency> {
  const t0 = performance.now();
  const lat = o.cfg.evaluation.latency;
  const threads = o.threads ?? availableParallelism();
  const batch = o.batch ?? lat.batchSize;
  const clock = lat.clock;
  const tfjs = lat.engine === TFJS_WASM_ENGINE;
  const parts = o.tableId && o.timer ? null : await engineTable(lat.engine, threads, batch, clock);
  const id = o.tableId ?? parts!.id;
  // XNNPACK (tfjs-wasm) has no channel blocks to tell kernels apart by.
  const align = o.align ?? (tfjs ? 1 : nchwcBlock());
  const shapes = shapeSpace(o.analysis, o.space, tableStepOf(lat.tableStep, align), align);
  const timer = o.timer ?? parts!.timer;
  const { table, measured } = await ensureTable(o.store, id, shapes, timer, { onProgress: o.onProgress, align });
  const baseRuns = { threads, batch, runs: Math.max(lat.runs, 9), clock };
  let baseMs = o.baseLatencyMs ? await o.baseLatencyMs() : tfjs ? await tfjsModelLatencyMs(o.base, baseRuns) : await modelLatencyMs(o.base, baseRuns);
  const baseUnits = layerShapes(o.analysis, null);
  const overhead = fitOverhead(table, baseUnits, baseMs, batch);
  const runs = Math.max(lat.runs, 21);
  const measure =
    o.measure ??
    ((c: Candidate) =>
      tfjs
        ? pairedTfjsCandidateLatencyMs(o.base, o.analysis, c, { batch, runs })
        : pairedCandidateLatencyMs(o.base, o.analysis, c, { threads, batch, runs, clock }));
  // Calibration candidates come from their own generator: the check below never measures one of them.
  const nCal = o.calibration ?? lat.calibration;
  let model: LatencyModel = overhead;
  let calibrationA: number | null = null;
  const calibrationKeys = new Set<string>();
  const baseMacs = costOf(o.analysis, null).macs;
  const inRange = (c: Candidate) => costOf(o.analysis, c).macs >= CHECK_MIN_FLOPS * baseMacs;
  if (nCal > 0) {
    const points = [];
    const bases = [baseMs];
    for (const c of heldOutCandidates(o.space, nCal, new Rng(o.cfg.run.seed + CALIBRATION_SEED), new Set(), inRange)) {
      calibrationKeys.add(candidateKey(c));
      const m = await measure(c);
      points.push({ sum: table.sum(layerShapes(o.analysis, c)), ratio: m.ratio });
      bases.push(m.baseMs);
    }
    // The base was timed beside every calibration candidate too: the median of all its times stands for the load of these seconds better than one.
    const calibratedBaseMs = median(bases);
    const fitted = fitCalibration(table, baseUnits, calibratedBaseMs, batch, points);
    if (fitted) {
      model = fitted;
      calibrationA = fitted.a;
      baseMs = calibratedBaseMs;
    } else {
      o.log(`warning: the latency correction could not be fitted on ${nCal} calibration candidates; the overhead alone is fitted on the base`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  o.log(
    `latency table ${tableLabel(id)}: ${shapes.length} shapes (${measured} measured now) in ${seconds.toFixed(1)} s; base ${baseMs.toFixed(4)} ms/image, ` +
      (calibrationA === null
        ? `overhead ${(overhead.overheadMs / batch).toFixed(4)} ms/image`
        : `correction fitted on ${nCal} calibration candidates: ${(100 * calibrationA).toFixed(1)}% of the base's latency moves with the entries`),
  );
  if (calibrationA === null && overhead.clamped) {
    o.log(
      'warning: the table entries sum to more than the base model measured end to end (the host was busier while the table was measured); the overhead is taken as 0 and fractions are of the predicted base',
    );
  }
  const predict = (c: Candidate | null) => predictMs(model, layerShapes(o.analysis, c));
  const predictedBase = predict(null);
  const nCheck = o.check ?? lat.check;
  let checkResult: CheckResult | null = null;
  let check: LatencyCheckSummary | null = null;
  if (nCheck > 0) {
    checkResult = await checkPredictions(heldOutCandidates(o.space, nCheck, new Rng(o.cfg.run.seed + CHECK_SEED), calibrationKeys, inRange), {
      predictMs: (c) => predict(c ?? fullCandidate(o.space)),
      measure,
      flopsFraction: (c) => costOf(o.analysis, c).macs / baseMacs,
    });
    check = {
      table: tableLabel(id),
      candidates: checkResult.rows.length,
      calibration: calibrationA === null ? 0 : nCal,
      medianAbsError: checkResult.medianAbsError,
      maxAbsError: checkResult.maxAbsError,
      medianAbsFractionError: checkResult.medianAbsFractionError,
      load: loadavg()[0],
      measuredAt: new Date().toISOString(),
    };
    o.log(
      `latency prediction on ${nCheck} held-out candidates: median |error| ${(100 * check.medianAbsError).toFixed(1)}%, of the fraction of the base ${(100 * check.medianAbsFractionError).toFixed(1)}% (load ${check.load.toFixed(1)})`,
    );
  }
  return {
    model,
    tableId: id,
    baseMs,
    measured,
    seconds,
    calibrationA,
    checkResult,
    calibrationKeys,
    check,
    table: tableLabel(id),
    predictMs: (c) => predict(c),
    fractionOf: (c) => predict(c) / predictedBase,
    targets: targetMetric(o.cfg.search.targets) === 'latency',
  };
}
