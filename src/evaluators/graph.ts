/**
 * The training stages (adapt, finetune) on a ModelGraph, for base models the search holds as a graph
 * (an ONNX model from PyTorch): cut the base graph, or the parent trial's saved graph, to the
 * candidate; re-calibrate BN; fine-tune on libtorch (or tfjs through the graph's tfjs twin, see
 * graph-tune.ts); score; save the graph folder (src/model/ir/io.ts). Latency is measured on
 * onnxruntime on the graph's ONNX export, in the model's own input layout. The proxy stage runs on
 * onnxruntime (onnx.ts); a proxy request that reaches this evaluator is scored the same way with no
 * fine-tuning.
 *
 * One instance per worker thread: it imports the base model itself from `model.checkpoint`.
 */
import { head } from '../data/split.js';
import { initBackend } from '../engine/backend.js';
import { withSession } from '../engine/onnxruntime.js';
import { analyzeGraph, type GraphAnalysis } from '../model/ir/analyze.js';
import { graphCost } from '../model/ir/cost.js';
import type { ModelGraph } from '../model/ir/graph.js';
import { loadGraph } from '../model/ir/io.js';
import { graphToOnnx } from '../model/ir/to-onnx.js';
import { encodeOnnx } from '../model/onnx-proto.js';
import { rungTraining } from '../study/rungs.js';
import { resolveTrainEngine } from './fit.js';
import { tuneGraph } from './graph-tune.js';
import { sessionAccuracy, sessionLatencyMs } from './onnx-proxy.js';
import type { BaseSource, EvaluatorOptions } from './options.js';
import { pruningRng } from './plan-rng.js';
import { finetuneOptions } from './recipe.js';
import { loadBaseGraph, loadSplits, type Splits } from './setup.js';
import { type EvalRequest, type EvalResult, type Evaluator, latencyTimingKey } from './types.js';

export class GraphEvaluator implements Evaluator {
  readonly capacity = 1;

  private constructor(
    private readonly cfg: EvaluatorOptions & Pick<BaseSource, 'train'>,
    private readonly analysis: GraphAnalysis,
    private readonly splits: Splits,
    private readonly worker: string,
  ) {}

  /** Loads data and base graph unless passed in. */
  static async create(cfg: EvaluatorOptions & BaseSource, o: { worker?: string; splits?: Splits; graph?: ModelGraph } = {}): Promise<GraphEvaluator> {
    if (resolveTrainEngine(cfg.run.engine.train) === 'tfjs') await initBackend(cfg.run.backend);
    const splits = o.splits ?? (await loadSplits(cfg));
    const graph = o.graph ?? (await loadBaseGraph(cfg, splits));
    return new GraphEvaluator(cfg, analyzeGraph(graph), splits, o.worker ?? 'main');
  }

  async evaluate(req: EvalRequest): Promise<EvalResult> {
    const { cfg, splits } = this;
    const ev = cfg.evaluation;
    const t0 = performance.now();
    const from = req.parent ? analyzeGraph(await loadGraph(req.parent.modelDir)) : this.analysis;
    const validation = ev.validation.limit === undefined ? splits.validation : head(splits.validation, ev.validation.limit);
    // One fine-tune recipe (evaluation.finetune); adapt has its own length, a rung trial the request's.
    const f = ev.finetune;
    const perEpoch = Math.min(Math.floor(splits.train.count / f.batchSize), f.batchesPerEpoch ?? Number.POSITIVE_INFINITY);
    const length =
      req.stage === 'adapt'
        ? { epochs: ev.adapt.epochs, batchesPerEpoch: ev.adapt.batchesPerEpoch }
        : req.stage === 'finetune'
          ? rungTraining(req.length ?? ev.rungs.at(-1)?.finetune ?? { epochs: 0 }, perEpoch)
          : { epochs: 0, batchesPerEpoch: perEpoch };
    const r = await tuneGraph({
      analysis: from,
      candidate: req.candidate,
      importance: ev.importance,
      rng: pruningRng(cfg, req.trial),
      train: splits.train,
      // Validation ranks every stage, rungs included (promotion never sees the test split).
      score: validation,
      calibration: { batches: ev.calibration.batches, batchSize: ev.calibration.batchSize, seed: cfg.run.seed },
      recipe: finetuneOptions(f, {
        epochs: length.epochs,
        maxBatchesPerEpoch: length.batchesPerEpoch,
        numClasses: splits.numClasses,
        seed: cfg.run.seed + req.trial,
        // The teacher is the unpruned base graph, also for a trial cut from its parent's adapted graph.
        teacher: { graph: this.analysis.graph },
      }),
      engine: { requested: cfg.run.engine.train, workers: cfg.run.concurrency },
      bnMomentum: cfg.train.bnMomentum,
      saveTo: req.stage === 'proxy' ? undefined : req.saveTo,
    });
    const tuned = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    // The finetune stage also reports test accuracy: the number a finalist is known by.
    const { latencyMs, test } = await withSession(encodeOnnx(graphToOnnx(r.graph)), {}, async (s, ort) => ({
      latencyMs: await sessionLatencyMs(s, ort, splits.shape, { batchSize: ev.latency.batchSize, runs: ev.latency.runs, layout: r.graph.inputLayout }),
      test: req.stage === 'finetune' ? await sessionAccuracy(s, ort, splits.test, { layout: r.graph.inputLayout }) : undefined,
    }));
    const timings = {
      [req.stage === 'proxy' ? 'prune+calibrate+validate' : req.stage]: Math.round(tuned * 1000) / 1000,
      [latencyTimingKey('onnxruntime')]: Math.round(performance.now() - t1) / 1000,
    };
    const cost = graphCost(analyzeGraph(r.graph), null);
    const accuracy = test === undefined ? { proxyAccuracy: r.accuracy } : { proxyAccuracy: r.accuracy, finalAccuracy: test };
    const trainEngine = r.train ? r.engine : undefined;
    return { ...accuracy, latencyMs, cost, timings, worker: this.worker, modelPath: r.modelPath, trainEngine };
  }

  async close(): Promise<void> {}
}
