/**
 * The training recipe, defined once and followed by every engine (tfjs in train.ts, libtorch in
 * train-torch.ts): fixed batch size with the last partial batch dropped, cosine learning rate per
 * step (SGDR without restarts, Loshchilov & Hutter 2017), coupled L2 weight decay on kernels only,
 * and optional augmentation: random crop from a zero-padded image plus a random horizontal flip
 * (the CIFAR recipe of He et al. 2016).
 */
import type * as tf from '@tensorflow/tfjs';
import type { FinetuneRecipe } from '../config/schema.js';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type Batch, batches } from '../data/batch.js';
import type { ImageShape, Split } from '../data/types.js';
import type { ModelGraph } from '../model/ir/graph.js';

/**
 * Knowledge distillation (Hinton et al. 2015), `evaluation.finetune.distill` with its teacher:
 * the unpruned base model, as a graph or as the tfjs model it was loaded as. libtorch only
 * (src/evaluators/distill.ts); the tfjs trainer refuses it.
 */
export interface DistillOptions {
  /** Softmax temperature T, > 0. */
  readonly temperature: number;
  /** Weight of the distillation term in [0, 1]; 1 − alpha weighs the cross entropy. */
  readonly alpha: number;
  readonly teacher: { readonly graph: ModelGraph } | { readonly model: tf.LayersModel };
}

export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize: number;
  /** Peak learning rate; decays to 0 on a cosine over all steps. */
  readonly learningRate: number;
  readonly optimizer: 'adam' | 'sgd';
  /** SGD momentum (ignored by adam). */
  readonly momentum: number;
  /** Coupled L2 on kernels (conv, depthwise, pointwise, dense), not on biases or BN. Default 0. */
  readonly weightDecay?: number;
  readonly numClasses: number;
  /** Seeds the batch order and augmentation of each epoch. */
  readonly seed: number;
  /** Random crop (zero padding of floor(height / 8) pixels) + horizontal flip. Default false. */
  readonly augment?: boolean;
  /** Stop an epoch after this many batches (fine-tuning on a budget). Default: whole epoch. */
  readonly maxBatchesPerEpoch?: number;
  readonly onProgress?: (p: TrainProgress) => void;
  /** Resume: the first epoch to run (0-based); the schedule and batches continue from there. Default 0. */
  readonly startEpoch?: number;
  /** Resume: the folder an `onEpochEnd` checkpoint saved the optimizer state into. */
  readonly resumeFrom?: string;
  /**
   * After each epoch, with the trained weights already in the tfjs model; `saveOptimizer(dir)`
   * writes the optimizer state (momentum, Adam moments) for `resumeFrom`.
   */
  readonly onEpochEnd?: (epoch: number, saveOptimizer: (dir: string) => Promise<void>) => Promise<void>;
  /** Distil from a teacher (libtorch only). Default: off, plain cross entropy. */
  readonly distill?: DistillOptions;
}

/**
 * `evaluation.finetune` as TrainOptions: the one recipe rungs, finalists and NetAdapt's adapt stage
 * train with, for a stage's own length and seed. Distils when the recipe says so and a teacher is given.
 */
export function finetuneOptions(
  f: FinetuneRecipe,
  o: { epochs: number; maxBatchesPerEpoch?: number; numClasses: number; seed: number; teacher?: DistillOptions['teacher'] },
): TrainOptions {
  return {
    epochs: o.epochs,
    batchSize: f.batchSize,
    learningRate: f.learningRate,
    optimizer: f.optimizer,
    momentum: f.momentum,
    weightDecay: f.weightDecay,
    numClasses: o.numClasses,
    seed: o.seed,
    augment: f.augment,
    maxBatchesPerEpoch: o.maxBatchesPerEpoch,
    distill: f.distill && o.teacher && { ...f.distill, teacher: o.teacher },
  };
}

export interface TrainProgress {
  readonly epoch: number;
  readonly step: number;
  readonly steps: number;
  /** Mean loss over the epoch so far. */
  readonly loss: number;
  readonly imagesPerSecond: number;
}

export interface TrainResult {
  readonly epochs: number;
  readonly steps: number;
  readonly seconds: number;
  readonly finalLoss: number;
  readonly imagesPerSecond: number;
  /** Which engine trained: `libtorch` or the tfjs backend's name. */
  readonly engine: string;
}

export function validateTrainOptions(o: TrainOptions): void {
  if (!(o.epochs >= 0) || !(o.batchSize >= 1) || !(o.learningRate > 0) || !((o.weightDecay ?? 0) >= 0)) {
    throw new AutopruneError(
      ErrorCodes.INVALID_ARGUMENT,
      `Expected epochs >= 0, batchSize >= 1, learningRate > 0, weightDecay >= 0; got ${quote({ epochs: o.epochs, batchSize: o.batchSize, learningRate: o.learningRate, weightDecay: o.weightDecay })}`,
    );
  }
}

/** Full batches per epoch (the last partial batch is dropped), capped by `maxBatchesPerEpoch`. */
export function stepsPerEpoch(count: number, o: Pick<TrainOptions, 'batchSize' | 'maxBatchesPerEpoch'>): number {
  const steps = Math.min(Math.floor(count / o.batchSize), o.maxBatchesPerEpoch ?? Infinity);
  if (steps < 1) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected at least one full batch: ${count} training images, batch size ${quote(o.batchSize)}`);
  }
  return steps;
}

/** Learning rate of step `step` (0-based) of `steps`: peak * (1 + cos(pi * step / steps)) / 2. */
export function learningRateAt(peak: number, step: number, steps: number): number {
  return 0.5 * peak * (1 + Math.cos((Math.PI * step) / steps));
}

/** Whether the coupled L2 applies to a weight, by its tfjs name (`layer/kernel`, `layer/bias`, ...). */
export function isDecayed(weightName: string): boolean {
  return /(^|\/)(kernel|depthwise_kernel|pointwise_kernel)(_\d+)?$/.test(weightName);
}

/**
 * The batches of epoch `epoch`: shuffled and augmented by an RNG derived from (seed, epoch) alone,
 * so a run resumed at an epoch boundary sees exactly the batches the uninterrupted run would.
 */
export function* epochBatches(data: Split, o: TrainOptions, epoch: number): Generator<Batch> {
  const rng = new Rng(`${o.seed}:epoch:${epoch}`);
  const steps = stepsPerEpoch(data.count, o);
  const augmentRng = rng.fork('augment');
  for (const b of batches(data, o.batchSize, { shuffle: rng, maxBatches: steps })) {
    yield o.augment ? { ...b, images: augment(b.images, b.count, b.shape, augmentRng) } : b;
  }
}

/**
 * The recipe's epochs, the same on every engine: from `startEpoch`, each batch of `epochBatches` goes
 * to `step` with its scheduled learning rate (it returns the batch's mean loss); loss bookkeeping,
 * progress, divergence and a macrotask between steps (signal handlers and output run) are here;
 * `endEpoch` runs after each epoch (checkpoints). Returns all of TrainResult but the engine's name.
 */
export async function runEpochs(
  data: Split,
  o: TrainOptions,
  step: (batch: Batch, learningRate: number) => number,
  endEpoch: (epoch: number) => Promise<void>,
): Promise<Omit<TrainResult, 'engine'>> {
  const perEpoch = stepsPerEpoch(data.count, o);
  const steps = perEpoch * o.epochs;
  const first = o.startEpoch ?? 0;
  const started = performance.now();
  let done = perEpoch * first;
  let images = 0;
  let finalLoss = NaN;
  for (let epoch = first; epoch < o.epochs; epoch++) {
    let lossSum = 0;
    let seen = 0;
    for (const batch of epochBatches(data, o, epoch)) {
      const loss = step(batch, learningRateAt(o.learningRate, done, steps));
      done++;
      images += batch.count;
      lossSum += loss * batch.count;
      seen += batch.count;
      finalLoss = lossSum / seen;
      o.onProgress?.({ epoch, step: done, steps, loss: finalLoss, imagesPerSecond: images / ((performance.now() - started) / 1000) });
      if (!Number.isFinite(loss)) throw diverged(done, loss, o);
      await new Promise<void>((r) => setImmediate(r));
    }
    await endEpoch(epoch);
  }
  const seconds = (performance.now() - started) / 1000;
  return { epochs: o.epochs, steps: done, seconds, finalLoss, imagesPerSecond: images / Math.max(seconds, 1e-9) };
}

function diverged(step: number, loss: number, o: TrainOptions): AutopruneError {
  return new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Training diverged at step ${step} (loss ${loss}); lower the learning rate (got ${o.learningRate})`);
}

/** Crop padding in pixels: 4 for 32x32 (CIFAR's standard), 3 for 28x28. */
export function cropPadding(shape: ImageShape): number {
  return Math.floor(shape[0] / 8);
}

/**
 * Random crop + flip of NHWC images into a new array: each image is shifted by (dy, dx) in
 * [-p, p]^2 with zeros filling the border (= cropping a zero-padded image), then mirrored
 * left-right with probability 1/2.
 */
export function augment(images: Float32Array, count: number, shape: ImageShape, rng: Rng): Float32Array {
  const [h, w, c] = shape;
  const p = cropPadding(shape);
  const out = new Float32Array(count * h * w * c);
  for (let n = 0; n < count; n++) {
    const dy = rng.int(2 * p + 1) - p;
    const dx = rng.int(2 * p + 1) - p;
    const flip = rng.next() < 0.5;
    const base = n * h * w * c;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      if (sy < 0 || sy >= h) continue;
      for (let x = 0; x < w; x++) {
        const sx = (flip ? w - 1 - x : x) + dx;
        if (sx < 0 || sx >= w) continue;
        const src = base + (sy * w + sx) * c;
        const dst = base + (y * w + x) * c;
        for (let k = 0; k < c; k++) out[dst + k] = images[src + k];
      }
    }
  }
  return out;
}
