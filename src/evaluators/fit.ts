/**
 * Which engine trains: libtorch when its binding loaded (or when asked for by name), else tfjs on
 * the active backend. Both follow recipe.ts. `fit` trains a tfjs model in place; `fitGraph` trains
 * a ModelGraph into a new one (on tfjs through the model graphToTfjs builds).
 */
import type * as tf from '@tensorflow/tfjs';
import type { TRAIN_ENGINES } from '../config/schema.js';
import { ErrorCodes, isAutopruneError } from '../core/errors.js';
import type { Split } from '../data/types.js';
import { initTorch, torchStatus } from '../engine/torch.js';
import { graphFromLayersModel } from '../model/ir/from-tfjs.js';
import type { ModelGraph } from '../model/ir/graph.js';
import { graphToTfjs, graphWithTfjsWeights, writeGraphIntoLayersModel } from '../model/ir/to-tfjs.js';
import type { TrainOptions, TrainResult } from './recipe.js';
import { train } from './train.js';
import { type GraphTrainOptions, trainTorch, trainTorchGraph } from './train-torch.js';

export type TrainEngine = (typeof TRAIN_ENGINES)[number];

/** `auto` -> libtorch when loaded, else tfjs; `libtorch` throws when the binding is missing. */
export function resolveTrainEngine(requested: TrainEngine): 'libtorch' | 'tfjs' {
  if (requested === 'auto') return torchStatus().loaded ? 'libtorch' : 'tfjs';
  return requested;
}

/**
 * Trains `model` in place on the chosen engine; `workers` share this machine's cores. libtorch
 * trains the model's graph (graphFromLayersModel) and writes the result back into the model; a
 * model the graph importer refuses trains as a LayersModel on libtorch (TorchModel), as before.
 */
export async function fit(model: tf.LayersModel, data: Split, o: TrainOptions, engine: { requested: TrainEngine; workers?: number }): Promise<TrainResult> {
  if (resolveTrainEngine(engine.requested) !== 'libtorch') return train(model, data, o);
  const torch = initTorch({ workers: engine.workers });
  let graph: ModelGraph;
  try {
    graph = graphFromLayersModel(model);
  } catch (e) {
    if (isAutopruneError(e) && (e.code === ErrorCodes.MODEL_UNSUPPORTED_LAYER || e.code === ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY))
      return trainTorch(torch, model, data, o);
    throw e;
  }
  const { onEpochEnd } = o;
  const r = await trainTorchGraph(
    torch,
    graph,
    data,
    { ...o, onEpochEnd: undefined },
    {
      bnMomentum: bnMomentaOf(model),
      onEpochEnd:
        onEpochEnd &&
        (async (epoch, trained, save) => {
          writeGraphIntoLayersModel(model, trained);
          await onEpochEnd(epoch, save);
        }),
    },
  );
  writeGraphIntoLayersModel(model, r.graph);
  return r.result;
}

/** Each BatchNormalization layer's momentum (Keras' convention), by layer name = BN node name. */
export function bnMomentaOf(model: tf.LayersModel): Record<string, number> {
  return Object.fromEntries(
    model.layers.filter((l) => l.getClassName() === 'BatchNormalization').map((l) => [l.name, (l as unknown as { momentum: number }).momentum]),
  );
}

/**
 * Trains `graph` on the chosen engine; returns the trained graph. On tfjs, a graph tfjs cannot
 * express is refused by graphToTfjs naming the node.
 */
export async function fitGraph(
  graph: ModelGraph,
  data: Split,
  o: TrainOptions,
  engine: { requested: TrainEngine; workers?: number },
  g: GraphTrainOptions = {},
): Promise<{ result: TrainResult; graph: ModelGraph }> {
  if (resolveTrainEngine(engine.requested) === 'libtorch') return trainTorchGraph(initTorch({ workers: engine.workers }), graph, data, o, g);
  const model = graphToTfjs(graph, { bnMomentum: g.bnMomentum });
  try {
    const result = await train(model, data, {
      ...o,
      onEpochEnd: g.onEpochEnd && ((epoch, save) => g.onEpochEnd!(epoch, graphWithTfjsWeights(graph, model), save)),
    });
    return { result, graph: graphWithTfjsWeights(graph, model) };
  } finally {
    model.dispose();
  }
}
