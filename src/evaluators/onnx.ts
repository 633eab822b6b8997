/**
 * The onnxruntime evaluator: the proxy stage on onnxruntime (prune with tfjs -> export -> adaptive BN,
 * accuracy and latency in onnxruntime sessions, see onnx-proxy.ts); the finetune stage trains, which
 * onnxruntime does not, so it goes to the tfjs evaluator.
 *
 * It runs in the calling thread. onnxruntime-node's `session.run` blocks that thread while it
 * computes (measured: no event-loop tick during a 0.5 s run), so proxy evaluations that overlap here
 * take turns, and each session gets every core as intra-op threads (workers × threads ≤ cores with
 * one at a time). `capacity` is `run.concurrency`: it is what the finalists use, whose fine-tunes
 * run on the tfjs/libtorch worker pool, that many at once (with capacity 1 the quickstart's two
 * finalists trained one after the other on one libtorch thread each).
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Cost } from '../core/types.js';
import { nchwcBlock } from '../engine/onnxruntime.js';
import { type Analysis, analyzeModel } from '../model/analysis.js';
import { costOf } from '../model/flops.js';
import { loadModel } from '../model/io.js';
import { exportOnnxGraph, type OnnxGraph } from '../model/onnx.js';
import { pruneModel } from '../model/prune.js';
import { onnxProxy } from './onnx-proxy.js';
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

export class OnnxEvaluator implements Evaluator {
  private readonly gate = new LatencyGate();
  private finetuner: Promise<Evaluator> | null = null;

  private constructor(
    private readonly cfg: EvaluatorOptions,
    private readonly base: tf.LayersModel,
    private readonly analysis: Analysis,
    private readonly splits: Splits,
    /** Builds the evaluator of the finetune stage (tfjs), on first use. */
    private readonly makeFinetuner: () => Promise<Evaluator>,
    readonly capacity: number,
    /** Conv widths are padded to this multiple in the proxy's sessions (onnx-pad.ts). */
    private readonly channelBlock: number,
  ) {}

  /** `base` and `splits` are the caller's (not disposed by close()); tfjs must be initialised. */
  static create(cfg: EvaluatorOptions, o: { base: tf.LayersModel; splits: Splits; finetuner: () => Promise<Evaluator>; channelBlock?: number }): OnnxEvaluator {
    return new OnnxEvaluator(cfg, o.base, analyzeModel(o.base), o.splits, o.finetuner, Math.max(1, cfg.run.concurrency), o.channelBlock ?? nchwcBlock());
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
    const { model } = await this.pruned(req);
    let graph: OnnxGraph;
    let cost: Cost;
    try {
      cost = costOf(analyzeModel(model), null);
      graph = exportOnnxGraph(model);
    } finally {
      model.dispose();
    }
    const pruneSeconds = Math.round(performance.now() - t0) / 1000;
    await this.gate.enter();
    try {
      const r = await onnxProxy(graph, splits, {
        calibration: { batches: ev.calibration.batches, batchSize: ev.calibration.batchSize, seed: cfg.run.seed },
        validationLimit: ev.validation.limit,
        latency: { batchSize: ev.latency.batchSize, runs: ev.latency.runs },
        threads: threadsPerEvaluation(1), // proxies take turns on this thread
        channelBlock: this.channelBlock,
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

  /** The candidate cut from the base model, or from its parent trial's adapted weights. */
  private async pruned(req: EvalRequest): Promise<{ model: tf.LayersModel }> {
    const rng = pruningRng(this.cfg, req.trial);
    if (!req.parent) return pruneModel(this.base, this.analysis, req.candidate, this.cfg.evaluation.importance, rng);
    const parent = await loadModel(join(req.parent.modelDir, 'model.json'));
    try {
      return await pruneModel(parent, analyzeModel(parent), req.candidate, this.cfg.evaluation.importance, rng);
    } finally {
      parent.dispose();
    }
  }

  async close(): Promise<void> {
    if (this.finetuner) await (await this.finetuner).close();
  }
}
