/**
 * Which engine trains: libtorch when its binding loaded (or when asked for by name), else tfjs on
 * the active backend. Both follow recipe.ts; the trained weights always end in the tfjs model.
 */
import type * as tf from '@tensorflow/tfjs';
import type { TRAIN_ENGINES } from '../config/schema.js';
import type { Split } from '../data/types.js';
import { initTorch, torchStatus } from '../engine/torch.js';
import type { TrainOptions, TrainResult } from './recipe.js';
import { train } from './train.js';
import { trainTorch } from './train-torch.js';

export type TrainEngine = (typeof TRAIN_ENGINES)[number];

/** `auto` -> libtorch when loaded, else tfjs; `libtorch` throws when the binding is missing. */
export function resolveTrainEngine(requested: TrainEngine): 'libtorch' | 'tfjs' {
  if (requested === 'auto') return torchStatus().loaded ? 'libtorch' : 'tfjs';
  return requested;
}

/** Trains `model` in place on the chosen engine; `workers` share this machine's cores. */
export async function fit(model: tf.LayersModel, data: Split, o: TrainOptions, engine: { requested: TrainEngine; workers?: number }): Promise<TrainResult> {
  if (resolveTrainEngine(engine.requested) === 'libtorch') return trainTorch(initTorch({ workers: engine.workers }), model, data, o);
  return train(model, data, o);
}
