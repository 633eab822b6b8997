/**
 * The onnxruntime evaluator: the proxy stage on onnxruntime (the base model imported once as a graph,
 * each candidate cut from it as arrays -> ONNX -> adaptive BN, accuracy and latency in onnxruntime
 * sessions, see onnx-proxy.ts); no tfjs model is built per trial (a parent trial's weights are read
 * from its files as a graph). Convs without a BN after them are unfolded into conv + BN first
 * (src/model/ir/unfold.ts, `evaluation.calibration.unfold`), so that models without BN re-calibrate
 * too. The training stages (adapt, finetune) go to the finetuner the caller gives: tfjs worker
 * threads for a tfjs base model, graph ones (graph.ts) for a graph.
 *
 * It runs in the calling thread. onnxruntime-node's `session.run` blocks that thread while it
 * computes (measured: no event-loop tick during a 0.5 s run), so proxy evaluations that overlap here
 * take turns, and each session gets every core as intra-op threads (workers × threads ≤ cores with
 * one at a time). `capacity` is `run.concurrency`: it is what the finalists use, whose fine-tunes
 * run on the tfjs/libtorch worker pool, that many at once (with capacity 1 the quickstart's two
 * finalists trained one after the other on one libtorch thread each).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Cost } from '../core/types.js';
import type { Split } from '../data/types.js';
import { nchwcBlock } from '../engine/onnxruntime.js';
import { analyzeGraph, type GraphAnalysis } from '../model/ir/analyze.js';
import { graphCost } from '../model/ir/cost.js';
import { applyGraphPlan, makeGraphPlan } from '../model/ir/cut.js';
import { graphFromLayersModel, graphFromTfjsFiles } from '../model/ir/from-tfjs.js';
import type { ModelGraph } from '../model/ir/graph.js';
import { hasGraph, loadGraph } from '../model/ir/io.js';
import { graphToOnnx } from '../model/ir/to-onnx.js';
import { convsWithoutBatchNorm, unfoldConvs, unfoldedName } from '../model/ir/unfold.js';
import type { OnnxGraph } from '../model/onnx.js';
import { type CalibrationOptions, measureStatistics, onnxProxy } from './onnx-proxy.js';
import type { EvaluatorOptions } from './options.js';
import { pruningRng } from './plan-rng.js';
import type { Splits } from './setup.js';
import { type EvalRequest, type EvalResult, type Evaluator, latencyTimingKey } from './types.js';

/** Intra-op threads per session when `capacity` evaluations share the cores. */
export function threadsPerEvaluation(capacity: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / Math.max(1, capacity)));
}

/**
 * Latency is measured with no other session computing beside it: evaluations take turns through
 * this gate (many proxy phases at once, or one latency measurement alone).
 */
class LatencyGate {
  private shared = 0;
  private exclusive: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  async enter(): Promise<void> {
    while (this.exclusive) await this.exclusive;
    this.shared++;
  }
  leave(): void {
    this.shared--;
    if (this.shared === 0) this.drained?.();
  }
  async alone<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive) await this.exclusive;
    let release!: () => void;
    this.exclusive = new Promise((r) => (release = r));
    if (this.shared > 0) await new Promise<void>((r) => (this.drained = r));
    this.drained = null;
    try {
      return await fn();
    } finally {
      this.exclusive = null;
      release();
    }
  }
}

/**
 * A model ready for the proxy: its analysis (costs, channel choice) and the graph the cuts are
 * taken from, which is the model itself, or the model with its BN-less convs unfolded (same groups).
 */
export interface ProxyBase {
  readonly analysis: GraphAnalysis;
  readonly cutFrom: GraphAnalysis;
  /** Convs that were given a BN. */
  readonly unfolded: readonly string[];
}

/**
 * Unfolds `graph`'s convs without a BN (unless `unfold` is `off`), their statistics measured on the
 * calibration batches; the analysis of the original graph is kept for costs and channel choice.
 */
export async function proxyBase(
  graph: ModelGraph,
  o: { unfold: 'auto' | 'off'; train: Split; calibration: CalibrationOptions; threads?: number },
): Promise<ProxyBase> {
  const analysis = analyzeGraph(graph);
  const convs = o.unfold === 'off' ? [] : convsWithoutBatchNorm(graph);
  if (convs.length === 0) return { analysis, cutFrom: analysis, unfolded: [] };
  const probe = unfoldConvs(graph, convs);
  const measured = await measureStatistics(graphToOnnx(probe), convs.map(unfoldedName), o.train, {
    ...o.calibration,
    threads: o.threads,
    layout: graph.inputLayout,
  });
  const stats = new Map(convs.map((c) => [c, measured.get(unfoldedName(c))!]));
  const cutFrom = analyzeGraph(unfoldConvs(graph, convs, stats));
  if (cutFrom.groups.length !== analysis.groups.length || cutFrom.groups.some((g, i) => g.id !== analysis.groups[i].id)) {
    throw new Error('unfolding changed the channel groups');
  }
  return { analysis, cutFrom, unfolded: convs };
}

/**
 * A parent trial's adapted weights: its tfjs model.json when it has one (a tfjs base model's trials),
 * else its graph folder (a graph base model's trials, src/model/ir/io.ts).
 */
async function parentGraph(dir: string): Promise<ModelGraph> {
  if (!existsSync(join(dir, 'model.json')) && hasGraph(dir)) return loadGraph(dir);
  return graphFromTfjsFiles(join(dir, 'model.json'));
}

export class OnnxEvaluator implements Evaluator {
  private readonly gate = new LatencyGate();
  private finetuner: Promise<Evaluator> | null = null;
  private prepared: Promise<ProxyBase> | null = null;

  private constructor(
    private readonly cfg: EvaluatorOptions,
    /** The base model as a graph, imported once. */
    private readonly base: ModelGraph,
    private readonly splits: Splits,
    /** Builds the evaluator of the finetune stage (tfjs), on first use. */
    private readonly makeFinetuner: () => Promise<Evaluator>,
    readonly capacity: number,
    /** Conv widths are padded to this multiple in the proxy's sessions (onnx-pad.ts). */
    private readonly channelBlock: number,
  ) {}

  /**
   * The base model as a graph (`graph`), or as a tfjs model (`base`, imported here; tfjs must be
   * initialised). `base` and `splits` are the caller's (not disposed by close()).
   */
  static create(
    cfg: EvaluatorOptions,
    o: ({ base: tf.LayersModel; graph?: undefined } | { graph: ModelGraph; base?: undefined }) & {
      splits: Splits;
      finetuner: () => Promise<Evaluator>;
      channelBlock?: number;
    },
  ): OnnxEvaluator {
    const graph = o.graph ?? graphFromLayersModel(o.base);
    return new OnnxEvaluator(cfg, graph, o.splits, o.finetuner, Math.max(1, cfg.run.concurrency), o.channelBlock ?? nchwcBlock());
  }

  private calibration(): CalibrationOptions {
    const c = this.cfg.evaluation.calibration;
    return { batches: c.batches, batchSize: c.batchSize, seed: this.cfg.run.seed };
  }

  private prepare(graph: ModelGraph): Promise<ProxyBase> {
    return proxyBase(graph, {
      unfold: this.cfg.evaluation.calibration.unfold,
      train: this.splits.train,
      calibration: this.calibration(),
      threads: threadsPerEvaluation(1),
    });
  }

  async evaluate(req: EvalRequest): Promise<EvalResult> {
    // Training stages run on tfjs (or libtorch through it); proxies of a parent trial's adapted
    // weights (NetAdapt's chain) are cut from those weights here.
    if (req.stage !== 'proxy') {
      this.finetuner ??= this.makeFinetuner();
      return (await this.finetuner).evaluate(req);
    }
    const { cfg, splits } = this;
    const ev = cfg.evaluation;
    const t0 = performance.now();
    const { graph, cost } = await this.pruned(req);
    const pruneSeconds = Math.round(performance.now() - t0) / 1000;
    await this.gate.enter();
    try {
      const r = await onnxProxy(graph, splits, {
        calibration: this.calibration(),
        validationLimit: ev.validation.limit,
        latency: { batchSize: ev.latency.batchSize, runs: ev.latency.runs },
        threads: threadsPerEvaluation(1), // proxies take turns on this thread
        channelBlock: this.channelBlock,
        layout: this.base.inputLayout,
        aloneForLatency: async (measure) => {
          this.gate.leave();
          try {
            return await this.gate.alone(measure);
          } finally {
            await this.gate.enter();
          }
        },
      });
      const { latency, ...rest } = r.timings;
      const timings = { prune: pruneSeconds, ...rest, [latencyTimingKey('onnxruntime')]: latency ?? 0 };
      return { proxyAccuracy: r.accuracy, latencyMs: r.latencyMs, cost, timings, worker: 'onnxruntime' };
    } finally {
      this.gate.leave();
    }
  }

  /**
   * The candidate cut from the base model, or from its parent trial's adapted weights, as ONNX; its
   * cost is the original model's (an unfolded BN is not part of the model). The channels kept are
   * chosen on the original graph, so unfolded BNs do not vote in `bn-gamma`.
   */
  private async pruned(req: EvalRequest): Promise<{ graph: OnnxGraph; cost: Cost }> {
    const rng = pruningRng(this.cfg, req.trial);
    let base: ProxyBase;
    if (!req.parent) {
      // Prepared once; a failed preparation is retried by the next trial.
      this.prepared ??= this.prepare(this.base).catch((e) => {
        this.prepared = null;
        throw e;
      });
      base = await this.prepared;
    } else {
      base = await this.prepare(await parentGraph(req.parent.modelDir));
    }
    const plan = makeGraphPlan(base.analysis, req.candidate, this.cfg.evaluation.importance, rng);
    const cut = applyGraphPlan(base.cutFrom.graph, base.cutFrom, plan);
    return { graph: graphToOnnx(cut), cost: graphCost(base.analysis, req.candidate) };
  }

  /**
   * The base model's convs the proxy gave a BN (unfolded into conv + BN for re-calibration); empty
   * until the first proxy trial prepared the base model, and when `evaluation.calibration.unfold` is off.
   */
  async unfoldedConvs(): Promise<readonly string[]> {
    return this.prepared ? (await this.prepared).unfolded : [];
  }

  async close(): Promise<void> {
    if (this.finetuner) await (await this.finetuner).close();
  }
}
