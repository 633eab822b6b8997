/** The `train` section: how `autoprune train` trains the base model. */
import { z } from 'zod';
import { flag, num, pathString, positiveInt, positiveNumber } from './leaves.js';

export const OPTIMIZERS = ['adam', 'sgd'] as const;

export const trainSchema = z.strictObject({
  /** Training epochs of the base model. Default 3. */
  epochs: positiveInt().default(3),
  /** Default 64. */
  batchSize: positiveInt().default(64),
  /** Default 0.001. */
  learningRate: positiveNumber().default(0.001),
  /** Default `adam`. */
  optimizer: z.enum(OPTIMIZERS).default('adam'),
  /** SGD momentum, in [0, 1). Default 0.9. */
  momentum: num('a number in [0, 1)', (v) => v >= 0 && v < 1).default(0.9),
  /** BatchNorm moving-average momentum, in (0, 1). Default 0.9 (Keras' 0.99 looks bad after short training). */
  bnMomentum: num('a number in (0, 1)', (v) => v > 0 && v < 1).default(0.9),
  /** Coupled L2 weight decay on kernels (not biases or BN), >= 0. Default 0. */
  weightDecay: num('a number >= 0', (v) => v >= 0).default(0),
  /** Random crop (zero padding of height/8 pixels) + horizontal flip while training. Default false. */
  augment: flag().default(false),
  /** Folder the trained model (model.json, weights.bin, train.json) is saved in. Default: the folder of `model.checkpoint`, else `experiments/<name>/base`. */
  out: pathString().optional(),
});
