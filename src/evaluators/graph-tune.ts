/**
 * A candidate's finetune/adapt stage on a ModelGraph, whatever format the model came in: cut the base
 * graph to the candidate (ir-core's plan and cut), re-calibrate BN (adaptive BN), fine-tune, score,
 * save the graph (src/model/ir/io.ts). libtorch when it is the training engine, else tfjs through
 * graphToTfjs; the steps are the ones the tfjs evaluator takes on a LayersModel.
 */
import type * as tf from '@tensorflow/tfjs';
import { ErrorCodes, isAutopruneError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import type { Candidate } from '../core/space.js';
import type { Split } from '../data/types.js';
import { initTorch } from '../engine/torch.js';
import type { GraphAnalysis } from '../model/ir/analyze.js';
import { pruneGraph } from '../model/ir/cut.js';
import { graphFromLayersModel } from '../model/ir/from-tfjs.js';
import type { ModelGraph } from '../model/ir/graph.js';
import type { ImportanceName } from '../model/ir/importance.js';
import { saveGraph } from '../model/ir/io.js';
import { graphToTfjs, graphWithTfjsWeights } from '../model/ir/to-tfjs.js';
import type { PruningPlan } from '../model/prune.js';
import { fitGraph, resolveTrainEngine, type TrainEngine } from './fit.js';
import type { TrainOptions, TrainResult } from './recipe.js';
import { accuracy, recalibrateBatchNorm } from './train.js';
import { accuracyTorchGraph, type GraphTrainOptions, recalibrateBatchNormTorch } from './train-torch.js';

export interface GraphTuneOptions {
  /** The base graph's analysis (analyzeGraph), whose groups the candidate sizes. */
  readonly analysis: GraphAnalysis;
  readonly candidate: Candidate;
  readonly importance: ImportanceName;
  /** Chooses channels for the `random` criterion. */
  readonly rng?: Rng;
  readonly train: Split;
  /** Scored after fine-tuning (validation for adapt, test for finetune). */
  readonly score: Split;
  readonly calibration: { readonly batches: number; readonly batchSize: number; readonly seed: number };
  /** No fine-tuning when `epochs` is 0. */
  readonly recipe: TrainOptions;
  readonly engine: { readonly requested: TrainEngine; readonly workers?: number };
  readonly bnMomentum?: GraphTrainOptions['bnMomentum'];
  /** Folder to save the tuned graph into. */
  readonly saveTo?: string;
}

export interface GraphTuneResult {
  readonly graph: ModelGraph;
  readonly plan: PruningPlan;
  readonly accuracy: number;
  /** Absent when no fine-tuning ran. */
  readonly train?: TrainResult;
  readonly engine: 'libtorch' | 'tfjs';
  readonly modelPath?: string;
}

/** Adaptive BN on the engine (EagleEye): libtorch, or tfjs through the graph's tfjs twin. */
function calibrate(engine: 'libtorch' | 'tfjs', graph: ModelGraph, data: Split, o: GraphTuneOptions['calibration'], workers?: number): ModelGraph {
  if (engine === 'libtorch') return recalibrateBatchNormTorch(initTorch({ workers }), graph, data, o).graph;
  const model = graphToTfjs(graph);
  try {
    recalibrateBatchNorm(model, data, o);
    return graphWithTfjsWeights(graph, model);
  } finally {
    model.dispose();
  }
}

function score(engine: 'libtorch' | 'tfjs', graph: ModelGraph, split: Split, workers?: number): number {
  if (engine === 'libtorch') return accuracyTorchGraph(initTorch({ workers }), graph, split);
  const model = graphToTfjs(graph);
  try {
    return accuracy(model, split);
  } finally {
    model.dispose();
  }
}

export async function tuneGraph(o: GraphTuneOptions): Promise<GraphTuneResult> {
  const engine = resolveTrainEngine(o.engine.requested);
  const workers = o.engine.workers;
  const cut = pruneGraph(o.analysis, o.candidate, o.importance, o.rng);
  let graph = calibrate(engine, cut.graph, o.train, o.calibration, workers);
  let train: TrainResult | undefined;
  if (o.recipe.epochs > 0) {
    const r = await fitGraph(graph, o.train, o.recipe, o.engine, { bnMomentum: o.bnMomentum });
    graph = r.graph;
    train = r.result;
  }
  const acc = score(engine, graph, o.score, workers);
  if (o.saveTo) await saveGraph(graph, o.saveTo);
  return { graph, plan: cut.plan, accuracy: acc, train, engine, modelPath: o.saveTo };
}

/**
 * Saves the graph of a tfjs model into `dir` (next to its model.json); a model the graph importer
 * refuses has no graph, and its model.json stays the only artifact. Returns whether it saved.
 */
export async function saveGraphOf(model: tf.LayersModel, dir: string): Promise<boolean> {
  let graph: ModelGraph;
  try {
    graph = graphFromLayersModel(model);
  } catch (e) {
    if (isAutopruneError(e) && (e.code === ErrorCodes.MODEL_UNSUPPORTED_LAYER || e.code === ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY)) return false;
    throw e;
  }
  await saveGraph(graph, dir);
  return true;
}
